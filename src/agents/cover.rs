//! The `oncall-manager` agent's `cover` action: `COVER 2h`, `COVER Bob until 18:00` from the chat
//! ([`crate::ops::cover`] reads and settles it), kept in the store and audited; the flow tells the
//! team.

use super::{str_field, AgentError, AgentResult, RunContext};
use crate::ops::cover;
use chrono::Utc;
use serde_json::json;

/// `cover`: the `text` of a `COVER` command, by the person who wrote it; the cover set, with
/// `name`, `phone`, `until` (RFC 3339) and `until_text` (`18:00 UTC, in 3 h 30 min`).
pub(super) async fn cover(input: &serde_json::Value, run: &RunContext) -> AgentResult {
    let by = run
        .user
        .as_ref()
        .map(|p| p.wa.clone())
        .ok_or_else(|| AgentError::Failed("cover needs the person who asked".into()))?;
    let ask = cover::parse(str_field(input, "text")?).map_err(AgentError::Answer)?;
    let wa = &run.services.config.platforms.whatsapp;
    let now = Utc::now();
    let set = cover::settle(wa, &by, &ask, now)?;
    run.services
        .store
        .add_cover(&set)
        .await
        .map_err(AgentError::store)?;
    let until = chrono::DateTime::from_timestamp_millis(set.until_ms).unwrap_or(now);
    let until_text = cover::until_text(set.until_ms, now);
    let detail = json!({ "name": set.name, "phone": set.phone.masked(), "until_ms": set.until_ms });
    run.audit("cover", detail).await;
    tracing::info!(wa = %set.phone.masked(), until = %until, "on-call cover set from the chat");
    Ok(json!({
        "name": set.name, "phone": set.phone.e164(), "until": until.to_rfc3339(),
        "until_text": until_text,
    }))
}
