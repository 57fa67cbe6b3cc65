//! The static rota: whoever's shift spans now is paged, zones and shifts across midnight are
//! honoured, the fallback number catches an empty rota, and escalation goes to the next person on
//! shift when there is no PagerDuty.

use super::support::*;
use crate::common::*;
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::json;

#[actix_web::test]
async fn the_person_on_shift_now_is_paged_from_the_static_rota() {
    let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
    let world = start(OnCallSetup {
        rota: vec![
            ("Bob", BOB.into(), off_now(), "UTC"),
            ("Alice", ALICE.into(), on_now(), "UTC"),
            // On now in Kolkata time, which is not UTC's: the zone is honoured.
            (
                "Carol",
                CAROL.into(),
                shift_around_now(kolkata, -1, 1),
                "Asia/Kolkata",
            ),
        ],
        pagerduty: None,
        fallback: true,
    })
    .await;

    world.page("api").await;
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=2 source=static on_call=Alice,Carol"]
    );
    assert!(world.texts_to(BOB).is_empty(), "{:?}", world.all_texts());
    assert!(world.texts_to(CAROL).is_empty(), "{:?}", world.all_texts());
}

/// A whole-hour zone whose local time is now in the hour after midnight (`Etc/GMT-N` is UTC+N).
fn zone_just_past_midnight() -> String {
    use chrono::Timelike;
    let h = Utc::now().hour() as i32;
    let offset = if h <= 12 { -h } else { 24 - h };
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

#[actix_web::test]
async fn a_night_shift_across_midnight_is_on_just_after_midnight() {
    let zone: &'static str = Box::leak(zone_just_past_midnight().into_boxed_str());
    let world = start(OnCallSetup {
        rota: vec![
            ("Bob", BOB.into(), "02:00-22:00".into(), zone),
            ("Alice", ALICE.into(), "22:00-02:00".into(), zone),
        ],
        pagerduty: None,
        fallback: false,
    })
    .await;
    world.page("db").await;
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE db to Alice level=2 source=static on_call=Alice"],
        "in {zone}"
    );
}

#[actix_web::test]
async fn nobody_on_shift_pages_the_fallback_number() {
    let world = start(OnCallSetup {
        rota: vec![("Alice", ALICE.into(), off_now(), "UTC")],
        pagerduty: None,
        fallback: true,
    })
    .await;
    world.page("api").await;
    assert_eq!(
        world.sent_to(FALLBACK, 1).await,
        ["PAGE api to fallback level=None source=fallback on_call="]
    );
    assert!(world.texts_to(ALICE).is_empty());
}

#[actix_web::test]
async fn nobody_on_shift_and_no_fallback_fails_the_run_saying_what_to_set() {
    let world = start(OnCallSetup {
        rota: vec![("Alice", ALICE.into(), off_now(), "UTC")],
        pagerduty: None,
        fallback: false,
    })
    .await;
    let run = world
        .fire("/test/page-oncall", json!({ "service": "api" }))
        .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps' record");
    assert_eq!(steps[0]["step"], "get-oncall");
    assert_eq!(
        steps[0]["error"],
        "nobody is on call and platforms.whatsapp.oncall.fallback_number is not set"
    );
    assert!(world.graph.sends().is_empty());
}

#[actix_web::test]
async fn escalation_without_pagerduty_goes_to_the_next_person_on_shift_and_skips_the_pagerduty_step(
) {
    let world = start(OnCallSetup {
        rota: vec![
            ("Alice", ALICE.into(), on_now(), "UTC"),
            ("Bob", BOB.into(), off_now(), "UTC"),
            ("Carol", CAROL.into(), on_now(), "UTC"),
        ],
        pagerduty: None,
        fallback: true,
    })
    .await;
    let run = world
        .fire(
            "/test/escalate",
            json!({ "current_user": "+1 555 123 4567", "incident_id": "PINC1" }),
        )
        .await;
    completed(&run);
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Carol level=3 source=static pagerduty=platforms.whatsapp.oncall.pagerduty_token is not set"],
        "Bob is next in the list but off shift"
    );
    let steps = run.steps.unwrap();
    assert_eq!(steps[1]["step"], "escalate-pagerduty");
    assert_eq!(steps[1]["outcome"], "ok");
}
