//! What `aofctl simulate` prints: the route and why, each run with its steps' rendered input and
//! output, what would have been sent to whom, the external calls recorded instead of made, the
//! timers set, and what became of the store. Plain text, built from the events the run published.

use crate::agents::dry_run::ExternalCall;
use crate::config::{Config, RoutingConfig, WhatsAppConfig};
use crate::flow::routes::Builtin;
use crate::live::LiveEvent;
use crate::transport::OutboxItem;
use aof_actors::model::{now_ms, Expectation, Route, RouteReason, Timer};
use aof_actors::WaId;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Longest string shown inside a step's input or output; the rest is cut with `…`.
const MAX_STRING: usize = 200;

/// Longest JSON line shown for one input or output.
const MAX_LINE: usize = 1_500;

/// How the simulation treated the store.
#[derive(Debug, Clone)]
pub(super) enum StoreNote {
    /// A scratch copy of this file was used and discarded.
    Scratch(PathBuf),
    /// This file does not exist yet: a fresh scratch store was used and discarded.
    Fresh(PathBuf),
    /// `storage.url` is in memory: nothing outlives the process anyway.
    InMemory,
    /// `--commit`: this store (a file, or a PostgreSQL URL without its password) was used and
    /// keeps what the runs wrote.
    Committed(String),
    /// A PostgreSQL store (named without its password) is not copied: an empty scratch store was
    /// used and discarded.
    Shared(String),
}

/// Why the message goes where it goes, worked out before it was sent.
#[derive(Debug, Clone)]
pub(super) struct RouteNote {
    /// The message, trimmed.
    pub text: String,
    /// The sender is not allowed to write to the bot.
    pub refused: bool,
    /// The person's pending `on_response` that takes the message before routing.
    pub pending: Option<Expectation>,
    /// The war room the person is in, when the message is not a command (relayed to the room).
    pub room: Option<String>,
    /// The static route (commands, flow patterns, keywords, default flow).
    pub route: Option<Route>,
    /// The flow's own trigger pattern that matched, for a route by flow pattern.
    pub pattern: Option<String>,
}

impl RouteNote {
    /// The flow the message should reach.
    fn expected_flow(&self) -> Option<&str> {
        match (&self.pending, &self.room, &self.route) {
            (Some(pending), _, _) => Some(&pending.flow),
            (None, Some(_), _) => Some(Builtin::Relay.flow_name()),
            (None, None, route) => route.as_ref().map(|r| r.flow.as_str()),
        }
    }
}

/// How the wait for the runs ended.
#[derive(Debug, Clone, Default)]
pub(super) enum Outcome {
    /// Every run ended and the queue drained.
    #[default]
    Done,
    /// The time ran out first.
    TimedOut {
        /// `--timeout`.
        after: Duration,
        /// Runs still going.
        running: usize,
        /// Messages still queued or being sent.
        queued: usize,
    },
}

/// What the wait heard.
#[derive(Debug, Default)]
pub(super) struct Heard {
    /// Every event, in order.
    pub events: Vec<LiveEvent>,
    /// How the wait ended.
    pub outcome: Outcome,
    /// Events missed because the report fell behind (never expected: the channel holds thousands).
    pub missed: u64,
}

impl Heard {
    /// Keeps `event`.
    pub fn note(&mut self, event: LiveEvent) {
        self.events.push(event);
    }

    /// Runs that started.
    pub fn started(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, LiveEvent::RunStarted { .. }))
            .count()
    }

    /// Runs that started and have not finished.
    pub fn running(&self) -> usize {
        let finished = self
            .events
            .iter()
            .filter(|e| matches!(e, LiveEvent::RunFinished { .. }))
            .count();
        self.started().saturating_sub(finished)
    }
}

/// Everything the report shows.
pub(super) struct Report {
    whatsapp: WhatsAppConfig,
    routing: RoutingConfig,
    config_file: PathBuf,
    /// The store, as the simulation treated it.
    pub store: StoreNote,
    /// The sender of a simulated message.
    pub from: Option<WaId>,
    /// The routing decision, for a message.
    pub route: Option<RouteNote>,
    /// The webhook path, the bot's HTTP status and answer, for a webhook call.
    pub webhook: Option<(String, u16, Value)>,
    /// What happened.
    pub events: Vec<LiveEvent>,
    /// How the wait ended.
    pub outcome: Outcome,
    /// The calls recorded instead of made.
    pub calls: Vec<ExternalCall>,
    /// Timers the runs set.
    pub timers: Vec<Timer>,
    /// Events the report missed.
    pub missed: u64,
}

