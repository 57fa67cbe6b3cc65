//! Durable state in an embedded SQLite database: one file under the data directory, no server.
//!
//! [`SqliteStore`] owns the connection pool. It implements the actors' [`Store`] port
//! (`actor_state.rs`: dedup ids, delivery statuses, conversations, the outbound queue, the template
//! quota, timers, the audit log) and adds what the application reads and writes itself
//! (`records.rs`: flow runs, status and outbound lookups, the audit trail, outbox counts;
//! `incidents.rs`: the `incident-manager` agent's incidents).
//!
//! ```text
//!  webhook / sessions / rate limiter / sender / scheduler ──Store port──┐
//!  flow engine, HTTP handlers, incident-manager agent ──inherent fns────┤
//!                                                                       v
//!                                   SqliteStore ── sqlx pool ── data/aof.db (WAL)
//! ```
//!
//! Queries are checked at run time (no `DATABASE_URL` at build time); the schema comes from the
//! embedded migrations in `migrations/`. Every failure is logged here at `error` with the operation
//! name, and leaves as a [`StoreError`] whose text never holds message contents.
//!
//! [`Store`]: aof_actors::ports::Store

mod actor_state;
mod alerts;
mod approvals;
mod batch;
mod checkpoint;
#[cfg(test)]
mod conformance;
mod covers;
#[cfg(test)]
mod fault_tests;
mod inbox;
mod incidents;
mod journal;
mod page_events;
pub mod postgres;
mod records;
mod repo;
mod silences;
#[cfg(test)]
mod tests;
mod war_rooms;

pub use alerts::{
    AlertNote, AlertRecord, AlertSource, AlertState, CreatedAlert, NewAlert, Page, Transition,
    TransitionOutcome,
};
pub use approvals::{ApprovalRecord, ApprovalState, Approver, Decision, NewApproval, Verdict};
pub use covers::Cover;
pub use inbox::{Inbox, InboxEntry, InboxRow};
pub use incidents::IncidentRecord;
pub use incidents::{IncidentChange, IncidentStage, IncidentUpdate, TimelineEntry};
pub use records::{
    AuditRecord, Delivery, JobState, OutboundRecord, OutboxEntry, RunRecord, RunStart, StatusRecord,
};
pub use repo::{
    Alerts, Approvals, Backend, Covers, Deliveries, Fut, Incidents, PageHistory, Repositories,
    Runs, Silences, WarRooms,
};
pub use silences::Silence;
pub use war_rooms::{RoomMember, RoomRecord};

use aof_actors::ports::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a writer waits for another writer before giving up; WAL lets readers go on meanwhile.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection: SQLite allows one writer at a time, and writers on separate connections wait for
/// each other in SQLite's busy handler, which sleeps (1, 2, 5, 10 ms…). Queued on the pool instead,
/// every statement runs as soon as the one before it ends (the load generator measured 270 messages
/// handled per second with 8 contending connections; see BENCHMARKS.md).
const MAX_CONNECTIONS: u32 = 1;

