//! The inbox: every event the bot acknowledged (a WhatsApp message, an alert, a PagerDuty event,
//! a flow webhook) is kept here before the 2xx and stays open until it has been handled, so that a
//! crash in between hands it over again after the restart instead of losing it. Delivery statuses
//! are recorded in the same commit (recording one twice changes nothing).

use super::actor_state::record_sent;
use super::batch::GroupWriter;
use super::records::delivery_rank;
use super::repo::Fut;
use super::{logged, Failure, SqliteStore};
use aof_actors::ids::{InboxSeq, WaId};
use aof_actors::model::{now_ms, InboundMessage, QueuedJob, StatusUpdate};
use sqlx::{Sqlite, Transaction};
use std::time::Duration;

/// Done rows are kept this long (for a look at what arrived), then dropped at start-up.
const KEEP_DONE_MS: i64 = 7 * 24 * 3_600_000;

/// An event to keep.
#[derive(Clone, Debug)]
pub struct InboxEntry {
    /// Who handles it after a restart: `message`, `alertmanager`, `datadog`, `pagerduty`, `flow`.
    pub kind: &'static str,
    /// Its id, where the sender gives one (Meta's message id, PagerDuty's event id, an
    /// `Idempotency-Key`): a second delivery is a duplicate, also long after the first was
    /// handled.
    pub once: Option<String>,
    /// A key unique among open rows (an alert's fingerprint and status): two deliveries at the
    /// same time are handled once, a later one again.
    pub open_key: Option<String>,
    /// The event, as JSON.
    pub body: String,
}

/// An open row: kept, not handled yet.
#[derive(Clone, Debug)]
pub struct InboxRow {
    /// Its place in arrival order, and its id.
    pub seq: InboxSeq,
    /// See [`InboxEntry::kind`].
    pub kind: String,
    /// See [`InboxEntry::body`].
    pub body: String,
}

/// A message as an inbox entry: its wamid is its `once` key.
pub(super) fn message_entry(message: &InboundMessage) -> Result<InboxEntry, Failure> {
    Ok(InboxEntry {
        kind: "message",
        once: Some(message.id.0.clone()),
        open_key: None,
        body: serde_json::to_string(message)?,
    })
}

