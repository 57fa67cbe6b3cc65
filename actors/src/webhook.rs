//! The Webhook actor: the first stop of every verified notification. It refuses numbers outside
//! the allow-list and messages too old to act on, has the store keep the rest before Meta is told
//! (a redelivery, even of a message seen before a restart, is dropped there), writes the audit
//! log, and hands each new message to the router in the order Meta sent it.

use crate::ids::WaId;
use crate::model::{AuditEntry, InboundKind, InboundMessage, StatusUpdate};
use crate::ports::{AuditInbound, Store, StoreError};
use crate::router::RouteInbound;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// One verified notification, parsed: its messages and statuses in Meta's order.
#[derive(Debug)]
pub struct Inbound {
    /// Messages people sent.
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses of messages the bot sent.
    pub statuses: Vec<StatusUpdate>,
}

/// Asks the webhook to keep a notification and act on it. `reply` is told once the store kept it
/// (then Meta may be told 200), or that it could not.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Keep {
    /// The notification.
    pub inbound: Inbound,
    /// Told whether the store kept it.
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Messages the store kept and nobody handled yet, routed in arrival order: left by a restart (or
/// the replica that led before; audited `resumed`), or kept by a follower since (`audit: false`:
/// the follower audited them as it kept them).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Resume {
    /// The messages, with their inbox rows.
    pub messages: Vec<InboundMessage>,
    /// Whether each gets a `resumed` audit line.
    pub audit: bool,
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
    /// Messages stamped longer ago than this are logged and not acted on.
    pub max_age: std::time::Duration,
    /// Reactions acted on as commands, by emoji (see [`reaction_key`]); empty: none are.
    pub reactions: HashMap<String, String>,
}

/// An emoji as a key of [`WebhookSettings::reactions`]: without skin tones and the emoji
/// variation selector, so that 👍🏽 and 👍 mean the same command.
pub fn reaction_key(emoji: &str) -> String {
    emoji
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}'))
        .collect()
}

