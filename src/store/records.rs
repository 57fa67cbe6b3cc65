//! What the application itself keeps and reads back: flow runs, delivery statuses and what each
//! sent message was about, the audit trail, and the outbox for `/ready` and the CLI.
//!
//! The flow engine writes runs; HTTP handlers and agents read the rest. Each method is one short
//! query on the same pool as the actors' port.

use super::{logged, Failure, SqliteStore};
use aof_actors::ids::{JobId, WaId};
use aof_actors::model::{now_ms, DeliveryState, QueuedJob};
use aof_actors::ports::StoreError;
use serde::Serialize;
use sqlx::Row;

/// One flow run, for `GET /runs/{id}` and debugging a page that never arrived.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run's id, as logged and returned in the HTTP 202 answer.
    pub run_id: String,
    /// The flow that ran.
    pub flow: String,
    /// What started it (the webhook body, the message, the timer), as the engine recorded it.
    pub trigger: serde_json::Value,
    /// How it ended (`completed`, `empty`, `failed`, `bad_input`, `missing`; the failing step's error is in
    /// `steps`); `None` while it runs.
    pub outcome: Option<String>,
    /// The steps' results as the engine recorded them; `None` while it runs.
    pub steps: Option<serde_json::Value>,
    /// Unix milliseconds when it started.
    pub started_ms: i64,
    /// Unix milliseconds when it ended.
    pub finished_ms: Option<i64>,
}

/// What recording a run's start found: the run is new, or it started before a restart (a message
/// or an event handed over again from the inbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStart {
    /// First time: run it.
    New,
    /// Started and never ended: resume it, skipping the steps its journal has, if it is the same
    /// flow (`flow`: the one it started).
    Unfinished {
        /// The flow it started.
        flow: String,
    },
    /// It ended before the restart, which came before its event was marked handled: do not run it
    /// again (`outcome`: how it ended).
    Finished {
        /// How it ended.
        outcome: String,
    },
}

/// The furthest delivery state of a sent message, to tell whether a page was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusRecord {
    /// The state; it only moves forward, and `failed` is final.
    pub state: DeliveryState,
    /// Meta's error code when it failed.
    pub error_code: Option<i64>,
    /// Meta's error title when it failed.
    pub error_title: Option<String>,
    /// Unix seconds, as Meta stamped the status (or when Meta accepted the send).
    pub timestamp: i64,
    /// Unix milliseconds when we recorded it.
    pub updated_ms: i64,
}

/// What a sent message was about, so that a reply or a button tap quoting its wamid finds its alert.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundRecord {
    /// The recipient.
    pub to: WaId,
    /// `text`, `template` or `interactive`.
    pub kind: String,
    /// The message's `about` (`{"alert_id": "…"}`).
    pub about: Option<serde_json::Value>,
    /// The flow that sent it.
    pub flow: Option<String>,
    /// Its queue entry.
    pub job_id: JobId,
    /// Unix milliseconds when Meta accepted it.
    pub sent_ms: i64,
}

/// An outbox entry as read back: its state, the job, and when it failed, Meta's code and the
/// reason.
pub type OutboxEntry = (JobState, QueuedJob, Option<i64>, Option<String>);

/// One audit log record as read back, for the CLI and the admin endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Unix milliseconds when it was written.
    pub at_ms: i64,
    /// What happened (`inbound`, `rejected_number`, `send_failed`, …).
    pub kind: String,
    /// Who, already masked by the writer.
    pub who: Option<String>,
    /// Details, as written.
    pub detail: serde_json::Value,
}

/// What became of one message on its way to a person: where it stands in the outbox and, once
/// Meta took it, the last delivery status WhatsApp reported. A page's delivery check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Where it stands in the outbox.
    pub outbox: JobState,
    /// Why the outbox gave it up, when it did.
    pub outbox_error: Option<String>,
    /// The last status WhatsApp reported (`None` before the first).
    pub status: Option<DeliveryState>,
    /// The status's error code and title, when it `failed`.
    pub status_error: Option<(i64, String)>,
}

/// Where a queued message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the rate limiter or a retry.
    Queued,
    /// On its way to Meta (recorded before the request leaves; see `unconfirmed_send_grace_secs`).
    Sending,
    /// Meta accepted it.
    Sent,
    /// Given up; the row keeps why.
    Failed,
    /// Said in a digest with the others waiting for the same person (`folded_into` names it).
    Folded,
}

/// The rank of a state in `message_status.rank`: the column that keeps statuses moving forward.
pub(super) fn delivery_rank(state: DeliveryState) -> i64 {
    match state {
        DeliveryState::Accepted => 0,
        DeliveryState::Sent => 1,
        DeliveryState::Delivered => 2,
        DeliveryState::Read => 3,
        DeliveryState::Failed => 4,
    }
}

