//! A fake of Meta's Graph API (and of the services the health checker calls), on
//! [`aof::fake_http`]: it records every request with its arrival time, answers the health paths
//! with 200, and sends from a script, or with a success and a fresh `wamid.fake.N`.

use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One request the fake received.
pub type Recorded = aof::fake_http::Request;

/// What a send says, read from a recorded request's JSON body.
pub trait GraphSend {
    /// The recipient (`to`).
    fn to(&self) -> &str;
    /// The text body, or the template name.
    fn text(&self) -> &str;
}

impl GraphSend for Recorded {
    fn to(&self) -> &str {
        self.body["to"].as_str().unwrap_or_default()
    }

    fn text(&self) -> &str {
        self.body["text"]["body"]
            .as_str()
            .or_else(|| self.body["template"]["name"].as_str())
            .unwrap_or_default()
    }
}

/// The fake server.
pub struct FakeGraph {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    http: FakeHttp,
}

impl FakeGraph {
    /// Starts the fake on a random port in its own thread.
    pub fn start() -> FakeGraph {
        // Numbers only the default answers, so a test knows the first accepted send is wamid.fake.1.
        let accepted = Arc::new(AtomicU64::new(0));
        let http = FakeHttp::builder()
            .fixed(|req| {
                req.path
                    .starts_with("/health/")
                    .then(|| Response::json(200, json!({ "status": "ok" })))
            })
            .default_answer(move |req| {
                let n = accepted.fetch_add(1, Ordering::Relaxed) + 1;
                let to = &req.body["to"];
                Response::json(
                    200,
                    json!({ "messaging_product": "whatsapp", "contacts": [{ "input": to, "wa_id": to }],
                            "messages": [{ "id": format!("wamid.fake.{n}") }] }),
                )
            })
            .start()
            .expect("the fake Graph API starts");
        FakeGraph {
            address: http.address.clone(),
            http,
        }
    }

    /// Answers the next sends with these responses, in order.
    pub fn respond_next(&self, responses: Vec<(u16, Value)>) {
        self.http
            .respond_next(responses.into_iter().map(Response::from));
    }

    /// Answers sends through `script`, given the JSON body (`None`: the default success).
    pub fn script(&self, mut script: impl FnMut(&Value) -> Option<(u16, Value)> + Send + 'static) {
        self.http
            .script(move |req| script(&req.body).map(Response::from));
    }

    /// The message sends received so far (not health checks).
    pub fn sends(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/messages"))
            .collect()
    }

    /// Sends to `to` (digits) received so far.
    pub fn sends_to(&self, to: &str) -> Vec<Recorded> {
        self.sends().into_iter().filter(|r| r.to() == to).collect()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.http.requests()
    }
}
