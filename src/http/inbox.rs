//! Alerts, PagerDuty events and flow webhooks as the inbox keeps them. Each is kept before its
//! 2xx ([`keep`]), handled after ([`handle`]), and its row closed once handled: for a page, once
//! its run ended. After a restart, [`resume`] hands the open rows over again in arrival order, so
//! a crash between the 2xx and the page loses nothing. (WhatsApp messages are kept by the Webhook
//! actor and resumed through it.)

use crate::flow::LoadedFlow;
use crate::ops::alerts::{self, Arrival};
use crate::role::Leading;
use crate::store::{AlertRecord, AlertState, InboxEntry, InboxRow};
use crate::wire::{alertmanager, pagerduty};
use crate::{ops::intake, store::Repositories};
use aof_actors::ports::StoreError;
use aof_actors::{InboxSeq, RunId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a kept event whose handling failed (the store did not answer) waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// An event kept in the inbox, with what handling it needs. Its input was checked before it was
/// kept: what is kept can be handled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Event {
    /// One alert of an Alertmanager notification, for the paging flow `flow` (its file stem).
    Alertmanager {
        /// The paging flow.
        flow: String,
        /// The alert.
        alert: alertmanager::Alert,
    },
    /// A Datadog alert mapped to the paging flow's input.
    Datadog {
        /// The paging flow.
        flow: String,
        /// Whether Datadog says it is over.
        resolves: bool,
        /// The flow's input (with `fingerprint`).
        input: Map<String, Value>,
    },
    /// A PagerDuty V3 event.
    Pagerduty {
        /// The event.
        event: pagerduty::Event,
    },
    /// A flow's webhook: the run id its caller was given and the checked input.
    Flow {
        /// The flow.
        flow: String,
        /// The run's id, as answered.
        run_id: String,
        /// The input.
        input: Map<String, Value>,
    },
}

impl Event {
    /// The inbox entry: `once` for ids the sender repeats on a redelivery, `open_key` for what
    /// must not be handled twice at the same time.
    pub fn entry(&self, once: Option<String>, open_key: Option<String>) -> InboxEntry {
        let kind = match self {
            Event::Alertmanager { .. } => "alertmanager",
            Event::Datadog { .. } => "datadog",
            Event::Pagerduty { .. } => "pagerduty",
            Event::Flow { .. } => "flow",
        };
        InboxEntry {
            kind,
            once,
            open_key,
            body: serde_json::to_string(self).unwrap_or_default(),
            audit: None,
        }
    }
}

/// Keeps entries in one commit. An error means nothing was kept: answer 503 so the sender retries.
pub async fn keep(
    store: &Arc<dyn Repositories>,
    entries: Vec<InboxEntry>,
) -> Result<Vec<Option<InboxSeq>>, StoreError> {
    store.keep_events(entries).await
}

/// Closes a row whose event needed no run.
async fn close(store: &dyn Repositories, seq: InboxSeq, outcome: &str) {
    if let Err(e) = store.inbox_done(seq, outcome.to_owned()).await {
        tracing::error!(error = %e, "closing an inbox row failed; the event is handled again after a restart");
    }
}

/// The paging flow named `stem`, if it is still loaded.
fn flow(leading: &Leading, stem: &str) -> Option<Arc<LoadedFlow>> {
    leading
        .engine
        .flows()
        .iter()
        .find(|f| f.stem == stem)
        .cloned()
}

/// What handling a kept event did, for the HTTP answer.
#[derive(Debug)]
pub enum Handled {
    /// A run started (a page, a flow); the row closes when it ends.
    Started(RunId),
    /// The open alert it names was resolved.
    Resolved(String),
    /// The alert is open already: no second page.
    Repeat(String),
    /// Nothing to do (a resolved alert with nothing open, a flow gone).
    Nothing,
    /// A PagerDuty event's outcome, as its webhook answers it.
    Answer(Value),
    /// Kept by a replica that does not lead: the leader handles it from the shared inbox.
    Queued,
}

