//! The paging story on PostgreSQL (`storage.url: postgres://…`, a database of its own): an alert
//! pages the on-call engineer, nobody acknowledges it, the bot restarts on the same database, the
//! escalation timer is still there and pages the next person, who acknowledges it. Says
//! "skipped: no PostgreSQL at …" without a server, unless `AOF_REQUIRE_POSTGRES=1`.

use super::support::*;
use crate::common::*;
use aof::store::postgres::testing::fresh_database;
use serde_json::json;

async fn spawn_on(graph: &FakeGraph, dir: &std::path::Path, url: &str) -> TestApp {
    let options = Options {
        storage_url: Some(url.to_owned()),
        ..options(&graph.address)
    };
    let app = TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the bot starts on PostgreSQL");
    // It serves at once as a follower, and leads once it holds the lease.
    eventually_async(WAIT, || async {
        let (_, body) = app.get("/healthz").await;
        body.contains(r#""role":"leader""#).then_some(())
    })
    .await
    .expect("the only replica leads");
    app
}

#[actix_web::test]
async fn an_alert_is_paged_escalated_after_a_restart_and_acknowledged_on_postgresql() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn_on(&graph, dir.path(), &db.url).await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "payments", "message": "5xx above 5%" }),
    )
    .await;
    received(&graph, ALICE, "ops_alert(CRITICAL|payments|5xx above 5%").await;
    eventually_async(WAIT, || async {
        (!timer_ids(&app, "auto-escalate-flow").await.is_empty()).then_some(())
    })
    .await
    .expect("the escalation timer is stored");
    app.stop();
    assert!(
        !dir.path().join("aof.db").exists(),
        "nothing went to a SQLite file"
    );

    let app = spawn_on(&graph, dir.path(), &db.url).await;
    let ids = timer_ids(&app, "auto-escalate-flow").await;
    assert_eq!(ids.len(), 1, "the 300 s timer survived the restart");
    let (status, _) = fire_timer(&app, &ids[0]).await;
    assert_eq!(status, 200);
    received(&graph, BOB, "ops_alert(ESCALATED|payments|5xx above 5%").await;
    app.say(BOB, "ACK").await;
    received(&graph, BOB, "You're now the incident commander").await;
    app.say(BOB, "INFO").await;
    let info = received(&graph, BOB, "Alert: ALT-0001 (acknowledged)").await;
    assert!(info.contains("Acknowledged by Bob"), "{info}");
}
