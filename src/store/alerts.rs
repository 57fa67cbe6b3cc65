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
//!
//! This file holds what an alert is (its states, sources and record); `queries.rs` reads and
//! moves alerts in the `alerts` table; `tests.rs` checks both against a real database file.

use aof_actors::ids::WaId;
use serde::Serialize;

pub(super) mod queries;
#[cfg(test)]
mod tests;

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

/// Something that happened to an alert besides its states (a page not delivered), and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AlertNote {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// What happened, as people read it.
    pub text: String,
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
    /// The run step recording it: the same step run again after a crash gets this alert back,
    /// not a second one.
    pub created_by: Option<&'a str>,
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
    /// What else happened to it (a page not delivered), oldest first.
    pub notes: Vec<AlertNote>,
    /// The flow step that recorded it (`run/step/service/fingerprint`), when a step did.
    #[serde(skip)]
    pub created_by: Option<String>,
}

impl AlertRecord {
    /// Whether the run `run_id` recorded it: a run resumed after a crash meets its own alert, which
    /// is not a repeat of the event that started it.
    pub fn recorded_by_run(&self, run_id: &str) -> bool {
        self.created_by
            .as_deref()
            .and_then(|by| by.strip_prefix(run_id))
            .is_some_and(|rest| rest.starts_with('/'))
    }

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

/// What [`Alerts::create_alert`](super::Alerts::create_alert) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedAlert {
    /// The alert, new or updated.
    pub alert: AlertRecord,
    /// `true` when an open alert with the same fingerprint or PagerDuty incident was updated
    /// instead of a new one created: the flow should not page again.
    pub duplicate: bool,
}

/// What [`Alerts::transition`](super::Alerts::transition) did.
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
