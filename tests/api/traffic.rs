//! Real WhatsApp traffic through the real server: batches with a message the bot cannot read,
//! notifications for another business number, and the message types that are not a person talking
//! to the bot (reactions, system notices, edits, revokes, orders, flow completions, …). Bodies are
//! written from the shapes Meta documents.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A quiet moment for what must *not* happen (a reply that should never come).
const QUIET: Duration = Duration::from_millis(600);

/// A text message from `from` (any fields may be taken out or changed by the caller).
fn text_message(from: &str, body: &str) -> Value {
    json!({ "from": from, "id": unique_id(), "timestamp": now_stamp(), "type": "text",
            "text": { "body": body } })
}

/// A message of `kind` from `from`, with `payload` under the key Meta names after the kind.
fn typed_message(from: &str, kind: &str, payload: Value) -> Value {
    let mut message =
        json!({ "from": from, "id": unique_id(), "timestamp": now_stamp(), "type": kind });
    message[kind] = payload;
    message
}

/// The value of `counter` on /metrics (0 when it has not been counted yet). The recorder is one
/// per process and this binary runs many bots at once, so a test can only ask for "at least".
async fn metric(app: &TestApp, counter: &str) -> f64 {
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| l.starts_with(counter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn one_unreadable_message_does_not_sink_the_others_in_its_batch() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let mut no_sender = text_message(ALICE, "HELP");
    no_sender.as_object_mut().unwrap().remove("from");
    let mut no_type = text_message(ALICE, "HELP");
    no_type.as_object_mut().unwrap().remove("type");
    let mut wrong_shape = text_message(CAROL, "HELP");
    wrong_shape["text"]["body"] = json!(42);
    let mut no_id = text_message(CAROL, "STATUS");
    no_id.as_object_mut().unwrap().remove("id");
    let body = notification(vec![
        (ALICE, "Alice", no_sender),
        (ALICE, "Alice", no_type),
        (CAROL, "Carol", wrong_shape),
        (CAROL, "Carol", no_id),
        (BOB, "Bob", text_message(BOB, "HELP")),
    ]);
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    let replies = eventually(WAIT, || Some(graph.sends_to(BOB)).filter(|s| !s.is_empty()))
        .await
        .expect("Bob's HELP is answered");
    assert_eq!(replies.len(), 1);
    actix_web::rt::time::sleep(QUIET).await;
    assert!(
        graph.sends_to(ALICE).is_empty(),
        "{:?}",
        graph.sends_to(ALICE)
    );
    assert!(
        graph.sends_to(CAROL).is_empty(),
        "{:?}",
        graph.sends_to(CAROL)
    );
    assert!(metric(&app, "aof_webhook_unreadable_total").await >= 4.0);
}

#[actix_web::test]
async fn a_body_that_is_not_a_whatsapp_notification_is_still_refused_naming_the_field() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let mut body = text_notification(ALICE, "Alice", "HELP", &unique_id());
    body["entry"][0]["changes"][0]["value"]["messages"] = json!("not a list");
    let text = body.to_string();
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), text.as_bytes());
    let mut answer = app
        .client
        .post(app.url("/whatsapp"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-hub-signature-256", signature))
        .send_body(text)
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json["field"], "entry[0].changes[0].value.messages");
    assert_eq!(app.post_raw(b"{}", Some("sha256=00")).await, 401);
}

#[actix_web::test]
async fn a_notification_for_another_business_number_is_acknowledged_and_not_processed() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let mut theirs = text_notification(ALICE, "Alice", "HELP", &unique_id());
    theirs["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999000111");
    assert_eq!(app.post_signed(theirs.to_string().as_bytes()).await, 200);
    let ours = text_notification(BOB, "Bob", "HELP", &unique_id());
    assert_eq!(app.post_signed(ours.to_string().as_bytes()).await, 200);
    eventually(WAIT, || graph.sends_to(BOB).first().cloned())
        .await
        .expect("Bob, on our number, is answered");
    actix_web::rt::time::sleep(QUIET).await;
    assert!(
        graph.sends_to(ALICE).is_empty(),
        "a message to another number was answered"
    );
    assert!(metric(&app, "aof_webhook_foreign_total").await >= 1.0);
}

