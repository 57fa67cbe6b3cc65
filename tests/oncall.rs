//! On-call through the real server: webhook-triggered test flows call `oncall-manager` and
//! `pagerduty` and send what they answered with `send_text`, against the fake Graph API and a fake
//! PagerDuty REST API that records method, path, query, headers and body.
//!
//! Rotas are built around the current time, so the tests do not depend on the clock: whoever's shift
//! spans now ± 1 h is on, whoever's starts in 2 h is off.

mod common;

use chrono::{Duration as Hours, Utc};
use chrono_tz::Tz;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
/// Carol: in the people directory, not in allowed_numbers (outbound pages need no allow-listing).
const CAROL: &str = "15550001234";
/// The fallback number.
const FALLBACK: &str = "15550009999";
const PD_TOKEN: &str = "pd-test-token-0123";
const PD_FROM: &str = "oncall-bot@acme.example";

// ---------------------------------------------------------------------------------------------
// A fake PagerDuty.

/// One request the fake PagerDuty received.
#[derive(Debug, Clone)]
struct PdRequest {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl PdRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

type PdScript = Box<dyn FnMut(&PdRequest) -> (u16, Value) + Send>;

/// A fake of PagerDuty's REST API on a random port.
struct FakePagerDuty {
    address: String,
    requests: Arc<Mutex<Vec<PdRequest>>>,
    script: Arc<Mutex<PdScript>>,
    system: actix_web::rt::System,
}

#[derive(Clone)]
struct PdShared {
    requests: Arc<Mutex<Vec<PdRequest>>>,
    script: Arc<Mutex<PdScript>>,
}

async fn pd_handle(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    shared: actix_web::web::Data<PdShared>,
) -> actix_web::HttpResponse {
    let recorded = PdRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (status, answer) = (shared.script.lock().unwrap())(&recorded);
    shared.requests.lock().unwrap().push(recorded);
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(answer)
}

impl FakePagerDuty {
    /// Starts the fake; until scripted, every request is answered 500.
    fn start() -> FakePagerDuty {
        let shared = PdShared {
            requests: Arc::default(),
            script: Arc::new(Mutex::new(Box::new(|_: &PdRequest| {
                (500, json!({ "error": { "message": "not scripted" } }))
            }))),
        };
        let (tx, rx) = mpsc::channel();
        let data = shared.clone();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let data = actix_web::web::Data::new(data);
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .default_service(actix_web::web::to(pd_handle))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind the fake PagerDuty");
                let port = server.addrs()[0].port();
                tx.send((port, actix_web::rt::System::current())).unwrap();
                let _ = server.run().await;
            });
        });
        let (port, system) = rx.recv().expect("the fake PagerDuty starts");
        FakePagerDuty {
            address: format!("http://127.0.0.1:{port}"),
            requests: shared.requests,
            script: shared.script,
            system,
        }
    }

    fn script(&self, script: impl FnMut(&PdRequest) -> (u16, Value) + Send + 'static) {
        *self.script.lock().unwrap() = Box::new(script);
    }

    fn requests(&self) -> Vec<PdRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// The shared fixture's on-calls (Priya level 1, Marco level 2, Dana level 3), with Marco's user
/// object carrying an email, as `include[]=users` makes PagerDuty send.
fn oncalls_fixture() -> Value {
    let mut body: Value =
        serde_json::from_slice(&fixture("pagerduty/oncalls-response.json")).expect("JSON fixture");
    body["oncalls"][1]["user"]["email"] = json!("marco@acme.example");
    body
}

/// Answers `GET /oncalls` with the fixture and incident writes with the incident in the new state.
fn pagerduty_that_works(pd: &FakePagerDuty) {
    pd.script(|req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/oncalls") => (200, oncalls_fixture()),
        ("PUT", path) if path.starts_with("/incidents/") => {
            let id = path.trim_start_matches("/incidents/");
            let change = &req.body["incident"];
            let status = change["status"].as_str().unwrap_or("triggered");
            (
                200,
                json!({ "incident": { "id": id, "type": "incident", "status": status,
                    "escalation_policy": { "id": "PESC4B8" } } }),
            )
        }
        _ => (
            404,
            json!({ "error": { "message": "Not Found", "code": 2100 } }),
        ),
    });
}

// ---------------------------------------------------------------------------------------------
// Config, flows and the server.

