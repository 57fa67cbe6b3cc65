//! `aofctl validate`: every kind of mistake is reported at once, each with its file, line and
//! column, key path and fix, and the exit status says whether there was any.

use std::path::{Path, PathBuf};
use std::process::Output;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// The sandbox config with `edit` applied, its flows a copy of the shipped ones plus `flows`.
    fn new(edit: impl Fn(String) -> String, flows: &[(&str, &str)]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let flow_dir = dir.path().join("flows");
        std::fs::create_dir(&flow_dir).unwrap();
        for entry in std::fs::read_dir(repo.join("flows/whatsapp")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, flow_dir.join(path.file_name().unwrap())).unwrap();
        }
        for (name, text) in flows {
            std::fs::write(flow_dir.join(name), text).unwrap();
        }
        let config = std::fs::read_to_string(repo.join("config/sandbox.yaml"))
            .unwrap()
            .replace(
                "directory: \"./flows/whatsapp\"",
                &format!("directory: \"{}\"", flow_dir.display()),
            );
        std::fs::write(dir.path().join("config.yaml"), edit(config)).unwrap();
        Case { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    fn validate(&self) -> (bool, String) {
        let output: Output = std::process::Command::new(env!("CARGO_BIN_EXE_aofctl"))
            .args(["validate", "--config", self.config().to_str().unwrap()])
            .env_remove("AOF_TEST_UNSET")
            .output()
            .expect("aofctl runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

/// The `  --> file:line:col` line after the error line that starts with `error: {key}`.
fn located(text: &str, key: &str) -> String {
    let mut lines = text.lines();
    lines
        .find(|l| l.starts_with(&format!("error: {key}")))
        .unwrap_or_else(|| panic!("no error at {key} in:\n{text}"));
    lines
        .next()
        .map(|l| l.trim().trim_start_matches("--> ").to_owned())
        .unwrap_or_default()
}

#[test]
fn the_shipped_sandbox_config_is_valid() {
    let case = Case::new(|c| c, &[]);
    let (ok, text) = case.validate();
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "ok: the config and its 20 flows are valid");
}

#[test]
fn a_missing_variable_is_named_at_its_key() {
    let case = Case::new(
        |c| {
            c.replace(
                "verify_token: \"sandbox-verify\"",
                "verify_token: \"${AOF_TEST_UNSET}\"",
            )
        },
        &[],
    );
    let (ok, text) = case.validate();
    assert!(!ok);
    assert!(text.contains("AOF_TEST_UNSET is not set"), "{text}");
    let config = case.config().display().to_string();
    assert!(
        located(&text, "platforms.whatsapp.verify_token").starts_with(&format!("{config}:")),
        "{text}"
    );
}

#[test]
fn unknown_keys_get_a_suggestion_and_their_line_and_column() {
    let case = Case::new(
        |c| {
            c.replace("  port: 8080", "  prot: 8080").replace(
                "    transport: sandbox",
                "    transport: sandbox\n    acess_token: x",
            )
        },
        &[],
    );
    let (ok, text) = case.validate();
    assert!(!ok);
    assert!(text.contains("did you mean `port`?"), "{text}");
    assert!(text.contains("did you mean `access_token`?"), "{text}");
    let config = case.config().display().to_string();
    let line = std::fs::read_to_string(case.config())
        .unwrap()
        .lines()
        .position(|l| l == "  prot: 8080")
        .expect("the edited line")
        + 1;
    assert_eq!(located(&text, "server.prot"), format!("{config}:{line}:3"));
    assert!(text.contains(&format!("{line} |   prot: 8080")), "{text}");
    assert!(text.ends_with("2 problems found in 1 file\n"), "{text}");
}

#[test]
fn a_bad_regex_is_shown_with_where_it_breaks() {
    let case = Case::new(
        |c| c.replace("\"(?i)(deploy|release|ship)\"", "\"(?i)(deploy|release\""),
        &[],
    );
    let (ok, text) = case.validate();
    assert!(!ok);
    let config = case.config().display().to_string();
    assert!(
        located(&text, "routing.keywords[0].pattern").starts_with(&format!("{config}:")),
        "{text}"
    );
    assert!(
        text.contains("unclosed group (at character 5 of the pattern)"),
        "{text}"
    );
}

#[test]
fn a_route_to_a_missing_flow_suggests_the_closest_one() {
    let case = Case::new(
        |c| {
            c.replace(
                "\"HELP\": \"whatsapp-help-flow\"",
                "\"HELP\": \"whatsapp-hlp-flow\"",
            )
        },
        &[],
    );
    let (ok, text) = case.validate();
    assert!(!ok);
    assert!(text.contains("names flow `whatsapp-hlp-flow`"), "{text}");
    assert!(
        text.contains("did you mean `whatsapp-help-flow`?"),
        "{text}"
    );
    assert!(
        located(&text, "routing.commands.HELP").contains("config.yaml:"),
        "{text}"
    );
}

const BAD_FLOW: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: bad-flow
triggers:
  - type: webhook
    path: "/bad"
steps:
  - name: page
    agent: whatsapp
    action: send_template
    input:
      to: "+15551234567"
      template: "ops_alert"
      parameters: ["CRITICAL", "api"]
  - name: nobody
    agent: whatsap
    action: send
    input: {}
"#;

#[test]
fn flow_problems_name_the_flow_file_and_the_step() {
    let case = Case::new(|c| c, &[("bad-flow.yaml", BAD_FLOW)]);
    let (ok, text) = case.validate();
    assert!(!ok, "{text}");
    let flow = case
        .dir
        .path()
        .join("flows/bad-flow.yaml")
        .display()
        .to_string();
    assert!(text.contains("unknown agent `whatsap`"), "{text}");
    assert!(text.contains("did you mean `whatsapp`?"), "{text}");
    assert_eq!(located(&text, "steps[1]"), format!("{flow}:16:5"), "{text}");
    assert!(
        text.contains("template `ops_alert` has 4 placeholders but 2 parameters are given"),
        "{text}"
    );
    assert_eq!(located(&text, "steps[0]"), format!("{flow}:9:5"), "{text}");
}

#[test]
fn a_config_value_a_flow_reads_but_the_config_lacks_is_an_error_at_the_step() {
    let case = Case::new(|c| c.replace("      team_group: \"sre-team\"\n", ""), &[]);
    let (ok, text) = case.validate();
    assert!(!ok, "{text}");
    let ack = case.dir.path().join("flows/acknowledge-alert-flow.yaml");
    let at = located(&text, "steps[3].input.group_id");
    assert!(
        at.starts_with(&format!("{}:", ack.display())),
        "{at} in:\n{text}"
    );
    assert!(
        text.contains("steps[3] `notify-team`: input.group_id: reads `config.oncall.team_group`"),
        "{text}"
    );
    assert!(
        text.contains("add `platforms.whatsapp.oncall.team_group: sre-team`"),
        "{text}"
    );
}

/// `aofctl validate` on a config in the repository's directory (its flows are `./flows/whatsapp`),
/// with the tutorial's variables of section 2.2.
fn validate_in_repo(config: &Path) -> (bool, String) {
    let output: Output = std::process::Command::new(env!("CARGO_BIN_EXE_aofctl"))
        .args(["validate", "--config", config.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs([
            ("WHATSAPP_PHONE_NUMBER_ID", "1234567890"),
            ("WHATSAPP_ACCESS_TOKEN", "EAAxxxxxxx..."),
            ("WHATSAPP_VERIFY_TOKEN", "my-verify-token-123"),
            ("WHATSAPP_APP_SECRET", "abcdef123456"),
            ("PAGERDUTY_TOKEN", "y_NbAkKc66ryYTWUXYEu"),
            ("AOF_WEBHOOK_TOKEN", "webhook-token"),
        ])
        .output()
        .expect("aofctl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_tutorials_config_as_printed_is_told_to_add_the_team_group_and_the_shipped_one_is_valid() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, text) = validate_in_repo(&repo.join("tests/fixtures/tutorial/whatsapp-bot.yaml"));
    assert!(!ok, "{text}");
    // One error per flow that reads it, each pointing into its file.
    let errors = text.matches("reads `config.oncall.team_group`").count();
    assert!(errors >= 2, "{text}");
    for flow in ["acknowledge-alert-flow.yaml", "resolve-incident-flow.yaml"] {
        assert!(
            text.lines().any(|l| l.contains(flow) && l.contains("-->")),
            "{flow}:\n{text}"
        );
    }
    let (ok, text) = validate_in_repo(&repo.join("config/whatsapp-bot.yaml"));
    assert!(ok, "{text}");
}
