//! The Webhook actor: the first stop of every verified notification. It drops redeliveries (by
//! message id, also across restarts), refuses numbers outside the allow-list, writes the audit log,
//! records delivery statuses, and hands each new message to the router in the order Meta sent it.

use crate::ids::{WaId, Wamid};
use crate::model::{AuditEntry, InboundMessage, StatusUpdate};
use crate::ports::Store;
use crate::router::RouteInbound;
use actix::prelude::*;
use std::collections::{HashSet, VecDeque};
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
    /// Messages stamped longer ago than this are logged and not acted on.
    pub max_age: std::time::Duration,
}

/// Deduplicates, filters and forwards inbound messages.
pub struct Webhook {
    settings: WebhookSettings,
    store: Arc<dyn Store>,
    router: Recipient<RouteInbound>,
    recent: HashSet<Wamid>,
    recent_order: VecDeque<Wamid>,
    /// Messages waiting for the store's dedup check, in arrival order.
    unchecked: Vec<InboundMessage>,
    /// Whether a check is running; one at a time, so batches stay in order and the store sees
    /// everything that arrived meanwhile as one batch.
    checking: bool,
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
            unchecked: Vec::new(),
            checking: false,
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

    /// Whether Meta stamped `message` longer ago than `max_age` (a replay of a backlog, not a
    /// person waiting): logged, counted and audited instead. An unreadable stamp (0) is not old.
    fn too_old(&self, message: &InboundMessage) -> bool {
        let age_s = crate::model::now_ms() / 1000 - message.timestamp;
        if message.timestamp <= 0 || age_s <= self.settings.max_age.as_secs() as i64 {
            return false;
        }
        tracing::warn!(wa = %message.from.masked(), id = %message.id.0, age_s,
            "message older than max_message_age_secs ignored");
        metrics::counter!("aof_inbound_too_old_total").increment(1);
        self.audit("too_old", message);
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
            if self.too_old(&message) {
                continue;
            }
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
        self.unchecked.extend(fresh);
        self.check(ctx);
    }
}

impl Webhook {
    /// Asks the store which waiting messages are new (ids seen before a restart are not), then
    /// forwards those and checks whatever arrived meanwhile.
    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.checking || self.unchecked.is_empty() {
            return;
        }
        self.checking = true;
        let batch = std::mem::take(&mut self.unchecked);
        let ids = batch.iter().map(|m| m.id.clone()).collect();
        let check = self.store.first_seen(ids);
        ctx.spawn(check.into_actor(self).map(move |seen, act, ctx| {
            let seen = seen.unwrap_or_else(|e| {
                // Processing twice is better than losing a page: fail open.
                tracing::error!(error = %e, "dedup check failed; processing the messages");
                vec![true; batch.len()]
            });
            for (message, first) in batch.into_iter().zip(seen) {
                if first {
                    act.forward(message);
                }
            }
            act.checking = false;
            act.check(ctx);
        }));
    }

    fn forward(&self, message: InboundMessage) {
        metrics::counter!("aof_inbound_messages_total", "type" => message.kind.label().to_owned())
            .increment(1);
        self.audit("inbound", &message);
        self.router.do_send(RouteInbound(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::model::InboundKind;
    use crate::testing::Recorder;
    use std::time::{Duration, Instant};

    fn message(id: &str, from: &str) -> InboundMessage {
        InboundMessage {
            id: Wamid(id.into()),
            from: WaId::parse(from).unwrap(),
            name: None,
            timestamp: 0,
            kind: InboundKind::Text,
            text: Some("HELP".into()),
            context_id: None,
        }
    }

    #[actix::test]
    async fn only_allowed_messages_seen_for_the_first_time_are_routed() {
        let (router, routed) = Recorder::<RouteInbound>::new();
        let ids = || -> Vec<String> {
            routed
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.0.id.0.clone())
                .collect()
        };
        let store = MemoryStore::new();
        // Seen before the restart: the store knows it, the fresh in-memory set does not.
        store
            .first_seen(vec![Wamid("wamid.old".into())])
            .await
            .unwrap();
        let settings = WebhookSettings {
            allowed: [WaId::parse("15551234567").unwrap()].into(),
            audit: true,
            include_content: false,
            recent_ids: 2,
            max_age: Duration::from_secs(7 * 86_400),
        };
        let webhook = Webhook::new(
            settings,
            Arc::new(store.clone()),
            router.start().recipient(),
        )
        .start();
        let batch = |ids: &[(&str, &str)]| Inbound {
            messages: ids.iter().map(|(id, from)| message(id, from)).collect(),
            statuses: vec![],
        };
        let alice = "15551234567";
        webhook.do_send(batch(&[
            ("wamid.1", alice),
            ("wamid.1", alice),
            ("wamid.old", alice),
        ]));
        webhook.do_send(batch(&[("wamid.2", "15559990000"), ("wamid.3", alice)]));
        // Forgotten by the in-memory set (it keeps two), still known to the store.
        webhook.do_send(batch(&[("wamid.1", alice)]));

        let deadline = Instant::now() + Duration::from_secs(5);
        while ids().len() < 2 && Instant::now() < deadline {
            actix::clock::sleep(Duration::from_millis(5)).await;
        }
        // Whatever else was going to be routed has had its turn once an empty batch went through.
        webhook.send(batch(&[])).await.unwrap();
        actix::clock::sleep(Duration::from_millis(50)).await;
        assert_eq!(ids(), ["wamid.1", "wamid.3"]);
        let audit = store.snapshot().audit;
        assert!(
            audit.iter().any(|a| a.kind == "rejected_number"),
            "{audit:?}"
        );
        assert!(
            audit.iter().all(|a| a.detail.get("text").is_none()),
            "no content unless allowed"
        );
    }
}
