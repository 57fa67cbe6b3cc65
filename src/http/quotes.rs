//! What a reply acts on, settled before the message is kept ([`crate::ops::replies`]): `ACK
//! ALT-0003` is routed as `ACK` with the alert as its target, and a reply quoting one of the bot's
//! messages (a typed quote, or a tap on its button) targets what that message was about. Resolved
//! here, once, so that a message handed over again after a restart means the same thing.

use super::AppState;
use crate::ops::replies;
use aof_actors::model::{InboundMessage, RouteReason};

/// Sets each message's `target` (and takes an explicit id off its text when the command alone is
/// what routes). A quote whose message the store cannot find (older than the store remembers, or
/// the store not answering) leaves the target unset: the command then acts on the most recent.
pub async fn settle(state: &AppState, messages: &mut [InboundMessage]) {
    for message in messages {
        if let Some(text) = &message.text {
            if let Some((command, target)) = replies::explicit(text) {
                if routes_alone(state, text, &command) {
                    message.text = Some(command);
                    message.target = Some(target);
                    continue;
                }
            }
        }
        let Some(quoted) = &message.context_id else {
            continue;
        };
        match state.store.outbound_message(quoted.as_str()).await {
            Ok(Some(record)) => {
                message.target = record.about.as_ref().and_then(replies::quoted);
                for_each_of_a_digest(state, message);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the quoted message could not be looked up; the reply acts on the most recent");
            }
        }
    }
}

/// A command quoting a digest means each alert in it: `ACK` becomes `ACK ALL` (over the digest's
/// alerts) when that routes.
fn for_each_of_a_digest(state: &AppState, message: &mut InboundMessage) {
    let names_many = message
        .target
        .as_ref()
        .is_some_and(|t| t.get("alert_ids").is_some());
    let Some(text) = message.text.as_deref().filter(|_| names_many) else {
        return;
    };
    let all = format!("{} ALL", text.trim());
    if routes(state, &all) {
        message.text = Some(all);
    }
}

/// Whether `text` routes to a command or a flow's own pattern as written.
fn routes(state: &AppState, text: &str) -> bool {
    state
        .routes
        .static_route(text)
        .is_some_and(|r| matches!(r.reason, RouteReason::Command | RouteReason::FlowTrigger))
}

/// Whether `command` routes to a command or a flow's own pattern while the whole `text` does not
/// (`JOIN INC-0002` is a command as written and keeps its id).
fn routes_alone(state: &AppState, text: &str, command: &str) -> bool {
    !routes(state, text) && routes(state, command)
}
