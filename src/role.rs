//! Which replica runs the actors. Every replica serves HTTP and keeps what arrives in the shared
//! inbox (a 2xx still means kept); only the one that leads runs the router, sessions, rate limiter,
//! sender and scheduler. On SQLite, or for `aofctl simulate`, the one process leads from the
//! start; on PostgreSQL a replica leads once it holds the lease (`app::leadership`), and it leads
//! until it exits: a leader never becomes a follower again in the same process.

use crate::flow::FlowEngine;
use crate::store::postgres::lease::Leader;
use crate::store::Repositories;
use aof_actors::{Handle, Keeper, Runtime};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a leading replica works with. Cheap to clone.
#[derive(Clone)]
pub struct Leading {
    /// The running actors.
    pub handle: Handle,
    /// The flow engine the actors run flows with.
    pub engine: FlowEngine,
    /// The store its writes go to: on PostgreSQL, fenced with its epoch, and the inbox rows it
    /// keeps are its own already.
    pub store: Arc<dyn Repositories>,
    /// The fencing epoch it leads with (PostgreSQL); `None` when it leads alone.
    pub epoch: Option<i64>,
}

/// This replica's part: following (keeping only) until it leads.
pub struct Role {
    leading: OnceLock<Leading>,
    runtime: OnceLock<Runtime>,
    /// The webhook actor of a follower, keeping WhatsApp notifications without routing them,
    /// and its thread.
    keeper: Keeper,
    keeper_thread: actix::Arbiter,
    /// Who leads, as this replica last saw it.
    leader: Mutex<Option<Leader>>,
    /// It led and lost the lead: it is stopping.
    deposed: AtomicBool,
}

impl Role {
    /// A replica that follows, keeping notifications with `keeper` (on `keeper_thread`), until
    /// [`Role::lead`].
    pub fn following(keeper: Keeper, keeper_thread: actix::Arbiter) -> Role {
        Role {
            keeper_thread,
            leading: OnceLock::new(),
            runtime: OnceLock::new(),
            keeper,
            leader: Mutex::new(None),
            deposed: AtomicBool::new(false),
        }
    }

    /// From now on this replica leads, with `leading` and the actors of `runtime`; `me` is its
    /// row in the lease table (PostgreSQL).
    pub fn lead(&self, leading: Leading, runtime: Runtime, me: Option<Leader>) {
        if let Some(me) = &me {
            metrics::gauge!("aof_leader_epoch").set(me.epoch as f64);
            metrics::counter!("aof_leader_takeovers_total").increment(1);
        }
        metrics::gauge!("aof_leader").set(1.0);
        *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = me;
        let _ = self.runtime.set(runtime);
        let _ = self.leading.set(leading);
    }

    /// What it leads with, when it leads.
    pub fn leading(&self) -> Option<&Leading> {
        self.leading.get()
    }

    /// Stops the threads the actors run on (the actors on the system's own thread stop with the
    /// system).
    pub fn stop(&self) {
        if let Some(runtime) = self.runtime.get() {
            runtime.stop();
        }
        self.keeper_thread.stop();
    }

    /// How a WhatsApp notification is kept: alone, by the leader's webhook actor, which routes it
    /// at once; among replicas, always by the one that only keeps it, so that the leader routes
    /// every person's messages from the shared inbox in the order they were kept, whichever
    /// replica kept them.
    pub fn keeper(&self) -> Keeper {
        match self.leading() {
            Some(leading) if leading.epoch.is_none() => leading.handle.keeper(),
            _ => self.keeper.clone(),
        }
    }

    /// Notes who leads, as the lease table says (a follower's view, for `/healthz`).
    pub fn saw(&self, leader: Option<Leader>) {
        if let Some(leader) = &leader {
            metrics::gauge!("aof_leader_epoch").set(leader.epoch as f64);
        }
        metrics::gauge!("aof_leader").set(0.0);
        *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = leader;
    }

    /// Who leads, as this replica last saw it (itself once it leads).
    pub fn leader(&self) -> Option<Leader> {
        self.leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// It led and lost the lead (`app::leadership`): it stops, and starts again as a follower.
    pub fn depose(&self) {
        self.deposed.store(true, Ordering::SeqCst);
    }

    /// Whether it lost the lead.
    pub fn is_deposed(&self) -> bool {
        self.deposed.load(Ordering::SeqCst)
    }
}
