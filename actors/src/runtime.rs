//! Starting the actors in the right order, with their cycles (router ⇄ sessions, limiter ⇄ sender,
//! runner → router) closed through addresses taken before the actors exist.

use crate::handle::{Handle, Keeper};
use crate::ports::{FlowRunner, Fold, RouteTable, Store, Transport};
use crate::rate_limiter::{RateLimiter, RateSettings};
use crate::router::Router;
use crate::scheduler::Scheduler;
use crate::sender::{Sender, SenderSettings};
use crate::session::SessionDeps;
use crate::webhook::{Webhook, WebhookSettings};
use actix::prelude::*;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Everything the actors take from the config.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Dedup, allow-list, audit.
    pub webhook: WebhookSettings,
    /// Pacing and the queue.
    pub rate: RateSettings,
    /// Retries.
    pub sender: SenderSettings,
    /// Messages of context kept per conversation.
    pub lookback: usize,
    /// How long an idle session lives.
    pub idle_timeout: Duration,
    /// Arbiters (threads) that sessions and flow runs are spread over.
    pub session_threads: usize,
    /// Capacity of the webhook's mailbox: beyond it, HTTP answers 503 and Meta retries.
    pub mailbox_capacity: usize,
    /// Send what the store still has queued and arm its timers at start, as a restart must
    /// (`aofctl simulate` does not: those belong to the real bot).
    pub resume: bool,
}

/// What the application plugs in.
pub struct Ports {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Static routes.
    pub routes: Arc<dyn RouteTable>,
    /// The wire (not `Send`: built on the current thread).
    pub transport: Rc<dyn Transport>,
    /// Says what waits for one person in one message; `None` sends each as it is.
    pub fold: Option<Arc<dyn Fold>>,
}

/// The running actors.
pub struct Runtime {
    /// How the application talks to them.
    pub handle: Handle,
    arbiters: Vec<Arbiter>,
}

impl Runtime {
    /// Starts every actor on the current actix system. `make_runner` receives the handle so that the
    /// flow engine can send messages and start flows; the runner it made is returned beside the
    /// runtime, for the application to hold too.
    pub fn start<R: FlowRunner + 'static>(
        settings: RuntimeSettings,
        ports: Ports,
        make_runner: impl FnOnce(Handle) -> R,
    ) -> (Runtime, Arc<R>) {
        let router_ctx: Context<Router> = Context::new();
        let limiter_ctx: Context<RateLimiter> = Context::new();
        let router_addr = router_ctx.address();
        let limiter_addr = limiter_ctx.address();

        let sender = Sender::new(
            ports.transport,
            ports.store.clone(),
            limiter_addr.clone().recipient(),
            settings.sender.clone(),
        )
        .departing(
            settings.rate.per_second.get() as usize,
            Duration::from_secs(1) + settings.rate.window_margin,
        )
        .start();
        let limiter = limiter_ctx.run(
            RateLimiter::new(
                settings.rate.clone(),
                ports.store.clone(),
                sender.recipient(),
                settings.resume,
            )
            .folding(ports.fold),
        );

        let scheduler = Scheduler::new(
            ports.store.clone(),
            router_addr.clone().recipient(),
            settings.resume,
        )
        .start();
        let webhook_store = ports.store.clone();
        let webhook_settings = settings.webhook.clone();
        let webhook_router = Some(router_addr.clone().recipient());
        let capacity = settings.mailbox_capacity.max(16);
        // A thread of its own: an acknowledgement waits for nothing but the store, not for the
        // routing, pacing and sending that share the system's thread (under a storm they kept
        // it busy, and intake fell to a fifth of what it is alone).
        let intake = Arbiter::new();
        let webhook = Webhook::start_in_arbiter(&intake.handle(), move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            Webhook::new(webhook_settings, webhook_store, webhook_router)
        });

        let handle = Handle {
            webhook,
            router: router_addr,
            limiter: limiter.clone(),
            scheduler,
        };
        let made = Arc::new(make_runner(handle.clone()));
        let runner: Arc<dyn FlowRunner> = made.clone();
        let mut arbiters: Vec<Arbiter> = (0..settings.session_threads.max(1))
            .map(|_| {
                let arbiter = Arbiter::new();
                arbiter.spawn_fn(crate::priority::lower_for_flows);
                arbiter
            })
            .collect();
        let deps = SessionDeps {
            runner: runner.clone(),
            store: ports.store,
            limiter: limiter.recipient(),
            lookback: settings.lookback,
            idle_timeout: settings.idle_timeout,
        };
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        router_ctx.run(Router::new(ports.routes, runner, deps, handles));
        arbiters.push(intake);
        (Runtime { handle, arbiters }, made)
    }

    /// Starts the webhook actor alone, on a thread of its own, keeping notifications without
    /// routing them: a replica that does not lead. The arbiter is the thread; stop it at exit.
    pub fn keeper(settings: &RuntimeSettings, store: Arc<dyn Store>) -> (Keeper, Arbiter) {
        let capacity = settings.mailbox_capacity.max(16);
        let webhook_settings = settings.webhook.clone();
        let thread = Arbiter::new();
        let webhook = Webhook::start_in_arbiter(&thread.handle(), move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            Webhook::new(webhook_settings, store, None)
        });
        (Keeper { webhook }, thread)
    }

    /// Stops the session threads and the webhook's (the actors on the system's own thread stop
    /// with the system).
    pub fn stop(&self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}
