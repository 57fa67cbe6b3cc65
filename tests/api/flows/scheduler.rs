//! The scheduler agent: a flow runs after its delay, also across a restart.

use crate::common::chat::*;
use crate::common::*;
use std::time::{Duration, Instant};

/// A flow that schedules `reminder` after `delay` seconds, answering "scheduled".
fn schedule_flow(delay: u32) -> String {
    format!(
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: remind-{delay}
triggers:
  - platform: whatsapp
    type: message
    pattern: "^later {delay}$"
steps:
  - name: plan-it
    agent: scheduler
    action: schedule
    input:
      delay: {delay}
      flow: "reminder"
      input:
        to: "{{{{ trigger.user.phone }}}}"
        note: "timer {delay}"
  - name: confirm
    agent: whatsapp
    action: reply
    input:
      text: "scheduled {{{{ steps.plan-it.output.flow }}}}"
"#
    )
}

const REMINDER: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: reminder
input:
  required: [to, note]
steps:
  - name: remind
    agent: whatsapp
    action: send_text
    input:
      to: "{{ input.to }}"
      text: "⏰ {{ input.note }}"
"#;

#[actix_web::test]
async fn the_scheduler_agent_runs_a_flow_after_its_delay() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let later = schedule_flow(1);
    let flows = flows_dir(&[("remind-1.yaml", &later), ("reminder.yaml", REMINDER)]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let asked = Instant::now();
    assert_eq!(
        ask_reply(&app, &graph, ALICE, "later 1").await.text(),
        "scheduled reminder"
    );
    let fired = sent_to(&graph, ALICE, 2).await[1].clone();
    assert_eq!(fired.text(), "⏰ timer 1");
    let after = fired.at - asked;
    assert!(after >= Duration::from_secs(1), "fired after {after:?}");
}

#[actix_web::test]
async fn a_scheduled_flow_still_runs_after_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let later = schedule_flow(2);
    let flows = flows_dir(&[("remind-2.yaml", &later), ("reminder.yaml", REMINDER)]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let asked = Instant::now();
    assert_eq!(
        ask_reply(&app, &graph, ALICE, "later 2").await.text(),
        "scheduled reminder"
    );
    all_sends_recorded(&app, &graph).await;
    app.stop();
    assert_eq!(
        graph.sends_to(ALICE).len(),
        1,
        "the timer had not fired before the stop"
    );

    let _app = start(&graph, dir.path(), Some(flows.path())).await;
    let fired = sent_to(&graph, ALICE, 2).await[1].clone();
    assert_eq!(fired.text(), "⏰ timer 2");
    assert!(fired.at - asked >= Duration::from_secs(2));
    assert_eq!(
        texts_to(&graph, ALICE),
        ["scheduled reminder", "⏰ timer 2"],
        "fired once, and nothing was sent twice"
    );
}
