//! The TriggerConfig: the one YAML file (`config/whatsapp-bot.yaml`) that says where the bot listens,
//! how it talks to WhatsApp, who may talk to it, and which flow answers which message.
//!
//! ```text
//!  file ─read─> text ─parse─> YAML tree ─${VAR}─> expanded tree ─serde─> Config ─validate─> Config
//!               (ConfigError::Read) (::Yaml)   (env.rs)          (decode.rs)     (validate.rs)
//! ```
//!
//! Every step reports the file and the key path; expansion and validation report every problem, not
//! just the first, and a config with any problem is refused. Every struct has
//! `deny_unknown_fields`, so a misspelt key is an error (with a "did you mean"), never silently
//! ignored; defaults live in [`defaults`]. The tutorial's YAML is the contract and loads unmodified.
//!
//! - `defaults.rs`: every default value.
//! - `env.rs`: `${VAR}` / `${VAR:-default}` on the YAML tree.
//! - `decode.rs`: typed deserialization with key paths and suggestions.
//! - `validate.rs`: the checks serde cannot make, and normalization.
//! - `templates.rs`: WhatsApp message templates (built-ins, placeholders, rendering).
//! - `view.rs`: lookups on a loaded config (allow-list, groups, what flows see as `config`).
//! - `secret.rs`: [`Secret`], a credential that cannot be printed.
//! - `error.rs`: [`ConfigError`], [`Problem`], [`TemplateError`].

mod decode;
pub mod defaults;
mod env;
mod error;
pub mod locate;
pub(crate) use decode::suggestion;
mod ops;
mod secret;
mod templates;
#[cfg(test)]
mod tests;
mod units;
mod validate;
mod view;

pub use env::EnvLookup;
pub use error::{ConfigError, Problem, TemplateError};
pub use ops::{
    ApprovalsConfig, DeploymentsConfig, EmailConfig, EnvironmentApprovers, NotifierConfig,
    OncallConfig, OncallEntry, Person, SlackConfig,
};
pub use secret::Secret;
pub use templates::TemplateDef;
pub use view::FallbackTemplate;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole TriggerConfig, as loaded and validated: anything holding one may trust it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; only `v1` exists, so a future format is refused instead of misread.
    pub version: String,
    /// Must be `TriggerConfig`, so an AgentFlow passed to `--config` by mistake is refused.
    pub kind: String,
    /// Where the HTTP server listens.
    #[serde(default = "defaults::server")]
    pub server: ServerConfig,
    /// The messaging platforms; WhatsApp is the only one.
    pub platforms: Platforms,
    /// Which flow answers which incoming message.
    pub routing: RoutingConfig,
    /// Where the AgentFlows are.
    pub flows: FlowsConfig,
    /// Where durable state goes.
    #[serde(default = "defaults::storage")]
    pub storage: StorageConfig,
    /// Per-conversation actors.
    #[serde(default = "defaults::sessions")]
    pub sessions: SessionsConfig,
    /// What the health-checker agent (the STATUS command) probes.
    #[serde(default = "defaults::health_checks")]
    pub health_checks: HealthChecksConfig,
    /// The file this came from, for error messages and for reloading.
    #[serde(skip)]
    pub file: PathBuf,
}

