//! Start-up: opens the store, loads and validates the flows, starts the actors and the HTTP server,
//! and reports the port it bound. Every failure is a [`StartError`] that says what to fix.

use crate::agents::{DryRun, Registry, Services};
use crate::config::{Config, TransportKind};
use crate::flow::expr::Expressions;
use crate::flow::watch::Reloader;
use crate::flow::{FlowEngine, FlowLoadError, FlowSet, Routes};
use crate::http::{self, AppState};
use crate::live::Live;
use crate::store::{Repositories, SqliteStore};
use crate::transport::{CloudApi, Sandbox, SandboxOutbox};
use actix_web::{web, App, HttpServer};
use aof_actors::ports::{FlowRunner, Transport};
use aof_actors::rate_limiter::RateSettings;
use aof_actors::runtime::Ports;
use aof_actors::sender::SenderSettings;
use aof_actors::webhook::WebhookSettings;
use aof_actors::{Handle, Runtime, RuntimeSettings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Why the bot did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("{file}: storage.url: {message}")]
    Store {
        /// The config file.
        file: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// `flows.directory` does not exist.
    #[error("{file}: flows.directory: `{dir}` is not a directory; create it, or point flows.directory at the folder of AgentFlow YAML files (relative to the working directory)")]
    FlowDirectory {
        /// The config file.
        file: String,
        /// The directory as configured.
        dir: String,
    },
    /// Flows failed to load.
    #[error(transparent)]
    Flows(#[from] FlowLoadError),
    /// The port could not be bound.
    #[error("{file}: server.port: cannot listen on {addr}: {reason}; stop what uses it or choose another server.port")]
    Bind {
        /// The config file.
        file: String,
        /// host:port.
        addr: String,
        /// The OS error.
        reason: String,
    },
    /// The flow directory cannot be watched.
    #[error("{file}: flows.watch: cannot watch {dir}: {message}; set flows.watch: false")]
    Watch {
        /// The config file.
        file: String,
        /// The directory.
        dir: String,
        /// The watcher's error.
        message: String,
    },
}

/// The running bot.
pub struct Running {
    /// The port the HTTP server listens on (useful with `server.port: 0`).
    pub port: u16,
    /// The HTTP server; await it to run until a signal stops it.
    pub server: actix_web::dev::Server,
    /// The actors.
    pub handle: Handle,
    /// Keeps the session threads.
    pub runtime: Runtime,
    /// What happens as it happens (sandbox transport only).
    pub live: Option<Live>,
    /// The store it opened (`aofctl simulate` reads the runs it caused).
    pub store: Arc<dyn Repositories>,
    /// The route table the actors use (`aofctl simulate` explains a message's route with it).
    pub routes: Arc<Routes>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// The process-wide Prometheus recorder (metrics macros write to one global recorder).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

fn runtime_settings(config: &Config, lookback: usize, resume: bool) -> RuntimeSettings {
    let whatsapp = &config.platforms.whatsapp;
    let per_second =
        NonZeroU32::new(whatsapp.rate_limits.messages_per_second).unwrap_or(NonZeroU32::MIN);
    RuntimeSettings {
        webhook: WebhookSettings {
            allowed: allowed_senders(config),
            audit: whatsapp.security.audit.enabled,
            include_content: whatsapp.security.audit.include_content,
            recent_ids: 100_000,
        },
        rate: RateSettings {
            per_second,
            // Sends that leave the limiter a second apart can reach Meta closer together: the
            // window is 1.05 s, so 50 ms of jitter on the way cannot put one too many in Meta's
            // second (15 ms let 51 arrive within a second at the test suite's fake).
            window_margin: Duration::from_millis(50),
            templates_per_day: whatsapp.rate_limits.templates_per_day,
            max_in_flight: (per_second.get() as usize * 2).max(16),
            broadcast_batch: whatsapp
                .queue
                .enabled
                .then_some(whatsapp.queue.batch_size as usize),
            broadcast_batch_delay: Duration::from_millis(whatsapp.queue.batch_delay),
        },
        sender: SenderSettings {
            max_attempts: whatsapp.max_send_attempts,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            halt_pause: Duration::from_secs(60),
        },
        lookback,
        idle_timeout: Duration::from_secs(config.sessions.idle_timeout_secs),
        session_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        mailbox_capacity: config.server.mailbox_capacity,
        resume,
    }
}

/// Who may write to the bot: `allowed_numbers` and `security.allowed_numbers`; when both are empty
/// and `security.require_verified` is set, only numbers the config knows (on-call rota, groups).
pub(crate) fn allowed_senders(config: &Config) -> std::collections::HashSet<aof_actors::WaId> {
    let whatsapp = &config.platforms.whatsapp;
    let mut allowed: std::collections::HashSet<_> = whatsapp.allowed().into_iter().collect();
    if allowed.is_empty() && whatsapp.security.require_verified {
        let rota = whatsapp
            .oncall
            .static_oncall
            .iter()
            .map(|e| e.phone.as_str());
        let groups = whatsapp.groups.values().flatten().map(String::as_str);
        allowed.extend(rota.chain(groups).filter_map(aof_actors::WaId::parse));
    }
    allowed
}

/// How a start differs from `aofctl trigger serve`'s; the default is that.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Record the agents' calls to the outside world instead of making them (`aofctl simulate`).
    pub dry_run: Option<DryRun>,
    /// Send the messages the store still has queued and fire the timers that are due, as a restart
    /// must. `simulate` turns it off: they belong to the real bot, not to the message simulated.
    pub resume_pending: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            dry_run: None,
            resume_pending: true,
        }
    }
}

