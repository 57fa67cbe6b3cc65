//! Tests of the alerts table against a real database file: repeats of an open alert, forward-only
//! transitions, and the open alerts of a person.

use super::*;
use crate::store::conformance::conformance;

fn alice() -> WaId {
    WaId::parse("+1 555 123 4567").expect("a number")
}

fn firing<'a>(fingerprint: Option<&'a str>, paged: Option<&'a WaId>) -> NewAlert<'a> {
    NewAlert {
        severity: "Critical",
        service: "api",
        message: "High latency",
        runbook_url: None,
        source: AlertSource::Alertmanager,
        fingerprint,
        pagerduty_incident_id: None,
        paged,
        created_by: None,
    }
}

conformance! {
    async fn a_step_run_again_after_a_crash_gets_the_alert_it_recorded_back(store) {
        let step = NewAlert {
            created_by: Some("run_inbox_7/1/api/"),
            ..firing(None, None)
        };
        let first = store.create_alert(&step).await.expect("created");
        let again = store.create_alert(&step).await.expect("found");
        assert_eq!(again.alert.id, first.alert.id, "no second alert");
        assert!(!again.duplicate, "the step sees what it saw the first time");
        let other = NewAlert {
            created_by: Some("run_inbox_8/1/api/"),
            ..firing(None, None)
        };
        let second = store.create_alert(&other).await.expect("created");
        assert_ne!(second.alert.id, first.alert.id, "another run's alert is its own");
    }
}

conformance! {
    async fn the_same_fingerprint_firing_twice_updates_the_open_alert(store) {
        let alice = alice();
        let first = store
            .create_alert(&firing(Some("fp1"), Some(&alice)))
            .await
            .expect("created");
        assert_eq!(
            (first.alert.id.as_str(), first.duplicate),
            ("ALT-0001", false)
        );
        assert_eq!(first.alert.severity, "critical");
        assert_eq!(first.alert.title(), "[CRITICAL] api: High latency");
        let again = store
            .create_alert(&firing(Some("fp1"), Some(&alice)))
            .await
            .expect("updated");
        assert!(again.duplicate);
        assert_eq!(again.alert.id, "ALT-0001");
        assert_eq!(again.alert.fire_count, 2);
        assert_eq!(again.alert.paged, ["+15551234567"]);

        store
            .transition("ALT-0001", AlertState::Resolved, Some("alertmanager"))
            .await
            .expect("resolves");
        let after = store
            .create_alert(&firing(Some("fp1"), None))
            .await
            .expect("created");
        assert_eq!(
            (after.alert.id.as_str(), after.duplicate),
            ("ALT-0002", false)
        );
        assert!(after.alert.paged.is_empty());
    }
}

conformance! {
    async fn states_only_move_forward_and_every_move_is_recorded(store) {
        let alice = alice();
        store
            .create_alert(&firing(None, Some(&alice)))
            .await
            .expect("created");
        let TransitionOutcome::Moved(acked) = store
            .transition("ALT-0001", AlertState::Acknowledged, Some("+15551234567"))
            .await
            .expect("runs")
        else {
            panic!("acknowledging a firing alert moves it")
        };
        assert_eq!(acked.acknowledged_by.as_deref(), Some("+15551234567"));
        assert!(matches!(
            store
                .transition("ALT-0001", AlertState::Acknowledged, Some("+15557654321"))
                .await
                .expect("runs"),
            TransitionOutcome::Unchanged(a) if a.acknowledged_by.as_deref() == Some("+15551234567")
        ));
        store
            .transition("ALT-0001", AlertState::Resolved, None)
            .await
            .expect("runs");
        let refused = store
            .transition("ALT-0001", AlertState::Acknowledged, Some("+15551234567"))
            .await
            .expect("runs");
        let TransitionOutcome::Refused(resolved) = refused else {
            panic!("acknowledging a resolved alert is refused: {refused:?}")
        };
        let states: Vec<&str> = resolved
            .transitions
            .iter()
            .map(|t| t.state.as_str())
            .collect();
        assert_eq!(states, ["firing", "acknowledged", "resolved"]);
        assert_eq!(
            resolved.transitions[1].actor.as_deref(),
            Some("+15551234567")
        );
        assert!(matches!(
            store
                .transition("ALT-0404", AlertState::Resolved, None)
                .await
                .expect("runs"),
            TransitionOutcome::Unknown
        ));
    }
}

conformance! {
    async fn open_alerts_of_a_person_come_newest_first(store) {
        let (alice, bob) = (alice(), WaId::parse("15557654321").expect("a number"));
        for paged in [Some(&alice), Some(&bob), Some(&alice)] {
            store
                .create_alert(&firing(None, paged))
                .await
                .expect("created");
        }
        store.add_paged("ALT-0002", &alice).await.expect("adds");
        store.add_paged("ALT-0002", &alice).await.expect("adds");
        let mine = store
            .find_open_for(&alice, &[AlertState::Firing])
            .await
            .expect("finds");
        let ids: Vec<&str> = mine.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["ALT-0003", "ALT-0002", "ALT-0001"]);
        assert_eq!(mine[1].paged, ["+15557654321", "+15551234567"]);
        assert_eq!(mine[1].pages.len(), 2);
        assert!(mine[1].pages[1].at_ms >= mine[1].pages[0].at_ms);
        assert!(store
            .find_open_for(&bob, &[AlertState::Acknowledged])
            .await
            .expect("finds")
            .is_empty());
    }
}

conformance! {
    async fn notes_are_added_to_an_alerts_timeline_in_order(store) {
        let created = store.create_alert(&firing(None, None)).await.expect("created");
        let id = created.alert.id;
        assert!(created.alert.notes.is_empty());
        store.add_alert_note(&id, "page to Alice failed").await.expect("noted");
        let alert = store
            .add_alert_note(&id, "escalated to Bob")
            .await
            .expect("noted")
            .expect("the alert");
        let texts: Vec<&str> = alert.notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["page to Alice failed", "escalated to Bob"]);
        assert!(store.add_alert_note("ALT-9999", "x").await.expect("answered").is_none());
        let read = store.get_alert(&id).await.expect("read").expect("the alert");
        assert_eq!(read.notes.len(), 2);
    }
}