/// The HTTP server: Meta's webhook and the flow webhooks (alerts, deploy requests) share it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind.
    #[serde(default = "defaults::host")]
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// Prefix of every route (`/webhooks` puts Meta's webhook at `/webhooks/whatsapp`); normalized
    /// at load to `""` or `/x` without a trailing slash, so routes can be joined with `format!`.
    #[serde(default = "defaults::base_path")]
    pub base_path: String,
    /// Bearer token the non-Meta webhooks (Alertmanager, deploy requests) must present; when the key
    /// is absent, `AOF_WEBHOOK_TOKEN` is used if set and non-empty, as the tutorial's curl assumes.
    #[serde(default)]
    pub webhook_token: Option<Secret>,
    /// HTTP worker threads; `None` lets actix-web use one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Capacity of each actor's mailbox: a full mailbox answers webhooks with 503 (back-pressure).
    #[serde(default = "defaults::mailbox_capacity")]
    pub mailbox_capacity: usize,
    /// `shutdown_timeout_secs`: how long open HTTP requests get to finish on SIGTERM; queued sends
    /// wait in the store.
    #[serde(
        rename = "shutdown_timeout_secs",
        default = "defaults::shutdown_timeout",
        deserialize_with = "units::secs"
    )]
    pub shutdown_timeout: Duration,
    /// `body_timeout_secs`: how long a request body may go silent before the request is cut off
    /// with 408 (a client that sent half a body must not hold a worker).
    #[serde(
        rename = "body_timeout_secs",
        default = "defaults::body_timeout",
        deserialize_with = "units::secs"
    )]
    pub body_timeout: Duration,
}

/// The platforms section; a key per platform so others can be added without changing the shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platforms {
    /// The WhatsApp Business number the bot speaks through.
    pub whatsapp: WhatsAppConfig,
}

/// One WhatsApp Business number: credentials, who may write, how fast, which templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppConfig {
    /// Always `whatsapp`; the tutorial writes it, so it is checked rather than ignored.
    #[serde(rename = "type")]
    pub kind: String,
    /// The Graph API id of the sending number (not the phone number itself).
    pub phone_number_id: String,
    /// Graph API bearer token (a system user's permanent token).
    pub access_token: Secret,
    /// What Meta sends back when the webhook is registered (`hub.verify_token`).
    pub verify_token: Secret,
    /// Key of the `X-Hub-Signature-256` HMAC on every webhook delivery.
    pub app_secret: Secret,
    /// Graph API root, with its version; no trailing slash. Tests point it at a fake server.
    #[serde(default = "defaults::api_base_url")]
    pub api_base_url: String,
    /// Talk to Meta, or to the local sandbox (no Meta account needed).
    #[serde(default = "defaults::transport")]
    pub transport: TransportKind,
    /// Who is on call: from PagerDuty, or a static rota.
    #[serde(default = "defaults::oncall")]
    pub oncall: OncallConfig,
    /// Numbers allowed to talk to the bot; empty (with `security.allowed_numbers` empty) allows all.
    #[serde(default)]
    pub allowed_numbers: Vec<String>,
    /// Named lists of numbers that `send_to_group` writes to one by one (the Cloud API has no
    /// groups); `oncall.team_group` names one of them.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Send rates, below Meta's limits.
    #[serde(default = "defaults::rate_limits")]
    pub rate_limits: RateLimits,
    /// Pacing of high-volume sends.
    #[serde(default = "defaults::queue")]
    pub queue: QueueConfig,
    /// Signature checks, allow-list, audit.
    #[serde(default = "defaults::security")]
    pub security: SecurityConfig,
    /// Templates by name: the built-ins, with these entries merged over them.
    #[serde(
        default = "defaults::templates",
        deserialize_with = "templates::merge_over_builtins"
    )]
    pub templates: BTreeMap<String, TemplateDef>,
    /// Template that carries free-form text when Meta refuses it outside the 24 h window (131047);
    /// `null` turns the fallback off.
    #[serde(default = "defaults::fallback_template")]
    pub fallback_template: Option<String>,
    /// `send_timeout_ms`: how long before a Graph API call counts as failed.
    #[serde(
        rename = "send_timeout_ms",
        default = "defaults::send_timeout",
        deserialize_with = "units::millis"
    )]
    pub send_timeout: Duration,
    /// The people directory: who is who on WhatsApp, email and Slack.
    #[serde(default)]
    pub people: Vec<Person>,
    /// Who approves deployments, per environment and service.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Where approved deployments go.
    #[serde(default)]
    pub deployments: DeploymentsConfig,
    /// Slack and email channels of the notifier.
    #[serde(default)]
    pub notifier: NotifierConfig,
    /// Attempts per message before it is given up as failed.
    #[serde(default = "defaults::max_send_attempts")]
    pub max_send_attempts: u32,
    /// `send_backoff_ms`: the wait before the first retry of a failed send; it doubles per attempt.
    #[serde(
        rename = "send_backoff_ms",
        default = "defaults::send_backoff",
        deserialize_with = "units::millis"
    )]
    pub send_backoff: Duration,
    /// `send_backoff_max_ms`: the longest wait between two attempts.
    #[serde(
        rename = "send_backoff_max_ms",
        default = "defaults::send_backoff_max",
        deserialize_with = "units::millis"
    )]
    pub send_backoff_max: Duration,
    /// `unconfirmed_send_grace_secs`: how long a message that was leaving when the bot stopped
    /// waits, after the restart, for a status naming it before it is sent again.
    #[serde(
        rename = "unconfirmed_send_grace_secs",
        default = "defaults::unconfirmed_send_grace",
        deserialize_with = "units::secs"
    )]
    pub unconfirmed_send_grace: Duration,
    /// `auth_failure_pause_secs`: how long every send waits after Meta refuses the access token.
    #[serde(
        rename = "auth_failure_pause_secs",
        default = "defaults::auth_failure_pause",
        deserialize_with = "units::secs"
    )]
    pub auth_failure_pause: Duration,
    /// No longer used: redeliveries are dropped by the store's inbox, which remembers ids for the
    /// longer of 7 days and `max_message_age_secs`. Still read, so that a config that sets it
    /// loads; start-up warns.
    #[serde(default)]
    pub dedup_window: Option<usize>,
    /// Reactions acted on as commands, by emoji (`"👍": ACK`): a person who reacts with one of
    /// these to one of the bot's messages sends that command quoting the message. Off (empty) by
    /// default: a reaction is otherwise never acted on.
    #[serde(default)]
    pub reactions: BTreeMap<String, String>,
    /// `max_message_age_secs`: a message Meta stamped longer ago than this is logged and not acted
    /// on (a replay, not a person waiting for an answer).
    #[serde(
        rename = "max_message_age_secs",
        default = "defaults::max_message_age",
        deserialize_with = "units::secs"
    )]
    pub max_message_age: Duration,
}

