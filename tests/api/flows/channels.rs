//! Channels a flow reaches besides a reply: `on_error.fallback` through the notifier (Slack), and
//! an interactive message with reply buttons whose tap comes back as a routed message.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

const FALLBACK: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: fallback-probe
triggers:
  - platform: whatsapp
    type: message
    pattern: "^probe$"
steps:
  - name: must-pass
    agent: validator
    action: check
    input:
      condition: "false"
    on_error:
      fallback:
        - channel: slack
          user: "{{ trigger.user.name }}"
      response:
        text: "probe failed, Slack told"
"#;

const BUTTONS: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: buttons-probe
triggers:
  - platform: whatsapp
    type: message
    pattern: "^choose$"
steps:
  - name: ask
    agent: whatsapp
    action: send_interactive
    input:
      text: "Take the alert?"
      buttons:
        - { id: "take-it", title: "Take it" }
        - "Pass"
"#;

const TAPPED: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: tapped-probe
triggers:
  - platform: whatsapp
    type: message
    pattern: "^take-it$"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "you took it"
"#;

fn flows(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = temp();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[actix_web::test]
async fn on_error_fallback_tells_the_person_on_slack_through_the_notifier() {
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows(&[("probe.yaml", FALLBACK)]),
    );
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        whatsapp_extra: format!(
            "    people:\n      - {{ name: \"Alice\", phone: \"+15551234567\", slack_webhook: \"{}/slack/alice\" }}\n",
            graph.address
        ),
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap();
    app.say(ALICE, "probe").await;
    let slack = eventually(Duration::from_secs(10), || {
        graph
            .requests()
            .into_iter()
            .find(|r| r.path == "/slack/alice")
    })
    .await
    .expect("the fallback reached Alice's Slack webhook");
    let text = slack.body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("failed at step `must-pass`") && text.contains("the condition is false"),
        "{text}"
    );
    let reply = eventually(Duration::from_secs(10), || {
        graph.sends_to(ALICE).first().cloned()
    })
    .await
    .unwrap();
    assert_eq!(reply.text(), "probe failed, Slack told");
}

#[actix_web::test]
async fn an_interactive_message_carries_reply_buttons_and_a_tap_is_routed_by_its_id() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows(&[("buttons.yaml", BUTTONS), ("tapped.yaml", TAPPED)]);
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap();
    app.say(ALICE, "choose").await;
    let sent = eventually(Duration::from_secs(10), || {
        graph.sends_to(ALICE).first().cloned()
    })
    .await
    .unwrap();
    assert_eq!(sent.body["type"], "interactive");
    assert_eq!(sent.body["interactive"]["body"]["text"], "Take the alert?");
    assert_eq!(
        sent.body["interactive"]["action"]["buttons"],
        json!([{ "type": "reply", "reply": { "id": "take-it", "title": "Take it" } },
               { "type": "reply", "reply": { "id": "Pass", "title": "Pass" } }])
    );
    let tap = notification(vec![(
        ALICE,
        "Alice",
        json!({
            "from": ALICE, "id": unique_id(), "timestamp": now_stamp(), "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": "take-it", "title": "Take it" } }
        }),
    )]);
    assert_eq!(app.post_signed(tap.to_string().as_bytes()).await, 200);
    let answer = eventually(Duration::from_secs(10), || {
        graph.sends_to(ALICE).get(1).cloned()
    })
    .await
    .unwrap();
    assert_eq!(answer.text(), "you took it");
}
