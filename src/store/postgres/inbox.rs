//! The inbox as a repository on PostgreSQL (SQLite's twin: `store/inbox.rs`): the HTTP intake of
//! any replica keeps events in the shared inbox before acknowledging them, and start-up resumes
//! the rows still open.

use super::PgStore;
use crate::store::{logged, Failure, Fut, Inbox, InboxEntry, InboxRow};
use aof_actors::ids::InboxSeq;
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use sqlx::PgPool;
use std::time::Duration;

/// Done rows are kept this long (for a look at what arrived), then dropped at start-up; as on
/// SQLite.
const KEEP_DONE_MS: i64 = 7 * 24 * 3_600_000;

async fn open_inbox(pool: &PgPool, remember: Duration) -> Result<Vec<InboxRow>, Failure> {
    tidy(pool, remember).await?;
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, kind, body FROM inbox WHERE done_ms IS NULL ORDER BY seq")
            .fetch_all(pool)
            .await?;
    Ok(inbox_rows(rows))
}

/// Drops the rows done long ago and forgets message ids older than `remember`.
async fn tidy(pool: &PgPool, remember: Duration) -> Result<(), Failure> {
    sqlx::query("DELETE FROM inbox WHERE done_ms < $1")
        .bind(now_ms() - KEEP_DONE_MS)
        .execute(pool)
        .await?;
    let remember_ms = i64::try_from(remember.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM processed_messages WHERE seen_at < $1")
        .bind(now_ms().saturating_sub(remember_ms))
        .execute(pool)
        .await?;
    Ok(())
}

/// Rows `(seq, kind, body)` as the inbox's rows.
fn inbox_rows(rows: Vec<(i64, String, String)>) -> Vec<InboxRow> {
    rows.into_iter()
        .map(|(seq, kind, body)| InboxRow {
            seq: InboxSeq(seq),
            kind,
            body,
        })
        .collect()
}

/// Most rows one claim hands over; the next poll takes the rest.
const MOST_CLAIMED: i64 = 1_000;

impl PgStore {
    /// The leader's share of the inbox: the open rows that no leader of its epoch has handed over
    /// yet (kept by a follower, or left by the leader before it), oldest first, marked as its own
    /// in the same statement, so that each is handed over once per leader. Only a leading store
    /// claims; a follower's gets nothing.
    pub async fn claim_inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        if self.epoch == 0 {
            return Ok(Vec::new());
        }
        let claim = async {
            let mut rows: Vec<(i64, String, String)> = sqlx::query_as(
                "UPDATE inbox SET claimed = $1 WHERE seq IN (
                     SELECT seq FROM inbox WHERE done_ms IS NULL AND claimed < $1
                     ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING seq, kind, body",
            )
            .bind(self.epoch)
            .bind(MOST_CLAIMED)
            .fetch_all(&self.pool)
            .await?;
            rows.sort_by_key(|r| r.0);
            Ok(inbox_rows(rows))
        };
        logged("claim_inbox", claim).await
    }

    /// A connection that hears when rows are kept for the leader to take (`NOTIFY aof_inbox`).
    pub async fn inbox_listener(&self) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(super::INBOX_CHANNEL).await?;
        Ok(listener)
    }

    /// Drops the rows done long ago and message ids older than `remember`, as a start does.
    pub async fn tidy_inbox(&self, remember: Duration) -> Result<(), StoreError> {
        logged("tidy_inbox", tidy(&self.pool, remember)).await
    }
}

impl Inbox for PgStore {
    fn keep_events(&self, entries: Vec<InboxEntry>) -> Fut<'_, Vec<Option<InboxSeq>>> {
        Box::pin(logged("keep_events", self.intake.keep(entries, Vec::new())))
    }

    fn open_inbox(&self, remember: Duration) -> Fut<'_, Vec<InboxRow>> {
        Box::pin(logged("open_inbox", open_inbox(&self.pool, remember)))
    }
}
