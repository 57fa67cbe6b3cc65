//! Incidents and their timelines on PostgreSQL: the same rows and rules as SQLite's
//! (`store/incidents.rs`), the same `body` JSON text (`{"stage":…,"timeline":[{at_ms, actor,
//! text, status}]}`).
//!
//! Ids are sequential (`INC-0001`): the next `seq` is taken under a transaction-scoped advisory
//! lock, so incidents opened at once on several replicas get different ids. The timeline lives in
//! the `body` text, which PostgreSQL's JSON functions would rewrite in their own layout, so it is
//! rewritten here, in a transaction holding the incident's row lock (`SELECT … FOR UPDATE`): lines
//! appended at once are all kept, and of two updates the second sees the first.

use super::PgStore;
use crate::store::incidents::UpdatePlan;
use crate::store::{
    logged, Failure, Fut, IncidentChange, IncidentRecord, IncidentStage, IncidentUpdate, Incidents,
    TimelineEntry,
};
use aof_actors::model::now_ms;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::{to_raw_value, RawValue};
use sqlx::{FromRow, PgConnection, Row};
use std::fmt;

/// The columns of [`IncidentRecord`], in its field order (the stage as SQLite's
/// `COALESCE(body ->> '$.stage', status)`).
const INCIDENT_COLUMNS: &str = "id, title, severity, service, status, created_ms, updated_ms, \
     resolved_ms, COALESCE(body::json ->> 'stage', status) AS stage";

/// A timeline line as SQLite's `json_object('at_ms', …, 'actor', …, 'text', …)` writes it.
#[derive(Serialize)]
struct Line<'a> {
    at_ms: i64,
    actor: Option<&'a str>,
    text: &'a str,
}

/// A timeline line with the stage entered (`null` when the stage did not change), as SQLite's
/// `json_object('at_ms', …, 'actor', …, 'text', …, 'status', …)` writes it.
#[derive(Serialize)]
struct StageLine<'a> {
    at_ms: i64,
    actor: Option<&'a str>,
    text: &'a str,
    status: Option<&'a str>,
}

/// The `body` of a new incident.
#[derive(Serialize)]
struct Opened<'a> {
    stage: &'a str,
    timeline: [StageLine<'a>; 1],
}

/// An incident's `body` object: its members in their stored order, each value's text as stored,
/// so that a rewrite changes only what SQLite's `json_set` / `json_insert` would.
struct Body(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Body, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Body;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Body(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}

impl Body {
    /// `json_set(body, '$.<key>', value)`: replaces the member in place, or adds it at the end.
    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// `json_insert(body, '$.timeline[#]', line)`: appends to the timeline array, starts one when
    /// there is none, and leaves a timeline that is not an array as it is.
    fn append_line(&mut self, line: &impl Serialize) -> Result<(), serde_json::Error> {
        let line = to_raw_value(line)?;
        match self.0.iter_mut().find(|(k, _)| k == "timeline") {
            None => self.0.push(("timeline".to_owned(), to_raw_value(&[line])?)),
            Some((_, timeline)) => {
                if let Ok(mut lines) = serde_json::from_str::<Vec<Box<RawValue>>>(timeline.get()) {
                    lines.push(line);
                    *timeline = to_raw_value(&lines)?;
                }
            }
        }
        Ok(())
    }
}

impl Incidents for PgStore {
    fn create_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
    ) -> Fut<'a, IncidentRecord> {
        Box::pin(logged(
            "create_incident",
            open(self, title, severity, service, None),
        ))
    }

    fn open_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentRecord> {
        Box::pin(logged(
            "create_incident",
            open(self, title, severity, service, actor),
        ))
    }

    fn list_incidents<'a>(
        &'a self,
        status: Option<&'a str>,
        limit: i64,
    ) -> Fut<'a, Vec<IncidentRecord>> {
        Box::pin(logged("list_incidents", list(self, status, limit)))
    }

    fn get_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>> {
        Box::pin(logged("get_incident", fetch_incident(self, id)))
    }

    fn incident_timeline<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Vec<TimelineEntry>>> {
        Box::pin(logged("incident_timeline", timeline(self, id)))
    }

    fn resolve_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>> {
        Box::pin(async move {
            let resolve = IncidentUpdate {
                stage: Some(IncidentStage::Resolved),
                ..IncidentUpdate::default()
            };
            let change = logged("update_incident", update(self, id, &resolve, None)).await?;
            Ok(match change {
                IncidentChange::Updated(record) | IncidentChange::Closed(record) => Some(record),
                IncidentChange::Unknown => None,
            })
        })
    }

    fn add_timeline_entry<'a>(
        &'a self,
        id: &'a str,
        actor: Option<&'a str>,
        text: &'a str,
    ) -> Fut<'a, bool> {
        Box::pin(logged(
            "add_timeline_entry",
            add_line(self, id, actor, text),
        ))
    }

    fn update_incident<'a>(
        &'a self,
        id: &'a str,
        update_by: &'a IncidentUpdate<'a>,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentChange> {
        Box::pin(logged(
            "update_incident",
            update(self, id, update_by, actor),
        ))
    }
}

