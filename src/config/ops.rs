//! The ops sections of the WhatsApp platform config: who is on call, the people directory,
//! approvers, where deployments go, and the notifier's channels. Flows name people by name, email or number; these
//! sections say who that is and how to reach them.

use super::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One person: how to reach them on every channel the notifier knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Shown in messages ("approved by Alice"); flows and approver lists name people by it.
    pub name: String,
    /// WhatsApp number, any common notation.
    #[serde(default)]
    pub phone: Option<String>,
    /// Their WhatsApp business-scoped user id (`US.13491208655302741918`), for a person who
    /// adopted a username and may hide their number: messages from it are theirs (and, when
    /// `phone` is set too, the bot goes on writing to the number).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Email address (deployment requesters are often written as emails).
    #[serde(default)]
    pub email: Option<String>,
    /// A Slack incoming-webhook URL that reaches this person (or their team channel).
    #[serde(default)]
    pub slack_webhook: Option<Secret>,
    /// Their Slack member id, mentioned as `<@id>` in Slack messages.
    #[serde(default)]
    pub slack_id: Option<String>,
}

impl Person {
    /// Where the bot writes to this person: their number, else their user id.
    pub fn wa(&self) -> Option<aof_actors::WaId> {
        [&self.phone, &self.user_id]
            .into_iter()
            .flatten()
            .find_map(|raw| aof_actors::WaId::parse(raw))
    }

    /// Whether `who` is this person, by number or by user id.
    pub fn is(&self, who: &aof_actors::WaId) -> bool {
        [&self.phone, &self.user_id]
            .into_iter()
            .flatten()
            .any(|raw| aof_actors::WaId::parse(raw).as_ref() == Some(who))
    }
}

/// Who may approve what: per environment a default list, optionally per service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Approvers per environment (`production`, `staging`, …); `*` applies to any environment not listed.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentApprovers>,
    /// `expiry_hours`: how long a request stays open when the flow does not say (`expires_at`).
    #[serde(
        rename = "expiry_hours",
        default = "default_expiry",
        deserialize_with = "super::units::hours"
    )]
    pub expiry: Duration,
}

/// Four hours: long enough for an approver to see the request, short enough not to approve a stale one.
fn default_expiry() -> Duration {
    Duration::from_secs(4 * 3600)
}

/// Without an `approvals` section requests still last `default_expiry` (not zero hours).
impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            environments: BTreeMap::new(),
            expiry: default_expiry(),
        }
    }
}

/// Approvers of one environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentApprovers {
    /// People (by name, in the people directory) who approve any service here.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Services with their own approvers, instead of the default list.
    #[serde(default)]
    pub services: BTreeMap<String, Vec<String>>,
}

/// Where an approved deployment goes: a webhook, or a command run without a shell.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentsConfig {
    /// POSTed the deployment as JSON (`service`, `version`, `environment`, `approved_by`).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Extra headers of the webhook (an `Authorization` for the CI system).
    #[serde(default)]
    pub webhook_headers: BTreeMap<String, Secret>,
    /// A command and its arguments; `{service}`, `{version}`, `{environment}` and `{approved_by}` are
    /// replaced in each argument. Run directly, never through a shell.
    #[serde(default)]
    pub command: Vec<String>,
    /// `timeout_secs`: how long a deployment call may take.
    #[serde(
        rename = "timeout_secs",
        default = "default_deploy_timeout",
        deserialize_with = "super::units::secs"
    )]
    pub timeout: Duration,
}

/// Two minutes: a CI system's deploy trigger answers quickly; the deployment itself runs on.
fn default_deploy_timeout() -> Duration {
    Duration::from_secs(120)
}

/// Without a `deployments` section the timeout is still `default_deploy_timeout`.
impl Default for DeploymentsConfig {
    fn default() -> Self {
        DeploymentsConfig {
            webhook_url: None,
            webhook_headers: BTreeMap::new(),
            command: Vec::new(),
            timeout: default_deploy_timeout(),
        }
    }
}

/// The notifier's channels besides WhatsApp.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Slack: a default incoming webhook for people without their own.
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    /// Email through SMTP.
    #[serde(default)]
    pub email: Option<EmailConfig>,
}

/// Slack settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL used when the person has none.
    pub webhook_url: Secret,
}

/// SMTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host.
    pub smtp_host: String,
    /// SMTP port (587 with STARTTLS, 465 with TLS, 25 or 1025 plain).
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none` (a local relay).
    #[serde(default = "default_smtp_security")]
    pub security: String,
    /// SMTP user, when the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The From address.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> String {
    "starttls".to_owned()
}

/// Who is on call; flows read it as `config.oncall`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OncallConfig {
    /// PagerDuty REST API token, for schedule lookups.
    #[serde(default)]
    pub pagerduty_token: Option<Secret>,
    /// PagerDuty schedule to look up (`PXXXXXX`).
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// A static rota, used when PagerDuty is not configured or does not answer.
    #[serde(default)]
    pub static_oncall: Vec<OncallEntry>,
    /// WhatsApp group that hears about acknowledgements (`config.oncall.team_group`).
    #[serde(default)]
    pub team_group: Option<String>,
    /// Who is paged when nobody is on call (a gap in the rota, PagerDuty down and no rota).
    #[serde(default)]
    pub fallback_number: Option<String>,
    /// PagerDuty REST API root (tests point it at a fake).
    #[serde(default = "super::defaults::pagerduty_api_url")]
    pub pagerduty_api_url: String,
    /// The `From` header of PagerDuty incident writes: a PagerDuty user's email.
    #[serde(default)]
    pub pagerduty_from: Option<String>,
    /// Secret of the PagerDuty V3 webhook subscription; when set, `X-PagerDuty-Signature` is checked.
    #[serde(default)]
    pub pagerduty_webhook_secret: Option<Secret>,
    /// `page_delivery_timeout_secs`: how long a page may stay undelivered before the next person
    /// on call is paged and the notifier's fallback channel told (`page-delivery-check-flow`); 0
    /// turns the check off. A page WhatsApp reports `failed` is checked at once.
    #[serde(
        rename = "page_delivery_timeout_secs",
        default = "super::defaults::page_delivery_timeout",
        deserialize_with = "super::units::secs"
    )]
    pub page_delivery_timeout: Duration,
    /// Who may `COVER` for someone else (`COVER Bob 2h`), by name, email or number as in
    /// `people`; anyone the directory or the rota knows may cover for themselves.
    #[serde(default)]
    pub coverers: Vec<String>,
    /// Who may `SILENCE` a service (names, emails or numbers as in `people`).
    #[serde(default)]
    pub silencers: Vec<String>,
    /// Whether a silence holds critical pages too; by default they break through.
    #[serde(default)]
    pub silence_critical: bool,
}

/// One person of the static rota.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OncallEntry {
    /// Shown in messages ("acknowledged by Alice").
    pub name: String,
    /// Their WhatsApp number, any common notation.
    pub phone: String,
    /// Shift as `HH:MM-HH:MM`; may wrap midnight (`18:00-09:00`). Absent: always on call.
    #[serde(default)]
    pub hours: Option<String>,
    /// IANA zone the hours are in (`America/New_York`); absent means UTC.
    #[serde(default)]
    pub timezone: Option<String>,
}
