//! The inbox: every event the bot acknowledged (a WhatsApp message, an alert, a PagerDuty event,
//! a flow webhook) is kept here before the 2xx and stays open until it has been handled, so that a
//! crash in between hands it over again after the restart instead of losing it. Delivery statuses
//! are recorded in the same commit (recording one twice changes nothing).

use super::actor_state::sent;
use super::batch::{execute_all, GroupWriter};
use super::records::delivery_rank;
use super::repo::Fut;
use super::{logged, Failure, SqliteStore};
use aof_actors::ids::{InboxSeq, WaId};
use aof_actors::model::{now_ms, InboundMessage, QueuedJob, StatusUpdate};
use serde_json::{json, Value};
use sqlx::{Sqlite, Transaction};
use std::collections::{HashMap, HashSet};
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
/// row or `None` for a duplicate. A handful of statements whatever the batch's size (each
/// statement costs a hand-over to SQLite's thread, about 0.1 ms here): the rows go in as one JSON
/// array each (`json_each`), and `RETURNING` says which were new.
pub(super) async fn keep(
    tx: &mut Transaction<'static, Sqlite>,
    entries: &[InboxEntry],
    statuses: &[StatusUpdate],
) -> Result<Vec<Option<InboxSeq>>, Failure> {
    record_statuses(tx, statuses).await?;
    confirm_sending(tx, statuses).await?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let once: Vec<&str> = entries.iter().filter_map(|e| e.once.as_deref()).collect();
    let mut fresh: HashSet<String> = if once.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar(
            "INSERT OR IGNORE INTO processed_messages (id, seen_at)
             SELECT value, ?2 FROM json_each(?1) RETURNING id",
        )
        .bind(serde_json::to_string(&once)?)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    // An id new to the table is claimed by its first entry in the batch; a repeat is a duplicate.
    let candidates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].once.as_ref().is_none_or(|id| fresh.remove(id)))
        .collect();
    let mut rows = vec![None; entries.len()];
    if candidates.is_empty() {
        return Ok(rows);
    }
    let values: Vec<(&str, Option<&str>, &str)> = candidates
        .iter()
        .map(|&i| {
            let e = &entries[i];
            (e.kind, e.open_key.as_deref(), e.body.as_str())
        })
        .collect();
    let kept: Vec<(i64, String)> = sqlx::query_as(
        "INSERT OR IGNORE INTO inbox (kind, open_key, body, received_ms)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]'), ?2
         FROM json_each(?1) RETURNING seq, body",
    )
    .bind(serde_json::to_string(&values)?)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    // Matched by body, not by order (RETURNING's is not defined); of two equal bodies (one open
    // key delivered twice in a batch) only one was inserted, and the first entry takes it.
    let mut by_body: HashMap<String, Vec<i64>> = HashMap::new();
    for (seq, body) in kept {
        by_body.entry(body).or_default().push(seq);
    }
    for seqs in by_body.values_mut() {
        seqs.sort_unstable_by(|a, b| b.cmp(a));
    }
    for i in candidates {
        rows[i] = by_body
            .get_mut(&entries[i].body)
            .and_then(Vec::pop)
            .map(InboxSeq);
    }
    Ok(rows)
}

/// Records delivery statuses against the outbound messages, in one statement. Keyed by wamid
/// alone, so a status that overtakes our own record of the send still lands; states only move
/// forward (failed ranks highest: terminal), also between two statuses of one batch.
async fn record_statuses(
    tx: &mut Transaction<'static, Sqlite>,
    statuses: &[StatusUpdate],
) -> Result<(), Failure> {
    if statuses.is_empty() {
        return Ok(());
    }
    let values: Vec<Value> = statuses
        .iter()
        .map(|s| {
            let (code, title) = s.error.clone().unzip();
            json!([
                s.id.as_str(),
                s.state.as_str(),
                delivery_rank(s.state),
                s.recipient.as_ref().map(WaId::as_str),
                code,
                title,
                s.timestamp
            ])
        })
        .collect();
    sqlx::query(
        "INSERT INTO message_status
             (wamid, state, rank, recipient, error_code, error_title, status_ts, updated_ms)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                json_extract(value, '$[4]'), json_extract(value, '$[5]'),
                json_extract(value, '$[6]'), ?2
         FROM json_each(?1) WHERE true
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
    .bind(serde_json::to_string(&values)?)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Statuses that name an outbox row left `sending` (their `biz_opaque_callback_data`: the bot
/// stopped before it stored Meta's answer) show that Meta has the message: the row is recorded as
/// sent with the status's wamid, and is not sent again. One look-up for the whole batch.
async fn confirm_sending(
    tx: &mut Transaction<'static, Sqlite>,
    statuses: &[StatusUpdate],
) -> Result<(), Failure> {
    let named: HashMap<&str, &StatusUpdate> = statuses
        .iter()
        .filter_map(|s| Some((s.callback.as_deref()?, s)))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let ids: Vec<&&str> = named.keys().collect();
    let left: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, body FROM outbox
         WHERE state = 'sending' AND id IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(&ids)?)
    .fetch_all(&mut **tx)
    .await?;
    for (id, body) in left {
        let Some(status) = named.get(id.as_str()) else {
            continue;
        };
        let job: QueuedJob = serde_json::from_str(&body)?;
        execute_all(tx, &sent(&job, &status.id)?).await?;
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
