//! The dry-run switch of the agents that reach outside the process (`aofctl simulate`): when
//! [`Services::dry_run`](super::Services) is set, the deployment webhook or command, Slack, email,
//! PagerDuty and the health checks are recorded here instead of made, and the agent returns a
//! plausible output marked `"simulated": true` so that the flow goes on as it would.
//!
//! A record names what would have been called, where, and with which payload; credentials (Slack
//! webhook paths, tokens, header values) are masked before they are recorded, since the record is
//! printed.

use super::RunContext;
use crate::live::LiveEvent;
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// One call to the outside world that was recorded instead of made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExternalCall {
    /// The run that would have made it.
    pub run_id: String,
    /// Its flow.
    pub flow: String,
    /// What kind of call: `deploy webhook`, `deploy command`, `slack`, `email`, `pagerduty`,
    /// `health check`.
    pub what: String,
    /// Where it would have gone: a method and URL (credentials masked), an argv, an SMTP server.
    pub target: String,
    /// What it would have carried (secrets masked).
    pub detail: Value,
}

/// The recorder; cheap to clone, shared by every agent call of the app it was started with.
#[derive(Clone, Debug, Default)]
pub struct DryRun {
    calls: Arc<Mutex<Vec<ExternalCall>>>,
}

impl DryRun {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a call `run` would have made, and tells the live view (when there is one).
    pub fn record(&self, run: &RunContext, what: &str, target: String, detail: Value) {
        let call = ExternalCall {
            run_id: run.run_id.0.clone(),
            flow: run.flow.clone(),
            what: what.to_owned(),
            target,
            detail,
        };
        tracing::info!(flow = %call.flow, what, target = %call.target, "external call recorded, not made (dry run)");
        if let Some(live) = &run.services.live {
            live.publish(LiveEvent::External {
                run_id: call.run_id.clone(),
                what: call.what.clone(),
                target: call.target.clone(),
                detail: call.detail.clone(),
                at: crate::live::now(),
            });
        }
        self.lock().push(call);
    }

    /// Everything recorded so far, in order.
    pub fn calls(&self) -> Vec<ExternalCall> {
        self.lock().clone()
    }

    /// A panic while recording cannot leave the list half-written.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ExternalCall>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `url` with what may be a credential masked: user info, path and query go (`https://host/…`);
/// Slack webhooks and CI triggers carry their secret in the path.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let tail = if rest.len() > authority.len() && rest[authority.len()..] != *"/" {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_host_and_lose_what_may_be_a_secret() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("https://user:pw@ci.example.com:8443/deploy?token=x"),
            "https://ci.example.com:8443/…"
        );
        assert_eq!(mask_url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(mask_url("not a url"), "[redacted]");
    }
}
