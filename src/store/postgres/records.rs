//! Flow runs, the run journal, and what became of sent messages on PostgreSQL (SQLite's twins:
//! `store/records.rs`, `store/journal.rs`): the same rows, the same JSON text. Each call is one
//! statement, or one transaction where SQLite commits several together.

use super::PgStore;
use crate::store::records::{job_state, run_record, status_record};
use crate::store::{
    logged, AuditRecord, Deliveries, Delivery, Failure, Fut, OutboundRecord, OutboxEntry,
    RunRecord, RunStart, Runs, StatusRecord,
};
use aof_actors::ids::{JobId, WaId};
use aof_actors::model::{now_ms, DeliveryState};
use serde_json::Value;
use sqlx::{PgPool, Row};

const RUN_COLUMNS: &str = "run_id, flow, trigger, outcome, steps, started_ms, finished_ms";

async fn record_run_start(
    pool: &PgPool,
    run_id: &str,
    flow: &str,
    trigger: Value,
) -> Result<RunStart, Failure> {
    let inserted = sqlx::query(
        "INSERT INTO runs (run_id, flow, trigger, started_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (run_id) DO NOTHING",
    )
    .bind(run_id)
    .bind(flow)
    .bind(serde_json::to_string(&trigger)?)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(RunStart::New);
    }
    Ok(match run(pool, run_id).await? {
        Some(RunRecord {
            outcome: Some(outcome),
            ..
        }) => RunStart::Finished { outcome },
        Some(record) => RunStart::Unfinished { flow: record.flow },
        None => RunStart::New,
    })
}

async fn journal_step(
    pool: &PgPool,
    run_id: &str,
    step: &str,
    entry: Value,
) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO run_journal (run_id, step, entry, at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (run_id, step) DO UPDATE SET entry = excluded.entry, at_ms = excluded.at_ms",
    )
    .bind(run_id)
    .bind(step)
    .bind(serde_json::to_string(&entry)?)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// The journal in SQLite's order (its primary key, compared bytewise).
async fn journal(pool: &PgPool, run_id: &str) -> Result<Vec<(String, Value)>, Failure> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT step, entry FROM run_journal WHERE run_id = $1 ORDER BY step COLLATE \"C\"",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(step, entry)| Ok((step, serde_json::from_str(&entry)?)))
        .collect()
}

async fn record_run_end(
    pool: &PgPool,
    run_id: &str,
    outcome: &str,
    steps: Value,
) -> Result<(), Failure> {
    let steps = serde_json::to_string(&steps)?;
    let mut tx = pool.begin().await?;
    let ended =
        sqlx::query("UPDATE runs SET outcome = $2, steps = $3, finished_ms = $4 WHERE run_id = $1")
            .bind(run_id)
            .bind(outcome)
            .bind(steps)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    // An ended run is not resumed: its journal goes in the same commit.
    sqlx::query("DELETE FROM run_journal WHERE run_id = $1")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if ended == 0 {
        tracing::warn!(
            run_id,
            "end of a run whose start was never recorded ignored"
        );
    }
    Ok(())
}

