//! Start-up as a chain of steps, each a value the next one consumes: the flows loaded and checked
//! against the config, the store opened, the actors running, the HTTP server bound. A step that
//! fails returns the [`StartError`] that says what to fix, before anything later has started.

use super::settings::{metrics_handle, runtime_settings};
use super::{Running, StartError, StartOptions};
use crate::agents::{Registry, Services};
use crate::config::{Config, TransportKind};
use crate::flow::expr::Expressions;
use crate::flow::watch::Reloader;
use crate::flow::{FlowEngine, FlowSet, Routes};
use crate::http::{self, AppState};
use crate::live::Live;
use crate::store::{InboxRow, Repositories};
use crate::transport::{CloudApi, Sandbox, SandboxOutbox};
use actix_web::{web, App, HttpServer};
use aof_actors::ports::Transport;
use aof_actors::runtime::Ports;
use aof_actors::Runtime;
use std::rc::Rc;
use std::sync::Arc;

/// The configuration and how this start differs from `trigger serve`'s.
pub(super) struct Startup {
    config: Arc<Config>,
    options: StartOptions,
}

/// The flows, loaded and checked against the config.
pub(super) struct FlowsLoaded {
    config: Arc<Config>,
    options: StartOptions,
    registry: Arc<Registry>,
    expressions: Arc<Expressions>,
    flows: Arc<FlowSet>,
}

/// The store open, with what the bot restores from it (war rooms, the sandbox's page).
pub(super) struct StoreOpened {
    flows: FlowsLoaded,
    store: Arc<dyn Repositories>,
    routes: Arc<Routes>,
    live: Option<Live>,
    outbox: Option<SandboxOutbox>,
    unfinished: Vec<InboxRow>,
}

/// The actors running, and the flow engine they run flows with.
pub(super) struct RuntimeStarted {
    opened: StoreOpened,
    runtime: Runtime,
    engine: FlowEngine,
}

impl Startup {
    /// The first step.
    pub(super) fn new(config: Config, options: StartOptions) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Startup {
            config: Arc::new(config),
            options,
        }
    }

    fn file(&self) -> String {
        self.config.file.display().to_string()
    }

    /// Loads the flow directory and checks it against the config: a bad flow stops start-up
    /// before anything listens.
    pub(super) fn load_flows(self) -> Result<FlowsLoaded, StartError> {
        let config = &self.config;
        let whatsapp = &config.platforms.whatsapp;
        if !whatsapp.security.verify_signatures {
            tracing::warn!("security.verify_signatures is false: anyone who can reach the webhook can impersonate Meta");
        }
        if !config.flows.directory.is_dir() {
            let dir = config.flows.directory.display().to_string();
            return Err(StartError::FlowDirectory {
                file: self.file(),
                dir,
            });
        }
        let registry = Arc::new(Registry::builtin());
        let expressions = Arc::new(Expressions::new());
        let flows = Arc::new(FlowSet::load_dir(
            &config.flows.directory,
            &registry,
            &expressions,
            &whatsapp.templates,
        )?);
        warn_missing_routes(config, &flows);
        warn_retired_keys(config);
        for unset in flows.unset_config(config) {
            tracing::warn!("{unset}");
        }
        Ok(FlowsLoaded {
            config: self.config,
            options: self.options,
            registry,
            expressions,
            flows,
        })
    }
}

impl FlowsLoaded {
    /// Opens the store and restores what lives in it beside the actors' own state.
    pub(super) async fn open_store(self) -> Result<StoreOpened, StartError> {
        let config = &self.config;
        let store = crate::store::open(&config.storage)
            .await
            .map_err(|message| StartError::Store {
                file: config.file.display().to_string(),
                message,
            })?;
        let (live, outbox) = match config.platforms.whatsapp.transport {
            TransportKind::Sandbox => {
                let (live, outbox) = restored_sandbox(&store).await;
                (Some(live), Some(outbox))
            }
            TransportKind::CloudApi => (None, None),
        };
        let routes = Arc::new(Routes::new(&config.routing, self.flows.clone()));
        match store.room_memberships().await {
            Ok(members) => routes.load_rooms(members),
            Err(e) => {
                tracing::error!(error = %e, "loading war-room members failed; rooms start empty")
            }
        }
        // What was acknowledged and not handled before the restart; handed over once serving.
        let unfinished = if self.options.resume_pending {
            // Meta retries for up to 7 days; an older message is not acted on anyway.
            let remember = config
                .platforms
                .whatsapp
                .max_message_age
                .max(META_RETRY_HORIZON);
            store
                .open_inbox(remember)
                .await
                .map_err(|e| StartError::Store {
                    file: config.file.display().to_string(),
                    message: format!("reading the inbox: {e}"),
                })?
        } else {
            Vec::new()
        };
        Ok(StoreOpened {
            flows: self,
            store,
            routes,
            live,
            outbox,
            unfinished,
        })
    }
}

