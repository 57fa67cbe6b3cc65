//! Start-up as a chain of steps, each a value the next one consumes: the flows loaded and checked
//! against the config, the store opened, the HTTP server bound and the actors running (at once, or
//! once this replica leads: `leadership`). A step that
//! fails returns the [`StartError`] that says what to fix, before anything later has started.

use super::leadership::{self, Crew};
use super::settings::{metrics_handle, runtime_settings};
use super::{Running, StartError, StartOptions};
use crate::agents::Registry;
use crate::config::{Config, TransportKind};
use crate::flow::expr::Expressions;
use crate::flow::watch::Reloader;
use crate::flow::{FlowSet, Routes};
use crate::http::inbox::Handover;
use crate::http::{self, AppState};
use crate::live::Live;
use crate::role::Role;
use crate::store::postgres::PgStore;
use crate::store::{InboxRow, Repositories};
use crate::transport::SandboxOutbox;
use actix_web::{web, App, HttpServer};
use aof_actors::Runtime;
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
    /// On PostgreSQL, for the real bot: it leads only once it holds the lease.
    replicas: Option<PgStore>,
    routes: Arc<Routes>,
    live: Option<Live>,
    outbox: Option<SandboxOutbox>,
    unfinished: Vec<InboxRow>,
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
        let store_error = |message: String| StartError::Store {
            file: config.file.display().to_string(),
            message,
        };
        // The real bot on PostgreSQL shares the database with other replicas and leads only once
        // it holds the lease; `simulate` (which resumes nothing) runs beside them without one.
        let (store, replicas): (Arc<dyn Repositories>, _) =
            if crate::store::is_postgres(&config.storage.url) && self.options.resume_pending {
                let pg = PgStore::open(&config.storage)
                    .await
                    .map_err(|e| store_error(e.to_string()))?;
                tracing::info!(url = %crate::store::postgres::redacted(&config.storage.url),
                    "store: PostgreSQL; this replica leads once it holds the lease");
                (Arc::new(pg.clone()), Some(pg))
            } else {
                let store = crate::store::open(&config.storage)
                    .await
                    .map_err(store_error)?;
                (store, None)
            };
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
        // (A replica on PostgreSQL takes it from the inbox when it leads.)
        let unfinished = if self.options.resume_pending && replicas.is_none() {
            store
                .open_inbox(remembered(config))
                .await
                .map_err(|e| store_error(format!("reading the inbox: {e}")))?
        } else {
            Vec::new()
        };
        Ok(StoreOpened {
            flows: self,
            store,
            replicas,
            routes,
            live,
            outbox,
            unfinished,
        })
    }
}

/// How long message ids are remembered against redeliveries: Meta retries for up to 7 days, and
/// an older message is not acted on anyway.
fn remembered(config: &Config) -> std::time::Duration {
    config
        .platforms
        .whatsapp
        .max_message_age
        .max(META_RETRY_HORIZON)
}

impl StoreOpened {
    /// Binds the HTTP server and starts it; starts the actors now, or, on PostgreSQL, once this
    /// replica holds the lease. Watches the flow directory when the config asks.
    pub(super) fn serve(self) -> Result<Running, StartError> {
        let StoreOpened {
            flows: loaded,
            store,
            replicas,
            routes,
            live,
            outbox,
            unfinished,
        } = self;
        let config = loaded.config.clone();
        let file = config.file.display().to_string();
        let settings = runtime_settings(&config, config.sessions.lookback, false);
        let (keeper, keeper_thread) = Runtime::keeper(&settings, store.clone());
        let role = Arc::new(Role::following(keeper, keeper_thread));
        let watcher = if config.flows.watch {
            let reloader = Reloader {
                dir: config.flows.directory.clone(),
                registry: loaded.registry.clone(),
                expressions: loaded.expressions.clone(),
                templates: config.platforms.whatsapp.templates.clone(),
                role: role.clone(),
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

        let crew = Crew {
            config: config.clone(),
            options: loaded.options.clone(),
            registry: loaded.registry.clone(),
            expressions: loaded.expressions.clone(),
            routes: routes.clone(),
            live: live.clone(),
            outbox: outbox.clone(),
        };
        // Alone on its store, it leads before it listens: no request is ever kept as a
        // follower's, for a leader that would never come to take it.
        if replicas.is_none() {
            let (leading, runtime) = crew.start(store.clone(), None);
            role.lead(leading.clone(), runtime, None);
            http::inbox::resume(&leading, unfinished, Handover::Resumed);
        }
        let state = web::Data::new(AppState {
            config: config.clone(),
            role: role.clone(),
            store: store.clone(),
            routes: routes.clone(),
            metrics: metrics_handle(),
            outbox,
            live: live.clone(),
        });
        let base_path = config.server.base_path.clone();
        let addr = format!("{}:{}", config.server.host, config.server.port);
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    http::body_timeout::cut_off_silent_bodies,
                ))
                .app_data(app_state.clone())
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

        if let Some(pg) = replicas {
            let remember = remembered(&config);
            let handle = server.handle();
            actix::spawn(leadership::follow_then_lead(
                crew,
                pg,
                role.clone(),
                handle,
                remember,
            ));
        }
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
            role,
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
