//! The store's conformance suite: tests written once against `dyn Repositories`, which every
//! backend must pass unchanged. They live beside what they check (alerts, approvals, incidents,
//! runs and records, the actors' state), each written with [`conformance!`]; a new backend adds
//! itself to [`backends`]. What only one backend has (SQLite's file, WAL mode, URLs) is tested
//! beside it, outside this suite.

use super::{Repositories, SqliteStore};
use std::sync::Arc;

/// A fresh, empty store of one backend, and what keeps it alive.
pub(crate) struct Fresh {
    /// The backend's name, printed before its run so that a failure says which one.
    pub(crate) name: &'static str,
    /// The store, as the application holds it.
    pub(crate) store: Arc<dyn Repositories>,
    /// Its files.
    _dir: tempfile::TempDir,
}

/// A fresh store of every backend: SQLite (in a directory that does not exist yet) today.
pub(crate) async fn backends() -> Vec<Fresh> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("data/aof.db").display());
    let sqlite = SqliteStore::open(&url).await.expect("the store opens");
    vec![Fresh {
        name: "sqlite",
        store: Arc::new(sqlite),
        _dir: dir,
    }]
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
