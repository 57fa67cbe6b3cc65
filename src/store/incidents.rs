//! Incidents of the built-in `incident-manager` agent: opened from chat or a webhook, listed by the
//! status flow ("Active Incidents"), updated as the work goes on, resolved by a `RESOLVE` reply.
//!
//! Ids are short and sequential (`INC-0001`) so that people can type them. The `status` column is
//! `open` or `resolved` (what lists filter on); the finer stage people report (`investigating`,
//! `identified`, `monitoring`) and the timeline (`[{at_ms, actor, text}]`: status changes, notes,
//! war-room messages) live in the `body` JSON, so they grow without a schema change.

use super::{logged, Failure, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use serde::{Deserialize, Serialize};

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
    /// Where the work stands ([`IncidentStage`]); `resolved` once resolved.
    pub stage: String,
}

/// The columns of [`IncidentRecord`], in its field order.
const INCIDENT_COLUMNS: &str = "id, title, severity, service, status, created_ms, updated_ms, \
     resolved_ms, COALESCE(body ->> '$.stage', status) AS stage";

/// Where the work on an incident stands, as people report it with `update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStage {
    /// Reported, nobody on it yet.
    Open,
    /// Someone is looking.
    Investigating,
    /// The cause is known.
    Identified,
    /// A fix is out; watching.
    Monitoring,
    /// Over.
    Resolved,
}

impl IncidentStage {
    /// Every stage's word, for error messages.
    pub const WORDS: &'static [&'static str] = &[
        "open",
        "investigating",
        "identified",
        "monitoring",
        "resolved",
    ];

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStage::Open => "open",
            IncidentStage::Investigating => "investigating",
            IncidentStage::Identified => "identified",
            IncidentStage::Monitoring => "monitoring",
            IncidentStage::Resolved => "resolved",
        }
    }

    /// A stage from its word (any case); `None` for anything else.
    pub fn parse(word: &str) -> Option<IncidentStage> {
        match word.trim().to_ascii_lowercase().as_str() {
            "open" => Some(IncidentStage::Open),
            "investigating" => Some(IncidentStage::Investigating),
            "identified" => Some(IncidentStage::Identified),
            "monitoring" => Some(IncidentStage::Monitoring),
            "resolved" => Some(IncidentStage::Resolved),
            _ => None,
        }
    }
}

/// One line of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who: a name or an E.164 number; `None` for the bot itself or an unknown caller.
    #[serde(default)]
    pub actor: Option<String>,
    /// What happened or was said.
    #[serde(default)]
    pub text: String,
    /// The stage it entered, on status changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// What to change on an incident; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct IncidentUpdate<'a> {
    /// The new stage; `Resolved` resolves it.
    pub stage: Option<IncidentStage>,
    /// The new severity.
    pub severity: Option<&'a str>,
    /// The new title.
    pub title: Option<&'a str>,
    /// A note for the timeline.
    pub note: Option<&'a str>,
}

/// What [`Incidents::update_incident`](super::Incidents::update_incident) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentChange {
    /// The changes were made (a change to what it already was is recorded only as a note, if any).
    Updated(IncidentRecord),
    /// It is resolved and the update asked for another stage: resolved incidents stay resolved
    /// (notes are still recorded).
    Closed(IncidentRecord),
    /// No incident has that id.
    Unknown,
}

impl SqliteStore {
    /// Opens an incident under the next free id (see [`SqliteStore::open_incident`]), by nobody in
    /// particular.
    pub(crate) async fn create_incident(
        &self,
        title: &str,
        severity: &str,
        service: &str,
    ) -> Result<IncidentRecord, StoreError> {
        self.open_incident(title, severity, service, None).await
    }

