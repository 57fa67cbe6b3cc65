//! Plain data that crosses actor boundaries and the store: inbound messages, statuses, outbound
//! messages and their lanes, conversation context entries and pending expectations.

use crate::ids::{InboxSeq, JobId, WaId, Wamid};
use serde::{Deserialize, Serialize};

/// What kind of WhatsApp message came in; decides whether it can be routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundKind {
    /// Typed text.
    Text,
    /// A tap on a template's quick-reply button: its payload (or text) is routed like typed text.
    Button,
    /// A tap on an interactive reply button or a list row: routed by its id.
    Interactive,
    /// An emoji on one of the bot's messages: `text` is the emoji (empty when it was taken away),
    /// `context_id` the message. Acted on only when the config maps the emoji to a command.
    Reaction,
    /// Something WhatsApp reports that is not a person talking to the bot (a system notice, an
    /// edit, a revoke, an order, a flow completion, …), named as Meta names it: audited, never
    /// answered.
    Notice(String),
    /// Anything else a person sends (image, audio, location, …), named as Meta names the type:
    /// answered with what the bot can read.
    Other(String),
}

impl InboundKind {
    /// The label used in metrics and the audit log (`text`, `image`, …).
    pub fn label(&self) -> &str {
        match self {
            InboundKind::Text => "text",
            InboundKind::Button => "button",
            InboundKind::Interactive => "interactive",
            InboundKind::Reaction => "reaction",
            InboundKind::Notice(kind) | InboundKind::Other(kind) => kind,
        }
    }
}

/// One message a person sent to the bot, already verified and parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Meta's id for the message: the dedup key.
    pub id: Wamid,
    /// Who wrote it.
    pub from: WaId,
    /// The sender's WhatsApp profile name, when Meta sent one.
    pub name: Option<String>,
    /// The sender's WhatsApp username (`profile.username`), when they adopted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Unix seconds, as Meta stamped it.
    pub timestamp: i64,
    /// The message type.
    pub kind: InboundKind,
    /// The text that routing sees: the typed text, a button's payload, an interactive reply's id.
    /// `None` for messages that carry no text (images, reactions, …).
    pub text: Option<String>,
    /// The message this one quotes or answers (a button tap names the message that carried it).
    pub context_id: Option<Wamid>,
    /// What the person means their command to act on (`{"alert_id": "ALT-0003"}`): an id they
    /// wrote after the command (`ACK ALT-0003`, the text then being `ACK`), else what the message
    /// they quoted was about. `None` for a bare command, which acts on the most recent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<serde_json::Value>,
    /// Its inbox row once the store kept it; closed when the message has been handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxSeq>,
}

impl InboundMessage {
    /// A text message from `from`, unstamped and not kept yet: what a test or a replay builds.
    pub fn text(id: &str, from: WaId, text: &str) -> Self {
        InboundMessage {
            id: Wamid(id.to_owned()),
            from,
            name: None,
            username: None,
            timestamp: 0,
            kind: InboundKind::Text,
            text: Some(text.to_owned()),
            context_id: None,
            target: None,
            inbox: None,
        }
    }
}

/// Delivery states of an outbound message, in the order they can only move forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Meta accepted the message (our send returned a wamid).
    Accepted,
    /// Sent to the user's phone.
    Sent,
    /// Delivered to the phone.
    Delivered,
    /// Read by the user.
    Read,
    /// Failed after acceptance; terminal.
    Failed,
}

impl DeliveryState {
    /// Parses Meta's status word.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// The word used in the store and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }
}

/// A status callback for a message the bot sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The wamid our send returned.
    pub id: Wamid,
    /// The new state.
    pub state: DeliveryState,
    /// Unix seconds.
    pub timestamp: i64,
    /// The person the message was for.
    pub recipient: Option<WaId>,
    /// Meta's error code and title when the state is `failed`.
    pub error: Option<(i64, String)>,
    /// The `biz_opaque_callback_data` our send carried: its outbox id. It names the message even
    /// when the bot crashed before it stored the wamid Meta answered.
    #[serde(default)]
    pub callback: Option<String>,
}

/// The priority lane of an outbound message. Lower lanes go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// An answer to a person who just wrote: they are waiting at their phone.
    Reply = 0,
    /// A page or an escalation to one person.
    Alert = 1,
    /// A war-room relay: people are talking to each other through the bot.
    Room = 2,
    /// Fan-out to a group: it may wait behind the others.
    Broadcast = 3,
}

impl Lane {
    /// All lanes, highest priority first.
    pub const ALL: [Lane; 4] = [Lane::Reply, Lane::Alert, Lane::Room, Lane::Broadcast];

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Reply => "reply",
            Lane::Alert => "alert",
            Lane::Room => "room",
            Lane::Broadcast => "broadcast",
        }
    }
}

