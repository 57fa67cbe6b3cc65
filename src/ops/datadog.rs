//! Datadog alerts as Datadog really fills its webhook variables: `$ALERT_STATUS` is a sentence
//! ("… was > 0.05 on average during the last 5m"), the status word is `$ALERT_TRANSITION`
//! (`Triggered`, `Recovered`, `Warn`, `No Data`, `Re-Triggered`, …), `$EVENT_TITLE` starts with
//! tags (`[Triggered]`, `[P1] [Triggered on {service:api,env:prod}] …`) and `$ALERT_PRIORITY` is
//! `P1`…`P5`. Datadog does not retry a 4xx, so a Datadog body is never refused: what cannot be
//! read pages as a warning that says what it could not read.
//!
//! Severity, in order: a recovery anywhere (`Recovered`, `OK`, `Success`) resolves; then the
//! priority (`P1`, `P2` → critical, `P3` → warning, `P4`, `P5` → info); then the status word
//! (`Alert`, `Triggered`, `Re-Triggered`, `Error`, `Renotify` → critical; `Warn`, `Re-Warn`,
//! `Warning` → warning; `No Data`, `Info` → info); then `$ALERT_TYPE` (`error`, `warning`,
//! `info`, `success`); else warning, saying so.

use super::intake::Severity;
use serde_json::{json, Map, Value};

/// What a Datadog body means for the paging flow.
#[derive(Debug)]
pub struct Reading {
    /// How urgent, or resolved.
    pub severity: Severity,
    /// The paging flow's input: the body's own fields plus `severity`, `service`, `message`,
    /// `fingerprint`, `source` and, when something could not be read, `not_understood`.
    pub input: Map<String, Value>,
    /// What could not be read, each as a short sentence (empty when everything was).
    pub not_understood: Vec<String>,
}

/// A status or transition word; `None` for anything else (a sentence, an empty field).
fn word(text: &str) -> Option<Severity> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "alert" | "triggered" | "re-triggered" | "retriggered" | "error" | "renotify" => {
            Severity::Critical
        }
        "warn" | "warning" | "re-warn" | "rewarn" => Severity::Warning,
        "no data" | "nodata" | "no-data" | "info" => Severity::Info,
        "ok" | "recovered" | "success" | "resolved" => Severity::Resolved,
        _ => return None,
    })
}

/// `P1`…`P5`.
fn priority(text: &str) -> Option<Severity> {
    Some(match text.trim().to_ascii_uppercase().as_str() {
        "P1" | "P2" => Severity::Critical,
        "P3" => Severity::Warning,
        "P4" | "P5" => Severity::Info,
        _ => return None,
    })
}

/// A title's leading tags read: the status word, the priority, the scope's tags, and the title
/// that follows them.
#[derive(Debug, Default, PartialEq)]
struct Title {
    status: Option<Severity>,
    priority: Option<Severity>,
    /// `service:api,env:prod` from `[Triggered on {service:api,env:prod}]`.
    scope: Option<String>,
    rest: String,
}

/// Reads `[P1] [Triggered on {scope}] rest`; a title without known tags is all `rest`.
fn title(text: &str) -> Title {
    let mut out = Title::default();
    let mut rest = text.trim();
    while let Some(inner_end) = rest.strip_prefix('[').and_then(|r| r.find(']')) {
        let tag = &rest[1..=inner_end];
        let (head, scope) = match tag.split_once(" on ") {
            Some((head, scope)) => (head, Some(scope)),
            None => (tag, None),
        };
        if let Some(p) = priority(head) {
            out.priority = Some(p);
        } else if let Some(s) = word(head) {
            out.status = Some(s);
            out.scope = scope.map(|s| s.trim_matches(['{', '}', ' ']).to_owned());
        } else {
            break;
        }
        rest = rest[inner_end + 2..].trim_start();
    }
    out.rest = rest.to_owned();
    out
}

/// The value of `key` in a scope like `service:api,env:prod`.
fn tag<'a>(scope: &'a str, key: &str) -> Option<&'a str> {
    scope.split(',').find_map(|t| {
        let (k, v) = t.trim().split_once(':')?;
        (k == key && !v.is_empty()).then_some(v)
    })
}

