//! Reading and moving alerts in the `alerts` table: creating (or updating a repeat of an open
//! alert), looking up, paging someone more, and forward-only state transitions, each one SQL
//! statement or one `BEGIN IMMEDIATE` transaction so that concurrent deliveries and replies agree.

use super::{AlertRecord, AlertSource, AlertState, CreatedAlert, NewAlert, TransitionOutcome};
use crate::store::{logged, Failure, SqliteStore};
use aof_actors::ids::WaId;
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;

/// The columns [`alert_from_row`] reads, in its order.
pub(in crate::store) const ALERT_COLUMNS: &str =
    "id, severity, service, message, runbook_url, source, fingerprint, \
     pagerduty_incident_id, paged, pages, state, acknowledged_by, acknowledged_ms, resolved_by, \
     resolved_ms, fire_count, created_ms, updated_ms, transitions, created_by, notes";

/// `SET` assignments adding the number in parameter `who` to `paged` and `pages` (with time
/// parameter `at`) unless it is NULL or already paged; both read the row before the update.
fn add_paged_sql(who: &str, at: &str) -> String {
    let skip = format!(
        "{who} IS NULL OR EXISTS (SELECT 1 FROM json_each(alerts.paged) WHERE value = {who})"
    );
    format!(
        "paged = CASE WHEN {skip} THEN paged ELSE json_insert(paged, '$[#]', {who}) END,
         pages = CASE WHEN {skip} THEN pages
                 ELSE json_insert(pages, '$[#]', json_object('phone', {who}, 'at_ms', {at})) END"
    )
}

