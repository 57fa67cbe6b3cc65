//! The test flows: alerts paged, reminded, acknowledged and resolved; deployment approvals
//! requested, decided (by pending response or by id) and listed; and stubs of the config's routing
//! targets so that the directory loads.

use crate::common::*;

/// Routing targets of the test config, so that the flows directory loads.
const STUBS: [(&str, &str); 2] = [
    (
        "whatsapp-help-flow.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: whatsapp-help
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "help"
"#,
    ),
    (
        "status-check-flow.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: status-check
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "status"
"#,
    ),
];

/// Records an alert and pages the on-call person, unless it is a repeat of an open alert. The
/// fingerprint is not passed to the step: the agent reads it from the webhook body.
const PAGE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-page
triggers:
  - type: webhook
    path: "/test/page"
    method: POST
input:
  required: [severity, service, message, oncall]
  schema:
    severity:
      type: string
      enum: ["critical", "warning", "info"]
    service:
      type: string
    message:
      type: string
    oncall:
      type: string
    fingerprint:
      type: string
steps:
  - name: create-alert-record
    agent: alert-manager
    action: create
    input:
      severity: "{{ input.severity }}"
      service: "{{ input.service }}"
      message: "{{ input.message }}"
      oncall_user: "{{ input.oncall }}"
  - name: page
    agent: whatsapp
    action: send_template
    condition: "{{ not steps.create-alert-record.output.duplicate }}"
    input:
      to: "{{ input.oncall }}"
      template: "ops_alert"
      parameters:
        - "{{ input.severity | upper }}"
        - "{{ input.service }}"
        - "{{ steps.create-alert-record.output.alert_id }}: {{ input.message }}"
        - "{{ now() | format_time }}"
"#;

/// Records an alert for someone without sending them anything.
const PAGE_SILENTLY: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-page-silently
triggers:
  - type: webhook
    path: "/test/page-silently"
    method: POST
steps:
  - name: create-alert-record
    agent: alert-manager
    action: create
    input:
      severity: "{{ input.severity }}"
      service: "{{ input.service }}"
      message: "{{ input.message }}"
      oncall_user: "{{ input.oncall }}"
"#;

/// Reminds someone of an alert: the message is about that alert.
const REMIND: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-remind
triggers:
  - type: webhook
    path: "/test/remind"
    method: POST
steps:
  - name: alert
    agent: alert-manager
    action: get
    input:
      alert_id: "{{ input.alert_id }}"
  - name: remind
    agent: whatsapp
    action: send_template
    input:
      to: "{{ input.to }}"
      template: "ops_alert"
      parameters:
        - "REMINDER"
        - "{{ steps.alert.output.service }}"
        - "{{ steps.alert.output.alert_id }}: {{ steps.alert.output.message }}"
        - "{{ now() | format_time }}"
"#;

/// The tutorial's acknowledge flow, answering in text.
const ACK: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-ack
triggers:
  - platform: whatsapp
    type: message
    pattern: "^ACK$"
context:
  source: conversation
  lookback: 5
steps:
  - name: find-active-alert
    agent: alert-manager
    action: find_pending
    input:
      user_phone: "{{ trigger.user.phone }}"
      status: "firing"
    on_empty:
      response:
        text: "No pending alerts to acknowledge"
  - name: acknowledge-alert
    agent: alert-manager
    action: acknowledge
    input:
      alert_id: "{{ steps.find-active-alert.output.alert_id }}"
      acknowledged_by: "{{ trigger.user.phone }}"
      acknowledged_at: "{{ now() }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Acknowledged {{ steps.acknowledge-alert.output.alert_id }} by {{ steps.acknowledge-alert.output.acknowledged_by_name }}: {{ steps.find-active-alert.output.title }}"
"#;

/// Resolves the alert the person is on.
const RESOLVE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-resolve
triggers:
  - platform: whatsapp
    type: message
    pattern: "^RESOLVE$"
steps:
  - name: get-current-alert
    agent: alert-manager
    action: get_active
    input:
      user_phone: "{{ trigger.user.phone }}"
  - name: resolve-alert
    agent: alert-manager
    action: resolve
    input:
      alert_id: "{{ steps.get-current-alert.output.alert_id }}"
      resolved_by: "{{ trigger.user.phone }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Resolved {{ steps.resolve-alert.output.alert_id }} ({{ steps.resolve-alert.output.state }}, PagerDuty: {{ steps.get-current-alert.output.pagerduty_incident_id or 'none' }})"
"#;

/// The tutorial's deployment-approval flow, with an optional `expires_at` and text answers.
const REQUEST: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-request-approval
triggers:
  - type: webhook
    path: "/test/request-approval"
    method: POST
input:
  required: [service, version, environment, requester]
