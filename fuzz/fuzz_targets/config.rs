//! The TriggerConfig: any text loads or is refused with an error that names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = aof::config::load_str("fuzz.yaml", text, &|_| Some("x".into())) {
        assert!(e.to_string().contains("fuzz.yaml"));
    }
});
