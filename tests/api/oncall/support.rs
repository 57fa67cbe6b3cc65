//! What every on-call test shares: the constants, the on-call config section built around the
//! current time, the webhook-triggered test flows, and the running `World` (server and fake Graph
//! API) with ways to fire a flow and read what was sent.

use crate::common::*;
use chrono::{Duration as Hours, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
/// The fallback number.
pub const FALLBACK: &str = "15550009999";
pub const PD_TOKEN: &str = "pd-test-token-0123";
pub const PD_FROM: &str = "oncall-bot@acme.example";

/// A shift of `HH:MM-HH:MM` in `zone` from `from` hours to `to` hours around now.
pub fn shift_around_now(zone: Tz, from: i64, to: i64) -> String {
    let now = Utc::now().with_timezone(&zone);
    let at = |h: i64| (now + Hours::hours(h)).format("%H:%M").to_string();
    format!("{}-{}", at(from), at(to))
}

/// On now, in UTC.
pub fn on_now() -> String {
    shift_around_now(chrono_tz::UTC, -1, 1)
}

/// Off now (starts in 2 h).
pub fn off_now() -> String {
    shift_around_now(chrono_tz::UTC, 2, 3)
}

/// The on-call section: `rota` and `extra` keys (6-space indented lines), the people directory.
pub struct OnCallSetup {
    pub rota: Vec<(&'static str, String, String, &'static str)>,
    pub pagerduty: Option<String>,
    pub fallback: bool,
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
pub struct World {
    app: TestApp,
    pub graph: FakeGraph,
    _dir: tempfile::TempDir,
    _flows: tempfile::TempDir,
}

pub async fn start(setup: OnCallSetup) -> World {
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
    pub async fn fire(&self, path: &str, body: Value) -> aof::store::RunRecord {
        let (status, answer) = self.app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
        assert_eq!(status, 202, "{path}: {answer}");
        let run_id = answer["run_id"].as_str().expect("a run id");
        self.app.finished_run(run_id).await
    }

    /// Pages the on-call engineer about `service` through the test flow; the run completed.
    pub async fn page(&self, service: &str) {
        let run = self
            .fire("/test/page-oncall", json!({ "service": service }))
            .await;
        completed(&run);
    }

    /// The texts sent to `who` so far.
    pub fn texts_to(&self, who: &str) -> Vec<String> {
        self.graph
            .sends_to(who)
            .iter()
            .map(|s| s.text().to_owned())
            .collect()
    }

    /// Every text sent, as (to, text).
    pub fn all_texts(&self) -> Vec<(String, String)> {
        self.graph
            .sends()
            .iter()
            .map(|s| (s.to().to_owned(), s.text().to_owned()))
            .collect()
    }

    /// Waits until `who` has `n` texts; all of them.
    pub async fn sent_to(&self, who: &str, n: usize) -> Vec<String> {
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

pub fn completed(run: &aof::store::RunRecord) {
    assert_eq!(
        run.outcome.as_deref(),
        Some("completed"),
        "steps: {:#}",
        run.steps.clone().unwrap_or_default()
    );
}
