//! `aofctl simulate`: what would the bot do with this message (or this webhook call)? It starts the
//! bot in-process on the sandbox transport with the agents in dry-run mode
//! ([`crate::agents::DryRun`]), against a scratch copy of the store (the real one with `--commit`),
//! feeds the message through the same HTTP endpoint real traffic takes, waits for the runs it
//! causes, and reports (`report`):
//!
//! ```text
//!  --from N TEXT ──POST /sandbox/inbound──┐                    ┌─ Live: runs, steps, sends
//!  --webhook P --data J ──POST P──────────┴─> the bot (port 0) ─┼─ DryRun: calls not made
//!                                                              └─ scheduler: timers set
//! ```
//!
//! Nothing leaves the process: WhatsApp messages land in the sandbox outbox, and deployments,
//! Slack, email, PagerDuty and health checks are recorded instead of made. Messages the store still
//! had queued and timers already due are left to the real bot (`resume_pending: false`).

mod report;

use crate::agents::DryRun;
use crate::app::{self, StartError, StartOptions};
use crate::config::{Config, Secret, TransportKind};
use crate::live::LiveEvent;
use aof_actors::model::now_ms;
use aof_actors::WaId;
use report::{Heard, Outcome, Report, RouteNote, StoreNote};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Silence that ends the wait once every run has finished and the queue is empty.
const QUIET: Duration = Duration::from_millis(300);

/// How long a message that starts no run (no route, a refused sender) is given before the wait
/// concludes that nothing ran.
const NOTHING_RAN: Duration = Duration::from_secs(1);

/// How long the end of a run may take to reach the store once it was announced (`--commit`).
const RECORD_WAIT: Duration = Duration::from_secs(2);

/// What starts the simulated run.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A WhatsApp message, as `from` would type it.
    Message {
        /// The sender's number, any common notation.
        from: String,
        /// What they type.
        text: String,
        /// Their WhatsApp profile name; the number when absent.
        name: Option<String>,
    },
    /// A POST to a flow's webhook (an alert, a deployment request).
    Webhook {
        /// The path, as `aofctl flows list` shows it (`/alert/oncall` or `/webhooks/alert/oncall`).
        path: String,
        /// The JSON body, or `@file.json`.
        data: String,
    },
}

