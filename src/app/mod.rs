//! Start-up: loads and validates the flows, opens the store, starts the actors and the HTTP server
//! (`startup`, one step each, with the tunables read in `settings`), and reports the port it bound.
//! Every failure is a [`StartError`] that says what to fix.

mod leadership;
mod settings;
mod startup;

pub(crate) use settings::allowed_senders;

use crate::agents::DryRun;
use crate::config::Config;
use crate::flow::{FlowLoadError, Routes};
use crate::live::Live;
use crate::role::Role;
use crate::store::Repositories;
use startup::Startup;
use std::sync::Arc;

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
    /// The HTTP server; await it to run until a signal stops it (or, on PostgreSQL, until this
    /// replica loses the lead: [`Role::is_deposed`]).
    pub server: actix_web::dev::Server,
    /// Whether this replica leads, and the actors once it does.
    pub role: Arc<Role>,
    /// What happens as it happens (sandbox transport only).
    pub live: Option<Live>,
    /// The store it opened (`aofctl simulate` reads the runs it caused).
    pub store: Arc<dyn Repositories>,
    /// The route table the actors use (`aofctl simulate` explains a message's route with it).
    pub routes: Arc<Routes>,
    /// How long one send may take (`platforms.whatsapp.send_timeout`): the bound on the drain at exit.
    pub send_timeout: std::time::Duration,
    _watcher: Option<notify::RecommendedWatcher>,
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
    Startup::new(config, options)
        .load_flows()?
        .open_store()
        .await?
        .serve()
}

/// Loads the config at `path` and runs the bot until a signal stops it: `aofctl trigger serve`.
pub fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let config = crate::config::load(path)?;
    let system = actix_web::rt::System::new();
    let tokio = system.runtime().tokio_runtime().handle().clone();
    let result = system.block_on(async move {
        let running = start(config).await?;
        let served = running.server.await;
        if running.role.is_deposed() {
            running.role.stop();
            anyhow::bail!("this replica lost the lead and stopped; start it again and it follows");
        }
        served.context("the HTTP server stopped with an error")?;
        if let Some(leading) = running.role.leading() {
            // Sends in flight get their answer (a send never outlasts its timeout), so that none
            // of them is left `sending` for the next start to reconcile.
            let grace = running.send_timeout + std::time::Duration::from_secs(1);
            let left = leading.handle.drain(grace).await;
            if left > 0 {
                tracing::warn!(
                    left,
                    "sends still in flight at exit; the next start reconciles them"
                );
            }
        }
        running.role.stop();
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
