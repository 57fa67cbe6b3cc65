//! The `oncall-manager` agent's `silence` and `unsilence` actions (`SILENCE api-server 1h`,
//! `UNSILENCE api-server`; [`crate::ops::silence`] reads them), and the check the `whatsapp` agent
//! makes before a page leaves: `held`.

use super::{str_field, AgentError, AgentResult, RunContext};
use crate::ops::{cover, silence};
use aof_actors::WaId;
use chrono::Utc;
use serde_json::{json, Value};

/// An end as people read it, from now.
fn until_text(until_ms: i64) -> String {
    cover::until_text(until_ms, Utc::now())
}

/// `silence`: the `text` of a `SILENCE` command by someone `oncall.silencers` names; the silence
/// set, with `service`, `until_text` and `seconds` (until it ends, for the timer that lifts it).
pub(super) async fn silence(input: &Value, run: &RunContext) -> AgentResult {
    let by = run
        .user
        .as_ref()
        .map(|p| p.wa.clone())
        .ok_or_else(|| AgentError::Failed("silence needs the person who asked".into()))?;
    let wa = &run.services.config.platforms.whatsapp;
    silence::may_silence(wa, &by)?;
    let (service, until) = silence::parse(str_field(input, "text")?).map_err(AgentError::Answer)?;
    let now = Utc::now();
    let end = until.end(now, cover::zone_of(wa, &by));
    let set = run
        .services
        .store
        .add_silence(&service, end.timestamp_millis(), &by.e164())
        .await
        .map_err(AgentError::store)?;
    let detail = json!({ "service": set.service, "until_ms": set.until_ms });
    run.audit("silence", detail).await;
    tracing::info!(service = %set.service, until = %end, "service silenced from the chat");
    Ok(json!({
        "service": set.service, "until": end.to_rfc3339(), "until_text": until_text(set.until_ms),
        "seconds": (end - now).num_seconds().max(1),
    }))
}

/// `unsilence`: lifts the silence of `service` (or of the service an `UNSILENCE` `text` names);
/// `held` lists the alerts whose pages it held, `held_text` says them in a line.
pub(super) async fn unsilence(input: &Value, run: &RunContext) -> AgentResult {
    let wa = &run.services.config.platforms.whatsapp;
    if let Some(person) = &run.user {
        silence::may_silence(wa, &person.wa)?;
    }
    let service = match super::alerts::present(input.get("service")) {
        Some(service) => service.to_lowercase(),
        None => silence::parse_lift(str_field(input, "text")?).map_err(AgentError::Answer)?,
    };
    let store = &run.services.store;
    let Some(lifted) = store
        .lift_silence(&service)
        .await
        .map_err(AgentError::store)?
    else {
        return Err(AgentError::Answer(format!("ℹ️ {service} is not silenced.")));
    };
    let mut lines = Vec::new();
    for id in &lifted.held {
        let alert = store.get_alert(id).await.map_err(AgentError::store)?;
        lines.push(match alert {
            Some(a) => format!("{} ({}, {})", a.id, a.title(), a.state.as_str()),
            None => id.clone(),
        });
    }
    let detail = json!({ "service": service, "held": lifted.held });
    run.audit("unsilence", detail).await;
    let held_text = if lines.is_empty() {
        "nothing".to_owned()
    } else {
        lines.join("; ")
    };
    Ok(json!({ "service": service, "held": lifted.held, "held_text": held_text }))
}

/// Whether a page to `to` about `alert_id` is held by a silence of its service: then the alert's
/// timeline and the silence's list record it, and the answer is the `whatsapp` agent's output
/// instead of a send. `None`: send it.
pub(super) async fn held(
    run: &RunContext,
    alert_id: &str,
    to: &WaId,
) -> Result<Option<Value>, AgentError> {
    let store = &run.services.store;
    let Some(alert) = store.get_alert(alert_id).await.map_err(AgentError::store)? else {
        return Ok(None);
    };
    let now = Utc::now().timestamp_millis();
    let Some(quiet) = store
        .silence_of(&alert.service, now)
        .await
        .map_err(AgentError::store)?
    else {
        return Ok(None);
    };
    let wa = &run.services.config.platforms.whatsapp;
    if silence::breaks_through(wa, &alert) {
        return Ok(None);
    }
    store
        .hold_page(quiet.id, &alert.id)
        .await
        .map_err(AgentError::store)?;
    let note = format!(
        "The page to {} was held: {} is silenced until {} (by {}).",
        wa.label(Some(&to.e164())),
        alert.service,
        until_text(quiet.until_ms),
        wa.label(Some(&quiet.set_by))
    );
    store
        .add_alert_note(&alert.id, &note)
        .await
        .map_err(AgentError::store)?;
    tracing::info!(alert = %alert.id, service = %alert.service, "page held by a silence");
    Ok(Some(
        json!({ "held": true, "to": to.e164(), "queued": false, "silenced_until": quiet.until_ms }),
    ))
}
