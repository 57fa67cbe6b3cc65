//! Transports: the two implementations of the actors' [`aof_actors::ports::Transport`] port,
//! chosen by the config's `transport` key. The Sender actor calls `send` once per attempt and
//! decides about retries from the [`aof_actors::ports::SendError`] it gets back.
//!
//! ```text
//!  Sender ──send(&OutboundMessage)──> CloudApi ──POST /{phone_number_id}/messages──> Graph API
//!                                 └─> Sandbox  ──records──> SandboxOutbox (shown by the HTTP layer)
//! ```
//!
//! - [`cloud_api`]: Meta's Graph API over HTTPS (awc + rustls); bodies and error codes come from
//!   [`crate::wire::whatsapp`].
//! - [`sandbox`]: records sends in memory and answers with made-up wamids.
//!
//! The port is used as `Rc<dyn Transport>`; [`CloudApi`] holds an `awc::Client`, which is `!Send`,
//! so build it on the arbiter that sends.

pub mod cloud_api;
pub mod sandbox;

pub use cloud_api::CloudApi;
pub use sandbox::{OutboxItem, Sandbox, SandboxOutbox, OUTBOX_CAPACITY};
