//! Meta's webhook, through the real server: verification, signatures, every message type, batches,
//! statuses, redeliveries (also across a restart) and the allow-list.

use crate::common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn verification_with_the_right_token_echoes_the_challenge() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let ok = format!(
        "/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    );
    assert_eq!(app.get(&ok).await, (200, "1158201444".to_owned()));
    let wrong_token = "/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1";
    assert_eq!(app.get(wrong_token).await.0, 403);
    let wrong_mode =
        format!("/whatsapp?hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1");
    assert_eq!(app.get(&wrong_mode).await.0, 403);
}

#[actix_web::test]
async fn notifications_with_a_missing_or_wrong_signature_are_refused_and_not_processed() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let body = text_notification(ALICE, "Alice", "HELP", &unique_id()).to_string();
    assert_eq!(app.post_raw(body.as_bytes(), None).await, 401);
    let forged = aof::wire::whatsapp::sign(b"another-secret", body.as_bytes());
    assert_eq!(app.post_raw(body.as_bytes(), Some(&forged)).await, 401);
    assert_eq!(app.post_raw(body.as_bytes(), Some("sha256=zz")).await, 401);
    // A signed one is answered, which shows the refused ones were not merely slow.
    assert_eq!(app.post_signed(body.as_bytes()).await, 200);
    let replies = eventually(WAIT, || {
        Some(graph.sends_to(ALICE)).filter(|s| !s.is_empty())
    })
    .await
    .unwrap();
    assert_eq!(replies.len(), 1, "only the signed copy ran a flow");
}

#[actix_web::test]
async fn a_text_message_runs_its_flow_and_the_reply_reaches_the_graph_api() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    assert_eq!(
        app.post_signed(&fresh_fixture("whatsapp/text.json")).await,
        200
    );
    let sends = eventually(WAIT, || Some(graph.sends()).filter(|s| !s.is_empty()))
        .await
        .expect("a reply");
    let reply = &sends[0];
    assert_eq!(reply.path, "/v21.0/106540352242922/messages");
    assert_eq!(
        reply.header("authorization"),
        Some("Bearer test-access-token")
    );
    assert_eq!(reply.body["messaging_product"], "whatsapp");
    assert_eq!(reply.body["type"], "text");
}

#[actix_web::test]
async fn with_no_allow_list_require_verified_accepts_only_numbers_the_config_knows() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let yaml = config_yaml(&graph.address, dir.path(), &Options::default())
        .replace(
            "    allowed_numbers:\n      - \"+1 555-123-4567\"\n      - \"+1 (555) 765-4321\"\n      - \"+15550001234\"\n",
            "",
        )
        .replace("    security:\n", "    security:\n      require_verified: true\n");
    assert!(
        yaml.contains("require_verified") && !yaml.contains("allowed_numbers"),
        "{yaml}"
    );
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, yaml).unwrap();
    let app = TestApp::start(dir.path(), aof::config::load(&file).unwrap())
        .await
        .unwrap();
    // Mallory is in no group or rota: nothing answers her. Bob is in the sre-team group.
    assert_eq!(app.say(MALLORY, "HELP").await, 200);
    assert_eq!(app.say(BOB, "HELP").await, 200);
    eventually(WAIT, || graph.sends_to(BOB).first().cloned())
        .await
        .expect("Bob is answered");
    assert!(
        graph.sends_to(MALLORY).is_empty(),
        "an unknown number got an answer"
    );
    let store = store(dir.path()).await;
    let audit = store.audit_log(50).await.unwrap();
    assert!(
        audit.iter().any(|r| r.kind == "rejected_number"),
        "Mallory is in the audit log"
    );
}

#[actix_web::test]
async fn a_message_older_than_the_maximum_age_is_acknowledged_and_not_acted_on() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let eight_days_ago = (chrono::Utc::now().timestamp() - 8 * 86_400).to_string();
    let old = serde_json::json!({ "from": ALICE, "id": unique_id(), "timestamp": eight_days_ago,
        "type": "text", "text": { "body": "HELP" } });
    let replayed = notification(vec![(ALICE, "Alice", old)]).to_string();
    assert_eq!(
        app.post_signed(replayed.as_bytes()).await,
        200,
        "Meta gets its 200"
    );

    // A fresh message after it is answered first: had the old HELP been taken, its answer would
    // have gone out before this one (one person's messages are handled and sent in order).
    assert_eq!(app.say(ALICE, "STATUS api").await, 200);
    let sends = eventually(WAIT, || {
        Some(graph.sends_to(ALICE)).filter(|s| !s.is_empty())
    })
    .await
    .expect("the fresh message is answered");
    assert!(
        sends[0].text().contains("*api*"),
        "the first answer is STATUS's: {:?}",
        sends[0].text()
    );
    let store = store(dir.path()).await;
    let audit = store.audit_log(50).await.unwrap();
    assert!(
        audit.iter().any(|a| a.kind == "too_old"),
        "the replay is audited: {audit:?}"
    );
}

#[actix_web::test]
async fn a_body_that_stops_arriving_is_cut_off_with_408() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let options = Options {
        server_extra: "  body_timeout_secs: 1".into(),
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap();
    let addr = app.address.trim_start_matches("http://").to_owned();
    // Half a body, then silence: the answer must come from the server, not from our patience.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(addr).expect("connects");
        conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let head = "POST /webhooks/whatsapp HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(br#"{"object":"whatsapp_business_account","entry":["#).unwrap();
        let started = std::time::Instant::now();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        (answer, started.elapsed())
    })
    .await
    .unwrap();
    let (answer, after) = answer;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {after:?}: {answer:?}"
    );
    // And the server still takes whole requests.
    assert_eq!(app.say(ALICE, "HELP").await, 200);
}

/// Any signed body, as a property through the running server: 200 (kept, or nothing in it to act
/// on) or a 400 naming the field; never a 5xx, and the server answers the next one.
#[actix_web::test]
async fn any_signed_body_is_answered_200_or_a_400_naming_the_field() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &Options::default())
        .await
        .unwrap();
    let mut runner = TestRunner::deterministic();
    let bodies = proptest::prop_oneof![
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..256),
        ".{0,64}".prop_map(|text| {
            text_notification(ALICE, "Alice", &text, &unique_id())
                .to_string()
                .into_bytes()
        }),
        "[a-z_]{1,8}".prop_map(|field| {
            let mut n = text_notification(ALICE, "Alice", "HELP", &unique_id());
            n["entry"][0]["changes"][0]["value"][field] = serde_json::json!(7);
            n.to_string().into_bytes()
        }),
    ];
    for _ in 0..64 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), &body);
        let mut answer = app
            .client
            .post(app.url("/whatsapp"))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-hub-signature-256", signature))
            .send_body(body.clone())
            .await
            .expect("the server answers");
        let status = answer.status().as_u16();
        let text = String::from_utf8_lossy(&answer.body().await.unwrap_or_default()).to_string();
        assert!(
            status == 200 || (status == 400 && text.contains("field")),
            "{status} {text} for {}",
            String::from_utf8_lossy(&body)
        );
    }
}