impl SqliteStore {
    /// Records that a run started, so that a run that never ends is still visible; what it found
    /// when the run had started before.
    pub(crate) async fn record_run_start(
        &self,
        run_id: &str,
        flow: &str,
        trigger: serde_json::Value,
    ) -> Result<RunStart, StoreError> {
        let inserted = logged("record_run_start", async {
            let sql = "INSERT INTO runs (run_id, flow, trigger, started_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(run_id) DO NOTHING";
            let args = vec![
                run_id.into(),
                flow.into(),
                serde_json::to_string(&trigger)?.into(),
                now_ms().into(),
            ];
            Ok(self.writer.exec(sql, args).await? == 1)
        })
        .await?;
        if inserted {
            return Ok(RunStart::New);
        }
        Ok(match self.run(run_id).await? {
            Some(RunRecord {
                outcome: Some(outcome),
                ..
            }) => RunStart::Finished { outcome },
            Some(record) => RunStart::Unfinished { flow: record.flow },
            None => RunStart::New,
        })
    }

    /// Records how a run ended and what its steps returned.
    pub(crate) async fn record_run_end(
        &self,
        run_id: &str,
        outcome: &str,
        steps: serde_json::Value,
    ) -> Result<(), StoreError> {
        logged("record_run_end", async {
            let end =
                "UPDATE runs SET outcome = ?2, steps = ?3, finished_ms = ?4 WHERE run_id = ?1";
            let args = vec![
                run_id.into(),
                outcome.into(),
                serde_json::to_string(&steps)?.into(),
                now_ms().into(),
            ];
            // An ended run is not resumed: its journal goes in the same commit.
            let forget = "DELETE FROM run_journal WHERE run_id = ?1";
            let statements = vec![(end, args), (forget, vec![run_id.into()])];
            if self.writer.statements(statements).await?.first() == Some(&0) {
                tracing::warn!(
                    run_id,
                    "end of a run whose start was never recorded ignored"
                );
            }
            Ok(())
        })
        .await
    }

    /// One run, or `None` when the id is unknown.
    pub(crate) async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        logged("run", async {
            let row = sqlx::query(
                "SELECT run_id, flow, trigger, outcome, steps, started_ms, finished_ms
                 FROM runs WHERE run_id = ?1",
            )
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(run_record).transpose()
        })
        .await
    }

    /// The latest runs of `flow`, newest first: how its runs ended, for the CLI and the tests.
    pub(crate) async fn runs_of(
        &self,
        flow: &str,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        logged("runs_of", async {
            let rows = sqlx::query(
                "SELECT run_id, flow, trigger, outcome, steps, started_ms, finished_ms
                 FROM runs WHERE flow = ?1 ORDER BY started_ms DESC, run_id DESC LIMIT ?2",
            )
            .bind(flow)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(run_record).collect()
        })
        .await
    }

    /// The delivery state of a sent message, or `None` when nothing is known about the wamid.
    pub(crate) async fn message_status(
        &self,
        wamid: &str,
    ) -> Result<Option<StatusRecord>, StoreError> {
        logged("message_status", async {
            let row = sqlx::query(
                "SELECT state, error_code, error_title, status_ts, updated_ms
                 FROM message_status WHERE wamid = ?1",
            )
            .bind(wamid)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            status_record(&row).map(Some)
        })
        .await
    }

    /// What a sent message was about, or `None` when the wamid is not one of ours.
    pub(crate) async fn outbound_message(
        &self,
        wamid: &str,
    ) -> Result<Option<OutboundRecord>, StoreError> {
        logged("outbound_message", async {
            let row = sqlx::query(
                "SELECT job_id, to_wa, kind, about, flow, sent_ms
                 FROM outbound_messages WHERE wamid = ?1",
            )
            .bind(wamid)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let to: String = row.try_get("to_wa")?;
            let about: Option<String> = row.try_get("about")?;
            Ok(Some(OutboundRecord {
                to: WaId::parse(&to).ok_or_else(|| {
                    Failure::Corrupt("outbound_messages.to_wa is not a number".into())
                })?,
                kind: row.try_get("kind")?,
                about: about.as_deref().map(serde_json::from_str).transpose()?,
                flow: row.try_get("flow")?,
                job_id: JobId(row.try_get("job_id")?),
                sent_ms: row.try_get("sent_ms")?,
            }))
        })
        .await
    }

    /// The last `limit` audit records, newest first.
    pub(crate) async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        logged("audit_log", async {
            let rows = sqlx::query(
                "SELECT at_ms, kind, who, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
            )
            .bind(limit.max(0))
            .fetch_all(&self.pool)
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
        })
        .await
    }

    /// How many of the messages flows queued are queued, sent and failed: a growing queue means
    /// sends are stuck. A message said in a digest counts as its digest went; digests themselves
    /// are not counted.
    pub(crate) async fn outbox_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        logged("outbox_counts", async {
            let row = sqlx::query(
                "SELECT
                     COALESCE(SUM(state = 'queued'), 0) AS queued,
                     COALESCE(SUM(state = 'sent'), 0) AS sent,
                     COALESCE(SUM(state = 'failed'), 0) AS failed
                 FROM (
                     SELECT COALESCE(d.state, o.state) AS state
                     FROM outbox o LEFT JOIN outbox d ON d.id = o.folded_into
                     WHERE o.id NOT IN
                         (SELECT folded_into FROM outbox WHERE folded_into IS NOT NULL)
                 )",
            )
            .fetch_one(&self.pool)
            .await?;
            let count = |name: &str| -> Result<u64, Failure> {
                let n: i64 = row.try_get(name)?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok((count("queued")?, count("sent")?, count("failed")?))
        })
        .await
    }

    /// One outbox entry with its state and, when it failed, Meta's code and the reason.
    /// What became of the message queued as job `id` ([`Delivery`]); `None` for an unknown job. A
    /// job folded into a digest went, or did not, with its digest.
    pub(crate) async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        logged("delivery", async {
            let row = sqlx::query(
                "SELECT o.state, o.error, s.state AS status, s.error_code, s.error_title
                 FROM outbox j
                 JOIN outbox o ON o.id = COALESCE(j.folded_into, j.id)
                 LEFT JOIN message_status s ON s.wamid = o.wamid
                 WHERE j.id = ?1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
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
        })
        .await
    }

    pub(crate) async fn job(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        logged("job", async {
            let row =
                sqlx::query("SELECT state, body, error_code, error FROM outbox WHERE id = ?1")
                    .bind(id)
                    .fetch_optional(&self.pool)
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
        })
        .await
    }
}

