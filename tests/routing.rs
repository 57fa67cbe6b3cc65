//! Routing through the real server: commands, a flow's own message patterns, keywords, the default
//! flow, pending `on_response` replies, the conversation's lookback (also across a restart), the
//! allow-list, every message type, batches, delivery statuses and redeliveries.

mod common;

use aof_actors::model::{DeliveryState, Direction};
use aof_actors::ports::Store as _;
use aof_actors::WaId;
use common::*;
use serde_json::{json, Value};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// What the shipped help flow always says.
const HELP_MARK: &str = "I'm the ops bot";

/// What the engine answers to a message without text.
const UNSUPPORTED_REPLY: &str =
    "I can only read text messages. Send HELP to see the commands I understand.";

/// A flows directory with the repository's flows (so that every routing target exists) and `extra`
/// (file name, YAML).
fn flows_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = temp();
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the repo's flows") {
        let path = entry.expect("a flow file").path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy a flow");
    }
    for (name, yaml) in extra {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// Starts the server storing under `dir`, with the flows of `flows` (the repository's when `None`).
async fn start(graph: &FakeGraph, dir: &Path, flows: Option<&Path>) -> TestApp {
    let options = Options {
        flows_dir: flows.map(Path::to_owned),
        ..Options::default()
    };
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the server starts")
}

/// Waits until `who` has been sent at least `n` messages, and returns them all.
async fn sent_to(graph: &FakeGraph, who: &str, n: usize) -> Vec<Recorded> {
    eventually(WAIT, || Some(graph.sends_to(who)).filter(|s| s.len() >= n))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{who} was sent {} messages, expected {n}: {:#?}",
                graph.sends_to(who).len(),
                graph
                    .sends_to(who)
                    .iter()
                    .map(|r| r.text())
                    .collect::<Vec<_>>()
            )
        })
}

/// `who` says `text`; returns the text of the next message `who` is sent.
async fn ask(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> String {
    let before = graph.sends_to(who).len();
    assert_eq!(
        app.say(who, text).await,
        200,
        "the webhook accepts {text:?}"
    );
    sent_to(graph, who, before + 1).await[before]
        .text()
        .to_owned()
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

/// Waits until every message the fake accepted (`wamid.fake.1` ..) is recorded as sent, so that a
/// crash-like stop cannot fall between Meta's answer and the store's record (the queue would send
/// it again after the restart, which is the outbox's at-least-once delivery, not what is tested).
async fn all_sends_recorded(app: &TestApp, graph: &FakeGraph) {
    let store = store(&app.dir).await;
    let accepted = graph.sends().iter().filter(|s| s.status == 200).count();
    for n in 1..=accepted {
        let wamid = format!("wamid.fake.{n}");
        let recorded = eventually_async(WAIT, || async {
            store.message_status(&wamid).await.unwrap()
        })
        .await;
        assert!(recorded.is_some(), "{wamid} was never recorded as sent");
    }
}

/// A status notification: the fixture with `statuses[0].id` replaced by `wamid`.
fn status_for(fixture_name: &str, wamid: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(fixture_name)).expect("fixture JSON");
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = json!(wamid);
    body.to_string().into_bytes()
}

/// Waits until the store knows `wamid` in `state`.
async fn status_becomes(app: &TestApp, wamid: &str, state: DeliveryState) {
    let store = store(&app.dir).await;
    let reached = eventually_async(WAIT, || async {
        store
            .message_status(wamid)
            .await
            .unwrap()
            .filter(|s| s.state == state)
    })
    .await;
    assert!(
        reached.is_some(),
        "{wamid} never became {state:?}; it is {:?}",
        store.message_status(wamid).await.unwrap()
    );
}

#[actix_web::test]
async fn commands_match_the_whole_message_in_any_case_with_surrounding_spaces() {
    // A flow whose own pattern also takes "help": were the command not matched first, in any case
    // and with spaces trimmed, this flow (first in file order) would answer.
    let shadow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: aaa-shadow
triggers:
  - platform: whatsapp
    type: message
    pattern: "^(help|status)$"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "shadowed {{ match.1 }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("aaa-shadow.yaml", shadow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let help = ask(&app, &graph, ALICE, "  help ").await;
    assert!(help.contains(HELP_MARK), "HELP runs the help flow: {help}");

    let status = ask(&app, &graph, ALICE, " sTaTuS  ").await;
    assert!(
        status.contains("📊 *System Status*"),
        "STATUS runs status-check: {status}"
    );
    assert!(status.contains("*api*: healthy"), "{status}");
    assert!(!status.contains("shadowed"), "{status}");
}

#[actix_web::test]
async fn a_flows_own_pattern_feeds_match_1_so_status_api_reports_only_api() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let one = ask(&app, &graph, ALICE, "STATUS api").await;
    assert!(one.contains("✅ *api*: healthy"), "{one}");
    for other in ["*web*", "*workers*", "*database*", "*cache*"] {
        assert!(
            !one.contains(other),
            "only api is checked, not {other}: {one}"
        );
    }
    let health_calls = |svc: &str| {
        graph
            .requests()
            .iter()
            .filter(|r| r.path == format!("/health/{svc}"))
            .count()
    };
    assert_eq!(health_calls("api"), 1);
    assert_eq!(health_calls("web"), 0, "web was not asked for");

    let unknown = ask(&app, &graph, ALICE, "status payments-api").await;
    assert!(
        unknown.contains("❌ *payments-api*: not configured"),
        "{unknown}"
    );
}