/// Starts everything on the current actix system. The flows are loaded and checked first, so a bad
/// flow stops start-up before anything listens.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with(config, StartOptions::default()).await
}

/// [`start`], with `options`.
pub async fn start_with(config: Config, options: StartOptions) -> Result<Running, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Arc::new(config);
    let file = config.file.display().to_string();
    let whatsapp = &config.platforms.whatsapp;

    if !whatsapp.security.verify_signatures {
        tracing::warn!("security.verify_signatures is false: anyone who can reach the webhook can impersonate Meta");
    }
    if !config.flows.directory.is_dir() {
        let dir = config.flows.directory.display().to_string();
        return Err(StartError::FlowDirectory { file, dir });
    }
    let registry = Arc::new(Registry::builtin());
    let expressions = Arc::new(Expressions::new());
    let flows = Arc::new(FlowSet::load_dir(
        &config.flows.directory,
        &registry,
        &expressions,
        &whatsapp.templates,
    )?);
    warn_missing_routes(&config, &flows);
    for unset in crate::flow::config_reads::unset(&flows, &config) {
        tracing::warn!("{unset}");
    }
    let store: Arc<dyn Repositories> = Arc::new(
        SqliteStore::open(&config.storage.url)
            .await
            .map_err(|e| StartError::Store {
                file: file.clone(),
                message: e.to_string(),
            })?,
    );

    let (live, outbox) = match whatsapp.transport {
        TransportKind::Sandbox => {
            let (live, outbox) = restored_sandbox(&store).await;
            (Some(live), Some(outbox))
        }
        TransportKind::CloudApi => (None, None),
    };
    let transport: Rc<dyn Transport> = match &outbox {
        Some(outbox) => Rc::new(Sandbox::new(outbox.clone()).with_templates(&whatsapp.templates)),
        None => Rc::new(CloudApi::new(
            whatsapp.api_base_url.clone(),
            whatsapp.phone_number_id.clone(),
            whatsapp.access_token.expose().to_owned(),
            Duration::from_millis(whatsapp.send_timeout_ms),
        )),
    };
    let routes = Arc::new(Routes::new(&config.routing, flows.clone()));
    match store.room_memberships().await {
        Ok(members) => routes.load_rooms(members),
        Err(e) => tracing::error!(error = %e, "loading war-room members failed; rooms start empty"),
    }
    let lookback = flows.max_lookback().max(config.sessions.lookback);
    let ports = Ports {
        store: store.clone(),
        routes: routes.clone(),
        transport,
    };
    let mut engine_slot = None;
    let runtime = Runtime::start(
        runtime_settings(&config, lookback, options.resume_pending),
        ports,
        |handle| {
            let services = Arc::new(Services {
                handle,
                store: store.clone(),
                config: config.clone(),
                registry: registry.clone(),
                routes: routes.clone(),
                live: live.clone(),
                dry_run: options.dry_run.clone(),
            });
            let engine = FlowEngine::new(
                flows.clone(),
                registry.clone(),
                expressions.clone(),
                services,
            );
            engine_slot = Some(engine.clone());
            Arc::new(engine) as Arc<dyn FlowRunner>
        },
    );
    let engine = engine_slot.expect("Runtime::start calls make_runner once");
    let handle = runtime.handle.clone();

    let watcher = if config.flows.watch {
        let reloader = Reloader {
            dir: config.flows.directory.clone(),
            registry,
            expressions,
            templates: whatsapp.templates.clone(),
            engine: engine.clone(),
            routes: routes.clone(),
        };
        let watcher = reloader.watch().map_err(|e| StartError::Watch {
            file: file.clone(),
            dir: config.flows.directory.display().to_string(),
            message: e.to_string(),
        })?;
        Some(watcher)
    } else {
        None
    };

    let state = web::Data::new(AppState {
        config: config.clone(),
        handle: handle.clone(),
        store: store.clone(),
        engine,
        metrics: metrics_handle(),
        outbox,
        live: live.clone(),
    });
    let base_path = config.server.base_path.clone();
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .configure(|cfg| http::routes(cfg, &base_path))
    })
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    if let Some(workers) = config.server.workers {
        server = server.workers(workers);
    }
    let server = server.bind(&addr).map_err(|e| StartError::Bind {
        file: file.clone(),
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let port = server
        .addrs()
        .first()
        .map_or(config.server.port, |a| a.port());
    let server = server.run();
    crate::trim::start();
    if live.is_some() {
        let host = match config.server.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "localhost",
            host => host,
        };
        tracing::info!(
            "sandbox chat page: http://{host}:{port}{}/sandbox/ (type as anyone in the config)",
            config.server.base_path
        );
    }
    tracing::info!(
        port,
        transport = ?whatsapp.transport,
        flows = flows.len(),
        "aof is listening on {addr}{}",
        config.server.base_path
    );
    Ok(Running {
        port,
        server,
        handle,
        runtime,
        live,
        store,
        routes,
        _watcher: watcher,
    })
}

