//! What comes in: the allow-list, every message type, batches, and redeliveries.

use super::HELP_MARK;
use crate::common::chat::*;
use crate::common::*;
use serde_json::json;

/// What the engine answers to a message without text.
const UNSUPPORTED_REPLY: &str =
    "I can only read text messages. Send HELP to see the commands I understand.";

/// What a test expects of a reply.
type ReplyCheck = Box<dyn Fn(&str) -> bool>;

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

    // Reactions are not a person talking: `api::traffic` checks that they get no answer.
    let cases: [(&str, ReplyCheck); 5] = [
        // "ack INC-4821": ACK naming an incident the bot does not know.
        (
            "whatsapp/text.json",
            Box::new(|r| r.contains("I know no incident INC-4821")),
        ),
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
    ];
    for (i, (name, expected)) in cases.iter().enumerate() {
        assert_eq!(app.post_signed(&fresh_fixture(name)).await, 200, "{name}");
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
        app.post_signed(&fresh_fixture("whatsapp/batch-two-messages.json"))
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
async fn a_redelivered_message_is_answered_once_even_after_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;
    let message = fresh_fixture("whatsapp/text.json");

    assert_eq!(app.post_signed(&message).await, 200);
    assert!(sent_to(&graph, ALICE, 1).await[0]
        .text()
        .contains("INC-4821"));
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
