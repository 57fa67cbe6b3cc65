//! Prometheus Alertmanager's webhook payload (version 4), leniently: Alertmanager adds fields.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One notification: a group of alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// `"4"`.
    pub version: String,
    /// A stable id of the group.
    #[serde(rename = "groupKey", default)]
    pub group_key: String,
    /// `firing`, or `resolved` when every alert is.
    #[serde(default)]
    pub status: String,
    /// The alerts (at most `max_alerts`).
    pub alerts: Vec<Alert>,
    /// Alerts left out by `max_alerts`.
    #[serde(rename = "truncatedAlerts", default)]
    pub truncated_alerts: u64,
}

/// One alert of a notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Its labels (`alertname`, `severity`, `service`, `job`, `instance`, …).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations (`summary`, `description`, `runbook_url`, …).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    #[serde(rename = "startsAt", default)]
    pub starts_at: String,
    /// Alertmanager's id of the alert: the same labels give the same fingerprint.
    #[serde(default)]
    pub fingerprint: String,
    /// A link to the expression in Prometheus.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
}

/// Whether a JSON body is an Alertmanager notification rather than a flow's own input.
pub fn is_notification(body: &serde_json::Value) -> bool {
    body.get("alerts").is_some_and(|a| a.is_array()) && body.get("version").is_some()
}