#[actix_web::test]
async fn bare_status_reports_every_service_and_the_unconfigured_ones_as_such() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let all = ask(&app, &graph, BOB, "STATUS").await;
    for configured in ["api", "web"] {
        assert!(
            all.contains(&format!("✅ *{configured}*: healthy")),
            "{configured}: {all}"
        );
    }
    for unknown in ["workers", "database", "cache"] {
        assert!(
            all.contains(&format!("❌ *{unknown}*: not configured")),
            "{unknown}: {all}"
        );
    }
}

#[actix_web::test]
async fn a_flows_own_message_pattern_is_checked_before_the_keywords() {
    // "outage" is also a keyword (-> status-check); the flow's own pattern must win.
    let outage = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: outage-report
triggers:
  - platform: whatsapp
    type: message
    pattern: "^outage in (\\w+)$"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "outage report for {{ match.1 | upper }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("outage-report.yaml", outage)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(
        ask(&app, &graph, ALICE, "Outage in eu").await,
        "outage report for EU"
    );
    // Without the flow's pattern, the same keyword goes to status-check.
    let keyword = ask(&app, &graph, ALICE, "big outage").await;
    assert!(keyword.contains("📊 *System Status*"), "{keyword}");
}

/// What a test expects of a reply.
type ReplyCheck = Box<dyn Fn(&str) -> bool>;

#[actix_web::test]
async fn a_keyword_routes_with_its_capture_as_match_1() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    // (?i)(incident|outage|down) -> status-check, whose service comes from match.1 = "outage".
    // (No shipped flow's own pattern takes this text; "the api is down" goes to incident-report.)
    let reply = ask(&app, &graph, ALICE, "we have an outage").await;
    assert!(reply.contains("📊 *System Status*"), "{reply}");
    assert!(reply.contains("❌ *outage*: not configured"), "{reply}");
    assert!(!reply.contains("*api*"), "{reply}");
}

#[actix_web::test]
async fn unmatched_text_goes_to_the_default_flow() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let reply = ask(&app, &graph, BOB, "good morning, anyone there?").await;
    assert!(reply.contains(HELP_MARK), "{reply}");
    assert!(
        reply.contains("Hi Tester"),
        "the help flow greets by name: {reply}"
    );
}

const APPROVAL_REQUEST: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approval-request
triggers:
  - type: webhook
    path: "/test/request-approval"
    method: POST
input:
  required: [service, version]
  schema:
    service: { type: string }
    version: { type: string }
