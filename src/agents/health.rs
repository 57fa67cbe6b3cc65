//! The `health-checker` agent: real HTTP GETs against the services listed under
//! `health_checks.services`, all at once, each with its status and latency. In a dry run
//! (`aofctl simulate`) each GET is recorded instead of made and the service reads as healthy,
//! marked `"simulated": true`.

use super::{text_of, Agent, AgentError, AgentResult, RunContext};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Checks services' health endpoints: `check`.
pub static AGENT: Agent = Agent {
    name: "health-checker",
    actions: crate::actions![
        "check" => check_services,
    ],
};

/// `check`: each of `services` (names under `health_checks.services`), at once.
async fn check_services(input: &Value, run: &RunContext) -> AgentResult {
    let names = service_names(input.get("services"))?;
    let config = &run.services.config.health_checks;
    let timeout = config.timeout;
    let client = super::http_client();
    let checks = names.iter().map(|name| {
        let target = config.services.get(name).map(|s| (s.url.clone(), s.expect_status));
        let client = &client;
        async move {
            match (target, &run.services.dry_run) {
                (None, _) => json!({ "name": name, "healthy": false, "status": "not configured", "latency": null }),
                (Some((url, expect)), Some(dry)) => {
                    dry.record(run, "health check", format!("GET {url}"), json!({ "service": name }));
                    json!({ "name": name, "healthy": true, "status": "healthy", "code": expect.unwrap_or(200),
                            "latency": 0, "simulated": true })
                }
                (Some((url, expect)), None) => check(client, name, &url, expect, timeout).await,
            }
        }
    });
    Ok(Value::Array(join_all(checks).await))
}

/// The service list: a JSON list, or text holding one (the tutorial renders it with `{% if %}`), or
/// a comma-separated list.
fn service_names(value: Option<&Value>) -> Result<Vec<String>, AgentError> {
    let names: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(Value::String(s)) => match serde_json::from_str::<Vec<Value>>(s.trim()) {
            Ok(items) => items.iter().map(text_of).collect(),
            Err(_) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        },
        _ => {
            return Err(AgentError::input(
                "services",
                "expected a list of service names",
            ))
        }
    };
    let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(AgentError::input("services", "is empty"));
    }
    Ok(names)
}

async fn check(
    client: &awc::Client,
    name: &str,
    url: &str,
    expect: Option<u16>,
    timeout: Duration,
) -> Value {
    let started = Instant::now();
    let result = client.get(url).timeout(timeout).send().await;
    // Rounded up: a loopback answer in 0.3 ms reads as 1 ms, not as "no latency".
    let latency = (started.elapsed().as_micros() as u64).div_ceil(1000);
    match result {
        Ok(mut response) => {
            // Read to the end, so that the connection goes back to the pool for the next check.
            let _ = response.body().limit(64 * 1024).await;
            let code = response.status().as_u16();
            let healthy = expect.map_or(response.status().is_success(), |e| e == code);
            let status = if healthy {
                "healthy".to_owned()
            } else {
                format!("unhealthy (HTTP {code})")
            };
            json!({ "name": name, "healthy": healthy, "status": status, "code": code, "latency": latency })
        }
        Err(awc::error::SendRequestError::Timeout) => {
            json!({ "name": name, "healthy": false, "status": "timeout", "latency": latency })
        }
        Err(e) => {
            tracing::debug!(service = name, error = %e, "health check failed");
            json!({ "name": name, "healthy": false, "status": "unreachable", "latency": null })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_lists_come_as_lists_json_text_or_commas() {
        assert_eq!(
            service_names(Some(&json!(["api", "web"]))).unwrap(),
            ["api", "web"]
        );
        assert_eq!(
            service_names(Some(&json!("\n[\"api\", \"web\"]\n"))).unwrap(),
            ["api", "web"]
        );
        assert_eq!(
            service_names(Some(&json!("api, web"))).unwrap(),
            ["api", "web"]
        );
        assert!(service_names(Some(&json!(""))).is_err());
    }
}