    /// Opens an incident under the next free id, its timeline starting with who opened it. One
    /// `INSERT … SELECT MAX(seq) + 1` statement is its own transaction, so two agents creating at
    /// once get different ids.
    pub(crate) async fn open_incident(
        &self,
        title: &str,
        severity: &str,
        service: &str,
        actor: Option<&str>,
    ) -> Result<IncidentRecord, StoreError> {
        logged("create_incident", async {
            let query = format!(
                "INSERT INTO incidents
                     (id, seq, title, severity, service, status, created_ms, updated_ms, body)
                 SELECT printf('INC-%04d', n), n, ?1, ?2, ?3, 'open', ?4, ?4,
                        json_object('stage', 'open', 'timeline', json_array(json_object(
                            'at_ms', ?4, 'actor', ?5, 'text', 'Opened: ' || ?1, 'status', 'open')))
                 FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM incidents)
                 RETURNING {INCIDENT_COLUMNS}"
            );
            let record = sqlx::query_as::<_, IncidentRecord>(&query)
                .bind(title)
                .bind(severity)
                .bind(service)
                .bind(now_ms())
                .bind(actor)
                .fetch_one(&self.pool)
                .await?;
            tracing::info!(incident = %record.id, severity, "incident opened");
            Ok(record)
        })
        .await
    }

    /// Incidents, newest first; `status` filters (`open`, `resolved`, or a stage such as
    /// `investigating`), `None` lists all.
    pub(crate) async fn list_incidents(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        logged("list_incidents", async {
            let query = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents
                 WHERE ?1 IS NULL OR status = ?1 OR body ->> '$.stage' = ?1
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
    pub(crate) async fn get_incident(
        &self,
        id: &str,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        logged("get_incident", async { fetch_incident(self, id).await }).await
    }

    /// An incident's timeline, oldest first, or `None` when the id is unknown.
    pub(crate) async fn incident_timeline(
        &self,
        id: &str,
    ) -> Result<Option<Vec<TimelineEntry>>, StoreError> {
        logged("incident_timeline", async {
            let timeline: Option<Option<String>> =
                sqlx::query_scalar("SELECT body -> '$.timeline' FROM incidents WHERE id = ?1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(match timeline {
                None => None,
                Some(None) => Some(Vec::new()),
                Some(Some(text)) => Some(serde_json::from_str(&text)?),
            })
        })
        .await
    }

    /// Resolves an open incident and returns it; resolving twice keeps the first resolution time.
    /// `None` when the id is unknown.
    pub(crate) async fn resolve_incident(
        &self,
        id: &str,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let resolve = IncidentUpdate {
            stage: Some(IncidentStage::Resolved),
            ..IncidentUpdate::default()
        };
        Ok(match self.update_incident(id, &resolve, None).await? {
            IncidentChange::Updated(record) | IncidentChange::Closed(record) => Some(record),
            IncidentChange::Unknown => None,
        })
    }

    /// Appends one line to an incident's timeline (a war-room message, a deploy); one `UPDATE`, so
    /// lines written at once are all kept. `false` when the id is unknown.
    pub(crate) async fn add_timeline_entry(
        &self,
        id: &str,
        actor: Option<&str>,
        text: &str,
    ) -> Result<bool, StoreError> {
        logged("add_timeline_entry", async {
            let done = sqlx::query(
                "UPDATE incidents SET updated_ms = ?2,
                     body = json_insert(body, '$.timeline[#]',
                                        json_object('at_ms', ?2, 'actor', ?3, 'text', ?4))
                 WHERE id = ?1",
            )
            .bind(id)
            .bind(now_ms())
            .bind(actor)
            .bind(text)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Changes an incident's stage, severity or title and records one timeline line saying what
    /// changed (and the note), by `actor`. Reading and writing share one `BEGIN IMMEDIATE`
    /// transaction, so a concurrent update is never lost.
    pub(crate) async fn update_incident(
        &self,
        id: &str,
        update: &IncidentUpdate<'_>,
        actor: Option<&str>,
    ) -> Result<IncidentChange, StoreError> {
        logged("update_incident", async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let query = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1");
            let Some(current) = sqlx::query_as::<_, IncidentRecord>(&query)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(IncidentChange::Unknown);
            };
            let UpdatePlan {
                closed,
                stage,
                severity,
                title,
                said,
            } = UpdatePlan::of(&current, update);
            if said.is_empty() {
                tx.commit().await?;
                return Ok(if closed {
                    IncidentChange::Closed(current)
                } else {
                    IncidentChange::Updated(current)
                });
            }
            let query = format!(
                "UPDATE incidents SET
                     status = CASE WHEN ?2 = 'resolved' THEN 'resolved' ELSE status END,
                     resolved_ms = CASE WHEN ?2 = 'resolved' THEN ?6 ELSE resolved_ms END,
                     severity = COALESCE(?3, severity),
                     title = COALESCE(?4, title),
                     updated_ms = ?6,
                     body = json_insert(
                         json_set(body, '$.stage', COALESCE(?2, body ->> '$.stage', status)),
                         '$.timeline[#]',
                         json_object('at_ms', ?6, 'actor', ?7, 'text', ?5, 'status', ?2))
                 WHERE id = ?1
                 RETURNING {INCIDENT_COLUMNS}"
            );
            let record = sqlx::query_as::<_, IncidentRecord>(&query)
                .bind(id)
                .bind(stage.map(IncidentStage::as_str))
                .bind(severity)
                .bind(title)
                .bind(said.join("\n"))
                .bind(now_ms())
                .bind(actor)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            if let Some(stage) = stage {
                tracing::info!(incident = id, stage = stage.as_str(), "incident updated");
            }
            Ok(if closed {
                IncidentChange::Closed(record)
            } else {
                IncidentChange::Updated(record)
            })
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

/// What an update changes in `current` and the timeline line that says so (both backends).
pub(in crate::store) struct UpdatePlan<'u> {
    /// The incident is resolved and the update asks for another stage: nothing reopens it.
    pub(in crate::store) closed: bool,
    /// The new stage, when it changes.
    pub(in crate::store) stage: Option<IncidentStage>,
    /// The new severity, when it changes.
    pub(in crate::store) severity: Option<&'u str>,
    /// The new title, when it changes.
    pub(in crate::store) title: Option<&'u str>,
    /// The timeline line's parts; empty when nothing changes and there is no note.
    pub(in crate::store) said: Vec<String>,
}

impl<'u> UpdatePlan<'u> {
    pub(in crate::store) fn of(current: &IncidentRecord, update: &IncidentUpdate<'u>) -> Self {
        let resolved = current.status == "resolved";
        let closed = resolved && update.stage.is_some_and(|s| s != IncidentStage::Resolved);
        let stage = update
            .stage
            .filter(|s| !closed && s.as_str() != current.stage);
        let severity = update.severity.filter(|s| *s != current.severity);
        let title = update.title.filter(|t| *t != current.title);
        let mut said = Vec::new();
        if let Some(stage) = stage {
            said.push(format!("Status: {}", stage.as_str()));
        }
        if let Some(severity) = severity {
            said.push(format!("Severity: {severity}"));
        }
        if let Some(title) = title {
            said.push(format!("Title: {title}"));
        }
        if let Some(note) = update.note.map(str::trim).filter(|n| !n.is_empty()) {
            said.push(note.to_owned());
        }
        UpdatePlan {
            closed,
            stage,
            severity,
            title,
            said,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::conformance::conformance;
    use crate::store::tests::fresh_store;

    conformance! {
        async fn incidents_get_sequential_ids_and_resolve_once(store) {
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
    }

    conformance! {
        async fn incidents_created_at_once_get_different_ids(store) {
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

    #[tokio::test(flavor = "current_thread")]
    async fn updates_and_notes_make_the_timeline_and_resolved_incidents_stay_resolved() {
        use crate::store::{IncidentChange, IncidentStage, IncidentUpdate};
        let (_dir, _url, store) = fresh_store().await;
        store
            .open_incident("API down", "critical", "api", Some("+15551234567"))
            .await
            .expect("created");
        let investigating = IncidentUpdate {
            stage: Some(IncidentStage::Investigating),
            note: Some("looking at the load balancer"),
            ..IncidentUpdate::default()
        };
        let IncidentChange::Updated(updated) = store
            .update_incident("INC-0001", &investigating, Some("Bob"))
            .await
            .expect("updates")
        else {
            panic!("an open incident takes a stage")
        };
        assert_eq!(
            (updated.status.as_str(), updated.stage.as_str()),
            ("open", "investigating")
        );
        assert_eq!(
            store
                .list_incidents(Some("open"), 5)
                .await
                .expect("lists")
                .len(),
            1,
            "an investigated incident is still open"
        );
        assert!(store
            .add_timeline_entry("INC-0001", Some("Carol"), "rolled back")
            .await
            .expect("adds"));
        let resolved = store.resolve_incident("INC-0001").await.expect("resolves");
        assert_eq!(resolved.map(|r| r.stage), Some("resolved".to_owned()));
        let reopen = IncidentUpdate {
            stage: Some(IncidentStage::Monitoring),
            ..IncidentUpdate::default()
        };
        assert!(matches!(
            store.update_incident("INC-0001", &reopen, None).await.expect("runs"),
            IncidentChange::Closed(r) if r.status == "resolved"
        ));
        let timeline = store
            .incident_timeline("INC-0001")
            .await
            .expect("reads")
            .expect("exists");
        let lines: Vec<(Option<&str>, &str)> = timeline
            .iter()
            .map(|e| (e.actor.as_deref(), e.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (Some("+15551234567"), "Opened: API down"),
                (
                    Some("Bob"),
                    "Status: investigating\nlooking at the load balancer"
                ),
                (Some("Carol"), "rolled back"),
                (None, "Status: resolved"),
            ]
        );
        assert!(!store
            .add_timeline_entry("INC-0404", None, "nobody")
            .await
            .expect("runs"));
        assert!(store
            .incident_timeline("INC-0404")
            .await
            .expect("runs")
            .is_none());
    }
}
