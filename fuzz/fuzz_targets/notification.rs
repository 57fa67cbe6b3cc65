//! Meta's webhook body: any bytes are a notification or a refusal naming a field; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Err(e) = aof::wire::whatsapp::parse_notification(body) {
        assert!(!e.field.is_empty() && !e.reason.is_empty());
    }
});
