//! Approval requests of the built-in `approval-manager` agent: a deployment (or a scaling) waits
//! here until one of its approvers answers `APPROVE` or `REJECT` on WhatsApp, or it expires.
//!
//! Ids are short and sequential (`APR-0001`). The approvers are fixed when the request is made, so
//! a config change does not hand an open request to someone else. A decision is one conditional
//! `UPDATE … WHERE state = 'pending' AND expires_ms > now`: when two approvers answer at once, the
//! first write wins and the second learns who decided and when ([`Decision::AlreadyDecided`]).

use super::{logged, Failure, SqliteStore};
use aof_actors::ids::WaId;
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Someone who may decide a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// As the people directory names them ("approved by Alice").
    pub name: String,
    /// Their WhatsApp number, E.164 (`+15551234567`).
    pub phone: String,
}

/// Where a request stands. An expired request stays `pending` in the table; [`ApprovalRecord::is_open`]
/// tells the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for an approver.
    Pending,
    /// An approver said yes.
    Approved,
    /// An approver said no.
    Rejected,
}

impl ApprovalState {
    /// The word stored and shown to flows.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }

    fn parse(word: &str) -> Option<ApprovalState> {
        match word {
            "pending" => Some(ApprovalState::Pending),
            "approved" => Some(ApprovalState::Approved),
            "rejected" => Some(ApprovalState::Rejected),
            _ => None,
        }
    }
}

/// An approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `APPROVE`.
    Approve,
    /// `REJECT`.
    Reject,
}

impl Verdict {
    /// The state the request takes.
    pub fn state(self) -> ApprovalState {
        match self {
            Verdict::Approve => ApprovalState::Approved,
            Verdict::Reject => ApprovalState::Rejected,
        }
    }
}

/// A request to record.
#[derive(Clone, Debug)]
pub struct NewApproval<'a> {
    /// What is to be approved (`deployment`, `scale`).
    pub kind: &'a str,
    /// The service.
    pub service: &'a str,
    /// The version (empty when the kind has none).
    pub version: &'a str,
    /// Where (`production`, `staging`).
    pub environment: &'a str,
    /// Who asked (a name, an email or a number), told the outcome.
    pub requester: &'a str,
    /// Who may decide; phones E.164.
    pub approvers: &'a [Approver],
    /// When it stops accepting decisions.
    pub expires_at: DateTime<Utc>,
    /// Anything else the flow gave (`changes_url`, `replicas`), kept as is.
    pub body: Value,
}

/// A request as flows see it (`steps.get-request.output.service`, …).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApprovalRecord {
    /// `APR-0001`, `APR-0002`, …
    pub id: String,
    /// `deployment`, `scale`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// The environment.
    pub environment: String,
    /// Who asked.
    pub requester: String,
    /// Who may decide.
    pub approvers: Vec<Approver>,
    /// Where it stands.
    pub state: ApprovalState,
    /// The E.164 number of whoever decided.
    pub decided_by: Option<String>,
    /// Unix milliseconds of the decision.
    pub decided_at_ms: Option<i64>,
    /// RFC 3339, UTC, whole seconds (`2026-11-26T21:02:00Z`): compares as text with `now()`.
    pub expires_at: String,
    /// The same instant in Unix milliseconds.
    pub expires_ms: i64,
    /// Unix milliseconds when it was made.
    pub created_ms: i64,
    /// The rest of the request, as the flow gave it.
    pub body: Value,
}

impl ApprovalRecord {
    /// Whether it still takes a decision at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.state == ApprovalState::Pending && self.expires_ms > now_ms
    }

    /// The approver with this number.
    pub fn approver(&self, who: &WaId) -> Option<&Approver> {
        let number = who.e164();
        self.approvers.iter().find(|a| a.phone == number)
    }
}

/// What [`Approvals::decide`](super::Approvals::decide) did.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// This decision was recorded.
    Decided(ApprovalRecord),
    /// Someone decided first; the record says who and when.
    AlreadyDecided(ApprovalRecord),
    /// It expired before anyone decided.
    Expired(ApprovalRecord),
    /// The number is not among its approvers.
    NotApprover(ApprovalRecord),
    /// No request has that id.
    Unknown,
}

