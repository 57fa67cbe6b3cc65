//! Alerts on PostgreSQL: the same rows as SQLite's (`store/alerts/queries.rs`), the same JSON text
//! in the `paged`, `pages`, `transitions` and `notes` columns, the same outcomes.
//!
//! SQLite makes its read-then-write steps atomic with `BEGIN IMMEDIATE` (one writer); here several
//! replicas write at once, so creating an alert first takes a transaction-scoped advisory lock
//! (two creations serialize, two deliveries of one Alertmanager group still make one alert) and
//! locks the open alert it updates. Paging, notes and transitions stay one conditional `UPDATE`
//! each; JSON items are appended as text so that each stays one statement under the row's lock.

use super::PgStore;
use crate::store::alerts::queries::{alert_from_row, not_moved, ALERT_COLUMNS};
use crate::store::{
    logged, AlertNote, AlertRecord, AlertState, Alerts, CreatedAlert, Failure, Fut, NewAlert, Page,
    Transition, TransitionOutcome,
};
use aof_actors::ids::WaId;
use aof_actors::model::now_ms;

/// `column` (a JSON array kept as TEXT) with the JSON text `item` appended, written as SQLite's
/// `json_insert(column, '$[#]', item)` writes it: compact, no spaces.
fn appended(column: &str, item: &str) -> String {
    format!(
        "CASE WHEN json_array_length({column}::json) = 0 THEN '[' || {item} || ']'
              ELSE left(rtrim({column}), -1) || ',' || {item} || ']' END"
    )
}

/// `SET` assignments adding the number in parameter `who` to `paged` (as the JSON string in
/// parameter `phone`) and `pages` (the JSON page in parameter `page`) unless it is NULL or already
/// paged; both read the row before the update.
fn add_paged_sql(who: &str, phone: &str, page: &str) -> String {
    let skip = format!(
        "{who} IS NULL OR EXISTS (SELECT 1 FROM json_array_elements_text(alerts.paged::json)
                                   AS p(phone) WHERE p.phone = {who})"
    );
    format!(
        "paged = CASE WHEN {skip} THEN paged ELSE {paged} END,
         pages = CASE WHEN {skip} THEN pages ELSE {pages} END",
        paged = appended("paged", phone),
        pages = appended("pages", page),
    )
}

/// The JSON items SQLite's `json_array(?)` / `json_object('phone', ?, 'at_ms', ?)` would write for
/// paging `phone` at `at_ms`: the quoted number and the page.
fn page_items(
    phone: Option<&str>,
    at_ms: i64,
) -> Result<(Option<String>, Option<String>), Failure> {
    let Some(phone) = phone else {
        return Ok((None, None));
    };
    let page = Page {
        phone: phone.to_owned(),
        at_ms,
    };
    Ok((
        Some(serde_json::to_string(phone)?),
        Some(serde_json::to_string(&page)?),
    ))
}