/// Handles a kept event; what it did, for the HTTP answer. An error (the store did not answer)
/// leaves the row open: see [`handle_later`].
pub async fn handle(
    leading: &Leading,
    seq: InboxSeq,
    event: &Event,
) -> Result<Handled, StoreError> {
    match event {
        Event::Alertmanager { flow, alert } => {
            let open = leading
                .store
                .find_by_fingerprint(&alert.fingerprint)
                .await?;
            let arrival = Arrival::of(alert.status == "resolved", open);
            let input = || intake::from_alertmanager(alert);
            Ok(arrive(leading, seq, flow, arrival, input, "Alertmanager").await)
        }
        Event::Datadog {
            flow,
            resolves,
            input,
        } => {
            let fingerprint = input.get("fingerprint").and_then(Value::as_str);
            let open = leading
                .store
                .find_by_fingerprint(fingerprint.unwrap_or_default())
                .await?;
            let arrival = Arrival::of(*resolves, open);
            Ok(arrive(leading, seq, flow, arrival, || input.clone(), "Datadog").await)
        }
        Event::Pagerduty { event } => pagerduty_event(leading, seq, event).await,
        Event::Flow {
            flow,
            run_id,
            input,
        } => {
            let run_id = RunId(run_id.clone());
            let input = Value::Object(input.clone());
            leading
                .handle
                .run_flow(run_id.clone(), flow.clone(), input, Some(seq));
            Ok(Handled::Started(run_id))
        }
    }
}

/// What an arriving alert does: pages (the row closes when the run ended), or repeats, settles or
/// does nothing (the row closes now).
async fn arrive(
    leading: &Leading,
    seq: InboxSeq,
    stem: &str,
    arrival: Arrival,
    input: impl FnOnce() -> Map<String, Value>,
    source: &str,
) -> Handled {
    let arrival = match arrival {
        // The run this very row started recorded it and was cut short by a crash: resumed, so
        // that the page it was about to send goes out.
        Arrival::Repeat(open) if open.recorded_by_run(&RunId::of_inbox(seq).0) => Arrival::Page,
        other => other,
    };
    match arrival {
        Arrival::Page => match flow(leading, stem) {
            Some(flow) => {
                let run_id = RunId::of_inbox(seq);
                let input = Value::Object(input());
                leading
                    .handle
                    .run_flow(run_id.clone(), flow.stem.clone(), input, Some(seq));
                Handled::Started(run_id)
            }
            None => {
                tracing::error!(
                    flow = stem,
                    "a kept alert's paging flow is gone (flows reloaded); it pages nobody"
                );
                close(leading.store.as_ref(), seq, "no_flow").await;
                Handled::Nothing
            }
        },
        Arrival::Repeat(open) => {
            close(leading.store.as_ref(), seq, "repeat").await;
            Handled::Repeat(open.id)
        }
        Arrival::Resolve(open) => {
            let id = open.id.clone();
            settle(leading, open, AlertState::Resolved, source).await;
            close(leading.store.as_ref(), seq, "resolved").await;
            Handled::Resolved(id)
        }
        Arrival::Nothing => {
            close(leading.store.as_ref(), seq, "nothing_open").await;
            Handled::Nothing
        }
    }
}

/// [`alerts::settle`] with the app's store and actors.
async fn settle(leading: &Leading, alert: AlertRecord, to: AlertState, actor: &str) -> bool {
    alerts::settle(leading.store.as_ref(), &leading.handle, alert, to, actor).await
}

