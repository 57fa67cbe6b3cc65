//! A PagerDuty REST API v2 client: acknowledge, resolve and escalate incidents, and read a
//! schedule's on-calls.
//!
//! Requests leave for `platforms.whatsapp.oncall.pagerduty_api_url` (PagerDuty, or a fake in
//! tests) with `Authorization: Token token=…`, the v2 `Accept` type and, on incident writes, the
//! `From` user PagerDuty wants with account keys. Rate limits (429), server errors (5xx) and
//! unreachable hosts are retried twice with jittered backoff; anything else is final. Errors carry
//! PagerDuty's own message (`{error: {message, code, errors[]}}`), never the token.
//!
//! The awc client is `!Send`, so a [`PagerDuty`] is built where it is used (per agent call).

use crate::config::{OncallConfig, Secret};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The v2 media type; PagerDuty also takes `application/json`.
const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call: the first and two retries.
const ATTEMPTS: u32 = 3;
/// First retry delay; doubled per retry, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(400);
/// Longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Pages of on-calls read at most (100 each); a schedule with `earliest=true` fits in one.
const MAX_PAGES: u32 = 5;

/// Why a PagerDuty call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PagerDutyError {
    /// PagerDuty answered with an error status.
    #[error("PagerDuty answered {status} to {what}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The call (`PUT /incidents/P1`).
        what: String,
        /// PagerDuty's message, with its code and details when it gave them.
        message: String,
    },
    /// No answer: connection refused, DNS, TLS or timeout.
    #[error("PagerDuty did not answer {what} at {base}: {reason}")]
    Unreachable {
        /// The call.
        what: String,
        /// `pagerduty_api_url`.
        base: String,
        /// What went wrong.
        reason: String,
    },
    /// A success whose body is not what the API documents.
    #[error("PagerDuty's answer to {what} could not be read: {reason}")]
    Decode {
        /// The call.
        what: String,
        /// What did not fit.
        reason: String,
    },
    /// An id that cannot be a PagerDuty id (and would change the request path).
    #[error("`{0}` is not a PagerDuty incident id (letters and digits, like PT4KHLK)")]
    BadId(String),
}

impl PagerDutyError {
    /// Worth another attempt: throttled, a server error, or no answer.
    fn retryable(&self) -> bool {
        match self {
            PagerDutyError::Api { status, .. } => *status == 429 || *status >= 500,
            PagerDutyError::Unreachable { .. } => true,
            PagerDutyError::Decode { .. } | PagerDutyError::BadId(_) => false,
        }
    }
}

/// A PagerDuty user, as an on-call entry names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PagerDutyUser {
    /// `PXXXXXX`.
    pub id: String,
    /// The user's name as PagerDuty shows it.
    #[serde(default)]
    pub summary: String,
    /// Present when the user object is included (`include[]=users`).
    #[serde(default)]
    pub email: Option<String>,
}

/// One on-call: who, at which escalation level, and for how long (`None`: permanent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OnCallShift {
    /// Who is on call.
    pub user: PagerDutyUser,
    /// 1 is paged first.
    pub escalation_level: u32,
    /// Start of the shift (RFC 3339).
    #[serde(default)]
    pub start: Option<String>,
    /// End of the shift.
    #[serde(default)]
    pub end: Option<String>,
}

#[derive(Deserialize)]
struct OnCallsPage {
    oncalls: Vec<OnCallShift>,
    #[serde(default)]
    more: bool,
}

/// An incident after a write, as PagerDuty returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentState {
    /// The incident id.
    pub id: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
}

/// A change to an incident that the `pagerduty` agent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentWrite {
    /// `status: acknowledged`.
    Acknowledge,
    /// `status: resolved`.
    Resolve,
    /// Move to this escalation level of the incident's policy.
    Escalate(u32),
}

impl IncidentWrite {
    /// The `incident` object of the PUT body.
    fn change(self) -> Value {
        match self {
            IncidentWrite::Acknowledge => {
                json!({ "type": "incident_reference", "status": "acknowledged" })
            }
            IncidentWrite::Resolve => json!({ "type": "incident_reference", "status": "resolved" }),
            IncidentWrite::Escalate(level) => {
                json!({ "type": "incident_reference", "escalation_level": level })
            }
        }
    }
}

/// A client for one account (one token).
pub struct PagerDuty {
    base: String,
    token: Secret,
    from: Option<String>,
    client: awc::Client,
}

impl PagerDuty {
    /// A client for `base` (no trailing slash needed) with `token`; `from` is the `From` header of
    /// incident writes.
    pub fn new(base: &str, token: Secret, from: Option<String>) -> PagerDuty {
        PagerDuty {
            base: base.trim_end_matches('/').to_owned(),
            token,
            from: from.filter(|f| !f.trim().is_empty()),
            client: awc::Client::builder().timeout(TIMEOUT).finish(),
        }
    }

