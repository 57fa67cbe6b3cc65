//! Fencing, as this process sees it: the leader's pool carries its epoch (`aof.epoch`), the
//! database refuses its writes once a newer leader took over (migration postgres/0003, SQLSTATE
//! `AOFLD`), and the first refusal marks this process deposed. The leadership task waits for
//! that and stops the process: a stale leader steps down rather than go on half-working.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// The SQLSTATE of a write refused to a replica that no longer leads.
pub const DEPOSED: &str = "AOFLD";

static MARKED: AtomicBool = AtomicBool::new(false);
static TOLD: Notify = Notify::const_new();

/// Marks this process deposed if `error` is the database refusing a stale leader's write.
pub(crate) fn note(error: &sqlx::Error) {
    let refused = error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == DEPOSED);
    if refused && !MARKED.swap(true, Ordering::SeqCst) {
        tracing::error!("the database refused a write: another replica leads now");
        TOLD.notify_waiters();
    }
}

/// Whether a write of this process was refused because another replica leads.
pub fn is_deposed() -> bool {
    MARKED.load(Ordering::SeqCst)
}

/// Waits until a write of this process is refused because another replica leads.
pub async fn deposed() {
    loop {
        let told = TOLD.notified();
        if is_deposed() {
            return;
        }
        told.await;
    }
}