impl SqliteStore {
    /// Records an alert under the next free id, or, when an open alert has the same fingerprint
    /// (first) or PagerDuty incident, updates that one (severity, message, runbook, who was paged,
    /// `fire_count`) and reports `duplicate`.
    ///
    /// The lookup and the write share one `BEGIN IMMEDIATE` transaction, so two deliveries of the
    /// same Alertmanager group arriving together still make one alert.
    pub(crate) async fn create_alert(
        &self,
        new: &NewAlert<'_>,
    ) -> Result<CreatedAlert, StoreError> {
        logged("create_alert", async {
            let now = now_ms();
            let severity = new.severity.trim().to_lowercase();
            let paged = new.paged.map(WaId::e164);
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            if let Some(step) = new.created_by {
                let query = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE created_by = ?1");
                let mine = sqlx::query(&query)
                    .bind(step)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = mine {
                    tx.commit().await?;
                    let alert = alert_from_row(&row)?;
                    tracing::info!(alert = %alert.id, "a step run again after a crash found the alert it had recorded");
                    return Ok(CreatedAlert {
                        alert,
                        duplicate: false,
                    });
                }
            }
            let existing: Option<String> = if new.fingerprint.is_some()
                || new.pagerduty_incident_id.is_some()
            {
                sqlx::query_scalar(
                    "SELECT id FROM alerts
                     WHERE state != 'resolved'
                       AND ((?1 IS NOT NULL AND fingerprint = ?1)
                            OR (?2 IS NOT NULL AND pagerduty_incident_id = ?2))
                     ORDER BY CASE WHEN fingerprint = ?1 THEN 0 ELSE 1 END, seq DESC
                     LIMIT 1",
                )
                .bind(new.fingerprint)
                .bind(new.pagerduty_incident_id)
                .fetch_optional(&mut *tx)
                .await?
            } else {
                None
            };
            let (row, duplicate) = match existing {
                Some(id) => {
                    let query = format!(
                        "UPDATE alerts SET
                             severity = ?2, message = ?3,
                             runbook_url = COALESCE(?4, runbook_url),
                             fingerprint = COALESCE(fingerprint, ?5),
                             pagerduty_incident_id = COALESCE(pagerduty_incident_id, ?6),
                             {paged},
                             fire_count = fire_count + 1, updated_ms = ?8
                         WHERE id = ?1
                         RETURNING {ALERT_COLUMNS}",
                        paged = add_paged_sql("?7", "?8"),
                    );
                    let row = sqlx::query(&query)
                        .bind(&id)
                        .bind(&severity)
                        .bind(new.message)
                        .bind(new.runbook_url)
                        .bind(new.fingerprint)
                        .bind(new.pagerduty_incident_id)
                        .bind(&paged)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    (row, true)
                }
                None => {
                    let query = format!(
                        "INSERT INTO alerts
                             (id, seq, severity, service, message, runbook_url, source, fingerprint,
                              pagerduty_incident_id, paged, pages, state, created_ms, updated_ms,
                              transitions, created_by)
                         SELECT printf('ALT-%04d', n), n, ?1, ?2, ?3, ?4, ?5, ?6, ?7,
                                CASE WHEN ?8 IS NULL THEN json_array() ELSE json_array(?8) END,
                                CASE WHEN ?8 IS NULL THEN json_array()
                                     ELSE json_array(json_object('phone', ?8, 'at_ms', ?9)) END,
                                'firing', ?9, ?9,
                                json_array(json_object('state', 'firing', 'at_ms', ?9, 'actor', ?5)),
                                ?10
                         FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM alerts)
                         RETURNING {ALERT_COLUMNS}"
                    );
                    let row = sqlx::query(&query)
                        .bind(&severity)
                        .bind(new.service)
                        .bind(new.message)
                        .bind(new.runbook_url)
                        .bind(new.source.as_str())
                        .bind(new.fingerprint)
                        .bind(new.pagerduty_incident_id)
                        .bind(&paged)
                        .bind(now)
                        .bind(new.created_by)
                        .fetch_one(&mut *tx)
                        .await?;
                    (row, false)
                }
            };
            tx.commit().await?;
            let alert = alert_from_row(&row)?;
            if duplicate {
                tracing::info!(alert = %alert.id, fire_count = alert.fire_count, "alert fired again; updated the open alert");
            } else {
                tracing::info!(alert = %alert.id, severity = %alert.severity, source = alert.source.as_str(), "alert recorded");
            }
            Ok(CreatedAlert { alert, duplicate })
        })
        .await
    }

    /// One alert, or `None` when the id is unknown.
    pub(crate) async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        logged("get_alert", async { fetch_alert(self, id).await }).await
    }

    /// Alerts in one of `states` that involve `who` (paged about it, or acknowledged it), newest
    /// first; at most 50.
    pub(crate) async fn find_open_for(
        &self,
        who: &WaId,
        states: &[AlertState],
    ) -> Result<Vec<AlertRecord>, StoreError> {
        logged("find_open_for", async {
            let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            let query = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE state IN (SELECT value FROM json_each(?2))
                   AND (acknowledged_by = ?1
                        OR EXISTS (SELECT 1 FROM json_each(alerts.paged) WHERE value = ?1))
                 ORDER BY created_ms DESC, seq DESC
                 LIMIT 50"
            );
            let rows = sqlx::query(&query)
                .bind(who.e164())
                .bind(serde_json::to_string(&states)?)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(alert_from_row).collect()
        })
        .await
    }

    /// Adds `who` to the people paged about an alert (an escalation); the updated alert, or `None`
    /// when the id is unknown. Paging someone twice lists them once.
    pub(crate) async fn add_paged(
        &self,
        id: &str,
        who: &WaId,
    ) -> Result<Option<AlertRecord>, StoreError> {
        logged("add_paged", async {
            let query = format!(
                "UPDATE alerts SET {paged}, updated_ms = ?3 WHERE id = ?1
                 RETURNING {ALERT_COLUMNS}",
                paged = add_paged_sql("?2", "?3"),
            );
            let row = sqlx::query(&query)
                .bind(id)
                .bind(who.e164())
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(alert_from_row).transpose()
        })
        .await
    }

    /// Adds a note to an alert's timeline; the alert, or `None` when there is no such alert.
    pub(crate) async fn add_alert_note(
        &self,
        id: &str,
        text: &str,
    ) -> Result<Option<AlertRecord>, StoreError> {
        logged("add_alert_note", async {
            let query = format!(
                "UPDATE alerts SET notes = json_insert(notes, '$[#]',
                     json_object('at_ms', ?3, 'text', ?2)), updated_ms = ?3
                 WHERE id = ?1 RETURNING {ALERT_COLUMNS}"
            );
            let row = sqlx::query(&query)
                .bind(id)
                .bind(text)
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(alert_from_row).transpose()
        })
        .await
    }

    /// Moves an alert forward to `to` (acknowledged or resolved), recording `actor` and the time,
    /// in one conditional `UPDATE`: of two people acknowledging at once, the first is recorded.
    pub(crate) async fn transition(
        &self,
        id: &str,
        to: AlertState,
        actor: Option<&str>,
    ) -> Result<TransitionOutcome, StoreError> {
        logged("transition_alert", async {
            let now = now_ms();
            let query = format!(
                "UPDATE alerts SET
                     state = ?2, updated_ms = ?4,
                     acknowledged_by = CASE WHEN ?2 = 'acknowledged' THEN ?3 ELSE acknowledged_by END,
                     acknowledged_ms = CASE WHEN ?2 = 'acknowledged' THEN ?4 ELSE acknowledged_ms END,
                     resolved_by = CASE WHEN ?2 = 'resolved' THEN ?3 ELSE resolved_by END,
                     resolved_ms = CASE WHEN ?2 = 'resolved' THEN ?4 ELSE resolved_ms END,
                     transitions = json_insert(transitions, '$[#]',
                                               json_object('state', ?2, 'at_ms', ?4, 'actor', ?3))
                 WHERE id = ?1
                   AND (CASE state WHEN 'firing' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END) < ?5
                 RETURNING {ALERT_COLUMNS}"
            );
            let rank = match to {
                AlertState::Firing => 0,
                AlertState::Acknowledged => 1,
                AlertState::Resolved => 2,
            };
            let moved = sqlx::query(&query)
                .bind(id)
                .bind(to.as_str())
                .bind(actor)
                .bind(now)
                .bind(rank)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = moved {
                let alert = alert_from_row(&row)?;
                tracing::info!(alert = id, state = to.as_str(), "alert moved");
                return Ok(TransitionOutcome::Moved(alert));
            }
            Ok(match fetch_alert(self, id).await? {
                None => TransitionOutcome::Unknown,
                Some(alert) => not_moved(alert, to),
            })
        })
        .await
    }

    /// The open (not resolved) alert with this Alertmanager fingerprint, newest first.
    pub(crate) async fn find_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<AlertRecord>, StoreError> {
        logged("find_by_fingerprint", async {
            find_open_by(self, "fingerprint", fingerprint).await
        })
        .await
    }

    /// The open (not resolved) alert of this PagerDuty incident.
    pub(crate) async fn find_by_pagerduty(
        &self,
        incident_id: &str,
    ) -> Result<Option<AlertRecord>, StoreError> {
        logged("find_by_pagerduty", async {
            find_open_by(self, "pagerduty_incident_id", incident_id).await
        })
        .await
    }
}

