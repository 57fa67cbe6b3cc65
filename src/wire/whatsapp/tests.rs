//! Tests of the WhatsApp wire format against the fixtures in `tests/fixtures/whatsapp/`.

use super::*;
use aof_actors::model::{
    DeliveryState, InboundKind, Lane, OutboundBody, OutboundMessage, ReplyButton,
};
use aof_actors::ports::SendErrorKind;
use aof_actors::{WaId, Wamid};

fn fixture(name: &str) -> Vec<u8> {
    crate::fixture(&format!("whatsapp/{name}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

fn one_message(name: &str) -> InboundMessage {
    let n = parse_notification(&fixture(name)).expect(name);
    assert_eq!(n.messages.len(), 1, "{name}");
    assert!(n.statuses.is_empty(), "{name}");
    n.messages.into_iter().next().expect("one message")
}

fn one_status(name: &str) -> StatusUpdate {
    let n = parse_notification(&fixture(name)).expect(name);
    assert_eq!(n.statuses.len(), 1, "{name}");
    assert!(n.messages.is_empty(), "{name}");
    n.statuses.into_iter().next().expect("one status")
}

fn outbound(body: OutboundBody) -> OutboundMessage {
    let to = WaId::parse("+1 555-123-4567").expect("valid number");
    OutboundMessage::new(to, body, String::new(), Lane::Alert)
}

#[test]
fn a_text_message_yields_its_body_sender_name_and_timestamp() {
    let m = one_message("text.json");
    assert_eq!(m.kind, InboundKind::Text);
    assert_eq!(m.text.as_deref(), Some("ack INC-4821"));
    assert_eq!(m.from.as_str(), "15551234567");
    assert_eq!(m.name.as_deref(), Some("Priya Raman"));
    assert_eq!(m.timestamp, 1718900000);
    assert!(m.id.as_str().starts_with("wamid."));
    assert_eq!(m.context_id, None);
}

#[test]
fn a_template_button_tap_yields_its_payload_and_context() {
    let m = one_message("button.json");
    assert_eq!(m.kind, InboundKind::Button);
    assert_eq!(m.text.as_deref(), Some("ACK:PD:Q1W2E3R4T5Y6U7"));
    assert_eq!(
        m.context_id.as_ref().map(Wamid::as_str),
        Some("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBJCNzE0RjI1QzlBOEQ2RTAxNDIA")
    );
}

#[test]
fn a_button_without_payload_falls_back_to_its_text() {
    let mut v = fixture_json("button.json");
    let button = &mut v["entry"][0]["changes"][0]["value"]["messages"][0]["button"];
    button.as_object_mut().expect("object").remove("payload");
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages[0].text.as_deref(), Some("Acknowledge"));
}

#[test]
fn interactive_replies_yield_the_reply_id() {
    let m = one_message("interactive-button-reply.json");
    assert_eq!(m.kind, InboundKind::Interactive);
    assert_eq!(m.text.as_deref(), Some("approve:deploy-7781"));
    assert!(m.context_id.is_some());

    let m = one_message("interactive-list-reply.json");
    assert_eq!(m.kind, InboundKind::Interactive);
    assert_eq!(m.text.as_deref(), Some("svc:payments-api"));
}

#[test]
fn media_are_other_kinds_without_text_and_a_reaction_carries_its_emoji() {
    let m = one_message("image.json");
    assert_eq!(m.kind, InboundKind::Other("image".into()));
    assert_eq!(m.text, None);

    let m = one_message("reaction.json");
    assert_eq!(m.kind, InboundKind::Reaction);
    assert!(m.text.as_deref().is_some_and(|e| !e.is_empty()));
}

#[test]
fn a_quoted_reply_carries_the_quoted_wamid() {
    let m = one_message("reply-with-context.json");
    assert_eq!(m.kind, InboundKind::Text);
    assert_eq!(
        m.context_id.as_ref().map(Wamid::as_str),
        Some("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RjgA")
    );
}

#[test]
fn a_batch_yields_every_message_with_its_own_sender_name() {
    let n = parse_notification(&fixture("batch-two-messages.json")).expect("parses");
    let got: Vec<_> = n
        .messages
        .iter()
        .map(|m| (m.from.as_str(), m.name.as_deref(), m.text.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "15551234567",
                Some("Priya Raman"),
                Some("status payments-api")
            ),
            ("15557654321", Some("Marco Silva"), Some("who is on call?")),
        ]
    );
}

#[test]
fn every_entry_and_change_is_read() {
    let mut v = fixture_json("text.json");
    let entry = v["entry"][0].clone();
    let mut other = fixture_json("batch-two-messages.json")["entry"][0].clone();
    other["changes"]
        .as_array_mut()
        .expect("array")
        .push(json!({"field": "account_update", "value": {"messages": "not a list"}}));
    v["entry"] = json!([entry, other]);
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages.len(), 3);
}

