//! The fake of Meta's Graph API that the bot sends to during a run: it answers like the Cloud API
//! (a wamid per accepted message, or `130429` to every n-th send when told to throttle) and records
//! when each send arrived, to whom and what it said, in this process, on the same clock as the
//! load generator.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

/// One send the fake received.
#[derive(Debug, Clone)]
pub struct Send {
    /// When it arrived.
    pub at: Instant,
    /// The recipient's digits.
    pub to: String,
    /// The text, or `template|param1|param2|…`.
    pub what: String,
    /// Whether the fake accepted it (200) or throttled it.
    pub accepted: bool,
}

#[derive(Default)]
struct Shared {
    sends: Mutex<Vec<Send>>,
    requests: AtomicU64,
    throttle_every: AtomicU64,
}

/// The running fake.
pub struct FakeGraph {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    shared: Arc<Shared>,
    system: actix_web::rt::System,
}

/// The text of a send: a text body, or a template's name and parameters joined by `|`.
fn describe(body: &Value) -> String {
    if let Some(text) = body["text"]["body"].as_str() {
        return text.to_owned();
    }
    let mut parts = vec![body["template"]["name"].as_str().unwrap_or("?").to_owned()];
    for component in body["template"]["components"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for p in component["parameters"].as_array().into_iter().flatten() {
            parts.push(p["text"].as_str().unwrap_or_default().to_owned());
        }
    }
    parts.join("|")
}

async fn messages(body: web::Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let every = shared.throttle_every.load(Ordering::Relaxed);
    let accepted = every == 0 || !n.is_multiple_of(every);
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    shared.sends.lock().expect("not poisoned").push(Send {
        at,
        to: to.clone(),
        what: describe(&body),
        accepted,
    });
    if accepted {
        HttpResponse::Ok().json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.load.{n}") }]
        }))
    } else {
        HttpResponse::BadRequest().json(json!({ "error": {
            "message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
            "error_data": { "messaging_product": "whatsapp",
                            "details": "Message failed to send because there were too many messages sent from this phone number in a short period of time." },
            "fbtrace_id": "AbCdLoad" } }))
    }
}

async fn other(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/health/") {
        HttpResponse::Ok().json(json!({ "status": "ok" }))
    } else {
        HttpResponse::NotFound().finish()
    }
}

impl FakeGraph {
    /// Starts the fake on a random loopback port, in its own thread and actix system.
    pub fn start() -> anyhow::Result<FakeGraph> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let data = web::Data::new(shared.clone());
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/v21.0/{phone}/messages", web::post().to(messages))
                        .default_service(web::to(other))
                })
                .workers(1)
                .bind("127.0.0.1:0");
                let server = match server {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let port = server.addrs()[0].port();
                let _ = tx.send(Ok((port, actix_web::rt::System::current())));
                let _ = server.run().await;
            });
        });
        let (port, system) = rx.recv()??;
        Ok(FakeGraph {
            address: format!("http://127.0.0.1:{port}"),
            shared,
            system,
        })
    }

    /// Answers every `n`-th send with `130429` from now on (0: never).
    pub fn throttle_every(&self, n: u64) {
        self.shared.throttle_every.store(n, Ordering::Relaxed);
    }

    /// Every send received so far, in arrival order.
    pub fn sends(&self) -> Vec<Send> {
        self.shared.sends.lock().expect("not poisoned").clone()
    }

    /// How many sends arrived so far.
    pub fn count(&self) -> usize {
        self.shared.sends.lock().expect("not poisoned").len()
    }

    /// The first accepted send whose text contains `needle`, if any yet.
    pub fn first_containing(&self, needle: &str) -> Option<Send> {
        let sends = self.shared.sends.lock().expect("not poisoned");
        sends
            .iter()
            .find(|s| s.accepted && s.what.contains(needle))
            .cloned()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.system.stop();
    }
}
