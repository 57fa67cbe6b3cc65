//! Configs loaded in process: the tutorial's as written, the shipped ones, `${VAR:-default}`, the
//! base config every refusal changes, and several problems reported together.

use super::support::*;
use crate::common::*;
use std::collections::HashMap;
use std::path::Path;

#[test]
fn the_tutorials_config_loads_as_written_with_the_variables_of_section_2_2() {
    let text = tutorial_config();
    let env = tutorial_env();
    let config = load_with("config/whatsapp-bot.yaml", &text, &env)
        .unwrap_or_else(|e| panic!("the tutorial's config is refused:\n{e}"));
    let wa = &config.platforms.whatsapp;
    assert_eq!(wa.phone_number_id, "1234567890");
    assert_eq!(wa.access_token.expose(), "EAAxxxxxxx...");
    assert_eq!(wa.verify_token.expose(), "my-verify-token-123");
    assert_eq!(wa.app_secret.expose(), "abcdef123456");
    let pagerduty = wa
        .oncall
        .pagerduty_token
        .as_ref()
        .expect("a PagerDuty token");
    assert_eq!(pagerduty.expose(), "y_NbAkKc66ryYTWUXYEu");
    assert_eq!(wa.oncall.schedule_id.as_deref(), Some("PXXXXXX"));
    assert_eq!(wa.oncall.static_oncall.len(), 2);
    assert_eq!(wa.allowed_numbers.len(), 3);
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.base_path, "/webhooks");
    assert_eq!(
        config.routing.default_flow.as_deref(),
        Some("whatsapp-help-flow")
    );
    assert_eq!(config.routing.commands.len(), 8);
    assert_eq!(config.routing.commands["STATUS"], "status-check-flow");
    assert_eq!(config.routing.keywords.len(), 3);
    assert_eq!(config.flows.directory, Path::new("./flows/whatsapp"));
    assert!(config.flows.watch);
}

#[test]
fn the_shipped_configs_load() {
    let env = tutorial_env();
    let bot = std::fs::read_to_string(repo().join("config/whatsapp-bot.yaml")).unwrap();
    let config = load_with("config/whatsapp-bot.yaml", &bot, &env)
        .unwrap_or_else(|e| panic!("config/whatsapp-bot.yaml is refused:\n{e}"));
    assert_eq!(
        config.platforms.whatsapp.access_token.expose(),
        "EAAxxxxxxx..."
    );
    let token = config
        .server
        .webhook_token
        .as_ref()
        .expect("a webhook token");
    assert_eq!(token.expose(), "webhook-token-for-tests");

    // The sandbox needs no variable at all.
    let sandbox = std::fs::read_to_string(repo().join("config/sandbox.yaml")).unwrap();
    let config = aof::config::load_str("config/sandbox.yaml", &sandbox, &|_| None)
        .unwrap_or_else(|e| panic!("config/sandbox.yaml is refused:\n{e}"));
    assert_eq!(
        config.platforms.whatsapp.transport,
        aof::config::TransportKind::Sandbox
    );
    let token = config
        .server
        .webhook_token
        .as_ref()
        .expect("the default webhook token");
    assert_eq!(token.expose(), "sandbox-token");
}

#[test]
fn a_default_in_a_variable_reference_applies_when_the_variable_is_unset_or_empty() {
    let dir = temp();
    let text = edit(
        &edit(
            &base_config(dir.path(), 0),
            "phone_number_id: \"106540352242922\"",
            "phone_number_id: \"${WHATSAPP_PHONE_NUMBER_ID:-111222333}\"",
        ),
        "access_token: \"${WHATSAPP_ACCESS_TOKEN}\"",
        "access_token: \"tok-${WHATSAPP_ACCESS_TOKEN:-default-token}\"",
    );
    let load = |env: &[(&'static str, &'static str)]| {
        let env: HashMap<_, _> = base_env().into_iter().chain(env.iter().copied()).collect();
        load_with("config.yaml", &text, &env).unwrap_or_else(|e| panic!("refused:\n{e}"))
    };

    let unset = load(&[]);
    assert_eq!(unset.platforms.whatsapp.phone_number_id, "111222333");
    // base_env sets WHATSAPP_ACCESS_TOKEN, so the default is not used there.
    assert_eq!(
        unset.platforms.whatsapp.access_token.expose(),
        "tok-test-access-token"
    );

    let empty = load(&[
        ("WHATSAPP_PHONE_NUMBER_ID", ""),
        ("WHATSAPP_ACCESS_TOKEN", ""),
    ]);
    assert_eq!(empty.platforms.whatsapp.phone_number_id, "111222333");
    assert_eq!(
        empty.platforms.whatsapp.access_token.expose(),
        "tok-default-token"
    );

    let set = load(&[("WHATSAPP_PHONE_NUMBER_ID", "999")]);
    assert_eq!(set.platforms.whatsapp.phone_number_id, "999");
}

#[test]
fn the_base_config_of_these_tests_loads() {
    // The control for every refusal below: each one changes a single thing in this config.
    let dir = temp();
    let env: HashMap<_, _> = base_env().into_iter().collect();
    let text = base_config(dir.path(), free_port());
    if let Err(e) = load_with("config.yaml", &text, &env) {
        panic!("the base config is refused:\n{e}");
    }
}

#[test]
fn several_problems_in_one_config_are_all_reported_at_once() {
    let dir = temp();
    let yaml = edit(
        &edit(
            &base_config(dir.path(), 0),
            "messages_per_second: 50",
            "messages_per_second: 0",
        ),
        "\"(?i)(deploy|release|ship)\"",
        "\"(?i)(deploy\"",
    );
    let env: HashMap<_, _> = base_env()
        .into_iter()
        .map(|(k, v)| (k, if k == "WHATSAPP_APP_SECRET" { "" } else { v }))
        .collect();
    let err = load_with("config.yaml", &yaml, &env).unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "platforms.whatsapp.app_secret",
            "platforms.whatsapp.rate_limits.messages_per_second",
            "routing.keywords[0].pattern",
        ],
        "{err}"
    );
}
