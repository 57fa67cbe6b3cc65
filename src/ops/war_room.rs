//! War rooms. WhatsApp's Cloud API has no group chats for a bot, so the bot is the room: an open
//! incident has members (whoever was paged, the team group, anyone who sends `JOIN INC-0001`); what
//! a member writes that is not a command is relayed to every other member, named and tagged with
//! the incident, in the room lane (above broadcasts). `LEAVE` leaves, `WHO` lists the members and who
//! is on call, and resolving the incident closes the room with a summary to each member.
//!
//! Membership lives in the store and in the route table (which turns a member's chatter into
//! relays, through [`Membership`]); these rules change both. The `war-room` agent and the room
//! commands (`agents::war_room`) call them.

use super::Refused;
use crate::config::WhatsAppConfig;
use crate::store::{AlertState, Repositories};
use aof_actors::model::{Lane, OutboundMessage};
use aof_actors::{Handle, WaId};
use serde_json::json;

/// Joins are announced to the room only up to this many members: announcing every join to everyone
/// costs n²/2 messages (19,900 for a room of 200, minutes of the send rate ahead of the updates that
/// matter). Above it, `WHO` lists the members.
const ANNOUNCE_JOINS_UP_TO: usize = 20;

/// Who is in which room, as the route table sees it.
pub trait Membership: Send + Sync {
    /// Puts `who` in the room of `incident`, or in none.
    fn set_room(&self, who: WaId, incident: Option<String>);
}

/// Gives each message the rules send its idempotency key, so that the same rule run again after a
/// crash (a relay handed over again) queues each message once. A flow run's context does.
pub trait Keys {
    /// The key of `message`, or `None` when it has none.
    fn key(&self, message: &OutboundMessage) -> Option<String>;
}

/// What the rules work with: the store, the actors (to send), the route table's membership and
/// the config (to name people).
pub struct WarRoom<'a> {
    /// Rooms, members, incidents and alerts.
    pub store: &'a dyn Repositories,
    /// Where messages to members go.
    pub handle: &'a Handle,
    /// The route table's copy of who is in which room.
    pub members: &'a dyn Membership,
    /// The people directory and the rota.
    pub wa: &'a WhatsAppConfig,
    /// Keys for what it sends (see [`Keys`]).
    pub keys: Option<&'a dyn Keys>,
}

/// What closing a room did.
#[derive(Debug)]
pub struct Closed {
    /// How many members got the summary.
    pub members: usize,
    /// Messages relayed while it was open.
    pub updates: i64,
    /// The incident's title.
    pub title: String,
    /// The alert that paged for it, now resolved.
    pub alert_id: Option<String>,
    /// That alert's PagerDuty incident, to resolve there too.
    pub pagerduty_incident_id: Option<String>,
}

