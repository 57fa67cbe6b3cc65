//! Supervision of the work an actor starts: a panic in a flow run or in a send is caught where it
//! runs, logged, counted (`aof_panics_total`) and turned into the failure of that one run or
//! attempt. The session or the sender that started it goes on, and so does the bot; the run's
//! inbox row is closed as failed, not handed over again at every restart.
//!
//! (actix's `Supervisor` restarts an actor that stopped, but a panic unwinds through the arbiter
//! instead of stopping the actor, so the catching is done here.)

use futures_util::FutureExt as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Runs `work`; its output, or the panic's message when it panicked.
pub async fn caught<T>(what: &'static str, work: impl Future<Output = T>) -> Result<T, String> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(output) => Ok(output),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(what, panic = %message, "a panic was caught: that {what} failed, the bot goes on");
            metrics::counter!("aof_panics_total", "in" => what).increment(1);
            Err(message)
        }
    }
}
