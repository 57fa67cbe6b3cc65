//! The `deployment-manager` agent: starts an approved deployment, through the webhook of a CI system
//! (`platforms.whatsapp.deployments.webhook_url`, POSTed as JSON) or a command run directly, without a
//! shell (`deployments.command`). The outcome is the step's output and an audit record (`deploy`).
//!
//! Values come from people (a WhatsApp message, a webhook body), so before they reach an argv they
//! are refused when they hold control characters or start with `-`: a version `--help` must not turn
//! into an option of the deploy script.
//!
//! In a dry run (`aofctl simulate`) the call is recorded instead of made, and the output says
//! `"simulated": true`.

use super::dry_run::mask_url;
use super::{text_of, Agent, AgentError, AgentResult, DryRun, RunContext};
use crate::config::DeploymentsConfig;
use aof_actors::model::AuditEntry;
use aof_actors::WaId;
use serde_json::{json, Value};
use std::process::Stdio;

/// Starts deployments: `deploy`.
pub static AGENT: Agent = Agent {
    name: "deployment-manager",
    actions: crate::actions![
        "deploy" => deploy,
    ],
};

/// How much of a command's output or a webhook's answer the step keeps (the end of it, where errors are).
const MAX_CAPTURE: usize = 2048;

/// Longest value accepted for a field; a version or a service name is never near it.
const MAX_VALUE: usize = 256;

/// The input fields, in the order they are checked and placed in the webhook body.
const FIELDS: [&str; 4] = ["service", "version", "environment", "approved_by"];

/// A deployment whose values are safe to put in an argv or a JSON body.
#[derive(Debug, Clone, PartialEq)]
struct Deployment {
    service: String,
    version: String,
    environment: String,
    approved_by: String,
}

impl Deployment {
    fn parse(input: &Value) -> Result<Deployment, AgentError> {
        let [service, version, environment, approved_by] = FIELDS.map(|f| safe_value(input, f));
        Ok(Deployment {
            service: service?,
            version: version?,
            environment: environment?,
            approved_by: approved_by?,
        })
    }

    fn get(&self, field: &str) -> Option<&str> {
        match field {
            "service" => Some(&self.service),
            "version" => Some(&self.version),
            "environment" => Some(&self.environment),
            "approved_by" => Some(&self.approved_by),
            _ => None,
        }
    }

