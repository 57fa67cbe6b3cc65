//! What happens inside the bot, as it happens: every message in and out, delivery ticks, flow runs
//! and their steps. The sandbox chat page streams it (server-sent events) and `aofctl simulate`
//! prints it. Only the sandbox transport and `simulate` create a [`Live`]; with the Cloud API nothing
//! is published, so message contents never leave the audit settings' control. Events are numbered;
//! [`history`] keeps them in the store so that the page survives a restart.

use aof_actors::model::ReplyButton;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

pub mod history;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many events a page that connects late (or reloads) is shown first.
pub const HISTORY: usize = 2_000;

/// How many events a slow subscriber may fall behind before it misses some (it is told how many).
const CHANNEL: usize = 4_096;

/// One message the sandbox "sent" (the sandbox transport records it), as the page and tests see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The recipient, `+` and digits.
    pub to: String,
    /// `text`, `template`, `interactive`, or `slack` for the notifier's Slack messages.
    pub kind: String,
    /// The template's name, for templates.
    pub template: Option<String>,
    /// The template's parameters, in order.
    pub parameters: Vec<String>,
    /// What the person would read (the message's `preview`).
    pub text: String,
    /// Reply buttons of an interactive message, or a template's quick replies.
    pub buttons: Vec<ReplyButton>,
    /// The group the message went to, when it was one copy of a group message.
    pub group: Option<String>,
    /// The wamid the sandbox answered with.
    pub wamid: String,
    /// When it was sent, RFC 3339 UTC.
    pub at: String,
}

/// One thing that happened, as the page and `simulate` see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// The bot sent a message (or a Slack message, `to: "slack"`).
    Outbound(OutboxItem),
    /// A person wrote to the bot (typed, or tapped a reply button).
    Inbound {
        /// Their number, `+` and digits.
        from: String,
        /// What they typed, or the button's title.
        text: String,
        /// The tapped button's id.
        button_id: Option<String>,
        /// The message's wamid.
        id: String,
        /// RFC 3339 UTC.
        at: String,
    },
    /// A delivery status of a message the bot sent: `sent`, `delivered`, `read`.
    Status {
        /// The message.
        wamid: String,
        /// The status.
        status: String,
        /// RFC 3339 UTC.
        at: String,
    },
    /// A flow run began.
    RunStarted {
        /// The run.
        run_id: String,
        /// The flow.
        flow: String,
        /// Who started it, when a person did.
        from: Option<String>,
        /// RFC 3339 UTC.
        at: String,
    },
    /// A step of a run ended.
    Step {
        /// The run.
        run_id: String,
        /// The flow the step belongs to (a sub-flow's name inside its parent's run).
        flow: String,
        /// The step's name.
        step: String,
        /// `ok`, `empty`, `skipped`, `answered` or `error`.
        outcome: String,
        /// How long it took.
        ms: u64,
        /// What went wrong, for `error`; what the person was told, for `answered`.
        error: Option<String>,
        /// The input the agent got, rendered (`null` when skipped).
        input: Value,
        /// What the agent returned.
        output: Value,
    },
    /// A flow run ended.
    RunFinished {
        /// The run.
        run_id: String,
        /// The flow.
        flow: String,
        /// `completed`, `empty`, `answered`, `failed`, `bad_input` or `missing`.
        outcome: String,
        /// How long the whole run took.
        ms: u64,
        /// RFC 3339 UTC.
        at: String,
    },
    /// A run ended, built-in ones (war-room traffic) included, and what it sends is in the send
    /// queue: `?wait=…` on the sandbox's inbound, the flow webhooks and the timers waits for it.
    Handled {
        /// The wamid of the person's message that started it; `None` for a webhook or a timer.
        message_id: Option<String>,
        /// The run it started.
        run_id: String,
        /// RFC 3339 UTC.
        at: String,
    },
    /// A call to the outside world (deployment, Slack, email, PagerDuty, health check) that a dry
    /// run recorded instead of making (`aofctl simulate`).
    External {
        /// The run that would have made it.
        run_id: String,
        /// What kind of call (`deploy webhook`, `slack`, `pagerduty`, …).
        what: String,
        /// Where it would have gone, credentials masked.
        target: String,
        /// What it would have carried, secrets masked.
        detail: Value,
        /// RFC 3339 UTC.
        at: String,
    },
}

