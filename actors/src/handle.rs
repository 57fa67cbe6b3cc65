//! [`Handle`]: what the application holds to talk to the running actors (the HTTP handlers, the flow
//! engine's agents). Cheap to clone, `Send`.

use crate::ids::{InboxSeq, RunId, WaId};
use crate::model::{Expectation, InboundMessage, OutboundMessage, Timer};
use crate::ports::{EnqueueError, Queued, RecordsNotifier, StoreError};
use crate::rate_limiter::{Drain, GetQueueStats, QueueStats, RateLimiter};
use crate::router::{Expect, Origin, Router, RunFlow, SendTo, SessionCount};
use crate::scheduler::{FireNow, ListTimers, Schedule, Scheduler};
use crate::webhook::{Inbound, Keep, Resume, Webhook};
use actix::prelude::*;
use std::time::Duration;

/// Why a notification was not kept; the HTTP layer answers 503 so that Meta retries later.
#[derive(Debug, thiserror::Error)]
pub enum NotKept {
    /// The webhook's mailbox is full.
    #[error("the bot is busy; try again")]
    Busy,
    /// The store could not write it.
    #[error("the store could not keep it ({0}); try again")]
    Store(StoreError),
    /// The runtime is shutting down.
    #[error("the bot is shutting down; try again")]
    Stopped,
}

/// Addresses of the running actors, with one method per thing the application asks of them.
#[derive(Clone)]
pub struct Handle {
    pub(crate) webhook: Addr<Webhook>,
    pub(crate) router: Addr<Router>,
    pub(crate) limiter: Addr<RateLimiter>,
    pub(crate) scheduler: Addr<Scheduler>,
}

/// The webhook actor alone: how a verified notification is kept. A leading replica's keeper
/// routes what it kept at once; a follower's only keeps it in the shared inbox, and the leader
/// takes it from there. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct Keeper {
    pub(crate) webhook: Addr<Webhook>,
}

impl Keeper {
    /// Hands a verified notification to the webhook actor; answers once the store kept it.
    pub async fn inbound(&self, inbound: Inbound) -> Result<(), NotKept> {
        let (reply, kept) = tokio::sync::oneshot::channel();
        self.webhook
            .try_send(Keep { inbound, reply })
            .map_err(|_| NotKept::Busy)?;
        kept.await
            .map_err(|_| NotKept::Stopped)?
            .map_err(NotKept::Store)
    }
}

impl Handle {
    /// Hands a verified notification to the webhook actor; answers once the store kept it.
    pub async fn inbound(&self, inbound: Inbound) -> Result<(), NotKept> {
        self.keeper().inbound(inbound).await
    }

    /// The webhook actor, as a [`Keeper`].
    pub fn keeper(&self) -> Keeper {
        Keeper {
            webhook: self.webhook.clone(),
        }
    }

    /// Routes messages kept before a restart and not handled, in arrival order.
    pub fn resume(&self, messages: Vec<InboundMessage>) {
        self.webhook.do_send(Resume {
            messages,
            audit: true,
        });
    }

    /// Routes messages a follower kept (and audited), in arrival order.
    pub fn hand_over(&self, messages: Vec<InboundMessage>) {
        self.webhook.do_send(Resume {
            messages,
            audit: false,
        });
    }

    /// Queues a message for a person (through their session, so it lands in their context).
    pub async fn send(&self, message: OutboundMessage) -> Queued {
        self.router
            .send(SendTo(message))
            .await
            .unwrap_or(Err(EnqueueError::Stopped))
    }

    /// Registers a reply that a flow waits for from `who`.
    pub fn expect(&self, who: WaId, expectation: Expectation) {
        self.router.do_send(Expect { who, expectation });
    }

    /// Runs a flow with no person behind it (a webhook); `inbox` is the row that asked for it,
    /// closed when the run ended.
    pub fn run_flow(
        &self,
        run_id: RunId,
        flow: String,
        input: serde_json::Value,
        inbox: Option<InboxSeq>,
    ) {
        self.router.do_send(RunFlow {
            run_id,
            flow,
            input,
            records: None,
            origin: inbox.map(Origin::Inbox),
        });
    }

    /// Runs a flow like [`Handle::run_flow`]; the receiver gets the ids of the first records it
    /// creates (`{"alert_id": …}`), or `{}` when it ends without creating one.
    pub fn run_flow_reporting(
        &self,
        run_id: RunId,
        flow: String,
        input: serde_json::Value,
        inbox: Option<InboxSeq>,
    ) -> tokio::sync::oneshot::Receiver<serde_json::Value> {
        let (records, receiver) = RecordsNotifier::new();
        self.router.do_send(RunFlow {
            run_id,
            flow,
            input,
            records: Some(records),
            origin: inbox.map(Origin::Inbox),
        });
        receiver
    }

    /// Stores a timer that runs `flow` after `delay`; its id (`id` when given: scheduling the same
    /// id again changes nothing while it is pending).
    pub async fn schedule(
        &self,
        id: Option<String>,
        flow: String,
        input: serde_json::Value,
        delay: Duration,
    ) -> Result<String, StoreError> {
        self.scheduler
            .send(Schedule {
                id,
                flow,
                input,
                delay,
            })
            .await
            .map_err(|e| StoreError(e.to_string()))?
    }

    /// Fires timers now (one, or all); how many fired.
    pub async fn fire_timers(&self, id: Option<String>) -> usize {
        self.scheduler.send(FireNow { id }).await.unwrap_or(0)
    }

    /// The timers not fired yet.
    pub async fn timers(&self) -> Vec<Timer> {
        self.scheduler.send(ListTimers).await.unwrap_or_default()
    }

    /// Stops handing messages to the sender and waits, at most `grace`, for the ones in flight to
    /// get Meta's answer; how many were still in flight when it returned. What is still queued
    /// stays in the store for the next start.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let in_flight = self.limiter.send(Drain).await.unwrap_or(0);
            if in_flight == 0 || tokio::time::Instant::now() >= deadline {
                return in_flight;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The outbound queue's depth.
    pub async fn queue_stats(&self) -> QueueStats {
        self.limiter.send(GetQueueStats).await.unwrap_or_default()
    }

    /// How many sessions are alive.
    pub async fn sessions(&self) -> usize {
        self.router.send(SessionCount).await.unwrap_or(0)
    }
}
