//! The shipped status check flow: its tutorial text, and the incident section.

use super::assert_time_from_now;
use crate::common::chat::*;
use crate::common::*;

#[actix_web::test]
async fn the_shipped_status_check_flow_renders_the_tutorials_status_text() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let reply = ask_reply(&app, &graph, ALICE, "STATUS").await;
    assert_eq!(reply.body["type"], "text");
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "📊 *System Status*", "{text}");
    let latency = regex::Regex::new(r"^  ⏱ \d+ms$").unwrap();
    for svc in ["api", "web"] {
        let at = lines
            .iter()
            .position(|l| *l == format!("✅ *{svc}*: healthy"))
            .unwrap_or_else(|| panic!("{svc} healthy: {text}"));
        assert!(
            latency.is_match(lines[at + 1]),
            "{svc}'s latency under it: {text}"
        );
    }
    for svc in ["workers", "database", "cache"] {
        assert!(
            lines.contains(&format!("❌ *{svc}*: not configured").as_str()),
            "{svc}: {text}"
        );
    }
    assert!(lines.contains(&"✨ No active incidents"), "{text}");
    assert!(!text.contains("Active Incidents"), "{text}");
    let last = lines.last().unwrap();
    let time = last
        .strip_prefix('_')
        .and_then(|l| l.strip_suffix('_'))
        .unwrap_or_else(|| panic!("the time in italics last: {text}"));
    assert_time_from_now(time, 0);

    // With an open incident, the incident section replaces "No active incidents".
    let store = store(dir.path()).await;
    let incident = store
        .create_incident("Checkout latency", "critical", "api")
        .await
        .unwrap();
    let text = ask_reply(&app, &graph, ALICE, "STATUS api")
        .await
        .text()
        .to_owned();
    assert!(
        text.contains("━━━━━━━━━━━━\n🚨 *Active Incidents*"),
        "{text}"
    );
    assert!(
        text.contains(&format!("• {}: Checkout latency [critical]", incident.id)),
        "{text}"
    );
    assert!(!text.contains("No active incidents"), "{text}");
}
