//! Configs that must be refused, and what the refusal says.

use super::*;

#[test]
fn a_missing_variable_names_the_file_the_key_path_and_the_variable() {
    let env = |name: &str| match name {
        "WHATSAPP_ACCESS_TOKEN" | "PAGERDUTY_TOKEN" => None,
        other => tutorial_env(other),
    };
    let err = load_str(FILE, TUTORIAL, &env).unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "every missing variable is reported: {text}");
    assert_eq!(
        lines[0],
        "config/whatsapp-bot.yaml: platforms.whatsapp.access_token: WHATSAPP_ACCESS_TOKEN is not set; \
         export it, or give a default with ${WHATSAPP_ACCESS_TOKEN:-value}, or start with config/sandbox.yaml"
    );
    assert!(lines[1].starts_with(
        "config/whatsapp-bot.yaml: platforms.whatsapp.oncall.pagerduty_token: PAGERDUTY_TOKEN is not set"
    ));
}

#[test]
fn an_unknown_key_gives_its_path_and_a_suggestion() {
    let problems = problems_of(tutorial_with(
        "    # On-call configuration\n",
        "    rate_limit:\n      messages_per_second: 10\n",
    ));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "platforms.whatsapp.rate_limit");
    assert!(
        problems[0]
            .message
            .starts_with("unknown key `rate_limit` (expected one of"),
        "{:?}",
        problems[0]
    );
    assert!(
        problems[0].message.ends_with("did you mean `rate_limits`?"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn an_unknown_transport_suggests_the_closest_one() {
    let problems = problems_of(tutorial_with(
        "    type: whatsapp\n",
        "    type: whatsapp\n    transport: sandbx\n",
    ));
    assert_eq!(problems[0].key, "platforms.whatsapp.transport");
    assert!(
        problems[0].message.contains("did you mean `sandbox`?"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn a_wrong_type_names_the_key_path() {
    let problems = problems_of(tutorial_with("port: 8080", "port: eighty"));
    assert_eq!(problems[0].key, "server.port");
    assert!(
        problems[0].message.starts_with("invalid type"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn a_number_from_a_variable_is_explained_as_a_string() {
    let problems = problems_of(tutorial_with("port: 8080", "port: \"${PORT:-8080}\""));
    assert_eq!(problems[0].key, "server.port");
    assert!(
        problems[0]
            .message
            .contains("taken from ${VAR} is always a string"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn a_missing_required_key_is_named_with_its_path() {
    let problems = problems_of(tutorial_with("  directory: \"./flows/whatsapp\"\n", ""));
    assert_eq!(problems[0].key, "flows.directory");
    assert!(
        problems[0].message.contains("add `directory:` under flows"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn a_bad_keyword_regex_is_reported_at_its_pattern() {
    let problems = problems_of(tutorial_with("(?i)(deploy|release|ship)", "(?i)(deploy"));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "routing.keywords[0].pattern");
    assert!(
        problems[0].message.contains("unclosed group"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn messages_per_second_above_meta_limit_is_refused() {
    let text = TUTORIAL.replacen(
        "    # On-call configuration\n",
        "    rate_limits:\n      messages_per_second: 100\n",
        1,
    );
    let problems = problems_of(load_str(FILE, &text, &tutorial_env));
    assert_eq!(
        problems[0].key,
        "platforms.whatsapp.rate_limits.messages_per_second"
    );
    assert!(
        problems[0].message.contains("at most 80"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let text = TUTORIAL
        .replacen("\"+1122334455\"", "\"call-me\"", 1)
        .replacen("(?i)(scale|replicas)", "(scale", 1)
        .replacen("kind: TriggerConfig", "kind: AgentFlow", 1);
    let problems = problems_of(load_str(FILE, &text, &tutorial_env));
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "platforms.whatsapp.allowed_numbers[2]",
            "routing.keywords[2].pattern"
        ]
    );
}

#[test]
fn an_empty_app_secret_is_refused_for_the_cloud_api_but_not_for_the_sandbox() {
    let env = |name: &str| match name {
        "WHATSAPP_APP_SECRET" => Some(String::new()),
        other => tutorial_env(other),
    };
    let problems = problems_of(load_str(FILE, TUTORIAL, &env));
    assert_eq!(problems[0].key, "platforms.whatsapp.app_secret");
    assert_eq!(
        problems[0].message,
        "is empty: the webhook signature cannot be checked; set WHATSAPP_APP_SECRET or use transport: sandbox"
    );
    let sandbox = TUTORIAL.replacen(
        "    type: whatsapp\n",
        "    type: whatsapp\n    transport: sandbox\n",
        1,
    );
    assert!(load_str(FILE, &sandbox, &env).is_ok());
}

#[test]
fn a_template_that_skips_a_placeholder_is_refused() {
    let problems = problems_of(tutorial_with(
        "    # On-call configuration\n",
        "    templates:\n      gap:\n        body: \"{{1}} and {{3}}\"\n",
    ));
    assert_eq!(problems[0].key, "platforms.whatsapp.templates.gap");
    assert!(
        problems[0].message.contains("{{2}} missing"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn an_unknown_fallback_template_is_refused() {
    let problems = problems_of(tutorial_with(
        "    type: whatsapp\n",
        "    type: whatsapp\n    fallback_template: nope\n",
    ));
    assert_eq!(problems[0].key, "platforms.whatsapp.fallback_template");
}

#[test]
fn a_yaml_syntax_error_gives_the_line() {
    let err = load_str(FILE, "version: v1\nkind: [TriggerConfig\n", &no_env).unwrap_err();
    match &err {
        ConfigError::Yaml { line, .. } => assert!(*line >= 2, "{err}"),
        other => panic!("expected a YAML error, got {other}"),
    }
}

#[test]
fn an_empty_file_is_refused_with_a_hint() {
    let problems = problems_of(load_str(FILE, "", &no_env));
    assert!(problems[0].message.contains("config/sandbox.yaml"));
}

#[test]
fn reading_a_missing_file_says_to_check_the_path() {
    let err = load(Path::new("/nonexistent/aof.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot read /nonexistent/aof.yaml: "),
        "{text}"
    );
    assert!(
        text.ends_with("; check the path given to --config"),
        "{text}"
    );
}

#[test]
fn every_unknown_key_and_missing_variable_is_reported_at_once() {
    let env = |name: &str| match name {
        "WHATSAPP_ACCESS_TOKEN" => None,
        other => tutorial_env(other),
    };
    let text = TUTORIAL
        .replacen(
            "    # On-call configuration\n",
            "    rate_limit:\n      messages_per_second: 10\n",
            1,
        )
        .replacen("routing:\n", "routing:\n  defualt: x\n", 1);
    let problems = load_str(FILE, &text, &env).unwrap_err().problems().to_vec();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "platforms.whatsapp.access_token",
            "platforms.whatsapp.rate_limit",
            "routing.defualt"
        ],
        "{problems:?}"
    );
}

#[test]
fn tunables_read_their_unit_and_a_value_that_would_stall_sending_is_refused() {
    let tuned = tutorial_with(
        "    # On-call configuration\n",
        "    send_backoff_ms: 250\n    send_backoff_max_ms: 4000\n    auth_failure_pause_secs: 30\n    \
         rate_limits:\n      window_margin_ms: 20\n      max_in_flight: 8\n",
    )
    .expect("tuned config loads");
    let wa = &tuned.platforms.whatsapp;
    assert_eq!(wa.send_backoff, std::time::Duration::from_millis(250));
    assert_eq!(wa.send_backoff_max, std::time::Duration::from_secs(4));
    assert_eq!(wa.auth_failure_pause, std::time::Duration::from_secs(30));
    assert_eq!(
        wa.rate_limits.window_margin,
        std::time::Duration::from_millis(20)
    );
    assert_eq!(wa.rate_limits.max_in_flight, Some(8));

    let problems = problems_of(tutorial_with(
        "    # On-call configuration\n",
        "    send_backoff_ms: 0\n    rate_limits:\n      max_in_flight: 0\n",
    ));
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "platforms.whatsapp.send_backoff_ms",
            "platforms.whatsapp.rate_limits.max_in_flight",
        ]
    );
}

#[test]
fn without_an_approvals_section_a_request_still_lasts_four_hours() {
    let config = load_str(FILE, TUTORIAL, &tutorial_env).expect("the tutorial loads");
    let approvals = &config.platforms.whatsapp.approvals;
    assert_eq!(approvals.expiry, std::time::Duration::from_secs(4 * 3600));
    let deployments = &config.platforms.whatsapp.deployments;
    assert_eq!(deployments.timeout, std::time::Duration::from_secs(120));
}
