//! AgentFlow validation at start-up and on hot reload: every load error names the file, the step and
//! the problem, all problems are reported at once, the tutorial's six flows pass every check but
//! the agents that are not built yet, and a broken edit keeps the last good flow running.

use crate::common::*;
use aof::agents::Registry;
use aof::flow::expr::Expressions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A flow with no problem; each test changes one thing in it. Its second step reads the first
/// step's output and its third sends the `ops_alert` template with its four parameters.
const PROBE: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: probe
  description: A valid flow that the tests break one way at a time
triggers:
  - platform: whatsapp
    type: message
    pattern: "^PROBE$"
steps:
  - name: list-incidents
    agent: incident-manager
    action: list
    input:
      status: "open"
      limit: 3
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{{ steps.list-incidents.output | length }} open incidents"
  - name: page-alice
    agent: whatsapp
    action: send_template
    input:
      to: "+15551234567"
      template: "ops_alert"
      parameters:
        - "CRITICAL"
        - "api"
        - "{{ trigger.text }}"
        - "{{ now() | format_time }}"
"#;

/// Replaces `from` with `to`, failing when `from` is not there, so a broken edit cannot make a
/// test pass for the wrong reason.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in:\n{text}");
    text.replacen(from, to, 1)
}

/// Writes `files` (name, YAML) into a fresh flow directory under `dir`.
fn flow_dir(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("create the flow directory");
    for (name, text) in files {
        std::fs::write(flows.join(name), text).expect("write a flow");
    }
    flows
}

/// Starts the app on these flows and returns its start-up error; fails the test if it starts.
async fn start_up_error(files: &[(&str, &str)]) -> (PathBuf, String) {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flow_dir(dir.path(), files);
    let options = Options {
        flows_dir: Some(flows.clone()),
        ..Options::default()
    };
    match TestApp::spawn_in(dir.path(), &graph, &options).await {
        Ok(_) => panic!("the app started with flows {files:?}"),
        Err(e) => (flows, e.to_string()),
    }
}

/// The error has exactly one problem line, and it is `file: location: message...`.
fn assert_single_problem(error: &str, file: &Path, location: &str, message: &str) {
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 1, "expected one problem:\n{error}");
    let prefix = format!("{}: {location}: ", file.display());
    assert!(
        lines[0].starts_with(&prefix),
        "expected `{prefix}...`:\n{error}"
    );
    assert!(
        lines[0].contains(message),
        "expected `{message}` in:\n{error}"
    );
}

#[actix_web::test]
async fn the_probe_flow_as_written_starts() {
    // The control for every refusal below.
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flow_dir(dir.path(), &[("probe-flow.yaml", PROBE)]);
    let options = Options {
        flows_dir: Some(flows),
        ..Options::default()
    };
    if let Err(e) = TestApp::spawn_in(dir.path(), &graph, &options).await {
        panic!("the probe flow is refused:\n{e}");
    }
}

#[actix_web::test]
async fn an_unknown_agent_names_the_file_the_step_and_the_known_agents() {
    let flow = edit(PROBE, "agent: incident-manager", "agent: pagerduty-ish");
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[0] `list-incidents`",
        "unknown agent `pagerduty-ish` (known: alert-manager, approval-manager,",
    );
}

#[actix_web::test]
async fn an_unknown_action_names_the_step_and_the_agents_actions() {
    let flow = edit(PROBE, "action: reply", "action: shout");
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[1] `respond`",
        "agent `whatsapp` has no action `shout` (actions: reply,",
    );
}

#[actix_web::test]
async fn a_bad_jinja_expression_names_the_step_and_the_input_key() {
    let flow = edit(
        PROBE,
        "\"{{ steps.list-incidents.output | length }} open incidents\"",
        "\"{{ steps.list-incidents.output | length }} open {% if %}\"",
    );
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[1] `respond`: input.text",
        "bad expression:",
    );
}