steps:
  - name: get-approvers
    agent: approval-manager
    action: get_approvers
    input:
      environment: "{{ input.environment }}"
      service: "{{ input.service }}"
  - name: create-approval-request
    agent: approval-manager
    action: create
    input:
      type: "deployment"
      service: "{{ input.service }}"
      version: "{{ input.version }}"
      environment: "{{ input.environment }}"
      requester: "{{ input.requester }}"
      approvers: "{{ steps.get-approvers.output.users }}"
      expires_at: "{{ input.expires_at or (now() | add_hours(4)) }}"
      changes_url: "https://example.com/compare"
  - name: send-approval-requests
    agent: whatsapp
    action: send_template
    foreach: "{{ steps.get-approvers.output.users }}"
    input:
      to: "{{ item.phone }}"
      template: "deployment_approval"
      parameters:
        - "{{ input.service }}"
        - "{{ input.version }}"
        - "{{ input.environment }}"
        - "{{ input.requester }}"
on_response:
  - pattern: "^APPROVE$"
    flow: "test-decide"
    input:
      request_id: "{{ steps.create-approval-request.output.request_id }}"
      action: "approve"
      approver_phone: "{{ trigger.user.phone }}"
  - pattern: "^REJECT$"
    flow: "test-decide"
    input:
      request_id: "{{ steps.create-approval-request.output.request_id }}"
      action: "reject"
      approver_phone: "{{ trigger.user.phone }}"
"#;

/// The tutorial's process-approval flow without its own expiry check: the agent must refuse.
const DECIDE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-decide
input:
  required: [request_id, action, approver_phone]
steps:
  - name: validate-approver
    agent: approval-manager
    action: validate_approver
    input:
      request_id: "{{ input.request_id }}"
      approver_phone: "{{ input.approver_phone }}"
    on_error:
      response:
        text: "❌ You are not authorized to approve this request."
  - name: get-request
    agent: approval-manager
    action: get
    input:
      request_id: "{{ input.request_id }}"
  - name: process-approval
    agent: approval-manager
    action: "{{ input.action }}"
    input:
      request_id: "{{ input.request_id }}"
      approver: "{{ input.approver_phone }}"
      timestamp: "{{ now() }}"
  - name: respond-to-approver
    agent: whatsapp
    action: reply
    input:
      text: "{{ steps.process-approval.output.request_id }} {{ steps.process-approval.output.state }} by {{ steps.validate-approver.output.approver_name }} ({{ steps.get-request.output.service }} {{ steps.get-request.output.version }} to {{ steps.get-request.output.environment }})"
"#;

/// `APPROVE APR-0001` typed with the request's id, without a pending response.
const DECIDE_BY_ID: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-decide-by-id
triggers:
  - platform: whatsapp
    type: message
    pattern: "^(APPROVE|REJECT) (APR-\\d+)$"
input:
  schema:
    verb:
      type: string
      source: "match.1"
    request_id:
      type: string
      source: "match.2"
steps:
  - name: validate-approver
    agent: approval-manager
    action: validate_approver
    input:
      request_id: "{{ input.request_id }}"
      approver_phone: "{{ trigger.user.phone }}"
    on_error:
      response:
        text: "❌ You are not authorized to approve this request."
  - name: process-approval
    agent: approval-manager
    action: "{{ input.verb | lower }}"
    input:
      request_id: "{{ input.request_id }}"
      approver: "{{ trigger.user.phone }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{{ steps.process-approval.output.request_id }} {{ steps.process-approval.output.state }} by {{ steps.validate-approver.output.approver_name }}"
"#;

/// Lists the requests the writer may decide.
const PENDING: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-pending
triggers:
  - platform: whatsapp
    type: message
    pattern: "^PENDING$"
steps:
  - name: pending
    agent: approval-manager
    action: pending_for
    input:
      approver_phone: "{{ trigger.user.phone }}"
    on_empty:
      response:
        text: "No open approval requests"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Open:{% for r in steps.pending.output %} {{ r.request_id }} {{ r.service }}@{{ r.environment }};{% endfor %}"
"#;

/// A flows directory with the stubs and every test flow above.
pub fn flows_dir() -> tempfile::TempDir {
    let dir = temp();
    let flows = STUBS.iter().copied().chain([
        ("test-page.yaml", PAGE),
        ("test-page-silently.yaml", PAGE_SILENTLY),
        ("test-remind.yaml", REMIND),
        ("test-ack.yaml", ACK),
        ("test-resolve.yaml", RESOLVE),
        ("test-request-approval.yaml", REQUEST),
        ("test-decide.yaml", DECIDE),
        ("test-decide-by-id.yaml", DECIDE_BY_ID),
        ("test-pending.yaml", PENDING),
    ]);
    for (name, yaml) in flows {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}