impl Report {
    /// An empty report for `config`.
    pub fn new(config: &Config, store: StoreNote) -> Report {
        Report {
            whatsapp: config.platforms.whatsapp.clone(),
            routing: config.routing.clone(),
            config_file: config.file.clone(),
            store,
            from: None,
            route: None,
            webhook: None,
            events: Vec::new(),
            outcome: Outcome::Done,
            calls: Vec::new(),
            timers: Vec::new(),
            missed: 0,
        }
    }

    /// The text to print.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.trigger(&mut out);
        self.runs(&mut out);
        self.sends(&mut out);
        self.external(&mut out);
        self.timers(&mut out);
        if let Outcome::TimedOut {
            after,
            running,
            queued,
        } = &self.outcome
        {
            let _ = writeln!(out, "\ntimed out after {} s: {running} run(s) still running, {queued} message(s) still queued; what is shown is what happened until then (--timeout)", after.as_secs());
        }
        if self.missed > 0 {
            let _ = writeln!(
                out,
                "\n{} event(s) were missed: the report fell behind what happened",
                self.missed
            );
        }
        let _ = writeln!(out, "\n{}", self.store_line());
        out
    }

    /// `Alice (+15551234567)`, or the number alone for strangers.
    fn who(&self, number: &str) -> String {
        match WaId::parse(number).and_then(|wa| self.whatsapp.name_of(&wa)) {
            Some(name) => format!("{name} ({number})"),
            None => number.to_owned(),
        }
    }

    fn trigger(&self, out: &mut String) {
        let config = self.config_file.display();
        if let (Some(from), Some(note)) = (&self.from, &self.route) {
            let _ = writeln!(
                out,
                "simulate: {:?} from {}, with {config}",
                note.text,
                self.who(&from.e164())
            );
            if note.refused {
                let _ = writeln!(out, "refused: {} is not allowed to write to the bot (platforms.whatsapp.allowed_numbers, security.allowed_numbers, security.require_verified); the bot ignores the message", from.e164());
            }
            let label = if note.refused {
                "route, were it allowed"
            } else {
                "route"
            };
            let _ = writeln!(out, "{label}: {}", route_line(note, &self.routing));
            let ran = self.events.iter().find_map(|e| match e {
                LiveEvent::RunStarted { flow, from: by, .. }
                    if by.as_deref() == Some(from.e164().as_str()) =>
                {
                    Some(flow.as_str())
                }
                _ => None,
            });
            match (ran, note.expected_flow()) {
                (Some(ran), Some(expected)) if ran != expected => {
                    let _ = writeln!(out, "       the flow that ran was {ran}");
                }
                (None, Some(_)) if !note.refused => {
                    let _ = writeln!(out, "       no flow ran for this message");
                }
                _ => {}
            }
        }
        if let Some((path, status, answer)) = &self.webhook {
            let flow = answer["flow"].as_str().unwrap_or("?");
            let _ = writeln!(out, "simulate: POST {path}, with {config}");
            let _ = writeln!(
                out,
                "webhook: {path} → {flow} (the bot answered {status} {})",
                compact(answer)
            );
        }
    }

    fn runs(&self, out: &mut String) {
        let runs: Vec<(&String, &String)> = self
            .events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::RunStarted { run_id, flow, .. } => Some((run_id, flow)),
                _ => None,
            })
            .collect();
        if runs.is_empty() {
            let _ = writeln!(out, "\nno flow ran");
        }
        for (run_id, flow) in runs {
            let end = self.events.iter().find_map(|e| match e {
                LiveEvent::RunFinished {
                    run_id: id,
                    outcome,
                    ms,
                    ..
                } if id == run_id => Some(format!("{outcome} in {ms} ms")),
                _ => None,
            });
            let end = end.unwrap_or_else(|| "still running when the wait ended".to_owned());
            let _ = writeln!(out, "\nrun {flow} ({run_id}): {end}");
            let mut parent: Option<&str> = None;
            let steps = self.events.iter().filter_map(|e| match e {
                LiveEvent::Step {
                    run_id: id,
                    flow,
                    step,
                    outcome,
                    ms,
                    error,
                    input,
                    output,
                } if id == run_id => Some((flow, step, outcome, ms, error, input, output)),
                _ => None,
            });
            for (n, (flow, step, outcome, ms, error, input, output)) in steps.enumerate() {
                let parent = *parent.get_or_insert(flow.as_str());
                let within = if flow != parent {
                    format!("{flow} › ")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  {}. {within}{step}: {outcome}, {ms} ms", n + 1);
                if !input.is_null() {
                    let _ = writeln!(out, "       input:  {}", compact(input));
                }
                if !output.is_null() {
                    let _ = writeln!(out, "       output: {}", compact(output));
                }
                if let Some(error) = error {
                    let _ = writeln!(out, "       error:  {error}");
                }
            }
        }
    }

    fn sends(&self, out: &mut String) {
        let sends: Vec<&OutboxItem> = self
            .events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Outbound(item) => Some(item),
                _ => None,
            })
            .collect();
        let slack: Vec<&ExternalCall> = self.calls.iter().filter(|c| c.what == "slack").collect();
        let _ = writeln!(
            out,
            "\nwould send {} WhatsApp message(s){}",
            sends.len(),
            if sends.is_empty() { "" } else { ":" }
        );
        for item in sends {
            let to = if item.to == "slack" {
                "Slack".to_owned()
            } else {
                self.who(&item.to)
            };
            let kind = match &item.template {
                Some(name) => format!("template {name}"),
                None => item.kind.clone(),
            };
            let _ = writeln!(out, "  → {to}, {kind}:");
            let _ = writeln!(out, "{}", indent(&item.text, 6));
            if !item.buttons.is_empty() {
                let buttons: Vec<String> = item
                    .buttons
                    .iter()
                    .map(|b| format!("[{}]", b.title))
                    .collect();
                let _ = writeln!(out, "      {}", buttons.join(" "));
            }
        }
        if !slack.is_empty() {
            let _ = writeln!(out, "would post {} Slack message(s):", slack.len());
        }
        for call in slack {
            let text = call.detail["body"]["text"].as_str().unwrap_or_default();
            let to = call.detail["to"].as_str().unwrap_or("nobody");
            let _ = writeln!(out, "  → Slack for {to}, {}:", call.target);
            let _ = writeln!(out, "{}", indent(text, 6));
        }
    }

    fn external(&self, out: &mut String) {
        let calls: Vec<&ExternalCall> = self.calls.iter().filter(|c| c.what != "slack").collect();
        if calls.is_empty() {
            let _ = writeln!(out, "would call nothing outside");
            return;
        }
        let _ = writeln!(
            out,
            "would call {} external service(s), recorded instead of made:",
            calls.len()
        );
        for call in calls {
            let _ = writeln!(out, "  {}: {}", call.what, call.target);
            if !call.detail.is_null() {
                let _ = writeln!(out, "      {}", compact(&call.detail));
            }
        }
    }

    fn timers(&self, out: &mut String) {
        if self.timers.is_empty() {
            return;
        }
        let kept = match self.store {
            StoreNote::Committed(_) => "kept in the store: the bot fires them after its next start",
            _ => "discarded with the scratch store",
        };
        let _ = writeln!(out, "timers set ({kept}):");
        for timer in &self.timers {
            let secs = (timer.fire_at_ms - now_ms()).max(0) / 1000;
            let _ = writeln!(out, "  {} in {secs} s ({})", timer.flow, timer.id);
        }
    }

    fn store_line(&self) -> String {
        match &self.store {
            StoreNote::Scratch(path) => format!(
                "store: unchanged; the simulation ran on a scratch copy of {} and discarded it (--commit keeps the changes)",
                path.display()
            ),
            StoreNote::Fresh(path) => format!(
                "store: unchanged; {} does not exist yet, so the simulation ran on a fresh scratch store and discarded it",
                path.display()
            ),
            StoreNote::InMemory => {
                "store: unchanged; storage.url is in memory, so the simulation had a store of its own".to_owned()
            }
            StoreNote::Committed(store) => format!(
                "store: changed (--commit); what the runs wrote (runs, alerts, approvals, conversations, timers, audit) is kept in {store}; nothing was sent"
            ),
            StoreNote::Shared(url) => format!(
                "store: unchanged; {url} is shared by the running bot and not copied, so the simulation ran on an empty scratch store and discarded it (--commit runs against {url})"
            ),
        }
    }
}

