//! The actors' [`Store`] port on SQLite: what the webhook, sessions, rate limiter, sender and
//! scheduler mirror here so that a restart loses nothing.
//!
//! Each call clones the pool into a `'static` future, as the port asks. The writes every message
//! makes (dedup ids, conversations, audit lines) go through the group-commit writer (`batch.rs`),
//! and every read-modify-write
//! is one statement or a transaction that writes first, so concurrent writers only wait on the
//! busy timeout and never fail on a stale snapshot.

use super::batch::Statement;
use super::{inbox, logged, Failure, SqliteStore};
use aof_actors::ids::{InboxSeq, JobId, WaId, Wamid};
use aof_actors::model::{
    now_ms, AuditEntry, Conversation, InboundMessage, QueuedJob, StatusUpdate, Timer,
};
use aof_actors::ports::{AuditInbound, Store, StoreError, StoreResult};
use futures_util::FutureExt;
use sqlx::SqlitePool;
use std::future::Future;

/// Boxes one operation's future as the port wants it, logging its failure.
fn boxed<T: Send + 'static>(
    op: &'static str,
    work: impl Future<Output = Result<T, Failure>> + Send + 'static,
) -> StoreResult<T> {
    logged(op, work).boxed()
}

impl Store for SqliteStore {
    fn accept(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        audit: AuditInbound,
    ) -> StoreResult<Vec<Option<InboxSeq>>> {
        let writer = self.writer.clone();
        boxed("accept", async move {
            let entries = messages
                .iter()
                .map(|m| inbox::message_entry(m, audit))
                .collect::<Result<Vec<_>, _>>()?;
            writer.keep(entries, statuses).await
        })
    }

