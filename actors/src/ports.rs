//! The ports this crate needs from the application: running flows, the static route table,
//! sending over the wire, and durable state. The application implements them (the SQLite store,
//! the Graph API and sandbox transports, the flow engine); the actors' own tests put recorders and
//! the [`crate::memory_store::MemoryStore`] there.

use crate::ids::{InboxSeq, JobId, RunId, WaId, Wamid};
use crate::model::{
    AuditEntry, ContextEntry, Conversation, Expectation, InboundMessage, OutboundMessage,
    QueuedJob, Route, StatusUpdate, Timer,
};
use futures_util::future::{BoxFuture, LocalBoxFuture};
use std::time::Duration;

/// A flow run asked of the [`FlowRunner`].
#[derive(Clone, Debug)]
pub struct FlowRun {
    /// The run's id.
    pub run_id: RunId,
    /// Where routing sent it; `None` for runs started by a webhook or a timer.
    pub route: Option<Route>,
    /// The flow to run (from the route, or the webhook / timer).
    pub flow: String,
    /// The message that started it, when a person did.
    pub trigger: Option<InboundMessage>,
    /// The flow's input when a webhook, a timer or a pending response supplies it.
    pub input: serde_json::Value,
    /// The matched expectation's payload, when `route.reason` is `Pending`.
    pub expectation: Option<Expectation>,
    /// The conversation's last messages, oldest first (empty without a person).
    pub context: Vec<ContextEntry>,
    /// Told once what the run created (`{"alert_id": …}`), or `{}` when it ends without; the HTTP
    /// answer of a webhook carries it.
    pub records: Option<RecordsNotifier>,
    /// The session of the person who started it (`None` for a webhook or a timer).
    pub session: Option<std::sync::Arc<dyn SessionLink>>,
}

/// The session of the person who started a run. The run's messages to that person, and the
/// answers it waits for from them, go straight to it (Session → RateLimiter → Sender) instead of
/// through the Router. The session actor implements it.
pub trait SessionLink: Send + Sync {
    /// The session's person.
    fn person(&self) -> &WaId;
    /// Queues a message for the person; it lands in their conversation once queued.
    fn send(&self, message: OutboundMessage) -> BoxFuture<'static, Queued>;
    /// Registers an answer a flow waits for from the person.
    fn expect(&self, expectation: Expectation);
}

impl std::fmt::Debug for dyn SessionLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionLink({})", self.person().masked())
    }
}

/// A one-time channel from a run to whoever started it, for the ids of the records it creates.
#[derive(Clone, Default)]
pub struct RecordsNotifier(
    std::sync::Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<serde_json::Value>>>>,
);

impl RecordsNotifier {
    /// A notifier and the receiver its first [`RecordsNotifier::tell`] reaches.
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<serde_json::Value>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            RecordsNotifier(std::sync::Arc::new(std::sync::Mutex::new(Some(tx)))),
            rx,
        )
    }

    /// Sends `records` unless something was sent already.
    pub fn tell(&self, records: serde_json::Value) {
        let sender = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.send(records);
        }
    }
}

impl std::fmt::Debug for RecordsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordsNotifier")
    }
}

/// How a run ended, for the session's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowOutcome {
    /// Every step ran (or was skipped by its condition).
    Completed,
    /// A step found nothing and answered with its `on_empty` response.
    Empty,
    /// A step ended the run with an expected answer (already decided, nothing to do).
    Answered,
    /// A step failed; the error was reported.
    Failed(String),
}

impl FlowOutcome {
    /// A word for the inbox and the logs.
    pub fn label(&self) -> &'static str {
        match self {
            FlowOutcome::Completed => "completed",
            FlowOutcome::Empty => "empty",
            FlowOutcome::Answered => "answered",
            FlowOutcome::Failed(_) => "failed",
        }
    }

    /// The outcome a [`FlowOutcome::label`] names, as a run's record keeps it; any other word
    /// (`bad_input`, `missing`, …) is a failure that says it.
    pub fn of_label(label: &str) -> FlowOutcome {
        match label {
            "completed" => FlowOutcome::Completed,
            "empty" => FlowOutcome::Empty,
            "answered" => FlowOutcome::Answered,
            other => FlowOutcome::Failed(other.to_owned()),
        }
    }
}

