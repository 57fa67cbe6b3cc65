//! [`Handle`]: what the application holds to talk to the running actors (the HTTP handlers, the flow
//! engine's agents). Cheap to clone, `Send`.

use crate::ids::{RunId, WaId};
use crate::model::{Expectation, OutboundMessage, Timer};
use crate::ports::{EnqueueError, Queued, RecordsNotifier, StoreError};
use crate::rate_limiter::{GetQueueStats, QueueStats, RateLimiter};
use crate::router::{Expect, Router, RunFlow, SendTo, SessionCount};
use crate::scheduler::{FireNow, ListTimers, Schedule, Scheduler};
use crate::webhook::{Inbound, Webhook};
use actix::prelude::*;
use std::time::Duration;

/// The webhook's mailbox is full: the HTTP layer answers 503 so that Meta retries later.
#[derive(Debug, thiserror::Error)]
#[error("the bot is busy; try again")]
pub struct Busy;

/// Addresses of the running actors, with one method per thing the application asks of them.
#[derive(Clone)]
pub struct Handle {
    pub(crate) webhook: Addr<Webhook>,
    pub(crate) router: Addr<Router>,
    pub(crate) limiter: Addr<RateLimiter>,
    pub(crate) scheduler: Addr<Scheduler>,
}

impl Handle {
    /// Hands a verified notification to the webhook actor without waiting.
    pub fn inbound(&self, inbound: Inbound) -> Result<(), Busy> {
        self.webhook.try_send(inbound).map_err(|_| Busy)
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

    /// Runs a flow with no person behind it (a webhook or a timer).
    pub fn run_flow(&self, run_id: RunId, flow: String, input: serde_json::Value) {
        self.router.do_send(RunFlow {
            run_id,
            flow,
            input,
            records: None,
        });
    }

    /// Runs a flow like [`Handle::run_flow`]; the receiver gets the ids of the first records it
    /// creates (`{"alert_id": …}`), or `{}` when it ends without creating one.
    pub fn run_flow_reporting(
        &self,
        run_id: RunId,
        flow: String,
        input: serde_json::Value,
    ) -> tokio::sync::oneshot::Receiver<serde_json::Value> {
        let (records, receiver) = RecordsNotifier::new();
        self.router.do_send(RunFlow {
            run_id,
            flow,
            input,
            records: Some(records),
        });
        receiver
    }

    /// Stores a timer that runs `flow` after `delay`; its id.
    pub async fn schedule(
        &self,
        flow: String,
        input: serde_json::Value,
        delay: Duration,
    ) -> Result<String, StoreError> {
        self.scheduler
            .send(Schedule { flow, input, delay })
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

    /// The outbound queue's depth.
    pub async fn queue_stats(&self) -> QueueStats {
        self.limiter.send(GetQueueStats).await.unwrap_or_default()
    }

    /// How many sessions are alive.
    pub async fn sessions(&self) -> usize {
        self.router.send(SessionCount).await.unwrap_or(0)
    }
}