impl WarRoom<'_> {
    /// The name people know `who` by: the directory, the rota, the WhatsApp profile, the number.
    fn name(&self, who: &WaId, profile: Option<&str>) -> String {
        self.wa
            .name_of(who)
            .or_else(|| profile.filter(|p| !p.is_empty()).map(str::to_owned))
            .unwrap_or_else(|| who.e164())
    }

    async fn send(&self, to: WaId, text: String, incident_id: &str) -> Result<(), Refused> {
        let mut message = OutboundMessage::text(to, text, Lane::Room)
            .about(Some(json!({ "incident_id": incident_id })))
            .flow("war-room");
        message.key = self.keys.and_then(|keys| keys.key(&message));
        let queued = self.handle.send(message).await;
        queued
            .map(|_| ())
            .map_err(|e| Refused::Failed(e.to_string()))
    }

    /// Sends `text` to every member but `except`, in join order; how many it went to.
    async fn tell_room(
        &self,
        incident_id: &str,
        except: Option<&WaId>,
        text: &str,
    ) -> Result<usize, Refused> {
        let members = self.store.room_members(incident_id).await?;
        let mut sent = 0;
        for member in members.into_iter().filter(|m| Some(&m.wa) != except) {
            self.send(member.wa, text.to_owned(), incident_id).await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Adds `people` to an incident's room (opening it), and tells each newcomer how the room
    /// works; those who were not in it yet.
    pub async fn open(
        &self,
        incident_id: &str,
        alert_id: Option<&str>,
        people: Vec<WaId>,
    ) -> Result<Vec<WaId>, Refused> {
        let incident = self.store.get_incident(incident_id).await?;
        let incident =
            incident.ok_or_else(|| Refused::Failed(format!("no incident {incident_id}")))?;
        self.store.open_room(incident_id, alert_id).await?;
        let mut joined = Vec::new();
        for who in people {
            let name = self.name(&who, None);
            if self.store.join_room(incident_id, &who, Some(&name)).await? {
                self.members
                    .set_room(who.clone(), Some(incident_id.to_owned()));
                let text = format!(
                    "🚨 *War room {incident_id}*: {}\n\nWhat you write here now goes to everyone in the room.\nWHO - members • LEAVE - leave • RESOLVE - close it",
                    incident.title
                );
                self.send(who.clone(), text, incident_id).await?;
                joined.push(who);
            }
        }
        Ok(joined)
    }

    /// Closes an incident's room: the alert that paged for it is resolved too, and each former
    /// member gets the summary and leaves. `None` when it had no open room.
    pub async fn close(
        &self,
        incident_id: &str,
        resolved_by: Option<&str>,
    ) -> Result<Option<Closed>, Refused> {
        let Some((room, members)) = self.store.close_room(incident_id).await? else {
            return Ok(None);
        };
        let incident = self.store.get_incident(incident_id).await?;
        let title = incident.map(|i| i.title).unwrap_or_default();
        let mut pagerduty_incident_id = None;
        if let Some(alert_id) = &room.alert_id {
            if let Ok(Some(alert)) = self.store.get_alert(alert_id).await {
                pagerduty_incident_id = alert.pagerduty_incident_id.clone();
            }
            let resolved = self
                .store
                .transition(alert_id, AlertState::Resolved, resolved_by);
            if let Err(e) = resolved.await {
                tracing::warn!(alert = %alert_id, error = %e, "could not resolve the room's alert");
            }
        }
        let minutes = (room.closed_ms.unwrap_or(room.opened_ms) - room.opened_ms).max(0) / 60_000;
        let acknowledged = self.acknowledged_by(room.alert_id.as_deref()).await;
        let summary = format!(
            "✅ *{incident_id} resolved*: {title}\n\nDuration: {}h {:02}m\nAcknowledged by: {acknowledged}\nUpdates in the room: {}\n\nThe war room is closed.",
            minutes / 60,
            minutes % 60,
            room.updates
        );
        for member in &members {
            self.members.set_room(member.wa.clone(), None);
            self.send(member.wa.clone(), summary.clone(), incident_id)
                .await?;
        }
        Ok(Some(Closed {
            members: members.len(),
            updates: room.updates,
            title,
            alert_id: room.alert_id,
            pagerduty_incident_id,
        }))
    }

    /// Who acknowledged the alert that paged for the room, by name.
    async fn acknowledged_by(&self, alert_id: Option<&str>) -> String {
        let Some(alert_id) = alert_id else {
            return "nobody".into();
        };
        match self.store.get_alert(alert_id).await {
            Ok(Some(alert)) => alert
                .acknowledged_by
                .as_deref()
                .and_then(WaId::parse)
                .map(|wa| self.name(&wa, None))
                .unwrap_or_else(|| "nobody".into()),
            _ => "nobody".into(),
        }
    }

    /// `JOIN <id>` by `person` (WhatsApp profile name `profile`): the answer for them.
    pub async fn join(
        &self,
        person: &WaId,
        profile: Option<&str>,
        id: &str,
    ) -> Result<String, Refused> {
        let incident = match self.store.get_incident(id).await? {
            None => {
                return Ok(format!(
                    "❓ There is no incident {id}. Send STATUS to see the open ones."
                ))
            }
            Some(i) if i.status != "open" => return Ok(format!("ℹ️ {id} is already resolved.")),
            Some(i) => i,
        };
        self.store.open_room(id, None).await?;
        let name = self.name(person, profile);
        let joined = self.store.join_room(id, person, Some(&name)).await?;
        self.members.set_room(person.clone(), Some(id.to_owned()));
        if !joined {
            return Ok(format!("ℹ️ You are already in the war room of {id}: {}\nWhat you write goes to the room; WHO to see who is in it, LEAVE to leave.", incident.title));
        }
        let count = self.store.room_members(id).await?.len();
        if count <= ANNOUNCE_JOINS_UP_TO {
            let joined = format!("➕ {name} joined {id}");
            self.tell_room(id, Some(person), &joined).await?;
        }
        Ok(format!("✅ You joined the war room of {id}: {}\n{count} people are in it. What you write now goes to the room; LEAVE to leave.", incident.title))
    }

    /// `LEAVE` by `person`: the answer for them; the room is told.
    pub async fn leave(&self, person: &WaId, profile: Option<&str>) -> Result<String, Refused> {
        let Some(id) = self.store.leave_room(person).await? else {
            return Ok("ℹ️ You are not in a war room.".into());
        };
        self.members.set_room(person.clone(), None);
        let name = self.name(person, profile);
        self.tell_room(&id, None, &format!("➖ {name} left {id}"))
            .await?;
        Ok(format!("👋 You left the war room of {id}."))
    }

    /// `WHO` by `person`: the members of their room and who is on call (asked only when they are
    /// in one); `None` when they are in no room (WHO then says who is on call, `ops::who`).
    pub async fn who(
        &self,
        person: &WaId,
        oncall: impl AsyncFnOnce() -> String,
    ) -> Result<Option<String>, Refused> {
        let Some(id) = self.store.room_of(person).await? else {
            return Ok(None);
        };
        let members = self.store.room_members(&id).await?;
        let names: Vec<String> = members
            .iter()
            .map(|m| format!("• {}", m.name.clone().unwrap_or_else(|| m.wa.e164())))
            .collect();
        Ok(Some(format!(
            "👥 *{id}*: {} members\n{}\n\nOn call now: {}",
            members.len(),
            names.join("\n"),
            oncall().await
        )))
    }

    /// Relays what `person` wrote to every other member of `incident_id`'s room.
    pub async fn relay(
        &self,
        person: &WaId,
        profile: Option<&str>,
        incident_id: &str,
        text: &str,
    ) -> Result<(), Refused> {
        let name = self.name(person, profile);
        let line = format!("💬 *{name}* [{incident_id}]: {text}");
        let sent = self.tell_room(incident_id, Some(person), &line).await?;
        self.store.note_room_update(incident_id).await?;
        tracing::debug!(incident = incident_id, sent, "war-room message relayed");
        Ok(())
    }

    /// The room `who` is in: its incident and the alert that paged for it.
    pub async fn current(&self, who: &WaId) -> Result<Option<(String, Option<String>)>, Refused> {
        let Some(id) = self.store.room_of(who).await? else {
            return Ok(None);
        };
        let room = self.store.room(&id).await?;
        Ok(Some((id, room.and_then(|r| r.alert_id))))
    }
}
