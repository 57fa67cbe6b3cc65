//! Loading the tutorial's config and the shipped configs; `mistakes` covers what is refused.

use super::*;

mod mistakes;

/// The tutorial's section 2.1 YAML, verbatim: the contract.
const TUTORIAL: &str = r#"version: v1
kind: TriggerConfig

server:
  host: "0.0.0.0"
  port: 8080
  base_path: "/webhooks"

platforms:
  whatsapp:
    type: whatsapp
    phone_number_id: "${WHATSAPP_PHONE_NUMBER_ID}"
    access_token: "${WHATSAPP_ACCESS_TOKEN}"
    verify_token: "${WHATSAPP_VERIFY_TOKEN}"
    app_secret: "${WHATSAPP_APP_SECRET}"

    # On-call configuration
    oncall:
      # PagerDuty integration for schedule lookup
      pagerduty_token: "${PAGERDUTY_TOKEN}"
      schedule_id: "PXXXXXX"

      # Or static on-call list
      static_oncall:
        - name: "Alice"
          phone: "+1234567890"
          hours: "09:00-18:00"
          timezone: "America/New_York"
        - name: "Bob"
          phone: "+0987654321"
          hours: "18:00-09:00"
          timezone: "America/New_York"

    # Allowed phone numbers (empty = allow all registered)
    allowed_numbers:
      - "+1234567890"  # Alice
      - "+0987654321"  # Bob
      - "+1122334455"  # SRE Team Lead

# Command routing
routing:
  default_flow: "whatsapp-help-flow"

  # Text commands (case-insensitive)
  commands:
    "ACK": "acknowledge-alert-flow"
    "ESC": "escalate-alert-flow"
    "INFO": "alert-info-flow"
    "APPROVE": "approval-handler-flow"
    "REJECT": "approval-handler-flow"
    "RESOLVE": "resolve-incident-flow"
    "STATUS": "status-check-flow"
    "HELP": "whatsapp-help-flow"

  # Keyword routing (for natural language)
  keywords:
    - pattern: "(?i)(deploy|release|ship)"
      flow: "deployment-request-flow"
    - pattern: "(?i)(incident|outage|down)"
      flow: "incident-report-flow"
    - pattern: "(?i)(scale|replicas)"
      flow: "scale-service-flow"

flows:
  directory: "./flows/whatsapp"
  watch: true
"#;

const FILE: &str = "config/whatsapp-bot.yaml";

