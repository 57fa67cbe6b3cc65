//! Flow expressions: any template text renders or fails with an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let expressions = aof::flow::expr::Expressions::new();
    let context = minijinja::Value::from_serialize(serde_json::json!({
        "input": { "service": "api", "severity": "critical", "items": [1, 2, 3] },
        "steps": { "first": { "output": { "alert_id": "ALT-0001" } } },
        "trigger": { "text": "HELP" }
    }));
    let _ = expressions.render(text, &context);
    let _ = expressions.truthy(text, &context);
    let _ = expressions.eval_str(text, &context);
});