#[actix_web::test]
async fn an_unknown_step_id_in_an_expression_names_it_and_the_known_ones() {
    let flow = edit(
        PROBE,
        "steps.list-incidents.output | length",
        "steps.list-incident.output | length",
    );
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[1] `respond`: input.text",
        "unknown step id `list-incident` in `steps.list-incident` (steps: list-incidents, page-alice, respond)",
    );
}

#[actix_web::test]
async fn a_template_parameter_count_that_differs_from_its_placeholders_is_refused() {
    let flow = edit(PROBE, "        - \"api\"\n", "");
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[2] `page-alice`: input",
        "template `ops_alert` has 4 placeholders but 3 parameters are given",
    );
}

#[actix_web::test]
async fn an_unknown_key_in_a_step_names_the_step_and_the_key() {
    let flow = edit(
        PROBE,
        "    action: reply\n",
        "    action: reply\n    retries: 3\n",
    );
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "steps[1].retries",
        "unknown field `retries`, expected one of `name`, `agent`, `action`",
    );
}

#[actix_web::test]
async fn an_unknown_flow_in_on_response_is_refused() {
    let flow =
        format!("{PROBE}on_response:\n  - pattern: \"^APPROVE$\"\n    flow: \"no-such-flow\"\n");
    let (flows, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert_single_problem(
        &error,
        &flows.join("probe-flow.yaml"),
        "on_response[0].flow",
        "unknown flow `no-such-flow`",
    );
}

#[actix_web::test]
async fn problems_in_several_files_are_all_reported_at_once() {
    let agent_and_count = edit(
        &edit(PROBE, "agent: incident-manager", "agent: pagerduty-ish"),
        "        - \"api\"\n",
        "",
    );
    let step_id = edit(
        &edit(PROBE, "name: probe", "name: probe-two"),
        "steps.list-incidents.output",
        "steps.nowhere.output",
    );
    let on_response = format!(
        "{}on_response:\n  - pattern: \"^YES$\"\n    flow: \"no-such-flow\"\n",
        edit(PROBE, "name: probe", "name: probe-three")
    );
    let (flows, error) = start_up_error(&[
        ("a-flow.yaml", &agent_and_count),
        ("b-flow.yaml", &step_id),
        ("c-flow.yaml", &on_response),
    ])
    .await;
    let at = |file: &str, rest: &str| format!("{}: {rest}", flows.join(file).display());
    let expected = [
        at(
            "a-flow.yaml",
            "steps[0] `list-incidents`: unknown agent `pagerduty-ish`",
        ),
        at(
            "a-flow.yaml",
            "steps[2] `page-alice`: input: template `ops_alert` has 4 placeholders but 3",
        ),
        at(
            "b-flow.yaml",
            "steps[1] `respond`: input.text: unknown step id `nowhere`",
        ),
        at(
            "c-flow.yaml",
            "on_response[0].flow: unknown flow `no-such-flow`",
        ),
    ];
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{error}");
    for want in &expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want.as_str())),
            "missing `{want}` in:\n{error}"
        );
    }
}

#[actix_web::test]
async fn a_flow_with_a_bad_step_still_has_its_on_response_target_checked() {
    // Fixing the agent should not reveal a second problem on the next start.
    let flow = format!(
        "{}on_response:\n  - pattern: \"^YES$\"\n    flow: \"no-such-flow\"\n",
        edit(PROBE, "agent: incident-manager", "agent: pagerduty-ish")
    );
    let (_, error) = start_up_error(&[("probe-flow.yaml", &flow)]).await;
    assert!(error.contains("unknown agent `pagerduty-ish`"), "{error}");
    assert!(
        error.contains("on_response[0].flow: unknown flow `no-such-flow`"),
        "{error}"
    );
}

/// The tutorial's flows (sections 3.1 to 3.6) as printed, from `tests/fixtures/tutorial/flows/`,
/// as (the path the tutorial gives them, YAML).
fn tutorial_flows() -> Vec<(String, String)> {
    let dir = repo().join("tests/fixtures/tutorial/flows");
    let mut flows: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable directory").path();
            let name = path.file_name().expect("a file").to_string_lossy();
            let text = std::fs::read_to_string(&path).expect("UTF-8 YAML");
            (format!("flows/whatsapp/{name}"), text)
        })
        .collect();
    flows.sort();
    flows
}