    fn inbox_done(&self, seq: InboxSeq, outcome: String) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("inbox_done", async move {
            inbox::close(&writer, seq, outcome).await
        })
    }

    fn load_conversation(&self, who: WaId) -> StoreResult<Conversation> {
        let pool = self.pool.clone();
        boxed("load_conversation", async move {
            let body: Option<String> =
                sqlx::query_scalar("SELECT body FROM conversations WHERE wa_id = ?1")
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
        let writer = self.writer.clone();
        boxed("save_conversation", async move {
            writer.save_conversation(who, conversation).await
        })
    }

    fn enqueue(&self, job: QueuedJob) -> StoreResult<bool> {
        let writer = self.writer.clone();
        boxed("enqueue", async move {
            let body = serde_json::to_string(&job)?;
            // Idempotent: a retried enqueue of the same job id keeps the first row.
            let sql = "INSERT INTO outbox (id, body, state, created_ms, updated_ms)
                 VALUES (?1, ?2, 'queued', ?3, ?4)
                 ON CONFLICT(id) DO NOTHING";
            let args = vec![
                job.id.0.into(),
                body.into(),
                job.enqueued_at_ms.into(),
                now_ms().into(),
            ];
            Ok(writer.exec(sql, args).await? == 1)
        })
    }

    fn update_job(&self, job: QueuedJob) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("update_job", async move {
            let sql = "UPDATE outbox SET body = ?2, state = 'queued', updated_ms = ?3
                 WHERE id = ?1 AND state IN ('queued', 'sending')";
            let args = vec![
                job.id.0.clone().into(),
                serde_json::to_string(&job)?.into(),
                now_ms().into(),
            ];
            if writer.exec(sql, args).await? == 0 {
                tracing::debug!(job = %job.id, "update of a job no longer queued ignored");
            }
            Ok(())
        })
    }

    fn job_sent(&self, job: QueuedJob, wamid: Wamid) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("job_sent", async move {
            writer.statements(sent(&job, &wamid)?).await.map(drop)
        })
    }

    fn job_sending(&self, id: JobId) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("job_sending", async move {
            let sql = "UPDATE outbox SET state = 'sending', updated_ms = ?2
                 WHERE id = ?1 AND state IN ('queued', 'sending')";
            writer
                .exec(sql, vec![id.0.into(), now_ms().into()])
                .await
                .map(drop)
        })
    }

    fn job_folding(&self, job: QueuedJob) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("job_folding", async move {
            let now = now_ms();
            let folds: Vec<&str> = job.folds.iter().map(|id| id.0.as_str()).collect();
            let folds = serde_json::to_string(&folds)?;
            let statements = vec![
                (
                    "INSERT INTO outbox (id, body, state, created_ms, updated_ms)
                     VALUES (?1, ?2, 'sending', ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET state = 'sending', updated_ms = excluded.updated_ms
                     WHERE outbox.state IN ('queued', 'sending')",
                    vec![
                        job.id.0.clone().into(),
                        serde_json::to_string(&job)?.into(),
                        job.enqueued_at_ms.into(),
                        now.into(),
                    ],
                ),
                (
                    "UPDATE outbox SET state = 'folded', folded_into = ?1, updated_ms = ?2
                     WHERE state IN ('queued', 'sending')
                       AND id IN (SELECT value FROM json_each(?3))",
                    vec![job.id.0.into(), now.into(), folds.into()],
                ),
            ];
            writer.statements(statements).await.map(drop)
        })
    }

    fn unconfirmed_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        let pool = self.pool.clone();
        boxed("unconfirmed_jobs", async move {
            jobs_in(&pool, "sending").await
        })
    }

    fn still_sending(&self, ids: Vec<JobId>) -> StoreResult<Vec<bool>> {
        let pool = self.pool.clone();
        boxed("still_sending", async move {
            let asked: Vec<&str> = ids.iter().map(|id| id.0.as_str()).collect();
            let sending: std::collections::HashSet<String> = sqlx::query_scalar(
                "SELECT id FROM outbox
                 WHERE state = 'sending' AND id IN (SELECT value FROM json_each(?1))",
            )
            .bind(serde_json::to_string(&asked)?)
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
            Ok(ids.iter().map(|id| sending.contains(&id.0)).collect())
        })
    }

    fn job_failed(&self, job: QueuedJob, code: Option<i64>, reason: String) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("job_failed", async move {
            let sql =
                "INSERT INTO outbox (id, body, state, error_code, error, created_ms, updated_ms)
                 VALUES (?1, ?2, 'failed', ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET
                     body = excluded.body, state = 'failed', error_code = excluded.error_code,
                     error = excluded.error, updated_ms = excluded.updated_ms";
            let args = vec![
                job.id.0.clone().into(),
                serde_json::to_string(&job)?.into(),
                code.into(),
                reason.into(),
                job.enqueued_at_ms.into(),
                now_ms().into(),
            ];
            writer.exec(sql, args).await.map(drop)
        })
    }

    fn pending_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        let pool = self.pool.clone();
        boxed(
            "pending_jobs",
            async move { jobs_in(&pool, "queued").await },
        )
    }

    fn recent_sends(&self, since_ms: i64) -> StoreResult<Vec<(WaId, i64)>> {
        let pool = self.pool.clone();
        boxed("recent_sends", async move {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT id, body, updated_ms FROM outbox
                 WHERE state IN ('sending', 'sent') AND updated_ms >= ?1 ORDER BY updated_ms",
            )
            .bind(since_ms)
            .fetch_all(&pool)
            .await?;
            Ok(sends(rows))
        })
    }

    fn take_template_quota(&self, day: String, limit: u32) -> StoreResult<bool> {
        let writer = self.writer.clone();
        boxed("take_template_quota", async move {
            // One transaction of the single writer: two senders cannot both take the last unit.
            let statements = vec![
                (
                    "INSERT INTO template_usage (day, count) VALUES (?1, 0) ON CONFLICT(day) DO NOTHING",
                    vec![day.clone().into()],
                ),
                (
                    "UPDATE template_usage SET count = count + 1 WHERE day = ?1 AND count < ?2",
                    vec![day.into(), i64::from(limit).into()],
                ),
            ];
            let rows = writer.statements(statements).await?;
            Ok(rows.get(1) == Some(&1))
        })
    }

    fn save_timer(&self, timer: Timer) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("save_timer", async move {
            let sql = "INSERT INTO timers (id, flow, input, fire_at_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET
                     flow = excluded.flow, input = excluded.input, fire_at_ms = excluded.fire_at_ms";
            let args = vec![
                timer.id.into(),
                timer.flow.into(),
                serde_json::to_string(&timer.input)?.into(),
                timer.fire_at_ms.into(),
                now_ms().into(),
            ];
            writer.exec(sql, args).await.map(drop)
        })
    }

    fn finish_timer(&self, id: String) -> StoreResult<()> {
        let writer = self.writer.clone();
        boxed("finish_timer", async move {
            let sql = "DELETE FROM timers WHERE id = ?1";
            writer.exec(sql, vec![id.into()]).await.map(drop)
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
        let writer = self.writer.clone();
        boxed("audit", async move { writer.audit(entry).await })
    }
}

/// What recording that Meta accepted a job writes: the outbox row `sent` with its wamid, what the
/// wamid is about (so replies and statuses find their alert), and its first delivery state. An
/// upsert, so that a job sent without passing through the queue is recorded too. Used by
/// `job_sent`, and when a status names a job left `sending` by a crash (`inbox::keep`).
pub(super) fn sent(job: &QueuedJob, wamid: &Wamid) -> Result<Vec<Statement>, Failure> {
    let about = job
        .message
        .about
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let now = now_ms();
    Ok(vec![
        (
            "INSERT INTO outbox (id, body, state, wamid, created_ms, updated_ms)
             VALUES (?1, ?2, 'sent', ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET
                 body = excluded.body, state = 'sent', wamid = excluded.wamid,
                 error_code = NULL, error = NULL, updated_ms = excluded.updated_ms",
            vec![
                job.id.0.clone().into(),
                serde_json::to_string(job)?.into(),
                wamid.as_str().into(),
                job.enqueued_at_ms.into(),
                now.into(),
            ],
        ),
        (
            "INSERT INTO outbound_messages (wamid, job_id, to_wa, kind, about, flow, sent_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(wamid) DO NOTHING",
            vec![
                wamid.as_str().into(),
                job.id.0.clone().into(),
                job.message.to.as_str().into(),
                job.message.body.kind().into(),
                about.into(),
                job.message.flow.clone().into(),
                now.into(),
            ],
        ),
        // `accepted` is the lowest state: a status callback that came first is kept.
        (
            "INSERT INTO message_status (wamid, state, rank, recipient, status_ts, updated_ms)
             VALUES (?1, 'accepted', 0, ?2, ?3, ?4)
             ON CONFLICT(wamid) DO UPDATE SET
                 recipient = COALESCE(message_status.recipient, excluded.recipient)",
            vec![
                wamid.as_str().into(),
                job.message.to.as_str().into(),
                (now / 1000).into(),
                now.into(),
            ],
        ),
    ])
}

/// The outbox rows in `state` (`queued`, `sending`), oldest first.
async fn jobs_in(pool: &SqlitePool, state: &str) -> Result<Vec<QueuedJob>, Failure> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, body FROM outbox WHERE state = ?1 ORDER BY created_ms, rowid")
            .bind(state)
            .fetch_all(pool)
            .await?;
    Ok(readable_jobs(rows, "pending_jobs"))
}

/// Recipients and times of outbox rows `(id, body, updated_ms)` (both backends); an unreadable
/// row is logged and left out, as [`readable_jobs`] does.
pub(in crate::store) fn sends(rows: Vec<(String, String, i64)>) -> Vec<(WaId, i64)> {
    rows.into_iter()
        .filter_map(|(id, body, at)| {
            let job = readable_jobs(vec![(id, body)], "recent_sends").pop()?;
            Some((job.message.to, at))
        })
        .collect()
}

/// The timers of rows `(id, flow, input, fire_at_ms)`, in order (both backends).
pub(in crate::store) fn timers(
    rows: Vec<(String, String, String, i64)>,
) -> Result<Vec<Timer>, Failure> {
    rows.into_iter()
        .map(|(id, flow, input, fire_at_ms)| {
            Ok(Timer {
                id,
                flow,
                input: serde_json::from_str(&input)?,
                fire_at_ms,
            })
        })
        .collect()
}

/// The jobs of outbox rows `(id, body)`, in order (both backends). A row that no longer parses is
/// logged and left out, so that one bad row cannot keep the whole queue from restarting.
pub(in crate::store) fn readable_jobs(
    rows: Vec<(String, String)>,
    op: &'static str,
) -> Vec<QueuedJob> {
    let mut jobs = Vec::with_capacity(rows.len());
    for (id, body) in rows {
        match serde_json::from_str::<QueuedJob>(&body) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                let _: StoreError = Failure::Json(e).logged(op);
                tracing::error!(job = %id, "queued job skipped: its stored body is unreadable");
            }
        }
    }
    jobs
}
