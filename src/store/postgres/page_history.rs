//! The sandbox page's history on PostgreSQL (SQLite's twin: `store/page_events.rs`): every event
//! the page was shown, numbered, and the highest sandbox wamid sent, so that a restarted sandbox
//! shows what it showed and numbers on.

use super::PgStore;
use crate::store::{logged, to_i64, Failure, Fut, PageHistory};
use aof_actors::model::now_ms;
use sqlx::{PgPool, Row};

async fn append_page_events(
    pool: &PgPool,
    events: &[(u64, String)],
    keep: u64,
) -> Result<(), Failure> {
    let mut tx = pool.begin().await?;
    let at = now_ms();
    for (seq, event) in events {
        sqlx::query(
            "INSERT INTO page_events (seq, at_ms, event) VALUES ($1, $2, $3)
             ON CONFLICT (seq) DO UPDATE SET at_ms = excluded.at_ms, event = excluded.event",
        )
        .bind(to_i64(*seq))
        .bind(at)
        .bind(event)
        .execute(&mut *tx)
        .await?;
    }
    if let Some((last, _)) = events.last() {
        sqlx::query("DELETE FROM page_events WHERE seq <= $1")
            .bind(to_i64(last.saturating_sub(keep)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn recent_page_events(pool: &PgPool, limit: u64) -> Result<Vec<(u64, String)>, Failure> {
    let rows = sqlx::query(
        "SELECT seq, event FROM
             (SELECT seq, event FROM page_events ORDER BY seq DESC LIMIT $1) AS newest
         ORDER BY seq",
    )
    .bind(to_i64(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get("seq")?;
            Ok((
                u64::try_from(seq).unwrap_or_default(),
                row.try_get("event")?,
            ))
        })
        .collect()
}

/// SQLite's `CAST(SUBSTR(wamid, 15) AS INTEGER)` reads the number the suffix starts with (0 when
/// none, the largest integer when too long); PostgreSQL's cast would refuse such a suffix, so the
/// leading digits are taken with a pattern and capped.
async fn last_sandbox_wamid(pool: &PgPool) -> Result<u64, Failure> {
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(CASE WHEN n > 9223372036854775807 THEN 9223372036854775807 ELSE n END)::BIGINT
         FROM (SELECT CAST(SUBSTRING(SUBSTR(wamid, 15) FROM '^\\s*\\+?([0-9]+)') AS NUMERIC) AS n
               FROM outbound_messages WHERE wamid LIKE 'wamid.sandbox.%') AS numbered",
    )
    .fetch_one(pool)
    .await?;
    Ok(last.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

impl PageHistory for PgStore {
    fn append_page_events<'a>(&'a self, events: &'a [(u64, String)], keep: u64) -> Fut<'a, ()> {
        Box::pin(logged(
            "append_page_events",
            append_page_events(&self.pool, events, keep),
        ))
    }

    fn recent_page_events<'a>(&'a self, limit: u64) -> Fut<'a, Vec<(u64, String)>> {
        Box::pin(logged(
            "recent_page_events",
            recent_page_events(&self.pool, limit),
        ))
    }

    fn last_sandbox_wamid<'a>(&'a self) -> Fut<'a, u64> {
        Box::pin(logged("last_sandbox_wamid", last_sandbox_wamid(&self.pool)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::fresh_database;

    #[tokio::test(flavor = "current_thread")]
    async fn history_keeps_the_newest_and_sandbox_wamids_number_on() {
        let Some(db) = fresh_database().await else {
            return;
        };
        let store = db.store().await;
        let events = [(1, "a".into()), (2, "b".into()), (3, "c".into())];
        store.append_page_events(&events, 2).await.expect("kept");
        store
            .append_page_events(&[(3, "C".into())], 2)
            .await
            .expect("kept");
        let recent = store.recent_page_events(10).await.expect("reads");
        assert_eq!(recent, [(2, "b".to_owned()), (3, "C".to_owned())]);
        assert_eq!(store.last_sandbox_wamid().await.expect("reads"), 0);
        // Suffixes SQLite's cast reads as 0, a prefix, or its largest integer.
        for (wamid, last) in [
            ("wamid.sandbox.x", 0),
            ("wamid.sandbox.41", 41),
            ("wamid.sandbox.57abc", 57),
            ("wamid.other.900", 57),
            ("wamid.sandbox.99999999999999999999999", u64::MAX >> 1),
        ] {
            sqlx::query(
                "INSERT INTO outbound_messages (wamid, job_id, to_wa, kind, sent_ms)
                 VALUES ($1, 'job', '15550001111', 'text', 1)",
            )
            .bind(wamid)
            .execute(&store.pool)
            .await
            .expect("written");
            assert_eq!(
                store.last_sandbox_wamid().await.expect("reads"),
                last,
                "{wamid}"
            );
        }
        store.close().await;
    }
}
