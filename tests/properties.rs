//! Properties of everything that reads input from outside (proptest): Meta's notifications,
//! Alertmanager, PagerDuty and Datadog payloads, flow expressions and the config. For any input,
//! nothing panics, and a refusal says what was wrong: a field for a payload, the file for a
//! config. The HTTP surface is held to the same through the running server: any body is answered
//! 200 or a 4xx naming the field, never a 5xx.
//!
//! Each property runs a few hundred cases, so the file runs in CI in seconds; the fuzz targets in
//! `fuzz/` run the same readers for hours (RELIABILITY.md).

mod common;

use aof::flow::expr::Expressions;
use aof::ops::{datadog, intake};
use aof::wire::whatsapp::parse_notification;
use aof::wire::{alertmanager, pagerduty};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, a few levels deep, with the keys the readers look for mixed into random ones.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("messages".to_owned()),
        Just("statuses".to_owned()),
        Just("entry".to_owned()),
        Just("changes".to_owned()),
        Just("value".to_owned()),
        Just("from".to_owned()),
        Just("id".to_owned()),
        Just("type".to_owned()),
        Just("text".to_owned()),
        Just("body".to_owned()),
        Just("timestamp".to_owned()),
        Just("status".to_owned()),
        Just("alerts".to_owned()),
        Just("labels".to_owned()),
        Just("fingerprint".to_owned()),
        Just("event".to_owned()),
        Just("data".to_owned()),
        Just("severity".to_owned()),
        Just("priority".to_owned()),
        Just("from_user_id".to_owned()),
        Just("user_id".to_owned()),
        Just("reaction".to_owned()),
        Just("emoji".to_owned()),
        Just("system".to_owned()),
        Just("context".to_owned()),
        Just("title".to_owned()),
        Just("alert_transition".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,24}".prop_map(Value::String),
        Just(json!("firing")),
        Just(json!("resolved")),
        Just(json!("critical")),
        Just(json!("15551234567")),
        Just(json!("US.13491208655302741918")),
        Just(json!("[P1] [Triggered on {service:api}] api down")),
        Just(json!("ACK ALT-0001")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A notification shaped like Meta's, with any values in its message and status fields.
fn notification_shaped() -> impl Strategy<Value = Value> {
    (any_json(), any_json(), any_json(), ".{0,12}").prop_map(|(message, status, contact, kind)| {
        let mut message = message;
        if let Value::Object(m) = &mut message {
            m.entry("type").or_insert(json!(kind));
        }
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "phone_number_id": "106540352242922" },
                "contacts": [contact], "messages": [message], "statuses": [status] } }] }]
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_a_notification_or_a_refusal_naming_a_field(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_notification(&body) {
            prop_assert!(!e.field.is_empty() && !e.reason.is_empty());
        }
    }

    #[test]
    fn any_values_in_meta_shaped_notifications_are_read_or_reported_one_by_one(body in notification_shaped()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        // One message and one status of any shape: each is read or reported, never the batch
        // refused.
        let n = parse_notification(&bytes);
        prop_assert!(n.is_ok(), "{n:?}");
        let n = n.unwrap();
        prop_assert!(n.messages.len() + n.statuses.len() + n.unreadable.len() <= 2);
        for e in &n.unreadable {
            prop_assert!(e.field.starts_with("entry[0].changes[0].value."), "{e:?}");
        }
    }

    #[test]
    fn any_alertmanager_body_maps_or_is_refused(body in any_json()) {
        if let Ok(notification) = serde_json::from_value::<alertmanager::Notification>(body) {
            for alert in &notification.alerts {
                let input = intake::from_alertmanager(alert);
                prop_assert!(input.contains_key("severity"), "{input:?}");
            }
        }
    }

    #[test]
    fn any_datadog_body_pages_and_any_pagerduty_body_maps_or_is_refused(body in any_json()) {
        if let Value::Object(map) = &body {
            // Datadog does not retry a 4xx: every body is read into a page.
            let reading = datadog::read(map);
            for key in ["severity", "service", "message", "fingerprint"] {
                prop_assert!(reading.input[key].is_string(), "{key}: {:?}", reading.input);
            }
            prop_assert!(["critical", "warning", "info", "resolved"]
                .contains(&reading.input["severity"].as_str().unwrap_or_default()));
        }
        if let Ok(delivery) = serde_json::from_value::<pagerduty::Delivery>(body) {
            let input: Map<String, Value> = intake::from_pagerduty(&delivery.event.data);
            prop_assert!(input.contains_key("severity"), "{input:?}");
        }
    }

    #[test]
    fn any_expression_renders_or_fails_with_an_error(template in ".{0,48}", context in any_json()) {
        let expressions = Expressions::new();
        let context = minijinja::Value::from_serialize(&context);
        let _ = expressions.render(&template, &context);
        let _ = expressions.truthy(&template, &context);
        let _ = expressions.eval_str(&template, &context);
    }

    #[test]
    fn any_config_text_loads_or_names_the_file(text in ".{0,200}") {
        if let Err(e) = aof::config::load_str("any.yaml", &text, &|_| None) {
            prop_assert!(e.to_string().contains("any.yaml"), "{e}");
        }
    }

    #[test]
    fn the_tutorial_config_with_a_line_gone_loads_or_names_the_file(line in 0usize..115) {
        let text = std::fs::read_to_string(common::repo().join("config/whatsapp-bot.yaml")).unwrap();
        let cut: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i != line).map(|(_, l)| l).collect();
        let env = |name: &str| Some(format!("test-{name}"));
        if let Err(e) = aof::config::load_str("cut.yaml", &cut.join("\n"), &env) {
            prop_assert!(e.to_string().contains("cut.yaml"), "{e}");
        }
    }
}
