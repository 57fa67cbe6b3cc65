//! The test flows, webhook-triggered: a deployment and a notification that report their step's
//! output to Bob, and the tutorial's process-approval notification step as written there.

use crate::common::*;

/// Deploys what the webhook body says, then reports the step's output to Bob.
const DEPLOY_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: deploy-hook
triggers:
  - type: webhook
    path: "/test/deploy"
    method: POST
input:
  required: [service, version, environment, approved_by]
  schema:
    service: { type: string }
    version: { type: string }
    environment: { type: string }
    approved_by: { type: string }
steps:
  - name: deploy
    agent: deployment-manager
    action: deploy
    input:
      service: "{{ input.service }}"
      version: "{{ input.version }}"
      environment: "{{ input.environment }}"
      approved_by: "{{ input.approved_by }}"
  - name: report
    agent: whatsapp
    action: send_text
    input:
      to: "+15557654321"
      text: "REPORT {{ steps.deploy.output | tojson }}"
"#;

/// Notifies on the channels the webhook body lists, then reports the step's output to Bob.
const NOTIFY_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: notify-hook
triggers:
  - type: webhook
    path: "/test/notify"
    method: POST
input:
  required: [channels, user, message]
  schema:
    channels: { type: array }
    user: { type: string }
    message: { type: string }
    subject: { type: string, default: "aof test" }
steps:
  - name: notify
    agent: notifier
    action: notify
    input:
      channels: "{{ input.channels }}"
      user: "{{ input.user }}"
      message: "{{ input.message }}"
      subject: "{{ input.subject }}"
  - name: report
    agent: whatsapp
    action: send_text
    input:
      to: "+15557654321"
      text: "REPORT {{ steps.notify.output | tojson }}"
"#;

/// The tutorial's process-approval step, as written there: a YAML list of channels.
const APPROVED_FLOW: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approved-hook
triggers:
  - type: webhook
    path: "/test/approved"
    method: POST
input:
  required: [requester, service]
  schema:
    requester: { type: string }
    service: { type: string }
steps:
  - name: notify-requester-approved
    agent: notifier
    action: notify
    input:
      channels: ["slack", "whatsapp"]
      user: "{{ input.requester }}"
      message: |
        ✅ Deployment approved!

        Service: {{ input.service }}
"#;

/// A flows directory with the repository's flows (every routing target exists) and the test flows.
pub fn flows_dir() -> tempfile::TempDir {
    let dir = temp();
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the repo's flows") {
        let path = entry.expect("a flow file").path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy a flow");
    }
    for (name, yaml) in [
        ("deploy-hook.yaml", DEPLOY_FLOW),
        ("notify-hook.yaml", NOTIFY_FLOW),
        ("approved-hook.yaml", APPROVED_FLOW),
    ] {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}
