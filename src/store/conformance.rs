//! The store's conformance suite: tests written once against `dyn Repositories`, which every
//! backend must pass unchanged. They live beside what they check (alerts, approvals, incidents,
//! runs and records, the actors' state), each written with [`conformance!`]; a new backend adds
//! itself to [`backends`]. What only one backend has (SQLite's file, WAL mode, URLs) is tested
//! beside it, outside this suite.
//! PostgreSQL runs when a server answers (a database per test, dropped after it; see
//! `postgres::testing`).

use super::postgres::testing::{fresh_database, FreshDatabase};
use super::postgres::PgStore;
use super::{Repositories, SqliteStore};
use std::sync::Arc;

/// A fresh, empty store of one backend, and what keeps it alive.
pub(crate) struct Fresh {
    /// The backend's name, printed before its run so that a failure says which one.
    pub(crate) name: &'static str,
    /// The store, as the application holds it.
    pub(crate) store: Arc<dyn Repositories>,
    /// Its files or its database, removed when the test is done.
    _keep: Keep,
}

/// What a fresh store lives in.
enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database(#[allow(dead_code)] FreshDatabase),
}

/// A fresh store of every backend: SQLite (in a directory that does not exist yet), and
/// PostgreSQL (a database of its own) when a server answers (see `postgres::testing`).
pub(crate) async fn backends() -> Vec<Fresh> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("data/aof.db").display());
    let sqlite = SqliteStore::open(&url).await.expect("the store opens");
    let mut fresh = vec![Fresh {
        name: "sqlite",
        store: Arc::new(sqlite),
        _keep: Keep::Dir(dir),
    }];
    if let Some(db) = fresh_database().await {
        let storage = crate::config::StorageConfig {
            url: db.url.clone(),
            ..crate::config::defaults::storage()
        };
        let store = PgStore::open(&storage).await.expect("the store opens");
        fresh.push(Fresh {
            name: "postgres",
            store: Arc::new(store),
            _keep: Keep::Database(db),
        });
    }
    fresh
}

/// A conformance test: its body runs once for a fresh store of every backend, named `$store`.
macro_rules! conformance {
    ($(#[$meta:meta])* async fn $name:ident($store:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test(flavor = "current_thread")]
        async fn $name() {
            for fresh in $crate::store::conformance::backends().await {
                eprintln!("backend: {}", fresh.name);
                let $store: std::sync::Arc<dyn $crate::store::Repositories> = fresh.store.clone();
                $body
            }
        }
    };
}
pub(crate) use conformance;