/// Opens an incident under the next free id, its timeline starting with who opened it.
async fn open(
    store: &PgStore,
    title: &str,
    severity: &str,
    service: &str,
    actor: Option<&str>,
) -> Result<IncidentRecord, Failure> {
    let now = now_ms();
    let opened = format!("Opened: {title}");
    let body = serde_json::to_string(&Opened {
        stage: "open",
        timeline: [StageLine {
            at_ms: now,
            actor,
            text: &opened,
            status: Some("open"),
        }],
    })?;
    let mut tx = store.pool.begin().await?;
    super::Lock::Incidents.take(&mut tx).await?;
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents")
        .fetch_one(&mut *tx)
        .await?;
    let query = format!(
        "INSERT INTO incidents
             (id, seq, title, severity, service, status, created_ms, updated_ms, body)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7)
         RETURNING {INCIDENT_COLUMNS}"
    );
    let record = sqlx::query_as::<_, IncidentRecord>(&query)
        .bind(format!("INC-{seq:04}"))
        .bind(seq)
        .bind(title)
        .bind(severity)
        .bind(service)
        .bind(now)
        .bind(body)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(incident = %record.id, severity, "incident opened");
    Ok(record)
}

/// Incidents, newest first; `status` filters on the status or the stage, `None` lists all.
async fn list(
    store: &PgStore,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<IncidentRecord>, Failure> {
    let query = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents
         WHERE $1::text IS NULL OR status = $1 OR body::json ->> 'stage' = $1
         ORDER BY created_ms DESC, seq DESC LIMIT $2"
    );
    Ok(sqlx::query_as::<_, IncidentRecord>(&query)
        .bind(status)
        .bind(limit.max(0))
        .fetch_all(&store.pool)
        .await?)
}

/// Reads one incident by id.
async fn fetch_incident(store: &PgStore, id: &str) -> Result<Option<IncidentRecord>, Failure> {
    let query = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
    Ok(sqlx::query_as::<_, IncidentRecord>(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?)
}

/// An incident's timeline, oldest first; `None` when the id is unknown, empty when the body has
/// no timeline.
async fn timeline(store: &PgStore, id: &str) -> Result<Option<Vec<TimelineEntry>>, Failure> {
    let timeline: Option<Option<String>> =
        sqlx::query_scalar("SELECT (body::json -> 'timeline')::text FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await?;
    Ok(match timeline {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(text)) => Some(serde_json::from_str(&text)?),
    })
}

/// The incident `id` and its `body`, its row locked until `tx` ends.
async fn lock_incident(
    tx: &mut PgConnection,
    id: &str,
) -> Result<Option<(IncidentRecord, Body)>, Failure> {
    let query = format!("SELECT {INCIDENT_COLUMNS}, body FROM incidents WHERE id = $1 FOR UPDATE");
    let Some(row) = sqlx::query(&query).bind(id).fetch_optional(tx).await? else {
        return Ok(None);
    };
    let body: String = row.try_get("body")?;
    Ok(Some((
        IncidentRecord::from_row(&row)?,
        serde_json::from_str(&body)?,
    )))
}

/// Appends one line to an incident's timeline; `false` when the id is unknown.
async fn add_line(
    store: &PgStore,
    id: &str,
    actor: Option<&str>,
    text: &str,
) -> Result<bool, Failure> {
    let mut tx = store.pool.begin().await?;
    let Some((_, mut body)) = lock_incident(&mut tx, id).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let now = now_ms();
    body.append_line(&Line {
        at_ms: now,
        actor,
        text,
    })?;
    sqlx::query("UPDATE incidents SET updated_ms = $2, body = $3 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(serde_json::to_string(&body)?)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Changes an incident's stage, severity or title and records one timeline line saying what
/// changed (and the note), by `actor`; reading and writing share one transaction holding the
/// incident's row lock.
async fn update(
    store: &PgStore,
    id: &str,
    update: &IncidentUpdate<'_>,
    actor: Option<&str>,
) -> Result<IncidentChange, Failure> {
    let mut tx = store.pool.begin().await?;
    let Some((current, mut body)) = lock_incident(&mut tx, id).await? else {
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
    let now = now_ms();
    let stage = stage.map(IncidentStage::as_str);
    // SQLite: json_set(body, '$.stage', COALESCE(new stage, body ->> '$.stage', status)), where
    // the last two are the record's stage.
    body.set("stage", to_raw_value(stage.unwrap_or(&current.stage))?);
    body.append_line(&StageLine {
        at_ms: now,
        actor,
        text: &said.join("\n"),
        status: stage,
    })?;
    let query = format!(
        "UPDATE incidents SET
             status = CASE WHEN $2::text = 'resolved' THEN 'resolved' ELSE status END,
             resolved_ms = CASE WHEN $2::text = 'resolved' THEN $6 ELSE resolved_ms END,
             severity = COALESCE($3, severity),
             title = COALESCE($4, title),
             updated_ms = $6,
             body = $5
         WHERE id = $1
         RETURNING {INCIDENT_COLUMNS}"
    );
    let record = sqlx::query_as::<_, IncidentRecord>(&query)
        .bind(id)
        .bind(stage)
        .bind(severity)
        .bind(title)
        .bind(serde_json::to_string(&body)?)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Some(stage) = stage {
        tracing::info!(incident = id, stage, "incident updated");
    }
    Ok(if closed {
        IncidentChange::Closed(record)
    } else {
        IncidentChange::Updated(record)
    })
}
