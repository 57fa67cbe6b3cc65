//! Everything that starts the bot in this process ([`common::TestApp`]) and talks to it over HTTP,
//! against fakes of the services it calls. One binary, so the harness and the bot are built and
//! linked once; each module was a test binary of its own before and keeps its tests' names.
//!
//! - `alerts_approvals`: the `alert-manager` and `approval-manager` agents.
//! - `deploy_notify`: the `deployment-manager` and `notifier` agents (deploy webhook, Slack, email).
//! - `flows`: the shipped status check, step features, the scheduler, flow webhooks, health.
//! - `flow_validation`: AgentFlow validation at start-up and on hot reload.
//! - `oncall`: rotas and PagerDuty.
//! - `routing`: commands, keywords, pending replies, sessions' lookback, statuses.
//! - `sandbox_chat` and `sandbox_page`: the sandbox from a terminal and the page's server side.
//! - `sending`: retries, throttling, the template fallback and quota, the durable queue.
//! - `sessions`: idle sessions stopping and coming back from the store.
//! - `stories`: whole stories of the tutorial on the shipped flows.
//! - `traffic`: real WhatsApp traffic: unreadable messages in a batch, other business numbers,
//!   messages that are not a person talking, reactions.
//! - `usernames`: people known by a WhatsApp user id (BSUID) instead of, or beside, a number.
//! - `webhook`: Meta's webhook: verification, signatures, message types, redeliveries.
//!
//! The rate in every one-second window is measured alone in `tests/rate_window.rs`; the `aofctl`
//! binary is run by `tests/cli.rs`; real Alertmanager and chromium by `tests/external.rs`.

mod common;

mod api {
    mod alerts_approvals;
    mod deploy_notify;
    mod flow_validation;
    mod flows;
    mod oncall;
    mod routing;
    mod sandbox_chat;
    mod sandbox_page;
    mod sending;
    mod sessions;
    mod stories;
    mod traffic;
    mod usernames;
    mod webhook;
}
