//! The Scheduler actor: durable timers. `Schedule` stores a timer and arms it; when it fires the
//! router runs the flow. Timers are reloaded from the store at start, so a restart does not lose the
//! 300-second auto-escalation of a page sent just before it; ones already due fire at once.

use crate::ids::{new_id, RunId};
use crate::model::{now_ms, Timer};
use crate::ports::{Store, StoreError};
use crate::router::{Origin, RunFlow};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Run `flow` with `input` after `delay`; answers the timer id once it is stored.
#[derive(Message, Debug)]
#[rtype(result = "Result<String, StoreError>")]
pub struct Schedule {
    /// The timer's id when the caller has one (a flow step's key: the step run again after a
    /// crash schedules the same timer, which is armed once); a fresh one otherwise.
    pub id: Option<String>,
    /// The flow to run.
    pub flow: String,
    /// Its input.
    pub input: serde_json::Value,
    /// How long from now.
    pub delay: Duration,
}

/// Fires pending timers now instead of at their time (the sandbox's fast-forward); all when `id`
/// is `None`. Answers how many fired.
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct FireNow {
    /// One timer, or all.
    pub id: Option<String>,
}

/// Lists the timers not fired yet.
#[derive(Message, Debug)]
#[rtype(result = "Vec<Timer>")]
pub struct ListTimers;

/// Owns the timers.
pub struct Scheduler {
    store: Arc<dyn Store>,
    router: Recipient<RunFlow>,
    armed: HashMap<String, (Timer, SpawnHandle)>,
    /// Arm the timers the store holds at start, as a restart must (`aofctl simulate` does not).
    resume: bool,
}

impl Scheduler {
    /// A scheduler firing into `router`; with `resume`, it first arms the stored timers.
    pub fn new(store: Arc<dyn Store>, router: Recipient<RunFlow>, resume: bool) -> Self {
        Scheduler {
            store,
            router,
            armed: HashMap::new(),
            resume,
        }
    }

    fn arm(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        let delay = Duration::from_millis(timer.fire_at_ms.saturating_sub(now_ms()).max(0) as u64);
        let id = timer.id.clone();
        let handle = ctx.run_later(delay, move |act, _| act.fire(&id));
        self.armed.insert(timer.id.clone(), (timer, handle));
    }

    fn fire(&mut self, id: &str) {
        let Some((timer, _)) = self.armed.remove(id) else {
            return;
        };
        tracing::info!(flow = %timer.flow, timer = %timer.id, "timer fired");
        metrics::counter!("aof_timers_fired_total").increment(1);
        // The timer is forgotten once its run ended: a crash before then fires it again.
        self.router.do_send(RunFlow {
            run_id: RunId::of_timer(&timer.id),
            flow: timer.flow,
            input: timer.input,
            records: None,
            origin: Some(Origin::Timer(timer.id)),
        });
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.resume {
            return;
        }
        let pending = self.store.pending_timers();
        ctx.wait(
            pending
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(timers) => timers.into_iter().for_each(|t| act.arm(t, ctx)),
                    Err(e) => tracing::error!(error = %e, "loading timers failed"),
                }),
        );
    }
}

impl Handler<Schedule> for Scheduler {
    type Result = ResponseActFuture<Self, Result<String, StoreError>>;

    fn handle(&mut self, msg: Schedule, _: &mut Context<Self>) -> Self::Result {
        let id = msg.id.unwrap_or_else(|| new_id("tmr"));
        if self.armed.contains_key(&id) {
            return Box::pin(actix::fut::ready(Ok(id)));
        }
        let timer = Timer {
            id,
            flow: msg.flow,
            input: msg.input,
            fire_at_ms: now_ms() + msg.delay.as_millis() as i64,
        };
        let save = self.store.save_timer(timer.clone());
        Box::pin(save.into_actor(self).map(move |saved, act, ctx| {
            saved?;
            let id = timer.id.clone();
            act.arm(timer, ctx);
            Ok(id)
        }))
    }
}

impl Handler<FireNow> for Scheduler {
    type Result = usize;

    fn handle(&mut self, msg: FireNow, ctx: &mut Context<Self>) -> usize {
        let ids: Vec<String> = match msg.id {
            Some(id) => vec![id],
            None => self.armed.keys().cloned().collect(),
        };
        let mut fired = 0;
        for id in ids {
            if let Some((_, handle)) = self.armed.get(&id) {
                ctx.cancel_future(*handle);
                self.fire(&id);
                fired += 1;
            }
        }
        fired
    }
}

impl Handler<ListTimers> for Scheduler {
    type Result = MessageResult<ListTimers>;

    fn handle(&mut self, _: ListTimers, _: &mut Context<Self>) -> Self::Result {
        let mut timers: Vec<Timer> = self.armed.values().map(|(t, _)| t.clone()).collect();
        timers.sort_by_key(|t| t.fire_at_ms);
        MessageResult(timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::testing::Recorder;
    use std::time::Instant;

    fn timer(id: &str, flow: &str, in_ms: i64) -> Timer {
        Timer {
            id: id.into(),
            flow: flow.into(),
            input: serde_json::Value::Null,
            fire_at_ms: now_ms() + in_ms,
        }
    }

    #[actix::test]
    async fn stored_timers_fire_once_at_their_time_and_fire_now_brings_one_forward() {
        let store = MemoryStore::new();
        // Left by the last run: one overdue, one an hour away.
        store
            .save_timer(timer("t-overdue", "escalate", -1_000))
            .await
            .unwrap();
        store
            .save_timer(timer("t-later", "expire", 3_600_000))
            .await
            .unwrap();
        let (router, runs) = Recorder::<RunFlow>::new();
        let ran = || -> Vec<String> {
            runs.lock()
                .unwrap()
                .iter()
                .map(|r| r.flow.clone())
                .collect()
        };
        let scheduler =
            Scheduler::new(Arc::new(store.clone()), router.start().recipient(), true).start();
        let soon = Schedule {
            id: None,
            flow: "remind".into(),
            input: serde_json::Value::Null,
            delay: Duration::from_millis(30),
        };
        scheduler.send(soon).await.unwrap().expect("stored");

        let deadline = Instant::now() + Duration::from_secs(5);
        while ran().len() < 2 && Instant::now() < deadline {
            actix::clock::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ran(), ["escalate", "remind"]);
        let left = scheduler.send(ListTimers).await.unwrap();
        assert_eq!(
            left.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t-later"]
        );

        let fired = scheduler
            .send(FireNow {
                id: Some("t-later".into()),
            })
            .await
            .unwrap();
        assert_eq!(fired, 1);
        assert_eq!(ran(), ["escalate", "remind", "expire"]);
        assert_eq!(
            scheduler.send(FireNow { id: None }).await.unwrap(),
            0,
            "nothing fires twice"
        );
        // The router forgets a timer once its run ended (a crash before fires it again): each
        // run carries its timer, and the store still has them all.
        let origins: Vec<String> = runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| match &r.origin {
                Some(Origin::Timer(id)) => id.clone(),
                other => panic!("a timer's run carries its timer, not {other:?}"),
            })
            .collect();
        assert_eq!(origins.len(), 3);
        assert_eq!(store.snapshot().timers.len(), 3);
    }
}