    /// `argument` with each `{service}`, `{version}`, `{environment}` and `{approved_by}` replaced,
    /// in one pass: a value that itself contains `{version}` is not replaced again.
    fn substitute(&self, argument: &str) -> String {
        let mut out = String::with_capacity(argument.len());
        let mut rest = argument;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open + 1..];
            let value = tail
                .find('}')
                .and_then(|close| Some((self.get(&tail[..close])?, close)));
            match value {
                Some((value, close)) => {
                    out.push_str(value);
                    rest = &tail[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = tail;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A field as text (a version may arrive as a number), refused when it could change the meaning of
/// the argv it goes into.
fn safe_value(input: &Value, field: &str) -> Result<String, AgentError> {
    let value = text_of(input.get(field).unwrap_or(&Value::Null));
    let value = value.trim();
    if value.is_empty() {
        return Err(AgentError::input(field, "is missing or empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(AgentError::input(
            field,
            "contains a new line or another control character",
        ));
    }
    if value.starts_with('-') {
        return Err(AgentError::input(
            field,
            format!("`{value}` starts with `-` and would read as an option of the deploy command"),
        ));
    }
    if value.len() > MAX_VALUE {
        return Err(AgentError::input(
            field,
            format!("is longer than {MAX_VALUE} characters"),
        ));
    }
    Ok(value.to_owned())
}

async fn deploy(input: &Value, run: &RunContext) -> AgentResult {
    let deployment = Deployment::parse(input)?;
    let config = &run.services.config.platforms.whatsapp.deployments;
    let webhook = config
        .webhook_url
        .as_deref()
        .filter(|u| !u.trim().is_empty());
    let dry = run.services.dry_run.as_ref();
    let result = match (webhook, config.command.is_empty(), dry) {
        // Both set: the webhook wins, the command stays a local fallback for a test setup.
        (Some(url), _, Some(dry)) => Ok(dry_webhook(dry, run, url, config, &deployment)),
        (Some(url), _, None) => via_webhook(url, config, &deployment, &idempotency_key(run)).await,
        (None, false, Some(dry)) => Ok(dry_command(dry, run, config, &deployment)),
        (None, false, None) => via_command(config, &deployment).await,
        (None, true, _) => Err(AgentError::Failed(
            "no deployment target: set platforms.whatsapp.deployments.webhook_url or .command"
                .into(),
        )),
    };
    audit(run, &deployment, &result).await;
    match &result {
        Ok(output) => tracing::info!(
            service = %deployment.service, version = %deployment.version,
            environment = %deployment.environment, via = %output["via"], status = %output["status"],
            "deployment handed over"
        ),
        Err(e) => tracing::warn!(
            service = %deployment.service, version = %deployment.version,
            environment = %deployment.environment, error = %e, "deployment failed"
        ),
    }
    result
}

/// The deployment's `Idempotency-Key`: the run and its step, so a step run again after a crash (or
/// retried by `on_error.retry`) names the same deployment and a CI system that honours the header
/// starts it once.
fn idempotency_key(run: &RunContext) -> String {
    let step = run.step.borrow().clone().unwrap_or_default();
    format!("{}/{step}", run.run_id.0)
}

/// POSTs the deployment to the CI system's webhook; 2xx means it started there.
async fn via_webhook(
    url: &str,
    config: &DeploymentsConfig,
    d: &Deployment,
    key: &str,
) -> AgentResult {
    let timeout = config.timeout;
    let mut request = super::http_client()
        .post(url)
        .timeout(timeout)
        .insert_header(("idempotency-key", key));
    for (name, value) in &config.webhook_headers {
        request = request.insert_header((name.as_str(), value.expose()));
    }
    let body = webhook_body(d);
    // The URL and the headers may carry credentials: errors name neither.
    let mut response = request.send_json(&body).await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => AgentError::Failed(format!(
            "the deployment webhook did not answer within {}s",
            config.timeout.as_secs()
        )),
        other => AgentError::Failed(format!(
            "the deployment webhook could not be reached: {other}"
        )),
    })?;
    let status = response.status();
    let bytes = response.body().limit(1 << 20).await.unwrap_or_default();
    if !status.is_success() {
        return Err(AgentError::Failed(format!(
            "the deployment webhook answered HTTP {}: {}",
            status.as_u16(),
            excerpt(&String::from_utf8_lossy(&bytes))
        )));
    }
    let answer = match serde_json::from_slice::<Value>(&bytes) {
        Ok(json) if json.to_string().len() <= MAX_CAPTURE => json,
        _ => Value::String(excerpt(&String::from_utf8_lossy(&bytes))),
    };
    Ok(json!({
        "status": "started",
        "via": "webhook",
        "http_status": status.as_u16(),
        "response": answer,
    }))
}

/// What the CI system's webhook is POSTed.
fn webhook_body(d: &Deployment) -> Value {
    json!({
        "service": d.service,
        "version": d.version,
        "environment": d.environment,
        "approved_by": d.approved_by,
        "requested_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A dry run: the webhook call recorded (URL masked, header values redacted), answered as a CI
/// system that started the deployment would be.
fn dry_webhook(
    dry: &DryRun,
    run: &RunContext,
    url: &str,
    config: &DeploymentsConfig,
    d: &Deployment,
) -> Value {
    let headers: serde_json::Map<String, Value> = config
        .webhook_headers
        .keys()
        .map(|name| (name.clone(), json!("[redacted]")))
        .collect();
    let detail = json!({ "headers": headers, "body": webhook_body(d) });
    dry.record(
        run,
        "deploy webhook",
        format!("POST {}", mask_url(url)),
        detail,
    );
    json!({ "status": "started", "via": "webhook", "http_status": 200, "response": null, "simulated": true })
}

/// A dry run: the argv that would have run, recorded, answered as a command that succeeded.
fn dry_command(
    dry: &DryRun,
    run: &RunContext,
    config: &DeploymentsConfig,
    d: &Deployment,
) -> Value {
    let argv: Vec<String> = config.command.iter().map(|a| d.substitute(a)).collect();
    dry.record(
        run,
        "deploy command",
        argv.join(" "),
        json!({ "argv": argv }),
    );
    json!({ "status": "succeeded", "via": "command", "exit_code": 0, "stdout": "", "stderr": "", "simulated": true })
}

/// Runs the configured argv, placeholders replaced, and waits for it; killed at the timeout.
async fn via_command(config: &DeploymentsConfig, d: &Deployment) -> AgentResult {
    let argv: Vec<String> = config.command.iter().map(|a| d.substitute(a)).collect();
    let program = &argv[0];
    let child = tokio::process::Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the wait at the timeout drops the child, and this kills it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            AgentError::Failed(format!(
                "the deployment command `{program}` could not start: {e} (platforms.whatsapp.deployments.command)"
            ))
        })?;
    let timeout = config.timeout;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(AgentError::Failed(format!(
                "the deployment command `{program}` failed while running: {e}"
            )))
        }
        Err(_) => {
            return Err(AgentError::Failed(format!(
                "the deployment command `{program}` did not finish within {}s and was killed",
                config.timeout.as_secs()
            )))
        }
    };
    let stdout = excerpt(&String::from_utf8_lossy(&output.stdout));
    let stderr = excerpt(&String::from_utf8_lossy(&output.stderr));
    match output.status.code() {
        Some(0) => Ok(json!({
            "status": "succeeded",
            "via": "command",
            "exit_code": 0,
            "stdout": stdout,
            "stderr": stderr,
        })),
        Some(code) => Err(AgentError::Failed(format!(
            "the deployment command `{program}` exited with code {code}: {}",
            if stderr.is_empty() {
                "(no stderr)"
            } else {
                &stderr
            }
        ))),
        None => Err(AgentError::Failed(format!(
            "the deployment command `{program}` was killed by a signal: {}",
            if stderr.is_empty() {
                "(no stderr)"
            } else {
                &stderr
            }
        ))),
    }
}

/// The last [`MAX_CAPTURE`] bytes of `text`, trimmed, with `…` where the start was cut: errors are
/// at the end of a deploy log.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_CAPTURE {
        return text.to_owned();
    }
    let mut start = text.len() - MAX_CAPTURE;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Writes the `deploy` audit record; a failure to write it is logged, not the step's failure (the
