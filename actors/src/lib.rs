//! The message-passing runtime of aof: the actors of the bot and the typed messages between them.
//!
//! ```text
//!  HTTP handlers ──Inbound──> Webhook ──Route──> Router ──Deliver──> Session (one per wa_id)
//!                             dedup, allow-list,  static routes,       lookback context, pending
//!                             audit, statuses     session registry     on_response, runs flows;
//!                                                 messages to others   its runs' replies go
//!                                                      │               straight on (SessionLink)
//!  Scheduler ──RunFlow (timer fired)──────────────────>┘                     │ Enqueue
//!  durable timers                                                            v
//!                                                                      RateLimiter ──SendJob──> Sender
//!                                                                      lanes, token bucket,     Transport port
//!                                                                      sliding window, quota    (Graph API / sandbox)
//!                                                                            ^── SendFinished ──┘
//! ```
//!
//! This crate knows actix, governor and its own messages. It knows nothing of YAML, HTTP or flows:
//! the application implements the ports in [`ports`] (flow runner, route table, transport, store)
//! and starts everything with [`Runtime::start`].
//!
//! - [`webhook`], [`router`], [`session`], [`rate_limiter`] (with its pacing, sliding window and
//!   progress lines), [`sender`] (with its retry delays, [`sender::backoff`]), [`scheduler`]: an
//!   actor each, with the messages it handles.
//! - [`handle`]: what the application holds to talk to them; [`runtime`]: starting them.
//! - [`model`], [`ids`]: the data they exchange; [`ports`]: what the application provides.
//! - [`testing`]: what tests and the load generator measure the bot with; [`memory_store`]: an
//!   in-memory store to start an actor alone in a test.
#![warn(missing_docs)]

mod failed_send;
pub mod guard;
pub mod handle;
pub mod ids;
pub mod memory_store;
pub mod model;
pub mod ports;
mod priority;
pub mod rate_limiter;
pub mod router;
pub mod runtime;
pub mod scheduler;
pub mod sender;
pub mod session;
pub mod testing;
pub mod webhook;

pub use handle::{Handle, Keeper};
pub use ids::{InboxSeq, JobId, RunId, WaId, Wamid};
pub use runtime::{Runtime, RuntimeSettings};
