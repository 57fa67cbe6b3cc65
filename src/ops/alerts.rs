//! Alerts' rules. What an alert from another system (Alertmanager, Datadog, PagerDuty) does to the
//! alerts already open: it pages, repeats an open one (no second page), or settles one (resolved,
//! acknowledged), and whoever was paged is told. Which alert a person means by ACK or ESC
//! ([`meant`]), and what acknowledging and resolving do ([`acknowledge`], [`resolve`]). The HTTP
//! handlers and the `alert-manager` agent parse and hand over; the rules are here.

use super::{when, Refused};
use crate::config::WhatsAppConfig;
use crate::store::{AlertRecord, AlertState, Repositories, TransitionOutcome};
use aof_actors::model::{Lane, OutboundMessage};
use aof_actors::{Handle, WaId};
use serde_json::json;

/// What an arriving alert means, given the open alert with the same key (fingerprint, PagerDuty
/// incident).
#[derive(Debug)]
pub enum Arrival {
    /// Nothing is open for it: page.
    Page,
    /// It is open already: no second page.
    Repeat(AlertRecord),
    /// Its source says it is over: resolve the open one.
    Resolve(AlertRecord),
    /// Its source says it is over, and nothing is open: nothing to do.
    Nothing,
}

impl Arrival {
    /// The meaning of an alert that `resolves` (or fires), given `open`.
    pub fn of(resolves: bool, open: Option<AlertRecord>) -> Arrival {
        match (resolves, open) {
            (true, Some(open)) => Arrival::Resolve(open),
            (true, None) => Arrival::Nothing,
            (false, Some(open)) => Arrival::Repeat(open),
            (false, None) => Arrival::Page,
        }
    }
}

/// Sends a line to everyone who was paged about `alert`.
pub async fn tell_paged(handle: &Handle, alert: &AlertRecord, text: String) {
    for phone in &alert.paged {
        let Some(to) = WaId::parse(phone) else {
            continue;
        };
        let message = OutboundMessage::text(to, text.clone(), Lane::Alert)
            .about(Some(json!({
                "alert_id": alert.id,
                "service": alert.service,
                "state": alert.state.as_str(),
                "title": alert.title(),
            })))
            .flow(format!("{}-sync", alert.source.as_str()));
        if let Err(e) = handle.send(message).await {
            tracing::error!(alert = %alert.id, error = %e, "could not tell a paged person");
        }
    }
}

/// Moves an open alert to `to` because its source said so (`actor`), and tells whoever was
/// paged; whether it moved.
pub async fn settle(
    store: &dyn Repositories,
    handle: &Handle,
    alert: AlertRecord,
    to: AlertState,
    actor: &str,
) -> bool {
    match store.transition(&alert.id, to, Some(actor)).await {
        Ok(TransitionOutcome::Moved(alert)) => {
            let verb = if to == AlertState::Resolved {
                "✅ Resolved"
            } else {
                "👀 Acknowledged"
            };
            let text = format!("{verb} by {actor}\n\n{}", alert.title());
            tell_paged(handle, &alert, text).await;
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!(alert = %alert.id, error = %e, "could not update an alert from its source");
            false
        }
    }
}

/// The alert `who` means among those in `states`: the newest one their conversation names
/// (`named`, newest first: the sends that paged or escalated to them), else the newest they were
/// paged about or acknowledged; `None` when there is none.
pub async fn meant(
    store: &dyn Repositories,
    named: Vec<String>,
    who: &WaId,
    states: &[AlertState],
) -> Result<Option<AlertRecord>, Refused> {
    let mut seen = Vec::new();
    for id in named {
        if seen.contains(&id) {
            continue;
        }
        if let Some(alert) = store.get_alert(&id).await? {
            if states.contains(&alert.state) {
                tracing::debug!(alert = %alert.id, "the conversation names the alert");
                return Ok(Some(alert));
            }
        }
        seen.push(id);
    }
    let mine = store.find_open_for(who, states).await?;
    Ok(mine.into_iter().next())
}

/// The alert a reply names (`ACK ALT-0003`, or quoting its page), when it is in one of `states`;
/// otherwise the person is told what state it is in rather than a command landing on another
/// alert.
pub async fn targeted(
    store: &dyn Repositories,
    wa: &WhatsAppConfig,
    id: &str,
    states: &[AlertState],
) -> Result<AlertRecord, Refused> {
    let alert = existing(store, id).await?;
    if states.contains(&alert.state) {
        return Ok(alert);
    }
    let how = match alert.state {
        AlertState::Firing => "still firing: nobody has acknowledged it".to_owned(),
        AlertState::Acknowledged => format!(
            "already acknowledged by {}",
            wa.label(alert.acknowledged_by.as_deref())
        ),
        AlertState::Resolved => format!(
            "already resolved by {}",
            wa.label(alert.resolved_by.as_deref())
        ),
    };
    Err(Refused::Answer(format!(
        "ℹ️ {} ({}) is {how}.",
        alert.id,
        alert.title()
    )))
}

