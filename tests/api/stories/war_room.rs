//! War rooms: an outage report opens an incident with a room, members join, leave and ask who is in,
//! every update reaches every other member in order, and resolving closes it with a summary.

use super::support::*;
use crate::common::chat::flows_dir;
use crate::common::*;
use serde_json::json;
use std::time::Duration;

/// A test flow opening an incident with a war room of `input.members`.
const OPEN_ROOM: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: open-room
triggers:
  - type: webhook
    path: "/test/open-room"
    method: POST
input:
  required: [members]
steps:
  - name: open-incident
    agent: incident-manager
    action: create
    input:
      title: "storm"
      severity: "critical"
      service: "edge"
  - name: open-war-room
    agent: war-room
    action: open
    input:
      incident_id: "{{ steps.open-incident.output.incident_id }}"
      members: "{{ input.members }}"
"#;

#[actix_web::test]
async fn a_relay_whose_first_send_fails_once_still_reaches_that_member_in_order() {
    let (graph, _dir, app) = start().await;
    app.say(BOB, "the api is down").await;
    received(&graph, ALICE, "War room INC-0001").await;
    app.say(CAROL, "JOIN INC-0001").await;
    received(&graph, CAROL, "You joined the war room of INC-0001").await;
    // Meta fails the first relay to Carol once; its retry must not be overtaken by the next ones.
    let mut failed = false;
    graph.script(move |body| {
        let first_to_carol = body["to"] == CAROL
            && body["text"]["body"]
                .as_str()
                .is_some_and(|t| t.contains("update 1"));
        (first_to_carol && !std::mem::replace(&mut failed, true)).then(|| {
            (
                500,
                json!({ "error": { "message": "try again", "code": 2 } }),
            )
        })
    });
    for i in 1..=5 {
        app.say(BOB, &format!("update {i}")).await;
    }
    let delivered = || -> Vec<String> {
        graph
            .sends_to(CAROL)
            .iter()
            .filter(|r| r.status == 200)
            .map(describe)
            .flat_map(|t| said(&t))
            .filter(|t| t.contains("*Bob* [INC-0001]: update"))
            .collect()
    };
    eventually(WAIT, || Some(delivered()).filter(|d| d.len() == 5))
        .await
        .unwrap_or_else(|| panic!("Carol got {:?}", delivered()));
    let expected: Vec<String> = (1..=5)
        .map(|i| format!("💬 *Bob* [INC-0001]: update {i}"))
        .collect();
    assert_eq!(delivered(), expected, "the retried update kept its place");
    let failed_sends = graph
        .sends_to(CAROL)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    assert_eq!(failed_sends, 1, "the failure did happen");
}

#[actix_web::test]
async fn a_war_room_relays_in_order_to_every_other_member_and_closes_with_a_summary() {
    let (graph, dir, app) = start().await;
    app.say(BOB, "the api is down").await;
    let page = received(
        &graph,
        ALICE,
        "ops_alert(CRITICAL|api|INC-0001: the api is down",
    )
    .await;
    assert!(page.starts_with("ops_alert"));
    received(&graph, ALICE, "War room INC-0001").await;
    received(&graph, BOB, "Incident INC-0001 opened").await;

    app.say(CAROL, "JOIN INC-0001").await;
    received(&graph, CAROL, "You joined the war room of INC-0001").await;
    received(&graph, BOB, "➕ Carol joined INC-0001").await;
    // Alice was paged into the room: her JOIN says so and is not announced a second time.
    app.say(ALICE, "JOIN INC-0001").await;
    received(&graph, ALICE, "You are already in the war room of INC-0001").await;

    for i in 1..=5 {
        app.say(BOB, &format!("update {i}")).await;
    }
    for who in [ALICE, CAROL] {
        received(&graph, who, "update 5").await;
        let order: Vec<String> = texts(&graph, who)
            .iter()
            .flat_map(|t| said(t))
            .filter(|t| t.contains("*Bob* [INC-0001]: update"))
            .collect();
        let expected: Vec<String> = (1..=5)
            .map(|i| format!("💬 *Bob* [INC-0001]: update {i}"))
            .collect();
        assert_eq!(order, expected, "{who} got Bob's updates in order");
    }
    assert!(
        !texts(&graph, BOB)
            .iter()
            .any(|t| t.contains("*Bob* [INC-0001]")),
        "no echo to the sender"
    );
    assert!(
        !texts(&graph, BOB)
            .iter()
            .any(|t| t.contains("Alice joined")),
        "a member's JOIN is not announced"
    );

    app.say(CAROL, "WHO").await;
    let who = received(&graph, CAROL, "members").await;
    assert!(
        who.contains("• Bob") && who.contains("On call now: Alice"),
        "{who}"
    );
    app.say(CAROL, "LEAVE").await;
    received(&graph, CAROL, "You left the war room of INC-0001").await;
    app.say(BOB, "after carol left").await;
    received(&graph, ALICE, "after carol left").await;
    assert!(!texts(&graph, CAROL)
        .iter()
        .any(|t| t.contains("after carol left")));

    app.say(ALICE, "RESOLVE").await;
    let summary = received(&graph, BOB, "INC-0001 resolved").await;
    assert!(summary.contains("Updates in the room: 6"), "{summary}");
    let store = store(dir.path()).await;
    assert_eq!(
        store
            .get_incident("INC-0001")
            .await
            .unwrap()
            .unwrap()
            .status,
        "resolved"
    );
}