steps:
  - name: ask-bob
    agent: whatsapp
    action: send_template
    input:
      to: "+15557654321"
      template: "deployment_approval"
      parameters:
        - "{{ input.service }}"
        - "{{ input.version }}"
        - "production"
        - "ci"
on_response:
  - pattern: "^APPROVE$"
    flow: approved-flow
    input:
      request: "{{ steps.ask-bob.output.job_id }}"
      who: "{{ trigger.user.phone }}"
      service: "{{ input.service }}"
"#;

const APPROVED: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approved-flow
input:
  required: [request, who, service]
steps:
  - name: confirm
    agent: whatsapp
    action: reply
    input:
      text: "approved {{ input.service }} ({{ input.request }}) by {{ input.who }}"
"#;

/// Posts to a flow webhook and waits until its run finished; returns the run id.
async fn run_webhook(app: &TestApp, path: &str, body: Value) -> String {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    let store = store(&app.dir).await;
    let outcome = eventually_async(WAIT, || async {
        store.run(&run_id).await.unwrap().and_then(|r| r.outcome)
    })
    .await;
    assert_eq!(outcome.as_deref(), Some("completed"), "run {run_id}");
    run_id
}

#[actix_web::test]
async fn a_pending_on_response_runs_its_flow_once_and_only_for_the_person_asked() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("approval-request.yaml", APPROVAL_REQUEST),
        ("approved-flow.yaml", APPROVED),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    run_webhook(
        &app,
        "/webhooks/whatsapp/test/request-approval",
        json!({ "service": "api", "version": "v2.1.0" }),
    )
    .await;
    let template = &sent_to(&graph, BOB, 1).await[0];
    assert_eq!(template.body["template"]["name"], "deployment_approval");
    let params: Vec<&str> = template.body["template"]["components"][0]["parameters"]
        .as_array()
        .expect("template parameters")
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["api", "v2.1.0", "production", "ci"]);

    // Alice was not asked: her APPROVE goes to approval-handler-flow (no request waits for her)
    // and consumes nothing.
    let alice = ask(&app, &graph, ALICE, "APPROVE").await;
    assert!(
        alice.contains("No approval request is waiting for you"),
        "{alice}"
    );

    let bob = ask(&app, &graph, BOB, "approve").await;
    let re = regex::Regex::new(r"^approved api \((\S+)\) by \+15557654321$").unwrap();
    let request = re
        .captures(&bob)
        .unwrap_or_else(|| panic!("Bob's approval runs approved-flow: {bob}"))[1]
        .to_owned();
    assert!(!request.is_empty());

    // Consumed: a second APPROVE is no longer the pending answer; approval-handler-flow finds
    // no open request of Bob's in the approval store (this test's flow made none).
    let again = ask(&app, &graph, BOB, "APPROVE").await;
    assert!(
        again.contains("No approval request is waiting for you"),
        "{again}"
    );
    assert!(graph
        .sends_to(ALICE)
        .iter()
        .all(|s| !s.text().starts_with("approved")));
}

#[actix_web::test]
async fn a_pending_on_response_comes_before_the_commands() {
    let question = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: ask-alice
triggers:
  - type: webhook
    path: "/test/ask-alice"
    method: POST
steps:
  - name: ask
    agent: whatsapp
    action: send_template
    input:
      to: "+15551234567"
      template: "ops_notification"
      parameters: ["Question", "Reply HELP to confirm"]
on_response:
  - pattern: "^HELP$"
    flow: pending-answer
    input:
      who: "{{ trigger.user.phone }}"
"#;
    let answer = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: pending-answer
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "pending answer from {{ input.who }}"
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("ask-alice.yaml", question),
        ("pending-answer.yaml", answer),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    run_webhook(&app, "/test/ask-alice", json!({})).await;
    assert_eq!(
        sent_to(&graph, ALICE, 1).await[0].text(),
        "ops_notification"
    );

    assert_eq!(
        ask(&app, &graph, ALICE, " help ").await,
        "pending answer from +15551234567"
    );
    let command = ask(&app, &graph, ALICE, "HELP").await;
    assert!(command.contains(HELP_MARK), "{command}");
}

