//! The `notifier` agent's email channel: the message sent over SMTP to the person's address, and the
//! error when SMTP is not configured.

use super::fake_smtp::fake_smtp;
use super::support::*;
use serde_json::json;

fn email_config(port: u16) -> String {
    format!(
        r#"    notifier:
      email:
        smtp_host: "127.0.0.1"
        smtp_port: {port}
        security: none
        from: "aof@example.com"
"#
    )
}

#[actix_web::test]
async fn notify_by_email_sends_the_message_over_smtp_to_the_persons_address() {
    let (port, log) = fake_smtp();
    let slack = fake_webhooks();
    let s = start(people(&slack) + &email_config(port)).await;

    let mut body = notify_body(json!(["email"]), "Alice", "api 2.1 is live");
    body["subject"] = json!("Deployment done");
    let run = run_flow(&s.app, "/test/notify", body).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);

    let log = log.lock().unwrap();
    assert!(
        log.commands
            .iter()
            .any(|c| c == "RCPT TO:<alice@example.com>"),
        "{:?}",
        log.commands
    );
    assert!(
        log.commands
            .iter()
            .any(|c| c == "MAIL FROM:<aof@example.com>"),
        "{:?}",
        log.commands
    );
    assert_eq!(log.messages.len(), 1);
    let message = &log.messages[0];
    assert!(message.contains("Subject: Deployment done"), "{message}");
    assert!(message.contains("To: alice@example.com"), "{message}");
    assert!(message.contains("api 2.1 is live"), "{message}");
}

#[actix_web::test]
async fn email_without_smtp_config_fails_saying_what_to_configure() {
    let slack = fake_webhooks();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["email"]), "Alice", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    assert!(
        step_error(&run, "notify").contains("email is not configured"),
        "{:?}",
        run.steps
    );
}
