//! The `whatsapp` agent: every message a flow sends. Messages go through the recipient's session
//! (so they land in that conversation's context) and the rate limiter; the step returns once the
//! message is safely queued, with its job id, or fails with the reason (template quota, bad input).

use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use aof_actors::model::{Lane, OutboundBody, OutboundMessage, ReplyButton};
use aof_actors::ports::EnqueueError;
use aof_actors::{JobId, WaId};
use serde_json::{json, Value};

/// Sends WhatsApp messages: `reply`, `send_text`, `send_template`, `send_to_group`, `send_interactive`.
pub static AGENT: Agent = Agent {
    name: "whatsapp",
    actions: crate::actions![
        "reply" => reply,
        "send_text" => send_text,
        "send_template" => send_template,
        "send_interactive" => send_interactive,
        "send_to_group" => send_to_group,
    ],
};

/// Longest free-form text Meta accepts.
const MAX_TEXT: usize = 4096;

/// `reply`: text or a template to the person who started the run.
async fn reply(input: &Value, run: &RunContext) -> AgentResult {
    let to = run.user.as_ref().map(|p| p.wa.clone()).ok_or_else(|| {
        AgentError::Failed("reply needs a person to answer; this run was started by a webhook or a timer (use send_text with `to`)".into())
    })?;
    let mut body = body_from(input, run)?;
    if let OutboundBody::Text { body: text } = &mut body {
        for note in run.notes.borrow_mut().drain(..) {
            text.push_str("\n\n");
            text.push_str(&note);
        }
    }
    send(run, to, body, Lane::Reply, input).await
}

/// `send_text`: text to `to`.
async fn send_text(input: &Value, run: &RunContext) -> AgentResult {
    let to = recipient(input, "to")?;
    let text = str_field(input, "text")?;
    send(run, to, text_body(text), Lane::Alert, input).await
}

/// `send_template`: a template to `to`.
async fn send_template(input: &Value, run: &RunContext) -> AgentResult {
    let to = recipient(input, "to")?;
    let body = template_body(input, run)?;
    send(run, to, body, Lane::Alert, input).await
}

/// `send_interactive`: reply buttons, to `to` or the person who started the run.
async fn send_interactive(input: &Value, run: &RunContext) -> AgentResult {
    let to = match input.get("to") {
        Some(_) => recipient(input, "to")?,
        None => run
            .user
            .as_ref()
            .map(|p| p.wa.clone())
            .ok_or_else(|| AgentError::input("to", "is missing"))?,
    };
    let body = interactive_body(input)?;
    send(run, to, body, Lane::Reply, input).await
}

fn recipient(input: &Value, field: &str) -> Result<WaId, AgentError> {
    let raw = str_field(input, field)?;
    WaId::parse(raw)
        .ok_or_else(|| AgentError::input(field, format!("`{raw}` is not a phone number")))
}

fn text_body(text: &str) -> OutboundBody {
    let mut body: String = text.trim().to_owned();
    if body.len() > MAX_TEXT {
        let mut cut = MAX_TEXT - 1;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push('…');
    }
    OutboundBody::Text { body }
}

