//! The notification reader's two paths (fast, and with field paths) read alike.
use super::*;
use serde_json::json;

fn fixture(name: &str) -> Value {
    let text = crate::fixture(&format!("whatsapp/{name}"));
    serde_json::from_slice(&text).expect("fixtures are JSON")
}

/// Both paths, as `Debug` text; the fast one must not have fallen back.
fn both(body: &Value) -> (String, String) {
    let bytes = body.to_string().into_bytes();
    assert!(
        read_fast(&bytes).is_some(),
        "the fast path failed on {body}"
    );
    let fast = parse_notification(&bytes).expect("parses");
    let slow = parse_with_paths(&bytes, None).expect("parses");
    (format!("{fast:?}"), format!("{slow:?}"))
}

#[test]
fn the_fast_path_reads_every_fixture_as_the_slow_one_does() {
    for name in [
        "batch-two-messages.json",
        "button.json",
        "image.json",
        "interactive-button-reply.json",
        "interactive-list-reply.json",
        "reaction.json",
        "reply-with-context.json",
        "status-delivered.json",
        "status-failed-131047.json",
        "status-read.json",
        "status-sent.json",
        "text.json",
    ] {
        let (fast, slow) = both(&fixture(name));
        assert_eq!(fast, slow, "{name}");
    }
}

#[test]
fn a_value_before_its_field_and_other_fields_are_read_alike() {
    let mut v = fixture("batch-two-messages.json");
    let value = v["entry"][0]["changes"][0]["value"].clone();
    let text = format!(
        r#"{{"object":"{OBJECT}","entry":[{{"id":"1","changes":[{{"value":{value},"extra":[1,{{}}],"field":"messages"}},{{"field":"account_update","value":{{"messages":"not a list"}}}},{{"value":7,"field":"other"}},{{"field":"nothing"}}]}}]}}"#
    );
    let reordered: Value = serde_json::from_str(&text).expect("JSON");
    let (fast, slow) = both(&reordered);
    assert_eq!(fast, slow);
    v["entry"][0]["changes"] = json!([{"field": "messages", "value": value}]);
    assert_eq!(both(&v).0, fast);
}

#[test]
fn a_sender_is_named_by_their_first_contact_entry() {
    let mut v = fixture("batch-two-messages.json");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    let first = value["contacts"][0].clone();
    let mut again = first.clone();
    again["profile"]["name"] = json!("Someone Else");
    value["contacts"] = json!([{"profile": {"name": "No Number"}}, first, again]);
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    let names: Vec<_> = n.messages.iter().map(|m| m.name.as_deref()).collect();
    assert_eq!(names, [Some("Priya Raman"), None]);
}

#[test]
fn what_the_fast_path_rejects_is_reported_by_the_slow_one() {
    let v = fixture("text.json");
    let value = &v["entry"][0]["changes"][0]["value"];
    for (changes, field) in [
        (json!([{"field": "messages"}]), "entry[0].changes[0].value"),
        (json!([{"value": {}}]), "entry[0].changes[0].field"),
        (
            json!([{"value": {"messages": 1}, "field": "messages"}]),
            "entry[0].changes[0].value.messages",
        ),
        (json!([["messages", value]]), ""),
    ] {
        let mut body = v.clone();
        body["entry"][0]["changes"] = changes.clone();
        let bytes = body.to_string().into_bytes();
        assert!(read_fast(&bytes).is_none(), "{changes}");
        let got = parse_notification(&bytes).map(|n| n.messages.len());
        let want = parse_with_paths(&bytes, None).map(|n| n.messages.len());
        assert_eq!(got, want, "{changes}");
        match got {
            Err(e) => assert_eq!(e.field, field, "{changes}"),
            Ok(n) => assert_eq!((n, field), (1, ""), "{changes}"),
        }
    }
    // serde_json skips the bytes of strings it ignores, so only one of these is rejected.
    let duplicate = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","field":"messages","value":{}}]}]}"#;
    let ignored_not_utf8 =
        b"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"\xff\"}]}";
    let not_utf8 = b"{\"object\":\"whatsapp_business_\xff\"}";
    for body in [&duplicate[..], &ignored_not_utf8[..], &not_utf8[..]] {
        assert!(read_fast(body).is_none());
        let got = format!("{:?}", parse_notification(body));
        assert_eq!(got, format!("{:?}", parse_with_paths(body, None)));
    }
    assert!(parse_notification(ignored_not_utf8).is_ok());
    assert_eq!(parse_notification(not_utf8).unwrap_err().field, "object");
}