/// The routing decision in words: what matched and the flow it names.
fn route_line(note: &RouteNote, routing: &RoutingConfig) -> String {
    if let Some(pending) = &note.pending {
        let without = note
            .route
            .as_ref()
            .map_or_else(|| "no route".to_owned(), |r| static_route(r, note, routing));
        return format!(
            "a pending on_response of run {} matched /{}/ → {}\n       (it comes before routing, which would have said: {without})",
            pending.run, pending.pattern, pending.flow
        );
    }
    if let Some(room) = &note.room {
        return format!(
            "the sender is in war room {room} and this is not a command → relayed to the room ({})",
            Builtin::Relay.flow_name()
        );
    }
    match &note.route {
        Some(route) => static_route(route, note, routing),
        None => "nothing matches and routing.default_flow is not set: the bot does not answer"
            .to_owned(),
    }
}

/// A static route in words.
fn static_route(route: &Route, note: &RouteNote, routing: &RoutingConfig) -> String {
    let text = note.text.as_str();
    let whole = route.captures.first().map_or(text, String::as_str);
    match route.reason {
        RouteReason::Command if Builtin::of(&route.flow) == Some(Builtin::RoomCommand) => {
            format!("war-room command {whole} → answered by the bot itself")
        }
        RouteReason::Command => format!(
            "command {:?} (routing.commands) → {}",
            text.to_uppercase(),
            route.flow
        ),
        RouteReason::FlowTrigger => {
            let pattern = note
                .pattern
                .as_ref()
                .map_or_else(String::new, |p| format!("/{p}/ "));
            format!(
                "the message trigger {pattern}of {} matched {whole:?} → {}",
                route.flow, route.flow
            )
        }
        RouteReason::Keyword => {
            // The first keyword of that flow that matches: the one the route table stopped at.
            let found = routing.keywords.iter().find_map(|k| {
                let re = regex::Regex::new(&k.pattern).ok()?;
                let m = re.find(text).filter(|_| k.flow == route.flow)?;
                Some(format!("/{}/ matched {:?}", k.pattern, m.as_str()))
            });
            let found = found.unwrap_or_else(|| format!("matched {text:?}"));
            format!("keyword {found} (routing.keywords) → {}", route.flow)
        }
        RouteReason::Default => format!(
            "no command, flow pattern or keyword matched → {} (routing.default_flow)",
            route.flow
        ),
        _ => format!("{:?} → {}", route.reason, route.flow),
    }
}

