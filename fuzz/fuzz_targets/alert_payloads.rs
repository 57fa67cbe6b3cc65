//! Alertmanager, PagerDuty and Datadog bodies: any JSON maps to a flow input or is refused
//! (Datadog's is always read into a page).
#![no_main]

use aof::ops::{datadog, intake};
use aof::wire::{alertmanager, pagerduty};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if let Value::Object(map) = &value {
        let _ = datadog::read(map);
    }
    if let Ok(notification) = serde_json::from_value::<alertmanager::Notification>(value.clone()) {
        for alert in &notification.alerts {
            let _ = intake::from_alertmanager(alert);
        }
    }
    if let Ok(delivery) = serde_json::from_value::<pagerduty::Delivery>(value) {
        let _ = intake::from_pagerduty(&delivery.event.data);
    }
});