/// `aofctl simulate`'s arguments.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// What to simulate.
    pub trigger: Trigger,
    /// Use the real store and keep what the runs change in it (still nothing is sent).
    pub commit: bool,
    /// The longest wait for the runs to end.
    pub timeout: Duration,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// `--from` is not a phone number.
    #[error("--from `{0}`: not a phone number; write it as +15551234567")]
    Number(String),
    /// `--data` is not a JSON object, or its file cannot be read.
    #[error("--data: {0}")]
    Data(String),
    /// The scratch copy of the store could not be made.
    #[error("{file}: storage.url `{url}`: cannot copy the store to a scratch file: {reason}; fix storage.url, or pass --commit to run against the store itself")]
    Scratch {
        /// The config file.
        file: String,
        /// The configured url.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The bot did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The bot refused the message or the webhook call; nothing ran.
    #[error("{what} answered HTTP {status}: {body}; nothing ran")]
    Refused {
        /// The endpoint.
        what: String,
        /// Its status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// The in-process HTTP call failed.
    #[error("{what}: the bot did not answer: {reason}")]
    Unanswered {
        /// The endpoint.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Runs the simulation and returns the report to print.
pub fn run(mut config: Config, options: SimulateOptions) -> Result<String, SimulateError> {
    let body = match &options.trigger {
        Trigger::Webhook { data, .. } => Some(read_data(data)?),
        Trigger::Message { from, .. } => {
            WaId::parse(from).ok_or_else(|| SimulateError::Number(from.clone()))?;
            None
        }
    };
    let scratch = tempfile::tempdir().map_err(|e| SimulateError::Scratch {
        file: config.file.display().to_string(),
        url: config.storage.url.clone(),
        reason: format!("cannot create a temp directory: {e}"),
    })?;
    let system = actix_web::rt::System::new();
    let tokio = system.runtime().tokio_runtime().handle().clone();
    let result = system.block_on(async {
        let store = prepare_store(&mut config, options.commit, scratch.path()).await?;
        simulate(config, &options, body, store).await
    });
    // As in `app::serve`: the pool's connections go back on drop, which needs the Tokio context.
    let _context = tokio.enter();
    drop(system);
    drop(scratch);
    result
}

/// `--data`: inline JSON, or `@path` to read it from a file.
fn read_data(data: &str) -> Result<Value, SimulateError> {
    let text = match data.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| SimulateError::Data(format!("cannot read {path}: {e}")))?,
        None => data.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(SimulateError::Data(
            "expected a JSON object, like '{\"severity\": \"critical\"}'".into(),
        )),
        Err(e) => Err(SimulateError::Data(format!("not valid JSON: {e}"))),
    }
}

/// Points `storage.url` at a scratch copy of the store (unless `commit`) and says what was done.
async fn prepare_store(
    config: &mut Config,
    commit: bool,
    scratch: &Path,
) -> Result<StoreNote, SimulateError> {
    let url = config.storage.url.clone();
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(StoreNote::InMemory);
    }
    if crate::store::is_postgres(&url) {
        let named = crate::store::postgres::redacted(&url);
        if commit {
            return Ok(StoreNote::Committed(named));
        }
        config.storage.url = format!("sqlite://{}", scratch.join("aof.db").display());
        return Ok(StoreNote::Shared(named));
    }
    let real = SqliteConnectOptions::from_str(&url)
        .map(|o| o.get_filename().to_path_buf())
        .unwrap_or_else(|_| PathBuf::from(&url));
    if commit {
        return Ok(StoreNote::Committed(real.display().to_string()));
    }
    let copy = scratch.join("aof.db");
    config.storage.url = format!("sqlite://{}", copy.display());
    if !real.exists() {
        return Ok(StoreNote::Fresh(real));
    }
    snapshot(&url, &copy)
        .await
        .map_err(|reason| SimulateError::Scratch {
            file: config.file.display().to_string(),
            url,
            reason,
        })?;
    Ok(StoreNote::Scratch(real))
}

/// A consistent copy of the database at `url` in `into` (`VACUUM INTO`), even while a running bot
/// writes to it; read-only when SQLite allows it.
async fn snapshot(url: &str, into: &Path) -> Result<(), String> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let mut connection = match options.clone().read_only(true).connect().await {
        Ok(connection) => connection,
        // A WAL database without its -shm file cannot be opened read-only; reading it read-write
        // changes nothing in it either.
        Err(_) => options.connect().await.map_err(|e| e.to_string())?,
    };
    sqlx::query("VACUUM INTO ?1")
        .bind(into.display().to_string())
        .execute(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    connection.close().await.map_err(|e| e.to_string())
}

/// Forces what makes the run safe: the sandbox transport, a private port, no reloads, a token only
/// this process knows.
fn override_for_simulation(config: &mut Config) -> String {
    let token = aof_actors::ids::new_id("simulate");
    config.platforms.whatsapp.transport = TransportKind::Sandbox;
    config.server.host = "127.0.0.1".into();
    config.server.port = 0;
    config.server.workers = Some(1);
    config.server.webhook_token = Some(Secret::new(token.clone()));
    config.flows.watch = false;
    token
}