const NOTE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: note-taker
triggers:
  - platform: whatsapp
    type: message
    pattern: "^note (.*)$"
steps:
  - name: ack-note
    agent: whatsapp
    action: reply
    input:
      text: "noted {{ match.1 }}"
"#;

const CONTEXT_ECHO: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: context-echo
triggers:
  - platform: whatsapp
    type: message
    pattern: "^CTX$"
context:
  source: conversation
  lookback: 5
steps:
  - name: show-context
    agent: whatsapp
    action: reply
    input:
      text: "count={{ context | length }} {% for m in context %}[{{ m.direction }}:{{ m.text[:7] }}]{% endfor %}"
"#;

#[actix_web::test]
async fn the_session_keeps_the_last_five_messages_both_ways_and_they_survive_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("note-taker.yaml", NOTE),
        ("context-echo.yaml", CONTEXT_ECHO),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    for note in ["a", "b", "c"] {
        assert_eq!(
            ask(&app, &graph, ALICE, &format!("note {note}")).await,
            format!("noted {note}")
        );
    }
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note b][out:noted b][in:note c][out:noted c][in:CTX]",
        "the oldest exchange fell out of the lookback"
    );

    // The answer to CTX is part of the conversation too; wait until it is stored, then crash.
    let store = store(&app.dir).await;
    let alice = WaId::parse(ALICE).unwrap();
    let saved = eventually_async(WAIT, || async {
        let conversation = store.load_conversation(alice.clone()).await.unwrap();
        conversation
            .entries
            .last()
            .filter(|e| e.direction == Direction::Out && e.text.starts_with("count=5"))
            .map(|_| conversation.entries.len())
    })
    .await;
    assert_eq!(saved, Some(5), "the stored conversation keeps 5 entries");
    all_sends_recorded(&app, &graph).await;
    app.stop();

    let app = start(&graph, dir.path(), Some(flows.path())).await;
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note c][out:noted c][in:CTX][out:count=5][in:CTX]",
        "the context came back from the store"
    );
}

#[actix_web::test]
async fn a_flow_sees_no_more_messages_than_its_own_lookback() {
    // context-echo asks for 5, so the session keeps 5; short-context asks for 2 and sees 2.
    let short = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: short-context
triggers:
  - platform: whatsapp
    type: message
    pattern: "^SHORT$"
context:
  source: conversation
  lookback: 2
steps:
  - name: show-context
    agent: whatsapp
    action: reply
    input:
      text: "count={{ context | length }} {% for m in context %}[{{ m.direction }}:{{ m.text[:7] }}]{% endfor %}"
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("note-taker.yaml", NOTE),
        ("context-echo.yaml", CONTEXT_ECHO),
        ("short-context.yaml", short),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    for note in ["a", "b"] {
        ask(&app, &graph, ALICE, &format!("note {note}")).await;
    }
    assert_eq!(
        ask(&app, &graph, ALICE, "SHORT").await,
        "count=2 [out:noted b][in:SHORT]"
    );
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note b][out:noted b][in:SHORT][out:count=2][in:CTX]",
        "the session itself still keeps 5"
    );
}

#[actix_web::test]
async fn a_message_the_rate_limiter_refused_is_not_in_the_conversation() {
    let template = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: notify-me
triggers:
  - platform: whatsapp
    type: message
    pattern: "^notify me$"
steps:
  - name: notice
    agent: whatsapp
    action: reply
    input:
      template: "ops_notification"
      parameters: ["Notice", "hello"]
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("notify-me.yaml", template),
        ("context-echo.yaml", CONTEXT_ECHO),
    ]);
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        templates_per_day: 1,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the server starts");

    assert_eq!(
        ask(&app, &graph, ALICE, "notify me").await,
        "ops_notification"
    );
    let refused = ask(&app, &graph, ALICE, "notify me").await;
    assert!(refused.contains("template quota of 1 per day"), "{refused}");
    assert_eq!(
        graph
            .sends_to(ALICE)
            .iter()
            .filter(|s| s.text() == "ops_notification")
            .count(),
        1
    );

    let context = ask(&app, &graph, ALICE, "CTX").await;
    assert_eq!(
        context.matches("[out:ℹ").count(),
        1,
        "only the template that was sent is in the context: {context}"
    );
}