/// `value` as one line of JSON, long strings cut.
fn compact(value: &Value) -> String {
    let text = serde_json::to_string(&cut(value)).unwrap_or_default();
    if text.chars().count() <= MAX_LINE {
        return text;
    }
    let mut line: String = text.chars().take(MAX_LINE).collect();
    line.push('…');
    line
}

fn cut(value: &Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_STRING => {
            let mut short: String = s.chars().take(MAX_STRING).collect();
            short.push('…');
            Value::String(short)
        }
        Value::Array(items) => Value::Array(items.iter().map(cut).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), cut(v))).collect()),
        other => other.clone(),
    }
}

/// Every line of `text` indented by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_strings_are_cut_and_the_rest_kept() {
        let long = "x".repeat(MAX_STRING + 50);
        let line = compact(&json!({ "a": long, "b": [1, "short"] }));
        assert!(
            line.contains(&format!("{}…", "x".repeat(MAX_STRING))),
            "{line}"
        );
        assert!(line.ends_with(r#""b":[1,"short"]}"#), "{line}");
    }

    #[test]
    fn routes_read_as_what_matched_and_where_it_goes() {
        let route = |reason, flow: &str, captures: Vec<&str>| Route {
            flow: flow.into(),
            reason,
            captures: captures.into_iter().map(str::to_owned).collect(),
        };
        let note = |text: &str| RouteNote {
            text: text.to_owned(),
            refused: false,
            pending: None,
            room: None,
            route: None,
            pattern: None,
        };
        let routing: RoutingConfig = serde_yaml::from_str(
            "keywords:\n  - pattern: \"(?i)(deploy|release|ship)\"\n    flow: deployment-request-flow\n",
        )
        .expect("a routing section");
        assert_eq!(
            static_route(
                &route(RouteReason::Command, "acknowledge-alert-flow", vec!["ack"]),
                &note("ack"),
                &routing
            ),
            "command \"ACK\" (routing.commands) → acknowledge-alert-flow"
        );
        assert_eq!(
            static_route(
                &route(RouteReason::Keyword, "deployment-request-flow", vec!["deploy api"]),
                &note("please deploy api"),
                &routing
            ),
            "keyword /(?i)(deploy|release|ship)/ matched \"deploy\" (routing.keywords) → deployment-request-flow"
        );
        assert!(static_route(
            &route(RouteReason::Default, "whatsapp-help-flow", vec!["hi"]),
            &note("hi"),
            &routing
        )
        .ends_with("→ whatsapp-help-flow (routing.default_flow)"));
    }
}