async fn simulate(
    mut config: Config,
    options: &SimulateOptions,
    body: Option<Value>,
    store: StoreNote,
) -> Result<String, SimulateError> {
    let token = override_for_simulation(&mut config);
    let base = config.server.base_path.clone();
    let dry_run = DryRun::new();
    let start = StartOptions {
        dry_run: Some(dry_run.clone()),
        resume_pending: false,
    };
    let running = app::start_with(config.clone(), start).await?;
    let server = running.server.handle();
    actix_web::rt::spawn(running.server);
    let live = running
        .live
        .clone()
        .expect("the sandbox transport, forced above, creates a Live");
    let address = format!("http://127.0.0.1:{}", running.port);
    let mut report = Report::new(&config, store);

    let from = match &options.trigger {
        Trigger::Message { from, text, .. } => {
            let wa = WaId::parse(from).ok_or_else(|| SimulateError::Number(from.clone()))?;
            report.route =
                Some(route_note(&config, &running.routes, running.store.as_ref(), &wa, text).await);
            Some(wa)
        }
        Trigger::Webhook { .. } => None,
    };
    let (_, mut events) = live.subscribe();
    let sent = match (&options.trigger, body) {
        (Trigger::Message { from, text, name }, _) => {
            let url = format!("{address}{base}/sandbox/inbound");
            let message = json!({ "from": from, "text": text, "name": name });
            post(&url, "the sandbox inbound endpoint", &message, None)
                .await
                .map(|_| ())
        }
        (Trigger::Webhook { path, .. }, Some(body)) => {
            webhook(&address, &base, path, &body, &token, &mut report).await
        }
        (Trigger::Webhook { .. }, None) => Ok(()),
    };
    if let Err(e) = sent {
        server.stop(false).await;
        running.role.stop();
        return Err(e);
    }

    let handle = running
        .role
        .leading()
        .map(|l| l.handle.clone())
        .expect("simulate leads from the start: it takes no lease");
    let heard = wait(&mut events, &handle, options.timeout).await;
    let timers = handle.timers().await;
    if matches!(report.store, StoreNote::Committed(_)) {
        recorded(running.store.as_ref(), &heard).await;
    }
    server.stop(true).await;
    running.role.stop();
    report.missed = heard.missed;
    report.events = heard.events;
    report.outcome = heard.outcome;
    report.calls = dry_run.calls();
    report.timers = timers;
    report.from = from;
    Ok(report.render())
}