/// The SQLite database behind the actors' `Store` port and the application's records.
///
/// Cloning is cheap (the pool is shared), so each actor and handler can hold its own.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: batch::GroupWriter,
    /// Where an in-memory store (`sqlite::memory:`) really lives: a temporary file, since the
    /// writer has a connection of its own and two connections to `:memory:` would see two
    /// databases. Removed when the last clone of the store goes.
    _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// Why the database could not be opened at start-up; each names `storage.url` and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// The url is not one of the SQLite forms we accept.
    #[error("storage.url `{url}`: {reason}; use sqlite://data/aof.db, sqlite:///abs/path/aof.db, sqlite::memory: or postgres://user@host/database")]
    InvalidUrl {
        /// The configured url.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory that should hold the file could not be created.
    #[error("storage.url `{url}`: cannot create directory {dir}/: {reason}; set storage.url to a writable path")]
    CreateDir {
        /// The configured url.
        url: String,
        /// The directory we tried to create.
        dir: String,
        /// The operating system's reason.
        reason: String,
    },
    /// SQLite refused to open or configure the file.
    #[error("storage.url `{url}`: cannot open the database: {source}; check that the path is writable and holds a SQLite database")]
    Connect {
        /// The configured url.
        url: String,
        /// SQLite's error.
        source: sqlx::Error,
    },
    /// The database opened but refuses writes (a read-only file, directory or mount; a full disk).
    #[error("storage.url `{url}`: the database does not take writes: {source}; make the file and its directory writable (and free some space), or point storage.url at a writable path")]
    NotWritable {
        /// The configured url.
        url: String,
        /// SQLite's error.
        source: sqlx::Error,
    },
    /// The writer's own connection could not be opened.
    #[error("storage.url `{url}`: cannot open the store's writer: {reason}; make the file and its directory writable, or point storage.url at a writable path")]
    Writer {
        /// The configured url.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("storage.url `{url}`: cannot apply the schema migrations: {source}; the file may belong to a newer aofctl or to another program, point storage.url at a new file")]
    Migrate {
        /// The configured url.
        url: String,
        /// What the migrator said.
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens the store `storage.url` names: PostgreSQL for `postgres://` (or `postgresql://`), SQLite
/// otherwise. The error names the URL (without a password) and what to do.
pub async fn open(
    storage: &crate::config::StorageConfig,
) -> Result<std::sync::Arc<dyn Repositories>, String> {
    if is_postgres(&storage.url) {
        let store = postgres::PgStore::open(storage)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(url = %postgres::redacted(&storage.url), "store: PostgreSQL");
        Ok(std::sync::Arc::new(store))
    } else {
        let store = SqliteStore::open(&storage.url)
            .await
            .map_err(|e| e.to_string())?;
        Ok(std::sync::Arc::new(store))
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` and applies the embedded migrations, so
    /// that a fresh data directory needs no setup step.
    ///
    /// Accepts `sqlite://relative/path.db`, `sqlite:///abs/path.db` and `sqlite::memory:` (tests and
    /// the sandbox: gone on exit).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreOpenError> {
        let invalid = |reason: &str| StoreOpenError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if !url.starts_with("sqlite:") {
            return Err(invalid("not a SQLite url"));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| invalid(&e.to_string()))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (options, scratch) = if in_memory {
            let dir = tempfile::Builder::new()
                .prefix("aof-memory-")
                .tempdir()
                .map_err(|e| invalid(&format!("no temporary directory for it: {e}")))?;
            let file = SqliteConnectOptions::new()
                .filename(dir.path().join("aof.db"))
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            (file, Some(std::sync::Arc::new(dir)))
        } else {
            (options, None)
        };
        let path = options.get_filename().to_owned();
        if path.as_os_str().is_empty() {
            return Err(invalid("no file name"));
        }
        create_parent_dir(url, &path)?;
        let pool_options = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A connection still inside a transaction when it comes back is closed, not pooled.
            // A COMMIT that failed on a full disk leaves sqlx counting a transaction SQLite had
            // already ended; pooled, that connection refused every later BEGIN, and the store
            // stayed broken after the disk was freed.
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            });
        // WAL: readers never wait for the writer; NORMAL is durable across crashes of the
        // process in WAL mode, and only a power loss may drop the last commits.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool =
            pool_options
                .connect_with(options)
                .await
                .map_err(|source| StoreOpenError::Connect {
                    url: url.to_owned(),
                    source,
                })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreOpenError::Migrate {
                url: url.to_owned(),
                source,
            })?;
        if let Err(source) = write_probe(&pool).await {
            return Err(StoreOpenError::NotWritable {
                url: url.to_owned(),
                source,
            });
        }
        tracing::info!(url, "store opened");
        let writer =
            batch::GroupWriter::start(&path, BUSY_TIMEOUT).map_err(|e| StoreOpenError::Writer {
                url: url.to_owned(),
                reason: e.describe(),
            })?;
        Ok(SqliteStore {
            pool,
            writer,
            _scratch: scratch,
        })
    }

    /// Whether the database takes a write now, for the readiness probe.
    pub(crate) async fn writable(&self) -> bool {
        match write_probe(&self.pool).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, "the store refuses writes: not ready");
                false
            }
        }
    }

    /// Moves the WAL into the database file and closes every connection, so that a stopped bot
    /// leaves one self-contained file. Waits at most 5 s for connections still in use.
    pub(crate) async fn close(&self) {
        self.writer.close().await;
        let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await;
        if let Err(e) = checkpoint {
            tracing::warn!(error = %e, "could not checkpoint the store's WAL; the next start will");
        }
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), self.pool.close());
        if closed.await.is_err() {
            tracing::warn!("the store's connections did not close within 5 s");
        }
    }
}

/// Creates the directory that will hold the database file (`data/` of `sqlite://data/aof.db`).
fn create_parent_dir(url: &str, path: &Path) -> Result<(), StoreOpenError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| StoreOpenError::CreateDir {
        url: url.to_owned(),
        dir: dir.display().to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        },
    })
}

/// A failure inside one store operation, before it is logged and turned into a [`StoreError`].
#[derive(Debug)]
enum Failure {
    /// SQLite or the pool failed.
    Db(sqlx::Error),
    /// SQLite failed under the writer's own connection.
    Sqlite(rusqlite::Error),
    /// A JSON column could not be written or read back.
    Json(serde_json::Error),
    /// A row holds a value no version of aof writes.
    Corrupt(String),
    /// The group-commit writer's task is gone (its runtime stopped: the server is shutting down).
    WriterStopped,
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Json(e)
    }
}

impl Failure {
    /// Logs the failure and names it without contents: serde_json's messages may quote the
    /// offending value, so only its category and position are kept.
    fn logged(self, op: &'static str) -> StoreError {
        if let Failure::Db(e) = &self {
            postgres::fence::note(e);
        }
        let text = self.describe();
        tracing::error!(op, error = %text, "store operation failed");
        StoreError(format!("{op}: {text}"))
    }

    /// What failed, without contents.
    fn describe(&self) -> String {
        match self {
            Failure::Db(e) => e.to_string(),
            Failure::Sqlite(e) => e.to_string(),
            Failure::Json(e) => format!(
                "JSON {:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
            Failure::Corrupt(what) => format!("corrupt row: {what}"),
            Failure::WriterStopped => "the store's writer has stopped (shutting down)".to_owned(),
        }
    }
}

/// Runs one operation and turns its failure into a logged [`StoreError`].
async fn logged<T>(
    op: &'static str,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, StoreError> {
    work.await.map_err(|e| e.logged(op))
}

/// A `u64` counter (conversation versions) as SQLite's signed integer; saturates, as no counter
/// gets near 2^63.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Rewrites the probe row: fails when the database cannot take a write.
async fn write_probe(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO store_probe (id, at_ms) VALUES (1, ?1) \
         ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
    )
    .bind(aof_actors::model::now_ms())
    .execute(pool)
    .await
    .map(|_| ())
}