/// How outbound messages leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// Meta's Graph API (`POST {api_base_url}/{phone_number_id}/messages`).
    CloudApi,
    /// A local outbox read over HTTP, for trying flows without a Meta account.
    Sandbox,
}

/// Send rates; Meta throttles (130429) above them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Global sends per second, 1..=80: Meta allows 80 per second per number.
    #[serde(default = "defaults::messages_per_second")]
    pub messages_per_second: u32,
    /// Template messages per day, to stay within the account's quota.
    #[serde(default = "defaults::templates_per_day")]
    pub templates_per_day: u32,
    /// `window_margin_ms`: added to the one-second window, so that jitter on the way cannot put
    /// one send too many into Meta's second.
    #[serde(
        rename = "window_margin_ms",
        default = "defaults::window_margin",
        deserialize_with = "units::millis"
    )]
    pub window_margin: Duration,
    /// Most sends in flight at once; twice the rate (at least 16) when unset.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// `per_person_interval_ms`: the steady interval between two messages to the same person
    /// (WhatsApp's pair rate is about one every 6 s, 131056 beyond; default 6000). What waits for
    /// a paced person is folded into one message when their turn comes. 0 paces nobody (a
    /// 131056 still holds back that person only).
    #[serde(
        rename = "per_person_interval_ms",
        default = "defaults::per_person_interval",
        deserialize_with = "units::millis"
    )]
    pub per_person_interval: Duration,
    /// Messages one person may get back to back before `per_person_interval_ms` applies; at
    /// least 1.
    #[serde(default = "defaults::per_person_burst")]
    pub per_person_burst: u32,
}