#[actix_web::test]
async fn messages_from_numbers_outside_allowed_numbers_run_nothing_and_are_audited() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let id = unique_id();
    let body = text_notification(MALLORY, "Mallory", "STATUS", &id).to_string();
    assert_eq!(app.post_signed(body.as_bytes()).await, 200);
    // Alice writes after Mallory; once she is answered, Mallory's message was long dealt with.
    let alice = ask(&app, &graph, ALICE, "HELP").await;
    assert!(alice.contains(HELP_MARK));

    assert!(graph.sends_to(MALLORY).is_empty(), "Mallory got no reply");
    assert_eq!(graph.sends().len(), 1, "only Alice's message ran a flow");
    assert!(
        !graph
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/health/")),
        "Mallory's STATUS checked nothing"
    );

    let store = store(&app.dir).await;
    let audit = eventually_async(WAIT, || async {
        store
            .audit_log(100)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.kind == "rejected_number" && a.detail["id"] == json!(id))
    })
    .await
    .expect("an audit record of the rejected message");
    assert_eq!(audit.who.as_deref(), Some("+*******0000"), "masked");
    assert!(
        audit.detail.get("text").is_none(),
        "include_content: false keeps the text out: {}",
        audit.detail
    );
    let log = store.audit_log(100).await.unwrap();
    assert!(
        !log.iter()
            .any(|a| a.kind == "inbound" && a.detail["id"] == json!(id)),
        "the rejected message is not audited as accepted"
    );
}

#[actix_web::test]
async fn each_message_type_is_routed_buttons_by_payload_replies_by_id_others_get_a_hint() {
    let pattern_flow = |name: &str, pattern: &str, answer: &str| {
        format!(
            r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: {name}
triggers:
  - platform: whatsapp
    type: message
    pattern: "{pattern}"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{answer} {{{{ match.1 }}}}"
"#
        )
    };
    let button = pattern_flow("button-ack", "^ACK:(.*)$", "button payload");
    let tap = pattern_flow("approve-tap", "^approve:(.*)$", "tapped");
    let pick = pattern_flow("service-pick", "^svc:(.*)$", "picked");
    let flows = flows_dir(&[
        ("button-ack.yaml", &button),
        ("approve-tap.yaml", &tap),
        ("service-pick.yaml", &pick),
    ]);
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let cases: [(&str, ReplyCheck); 6] = [
        ("whatsapp/text.json", Box::new(|r| r.contains(HELP_MARK))),
        (
            "whatsapp/button.json",
            Box::new(|r| r == "button payload PD:Q1W2E3R4T5Y6U7"),
        ),
        (
            "whatsapp/interactive-button-reply.json",
            Box::new(|r| r == "tapped deploy-7781"),
        ),
        (
            "whatsapp/interactive-list-reply.json",
            Box::new(|r| r == "picked payments-api"),
        ),
        ("whatsapp/image.json", Box::new(|r| r == UNSUPPORTED_REPLY)),
        (
            "whatsapp/reaction.json",
            Box::new(|r| r == UNSUPPORTED_REPLY),
        ),
    ];
    for (i, (name, expected)) in cases.iter().enumerate() {
        assert_eq!(app.post_signed(&fixture(name)).await, 200, "{name}");
        let reply = sent_to(&graph, ALICE, i + 1).await[i].text().to_owned();
        assert!(expected(&reply), "{name} got: {reply}");
    }
    assert_eq!(graph.sends_to(ALICE).len(), cases.len());
}