/// POSTs `body` to the bot's own endpoint; the answer's JSON, or why the bot refused it.
async fn post(
    url: &str,
    what: &str,
    body: &Value,
    token: Option<&str>,
) -> Result<(u16, Value), SimulateError> {
    let mut request = crate::agents::http_client()
        .post(url)
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let what = what.to_owned();
    let mut response = request
        .send_json(body)
        .await
        .map_err(|e| SimulateError::Unanswered {
            what: what.clone(),
            reason: e.to_string(),
        })?;
    let status = response.status().as_u16();
    let bytes = response.body().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(SimulateError::Refused {
            what,
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Calls the flow webhook at `path` (under `base` too, for the explicitly routed endpoints such as
/// `/whatsapp/pagerduty`), and notes the bot's answer.
async fn webhook(
    address: &str,
    base: &str,
    path: &str,
    body: &Value,
    token: &str,
    report: &mut Report,
) -> Result<(), SimulateError> {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let what = format!("the webhook {path}");
    let first = post(&format!("{address}{path}"), &what, body, Some(token)).await;
    let answer = match first {
        Err(SimulateError::Refused { status: 404, .. })
            if !base.is_empty() && !path.starts_with(base) =>
        {
            post(&format!("{address}{base}{path}"), &what, body, Some(token)).await
        }
        other => other,
    };
    let (status, answer) = answer.map_err(|e| match e {
        SimulateError::Refused {
            what,
            status: 404,
            body,
        } => SimulateError::Refused {
            what,
            status: 404,
            body: format!("{body} (no flow has a webhook trigger there; `aofctl flows list` shows each flow's path)"),
        },
        other => other,
    })?;
    report.webhook = Some((path, status, answer));
    Ok(())
}

/// Why the message goes where it goes: a pending `on_response` first (the session checks those),
/// then a war room the person is in, then the static routes.
async fn route_note(
    config: &Config,
    routes: &crate::flow::Routes,
    store: &dyn crate::store::Repositories,
    wa: &WaId,
    text: &str,
) -> RouteNote {
    use aof_actors::model::RouteReason;
    use aof_actors::ports::RouteTable as _;
    let allowed = app::allowed_senders(config);
    let refused = !allowed.is_empty() && !allowed.contains(wa);
    let flows = routes.flows();
    let route = routes.route(wa, text);
    // The route table does not say which of a flow's patterns matched; the same search does.
    let pattern = match &route {
        Some(r) if r.reason == RouteReason::FlowTrigger => flows
            .get(&r.flow)
            .and_then(|f| f.patterns.iter().find(|re| re.is_match(text.trim())))
            .map(|re| re.as_str().to_owned()),
        _ => None,
    };
    let conversation = store
        .load_conversation(wa.clone())
        .await
        .unwrap_or_default();
    let now = now_ms();
    let pending = conversation
        .expectations
        .into_iter()
        .find(|e| e.answers(text, now));
    let room = route
        .as_ref()
        .filter(|r| r.reason == RouteReason::Relay)
        .and_then(|r| r.captures.first().cloned());
    RouteNote {
        text: text.trim().to_owned(),
        refused,
        pending,
        room,
        route,
        pattern,
    }
}

/// Collects what happens until every run that started has finished, the queue is empty and
/// nothing new came for [`QUIET`]; or until `timeout`.
async fn wait(
    events: &mut tokio::sync::broadcast::Receiver<crate::live::Numbered>,
    handle: &aof_actors::Handle,
    timeout: Duration,
) -> Heard {
    let began = Instant::now();
    let deadline = began + timeout;
    let mut heard = Heard::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // What already happened is shown, even when the time ran out before it was read.
            while let Ok(numbered) = events.try_recv() {
                heard.note(numbered.event);
            }
            let queue = handle.queue_stats().await;
            heard.outcome = Outcome::TimedOut {
                after: timeout,
                running: heard.running(),
                queued: queue.queued + queue.in_flight,
            };
            return heard;
        }
        match actix_web::rt::time::timeout(QUIET.min(left), events.recv()).await {
            Ok(Ok(numbered)) => {
                heard.note(numbered.event);
                continue;
            }
            Ok(Err(RecvError::Lagged(missed))) => {
                heard.missed += missed;
                continue;
            }
            Ok(Err(RecvError::Closed)) => return heard,
            Err(_quiet) => {}
        }
        let nothing_yet = heard.started() == 0 && began.elapsed() < NOTHING_RAN;
        if heard.running() > 0 || nothing_yet {
            continue;
        }
        let queue = handle.queue_stats().await;
        if queue.queued == 0 && queue.in_flight == 0 {
            return heard;
        }
    }
}

/// Waits until the store has the end of each run that finished: the engine announces the end
/// before it writes it, and `--commit` must not stop the bot in between.
async fn recorded(store: &dyn crate::store::Repositories, heard: &Heard) {
    let deadline = Instant::now() + RECORD_WAIT;
    for event in &heard.events {
        let LiveEvent::RunFinished { run_id, .. } = event else {
            continue;
        };
        while Instant::now() < deadline {
            match store.run(run_id).await {
                Ok(Some(run)) if run.finished_ms.is_some() => break,
                _ => actix_web::rt::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_a_json_object_inline_or_from_a_file() {
        assert_eq!(
            read_data(r#"{"severity": "critical"}"#).expect("an object")["severity"],
            "critical"
        );
        assert!(matches!(read_data("[1]"), Err(SimulateError::Data(_))));
        assert!(matches!(read_data("{"), Err(SimulateError::Data(_))));
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("alert.json");
        std::fs::write(&file, r#"{"service": "api"}"#).expect("written");
        let value = read_data(&format!("@{}", file.display())).expect("read");
        assert_eq!(value["service"], "api");
        assert!(matches!(
            read_data("@/nonexistent/alert.json"),
            Err(SimulateError::Data(_))
        ));
    }
}
