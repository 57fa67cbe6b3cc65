//! A leader paused while the network drops its database sessions comes back stale: it cannot
//! keep anything, and it stops.

use super::*;

#[actix_web::test]
async fn a_stale_leader_that_comes_back_cannot_keep_anything_and_stops() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let file = config(dir.path(), &graph, &db.url);
    let mut bots: Vec<Option<Bot>> = (0..2).map(|_| Some(Bot::serve(&file))).collect();
    let addresses: Vec<String> = bots.iter().flatten().map(|b| b.address.clone()).collect();
    let (first, _) = wait_for_leader(&addresses, Duration::from_secs(30)).await;
    let stale = bots[first].as_ref().expect("running");
    let pid = stale.pid().to_string();
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    };
    // The leader freezes (a long pause, a VM stalled), and its network drops its database
    // sessions: the lease with them.
    signal("-STOP");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
    )
    .execute(&pool)
    .await
    .expect("ends the leader's sessions");
    let other = 1 - first;
    let (now, _) = wait_for_leader(&addresses[other..=other], Duration::from_secs(15)).await;
    assert_eq!(now, 0, "the other replica leads");
    let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM leadership")
        .fetch_one(&pool)
        .await
        .expect("reads");
    assert_eq!(epoch, 2, "the takeover took a newer epoch");

    // It comes back believing it leads: what it is asked to keep now is refused, not lost.
    signal("-CONT");
    let body = json!({ "severity": "critical", "service": "db", "message": "disk full" });
    let answer = awc::Client::new()
        .post(format!(
            "{}/webhooks/whatsapp/alert/oncall",
            addresses[first]
        ))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .send_json(&body)
        .await;
    if let Ok(response) = answer {
        assert!(
            !response.status().is_success(),
            "the stale leader acknowledged an alert: {}",
            response.status()
        );
    }
    let stopped = eventually(Duration::from_secs(15), || {
        let bot = bots[first].as_mut().expect("running");
        bot.exited()
    })
    .await;
    let log = bots[first].as_ref().expect("kept").log();
    assert!(stopped.is_some(), "the stale leader did not stop:\n{log}");
    assert!(
        log.contains("this replica stops so that it restarts as a follower"),
        "{log}"
    );
    // The alert, sent again to the replica that leads, pages once.
    let live: Live = Rc::new(RefCell::new(vec![addresses[other].clone()]));
    assert!(post_alert(&live, &body).await);
    let paged = paged_about(&graph, "disk full").await;
    assert!(paged, "the new leader paged: {:?}", graph.sends());
    pool.close().await;
}
