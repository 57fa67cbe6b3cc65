//! Durable state on PostgreSQL, for several replicas sharing one database (issue 16). The same
//! tables as SQLite's (`migrations/postgres/`), the same repository traits; SQLite stays the
//! zero-setup default.
//!
//! Here: opening the pool (its size and connect timeout from `storage`, TLS from the URL's
//! `sslmode`), the migrations and the readiness probe; the actors' `Store` port
//! (`actor_state.rs`). The application's repositories follow (docs/plan.md, issue 16).

use crate::config::StorageConfig;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

mod actor_state;
mod alerts;
mod approvals;
pub mod fence;
mod inbox;
mod incidents;
mod intake;
pub mod lease;
mod oncall;
mod page_history;
mod records;
pub mod testing;
#[cfg(test)]
mod tests;
mod war_rooms;

/// The advisory locks: transaction-scoped ones make a read-then-write atomic across replicas (where
/// SQLite has its single writer), one key per kind of write; the leader's lease is a session lock.
/// All keys are here, so that no two collide.
#[derive(Clone, Copy, Debug)]
pub(super) enum Lock {
    /// Creating an alert: the open one with its fingerprint, else the next id.
    Alerts,
    /// The next approval request id.
    Approvals,
    /// The next incident id.
    Incidents,
    /// Setting and lifting silences.
    Silences,
    /// Joining, leaving and closing war rooms.
    Rooms,
    /// The leader's lease: a session lock, held on the leader's own connection ([`lease`]).
    Leader,
    /// Fencing: each fenced write holds its shared side, a takeover's epoch bump its exclusive
    /// side (migration postgres/0003 names the key in `aof_fence`).
    Fence,
}

impl Lock {
    /// Its key: eight ASCII letters read as one number.
    fn key(self) -> i64 {
        i64::from_be_bytes(*match self {
            Lock::Alerts => b"aofalert",
            Lock::Approvals => b"aof_appr",
            Lock::Incidents => b"aof_incd",
            Lock::Silences => b"aof:sile",
            Lock::Rooms => b"aof:room",
            Lock::Leader => b"aof:lead",
            Lock::Fence => b"aof:fenc",
        })
    }

    /// Takes the lock for the session of `conn` if it is free; whether it did.
    pub(super) async fn try_hold(self, conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key())
            .fetch_one(conn)
            .await
    }

    /// Lets go of a lock [`Lock::try_hold`] took.
    pub(super) async fn let_go(self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key())
            .execute(conn)
            .await
            .map(drop)
    }

    /// Takes the lock until the transaction `tx` ends.
    pub(super) async fn take(self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.key())
            .execute(tx)
            .await
            .map(drop)
    }
}

/// The channel on which keeping rows for the leader to take wakes it (`NOTIFY`).
const INBOX_CHANNEL: &str = "aof_inbox";

/// The PostgreSQL store: a pool of connections to the shared database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The intake's group commit (`accept`, `keep_events`).
    intake: intake::Intake,
    /// How it connects, for the lease's connection and the leader's own pool.
    options: PgConnectOptions,
    pool_size: u32,
    timeout: Duration,
    /// The leader's epoch this store's writes are fenced with; 0: not fenced (a follower).
    epoch: i64,
}

/// Why the PostgreSQL store did not open. The URL is shown without its password.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    /// Not a PostgreSQL URL sqlx can read.
    #[error("storage.url `{url}`: {reason}; use postgres://user@host:5432/database (add ?sslmode=require for TLS)")]
    InvalidUrl {
        /// The configured URL, its password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not answer, or refused the login.
    #[error("storage.url `{url}`: cannot connect to PostgreSQL: {source}; check that the server is up, the database exists and the user may log in")]
    Connect {
        /// The configured URL, its password hidden.
        url: String,
        /// sqlx's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("storage.url `{url}`: the schema could not be migrated: {source}; the user needs CREATE on the database")]
    Migrate {
        /// The configured URL, its password hidden.
        url: String,
        /// sqlx's error.
        source: sqlx::migrate::MigrateError,
    },
}

/// `url` with its password replaced by `***`, for errors and logs (secrets never appear there).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl PgStore {
    /// Opens the pool `storage` describes and brings the schema up to date.
    pub async fn open(storage: &StorageConfig) -> Result<PgStore, PgOpenError> {
        let url = redacted(&storage.url);
        let options =
            PgConnectOptions::from_str(&storage.url).map_err(|e| PgOpenError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let timeout = storage.connect_timeout.max(Duration::from_millis(100));
        let pool = PgPoolOptions::new()
            .max_connections(storage.pool_size.max(1))
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(|source| PgOpenError::Connect {
                url: url.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| PgOpenError::Migrate { url, source })?;
        let intake = intake::Intake::start(options.clone(), timeout, 0);
        Ok(PgStore {
            pool,
            intake,
            options,
            pool_size: storage.pool_size.max(1),
            timeout,
            epoch: 0,
        })
    }

    /// The store the leader of `epoch` writes with: connections of its own that carry the epoch,
    /// so that the database refuses their writes once another replica leads ([`fence`]), and
    /// whose kept inbox rows are its own already. A transaction left open longer than 5 s (a
    /// paused process) is ended by the server, so that it cannot hold a takeover up.
    pub fn leading(&self, epoch: i64) -> PgStore {
        let epoch_text = epoch.to_string();
        let options = self.options.clone().options([
            ("aof.epoch", epoch_text.as_str()),
            ("idle_in_transaction_session_timeout", "5s"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(self.pool_size)
            .acquire_timeout(self.timeout)
            .connect_lazy_with(options.clone());
        PgStore {
            pool,
            intake: intake::Intake::start(options, self.timeout, epoch),
            options: self.options.clone(),
            pool_size: self.pool_size,
            timeout: self.timeout,
            epoch,
        }
    }

    /// How to connect to the database, without an epoch (the lease's own connection).
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// The epoch this store's writes are fenced with; 0 when they are not.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether the database takes a write now, for the readiness probe.
    pub async fn writable(&self) -> bool {
        let probe = sqlx::query(
            "INSERT INTO store_probe (id, at_ms) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
        )
        .bind(aof_actors::model::now_ms())
        .execute(&self.pool)
        .await;
        match probe {
            Ok(_) => true,
            Err(error) => {
                tracing::error!(%error, "the store refuses writes: not ready");
                false
            }
        }
    }

    /// Closes every connection, waiting at most 5 s for those in use.
    pub async fn close(&self) {
        let closed = tokio::time::timeout(Duration::from_secs(5), self.pool.close());
        if closed.await.is_err() {
            tracing::warn!("the store's connections did not close within 5 s");
        }
    }
}

impl crate::store::Backend for PgStore {
    fn writable<'a>(&'a self) -> futures_util::future::BoxFuture<'a, bool> {
        Box::pin(PgStore::writable(self))
    }

    fn close<'a>(&'a self) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(PgStore::close(self))
    }
}
