//! Test harness: the real server on a random port, in its own actix system and thread (so that a
//! test can stop it and start it again on the same store, as a restart would), talking to a fake
//! Graph API that records every request it receives. [`TestApp::spawn_in`] (or [`TestApp::start`]
//! on a loaded config) is the one way the tests start the server.
//!
//! Shared by every test binary (`tests/api.rs`, `tests/cli.rs`, `tests/external.rs`,
//! `tests/rate_window.rs`), each of which uses a part of it: hence no dead-code warnings here.
#![allow(dead_code)]

pub mod chat;
pub mod digests;
pub mod fake_graph;
pub mod sandbox;
pub mod sending;

use anyhow::{anyhow, Context as _};
/// The store's public surface is its repository traits: tests read it through them.
#[allow(unused_imports)] // Not every binary reads the store.
pub use aof::store::{Alerts, Approvals, Deliveries, Incidents, Runs, WarRooms};
#[allow(unused_imports)] // Not every binary reads recorded sends.
pub use digests::named_in;
pub use fake_graph::{FakeGraph, GraphSend, Recorded};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The app secret every test config uses.
pub const APP_SECRET: &str = "test-app-secret";
/// The verify token every test config uses.
pub const VERIFY_TOKEN: &str = "test-verify-token";
/// The bearer token of the flow webhooks.
pub const WEBHOOK_TOKEN: &str = "test-webhook-token";
/// Alice, allowed and on call.
pub const ALICE: &str = "15551234567";
/// Bob, allowed.
pub const BOB: &str = "15557654321";
/// Carol, allowed (an approver in the story tests).
pub const CAROL: &str = "15550001234";
/// Mallory, not in allowed_numbers.
pub const MALLORY: &str = "15559990000";

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A payload from `tests/fixtures` (its README says what each stands for).
pub fn fixture(path: &str) -> Vec<u8> {
    let file = repo().join("tests/fixtures").join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}

/// What a test may change in the config.
#[derive(Clone)]
pub struct Options {
    /// `platforms.whatsapp.rate_limits.messages_per_second`.
    pub per_second: u32,
    /// `platforms.whatsapp.rate_limits.templates_per_day`.
    pub templates_per_day: u32,
    /// `flows.directory`; the repository's flows when `None`.
    pub flows_dir: Option<PathBuf>,
    /// `flows.watch`.
    pub watch: bool,
    /// `platforms.whatsapp.max_send_attempts`.
    pub max_send_attempts: u32,
    /// `sessions.idle_timeout_secs`.
    pub idle_timeout_secs: u64,
    /// `platforms.whatsapp.queue.enabled`.
    pub queue_enabled: bool,
    /// Extra YAML appended under `platforms.whatsapp` (indented by the caller with 4 spaces).
    pub whatsapp_extra: String,
    /// Extra YAML appended under `platforms.whatsapp.oncall` (indented with 6 spaces).
    pub oncall_extra: String,
    /// Extra YAML appended under `server` (indented with 2 spaces).
    pub server_extra: String,
    /// `platforms.whatsapp.rate_limits.per_person_interval_ms`: 0 (no pacing per person) unless a
    /// test is about it, so that the other tests need not wait six seconds between messages.
    pub per_person_interval_ms: u64,
    /// `platforms.whatsapp.rate_limits.per_person_burst`.
    pub per_person_burst: u32,
    /// `storage.url`; SQLite under the test's directory when `None`.
    pub storage_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            per_second: 50,
            templates_per_day: 1000,
            flows_dir: None,
            watch: false,
            max_send_attempts: 5,
            idle_timeout_secs: 900,
            queue_enabled: false,
            whatsapp_extra: String::new(),
            oncall_extra: String::new(),
            server_extra: String::new(),
            per_person_interval_ms: 0,
            per_person_burst: 3,
            storage_url: None,
        }
    }
}

