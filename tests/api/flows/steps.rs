//! Step features: condition, foreach with `item`, filters in the input, on_empty.

use super::assert_time_from_now;
use crate::common::chat::*;
use crate::common::*;

#[actix_web::test]
async fn a_step_whose_condition_is_false_is_skipped_and_the_flow_goes_on() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: conditional
triggers:
  - platform: whatsapp
    type: message
    pattern: "^cond (yes|no)$"
steps:
  - name: maybe-say
    agent: whatsapp
    action: reply
    condition: "{{ match.1 == 'yes' }}"
    input:
      text: "conditional step ran"
  - name: report
    agent: whatsapp
    action: reply
    input:
      text: "done {{ match.1 }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("conditional.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(
        ask_reply(&app, &graph, ALICE, "cond no").await.text(),
        "done no"
    );
    app.say(ALICE, "cond yes").await;
    sent_to(&graph, ALICE, 3).await;
    assert_eq!(
        texts_to(&graph, ALICE),
        ["done no", "conditional step ran", "done yes"]
    );
}

#[actix_web::test]
async fn foreach_runs_the_step_once_per_item_with_item_in_its_input() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: fan-out
triggers:
  - platform: whatsapp
    type: message
    pattern: "^fanout$"
input:
  schema:
    people:
      type: array
      default:
        - { name: Alice, phone: "+15551234567" }
        - { name: Bob, phone: "+15557654321" }
steps:
  - name: send-each
    agent: whatsapp
    action: send_text
    foreach: "{{ input.people }}"
    parallel: true
    input:
      to: "{{ item.phone }}"
      text: "hello {{ item.name | upper }}"
  - name: summary
    agent: whatsapp
    action: reply
    input:
      text: "sent {{ steps.send-each.output | length }} to {{ input.people | map('name') | join(', ') }}; expires {{ now() | add_hours(4) | format_time }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("fan-out.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(app.say(ALICE, "fanout").await, 200);
    sent_to(&graph, ALICE, 2).await;
    let bob = sent_to(&graph, BOB, 1).await;
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].text(), "hello BOB");
    let alice = texts_to(&graph, ALICE);
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(alice.contains(&"hello ALICE".to_owned()), "{alice:?}");
    let summary = alice
        .iter()
        .find_map(|t| t.strip_prefix("sent 2 to Alice, Bob; expires "))
        .unwrap_or_else(|| panic!("the summary: {alice:?}"));
    assert_time_from_now(summary, 4);
}

#[actix_web::test]
async fn map_with_an_attribute_takes_that_attribute_even_when_a_filter_has_its_name() {
    // Incidents and alerts have a `title`; `title` is also a filter, which must not win over an
    // explicit `attribute=`.
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: titles
triggers:
  - platform: whatsapp
    type: message
    pattern: "^titles$"
input:
  schema:
    items:
      type: array
      default:
        - { name: "db-1", title: "DB failover" }
        - { name: "api-2", title: "api slow" }
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{{ input.items | map('name') | join(', ') }} / {{ input.items | map(attribute='title') | join(', ') }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("titles.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(
        ask_reply(&app, &graph, ALICE, "titles").await.text(),
        "db-1, api-2 / DB failover, api slow"
    );
}

#[actix_web::test]
async fn on_empty_answers_with_its_response_and_stops_the_flow() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: open-incidents
triggers:
  - platform: whatsapp
    type: message
    pattern: "^incidents$"
steps:
  - name: find-open
    agent: incident-manager
    action: list
    input:
      status: "open"
      limit: 3
    on_empty:
      response:
        template: "ops_notification"
        parameters:
          - "Info"
          - "No open incidents for {{ trigger.user.phone }}"
  - name: list-them
    agent: whatsapp
    action: reply
    input:
      text: "open: {{ steps.find-open.output | length }}, first {{ steps.find-open.output[0].title }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("open-incidents.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let empty = ask_reply(&app, &graph, ALICE, "incidents").await;
    assert_eq!(empty.body["template"]["name"], "ops_notification");
    let params = &empty.body["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "Info");
    assert_eq!(params[1]["text"], "No open incidents for +15551234567");

    store(dir.path())
        .await
        .create_incident("DB failover", "warning", "database")
        .await
        .unwrap();
    assert_eq!(
        ask_reply(&app, &graph, ALICE, "incidents").await.text(),
        "open: 1, first DB failover"
    );
    // Flows of one person run in order: had the first run gone on, "open: 0, …" would be second.
    assert_eq!(
        texts_to(&graph, ALICE),
        ["ops_notification", "open: 1, first DB failover"]
    );
}
