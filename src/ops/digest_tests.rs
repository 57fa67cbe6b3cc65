use super::*;
use aof_actors::{JobId, WaId};

fn engineer() -> WaId {
    WaId::parse("15551234567").unwrap()
}

fn page(n: usize, service: &str, state: &str) -> QueuedJob {
    let id = format!("ALT-{n:04}");
    let title = format!("[CRITICAL] {service}: latency {n}");
    QueuedJob {
        id: JobId(format!("job_{n}")),
        message: OutboundMessage::text(engineer(), format!("🚨 {title}"), Lane::Alert).about(Some(
            json!({"alert_id": id, "service": service, "state": state, "title": title}),
        )),
        attempts: 0,
        enqueued_at_ms: 0,
        folds: Vec::new(),
    }
}

fn relay(n: usize, who: &str) -> QueuedJob {
    let text = format!("💬 *{who}* (INC-0001): line {n}");
    QueuedJob {
        id: JobId(format!("relay_{n}")),
        message: OutboundMessage::text(engineer(), text, Lane::Room)
            .about(Some(json!({"incident_id": "INC-0001"}))),
        attempts: 0,
        enqueued_at_ms: 0,
        folds: Vec::new(),
    }
}

/// Digests as the shipped sandbox config makes them (its fallback template is `ops_notification`).
fn digests() -> Digests {
    let text = include_str!("../../config/sandbox.yaml");
    let config = crate::config::load_str("sandbox.yaml", text, &|_| None);
    Digests::new(&config.expect("the sandbox config loads").platforms.whatsapp)
}

fn text(folded: &Folded) -> &str {
    match &folded.message.body {
        OutboundBody::Text { body } => body,
        other => panic!("a digest is text, got {other:?}"),
    }
}

fn fold(jobs: &[QueuedJob]) -> Option<Folded> {
    let refs: Vec<&QueuedJob> = jobs.iter().collect();
    digests().fold(&refs)
}

#[test]
fn waiting_pages_become_one_digest_naming_each_alert() {
    let mut jobs: Vec<QueuedJob> = (4..34).map(|n| page(n, "api-server", "firing")).collect();
    jobs.extend((34..41).map(|n| page(n, "db", "firing")));
    let folded = fold(&jobs).expect("37 pages fold");
    assert_eq!(folded.count, 37);
    let body = text(&folded);
    assert!(
        body.starts_with("🚨 *37 alerts firing* — api-server ×30, db ×7"),
        "{body}"
    );
    for n in 4..41 {
        assert!(
            body.contains(&format!("ALT-{n:04}")),
            "ALT-{n:04} named: {body}"
        );
    }
    assert!(body.contains("ACK ALL"), "{body}");
    let ids = folded.message.about.as_ref().unwrap()["alert_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ids, 37);
    assert!(
        matches!(&folded.message.fallback, Some(OutboundBody::Template { parameters, .. }) if parameters[0] == "37 alerts firing"),
        "carried outside the 24-hour window by the fallback template"
    );
}

#[test]
fn a_storm_too_long_for_lines_is_named_by_ranges() {
    let jobs: Vec<QueuedJob> = (1..=600).map(|n| page(n, "api-server", "firing")).collect();
    let folded = fold(&jobs).expect("folds");
    assert_eq!(folded.count, 600, "ranges name them all");
    let body = text(&folded);
    assert!(body.len() <= MAX_TEXT);
    assert!(body.contains("ALT-0001–ALT-0600"), "{body}");
}

#[test]
fn news_of_other_states_is_counted_apart() {
    let jobs = vec![
        page(1, "api-server", "firing"),
        page(2, "db", "resolved"),
        page(3, "db", "resolved"),
    ];
    let body = text(&fold(&jobs).unwrap()).to_owned();
    assert!(
        body.contains("🚨 *1 alert firing* — api-server ×1"),
        "{body}"
    );
    assert!(body.contains("✅ *2 alerts resolved* — db ×2"), "{body}");
}

#[test]
fn relays_fold_into_one_message_with_each_line_and_replies_never_fold() {
    let jobs = vec![relay(1, "Alice"), relay(2, "Bob"), relay(3, "Alice")];
    let folded = fold(&jobs).expect("relays fold");
    assert_eq!(folded.count, 3);
    let body = text(&folded);
    for n in 1..=3 {
        assert!(body.contains(&format!("line {n}")), "{body}");
    }
    assert_eq!(
        folded.message.about,
        Some(json!({"incident_id": "INC-0001"}))
    );
    let mut replies = jobs.clone();
    for job in &mut replies {
        job.message.lane = Lane::Reply;
    }
    assert!(fold(&replies).is_none());
}

#[test]
fn only_a_prefix_folds_so_order_is_kept() {
    let mut jobs = vec![page(1, "api", "firing"), page(2, "api", "firing")];
    let mut plain = relay(3, "Alice");
    plain.message.lane = Lane::Alert;
    plain.message.about = None;
    jobs.push(plain);
    jobs.push(page(4, "api", "firing"));
    assert_eq!(fold(&jobs).unwrap().count, 2);
}

#[test]
fn templates_fold_only_with_a_fallback_to_carry_the_digest() {
    let mut jobs = vec![page(1, "api", "firing"), page(2, "api", "firing")];
    for job in &mut jobs {
        job.message.body = OutboundBody::Template {
            name: "ops_alert".into(),
            language: "en_US".into(),
            parameters: vec![],
        };
    }
    let refs: Vec<&QueuedJob> = jobs.iter().collect();
    assert!(digests().fold(&refs).is_some());
    assert!(Digests { fallback: None }.fold(&refs).is_none());
}

#[test]
fn ranges_join_consecutive_ids() {
    assert_eq!(
        ranges(&["ALT-0009", "ALT-0004", "ALT-0005", "ALT-0006", "ALT-0007", "X"]),
        "ALT-0004–ALT-0007, ALT-0009, X"
    );
    assert_eq!(ranges(&["ALT-0001", "ALT-0002"]), "ALT-0001, ALT-0002");
}
