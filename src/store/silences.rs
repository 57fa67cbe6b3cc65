//! Services silenced from the chat (`SILENCE api-server 1h`): their pages are held and listed when
//! the silence is lifted. Kept in the store so that a restart keeps both the silence and the list.

use super::{logged, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use sqlx::Row;

/// One silence of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// Its row.
    pub id: i64,
    /// The service, lower-case.
    pub service: String,
    /// Unix milliseconds when it ends by itself.
    pub until_ms: i64,
    /// Who set it (E.164).
    pub set_by: String,
    /// The alerts whose pages it held, in order.
    pub held: Vec<String>,
}

const COLUMNS: &str = "id, service, until_ms, set_by, held";

fn silence(row: &sqlx::sqlite::SqliteRow) -> Result<Silence, super::Failure> {
    let held: String = row.try_get("held")?;
    Ok(Silence {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        until_ms: row.try_get("until_ms")?,
        set_by: row.try_get("set_by")?,
        held: serde_json::from_str(&held)?,
    })
}

impl SqliteStore {
    /// Silences `service` until `until_ms`; a silence of it still in force is lifted first (its
    /// held list goes to the new one, so nothing held is forgotten).
    pub(crate) async fn add_silence(
        &self,
        service: &str,
        until_ms: i64,
        set_by: &str,
    ) -> Result<Silence, StoreError> {
        logged("add_silence", async {
            let now = now_ms();
            let service = service.trim().to_lowercase();
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let earlier: Option<String> = sqlx::query_scalar(
                "UPDATE silences SET lifted_ms = ?2 WHERE service = ?1 AND lifted_ms IS NULL
                 RETURNING held",
            )
            .bind(&service)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let query = format!(
                "INSERT INTO silences (service, until_ms, set_by, created_ms, held)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {COLUMNS}"
            );
            let row = sqlx::query(&query)
                .bind(&service)
                .bind(until_ms)
                .bind(set_by)
                .bind(now)
                .bind(earlier.unwrap_or_else(|| "[]".into()))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            silence(&row)
        })
        .await
    }

    /// The silence of `service` in force at `at_ms`, if any.
    pub(crate) async fn silence_of(
        &self,
        service: &str,
        at_ms: i64,
    ) -> Result<Option<Silence>, StoreError> {
        logged("silence_of", async {
            let query = format!(
                "SELECT {COLUMNS} FROM silences
                 WHERE service = ?1 AND lifted_ms IS NULL AND until_ms > ?2 ORDER BY id DESC"
            );
            let row = sqlx::query(&query)
                .bind(service.trim().to_lowercase())
                .bind(at_ms)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(silence).transpose()
        })
        .await
    }

    /// Every silence not lifted yet whose end is after `at_ms`.
    pub(crate) async fn silences_at(&self, at_ms: i64) -> Result<Vec<Silence>, StoreError> {
        logged("silences_at", async {
            let query = format!(
                "SELECT {COLUMNS} FROM silences WHERE lifted_ms IS NULL AND until_ms > ?1
                 ORDER BY service"
            );
            let rows = sqlx::query(&query)
                .bind(at_ms)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(silence).collect()
        })
        .await
    }

    /// Adds `alert_id` to what silence `id` held.
    pub(crate) async fn hold_page(&self, id: i64, alert_id: &str) -> Result<(), StoreError> {
        logged("hold_page", async {
            sqlx::query(
                "UPDATE silences SET held = json_insert(held, '$[#]', ?2)
                 WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM json_each(silences.held) WHERE value = ?2)",
            )
            .bind(id)
            .bind(alert_id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// Lifts the silence of `service` (in force or ended by itself, not lifted yet); it, with what
    /// it held, or `None` when there was none.
    pub(crate) async fn lift_silence(&self, service: &str) -> Result<Option<Silence>, StoreError> {
        logged("lift_silence", async {
            let query = format!(
                "UPDATE silences SET lifted_ms = ?2 WHERE service = ?1 AND lifted_ms IS NULL
                 RETURNING {COLUMNS}"
            );
            let rows = sqlx::query(&query)
                .bind(service.trim().to_lowercase())
                .bind(now_ms())
                .fetch_all(&self.pool)
                .await?;
            let mut lifted: Vec<Silence> = rows.iter().map(silence).collect::<Result<_, _>>()?;
            lifted.sort_by_key(|s| s.id);
            Ok(lifted.pop())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::conformance;

    conformance! {
        async fn a_silence_holds_pages_until_it_is_lifted_and_lists_them(store) {
            let now = now_ms();
            let first = store.add_silence("Search", now + 60_000, "+15551234567").await.expect("set");
            assert_eq!(first.service, "search");
            store.hold_page(first.id, "ALT-0001").await.expect("held");
            // Set again: the new one carries what the old one held.
            let again = store.add_silence("search", now + 120_000, "+15551234567").await.expect("set");
            store.hold_page(again.id, "ALT-0002").await.expect("held");
            store.hold_page(again.id, "ALT-0002").await.expect("once");
            let now_in_force = store.silence_of("SEARCH", now).await.expect("read").expect("in force");
            assert_eq!(now_in_force.held, ["ALT-0001", "ALT-0002"]);
            assert_eq!(store.silences_at(now).await.expect("read").len(), 1);
            assert!(store.silence_of("search", now + 130_000).await.expect("read").is_none());
            let lifted = store.lift_silence("search").await.expect("lifted").expect("there was one");
            assert_eq!(lifted.held, ["ALT-0001", "ALT-0002"]);
            assert!(store.silence_of("search", now).await.expect("read").is_none());
            assert!(store.lift_silence("search").await.expect("answered").is_none());
        }
    }
}