/// Pacing of queued sends, so a storm of alerts goes out in batches rather than all at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Send broadcasts (`send_to_group`) in batches; when false only the global rate paces them.
    #[serde(default = "defaults::queue_enabled")]
    pub enabled: bool,
    /// Messages per batch, at least 1.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// Milliseconds between batches.
    #[serde(default = "defaults::batch_delay", deserialize_with = "units::millis")]
    pub batch_delay: Duration,
}

/// Who may use the bot and what is recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Check `X-Hub-Signature-256` on every delivery; turn off only behind a trusted proxy.
    #[serde(default = "defaults::verify_signatures")]
    pub verify_signatures: bool,
    /// More allowed numbers; joined with `platforms.whatsapp.allowed_numbers` by [`WhatsAppConfig::allowed`].
    #[serde(default)]
    pub allowed_numbers: Vec<String>,
    /// With no allow-list, accept only the numbers the config knows (on-call rota, groups).
    #[serde(default = "defaults::require_verified")]
    pub require_verified: bool,
    /// The audit log.
    #[serde(default = "defaults::audit")]
    pub audit: AuditConfig,
}

/// The audit log of who asked the bot to do what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record every inbound and outbound message.
    #[serde(default = "defaults::audit_enabled")]
    pub enabled: bool,
    /// Also record message bodies (off for privacy).
    #[serde(default = "defaults::audit_include_content")]
    pub include_content: bool,
}

/// Which flow answers a message: a pending `on_response`, then `commands`, then `keywords`, then
/// `default_flow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Flow for anything nothing else matched; absent means no answer.
    #[serde(default)]
    pub default_flow: Option<String>,
    /// Whole-message commands (case-insensitive) to flow names.
    #[serde(default)]
    pub commands: BTreeMap<String, String>,
    /// Regexes tried in order on messages that are not commands.
    #[serde(default)]
    pub keywords: Vec<KeywordRoute>,
}

impl RoutingConfig {
    /// Every flow name the routing uses, with the key that names it, in the file's order.
    pub fn targets(&self) -> impl Iterator<Item = (String, &str)> {
        let commands = self
            .commands
            .iter()
            .map(|(command, flow)| (format!("routing.commands.{command}"), flow.as_str()));
        let keywords = self
            .keywords
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("routing.keywords[{i}].flow"), k.flow.as_str()));
        let default = self
            .default_flow
            .iter()
            .map(|f| ("routing.default_flow".to_owned(), f.as_str()));
        commands.chain(keywords).chain(default)
    }

    /// The flow names the routing uses that `exists` does not know, sorted, each once.
    pub fn missing(&self, exists: impl Fn(&str) -> bool) -> Vec<&str> {
        let mut missing: Vec<&str> = self
            .targets()
            .map(|(_, flow)| flow)
            .filter(|flow| !exists(flow))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }
}

/// One keyword route; the pattern is checked to compile at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRoute {
    /// A `regex` crate pattern, searched anywhere in the message.
    pub pattern: String,
    /// The flow to run on a match.
    pub flow: String,
}

/// Where the AgentFlows are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsConfig {
    /// Directory of flow YAML files, relative to the working directory, as the tutorial runs it.
    pub directory: PathBuf,
    /// Reload flows when files change; a broken edit keeps the last good version.
    #[serde(default = "defaults::flows_watch")]
    pub watch: bool,
    /// `on_response_ttl_secs`: how long a flow's `on_response` expectation waits for the reply.
    #[serde(
        rename = "on_response_ttl_secs",
        default = "defaults::on_response_ttl",
        deserialize_with = "units::secs"
    )]
    pub on_response_ttl: Duration,
}

