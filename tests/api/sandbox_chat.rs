//! The sandbox from a terminal: the README's `curl` walk-through, pasted whole, runs in order (also a
//! second time on the same store), and `?wait=` answers with what the bot sent.

use crate::common::sandbox::{start_sandbox, start_sandbox_with, waited};
use crate::common::*;
use serde_json::json;
use std::process::Command;

/// The README's walk-through: the first ```bash block after its heading.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("## The tutorial's steps 4 to 6"))
        .skip_while(|l| l.trim_end() != "```bash")
        .skip(1);
    let block: Vec<&str> = lines
        .by_ref()
        .take_while(|l| l.trim_end() != "```")
        .collect();
    assert!(!block.is_empty(), "no walk-through in the README");
    block.join("\n") + "\n"
}

/// Whether `program` runs here.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the walk-through against `app` with bash, failing on the first failing command; its output.
/// (The bot runs on its own thread, so the test's may block.)
fn run_walkthrough(app: &TestApp) -> String {
    let script = format!(
        "set -euo pipefail\n{}",
        walkthrough().replace("http://localhost:8080", &app.address)
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .env_remove("AOF_WEBHOOK_TOKEN")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The lines of `output` that `who` received, after the `## who: text` line that asked.
fn answers<'a>(output: &'a str, asked: &str) -> Vec<&'a str> {
    output
        .lines()
        .skip_while(|l| *l != asked)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

#[actix_web::test]
async fn the_readme_walkthrough_pasted_whole_runs_in_order_twice() {
    if !(available("curl") && available("python3")) {
        println!("skipped: the walk-through needs curl and python3");
        return;
    }
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    for round in 1..=2 {
        let out = run_walkthrough(&app);
        let told = |asked: &str, needle: &str| {
            let lines = answers(&out, asked);
            assert!(
                lines.iter().any(|l| l.contains(needle)),
                "round {round}: after `{asked}`, nothing contains `{needle}`: {lines:#?}\n{out}"
            );
        };
        assert!(
            out.contains("ops_alert") || out.contains("High latency"),
            "{out}"
        );
        let oncall = out
            .lines()
            .find(|l| l.starts_with("## ") && l.ends_with(": INFO"))
            .expect("the on-call engineer asks INFO")
            .trim_start_matches("## ")
            .trim_end_matches(": INFO")
            .to_owned();
        told(
            &format!("## {oncall}: INFO"),
            "Runbook: https://runbooks.example.com/api-latency",
        );
        told(
            &format!("## {oncall}: ACK"),
            "You're now the incident commander",
        );
        assert!(
            out.contains("ESCALATED"),
            "round {round}: the fired timer escalates:\n{out}"
        );
        told(
            "## +15550001234: DETAILS",
            "https://github.com/org/api/compare/v2.0.0...v2.1.0",
        );
        told("## +15550001234: APPROVE", "Deployment approved");
        told("## +15557654321: APPROVE", "was already approved by Carol");
        let join = out
            .lines()
            .find(|l| l.starts_with("## +15550001234: JOIN INC-"))
            .expect("Carol joins the incident the report opened")
            .to_owned();
        // Carol is in the team group, so the room took her in when it opened.
        told(&join, "You are already in the war room of INC-");
        told("## +15557654321: rolling back now", "*Bob* [INC-");
        told("## +15550001234: WHO", "members");
        told("## +15557654321: RESOLVE", "Resolved");
        for line in out.lines() {
            assert!(
                !line.contains("⚠️"),
                "round {round}: an error reached a person: {line}\n{out}"
            );
        }
        assert!(
            !answers(&out, "## +15557654321: rolling back now")
                .iter()
                .any(|l| l.contains("I'm the ops bot")),
            "a relay is not answered with HELP:\n{out}"
        );
    }
}

/// `POST /sandbox/inbound?wait=10` as `from`; the texts the bot sent, with their recipients.
async fn say_and_wait(app: &TestApp, from: &str, text: &str) -> Vec<(String, String)> {
    let body = json!({ "from": from, "text": text });
    let answer = waited(app, "/sandbox/inbound", body, None).await;
    let text_of = |m: &serde_json::Value, key: &str| m[key].as_str().unwrap_or_default().to_owned();
    answer["sent"]
        .as_array()
        .expect("what was sent")
        .iter()
        .map(|m| (text_of(m, "to"), text_of(m, "text")))
        .collect()
}

#[actix_web::test]
async fn help_lists_every_routed_command_and_the_built_in_ones() {
    let dir = temp();
    let app = start_sandbox_with(dir.path(), |config| {
        config.replace(
            "    \"HELP\": \"whatsapp-help-flow\"\n",
            "    \"HELP\": \"whatsapp-help-flow\"\n    \"PING\": \"status-check-flow\"\n",
        )
    })
    .await;
    let sent = say_and_wait(&app, "+15551234567", "HELP").await;
    let [(to, help)] = &sent[..] else {
        panic!("one answer: {sent:?}");
    };
    assert_eq!(to, "+15551234567");
    for command in [
        "ACK",
        "ESC",
        "INFO",
        "RESOLVE",
        "STATUS",
        "APPROVE",
        "REJECT",
        "DETAILS",
        "JOIN",
        "WHO",
        "LEAVE",
        "scale",
        "deploy",
        "PING",
        "COVER",
        "SILENCE",
        "UNSILENCE",
        "ACK ALT-0003",
    ] {
        assert!(help.contains(command), "HELP lacks {command}:\n{help}");
    }
}

#[actix_web::test]
async fn without_wait_the_answer_is_immediate_and_firing_no_timers_is_done_at_once() {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    // Without ?wait the answer is immediate and carries only the message id.
    let (status, answer) = app
        .post_json(
            "/webhooks/sandbox/inbound",
            &json!({ "from": "+15551234567", "text": "HELP" }),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(answer.get("sent").is_none(), "{answer}");
    let fired = app
        .post_json(
            "/webhooks/admin/timers/fire?wait=5",
            &json!({}),
            Some("sandbox-token"),
        )
        .await;
    assert_eq!(fired.0, 200, "{:?}", fired.1);
    assert_eq!(fired.1["fired"], 0);
    assert_eq!(fired.1["done"], true, "{:?}", fired.1);
}
