//! The Webhook actor: the first stop of every verified notification. It drops redeliveries (by
//! message id, also across restarts), refuses numbers outside the allow-list, writes the audit log,
//! records delivery statuses, and hands each new message to the router in the order Meta sent it.

use crate::ids::{WaId, Wamid};
use crate::model::{AuditEntry, InboundMessage, StatusUpdate};
use crate::ports::Store;
use crate::router::RouteInbound;
use actix::prelude::*;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// One verified notification, parsed: its messages and statuses in Meta's order.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Inbound {
    /// Messages people sent.
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses of messages the bot sent.
    pub statuses: Vec<StatusUpdate>,
}

/// What the webhook needs from the config.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Numbers allowed to talk to the bot; empty allows everyone.
    pub allowed: HashSet<WaId>,
    /// Whether to write the audit log.
    pub audit: bool,
    /// Whether the audit log may hold message texts.
    pub include_content: bool,
    /// How many recent message ids to remember in memory before asking the store.
    pub recent_ids: usize,
}

/// Deduplicates, filters and forwards inbound messages.
pub struct Webhook {
    settings: WebhookSettings,
    store: Arc<dyn Store>,
    router: Recipient<RouteInbound>,
    recent: HashSet<Wamid>,
    recent_order: VecDeque<Wamid>,
    /// Sequence number of the next batch that goes to the store for its dedup check.
    next_seq: u64,
    /// The next sequence number to forward.
    released: u64,
    /// Checked batches (new messages only) waiting for an earlier batch's check.
    checked: BTreeMap<u64, Vec<InboundMessage>>,
}

impl Webhook {
    /// A webhook that forwards new messages to `router`.
    pub fn new(
        settings: WebhookSettings,
        store: Arc<dyn Store>,
        router: Recipient<RouteInbound>,
    ) -> Self {
        Webhook {
            settings,
            store,
            router,
            recent: HashSet::new(),
            recent_order: VecDeque::new(),
            next_seq: 0,
            released: 0,
            checked: BTreeMap::new(),
        }
    }

    /// Remembers an id in memory; `false` if it was already there (a redelivery in flight).
    fn remember(&mut self, id: &Wamid) -> bool {
        if !self.recent.insert(id.clone()) {
            return false;
        }
        self.recent_order.push_back(id.clone());
        while self.recent_order.len() > self.settings.recent_ids.max(1) {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        true
    }

    fn is_allowed(&self, who: &WaId) -> bool {
        self.settings.allowed.is_empty() || self.settings.allowed.contains(who)
    }

    fn audit(&self, kind: &str, message: &InboundMessage) {
        if !self.settings.audit {
            return;
        }
        let mut detail = serde_json::json!({ "id": message.id, "type": message.kind.label() });
        if self.settings.include_content {
            detail["text"] = serde_json::json!(message.text);
        }
        let entry = AuditEntry {
            kind: kind.into(),
            who: Some(message.from.masked()),
            detail,
        };
        let write = self.store.audit(entry);
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::error!(error = %e, "audit log write failed");
            }
        });
    }
}

impl Actor for Webhook {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Webhook {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        for status in msg.statuses {
            metrics::counter!("aof_statuses_total", "status" => status.state.as_str()).increment(1);
            let write = self.store.record_status(status);
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::error!(error = %e, "status write failed");
                }
            });
        }
        let mut fresh = Vec::with_capacity(msg.messages.len());
        for message in msg.messages {
            if !self.is_allowed(&message.from) {
                tracing::warn!(wa = %message.from.masked(), "message from a number outside allowed_numbers ignored");
                metrics::counter!("aof_inbound_rejected_total").increment(1);
                self.audit("rejected_number", &message);
                continue;
            }
            if self.remember(&message.id) {
                fresh.push(message);
            } else {
                metrics::counter!("aof_inbound_duplicates_total").increment(1);
            }
        }
        if fresh.is_empty() {
            return;
        }
        // Checks run concurrently, but their results are released in arrival order, so that a
        // person's messages reach their session in the order they were sent.
        let seq = self.next_seq;
        self.next_seq += 1;
        let ids = fresh.iter().map(|m| m.id.clone()).collect();
        let check = self.store.first_seen(ids);
        ctx.spawn(check.into_actor(self).map(move |seen, act, _| {
            let seen = seen.unwrap_or_else(|e| {
                // Processing twice is better than losing a page: fail open.
                tracing::error!(error = %e, "dedup check failed; processing the messages");
                vec![true; fresh.len()]
            });
            let new = fresh
                .into_iter()
                .zip(seen)
                .filter_map(|(m, first)| first.then_some(m));
            act.checked.insert(seq, new.collect());
            act.release_in_order();
        }));
    }
}

impl Webhook {
    /// Forwards every checked batch whose predecessors have all been forwarded.
    fn release_in_order(&mut self) {
        while let Some(batch) = self.checked.remove(&self.released) {
            self.released += 1;
            for message in batch {
                metrics::counter!("aof_inbound_messages_total", "type" => message.kind.label().to_owned())
                    .increment(1);
                self.audit("inbound", &message);
                self.router.do_send(RouteInbound(message));
            }
        }
    }
}
