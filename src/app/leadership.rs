//! Leading: starting the actors when this replica may run them, and, on PostgreSQL, winning the
//! lease first and giving the lead up by stopping.
//!
//! On SQLite (and for `aofctl simulate`) the process leads from the start. On PostgreSQL every
//! replica serves HTTP at once as a follower (keeping what arrives in the shared inbox) and asks
//! for the lease every half second. The one that gets it takes the next epoch, starts the actors
//! on a store fenced with that epoch (they resume the outbox, timers and journal as a restart
//! does), and from then on takes the inbox rows that replicas keep for it (woken by `NOTIFY`, and
//! every 200 ms). Among replicas every WhatsApp message goes that way, its own included, so that
//! each person's messages are routed in the order they were kept. It checks its lease every
//! second; when the lease is gone, or the database refused a write because another replica
//! leads, it stops at once and its `serve` ends with an error: systemd (or whatever runs it)
//! starts it again, as a follower.

use super::settings::runtime_settings;
use super::StartOptions;
use crate::agents::{Registry, Services};
use crate::config::Config;
use crate::flow::expr::Expressions;
use crate::flow::{FlowEngine, Routes};
use crate::http::inbox::{self, Handover};
use crate::live::Live;
use crate::role::{Leading, Role};
use crate::store::postgres::lease::{Leader, Lease};
use crate::store::postgres::{fence, PgStore};
use crate::store::{Repositories, WarRooms};
use crate::transport::{CloudApi, Sandbox, SandboxOutbox};
use aof_actors::model::now_ms;
use aof_actors::ports::Transport;
use aof_actors::runtime::Ports;
use aof_actors::Runtime;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How often a follower asks for the lease.
const ASK_EVERY: Duration = Duration::from_millis(500);
/// How often the leader takes what followers kept.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often the leader checks its lease, and how long the check may take.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_WITHIN: Duration = Duration::from_secs(2);

/// Everything starting the actors needs, kept until this replica leads.
pub(super) struct Crew {
    pub(super) config: Arc<Config>,
    pub(super) options: StartOptions,
    pub(super) registry: Arc<Registry>,
    pub(super) expressions: Arc<Expressions>,
    pub(super) routes: Arc<Routes>,
    pub(super) live: Option<Live>,
    pub(super) outbox: Option<SandboxOutbox>,
}

impl Crew {
    /// The wire: the sandbox's outbox, or Meta's Graph API.
    fn transport(&self) -> Rc<dyn Transport> {
        let whatsapp = &self.config.platforms.whatsapp;
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

    /// Starts the actors on the current actix system, writing to `store`, with the flow engine as
    /// their runner; they resume what the store holds, as `options` says.
    pub(super) fn start(
        &self,
        store: Arc<dyn Repositories>,
        epoch: Option<i64>,
    ) -> (Leading, Runtime) {
        let config = &self.config;
        let flows = self.routes.flows();
        let lookback = flows.max_lookback().max(config.sessions.lookback);
        let settings = runtime_settings(config, lookback, self.options.resume_pending);
        let ports = Ports {
            store: store.clone(),
            routes: self.routes.clone(),
            transport: self.transport(),
            fold: Some(Arc::new(crate::ops::digest::Digests::new(
                &config.platforms.whatsapp,
            ))),
        };
        let (runtime, engine) = Runtime::start(settings, ports, |handle| {
            let services = Arc::new(Services {
                handle,
                store: store.clone(),
                config: config.clone(),
                registry: self.registry.clone(),
                rooms: self.routes.clone(),
                flows: self.routes.clone(),
                live: self.live.clone(),
                dry_run: self.options.dry_run.clone(),
            });
            FlowEngine::new(
                flows,
                self.registry.clone(),
                self.expressions.clone(),
                services,
            )
        });
        let leading = Leading {
            handle: runtime.handle.clone(),
            engine: engine.as_ref().clone(),
            store,
            epoch,
        };
        (leading, runtime)
    }
}

/// This replica's name in the lease table: host and process.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Follows until this replica holds the lease, then leads until it loses it; then stops the HTTP
/// server (`serve` ends with an error) so that the process restarts as a follower. `remember` is
/// how long message ids are remembered against Meta's redeliveries.
pub(super) async fn follow_then_lead(
    crew: Crew,
    store: PgStore,
    role: Arc<Role>,
    server: actix_web::dev::ServerHandle,
    remember: Duration,
) {
    let me = holder();
    let options = store.connect_options().clone();
    let mut lease = Lease::acquire(&options, &me, ASK_EVERY, |leader| role.saw(leader)).await;
    let epoch = lease.epoch();
    let fenced = store.leading(epoch);
    if let Err(e) = fenced.tidy_inbox(remember).await {
        tracing::warn!(error = %e, "tidying the inbox failed; it is tried again at the next takeover");
    }
    match fenced.room_memberships().await {
        Ok(members) => crew.routes.load_rooms(members),
        Err(e) => tracing::error!(error = %e, "loading war-room members failed; rooms start empty"),
    }
    let shared: Arc<dyn Repositories> = Arc::new(fenced.clone());
    let (leading, runtime) = crew.start(shared, Some(epoch));
    let since_ms = now_ms();
    role.lead(
        leading.clone(),
        runtime,
        Some(Leader {
            epoch,
            holder: me,
            since_ms,
        }),
    );
    actix::spawn(take_what_followers_keep(fenced, leading));
    let lost = loop {
        tokio::select! {
            () = fence::deposed() => break "the database refused a write: another replica leads now",
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        match tokio::time::timeout(CHECK_WITHIN, lease.alive()).await {
            Ok(true) => {}
            Ok(false) => {
                break "the lease is gone (its connection ended, or another replica took it)"
            }
            Err(_) => break "the lease's connection did not answer within 2 s",
        }
    };
    tracing::error!(
        epoch,
        "{lost}; this replica stops so that it restarts as a follower"
    );
    metrics::gauge!("aof_leader").set(0.0);
    role.depose();
    role.stop();
    server.stop(false).await;
}

/// The leader's share of the inbox: the rows no leader of its epoch handed over yet, taken as soon
/// as a replica says it kept some, and every [`POLL_EVERY`] anyway. The first take is everything
/// left open before the takeover.
async fn take_what_followers_keep(store: PgStore, leading: Leading) {
    let mut why = Handover::Resumed;
    let mut listener = match store.inbox_listener().await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for kept rows; taking them every 200 ms");
            None
        }
    };
    loop {
        match store.claim_inbox().await {
            Ok(rows) => {
                inbox::resume(&leading, rows, why);
                why = Handover::FromFollower;
            }
            Err(e) => tracing::warn!(error = %e, "taking what followers kept failed; trying again"),
        }
        if fence::is_deposed() {
            return;
        }
        let Some(listener) = &mut listener else {
            tokio::time::sleep(POLL_EVERY).await;
            continue;
        };
        if let Ok(Err(e)) = tokio::time::timeout(POLL_EVERY, listener.recv()).await {
            // The listener connects again on its next wait; meanwhile the poll goes on.
            tracing::warn!(error = %e, "listening for kept rows failed");
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}
