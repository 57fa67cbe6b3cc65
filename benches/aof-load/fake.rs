//! The fake of Meta's Graph API that the bot sends to during a run, on [`aof::fake_http`]: it answers
//! like the Cloud API (a wamid per accepted message, or `130429` to every n-th send when told to
//! throttle) and records when each send arrived, to whom and what it said, in this process, on the
//! same clock as the load generator.
//!
//! The fake keeps no request itself (a long run would hold every header and body): the answer
//! records the few fields a report reads, as the load generator's own fake did before.
//!
//! When told to ([`FakeGraph::send_statuses_to`]), it also plays Meta's side of delivery statuses:
//! each accepted send gets a `sent` status, naming the send's `biz_opaque_callback_data`, POSTed
//! (signed) to the bot's webhook (with replicas, a random live one for each attempt:
//! [`FakeGraph::send_statuses_to_any`]) and retried until answered 2xx, as Meta retries a webhook. It
//! also stands in for Slack (`POST /slack`) and a CI system's deploy webhook (`POST /deploy`,
//! recorded once per `Idempotency-Key`, as a CI system honouring the header starts it once).

use crate::setup::{self, Sent};
use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// Where accepted sends go to have their status sent, when statuses are on.
    statuses: Mutex<Option<mpsc::Sender<Sent>>>,
    /// Statuses the bot answered 2xx.
    statuses_delivered: AtomicU64,
    /// Status POSTs not answered 2xx (the bot down, or busy), each retried.
    status_retries: AtomicU64,
    /// Deployments received: `deploy|service|version|environment`, once per `Idempotency-Key`.
    deployments: Mutex<(std::collections::HashSet<String>, Vec<Send>)>,
    /// Set when the fake is dropped: the status thread stops retrying.
    stopped: AtomicBool,
    /// A process to kill with SIGKILL when the next send arrives, before it is answered.
    kill_at_send: Mutex<Option<u32>>,
    /// When the last such kill was made (the `kill` command returned).
    killed_at: Mutex<Option<Instant>>,
    /// WhatsApp's pair rate, when enforced: each recipient's theoretical arrival time.
    pair: Mutex<Option<PairRate>>,
}

/// One message every `every` to the same person, `burst` borrowed; beyond it Meta answers 131056.
struct PairRate {
    every: Duration,
    burst: u32,
    tat: std::collections::HashMap<String, Instant>,
}

