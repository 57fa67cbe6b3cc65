//! Timers fire once across replicas: on the leader only, also when the leader that stored one
//! dies before it is due.

use super::*;

/// The shipped flows with the escalation timer cut from five minutes to `secs` seconds.
fn flows_escalating_after(dir: &std::path::Path, secs: u64) -> std::path::PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("creates");
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the flows") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("reads");
        let text = text.replace("delay: 300  # 5 minutes", &format!("delay: {secs}"));
        std::fs::write(flows.join(path.file_name().expect("a name")), text).expect("writes");
    }
    flows
}

#[actix_web::test]
async fn an_escalation_timer_fires_once_across_replicas_even_when_its_leader_dies_first() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_escalating_after(dir.path(), 4);
    let file = config(dir.path(), &graph, &db.url);
    let text = std::fs::read_to_string(&file).expect("reads");
    let shipped = format!("directory: \"{}\"", repo().join("flows/whatsapp").display());
    assert!(text.contains(&shipped));
    std::fs::write(
        &file,
        text.replace(&shipped, &format!("directory: \"{}\"", flows.display())),
    )
    .expect("writes");
    let mut bots: Vec<Option<Bot>> = (0..3).map(|_| Some(Bot::serve(&file))).collect();
    let addresses: Vec<String> = bots.iter().flatten().map(|b| b.address.clone()).collect();
    let live: Live = Rc::new(RefCell::new(addresses.clone()));
    let (first, _) = wait_for_leader(&addresses, Duration::from_secs(30)).await;
    says_who_leads(&addresses, first).await;
    let body = json!({ "severity": "critical", "service": "db", "message": "replica lag" });
    assert!(post_alert(&live, &body).await);
    let paged = paged_about(&graph, "replica lag").await;
    assert!(paged, "Alice was paged: {:?}", graph.sends());
    // The leader that stored the timer dies before it is due; of the two left, one leads.
    bots[first].take().expect("running").kill9();
    live.borrow_mut().retain(|a| *a != addresses[first]);
    let escalated = |graph: &FakeGraph| -> usize {
        let pages: Vec<String> = graph.sends_to(BOB).iter().map(text_of).collect();
        let escalations = pages
            .iter()
            .filter(|t| t.starts_with("ops_alert(ESCALATED"));
        escalations.filter(|t| t.contains("replica lag")).count()
    };
    let fired = eventually(Duration::from_secs(30), || {
        (escalated(&graph) > 0).then_some(())
    })
    .await;
    let logs = || -> String {
        let logs: Vec<String> = bots.iter().flatten().map(Bot::log).collect();
        logs.join("\n---\n")
    };
    assert!(fired.is_some(), "the escalation fired\n{}", logs());
    // Long enough for a second replica's scheduler, had it one, to fire it too.
    actix_web::rt::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(escalated(&graph), 1, "escalated once\n{}", logs());
}
