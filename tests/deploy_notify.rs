//! The `deployment-manager` and `notifier` agents through the real server: webhook-triggered test
//! flows call them, a second fake records what the deploy webhook and Slack received, a script
//! written by the test stands in for a deploy command, and a tiny SMTP server takes the email.

mod common;

use common::*;
use serde_json::{json, Value};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Deploys what the webhook body says, then reports the step's output to Bob.
const DEPLOY_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: deploy-hook
triggers:
  - type: webhook
    path: "/test/deploy"
    method: POST
input:
  required: [service, version, environment, approved_by]
  schema:
    service: { type: string }
    version: { type: string }
    environment: { type: string }
    approved_by: { type: string }
steps:
  - name: deploy
    agent: deployment-manager
    action: deploy
    input:
      service: "{{ input.service }}"
      version: "{{ input.version }}"
      environment: "{{ input.environment }}"
      approved_by: "{{ input.approved_by }}"
  - name: report
    agent: whatsapp
    action: send_text
    input:
      to: "+15557654321"
      text: "REPORT {{ steps.deploy.output | tojson }}"
"#;

/// Notifies on the channels the webhook body lists, then reports the step's output to Bob.
const NOTIFY_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: notify-hook
triggers:
  - type: webhook
    path: "/test/notify"
    method: POST
input:
  required: [channels, user, message]
  schema:
    channels: { type: array }
    user: { type: string }
    message: { type: string }
    subject: { type: string, default: "aof test" }
steps:
  - name: notify
    agent: notifier
    action: notify
    input:
      channels: "{{ input.channels }}"
      user: "{{ input.user }}"
      message: "{{ input.message }}"
      subject: "{{ input.subject }}"
  - name: report
    agent: whatsapp
    action: send_text
    input:
      to: "+15557654321"
      text: "REPORT {{ steps.notify.output | tojson }}"
"#;

/// The tutorial's process-approval step, as written there: a YAML list of channels.
const APPROVED_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approved-hook
triggers:
  - type: webhook
    path: "/test/approved"
    method: POST
input:
  required: [requester, service]
  schema:
    requester: { type: string }
    service: { type: string }
steps:
  - name: notify-requester-approved
    agent: notifier
    action: notify
    input:
      channels: ["slack", "whatsapp"]
      user: "{{ input.requester }}"
      message: |
        ✅ Deployment approved!

        Service: {{ input.service }}
"#;

/// A flows directory with the repository's flows (every routing target exists) and the test flows.
fn flows_dir() -> tempfile::TempDir {
    let dir = temp();
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the repo's flows") {
        let path = entry.expect("a flow file").path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy a flow");
    }
    for (name, yaml) in [
        ("deploy-hook.yaml", DEPLOY_FLOW),
        ("notify-hook.yaml", NOTIFY_FLOW),
        ("approved-hook.yaml", APPROVED_FLOW),
    ] {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// The people directory: Alice with her own Slack webhook and id, Bob without.
fn people(slack: &FakeGraph) -> String {
    format!(
        r#"    people:
      - name: Alice
        phone: "+15551234567"
        email: alice@example.com
        slack_webhook: "{slack}/slack/alice"
        slack_id: U0ALICE
      - name: Bob
        phone: "+15557654321"
"#,
        slack = slack.address
    )
}

/// A server, its graph, its store directory and flows, with `extra` under `platforms.whatsapp`.
struct Setup {
    app: TestApp,
    graph: FakeGraph,
    _dir: tempfile::TempDir,
    _flows: tempfile::TempDir,
}

async fn start(extra: String) -> Setup {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        whatsapp_extra: extra,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the server starts");
    Setup {
        app,
        graph,
        _dir: dir,
        _flows: flows,
    }
}

/// Polls an async check until it returns `Some` or `timeout` passes.
async fn eventually_async<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `path`'s flow with `body`; waits for the run to end and returns its record.
async fn run_flow(app: &TestApp, path: &str, body: Value) -> aof::store::RunRecord {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    let store = store(&app.dir).await;
    eventually_async(WAIT, || async {
        store
            .run(&run_id)
            .await
            .unwrap()
            .filter(|r| r.outcome.is_some())
    })
    .await
    .unwrap_or_else(|| panic!("run {run_id} did not finish"))
}

/// The error of the run's step `name`.
fn step_error(run: &aof::store::RunRecord, name: &str) -> String {
    let steps = run.steps.as_ref().expect("the steps' record");
    let step = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps}"));
    assert_eq!(step["outcome"], "error", "{step}");
    step["error"].as_str().unwrap_or_default().to_owned()
}