/// The tutorial's section 2.2 variables.
fn tutorial_env(name: &str) -> Option<String> {
    let value = match name {
        "WHATSAPP_PHONE_NUMBER_ID" => "1234567890",
        "WHATSAPP_ACCESS_TOKEN" => "EAAxxxxxxx...",
        "WHATSAPP_VERIFY_TOKEN" => "my-verify-token-123",
        "WHATSAPP_APP_SECRET" => "abcdef123456",
        "PAGERDUTY_TOKEN" => "y_NbAkKc66ryYTWUXYEu",
        _ => return None,
    };
    Some(value.to_owned())
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads the tutorial with one text replacement, which must apply.
fn tutorial_with(from: &str, to: &str) -> Result<Config, ConfigError> {
    assert!(
        TUTORIAL.contains(from),
        "the test edits text that is not there: {from}"
    );
    load_str(FILE, &TUTORIAL.replacen(from, to, 1), &tutorial_env)
}

/// The problems of a load that must fail.
fn problems_of(result: Result<Config, ConfigError>) -> Vec<Problem> {
    match result {
        Ok(_) => panic!("the config loaded but should have been refused"),
        Err(e) => e.problems().to_vec(),
    }
}

#[test]
fn the_tutorial_config_loads_with_its_environment_variables() {
    let c = load_str(FILE, TUTORIAL, &tutorial_env).unwrap();
    let wa = &c.platforms.whatsapp;
    assert_eq!(c.server.base_path, "/webhooks");
    assert_eq!(wa.phone_number_id, "1234567890");
    assert_eq!(wa.access_token.expose(), "EAAxxxxxxx...");
    assert_eq!(wa.transport, TransportKind::CloudApi);
    assert_eq!(wa.api_base_url, "https://graph.facebook.com/v21.0");
    assert_eq!(
        wa.oncall.static_oncall[1].hours.as_deref(),
        Some("18:00-09:00")
    );
    assert_eq!(wa.allowed().len(), 3);
    assert_eq!(c.routing.commands["ACK"], "acknowledge-alert-flow");
    assert_eq!(c.routing.keywords[2].flow, "scale-service-flow");
    assert_eq!(c.flows.directory, PathBuf::from("./flows/whatsapp"));
    assert!(c.flows.watch);
    assert_eq!(wa.rate_limits.messages_per_second, 50);
    assert_eq!(c.storage.url, "sqlite://data/aof.db");
    assert_eq!(wa.templates.len(), 4);
    assert_eq!(wa.fallback_template.as_deref(), Some("ops_notification"));
    assert!(c.server.webhook_token.is_none());
    assert_eq!(c.file, PathBuf::from(FILE));
}

#[test]
fn the_shipped_whatsapp_bot_config_loads_with_the_tutorial_environment() {
    let env = |name: &str| match name {
        "AOF_WEBHOOK_TOKEN" => Some("hook-token".to_owned()),
        other => tutorial_env(other),
    };
    let text = include_str!("../../config/whatsapp-bot.yaml");
    let c = load_str(FILE, text, &env).unwrap();
    let wa = &c.platforms.whatsapp;
    assert_eq!(
        c.server.webhook_token.as_ref().unwrap().expose(),
        "hook-token"
    );
    assert!(wa.security.require_verified);
    assert_eq!(wa.queue.batch_delay, std::time::Duration::from_secs(1));
}

#[test]
fn the_sandbox_config_loads_with_an_empty_environment() {
    let text = include_str!("../../config/sandbox.yaml");
    let c = load_str("config/sandbox.yaml", text, &no_env).unwrap();
    let wa = &c.platforms.whatsapp;
    assert_eq!(wa.transport, TransportKind::Sandbox);
    assert_eq!(
        c.server.webhook_token.as_ref().unwrap().expose(),
        "sandbox-token"
    );
    assert_eq!(wa.oncall.team_group.as_deref(), Some("sre-team"));
    assert_eq!(wa.allowed().len(), 3);
    assert_eq!(c.storage.url, "sqlite://data/sandbox.db");
    assert_eq!(c.health_checks.services.len(), 5);
}

#[test]
fn a_default_is_used_when_the_variable_is_unset() {
    let c = tutorial_with("\"${WHATSAPP_ACCESS_TOKEN}\"", "\"${X:-d}\"").unwrap();
    assert_eq!(c.platforms.whatsapp.access_token.expose(), "d");
}

#[test]
fn base_path_is_normalized_to_a_leading_slash_without_a_trailing_one() {
    let c = tutorial_with("\"/webhooks\"", "\"webhooks/\"").unwrap();
    assert_eq!(c.server.base_path, "/webhooks");
    let c = tutorial_with("\"/webhooks\"", "\"/\"").unwrap();
    assert_eq!(c.server.base_path, "");
}

#[test]
fn the_webhook_token_falls_back_to_aof_webhook_token() {
    let env = |name: &str| match name {
        "AOF_WEBHOOK_TOKEN" => Some("from-env".to_owned()),
        other => tutorial_env(other),
    };
    let c = load_str(FILE, TUTORIAL, &env).unwrap();
    assert_eq!(c.server.webhook_token.unwrap().expose(), "from-env");
}

#[test]
fn templates_in_the_config_are_merged_over_the_built_ins() {
    let c = tutorial_with(
        "    # On-call configuration\n",
        "    templates:\n      ops_alert:\n        body: \"{{1}}!\"\n      custom:\n        language: de\n        body: \"{{1}} {{2}}\"\n",
    )
    .unwrap();
    let t = &c.platforms.whatsapp.templates;
    assert_eq!(t.len(), 5);
    assert_eq!(t["ops_alert"].body, "{{1}}!");
    assert_eq!(t["ops_alert"].language, "en_US");
    assert_eq!(t["custom"].language, "de");
}

#[test]
fn secret_debug_does_not_leak_the_value() {
    assert_eq!(
        format!("{:?}", Secret::new("hunter2")),
        "Secret([redacted])"
    );
    let c = load_str(FILE, TUTORIAL, &tutorial_env).unwrap();
    let dump = format!("{c:?}");
    for secret in [
        "EAAxxxxxxx",
        "my-verify-token-123",
        "abcdef123456",
        "y_NbAkKc66ryYTWUXYEu",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked into Debug output");
    }
}
