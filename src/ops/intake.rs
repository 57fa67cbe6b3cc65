//! Alerts from other systems, mapped to the paging flow's input (`severity`, `service`, `message`,
//! `runbook_url`) plus what identifies them (`fingerprint`, `pagerduty_incident_id`, `source`), so
//! that the same alert firing again updates the open one instead of paging twice.
//!
//! Severity words (documented in the README):
//! - Alertmanager `labels.severity`: `critical`, `page`, `error`, `high`, `p1`, `p2` → critical;
//!   `warning`, `warn`, `medium`, `p3` → warning; `info`, `low`, `none`, `p4`, `p5` → info; anything
//!   else → warning.
//! - Datadog `$ALERT_STATUS` / `$ALERT_TRANSITION`: `Alert`, `Triggered`, `Re-Triggered`, `Error` →
//!   critical; `Warn`, `Warning` → warning; `No Data`, `Info`, `Renotify` → info; `OK`,
//!   `Recovered`, `Success` → the open alert for that service is resolved.
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

/// A Datadog status or transition word; `None` for a word Datadog does not use.
pub fn datadog_severity(word: &str) -> Option<Severity> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "alert" | "triggered" | "re-triggered" | "error" => Severity::Critical,
        "warn" | "warning" => Severity::Warning,
        "no data" | "info" | "renotify" => Severity::Info,
        "ok" | "recovered" | "success" => Severity::Resolved,
        _ => return None,
    })
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

/// A Datadog alert, from the tutorial's payload template (severity = `$ALERT_STATUS`) or from
/// Datadog's default payload (`title` like `[Triggered on {…}] …`, `body`). `None` when the body
/// is neither.
pub fn from_datadog(body: &Map<String, Value>) -> Option<(Severity, Map<String, Value>)> {
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (severity, service, message) = match text("severity").and_then(datadog_severity) {
        Some(sev) => (
            sev,
            text("service")?.to_owned(),
            text("message").unwrap_or_default().to_owned(),
        ),
        None => {
            let title = text("title")?;
            let word = title.strip_prefix('[')?.split([' ', ']']).next()?;
            let sev = datadog_severity(word)?;
            let after = title
                .split_once(']')
                .map(|(_, rest)| rest.trim())
                .unwrap_or(title);
            let message = text("body")
                .unwrap_or(after)
                .replace("%%%", "")
                .trim()
                .to_owned();
            (sev, after.to_owned(), message)
        }
    };
    let mut input = body.clone();
    input.insert("severity".into(), json!(severity.as_str()));
    input.insert("service".into(), json!(service));
    input.insert("message".into(), json!(message));
    input.insert("fingerprint".into(), json!(format!("datadog:{service}")));
    input.insert("source".into(), json!("datadog"));
    Some((severity, input))
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

    #[test]
    fn datadog_words_map_to_severities() {
        let body =
            json!({"severity": "Triggered", "service": "api", "message": "m", "runbook_url": ""});
        let (sev, input) = from_datadog(body.as_object().unwrap()).unwrap();
        assert_eq!(
            (sev, input["severity"].as_str()),
            (Severity::Critical, Some("critical"))
        );
        let recovered = json!({"severity": "Recovered", "service": "api", "message": "m"});
        assert_eq!(
            from_datadog(recovered.as_object().unwrap()).unwrap().0,
            Severity::Resolved
        );
        let default: Value =
            serde_json::from_slice(&fixture("datadog/webhook-default.json")).unwrap();
        let (sev, input) = from_datadog(default.as_object().unwrap()).unwrap();
        assert_eq!(sev, Severity::Critical);
        assert_eq!(input["service"], "payments-api 5xx ratio high");
        assert!(from_datadog(json!({"severity": "critical"}).as_object().unwrap()).is_none());
    }
}