/// A config for the real server against `graph`, storing under `dir`.
pub fn config_yaml(graph: &str, dir: &Path, o: &Options) -> String {
    let flows = o
        .flows_dir
        .clone()
        .unwrap_or_else(|| repo().join("flows/whatsapp"));
    format!(
        r#"version: v1
kind: TriggerConfig
server:
  host: "127.0.0.1"
  port: 0
  base_path: "/webhooks"
  webhook_token: "{WEBHOOK_TOKEN}"
  workers: 2
{server}
platforms:
  whatsapp:
    type: whatsapp
    phone_number_id: "106540352242922"
    access_token: "test-access-token"
    verify_token: "{VERIFY_TOKEN}"
    app_secret: "{APP_SECRET}"
    api_base_url: "{graph}/v21.0"
    max_send_attempts: {attempts}
    allowed_numbers:
      - "+1 555-123-4567"
      - "+1 (555) 765-4321"
      - "+15550001234"
    groups:
      sre-team: ["+15551234567", "+15557654321"]
    oncall:
      team_group: "sre-team"
{oncall}
    rate_limits:
      messages_per_second: {rate}
      templates_per_day: {templates}
      per_person_interval_ms: {pair_interval}
      per_person_burst: {pair_burst}
    queue:
      enabled: {queue}
      batch_size: 10
      batch_delay: 200
    security:
      audit:
        enabled: true
        include_content: false
{extra}
routing:
  default_flow: "whatsapp-help-flow"
  commands:
    "HELP": "whatsapp-help-flow"
    "STATUS": "status-check-flow"
  keywords:
    - pattern: "(?i)(incident|outage|down)"
      flow: "status-check-flow"
flows:
  directory: "{flows}"
  watch: {watch}
storage:
  url: "{db}"
sessions:
  idle_timeout_secs: {idle}
health_checks:
  timeout_ms: 1000
  services:
    api: {{ url: "{graph}/health/api" }}
    web: {{ url: "{graph}/health/web" }}
"#,
        attempts = o.max_send_attempts,
        rate = o.per_second,
        templates = o.templates_per_day,
        queue = o.queue_enabled,
        extra = o.whatsapp_extra,
        oncall = o.oncall_extra,
        server = o.server_extra,
        pair_interval = o.per_person_interval_ms,
        pair_burst = o.per_person_burst,
        flows = flows.display(),
        watch = o.watch,
        db = o
            .storage_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("aof.db").display())),
        idle = o.idle_timeout_secs,
    )
}

/// The running server.
pub struct TestApp {
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub address: String,
    /// Its temp directory (the store lives there).
    pub dir: PathBuf,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    /// An HTTP client.
    pub client: awc::Client,
}

impl TestApp {
    /// Waits until run `run_id` has ended; its record.
    pub async fn finished_run(&self, run_id: &str) -> aof::store::RunRecord {
        let store = store(&self.dir).await;
        sending::finished_run(&store, run_id)
            .await
            .unwrap_or_else(|| panic!("run {run_id} did not finish"))
    }

    /// Starts the server with a config file written to `dir`.
    pub async fn spawn_in(
        dir: &Path,
        graph: &FakeGraph,
        options: &Options,
    ) -> anyhow::Result<TestApp> {
        let file = dir.join("config.yaml");
        std::fs::write(&file, config_yaml(&graph.address, dir, options))?;
        let config = aof::config::load(&file).map_err(|e| anyhow!("{e}"))?;
        Self::start(dir, config).await
    }

