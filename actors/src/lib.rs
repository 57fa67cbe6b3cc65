//! The message-passing runtime of aof: the actors of the bot and the typed messages between them.
//!
//! ```text
//!  HTTP handlers ──Inbound──> Webhook ──Route──> Router ──Deliver──> Session (one per wa_id)
//!                             dedup, allow-list,  static routes,       lookback context, pending
//!                             audit, statuses     session registry     on_response, runs flows
//!                                                      │                     │ SendOutbound
//!  Scheduler ──RunFlow (timer fired)──────────────────>┘                     v
//!  durable timers                                                      RateLimiter ──SendJob──> Sender
//!                                                                      lanes, token bucket,     Transport port
//!                                                                      sliding window, quota    (Graph API / sandbox)
//!                                                                            ^── SendFinished ──┘
//! ```
//!
//! This crate knows actix, governor and its own messages. It knows nothing of YAML, HTTP or flows:
//! the application implements the ports in [`ports`] (flow runner, route table, transport, store)
//! and starts everything with [`Runtime::start`].
#![warn(missing_docs)]

pub mod backoff;
pub mod handle;
pub mod ids;
pub mod model;
pub mod pace;
pub mod ports;
pub mod progress;
pub mod rate_limiter;
pub mod router;
pub mod runtime;
pub mod scheduler;
pub mod sender;
pub mod session;
pub mod webhook;
pub mod window;

pub use handle::Handle;
pub use ids::{JobId, RunId, WaId, Wamid};
pub use runtime::{Runtime, RuntimeSettings};