    /// A client from `oncall`, or `None` when no token is configured (an empty `${PAGERDUTY_TOKEN}`
    /// counts as none).
    pub fn from_config(oncall: &OncallConfig) -> Option<PagerDuty> {
        let token = oncall.pagerduty_token.as_ref().filter(|t| !t.is_empty())?;
        Some(PagerDuty::new(
            &oncall.pagerduty_api_url,
            token.clone(),
            oncall.pagerduty_from.clone(),
        ))
    }

    /// Marks an incident acknowledged.
    pub async fn acknowledge(&self, incident: &str) -> Result<IncidentState, PagerDutyError> {
        self.write(incident, IncidentWrite::Acknowledge).await
    }

    /// Marks an incident resolved.
    pub async fn resolve(&self, incident: &str) -> Result<IncidentState, PagerDutyError> {
        self.write(incident, IncidentWrite::Resolve).await
    }

    /// Moves an incident to escalation `level` of its policy (PagerDuty pages that level).
    pub async fn escalate(
        &self,
        incident: &str,
        level: u32,
    ) -> Result<IncidentState, PagerDutyError> {
        self.write(incident, IncidentWrite::Escalate(level)).await
    }

    /// Makes an incident write.
    pub async fn write(
        &self,
        incident: &str,
        write: IncidentWrite,
    ) -> Result<IncidentState, PagerDutyError> {
        self.update(incident, write.change()).await
    }

    /// The request [`PagerDuty::write`] would send, without sending it (a dry run records it): the
    /// method and URL, and the headers (token redacted) and body.
    pub fn planned_write(
        &self,
        incident: &str,
        write: IncidentWrite,
    ) -> Result<(String, Value), PagerDutyError> {
        let id = incident_id(incident)?;
        let mut headers = json!({ "Authorization": "Token token=[redacted]", "Accept": ACCEPT });
        if let Some(from) = &self.from {
            headers["From"] = json!(from);
        }
        let target = format!("PUT {}/incidents/{id}", self.base);
        let body = json!({ "incident": write.change() });
        Ok((target, json!({ "headers": headers, "body": body })))
    }

    /// The request [`PagerDuty::oncalls`] would send first, without sending it.
    pub fn planned_oncalls(&self, schedule: &str) -> String {
        format!(
            "GET {}/oncalls?schedule_ids[]={schedule}&earliest=true&include[]=users",
            self.base
        )
    }

