use super::testing::fresh_database;
use super::*;

/// Takes the lease as `holder`, on the database `store` is on.
async fn lead(store: &PgStore, holder: &str) -> lease::Lease {
    lease::Lease::try_acquire(store.connect_options(), holder)
        .await
        .expect("asks")
        .expect("nobody else leads")
}

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
    let store = db.store().await;
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
    let again = db.store().await;
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
    let store = db.store().await;
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

#[tokio::test(flavor = "current_thread")]
async fn each_leader_is_handed_the_open_rows_once_and_keeps_its_own_as_handed() {
    use crate::store::{Inbox, InboxEntry};
    use aof_actors::ports::Store;
    let Some(db) = fresh_database().await else {
        return;
    };
    let follower = db.store().await;
    let entry = |n: usize| InboxEntry {
        kind: "flow",
        once: None,
        open_key: None,
        body: format!("{{\"n\":{n}}}"),
        audit: None,
    };
    let seqs = |rows: Vec<crate::store::InboxRow>| -> Vec<i64> {
        rows.into_iter().map(|r| r.seq.0).collect()
    };
    assert!(
        follower.claim_inbox().await.expect("claims").is_empty(),
        "a follower is handed nothing"
    );
    let kept = follower
        .keep_events(vec![entry(1), entry(2)])
        .await
        .expect("kept");
    let lease = lead(&follower, "first").await;
    let first = follower.leading(lease.epoch());
    let handed = seqs(first.claim_inbox().await.expect("claims"));
    assert_eq!(
        handed,
        kept.iter().flatten().map(|s| s.0).collect::<Vec<_>>()
    );
    assert!(
        first.claim_inbox().await.expect("claims").is_empty(),
        "handed over once"
    );
    // The leader's own keeps are its own already; a follower's are handed over.
    let own = first.keep_events(vec![entry(3)]).await.expect("kept");
    let theirs = follower.keep_events(vec![entry(4)]).await.expect("kept");
    let handed = seqs(first.claim_inbox().await.expect("claims"));
    assert_eq!(handed, vec![theirs[0].expect("new").0]);
    // One row closes; the next leader is handed the rest, in order.
    let own = own[0].expect("new");
    first
        .inbox_done(own, "handled".into())
        .await
        .expect("closes");
    lease.release().await;
    let next = lead(&follower, "second").await;
    let second = follower.leading(next.epoch());
    let handed = seqs(second.claim_inbox().await.expect("claims"));
    let mut open: Vec<i64> = kept.iter().flatten().map(|s| s.0).collect();
    open.push(theirs[0].expect("new").0);
    assert_eq!(handed, open);
    for store in [first, second, follower] {
        store.close().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_leader_whose_epoch_is_not_the_current_one_cannot_write() {
    use crate::store::{Inbox, InboxEntry};
    let Some(db) = fresh_database().await else {
        return;
    };
    let follower = db.store().await;
    let lease = lead(&follower, "first").await;
    let first = follower.leading(lease.epoch());
    let entry = InboxEntry {
        kind: "flow",
        once: None,
        open_key: None,
        body: "{}".into(),
        audit: None,
    };
    first
        .keep_events(vec![entry.clone()])
        .await
        .expect("the leader writes");
    lease.release().await;
    let next = lead(&follower, "second").await;
    assert_eq!(next.epoch(), 2);
    let refused = first.keep_events(vec![entry.clone()]).await;
    assert!(refused.is_err(), "a stale leader's write is refused");
    assert!(fence::is_deposed(), "and this process knows it was deposed");
    let second = follower.leading(next.epoch());
    second
        .keep_events(vec![entry.clone()])
        .await
        .expect("the new leader writes");
    follower
        .keep_events(vec![entry])
        .await
        .expect("a follower keeps, unfenced");
    for store in [first, second, follower] {
        store.close().await;
    }
}
