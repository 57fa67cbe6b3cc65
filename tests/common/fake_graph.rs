//! A fake of Meta's Graph API (and of the services the health checker calls): records every request
//! with its arrival time, and answers from a script, or with a success and a fresh wamid.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path.
    pub path: String,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The HTTP status it was answered with.
    pub status: u16,
}

impl Recorded {
    /// The recipient (`to`).
    pub fn to(&self) -> &str {
        self.body["to"].as_str().unwrap_or_default()
    }

    /// The text body, or the template name.
    pub fn text(&self) -> &str {
        self.body["text"]["body"]
            .as_str()
            .or_else(|| self.body["template"]["name"].as_str())
            .unwrap_or_default()
    }
}

/// How the fake answers a send.
pub type Script = Arc<Mutex<Box<dyn FnMut(&Value) -> Option<(u16, Value)> + Send>>>;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    queued: Arc<Mutex<VecDeque<(u16, Value)>>>,
    script: Script,
    counter: Arc<Mutex<u64>>,
}

/// The fake server.
pub struct FakeGraph {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    shared: Shared,
    system: actix_web::rt::System,
}

async fn handle(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    shared: actix_web::web::Data<Shared>,
) -> actix_web::HttpResponse {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = req.path().to_owned();
    let (status, answer) = if path.starts_with("/health/") {
        (200, json!({ "status": "ok" }))
    } else {
        let scripted = shared
            .queued
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| (shared.script.lock().unwrap())(&body));
        scripted.unwrap_or_else(|| {
            let mut n = shared.counter.lock().unwrap();
            *n += 1;
            (200, json!({ "messaging_product": "whatsapp", "contacts": [{ "input": body["to"], "wa_id": body["to"] }],
                          "messages": [{ "id": format!("wamid.fake.{}", *n) }] }))
        })
    };
    shared.requests.lock().unwrap().push(Recorded {
        path,
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        body,
        at,
        status,
    });
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(answer)
}

impl FakeGraph {
    /// Starts the fake on a random port in its own thread.
    pub fn start() -> FakeGraph {
        let shared = Shared {
            requests: Arc::default(),
            queued: Arc::default(),
            script: Arc::new(Mutex::new(Box::new(|_| None))),
            counter: Arc::default(),
        };
        let (tx, rx) = mpsc::channel();
        let data = shared.clone();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let data = actix_web::web::Data::new(data);
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .default_service(actix_web::web::to(handle))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind the fake");
                let port = server.addrs()[0].port();
                tx.send((port, actix_web::rt::System::current())).unwrap();
                let _ = server.run().await;
            });
        });
        let (port, system) = rx.recv().expect("the fake starts");
        FakeGraph {
            address: format!("http://127.0.0.1:{port}"),
            shared,
            system,
        }
    }

    /// Answers the next sends with these responses, in order.
    pub fn respond_next(&self, responses: Vec<(u16, Value)>) {
        self.shared.queued.lock().unwrap().extend(responses);
    }

    /// Answers sends through `script` (`None`: the default success).
    pub fn script(&self, script: impl FnMut(&Value) -> Option<(u16, Value)> + Send + 'static) {
        *self.shared.script.lock().unwrap() = Box::new(script);
    }

    /// The message sends received so far (not health checks).
    pub fn sends(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.ends_with("/messages"))
            .cloned()
            .collect()
    }

    /// Sends to `to` (digits) received so far.
    pub fn sends_to(&self, to: &str) -> Vec<Recorded> {
        self.sends().into_iter().filter(|r| r.to() == to).collect()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.system.stop();
    }
}
