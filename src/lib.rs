//! aof: a self-hosted WhatsApp on-call and ops bot whose behaviour is YAML (one TriggerConfig and a
//! folder of AgentFlows).
//!
//! ```text
//!  Meta ─HTTPS─> http (verify signature, parse) ─> Webhook ─> Router ─> Session (per person)
//!                                                                         │ runs flows (flow, agents)
//!                                                                         v
//!                                   RateLimiter (governor, lanes) ─> Sender ─> transport (Graph API | sandbox)
//! ```
//!
//! - [`config`]: the TriggerConfig: typed, strict, `${VAR}` expansion, message templates.
//! - [`store`]: SQLite or PostgreSQL through sqlx: everything that must survive a restart (or a
//!   takeover by another replica).
//! - [`wire`]: Meta's JSON bodies and signatures, nothing else.
//! - [`transport`]: the Graph API client and the sandbox, behind the actors' `Transport` port.
//! - [`flow`]: loading, validating and running AgentFlows.
//! - [`agents`]: the built-in agents that flow steps call.
//! - [`ops`]: the ops domain: alerts from other systems, who is on call, war rooms.
//! - [`integrations`]: clients of ops services besides WhatsApp (PagerDuty's REST API).
//! - [`http`]: the actix-web server: webhooks, health, metrics, sandbox endpoints.
//! - [`cli`]: what `aofctl flows list` and the other subcommands print.
//! - [`live`]: what happens as it happens (sandbox page, `aofctl simulate`), kept for the page.
//! - [`app`]: start-up: wires the store, the actors, the flows and the server together.
//! - [`role`]: which replica runs the actors (every one keeps what arrives).
//! - [`trim`]: gives memory freed after a burst back to the system.
//! - [`fake_http`]: fakes of the HTTP services the bot calls, for the test suite and the load generator.

/// Every binary and test of the crate allocates through mimalloc (see `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod agents;
pub mod app;
pub mod cli;
pub mod config;
pub mod fake_http;
pub mod flow;
pub mod http;
pub mod integrations;
pub mod live;
pub mod ops;
pub mod role;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod trim;
pub mod wire;

/// The payloads under `tests/fixtures/`, for the unit tests of every module.
#[cfg(test)]
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}
