//! Alerts of the built-in `alert-manager` agent: created when a webhook, Alertmanager, PagerDuty or
//! Datadog reports a problem, acknowledged by an `ACK` reply, resolved by `RESOLVE` or by the source.
//!
//! Ids are short and sequential (`ALT-0001`) so that people can type them. A row keeps who was paged
//! (`paged`, E.164 numbers) and every state it entered with time and actor (`transitions`), so that
//! `INFO` and the audit can answer "who was paged, who acknowledged, when".
//!
//! The same Alertmanager fingerprint or PagerDuty incident firing again while its alert is open
//! updates that alert ([`CreatedAlert::duplicate`]) instead of opening a second one, so nobody is
//! paged twice for one problem. States only move forward (firing -> acknowledged -> resolved).

use super::{logged, Failure, SqliteStore};
use aof_actors::ids::WaId;
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// Where an alert is in its life; it only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Reported, nobody has acknowledged it yet.
    Firing,
    /// Someone took it.
    Acknowledged,
    /// Over.
    Resolved,
}

impl AlertState {
    /// The word stored and shown to flows.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// A state from its word (any case); `None` for anything else.
    pub fn parse(word: &str) -> Option<AlertState> {
        match word.trim().to_ascii_lowercase().as_str() {
            "firing" => Some(AlertState::Firing),
            "acknowledged" => Some(AlertState::Acknowledged),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// What reported an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    /// A plain JSON POST to a flow webhook (the tutorial's curl).
    Webhook,
    /// Prometheus Alertmanager (deduplicated by fingerprint).
    Alertmanager,
    /// A PagerDuty webhook (deduplicated by incident id).
    Pagerduty,
    /// A Datadog webhook.
    Datadog,
}

impl AlertSource {
    /// The word stored and shown to flows.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Webhook => "webhook",
            AlertSource::Alertmanager => "alertmanager",
            AlertSource::Pagerduty => "pagerduty",
            AlertSource::Datadog => "datadog",
        }
    }

    /// A source from its word (any case); `None` for anything else.
    pub fn parse(word: &str) -> Option<AlertSource> {
        match word.trim().to_ascii_lowercase().as_str() {
            "webhook" => Some(AlertSource::Webhook),
            "alertmanager" => Some(AlertSource::Alertmanager),
            "pagerduty" => Some(AlertSource::Pagerduty),
            "datadog" => Some(AlertSource::Datadog),
            _ => None,
        }
    }
}

/// A state an alert entered, with when and who.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Transition {
    /// `firing`, `acknowledged` or `resolved`.
    pub state: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who moved it: an E.164 number, a name, or the source (`alertmanager`); `None` when unknown.
    pub actor: Option<String>,
}

/// Someone paged about an alert, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Page {
    /// E.164 number.
    pub phone: String,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// An alert to record.
#[derive(Clone, Debug)]
pub struct NewAlert<'a> {
    /// As reported (`critical`, `warning`, `info`), stored lowercased.
    pub severity: &'a str,
    /// The service affected.
    pub service: &'a str,
    /// What is wrong.
    pub message: &'a str,
    /// Where the fix is written down.
    pub runbook_url: Option<&'a str>,
    /// Who reported it.
    pub source: AlertSource,
    /// Alertmanager's fingerprint: the same one firing again is the same alert.
    pub fingerprint: Option<&'a str>,
    /// PagerDuty's incident id: the same one triggering again is the same alert.
    pub pagerduty_incident_id: Option<&'a str>,
    /// The person paged about it, when the flow pages someone.
    pub paged: Option<&'a WaId>,
}

/// An alert as flows see it (`alert.service`, `alert.paged`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    /// `ALT-0001`, `ALT-0002`, …
    pub id: String,
    /// `critical`, `warning`, `info`, … (lowercase).
    pub severity: String,
    /// The service affected.
    pub service: String,
    /// What is wrong.
    pub message: String,
    /// Where the fix is written down.
    pub runbook_url: Option<String>,
    /// Who reported it.
    pub source: AlertSource,
    /// Alertmanager's fingerprint.
    pub fingerprint: Option<String>,
    /// PagerDuty's incident id, kept so acknowledging here acknowledges there.
    pub pagerduty_incident_id: Option<String>,
    /// E.164 numbers of everyone paged about it, in paging order.
    pub paged: Vec<String>,
    /// The same people with when each was paged.
    pub pages: Vec<Page>,
    /// Where it is now.
    pub state: AlertState,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// Unix milliseconds when it was acknowledged.
    pub acknowledged_ms: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// Unix milliseconds when it was resolved.
    pub resolved_ms: Option<i64>,
    /// How many times the source reported it (1 + repeats while it was open).
    pub fire_count: i64,
    /// Unix milliseconds when it first fired.
    pub created_ms: i64,
    /// Unix milliseconds of its last change.
    pub updated_ms: i64,
    /// Every state it entered, oldest first.
    pub transitions: Vec<Transition>,
}