/// The columns [`approval_from_row`] reads.
pub(in crate::store) const APPROVAL_COLUMNS: &str =
    "id, type, service, version, environment, requester, approvers, \
     state, decided_by, decided_at_ms, expires_at, expires_ms, created_ms, body";

/// An RFC 3339 time as stored: UTC, whole seconds, `Z`, as the flows' `now()` writes it.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl SqliteStore {
    /// Records a pending request under the next free id.
    pub(crate) async fn create_approval(
        &self,
        new: &NewApproval<'_>,
    ) -> Result<ApprovalRecord, StoreError> {
        logged("create_approval", async {
            let query = format!(
                "INSERT INTO approvals
                     (id, seq, type, service, version, environment, requester, approvers, state,
                      expires_at, expires_ms, created_ms, body)
                 SELECT printf('APR-%04d', n), n, ?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10
                 FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM approvals)
                 RETURNING {APPROVAL_COLUMNS}"
            );
            let row = sqlx::query(&query)
                .bind(new.kind)
                .bind(new.service)
                .bind(new.version)
                .bind(new.environment)
                .bind(new.requester)
                .bind(serde_json::to_string(new.approvers)?)
                .bind(rfc3339(new.expires_at))
                .bind(new.expires_at.timestamp_millis())
                .bind(now_ms())
                .bind(serde_json::to_string(&new.body)?)
                .fetch_one(&self.pool)
                .await?;
            let record = approval_from_row(&row)?;
            tracing::info!(request = %record.id, kind = %record.kind, service = %record.service,
                environment = %record.environment, approvers = record.approvers.len(), "approval requested");
            Ok(record)
        })
        .await
    }

    /// One request, or `None` when the id is unknown.
    pub(crate) async fn get_approval(
        &self,
        id: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        logged("get_approval", async { fetch_approval(self, id).await }).await
    }

    /// Records `by`'s verdict if the request is still pending, not expired, and `by` is one of its
    /// approvers, all checked by the one `UPDATE` that writes it, so the first decision wins.
    pub(crate) async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &WaId,
    ) -> Result<Decision, StoreError> {
        logged("decide_approval", async {
            let now = now_ms();
            let query = format!(
                "UPDATE approvals SET state = ?2, decided_by = ?3, decided_at_ms = ?4
                 WHERE id = ?1 AND state = 'pending' AND expires_ms > ?4
                   AND EXISTS (SELECT 1 FROM json_each(approvals.approvers)
                               WHERE json_extract(value, '$.phone') = ?3)
                 RETURNING {APPROVAL_COLUMNS}"
            );
            let row = sqlx::query(&query)
                .bind(id)
                .bind(verdict.state().as_str())
                .bind(by.e164())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                let record = approval_from_row(&row)?;
                tracing::info!(request = id, state = record.state.as_str(), by = %by.masked(), "approval decided");
                return Ok(Decision::Decided(record));
            }
            let Some(record) = fetch_approval(self, id).await? else {
                return Ok(Decision::Unknown);
            };
            Ok(undecided(record, by))
        })
        .await
    }

    /// Open requests (pending, not expired) that `who` may decide, newest first.
    pub(crate) async fn pending_for(&self, who: &WaId) -> Result<Vec<ApprovalRecord>, StoreError> {
        logged("pending_for", async {
            let query = format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals
                 WHERE state = 'pending' AND expires_ms > ?2
                   AND EXISTS (SELECT 1 FROM json_each(approvals.approvers)
                               WHERE json_extract(value, '$.phone') = ?1)
                 ORDER BY created_ms DESC, seq DESC
                 LIMIT 50"
            );
            let rows = sqlx::query(&query)
                .bind(who.e164())
                .bind(now_ms())
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(approval_from_row).collect()
        })
        .await
    }
}

/// Reads one request by id.
async fn fetch_approval(store: &SqliteStore, id: &str) -> Result<Option<ApprovalRecord>, Failure> {
    let query = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1");
    let row = sqlx::query(&query)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(approval_from_row).transpose()
}