/// Meta refuses template parameters with new lines, tabs or long runs of spaces.
fn template_param(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A reply's body: `text`, or `template` + `parameters`.
fn body_from(input: &Value, run: &RunContext) -> Result<OutboundBody, AgentError> {
    if input.get("template").is_some() {
        return template_body(input, run);
    }
    Ok(text_body(str_field(input, "text")?))
}

fn template_body(input: &Value, run: &RunContext) -> Result<OutboundBody, AgentError> {
    let name = str_field(input, "template")?;
    let whatsapp = &run.services.config.platforms.whatsapp;
    let def = whatsapp.templates.get(name).ok_or_else(|| {
        AgentError::input(
            "template",
            format!("no template `{name}` in platforms.whatsapp.templates"),
        )
    })?;
    let parameters: Vec<String> = match input.get("parameters") {
        Some(Value::Array(items)) => items.iter().map(|v| template_param(&text_of(v))).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(AgentError::input("parameters", "expected a list")),
    };
    if parameters.len() != def.placeholders() {
        return Err(AgentError::input(
            "parameters",
            format!(
                "template `{name}` takes {} parameters, got {}",
                def.placeholders(),
                parameters.len()
            ),
        ));
    }
    let language = input
        .get("language")
        .map(text_of)
        .unwrap_or_else(|| def.language.clone());
    Ok(OutboundBody::Template {
        name: name.to_owned(),
        language,
        parameters,
    })
}

fn interactive_body(input: &Value) -> Result<OutboundBody, AgentError> {
    let body = input
        .get("text")
        .or_else(|| input.get("body"))
        .map(text_of)
        .unwrap_or_default();
    if body.trim().is_empty() {
        return Err(AgentError::input("text", "is missing"));
    }
    let Some(Value::Array(items)) = input.get("buttons") else {
        return Err(AgentError::input(
            "buttons",
            "expected a list of 1 to 3 buttons",
        ));
    };
    if items.is_empty() || items.len() > 3 {
        return Err(AgentError::input(
            "buttons",
            format!("WhatsApp allows 1 to 3 reply buttons, got {}", items.len()),
        ));
    }
    let buttons = items
        .iter()
        .map(|item| {
            let (id, title) = match item {
                Value::Object(b) => {
                    let title = b.get("title").map(text_of).unwrap_or_default();
                    (
                        b.get("id").map(text_of).unwrap_or_else(|| title.clone()),
                        title,
                    )
                }
                other => (text_of(other), text_of(other)),
            };
            if title.is_empty() || title.chars().count() > 20 {
                return Err(AgentError::input(
                    "buttons",
                    format!("button title `{title}` must be 1 to 20 characters"),
                ));
            }
            if id.len() > 256 {
                return Err(AgentError::input(
                    "buttons",
                    "a button id is longer than 256 characters",
                ));
            }
            Ok(ReplyButton { id, title })
        })
        .collect::<Result<_, _>>()?;
    Ok(OutboundBody::Interactive {
        body: body.trim().to_owned(),
        buttons,
    })
}

/// What a person reads: text as is, a template rendered locally, buttons listed.
fn preview(body: &OutboundBody, run: &RunContext) -> String {
    match body {
        OutboundBody::Text { body } => body.clone(),
        OutboundBody::Template {
            name, parameters, ..
        } => run
            .services
            .config
            .platforms
            .whatsapp
            .templates
            .get(name)
            .and_then(|t| t.render(parameters).ok())
            .unwrap_or_else(|| format!("[template {name}] {}", parameters.join(" | "))),
        OutboundBody::Interactive { body, buttons } => {
            let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
            format!("{body}\n[{}]", titles.join("] ["))
        }
    }
}

/// The template sent instead of free-form text when the 24-hour window has closed.
fn fallback(body: &OutboundBody, run: &RunContext) -> Option<OutboundBody> {
    let OutboundBody::Text { body: text } = body else {
        return None;
    };
    let fallback = run.services.config.platforms.whatsapp.fallback()?;
    fallback.body(vec![template_param(&run.flow), template_param(text)])
}

async fn send(
    run: &RunContext,
    to: WaId,
    body: OutboundBody,
    lane: Lane,
    input: &Value,
) -> AgentResult {
    if !matches!(body, OutboundBody::Text { .. }) {
        run.asked.borrow_mut().push(to.clone());
    }
    let about = input
        .get("about")
        .cloned()
        .filter(|v| !v.is_null())
        .or_else(|| run.about.borrow().clone());
    let group = (lane == Lane::Broadcast)
        .then(|| input.get("group_id").and_then(Value::as_str))
        .flatten()
        .map(str::to_owned);
    let (shown, fallback) = (preview(&body, run), fallback(&body, run));
    let message = OutboundMessage::new(to.clone(), body, shown, lane)
        .fallback(fallback)
        .about(about)
        .flow(&run.flow)
        .group(group);
    let alert_id = (lane == Lane::Alert)
        .then(|| {
            message
                .about
                .as_ref()?
                .get("alert_id")?
                .as_str()
                .map(str::to_owned)
        })
        .flatten();
    if let Some(alert_id) = &alert_id {
        if let Some(held) = super::silence::held(run, alert_id, &to).await? {
            return Ok(held);
        }
    }
    let job = run.send(message).await.map_err(|e| match e {
        EnqueueError::TemplateQuotaExceeded { limit, .. } => AgentError::Limit {
            detail: e.to_string(),
            told: format!(
                "⚠️ I could not send that: today's quota of {limit} WhatsApp templates is used \
                     up (it starts again at 00:00 UTC). The team that runs this bot can raise it."
            ),
        },
        other => AgentError::Failed(other.to_string()),
    })?;
    // Whoever gets a message about an alert was paged about it (escalations included), so their
    // ACK, INFO and RESOLVE find it.
    if let Some(alert_id) = alert_id {
        if let Err(e) = run.services.store.add_paged(&alert_id, &to).await {
            tracing::warn!(alert = %alert_id, error = %e, "could not record who was paged");
        }
        check_delivery_later(run, &alert_id, &to, &job).await;
    }
    Ok(json!({ "job_id": job.0, "to": to.e164(), "queued": true }))
}

/// The flow that checks a page got through and pages the next person when it did not.
pub const DELIVERY_CHECK_FLOW: &str = "page-delivery-check-flow";

/// The timer of the delivery check of page `job`: known from the job alone, so that a `failed`
/// status can fire it at once.
pub fn delivery_timer_id(job: &JobId) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("delivery:{}", job.0).as_bytes());
    format!("tmr_{}", hex::encode(&digest[..12]))
}