async fn run(pool: &PgPool, run_id: &str) -> Result<Option<RunRecord>, Failure> {
    let query = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
    let row = sqlx::query(&query)
        .bind(run_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(run_record).transpose()
}

async fn runs_of(pool: &PgPool, flow: &str, limit: i64) -> Result<Vec<RunRecord>, Failure> {
    let query = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE flow = $1
         ORDER BY started_ms DESC, run_id COLLATE \"C\" DESC LIMIT $2"
    );
    // SQLite takes a negative limit as none: so does `LIMIT NULL`.
    let rows = sqlx::query(&query)
        .bind(flow)
        .bind((limit >= 0).then_some(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(run_record).collect()
}

async fn message_status(pool: &PgPool, wamid: &str) -> Result<Option<StatusRecord>, Failure> {
    let row = sqlx::query(
        "SELECT state, error_code, error_title, status_ts, updated_ms
         FROM message_status WHERE wamid = $1",
    )
    .bind(wamid)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    status_record(&row).map(Some)
}

async fn outbound_message(pool: &PgPool, wamid: &str) -> Result<Option<OutboundRecord>, Failure> {
    let row = sqlx::query(
        "SELECT job_id, to_wa, kind, about, flow, sent_ms FROM outbound_messages WHERE wamid = $1",
    )
    .bind(wamid)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let to: String = row.try_get("to_wa")?;
    let about: Option<String> = row.try_get("about")?;
    Ok(Some(OutboundRecord {
        to: WaId::parse(&to)
            .ok_or_else(|| Failure::Corrupt("outbound_messages.to_wa is not a number".into()))?,
        kind: row.try_get("kind")?,
        about: about.as_deref().map(serde_json::from_str).transpose()?,
        flow: row.try_get("flow")?,
        job_id: JobId(row.try_get("job_id")?),
        sent_ms: row.try_get("sent_ms")?,
    }))
}

async fn audit_log(pool: &PgPool, limit: i64) -> Result<Vec<AuditRecord>, Failure> {
    let rows =
        sqlx::query("SELECT at_ms, kind, who, detail FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let detail: String = row.try_get("detail")?;
        records.push(AuditRecord {
            at_ms: row.try_get("at_ms")?,
            kind: row.try_get("kind")?,
            who: row.try_get("who")?,
            detail: serde_json::from_str(&detail)?,
        });
    }
    Ok(records)
}

/// Queued, sent and failed messages; a folded one counts as its digest, digests not at all.
async fn outbox_counts(pool: &PgPool) -> Result<(u64, u64, u64), Failure> {
    let row = sqlx::query(
        "SELECT
             COUNT(*) FILTER (WHERE state = 'queued') AS queued,
             COUNT(*) FILTER (WHERE state = 'sent') AS sent,
             COUNT(*) FILTER (WHERE state = 'failed') AS failed
         FROM (
             SELECT COALESCE(d.state, o.state) AS state
             FROM outbox o LEFT JOIN outbox d ON d.id = o.folded_into
             WHERE o.id NOT IN
                 (SELECT folded_into FROM outbox WHERE folded_into IS NOT NULL)
         ) AS counted",
    )
    .fetch_one(pool)
    .await?;
    let count = |name: &str| -> Result<u64, Failure> {
        let n: i64 = row.try_get(name)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok((count("queued")?, count("sent")?, count("failed")?))
}

async fn job(pool: &PgPool, id: &str) -> Result<Option<OutboxEntry>, Failure> {
    let row = sqlx::query("SELECT state, body, error_code, error FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state = job_state(&row.try_get::<String, _>("state")?)?;
    let body: String = row.try_get("body")?;
    Ok(Some((
        state,
        serde_json::from_str(&body)?,
        row.try_get("error_code")?,
        row.try_get("error")?,
    )))
}

/// What became of job `id`; a job folded into a digest went, or did not, with its digest.
async fn delivery(pool: &PgPool, id: &str) -> Result<Option<Delivery>, Failure> {
    let row = sqlx::query(
        "SELECT o.state, o.error, s.state AS status, s.error_code, s.error_title
         FROM outbox j
         JOIN outbox o ON o.id = COALESCE(j.folded_into, j.id)
         LEFT JOIN message_status s ON s.wamid = o.wamid
         WHERE j.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: Option<String> = row.try_get("status")?;
    let code: Option<i64> = row.try_get("error_code")?;
    let title: Option<String> = row.try_get("error_title")?;
    Ok(Some(Delivery {
        outbox: job_state(&row.try_get::<String, _>("state")?)?,
        outbox_error: row.try_get("error")?,
        status: status.as_deref().and_then(|s| match s {
            "accepted" => Some(DeliveryState::Accepted),
            other => DeliveryState::parse(other),
        }),
        status_error: code.map(|c| (c, title.unwrap_or_default())),
    }))
}

impl Runs for PgStore {
    fn record_run_start<'a>(
        &'a self,
        run_id: &'a str,
        flow: &'a str,
        trigger: Value,
    ) -> Fut<'a, RunStart> {
        Box::pin(logged(
            "record_run_start",
            record_run_start(&self.pool, run_id, flow, trigger),
        ))
    }

    fn journal_step<'a>(&'a self, run_id: &'a str, step: &'a str, entry: Value) -> Fut<'a, ()> {
        Box::pin(logged(
            "journal_step",
            journal_step(&self.pool, run_id, step, entry),
        ))
    }

    fn journal<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(String, Value)>> {
        Box::pin(logged("journal", journal(&self.pool, run_id)))
    }

    fn record_run_end<'a>(
        &'a self,
        run_id: &'a str,
        outcome: &'a str,
        steps: Value,
    ) -> Fut<'a, ()> {
        Box::pin(logged(
            "record_run_end",
            record_run_end(&self.pool, run_id, outcome, steps),
        ))
    }

    fn run<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<RunRecord>> {
        Box::pin(logged("run", run(&self.pool, run_id)))
    }

    fn runs_of<'a>(&'a self, flow: &'a str, limit: i64) -> Fut<'a, Vec<RunRecord>> {
        Box::pin(logged("runs_of", runs_of(&self.pool, flow, limit)))
    }
}

