//! The static route table: `routing.commands` (the whole message, any case), then the flows' own
//! message-trigger patterns (so `STATUS api` reaches status-check with `match.1 = api`), then
//! `routing.keywords` in order, then `routing.default_flow`; a person in a war room who writes
//! something that is not a command talks to the room. A pending `on_response` of the person comes
//! before all of these; the session checks it. What the bot answers itself is a [`Builtin`].

use super::load::FlowSet;
use crate::config::RoutingConfig;
use aof_actors::model::{Route, RouteReason};
use aof_actors::ports::RouteTable;
use aof_actors::WaId;
use regex::Regex;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What the bot answers itself, without a flow file. A route names one by its
/// [`Builtin::flow_name`] (the actors carry flow names as text); the engine reads it back with
/// [`Builtin::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// A message without text (an image, a sticker): "send text or HELP".
    Unsupported,
    /// `JOIN <incident>`, `LEAVE`, `WHO`.
    RoomCommand,
    /// What a war-room member writes, for everyone else in the room.
    Relay,
}

impl Builtin {
    const ALL: [Builtin; 3] = [Builtin::Unsupported, Builtin::RoomCommand, Builtin::Relay];

    /// The name routes carry; no flow file can have it (`:` is not in a file stem).
    pub const fn flow_name(self) -> &'static str {
        match self {
            Builtin::Unsupported => "builtin:unsupported",
            Builtin::RoomCommand => "builtin:room",
            Builtin::Relay => "builtin:relay",
        }
    }

    /// The built-in a route's flow names, if it names one.
    pub fn of(flow: &str) -> Option<Builtin> {
        Self::ALL.into_iter().find(|b| b.flow_name() == flow)
    }
}

struct Table {
    commands: HashMap<String, String>,
    keywords: Vec<(Regex, String)>,
    flows: Arc<FlowSet>,
    default: Option<String>,
}

/// The route table; flows can be swapped when the directory is reloaded. It also knows who is in
/// which war room (the war-room agent keeps it current; start-up loads it from the store).
pub struct Routes {
    table: RwLock<Arc<Table>>,
    rooms: RwLock<HashMap<WaId, String>>,
}

/// `JOIN <incident id>`, `LEAVE` or `WHO`, as words (the verb upper-cased).
fn room_command(text: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let verb = words.first()?.to_uppercase();
    match (verb.as_str(), words.len()) {
        ("JOIN", 2) => Some(vec![verb, words[1].to_owned()]),
        ("LEAVE" | "WHO", 1) => Some(vec![verb]),
        _ => None,
    }
}

/// Regex captures as `match.N` values (a group that did not take part is empty).
fn captures(re: &Regex, text: &str) -> Option<Vec<String>> {
    re.captures(text).map(|c| {
        c.iter()
            .map(|m| m.map_or(String::new(), |m| m.as_str().to_owned()))
            .collect()
    })
}

impl Routes {
    /// Builds the table. Keyword patterns were checked when the config loaded.
    pub fn new(routing: &RoutingConfig, flows: Arc<FlowSet>) -> Routes {
        let commands = routing
            .commands
            .iter()
            .map(|(k, v)| (k.trim().to_uppercase(), v.clone()))
            .collect();
        let keywords = routing
            .keywords
            .iter()
            .filter_map(|k| Regex::new(&k.pattern).ok().map(|re| (re, k.flow.clone())))
            .collect();
        let table = Table {
            commands,
            keywords,
            flows,
            default: routing.default_flow.clone(),
        };
        Routes {
            table: RwLock::new(Arc::new(table)),
            rooms: RwLock::default(),
        }
    }

    /// Puts a person in a war room, or takes them out (`None`).
    pub fn set_room(&self, who: WaId, room: Option<String>) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        match room {
            Some(room) => rooms.insert(who, room),
            None => rooms.remove(&who),
        };
    }

    /// Every membership at once, as the store has them (start-up, a takeover): replaces what
    /// was known.
    pub fn load_rooms(&self, members: Vec<(WaId, String)>) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        *rooms = members.into_iter().collect();
    }

    /// The war room `who` is in.
    pub fn room_of(&self, who: &WaId) -> Option<String> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(who).cloned()
    }

    /// Swaps in a reloaded flow set.
    pub fn set_flows(&self, flows: Arc<FlowSet>) {
        let mut guard = self.table.write().unwrap_or_else(|e| e.into_inner());
        let old = guard.clone();
        *guard = Arc::new(Table {
            commands: old.commands.clone(),
            keywords: old.keywords.clone(),
            flows,
            default: old.default.clone(),
        });
    }

    /// The flows the table routes to now.
    pub fn flows(&self) -> Arc<FlowSet> {
        self.current().flows.clone()
    }

    fn current(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl RouteTable for Routes {
    fn route(&self, from: &WaId, text: &str) -> Option<Route> {
        let route = self.static_route(text);
        let command = route
            .as_ref()
            .is_some_and(|r| matches!(r.reason, RouteReason::Command | RouteReason::FlowTrigger));
        match self.room_of(from) {
            Some(room) if !command => Some(Route {
                flow: Builtin::Relay.flow_name().to_owned(),
                reason: RouteReason::Relay,
                captures: vec![room, text.to_owned()],
            }),
            _ => route,
        }
    }

    fn route_unsupported(&self, kind: &str) -> Option<Route> {
        Some(Route {
            flow: Builtin::Unsupported.flow_name().into(),
            reason: RouteReason::Unsupported,
            captures: vec![kind.to_owned()],
        })
    }
}

impl Routes {
    /// Where a text goes by the config and the flows alone, whoever wrote it.
    pub fn static_route(&self, text: &str) -> Option<Route> {
        let table = self.current();
        let text = text.trim();
        let own_captures = |flow: &str| {
            table
                .flows
                .get(flow)
                .and_then(|f| f.patterns.iter().find_map(|re| captures(re, text)))
        };
        if let Some(words) = room_command(text) {
            if !table.commands.contains_key(&words[0]) {
                return Some(Route {
                    flow: Builtin::RoomCommand.flow_name().into(),
                    reason: RouteReason::Command,
                    captures: words,
                });
            }
        }
        if let Some(flow) = table.commands.get(&text.to_uppercase()) {
            let captures = own_captures(flow).unwrap_or_else(|| vec![text.to_owned()]);
            return Some(Route {
                flow: flow.clone(),
                reason: RouteReason::Command,
                captures,
            });
        }
        for flow in table.flows.iter() {
            if let Some(captures) = flow.patterns.iter().find_map(|re| captures(re, text)) {
                return Some(Route {
                    flow: flow.stem.clone(),
                    reason: RouteReason::FlowTrigger,
                    captures,
                });
            }
        }
        for (re, flow) in &table.keywords {
            // The target flow's own pattern parses the message better than the keyword that found it.
            if let Some(captures) = captures(re, text).map(|c| own_captures(flow).unwrap_or(c)) {
                return Some(Route {
                    flow: flow.clone(),
                    reason: RouteReason::Keyword,
                    captures,
                });
            }
        }
        table.default.as_ref().map(|flow| Route {
            flow: flow.clone(),
            reason: RouteReason::Default,
            captures: vec![text.to_owned()],
        })
    }
}

/// The war-room rules keep the route table told of who is in which room.
impl crate::agents::FlowNames for Routes {
    fn has_flow(&self, name: &str) -> bool {
        self.current().flows.get(name).is_some()
    }
}

impl crate::ops::war_room::Membership for Routes {
    fn set_room(&self, who: WaId, incident: Option<String>) {
        Routes::set_room(self, who, incident);
    }
}