/// Whether [`Store::accept`] writes an `inbound` audit line for each new message in the same
/// commit (one write instead of two for every message), and with its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditInbound {
    /// No audit line.
    No,
    /// A line for each new message ([`crate::model::AuditEntry::of_message`]).
    Yes {
        /// Whether the line holds the message's text.
        with_text: bool,
    },
}

impl AuditInbound {
    /// The line for `message`, if any.
    pub fn entry(self, message: &InboundMessage) -> Option<crate::model::AuditEntry> {
        match self {
            AuditInbound::No => None,
            AuditInbound::Yes { with_text } => Some(crate::model::AuditEntry::of_message(
                "inbound", message, with_text,
            )),
        }
    }
}

/// Runs flows. Implemented by the application's flow engine.
pub trait FlowRunner: Send + Sync + 'static {
    /// Runs one flow to its end. The future runs on the calling arbiter's thread.
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome>;
}

/// Routing, but for a pending answer (which the session checks first): the application's rules
/// (commands, keywords, war rooms, the default flow).
pub trait RouteTable: Send + Sync + 'static {
    /// Where a text from `from` goes, or `None` when nothing matches and there is no default flow.
    fn route(&self, from: &WaId, text: &str) -> Option<Route>;
    /// Where a message without text goes (it gets a short "send text or HELP" answer).
    fn route_unsupported(&self, kind: &str) -> Option<Route>;
}

/// Why a send failed, as far as retrying is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendErrorKind {
    /// Network error, timeout, 5xx, or a temporary error code: retry with backoff.
    Transient,
    /// The number or the app is over its throughput: retry with backoff and slow everything down.
    Throttled,
    /// Too many messages to this one person: delay this recipient only.
    PairRateLimited,
    /// Free-form text outside the 24-hour window: send the template fallback instead.
    ReEngagementRequired,
    /// Our request is wrong or the recipient cannot receive it: do not retry.
    Permanent,
    /// The token or the account is unusable: do not retry, someone must act.
    Fatal,
}

/// A failed send, with Meta's code and message when it gave them.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message} (code {code:?})")]
pub struct SendError {
    /// How to treat it.
    pub kind: SendErrorKind,
    /// Meta's `error.code`, or the HTTP status for transport failures.
    pub code: Option<i64>,
    /// Meta's `error.message`, or what went wrong on the way.
    pub message: String,
    /// How long the server asked us to wait, when it said.
    pub retry_after: Option<Duration>,
}

/// Sends one message over the wire. Implemented by the Graph API client and the sandbox.
pub trait Transport: 'static {
    /// Sends a message; the wamid Meta assigned, or why not. `id` is its outbox id, sent along
    /// (`biz_opaque_callback_data`) so that statuses name it.
    fn send(
        &self,
        id: &JobId,
        message: &OutboundMessage,
    ) -> LocalBoxFuture<'static, Result<Wamid, SendError>>;
}

/// A store failure. The store logs the details; actors only need to know it failed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// The result of a store call.
pub type StoreResult<T> = BoxFuture<'static, Result<T, StoreError>>;