/// A notification the store kept (or could not), with whoever waits for its answer.
struct Kept {
    messages: Vec<InboundMessage>,
    rows: Result<Vec<Option<crate::ids::InboxSeq>>, StoreError>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Filters, keeps and forwards inbound messages.
pub struct Webhook {
    settings: WebhookSettings,
    store: Arc<dyn Store>,
    /// Where new messages go; `None` on a replica that does not lead: it only keeps them, and
    /// the leader takes them from the shared inbox.
    router: Option<Recipient<RouteInbound>>,
    /// Number given to the next notification, in arrival order.
    next: u64,
    /// Number of the next notification to forward: the store answers in arrival order, but each
    /// answer is its own future, so they are put back in order before anything is routed.
    forward_next: u64,
    /// Answers that arrived before an earlier notification's.
    kept: std::collections::BTreeMap<u64, Kept>,
}

impl Webhook {
    /// A webhook that forwards new messages to `router` (`None`: keeps them only).
    pub fn new(
        settings: WebhookSettings,
        store: Arc<dyn Store>,
        router: Option<Recipient<RouteInbound>>,
    ) -> Self {
        Webhook {
            settings,
            store,
            router,
            next: 0,
            forward_next: 0,
            kept: Default::default(),
        }
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

    /// The message to act on, if any: not too old, from an allowed number, and a person talking to
    /// the bot (a reaction the config maps to a command becomes that command, quoting the message
    /// it reacts to).
    fn admit(&self, mut message: InboundMessage) -> Option<InboundMessage> {
        if self.too_old(&message) {
            return None;
        }
        if !self.is_allowed(&message.from) {
            tracing::warn!(wa = %message.from.masked(), "message from a number outside allowed_numbers ignored");
            metrics::counter!("aof_inbound_rejected_total").increment(1);
            self.audit("rejected_number", &message);
            return None;
        }
        let command = match &message.kind {
            InboundKind::Reaction => {
                let emoji = reaction_key(message.text.as_deref().unwrap_or_default());
                self.settings.reactions.get(&emoji).cloned()
            }
            InboundKind::Notice(_) => None,
            _ => return Some(message),
        };
        match command {
            Some(command) => {
                message.text = Some(command);
                Some(message)
            }
            None => {
                self.not_conversation(&message);
                None
            }
        }
    }

    /// A message that is WhatsApp telling the bot something, not a person asking: logged (a
    /// system notice at INFO), counted and audited; never answered.
    fn not_conversation(&self, message: &InboundMessage) {
        let kind = message.kind.label();
        if kind == "system" {
            tracing::info!(wa = %message.from.masked(), notice = message.text.as_deref().unwrap_or("unknown"),
                "WhatsApp reports a change for this person (number or identity)");
        } else {
            tracing::debug!(wa = %message.from.masked(), kind, "not a person talking to the bot; not answered");
        }
        metrics::counter!("aof_inbound_not_conversation_total", "type" => kind.to_owned())
            .increment(1);
        self.audit("not_conversation", message);
    }

    fn audit(&self, kind: &str, message: &InboundMessage) {
        if !self.settings.audit {
            return;
        }
        let entry = AuditEntry::of_message(kind, message, self.settings.include_content);
        let write = self.store.audit(entry);
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::error!(error = %e, "audit log write failed");
            }
        });
    }

    /// The `inbound` audit line of kept messages, written with them.
    fn audit_inbound(&self) -> AuditInbound {
        if self.settings.audit {
            AuditInbound::Yes {
                with_text: self.settings.include_content,
            }
        } else {
            AuditInbound::No
        }
    }

    /// Has the store keep one notification. The store's writer commits whatever is queued as one
    /// transaction, so notifications arriving together share a commit without waiting here for
    /// each other.
    fn keep(
        &mut self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        reply: oneshot::Sender<Result<(), StoreError>>,
        ctx: &mut Context<Self>,
    ) {
        let number = self.next;
        self.next += 1;
        let rows = self
            .store
            .accept(messages.clone(), statuses, self.audit_inbound());
        ctx.spawn(rows.into_actor(self).map(move |rows, act, _| {
            act.kept.insert(
                number,
                Kept {
                    messages,
                    rows,
                    reply,
                },
            );
            act.forward_in_order();
        }));
    }

    /// Forwards the new messages of every kept notification whose turn it is, and answers their
    /// senders.
    fn forward_in_order(&mut self) {
        while let Some(kept) = self.kept.remove(&self.forward_next) {
            self.forward_next += 1;
            match kept.rows {
                Ok(rows) => {
                    for (mut message, row) in kept.messages.into_iter().zip(rows) {
                        match row {
                            Some(seq) => {
                                message.inbox = Some(seq);
                                self.forward(message);
                            }
                            None => metrics::counter!("aof_inbound_duplicates_total").increment(1),
                        }
                    }
                    drop(kept.reply.send(Ok(())));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not keep a notification; Meta is asked to retry");
                    metrics::counter!("aof_inbound_store_failures_total").increment(1);
                    drop(kept.reply.send(Err(e)));
                }
            }
        }
    }

    fn forward(&self, message: InboundMessage) {
        metrics::counter!("aof_inbound_messages_total", "type" => message.kind.label().to_owned())
            .increment(1);
        match &self.router {
            Some(router) => router.do_send(RouteInbound(message)),
            None => metrics::counter!("aof_inbound_kept_for_leader_total").increment(1),
        }
    }
}

impl Actor for Webhook {
    type Context = Context<Self>;
}

impl Handler<Keep> for Webhook {
    type Result = ();

    fn handle(
        &mut self,
        Keep {
            inbound: msg,
            reply,
        }: Keep,
        ctx: &mut Context<Self>,
    ) {
        for status in &msg.statuses {
            metrics::counter!("aof_statuses_total", "status" => status.state.as_str()).increment(1);
        }
        let messages = msg.messages.into_iter().filter_map(|m| self.admit(m));
        self.keep(messages.collect(), msg.statuses, reply, ctx);
    }
}

impl Handler<Resume> for Webhook {
    type Result = ();

