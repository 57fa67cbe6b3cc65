//! `alert-manager.acknowledge_all`: ACK ALL, for the engineer whose phone a storm filled. It takes
//! every firing alert they mean at once: those a digest they quoted names, else every one they
//! were paged about. Each goes through the same rule as one ACK ([`rules::acknowledge`]), so an
//! alert someone else took or that resolved meanwhile is left as it is and counted apart.

use super::alerts::{actor, person};
use super::{AgentError, AgentResult, RunContext};
use crate::ops::alerts as rules;
use crate::ops::digest::{by_service, ranges};
use crate::ops::Refused;
use crate::store::{AlertRecord, AlertState};
use serde_json::{json, Value};

/// `acknowledge_all`: acknowledges the firing alerts the person means. Output: `count`,
/// `alert_ids`, `ids` (as ranges), `services` (`api-server ×30, db ×7`), `pagerduty_incident_ids`
/// and `skipped` (taken by someone else or resolved meanwhile); `null` when nothing was firing.
pub(super) async fn acknowledge_all(input: &Value, run: &RunContext) -> AgentResult {
    let who = person(input, "user_phone", run)?;
    let by = actor(input, "acknowledged_by", run);
    let store = run.services.store.as_ref();
    let wa = &run.services.config.platforms.whatsapp;
    let candidates: Vec<String> = match quoted_ids(run) {
        Some(ids) => ids,
        None => store
            .find_open_for(&who, &[AlertState::Firing])
            .await
            .map_err(AgentError::store)?
            .into_iter()
            .map(|a| a.id)
            .collect(),
    };
    let mut taken: Vec<AlertRecord> = Vec::new();
    let mut skipped = 0;
    for id in &candidates {
        match rules::acknowledge(store, wa, id, by.as_deref()).await {
            Ok((alert, true)) => taken.push(alert),
            Ok((_, false)) | Err(Refused::Answer(_)) => skipped += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if taken.is_empty() {
        return Ok(Value::Null);
    }
    let ids: Vec<&str> = taken.iter().map(|a| a.id.as_str()).collect();
    let incidents: Vec<&str> = taken
        .iter()
        .filter_map(|a| a.pagerduty_incident_id.as_deref())
        .collect();
    tracing::info!(count = taken.len(), skipped, "alerts acknowledged at once");
    Ok(json!({
        "count": taken.len(),
        "alert_ids": ids,
        "ids": ranges(&ids),
        "services": by_service(taken.iter().map(|a| a.service.as_str())),
        "pagerduty_incident_ids": incidents,
        "skipped": skipped,
    }))
}

/// The alerts a quoted digest names (`{"alert_ids": [...]}`), when the reply quoted one.
fn quoted_ids(run: &RunContext) -> Option<Vec<String>> {
    let ids = run.target.as_ref()?.get("alert_ids")?.as_array()?;
    Some(
        ids.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}