impl PgStore {
    /// Creates or updates, in the transaction holding the alerts' advisory lock (see
    /// [`Alerts::create_alert`]).
    async fn create_alert_locked(&self, new: &NewAlert<'_>) -> Result<CreatedAlert, Failure> {
        let now = now_ms();
        let severity = new.severity.trim().to_lowercase();
        let paged = new.paged.map(WaId::e164);
        let mut tx = self.pool.begin().await?;
        super::Lock::Alerts.take(&mut tx).await?;
        if let Some(step) = new.created_by {
            let query = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE created_by = $1");
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
        // `FOR UPDATE`: a transition waits for this update, so a repeat never lands on an alert
        // resolved meanwhile (it then finds no open alert and opens a new one).
        let existing: Option<String> =
            if new.fingerprint.is_some() || new.pagerduty_incident_id.is_some() {
                sqlx::query_scalar(
                    "SELECT id FROM alerts
                     WHERE state != 'resolved'
                       AND (($1::text IS NOT NULL AND fingerprint = $1)
                            OR ($2::text IS NOT NULL AND pagerduty_incident_id = $2))
                     ORDER BY CASE WHEN fingerprint = $1 THEN 0 ELSE 1 END, seq DESC
                     LIMIT 1
                     FOR UPDATE",
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
                let (phone, page) = page_items(paged.as_deref(), now)?;
                let query = format!(
                    "UPDATE alerts SET
                         severity = $2, message = $3,
                         runbook_url = COALESCE($4, runbook_url),
                         fingerprint = COALESCE(fingerprint, $5),
                         pagerduty_incident_id = COALESCE(pagerduty_incident_id, $6),
                         {paged},
                         fire_count = fire_count + 1, updated_ms = $8
                     WHERE id = $1
                     RETURNING {ALERT_COLUMNS}",
                    paged = add_paged_sql("$7", "$9", "$10"),
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
                    .bind(phone)
                    .bind(page)
                    .fetch_one(&mut *tx)
                    .await?;
                (row, true)
            }
            None => {
                let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts")
                    .fetch_one(&mut *tx)
                    .await?;
                let pages: Vec<Page> = paged
                    .iter()
                    .map(|phone| Page {
                        phone: phone.clone(),
                        at_ms: now,
                    })
                    .collect();
                let transitions = [Transition {
                    state: AlertState::Firing.as_str().to_owned(),
                    at_ms: now,
                    actor: Some(new.source.as_str().to_owned()),
                }];
                let query = format!(
                    "INSERT INTO alerts
                         (id, seq, severity, service, message, runbook_url, source, fingerprint,
                          pagerduty_incident_id, paged, pages, state, created_ms, updated_ms,
                          transitions, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'firing', $12, $12,
                             $13, $14)
                     RETURNING {ALERT_COLUMNS}"
                );
                let row = sqlx::query(&query)
                    .bind(format!("ALT-{seq:04}"))
                    .bind(seq)
                    .bind(&severity)
                    .bind(new.service)
                    .bind(new.message)
                    .bind(new.runbook_url)
                    .bind(new.source.as_str())
                    .bind(new.fingerprint)
                    .bind(new.pagerduty_incident_id)
                    .bind(serde_json::to_string(&paged.as_slice())?)
                    .bind(serde_json::to_string(&pages)?)
                    .bind(now)
                    .bind(serde_json::to_string(&transitions)?)
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
    }

    /// The conditional move of [`Alerts::transition`].
    async fn transition_once(
        &self,
        id: &str,
        to: AlertState,
        actor: Option<&str>,
    ) -> Result<TransitionOutcome, Failure> {
        let now = now_ms();
        let entered = Transition {
            state: to.as_str().to_owned(),
            at_ms: now,
            actor: actor.map(str::to_owned),
        };
        let query = format!(
            "UPDATE alerts SET
                 state = $2, updated_ms = $4,
                 acknowledged_by = CASE WHEN $2 = 'acknowledged' THEN $3 ELSE acknowledged_by END,
                 acknowledged_ms = CASE WHEN $2 = 'acknowledged' THEN $4 ELSE acknowledged_ms END,
                 resolved_by = CASE WHEN $2 = 'resolved' THEN $3 ELSE resolved_by END,
                 resolved_ms = CASE WHEN $2 = 'resolved' THEN $4 ELSE resolved_ms END,
                 transitions = {transitions}
             WHERE id = $1
               AND (CASE state WHEN 'firing' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END) < $5
             RETURNING {ALERT_COLUMNS}",
            transitions = appended("transitions", "$6"),
        );
        let rank: i64 = match to {
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
            .bind(serde_json::to_string(&entered)?)
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
    }
}

impl Alerts for PgStore {
    fn create_alert<'a>(&'a self, new: &'a NewAlert<'a>) -> Fut<'a, CreatedAlert> {
        Box::pin(logged("create_alert", self.create_alert_locked(new)))
    }

    fn get_alert<'a>(&'a self, id: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(logged("get_alert", fetch_alert(self, id)))
    }

    fn find_open_for<'a>(
        &'a self,
        who: &'a WaId,
        states: &'a [AlertState],
    ) -> Fut<'a, Vec<AlertRecord>> {
        Box::pin(logged("find_open_for", async move {
            let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            let query = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE state = ANY($2)
                   AND (acknowledged_by = $1
                        OR EXISTS (SELECT 1 FROM json_array_elements_text(alerts.paged::json)
                                   AS p(phone) WHERE p.phone = $1))
                 ORDER BY created_ms DESC, seq DESC
                 LIMIT 50"
            );
            let rows = sqlx::query(&query)
                .bind(who.e164())
                .bind(states)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(alert_from_row).collect()
        }))
    }

    fn add_paged<'a>(&'a self, id: &'a str, who: &'a WaId) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(logged("add_paged", async move {
            let now = now_ms();
            let phone = who.e164();
            let (quoted, page) = page_items(Some(&phone), now)?;
            let query = format!(
                "UPDATE alerts SET {paged}, updated_ms = $3 WHERE id = $1
                 RETURNING {ALERT_COLUMNS}",
                paged = add_paged_sql("$2", "$4", "$5"),
            );
            let row = sqlx::query(&query)
                .bind(id)
                .bind(&phone)
                .bind(now)
                .bind(quoted)
                .bind(page)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(alert_from_row).transpose()
        }))
    }

    fn add_alert_note<'a>(&'a self, id: &'a str, text: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(logged("add_alert_note", async move {
            let now = now_ms();
            let note = AlertNote {
                at_ms: now,
                text: text.to_owned(),
            };
            let query = format!(
                "UPDATE alerts SET notes = {notes}, updated_ms = $2
                 WHERE id = $1 RETURNING {ALERT_COLUMNS}",
                notes = appended("notes", "$3"),
            );
            let row = sqlx::query(&query)
                .bind(id)
                .bind(now)
                .bind(serde_json::to_string(&note)?)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(alert_from_row).transpose()
        }))
    }

    fn transition<'a>(
        &'a self,
        id: &'a str,
        to: AlertState,
        actor: Option<&'a str>,
    ) -> Fut<'a, TransitionOutcome> {
        Box::pin(logged(
            "transition_alert",
            self.transition_once(id, to, actor),
        ))
    }

    fn find_by_fingerprint<'a>(&'a self, fingerprint: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(logged(
            "find_by_fingerprint",
            find_open_by(self, "fingerprint", fingerprint),
        ))
    }

    fn find_by_pagerduty<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(logged(
            "find_by_pagerduty",
            find_open_by(self, "pagerduty_incident_id", incident_id),
        ))
    }
}

/// Reads one alert by id.
async fn fetch_alert(store: &PgStore, id: &str) -> Result<Option<AlertRecord>, Failure> {
    let query = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    let row = sqlx::query(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(alert_from_row).transpose()
}

/// The newest open alert whose `column` (one of ours, never input) equals `value`.
async fn find_open_by(
    store: &PgStore,
    column: &'static str,
    value: &str,
) -> Result<Option<AlertRecord>, Failure> {
    let query = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE {column} = $1 AND state != 'resolved'
         ORDER BY seq DESC LIMIT 1"
    );
    let row = sqlx::query(&query)
        .bind(value)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(alert_from_row).transpose()
}