/// The step output the flow reported to Bob.
async fn report(graph: &FakeGraph) -> Value {
    let text = eventually(WAIT, || {
        graph
            .sends_to(BOB)
            .iter()
            .find_map(|s| s.text().strip_prefix("REPORT ").map(str::to_owned))
    })
    .await
    .expect("the flow reported its output to Bob");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("REPORT {text}: {e}"))
}

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

// ---------------------------------------------------------------------------------------------
// deployment-manager

fn webhook_target(deploy: &FakeGraph) -> String {
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
    let deploy = FakeGraph::start();
    deploy.script(|_| Some((201, json!({ "build": 42 }))));
    let s = start(webhook_target(&deploy)).await;

    let run = run_flow(&s.app, "/test/deploy", deploy_body("2.1.0")).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);

    let calls = deploy.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].path, "/ci/deploy");
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer ci-token"));
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
    let deploy = FakeGraph::start();
    deploy.script(|_| Some((500, json!({ "error": "pipeline busy" }))));
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

// ---------------------------------------------------------------------------------------------
// notifier

fn slack_default(slack: &FakeGraph) -> String {
    format!(
        r#"    notifier:
      slack:
        webhook_url: "{}/slack/default"
"#,
        slack.address
    )
}

fn notify_body(channels: Value, user: &str, message: &str) -> Value {
    json!({ "channels": channels, "user": user, "message": message })
}

#[actix_web::test]
async fn notify_on_slack_posts_the_text_to_the_persons_webhook_with_a_mention() {
    let slack = FakeGraph::start();
    let s = start(people(&slack) + &slack_default(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "alice", "deploy api 2.1 requested"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/slack/alice");
    assert_eq!(
        posts[0].body,
        json!({ "text": "<@U0ALICE> deploy api 2.1 requested" })
    );
    let output = report(&s.graph).await;
    assert_eq!(output["results"][0]["channel"], "slack");
    assert_eq!(output["results"][0]["ok"], true);
    assert!(
        !output.to_string().contains(&slack.address),
        "no webhook URL in the output: {output}"
    );

    // Bob has no webhook of his own: the default one, without a mention.
    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Bob", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"));
    let posts = slack.requests();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].path, "/slack/default");
    assert_eq!(posts[1].body, json!({ "text": "hello" }));
}

#[actix_web::test]
async fn the_tutorials_channel_list_sends_on_slack_and_whatsapp() {
    let slack = FakeGraph::start();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/approved",
        json!({ "requester": "alice@example.com", "service": "api" }),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/slack/alice");
    let text = posts[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with("<@U0ALICE> ✅ Deployment approved!") && text.contains("Service: api"),
        "{text}"
    );
    let sent = eventually(WAIT, || {
        Some(s.graph.sends_to(ALICE)).filter(|v| !v.is_empty())
    })
    .await
    .expect("Alice got the WhatsApp message");
    assert_eq!(sent[0].body["type"], "text");
    assert!(
        sent[0].text().contains("Deployment approved"),
        "{}",
        sent[0].text()
    );
}

#[actix_web::test]
async fn a_slack_webhook_answering_500_twice_is_retried_until_it_accepts() {
    let slack = FakeGraph::start();
    slack.respond_next(vec![
        (500, json!("rollup_error")),
        (500, json!("rollup_error")),
    ]);
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Alice", "third time lucky"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let statuses: Vec<u16> = slack.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(slack.requests().iter().all(|r| r.path == "/slack/alice"));
}

#[actix_web::test]
async fn a_slack_webhook_failing_every_attempt_fails_the_step_after_three() {
    let slack = FakeGraph::start();
    slack.script(|_| Some((503, json!("unavailable"))));
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Alice", "nobody home"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("slack: Slack answered HTTP 503") && error.contains("3 attempts"),
        "{error}"
    );
    assert!(!error.contains(&slack.address), "{error}");
    assert_eq!(slack.requests().len(), 3);
}

