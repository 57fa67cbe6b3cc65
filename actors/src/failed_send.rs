//! Giving a message up, from the sender (Meta refused it for good) or the rate limiter (its
//! template fallback found no quota): the one place that records why, in metrics, the log, the audit
//! log and the outbox row.

use crate::model::{AuditEntry, QueuedJob};
use crate::ports::{Store, StoreResult};

/// Gives a message up: metrics, an error line, the audit log and the outbox row say why.
pub(crate) fn report_failure(
    store: &dyn Store,
    job: &QueuedJob,
    code: Option<i64>,
    reason: String,
) {
    let lane = job.message.lane.as_str();
    metrics::counter!("aof_outbound_sends_total", "result" => "failed", "lane" => lane)
        .increment(1);
    tracing::error!(code = ?code, attempts = job.attempts, wa = %job.message.to.masked(),
        flow = job.message.flow.as_deref().unwrap_or("-"), "message not sent: {reason}");
    let audit = AuditEntry {
        kind: "send_failed".into(),
        who: Some(job.message.to.masked()),
        detail: serde_json::json!({ "job": job.id, "code": code, "error": reason,
            "flow": job.message.flow, "attempts": job.attempts }),
    };
    spawn_logged(store.audit(audit), "writing the audit log");
    spawn_logged(
        store.job_failed(job.clone(), code, reason),
        "recording a failed message",
    );
}

pub(crate) fn spawn_logged(work: StoreResult<()>, what: &'static str) {
    actix::spawn(async move {
        if let Err(e) = work.await {
            tracing::error!(error = %e, "{what} failed");
        }
    });
}
