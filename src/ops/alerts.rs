//! What an alert from another system (Alertmanager, Datadog, PagerDuty) does to the alerts already
//! open: it pages, repeats an open one (no second page), or settles one (resolved, acknowledged),
//! and whoever was paged is told. The HTTP handlers parse and authenticate; the rules are here.

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
            .about(Some(json!({ "alert_id": alert.id })))
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