    /// Starts the server on a loaded config; fails with the start-up error.
    pub async fn start(dir: &Path, config: aof::config::Config) -> anyhow::Result<TestApp> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let tokio = system.runtime().tokio_runtime().handle().clone();
            system.block_on(async move {
                match aof::app::start(config).await {
                    Ok(running) => {
                        let _ = tx.send(Ok((running.port, running.server.handle())));
                        let _ = running.server.await;
                        running.role.stop();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
            // Work cut off by the stop is dropped with the system; sqlx needs Tokio for that.
            let _context = tokio.enter();
            drop(system);
        });
        let (port, server) = match rx
            .recv_timeout(Duration::from_secs(30))
            .context("the server did not start")?
        {
            Ok(started) => started,
            Err(e) => {
                let _ = thread.join();
                return Err(anyhow!(e));
            }
        };
        Ok(TestApp {
            address: format!("http://127.0.0.1:{port}"),
            dir: dir.to_owned(),
            server,
            thread: Some(thread),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        })
    }

    /// Stops the server and its actors, as a process exit would.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Not graceful: in-flight work is cut off, as a crash or a kill would.
            let stopped = self.server.stop(false);
            std::thread::spawn(move || futures_executor(stopped));
            let _ = thread.join();
        }
    }

    /// `base_path` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/webhooks{path}", self.address)
    }

    /// POSTs a notification signed with the app secret.
    pub async fn post_signed(&self, body: &[u8]) -> u16 {
        let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body);
        self.post_raw(body, Some(&signature)).await
    }

    /// POSTs a notification with the given signature header (or none).
    pub async fn post_raw(&self, body: &[u8], signature: Option<&str>) -> u16 {
        let mut req = self
            .client
            .post(self.url("/whatsapp"))
            .insert_header(("content-type", "application/json"));
        if let Some(sig) = signature {
            req = req.insert_header(("x-hub-signature-256", sig));
        }
        req.send_body(body.to_vec())
            .await
            .expect("the server answers")
            .status()
            .as_u16()
    }

    /// A person types `text`.
    pub async fn say(&self, from: &str, text: &str) -> u16 {
        self.post_signed(
            text_notification(from, "Tester", text, &unique_id())
                .to_string()
                .as_bytes(),
        )
        .await
    }

    /// GETs a path under base_path; status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let mut res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers");
        let body = res.body().limit(1 << 22).await.expect("a body");
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// POSTs JSON with the webhook bearer token (or another `token`).
    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        let mut res = req.send_json(body).await.expect("the server answers");
        let bytes = res.body().await.unwrap_or_default();
        (
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Drives a future to completion on a throwaway runtime (the server handle's stop future).
fn futures_executor(f: impl std::future::Future<Output = ()>) {
    actix_web::rt::System::new().block_on(f);
}

/// Runs the `aofctl` binary in the repository's root with `args`, as a newcomer would.
pub fn aofctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aofctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("aofctl runs")
}

/// A fresh message id.
pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "wamid.test.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Now as Meta stamps messages: Unix seconds, as a string.
pub fn now_stamp() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// A WhatsApp notification from `tests/fixtures` with every message stamped now, as Meta would
/// deliver it today (the bot ignores messages older than `max_message_age_secs`).
pub fn fresh_fixture(path: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(path)).expect("a JSON fixture");
    for entry in body["entry"].as_array_mut().into_iter().flatten() {
        for change in entry["changes"].as_array_mut().into_iter().flatten() {
            for message in change["value"]["messages"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                message["timestamp"] = json!(now_stamp());
            }
        }
    }
    serde_json::to_vec(&body).expect("serializes")
}

/// A Meta notification carrying one text message.
pub fn text_notification(from: &str, name: &str, text: &str, id: &str) -> Value {
    notification(vec![(
        from,
        name,
        json!({ "from": from, "id": id, "timestamp": now_stamp(), "type": "text", "text": { "body": text } }),
    )])
}

/// A Meta notification carrying these messages, each with its contact.
pub fn notification(messages: Vec<(&str, &str, Value)>) -> Value {
    let contacts: Vec<Value> = messages
        .iter()
        .map(|(from, name, _)| json!({ "profile": { "name": name }, "wa_id": from }))
        .collect();
    let messages: Vec<Value> = messages.into_iter().map(|(_, _, m)| m).collect();
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242922" },
            "contacts": contacts, "messages": messages } }] }]
    })
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls an async check until it returns `Some` or `timeout` passes.
pub async fn eventually_async<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocks until `check` returns `Some` or `timeout` passes, checking every 20 ms: the waiting of
/// the tests that drive a child process from a plain thread (no runtime to yield to).
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp dir kept for the test's life.
pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

/// Opens the store the app uses, to check rows.
pub async fn store(dir: &Path) -> aof::store::SqliteStore {
    aof::store::SqliteStore::open(&format!("sqlite://{}", dir.join("aof.db").display()))
        .await
        .expect("the store opens")
}
