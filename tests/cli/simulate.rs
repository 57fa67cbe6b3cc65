//! `aofctl simulate` through the real binary, on a config that talks to the Cloud API: one fake
//! stands in for Meta's Graph API, PagerDuty, the deployment webhook, Slack and the health checks,
//! and records every request. Whatever is simulated, the fake must receive nothing; without
//! `--commit` the store must not change, with it the store keeps what the runs wrote.

use crate::common::{aofctl, config_yaml, FakeGraph, Options};
use std::path::{Path, PathBuf};

/// Alice on call (always), Carol approves production, Bob requests deployments.
fn setup() -> (FakeGraph, tempfile::TempDir, PathBuf) {
    let graph = FakeGraph::start();
    let dir = crate::common::temp();
    let fake = &graph.address;
    let options = Options {
        oncall_extra: format!(
            r#"      static_oncall:
        - name: Alice
          phone: "+15551234567"
      pagerduty_token: "pd-secret-token"
      schedule_id: "PSCHED1"
      pagerduty_api_url: "{fake}/pagerduty"
"#
        ),
        whatsapp_extra: format!(
            r#"    people:
      - name: Alice
        phone: "+15551234567"
        email: alice@example.com
      - name: Bob
        phone: "+15557654321"
        email: bob@example.com
      - name: Carol
        phone: "+15550001234"
    approvals:
      environments:
        production:
          approvers: ["Carol"]
    deployments:
      webhook_url: "{fake}/deploy/hook-secret"
      webhook_headers:
        Authorization: "Bearer ci-secret"
    notifier:
      slack:
        webhook_url: "{fake}/slack/T000/B000/slack-secret"
"#
        ),
        ..Options::default()
    };
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, config_yaml(fake, dir.path(), &options)).expect("config written");
    (graph, dir, file)
}

/// Runs `aofctl simulate --config FILE ARGS…`; its stdout, after checking that it succeeded.
fn simulate(config: &Path, args: &[&str]) -> String {
    let mut all = vec!["simulate", "--config", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let output = aofctl(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Creates the store with its schema, as a bot that ran once leaves it.
fn create_store(dir: &Path) {
    actix_web::rt::System::new().block_on(async {
        crate::common::store(dir).await;
    });
}

/// Rows of `table` in the store of `dir`.
fn count(dir: &Path, sql: &str) -> i64 {
    let url = format!("sqlite://{}", dir.join("aof.db").display());
    actix_web::rt::System::new().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url)
            .await
            .expect("the store opens");
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("counted");
        pool.close().await;
        n
    })
}

/// What the store holds, table by table.
fn rows(dir: &Path) -> Vec<i64> {
    [
        "runs",
        "alerts",
        "approvals",
        "outbound_messages",
        "conversations",
        "audit_log",
        "timers",
    ]
    .iter()
    .map(|table| count(dir, &format!("SELECT COUNT(*) FROM {table}")))
    .collect()
}

fn assert_nothing_reached(graph: &FakeGraph) {
    let requests: Vec<String> = graph
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.path, r.body))
        .collect();
    assert!(requests.is_empty(), "the fakes received {requests:#?}");
}

const ALERT: &str = r#"{"severity": "critical", "service": "api-server", "message": "High latency detected (>500ms)"}"#;

#[test]
fn simulating_help_shows_the_route_the_steps_and_the_reply_and_sends_nothing() {
    let (graph, dir, config) = setup();
    create_store(dir.path());
    let before = rows(dir.path());

    let out = simulate(&config, &["--from", "+15551234567", "HELP"]);

    assert!(
        out.contains("simulate: \"HELP\" from Alice (+15551234567)"),
        "{out}"
    );
    assert!(
        out.contains("route: command \"HELP\" (routing.commands) → whatsapp-help-flow"),
        "{out}"
    );
    assert!(out.contains("\nrun whatsapp-help-flow (run_"), "{out}");
    assert!(out.contains("input:  {"), "{out}");
    assert!(out.contains("would send 1 WhatsApp message(s):"), "{out}");
    assert!(out.contains("  → Alice (+15551234567), text:"), "{out}");
    assert!(
        out.contains("ACK"),
        "the help text lists the commands: {out}"
    );
    assert!(
        out.contains("store: unchanged; the simulation ran on a scratch copy"),
        "{out}"
    );
    assert_nothing_reached(&graph);
    assert_eq!(rows(dir.path()), before, "the store changed");
}