/// Why `by`'s decision on `record` was not taken: not theirs to make, made already, or expired.
pub(in crate::store) fn undecided(record: ApprovalRecord, by: &WaId) -> Decision {
    if record.approver(by).is_none() {
        Decision::NotApprover(record)
    } else if record.state != ApprovalState::Pending {
        Decision::AlreadyDecided(record)
    } else {
        Decision::Expired(record)
    }
}

/// An [`ApprovalRecord`] from a row of [`APPROVAL_COLUMNS`], of either backend.
pub(in crate::store) fn approval_from_row<R>(row: &R) -> Result<ApprovalRecord, Failure>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get("state")?;
    let approvers: String = row.try_get("approvers")?;
    let body: String = row.try_get("body")?;
    Ok(ApprovalRecord {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        service: row.try_get("service")?,
        version: row.try_get("version")?,
        environment: row.try_get("environment")?,
        requester: row.try_get("requester")?,
        approvers: serde_json::from_str(&approvers)?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| Failure::Corrupt(format!("approval state `{state}`")))?,
        decided_by: row.try_get("decided_by")?,
        decided_at_ms: row.try_get("decided_at_ms")?,
        expires_at: row.try_get("expires_at")?,
        expires_ms: row.try_get("expires_ms")?,
        created_ms: row.try_get("created_ms")?,
        body: serde_json::from_str(&body)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::conformance;
    use serde_json::json;

    fn wa(n: &str) -> WaId {
        WaId::parse(n).expect("a number")
    }

    fn approvers() -> Vec<Approver> {
        vec![
            Approver {
                name: "Alice".into(),
                phone: "+15551234567".into(),
            },
            Approver {
                name: "Bob".into(),
                phone: "+15557654321".into(),
            },
        ]
    }

    fn request<'a>(approvers: &'a [Approver], hours: i64) -> NewApproval<'a> {
        NewApproval {
            kind: "deployment",
            service: "api",
            version: "v2.1.0",
            environment: "production",
            requester: "carol@example.com",
            approvers,
            expires_at: Utc::now() + chrono::Duration::hours(hours),
            body: json!({ "changes_url": "https://example.com/diff" }),
        }
    }

    conformance! {
        async fn the_first_decision_wins_and_later_ones_learn_who_decided(store) {
            let list = approvers();
            let created = store
                .create_approval(&request(&list, 4))
                .await
                .expect("created");
            assert_eq!(created.id, "APR-0001");
            assert!(created.expires_at.ends_with('Z'), "{}", created.expires_at);
            let both = futures_util::future::join(
                store.decide("APR-0001", Verdict::Approve, &wa("15551234567")),
                store.decide("APR-0001", Verdict::Reject, &wa("15557654321")),
            )
            .await;
            let outcomes = [both.0.expect("runs"), both.1.expect("runs")];
            let decided = outcomes
                .iter()
                .filter(|d| matches!(d, Decision::Decided(_)))
                .count();
            assert_eq!(decided, 1, "{outcomes:?}");
            assert!(outcomes.iter().any(|d| matches!(d,
                Decision::AlreadyDecided(r) if r.decided_by.is_some() && r.decided_at_ms.is_some())));
            assert!(matches!(
                store
                    .decide("APR-0001", Verdict::Approve, &wa("15559990000"))
                    .await
                    .expect("runs"),
                Decision::NotApprover(_)
            ));
            assert!(matches!(
                store
                    .decide("APR-0404", Verdict::Approve, &wa("15551234567"))
                    .await
                    .expect("runs"),
                Decision::Unknown
            ));
        }
    }

    conformance! {
        async fn an_expired_request_cannot_be_decided_and_is_not_pending(store) {
            let list = approvers();
            store
                .create_approval(&request(&list, -1))
                .await
                .expect("created");
            store
                .create_approval(&request(&list[..1], 4))
                .await
                .expect("created");
            assert!(matches!(
                store
                    .decide("APR-0001", Verdict::Approve, &wa("15551234567"))
                    .await
                    .expect("runs"),
                Decision::Expired(r) if r.state == ApprovalState::Pending
            ));
            let alice: Vec<String> = store
                .pending_for(&wa("15551234567"))
                .await
                .expect("lists")
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(alice, ["APR-0002"]);
            assert!(store
                .pending_for(&wa("15557654321"))
                .await
                .expect("lists")
                .is_empty());
        }
    }
}