#[test]
fn statuses_yield_their_state_timestamp_and_recipient() {
    for (name, state, ts) in [
        ("status-sent.json", DeliveryState::Sent, 1718900105),
        (
            "status-delivered.json",
            DeliveryState::Delivered,
            1718900107,
        ),
        ("status-read.json", DeliveryState::Read, 1718900160),
    ] {
        let s = one_status(name);
        assert_eq!(s.state, state, "{name}");
        assert_eq!(s.timestamp, ts, "{name}");
        assert_eq!(s.recipient.as_ref().map(WaId::as_str), Some("15551234567"));
        assert_eq!(s.error, None, "{name}");
    }
    let s = one_status("status-failed-131047.json");
    assert_eq!(s.state, DeliveryState::Failed);
    assert_eq!(s.error, Some((131047, "Re-engagement message".into())));
}

#[test]
fn unknown_statuses_bad_senders_and_bad_timestamps_are_tolerated() {
    let mut v = fixture_json("status-read.json");
    v["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = json!("deleted");
    assert!(parse_notification(v.to_string().as_bytes())
        .expect("parses")
        .statuses
        .is_empty());

    let mut v = fixture_json("text.json");
    v["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = json!("not-a-number");
    assert!(parse_notification(v.to_string().as_bytes())
        .expect("parses")
        .messages
        .is_empty());

    let mut v = fixture_json("text.json");
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    m["timestamp"] = json!("yesterday");
    m["brand_new_field"] = json!({"meta": "adds fields"});
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages[0].timestamp, 0);
}

#[test]
fn a_malformed_message_is_skipped_naming_the_field_and_the_others_are_read() {
    let mut v = fixture_json("batch-two-messages.json");
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][1];
    m.as_object_mut().expect("object").remove("type");
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages.len(), 1);
    assert_eq!(n.unreadable.len(), 1);
    let err = &n.unreadable[0];
    assert_eq!(err.field, "entry[0].changes[0].value.messages[1].type");
    assert_eq!(err.to_json()["field"], err.field.as_str());

    let mut v = fixture_json("text.json");
    v["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!(42);
    v["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = json!({"body": ["HELP"]});
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert!(n.messages.is_empty());
    assert_eq!(
        n.unreadable[0].field,
        "entry[0].changes[0].value.messages[0].id"
    );

    let mut v = fixture_json("status-read.json");
    v["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = json!(7);
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert!(n.statuses.is_empty());
    assert_eq!(
        n.unreadable[0].field,
        "entry[0].changes[0].value.statuses[0].errors"
    );
}

#[test]
fn changes_for_another_business_number_are_counted_and_not_read() {
    let v = fixture_json("text.json");
    let ours = v["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
        .as_str()
        .expect("the fixture names its number")
        .to_owned();
    let bytes = v.to_string().into_bytes();
    let n = parse_notification_for(&bytes, Some(&ours)).expect("parses");
    assert_eq!((n.messages.len(), n.foreign), (1, 0));
    let n = parse_notification_for(&bytes, Some("999")).expect("parses");
    assert_eq!((n.messages.len(), n.foreign), (0, 1));
    let n = parse_notification_for(&bytes, None).expect("parses");
    assert_eq!((n.messages.len(), n.foreign), (1, 0));
}

#[test]
fn reactions_and_notices_are_read_as_what_they_are() {
    let n = parse_notification(&fixture("reaction.json")).expect("parses");
    let reaction = &n.messages[0];
    assert_eq!(reaction.kind, InboundKind::Reaction);
    assert!(reaction.context_id.is_some(), "the reacted-to message");
    let mut v = fixture_json("text.json");
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    m["type"] = json!("system");
    m["system"] = json!({"body": "User changed from 1 to 2", "type": "user_changed_number"});
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages[0].kind, InboundKind::Notice("system".into()));
    assert_eq!(n.messages[0].text.as_deref(), Some("user_changed_number"));
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    m["type"] = json!("interactive");
    m["interactive"] = json!({"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}});
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages[0].kind, InboundKind::Notice("nfm_reply".into()));
}

#[test]
fn bodies_that_are_not_whatsapp_notifications_are_rejected() {
    assert_eq!(
        parse_notification(b"not json").expect_err("rejected").field,
        "body"
    );
    assert_eq!(
        parse_notification(b"{}").expect_err("rejected").field,
        "object"
    );
    let err = parse_notification(br#"{"object":"page","entry":[]}"#).expect_err("rejected");
    assert_eq!(err.field, "object");
    assert!(err.reason.contains("page"), "{}", err.reason);
}

#[test]
fn a_signed_body_is_accepted_and_anything_else_is_not() {
    let body = fixture("text.json");
    let header = sign(b"app-secret", &body);
    assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
    assert!(verify_signature(b"app-secret", &body, Some(&header)));
    assert!(!verify_signature(b"other-secret", &body, Some(&header)));
    assert!(!verify_signature(b"app-secret", b"{}", Some(&header)));
    assert!(!verify_signature(b"app-secret", &body, None));
    assert!(!verify_signature(b"app-secret", &body, Some("sha256=zz")));
    assert!(!verify_signature(b"app-secret", &body, Some(&header[7..])));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha1={}", &header[7..]))
    ));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&header[..header.len() - 2])
    ));
}

