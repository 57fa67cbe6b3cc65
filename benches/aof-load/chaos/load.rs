//! The chaos scenario's load: who takes part, what the config adds for them, each cycle's events
//! and the deliveries each event must cause.

use crate::fake::Send;
use crate::setup::{self, ONCALL};
use rand::rngs::StdRng;
use rand::Rng as _;
use serde_json::{json, Value};

/// Seconds from a page to each escalation (the shipped flows say 300).
pub const ESCALATE_AFTER_S: u64 = 2;
/// `unconfirmed_send_grace_secs`: how long a restarted bot waits for statuses of the sends it
/// left `sending` before it sends them again.
pub const GRACE_S: u64 = 2;
/// War-room members, the reporter and the on-call engineer included.
pub const ROOM_MEMBERS: usize = 6;
/// Each cycle's load.
const CHATS: usize = 20;
const ALERTS: usize = 6;
const UPDATES: usize = 3;
const APPROVALS: usize = 2;

/// One delivery an event must cause: a send to `to` whose text contains every needle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The recipient's digits (`deploy` for the deploy webhook).
    pub to: String,
    /// Texts the send must contain.
    pub needles: Vec<String>,
}

impl Delivery {
    fn new(to: &str, needles: &[&str]) -> Delivery {
        Delivery {
            to: to.to_owned(),
            needles: needles.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    /// Whether `send` is this delivery (accepted, to the recipient, with every needle in one of
    /// its [`items`]: a folded send holds several notes, and the first needle of one with the
    /// second of the next is neither).
    pub fn matches(&self, send: &Send) -> bool {
        let Some(first) = self.needles.first() else {
            return send.accepted && send.to == self.to;
        };
        send.accepted
            && send.to == self.to
            && items(&send.what, first)
                .iter()
                .any(|item| self.needles.iter().all(|n| item.contains(n.as_str())))
    }
}

/// The parts of a send's text that may each be one delivery whose first needle is `first`: the
/// text cut before every line that begins as the line holding `first` does. Texts folded into one
/// message (whole, or a `• ` line each) begin alike when they are of one kind, like every
/// "⬆️ Not acknowledged in time, escalated to …" note.
fn items<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let Some(at) = text.find(first) else {
        return Vec::new();
    };
    let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let start: String = text[line..].chars().take(6).collect();
    let mut items = Vec::new();
    let mut from = 0;
    for (cut, _) in text.match_indices(&format!("\n{start}")) {
        items.push(&text[from..cut]);
        from = cut + 1;
    }
    items.push(&text[from..]);
    items
}

/// How an event reaches the bot.
pub enum Post {
    /// A signed WhatsApp notification with one text message.
    Text {
        /// The sender's digits.
        from: String,
        /// The message.
        text: String,
    },
    /// A JSON body to a flow webhook, with the bearer token and, when given, an `Idempotency-Key`.
    Flow {
        /// Under `/webhooks`.
        path: &'static str,
        /// The `Idempotency-Key`.
        key: Option<String>,
        /// The JSON body.
        body: Value,
    },
}

/// An event of the load and what it must cause; `then` is posted once `then.0` has arrived.
pub struct Event {
    /// What it is, for a report.
    pub label: String,
    /// The wamid of a text (a redelivery carries the same).
    pub id: String,
    /// How it is posted.
    pub post: Post,
    /// What it must cause.
    pub expects: Vec<Delivery>,
    /// A follow-up, posted once the delivery arrived.
    pub then: Option<(Delivery, Box<Event>)>,
}

/// Second on the rota.
pub fn sam() -> String {
    setup::sender(403, 1)
}
/// Third on the rota.
pub fn tara() -> String {
    setup::sender(403, 2)
}
/// Who requests the deployments.
fn rita() -> String {
    setup::sender(403, 3)
}
/// The `i`-th person asking for HELP or STATUS in cycle `cycle`.
fn chatter(cycle: usize, i: usize) -> String {
    setup::sender(400, (cycle * 100 + i) as u32)
}
/// The `j`-th approver of cycle `cycle`: name and number.
fn approver(cycle: usize, j: usize) -> (String, String) {
    (
        format!("Approver {cycle:02}{j}"),
        setup::sender(401, (cycle * 10 + j) as u32),
    )
}
/// The `i`-th war-room member but the on-call engineer (as [`crate::fanout::war_room`] numbers them).
fn room_member(i: usize) -> String {
    setup::sender(200, i as u32)
}

/// The config's additions: grace, allow-list, people, approvers, where deployments and Slack go.
pub fn whatsapp_extra(graph: &str, cycles: usize) -> String {
    let mut allowed: Vec<String> = (0..ROOM_MEMBERS).map(room_member).collect();
    let mut people = vec![("Rita".to_owned(), rita())];
    let mut services = String::new();
    for c in 0..cycles {
        allowed.extend((0..CHATS).map(|i| chatter(c, i)));
        for j in 0..APPROVALS {
            let (name, phone) = approver(c, j);
            services.push_str(&format!(
                "            \"chaos-c{c:02}-d{j}\": [\"{name}\"]\n"
            ));
            allowed.push(phone.clone());
            people.push((name, phone));
        }
    }
    let allowed: String = allowed
        .iter()
        .map(|n| format!("      - \"+{n}\"\n"))
        .collect();
    let people: String = people
        .iter()
        .map(|(name, n)| format!("      - name: \"{name}\"\n        phone: \"+{n}\"\n"))
        .collect();
    format!(
        "    unconfirmed_send_grace_secs: {GRACE_S}\n    allowed_numbers:\n{allowed}    people:\n{people}\
         \x20   approvals:\n      environments:\n        \"*\":\n          approvers: []\n          services:\n{services}\
         \x20   deployments:\n      webhook_url: \"{graph}/deploy\"\n\
         \x20   notifier:\n      slack:\n        webhook_url: \"{graph}/slack\"\n"
    )
}

/// An alert's deliveries: the page, and for a critical one three escalations (Sam, Tara, then
/// Olivia again) each with a note to the team group (Olivia).
fn alert_deliveries(severity: &str, service: &str, message: &str) -> Vec<Delivery> {
    let page = format!("ops_alert|{}|{service}|{message}|", severity.to_uppercase());
    let mut expects = vec![Delivery::new(ONCALL, &[&page])];
    if severity == "critical" {
        let escalated = format!("ops_alert|ESCALATED|{service}|{message}|");
        let title = format!("] {service}: ");
        for (name, phone) in [("Sam", sam()), ("Tara", tara()), ("Olivia", ONCALL.into())] {
            expects.push(Delivery::new(&phone, &[&escalated]));
            let note = format!("escalated to {name}");
            expects.push(Delivery::new(ONCALL, &[&note, &title]));
        }
    }
    expects
}

/// An Alertmanager notification of one firing alert.
fn alertmanager(severity: &str, service: &str, message: &str, fingerprint: &str) -> Value {
    let labels = json!({ "alertname": "ChaosTest", "service": service, "severity": severity });
    json!({
        "version": "4", "groupKey": format!("{{}}:{{service=\"{service}\"}}"), "status": "firing",
        "receiver": "whatsapp-oncall", "groupLabels": { "alertname": "ChaosTest" },
        "commonLabels": labels, "commonAnnotations": { "summary": message },
        "externalURL": "http://alertmanager.load:9093", "truncatedAlerts": 0,
        "alerts": [{ "status": "firing", "labels": labels, "annotations": { "summary": message },
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.load:9090/graph", "fingerprint": fingerprint }]
    })
}

/// Cycle `c`'s events, drawn from `rng`; `room` is the war room, the on-call engineer second.
pub fn cycle_events(c: usize, rng: &mut StdRng, room: &[String]) -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..CHATS {
        let from = chatter(c, i);
        let (text, needle) = if rng.random_bool(0.5) {
            ("HELP", "I'm the ops bot")
        } else {
            ("STATUS", "System Status")
        };
        events.push(Event {
            label: format!("c{c:02} {text} from {from}"),
            id: format!("wamid.chaos.c{c}.chat{i}"),
            expects: vec![Delivery::new(&from, &[needle])],
            post: Post::Text {
                from,
                text: text.into(),
            },
            then: None,
        });
    }
    for i in 0..ALERTS {
        let severity = if rng.random_bool(0.6) {
            "critical"
        } else {
            "warning"
        };
        let (service, message) = (
            format!("chaos-c{c:02}-a{i:02}"),
            format!("chaos c{c:02}a{i:02}"),
        );
        let (label, post) = if rng.random_bool(0.3) {
            let body = alertmanager(severity, &service, &message, &format!("fp{c:02}{i:02}"));
            let post = Post::Flow {
                path: "/alert/oncall",
                key: None,
                body,
            };
            (format!("c{c:02} Alertmanager {severity} {service}"), post)
        } else {
            let body = json!({ "severity": severity, "service": service, "message": message });
            let key = Some(format!("chaos-alert-{c}-{i}"));
            let post = Post::Flow {
                path: "/alert/oncall",
                key,
                body,
            };
            (format!("c{c:02} alert {severity} {service}"), post)
        };
        events.push(Event {
            label,
            id: format!("alert-{c}-{i}"),
            expects: alert_deliveries(severity, &service, &message),
            post,
            then: None,
        });
    }
    for u in 0..UPDATES {
        // Anyone in the room but the on-call engineer (the second).
        let k = rng.random_range(0..room.len() - 1);
        let from = room[if k == 0 { 0 } else { k + 1 }].clone();
        let text = format!("chaos update c{c:02}u{u}");
        let needle = format!("]: {text}");
        let expects = room
            .iter()
            .filter(|m| **m != from)
            .map(|m| Delivery::new(m, &[&needle]))
            .collect();
        events.push(Event {
            label: format!("c{c:02} room update {text} from {from}"),
            id: format!("wamid.chaos.c{c}.room{u}"),
            post: Post::Text { from, text },
            expects,
            then: None,
        });
    }
    for j in 0..APPROVALS {
        let (name, phone) = approver(c, j);
        let (service, version) = (format!("chaos-c{c:02}-d{j}"), format!("1.{c}.{j}"));
        let asked = Delivery::new(
            &phone,
            &[&format!(
                "deployment_approval|{service}|{version}|staging|Rita"
            )],
        );
        let approve = Event {
            label: format!("c{c:02} APPROVE {service} by {name} ({phone})"),
            id: format!("wamid.chaos.c{c}.approve{j}"),
            expects: vec![
                Delivery::new(&phone, &[&format!("{service} v{version} is now deploying")]),
                Delivery::new(
                    &rita(),
                    &["Deployment approved!", &format!("Service: {service}\n")],
                ),
                Delivery::new("deploy", &[&format!("deploy|{service}|{version}|staging")]),
            ],
            post: Post::Text {
                from: phone.clone(),
                text: "APPROVE".into(),
            },
            then: None,
        };
        events.push(Event {
            label: format!("c{c:02} approval request {service}"),
            id: format!("deploy-{c}-{j}"),
            expects: vec![asked.clone()],
            post: Post::Flow {
                path: "/deploy/request-approval",
                key: Some(format!("chaos-deploy-{c}-{j}")),
                body: json!({ "service": service, "version": version,
                              "environment": "staging", "requester": "Rita" }),
            },
            then: Some((asked, Box::new(approve))),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn send(what: &str) -> Send {
        Send {
            at: Instant::now(),
            to: "15550001111".into(),
            what: what.into(),
            accepted: true,
        }
    }

    #[test]
    fn a_delivery_matches_its_own_note_in_a_folded_send_and_not_halves_of_two() {
        let sam = Delivery::new("15550001111", &["escalated to Sam", "] chaos-c00-a02: "]);
        let note = |to: &str, alert: &str| {
            format!("⬆️ Not acknowledged in time, escalated to {to}\n\n🚨 [CRITICAL] {alert}: x")
        };
        assert!(sam.matches(&send(&note("Sam", "chaos-c00-a02"))));
        let folded = format!(
            "{}\n\n{}",
            note("Sam", "chaos-c01-a00"),
            note("Tara", "chaos-c00-a02")
        );
        assert!(!sam.matches(&send(&folded)), "two halves");
        let folded = format!(
            "{}\n\n{}",
            note("Tara", "chaos-c01-a00"),
            note("Sam", "chaos-c00-a02")
        );
        assert!(sam.matches(&send(&folded)), "its own note, second");
        let lines = "• ⬆️ Not acknowledged in time, escalated to Sam 🚨 [CRITICAL] chaos-c01-a00: x\n\
                     • ⬆️ Not acknowledged in time, escalated to Tara 🚨 [CRITICAL] chaos-c00-a02: y";
        assert!(!sam.matches(&send(lines)), "two halves, a line each");
    }

    #[test]
    fn needles_across_lines_of_one_message_still_match() {
        let approved = Delivery::new("15550001111", &["Deployment approved!", "Service: svc-1\n"]);
        let text = "✅ Deployment approved!\n\nService: svc-1\nVersion: 1.0.0";
        assert!(approved.matches(&send(text)));
        let folded = format!("{text}\n\n✅ Deployment approved!\n\nService: svc-2\nVersion: 1.0.1");
        assert!(approved.matches(&send(&folded)));
    }
}