impl StoreOpened {
    /// The wire: the sandbox's outbox, or Meta's Graph API.
    fn transport(&self) -> Rc<dyn Transport> {
        let whatsapp = &self.flows.config.platforms.whatsapp;
        match &self.outbox {
            Some(outbox) => {
                Rc::new(Sandbox::new(outbox.clone()).with_templates(&whatsapp.templates))
            }
            None => Rc::new(CloudApi::new(
                whatsapp.api_base_url.clone(),
                whatsapp.phone_number_id.clone(),
                whatsapp.access_token.expose().to_owned(),
                whatsapp.send_timeout,
            )),
        }
    }

    /// Starts the actors on the current actix system, with the flow engine as their runner.
    pub(super) fn start_runtime(self) -> RuntimeStarted {
        let loaded = &self.flows;
        let config = &loaded.config;
        let lookback = loaded.flows.max_lookback().max(config.sessions.lookback);
        let settings = runtime_settings(config, lookback, loaded.options.resume_pending);
        let ports = Ports {
            store: self.store.clone(),
            routes: self.routes.clone(),
            transport: self.transport(),
            fold: Some(Arc::new(crate::ops::digest::Digests::new(
                &config.platforms.whatsapp,
            ))),
        };
        let (runtime, engine) = Runtime::start(settings, ports, |handle| {
            let services = Arc::new(Services {
                handle,
                store: self.store.clone(),
                config: config.clone(),
                registry: loaded.registry.clone(),
                rooms: self.routes.clone(),
                flows: self.routes.clone(),
                live: self.live.clone(),
                dry_run: loaded.options.dry_run.clone(),
            });
            FlowEngine::new(
                loaded.flows.clone(),
                loaded.registry.clone(),
                loaded.expressions.clone(),
                services,
            )
        });
        let engine = engine.as_ref().clone();
        RuntimeStarted {
            opened: self,
            runtime,
            engine,
        }
    }
}

impl RuntimeStarted {
    /// Watches the flow directory when the config asks, binds the HTTP server and starts it.
    pub(super) fn serve(self) -> Result<Running, StartError> {
        let StoreOpened {
            flows: loaded,
            store,
            routes,
            live,
            outbox,
            unfinished,
        } = self.opened;
        let config = loaded.config.clone();
        let file = config.file.display().to_string();
        let watcher = if config.flows.watch {
            let reloader = Reloader {
                dir: config.flows.directory.clone(),
                registry: loaded.registry,
                expressions: loaded.expressions,
                templates: config.platforms.whatsapp.templates.clone(),
                engine: self.engine.clone(),
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

        let handle = self.runtime.handle.clone();
        let state = web::Data::new(AppState {
            config: config.clone(),
            handle: handle.clone(),
            store: store.clone(),
            engine: self.engine,
            routes: routes.clone(),
            metrics: metrics_handle(),
            outbox,
            live: live.clone(),
        });
        http::inbox::resume(&state, unfinished);
        let base_path = config.server.base_path.clone();
        let addr = format!("{}:{}", config.server.host, config.server.port);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    http::body_timeout::cut_off_silent_bodies,
                ))
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .configure(|cfg| http::routes(cfg, &base_path))
        })
        .shutdown_timeout(config.server.shutdown_timeout.as_secs());
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
            transport = ?config.platforms.whatsapp.transport,
            flows = loaded.flows.len(),
            "aof is listening on {addr}{}",
            config.server.base_path
        );
        Ok(Running {
            port,
            server,
            handle,
            runtime: self.runtime,
            live,
            store,
            routes,
            send_timeout: config.platforms.whatsapp.send_timeout,
            _watcher: watcher,
        })
    }
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

/// How long Meta goes on redelivering a notification we did not answer 200.
const META_RETRY_HORIZON: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Keys a config may still set that no longer do anything.
fn warn_retired_keys(config: &Config) {
    if config.platforms.whatsapp.dedup_window.is_some() {
        tracing::warn!(
            "{}: platforms.whatsapp.dedup_window is no longer used (the store drops Meta's redeliveries); remove it",
            config.file.display()
        );
    }
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