#[test]
fn a_keyword_route_says_which_pattern_matched_and_health_checks_are_recorded() {
    let (graph, _dir, config) = setup();
    let out = simulate(
        &config,
        &["--from", "+15557654321", "big outage in eu-west"],
    );
    assert!(
        out.contains("route: keyword /(?i)(incident|outage|down)/ matched \"outage\" (routing.keywords) → status-check-flow"),
        "{out}"
    );
    assert!(out.contains("does not exist yet"), "{out}");

    let out = simulate(&config, &["--from", "+15557654321", "STATUS"]);
    let check = format!("health check: GET {}/health/api", graph.address);
    assert!(out.contains(&check), "{out}");
    assert!(
        out.contains(r#""healthy":true,"latency":0,"name":"api","simulated":true"#),
        "{out}"
    );
    assert_nothing_reached(&graph);
}

#[test]
fn simulating_an_alert_webhook_records_the_calls_and_changes_nothing() {
    let (graph, dir, config) = setup();
    create_store(dir.path());
    let before = rows(dir.path());

    let out = simulate(&config, &["--webhook", "/alert/oncall", "--data", ALERT]);

    assert!(
        out.contains("webhook: /alert/oncall → send-oncall-alert (the bot answered 202"),
        "{out}"
    );
    assert!(out.contains("run send-oncall-alert-flow (run_"), "{out}");
    assert!(out.contains(". get-oncall: ok"), "{out}");
    assert!(out.contains(". create-alert-record: ok"), "{out}");
    assert!(
        out.contains("  → Alice (+15551234567), template ops_alert:"),
        "{out}"
    );
    assert!(out.contains("High latency detected (>500ms)"), "{out}");
    let lookup = format!(
        "pagerduty: GET {}/pagerduty/oncalls?schedule_ids[]=PSCHED1",
        graph.address
    );
    assert!(out.contains(&lookup), "{out}");
    assert!(
        !out.contains("pd-secret-token"),
        "the token is masked: {out}"
    );
    assert!(out.contains("auto-escalate-flow in 29"), "{out}");
    assert_nothing_reached(&graph);
    assert_eq!(rows(dir.path()), before, "the store changed");
}

#[test]
fn with_commit_the_store_keeps_the_alert_and_still_nothing_is_sent() {
    let (graph, dir, config) = setup();
    create_store(dir.path());

    let out = simulate(
        &config,
        &["--webhook", "/alert/oncall", "--data", ALERT, "--commit"],
    );

    assert!(out.contains("store: changed (--commit)"), "{out}");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM alerts"), 1);
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM runs WHERE flow = 'send-oncall-alert' AND outcome = 'completed'"
        ),
        1,
        "{out}"
    );
    // The critical alert's escalation, and its page's delivery check.
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM timers"), 2, "{out}");
    assert_nothing_reached(&graph);
}