/// Keeps `entries` and records `statuses` inside the group commit's transaction; per entry, its
/// row or `None` for a duplicate.
pub(super) async fn keep(
    tx: &mut Transaction<'static, Sqlite>,
    entries: &[InboxEntry],
    statuses: &[StatusUpdate],
) -> Result<Vec<Option<InboxSeq>>, Failure> {
    for status in statuses {
        record_status(tx, status).await?;
        confirm_sending(tx, status).await?;
    }
    let now = now_ms();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(id) = &entry.once {
            let first = sqlx::query(
                "INSERT OR IGNORE INTO processed_messages (id, seen_at) VALUES (?1, ?2)",
            )
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            if first.rows_affected() == 0 {
                rows.push(None);
                continue;
            }
        }
        let kept = sqlx::query(
            "INSERT OR IGNORE INTO inbox (kind, open_key, body, received_ms) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(entry.kind)
        .bind(entry.open_key.as_deref())
        .bind(&entry.body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        rows.push((kept.rows_affected() == 1).then(|| InboxSeq(kept.last_insert_rowid())));
    }
    Ok(rows)
}

/// Records a delivery status against the outbound message. Keyed by wamid alone, so a status that
/// overtakes our own record of the send still lands; states only move forward (failed ranks
/// highest: terminal).
async fn record_status(
    tx: &mut Transaction<'static, Sqlite>,
    status: &StatusUpdate,
) -> Result<(), Failure> {
    let (code, title) = status
        .error
        .clone()
        .map_or((None, None), |(c, t)| (Some(c), Some(t)));
    sqlx::query(
        "INSERT INTO message_status
             (wamid, state, rank, recipient, error_code, error_title, status_ts, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(wamid) DO UPDATE SET
             state = excluded.state,
             rank = excluded.rank,
             recipient = COALESCE(excluded.recipient, message_status.recipient),
             error_code = excluded.error_code,
             error_title = excluded.error_title,
             status_ts = excluded.status_ts,
             updated_ms = excluded.updated_ms
         WHERE excluded.rank > message_status.rank",
    )
    .bind(status.id.as_str())
    .bind(status.state.as_str())
    .bind(delivery_rank(status.state))
    .bind(status.recipient.as_ref().map(WaId::as_str))
    .bind(code)
    .bind(title)
    .bind(status.timestamp)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A status that names an outbox row left `sending` (its `biz_opaque_callback_data`: the bot
/// stopped before it stored Meta's answer) shows that Meta has the message: the row is recorded
/// as sent with the status's wamid, and is not sent again.
async fn confirm_sending(
    tx: &mut Transaction<'static, Sqlite>,
    status: &StatusUpdate,
) -> Result<(), Failure> {
    let Some(id) = &status.callback else {
        return Ok(());
    };
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM outbox WHERE id = ?1 AND state = 'sending'")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(body) = body else {
        return Ok(());
    };
    let job: QueuedJob = serde_json::from_str(&body)?;
    record_sent(tx, &job, &status.id).await?;
    tracing::info!(job = %id, "a status confirmed a message that was leaving when the bot stopped");
    metrics::counter!("aof_sends_confirmed_by_status_total").increment(1);
    Ok(())
}

/// Closes a row in the next group commit.
pub(super) async fn close(
    writer: &GroupWriter,
    seq: InboxSeq,
    outcome: String,
) -> Result<(), Failure> {
    let sql = "UPDATE inbox SET done_ms = ?1, outcome = ?2 WHERE seq = ?3 AND done_ms IS NULL";
    let args = vec![now_ms().into(), outcome.into(), seq.0.into()];
    writer.exec(sql, args).await.map(drop)
}

/// The inbox as a repository: the HTTP intake keeps events in it, start-up resumes its open rows.
pub trait Inbox: Send + Sync {
    /// Keeps events in one commit, before they are acknowledged; per entry, its row, or `None`
    /// when it is a duplicate (see [`InboxEntry::once`] and [`InboxEntry::open_key`]).
    fn keep_events(&self, entries: Vec<InboxEntry>) -> Fut<'_, Vec<Option<InboxSeq>>>;

    /// The open rows in arrival order (after a restart: what was kept and not handled). On the
    /// way, drops done rows older than a week and the `once` ids older than `remember`, so
    /// neither table grows without bound.
    fn open_inbox(&self, remember: Duration) -> Fut<'_, Vec<InboxRow>>;
}

impl Inbox for SqliteStore {
    fn keep_events(&self, entries: Vec<InboxEntry>) -> Fut<'_, Vec<Option<InboxSeq>>> {
        Box::pin(logged("keep_events", self.writer.keep(entries, Vec::new())))
    }

    fn open_inbox(&self, remember: Duration) -> Fut<'_, Vec<InboxRow>> {
        Box::pin(logged("open_inbox", async move {
            sqlx::query("DELETE FROM inbox WHERE done_ms < ?1")
                .bind(now_ms() - KEEP_DONE_MS)
                .execute(&self.pool)
                .await?;
            let remember_ms = i64::try_from(remember.as_millis()).unwrap_or(i64::MAX);
            sqlx::query("DELETE FROM processed_messages WHERE seen_at < ?1")
                .bind(now_ms().saturating_sub(remember_ms))
                .execute(&self.pool)
                .await?;
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT seq, kind, body FROM inbox WHERE done_ms IS NULL ORDER BY seq",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(seq, kind, body)| InboxRow {
                    seq: InboxSeq(seq),
                    kind,
                    body,
                })
                .collect())
        }))
    }
}