impl AlertRecord {
    /// One line for messages and lists: `[CRITICAL] api: High latency (>500ms)`, the message cut
    /// to keep it short.
    pub fn title(&self) -> String {
        const MAX: usize = 80;
        let message = self.message.lines().next().unwrap_or_default().trim();
        let short = if message.chars().count() > MAX {
            let cut: String = message.chars().take(MAX - 1).collect();
            format!("{}…", cut.trim_end())
        } else {
            message.to_owned()
        };
        format!(
            "[{}] {}: {short}",
            self.severity.to_uppercase(),
            self.service
        )
    }

    /// Whether `who` was paged about it or acknowledged it.
    pub fn involves(&self, who: &WaId) -> bool {
        let number = who.e164();
        self.paged.contains(&number) || self.acknowledged_by.as_deref() == Some(number.as_str())
    }
}

/// What [`SqliteStore::create_alert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedAlert {
    /// The alert, new or updated.
    pub alert: AlertRecord,
    /// `true` when an open alert with the same fingerprint or PagerDuty incident was updated
    /// instead of a new one created: the flow should not page again.
    pub duplicate: bool,
}

/// What [`SqliteStore::transition`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// The alert moved to the new state.
    Moved(AlertRecord),
    /// It was already there or further on (acknowledging an acknowledged alert, resolving a
    /// resolved one): nothing changed.
    Unchanged(AlertRecord),
    /// The move is not allowed: acknowledging a resolved alert, or making one fire again.
    Refused(AlertRecord),
    /// No alert has that id.
    Unknown,
}

