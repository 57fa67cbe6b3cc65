//! Incidents of the built-in `incident-manager` agent: opened from chat or a webhook, listed by the
//! status flow ("Active Incidents"), resolved by a `RESOLVE` reply.
//!
//! Ids are short and sequential (`INC-0001`) so that people can type them; the `body` column keeps
//! a JSON timeline of status changes for later detail without a schema change.

use super::{logged, Failure, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use serde::Serialize;

/// An incident of the `incident-manager` agent, as flows see it (`inc.id`, `inc.title`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IncidentRecord {
    /// `INC-0001`, `INC-0002`, …: short enough to type in a chat reply.
    pub id: String,
    /// What is wrong.
    pub title: String,
    /// As reported (`critical`, `warning`, …).
    pub severity: String,
    /// The service affected.
    pub service: String,
    /// `open` or `resolved`.
    pub status: String,
    /// Unix milliseconds when it was opened.
    pub created_ms: i64,
    /// Unix milliseconds of its last change.
    pub updated_ms: i64,
    /// Unix milliseconds when it was resolved.
    pub resolved_ms: Option<i64>,
}

/// The columns of [`IncidentRecord`], in its field order.
const INCIDENT_COLUMNS: &str =
    "id, title, severity, service, status, created_ms, updated_ms, resolved_ms";

impl SqliteStore {
    /// Opens an incident under the next free id. One `INSERT … SELECT MAX(seq) + 1` statement is
    /// its own transaction, so two agents creating at once get different ids.
    pub async fn create_incident(
        &self,
        title: &str,
        severity: &str,
        service: &str,
    ) -> Result<IncidentRecord, StoreError> {
        logged("create_incident", async {
            let query = format!(
                "INSERT INTO incidents
                     (id, seq, title, severity, service, status, created_ms, updated_ms, body)
                 SELECT printf('INC-%04d', n), n, ?1, ?2, ?3, 'open', ?4, ?4,
                        json_object('timeline', json_array(json_object('at_ms', ?4, 'status', 'open')))
                 FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM incidents)
                 RETURNING {INCIDENT_COLUMNS}"
            );
            let record = sqlx::query_as::<_, IncidentRecord>(&query)
                .bind(title)
                .bind(severity)
                .bind(service)
                .bind(now_ms())
                .fetch_one(&self.pool)
                .await?;
            tracing::info!(incident = %record.id, severity, "incident opened");
            Ok(record)
        })
        .await
    }

    /// Incidents, newest first; `status` (`open`, `resolved`) filters, `None` lists all.
    pub async fn list_incidents(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        logged("list_incidents", async {
            let query = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents
                 WHERE ?1 IS NULL OR status = ?1
                 ORDER BY created_ms DESC, seq DESC LIMIT ?2"
            );
            Ok(sqlx::query_as::<_, IncidentRecord>(&query)
                .bind(status)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
                .await?)
        })
        .await
    }

    /// One incident, or `None` when the id is unknown.
    pub async fn get_incident(&self, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        logged("get_incident", async { fetch_incident(self, id).await }).await
    }

    /// Resolves an open incident and returns it; resolving twice keeps the first resolution time.
    /// `None` when the id is unknown.
    pub async fn resolve_incident(&self, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        logged("resolve_incident", async {
            let now = now_ms();
            let done = sqlx::query(
                "UPDATE incidents SET
                     status = 'resolved', resolved_ms = ?2, updated_ms = ?2,
                     body = json_insert(body, '$.timeline[#]',
                                        json_object('at_ms', ?2, 'status', 'resolved'))
                 WHERE id = ?1 AND status = 'open'",
            )
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                tracing::info!(incident = id, "incident resolved");
            }
            fetch_incident(self, id).await
        })
        .await
    }
}

/// Reads one incident by id.
async fn fetch_incident(store: &SqliteStore, id: &str) -> Result<Option<IncidentRecord>, Failure> {
    let query = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1");
    Ok(sqlx::query_as::<_, IncidentRecord>(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?)
}

#[cfg(test)]
mod tests {
    use crate::store::tests::fresh_store;

    #[tokio::test(flavor = "current_thread")]
    async fn incidents_get_sequential_ids_and_resolve_once() {
        let (_dir, _url, store) = fresh_store().await;
        let first = store
            .create_incident("API down", "critical", "api")
            .await
            .expect("created");
        let second = store
            .create_incident("Slow DB", "warning", "db")
            .await
            .expect("created");
        assert_eq!(
            (first.id.as_str(), second.id.as_str()),
            ("INC-0001", "INC-0002")
        );
        assert_eq!(first.status, "open");

        let resolved = store
            .resolve_incident("INC-0001")
            .await
            .expect("resolves")
            .expect("exists");
        assert_eq!(resolved.status, "resolved");
        assert!(resolved.resolved_ms.is_some());
        let again = store
            .resolve_incident("INC-0001")
            .await
            .expect("resolves")
            .expect("exists");
        assert_eq!(again.resolved_ms, resolved.resolved_ms);
        assert!(store
            .resolve_incident("INC-0404")
            .await
            .expect("runs")
            .is_none());

        let open = store.list_incidents(Some("open"), 3).await.expect("lists");
        assert_eq!(
            open.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["INC-0002"]
        );
        let all = store.list_incidents(None, 10).await.expect("lists");
        assert_eq!(
            all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["INC-0002", "INC-0001"]
        );
        assert_eq!(
            store.get_incident("INC-0002").await.expect("reads"),
            Some(second)
        );
        let third = store
            .create_incident("Cert expiry", "info", "edge")
            .await
            .expect("created");
        assert_eq!(third.id, "INC-0003");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn incidents_created_at_once_get_different_ids() {
        let (_dir, _url, store) = fresh_store().await;
        let creates = (0..10).map(|i| {
            let store = store.clone();
            async move {
                store
                    .create_incident(&format!("outage {i}"), "critical", "api")
                    .await
            }
        });
        let mut ids: Vec<String> = futures_util::future::join_all(creates)
            .await
            .into_iter()
            .map(|r| r.expect("created").id)
            .collect();
        ids.sort();
        let expected: Vec<String> = (1..=10).map(|n| format!("INC-{n:04}")).collect();
        assert_eq!(ids, expected);
    }
}