    fn handle(&mut self, Resume { messages, audit }: Resume, _: &mut Context<Self>) {
        for message in messages {
            if audit {
                self.audit("resumed", &message);
            }
            self.forward(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::testing::Recorder;
    use std::time::Duration;

    fn message(id: &str, from: &str) -> InboundMessage {
        InboundMessage::text(id, WaId::parse(from).unwrap(), "HELP")
    }

    #[actix::test]
    async fn only_allowed_messages_seen_for_the_first_time_are_kept_and_routed() {
        let (router, routed) = Recorder::<RouteInbound>::new();
        let routed = move || -> Vec<(String, bool)> {
            let routed = routed.lock().unwrap();
            routed
                .iter()
                .map(|r| (r.0.id.0.clone(), r.0.inbox.is_some()))
                .collect()
        };
        let store = MemoryStore::new();
        // Kept before the restart: the store knows it.
        store
            .accept(
                vec![message("wamid.old", "15551234567")],
                vec![],
                AuditInbound::No,
            )
            .await
            .unwrap();
        let settings = WebhookSettings {
            allowed: [WaId::parse("15551234567").unwrap()].into(),
            audit: true,
            include_content: false,
            max_age: Duration::from_secs(7 * 86_400),
            reactions: HashMap::new(),
        };
        let webhook = Webhook::new(
            settings,
            Arc::new(store.clone()),
            Some(router.start().recipient()),
        )
        .start();
        let keep = |ids: &[(&str, &str)]| {
            let (reply, kept) = oneshot::channel();
            let inbound = Inbound {
                messages: ids.iter().map(|(id, from)| message(id, from)).collect(),
                statuses: vec![],
            };
            webhook.do_send(Keep { inbound, reply });
            kept
        };
        let alice = "15551234567";
        let first = keep(&[("wamid.1", alice), ("wamid.1", alice), ("wamid.old", alice)]);
        let second = keep(&[("wamid.2", "15559990000"), ("wamid.3", alice)]);
        let third = keep(&[("wamid.1", alice)]);
        for kept in [first, second, third] {
            assert!(
                kept.await.unwrap().is_ok(),
                "each notification is answered once kept"
            );
        }
        // The router's mailbox is served once the webhook's answers are in.
        actix::clock::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            routed(),
            [("wamid.1".to_owned(), true), ("wamid.3".to_owned(), true)],
            "new, allowed messages are routed once each, with their inbox row"
        );
        let contents = store.snapshot();
        let kept: Vec<&str> = contents.inbox.iter().map(|r| r.0 .0.as_str()).collect();
        assert_eq!(kept, ["wamid.old", "wamid.1", "wamid.3"]);
        assert!(
            contents.audit.iter().any(|a| a.kind == "rejected_number"),
            "{:?}",
            contents.audit
        );
        assert!(
            contents
                .audit
                .iter()
                .all(|a| a.detail.get("text").is_none()),
            "no content unless allowed"
        );
    }

    #[actix::test]
    async fn messages_are_routed_and_answered_in_arrival_order_when_the_store_answers_out_of_it() {
        let (router, routed) = Recorder::<RouteInbound>::new();
        let store = MemoryStore::new();
        // The first notification's commit is slow; the second's is not.
        store.answer_late("wamid.first", Duration::from_millis(100));
        let settings = WebhookSettings {
            allowed: HashSet::new(),
            audit: false,
            include_content: false,
            max_age: Duration::from_secs(7 * 86_400),
            reactions: HashMap::new(),
        };
        let webhook =
            Webhook::new(settings, Arc::new(store), Some(router.start().recipient())).start();
        let keep = |id: &str| {
            let (reply, kept) = oneshot::channel();
            let inbound = Inbound {
                messages: vec![message(id, "15551234567")],
                statuses: vec![],
            };
            webhook.do_send(Keep { inbound, reply });
            kept
        };
        let (first, mut second) = (keep("wamid.first"), keep("wamid.second"));
        actix::clock::sleep(Duration::from_millis(50)).await;
        assert!(
            second.try_recv().is_err(),
            "the second is not answered before the first"
        );
        assert!(
            routed.lock().unwrap().is_empty(),
            "nothing routed out of order"
        );
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        actix::clock::sleep(Duration::from_millis(20)).await;
        let order: Vec<String> = routed
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.id.0.clone())
            .collect();
        assert_eq!(order, ["wamid.first", "wamid.second"]);
    }
}
