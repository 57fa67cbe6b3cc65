//! The actors' [`Store`] port on PostgreSQL: what the webhook, sessions, rate limiter, sender and
//! scheduler keep so that a restart, or another replica taking over, loses nothing. The same rows
//! and rules as SQLite's (`store/actor_state.rs`, `store/inbox.rs`); each call is one statement or
//! one transaction on the pool (PostgreSQL has no single writer to batch for).

use super::PgStore;
use crate::store::actor_state::{readable_jobs, sends, timers};
use crate::store::inbox::{message_entry, InboxEntry};
use crate::store::records::delivery_rank;
use crate::store::{logged, to_i64, Failure};
use aof_actors::ids::{InboxSeq, JobId, WaId, Wamid};
use aof_actors::model::{
    now_ms, AuditEntry, Conversation, InboundMessage, QueuedJob, StatusUpdate, Timer,
};
use aof_actors::ports::{AuditInbound, Store, StoreResult};
use futures_util::FutureExt;
use sqlx::{PgConnection, PgPool};
use std::future::Future;

/// Boxes one operation's future as the port wants it, logging its failure.
fn boxed<T: Send + 'static>(
    op: &'static str,
    work: impl Future<Output = Result<T, Failure>> + Send + 'static,
) -> StoreResult<T> {
    logged(op, work).boxed()
}

/// Keeps `entries` and records `statuses` in the transaction `tx`; per entry, its row or `None`
/// for a duplicate (its `once` id seen before, or its `open_key` held by an open row).
pub(super) async fn keep(
    tx: &mut PgConnection,
    entries: &[InboxEntry],
    statuses: &[StatusUpdate],
    claim: i64,
) -> Result<Vec<Option<InboxSeq>>, Failure> {
    // The outbox row before the status row, in the order `job_sent` takes them: the leader
    // recording a send and a replica keeping its status must not wait for each other in a cycle.
    confirm_sending(tx, statuses).await?;
    record_statuses(tx, statuses).await?;
    let now = now_ms();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(once) = &entry.once {
            let new = sqlx::query(
                "INSERT INTO processed_messages (id, seen_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(once)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new == 0 {
                rows.push(None);
                continue;
            }
        }
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbox (kind, open_key, body, received_ms, claimed)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING seq",
        )
        .bind(entry.kind)
        .bind(&entry.open_key)
        .bind(&entry.body)
        .bind(now)
        .bind(claim)
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(_), Some(line)) = (seq, &entry.audit) {
            audit_line(tx, line, now).await?;
        }
        rows.push(seq.map(InboxSeq));
    }
    Ok(rows)
}

async fn audit_line(tx: &mut PgConnection, line: &AuditEntry, now: i64) -> Result<(), Failure> {
    sqlx::query("INSERT INTO audit_log (at_ms, kind, who, detail) VALUES ($1, $2, $3, $4)")
        .bind(now)
        .bind(&line.kind)
        .bind(&line.who)
        .bind(serde_json::to_string(&line.detail)?)
        .execute(tx)
        .await?;
    Ok(())
}

