//! The `notifier` agent: tells a person something on Slack, WhatsApp or email (`notify`). The person
//! (`user`: a name, an email or a number) is looked up in `platforms.whatsapp.people`; a number is
//! enough for WhatsApp, an address for email.
//!
//! - Slack: `{"text": …}` POSTed to the person's `slack_webhook`, else to
//!   `notifier.slack.webhook_url`, mentioning `<@slack_id>` when known; 429 (after its `Retry-After`)
//!   and 5xx are retried twice. Without `user`, the default webhook gets the text (a team channel);
//!   a `user` the directory does not know is an error, not a post nobody is mentioned in.
//! - WhatsApp: a text queued like the `whatsapp` agent's `send_text` (lane Alert, rate limiter).
//! - Email: SMTP with `notifier.email` (lettre; STARTTLS, TLS or plain).
//!
//! Each requested channel is tried; the step fails only when all of them failed. Webhook URLs and
//! SMTP passwords never appear in errors or logs. In a dry run (`aofctl simulate`) Slack posts and
//! emails are recorded instead of sent (WhatsApp goes to the sandbox outbox as usual).

use super::dry_run::mask_url;
use super::whatsapp;
use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use crate::config::{EmailConfig, Person, WhatsAppConfig};
use aof_actors::WaId;
use futures_util::future::join_all;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use std::time::Duration;

/// Notifies people: `notify`.
pub static AGENT: Agent = Agent {
    name: "notifier",
    actions: crate::actions![
        "notify" => notify,
    ],
};

/// The channels `channel` / `channels` may name.
const CHANNELS: [&str; 3] = ["slack", "whatsapp", "email"];

/// Retries of a Slack post after a 429 or a 5xx (three attempts in all).
const SLACK_RETRIES: u32 = 2;

/// First wait before retrying a Slack 5xx; doubled on the next.
const SLACK_BACKOFF: Duration = Duration::from_millis(250);

/// Longest `Retry-After` honoured: a step waiting longer would hold up the whole flow.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Time a Slack post or an SMTP conversation may take.
const CHANNEL_TIMEOUT: Duration = Duration::from_secs(20);

/// What one `notify` call asks for, read from its input.
struct Request<'a> {
    channels: Vec<&'static str>,
    user: Option<&'a str>,
    message: &'a str,
    address: Option<&'a str>,
    subject: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn parse(input: &'a Value) -> Result<Request<'a>, AgentError> {
        let optional = |field: &str| -> Result<Option<&'a str>, AgentError> {
            match input.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim())),
                Some(other) => Err(AgentError::input(
                    field,
                    format!("expected text, got {other}"),
                )),
            }
        };
        Ok(Request {
            channels: channels(input)?,
            user: optional("user")?,
            message: str_field(input, "message")?.trim(),
            address: optional("address")?,
            subject: optional("subject")?,
        })
    }
}

/// `channel: slack`, or `channels: [slack, whatsapp]` (a list, a JSON list in text, or comma-separated).
fn channels(input: &Value) -> Result<Vec<&'static str>, AgentError> {
    let (field, names): (&str, Vec<String>) = match (input.get("channels"), input.get("channel")) {
        (Some(Value::Array(items)), _) => ("channels", items.iter().map(text_of).collect()),
        (Some(Value::String(s)), _) => (
            "channels",
            match serde_json::from_str::<Vec<Value>>(s.trim()) {
                Ok(items) => items.iter().map(text_of).collect(),
                Err(_) => s.split(',').map(str::to_owned).collect(),
            },
        ),
        (Some(other), _) if !other.is_null() => {
            return Err(AgentError::input(
                "channels",
                "expected a list of channels (slack, whatsapp, email)",
            ))
        }
        (_, Some(Value::String(s))) => ("channel", vec![s.clone()]),
        _ => {
            return Err(AgentError::input(
                "channel",
                "is missing; write `channel: slack` or `channels: [slack, whatsapp]`",
            ))
        }
    };
    let mut out: Vec<&'static str> = Vec::new();
    for name in names {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let known = CHANNELS.iter().find(|c| **c == name).ok_or_else(|| {
            AgentError::input(
                field,
                format!("unknown channel `{name}` (known: slack, whatsapp, email)"),
            )
        })?;
        if !out.contains(known) {
            out.push(known);
        }
    }
    if out.is_empty() {
        return Err(AgentError::input(field, "names no channel"));
    }
    Ok(out)
}

