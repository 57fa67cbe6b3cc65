//! On-call covers (`COVER`) and silences (`SILENCE`) on PostgreSQL (SQLite's twins:
//! `store/covers.rs`, `store/silences.rs`): the same rows, the held list as the same JSON text.
//! Setting a silence lifts the one in force under an advisory lock (which lifting takes too), so
//! replicas setting one at once leave one in force that holds everything.

use super::PgStore;
use crate::store::{logged, Cover, Covers, Failure, Fut, Silence, Silences};
use aof_actors::model::now_ms;
use aof_actors::WaId;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

const COLUMNS: &str = "id, service, until_ms, set_by, held";

async fn add_cover(pool: &PgPool, cover: &Cover) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO oncall_covers (phone, name, until_ms, set_by, created_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(cover.phone.e164())
    .bind(&cover.name)
    .bind(cover.until_ms)
    .bind(&cover.set_by)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

async fn covers_at(pool: &PgPool, at_ms: i64) -> Result<Vec<Cover>, Failure> {
    let rows = sqlx::query(
        "SELECT phone, name, until_ms, set_by FROM oncall_covers
         WHERE until_ms > $1 ORDER BY id DESC",
    )
    .bind(at_ms)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let phone: String = row.try_get("phone")?;
            Ok(Cover {
                phone: WaId::parse(&phone)
                    .ok_or_else(|| Failure::Corrupt(format!("oncall_covers.phone `{phone}`")))?,
                name: row.try_get("name")?,
                until_ms: row.try_get("until_ms")?,
                set_by: row.try_get("set_by")?,
            })
        })
        .collect()
}

fn silence(row: &PgRow) -> Result<Silence, Failure> {
    let held: String = row.try_get("held")?;
    Ok(Silence {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        until_ms: row.try_get("until_ms")?,
        set_by: row.try_get("set_by")?,
        held: serde_json::from_str(&held)?,
    })
}

