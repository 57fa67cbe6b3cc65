//! Every default value of the config, in one place, so the answer to "what if I leave it out" is
//! here and nowhere else. Each function is named after its key and used by `#[serde(default = ...)]`.

use super::{
    AuditConfig, HealthChecksConfig, OncallConfig, QueueConfig, RateLimits, SecurityConfig,
    ServerConfig, SessionsConfig, StorageConfig, TemplateDef, TransportKind,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Listen on every interface: the bot sits behind a reverse proxy or in a container.
pub fn host() -> String {
    "0.0.0.0".to_owned()
}

/// The tutorial's port.
pub fn port() -> u16 {
    8080
}

/// Serve at the root unless told otherwise; the tutorial sets `/webhooks`.
pub fn base_path() -> String {
    String::new()
}

/// Large enough to absorb a burst of webhooks, small enough that a stuck actor shows up as 503s
/// rather than as memory growth.
pub fn mailbox_capacity() -> usize {
    1024
}

/// How long in-flight sends get to finish on SIGTERM before the queue is flushed to the store.
pub fn shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The `server` section when absent.
pub fn server() -> ServerConfig {
    ServerConfig {
        host: host(),
        port: port(),
        base_path: base_path(),
        webhook_token: None,
        workers: None,
        mailbox_capacity: mailbox_capacity(),
        shutdown_timeout: shutdown_timeout(),
        body_timeout: body_timeout(),
    }
}

/// Ten seconds of silence in the middle of a body: far beyond any live sender's pause, short
/// enough that half-sent requests cannot pile up.
pub fn body_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The Graph API version the wire types were written against; configurable because Meta retires
/// versions about two years after release.
pub fn api_base_url() -> String {
    "https://graph.facebook.com/v21.0".to_owned()
}

/// Talk to Meta unless the config asks for the sandbox.
pub fn transport() -> TransportKind {
    TransportKind::CloudApi
}

/// No on-call source configured: alerts can still go to `allowed_numbers`.
pub fn oncall() -> OncallConfig {
    OncallConfig {
        pagerduty_token: None,
        schedule_id: None,
        static_oncall: Vec::new(),
        team_group: None,
        fallback_number: None,
        pagerduty_api_url: pagerduty_api_url(),
        pagerduty_from: None,
        pagerduty_webhook_secret: None,
        page_delivery_timeout: page_delivery_timeout(),
        coverers: Vec::new(),
        silencers: Vec::new(),
        silence_critical: false,
    }
}

/// Two minutes: WhatsApp delivers to a phone that is online within seconds; a page still not
/// delivered after two minutes is unlikely to wake anyone.
pub fn page_delivery_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(120)
}

/// Below Meta's 80 messages per second per number, leaving room for retries.
pub fn messages_per_second() -> u32 {
    50
}

/// The tutorial's daily template budget.
pub fn templates_per_day() -> u32 {
    1000
}

/// The `rate_limits` section when absent.
pub fn rate_limits() -> RateLimits {
    RateLimits {
        messages_per_second: messages_per_second(),
        templates_per_day: templates_per_day(),
        window_margin: window_margin(),
        max_in_flight: None,
        per_person_interval: per_person_interval(),
        per_person_burst: per_person_burst(),
    }
}

/// WhatsApp's pair rate: about one message every six seconds to the same person.
pub fn per_person_interval() -> std::time::Duration {
    std::time::Duration::from_millis(6000)
}

/// A short burst, as WhatsApp lends one (a page, its reminder and a reply).
pub fn per_person_burst() -> u32 {
    3
}

/// Queue outbound messages so a burst of alerts is paced instead of refused.
pub fn queue_enabled() -> bool {
    true
}

/// Messages released per batch when the queue drains.
pub fn batch_size() -> u32 {
    10
}

/// A second between batches.
pub fn batch_delay() -> Duration {
    Duration::from_millis(1000)
}

/// The `queue` section when absent.
pub fn queue() -> QueueConfig {
    QueueConfig {
        enabled: queue_enabled(),
        batch_size: batch_size(),
        batch_delay: batch_delay(),
    }
}

/// An unsigned webhook could come from anyone; checking is the safe default.
pub fn verify_signatures() -> bool {
    true
}

/// Meta does not tell us whether a number is verified for most accounts, so do not require it.
pub fn require_verified() -> bool {
    false
}

