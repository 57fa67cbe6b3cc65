//! On-call covers set from the chat (`COVER 2h`, `COVER Bob until 18:00`): who takes the pager,
//! until when, and who said so. Kept in the store so that a restart keeps them.

use super::{logged, Failure, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use aof_actors::WaId;
use sqlx::Row;

/// One cover: `name` (at `phone`) is paged first until `until_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    /// Who takes the pager.
    pub phone: WaId,
    /// Their name, as the directory or the rota knows them.
    pub name: String,
    /// Unix milliseconds when the cover ends.
    pub until_ms: i64,
    /// Who set it (E.164 or a name), for the audit and the team.
    pub set_by: String,
}

impl SqliteStore {
    /// Records a cover.
    pub(crate) async fn add_cover(&self, cover: &Cover) -> Result<(), StoreError> {
        logged("add_cover", async {
            sqlx::query(
                "INSERT INTO oncall_covers (phone, name, until_ms, set_by, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(cover.phone.e164())
            .bind(&cover.name)
            .bind(cover.until_ms)
            .bind(&cover.set_by)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// The covers in force at `at_ms`, the newest first.
    pub(crate) async fn covers_at(&self, at_ms: i64) -> Result<Vec<Cover>, StoreError> {
        logged("covers_at", async {
            let rows = sqlx::query(
                "SELECT phone, name, until_ms, set_by FROM oncall_covers
                 WHERE until_ms > ?1 ORDER BY id DESC",
            )
            .bind(at_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let phone: String = row.try_get("phone")?;
                    Ok(Cover {
                        phone: WaId::parse(&phone).ok_or_else(|| {
                            Failure::Corrupt(format!("oncall_covers.phone `{phone}`"))
                        })?,
                        name: row.try_get("name")?,
                        until_ms: row.try_get("until_ms")?,
                        set_by: row.try_get("set_by")?,
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::conformance;

    conformance! {
        async fn covers_in_force_are_listed_newest_first_and_ended_ones_not(store) {
            let cover = |who: &str, name: &str, until_ms| Cover {
                phone: WaId::parse(who).unwrap(),
                name: name.into(),
                until_ms,
                set_by: "+15551234567".into(),
            };
            let now = now_ms();
            store.add_cover(&cover("15557654321", "Bob", now + 60_000)).await.expect("kept");
            store.add_cover(&cover("15550001234", "Carol", now + 120_000)).await.expect("kept");
            store.add_cover(&cover("15559990000", "Old", now - 1)).await.expect("kept");
            let names: Vec<String> = store
                .covers_at(now)
                .await
                .expect("read")
                .into_iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(names, ["Carol", "Bob"]);
            assert!(store.covers_at(now + 200_000).await.expect("read").is_empty());
        }
    }
}