/// Every kind of message that is not a person talking to the bot, as Meta shapes it.
fn notices(from: &str) -> Vec<(&'static str, Value)> {
    let ours = format!("wamid.{}", unique_id());
    let interactive = |kind: &str, payload: Value| {
        let mut inner = json!({ "type": kind });
        inner[kind] = payload;
        typed_message(from, "interactive", inner)
    };
    vec![
        (
            "reaction",
            typed_message(
                from,
                "reaction",
                json!({ "message_id": ours, "emoji": "👍" }),
            ),
        ),
        (
            "reaction removed",
            typed_message(from, "reaction", json!({ "message_id": ours, "emoji": "" })),
        ),
        (
            "number changed",
            typed_message(
                from,
                "system",
                json!({ "body": "User A changed from 15551234567 to 15551230000",
                        "wa_id": "15551230000", "type": "user_changed_number" }),
            ),
        ),
        (
            "identity changed",
            typed_message(
                from,
                "system",
                json!({ "body": "Identity changed", "identity": "aGFzaA==",
                        "type": "customer_identity_changed" }),
            ),
        ),
        (
            "edit",
            typed_message(
                from,
                "edit",
                json!({ "original_message_id": ours,
                        "message": { "type": "text", "text": { "body": "HELP" } } }),
            ),
        ),
        (
            "revoke",
            typed_message(from, "revoke", json!({ "original_message_id": ours })),
        ),
        (
            "unsupported",
            typed_message(from, "unsupported", json!({ "type": "poll" })),
        ),
        (
            "request_welcome",
            json!({ "from": from, "id": unique_id(), "timestamp": now_stamp(), "type": "request_welcome" }),
        ),
        (
            "order",
            typed_message(
                from,
                "order",
                json!({ "catalog_id": "1", "product_items": [{ "product_retailer_id": "x", "quantity": 1 }] }),
            ),
        ),
        (
            "flow completion",
            interactive(
                "nfm_reply",
                json!({ "name": "flow", "body": "Sent", "response_json": "{\"a\":1}" }),
            ),
        ),
        (
            "call permission",
            interactive(
                "call_permission_reply",
                json!({ "response": "accept", "is_permanent": false }),
            ),
        ),
    ]
}

#[actix_web::test]
async fn messages_that_are_not_a_person_talking_get_no_reply_and_are_audited() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let notices = notices(ALICE);
    let count = notices.len();
    for (what, message) in notices {
        let body = notification(vec![(ALICE, "Alice", message)]);
        assert_eq!(
            app.post_signed(body.to_string().as_bytes()).await,
            200,
            "{what}"
        );
    }
    // An image is a person talking: it is still told what the bot reads.
    let image = typed_message(
        ALICE,
        "image",
        json!({ "id": "1", "mime_type": "image/jpeg" }),
    );
    let body = notification(vec![(ALICE, "Alice", image)]);
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    let replies = eventually(WAIT, || {
        Some(graph.sends_to(ALICE)).filter(|s| !s.is_empty())
    })
    .await
    .expect("the image is answered");
    actix_web::rt::time::sleep(QUIET).await;
    let replies = graph.sends_to(ALICE).len().max(replies.len());
    assert_eq!(replies, 1, "only the image was answered");
    let store = store(dir.path()).await;
    let audit = store.audit_log(100).await.unwrap();
    let noticed = audit
        .iter()
        .filter(|r| r.kind == "not_conversation")
        .count();
    assert_eq!(noticed, count, "{audit:?}");
    assert!(metric(&app, "aof_inbound_not_conversation_total").await >= count as f64);
}

#[actix_web::test]
async fn a_reaction_the_config_maps_to_a_command_runs_that_command() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let options = Options {
        whatsapp_extra: "    reactions:\n      \"👀\": \"STATUS\"\n".into(),
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap();
    let quoted = format!("wamid.{}", unique_id());
    for emoji in ["👍", "👀"] {
        let reaction = typed_message(
            ALICE,
            "reaction",
            json!({ "message_id": quoted, "emoji": emoji }),
        );
        let body = notification(vec![(ALICE, "Alice", reaction)]);
        assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    }
    let replies = eventually(WAIT, || {
        Some(graph.sends_to(ALICE)).filter(|s| !s.is_empty())
    })
    .await
    .expect("the mapped reaction runs STATUS");
    actix_web::rt::time::sleep(QUIET).await;
    assert_eq!(graph.sends_to(ALICE).len(), 1, "only 👀 is mapped");
    let text = replies[0].body.to_string();
    assert!(text.contains("api") || text.contains("web"), "{text}");
}