/// An event with its number: numbers grow by one per event and go on across restarts
/// ([`history`]), so that a page that reconnects asks for what came after the last it saw.
#[derive(Clone, Debug)]
pub struct Numbered {
    /// The event's number.
    pub seq: u64,
    /// The event.
    pub event: LiveEvent,
}

/// The hub: publish from anywhere (any thread), subscribe to get the recent history and then every
/// new event. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Live {
    tx: broadcast::Sender<Numbered>,
    history: Arc<Mutex<History>>,
}

#[derive(Debug, Default)]
struct History {
    events: VecDeque<Numbered>,
    /// The number of the last event published.
    last: u64,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    /// A hub with no history.
    pub fn new() -> Self {
        Self::restored(Vec::new(), 0)
    }

    /// A hub that starts from `events` (oldest first, the newest [`HISTORY`] kept) and numbers on
    /// after `last`.
    pub fn restored(events: Vec<Numbered>, last: u64) -> Self {
        let skip = events.len().saturating_sub(HISTORY);
        let last = events.last().map_or(last, |e| e.seq.max(last));
        Self {
            tx: broadcast::channel(CHANNEL).0,
            history: Arc::new(Mutex::new(History {
                events: events.into_iter().skip(skip).collect(),
                last,
            })),
        }
    }

    /// Numbers the event, tells every subscriber and keeps it for late ones.
    pub fn publish(&self, event: LiveEvent) {
        let mut history = self.lock();
        history.last += 1;
        let numbered = Numbered {
            seq: history.last,
            event,
        };
        if history.events.len() >= HISTORY {
            history.events.pop_front();
        }
        history.events.push_back(numbered.clone());
        // Sent under the lock, so a subscriber never sees an event both in its history and live.
        let _ = self.tx.send(numbered);
    }

    /// The recent events, oldest first, and a receiver of every event after them.
    pub fn subscribe(&self) -> (Vec<Numbered>, broadcast::Receiver<Numbered>) {
        let history = self.lock();
        (
            history.events.iter().cloned().collect(),
            self.tx.subscribe(),
        )
    }

    /// The number of the last event published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().last
    }

    /// A panic while publishing cannot leave the history half-written.
    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Now, as the events carry it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(n: usize) -> LiveEvent {
        LiveEvent::Status {
            wamid: format!("wamid.{n}"),
            status: "read".into(),
            at: now(),
        }
    }

    fn wamid(numbered: &Numbered) -> &str {
        match &numbered.event {
            LiveEvent::Status { wamid, .. } => wamid,
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn a_late_subscriber_gets_the_history_then_what_follows() {
        let live = Live::new();
        live.publish(status(1));
        let (history, mut rx) = live.subscribe();
        live.publish(status(2));
        assert_eq!(history.iter().map(wamid).collect::<Vec<_>>(), ["wamid.1"]);
        assert_eq!(wamid(&rx.try_recv().expect("live event")), "wamid.2");
        assert!(rx.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn the_history_keeps_the_latest_events() {
        let live = Live::new();
        for n in 0..HISTORY + 3 {
            live.publish(status(n));
        }
        let (history, _) = live.subscribe();
        assert_eq!(history.len(), HISTORY);
        assert_eq!(wamid(&history[0]), "wamid.3");
        assert_eq!(history[0].seq, 4, "numbered from 1");
        assert_eq!(live.last_seq(), HISTORY as u64 + 3);
    }

    #[test]
    fn a_restored_hub_numbers_on_after_its_history() {
        let old = Live::new();
        old.publish(status(1));
        old.publish(status(2));
        let (history, _) = old.subscribe();
        let live = Live::restored(history, 0);
        live.publish(status(3));
        let (history, _) = live.subscribe();
        let seqs: Vec<u64> = history.iter().map(|n| n.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(Live::restored(Vec::new(), 41).last_seq(), 41);
    }

    #[test]
    fn events_serialize_with_their_type() {
        let json = serde_json::to_value(status(7)).expect("serializes");
        assert_eq!(json["type"], "status");
        assert_eq!(json["wamid"], "wamid.7");
    }
}