/// A `message_status` row (state, error_code, error_title, status_ts, updated_ms) as a
/// [`StatusRecord`], of either backend.
pub(in crate::store) fn status_record<R>(row: &R) -> Result<StatusRecord, Failure>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get("state")?;
    let state = match state.as_str() {
        "accepted" => DeliveryState::Accepted,
        other => DeliveryState::parse(other)
            .ok_or_else(|| Failure::Corrupt(format!("unknown delivery state `{other}`")))?,
    };
    Ok(StatusRecord {
        state,
        error_code: row.try_get("error_code")?,
        error_title: row.try_get("error_title")?,
        timestamp: row.try_get("status_ts")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

/// An outbox row's `state` column (either backend).
pub(in crate::store) fn job_state(word: &str) -> Result<JobState, Failure> {
    Ok(match word {
        "queued" => JobState::Queued,
        "sending" => JobState::Sending,
        "sent" => JobState::Sent,
        "failed" => JobState::Failed,
        "folded" => JobState::Folded,
        other => return Err(Failure::Corrupt(format!("unknown job state `{other}`"))),
    })
}

/// A `runs` row as a [`RunRecord`], of either backend.
pub(in crate::store) fn run_record<R>(row: &R) -> Result<RunRecord, Failure>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let trigger: String = row.try_get("trigger")?;
    let steps: Option<String> = row.try_get("steps")?;
    Ok(RunRecord {
        run_id: row.try_get("run_id")?,
        flow: row.try_get("flow")?,
        trigger: serde_json::from_str(&trigger)?,
        outcome: row.try_get("outcome")?,
        steps: steps.as_deref().map(serde_json::from_str).transpose()?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::store::conformance::conformance;
    use crate::store::RunStart;
    use aof_actors::model::AuditEntry;
    use serde_json::json;

    conformance! {
        async fn runs_and_the_audit_log_read_back_as_written(store) {
            let start = || store.record_run_start("run_1", "status-flow", json!({"text": "STATUS"}));
            assert_eq!(start().await.expect("ok"), RunStart::New);
            let running = store.run("run_1").await.expect("reads").expect("recorded");
            assert_eq!((running.outcome, running.finished_ms), (None, None));
            assert_eq!(
                start().await.expect("ok"),
                RunStart::Unfinished { flow: "status-flow".into() },
                "started again after a restart: resumed"
            );

            store
                .record_run_end("run_1", "completed", json!({"reply": {"ok": true}}))
                .await
                .expect("ok");
            let done = store.run("run_1").await.expect("reads").expect("recorded");
            assert_eq!(done.flow, "status-flow");
            assert_eq!(done.outcome.as_deref(), Some("completed"));
            assert_eq!(done.steps, Some(json!({"reply": {"ok": true}})));
            assert!(done.finished_ms.is_some());
            assert!(store.run("run_404").await.expect("reads").is_none());
            assert_eq!(
                start().await.expect("ok"),
                RunStart::Finished { outcome: "completed".into() },
                "ended before a restart: not run again"
            );

            for kind in ["inbound", "send_failed"] {
                let entry = AuditEntry {
                    kind: kind.into(),
                    who: Some("+*******4567".into()),
                    detail: json!({}),
                };
                store.audit(entry).await.expect("written");
            }
            let log = store.audit_log(10).await.expect("reads");
            assert_eq!(
                log.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
                ["send_failed", "inbound"]
            );
            assert_eq!(store.audit_log(1).await.expect("reads").len(), 1);
        }
    }
}