/// A shift of `HH:MM-HH:MM` in `zone` from `from` hours to `to` hours around now.
fn shift_around_now(zone: Tz, from: i64, to: i64) -> String {
    let now = Utc::now().with_timezone(&zone);
    let at = |h: i64| (now + Hours::hours(h)).format("%H:%M").to_string();
    format!("{}-{}", at(from), at(to))
}

/// On now, in UTC.
fn on_now() -> String {
    shift_around_now(chrono_tz::UTC, -1, 1)
}

/// Off now (starts in 2 h).
fn off_now() -> String {
    shift_around_now(chrono_tz::UTC, 2, 3)
}

/// The on-call section: `rota` and `extra` keys (6-space indented lines), the people directory.
struct OnCallSetup {
    rota: Vec<(&'static str, String, String, &'static str)>,
    pagerduty: Option<String>,
    fallback: bool,
}

impl OnCallSetup {
    fn yaml(&self) -> String {
        let mut text = String::from("    oncall:\n      team_group: \"sre-team\"\n");
        if let Some(url) = &self.pagerduty {
            text.push_str(&format!(
                "      pagerduty_token: \"{PD_TOKEN}\"\n      schedule_id: \"PSCHED1\"\n      pagerduty_api_url: \"{url}\"\n      pagerduty_from: \"{PD_FROM}\"\n"
            ));
        }
        if self.fallback {
            text.push_str(&format!("      fallback_number: \"+{FALLBACK}\"\n"));
        }
        text.push_str("      static_oncall:\n");
        if self.rota.is_empty() {
            text.push_str("        []\n");
        }
        for (name, phone, hours, zone) in &self.rota {
            text.push_str(&format!(
                "        - {{ name: \"{name}\", phone: \"+{phone}\", hours: \"{hours}\", timezone: \"{zone}\" }}\n"
            ));
        }
        text.push_str(&format!(
            r#"    people:
      - {{ name: "Priya Raman", phone: "+{BOB}" }}
      - {{ name: "Marco", email: "marco@acme.example", phone: "+{CAROL}" }}
"#
        ));
        text
    }
}

/// Test flows, webhook-triggered, each sending what the agents answered.
const FLOWS: &[(&str, &str)] = &[
    (
        "test-page.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-page
triggers:
  - type: webhook
    path: "/test/page-oncall"
    method: POST
input:
  required: [service]
  schema:
    service: { type: string }
steps:
  - name: get-oncall
    agent: oncall-manager
    action: get_current
    input:
      schedule_id: "{{ config.oncall.schedule_id }}"
  - name: page
    agent: whatsapp
    action: send_text
    input:
      to: "{{ steps.get-oncall.output.phone }}"
      text: "PAGE {{ input.service }} to {{ steps.get-oncall.output.name }} level={{ steps.get-oncall.output.level }} source={{ steps.get-oncall.output.source }} on_call={{ steps.get-oncall.output.on_call | map('name') | join(',') }}"
"#,
    ),
    (
        "test-escalate.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-escalate
triggers:
  - type: webhook
    path: "/test/escalate"
    method: POST
input:
  required: [current_user]
  schema:
    current_user: { type: string }
    incident_id: { type: string, default: "" }
steps:
  - name: next
    agent: oncall-manager
    action: get_next_oncall
    input:
      current_user: "{{ input.current_user }}"
      schedule_id: "{{ config.oncall.schedule_id }}"
  - name: escalate-pagerduty
    agent: pagerduty
    action: escalate
    input:
      incident_id: "{{ input.incident_id }}"
      escalation_level: "{{ steps.next.output.level | string }}"
  - name: notify
    agent: whatsapp
    action: send_text
    input:
      to: "{{ steps.next.output.phone }}"
      text: "ESCALATED to {{ steps.next.output.name }} level={{ steps.next.output.level }} source={{ steps.next.output.source }} pagerduty={{ steps.escalate-pagerduty.output.status or steps.escalate-pagerduty.output.reason }}"
"#,
    ),
    (
        "test-pd-ack.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-pd-ack
triggers:
  - type: webhook
    path: "/test/pd-ack"
    method: POST
input:
  required: [incident_id]
  schema:
    incident_id: { type: string }
steps:
  - name: ack
    agent: pagerduty
    action: acknowledge
    input:
      incident_id: "{{ input.incident_id }}"
  - name: tell
    agent: whatsapp
    action: send_text
    input:
      to: "+15551234567"
      text: "ACK {{ steps.ack.output.incident_id }} status={{ steps.ack.output.status }} skipped={{ steps.ack.output.skipped }}"
"#,
    ),
];