/// A reply button of an interactive message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// What comes back as `button_reply.id` when tapped (≤ 256 chars).
    pub id: String,
    /// What the button shows (≤ 20 chars).
    pub title: String,
}

/// The body of an outbound message, in the shapes the Graph API accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundBody {
    /// Free-form text; only inside the 24-hour window.
    Text {
        /// The text (≤ 4096 chars).
        body: String,
    },
    /// An approved template with positional body parameters.
    Template {
        /// The template's name in Meta's manager.
        name: String,
        /// The template's language code (`en_US`).
        language: String,
        /// Values of `{{1}}`, `{{2}}`, … in order.
        parameters: Vec<String>,
    },
    /// A message with up to three reply buttons.
    Interactive {
        /// The body text (≤ 1024 chars).
        body: String,
        /// One to three buttons.
        buttons: Vec<ReplyButton>,
    },
}

impl OutboundBody {
    /// The label used in metrics and the sandbox outbox.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundBody::Text { .. } => "text",
            OutboundBody::Template { .. } => "template",
            OutboundBody::Interactive { .. } => "interactive",
        }
    }
}

/// One message the bot wants to send, with what it is about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The recipient.
    pub to: WaId,
    /// What to send.
    pub body: OutboundBody,
    /// What a person reads (a template rendered locally); kept in the conversation context and
    /// shown by the sandbox.
    pub preview: String,
    /// Its priority lane.
    pub lane: Lane,
    /// What the message is about (`{"alert_id": "…"}`), so that a later reply can find it.
    pub about: Option<serde_json::Value>,
    /// The flow that sent it, for logs and metrics.
    pub flow: Option<String>,
    /// The inbound message this one answers in a thread.
    pub reply_to: Option<Wamid>,
    /// A template to send instead when Meta refuses free-form text outside the 24-hour window.
    pub fallback: Option<OutboundBody>,
    /// The group this copy went to (`send_to_group`): the Cloud API has no groups, the sandbox
    /// page shows the copies as one group conversation.
    #[serde(default)]
    pub group: Option<String>,
    /// Its idempotency key (run, step and content): queued again under the same key, as by a step
    /// run again after a crash, it is not queued twice. `None` queues it under a fresh id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl OutboundMessage {
    /// A message to `to` in `lane`: about nothing, from no flow, with no fallback, in no group
    /// (the builder methods below add those).
    pub fn new(to: WaId, body: OutboundBody, preview: String, lane: Lane) -> Self {
        OutboundMessage {
            to,
            body,
            preview,
            lane,
            about: None,
            flow: None,
            reply_to: None,
            fallback: None,
            group: None,
            key: None,
        }
    }

    /// A plain text, which reads as itself.
    pub fn text(to: WaId, text: impl Into<String>, lane: Lane) -> Self {
        let text = text.into();
        Self::new(to, OutboundBody::Text { body: text.clone() }, text, lane)
    }

    /// What it is about (`{"alert_id": …}`).
    pub fn about(self, about: Option<serde_json::Value>) -> Self {
        Self { about, ..self }
    }

    /// The flow that sends it.
    pub fn flow(self, flow: impl Into<String>) -> Self {
        Self {
            flow: Some(flow.into()),
            ..self
        }
    }

    /// The template to send instead outside the 24-hour window.
    pub fn fallback(self, fallback: Option<OutboundBody>) -> Self {
        Self { fallback, ..self }
    }

    /// The group this copy goes to.
    pub fn group(self, group: Option<String>) -> Self {
        Self { group, ..self }
    }
}

/// An outbound message in the durable queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedJob {
    /// The queue id.
    pub id: JobId,
    /// The message.
    pub message: OutboundMessage,
    /// How many sends were attempted so far.
    pub attempts: u32,
    /// Unix milliseconds when it was queued.
    pub enqueued_at_ms: i64,
    /// The jobs this one says in their place (a digest of what waited for one person): recorded
    /// as folded into it, in one commit, when it leaves ([`crate::ports::Store::job_folding`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<JobId>,
}

/// Which way a context entry went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the person to the bot.
    In,
    /// From the bot to the person.
    Out,
}

/// One message of a conversation, as flows see it in their lookback context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    /// Which way it went.
    pub direction: Direction,
    /// The text (typed, or the rendered template).
    pub text: String,
    /// Its wamid when known (inbound always; outbound once queued it has a job id instead).
    pub id: Option<String>,
    /// What an outbound message was about (an alert id, an approval request id).
    pub about: Option<serde_json::Value>,
    /// The flow that sent it (outbound).
    pub flow: Option<String>,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// A reply a flow is waiting for from one person (a flow's `on_response`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The waiting run: one answer settles all of that run's expectations of the person (APPROVE
    /// removes the REJECT alternative).
    #[serde(default)]
    pub run: String,
    /// A regular expression the whole reply must match (the flow's `pattern`).
    pub pattern: String,
    /// The flow to run when it matches.
    pub flow: String,
    /// What the runner needs to build that flow's input (the waiting run's outputs); opaque here.
    pub payload: serde_json::Value,
    /// What the waiting run was about (`{"request_id": "APR-0001"}`): a reply that quotes or
    /// names something else does not answer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<serde_json::Value>,
    /// Unix milliseconds after which it no longer applies.
    pub expires_at_ms: i64,
}

