//! War rooms. WhatsApp's Cloud API has no group chats for a bot, so the bot is the room: an open
//! incident has members (whoever was paged, the team group, anyone who sends `JOIN INC-0001`); what
//! a member writes that is not a command is relayed to every other member, named and tagged with
//! the incident, in the room lane (above broadcasts). `LEAVE` leaves, `WHO` lists the members and who
//! is on call, and resolving the incident closes the room with a summary to each member.
//!
//! Membership lives in the store and in the route table (`flow::Routes`, which turns a member's
//! chatter into relays); this module changes both.

use crate::agents::{text_of, Agent, AgentError, AgentResult, RunContext, Services};
use crate::store::AlertState;
use aof_actors::model::{Lane, OutboundMessage};
use aof_actors::WaId;
use serde_json::{json, Value};

/// Joins are announced to the room only up to this many members: announcing every join to everyone
/// costs n²/2 messages (19,900 for a room of 200, minutes of the send rate ahead of the updates that
/// matter). Above it, `WHO` lists the members.
const ANNOUNCE_JOINS_UP_TO: usize = 20;

fn failed(e: impl std::fmt::Display) -> AgentError {
    AgentError::Failed(e.to_string())
}

/// The name people know `who` by: the directory, the rota, the WhatsApp profile, the number.
fn display_name(services: &Services, who: &WaId, profile: Option<&str>) -> String {
    services
        .config
        .platforms
        .whatsapp
        .name_of(who)
        .or_else(|| profile.filter(|p| !p.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| who.e164())
}

async fn send(
    services: &Services,
    to: WaId,
    text: String,
    incident_id: &str,
) -> Result<(), AgentError> {
    let message = OutboundMessage::text(to, text, Lane::Room)
        .about(Some(json!({ "incident_id": incident_id })))
        .flow("war-room");
    services
        .handle
        .send(message)
        .await
        .map(|_| ())
        .map_err(failed)
}

/// Sends `text` to every member but `except`, in join order.
async fn tell_room(
    services: &Services,
    incident_id: &str,
    except: Option<&WaId>,
    text: &str,
) -> Result<usize, AgentError> {
    let members = services
        .store
        .room_members(incident_id)
        .await
        .map_err(failed)?;
    let mut sent = 0;
    for member in members.into_iter().filter(|m| Some(&m.wa) != except) {
        send(services, member.wa, text.to_owned(), incident_id).await?;
        sent += 1;
    }
    Ok(sent)
}

/// Adds people to an incident's room (opening it), and tells each newcomer how the room works.
pub async fn open(
    services: &Services,
    incident_id: &str,
    alert_id: Option<&str>,
    people: Vec<WaId>,
) -> AgentResult {
    let incident = services
        .store
        .get_incident(incident_id)
        .await
        .map_err(failed)?;
    let incident = incident.ok_or_else(|| failed(format!("no incident {incident_id}")))?;
    services
        .store
        .open_room(incident_id, alert_id)
        .await
        .map_err(failed)?;
    let mut joined = Vec::new();
    for who in people {
        let name = display_name(services, &who, None);
        if services
            .store
            .join_room(incident_id, &who, Some(&name))
            .await
            .map_err(failed)?
        {
            services
                .routes
                .set_room(who.clone(), Some(incident_id.to_owned()));
            let text = format!(
                "🚨 *War room {incident_id}*: {}\n\nWhat you write here now goes to everyone in the room.\nWHO - members • LEAVE - leave • RESOLVE - close it",
                incident.title
            );
            send(services, who.clone(), text, incident_id).await?;
            joined.push(who.e164());
        }
    }
    Ok(json!({ "incident_id": incident_id, "joined": joined }))
}

/// Closes an incident's room: the alert that paged for it is resolved too, and each former member
/// gets the summary and leaves.
pub async fn close(
    services: &Services,
    incident_id: &str,
    resolved_by: Option<&str>,
) -> AgentResult {
    let closed = services
        .store
        .close_room(incident_id)
        .await
        .map_err(failed)?;
    let Some((room, members)) = closed else {
        return Ok(json!({ "incident_id": incident_id, "closed": false }));
    };
    let incident = services
        .store
        .get_incident(incident_id)
        .await
        .map_err(failed)?;
    let title = incident.map(|i| i.title).unwrap_or_default();
    let mut pagerduty_incident_id = None;
    if let Some(alert_id) = &room.alert_id {
        if let Ok(Some(alert)) = services.store.get_alert(alert_id).await {
            pagerduty_incident_id = alert.pagerduty_incident_id.clone();
        }
        if let Err(e) = services
            .store
            .transition(alert_id, AlertState::Resolved, resolved_by)
            .await
        {
            tracing::warn!(alert = %alert_id, error = %e, "could not resolve the room's alert");
        }
    }
    let minutes = (room.closed_ms.unwrap_or(room.opened_ms) - room.opened_ms).max(0) / 60_000;
    let acknowledged = acknowledged_by(services, room.alert_id.as_deref()).await;
    let summary = format!(
        "✅ *{incident_id} resolved*: {title}\n\nDuration: {}h {:02}m\nAcknowledged by: {acknowledged}\nUpdates in the room: {}\n\nThe war room is closed.",
        minutes / 60,
        minutes % 60,
        room.updates
    );
    for member in &members {
        services.routes.set_room(member.wa.clone(), None);
        send(services, member.wa.clone(), summary.clone(), incident_id).await?;
    }
    Ok(json!({
        "incident_id": incident_id, "closed": true, "members": members.len(), "updates": room.updates,
        "title": format!("{incident_id}: {title}"), "alert_id": room.alert_id,
        "pagerduty_incident_id": pagerduty_incident_id,
    }))
}

/// Who acknowledged the alert that paged for the room, by name.
async fn acknowledged_by(services: &Services, alert_id: Option<&str>) -> String {
    let Some(alert_id) = alert_id else {
        return "nobody".into();
    };
    match services.store.get_alert(alert_id).await {
        Ok(Some(alert)) => alert
            .acknowledged_by
            .as_deref()
            .and_then(WaId::parse)
            .map(|wa| display_name(services, &wa, None))
            .unwrap_or_else(|| "nobody".into()),
        _ => "nobody".into(),
    }
}

/// `JOIN <id>`, `LEAVE`, `WHO`, typed by the person of `ctx`.
pub async fn command(ctx: &RunContext, words: &[String]) -> Result<String, AgentError> {
    let services = &ctx.services;
    let Some(person) = &ctx.user else {
        return Err(failed("a room command needs a person"));
    };
    let verb = words.first().map(|w| w.to_uppercase()).unwrap_or_default();
    match verb.as_str() {
        "JOIN" => {
            let id = words
                .get(1)
                .map(|w| w.trim().to_uppercase())
                .unwrap_or_default();
            let incident = services.store.get_incident(&id).await.map_err(failed)?;
            match incident {
                None => Ok(format!(
                    "❓ There is no incident {id}. Send STATUS to see the open ones."
                )),
                Some(i) if i.status != "open" => Ok(format!("ℹ️ {id} is already resolved.")),
                Some(i) => {
                    services.store.open_room(&id, None).await.map_err(failed)?;
                    let name = display_name(services, &person.wa, person.name.as_deref());
                    let joined = services
                        .store
                        .join_room(&id, &person.wa, Some(&name))
                        .await
                        .map_err(failed)?;
                    services
                        .routes
                        .set_room(person.wa.clone(), Some(id.clone()));
                    if !joined {
                        return Ok(format!("ℹ️ You are already in the war room of {id}: {}\nWhat you write goes to the room; WHO to see who is in it, LEAVE to leave.", i.title));
                    }
                    let count = services
                        .store
                        .room_members(&id)
                        .await
                        .map_err(failed)?
                        .len();
                    if count <= ANNOUNCE_JOINS_UP_TO {
                        tell_room(
                            services,
                            &id,
                            Some(&person.wa),
                            &format!("➕ {name} joined {id}"),
                        )
                        .await?;
                    }
                    Ok(format!("✅ You joined the war room of {id}: {}\n{count} people are in it. What you write now goes to the room; LEAVE to leave.", i.title))
                }
            }
        }
        "LEAVE" => match services
            .store
            .leave_room(&person.wa)
            .await
            .map_err(failed)?
        {
            None => Ok("ℹ️ You are not in a war room.".into()),
            Some(id) => {
                services.routes.set_room(person.wa.clone(), None);
                let name = display_name(services, &person.wa, person.name.as_deref());
                tell_room(services, &id, None, &format!("➖ {name} left {id}")).await?;
                Ok(format!("👋 You left the war room of {id}."))
            }
        },
        _ => who(ctx).await,
    }
}

async fn who(ctx: &RunContext) -> Result<String, AgentError> {
    let services = &ctx.services;
    let Some(person) = &ctx.user else {
        return Err(failed("WHO needs a person"));
    };
    let Some(id) = services.store.room_of(&person.wa).await.map_err(failed)? else {
        return Ok("ℹ️ You are not in a war room. JOIN <incident id> to join one.".into());
    };
    let members = services.store.room_members(&id).await.map_err(failed)?;
    let names: Vec<String> = members
        .iter()
        .map(|m| format!("• {}", m.name.clone().unwrap_or_else(|| m.wa.e164())))
        .collect();
    let oncall = match services.registry.get("oncall-manager") {
        Some(agent) => agent
            .call("get_current", json!({}), ctx)
            .await
            .ok()
            .and_then(|o| o.get("name").map(text_of))
            .unwrap_or_else(|| "unknown".into()),
        None => "unknown".into(),
    };
    Ok(format!(
        "👥 *{id}*: {} members\n{}\n\nOn call now: {oncall}",
        members.len(),
        names.join("\n")
    ))
}

/// Relays what a member wrote to every other member.
pub async fn relay(ctx: &RunContext, incident_id: &str, text: &str) -> Result<(), AgentError> {
    let services = &ctx.services;
    let Some(person) = &ctx.user else {
        return Err(failed("a relay needs a person"));
    };
    let name = display_name(services, &person.wa, person.name.as_deref());
    let sent = tell_room(
        services,
        incident_id,
        Some(&person.wa),
        &format!("💬 *{name}* [{incident_id}]: {text}"),
    )
    .await?;
    services
        .store
        .note_room_update(incident_id)
        .await
        .map_err(failed)?;
    tracing::debug!(incident = incident_id, sent, "war-room message relayed");
    Ok(())
}

/// The room `user_phone` (default: the person of the run) is in: `{incident_id, alert_id}`, or
/// `{}` when none.
async fn current(input: &Value, run: &RunContext) -> AgentResult {
    let who = input
        .get("user_phone")
        .map(text_of)
        .and_then(|p| WaId::parse(&p))
        .or_else(|| run.user.as_ref().map(|p| p.wa.clone()));
    let Some(who) = who else { return Ok(json!({})) };
    let Some(id) = run.services.store.room_of(&who).await.map_err(failed)? else {
        return Ok(json!({}));
    };
    let room = run.services.store.room(&id).await.map_err(failed)?;
    Ok(json!({ "incident_id": id, "alert_id": room.and_then(|r| r.alert_id) }))
}

/// The `war-room` agent: `open` (incident_id, members: numbers, group: a group name, alert_id),
/// `close` (incident_id, resolved_by) and `current` (user_phone), for flows that open incidents
/// and resolve them.
pub static AGENT: Agent = Agent {
    name: "war-room",
    actions: crate::actions![
        "open" => room_open,
        "close" => room_close,
        "current" => current,
    ],
};

fn people(input: &Value, services: &Services) -> Vec<WaId> {
    let mut people: Vec<WaId> = match input.get("members") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| WaId::parse(&v.get("phone").map(text_of).unwrap_or_else(|| text_of(v))))
            .collect(),
        Some(Value::String(s)) => s.split(',').filter_map(WaId::parse).collect(),
        _ => Vec::new(),
    };
    if let Some(group) = input.get("group").map(text_of).filter(|g| !g.is_empty()) {
        people.extend(services.config.group_members(&group).unwrap_or_default());
    }
    let mut seen = std::collections::HashSet::new();
    people.retain(|p| seen.insert(p.clone()));
    people
}

/// The incident a step names, as ids are written (`INC-0001`).
fn incident_id(input: &Value) -> Result<String, AgentError> {
    let id = input
        .get("incident_id")
        .map(text_of)
        .unwrap_or_default()
        .trim()
        .to_uppercase();
    if id.is_empty() {
        return Err(AgentError::input("incident_id", "is missing"));
    }
    Ok(id)
}

/// `open`: the incident's room, with `members` and the `group`'s members in it.
async fn room_open(input: &Value, run: &RunContext) -> AgentResult {
    let id = incident_id(input)?;
    let alert_id = input.get("alert_id").map(text_of).filter(|a| !a.is_empty());
    let members = people(input, &run.services);
    open(&run.services, &id, alert_id.as_deref(), members).await
}

/// `close`: the incident's room, with a summary to its members.
async fn room_close(input: &Value, run: &RunContext) -> AgentResult {
    let id = incident_id(input)?;
    let by = input
        .get("resolved_by")
        .map(text_of)
        .filter(|b| !b.is_empty());
    close(&run.services, &id, by.as_deref()).await
}