impl Deliveries for PgStore {
    fn message_status<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<StatusRecord>> {
        Box::pin(logged("message_status", message_status(&self.pool, wamid)))
    }

    fn outbound_message<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<OutboundRecord>> {
        Box::pin(logged(
            "outbound_message",
            outbound_message(&self.pool, wamid),
        ))
    }

    fn audit_log<'a>(&'a self, limit: i64) -> Fut<'a, Vec<AuditRecord>> {
        Box::pin(logged("audit_log", audit_log(&self.pool, limit)))
    }

    fn outbox_counts<'a>(&'a self) -> Fut<'a, (u64, u64, u64)> {
        Box::pin(logged("outbox_counts", outbox_counts(&self.pool)))
    }

    fn job<'a>(&'a self, id: &'a str) -> Fut<'a, Option<OutboxEntry>> {
        Box::pin(logged("job", job(&self.pool, id)))
    }

    fn delivery<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Delivery>> {
        Box::pin(logged("delivery", delivery(&self.pool, id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::fresh_database;
    use serde_json::json;

    #[tokio::test(flavor = "current_thread")]
    async fn a_journal_reads_back_in_sqlites_order_and_goes_when_the_run_ends() {
        let Some(db) = fresh_database().await else {
            return;
        };
        let store = db.store().await;
        let started = store.record_run_start("run_1", "f", json!({"text": "GO"}));
        assert_eq!(started.await.expect("ok"), RunStart::New);
        for (step, n) in [("2", 1), ("10", 2), ("2.1", 3), ("2", 4)] {
            store
                .journal_step("run_1", step, json!(n))
                .await
                .expect("ok");
        }
        let journal = store.journal("run_1").await.expect("reads");
        let expected = [("10", 2), ("2", 4), ("2.1", 3)].map(|(s, n)| (s.to_owned(), json!(n)));
        assert_eq!(journal, expected);
        store
            .record_run_end("run_1", "completed", json!({}))
            .await
            .expect("ok");
        assert!(store.journal("run_1").await.expect("reads").is_empty());
        store
            .record_run_start("run_2", "f", json!({}))
            .await
            .expect("ok");
        assert_eq!(store.runs_of("f", -1).await.expect("reads").len(), 2);
        assert_eq!(store.runs_of("f", 1).await.expect("reads").len(), 1);
        store.close().await;
    }
}
