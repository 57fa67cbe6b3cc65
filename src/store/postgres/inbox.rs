//! The inbox as a repository on PostgreSQL (SQLite's twin: `store/inbox.rs`): the HTTP intake of
//! any replica keeps events in the shared inbox before acknowledging them, and start-up resumes
//! the rows still open.

use super::PgStore;
use crate::store::{logged, Failure, Fut, Inbox, InboxEntry, InboxRow};
use aof_actors::ids::InboxSeq;
use aof_actors::model::now_ms;
use sqlx::PgPool;
use std::time::Duration;

/// Done rows are kept this long (for a look at what arrived), then dropped at start-up; as on
/// SQLite.
const KEEP_DONE_MS: i64 = 7 * 24 * 3_600_000;

async fn open_inbox(pool: &PgPool, remember: Duration) -> Result<Vec<InboxRow>, Failure> {
    sqlx::query("DELETE FROM inbox WHERE done_ms < $1")
        .bind(now_ms() - KEEP_DONE_MS)
        .execute(pool)
        .await?;
    let remember_ms = i64::try_from(remember.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM processed_messages WHERE seen_at < $1")
        .bind(now_ms().saturating_sub(remember_ms))
        .execute(pool)
        .await?;
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, kind, body FROM inbox WHERE done_ms IS NULL ORDER BY seq")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, kind, body)| InboxRow {
            seq: InboxSeq(seq),
            kind,
            body,
        })
        .collect())
}

impl Inbox for PgStore {
    fn keep_events(&self, entries: Vec<InboxEntry>) -> Fut<'_, Vec<Option<InboxSeq>>> {
        Box::pin(logged("keep_events", self.intake.keep(entries, Vec::new())))
    }

    fn open_inbox(&self, remember: Duration) -> Fut<'_, Vec<InboxRow>> {
        Box::pin(logged("open_inbox", open_inbox(&self.pool, remember)))
    }
}