/// The templates flows are checked against: the built-ins, as the sandbox config loads them.
fn templates() -> BTreeMap<String, aof::config::TemplateDef> {
    let text = std::fs::read_to_string(repo().join("config/sandbox.yaml")).unwrap();
    let config = aof::config::load_str("config/sandbox.yaml", &text, &|_| None)
        .unwrap_or_else(|e| panic!("config/sandbox.yaml is refused:\n{e}"));
    config.platforms.whatsapp.templates
}

#[test]
fn the_tutorials_six_flows_load_and_are_shipped_unmodified() {
    let registry = Registry::builtin();
    let expressions = Expressions::new();
    let templates = templates();
    let flows = tutorial_flows();
    assert_eq!(flows.len(), 6, "the tutorial shows six flows");
    for (path, text) in &flows {
        let loaded =
            aof::flow::load::load_one(Path::new(path), text, &registry, &expressions, &templates);
        if let Err(problems) = loaded {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("{path} does not load:\n{}", list.join("\n"));
        }
        let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .unwrap_or_else(|e| panic!("{path} is not shipped: {e}"));
        assert_eq!(&shipped, text, "{path} differs from the tutorial");
    }
}

/// Says HELP as Alice until a reply containing `want` arrives; `None` after `limit`.
async fn help_until_reply_contains(
    app: &TestApp,
    graph: &FakeGraph,
    want: &str,
    limit: Duration,
) -> Option<String> {
    eventually_async(limit, || async {
        let before = graph.sends_to(ALICE).len();
        assert_eq!(app.say(ALICE, "HELP").await, 200);
        let reply = eventually(Duration::from_secs(5), || {
            graph
                .sends_to(ALICE)
                .get(before)
                .map(|r| r.text().to_owned())
        })
        .await
        .expect("HELP is answered");
        reply.contains(want).then_some(reply)
    })
    .await
}

/// `aof_flow_reloads_total{result="..."}` from /metrics (0 before the first).
async fn reloads(app: &TestApp, result: &str) -> u64 {
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let series = format!("aof_flow_reloads_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a counter value"))
}

#[actix_web::test]
async fn an_edited_flow_is_reloaded_and_a_broken_edit_keeps_the_last_good_one() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let repo_flows = repo().join("flows/whatsapp");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&repo_flows).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((name, std::fs::read_to_string(&path).unwrap()));
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let flows = flow_dir(dir.path(), &borrowed);
    let options = Options {
        flows_dir: Some(flows.clone()),
        watch: true,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap_or_else(|e| panic!("the app does not start:\n{e}"));
    let wait = Duration::from_secs(15);
    let help = flows.join("whatsapp-help-flow.yaml");
    let original = std::fs::read_to_string(&help).unwrap();
    let last_line = "Send HELP any time to see this again.";
    assert!(
        help_until_reply_contains(&app, &graph, last_line, wait)
            .await
            .is_some(),
        "HELP does not answer with the shipped text"
    );

    let good = edit(&original, last_line, "Reloaded help, version two.");
    std::fs::write(&help, &good).unwrap();
    let reply = help_until_reply_contains(&app, &graph, "version two", wait).await;
    assert!(reply.is_some(), "the edited HELP text never arrived");
    let rejected_before = reloads(&app, "rejected").await;

    let broken = edit(
        &edit(&good, "version two", "version three"),
        "agent: whatsapp",
        "agent: no-such-agent",
    );
    std::fs::write(&help, &broken).unwrap();
    let seen = eventually_async(wait, || async {
        (reloads(&app, "rejected").await > rejected_before).then_some(())
    })
    .await;
    assert!(seen.is_some(), "the watcher never rejected the broken edit");
    let reply = help_until_reply_contains(&app, &graph, "", wait)
        .await
        .expect("HELP still answers");
    assert!(
        reply.contains("version two"),
        "HELP should answer with the last good text:\n{reply}"
    );
}
