//! COVER from the chat: someone takes the pager (or hands it to a named person) for a while; pages
//! go to them first, the team is told, WHO shows it, and a restart keeps it. Only the people
//! `oncall.coverers` names may set a cover for someone else.

use super::support::*;
use crate::common::*;
use serde_json::json;

/// The stories' config with Alice allowed to set covers for others.
async fn start_with_coverers(graph: &FakeGraph, dir: &std::path::Path) -> TestApp {
    spawn_with_oncall(graph, dir, "coverers: [\"Alice\"]").await
}

#[actix_web::test]
async fn a_cover_takes_the_pager_until_it_ends_and_survives_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start_with_coverers(&graph, dir.path()).await;
    app.say(BOB, "COVER 2h").await;
    received(&graph, BOB, "✅ Bob has the pager until").await;
    received(&graph, ALICE, "🔁 Bob has the pager until").await;

    alert(
        &app,
        json!({ "severity": "warning", "service": "search", "message": "slow" }),
    )
    .await;
    received(&graph, BOB, "ops_alert(WARNING|search|").await;
    assert!(
        !texts(&graph, ALICE)
            .iter()
            .any(|t| t.starts_with("ops_alert")),
        "Alice, first in the rota, is not paged while Bob covers: {:?}",
        texts(&graph, ALICE)
    );
    app.say(CAROL, "WHO").await;
    let who = received(&graph, CAROL, "🔁 *Covering*").await;
    assert!(who.contains("• Bob has the pager until"), "{who}");
    assert!(who.contains("(COVER by Bob)"), "{who}");
    app.say(CAROL, "STATUS").await;
    let status = received(&graph, CAROL, "System Status").await;
    assert!(
        status.contains("• Bob has the pager until"),
        "STATUS shows the cover: {status}"
    );

    app.stop();
    let app = start_with_coverers(&graph, dir.path()).await;
    alert(
        &app,
        json!({ "severity": "warning", "service": "billing", "message": "slow" }),
    )
    .await;
    received(&graph, BOB, "ops_alert(WARNING|billing|").await;
    let store = store(dir.path()).await;
    let audit = store.audit_log(100).await.unwrap();
    assert!(audit.iter().any(|r| r.kind == "cover"), "{audit:?}");
}

#[actix_web::test]
async fn only_coverers_may_hand_the_pager_to_someone_else() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start_with_coverers(&graph, dir.path()).await;
    app.say(CAROL, "COVER Bob 1h").await;
    received(&graph, CAROL, "Only the people in oncall.coverers").await;
    app.say(ALICE, "COVER Zed 1h").await;
    received(&graph, ALICE, "I know no Zed").await;
    app.say(ALICE, "COVER soon").await;
    received(&graph, ALICE, "Write COVER 2h").await;

    // Alice may: Carol takes the pager until a time of day.
    app.say(ALICE, "COVER Carol until 23:59").await;
    received(&graph, ALICE, "✅ Carol has the pager until").await;
    alert(
        &app,
        json!({ "severity": "warning", "service": "queue", "message": "deep" }),
    )
    .await;
    received(&graph, CAROL, "ops_alert(WARNING|queue|").await;
}
