//! The sandbox page's history (the `live` events): every event it was shown, numbered, so that a
//! restarted sandbox shows its conversations, runs and pending requests as they were.

use super::{logged, to_i64, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use sqlx::Row;

impl SqliteStore {
    /// Appends events (`seq`, JSON) in one transaction, then keeps only the newest `keep`.
    pub(crate) async fn append_page_events(
        &self,
        events: &[(u64, String)],
        keep: u64,
    ) -> Result<(), StoreError> {
        logged("append_page_events", async {
            let mut tx = self.pool.begin().await?;
            let at = now_ms();
            for (seq, event) in events {
                sqlx::query(
                    "INSERT OR REPLACE INTO page_events (seq, at_ms, event) VALUES (?1, ?2, ?3)",
                )
                .bind(to_i64(*seq))
                .bind(at)
                .bind(event)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((last, _)) = events.last() {
                sqlx::query("DELETE FROM page_events WHERE seq <= ?1")
                    .bind(to_i64(last.saturating_sub(keep)))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` events, oldest first, with their numbers.
    pub(crate) async fn recent_page_events(
        &self,
        limit: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        logged("recent_page_events", async {
            let rows = sqlx::query(
                "SELECT seq, event FROM (SELECT seq, event FROM page_events ORDER BY seq DESC LIMIT ?1)
                 ORDER BY seq",
            )
            .bind(to_i64(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get("seq")?;
                    Ok((u64::try_from(seq).unwrap_or_default(), row.try_get("event")?))
                })
                .collect()
        })
        .await
    }

    /// The highest number of a sandbox wamid (`wamid.sandbox.N`) the store has seen sent, so that
    /// a restarted sandbox numbers on instead of reusing ids that replies and statuses point to.
    pub(crate) async fn last_sandbox_wamid(&self) -> Result<u64, StoreError> {
        logged("last_sandbox_wamid", async {
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(CAST(SUBSTR(wamid, 15) AS INTEGER)) FROM outbound_messages
                 WHERE wamid LIKE 'wamid.sandbox.%'",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(last.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
        })
        .await
    }
}
