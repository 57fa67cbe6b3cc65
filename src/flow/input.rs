//! A flow's input: gathered from the webhook body, a pending response's templates, or the message's
//! regex groups (`source: match.1`), completed with schema defaults, and checked (required fields,
//! types, enums). The same check answers a bad webhook body with a 400 that names each field.

use super::model::{FieldSpec, InputSpec};
use serde::Serialize;
use serde_json::{Map, Value};

/// One bad input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

/// Fills defaults, then checks required fields, types and enums; every problem is returned.
pub fn complete_and_check(
    spec: Option<&InputSpec>,
    input: &mut Map<String, Value>,
) -> Vec<FieldError> {
    let Some(spec) = spec else { return Vec::new() };
    for (name, field) in &spec.schema {
        let absent = input.get(name).is_none_or(is_blank);
        if absent {
            match &field.default {
                Some(default) => {
                    input.insert(name.clone(), default.clone());
                }
                None => {
                    input.remove(name);
                }
            }
        }
    }
    let mut errors = Vec::new();
    for name in &spec.required {
        if input.get(name).is_none_or(is_blank) {
            errors.push(FieldError {
                field: name.clone(),
                reason: "is required".into(),
            });
        }
    }
    for (name, field) in &spec.schema {
        if let Some(value) = input.get(name) {
            if let Some(reason) = check_field(field, value) {
                errors.push(FieldError {
                    field: name.clone(),
                    reason,
                });
            }
        }
    }
    errors
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn check_field(field: &FieldSpec, value: &Value) -> Option<String> {
    let type_ok = match field.kind.as_deref() {
        None => true,
        Some("string") => value.is_string(),
        Some("number") => value.is_number(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        Some(_) => true,
    };
    if !type_ok {
        return Some(format!(
            "expected {}, got {}",
            field.kind.as_deref().unwrap_or("?"),
            json_type(value)
        ));
    }
    if let Some(allowed) = &field.allowed {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            return Some(format!("expected one of {}", list.join(", ")));
        }
    }
    None
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> InputSpec {
        serde_json::from_value(json!({
            "required": ["severity", "service"],
            "schema": {
                "severity": {"type": "string", "enum": ["critical", "warning", "info"]},
                "service": {"type": "string"},
                "target": {"type": "string", "default": "all"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut input = json!({"severity": "sev1"}).as_object().unwrap().clone();
        let errors = complete_and_check(Some(&spec()), &mut input);
        assert_eq!(errors.len(), 2);
        assert!(errors
            .iter()
            .any(|e| e.field == "service" && e.reason == "is required"));
        assert!(errors
            .iter()
            .any(|e| e.field == "severity" && e.reason.contains("critical, warning, info")));
    }

    #[test]
    fn defaults_fill_blank_fields() {
        let mut input = json!({"severity": "info", "service": "api", "target": ""})
            .as_object()
            .unwrap()
            .clone();
        assert!(complete_and_check(Some(&spec()), &mut input).is_empty());
        assert_eq!(input["target"], "all");
    }
}