async fn notify(input: &Value, run: &RunContext) -> AgentResult {
    let request = Request::parse(input)?;
    let whatsapp = &run.services.config.platforms.whatsapp;
    let person = request.user.and_then(|u| whatsapp.person(u));
    let attempts = request.channels.iter().map(|channel| {
        let request = &request;
        async move {
            let outcome = match *channel {
                "slack" => slack(request, person, whatsapp, run).await,
                "whatsapp" => whatsapp_text(request, person, input, run).await,
                _ => email(request, person, whatsapp, run).await,
            };
            (*channel, outcome)
        }
    });
    let outcomes = join_all(attempts).await;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(channel, o)| o.as_ref().err().map(|e| format!("{channel}: {e}")))
        .collect();
    let results: Vec<Value> = outcomes
        .iter()
        .map(|(channel, o)| match o {
            Ok(detail) => json!({ "channel": channel, "ok": true, "detail": detail }),
            Err(e) => json!({ "channel": channel, "ok": false, "detail": e }),
        })
        .collect();
    let delivered = outcomes.len() - failed.len();
    if delivered == 0 {
        return Err(AgentError::Failed(format!(
            "notify failed on every channel: {}",
            failed.join("; ")
        )));
    }
    if !failed.is_empty() {
        tracing::warn!(failed = %failed.join("; "), delivered, "notified on some channels only");
    } else {
        tracing::info!(channels = %request.channels.join(","), "notified");
    }
    let mut output = json!({ "results": results, "delivered": delivered, "failed": failed.len() });
    if run.services.dry_run.is_some() {
        output["simulated"] = json!(true);
    }
    Ok(output)
}

/// Who `user` names, for error texts: the directory's name, or `user` as written.
fn who(request: &Request<'_>, person: Option<&Person>) -> String {
    match (person, request.user) {
        (Some(p), _) => p.name.clone(),
        (None, Some(u)) => WaId::parse(u).map_or_else(|| u.to_owned(), |wa| wa.masked()),
        (None, None) => "nobody".to_owned(),
    }
}

/// The error when `user` is given but the directory does not know them.
fn unknown(request: &Request<'_>) -> Option<String> {
    request.user.map(|u| {
        format!("`{u}` is not in platforms.whatsapp.people (looked up by name, email and phone)")
    })
}

async fn slack(
    request: &Request<'_>,
    person: Option<&Person>,
    whatsapp: &WhatsAppConfig,
    run: &RunContext,
) -> Result<String, String> {
    if person.is_none() {
        // A person was named but is unknown: posting to the team channel would page nobody.
        if let Some(error) = unknown(request) {
            return Err(error);
        }
    }
    let own = person
        .and_then(|p| p.slack_webhook.as_ref())
        .filter(|s| !s.is_empty());
    let default = whatsapp
        .notifier
        .slack
        .as_ref()
        .map(|s| &s.webhook_url)
        .filter(|s| !s.is_empty());
    let (url, which) = match (own, default) {
        (Some(url), _) => (url, "their Slack webhook"),
        (None, Some(url)) => (url, "the default Slack webhook"),
        (None, None) => {
            return Err(format!(
                "Slack is not configured for {}: set people[].slack_webhook or platforms.whatsapp.notifier.slack.webhook_url",
                who(request, person)
            ))
        }
    };
    let text = match person.and_then(|p| p.slack_id.as_deref()) {
        Some(id) if !id.is_empty() => format!("<@{id}> {}", request.message),
        _ => request.message.to_owned(),
    };
    let body = json!({ "text": text });
    if let Some(dry) = &run.services.dry_run {
        let target = format!("POST {} ({which})", mask_url(url.expose()));
        let detail = json!({ "to": who(request, person), "body": body });
        dry.record(run, "slack", target, detail);
        return Ok(format!("posted to {which} (simulated)"));
    }
    post_to_slack(url.expose(), &body).await?;
    Ok(format!("posted to {which}"))
}

/// POSTs to a Slack incoming webhook, retrying 429 and 5xx; the error never names the URL.
async fn post_to_slack(url: &str, body: &Value) -> Result<(), String> {
    let client = super::http_client();
    let mut backoff = SLACK_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut response = client
            .post(url)
            .timeout(CHANNEL_TIMEOUT)
            .send_json(body)
            .await
            .map_err(|e| match e {
                awc::error::SendRequestError::Timeout => {
                    format!("Slack did not answer within {}s", CHANNEL_TIMEOUT.as_secs())
                }
                other => format!("Slack could not be reached: {other}"),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.body().limit(4096).await.unwrap_or_default();
        let said = String::from_utf8_lossy(&bytes);
        let said = said.trim();
        let error = format!(
            "Slack answered HTTP {}{}",
            status.as_u16(),
            if said.is_empty() {
                String::new()
            } else {
                format!(": {}", excerpt(said))
            }
        );
        let retryable = status.as_u16() == 429 || status.is_server_error();
        if !retryable || attempt > SLACK_RETRIES {
            return Err(if retryable {
                format!("{error} (after {attempt} attempts)")
            } else {
                error
            });
        }
        let wait = if status.as_u16() == 429 {
            let asked = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(backoff, Duration::from_secs);
            if asked > MAX_RETRY_AFTER {
                return Err(format!(
                    "{error}; it asked to wait {}s, longer than the {}s a step waits",
                    asked.as_secs(),
                    MAX_RETRY_AFTER.as_secs()
                ));
            }
            asked
        } else {
            backoff
        };
        tracing::warn!(
            status = status.as_u16(),
            attempt,
            wait_ms = wait.as_millis() as u64,
            "Slack post failed; retrying"
        );
        actix_web::rt::time::sleep(wait).await;
        backoff *= 2;
    }
}

/// At most 300 characters of what a server said, for an error text.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

async fn whatsapp_text(
    request: &Request<'_>,
    person: Option<&Person>,
    input: &Value,
    run: &RunContext,
) -> Result<String, String> {
    let to = match person {
        Some(p) => p
            .phone
            .as_deref()
            .and_then(WaId::parse)
            .ok_or_else(|| format!("{} has no phone in platforms.whatsapp.people", p.name))?,
        None => match request.user {
            Some(u) => WaId::parse(u)
                .ok_or_else(|| unknown(request).expect("`user` is set in this branch"))?,
            None => return Err("`user` is missing: WhatsApp needs a person or a number".into()),
        },
    };
    let mut send = json!({ "to": to.e164(), "text": request.message });
    if let Some(about) = input.get("about").filter(|v| !v.is_null()) {
        send["about"] = about.clone();
    }
    let queued = whatsapp::AGENT
        .call("send_text", send, run)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "queued to {} (job {})",
        to.masked(),
        text_of(&queued["job_id"])
    ))
}