/// Audit by default: who asked the bot to do what is the first question after an incident.
pub fn audit_enabled() -> bool {
    true
}

/// Keep message bodies out of the audit log, for privacy.
pub fn audit_include_content() -> bool {
    false
}

/// The `security.audit` section when absent.
pub fn audit() -> AuditConfig {
    AuditConfig {
        enabled: audit_enabled(),
        include_content: audit_include_content(),
    }
}

/// The `security` section when absent.
pub fn security() -> SecurityConfig {
    SecurityConfig {
        verify_signatures: verify_signatures(),
        allowed_numbers: Vec::new(),
        require_verified: require_verified(),
        audit: audit(),
    }
}

/// The built-in templates (the tutorial's three and `ops_notification`), from `config/templates.yaml`.
pub fn templates() -> BTreeMap<String, TemplateDef> {
    super::templates::builtins().clone()
}

/// The language Meta's template API expects when the config names none.
pub fn template_language() -> String {
    "en_US".to_owned()
}

/// Outside the 24 h window Meta refuses free-form text; this template carries the text instead.
pub fn fallback_template() -> Option<String> {
    Some("ops_notification".to_owned())
}

/// A Graph API call slower than this is treated as failed and retried.
pub fn send_timeout() -> Duration {
    Duration::from_millis(10_000)
}

/// Enough attempts, with exponential backoff, to ride out a few minutes of Meta trouble.
pub fn max_send_attempts() -> u32 {
    8
}

/// Half a second before the first retry: a blip at Meta's end is usually gone by then.
pub fn send_backoff() -> Duration {
    Duration::from_millis(500)
}

/// A minute at most between attempts, so a recovered Meta is noticed within one.
pub fn send_backoff_max() -> Duration {
    Duration::from_secs(60)
}

/// Meta's `sent` status usually follows a send within seconds: half a minute without one means the
/// request did not get through.
pub fn unconfirmed_send_grace() -> Duration {
    Duration::from_secs(30)
}

/// A refused access token is not fixed in seconds: wait a minute before trying any send again.
pub fn auth_failure_pause() -> Duration {
    Duration::from_secs(60)
}

/// Meta retries an unacknowledged notification for up to seven days: anything older is a replay.
pub fn max_message_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}

/// Sends that leave the limiter a second apart can reach Meta closer together: the window is
/// 1.05 s, so 50 ms of jitter on the way cannot put one too many in Meta's second (15 ms let 51
/// arrive within a second at the test suite's fake).
pub fn window_margin() -> Duration {
    Duration::from_millis(50)
}

/// A flow's `on_response` expectation lasts a day, as long as Meta's reply window.
pub fn on_response_ttl() -> Duration {
    Duration::from_secs(86_400)
}

/// One SQLite file next to the working directory; no server to run.
pub fn storage_url() -> String {
    "sqlite://data/aof.db".to_owned()
}

/// Connections per replica to PostgreSQL: the inbox writes, the actors and the flows share them.
pub fn pool_size() -> u32 {
    10
}

/// Five seconds to connect to PostgreSQL (or get a free connection) before failing.
pub fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The `storage` section when absent.
pub fn storage() -> StorageConfig {
    StorageConfig {
        url: storage_url(),
        pool_size: pool_size(),
        connect_timeout: connect_timeout(),
    }
}

/// A quiet conversation's session stops after 15 minutes; its context stays in the store.
pub fn idle_timeout() -> Duration {
    Duration::from_secs(900)
}

/// The tutorial's `context.lookback: 5`.
pub fn lookback() -> usize {
    5
}

/// The `sessions` section when absent.
pub fn sessions() -> SessionsConfig {
    SessionsConfig {
        idle_timeout: idle_timeout(),
        lookback: lookback(),
        threads: None,
    }
}

/// A health check slower than this counts as down: the STATUS reply must not hang.
pub fn health_timeout() -> Duration {
    Duration::from_millis(2000)
}

/// The `health_checks` section when absent.
pub fn health_checks() -> HealthChecksConfig {
    HealthChecksConfig {
        timeout: health_timeout(),
        services: BTreeMap::new(),
    }
}

/// Flows are read once at start-up unless hot reload is asked for.
pub fn flows_watch() -> bool {
    false
}

/// PagerDuty's REST API.
pub fn pagerduty_api_url() -> String {
    "https://api.pagerduty.com".to_owned()
}