/// Durable state of the actors: everything that must survive a restart.
pub trait Store: Send + Sync + 'static {
    /// Keeps a notification before Meta is told it arrived, in one commit: records the delivery
    /// statuses (states only move forward) and puts each message not seen before in the inbox.
    /// Per message, its inbox row, or `None` for a redelivery (also of one seen before a restart).
    /// New messages get their audit line in the same commit, as `audit` says.
    fn accept(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        audit: AuditInbound,
    ) -> StoreResult<Vec<Option<InboxSeq>>>;
    /// Closes an inbox row: its event has been handled (`outcome` says how), so a restart does
    /// not hand it over again.
    fn inbox_done(&self, seq: InboxSeq, outcome: String) -> StoreResult<()>;
    /// The saved conversation of a person (empty when new).
    fn load_conversation(&self, who: WaId) -> StoreResult<Conversation>;
    /// Saves a conversation unless a higher version is already saved.
    fn save_conversation(&self, who: WaId, conversation: Conversation) -> StoreResult<()>;
    /// Puts a message in the durable queue; `false` when a job with its id is there already
    /// (queued, sent or failed), which then stays as it was.
    fn enqueue(&self, job: QueuedJob) -> StoreResult<bool>;
    /// Records that a message is about to leave (`sending`), before the request to Meta: after a
    /// crash it is not sent again blindly (see [`Store::unconfirmed_jobs`]).
    fn job_sending(&self, id: JobId) -> StoreResult<()>;
    /// Records, in one commit, that the digest `job` is about to leave (`sending`, as
    /// [`Store::job_sending`]) and that the jobs it folds (`job.folds`) are `folded` into it: they
    /// are never sent themselves, and a crash before the commit leaves them queued as they were.
    fn job_folding(&self, job: QueuedJob) -> StoreResult<()>;
    /// Messages left `sending` by a crash: the request may have reached Meta.
    fn unconfirmed_jobs(&self) -> StoreResult<Vec<QueuedJob>>;
    /// Of these jobs, whether each is still `sending` (no status named it since).
    fn still_sending(&self, ids: Vec<JobId>) -> StoreResult<Vec<bool>>;
    /// Updates a queued message (attempt count, a fallback body); it is queued again.
    fn update_job(&self, job: QueuedJob) -> StoreResult<()>;
    /// Meta accepted the message: out of the queue, wamid remembered with what it was about.
    fn job_sent(&self, job: QueuedJob, wamid: Wamid) -> StoreResult<()>;
    /// The message cannot be sent: out of the queue, kept with the reason.
    fn job_failed(&self, job: QueuedJob, code: Option<i64>, reason: String) -> StoreResult<()>;
    /// Messages still waiting, oldest first (after a restart); not the `sending` ones.
    fn pending_jobs(&self) -> StoreResult<Vec<QueuedJob>>;
    /// Who was sent a message at `since_ms` (epoch ms) or later and when, oldest first: a restart,
    /// or a replica taking over from another, counts them against the rate limits before its first
    /// send, so that no window across the handover goes over them.
    fn recent_sends(&self, since_ms: i64) -> StoreResult<Vec<(WaId, i64)>>;
    /// Counts one template send against the day's quota; `false` when the quota is used up.
    fn take_template_quota(&self, day: String, limit: u32) -> StoreResult<bool>;
    /// Saves a timer.
    fn save_timer(&self, timer: Timer) -> StoreResult<()>;
    /// Forgets a timer that fired.
    fn finish_timer(&self, id: String) -> StoreResult<()>;
    /// Timers not fired yet.
    fn pending_timers(&self) -> StoreResult<Vec<Timer>>;
    /// Writes an audit record.
    fn audit(&self, entry: AuditEntry) -> StoreResult<()>;
}

/// Folds what waits for one person into one message. WhatsApp lets a person receive about one
/// message every six seconds: paced one by one, a storm of pages or a busy war room would reach
/// them as a trickle of single messages, minutes late. Implemented by the application, which
/// knows what its messages say.
pub trait Fold: Send + Sync + 'static {
    /// Of one person's waiting jobs in one lane, oldest first (at least two, none tried yet), the
    /// message that says the first `count` of them; `None` (or a count under two) sends the first
    /// alone. Only a prefix folds, so that what a person reads keeps its order.
    fn fold(&self, waiting: &[&QueuedJob]) -> Option<Folded>;
}

/// A digest, and how many of the waiting jobs it says.
#[derive(Debug)]
pub struct Folded {
    /// The message sent in their place.
    pub message: OutboundMessage,
    /// How many jobs, from the front, it stands for.
    pub count: usize,
}

/// A reason a message could not be queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// `rate_limits.templates_per_day` is used up for today (UTC).
    #[error("template quota of {limit} per day is used up; the template `{template}` to {to} was not sent (raise platforms.whatsapp.rate_limits.templates_per_day or wait until 00:00 UTC)")]
    TemplateQuotaExceeded {
        /// The configured limit.
        limit: u32,
        /// The template refused.
        template: String,
        /// The masked recipient.
        to: String,
    },
    /// The store could not keep the message, so it was not accepted.
    #[error("the outbound queue could not store the message: {0}")]
    Store(String),
    /// The runtime is shutting down.
    #[error("the bot is shutting down")]
    Stopped,
}

/// Identifies a message once queued.
pub type Queued = Result<JobId, EnqueueError>;
