//! The sandbox transport (`transport: sandbox`): nothing leaves the machine. Every send is
//! recorded in a [`SandboxOutbox`] that the HTTP layer shows and tests read, and answered with a
//! made-up wamid so that statuses and replies can be simulated against it.

pub use crate::live::OutboxItem;
use aof_actors::model::{OutboundBody, OutboundMessage, ReplyButton};
use aof_actors::ports::{SendError, Transport};
use aof_actors::{JobId, Wamid};
use futures_util::future::LocalBoxFuture;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many sends the outbox keeps: enough for a load test's tail, bounded so a long-running
/// sandbox does not grow without end.
pub const OUTBOX_CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct OutboxState {
    items: VecDeque<OutboxItem>,
    /// Sends so far, never reset: wamids stay unique even after items were dropped.
    sent: u64,
}

/// The shared record of sandbox sends; cheap to clone, `Send + Sync` so HTTP workers can read it
/// while the sender's arbiter writes.
#[derive(Clone, Debug, Default)]
pub struct SandboxOutbox {
    inner: Arc<Mutex<OutboxState>>,
    /// Told of every send (the sandbox page's live view).
    live: Option<crate::live::Live>,
}

impl SandboxOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty outbox that also publishes every send to `live`.
    pub fn with_live(live: crate::live::Live) -> Self {
        Self {
            live: Some(live),
            ..Self::default()
        }
    }

    /// The recorded sends, oldest first (at most [`OUTBOX_CAPACITY`]).
    pub fn list(&self) -> Vec<OutboxItem> {
        self.lock().items.iter().cloned().collect()
    }

    /// A recorded send by its wamid (searched newest first: statuses and replies are about
    /// recent messages).
    pub fn get(&self, wamid: &str) -> Option<OutboxItem> {
        let state = self.lock();
        state.items.iter().rev().find(|i| i.wamid == wamid).cloned()
    }

    /// Starts from what an earlier run of the sandbox sent (`items`, oldest first; the newest
    /// [`OUTBOX_CAPACITY`] kept) and numbers wamids on after `last`, so that the statuses and button
    /// taps of a page reloaded after a restart still find their messages.
    pub fn restore(&self, items: Vec<OutboxItem>, last: u64) {
        let mut state = self.lock();
        let numbered = |item: &OutboxItem| {
            item.wamid
                .strip_prefix("wamid.sandbox.")
                .and_then(|n| n.parse::<u64>().ok())
        };
        state.sent = items.iter().filter_map(numbered).fold(last, u64::max);
        let skip = items.len().saturating_sub(OUTBOX_CAPACITY);
        state.items = items.into_iter().skip(skip).collect();
    }

    /// Forgets the recorded sends (wamids keep counting).
    pub fn clear(&self) {
        self.lock().items.clear();
    }

    /// Records a send, numbering its wamid; drops the oldest item when full. `quick_replies` are
    /// the buttons of the template it sends, as Meta would show them.
    fn record(&self, message: &OutboundMessage, quick_replies: &[String]) -> Wamid {
        self.push(|wamid| item(message, wamid, quick_replies))
    }

    /// Records a message to Slack (the sandbox's stand-in for a Slack incoming webhook), so the
    /// notifier's messages show beside the WhatsApp ones.
    pub fn record_slack(&self, text: &str) -> Wamid {
        self.push(|wamid| OutboxItem {
            to: "slack".into(),
            kind: "slack".into(),
            template: None,
            parameters: Vec::new(),
            text: text.to_owned(),
            buttons: Vec::new(),
            group: None,
            wamid,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    fn push(&self, make: impl FnOnce(String) -> OutboxItem) -> Wamid {
        let mut state = self.lock();
        state.sent += 1;
        let wamid = format!("wamid.sandbox.{}", state.sent);
        if state.items.len() >= OUTBOX_CAPACITY {
            state.items.pop_front();
        }
        let item = make(wamid.clone());
        if let Some(live) = &self.live {
            live.publish(crate::live::LiveEvent::Outbound(item.clone()));
        }
        state.items.push_back(item);
        Wamid(wamid)
    }

    /// A panic while holding the lock cannot leave the list half-written, so a poisoned lock is
    /// still good to use.
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn item(message: &OutboundMessage, wamid: String, quick_replies: &[String]) -> OutboxItem {
    let (template, parameters, buttons) = match &message.body {
        OutboundBody::Text { .. } => (None, Vec::new(), Vec::new()),
        OutboundBody::Template {
            name, parameters, ..
        } => {
            let buttons = quick_replies
                .iter()
                .map(|title| ReplyButton {
                    id: title.clone(),
                    title: title.clone(),
                })
                .collect();
            (Some(name.clone()), parameters.clone(), buttons)
        }
        OutboundBody::Interactive { buttons, .. } => (None, Vec::new(), buttons.clone()),
    };
    OutboxItem {
        to: message.to.e164(),
        kind: message.body.kind().to_string(),
        template,
        parameters,
        text: message.preview.clone(),
        buttons,
        group: message.group.clone(),
        wamid,
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// A [`Transport`] that records instead of sending; it never fails.
#[derive(Clone, Debug)]
pub struct Sandbox {
    outbox: SandboxOutbox,
    /// Each template's quick-reply buttons, by template name.
    quick_replies: std::collections::BTreeMap<String, Vec<String>>,
}

impl Sandbox {
    /// A sandbox writing to `outbox` (share a clone with whoever shows it).
    pub fn new(outbox: SandboxOutbox) -> Self {
        Self {
            outbox,
            quick_replies: Default::default(),
        }
    }

    /// Shows each template's quick replies (`templates.NAME.quick_replies`) as its buttons.
    pub fn with_templates(
        mut self,
        templates: &std::collections::BTreeMap<String, crate::config::TemplateDef>,
    ) -> Self {
        self.quick_replies = templates
            .iter()
            .filter(|(_, def)| !def.quick_replies.is_empty())
            .map(|(name, def)| (name.clone(), def.quick_replies.clone()))
            .collect();
        self
    }

    /// The outbox it writes to.
    pub fn outbox(&self) -> &SandboxOutbox {
        &self.outbox
    }
}

impl Transport for Sandbox {
    fn send(
        &self,
        _: &JobId,
        message: &OutboundMessage,
    ) -> LocalBoxFuture<'static, Result<Wamid, SendError>> {
        let quick_replies = match &message.body {
            OutboundBody::Template { name, .. } => self.quick_replies.get(name),
            _ => None,
        };
        let wamid = self
            .outbox
            .record(message, quick_replies.map_or(&[], Vec::as_slice));
        tracing::debug!(%wamid, kind = message.body.kind(), wa = %message.to.masked(), "sandbox send recorded");
        Box::pin(futures_util::future::ready(Ok(wamid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aof_actors::model::Lane;
    use aof_actors::WaId;

    fn message(body: OutboundBody, preview: &str) -> OutboundMessage {
        let to = WaId::parse("15551234567").expect("valid number");
        OutboundMessage::new(to, body, preview.into(), Lane::Reply)
    }

    #[actix_web::test]
    async fn the_sandbox_records_what_it_sent_and_numbers_wamids() {
        let outbox = SandboxOutbox::new();
        let sandbox = Sandbox::new(outbox.clone());
        let text = message(OutboundBody::Text { body: "hi".into() }, "hi");
        let template = message(
            OutboundBody::Template {
                name: "oncall_alert".into(),
                language: "en_US".into(),
                parameters: vec!["critical".into(), "HighErrorRate".into()],
            },
            "critical: HighErrorRate",
        );
        let buttons = vec![ReplyButton {
            id: "ack:PD:1".into(),
            title: "Acknowledge".into(),
        }];
        let interactive = message(
            OutboundBody::Interactive {
                body: "ack?".into(),
                buttons: buttons.clone(),
            },
            "ack?",
        );

        assert_eq!(
            sandbox
                .send(&JobId("job_1".into()), &text)
                .await
                .expect("sent")
                .as_str(),
            "wamid.sandbox.1"
        );
        assert_eq!(
            sandbox
                .send(&JobId("job_1".into()), &template)
                .await
                .expect("sent")
                .as_str(),
            "wamid.sandbox.2"
        );
        assert_eq!(
            sandbox
                .send(&JobId("job_1".into()), &interactive)
                .await
                .expect("sent")
                .as_str(),
            "wamid.sandbox.3"
        );

        let items = outbox.list();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].to, "+15551234567");
        assert_eq!(
            (items[0].kind.as_str(), items[0].text.as_str()),
            ("text", "hi")
        );
        assert_eq!(items[1].kind, "template");
        assert_eq!(items[1].template.as_deref(), Some("oncall_alert"));
        assert_eq!(items[1].parameters, ["critical", "HighErrorRate"]);
        assert_eq!(items[1].text, "critical: HighErrorRate");
        assert_eq!(items[2].kind, "interactive");
        assert_eq!(items[2].buttons, buttons);
        assert_eq!(items[2].wamid, "wamid.sandbox.3");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&items[2].at).is_ok(),
            "{}",
            items[2].at
        );
        assert!(items[2].at.ends_with('Z'));

        let json = serde_json::to_value(&items[2]).expect("serializes");
        assert_eq!(json["buttons"][0]["id"], "ack:PD:1");
    }

    #[test]
    fn the_outbox_keeps_only_the_latest_items() {
        let outbox = SandboxOutbox::new();
        let text = message(OutboundBody::Text { body: "x".into() }, "x");
        for _ in 0..OUTBOX_CAPACITY + 5 {
            outbox.record(&text, &[]);
        }
        let items = outbox.list();
        assert_eq!(items.len(), OUTBOX_CAPACITY);
        assert_eq!(items[0].wamid, "wamid.sandbox.6");
        outbox.clear();
        assert!(outbox.list().is_empty());
        assert_eq!(
            outbox.record(&text, &[]).as_str(),
            format!("wamid.sandbox.{}", OUTBOX_CAPACITY + 6)
        );
    }
}