/// Durable state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A sqlx database URL: `sqlite://data/aof.db` (the default), or `postgres://user@host/db` for
    /// several replicas on one database (TLS with `?sslmode=require` or `verify-full`).
    #[serde(default = "defaults::storage_url")]
    pub url: String,
    /// PostgreSQL: connections each replica keeps open at most (the intake's group commit keeps
    /// two more of its own).
    #[serde(default = "defaults::pool_size")]
    pub pool_size: u32,
    /// PostgreSQL: how long opening a connection (or waiting for a free one) may take before the
    /// store answers that it failed (and a webhook gets 503).
    #[serde(
        rename = "connect_timeout_secs",
        default = "defaults::connect_timeout",
        deserialize_with = "units::secs"
    )]
    pub connect_timeout: Duration,
}

/// The per-conversation session actors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// `idle_timeout_secs`: how long without a message before a session actor stops (its context
    /// stays in the store).
    #[serde(
        rename = "idle_timeout_secs",
        default = "defaults::idle_timeout",
        deserialize_with = "units::secs"
    )]
    pub idle_timeout: Duration,
    /// Messages kept per conversation; a flow's `context.lookback` may ask for more, the engine
    /// keeps the larger.
    #[serde(default = "defaults::lookback")]
    pub lookback: usize,
    /// Threads that sessions and flow runs are spread over; one per core when unset.
    #[serde(default)]
    pub threads: Option<usize>,
}

/// Services the STATUS command checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthChecksConfig {
    /// `timeout_ms`: how long before a service counts as down.
    #[serde(
        rename = "timeout_ms",
        default = "defaults::health_timeout",
        deserialize_with = "units::millis"
    )]
    pub timeout: Duration,
    /// Service name (as flows write it: `api`, `database`) to its check.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceCheck>,
}

/// One HTTP health check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCheck {
    /// URL to GET.
    pub url: String,
    /// Status that means healthy; absent: any 2xx.
    #[serde(default)]
    pub expect_status: Option<u16>,
}

/// Reads and loads the config at `path`, with `${VAR}` taken from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
        file: file.clone(),
        reason,
    })?;
    load_str(&file, &text, &|name| std::env::var(name).ok())
}

/// Loads a config from `text`; `file` names it in errors and `env` resolves `${VAR}`, so tests need
/// not touch the process environment.
pub fn load_str(file: &str, text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    match check_str(file, text, env)? {
        (Some(config), problems) if problems.is_empty() => Ok(config),
        (_, problems) => Err(ConfigError::Invalid {
            file: file.to_owned(),
            problems,
        }),
    }
}

/// Every problem of a config at once, and the config as far as it could be read (faulty keys left
/// out): `aofctl validate` goes on to the flows with it. Only a YAML syntax error stops early.
pub fn check_str(
    file: &str,
    text: &str,
    env: EnvLookup<'_>,
) -> Result<(Option<Config>, Vec<Problem>), ConfigError> {
    let mut tree: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|err| ConfigError::Yaml {
            file: file.to_owned(),
            line: err.location().map_or(0, |l| l.line()),
            column: err.location().map_or(0, |l| l.column()),
            message: decode::strip_location(&err.to_string()),
        })?;
    if tree.is_null() {
        let empty = Problem::new(
            "(top level)",
            "the file is empty; start from config/sandbox.yaml",
        );
        return Ok((None, vec![empty]));
    }
    // Missing variables first, then what the typed decoding finds (a key whose value is an unset
    // variable is not blamed twice), then the checks of the decoded config.
    let (from_env, mut problems) = match env::expand(&mut tree, env) {
        Ok(from_env) => (from_env, Vec::new()),
        Err(missing) => (Default::default(), missing),
    };
    let (config, found) = decode::decode_all::<Config>(tree, &from_env);
    let blamed: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
    problems.extend(found.into_iter().filter(|p| !blamed.contains(&p.key)));
    let Some(mut config) = config else {
        return Ok((None, problems));
    };
    config.file = PathBuf::from(file);
    validate::normalize(&mut config, env);
    let checked = validate::problems(&config);
    problems.extend(checked.into_iter().filter(|p| !blamed.contains(&p.key)));
    Ok((Some(config), problems))
}
