//! The sandbox chat page's server side, on the shipped `config/sandbox.yaml`: the page and its
//! assets, who is in the config, the scenarios, and the live event stream that the page follows
//! (messages in and out, runs and steps, delivery ticks), over real HTTP.

use crate::common::sandbox::{restart_sandbox, start_sandbox, start_sandbox_with, waited, Events};
use crate::common::{temp, FakeGraph, Options, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const ALICE: &str = "+15551234567";
const TOKEN: &str = "sandbox-token";
const WAIT: Duration = Duration::from_secs(10);

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["type"] == kind
}

#[actix_web::test]
async fn the_root_leads_to_the_page_and_its_assets_are_served_from_the_binary() {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(res.headers().get("location").unwrap(), "/webhooks/sandbox/");

    let (status, html) = app.get("/sandbox/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("app.js") && html.contains("app.css"),
        "{html}"
    );
    for asset in ["/sandbox/app.js", "/sandbox/panel.js", "/sandbox/app.css"] {
        let (status, body) = app.get(asset).await;
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 500, "{asset} is the real asset: {body}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
}

#[actix_web::test]
async fn setup_lists_the_people_groups_and_scenarios_of_the_config() {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    let (status, body) = app.get("/sandbox/setup").await;
    assert_eq!(status, 200);
    let setup: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(setup["token"], TOKEN);
    let people = setup["people"].as_array().expect("people");
    let person = |phone: &str| {
        people
            .iter()
            .find(|p| p["phone"] == phone)
            .unwrap_or_else(|| panic!("{phone} in {people:?}"))
    };
    assert_eq!(person(ALICE)["name"], "Alice");
    let roles = |phone: &str| person(phone)["roles"].to_string();
    assert!(
        roles(ALICE).contains("on call 09:00-18:00 America/New_York"),
        "{}",
        roles(ALICE)
    );
    assert!(
        roles("+15550001234").contains("approves production"),
        "{}",
        roles("+15550001234")
    );
    assert!(roles("+15557654321").contains("sre-team"));
    assert_eq!(people.len(), 3, "each person once: {people:?}");
    assert_eq!(setup["groups"][0]["name"], "sre-team");
    assert_eq!(setup["groups"][0]["members"].as_array().unwrap().len(), 3);
    let ids: Vec<&str> = setup["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["critical-alert", "alertmanager", "deploy-approval"]);
}

#[actix_web::test]
async fn a_typed_message_its_run_and_the_answer_stream_live_and_ticks_follow_reports() {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    let mut events = Events::open(&app).await;

    let (status, answer) = app
        .post_json(
            "/webhooks/sandbox/inbound",
            &json!({ "from": ALICE, "name": "Alice", "text": "HELP" }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let inbound = events.until(WAIT, is("inbound")).await;
    assert_eq!(
        (inbound["from"].as_str(), inbound["text"].as_str()),
        (Some(ALICE), Some("HELP"))
    );
    assert_eq!(inbound["id"], answer["id"]);

    let started = events.until(WAIT, is("run_started")).await;
    assert_eq!(started["flow"], "whatsapp-help-flow");
    assert_eq!(started["from"], ALICE);
    let run = started["run_id"].clone();
    let step = events
        .until(WAIT, |e| e["type"] == "step" && e["run_id"] == run)
        .await;
    assert_eq!(step["outcome"], "ok", "{step}");
    assert!(step["input"].is_object(), "the rendered input: {step}");
    let reply = events
        .until(WAIT, |e| e["type"] == "outbound" && e["to"] == ALICE)
        .await;
    assert!(
        reply["text"].as_str().unwrap().contains("ACK"),
        "the help: {reply}"
    );
    let finished = events
        .until(WAIT, |e| e["type"] == "run_finished" && e["run_id"] == run)
        .await;
    assert_eq!(finished["outcome"], "completed");

    let wamid = reply["wamid"].as_str().unwrap();
    for tick in ["delivered", "read"] {
        let (status, body) = app
            .post_json(
                "/webhooks/sandbox/status",
                &json!({ "wamid": wamid, "status": tick }),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let seen = events
            .until(WAIT, |e| {
                e["type"] == "status" && e["wamid"] == wamid && e["status"] == tick
            })
            .await;
        assert_eq!(seen["status"], tick);
    }
    let (status, body) = app
        .post_json(
            "/webhooks/sandbox/status",
            &json!({ "wamid": "wamid.nope", "status": "read" }),
            None,
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("wamid")));

    // A page opened later (or reloaded) is shown what happened first.
    let mut late = Events::open(&app).await;
    late.until(WAIT, |e| e["type"] == "outbound" && e["wamid"] == wamid)
        .await;
    late.until(WAIT, |e| e["type"] == "status" && e["status"] == "read")
        .await;
}

#[actix_web::test]
async fn the_alert_scenario_pages_with_the_template_and_its_escalation_timer_shows_in_the_state() {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    let mut events = Events::open(&app).await;
    let (_, body) = app.get("/sandbox/setup").await;
    let setup: Value = serde_json::from_str(&body).unwrap();
    let scenario = setup["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "critical-alert")
        .unwrap()
        .clone();

    let (status, answer) = app
        .post_json(
            scenario["path"].as_str().unwrap(),
            &scenario["body"],
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let page = events
        .until(WAIT, |e| {
            e["type"] == "outbound" && e["template"] == "ops_alert"
        })
        .await;
    let text = page["text"].as_str().unwrap();
    assert!(
        text.contains("CRITICAL Alert") && text.contains("Service: api-server"),
        "rendered body: {text}"
    );
    let buttons: Vec<&str> = page["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert_eq!(
        buttons,
        ["ACK", "ESC", "INFO"],
        "the template's quick replies"
    );

    let (status, body) = app.get("/sandbox/state").await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).unwrap();
    assert!(state["queue"]["queued"].is_u64(), "{state}");
    let timers = state["timers"].as_array().expect("timers");
    assert!(
        timers.iter().any(|t| t["flow"] == "auto-escalate-flow"),
        "the 300 s escalation is pending: {state}"
    );

    // Tapping the template's ACK arrives as Meta's `button` message and is routed like typed ACK.
    let (status, body) = app
        .post_json(
            "/webhooks/sandbox/inbound",
            &json!({ "from": page["to"], "button_id": "ACK", "button_title": "ACK",
                "reply_to": page["wamid"] }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let acked = events
        .until(WAIT, |e| {
            e["type"] == "run_finished" && e["flow"] == "acknowledge-alert-flow"
        })
        .await;
    assert_eq!(acked["outcome"], "completed", "{acked}");
    let told = events
        .until(WAIT, |e| {
            e["type"] == "outbound"
                && e["to"] == "+15550001234"
                && e["text"].as_str().unwrap_or("").contains("acknowledged by")
        })
        .await;
    assert!(
        told["text"].as_str().unwrap().contains("High latency"),
        "the team is told which alert: {told}"
    );
    assert_eq!(
        told["group"], "sre-team",
        "one copy of a group message: {told}"
    );

    let (status, body) = app
        .post_json(
            "/webhooks/sandbox/inbound",
            &json!({ "from": page["to"], "button_id": "ACK", "reply_to": "wamid.unknown" }),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("reply_to")),
        "{body}"
    );
}

#[actix_web::test]
async fn without_the_sandbox_transport_there_is_no_page_and_no_stream() {
    let dir = temp();
    let graph = FakeGraph::start();
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    for path in [
        "/sandbox/",
        "/sandbox/setup",
        "/sandbox/events",
        "/sandbox/state",
    ] {
        assert_eq!(app.get(path).await.0, 404, "{path}");
    }
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

#[actix_web::test]
async fn after_a_restart_the_page_shows_what_it_showed_and_its_buttons_still_work() {
    const CAROL: &str = "+15550001234";
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    let deploy = json!({ "service": "api", "version": "v2.1.0", "environment": "production",
                         "requester": "alice@example.com" });
    let asked = waited(&app, "/deploy/request-approval", deploy, Some(TOKEN)).await;
    let request = asked["sent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["to"] == CAROL && m["template"] == "deployment_approval")
        .cloned()
        .expect("Carol is asked");
    let help = json!({ "from": ALICE, "text": "HELP" });
    waited(&app, "/sandbox/inbound", help, None).await;
    app.stop();

    let app = restart_sandbox(dir.path()).await;
    let mut events = Events::open(&app).await;
    let hello = events.until(WAIT, is("hello")).await;
    let shown = events
        .until(WAIT, |e| {
            e["type"] == "outbound" && e["wamid"] == request["wamid"]
        })
        .await;
    assert_eq!(shown["template"], "deployment_approval");
    events
        .until(WAIT, |e| {
            e["type"] == "inbound" && e["from"] == ALICE && e["text"] == "HELP"
        })
        .await;
    events
        .until(WAIT, |e| {
            e["type"] == "run_finished" && e["flow"] == "whatsapp-help-flow"
        })
        .await;
    let last = hello["last_seq"].as_u64().expect("a number");
    assert!(last > 0);

    // Carol answers the request shown before the restart with its button.
    let tap = json!({ "from": CAROL, "button_id": "APPROVE", "button_title": "APPROVE",
                      "reply_to": request["wamid"] });
    let answered = waited(&app, "/sandbox/inbound", tap, None).await;
    let sent = answered["sent"].as_array().unwrap();
    assert!(
        sent.iter().any(|m| m["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Deployment approved")),
        "{answered}"
    );
    // New messages are numbered after the old ones: no wamid names two messages.
    let before: Vec<&Value> = events
        .seen
        .iter()
        .filter(|e| e["type"] == "outbound")
        .collect();
    for new in sent {
        assert!(
            before.iter().all(|old| old["wamid"] != new["wamid"]),
            "{} was already used",
            new["wamid"]
        );
    }

    // A page reconnecting after the last event it saw is sent only what came later.
    let mut again = Events::open_after(&app, Some(last)).await;
    waited(
        &app,
        "/sandbox/inbound",
        json!({ "from": ALICE, "text": "STATUS" }),
        None,
    )
    .await;
    again
        .until(WAIT, |e| e["type"] == "inbound" && e["text"] == "STATUS")
        .await;
    for event in again.seen.iter().filter(|e| e["type"] != "hello") {
        assert!(event["seq"].as_u64().unwrap() > last, "sent again: {event}");
    }
}

#[actix_web::test]
async fn covers_and_silences_set_from_the_chat_show_in_the_side_panels_state() {
    let dir = temp();
    let app = start_sandbox_with(dir.path(), |yaml| {
        yaml.replace(
            "      team_group: \"sre-team\"\n",
            "      team_group: \"sre-team\"\n      silencers: [\"Alice\"]\n",
        )
    })
    .await;
    let (_, body) = app.get("/sandbox/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            state["covers"].as_array().map(Vec::len),
            state["silences"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{state}"
    );
    for text in ["COVER 1h", "SILENCE search 30m"] {
        waited(
            &app,
            "/sandbox/inbound",
            json!({ "from": ALICE, "text": text }),
            None,
        )
        .await;
    }
    let (_, body) = app.get("/sandbox/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["covers"][0]["name"], "Alice", "{state}");
    assert_eq!(state["silences"][0]["service"], "search", "{state}");
}