/// The columns [`alert_from_row`] reads, in its order.
const ALERT_COLUMNS: &str = "id, severity, service, message, runbook_url, source, fingerprint, \
     pagerduty_incident_id, paged, pages, state, acknowledged_by, acknowledged_ms, resolved_by, \
     resolved_ms, fire_count, created_ms, updated_ms, transitions";

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
    pub async fn create_alert(&self, new: &NewAlert<'_>) -> Result<CreatedAlert, StoreError> {
        logged("create_alert", async {
            let now = now_ms();
            let severity = new.severity.trim().to_lowercase();
            let paged = new.paged.map(WaId::e164);
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
                              transitions)
                         SELECT printf('ALT-%04d', n), n, ?1, ?2, ?3, ?4, ?5, ?6, ?7,
                                CASE WHEN ?8 IS NULL THEN json_array() ELSE json_array(?8) END,
                                CASE WHEN ?8 IS NULL THEN json_array()
                                     ELSE json_array(json_object('phone', ?8, 'at_ms', ?9)) END,
                                'firing', ?9, ?9,
                                json_array(json_object('state', 'firing', 'at_ms', ?9, 'actor', ?5))
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
    pub async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        logged("get_alert", async { fetch_alert(self, id).await }).await
    }

    /// Alerts in one of `states` that involve `who` (paged about it, or acknowledged it), newest
    /// first; at most 50.
    pub async fn find_open_for(
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
    pub async fn add_paged(&self, id: &str, who: &WaId) -> Result<Option<AlertRecord>, StoreError> {
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

    /// Moves an alert forward to `to` (acknowledged or resolved), recording `actor` and the time,
    /// in one conditional `UPDATE`: of two people acknowledging at once, the first is recorded.
    pub async fn transition(
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
                Some(alert) => {
                    let backwards = to == AlertState::Firing
                        || (to == AlertState::Acknowledged && alert.state == AlertState::Resolved);
                    if backwards && alert.state != to {
                        TransitionOutcome::Refused(alert)
                    } else {
                        TransitionOutcome::Unchanged(alert)
                    }
                }
            })
        })
        .await
    }

    /// The open (not resolved) alert with this Alertmanager fingerprint, newest first.
    pub async fn find_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<AlertRecord>, StoreError> {
        logged("find_by_fingerprint", async {
            find_open_by(self, "fingerprint", fingerprint).await
        })
        .await
    }

    /// The open (not resolved) alert of this PagerDuty incident.
    pub async fn find_by_pagerduty(
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

/// An [`AlertRecord`] from a row of [`ALERT_COLUMNS`].
fn alert_from_row(row: &SqliteRow) -> Result<AlertRecord, Failure> {
    let state: String = row.try_get("state")?;
    let source: String = row.try_get("source")?;
    let paged: String = row.try_get("paged")?;
    let pages: String = row.try_get("pages")?;
    let transitions: String = row.try_get("transitions")?;
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::fresh_store;

    fn alice() -> WaId {
        WaId::parse("+1 555 123 4567").expect("a number")
    }

    fn firing<'a>(fingerprint: Option<&'a str>, paged: Option<&'a WaId>) -> NewAlert<'a> {
        NewAlert {
            severity: "Critical",
            service: "api",
            message: "High latency",
            runbook_url: None,
            source: AlertSource::Alertmanager,
            fingerprint,
            pagerduty_incident_id: None,
            paged,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_same_fingerprint_firing_twice_updates_the_open_alert() {
        let (_dir, _url, store) = fresh_store().await;
        let alice = alice();
        let first = store
            .create_alert(&firing(Some("fp1"), Some(&alice)))
            .await
            .expect("created");
        assert_eq!(
            (first.alert.id.as_str(), first.duplicate),
            ("ALT-0001", false)
        );
        assert_eq!(first.alert.severity, "critical");
        assert_eq!(first.alert.title(), "[CRITICAL] api: High latency");
        let again = store
            .create_alert(&firing(Some("fp1"), Some(&alice)))
            .await
            .expect("updated");
        assert!(again.duplicate);
        assert_eq!(again.alert.id, "ALT-0001");
        assert_eq!(again.alert.fire_count, 2);
        assert_eq!(again.alert.paged, ["+15551234567"]);

        store
            .transition("ALT-0001", AlertState::Resolved, Some("alertmanager"))
            .await
            .expect("resolves");
        let after = store
            .create_alert(&firing(Some("fp1"), None))
            .await
            .expect("created");
        assert_eq!(
            (after.alert.id.as_str(), after.duplicate),
            ("ALT-0002", false)
        );
        assert!(after.alert.paged.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn states_only_move_forward_and_every_move_is_recorded() {
        let (_dir, _url, store) = fresh_store().await;
        let alice = alice();
        store
            .create_alert(&firing(None, Some(&alice)))
            .await
            .expect("created");
        let TransitionOutcome::Moved(acked) = store
            .transition("ALT-0001", AlertState::Acknowledged, Some("+15551234567"))
            .await
            .expect("runs")
        else {
            panic!("acknowledging a firing alert moves it")
        };
        assert_eq!(acked.acknowledged_by.as_deref(), Some("+15551234567"));
        assert!(matches!(
            store
                .transition("ALT-0001", AlertState::Acknowledged, Some("+15557654321"))
                .await
                .expect("runs"),
            TransitionOutcome::Unchanged(a) if a.acknowledged_by.as_deref() == Some("+15551234567")
        ));
        store
            .transition("ALT-0001", AlertState::Resolved, None)
            .await
            .expect("runs");
        let refused = store
            .transition("ALT-0001", AlertState::Acknowledged, Some("+15551234567"))
            .await
            .expect("runs");
        let TransitionOutcome::Refused(resolved) = refused else {
            panic!("acknowledging a resolved alert is refused: {refused:?}")
        };
        let states: Vec<&str> = resolved
            .transitions
            .iter()
            .map(|t| t.state.as_str())
            .collect();
        assert_eq!(states, ["firing", "acknowledged", "resolved"]);
        assert_eq!(
            resolved.transitions[1].actor.as_deref(),
            Some("+15551234567")
        );
        assert!(matches!(
            store
                .transition("ALT-0404", AlertState::Resolved, None)
                .await
                .expect("runs"),
            TransitionOutcome::Unknown
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn open_alerts_of_a_person_come_newest_first() {
        let (_dir, _url, store) = fresh_store().await;
        let (alice, bob) = (alice(), WaId::parse("15557654321").expect("a number"));
        for paged in [Some(&alice), Some(&bob), Some(&alice)] {
            store
                .create_alert(&firing(None, paged))
                .await
                .expect("created");
        }
        store.add_paged("ALT-0002", &alice).await.expect("adds");
        store.add_paged("ALT-0002", &alice).await.expect("adds");
        let mine = store
            .find_open_for(&alice, &[AlertState::Firing])
            .await
            .expect("finds");
        let ids: Vec<&str> = mine.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["ALT-0003", "ALT-0002", "ALT-0001"]);
        assert_eq!(mine[1].paged, ["+15557654321", "+15551234567"]);
        assert_eq!(mine[1].pages.len(), 2);
        assert!(mine[1].pages[1].at_ms >= mine[1].pages[0].at_ms);
        assert!(store
            .find_open_for(&bob, &[AlertState::Acknowledged])
            .await
            .expect("finds")
            .is_empty());
    }
}
