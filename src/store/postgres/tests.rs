use super::testing::fresh_database;
use super::*;

fn storage(url: &str) -> StorageConfig {
    StorageConfig {
        url: url.to_owned(),
        ..crate::config::defaults::storage()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_fresh_database_gets_the_schema_takes_writes_and_opens_again() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PgStore::open(&storage(&db.url)).await.expect("opens");
    assert!(store.writable().await);
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
         AND table_name IN ('inbox', 'outbox', 'alerts', 'run_journal', 'silences')",
    )
    .fetch_one(&store.pool)
    .await
    .expect("reads");
    assert_eq!(tables, 5);
    store.close().await;
    // A second replica (or a restart) finds the schema up to date.
    let again = PgStore::open(&storage(&db.url)).await.expect("opens again");
    assert!(again.writable().await);
    again.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_that_does_not_answer_is_named_without_the_password() {
    let config = StorageConfig {
        connect_timeout: Duration::from_millis(500),
        ..storage("postgres://aof:s3cret@127.0.0.1:1/aof")
    };
    let err = PgStore::open(&config)
        .await
        .expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(
        text.contains("postgres://aof:***@127.0.0.1:1/aof"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn passwords_are_hidden_and_urls_without_one_kept() {
    assert_eq!(
        redacted("postgres://aof:pw@db.internal:5432/aof?sslmode=require"),
        "postgres://aof:***@db.internal:5432/aof?sslmode=require"
    );
    assert_eq!(redacted("postgres://aof@db/aof"), "postgres://aof@db/aof");
    assert_eq!(redacted("sqlite://data/aof.db"), "sqlite://data/aof.db");
}

#[tokio::test(flavor = "current_thread")]
async fn a_keep_that_cannot_be_stored_fails_alone_and_the_ones_committed_with_it_are_kept() {
    use crate::store::{Inbox, InboxEntry};
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PgStore::open(&storage(&db.url)).await.expect("opens");
    let entry = |i: usize| InboxEntry {
        kind: "flow",
        once: Some(format!("event-{i}")),
        open_key: None,
        // PostgreSQL's TEXT refuses a NUL character: this keep cannot be stored.
        body: if i == 7 {
            "bad \u{0} body".into()
        } else {
            format!("{{\"n\":{i}}}")
        },
        audit: None,
    };
    let keeps = (0..20).map(|i| store.keep_events(vec![entry(i)]));
    let answers = futures_util::future::join_all(keeps).await;
    for (i, answer) in answers.iter().enumerate() {
        match i {
            7 => assert!(answer.is_err(), "the bad keep fails"),
            _ => assert!(
                matches!(answer, Ok(rows) if rows.len() == 1 && rows[0].is_some()),
                "keep {i}: {answer:?}"
            ),
        }
    }
    let open = store
        .open_inbox(Duration::from_secs(3600))
        .await
        .expect("reads");
    assert_eq!(open.len(), 19, "every good keep is in the inbox");
    store.close().await;
}
