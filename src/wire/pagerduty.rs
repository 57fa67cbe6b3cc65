//! PagerDuty's V3 webhook: the event envelope and the `X-PagerDuty-Signature` check.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The body of one V3 webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// The event.
    pub event: Event,
}

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event: the dedup key (PagerDuty delivers at least once).
    pub id: String,
    /// `incident.triggered`, `incident.acknowledged`, `incident.resolved`, `incident.escalated`, …
    pub event_type: String,
    /// Who did it (a user or a service reference), when known.
    #[serde(default)]
    pub agent: Option<Reference>,
    /// The incident.
    pub data: Incident,
}

/// The incident of an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    /// The incident id (`Q1W2E3R4T5Y6U7`).
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// `triggered`, `acknowledged`, `resolved`.
    #[serde(default)]
    pub status: String,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<String>,
    /// Its page in PagerDuty.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference>,
    /// Who it is assigned to.
    #[serde(default)]
    pub assignees: Vec<Reference>,
}

/// A PagerDuty reference (`{id, type, summary, …}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    /// The id.
    #[serde(default)]
    pub id: String,
    /// `user_reference`, `service_reference`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// A readable name.
    #[serde(default)]
    pub summary: String,
}

/// Whether `header` (`v1=<hex>[,v1=<hex>]`) holds an HMAC-SHA256 of `body` keyed with `secret`;
/// any `v1` signature may match (several during a secret rotation). Constant-time comparisons.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .any(|hex_sig| {
            let Ok(expected) = hex::decode(hex_sig) else {
                return false;
            };
            let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
}

/// The `X-PagerDuty-Signature` value for a body (tests and local tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::fixture(&format!("pagerduty/{name}"))
    }

    #[test]
    fn v3_fixtures_parse() {
        let triggered: Delivery =
            serde_json::from_slice(&fixture("v3-incident-triggered.json")).unwrap();
        assert_eq!(triggered.event.event_type, "incident.triggered");
        assert_eq!(triggered.event.data.id, "Q1W2E3R4T5Y6U7");
        let acked: Delivery =
            serde_json::from_slice(&fixture("v3-incident-acknowledged.json")).unwrap();
        assert_eq!(acked.event.agent.unwrap().summary, "Priya Raman");
    }

    #[test]
    fn any_v1_signature_may_match() {
        let good = sign(b"s3cret", b"{}");
        assert!(verify_signature(b"s3cret", b"{}", Some(&good)));
        assert!(verify_signature(
            b"s3cret",
            b"{}",
            Some(&format!("v1=00ff,{good}"))
        ));
        assert!(!verify_signature(b"other", b"{}", Some(&good)));
        assert!(!verify_signature(b"s3cret", b"{}", None));
        assert!(!verify_signature(b"s3cret", b"{}", Some("v1=zz")));
    }
}
