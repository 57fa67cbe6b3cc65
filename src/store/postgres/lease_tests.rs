use super::*;
use crate::store::postgres::testing::fresh_database;
use std::str::FromStr;

/// A fresh database with the schema, and how to connect to it.
async fn database() -> Option<(
    crate::store::postgres::testing::FreshDatabase,
    PgConnectOptions,
)> {
    let db = fresh_database().await?;
    db.store().await.close().await;
    let options = PgConnectOptions::from_str(&db.url).expect("a URL");
    Some((db, options))
}

#[tokio::test(flavor = "current_thread")]
async fn one_replica_leads_and_the_next_takes_over_with_a_higher_epoch() {
    let Some((_db, options)) = database().await else {
        return;
    };
    let mut first = Lease::try_acquire(&options, "a")
        .await
        .expect("asks")
        .expect("nobody leads yet");
    assert_eq!(first.epoch(), 1);
    assert!(
        Lease::try_acquire(&options, "b")
            .await
            .expect("asks")
            .is_none(),
        "one leader at a time"
    );
    assert!(first.alive().await);
    first.release().await;
    let mut second = Lease::try_acquire(&options, "b")
        .await
        .expect("asks")
        .expect("the lease is free again");
    assert_eq!(second.epoch(), 2, "a takeover bumps the epoch");
    assert!(second.alive().await);
}

#[tokio::test(flavor = "current_thread")]
async fn a_leader_whose_connection_dies_loses_the_lease_and_a_follower_leads() {
    let Some((db, options)) = database().await else {
        return;
    };
    let mut leader = Lease::try_acquire(&options, "a")
        .await
        .expect("asks")
        .expect("leads");
    // The network to the leader is cut: the server ends its session, and the lock with it.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .execute(&pool)
    .await
    .expect("terminates");
    pool.close().await;
    let follower = Lease::acquire(&options, "b", Duration::from_millis(50), |_| {});
    let follower = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("a follower leads within 5 s");
    assert_eq!(follower.epoch(), 2);
    assert!(
        !leader.alive().await,
        "the old leader knows it no longer leads"
    );
}