/// A line for a person whose bare `command` acted on `chosen` while `open` (theirs, in the states
/// the command takes) holds others: which others, and how to pick one. `None` when there are none.
/// After a storm there may be hundreds: the first ten are named with their titles, the rest
/// by id ranges.
pub fn others_note(command: &str, chosen: &AlertRecord, open: &[AlertRecord]) -> Option<String> {
    let others: Vec<&AlertRecord> = open.iter().filter(|a| a.id != chosen.id).collect();
    let first = others.first()?;
    let mut listed: Vec<String> = others
        .iter()
        .take(LISTED)
        .map(|a| format!("{} ({})", a.id, a.title()))
        .collect();
    if others.len() > LISTED {
        let rest: Vec<&str> = others[LISTED..].iter().map(|a| a.id.as_str()).collect();
        listed.push(format!("and {}", crate::ops::digest::ranges(&rest)));
    }
    let command = command.trim().to_uppercase();
    Some(format!(
        "ℹ️ That was {}. You have {} more: {}. To act on another, quote its page or write `{command} {}`; ACK ALL acknowledges every firing one.",
        chosen.id,
        others.len(),
        listed.join(", "),
        first.id
    ))
}

/// How many other alerts a note names with their titles.
const LISTED: usize = 10;

/// Why the page to `to` about `alert` did not get through, so that the next person is paged; `None`
/// when there is nothing to do: it was delivered (or read), the alert is no longer firing, or
/// someone was paged after `to` already (an escalation or ESC got there first).
pub fn undelivered(
    alert: &AlertRecord,
    to: &WaId,
    delivery: Option<&crate::store::Delivery>,
    waited: std::time::Duration,
) -> Option<String> {
    use aof_actors::model::DeliveryState;
    if alert.state != AlertState::Firing || alert.paged.last() != Some(&to.e164()) {
        return None;
    }
    let Some(delivery) = delivery else {
        return Some("it was never queued".to_owned());
    };
    match (delivery.status, &delivery.status_error) {
        (Some(DeliveryState::Delivered | DeliveryState::Read), _) => None,
        (Some(DeliveryState::Failed), Some((code, title))) => {
            Some(format!("WhatsApp reported it failed ({code}: {title})"))
        }
        (Some(DeliveryState::Failed), None) => Some("WhatsApp reported it failed".to_owned()),
        _ if delivery.outbox == crate::store::JobState::Failed => Some(format!(
            "it could not be sent ({})",
            delivery
                .outbox_error
                .as_deref()
                .unwrap_or("no reason given")
        )),
        _ => Some(format!(
            "it was not delivered within {} s",
            waited.as_secs()
        )),
    }
}

/// Firing -> acknowledged by `by`; the alert and whether it changed (the same person acknowledging
/// again changes nothing). Someone else having acknowledged it first, or it being resolved, is
/// refused saying who and when.
pub async fn acknowledge(
    store: &dyn Repositories,
    wa: &WhatsAppConfig,
    id: &str,
    by: Option<&str>,
) -> Result<(AlertRecord, bool), Refused> {
    match store.transition(id, AlertState::Acknowledged, by).await? {
        TransitionOutcome::Moved(alert) => Ok((alert, true)),
        TransitionOutcome::Unchanged(alert) if alert.acknowledged_by.as_deref() == by => {
            Ok((alert, false))
        }
        TransitionOutcome::Unchanged(alert) if alert.state == AlertState::Acknowledged => {
            Err(Refused::Answer(format!(
                "ℹ️ {} was already acknowledged by {} at {}.",
                alert.id,
                wa.label(alert.acknowledged_by.as_deref()),
                when(alert.acknowledged_ms),
            )))
        }
        TransitionOutcome::Unchanged(alert) | TransitionOutcome::Refused(alert) => {
            Err(Refused::Answer(format!(
                "ℹ️ {} is already resolved (by {} at {}); nothing to acknowledge.",
                alert.id,
                wa.label(alert.resolved_by.as_deref()),
                when(alert.resolved_ms),
            )))
        }
        TransitionOutcome::Unknown => Err(unknown(id)),
    }
}

/// -> resolved by `by`; the alert and whether it changed. Resolving a resolved alert is not an
/// error: Alertmanager repeats itself.
pub async fn resolve(
    store: &dyn Repositories,
    id: &str,
    by: Option<&str>,
) -> Result<(AlertRecord, bool), Refused> {
    match store.transition(id, AlertState::Resolved, by).await? {
        TransitionOutcome::Moved(alert) => Ok((alert, true)),
        TransitionOutcome::Unchanged(alert) | TransitionOutcome::Refused(alert) => {
            Ok((alert, false))
        }
        TransitionOutcome::Unknown => Err(unknown(id)),
    }
}

/// The alert with this id.
pub async fn existing(store: &dyn Repositories, id: &str) -> Result<AlertRecord, Refused> {
    store.get_alert(id).await?.ok_or_else(|| unknown(id))
}

/// The sentence for an alert id nobody knows.
pub fn unknown(id: &str) -> Refused {
    Refused::Answer(format!(
        "I know no alert {id}; alert ids look like ALT-0001."
    ))
}
