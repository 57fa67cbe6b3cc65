//! Text routing, in order: commands, a flow's own message patterns, keywords, the default flow.

use super::HELP_MARK;
use crate::common::chat::*;
use crate::common::*;

#[actix_web::test]
async fn commands_match_the_whole_message_in_any_case_with_surrounding_spaces() {
    // A flow whose own pattern also takes "help": were the command not matched first, in any case
    // and with spaces trimmed, this flow (first in file order) would answer.
    let shadow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: aaa-shadow
triggers:
  - platform: whatsapp
    type: message
    pattern: "^(help|status)$"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "shadowed {{ match.1 }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("aaa-shadow.yaml", shadow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let help = ask(&app, &graph, ALICE, "  help ").await;
    assert!(help.contains(HELP_MARK), "HELP runs the help flow: {help}");

    let status = ask(&app, &graph, ALICE, " sTaTuS  ").await;
    assert!(
        status.contains("📊 *System Status*"),
        "STATUS runs status-check: {status}"
    );
    assert!(status.contains("*api*: healthy"), "{status}");
    assert!(!status.contains("shadowed"), "{status}");
}

#[actix_web::test]
async fn a_flows_own_pattern_feeds_match_1_so_status_api_reports_only_api() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let one = ask(&app, &graph, ALICE, "STATUS api").await;
    assert!(one.contains("✅ *api*: healthy"), "{one}");
    for other in ["*web*", "*workers*", "*database*", "*cache*"] {
        assert!(
            !one.contains(other),
            "only api is checked, not {other}: {one}"
        );
    }
    let health_calls = |svc: &str| {
        graph
            .requests()
            .iter()
            .filter(|r| r.path == format!("/health/{svc}"))
            .count()
    };
    assert_eq!(health_calls("api"), 1);
    assert_eq!(health_calls("web"), 0, "web was not asked for");

    let unknown = ask(&app, &graph, ALICE, "status payments-api").await;
    assert!(
        unknown.contains("❌ *payments-api*: not configured"),
        "{unknown}"
    );
}

#[actix_web::test]
async fn bare_status_reports_every_service_and_the_unconfigured_ones_as_such() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let all = ask(&app, &graph, BOB, "STATUS").await;
    for configured in ["api", "web"] {
        assert!(
            all.contains(&format!("✅ *{configured}*: healthy")),
            "{configured}: {all}"
        );
    }
    for unknown in ["workers", "database", "cache"] {
        assert!(
            all.contains(&format!("❌ *{unknown}*: not configured")),
            "{unknown}: {all}"
        );
    }
}

#[actix_web::test]
async fn a_flows_own_message_pattern_is_checked_before_the_keywords() {
    // "outage" is also a keyword (-> status-check); the flow's own pattern must win.
    let outage = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: outage-report
triggers:
  - platform: whatsapp
    type: message
    pattern: "^outage in (\\w+)$"
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "outage report for {{ match.1 | upper }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("outage-report.yaml", outage)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(
        ask(&app, &graph, ALICE, "Outage in eu").await,
        "outage report for EU"
    );
    // Without the flow's pattern, the same keyword goes to status-check.
    let keyword = ask(&app, &graph, ALICE, "big outage").await;
    assert!(keyword.contains("📊 *System Status*"), "{keyword}");
}

#[actix_web::test]
async fn a_keyword_routes_with_its_capture_as_match_1() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    // (?i)(incident|outage|down) -> status-check, whose service comes from match.1 = "outage".
    // (No shipped flow's own pattern takes this text; "the api is down" goes to incident-report.)
    let reply = ask(&app, &graph, ALICE, "we have an outage").await;
    assert!(reply.contains("📊 *System Status*"), "{reply}");
    assert!(reply.contains("❌ *outage*: not configured"), "{reply}");
    assert!(!reply.contains("*api*"), "{reply}");
}

#[actix_web::test]
async fn unmatched_text_goes_to_the_default_flow() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let reply = ask(&app, &graph, BOB, "good morning, anyone there?").await;
    assert!(reply.contains(HELP_MARK), "{reply}");
    assert!(
        reply.contains("Hi Tester"),
        "the help flow greets by name: {reply}"
    );
}