/// Delivery statuses, keyed by wamid alone; states only move forward (see SQLite's twin).
async fn record_statuses(tx: &mut PgConnection, statuses: &[StatusUpdate]) -> Result<(), Failure> {
    let now = now_ms();
    for s in statuses {
        let (code, title) = s.error.clone().unzip();
        sqlx::query(
            "INSERT INTO message_status
                 (wamid, state, rank, recipient, error_code, error_title, status_ts, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (wamid) DO UPDATE SET
                 state = excluded.state,
                 rank = excluded.rank,
                 recipient = COALESCE(excluded.recipient, message_status.recipient),
                 error_code = excluded.error_code,
                 error_title = excluded.error_title,
                 status_ts = excluded.status_ts,
                 updated_ms = excluded.updated_ms
             WHERE excluded.rank > message_status.rank",
        )
        .bind(s.id.as_str())
        .bind(s.state.as_str())
        .bind(delivery_rank(s.state))
        .bind(s.recipient.as_ref().map(WaId::as_str))
        .bind(code)
        .bind(title)
        .bind(s.timestamp)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A status naming an outbox row left `sending` shows Meta has the message: it is recorded sent.
async fn confirm_sending(tx: &mut PgConnection, statuses: &[StatusUpdate]) -> Result<(), Failure> {
    for status in statuses {
        let Some(id) = status.callback.as_deref() else {
            continue;
        };
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM outbox WHERE id = $1 AND state = 'sending'")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(body) = body else { continue };
        let job: QueuedJob = serde_json::from_str(&body)?;
        sent(tx, &job, &status.id).await?;
        tracing::info!(job = %id, "a status confirmed a message that was leaving when the bot stopped");
        metrics::counter!("aof_sends_confirmed_by_status_total").increment(1);
    }
    Ok(())
}

/// Meta accepted `job` as `wamid`: the outbox row `sent`, what the wamid is about, and its first
/// delivery state (a status that came first is kept).
pub(super) async fn sent(
    tx: &mut PgConnection,
    job: &QueuedJob,
    wamid: &Wamid,
) -> Result<(), Failure> {
    let about = job
        .message
        .about
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO outbox (id, body, state, wamid, created_ms, updated_ms)
         VALUES ($1, $2, 'sent', $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET
             body = excluded.body, state = 'sent', wamid = excluded.wamid,
             error_code = NULL, error = NULL, updated_ms = excluded.updated_ms",
    )
    .bind(&job.id.0)
    .bind(serde_json::to_string(job)?)
    .bind(wamid.as_str())
    .bind(job.enqueued_at_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO outbound_messages (wamid, job_id, to_wa, kind, about, flow, sent_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(wamid.as_str())
    .bind(&job.id.0)
    .bind(job.message.to.as_str())
    .bind(job.message.body.kind())
    .bind(about)
    .bind(&job.message.flow)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO message_status (wamid, state, rank, recipient, status_ts, updated_ms)
         VALUES ($1, 'accepted', 0, $2, $3, $4)
         ON CONFLICT (wamid) DO UPDATE SET
             recipient = COALESCE(message_status.recipient, excluded.recipient)",
    )
    .bind(wamid.as_str())
    .bind(job.message.to.as_str())
    .bind(now / 1000)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The outbox rows in `state`, in the order they were queued.
async fn jobs_in(pool: &PgPool, state: &str, op: &'static str) -> Result<Vec<QueuedJob>, Failure> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, body FROM outbox WHERE state = $1 ORDER BY created_ms, seq")
            .bind(state)
            .fetch_all(pool)
            .await?;
    Ok(readable_jobs(rows, op))
}

impl Store for PgStore {
    fn accept(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        audit: AuditInbound,
    ) -> StoreResult<Vec<Option<InboxSeq>>> {
        let intake = self.intake.clone();
        boxed("accept", async move {
            let entries = messages
                .iter()
                .map(|m| message_entry(m, audit))
                .collect::<Result<Vec<_>, _>>()?;
            intake.keep(entries, statuses).await
        })
    }

    fn inbox_done(&self, seq: InboxSeq, outcome: String) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("inbox_done", async move {
            sqlx::query(
                "UPDATE inbox SET done_ms = $1, outcome = $2 WHERE seq = $3 AND done_ms IS NULL",
            )
            .bind(now_ms())
            .bind(outcome)
            .bind(seq.0)
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn load_conversation(&self, who: WaId) -> StoreResult<Conversation> {
        let pool = self.pool.clone();
        boxed("load_conversation", async move {
            let body: Option<String> =
                sqlx::query_scalar("SELECT body FROM conversations WHERE wa_id = $1")
                    .bind(who.as_str())
                    .fetch_optional(&pool)
                    .await?;
            match body {
                Some(body) => Ok(serde_json::from_str(&body)?),
                None => Ok(Conversation::default()),
            }
        })
    }

    fn save_conversation(&self, who: WaId, conversation: Conversation) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("save_conversation", async move {
            sqlx::query(
                "INSERT INTO conversations (wa_id, version, body, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (wa_id) DO UPDATE SET
                     version = excluded.version, body = excluded.body,
                     updated_ms = excluded.updated_ms
                 WHERE excluded.version > conversations.version",
            )
            .bind(who.as_str())
            .bind(to_i64(conversation.version))
            .bind(serde_json::to_string(&conversation)?)
            .bind(now_ms())
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn enqueue(&self, job: QueuedJob) -> StoreResult<bool> {
        let pool = self.pool.clone();
        boxed("enqueue", async move {
            let inserted = sqlx::query(
                "INSERT INTO outbox (id, body, state, created_ms, updated_ms)
                 VALUES ($1, $2, 'queued', $3, $4)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&job.id.0)
            .bind(serde_json::to_string(&job)?)
            .bind(job.enqueued_at_ms)
            .bind(now_ms())
            .execute(&pool)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        })
    }

    fn job_sending(&self, id: JobId) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("job_sending", async move {
            sqlx::query(
                "UPDATE outbox SET state = 'sending', updated_ms = $2
                 WHERE id = $1 AND state IN ('queued', 'sending')",
            )
            .bind(id.0)
            .bind(now_ms())
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn job_folding(&self, job: QueuedJob) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("job_folding", async move {
            let now = now_ms();
            let folds: Vec<String> = job.folds.iter().map(|id| id.0.clone()).collect();
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO outbox (id, body, state, created_ms, updated_ms)
                 VALUES ($1, $2, 'sending', $3, $4)
                 ON CONFLICT (id) DO UPDATE SET state = 'sending', updated_ms = excluded.updated_ms
                 WHERE outbox.state IN ('queued', 'sending')",
            )
            .bind(&job.id.0)
            .bind(serde_json::to_string(&job)?)
            .bind(job.enqueued_at_ms)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE outbox SET state = 'folded', folded_into = $1, updated_ms = $2
                 WHERE state IN ('queued', 'sending') AND id = ANY($3)",
            )
            .bind(&job.id.0)
            .bind(now)
            .bind(folds)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn unconfirmed_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        let pool = self.pool.clone();
        boxed("unconfirmed_jobs", async move {
            jobs_in(&pool, "sending", "unconfirmed_jobs").await
        })
    }

    fn still_sending(&self, ids: Vec<JobId>) -> StoreResult<Vec<bool>> {
        let pool = self.pool.clone();
        boxed("still_sending", async move {
            let asked: Vec<String> = ids.iter().map(|id| id.0.clone()).collect();
            let sending: std::collections::HashSet<String> = sqlx::query_scalar(
                "SELECT id FROM outbox WHERE state = 'sending' AND id = ANY($1)",
            )
            .bind(asked)
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
            Ok(ids.iter().map(|id| sending.contains(&id.0)).collect())
        })
    }

    fn update_job(&self, job: QueuedJob) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("update_job", async move {
            let updated = sqlx::query(
                "UPDATE outbox SET body = $2, state = 'queued', updated_ms = $3
                 WHERE id = $1 AND state IN ('queued', 'sending')",
            )
            .bind(&job.id.0)
            .bind(serde_json::to_string(&job)?)
            .bind(now_ms())
            .execute(&pool)
            .await?
            .rows_affected();
            if updated == 0 {
                tracing::debug!(job = %job.id, "update of a job no longer queued ignored");
            }
            Ok(())
        })
    }

    fn job_sent(&self, job: QueuedJob, wamid: Wamid) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("job_sent", async move {
            let mut tx = pool.begin().await?;
            sent(&mut tx, &job, &wamid).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn job_failed(&self, job: QueuedJob, code: Option<i64>, reason: String) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("job_failed", async move {
            sqlx::query(
                "INSERT INTO outbox (id, body, state, error_code, error, created_ms, updated_ms)
                 VALUES ($1, $2, 'failed', $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET
                     body = excluded.body, state = 'failed', error_code = excluded.error_code,
                     error = excluded.error, updated_ms = excluded.updated_ms",
            )
            .bind(&job.id.0)
            .bind(serde_json::to_string(&job)?)
            .bind(code)
            .bind(reason)
            .bind(job.enqueued_at_ms)
            .bind(now_ms())
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn pending_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        let pool = self.pool.clone();
        boxed("pending_jobs", async move {
            jobs_in(&pool, "queued", "pending_jobs").await
        })
    }

    fn recent_sends(&self, since_ms: i64) -> StoreResult<Vec<(WaId, i64)>> {
        let pool = self.pool.clone();
        boxed("recent_sends", async move {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT id, body, updated_ms FROM outbox
                 WHERE state IN ('sending', 'sent') AND updated_ms >= $1 ORDER BY updated_ms",
            )
            .bind(since_ms)
            .fetch_all(&pool)
            .await?;
            Ok(sends(rows))
        })
    }

    fn take_template_quota(&self, day: String, limit: u32) -> StoreResult<bool> {
        let pool = self.pool.clone();
        boxed("take_template_quota", async move {
            // The row lock of the UPDATE: two replicas cannot both take the last unit.
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO template_usage (day, count) VALUES ($1, 0) ON CONFLICT (day) DO NOTHING",
            )
            .bind(&day)
            .execute(&mut *tx)
            .await?;
            let taken = sqlx::query(
                "UPDATE template_usage SET count = count + 1 WHERE day = $1 AND count < $2",
            )
            .bind(&day)
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(taken == 1)
        })
    }

    fn save_timer(&self, timer: Timer) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("save_timer", async move {
            sqlx::query(
                "INSERT INTO timers (id, flow, input, fire_at_ms, created_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET
                     flow = excluded.flow, input = excluded.input, fire_at_ms = excluded.fire_at_ms",
            )
            .bind(timer.id)
            .bind(timer.flow)
            .bind(serde_json::to_string(&timer.input)?)
            .bind(timer.fire_at_ms)
            .bind(now_ms())
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn finish_timer(&self, id: String) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("finish_timer", async move {
            sqlx::query("DELETE FROM timers WHERE id = $1")
                .bind(id)
                .execute(&pool)
                .await?;
            Ok(())
        })
    }

    fn pending_timers(&self) -> StoreResult<Vec<Timer>> {
        let pool = self.pool.clone();
        boxed("pending_timers", async move {
            let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                "SELECT id, flow, input, fire_at_ms FROM timers ORDER BY fire_at_ms, id",
            )
            .fetch_all(&pool)
            .await?;
            timers(rows)
        })
    }

    fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        let pool = self.pool.clone();
        boxed("audit", async move {
            let mut conn = pool.acquire().await?;
            audit_line(&mut conn, &entry, now_ms()).await
        })
    }
}