#[actix_web::test]
async fn each_allowed_sender_of_a_batch_gets_a_reply() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    // Both senders of the fixture (15551234567, 15557654321) are in the test's allowed_numbers.
    assert_eq!(
        app.post_signed(&fixture("whatsapp/batch-two-messages.json"))
            .await,
        200
    );
    let alice = sent_to(&graph, ALICE, 1).await[0].text().to_owned();
    let bob = sent_to(&graph, BOB, 1).await[0].text().to_owned();
    assert!(
        alice.contains("❌ *payments-api*: not configured"),
        "status payments-api: {alice}"
    );
    assert!(bob.contains(HELP_MARK), "who is on call? -> default: {bob}");
    assert!(
        bob.contains("Hi Marco Silva"),
        "the batch's contact names its sender: {bob}"
    );
}

#[actix_web::test]
async fn delivery_statuses_are_recorded_against_the_sent_message_and_never_go_back() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    ask(&app, &graph, ALICE, "HELP").await;
    assert_eq!(graph.sends().len(), 1);
    // The fake numbers its answers: the first send was accepted as wamid.fake.1.
    let first = "wamid.fake.1";
    status_becomes(&app, first, DeliveryState::Accepted).await;
    let store = store(&app.dir).await;
    let outbound = store
        .outbound_message(first)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(outbound.to.as_str(), ALICE);
    assert_eq!(outbound.kind, "text");

    for (name, state) in [
        ("whatsapp/status-sent.json", DeliveryState::Sent),
        ("whatsapp/status-delivered.json", DeliveryState::Delivered),
        ("whatsapp/status-read.json", DeliveryState::Read),
    ] {
        assert_eq!(app.post_signed(&status_for(name, first)).await, 200);
        status_becomes(&app, first, state).await;
    }
    // A late `delivered` must not move `read` back.
    assert_eq!(
        app.post_signed(&status_for("whatsapp/status-delivered.json", first))
            .await,
        200
    );

    ask(&app, &graph, ALICE, "HELP").await;
    let second = "wamid.fake.2";
    status_becomes(&app, second, DeliveryState::Accepted).await;
    assert_eq!(
        app.post_signed(&status_for("whatsapp/status-failed-131047.json", second))
            .await,
        200
    );
    status_becomes(&app, second, DeliveryState::Failed).await;
    let failed = store.message_status(second).await.unwrap().unwrap();
    assert_eq!(failed.error_code, Some(131047));
    assert_eq!(failed.error_title.as_deref(), Some("Re-engagement message"));

    let read = store.message_status(first).await.unwrap().unwrap();
    assert_eq!(
        read.state,
        DeliveryState::Read,
        "read then delivered stays read"
    );
    assert_eq!(
        read.timestamp, 1718900160,
        "the read status's own timestamp"
    );
}

#[actix_web::test]
async fn a_redelivered_message_is_answered_once_even_after_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;
    let message = fixture("whatsapp/text.json");

    assert_eq!(app.post_signed(&message).await, 200);
    assert!(sent_to(&graph, ALICE, 1).await[0]
        .text()
        .contains(HELP_MARK));
    assert_eq!(
        app.post_signed(&message).await,
        200,
        "Meta gets a 200 anyway"
    );
    // A later message is answered after anything the redelivery could have caused.
    assert!(ask(&app, &graph, ALICE, "STATUS api")
        .await
        .contains("*api*"));
    assert_eq!(graph.sends_to(ALICE).len(), 2);

    // The first copy was answered, so its id was stored as seen: crash and start on the same store.
    all_sends_recorded(&app, &graph).await;
    app.stop();
    let app = start(&graph, dir.path(), None).await;
    assert_eq!(app.post_signed(&message).await, 200);
    assert!(ask(&app, &graph, ALICE, "STATUS web")
        .await
        .contains("*web*"));
    let texts: Vec<String> = graph
        .sends_to(ALICE)
        .iter()
        .map(|s| s.text().to_owned())
        .collect();
    assert_eq!(
        texts.len(),
        3,
        "no second answer to the redelivery: {texts:#?}"
    );
}