/// Schedules the check of page `job` after `oncall.page_delivery_timeout_secs`, when that is not
/// 0 and the check's flow is loaded. Scheduling it again (a step run again) replaces it.
async fn check_delivery_later(run: &RunContext, alert_id: &str, to: &WaId, job: &JobId) {
    let after = run
        .services
        .config
        .platforms
        .whatsapp
        .oncall
        .page_delivery_timeout;
    if after.is_zero() || !run.services.flows.has_flow(DELIVERY_CHECK_FLOW) {
        return;
    }
    let input = json!({ "alert_id": alert_id, "to": to.e164(), "job_id": job.0 });
    let timer = Some(delivery_timer_id(job));
    let flow = DELIVERY_CHECK_FLOW.to_owned();
    if let Err(e) = run
        .services
        .handle
        .schedule(timer, flow, input, after)
        .await
    {
        tracing::error!(alert = %alert_id, error = %e, "could not store a page's delivery check; an undelivered page will not be passed on");
    }
}

/// `send_to_group`. Without a group (the tutorial's flows read `config.oncall.team_group`, which
/// its config never sets) the team message is skipped with a warning, so that the steps after it
/// (the engineer's confirmation) still run.
async fn send_to_group(input: &Value, run: &RunContext) -> AgentResult {
    let group = match input.get("group_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => {
            tracing::warn!(
                flow = %run.flow,
                "send_to_group has no group_id, so the group message is skipped; set \
                 platforms.whatsapp.oncall.team_group (and the group under platforms.whatsapp.groups)"
            );
            return Ok(json!({ "skipped": true, "reason": "no group_id", "sent": 0 }));
        }
    };
    let members = run.services.config.group_members(group).ok_or_else(|| {
        AgentError::input(
            "group_id",
            format!("no group `{group}`; define it under platforms.whatsapp.groups"),
        )
    })?;
    let body = body_from(input, run)?;
    let mut jobs = Vec::with_capacity(members.len());
    for member in members {
        let queued = send(run, member, body.clone(), Lane::Broadcast, input).await?;
        jobs.push(queued["job_id"].clone());
    }
    Ok(json!({ "group": group, "sent": jobs.len(), "jobs": jobs }))
}