#[actix_web::test]
async fn one_channel_failing_leaves_the_step_successful_with_each_channels_result() {
    let slack = FakeGraph::start();
    slack.script(|_| Some((404, json!("channel_not_found"))));
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack", "whatsapp"]), "Alice", "half of it"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    assert_eq!(slack.requests().len(), 1, "a 404 is not retried");
    let output = report(&s.graph).await;
    let results = output["results"].as_array().unwrap();
    assert_eq!(results[0]["channel"], "slack");
    assert_eq!(results[0]["ok"], false);
    assert!(
        results[0]["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 404: \"channel_not_found\""),
        "{output}"
    );
    assert_eq!(results[1]["channel"], "whatsapp");
    assert_eq!(results[1]["ok"], true);
    assert_eq!(s.graph.sends_to(ALICE).len(), 1);
}

#[actix_web::test]
async fn notify_for_an_unknown_person_fails_naming_them_and_every_channel() {
    let slack = FakeGraph::start();
    let s = start(people(&slack) + &slack_default(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack", "whatsapp"]), "carol", "anyone?"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("slack: `carol` is not in platforms.whatsapp.people")
            && error.contains("whatsapp: `carol` is not in platforms.whatsapp.people"),
        "{error}"
    );
    assert!(slack.requests().is_empty());
}

#[actix_web::test]
async fn slack_without_any_webhook_fails_saying_what_to_configure() {
    let slack = FakeGraph::start();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Bob", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("Slack is not configured for Bob")
            && error.contains("platforms.whatsapp.notifier.slack.webhook_url"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// email

/// What the fake SMTP server received: the commands, and each message's DATA.
#[derive(Default)]
struct SmtpLog {
    commands: Vec<String>,
    messages: Vec<String>,
}

/// A tiny SMTP server on a random port that accepts everything; returns its port and its log.
fn fake_smtp() -> (u16, Arc<Mutex<SmtpLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake SMTP server");
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(SmtpLog::default()));
    let shared = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let _ = stream.write_all(b"220 fake.smtp ESMTP\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let command = line.trim_end().to_owned();
                shared.lock().unwrap().commands.push(command.clone());
                let verb = command
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let answer: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 fake.smtp\r\n",
                    "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                    "DATA" => {
                        let _ = stream.write_all(b"354 go ahead\r\n");
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        shared.lock().unwrap().messages.push(data);
                        b"250 queued as 1\r\n"
                    }
                    "QUIT" => {
                        let _ = stream.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"502 not implemented\r\n",
                };
                let _ = stream.write_all(answer);
            }
        }
    });
    (port, log)
}

fn email_config(port: u16) -> String {
    format!(
        r#"    notifier:
      email:
        smtp_host: "127.0.0.1"
        smtp_port: {port}
        security: none
        from: "aof@example.com"
"#
    )
}

#[actix_web::test]
async fn notify_by_email_sends_the_message_over_smtp_to_the_persons_address() {
    let (port, log) = fake_smtp();
    let slack = FakeGraph::start();
    let s = start(people(&slack) + &email_config(port)).await;

    let mut body = notify_body(json!(["email"]), "Alice", "api 2.1 is live");
    body["subject"] = json!("Deployment done");
    let run = run_flow(&s.app, "/test/notify", body).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);

    let log = log.lock().unwrap();
    assert!(
        log.commands
            .iter()
            .any(|c| c == "RCPT TO:<alice@example.com>"),
        "{:?}",
        log.commands
    );
    assert!(
        log.commands
            .iter()
            .any(|c| c == "MAIL FROM:<aof@example.com>"),
        "{:?}",
        log.commands
    );
    assert_eq!(log.messages.len(), 1);
    let message = &log.messages[0];
    assert!(message.contains("Subject: Deployment done"), "{message}");
    assert!(message.contains("To: alice@example.com"), "{message}");
    assert!(message.contains("api 2.1 is live"), "{message}");
}

#[actix_web::test]
async fn email_without_smtp_config_fails_saying_what_to_configure() {
    let slack = FakeGraph::start();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["email"]), "Alice", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    assert!(
        step_error(&run, "notify").contains("email is not configured"),
        "{:?}",
        run.steps
    );
}