/// A PagerDuty event keeps the alert record in step with the incident; never calls PagerDuty
/// back, so nothing echoes.
async fn pagerduty_event(
    leading: &Leading,
    seq: InboxSeq,
    event: &pagerduty::Event,
) -> Result<Handled, StoreError> {
    let incident = &event.data;
    let open = leading.store.find_by_pagerduty(&incident.id).await?;
    let actor = event
        .agent
        .as_ref()
        .map(|a| format!("{} (PagerDuty)", a.summary))
        .unwrap_or_else(|| "PagerDuty".into());
    // An incident the run of this very row recorded before a crash: the run is resumed.
    let run_id = RunId::of_inbox(seq);
    let open = open.filter(|o| !o.recorded_by_run(&run_id.0));
    let outcome = match (event.event_type.as_str(), open) {
        ("incident.triggered", None) => {
            let paging = leading.engine.flows().paging();
            match paging {
                Some(flow) => {
                    let input = Value::Object(intake::from_pagerduty(incident));
                    leading
                        .handle
                        .run_flow(run_id.clone(), flow.stem.clone(), input, Some(seq));
                    return Ok(Handled::Started(run_id));
                }
                None => {
                    json!({ "ignored": "no flow has a type: alertmanager trigger to page with" })
                }
            }
        }
        ("incident.acknowledged", Some(open)) => {
            json!({ "acknowledged": settle(leading, open, AlertState::Acknowledged, &actor).await })
        }
        ("incident.resolved", Some(open)) => {
            json!({ "resolved": settle(leading, open, AlertState::Resolved, &actor).await })
        }
        ("incident.escalated" | "incident.reassigned", Some(open)) => {
            let to: Vec<&str> = incident
                .assignees
                .iter()
                .map(|a| a.summary.as_str())
                .collect();
            let text = format!(
                "⬆️ Escalated in PagerDuty (now with {})\n\n{}",
                to.join(", "),
                open.title()
            );
            alerts::tell_paged(&leading.handle, &open, text).await;
            json!({ "escalated": open.id })
        }
        (other, _) => json!({ "ignored": other }),
    };
    close(leading.store.as_ref(), seq, "handled").await;
    Ok(Handled::Answer(outcome))
}

/// Handles a kept event whose handling failed, every few seconds until the store answers: it was
/// acknowledged, so it must not wait for a restart.
pub fn handle_later(leading: Leading, seq: InboxSeq, event: Event) {
    actix::spawn(async move {
        loop {
            actix::clock::sleep(RETRY_AFTER).await;
            match handle(&leading, seq, &event).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "a kept event still cannot be handled; retrying")
                }
            }
        }
    });
}

/// Why rows are handed over: they were left by the process before (a restart, a takeover), or a
/// follower kept them since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// Left open by the process before: a restart, or the replica that led before a takeover.
    Resumed,
    /// Kept by a follower while this replica leads.
    FromFollower,
}

/// Hands over kept rows not handled yet, in arrival order: messages to the Webhook actor, the
/// other events to [`handle`].
pub fn resume(leading: &Leading, rows: Vec<InboxRow>, why: Handover) {
    if rows.is_empty() {
        return;
    }
    match why {
        Handover::Resumed => {
            tracing::info!(
                events = rows.len(),
                "resuming what was acknowledged and not handled before the restart"
            );
            metrics::counter!("aof_inbox_resumed_total").increment(rows.len() as u64);
        }
        Handover::FromFollower => {
            tracing::debug!(events = rows.len(), "handling what followers kept");
            metrics::counter!("aof_inbox_from_followers_total").increment(rows.len() as u64);
        }
    }
    let mut messages = Vec::new();
    let mut events = Vec::new();
    for row in rows {
        if row.kind == "message" {
            match serde_json::from_str::<aof_actors::model::InboundMessage>(&row.body) {
                Ok(mut message) => {
                    message.inbox = Some(row.seq);
                    messages.push(message);
                }
                Err(e) => unreadable(leading, row.seq, &row.kind, &e),
            }
            continue;
        }
        match serde_json::from_str::<Event>(&row.body) {
            Ok(event) => events.push((row.seq, event)),
            Err(e) => unreadable(leading, row.seq, &row.kind, &e),
        }
    }
    match why {
        Handover::Resumed => leading.handle.resume(messages),
        Handover::FromFollower => leading.handle.hand_over(messages),
    }
    let leading = leading.clone();
    actix::spawn(async move {
        for (seq, event) in events {
            if let Err(e) = handle(&leading, seq, &event).await {
                tracing::warn!(error = %e, "a kept event cannot be handled yet; retrying");
                handle_later(leading.clone(), seq, event);
            }
        }
    });
}

/// A row this version cannot read (written by a newer one?): logged and closed, not retried forever.
fn unreadable(leading: &Leading, seq: InboxSeq, kind: &str, e: &serde_json::Error) {
    tracing::error!(seq = seq.0, kind, error = %e, "an inbox row cannot be read; it is skipped");
    let store = leading.store.clone();
    actix::spawn(async move { close(store.as_ref(), seq, "unreadable").await });
}