impl PairRate {
    /// Whether a send to `to` at `at` is within the pair rate (and counts it when it is).
    fn admits(&mut self, to: &str, at: Instant) -> bool {
        let lead = self.every * self.burst.saturating_sub(1);
        let tat = self.tat.get(to).copied().unwrap_or(at).max(at);
        if tat.saturating_duration_since(at) > lead {
            return false;
        }
        self.tat.insert(to.to_owned(), tat + self.every);
        true
    }
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
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    let paired = match shared.pair.lock().expect("not poisoned").as_mut() {
        Some(pair) => pair.admits(&to, at),
        None => true,
    };
    if !paired {
        shared.sends.lock().expect("not poisoned").push(Send {
            at,
            to,
            what: describe(body),
            accepted: false,
        });
        return Response::json(
            400,
            json!({ "error": {
            "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "type": "OAuthException", "code": 131056,
            "error_data": { "messaging_product": "whatsapp",
                            "details": "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time." },
            "fbtrace_id": "AbCdPair" } }),
        );
    }
    let accepted = every == 0 || !n.is_multiple_of(every);
    shared.sends.lock().expect("not poisoned").push(Send {
        at,
        to: to.clone(),
        what: describe(body),
        accepted,
    });
    if let Some(pid) = shared.kill_at_send.lock().expect("not poisoned").take() {
        // The request reached "Meta"; the bot dies before it reads the answer.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        *shared.killed_at.lock().expect("not poisoned") = Some(Instant::now());
    }
    if accepted {
        let wamid = format!("wamid.load.{n}");
        if let Some(statuses) = shared.statuses.lock().expect("not poisoned").as_ref() {
            let _ = statuses.send(Sent {
                wamid: wamid.clone(),
                to: to.clone(),
                callback: body["biz_opaque_callback_data"].as_str().map(str::to_owned),
            });
        }
        Response::json(
            200,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": to, "wa_id": to }],
                "messages": [{ "id": wamid }]
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

/// Records a deployment the first time its `Idempotency-Key` comes.
fn deployment(shared: &Shared, at: Instant, key: Option<&str>, body: &Value) {
    let what = ["service", "version", "environment"]
        .map(|k| body[k].as_str().unwrap_or_default())
        .join("|");
    let mut deployments = shared.deployments.lock().expect("not poisoned");
    if deployments.0.insert(key.unwrap_or(&what).to_owned()) {
        deployments.1.push(Send {
            at,
            to: "deploy".into(),
            what: format!("deploy|{what}"),
            accepted: true,
        });
    }
}

/// POSTs `signed` to `path` on `host` (`127.0.0.1:PORT`) over a fresh connection; the status code.
fn post_once(host: &str, path: &str, signed: &setup::Signed) -> std::io::Result<u16> {
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        signed.signature,
        signed.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&signed.body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// Where statuses go: the bots' base addresses (`http://127.0.0.1:PORT`; one of them, at random,
/// for each attempt, as Meta's webhook reaches whichever replica a load balancer picks) and the
/// webhook's path.
struct Targets {
    bases: Arc<Mutex<Vec<String>>>,
    path: String,
}

impl Targets {
    /// POSTs `signed` once to a random base; whether it was answered 2xx.
    fn post(&self, signed: &setup::Signed) -> bool {
        let base = {
            let bases = self.bases.lock().expect("not poisoned");
            if bases.is_empty() {
                return false;
            }
            bases[rand::random_range(0..bases.len())].clone()
        };
        let Some(host) = base.strip_prefix("http://") else {
            return false;
        };
        post_once(host.trim_end_matches('/'), &self.path, signed)
            .is_ok_and(|code| (200..300).contains(&code))
    }
}

/// The status thread: batches what came (at most 50 a notification, as Meta batches), POSTs each
/// batch until a bot answers 2xx, until the fake is dropped.
fn deliver_statuses(shared: Arc<Shared>, sent: mpsc::Receiver<Sent>, targets: Targets) {
    loop {
        let first = match sent.recv_timeout(Duration::from_millis(100)) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) if !shared.stopped.load(Ordering::Relaxed) => {
                continue
            }
            Err(_) => return,
        };
        let mut batch = vec![first];
        while batch.len() < 50 {
            match sent.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let signed = setup::status_notification(&batch);
        loop {
            if shared.stopped.load(Ordering::Relaxed) {
                return;
            }
            if targets.post(&signed) {
                let n = batch.len() as u64;
                shared.statuses_delivered.fetch_add(n, Ordering::Relaxed);
                break;
            }
            shared.status_retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
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
                } else if req.method == "POST" && req.path == "/slack" {
                    Response::json(200, json!("ok"))
                } else if req.method == "POST" && req.path == "/deploy" {
                    deployment(&answers, req.at, req.header("idempotency-key"), &req.body);
                    Response::json(200, json!({ "status": "started" }))
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

    /// From now on, answers 131056 to a send beyond WhatsApp's pair rate: one message every
    /// `every` to the same person, `burst` borrowed.
    pub fn enforce_pair_rate(&self, every: Duration, burst: u32) {
        *self.shared.pair.lock().expect("not poisoned") = Some(PairRate {
            every,
            burst,
            tat: std::collections::HashMap::new(),
        });
    }

    /// Answers every `n`-th send with `130429` from now on (0: never).
    pub fn throttle_every(&self, n: u64) {
        self.shared.throttle_every.store(n, Ordering::Relaxed);
    }

    /// From now on, sends a `sent` status for every accepted send to `webhook`
    /// (`http://127.0.0.1:PORT/path`), retrying each until it is answered 2xx.
    pub fn send_statuses_to(&self, webhook: &str) -> anyhow::Result<()> {
        let rest = webhook
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("not an http:// address: {webhook}"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let bases = Arc::new(Mutex::new(vec![format!("http://{host}")]));
        self.send_statuses_to_any(bases, path);
        Ok(())
    }

    /// From now on, sends a `sent` status for every accepted send to `path` on one of `bases`
    /// (`http://127.0.0.1:PORT`, read at each attempt: the caller adds and removes replicas), a
    /// random one each time, retrying each batch (on another one) until it is answered 2xx.
    pub fn send_statuses_to_any(&self, bases: Arc<Mutex<Vec<String>>>, path: &str) {
        let (tx, rx) = mpsc::channel();
        *self.shared.statuses.lock().expect("not poisoned") = Some(tx);
        let targets = Targets {
            bases,
            path: path.to_owned(),
        };
        let shared = self.shared.clone();
        std::thread::spawn(move || deliver_statuses(shared, rx, targets));
    }

    /// Kills process `pid` with SIGKILL when the next send arrives, before answering it (a crash
    /// with that request at Meta); [`FakeGraph::disarm`] says whether it happened.
    pub fn kill_at_next_send(&self, pid: u32) {
        *self.shared.kill_at_send.lock().expect("not poisoned") = Some(pid);
    }

    /// Takes back a [`FakeGraph::kill_at_next_send`]; true when the kill had happened.
    pub fn disarm(&self) -> bool {
        self.shared
            .kill_at_send
            .lock()
            .expect("not poisoned")
            .take()
            .is_none()
    }

    /// When the fake last killed a process as a send reached it.
    pub fn killed_at(&self) -> Option<Instant> {
        *self.shared.killed_at.lock().expect("not poisoned")
    }

    /// Whether a kill is armed and has not happened yet.
    pub fn armed(&self) -> bool {
        self.shared
            .kill_at_send
            .lock()
            .expect("not poisoned")
            .is_some()
    }

    /// Statuses the bot answered 2xx so far, and status POSTs retried.
    pub fn statuses(&self) -> (u64, u64) {
        (
            self.shared.statuses_delivered.load(Ordering::Relaxed),
            self.shared.status_retries.load(Ordering::Relaxed),
        )
    }

    /// The deployments received so far, once per `Idempotency-Key`, as sends to `deploy`.
    pub fn deployments(&self) -> Vec<Send> {
        self.shared
            .deployments
            .lock()
            .expect("not poisoned")
            .1
            .clone()
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
    /// Stops the status thread (it would otherwise retry for a bot that is gone).
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
    }
}