/// A flows directory with the harness's routing targets and the test flows.
fn flows_dir() -> tempfile::TempDir {
    let dir = temp();
    for name in ["whatsapp-help-flow.yaml", "status-check-flow.yaml"] {
        std::fs::copy(
            repo().join("flows/whatsapp").join(name),
            dir.path().join(name),
        )
        .expect("copy a routing target");
    }
    for (name, yaml) in FLOWS {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// The harness's config with its `oncall:` section replaced by `setup`'s.
fn config_with(graph: &FakeGraph, dir: &Path, flows: &Path, setup: &OnCallSetup) -> String {
    let options = Options {
        flows_dir: Some(flows.to_owned()),
        ..Options::default()
    };
    let base = config_yaml(&graph.address, dir, &options);
    let harness = "    oncall:\n      team_group: \"sre-team\"\n";
    assert_eq!(
        base.matches(harness).count(),
        1,
        "the harness's oncall section: {base}"
    );
    base.replace(harness, &setup.yaml())
}

/// The running pieces of one test.
struct World {
    app: TestApp,
    graph: FakeGraph,
    _dir: tempfile::TempDir,
    _flows: tempfile::TempDir,
}

async fn start(setup: OnCallSetup) -> World {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, config_with(&graph, dir.path(), flows.path(), &setup)).unwrap();
    let config = aof::config::load(&file).unwrap_or_else(|e| panic!("the test config loads: {e}"));
    let app = TestApp::start(dir.path(), config)
        .await
        .expect("the server starts");
    World {
        app,
        graph,
        _dir: dir,
        _flows: flows,
    }
}

impl World {
    /// Fires a test flow's webhook; its run, once finished.
    async fn fire(&self, path: &str, body: Value) -> aof::store::RunRecord {
        let (status, answer) = self.app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
        assert_eq!(status, 202, "{path}: {answer}");
        let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
        let store = store(&self.app.dir).await;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(run) = store.run(&run_id).await.unwrap() {
                if run.outcome.is_some() {
                    return run;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {run_id} did not finish"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The texts sent to `who` so far.
    fn texts_to(&self, who: &str) -> Vec<String> {
        self.graph
            .sends_to(who)
            .iter()
            .map(|s| s.text().to_owned())
            .collect()
    }

    /// Every text sent, as (to, text).
    fn all_texts(&self) -> Vec<(String, String)> {
        self.graph
            .sends()
            .iter()
            .map(|s| (s.to().to_owned(), s.text().to_owned()))
            .collect()
    }

    /// Waits until `who` has `n` texts; all of them.
    async fn sent_to(&self, who: &str, n: usize) -> Vec<String> {
        eventually(WAIT, || Some(self.texts_to(who)).filter(|t| t.len() >= n))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{who} was not sent {n} texts; everything sent: {:?}",
                    self.all_texts()
                )
            })
    }
}

fn completed(run: &aof::store::RunRecord) {
    assert_eq!(
        run.outcome.as_deref(),
        Some("completed"),
        "steps: {:#}",
        run.steps.clone().unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------------
// The static rota.

#[actix_web::test]
async fn the_person_on_shift_now_is_paged_from_the_static_rota() {
    let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
    let world = start(OnCallSetup {
        rota: vec![
            ("Bob", BOB.into(), off_now(), "UTC"),
            ("Alice", ALICE.into(), on_now(), "UTC"),
            // On now in Kolkata time, which is not UTC's: the zone is honoured.
            (
                "Carol",
                CAROL.into(),
                shift_around_now(kolkata, -1, 1),
                "Asia/Kolkata",
            ),
        ],
        pagerduty: None,
        fallback: true,
    })
    .await;

    let run = world
        .fire("/test/page-oncall", json!({ "service": "api" }))
        .await;
    completed(&run);
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=2 source=static on_call=Alice,Carol"]
    );
    assert!(world.texts_to(BOB).is_empty(), "{:?}", world.all_texts());
    assert!(world.texts_to(CAROL).is_empty(), "{:?}", world.all_texts());
}

/// A whole-hour zone whose local time is now in the hour after midnight (`Etc/GMT-N` is UTC+N).
fn zone_just_past_midnight() -> String {
    use chrono::Timelike;
    let h = Utc::now().hour() as i32;
    let offset = if h <= 12 { -h } else { 24 - h };
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

#[actix_web::test]
async fn a_night_shift_across_midnight_is_on_just_after_midnight() {
    let zone: &'static str = Box::leak(zone_just_past_midnight().into_boxed_str());
    let world = start(OnCallSetup {
        rota: vec![
            ("Bob", BOB.into(), "02:00-22:00".into(), zone),
            ("Alice", ALICE.into(), "22:00-02:00".into(), zone),
        ],
        pagerduty: None,
        fallback: false,
    })
    .await;
    completed(
        &world
            .fire("/test/page-oncall", json!({ "service": "db" }))
            .await,
    );
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE db to Alice level=2 source=static on_call=Alice"],
        "in {zone}"
    );
}

#[actix_web::test]
async fn nobody_on_shift_pages_the_fallback_number() {
    let world = start(OnCallSetup {
        rota: vec![("Alice", ALICE.into(), off_now(), "UTC")],
        pagerduty: None,
        fallback: true,
    })
    .await;
    completed(
        &world
            .fire("/test/page-oncall", json!({ "service": "api" }))
            .await,
    );
    assert_eq!(
        world.sent_to(FALLBACK, 1).await,
        ["PAGE api to fallback level=None source=fallback on_call="]
    );
    assert!(world.texts_to(ALICE).is_empty());
}

#[actix_web::test]
async fn nobody_on_shift_and_no_fallback_fails_the_run_saying_what_to_set() {
    let world = start(OnCallSetup {
        rota: vec![("Alice", ALICE.into(), off_now(), "UTC")],
        pagerduty: None,
        fallback: false,
    })
    .await;
    let run = world
        .fire("/test/page-oncall", json!({ "service": "api" }))
        .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps' record");
    assert_eq!(steps[0]["step"], "get-oncall");
    assert_eq!(
        steps[0]["error"],
        "nobody is on call and platforms.whatsapp.oncall.fallback_number is not set"
    );
    assert!(world.graph.sends().is_empty());
}

#[actix_web::test]
async fn escalation_without_pagerduty_goes_to_the_next_person_on_shift_and_skips_the_pagerduty_step(
) {
    let world = start(OnCallSetup {
        rota: vec![
            ("Alice", ALICE.into(), on_now(), "UTC"),
            ("Bob", BOB.into(), off_now(), "UTC"),
            ("Carol", CAROL.into(), on_now(), "UTC"),
        ],
        pagerduty: None,
        fallback: true,
    })
    .await;
    let run = world
        .fire(
            "/test/escalate",
            json!({ "current_user": "+1 555 123 4567", "incident_id": "PINC1" }),
        )
        .await;
    completed(&run);
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Carol level=3 source=static pagerduty=platforms.whatsapp.oncall.pagerduty_token is not set"],
        "Bob is next in the list but off shift"
    );
    let steps = run.steps.unwrap();
    assert_eq!(steps[1]["step"], "escalate-pagerduty");
    assert_eq!(steps[1]["outcome"], "ok");
}

// ---------------------------------------------------------------------------------------------
// PagerDuty.

fn rota_with_alice_on() -> Vec<(&'static str, String, String, &'static str)> {
    vec![("Alice", ALICE.into(), on_now(), "UTC")]
}

#[actix_web::test]
async fn pagerduty_on_calls_are_paged_when_configured_and_mapped_to_people() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    completed(
        &world
            .fire("/test/page-oncall", json!({ "service": "payments" }))
            .await,
    );
    // Priya (level 1) by name, Marco (level 2) by email; Dana has no number and is left out.
    assert_eq!(
        world.sent_to(BOB, 1).await,
        ["PAGE payments to Priya Raman level=1 source=pagerduty on_call=Priya Raman,Marco"]
    );
    assert!(
        world.texts_to(ALICE).is_empty(),
        "the static rota is not used"
    );

    let requests = pd.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let lookup = &requests[0];
    assert_eq!(
        (lookup.method.as_str(), lookup.path.as_str()),
        ("GET", "/oncalls")
    );
    let query: Vec<(String, String)> = lookup
        .query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.replace("%5B", "[").replace("%5D", "]"), v.to_owned())
        })
        .collect();
    assert!(
        query.contains(&("schedule_ids[]".into(), "PSCHED1".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("earliest".into(), "true".into())),
        "{query:?}"
    );
    assert_eq!(
        lookup.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(
        lookup.header("accept"),
        Some("application/vnd.pagerduty+json;version=2")
    );
}

#[actix_web::test]
async fn pagerduty_down_falls_back_to_the_static_rota_after_two_retries() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            503,
            json!({ "error": { "message": "Service Unavailable", "code": 5000 } }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    completed(
        &world
            .fire("/test/page-oncall", json!({ "service": "api" }))
            .await,
    );
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=1 source=static on_call=Alice"]
    );
    let lookups: Vec<String> = pd.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        lookups,
        ["/oncalls", "/oncalls", "/oncalls"],
        "a try and two retries"
    );
}

