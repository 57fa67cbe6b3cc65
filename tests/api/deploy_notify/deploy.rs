//! The `deployment-manager` agent: deploying through a webhook (body, headers, a failing answer)
//! and through a command (argv placeholders, exit codes, refused arguments, the timeout), and the
//! error when no target is configured.

use super::support::*;
use crate::common::*;
use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The newest audit record of kind `deploy`.
async fn deploy_audit(app: &TestApp) -> aof::store::AuditRecord {
    store(&app.dir)
        .await
        .audit_log(50)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "deploy")
        .expect("a deploy audit record")
}

fn deploy_body(version: &str) -> Value {
    json!({ "service": "api", "version": version, "environment": "staging", "approved_by": "+15551234567" })
}

fn webhook_target(deploy: &FakeHttp) -> String {
    format!(
        r#"    deployments:
      webhook_url: "{}/ci/deploy"
      webhook_headers:
        Authorization: "Bearer ci-token"
      timeout_secs: 5
"#,
        deploy.address
    )
}

#[actix_web::test]
async fn deploy_through_the_webhook_posts_the_deployment_as_json_with_the_configured_headers() {
    let deploy = fake_webhooks();
    deploy.script(|_| Some(Response::json(201, json!({ "build": 42 }))));
    let s = start(webhook_target(&deploy)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);

    let calls = deploy.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].path, "/ci/deploy");
    assert_eq!(calls[0].header("authorization"), Some("Bearer ci-token"));
    let key = calls[0]
        .header("idempotency-key")
        .expect("an Idempotency-Key");
    assert!(
        key.starts_with(&run.run_id) && key.len() > run.run_id.len(),
        "the run and its step: {key}"
    );
    let body = &calls[0].body;
    assert_eq!(body["service"], "api");
    assert_eq!(body["version"], "2.1.0");
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["approved_by"], "+15551234567");
    let requested = body["requested_at"].as_str().expect("requested_at");
    chrono::DateTime::parse_from_rfc3339(requested)
        .unwrap_or_else(|e| panic!("requested_at `{requested}`: {e}"));

    let output = report(&s.graph).await;
    assert_eq!(output["status"], "started");
    assert_eq!(output["via"], "webhook");
    assert_eq!(output["http_status"], 201);
    assert_eq!(output["response"], json!({ "build": 42 }));

    let audit = deploy_audit(&s.app).await;
    assert_eq!(audit.detail["status"], "started");
    assert_eq!(audit.detail["service"], "api");
    assert_eq!(audit.who.as_deref(), Some("+*******4567"));
}

#[actix_web::test]
async fn a_deploy_webhook_answering_500_fails_the_step_with_the_status_and_body() {
    let deploy = fake_webhooks();
    deploy.script(|_| Some(Response::json(500, json!({ "error": "pipeline busy" }))));
    let s = start(webhook_target(&deploy)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "deploy");
    assert!(
        error.contains("HTTP 500") && error.contains("pipeline busy"),
        "{error}"
    );
    assert!(
        !error.contains(&deploy.address),
        "the URL stays out: {error}"
    );
    let audit = deploy_audit(&s.app).await;
    assert_eq!(audit.detail["status"], "failed");
}

/// A deploy script run as `/bin/sh SCRIPT args…` (no executable bit, so no "text file busy" race
/// with other tests' forks); it writes next to itself.
fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("deploy.sh");
    std::fs::write(&path, body).expect("write the script");
    path
}

fn command_target(script: &Path, timeout_secs: u64) -> String {
    format!(
        r#"    deployments:
      command: ["/bin/sh", "{}", "{{service}}", "--version={{version}}", "{{environment}}", "{{approved_by}}"]
      timeout_secs: {timeout_secs}
"#,
        script.display()
    )
}

#[actix_web::test]
async fn deploy_through_a_command_runs_the_argv_with_placeholders_and_records_the_exit_code() {
    let work = temp();
    let script = script(
        work.path(),
        "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args.txt\"\necho \"deployed $1 ${2#--version=} to $3\"\n",
    );
    let s = start(command_target(&script, 10)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);

    let args = std::fs::read_to_string(work.path().join("args.txt")).expect("the script ran");
    assert_eq!(args, "api\n--version=2.1.0\nstaging\n+15551234567\n");
    let output = report(&s.graph).await;
    assert_eq!(output["status"], "succeeded");
    assert_eq!(output["via"], "command");
    assert_eq!(output["exit_code"], 0);
    assert_eq!(output["stdout"], "deployed api 2.1.0 to staging");
    let audit = deploy_audit(&s.app).await;
    assert_eq!(audit.detail["exit_code"], 0);
    assert_eq!(audit.detail["via"], "command");
}

#[actix_web::test]
async fn a_failing_deploy_command_fails_the_step_with_its_exit_code_and_stderr() {
    let work = temp();
    let script = script(work.path(), "echo \"boom: $1 has no image\" >&2\nexit 3\n");
    let s = start(command_target(&script, 10)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "deploy");
    assert!(
        error.contains("code 3") && error.contains("boom: api has no image"),
        "{error}"
    );
    let audit = deploy_audit(&s.app).await;
    assert_eq!(audit.detail["status"], "failed");
    assert!(audit.detail["error"].as_str().unwrap().contains("boom"));
}

#[actix_web::test]
async fn a_version_that_reads_as_an_option_is_refused_before_anything_runs() {
    let work = temp();
    let script = script(work.path(), "touch \"$(dirname \"$0\")/ran\"\n");
    let s = start(command_target(&script, 10)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("--help")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "deploy");
    assert!(
        error.contains("version") && error.contains("starts with `-`"),
        "{error}"
    );
    let run2 = run_with_newline(&s.app).await;
    assert_eq!(run2.outcome.as_deref(), Some("failed"));
    assert!(step_error(&run2, "deploy").contains("new line"));
    assert!(
        !work.path().join("ran").exists(),
        "the command must not run"
    );
}

async fn run_with_newline(app: &TestApp) -> aof::store::RunRecord {
    let mut body = deploy_body("2.1.0");
    body["environment"] = json!("staging\nproduction");
    run_flow(app, "/test/deploy", body).await
}

#[actix_web::test]
async fn a_deploy_command_past_its_timeout_is_killed_and_fails_the_step() {
    let work = temp();
    let script = script(
        work.path(),
        "echo $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 30\n",
    );
    let s = start(command_target(&script, 1)).await;

    let started = Instant::now();
    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "deploy");
    assert!(
        error.contains("within 1s") && error.contains("killed"),
        "{error}"
    );
    let pid = std::fs::read_to_string(work.path().join("pid")).expect("the script started");
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = eventually(WAIT, || {
        match std::fs::read_to_string(&stat) {
            Err(_) => Some(()),
            // A zombie waiting to be reaped is dead too.
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                Some(())
            }
            Ok(_) => None,
        }
    })
    .await;
    assert!(gone.is_some(), "the deploy command {pid} is still running");
}

#[actix_web::test]
async fn deploy_without_a_target_fails_saying_what_to_configure() {
    let s = start(String::new()).await;
    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    assert_eq!(
        step_error(&run, "deploy"),
        "no deployment target: set platforms.whatsapp.deployments.webhook_url or .command"
    );
}