    /// Who is on call now for `schedule`: one entry per escalation level (`earliest=true`), users
    /// included so that their emails can be matched.
    pub async fn oncalls(&self, schedule: &str) -> Result<Vec<OnCallShift>, PagerDutyError> {
        let what = "GET /oncalls".to_owned();
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let offset = (page * 100).to_string();
            let query = [
                ("schedule_ids[]", schedule),
                ("earliest", "true"),
                ("include[]", "users"),
                ("limit", "100"),
                ("offset", &offset),
            ];
            let body = self
                .call(&what, || {
                    self.request(awc::http::Method::GET, "/oncalls")
                        .query(&query)
                        .expect("static keys and a text value encode as a query")
                        .send()
                })
                .await?;
            let parsed: OnCallsPage =
                serde_json::from_slice(&body).map_err(|e| PagerDutyError::Decode {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            all.extend(parsed.oncalls);
            if !parsed.more {
                break;
            }
        }
        Ok(all)
    }

    async fn update(&self, incident: &str, change: Value) -> Result<IncidentState, PagerDutyError> {
        let id = incident_id(incident)?;
        let path = format!("/incidents/{id}");
        let what = format!("PUT {path}");
        let body = json!({ "incident": change });
        let answer = self
            .call(&what, || {
                let mut req = self.request(awc::http::Method::PUT, &path);
                if let Some(from) = &self.from {
                    req = req.insert_header(("From", from.as_str()));
                }
                req.send_json(&body)
            })
            .await?;
        let value: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let incident = &value["incident"];
        let status = incident["status"].as_str().map(str::to_owned);
        let status = status
            .or_else(|| change["status"].as_str().map(str::to_owned))
            .ok_or_else(|| PagerDutyError::Decode {
                what: what.clone(),
                reason: "no incident.status in the answer".into(),
            })?;
        Ok(IncidentState {
            id: incident["id"].as_str().unwrap_or(id).to_owned(),
            status,
        })
    }

    fn request(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        self.client
            .request(method, format!("{}{path}", self.base))
            .insert_header((
                "Authorization",
                format!("Token token={}", self.token.expose()),
            ))
            .insert_header(("Accept", ACCEPT))
            .insert_header(("Content-Type", "application/json"))
    }

    /// Sends `send()` until it succeeds, fails for good, or runs out of attempts; the body of the
    /// 2xx answer.
    async fn call(
        &self,
        what: &str,
        send: impl Fn() -> awc::SendClientRequest,
    ) -> Result<Vec<u8>, PagerDutyError> {
        let mut attempt = 1;
        loop {
            let result = self.once(what, send()).await;
            match result {
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    let wait = aof_actors::sender::backoff::exponential(
                        attempt,
                        BACKOFF_BASE,
                        BACKOFF_CAP,
                    );
                    tracing::warn!(call = what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "PagerDuty call failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        what: &str,
        sent: awc::SendClientRequest,
    ) -> Result<Vec<u8>, PagerDutyError> {
        let mut response = sent.await.map_err(|e| PagerDutyError::Unreachable {
            what: what.to_owned(),
            base: self.base.clone(),
            reason: self.scrub(&e.to_string()),
        })?;
        let status = response.status();
        let body =
            response
                .body()
                .limit(4 << 20)
                .await
                .map_err(|e| PagerDutyError::Unreachable {
                    what: what.to_owned(),
                    base: self.base.clone(),
                    reason: format!("the answer broke off: {e}"),
                })?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(PagerDutyError::Api {
            status: status.as_u16(),
            what: what.to_owned(),
            message: self.scrub(&error_message(&body)),
        })
    }

    /// `text` with the token blanked out, should anything ever echo it.
    fn scrub(&self, text: &str) -> String {
        let token = self.token.expose();
        if token.len() >= 4 && text.contains(token) {
            text.replace(token, "[redacted]")
        } else {
            text.to_owned()
        }
    }
}

/// An incident id that is safe in a request path.
fn incident_id(incident: &str) -> Result<&str, PagerDutyError> {
    let id = incident.trim();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(PagerDutyError::BadId(incident.to_owned()));
    }
    Ok(id)
}

/// PagerDuty's error body as one line: `message (code N): detail; detail`, or the start of whatever
/// else came back.
fn error_message(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &value["error"];
    match error["message"].as_str() {
        Some(message) => {
            let mut text = message.to_owned();
            if let Some(code) = error["code"].as_i64() {
                text.push_str(&format!(" (code {code})"));
            }
            let details: Vec<&str> = error["errors"]
                .as_array()
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !details.is_empty() {
                text.push_str(": ");
                text.push_str(&details.join("; "));
            }
            text
        }
        None => {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                "no error message".to_owned()
            } else {
                raw.chars().take(200).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_as_message_code_and_details() {
        let body = br#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Escalation level is out of range"]}}"#;
        assert_eq!(
            error_message(body),
            "Invalid Input Provided (code 2001): Escalation level is out of range"
        );
        assert_eq!(
            error_message(br#"{"error":{"message":"Not Found"}}"#),
            "Not Found"
        );
        assert_eq!(
            error_message(b"<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
        assert_eq!(error_message(b""), "no error message");
    }

    #[test]
    fn the_fixture_on_calls_parse_with_levels_and_permanent_shifts() {
        let text = crate::fixture("pagerduty/oncalls-response.json");
        let page: OnCallsPage = serde_json::from_slice(&text).unwrap();
        assert!(!page.more);
        let levels: Vec<(String, u32)> = page
            .oncalls
            .iter()
            .map(|o| (o.user.summary.clone(), o.escalation_level))
            .collect();
        assert_eq!(
            levels,
            [
                ("Priya Raman".to_owned(), 1),
                ("Marco Silva".to_owned(), 2),
                ("Dana Okafor".to_owned(), 3)
            ]
        );
        assert_eq!(page.oncalls[2].end, None);
        assert_eq!(page.oncalls[0].user.email, None);
    }

    #[test]
    fn only_4xx_other_than_429_is_final() {
        let api = |status| PagerDutyError::Api {
            status,
            what: "PUT /incidents/P1".into(),
            message: "x".into(),
        };
        assert!(api(429).retryable());
        assert!(api(503).retryable());
        assert!(!api(400).retryable());
        assert!(!api(401).retryable());
        assert!(!PagerDutyError::BadId("a/b".into()).retryable());
    }

    #[test]
    fn a_client_needs_a_non_empty_token() {
        let mut oncall = crate::config::defaults::oncall();
        assert!(PagerDuty::from_config(&oncall).is_none());
        oncall.pagerduty_token = Some(Secret::new(""));
        assert!(PagerDuty::from_config(&oncall).is_none());
        oncall.pagerduty_token = Some(Secret::new("k"));
        assert!(PagerDuty::from_config(&oncall).is_some());
    }
}