#[test]
fn error_fixtures_are_classified_by_code() {
    for (name, kind, code) in [
        ("error-130429.json", SendErrorKind::Throttled, 130429),
        (
            "error-131047.json",
            SendErrorKind::ReEngagementRequired,
            131047,
        ),
        ("error-131056.json", SendErrorKind::PairRateLimited, 131056),
        ("error-190-token.json", SendErrorKind::Fatal, 190),
    ] {
        let status = if code == 190 { 401 } else { 400 };
        let err = parse_send_response(status, &fixture(name)).expect_err(name);
        assert_eq!(err.kind, kind, "{name}");
        assert_eq!(err.code, Some(code), "{name}");
        assert!(
            err.message.contains("(fbtrace_id AbCdEf1234GhIjKl5678MnO)"),
            "{}",
            err.message
        );
    }
    let err = parse_send_response(400, &fixture("error-130429.json")).expect_err("error");
    assert!(
        err.message
            .starts_with("(#130429) Rate limit hit: Message failed"),
        "{}",
        err.message
    );
}

#[test]
fn codes_map_to_the_documented_actions() {
    use SendErrorKind::*;
    for (code, kind) in [
        (1, Transient),
        (2, Transient),
        (131016, Transient),
        (133004, Transient),
        (131057, Transient),
        (4, Throttled),
        (80007, Throttled),
        (130429, Throttled),
        (131056, PairRateLimited),
        (131047, ReEngagementRequired),
        (190, Fatal),
        (10, Fatal),
        (200, Fatal),
        (299, Fatal),
        (368, Fatal),
        (131031, Fatal),
        (100, Permanent),
        (131026, Permanent),
        (132000, Permanent),
        (131048, Permanent),
        (999999, Permanent),
    ] {
        assert_eq!(classify(code), kind, "code {code}");
    }
}

#[test]
fn responses_without_an_error_body_are_classified_by_status() {
    let ok = parse_send_response(200, &fixture("send-response-ok.json")).expect("ok");
    assert_eq!(
        ok.as_str(),
        "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RjgA"
    );
    for (status, body, kind) in [
        (500, &b""[..], SendErrorKind::Transient),
        (503, &b"<html>upstream</html>"[..], SendErrorKind::Transient),
        (429, &b""[..], SendErrorKind::Throttled),
        (404, &b""[..], SendErrorKind::Permanent),
        (200, &b"{}"[..], SendErrorKind::Transient),
    ] {
        let err = parse_send_response(status, body).expect_err("error");
        assert_eq!(
            (err.kind, err.code),
            (kind, Some(status.into())),
            "HTTP {status}"
        );
    }
}

