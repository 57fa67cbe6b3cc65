//! Routing through the real server: commands, a flow's own message patterns, keywords, the default
//! flow, pending `on_response` replies, the conversation's lookback (also across a restart), the
//! allow-list, every message type, batches, delivery statuses and redeliveries.

mod commands;
mod inbound;
mod pending;
mod sessions;
mod statuses;

/// What the shipped help flow always says.
const HELP_MARK: &str = "I'm the ops bot";
