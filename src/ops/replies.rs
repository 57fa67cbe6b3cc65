//! What a reply acts on. An on-call engineer paged twice who answers ACK quoting the first page (or
//! taps the first page's button) means the first alert, not the most recent; so does one who
//! writes `ACK ALT-0001`. The target is an id written after the command, else what the quoted
//! message was about; the command itself is then routed as if typed alone, so the tutorial's
//! flows (`^ACK$`) need no change.

use serde_json::{json, Value};

/// The id prefixes people write and the key of the record each names.
const KINDS: [(&str, &str); 3] = [
    ("ALT", "alert_id"),
    ("INC", "incident_id"),
    ("APR", "request_id"),
];

/// `ACK ALT-0003` (any case, `ALT-3` too) as the command `ACK` and the target
/// `{"alert_id": "ALT-0003"}`; `None` for a text that is not one word followed by one id.
pub fn explicit(text: &str) -> Option<(String, Value)> {
    let mut words = text.split_whitespace();
    let (command, id, rest) = (words.next()?, words.next()?, words.next());
    if rest.is_some() || !command.chars().all(|c| c.is_alphabetic()) {
        return None;
    }
    let (prefix, number) = id.split_once('-')?;
    let prefix = prefix.to_ascii_uppercase();
    let key = KINDS.iter().find(|(p, _)| *p == prefix)?.1;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    Some((
        command.to_owned(),
        json!({ key: format!("{prefix}-{number:04}") }),
    ))
}

/// The part of what a quoted message was about that a reply can act on (its alert, incident and
/// approval request ids, and a digest's `alert_ids`); `None` when it names none.
pub fn quoted(about: &Value) -> Option<Value> {
    let mut picked: serde_json::Map<String, Value> = KINDS
        .iter()
        .filter_map(|(_, key)| {
            let id = about.get(*key).filter(|v| v.is_string())?;
            Some(((*key).to_owned(), id.clone()))
        })
        .collect();
    if let Some(ids) = about.get("alert_ids").filter(|v| v.is_array()) {
        picked.insert("alert_ids".to_owned(), ids.clone());
    }
    (!picked.is_empty()).then_some(Value::Object(picked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_followed_by_an_id_names_its_target() {
        assert_eq!(
            explicit("ACK ALT-0003"),
            Some(("ACK".into(), json!({"alert_id": "ALT-0003"})))
        );
        assert_eq!(
            explicit("  resolve inc-2 "),
            Some(("resolve".into(), json!({"incident_id": "INC-0002"})))
        );
        assert_eq!(
            explicit("APPROVE APR-12345"),
            Some(("APPROVE".into(), json!({"request_id": "APR-12345"})))
        );
        for not in [
            "ACK",
            "ACK ALT-",
            "ACK ALT-x1",
            "ACK FOO-1",
            "ACK ALT-1 now",
            "STATUS api",
        ] {
            assert_eq!(explicit(not), None, "{not}");
        }
    }

    #[test]
    fn a_quoted_message_names_the_records_it_was_about() {
        assert_eq!(
            quoted(&json!({"alert_id": "ALT-0001", "other": 1})),
            Some(json!({"alert_id": "ALT-0001"}))
        );
        assert_eq!(quoted(&json!({"run": "x"})), None);
    }
}
