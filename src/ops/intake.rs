//! Alerts from other systems, mapped to the paging flow's input (`severity`, `service`, `message`,
//! `runbook_url`) plus what identifies them (`fingerprint`, `pagerduty_incident_id`, `source`), so
//! that the same alert firing again updates the open one instead of paging twice.
//!
//! Severity words (documented in the README):
//! - Alertmanager `labels.severity`: `critical`, `page`, `error`, `high`, `p1`, `p2` → critical;
//!   `warning`, `warn`, `medium`, `p3` → warning; `info`, `low`, `none`, `p4`, `p5` → info; anything
//!   else → warning.
//! - Datadog: see [`super::datadog`].
//! - PagerDuty `urgency`: `high` → critical, `low` → warning.

use crate::wire::{alertmanager, pagerduty};
use serde_json::{json, Map, Value};

/// What a severity word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Page now; auto-escalates.
    Critical,
    /// Page.
    Warning,
    /// Tell.
    Info,
    /// The alert is over.
    Resolved,
}

impl Severity {
    /// The flow's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Resolved => "resolved",
        }
    }
}

/// An Alertmanager `severity` label.
pub fn alertmanager_severity(label: Option<&str>) -> Severity {
    match label
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "critical" | "page" | "error" | "high" | "p1" | "p2" => Severity::Critical,
        "info" | "low" | "none" | "p4" | "p5" => Severity::Info,
        _ => Severity::Warning,
    }
}

fn first<'a>(
    map: &'a std::collections::BTreeMap<String, String>,
    keys: &[&str],
) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        map.get(*k)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    })
}

/// One Alertmanager alert as the paging flow's input. `service` falls back to `job`, then
/// `instance`, then `alertname`; `message` to `description`, then `alertname`.
pub fn from_alertmanager(alert: &alertmanager::Alert) -> Map<String, Value> {
    let (labels, notes) = (&alert.labels, &alert.annotations);
    let alertname = first(labels, &["alertname"]).unwrap_or("alert");
    let mut input = Map::new();
    input.insert(
        "severity".into(),
        json!(alertmanager_severity(first(labels, &["severity"])).as_str()),
    );
    input.insert(
        "service".into(),
        json!(first(labels, &["service", "job", "instance"]).unwrap_or(alertname)),
    );
    input.insert(
        "message".into(),
        json!(first(notes, &["summary", "description"]).unwrap_or(alertname)),
    );
    if let Some(url) = first(notes, &["runbook_url", "runbook"]) {
        input.insert("runbook_url".into(), json!(url));
    }
    input.insert("fingerprint".into(), json!(alert.fingerprint));
    input.insert("source".into(), json!("alertmanager"));
    input
}

/// A triggered PagerDuty incident as the paging flow's input.
pub fn from_pagerduty(incident: &pagerduty::Incident) -> Map<String, Value> {
    let severity = if incident.urgency.as_deref() == Some("low") {
        "warning"
    } else {
        "critical"
    };
    let service = incident
        .service
        .as_ref()
        .map(|s| s.summary.clone())
        .unwrap_or_else(|| "pagerduty".into());
    let mut input = Map::new();
    input.insert("severity".into(), json!(severity));
    input.insert("service".into(), json!(service));
    input.insert("message".into(), json!(incident.title));
    input.insert("pagerduty_incident_id".into(), json!(incident.id));
    input.insert("source".into(), json!("pagerduty"));
    if let Some(url) = &incident.html_url {
        input.insert("runbook_url".into(), json!(url));
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture;

    #[test]
    fn alertmanager_alerts_map_to_the_paging_input() {
        let n: alertmanager::Notification =
            serde_json::from_slice(&fixture("alertmanager/firing-two-alerts.json")).unwrap();
        let input = from_alertmanager(&n.alerts[0]);
        assert_eq!(input["severity"], "critical");
        assert_eq!(input["service"], "payments-api");
        assert_eq!(input["message"], "5xx ratio above 5% on payments-api");
        assert_eq!(
            input["runbook_url"],
            "https://runbooks.example.com/payments/high-error-rate"
        );
        assert_eq!(input["fingerprint"], "3f2b8c9d1e0a4b7c");
    }
}
