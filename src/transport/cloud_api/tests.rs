//! The Cloud API client against a fake Graph API: a small actix-web app on `127.0.0.1:0` that
//! records every request and answers with a canned status and body.

use super::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aof_actors::model::Lane;
use aof_actors::WaId;
use std::sync::{Arc, Mutex};

/// What the fake Graph API received.
#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    body: serde_json::Value,
}

struct FakeGraph {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    server: actix_web::dev::ServerHandle,
}

fn fixture(name: &str) -> Vec<u8> {
    crate::fixture(&format!("whatsapp/{name}"))
}

/// Starts a fake Graph API answering every request with `status` and `body`.
fn fake_graph(status: u16, body: Vec<u8>) -> FakeGraph {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorder = requests.clone();
    let server = HttpServer::new(move || {
        let recorder = recorder.clone();
        let body = body.clone();
        App::new().default_service(web::to(move |req: HttpRequest, bytes: web::Bytes| {
            let recorder = recorder.clone();
            let body = body.clone();
            async move {
                recorder.lock().expect("recorder lock").push(Recorded {
                    path: req.path().to_string(),
                    authorization: req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                });
                let status = actix_web::http::StatusCode::from_u16(status).expect("valid status");
                HttpResponse::build(status)
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind 127.0.0.1:0");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    FakeGraph {
        base_url: format!("http://{addr}/v21.0"),
        requests,
        server: handle,
    }
}

fn client(graph: &FakeGraph) -> CloudApi {
    CloudApi::new(
        graph.base_url.clone(),
        "106540352242922".into(),
        "secret-token".into(),
        Duration::from_secs(5),
    )
}

fn job_id() -> JobId {
    JobId("job_abc".into())
}

fn text(body: &str) -> OutboundMessage {
    let to = WaId::parse("+1 555 123 4567").expect("valid number");
    OutboundMessage::text(to, body, Lane::Reply)
}

#[actix_web::test]
async fn a_text_is_posted_with_the_bearer_token_and_returns_the_wamid() {
    let graph = fake_graph(200, fixture("send-response-ok.json"));
    let wamid = client(&graph)
        .send(&job_id(), &text("hello"))
        .await
        .expect("sent");
    assert_eq!(
        wamid.as_str(),
        "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RjgA"
    );

    let requests = graph.requests.lock().expect("recorder lock").clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v21.0/106540352242922/messages");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer secret-token")
    );
    assert_eq!(requests[0].body["to"], "15551234567");
    assert_eq!(
        requests[0].body["biz_opaque_callback_data"], "job_abc",
        "statuses will name the outbox row"
    );
    assert_eq!(requests[0].body["type"], "text");
    assert_eq!(requests[0].body["text"]["body"], "hello");
    graph.server.stop(false).await;
}

#[actix_web::test]
async fn a_throughput_error_with_http_400_is_throttled() {
    let graph = fake_graph(400, fixture("error-130429.json"));
    let err = client(&graph)
        .send(&job_id(), &text("hello"))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, SendErrorKind::Throttled);
    assert_eq!(err.code, Some(130429));
    assert!(err.message.contains("fbtrace_id"), "{}", err.message);
    graph.server.stop(false).await;
}

#[actix_web::test]
async fn an_http_500_without_a_body_is_transient() {
    let graph = fake_graph(500, Vec::new());
    let err = client(&graph)
        .send(&job_id(), &text("hello"))
        .await
        .expect_err("failed");
    assert_eq!(err.kind, SendErrorKind::Transient);
    assert_eq!(err.code, Some(500));
    graph.server.stop(false).await;
}

#[actix_web::test]
async fn an_unreachable_api_is_transient_and_the_message_holds_no_token() {
    // Bind then drop a listener, so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let api = CloudApi::new(
        format!("http://127.0.0.1:{port}/v21.0"),
        "106540352242922".into(),
        "secret-token".into(),
        Duration::from_secs(2),
    );
    let err = api
        .send(&job_id(), &text("hello"))
        .await
        .expect_err("failed");
    assert_eq!(err.kind, SendErrorKind::Transient);
    assert_eq!(err.code, None);
    assert!(!err.message.contains("secret-token"), "{}", err.message);
    assert!(!format!("{api:?}").contains("secret-token"));
}

#[actix_web::test]
async fn a_token_that_cannot_be_a_header_fails_as_fatal_without_a_request() {
    let graph = fake_graph(200, fixture("send-response-ok.json"));
    let api = CloudApi::new(
        graph.base_url.clone(),
        "106540352242922".into(),
        "bad\ntoken".into(),
        Duration::from_secs(5),
    );
    let err = api
        .send(&job_id(), &text("hello"))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, SendErrorKind::Fatal);
    assert!(graph.requests.lock().expect("recorder lock").is_empty());
    graph.server.stop(false).await;
}