#[actix_web::test]
async fn a_200_member_war_room_relays_every_message_in_order_to_every_other_member() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[("open-room.yaml", OPEN_ROOM)]);
    let mut options = options(&graph.address);
    options.flows_dir = Some(flows.path().to_owned());
    options.per_second = 80;
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the bot starts");
    let others: Vec<String> = (0..199).map(|i| format!("+1555200{i:04}")).collect();
    let mut members = vec![format!("+{ALICE}")];
    members.extend(others.iter().cloned());
    let (status, answer) = app
        .post_json(
            "/test/open-room",
            &json!({ "members": members }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    eventually(Duration::from_secs(30), || {
        (graph.sends().len() >= 200).then_some(())
    })
    .await
    .expect("200 welcomes");

    for i in 1..=3 {
        app.say(ALICE, &format!("update {i} from the edge")).await;
    }
    let relays = |who: &str| -> Vec<String> {
        graph
            .sends_to(who)
            .iter()
            .map(describe)
            .flat_map(|t| said(&t))
            .filter(|t| t.contains("from the edge"))
            .collect()
    };
    let expected: Vec<String> = (1..=3)
        .map(|i| format!("💬 *Alice* [INC-0001]: update {i} from the edge"))
        .collect();
    let done = eventually(Duration::from_secs(60), || {
        others
            .iter()
            .all(|o| relays(o.trim_start_matches('+')).len() == 3)
            .then_some(())
    })
    .await;
    let missing: Vec<&String> = others
        .iter()
        .filter(|o| relays(o.trim_start_matches('+')).len() != 3)
        .collect();
    assert!(
        done.is_some(),
        "{} members did not get all three: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for other in &others {
        assert_eq!(
            relays(other.trim_start_matches('+')),
            expected,
            "{other} got them in order"
        );
    }
    assert!(relays(ALICE).is_empty(), "no echo to the sender");
}

#[actix_web::test]
async fn joins_are_announced_only_while_the_room_is_small() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[("open-room.yaml", OPEN_ROOM)]);
    let mut options = options(&graph.address);
    options.flows_dir = Some(flows.path().to_owned());
    options.per_second = 80;
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the bot starts");
    // Alice and 19 others: 20 members, the most whose joins are announced to the room.
    let mut members = vec![format!("+{ALICE}")];
    members.extend((0..19).map(|i| format!("+1555300{i:04}")));
    let (status, answer) = app
        .post_json(
            "/test/open-room",
            &json!({ "members": members }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    eventually(Duration::from_secs(30), || {
        (graph.sends().len() >= 20).then_some(())
    })
    .await
    .expect("20 welcomes");

    app.say(CAROL, "JOIN INC-0001").await;
    let welcome = received(&graph, CAROL, "You joined the war room of INC-0001").await;
    assert!(welcome.contains("21 people are in it"), "{welcome}");
    app.say(ALICE, "after carol joined").await;
    received(&graph, CAROL, "after carol joined").await;
    assert!(
        !texts(&graph, ALICE)
            .iter()
            .any(|t| t.contains("Carol joined")),
        "the 21st join is not announced to everyone"
    );
}

#[actix_web::test]
async fn a_relay_handed_over_again_after_a_crash_reaches_each_member_once() {
    let (graph, dir, app) = start().await;
    app.say(BOB, "the api is down").await;
    received(&graph, ALICE, "War room INC-0001").await;
    app.say(CAROL, "JOIN INC-0001").await;
    received(&graph, CAROL, "You joined the war room of INC-0001").await;
    app.say(BOB, "update 1").await;
    let relayed = || {
        graph
            .sends_to(CAROL)
            .iter()
            .map(describe)
            .filter(|t| t.contains("*Bob* [INC-0001]: update 1"))
            .count()
    };
    eventually(WAIT, || (relayed() == 1).then_some(())).await;
    app.stop();

    // Killed after the relay was queued, before Bob's message was marked handled.
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.path().join("aof.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    let reopened = sqlx::query(
        "UPDATE inbox SET done_ms = NULL, outcome = NULL
         WHERE seq = (SELECT MAX(seq) FROM inbox WHERE kind = 'message')",
    )
    .execute(&mut db)
    .await
    .expect("reopens");
    assert_eq!(reopened.rows_affected(), 1);
    let app = spawn(&graph, dir.path()).await;
    let handled = eventually_async(WAIT, || async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.ok()?;
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE done_ms IS NULL")
            .fetch_one(&mut db)
            .await
            .ok()?;
        (open == 0).then_some(())
    })
    .await;
    assert!(handled.is_some(), "the message is handled again");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(relayed(), 1, "Carol got the update once");
    drop(app);
}

#[actix_web::test]
async fn who_outside_a_war_room_says_who_is_on_call_now() {
    let (graph, _dir, app) = start().await;
    app.say(CAROL, "WHO").await;
    let answer = received(&graph, CAROL, "📟 *On call now*").await;
    // The stories' rota has no shifts: Alice and Bob are always on call, in rota order.
    assert!(
        answer.contains("• Alice (level 1): always on call")
            && answer.contains("• Bob (level 2): always on call"),
        "{answer}"
    );
    assert!(
        answer.contains("In a war room, WHO lists its members."),
        "{answer}"
    );
}

/// The messages a text says: relays waiting for one member are folded into one message, a
/// paragraph each.
fn said(text: &str) -> Vec<String> {
    text.split("\n\n").map(str::to_owned).collect()
}