async fn add_silence(
    pool: &PgPool,
    service: &str,
    until_ms: i64,
    set_by: &str,
) -> Result<Silence, Failure> {
    let now = now_ms();
    let service = service.trim().to_lowercase();
    let mut tx = pool.begin().await?;
    super::Lock::Silences.take(&mut tx).await?;
    // One at most is not lifted (this lock keeps it so); the newest one's list if ever more.
    let earlier: Vec<(i64, String)> = sqlx::query_as(
        "UPDATE silences SET lifted_ms = $2 WHERE service = $1 AND lifted_ms IS NULL
         RETURNING id, held",
    )
    .bind(&service)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let held = earlier
        .into_iter()
        .max_by_key(|(id, _)| *id)
        .map(|(_, held)| held);
    let query = format!(
        "INSERT INTO silences (service, until_ms, set_by, created_ms, held)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&query)
        .bind(&service)
        .bind(until_ms)
        .bind(set_by)
        .bind(now)
        .bind(held.unwrap_or_else(|| "[]".into()))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    silence(&row)
}

async fn silence_of(pool: &PgPool, service: &str, at_ms: i64) -> Result<Option<Silence>, Failure> {
    let query = format!(
        "SELECT {COLUMNS} FROM silences
         WHERE service = $1 AND lifted_ms IS NULL AND until_ms > $2 ORDER BY id DESC LIMIT 1"
    );
    let row = sqlx::query(&query)
        .bind(service.trim().to_lowercase())
        .bind(at_ms)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(silence).transpose()
}

async fn silences_at(pool: &PgPool, at_ms: i64) -> Result<Vec<Silence>, Failure> {
    let query = format!(
        "SELECT {COLUMNS} FROM silences WHERE lifted_ms IS NULL AND until_ms > $1
         ORDER BY service COLLATE \"C\", id"
    );
    let rows = sqlx::query(&query).bind(at_ms).fetch_all(pool).await?;
    rows.iter().map(silence).collect()
}

/// Appends `alert_id` to the held list unless it is there, under the row's lock; the list is
/// rewritten as serde_json writes it, the compact text SQLite's `json_insert` gives.
async fn hold_page(pool: &PgPool, id: i64, alert_id: &str) -> Result<(), Failure> {
    let mut tx = pool.begin().await?;
    let held: Option<String> =
        sqlx::query_scalar("SELECT held FROM silences WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(held) = held else { return Ok(()) };
    let mut list: Vec<Value> = serde_json::from_str(&held)?;
    if list.iter().any(|v| v.as_str() == Some(alert_id)) {
        return Ok(());
    }
    list.push(Value::String(alert_id.to_owned()));
    sqlx::query("UPDATE silences SET held = $2 WHERE id = $1")
        .bind(id)
        .bind(serde_json::to_string(&list)?)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Under the lock of `add_silence`, so that a silence being replaced is lifted as a whole.
async fn lift_silence(pool: &PgPool, service: &str) -> Result<Option<Silence>, Failure> {
    let mut tx = pool.begin().await?;
    super::Lock::Silences.take(&mut tx).await?;
    let query = format!(
        "UPDATE silences SET lifted_ms = $2 WHERE service = $1 AND lifted_ms IS NULL
         RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(&query)
        .bind(service.trim().to_lowercase())
        .bind(now_ms())
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut lifted: Vec<Silence> = rows.iter().map(silence).collect::<Result<_, _>>()?;
    lifted.sort_by_key(|s| s.id);
    Ok(lifted.pop())
}

impl Covers for PgStore {
    fn add_cover<'a>(&'a self, cover: &'a Cover) -> Fut<'a, ()> {
        Box::pin(logged("add_cover", add_cover(&self.pool, cover)))
    }

    fn covers_at(&self, at_ms: i64) -> Fut<'_, Vec<Cover>> {
        Box::pin(logged("covers_at", covers_at(&self.pool, at_ms)))
    }
}

impl Silences for PgStore {
    fn add_silence<'a>(
        &'a self,
        service: &'a str,
        until_ms: i64,
        set_by: &'a str,
    ) -> Fut<'a, Silence> {
        Box::pin(logged(
            "add_silence",
            add_silence(&self.pool, service, until_ms, set_by),
        ))
    }

    fn silence_of<'a>(&'a self, service: &'a str, at_ms: i64) -> Fut<'a, Option<Silence>> {
        Box::pin(logged("silence_of", silence_of(&self.pool, service, at_ms)))
    }

    fn silences_at(&self, at_ms: i64) -> Fut<'_, Vec<Silence>> {
        Box::pin(logged("silences_at", silences_at(&self.pool, at_ms)))
    }

    fn hold_page<'a>(&'a self, id: i64, alert_id: &'a str) -> Fut<'a, ()> {
        Box::pin(logged("hold_page", hold_page(&self.pool, id, alert_id)))
    }

    fn lift_silence<'a>(&'a self, service: &'a str) -> Fut<'a, Option<Silence>> {
        Box::pin(logged("lift_silence", lift_silence(&self.pool, service)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::fresh_database;

    #[tokio::test(flavor = "current_thread")]
    async fn silences_set_on_several_replicas_at_once_leave_one_holding_everything() {
        let Some(db) = fresh_database().await else {
            return;
        };
        let store = db.store().await;
        let first = store
            .add_silence("API", i64::MAX, "+15551234567")
            .await
            .expect("set");
        for alert in ["ALT-0001", "ALT-0002", "ALT-0001"] {
            store.hold_page(first.id, alert).await.expect("held");
        }
        let held: String = sqlx::query_scalar("SELECT held FROM silences WHERE id = $1")
            .bind(first.id)
            .fetch_one(&store.pool)
            .await
            .expect("reads");
        assert_eq!(
            held, r#"["ALT-0001","ALT-0002"]"#,
            "as SQLite's json_insert writes it"
        );
        let sets = (0..8).map(|_| store.add_silence("api", i64::MAX, "+15551234567"));
        for set in futures_util::future::join_all(sets).await {
            assert_eq!(set.expect("set").held, ["ALT-0001", "ALT-0002"]);
        }
        let in_force = store.silences_at(0).await.expect("reads");
        assert_eq!(in_force.len(), 1, "{in_force:?}");
        store.close().await;
    }
}