/// deployment itself already happened or not).
async fn audit(run: &RunContext, d: &Deployment, result: &AgentResult) {
    let mut detail = json!({
        "run_id": run.run_id.0,
        "flow": run.flow,
        "service": d.service,
        "version": d.version,
        "environment": d.environment,
    });
    match result {
        Ok(output) => {
            for key in ["status", "via", "http_status", "exit_code", "simulated"] {
                if let Some(value) = output.get(key) {
                    detail[key] = value.clone();
                }
            }
        }
        Err(e) => {
            detail["status"] = json!("failed");
            detail["error"] = json!(e.to_string());
        }
    }
    let who = WaId::parse(&d.approved_by)
        .map(|wa| wa.masked())
        .unwrap_or_else(|| d.approved_by.clone());
    let entry = AuditEntry {
        kind: "deploy".into(),
        who: Some(who),
        detail,
    };
    if let Err(e) = run.services.store.audit(entry).await {
        tracing::error!(error = %e, service = %d.service, "the deployment's audit record was not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment::parse(&json!({
            "service": "api", "version": 2.1, "environment": "staging", "approved_by": "+15551234567"
        }))
        .expect("a valid deployment")
    }

    #[test]
    fn placeholders_are_replaced_in_each_argument_once() {
        let d = deployment();
        assert_eq!(d.version, "2.1");
        assert_eq!(
            d.substitute("--image=registry/{service}:{version}"),
            "--image=registry/api:2.1"
        );
        assert_eq!(
            d.substitute("{environment}/{unknown}/{"),
            "staging/{unknown}/{"
        );
        let tricky = Deployment {
            service: "{version}".into(),
            ..d
        };
        assert_eq!(tricky.substitute("{service}"), "{version}");
    }

    #[test]
    fn values_that_could_become_options_or_lines_are_refused() {
        for (field, value) in [
            ("version", json!("--help")),
            ("service", json!("-rf")),
            ("environment", json!("prod\nrm -rf /")),
            ("approved_by", json!("")),
        ] {
            let mut input = json!({
                "service": "api", "version": "1", "environment": "staging", "approved_by": "alice"
            });
            input[field] = value;
            match Deployment::parse(&input) {
                Err(AgentError::Input { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn excerpts_keep_the_end() {
        let long = format!("{}END", "x".repeat(5000));
        let cut = excerpt(&long);
        assert!(cut.starts_with('…') && cut.ends_with("END"));
        assert_eq!(cut.len(), MAX_CAPTURE + '…'.len_utf8());
        assert_eq!(excerpt("  short\n"), "short");
    }
}