#[actix_web::test]
async fn pagerduty_naming_nobody_known_falls_back_to_the_static_rota() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            200,
            json!({ "oncalls": [{ "user": { "id": "PX", "summary": "Stranger Danger" },
                "escalation_level": 1, "start": null, "end": null }], "more": false }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;
    completed(
        &world
            .fire("/test/page-oncall", json!({ "service": "api" }))
            .await,
    );
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=1 source=static on_call=Alice"]
    );
    assert_eq!(pd.requests().len(), 1, "a 200 is not retried");
}

#[actix_web::test]
async fn escalation_goes_to_the_next_pagerduty_level_and_escalates_the_incident() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    // Priya (Bob's number here) is level 1; the next level is Marco, Carol's number.
    let run = world
        .fire(
            "/test/escalate",
            json!({ "current_user": format!("+{BOB}"), "incident_id": "PINC42" }),
        )
        .await;
    completed(&run);
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Marco level=2 source=pagerduty pagerduty=triggered"]
    );

    let writes: Vec<PdRequest> = pd
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    let put = &writes[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/incidents/PINC42")
    );
    assert_eq!(
        put.body,
        json!({ "incident": { "type": "incident_reference", "escalation_level": 2 } })
    );
    assert_eq!(
        put.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(put.header("from"), Some(PD_FROM));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(
        put.header("accept"),
        Some("application/vnd.pagerduty+json;version=2")
    );
}

