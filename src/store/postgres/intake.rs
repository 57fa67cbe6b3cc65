//! Group commit for the intake on PostgreSQL: the keeps that wait at one moment (webhooks being
//! acknowledged, each needing its inbox row and statuses committed before its 2xx) share one
//! transaction, so that under load a hundred acknowledgements cost one WAL flush, not a hundred.
//! A thread of its own runs it, with a small pool made on its own runtime; the callers only wait
//! for their answer. A batch that fails is committed again one keep at a time, so that one bad
//! keep fails alone.

use super::actor_state::keep;
use crate::store::inbox::InboxEntry;
use crate::store::Failure;
use aof_actors::ids::InboxSeq;
use aof_actors::model::StatusUpdate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most keeps in one transaction: bounds how long one commit holds its rows.
const MAX_BATCH: usize = 256;

/// Connections the intake keeps: one commits while the next batch gathers.
const CONNECTIONS: u32 = 2;

/// What one keep answers: per entry, its inbox row or `None` for a duplicate.
type Answer = Result<Vec<Option<InboxSeq>>, Failure>;

/// One keep waiting for its commit.
struct Keep {
    entries: Vec<InboxEntry>,
    statuses: Vec<StatusUpdate>,
    answer: oneshot::Sender<Answer>,
}

/// The intake's queue; cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct Intake {
    queue: mpsc::UnboundedSender<Keep>,
}

/// The epoch of the leader whose intake it is (its kept rows are claimed by it), or 0.
type Claim = i64;

impl Intake {
    /// Starts the intake's thread on the database `options` names, connecting within `timeout`;
    /// the rows it keeps are claimed by the leader of epoch `claim` (0: by nobody yet).
    pub(super) fn start(options: PgConnectOptions, timeout: Duration, claim: Claim) -> Intake {
        let (queue, waiting) = mpsc::unbounded_channel();
        let started = std::thread::Builder::new()
            .name("aof-pg-intake".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the intake");
                runtime.block_on(async move {
                    // Made inside the runtime: the pool's upkeep runs on it.
                    let pool = PgPoolOptions::new()
                        .max_connections(CONNECTIONS)
                        .acquire_timeout(timeout)
                        .connect_lazy_with(options);
                    run(pool, waiting, claim).await;
                });
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "the PostgreSQL intake thread did not start; keeps will fail");
        }
        Intake { queue }
    }

    /// Keeps `entries` and records `statuses`, committed with whatever else is waiting.
    pub(super) async fn keep(
        &self,
        entries: Vec<InboxEntry>,
        statuses: Vec<StatusUpdate>,
    ) -> Answer {
        let (answer, answered) = oneshot::channel();
        let sent = self.queue.send(Keep {
            entries,
            statuses,
            answer,
        });
        if sent.is_err() {
            return Err(Failure::WriterStopped);
        }
        answered.await.unwrap_or(Err(Failure::WriterStopped))
    }
}

/// Takes what is waiting, commits it together, answers each; until every sender is gone.
async fn run(pool: PgPool, mut waiting: mpsc::UnboundedReceiver<Keep>, claim: Claim) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match together(&pool, &batch, claim).await {
            Ok(answers) => {
                for (keep, answer) in batch.into_iter().zip(answers) {
                    let _ = keep.answer.send(Ok(answer));
                }
            }
            Err(_) if batch.len() > 1 => {
                for keep in batch {
                    let answer = alone(&pool, &keep, claim).await;
                    let _ = keep.answer.send(answer);
                }
            }
            Err(e) => {
                if let Some(keep) = batch.pop() {
                    let _ = keep.answer.send(Err(e));
                }
            }
        }
    }
    pool.close().await;
}

/// Every keep of `batch` in one transaction.
async fn together(
    pool: &PgPool,
    batch: &[Keep],
    claim: Claim,
) -> Result<Vec<Vec<Option<InboxSeq>>>, Failure> {
    let mut tx = pool.begin().await?;
    let mut answers = Vec::with_capacity(batch.len());
    for k in batch {
        answers.push(keep(&mut tx, &k.entries, &k.statuses, claim).await?);
    }
    tell_the_leader(&mut tx, claim, answers.iter().flatten()).await?;
    tx.commit().await?;
    Ok(answers)
}

/// One keep in a transaction of its own.
async fn alone(pool: &PgPool, k: &Keep, claim: Claim) -> Answer {
    let mut tx = pool.begin().await?;
    let rows = keep(&mut tx, &k.entries, &k.statuses, claim).await?;
    tell_the_leader(&mut tx, claim, rows.iter()).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Rows kept for the leader to take (`claim` 0) wake it as the transaction commits
/// ([`super::INBOX_CHANNEL`]), rather than at its next poll.
async fn tell_the_leader<'a>(
    tx: &mut sqlx::PgConnection,
    claim: Claim,
    mut rows: impl Iterator<Item = &'a Option<InboxSeq>>,
) -> Result<(), Failure> {
    if claim == 0 && rows.any(Option::is_some) {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::INBOX_CHANNEL)
            .execute(tx)
            .await?;
    }
    Ok(())
}
