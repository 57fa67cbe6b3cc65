//! A fake of PagerDuty's REST API on [`aof::fake_http`]: it records method, path, query, headers
//! and body of every request, and answers from a script (500 until scripted).

use crate::common::*;
use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};

/// One request the fake PagerDuty received.
pub type PdRequest = aof::fake_http::Request;

/// A fake of PagerDuty's REST API on a random port.
pub struct FakePagerDuty {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    http: FakeHttp,
}

impl FakePagerDuty {
    /// Starts the fake; until scripted, every request is answered 500.
    pub fn start() -> FakePagerDuty {
        let http = FakeHttp::builder()
            .default_answer(|_| {
                Response::json(500, json!({ "error": { "message": "not scripted" } }))
            })
            .start()
            .expect("the fake PagerDuty starts");
        FakePagerDuty {
            address: http.address.clone(),
            http,
        }
    }

    /// Answers every request through `script` from now on.
    pub fn script(&self, mut script: impl FnMut(&PdRequest) -> (u16, Value) + Send + 'static) {
        self.http
            .script(move |req| Some(Response::from(script(req))));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<PdRequest> {
        self.http.requests()
    }
}

/// The shared fixture's on-calls (Priya level 1, Marco level 2, Dana level 3), with Marco's user
/// object carrying an email, as `include[]=users` makes PagerDuty send.
pub fn oncalls_fixture() -> Value {
    let mut body: Value =
        serde_json::from_slice(&fixture("pagerduty/oncalls-response.json")).expect("JSON fixture");
    body["oncalls"][1]["user"]["email"] = json!("marco@acme.example");
    body
}

/// Answers `GET /oncalls` with the fixture and incident writes with the incident in the new state.
pub fn pagerduty_that_works(pd: &FakePagerDuty) {
    pd.script(|req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/oncalls") => (200, oncalls_fixture()),
        ("PUT", path) if path.starts_with("/incidents/") => {
            let id = path.trim_start_matches("/incidents/");
            let change = &req.body["incident"];
            let status = change["status"].as_str().unwrap_or("triggered");
            (
                200,
                json!({ "incident": { "id": id, "type": "incident", "status": status,
                    "escalation_policy": { "id": "PESC4B8" } } }),
            )
        }
        _ => (
            404,
            json!({ "error": { "message": "Not Found", "code": 2100 } }),
        ),
    });
}
