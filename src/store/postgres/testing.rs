//! A fresh PostgreSQL database per test, dropped after it (public for the integration tests and
//! the load generator). The server is the one at
//! `AOF_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`, as on this project's
//! machines). Without one, a test says "skipped: no PostgreSQL at …" and passes, unless
//! `AOF_REQUIRE_POSTGRES=1` (set by `.ci/run`), when it fails.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where the test server is, unless `AOF_TEST_POSTGRES` says otherwise.
const DEFAULT_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database of its own for one test; dropped (connections and all) when this is.
pub struct FreshDatabase {
    /// Its URL, for `storage.url`.
    pub url: String,
    name: String,
    admin: String,
}

impl FreshDatabase {
    /// The store on it, opened with the default settings (the schema migrated).
    pub async fn store(&self) -> super::PgStore {
        let storage = crate::config::StorageConfig {
            url: self.url.clone(),
            ..crate::config::defaults::storage()
        };
        super::PgStore::open(&storage)
            .await
            .expect("the fresh database opens")
    }
}

fn admin_url() -> String {
    std::env::var("AOF_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN.to_owned())
}

/// A new empty database, or `None` (having said why) when no server answers and none is required.
pub async fn fresh_database() -> Option<FreshDatabase> {
    let admin = admin_url();
    let connected = tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(&admin))
        .await
        .map_err(|_| "no answer within 3 s".to_owned())
        .and_then(|c| c.map_err(|e| e.to_string()));
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(reason) => {
            let said = format!("no PostgreSQL at {}: {reason}", super::redacted(&admin));
            assert!(
                std::env::var("AOF_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "AOF_REQUIRE_POSTGRES=1 but {said}"
            );
            println!("skipped: {said}");
            return None;
        }
    };
    let name = format!(
        "aof_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        aof_actors::model::now_ms() % 1_000_000
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("the test database is created");
    let _ = conn.close().await;
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("AOF_TEST_POSTGRES `{admin}` names no database"),
    };
    Some(FreshDatabase { url, name, admin })
}

impl Drop for FreshDatabase {
    /// Drops the database from a thread of its own (a drop cannot wait on the test's runtime).
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin)
                    .await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test database {} could not be dropped", self.name);
        }
    }
}