/// Whether a body sent to the generic alert endpoint is Datadog's rather than a malformed alert
/// of the tutorial's schema: its `severity` is a Datadog word, its title or `service` starts with
/// a Datadog tag, or it has the keys of Datadog's default payload.
pub fn looks_like_datadog(body: &Map<String, Value>) -> bool {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let tagged = |t: &str| {
        let t = title(t);
        t.status.is_some() || t.priority.is_some()
    };
    word(text("severity")).is_some()
        || tagged(text("service"))
        || tagged(text("title"))
        || (body.contains_key("event_type") && body.contains_key("title"))
        || ["alert_transition", "alert_status", "alert_priority"]
            .iter()
            .any(|k| body.contains_key(*k))
}

/// Reads a Datadog body, whatever its template: never fails (see the module's notes).
pub fn read(body: &Map<String, Value>) -> Reading {
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            body.get(*k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        })
    };
    let mut not_understood = Vec::new();
    // The tutorial's template puts $EVENT_TITLE in `service`; Datadog's default puts it in `title`.
    let title_text = text(&["title", "event_title"])
        .or_else(|| text(&["service"]).filter(|s| s.starts_with('[')))
        .unwrap_or_default();
    let tags = title(title_text);
    let status_field = text(&["alert_transition", "transition", "severity", "alert_status"]);
    let words = [
        "alert_transition",
        "transition",
        "severity",
        "alert_status",
        "status",
    ]
    .iter()
    .filter_map(|k| text(&[k]).and_then(word))
    .chain(tags.status);
    let words: Vec<Severity> = words.collect();
    let priority = text(&["alert_priority", "priority"])
        .and_then(priority)
        .or(tags.priority);
    let alert_type = text(&["alert_type"]).and_then(|t| match t.to_ascii_lowercase().as_str() {
        "error" => Some(Severity::Critical),
        "warning" => Some(Severity::Warning),
        "info" => Some(Severity::Info),
        "success" => Some(Severity::Resolved),
        _ => None,
    });
    let severity = if words.contains(&Severity::Resolved) || alert_type == Some(Severity::Resolved)
    {
        Severity::Resolved
    } else if let Some(p) = priority {
        p
    } else if let Some(w) = words.first().or(alert_type.as_ref()) {
        *w
    } else {
        not_understood.push(match status_field {
            Some(s) => format!("no status word in \"{}\"", short(s)),
            None => "no status word, priority or [tag] in the title".to_owned(),
        });
        Severity::Warning
    };

    let scope_service = tags.scope.as_deref().and_then(|s| tag(s, "service"));
    let service = text(&["service"])
        .filter(|s| !s.starts_with('['))
        .or(scope_service)
        .or_else(|| text(&["service_name"]))
        .or_else(|| Some(tags.rest.as_str()).filter(|r| !r.is_empty()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            not_understood.push("no service, [… on {service:…}] scope or title".to_owned());
            "datadog".to_owned()
        });

    let mut message = text(&["message", "body", "event_msg"])
        .map(|m| m.replace("%%%", "").trim().to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| tags.rest.clone());
    // `$ALERT_STATUS` is a sentence worth reading ("… was > 0.05 during the last 5m").
    if let Some(sentence) = status_field.filter(|s| word(s).is_none() && !message.contains(*s)) {
        message = if message.is_empty() {
            sentence.to_owned()
        } else {
            format!("{message}\n{sentence}")
        };
    }
    if message.is_empty() {
        message = service.clone();
    }
    if !not_understood.is_empty() {
        tracing::warn!(problems = ?not_understood, "a Datadog alert the mapping could not fully read pages as a warning");
        message = format!(
            "{message}\n(aof could not read this alert fully: {})",
            not_understood.join("; ")
        );
    }

    let mut input = body.clone();
    input.insert("severity".into(), json!(severity.as_str()));
    input.insert("service".into(), json!(service));
    input.insert("message".into(), json!(message));
    input.insert("fingerprint".into(), json!(format!("datadog:{service}")));
    input.insert("source".into(), json!("datadog"));
    if !not_understood.is_empty() {
        input.insert("not_understood".into(), json!(not_understood));
    }
    Reading {
        severity,
        input,
        not_understood,
    }
}

