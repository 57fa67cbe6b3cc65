//! The `war-room` agent (`open`, `close`, `current`, for flows that open incidents and resolve
//! them) and the room commands a person types (`JOIN <id>`, `LEAVE`, `WHO`) and relays, which the
//! engine runs as built-in flows. The rules are [`crate::ops::war_room`]'s; this reads inputs and
//! shapes outputs.

use super::{text_of, Agent, AgentError, AgentResult, RunContext, Services};
use crate::ops::war_room::WarRoom;
use aof_actors::WaId;
use serde_json::{json, Value};

/// Keeps war rooms: `open` (incident_id, members: numbers, group: a group name, alert_id), `close`
/// (incident_id, resolved_by) and `current` (user_phone).
pub static AGENT: Agent = Agent {
    name: "war-room",
    actions: crate::actions![
        "open" => room_open,
        "close" => room_close,
        "current" => current,
    ],
};

/// The rules, on the services of a run.
fn rooms(run: &RunContext) -> WarRoom<'_> {
    let services = &run.services;
    WarRoom {
        store: services.store.as_ref(),
        handle: &services.handle,
        members: services.rooms.as_ref(),
        wa: &services.config.platforms.whatsapp,
        keys: Some(run),
    }
}

impl crate::ops::war_room::Keys for RunContext {
    fn key(&self, message: &aof_actors::model::OutboundMessage) -> Option<String> {
        self.key_for(message)
    }
}

/// The person a room command or relay is from, with their WhatsApp profile name.
fn person<'a>(ctx: &'a RunContext, what: &str) -> Result<(&'a WaId, Option<&'a str>), AgentError> {
    let person = ctx
        .user
        .as_ref()
        .ok_or_else(|| AgentError::Failed(format!("{what} needs a person")))?;
    Ok((&person.wa, person.name.as_deref()))
}

/// `JOIN <id>`, `LEAVE`, `WHO`, typed by the person of `ctx`: the answer for them.
pub async fn command(ctx: &RunContext, words: &[String]) -> Result<String, AgentError> {
    let (who, profile) = person(ctx, "a room command")?;
    let rooms = rooms(ctx);
    let verb = words.first().map(|w| w.to_uppercase()).unwrap_or_default();
    let answer = match verb.as_str() {
        "JOIN" => {
            let id = words.get(1).map(|w| w.trim().to_uppercase());
            rooms.join(who, profile, &id.unwrap_or_default()).await
        }
        "LEAVE" => rooms.leave(who, profile).await,
        _ => match rooms.who(who, async || oncall_now(ctx).await).await? {
            Some(members) => Ok(members),
            None => return oncall_answer(ctx).await,
        },
    };
    Ok(answer?)
}

/// `WHO` outside a war room: PagerDuty's on-calls by level when the config names a schedule, else
/// the static rota's shifts now and next in their zones, with the covers and silences in force
/// ([`crate::ops::who`]).
async fn oncall_answer(ctx: &RunContext) -> Result<String, AgentError> {
    let wa = &ctx.services.config.platforms.whatsapp;
    let now = chrono::Utc::now();
    let pagerduty = wa.oncall.schedule_id.is_some() && wa.oncall.pagerduty_token.is_some();
    let agent = ctx
        .services
        .registry
        .get("oncall-manager")
        .filter(|_| pagerduty);
    let on_call = match agent {
        Some(agent) => {
            let current = agent.call("get_current", json!({}), ctx).await?;
            let levels: Vec<(String, String)> = current["on_call"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| (text_of(&o["name"]), text_of(&o["level"])))
                .collect();
            crate::ops::who::from_levels(&levels)
        }
        None => crate::ops::who::from_rota(&wa.oncall.static_oncall, now)
            .map_err(|e| AgentError::Failed(e.to_string()))?,
    };
    let store = &ctx.services.store;
    let at = now.timestamp_millis();
    let covers = store.covers_at(at).await.map_err(AgentError::store)?;
    let silences = store.silences_at(at).await.map_err(AgentError::store)?;
    Ok(crate::ops::who::with_overrides(
        on_call, &covers, &silences, wa,
    ))
}

/// Who is on call now, by name, as the `oncall-manager` agent says.
async fn oncall_now(ctx: &RunContext) -> String {
    let Some(agent) = ctx.services.registry.get("oncall-manager") else {
        return "unknown".into();
    };
    let current = agent.call("get_current", json!({}), ctx).await.ok();
    current
        .and_then(|o| o.get("name").map(text_of))
        .unwrap_or_else(|| "unknown".into())
}

/// Relays what the person of `ctx` wrote to every other member of `incident_id`'s room.
pub async fn relay(ctx: &RunContext, incident_id: &str, text: &str) -> Result<(), AgentError> {
    let (who, profile) = person(ctx, "a relay")?;
    let rooms = rooms(ctx);
    Ok(rooms.relay(who, profile, incident_id, text).await?)
}

/// `current`: the room `user_phone` (default: the person of the run) is in, as
/// `{incident_id, alert_id}`, or `{}` when none.
async fn current(input: &Value, run: &RunContext) -> AgentResult {
    let who = input
        .get("user_phone")
        .map(text_of)
        .and_then(|p| WaId::parse(&p))
        .or_else(|| run.user.as_ref().map(|p| p.wa.clone()));
    let Some(who) = who else { return Ok(json!({})) };
    let target = |key: &str| {
        let id = run.target.as_ref()?.get(key)?.as_str()?;
        Some(id.to_owned())
    };
    // `RESOLVE INC-0002` (or quoting that room's message) means that incident's room.
    if let Some(id) = target("incident_id") {
        let store = &run.services.store;
        let room = store.room(&id).await.map_err(AgentError::store)?;
        return match room {
            Some(room) if room.closed_ms.is_none() => {
                Ok(json!({ "incident_id": room.incident_id, "alert_id": room.alert_id }))
            }
            Some(_) => Err(AgentError::Answer(format!(
                "ℹ️ The war room of {id} is closed already."
            ))),
            None => Err(AgentError::Answer(format!(
                "I know no war room for {id}; incident ids look like INC-0001."
            ))),
        };
    }
    Ok(match rooms(run).current(&who).await? {
        // A reply naming another alert (`RESOLVE ALT-0003`) is not about this room.
        Some((_, alert_id))
            if target("alert_id").is_some_and(|t| alert_id.as_deref() != Some(&t)) =>
        {
            json!({})
        }
        Some((id, alert_id)) => json!({ "incident_id": id, "alert_id": alert_id }),
        None => json!({}),
    })
}

/// The numbers a step names in `members` (numbers, or `{phone}` objects, or a comma-separated
/// text) and the members of its `group`, each once.
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
    let rooms = rooms(run);
    let joined = rooms.open(&id, alert_id.as_deref(), members).await?;
    let joined: Vec<String> = joined.iter().map(WaId::e164).collect();
    Ok(json!({ "incident_id": id, "joined": joined }))
}

/// `close`: the incident's room, with a summary to its members.
async fn room_close(input: &Value, run: &RunContext) -> AgentResult {
    let id = incident_id(input)?;
    let by = input
        .get("resolved_by")
        .map(text_of)
        .filter(|b| !b.is_empty());
    let Some(closed) = rooms(run).close(&id, by.as_deref()).await? else {
        return Ok(json!({ "incident_id": id, "closed": false }));
    };
    Ok(json!({
        "incident_id": id, "closed": true, "members": closed.members, "updates": closed.updates,
        "title": format!("{id}: {}", closed.title), "alert_id": closed.alert_id,
        "pagerduty_incident_id": closed.pagerduty_incident_id,
    }))
}