#[test]
fn an_approval_shows_the_deployment_recorded_instead_of_started() {
    let (graph, dir, config) = setup();
    let request = r#"{"service": "api", "version": "v2.1.0", "environment": "production", "requester": "bob@example.com"}"#;
    let out = simulate(
        &config,
        &[
            "--webhook",
            "/deploy/request-approval",
            "--data",
            request,
            "--commit",
        ],
    );
    assert!(
        out.contains("  → Carol (+15550001234), template deployment_approval:"),
        "{out}"
    );
    assert!(out.contains("would post 1 Slack message(s):"), "{out}");
    assert!(
        !out.contains("slack-secret"),
        "the Slack path is masked: {out}"
    );
    let before = rows(dir.path());

    let out = simulate(&config, &["--from", "+15550001234", "APPROVE"]);

    assert!(
        out.contains("route: a pending on_response of run run_"),
        "{out}"
    );
    assert!(
        out.contains("matched /^APPROVE$/ → process-approval-flow"),
        "{out}"
    );
    assert!(
        out.contains("which would have said: the message trigger /^(APPROVE|REJECT)$/ of approval-handler-flow"),
        "{out}"
    );
    assert!(out.contains(". trigger-deployment: ok"), "{out}");
    assert!(out.contains("\"simulated\":true"), "{out}");
    let hook = format!("deploy webhook: POST {}/…", graph.address);
    assert!(out.contains(&hook), "{out}");
    assert!(out.contains("\"Authorization\":\"[redacted]\""), "{out}");
    assert!(
        !out.contains("ci-secret") && !out.contains("hook-secret"),
        "{out}"
    );
    assert!(out.contains("\"version\":\"v2.1.0\""), "{out}");
    assert!(out.contains("  → Bob (+15557654321), text:"), "{out}");
    assert!(out.contains("✅ Deployment approved!"), "{out}");
    assert_nothing_reached(&graph);
    assert_eq!(rows(dir.path()), before, "the store changed");
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM approvals WHERE state = 'pending'"
        ),
        1
    );
}

#[test]
fn the_trigger_is_a_message_or_a_webhook_call_not_both_nor_half() {
    for args in [
        vec!["simulate", "--config", "config/sandbox.yaml"],
        vec![
            "simulate",
            "--config",
            "config/sandbox.yaml",
            "--from",
            "+15551234567",
        ],
        vec![
            "simulate",
            "--config",
            "config/sandbox.yaml",
            "--webhook",
            "/alert/oncall",
        ],
        vec![
            "simulate",
            "--config",
            "config/sandbox.yaml",
            "--from",
            "+15551234567",
            "HELP",
            "--webhook",
            "/alert/oncall",
            "--data",
            "{}",
        ],
    ] {
        let output = aofctl(&args);
        assert!(!output.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            err.contains("error:") && err.contains("Usage"),
            "{args:?}: {err}"
        );
    }
    let help = aofctl(&["simulate", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Examples:") && text.contains("--config config/sandbox.yaml"),
        "{text}"
    );
}

#[test]
fn a_webhook_path_no_flow_serves_is_an_error_that_says_where_to_look() {
    let (graph, _dir, config) = setup();
    let output = aofctl(&[
        "simulate",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--webhook",
        "/no/such/hook",
        "--data",
        "{}",
    ]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("HTTP 404") && err.contains("aofctl flows list"),
        "{err}"
    );
    assert_nothing_reached(&graph);
}

/// On PostgreSQL (the store a running bot shares), a simulation does not touch the database: it
/// runs on an empty scratch store; with `--commit` it runs against the database and keeps what it
/// wrote. Skipped without a PostgreSQL server, unless `AOF_REQUIRE_POSTGRES=1`.
#[tokio::test(flavor = "current_thread")]
async fn on_postgresql_simulate_leaves_the_database_alone_unless_committed() {
    let Some(db) = aof::store::postgres::testing::fresh_database().await else {
        return;
    };
    let (graph, dir, file) = setup();
    let sqlite = format!("sqlite://{}", dir.path().join("aof.db").display());
    let text = std::fs::read_to_string(&file).expect("config read");
    assert!(text.contains(&sqlite), "the config names its SQLite file");
    std::fs::write(&file, text.replace(&sqlite, &db.url)).expect("config written");
    let alerts = || async {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('alerts') IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("asks");
        let n: i64 = match exists {
            true => sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
                .fetch_one(&pool)
                .await
                .expect("counts"),
            false => 0,
        };
        pool.close().await;
        n
    };

    let out = simulate(&file, &["--webhook", "/alert/oncall", "--data", ALERT]);
    assert!(
        out.contains("is shared by the running bot and not copied"),
        "{out}"
    );
    assert_eq!(alerts().await, 0, "the database is untouched");
    let out = simulate(
        &file,
        &["--webhook", "/alert/oncall", "--data", ALERT, "--commit"],
    );
    assert!(out.contains("store: changed (--commit)"), "{out}");
    assert_eq!(alerts().await, 1, "{out}");
    assert_nothing_reached(&graph);
}
