//! Every expression-bearing string of a flow, with where it stands (`steps[2].input.text`): loading
//! walks them to check and compile each expression once.

use super::model::{AgentFlow, Response};

/// Calls `fix` on every expression-bearing string of a flow, with its location.
pub(super) fn visit_strings(flow: &mut AgentFlow, fix: &mut dyn FnMut(String, &mut String)) {
    if let Some(input) = &mut flow.input {
        for (name, field) in &mut input.schema {
            if let Some(source) = &mut field.source {
                let mut expr = format!("{{{{ {source} }}}}");
                fix(format!("input.schema.{name}.source"), &mut expr);
                *source = expr
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim()
                    .to_owned();
            }
        }
    }
    for (i, step) in flow.steps.iter_mut().enumerate() {
        let at = format!("steps[{i}] `{}`", step.name);
        fix(format!("{at}: action"), &mut step.action);
        for (key, value) in [
            ("condition", &mut step.condition),
            ("foreach", &mut step.foreach),
        ] {
            if let Some(v) = value {
                fix(format!("{at}: {key}"), v);
            }
        }
        visit_json(&format!("{at}: input"), &mut step.input, fix);
        if let Some(e) = &mut step.on_empty {
            visit_response(&format!("{at}: on_empty.response"), &mut e.response, fix);
        }
        if let Some(e) = &mut step.on_error {
            if let Some(r) = &mut e.response {
                visit_response(&format!("{at}: on_error.response"), r, fix);
            }
            for (j, f) in e.fallback.iter_mut().enumerate() {
                for v in [&mut f.user, &mut f.address].into_iter().flatten() {
                    fix(format!("{at}: on_error.fallback[{j}]"), v);
                }
            }
        }
    }
    for (i, r) in flow.on_response.iter_mut().enumerate() {
        for (key, value) in r.input.iter_mut() {
            visit_json(&format!("on_response[{i}].input.{key}"), value, fix);
        }
    }
}

fn visit_response(at: &str, r: &mut Response, fix: &mut dyn FnMut(String, &mut String)) {
    if let Some(t) = &mut r.text {
        fix(format!("{at}.text"), t);
    }
    for (i, p) in r.parameters.iter_mut().enumerate() {
        fix(format!("{at}.parameters[{i}]"), p);
    }
}

fn visit_json(at: &str, value: &mut serde_json::Value, fix: &mut dyn FnMut(String, &mut String)) {
    match value {
        serde_json::Value::String(s) => fix(at.to_owned(), s),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                visit_json(&format!("{at}[{i}]"), v, fix);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                visit_json(&format!("{at}.{k}"), v, fix);
            }
        }
        _ => {}
    }
}
