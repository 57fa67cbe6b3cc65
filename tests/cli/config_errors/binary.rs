//! The binary serving: the shipped sandbox config becomes ready and stops cleanly on SIGTERM, and no
//! credential reaches the log, even at trace level.

use super::support::*;
use crate::common::*;
use std::time::Duration;

#[test]
fn the_sandbox_config_starts_and_becomes_ready() {
    let dir = temp();
    let port = free_port();
    let shipped = std::fs::read_to_string(repo().join("config/sandbox.yaml")).unwrap();
    let flows = repo().join("flows/whatsapp");
    let yaml = edit(&shipped, "port: 8080", &format!("port: {port}"));
    let yaml = edit(
        &yaml,
        "directory: \"./flows/whatsapp\"",
        &format!("directory: \"{}\"", flows.display()),
    );
    let yaml = edit(
        &yaml,
        "url: \"sqlite://data/sandbox.db\"",
        &format!(
            "url: \"sqlite://{}\"",
            dir.path().join("sandbox.db").display()
        ),
    );
    let file = dir.path().join("sandbox.yaml");
    std::fs::write(&file, yaml).unwrap();

    let mut bot = Aofctl::serve(&file, &[], dir.path());
    wait_until_ready(&mut bot, port);
    let exit = bot.terminate();
    assert!(
        exit.status.success(),
        "SIGTERM should stop it cleanly: {:?}\n{}",
        exit.status,
        exit.stderr
    );
}

#[test]
fn credentials_never_appear_in_the_log() {
    const ACCESS_TOKEN: &str = "EAA-access-token-4f9c2e71d8";
    const APP_SECRET: &str = "app-secret-b7e13a90c5";
    const VERIFY_TOKEN: &str = "verify-token-6d2f8841aa";
    let graph = FakeGraph::start();
    let dir = temp();
    let port = free_port();
    let yaml = edit(
        &base_config(dir.path(), port),
        "api_base_url: \"https://graph.invalid/v21.0\"",
        &format!("api_base_url: \"{}/v21.0\"", graph.address),
    );
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, yaml).unwrap();
    let env = [
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN),
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        // Every level: a credential must not appear even in a trace.
        ("RUST_LOG", "trace"),
    ];
    let mut bot = Aofctl::serve(&file, &env, dir.path());
    wait_until_ready(&mut bot, port);

    let verify = format!(
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=4242"
    );
    assert_eq!(
        http(port, "GET", &verify, &[], b""),
        Some((200, "4242".into()))
    );
    let body = text_notification(ALICE, "Alice", "HELP", &unique_id()).to_string();
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
    let signed = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let answer = http(port, "POST", "/webhooks/whatsapp", &signed, body.as_bytes());
    assert_eq!(answer.map(|(s, _)| s), Some(200));
    let forged = aof::wire::whatsapp::sign(b"not-the-secret", &fresh_fixture("whatsapp/text.json"));
    let unsigned = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", forged.as_str()),
    ];
    let refused = http(
        port,
        "POST",
        "/webhooks/whatsapp",
        &unsigned,
        &fresh_fixture("whatsapp/text.json"),
    );
    assert_eq!(refused.map(|(s, _)| s), Some(401));

    // The reply reaches the fake Graph API with the token, so the token was in use while logging.
    let replied = wait_until(Duration::from_secs(15), || {
        (!graph.sends_to(ALICE).is_empty()).then_some(())
    });
    assert!(
        replied.is_some(),
        "no reply reached the Graph API:\n{}",
        bot.stderr_so_far()
    );
    let bearer = format!("Bearer {ACCESS_TOKEN}");
    assert_eq!(
        graph.sends_to(ALICE)[0].header("authorization"),
        Some(bearer.as_str())
    );

    let exit = bot.terminate();
    let log = format!("{}\n{}", exit.stdout, exit.stderr);
    assert!(
        log.contains("Graph API answered a send"),
        "the trace log is not what was expected:\n{log}"
    );
    for secret in [
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        signature.as_str(),
        forged.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "`{secret}` appears in the log:\n{log}"
        );
    }
}