#[test]
fn send_bodies_have_the_shape_of_the_fixtures() {
    let text =
        "[FIRING] HighErrorRate on payments-api (5.2% 5xx over 5m). Reply 'ack' to acknowledge.";
    let got = send_body(&outbound(OutboundBody::Text { body: text.into() }));
    assert_eq!(got, fixture_json("send-text.json"));

    let got = send_body(&outbound(OutboundBody::Template {
        name: "oncall_alert".into(),
        language: "en_US".into(),
        parameters: vec![
            "critical".into(),
            "HighErrorRate".into(),
            "payments-api".into(),
        ],
    }));
    assert_eq!(got, fixture_json("send-template.json"));

    let mut want = fixture_json("send-interactive-buttons.json");
    let buttons = want["interactive"]["action"]["buttons"]
        .as_array()
        .expect("array");
    let buttons: Vec<ReplyButton> = buttons
        .iter()
        .map(|b| ReplyButton {
            id: b["reply"]["id"].as_str().expect("id").into(),
            title: b["reply"]["title"].as_str().expect("title").into(),
        })
        .collect();
    let body = want["interactive"]["body"]["text"]
        .as_str()
        .expect("text")
        .to_string();
    // The outbound model has no header or footer; everything else must match.
    let interactive = want["interactive"].as_object_mut().expect("object");
    interactive.remove("header");
    interactive.remove("footer");
    let got = send_body(&outbound(OutboundBody::Interactive { body, buttons }));
    assert_eq!(got, want);
}

#[test]
fn templates_without_parameters_and_threaded_replies() {
    let mut m = outbound(OutboundBody::Template {
        name: "hello".into(),
        language: "en".into(),
        parameters: vec![],
    });
    m.reply_to = Some(Wamid("wamid.ABC".into()));
    let got = send_body(&m);
    assert_eq!(
        got["template"],
        json!({"name": "hello", "language": {"code": "en"}})
    );
    assert_eq!(got["context"], json!({"message_id": "wamid.ABC"}));
}

#[test]
fn a_user_id_is_addressed_as_recipient_and_131062_names_the_fix() {
    let uma = WaId::parse("US.13491208655302741918").expect("a user id");
    let message = OutboundMessage::new(
        uma,
        OutboundBody::Text { body: "hi".into() },
        String::new(),
        Lane::Alert,
    );
    let body = send_body(&message);
    assert_eq!(body["recipient"], "US.13491208655302741918");
    assert!(body.get("to").is_none(), "{body}");

    let refusal =
        json!({"error": {"message": "BSUID recipients are not supported", "code": 131062}});
    let err = parse_send_response(400, refusal.to_string().as_bytes()).expect_err("refused");
    assert_eq!(err.kind, SendErrorKind::Permanent);
    assert!(err.message.contains("user_id"), "{}", err.message);
}

#[test]
fn a_message_from_a_user_id_is_from_the_number_its_contact_names_if_any() {
    let mut v = fixture_json("text.json");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    let m = value["messages"][0].as_object_mut().expect("object");
    m.remove("from");
    m.insert("from_user_id".into(), json!("US.13491208655302741918"));
    value["contacts"] = json!([{"user_id": "US.13491208655302741918", "profile": {"name": "Uma", "username": "uma.sre"}}]);
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    let m = &n.messages[0];
    assert_eq!(m.from.as_str(), "US.13491208655302741918");
    assert_eq!(
        (m.name.as_deref(), m.username.as_deref()),
        (Some("Uma"), Some("uma.sre"))
    );

    v["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = json!("15551234567");
    let n = parse_notification(v.to_string().as_bytes()).expect("parses");
    assert_eq!(n.messages[0].from.as_str(), "15551234567");
}

#[test]
fn the_username_and_system_fixtures_read_as_a_user_id_and_a_notice() {
    let m = one_message("text-from-user-id.json");
    assert!(m.from.is_user_id());
    assert_eq!(m.username.as_deref(), Some("uma.sre"));
    assert_eq!(m.text.as_deref(), Some("ACK"));
    let m = one_message("system-number-changed.json");
    assert_eq!(m.kind, InboundKind::Notice("system".into()));
    assert_eq!(m.text.as_deref(), Some("user_changed_number"));
}
