//! What every scenario starts from: a scratch directory, the bot's config pointing at the fake Graph
//! API, and signed WhatsApp notifications shaped as Meta sends them.

use crate::child::{free_port, Server};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configured rate of every scenario (`rate_limits.messages_per_second`).
pub const PER_SECOND: u32 = 50;

/// The app secret of every load config: the generator signs with it, the bot checks it.
pub const APP_SECRET: &str = "load-app-secret";
/// The bearer token of the flow webhooks.
pub const WEBHOOK_TOKEN: &str = "load-webhook-token";
/// The on-call engineer every alert pages.
pub const ONCALL: &str = "15550100001";
/// The WhatsApp phone number id of the load config.
const PHONE_NUMBER_ID: &str = "106540352242922";

/// A directory under the system's temp dir, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory named for `label`.
    pub fn new(label: &str) -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("aof-load-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    /// Removes the directory, unless `AOF_LOAD_KEEP` is set (to read the bot's log and store).
    fn drop(&mut self) {
        if std::env::var_os("AOF_LOAD_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a scenario changes in the bot's config.
pub struct BotConfig<'a> {
    /// The loopback port the bot listens on.
    pub port: u16,
    /// The fake Graph API's base address.
    pub graph: &'a str,
    /// `rate_limits.messages_per_second`.
    pub per_second: u32,
    /// `routing.default_flow`.
    pub default_flow: &'a str,
    /// `flows.directory`.
    pub flows: &'a Path,
    /// What a scenario adds to the defaults.
    pub extras: &'a Extras<'a>,
}

/// What a scenario adds to the load config; [`Extras::default`] adds nothing.
#[derive(Default)]
pub struct Extras<'a> {
    /// People on the static rota after the on-call engineer, in escalation order: (name, digits).
    pub rota: &'a [(&'a str, &'a str)],
    /// YAML lines added at the end of `platforms.whatsapp` (indented by four spaces): an allow-list,
    /// people, approvals, `unconfirmed_send_grace_secs`…
    pub whatsapp: &'a str,
    /// `rate_limits.per_person_interval_ms` and `per_person_burst`; `None` paces nobody, so that
    /// the raw-rate scenarios measure the send rate, not WhatsApp's pair rate.
    pub pair: Option<(u64, u32)>,
    /// `storage.url`; SQLite beside the config when `None`.
    pub storage_url: Option<&'a str>,
    /// `rate_limits.window_margin_ms`; the bot's default when `None`.
    pub window_margin_ms: Option<u64>,
}

/// Writes `config.yaml` into `dir` (the store lives beside it) and returns its path. The routing is
/// the tutorial's; anyone may write (no allow-list), as a public bot would take any number.
pub fn write_config(dir: &Path, c: &BotConfig) -> anyhow::Result<PathBuf> {
    let yaml = format!(
        r#"version: v1
kind: TriggerConfig
server:
  host: "127.0.0.1"
  port: {port}
  base_path: "/webhooks"
  webhook_token: "{WEBHOOK_TOKEN}"
platforms:
  whatsapp:
    type: whatsapp
    phone_number_id: "{PHONE_NUMBER_ID}"
    access_token: "load-access-token"
    verify_token: "load-verify-token"
    app_secret: "{APP_SECRET}"
    api_base_url: "{graph}/v21.0"
    oncall:
      static_oncall:
        - name: "Olivia"
          phone: "+{ONCALL}"
{rota}      team_group: "sre-team"
    groups:
      sre-team: ["+{ONCALL}"]
    rate_limits:
      messages_per_second: {rate}
{margin}      templates_per_day: 1000000
      per_person_interval_ms: {pair_interval}
      per_person_burst: {pair_burst}
    queue:
      enabled: true
      batch_size: 10
      batch_delay: 1000
    security:
      verify_signatures: true
      require_verified: false
      audit:
        enabled: true
        include_content: false
{whatsapp_extra}routing:
  default_flow: "{default_flow}"
  commands:
    "ACK": "acknowledge-alert-flow"
    "ESC": "escalate-alert-flow"
    "INFO": "alert-info-flow"
    "APPROVE": "approval-handler-flow"
    "REJECT": "approval-handler-flow"
    "RESOLVE": "resolve-incident-flow"
    "STATUS": "status-check-flow"
    "HELP": "whatsapp-help-flow"
  keywords:
    - pattern: "(?i)(deploy|release|ship)"
      flow: "deployment-request-flow"
    - pattern: "(?i)(incident|outage|down)"
      flow: "incident-report-flow"
    - pattern: "(?i)(scale|replicas)"
      flow: "scale-service-flow"
flows:
  directory: "{flows}"
  watch: false
storage:
  url: "{db}"
health_checks:
  timeout_ms: 2000
  services:
    api: {{ url: "{graph}/health/api" }}
    web: {{ url: "{graph}/health/web" }}
    database: {{ url: "{graph}/health/database" }}
"#,
        port = c.port,
        graph = c.graph,
        rate = c.per_second,
        default_flow = c.default_flow,
        flows = c.flows.display(),
        db = c
            .extras
            .storage_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("aof.db").display())),
        rota = c
            .extras
            .rota
            .iter()
            .map(|(name, phone)| format!(
                "        - name: \"{name}\"\n          phone: \"+{phone}\"\n"
            ))
            .collect::<String>(),
        whatsapp_extra = c.extras.whatsapp,
        pair_interval = c.extras.pair.map_or(0, |(ms, _)| ms),
        pair_burst = c.extras.pair.map_or(3, |(_, burst)| burst),
        margin = c
            .extras
            .window_margin_ms
            .map(|ms| format!("      window_margin_ms: {ms}\n"))
            .unwrap_or_default(),
    );
    let file = dir.join("config.yaml");
    std::fs::write(&file, yaml)?;
    Ok(file)
}

