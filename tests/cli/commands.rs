//! `aofctl` as a newcomer runs it: `flows list` on the shipped sandbox config, `--help` with
//! examples, `--version`, and a clear error when the config is wrong.

use crate::common::aofctl;
use std::process::Output;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn flows_list_shows_each_flow_with_its_triggers_and_what_routes_to_it() {
    let output = aofctl(&["flows", "list", "--config", "config/sandbox.yaml"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.starts_with("20 flows in ./flows/whatsapp"), "{text}");
    let block = |name: &str| -> String {
        let start = text
            .find(&format!("\n{name}  ("))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        let rest = &text[start + 1..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    let ack = block("acknowledge-alert");
    assert!(
        ack.contains("trigger: a WhatsApp message matching /^ACK$/"),
        "{ack}"
    );
    assert!(ack.contains("routed from: the command ACK"), "{ack}");
    let alert = block("send-oncall-alert");
    assert!(
        alert.contains("trigger: POST /webhooks/alert/oncall (bearer token)"),
        "{alert}"
    );
    assert!(alert.contains("Prometheus Alertmanager"), "{alert}");
    let help = block("whatsapp-help");
    assert!(
        help.contains("routed from: anything else (routing.default_flow)"),
        "{help}"
    );
    let incident = block("incident-report");
    assert!(
        incident.contains("routed from: the keyword /(?i)(incident|outage|down)/"),
        "{incident}"
    );
    assert!(!text.contains("not in the directory"), "{text}");
}

#[test]
fn flows_list_names_routes_to_flows_that_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sandbox.yaml"),
    )
    .unwrap();
    let config = sandbox
        .replace(
            "\"HELP\": \"whatsapp-help-flow\"",
            "\"HELP\": \"whatsapp-help-flow\"\n    \"PING\": \"ping-flow\"",
        )
        .replace(
            "directory: \"./flows/whatsapp\"",
            &format!(
                "directory: \"{}/flows/whatsapp\"",
                env!("CARGO_MANIFEST_DIR")
            ),
        );
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, config).unwrap();
    let output = aofctl(&["flows", "list", "--config", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("routing names flows that are not in the directory: ping-flow"),
        "{text}"
    );
}

#[test]
fn a_wrong_config_fails_with_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "version: v1\nkind: TriggerConfig\nserver:\n  prot: 8080\n",
    )
    .unwrap();
    let output = aofctl(&["flows", "list", "--config", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("config.yaml"), "{err}");
    assert!(err.contains("prot"), "{err}");
}

#[test]
fn help_has_examples_and_version_answers() {
    for args in [
        vec!["--help"],
        vec!["trigger", "serve", "--help"],
        vec!["flows", "list", "--help"],
    ] {
        let output = aofctl(&args);
        assert!(output.status.success(), "{args:?}");
        let text = stdout(&output);
        assert!(text.contains("Example"), "{args:?}: {text}");
        assert!(
            text.contains("--config config/sandbox.yaml"),
            "{args:?}: {text}"
        );
    }
    let version = aofctl(&["--version"]);
    assert_eq!(
        stdout(&version).trim(),
        format!("aofctl {}", env!("CARGO_PKG_VERSION"))
    );
}
