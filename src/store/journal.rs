//! The run journal: each completed step of a run that has not ended, so that a run resumed after
//! a crash skips what it did and sees what those steps returned (migration 0007).

use super::{logged, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use serde_json::Value;

impl SqliteStore {
    /// See [`super::Runs::journal_step`]. Through the group commit, awaited: committed before the
    /// next step starts.
    pub(crate) async fn journal_step(
        &self,
        run_id: &str,
        step: &str,
        entry: Value,
    ) -> Result<(), StoreError> {
        logged("journal_step", async {
            let sql = "INSERT INTO run_journal (run_id, step, entry, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(run_id, step) DO UPDATE SET entry = excluded.entry, at_ms = excluded.at_ms";
            let args = vec![
                run_id.into(),
                step.into(),
                serde_json::to_string(&entry)?.into(),
                now_ms().into(),
            ];
            self.writer.exec(sql, args).await.map(drop)
        })
        .await
    }

    /// See [`super::Runs::journal`].
    pub(crate) async fn journal(&self, run_id: &str) -> Result<Vec<(String, Value)>, StoreError> {
        logged("journal", async {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT step, entry FROM run_journal WHERE run_id = ?1")
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await?;
            rows.into_iter()
                .map(|(step, entry)| Ok((step, serde_json::from_str(&entry)?)))
                .collect()
        })
        .await
    }
}