/// Loads the config at `path` and runs the bot until a signal stops it: `aofctl trigger serve`.
pub fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let config = crate::config::load(path)?;
    let system = actix_web::rt::System::new();
    let tokio = system.runtime().tokio_runtime().handle().clone();
    let result = system.block_on(async move {
        let running = start(config).await?;
        running
            .server
            .await
            .context("the HTTP server stopped with an error")?;
        running.runtime.stop();
        running.store.close().await;
        tracing::info!("aofctl stopped: the HTTP server is closed and the store is saved");
        Ok(())
    });
    // Work still in flight (a store query, a flow step) is dropped with the system; sqlx returns
    // connections to its pool on drop, which needs the Tokio context that the system's drop lacks.
    let _context = tokio.enter();
    drop(system);
    result
}

/// The sandbox's page history and outbox as the store kept them: a restarted sandbox shows what it
/// showed, and numbers its wamids on after the ones already sent.
async fn restored_sandbox(store: &Arc<dyn Repositories>) -> (Live, SandboxOutbox) {
    let live = crate::live::history::restore(store.as_ref()).await;
    let (history, _) = live.subscribe();
    let sent: Vec<crate::transport::OutboxItem> = history
        .into_iter()
        .filter_map(|n| match n.event {
            crate::live::LiveEvent::Outbound(item) => Some(item),
            _ => None,
        })
        .collect();
    let last = store.last_sandbox_wamid().await.unwrap_or_default();
    let outbox = SandboxOutbox::with_live(live.clone());
    outbox.restore(sent, last);
    crate::live::history::keep(&live, store.clone());
    (live, outbox)
}

/// Routing may name flows that are not in the directory yet; their messages get a "not set up" answer.
fn warn_missing_routes(config: &Config, flows: &FlowSet) {
    let missing = config.routing.missing(|f| flows.get(f).is_some());
    if !missing.is_empty() {
        tracing::warn!(
            "routing names flows that are not in {}: {}",
            config.flows.directory.display(),
            missing.join(", ")
        );
    }
}
