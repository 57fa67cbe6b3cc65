//! People who adopted a WhatsApp username and hide their number (live since H2 2026): their
//! messages carry `from_user_id` and no `from`; the bot answers them at their business-scoped user
//! id, and a person the directory knows by both is one person.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Uma hides her number behind the username `uma.sre`.
const UMA: &str = "US.13491208655302741918";
const UMA_PARENT: &str = "US.ENT.11815799212886844830";

/// A text from someone known to WhatsApp by `user_id` only, with the contact Meta writes for them.
fn from_user_id(user_id: &str, username: &str, text: &str) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242922" },
            "contacts": [{ "user_id": user_id, "parent_user_id": UMA_PARENT,
                           "profile": { "name": "Uma", "username": username } }],
            "messages": [{ "from_user_id": user_id, "from_parent_user_id": UMA_PARENT,
                           "id": format!("wamid.{}", unique_id()), "timestamp": now_stamp(),
                           "type": "text", "text": { "body": text } }] } }] }]
    })
}

/// The test config with `extra` added to the allow-list and `people` as the directory.
async fn start(graph: &FakeGraph, dir: &std::path::Path, allow: &str, people: &str) -> TestApp {
    let options = Options {
        whatsapp_extra: people.to_owned(),
        ..Options::default()
    };
    let yaml = config_yaml(&graph.address, dir, &options).replace(
        "      - \"+15550001234\"\n",
        &format!("      - \"+15550001234\"\n      - \"{allow}\"\n"),
    );
    assert!(yaml.contains(allow), "{yaml}");
    let file = dir.join("config.yaml");
    std::fs::write(&file, yaml).unwrap();
    TestApp::start(dir, aof::config::load(&file).unwrap())
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_person_known_only_by_user_id_is_answered_at_it() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), UMA, "").await;
    let body = from_user_id(UMA, "uma.sre", "HELP");
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    let sends = eventually(WAIT, || {
        Some(graph.sends()).filter(|s| s.iter().any(|r| r.body["recipient"] == UMA))
    })
    .await
    .expect("the HELP is answered at Uma's user id");
    let reply = sends.iter().find(|r| r.body["recipient"] == UMA).unwrap();
    assert!(reply.body.get("to").is_none(), "{}", reply.body);
    assert_eq!(reply.body["type"], "text");
    // The audit log names her by user id, masked like a number.
    let store = store(dir.path()).await;
    let audit = store.audit_log(20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.who.as_deref() == Some("US.****************1918")),
        "{audit:?}"
    );
}

#[actix_web::test]
async fn a_person_the_directory_knows_by_user_id_and_number_is_one_person() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let people = format!(
        "    people:\n      - name: Alice\n        phone: \"+{ALICE}\"\n        user_id: \"{UMA}\"\n"
    );
    // The allow-list names her number only: her user id is her.
    let app = start(&graph, dir.path(), "+15550009999", &people).await;
    let body = from_user_id(UMA, "alice.sre", "HELP");
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    let replies = eventually(WAIT, || {
        Some(graph.sends_to(ALICE)).filter(|s| !s.is_empty())
    })
    .await
    .expect("the answer goes to Alice's number");
    assert_eq!(replies.len(), 1);
    assert!(
        !graph.sends().iter().any(|r| r.body["recipient"] == UMA),
        "nothing went to the user id"
    );
}

#[actix_web::test]
async fn a_user_id_outside_the_allow_list_is_not_answered() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), "+15550009999", "").await;
    let body = from_user_id(UMA, "uma.sre", "HELP");
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    assert_eq!(app.say(BOB, "HELP").await, 200);
    eventually(WAIT, || graph.sends_to(BOB).first().cloned())
        .await
        .expect("Bob is answered");
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !graph.sends().iter().any(|r| r.body["recipient"] == UMA),
        "a stranger's user id was answered"
    );
}
