//! The inbox: every event the bot acknowledged (a WhatsApp message, an alert, a PagerDuty event,
//! a flow webhook) is kept here before the 2xx and stays open until it has been handled, so that a
//! crash in between hands it over again after the restart instead of losing it. Delivery statuses
//! are recorded in the same commit (recording one twice changes nothing).

use super::actor_state::sent;
use super::batch::AUDIT_INSERT;
use super::batch::{execute_all, GroupWriter};
use super::records::delivery_rank;
use super::repo::Fut;
use super::{logged, Failure, SqliteStore};
use aof_actors::ids::{InboxSeq, WaId};
use aof_actors::model::{now_ms, AuditEntry, InboundMessage, QueuedJob, StatusUpdate};
use aof_actors::ports::AuditInbound;
use rusqlite::{params, Connection, OptionalExtension};
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
    /// Its audit line, written with it when it is new.
    pub audit: Option<AuditEntry>,
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
pub(super) fn message_entry(
    message: &InboundMessage,
    audit: AuditInbound,
) -> Result<InboxEntry, Failure> {
    Ok(InboxEntry {
        kind: "message",
        once: Some(message.id.0.clone()),
        open_key: None,
        body: serde_json::to_string(message)?,
        audit: audit.entry(message),
    })
}

/// Keeps `entries` and records `statuses` inside the group commit's transaction; per entry, its
/// row or `None` for a duplicate: its `once` id seen before (also earlier in the same batch), or
/// its `open_key` held by an open row.
pub(super) fn keep(
    tx: &Connection,
    entries: &[InboxEntry],
    statuses: &[StatusUpdate],
) -> Result<Vec<Option<InboxSeq>>, Failure> {
    record_statuses(tx, statuses)?;
    confirm_sending(tx, statuses)?;
    let now = now_ms();
    let mut seen = tx.prepare_cached(
        "INSERT INTO processed_messages (id, seen_at) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO inbox (kind, open_key, body, received_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING RETURNING seq",
    )?;
    let mut audit = tx.prepare_cached(AUDIT_INSERT)?;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(once) = &entry.once {
            if seen.execute(params![once, now])? == 0 {
                rows.push(None);
                continue;
            }
        }
        let seq: Option<i64> = insert
            .query_row(
                params![entry.kind, entry.open_key, entry.body, now],
                |row| row.get(0),
            )
            .optional()?;
        if let (Some(_), Some(line)) = (seq, &entry.audit) {
            audit.execute(params![
                now,
                line.kind,
                line.who,
                serde_json::to_string(&line.detail)?
            ])?;
        }
        rows.push(seq.map(InboxSeq));
    }
    Ok(rows)
}

/// Records delivery statuses against the outbound messages. Keyed by wamid alone, so a status
/// that overtakes our own record of the send still lands; states only move forward (failed ranks
/// highest: terminal), also between two statuses of one batch.
fn record_statuses(tx: &Connection, statuses: &[StatusUpdate]) -> Result<(), Failure> {
    if statuses.is_empty() {
        return Ok(());
    }
    let mut record = tx.prepare_cached(
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
    )?;
    let now = now_ms();
    for s in statuses {
        let (code, title) = s.error.clone().unzip();
        record.execute(params![
            s.id.as_str(),
            s.state.as_str(),
            delivery_rank(s.state),
            s.recipient.as_ref().map(WaId::as_str),
            code,
            title,
            s.timestamp,
            now
        ])?;
    }
    Ok(())
}

/// Statuses that name an outbox row left `sending` (their `biz_opaque_callback_data`: the bot
/// stopped before it stored Meta's answer) show that Meta has the message: the row is recorded as
/// sent with the status's wamid, and is not sent again.
fn confirm_sending(tx: &Connection, statuses: &[StatusUpdate]) -> Result<(), Failure> {
    let mut left =
        tx.prepare_cached("SELECT body FROM outbox WHERE id = ?1 AND state = 'sending'")?;
    for status in statuses {
        let Some(id) = status.callback.as_deref() else {
            continue;
        };
        let body: Option<String> = left.query_row([id], |row| row.get(0)).optional()?;
        let Some(body) = body else {
            continue;
        };
        let job: QueuedJob = serde_json::from_str(&body)?;
        execute_all(tx, &sent(&job, &status.id)?)?;
        tracing::info!(job = %id, "a status confirmed a message that was leaving when the bot stopped");
        metrics::counter!("aof_sends_confirmed_by_status_total").increment(1);
    }
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
