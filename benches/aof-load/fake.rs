//! The fake of Meta's Graph API that the bot sends to during a run, on [`aof::fake_http`]: it answers
//! like the Cloud API (a wamid per accepted message, or `130429` to every n-th send when told to
//! throttle) and records when each send arrived, to whom and what it said, in this process, on the
//! same clock as the load generator.
//!
//! The fake keeps no request itself (a long run would hold every header and body): the answer
//! records the few fields a report reads, as the load generator's own fake did before.

use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The server, kept for its life: dropping it stops the fake.
    _http: FakeHttp,
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

/// Answers a send (`POST /v21.0/{phone}/messages`) and records it.
fn message(shared: &Shared, at: Instant, body: &Value) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let every = shared.throttle_every.load(Ordering::Relaxed);
    let accepted = every == 0 || !n.is_multiple_of(every);
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    shared.sends.lock().expect("not poisoned").push(Send {
        at,
        to: to.clone(),
        what: describe(body),
        accepted,
    });
    if accepted {
        Response::json(
            200,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": to, "wa_id": to }],
                "messages": [{ "id": format!("wamid.load.{n}") }]
            }),
        )
    } else {
        Response::json(
            400,
            json!({ "error": {
            "message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
            "error_data": { "messaging_product": "whatsapp",
                            "details": "Message failed to send because there were too many messages sent from this phone number in a short period of time." },
            "fbtrace_id": "AbCdLoad" } }),
        )
    }
}

/// Whether `path` is `/v21.0/{phone}/messages`.
fn is_send(path: &str) -> bool {
    path.strip_prefix("/v21.0/")
        .and_then(|rest| rest.strip_suffix("/messages"))
        .is_some_and(|phone| !phone.is_empty() && !phone.contains('/'))
}

impl FakeGraph {
    /// Starts the fake on a random loopback port, in its own thread and actix system.
    pub fn start() -> anyhow::Result<FakeGraph> {
        let shared = Arc::new(Shared::default());
        let answers = shared.clone();
        let http = FakeHttp::builder()
            .keep_requests(false)
            .default_answer(move |req| {
                if req.method == "POST" && is_send(&req.path) {
                    message(&answers, req.at, &req.body)
                } else if req.path.starts_with("/health/") {
                    Response::json(200, json!({ "status": "ok" }))
                } else {
                    Response::json(404, Value::Null)
                }
            })
            .start()?;
        Ok(FakeGraph {
            address: http.address.clone(),
            shared,
            _http: http,
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
