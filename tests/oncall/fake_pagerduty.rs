//! A fake of PagerDuty's REST API that records method, path, query, headers and body of every
//! request, and answers from a script.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

/// One request the fake PagerDuty received.
#[derive(Debug, Clone)]
pub struct PdRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    headers: BTreeMap<String, String>,
    pub body: Value,
}

impl PdRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

type PdScript = Box<dyn FnMut(&PdRequest) -> (u16, Value) + Send>;

/// A fake of PagerDuty's REST API on a random port.
pub struct FakePagerDuty {
    pub address: String,
    requests: Arc<Mutex<Vec<PdRequest>>>,
    script: Arc<Mutex<PdScript>>,
    system: actix_web::rt::System,
}

#[derive(Clone)]
struct PdShared {
    requests: Arc<Mutex<Vec<PdRequest>>>,
    script: Arc<Mutex<PdScript>>,
}

async fn pd_handle(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    shared: actix_web::web::Data<PdShared>,
) -> actix_web::HttpResponse {
    let recorded = PdRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (status, answer) = (shared.script.lock().unwrap())(&recorded);
    shared.requests.lock().unwrap().push(recorded);
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(answer)
}

impl FakePagerDuty {
    /// Starts the fake; until scripted, every request is answered 500.
    pub fn start() -> FakePagerDuty {
        let shared = PdShared {
            requests: Arc::default(),
            script: Arc::new(Mutex::new(Box::new(|_: &PdRequest| {
                (500, json!({ "error": { "message": "not scripted" } }))
            }))),
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
                        .default_service(actix_web::web::to(pd_handle))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind the fake PagerDuty");
                let port = server.addrs()[0].port();
                tx.send((port, actix_web::rt::System::current())).unwrap();
                let _ = server.run().await;
            });
        });
        let (port, system) = rx.recv().expect("the fake PagerDuty starts");
        FakePagerDuty {
            address: format!("http://127.0.0.1:{port}"),
            requests: shared.requests,
            script: shared.script,
            system,
        }
    }

    pub fn script(&self, script: impl FnMut(&PdRequest) -> (u16, Value) + Send + 'static) {
        *self.script.lock().unwrap() = Box::new(script);
    }

    pub fn requests(&self) -> Vec<PdRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.system.stop();
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
