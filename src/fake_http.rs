//! One builder for fakes of the HTTP services the bot calls (Meta's Graph API, PagerDuty, Slack, a
//! deploy webhook, the health-checked services), so that the test suite and the load generator
//! start, script and read them the same way instead of each keeping a server of its own.
//!
//! A fake is an actix-web server on `127.0.0.1:0` in its own thread and actix system (the code
//! under test may run on another system, or be stopped and started again, without touching it).
//! It answers each request with the first of: a fixed answer ([`Builder::fixed`], e.g. health
//! paths), the next queued response ([`FakeHttp::respond_next`]), the script
//! ([`FakeHttp::script`]), the default answer ([`Builder::default_answer`]). It records every
//! request with its arrival time and the status it was answered with, unless told not to keep them
//! ([`Builder::keep_requests`]), and stops when dropped.
//!
//! ```no_run
//! use aof::fake_http::{FakeHttp, Response};
//! use serde_json::json;
//!
//! let fake = FakeHttp::builder()
//!     .default_answer(|_| Response::json(200, json!({ "ok": true })))
//!     .start()
//!     .expect("the fake starts");
//! fake.respond_next([Response::json(503, json!("busy"))]);
//! // ... point the code under test at `fake.address`, then:
//! assert!(fake.requests().iter().all(|r| r.method == "POST"));
//! ```

use actix_web::web::{self, Bytes};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One request a fake received, as the code under test sent it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    /// The headers, names lower-cased (the last value where a header repeats).
    pub headers: BTreeMap<String, String>,
    /// The body as received.
    pub raw: Bytes,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// When it arrived, on this process's clock (rates and orders are measured on it).
    pub at: Instant,
    /// The HTTP status it was answered with (0 while it is being answered).
    pub status: u16,
}

impl Request {
    /// The value of header `name` (lower case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An answer of a fake: a status and a JSON body, after a delay.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// How long the fake waits before it answers (a slow API); the request is recorded at once.
    pub delay: std::time::Duration,
}

impl Response {
    /// Answers `status` with `body` as JSON, at once.
    pub fn json(status: u16, body: Value) -> Response {
        Response {
            status,
            body,
            delay: std::time::Duration::ZERO,
        }
    }

    /// The same answer, `delay` later.
    pub fn after(self, delay: std::time::Duration) -> Response {
        Response { delay, ..self }
    }
}

impl From<(u16, Value)> for Response {
    fn from((status, body): (u16, Value)) -> Response {
        Response::json(status, body)
    }
}

/// An answer that may decline (`None`: ask the next in line).
type Answerer = Box<dyn FnMut(&Request) -> Option<Response> + Send>;
/// The answer when nothing else answered.
type Fallback = Box<dyn FnMut(&Request) -> Response + Send>;

/// What the handler shares with the [`FakeHttp`] that owns it.
struct Shared {
    fixed: Mutex<Answerer>,
    queued: Mutex<VecDeque<Response>>,
    script: Mutex<Answerer>,
    fallback: Mutex<Fallback>,
    keep: bool,
    requests: Mutex<Vec<Request>>,
}

/// Locks `m`; a test that panicked while holding a fake's lock must not hide its own failure
/// behind a poisoned lock here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a fake is set up before it starts: [`FakeHttp::builder`].
pub struct Builder {
    fixed: Answerer,
    fallback: Fallback,
    keep: bool,
}

impl Builder {
    /// Answers that neither queued responses nor a script replace (e.g. the health paths a Graph
    /// API fake always answers 200): `None` lets the request through to them.
    pub fn fixed(
        mut self,
        answer: impl FnMut(&Request) -> Option<Response> + Send + 'static,
    ) -> Builder {
        self.fixed = Box::new(answer);
        self
    }

    /// The answer when no fixed answer, queued response or script answered; until set, 500 with
    /// `"not scripted"`.
    pub fn default_answer(
        mut self,
        answer: impl FnMut(&Request) -> Response + Send + 'static,
    ) -> Builder {
        self.fallback = Box::new(answer);
        self
    }

    /// Whether every request is kept for [`FakeHttp::requests`] (yes unless set): a long load run
    /// that keeps what it needs itself (in its answers) need not hold every header and body.
    pub fn keep_requests(mut self, keep: bool) -> Builder {
        self.keep = keep;
        self
    }

    /// Starts the fake on a free loopback port in its own thread and actix system.
    pub fn start(self) -> std::io::Result<FakeHttp> {
        let shared = Arc::new(Shared {
            fixed: Mutex::new(self.fixed),
            queued: Mutex::default(),
            script: Mutex::new(Box::new(|_| None)),
            fallback: Mutex::new(self.fallback),
            keep: self.keep,
            requests: Mutex::default(),
        });
        let (tx, rx) = mpsc::channel();
        let data = web::Data::from(shared.clone());
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .default_service(web::to(handle))
                })
                // One worker: the fakes answer at once, and a load run's fake (aof-load) must
                // not take cores from the bot it measures.
                .workers(1)
                .bind("127.0.0.1:0");
                match server {
                    Ok(server) => {
                        let port = server.addrs()[0].port();
                        let _ = tx.send(Ok((port, actix_web::rt::System::current())));
                        let _ = server.run().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (port, system) = rx
            .recv()
            .map_err(|_| std::io::Error::other("the fake's thread ended before it listened"))??;
        Ok(FakeHttp {
            address: format!("http://127.0.0.1:{port}"),
            shared,
            system,
        })
    }
}

/// A running fake HTTP server; stops when dropped.
pub struct FakeHttp {
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub address: String,
    shared: Arc<Shared>,
    system: actix_web::rt::System,
}

impl FakeHttp {
    /// A fake to set up: every request kept, answering 500 until told otherwise.
    pub fn builder() -> Builder {
        Builder {
            fixed: Box::new(|_| None),
            fallback: Box::new(|_| {
                Response::json(500, serde_json::json!({ "error": "not scripted" }))
            }),
            keep: true,
        }
    }

    /// Answers the next requests (those no fixed answer took) with `responses`, in order, before
    /// the script is asked.
    pub fn respond_next(&self, responses: impl IntoIterator<Item = Response>) {
        lock(&self.shared.queued).extend(responses);
    }

    /// Answers through `script` from now on, before the default answer (`None`: leave it to the
    /// default answer); replaces the previous script.
    pub fn script(&self, script: impl FnMut(&Request) -> Option<Response> + Send + 'static) {
        *lock(&self.shared.script) = Box::new(script);
    }

    /// Every request received so far, in arrival order (none if it keeps none).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// Records a request and answers it from the first answerer in line.
async fn handle(
    req: actix_web::HttpRequest,
    raw: Bytes,
    shared: web::Data<Shared>,
) -> actix_web::HttpResponse {
    let at = Instant::now();
    let mut request = Request {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
        at,
        status: 0,
    };
    let response = (lock(&shared.fixed))(&request)
        .or_else(|| lock(&shared.queued).pop_front())
        .or_else(|| (lock(&shared.script))(&request))
        .unwrap_or_else(|| (lock(&shared.fallback))(&request));
    request.status = response.status;
    if shared.keep {
        lock(&shared.requests).push(request);
    }
    if !response.delay.is_zero() {
        actix_web::rt::time::sleep(response.delay).await;
    }
    let status = actix_web::http::StatusCode::from_u16(response.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    actix_web::HttpResponse::build(status).json(response.body)
}
