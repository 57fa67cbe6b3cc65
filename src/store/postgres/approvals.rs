//! Approval requests on PostgreSQL: the same rows and rules as SQLite's (`store/approvals.rs`).
//! Ids are sequential (`APR-0001`): the next `seq` is taken under a transaction-scoped advisory
//! lock, so requests made at once on several replicas get different ids. A decision is one
//! conditional `UPDATE … WHERE state = 'pending' AND expires_ms > now`: PostgreSQL re-checks the
//! condition on the row a concurrent decision left, so the first decision wins.

use super::PgStore;
use crate::store::approvals::rfc3339;
use crate::store::approvals::{approval_from_row, undecided, APPROVAL_COLUMNS};
use crate::store::{
    logged, ApprovalRecord, Approvals, Decision, Failure, Fut, NewApproval, Verdict,
};
use aof_actors::ids::WaId;
use aof_actors::model::now_ms;

/// The condition "`$n` (an E.164 number) is among the request's approvers", as SQLite's
/// `json_each` over the `approvers` JSON text.
fn is_approver(param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM json_array_elements(approvals.approvers::json) AS a(value)
                 WHERE a.value ->> 'phone' = {param})"
    )
}

impl Approvals for PgStore {
    fn create_approval<'a>(&'a self, new: &'a NewApproval<'a>) -> Fut<'a, ApprovalRecord> {
        Box::pin(logged("create_approval", create(self, new)))
    }

    fn get_approval<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ApprovalRecord>> {
        Box::pin(logged("get_approval", fetch_approval(self, id)))
    }

    fn decide<'a>(&'a self, id: &'a str, verdict: Verdict, by: &'a WaId) -> Fut<'a, Decision> {
        Box::pin(logged("decide_approval", decide(self, id, verdict, by)))
    }

    fn pending_for<'a>(&'a self, who: &'a WaId) -> Fut<'a, Vec<ApprovalRecord>> {
        Box::pin(logged("pending_for", pending_for(self, who)))
    }
}

/// Records a pending request under the next free id.
async fn create(store: &PgStore, new: &NewApproval<'_>) -> Result<ApprovalRecord, Failure> {
    let approvers = serde_json::to_string(new.approvers)?;
    let body = serde_json::to_string(&new.body)?;
    let mut tx = store.pool.begin().await?;
    super::Lock::Approvals.take(&mut tx).await?;
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM approvals")
        .fetch_one(&mut *tx)
        .await?;
    let query = format!(
        "INSERT INTO approvals
             (id, seq, type, service, version, environment, requester, approvers, state,
              expires_at, expires_ms, created_ms, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12)
         RETURNING {APPROVAL_COLUMNS}"
    );
    let row = sqlx::query(&query)
        .bind(format!("APR-{seq:04}"))
        .bind(seq)
        .bind(new.kind)
        .bind(new.service)
        .bind(new.version)
        .bind(new.environment)
        .bind(new.requester)
        .bind(approvers)
        .bind(rfc3339(new.expires_at))
        .bind(new.expires_at.timestamp_millis())
        .bind(now_ms())
        .bind(body)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let record = approval_from_row(&row)?;
    tracing::info!(request = %record.id, kind = %record.kind, service = %record.service,
        environment = %record.environment, approvers = record.approvers.len(), "approval requested");
    Ok(record)
}

/// Records `by`'s verdict if the request is still pending, not expired, and `by` is one of its
/// approvers; otherwise says why not.
async fn decide(
    store: &PgStore,
    id: &str,
    verdict: Verdict,
    by: &WaId,
) -> Result<Decision, Failure> {
    let query = format!(
        "UPDATE approvals SET state = $2, decided_by = $3, decided_at_ms = $4
         WHERE id = $1 AND state = 'pending' AND expires_ms > $4 AND {}
         RETURNING {APPROVAL_COLUMNS}",
        is_approver("$3")
    );
    let row = sqlx::query(&query)
        .bind(id)
        .bind(verdict.state().as_str())
        .bind(by.e164())
        .bind(now_ms())
        .fetch_optional(&store.pool)
        .await?;
    if let Some(row) = row {
        let record = approval_from_row(&row)?;
        tracing::info!(request = id, state = record.state.as_str(), by = %by.masked(), "approval decided");
        return Ok(Decision::Decided(record));
    }
    let Some(record) = fetch_approval(store, id).await? else {
        return Ok(Decision::Unknown);
    };
    Ok(undecided(record, by))
}

/// Open requests (pending, not expired) that `who` may decide, newest first; at most 50.
async fn pending_for(store: &PgStore, who: &WaId) -> Result<Vec<ApprovalRecord>, Failure> {
    let query = format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals
         WHERE state = 'pending' AND expires_ms > $2 AND {}
         ORDER BY created_ms DESC, seq DESC
         LIMIT 50",
        is_approver("$1")
    );
    let rows = sqlx::query(&query)
        .bind(who.e164())
        .bind(now_ms())
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(approval_from_row).collect()
}

/// Reads one request by id.
async fn fetch_approval(store: &PgStore, id: &str) -> Result<Option<ApprovalRecord>, Failure> {
    let query = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1");
    let row = sqlx::query(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(approval_from_row).transpose()
}