#[actix_web::test]
async fn pagerduty_acknowledge_sends_the_put_with_token_from_and_body() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    completed(
        &world
            .fire("/test/pd-ack", json!({ "incident_id": "PT4KHLK" }))
            .await,
    );
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["ACK PT4KHLK status=acknowledged skipped="]
    );
    let requests = pd.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let put = &requests[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/incidents/PT4KHLK")
    );
    assert_eq!(
        put.body,
        json!({ "incident": { "type": "incident_reference", "status": "acknowledged" } })
    );
    assert_eq!(
        put.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(put.header("from"), Some(PD_FROM));
    assert_eq!(put.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn a_pagerduty_refusal_fails_the_step_with_pagerdutys_message_and_no_token() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            404,
            json!({ "error": { "message": "Incident Not Found", "code": 2100, "errors": ["No incident PNOPE"] } }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    let run = world
        .fire("/test/pd-ack", json!({ "incident_id": "PNOPE" }))
        .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps' record");
    let error = steps[0]["error"].as_str().expect("an error text");
    assert_eq!(
        error,
        "PagerDuty answered 404 to PUT /incidents/PNOPE: Incident Not Found (code 2100): No incident PNOPE"
    );
    assert!(!error.contains(PD_TOKEN));
    assert_eq!(pd.requests().len(), 1, "a 404 is final");
    assert!(world.graph.sends().is_empty());
}

#[actix_web::test]
async fn without_a_token_pagerduty_steps_are_skipped_and_the_flow_completes() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: None,
        fallback: true,
    })
    .await;

    let run = world
        .fire("/test/pd-ack", json!({ "incident_id": "PT4KHLK" }))
        .await;
    completed(&run);
    assert_eq!(world.sent_to(ALICE, 1).await, ["ACK  status= skipped=True"]);
    let steps = run.steps.unwrap();
    assert_eq!(steps[0]["step"], "ack");
    assert_eq!(steps[0]["outcome"], "ok");
    assert!(pd.requests().is_empty());
}

#[actix_web::test]
async fn without_an_incident_id_the_pagerduty_step_is_skipped() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;
    completed(
        &world
            .fire(
                "/test/escalate",
                json!({ "current_user": format!("+{BOB}") }),
            )
            .await,
    );
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Marco level=2 source=pagerduty pagerduty=no incident_id: the alert is not a PagerDuty incident"]
    );
    assert!(pd.requests().iter().all(|r| r.method == "GET"));
}