/// The start of a long text, for a message.
fn short(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn titles_give_their_status_priority_scope_and_rest() {
        assert_eq!(
            title("[P1] [Triggered on {service:payments-api,env:prod}] payments-api 5xx high"),
            Title {
                status: Some(Severity::Critical),
                priority: Some(Severity::Critical),
                scope: Some("service:payments-api,env:prod".into()),
                rest: "payments-api 5xx high".into(),
            }
        );
        assert_eq!(title("[Recovered] disk").status, Some(Severity::Resolved));
        assert_eq!(title("[No Data] heartbeat").status, Some(Severity::Info));
        assert_eq!(title("[Re-Triggered] x").status, Some(Severity::Critical));
        assert_eq!(title("[staging] deploy").rest, "[staging] deploy");
    }

    #[test]
    fn the_tutorials_template_filled_with_real_values_pages() {
        // severity = $ALERT_STATUS, service = $EVENT_TITLE, message = $EVENT_MSG.
        let body = object(json!({
            "severity": "job:request_errors:ratio5m over service:payments-api,env:prod was > 0.05 on average during the last 5m.",
            "service": "[Triggered on {service:payments-api,env:prod}] payments-api 5xx ratio high",
            "message": "%%%\n5xx ratio on payments-api is above 5%.\n%%%",
            "runbook_url": "https://runbooks.example.com/payments",
        }));
        assert!(looks_like_datadog(&body));
        let r = read(&body);
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.input["service"], "payments-api");
        let message = r.input["message"].as_str().unwrap();
        assert!(
            message.starts_with("5xx ratio on payments-api is above 5%."),
            "{message}"
        );
        assert!(message.contains("during the last 5m"), "{message}");
        assert!(r.not_understood.is_empty());
        assert_eq!(
            r.input["runbook_url"],
            "https://runbooks.example.com/payments"
        );
    }

    #[test]
    fn the_fixtures_read_as_critical_pages_of_their_service() {
        for (name, service) in [
            ("tutorial-template-real-values.json", "payments-api"),
            ("webhook-default.json", "payments-api"),
        ] {
            let body: Value =
                serde_json::from_slice(&crate::fixture(&format!("datadog/{name}"))).unwrap();
            let body = body.as_object().unwrap();
            assert!(looks_like_datadog(body), "{name}");
            let r = read(body);
            assert_eq!(
                (r.severity, r.input["service"].as_str()),
                (Severity::Critical, Some(service)),
                "{name}"
            );
            assert!(
                r.not_understood.is_empty(),
                "{name}: {:?}",
                r.not_understood
            );
        }
    }

    #[test]
    fn transitions_priorities_and_recoveries() {
        for (body, want) in [
            (
                json!({"severity": "Triggered", "service": "api"}),
                Severity::Critical,
            ),
            (
                json!({"severity": "Warn", "service": "api"}),
                Severity::Warning,
            ),
            (
                json!({"severity": "No Data", "service": "api"}),
                Severity::Info,
            ),
            (
                json!({"severity": "Recovered", "service": "api"}),
                Severity::Resolved,
            ),
            (
                json!({"alert_transition": "Re-Triggered", "service": "api"}),
                Severity::Critical,
            ),
            (
                json!({"service": "[P3] [Triggered] api latency"}),
                Severity::Warning,
            ),
            (
                json!({"service": "[P1] [Recovered] api"}),
                Severity::Resolved,
            ),
            (
                json!({"title": "[P5] cert expires", "alert_priority": "P2"}),
                Severity::Critical,
            ),
            (
                json!({"title": "x", "event_type": "e", "alert_type": "success"}),
                Severity::Resolved,
            ),
        ] {
            assert_eq!(read(&object(body.clone())).severity, want, "{body}");
        }
    }

    #[test]
    fn what_cannot_be_read_pages_as_a_warning_that_says_so() {
        let r = read(&object(
            json!({"severity": "$ALERT_STATUS", "alert_status": "?"}),
        ));
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(r.input["service"], "datadog");
        assert_eq!(r.not_understood.len(), 2, "{:?}", r.not_understood);
        let message = r.input["message"].as_str().unwrap();
        assert!(message.contains("could not read"), "{message}");
    }

    #[test]
    fn a_plain_alert_with_a_wrong_severity_is_not_taken_for_datadog() {
        let body = object(json!({"severity": "urgent", "service": "api", "message": "m"}));
        assert!(!looks_like_datadog(&body));
    }
}