/// Whether `about` (what a message or a run was about) names what `target` names: an id under the
/// same key (`alert_id`, `request_id`, `incident_id`).
pub fn same_subject(about: &serde_json::Value, target: &serde_json::Value) -> bool {
    let Some(target) = target.as_object() else {
        return false;
    };
    target
        .iter()
        .any(|(key, id)| !id.is_null() && about.get(key) == Some(id))
}

impl Expectation {
    /// Whether `reply` (trimmed) answers it at `now_ms`: not expired, and the pattern matches,
    /// any case. A pattern that does not compile answers nothing.
    pub fn answers(&self, reply: &str, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
            && regex::RegexBuilder::new(&self.pattern)
                .case_insensitive(true)
                .build()
                .is_ok_and(|re| re.is_match(reply.trim()))
    }
}

/// Everything a session keeps, saved to the store on every change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The last messages, oldest first.
    pub entries: Vec<ContextEntry>,
    /// Replies that flows wait for, oldest first.
    pub expectations: Vec<Expectation>,
    /// Unix milliseconds of the person's last message: the 24-hour window opens there.
    pub last_inbound_ms: Option<i64>,
    /// Grows on every change; the store keeps the highest, so late writes never win.
    pub version: u64,
}

/// Why a message went to the flow it went to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// A pending `on_response` of that person matched.
    Pending,
    /// `routing.commands` matched the whole message.
    Command,
    /// A flow's own `triggers[].pattern` (type `message`) matched.
    FlowTrigger,
    /// A `routing.keywords` pattern matched.
    Keyword,
    /// Nothing else matched: `routing.default_flow`.
    Default,
    /// The person is in a war room and the message is not a command: it goes to the room.
    Relay,
    /// A message with no text (image, …): the bot answers how to talk to it.
    Unsupported,
}

/// Where routing sent a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The flow to run.
    pub flow: String,
    /// Why.
    pub reason: RouteReason,
    /// Regex captures of the keyword that matched: `match.0` is the whole match, `match.1` the first group.
    pub captures: Vec<String>,
}

impl Route {
    /// The route of a reply that matched a pending expectation: its flow, with the reply as the
    /// one capture.
    pub fn pending(expectation: &Expectation, text: &str) -> Route {
        Route {
            flow: expectation.flow.clone(),
            reason: RouteReason::Pending,
            captures: vec![text.to_owned()],
        }
    }
}

/// An audit log record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// What happened: `inbound`, `rejected_number`, `send_failed`, …
    pub kind: String,
    /// Who, masked unless the config allows contents.
    pub who: Option<String>,
    /// Details, message contents only when the config allows.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// The line for a message that arrived (`kind`: `inbound`, `resumed`, `rejected_number`, …):
    /// its id and type, its sender masked, its text only when `with_text`.
    pub fn of_message(kind: &str, message: &InboundMessage, with_text: bool) -> AuditEntry {
        let mut detail = serde_json::json!({ "id": message.id, "type": message.kind.label() });
        if with_text {
            detail["text"] = serde_json::json!(message.text);
        }
        AuditEntry {
            kind: kind.into(),
            who: Some(message.from.masked()),
            detail,
        }
    }
}

/// A durable timer: run `flow` with `input` at `fire_at_ms`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timer {
    /// The timer id.
    pub id: String,
    /// The flow to run.
    pub flow: String,
    /// The flow's input.
    pub input: serde_json::Value,
    /// Unix milliseconds.
    pub fire_at_ms: i64,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(pattern: &str, expires_at_ms: i64) -> Expectation {
        Expectation {
            about: None,
            run: "run_1".into(),
            pattern: pattern.into(),
            flow: "process-approval-flow".into(),
            payload: serde_json::Value::Null,
            expires_at_ms,
        }
    }

    #[test]
    fn an_unexpired_expectation_answers_a_matching_reply_in_any_case() {
        let now = now_ms();
        let later = now + 60_000;
        let list = [
            expectation("^APPROVE$", now - 1),
            expectation("^REJECT$", later),
            expectation("^APPROVE$", later),
            expectation("(", later),
        ];
        let taken = list
            .iter()
            .find(|e| e.answers(" approve ", now))
            .expect("a match");
        assert_eq!(
            (taken.pattern.as_str(), taken.expires_at_ms),
            ("^APPROVE$", later)
        );
        assert!(!list.iter().any(|e| e.answers("STATUS", now)));
        assert!(
            !list[3].answers("(", now),
            "a pattern that does not compile answers nothing"
        );
    }
}