/// A bot that started: the process, its config file (to start it again) and how long it took from
/// spawn to `/readyz` 200.
pub struct Started {
    /// The server process.
    pub bot: Server,
    /// Its config file.
    pub config: PathBuf,
    /// The port its config names.
    pub port: u16,
    /// Spawn to ready.
    pub ready_after: Duration,
}

/// Writes a config into `dir` for a bot at 50 messages/s against `graph` with `flows`, starts it
/// on a free port and waits until it is ready.
pub async fn start_bot(
    dir: &Path,
    graph: &str,
    default_flow: &str,
    flows: &Path,
) -> anyhow::Result<Started> {
    start_bot_with(dir, graph, default_flow, flows, &Extras::default()).await
}

/// [`start_bot`] with `extras` in the config; the log is `dir/bot.log`.
pub async fn start_bot_with(
    dir: &Path,
    graph: &str,
    default_flow: &str,
    flows: &Path,
    extras: &Extras<'_>,
) -> anyhow::Result<Started> {
    let port = free_port()?;
    let config = write_config(
        dir,
        &BotConfig {
            port,
            graph,
            per_second: PER_SECOND,
            default_flow,
            flows,
            extras,
        },
    )?;
    let mut bot = Server::bot(&config, port, &dir.join("bot.log"))?;
    let ready_after = bot.ready("/readyz", Duration::from_secs(30)).await?;
    Ok(Started {
        bot,
        config,
        port,
        ready_after,
    })
}

/// The shipped flows.
pub fn shipped_flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows/whatsapp")
}

/// A copy of the shipped flows plus `extra` (file name, YAML) in `dir/flows`.
pub fn flows_with(dir: &Path, extra: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows)?;
    for entry in std::fs::read_dir(shipped_flows())? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, flows.join(name))?;
        }
    }
    for (name, yaml) in extra {
        std::fs::write(flows.join(name), yaml)?;
    }
    Ok(flows)
}

/// A copy of the shipped flows in `dir/flows` with `edits` made: in file `.0`, the text `.1`
/// replaced by `.2` (it must be there).
pub fn flows_edited(dir: &Path, edits: &[(&str, &str, &str)]) -> anyhow::Result<PathBuf> {
    let flows = flows_with(dir, &[])?;
    for (name, from, to) in edits {
        let file = flows.join(name);
        let text = std::fs::read_to_string(&file)?;
        if !text.contains(from) {
            anyhow::bail!("{name} has no `{from}` to replace");
        }
        std::fs::write(&file, text.replace(from, to))?;
    }
    Ok(flows)
}

/// A number of its own for sender `i` of a scenario (`series` keeps scenarios apart).
pub fn sender(series: u32, i: u32) -> String {
    format!("1{series:03}{i:07}")
}

/// One signed notification: its body and its `X-Hub-Signature-256` header.
pub struct Signed {
    /// The compact JSON body.
    pub body: Vec<u8>,
    /// `sha256=<hex>`.
    pub signature: String,
}

/// A notification carrying one text message from `from`, as Meta sends it.
pub fn text_notification(from: &str, wamid: &str, text: &str) -> Signed {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": format!("Load {from}") }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": timestamp.to_string(),
                           "type": "text", "text": { "body": text } }] } }] }]
    });
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), &body);
    Signed { body, signature }
}

/// What the Cloud API says about one accepted send: its wamid, recipient, and the
/// `biz_opaque_callback_data` the send carried (the bot's outbox id).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The wamid the send was answered with.
    pub wamid: String,
    /// The recipient's digits.
    pub to: String,
    /// The send's `biz_opaque_callback_data`, echoed back.
    pub callback: Option<String>,
}

/// A notification carrying a `sent` status for each of `sent`, as Meta batches them.
pub fn status_notification(sent: &[Sent]) -> Signed {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let statuses: Vec<serde_json::Value> = sent
        .iter()
        .map(|s| {
            let mut status = json!({ "id": s.wamid, "status": "sent", "timestamp": timestamp,
                "recipient_id": s.to,
                "conversation": { "id": "load-conversation", "origin": { "type": "utility" } },
                "pricing": { "billable": true, "pricing_model": "CBP", "category": "utility" } });
            if let Some(callback) = &s.callback {
                status["biz_opaque_callback_data"] = json!(callback);
            }
            status
        })
        .collect();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID },
            "statuses": statuses } }] }]
    });
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), &body);
    Signed { body, signature }
}