async fn email(
    request: &Request<'_>,
    person: Option<&Person>,
    whatsapp: &WhatsAppConfig,
    run: &RunContext,
) -> Result<String, String> {
    let config = whatsapp.notifier.email.as_ref().ok_or_else(|| {
        "email is not configured: set platforms.whatsapp.notifier.email (smtp_host, from)"
            .to_owned()
    })?;
    let address = request
        .address
        .or_else(|| person.and_then(|p| p.email.as_deref()))
        .or_else(|| request.user.filter(|u| u.contains('@')))
        .ok_or_else(|| match (person, unknown(request)) {
            (Some(p), _) => format!(
                "{} has no email in platforms.whatsapp.people; or pass `address`",
                p.name
            ),
            (None, Some(error)) => error,
            (None, None) => "`user` and `address` are missing: email needs an address".to_owned(),
        })?;
    let subject = request
        .subject
        .map(str::to_owned)
        .unwrap_or_else(|| format!("[aof] {}", run.flow));
    let message = Message::builder()
        .from(config.from.parse().map_err(|e| {
            format!(
                "platforms.whatsapp.notifier.email.from `{}` is not an address: {e}",
                config.from
            )
        })?)
        .to(address
            .parse()
            .map_err(|e| format!("`{address}` is not an email address: {e}"))?)
        .subject(subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(request.message.to_owned())
        .map_err(|e| format!("the email could not be built: {e}"))?;
    let transport = smtp_transport(config)?;
    if let Some(dry) = &run.services.dry_run {
        let target = format!(
            "SMTP {}:{} ({})",
            config.smtp_host, config.smtp_port, config.security
        );
        let detail = json!({ "from": config.from, "to": address, "subject": subject, "body": request.message });
        dry.record(run, "email", target, detail);
        return Ok(format!(
            "sent to {address} via {}:{} (simulated)",
            config.smtp_host, config.smtp_port
        ));
    }
    let response = transport
        .send(message)
        .await
        .map_err(|e| format!("SMTP {}:{}: {e}", config.smtp_host, config.smtp_port))?;
    let accepted = response.message().collect::<Vec<_>>().join(" ");
    Ok(format!(
        "sent to {address} via {}:{}{}",
        config.smtp_host,
        config.smtp_port,
        if accepted.is_empty() {
            String::new()
        } else {
            format!(" ({accepted})")
        }
    ))
}

/// The SMTP client `notifier.email` describes (security checked at config load).
fn smtp_transport(config: &EmailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = config.smtp_host.as_str();
    let builder = match config.security.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| format!("SMTP host `{host}`: {e}"))?,
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| format!("SMTP host `{host}`: {e}"))?,
        other => {
            return Err(format!(
                "platforms.whatsapp.notifier.email.security `{other}` is not one of starttls, tls, none"
            ))
        }
    };
    let mut builder = builder
        .port(config.smtp_port)
        .timeout(Some(CHANNEL_TIMEOUT));
    if let Some(user) = config.username.as_deref().filter(|u| !u.is_empty()) {
        let password = config
            .password
            .as_ref()
            .map(|p| p.expose())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_come_as_one_a_list_or_text() {
        assert_eq!(channels(&json!({ "channel": "Slack" })).unwrap(), ["slack"]);
        assert_eq!(
            channels(&json!({ "channels": ["slack", "whatsapp", "slack"] })).unwrap(),
            ["slack", "whatsapp"]
        );
        assert_eq!(
            channels(&json!({ "channels": "[\"email\"]" })).unwrap(),
            ["email"]
        );
        assert_eq!(
            channels(&json!({ "channels": "whatsapp, email" })).unwrap(),
            ["whatsapp", "email"]
        );
        assert!(channels(&json!({ "channel": "pager" })).is_err());
        assert!(channels(&json!({})).is_err());
    }
}