/// Reads one alert by id.
async fn fetch_alert(store: &SqliteStore, id: &str) -> Result<Option<AlertRecord>, Failure> {
    let query = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1");
    let row = sqlx::query(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(alert_from_row).transpose()
}

/// The newest open alert whose `column` (one of ours, never input) equals `value`.
async fn find_open_by(
    store: &SqliteStore,
    column: &'static str,
    value: &str,
) -> Result<Option<AlertRecord>, Failure> {
    let query = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE {column} = ?1 AND state != 'resolved'
         ORDER BY seq DESC LIMIT 1"
    );
    let row = sqlx::query(&query)
        .bind(value)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(alert_from_row).transpose()
}

/// An [`AlertRecord`] from a row of [`ALERT_COLUMNS`], of either backend (the columns have the
/// same names and kinds on both).
pub(in crate::store) fn alert_from_row<R>(row: &R) -> Result<AlertRecord, Failure>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get("state")?;
    let source: String = row.try_get("source")?;
    let paged: String = row.try_get("paged")?;
    let pages: String = row.try_get("pages")?;
    let transitions: String = row.try_get("transitions")?;
    let notes: String = row.try_get("notes")?;
    Ok(AlertRecord {
        id: row.try_get("id")?,
        severity: row.try_get("severity")?,
        service: row.try_get("service")?,
        message: row.try_get("message")?,
        runbook_url: row.try_get("runbook_url")?,
        source: AlertSource::parse(&source)
            .ok_or_else(|| Failure::Corrupt(format!("alert source `{source}`")))?,
        fingerprint: row.try_get("fingerprint")?,
        pagerduty_incident_id: row.try_get("pagerduty_incident_id")?,
        paged: serde_json::from_str(&paged)?,
        pages: serde_json::from_str(&pages)?,
        state: AlertState::parse(&state)
            .ok_or_else(|| Failure::Corrupt(format!("alert state `{state}`")))?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledged_ms: row.try_get("acknowledged_ms")?,
        resolved_by: row.try_get("resolved_by")?,
        resolved_ms: row.try_get("resolved_ms")?,
        fire_count: row.try_get("fire_count")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        transitions: serde_json::from_str(&transitions)?,
        notes: serde_json::from_str(&notes)?,
        created_by: row.try_get("created_by")?,
    })
}

/// Why a transition to `to` did not move `alert`: backwards (refused), or already there.
pub(in crate::store) fn not_moved(alert: AlertRecord, to: AlertState) -> TransitionOutcome {
    let backwards = to == AlertState::Firing
        || (to == AlertState::Acknowledged && alert.state == AlertState::Resolved);
    if backwards && alert.state != to {
        TransitionOutcome::Refused(alert)
    } else {
        TransitionOutcome::Unchanged(alert)
    }
}
