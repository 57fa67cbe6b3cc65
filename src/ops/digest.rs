//! Folding what waits for one person into one message. WhatsApp lets a person receive about one
//! message every six seconds; when their turn comes with several messages waiting, the rate
//! limiter asks [`Digests`] to say them in one:
//! - pages and other news about alerts become a digest naming every alert it stands for, counted
//!   by state and service, with how to act on them (INFO, ACK ALL, `ACK ALT-…`); its `about` lists
//!   the alerts, so that quoting it acts on them;
//! - war-room relays and team notices become one message with each of their lines.
//!
//! Replies are never folded: each answers something the person just asked. A template folds only
//! when the config has a fallback template, which carries the digest outside the 24-hour window.

use crate::config::WhatsAppConfig;
use aof_actors::model::{Lane, OutboundBody, OutboundMessage, QueuedJob};
use aof_actors::ports::{Fold, Folded};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Longest free-form text Meta accepts.
const MAX_TEXT: usize = 4096;
/// Longest text put in the fallback template's parameter.
const MAX_PARAMETER: usize = 1000;
/// Longest line a condensed message keeps of each folded one.
const MAX_LINE: usize = 200;

/// The application's [`Fold`]: digests of alerts, joined relays and notices.
#[derive(Debug, Clone)]
pub struct Digests {
    fallback: Option<Fallback>,
}

/// The template a digest goes as outside the 24-hour window.
#[derive(Debug, Clone)]
struct Fallback {
    name: String,
    language: String,
    placeholders: usize,
}

impl Digests {
    /// Digests carried outside the 24-hour window by `platforms.whatsapp.fallback_template`.
    pub fn new(whatsapp: &WhatsAppConfig) -> Self {
        let fallback = whatsapp.fallback_template.as_ref().and_then(|name| {
            let def = whatsapp.templates.get(name)?;
            Some(Fallback {
                name: name.clone(),
                language: def.language.clone(),
                placeholders: def.placeholders(),
            })
        });
        Digests { fallback }
    }

    /// Whether `job` may be said in a digest: text and buttons always, a template only when the
    /// digest has a template to go as.
    fn foldable(&self, job: &QueuedJob) -> bool {
        match job.message.body {
            OutboundBody::Text { .. } | OutboundBody::Interactive { .. } => true,
            OutboundBody::Template { .. } => self.fallback.is_some(),
        }
    }

    /// The fallback template with `title` and `text` (made one line and cut to fit).
    fn fallback_for(&self, title: &str, text: &str) -> Option<OutboundBody> {
        let fallback = self.fallback.as_ref()?;
        let mut parameters = vec![
            one_line(title, MAX_PARAMETER),
            one_line(text, MAX_PARAMETER),
        ];
        parameters.truncate(fallback.placeholders);
        (parameters.len() == fallback.placeholders).then(|| OutboundBody::Template {
            name: fallback.name.clone(),
            language: fallback.language.clone(),
            parameters,
        })
    }

    /// A digest of the alerts at the front of `waiting`.
    fn alerts(&self, waiting: &[&QueuedJob]) -> Option<Folded> {
        let front: Vec<&QueuedJob> = waiting
            .iter()
            .copied()
            .take_while(|j| alert_of(j).is_some() && self.foldable(j))
            .collect();
        if front.len() < 2 {
            return None;
        }
        // Named one per line when they fit, else by id ranges; fewer when even those do not.
        let (mut count, mut digest) = (front.len(), AlertDigest::of(&front));
        let mut text = digest.lines();
        if text.len() > MAX_TEXT {
            text = digest.compact();
            while text.len() > MAX_TEXT && count > 2 {
                count = count * 3 / 4;
                digest = AlertDigest::of(&front[..count]);
                text = digest.compact();
            }
        }
        let first = front[0];
        let ids: Vec<&str> = digest.alerts.iter().map(|a| a.id.as_str()).collect();
        let fallback = self.fallback_for(&digest.headline(), &digest.compact_body());
        let message = OutboundMessage::text(first.message.to.clone(), text, Lane::Alert)
            .about(Some(json!({ "alert_ids": ids })))
            .flow("digest")
            .fallback(fallback);
        Some(Folded { message, count })
    }

    /// The texts at the front of `waiting` (relays, notices) in one message: whole when they fit,
    /// else a line each.
    fn texts(&self, waiting: &[&QueuedJob]) -> Option<Folded> {
        let first = waiting[0];
        let front: Vec<&QueuedJob> = waiting
            .iter()
            .copied()
            .take_while(|j| {
                matches!(j.message.body, OutboundBody::Text { .. })
                    && j.message.group == first.message.group
            })
            .collect();
        if front.len() < 2 {
            return None;
        }
        let whole: Vec<&str> = front.iter().map(|j| j.message.preview.trim()).collect();
        let joined = whole.join("\n\n");
        let (text, count) = if joined.len() <= MAX_TEXT {
            (joined, front.len())
        } else {
            let mut text = String::new();
            let mut count = 0;
            for part in &whole {
                let line = format!("• {}\n", one_line(part, MAX_LINE));
                if text.len() + line.len() > MAX_TEXT {
                    break;
                }
                text.push_str(&line);
                count += 1;
            }
            (text.trim_end().to_owned(), count)
        };
        if count < 2 {
            return None;
        }
        let about = common_about(&front[..count]);
        let title = format!("{count} messages");
        let fallback = self.fallback_for(&title, &text);
        let mut message = OutboundMessage::text(first.message.to.clone(), text, first.message.lane)
            .about(about)
            .flow("digest")
            .fallback(fallback);
        message.group = first.message.group.clone();
        Some(Folded { message, count })
    }
}

impl Fold for Digests {
    fn fold(&self, waiting: &[&QueuedJob]) -> Option<Folded> {
        let first = waiting.first()?;
        match first.message.lane {
            Lane::Reply => None,
            Lane::Alert if alert_of(first).is_some() => self.alerts(waiting),
            _ => self.texts(waiting),
        }
    }
}

/// The alert a message is about, from its `about` (the flow step that named the alert put its
/// service, severity, state and title there too).
fn alert_of(job: &QueuedJob) -> Option<Alert> {
    let about = job.message.about.as_ref()?;
    let field = |key: &str| about.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(Alert {
        id: field("alert_id")?,
        state: field("state").unwrap_or_else(|| "firing".to_owned()),
        service: field("service"),
        title: field("title"),
    })
}

/// One alert as a digest names it.
#[derive(Debug, Clone)]
struct Alert {
    id: String,
    state: String,
    service: Option<String>,
    title: Option<String>,
}

/// The alerts a digest names, each once (with its latest news), in the order they came.
struct AlertDigest {
    alerts: Vec<Alert>,
}

impl AlertDigest {
    fn of(jobs: &[&QueuedJob]) -> Self {
        let mut alerts: Vec<Alert> = Vec::new();
        for alert in jobs.iter().filter_map(|j| alert_of(j)) {
            match alerts.iter_mut().find(|a| a.id == alert.id) {
                Some(known) => *known = alert,
                None => alerts.push(alert),
            }
        }
        AlertDigest { alerts }
    }

    /// The alerts in `state`.
    fn in_state<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'a Alert> + 'a {
        self.alerts.iter().filter(move |a| a.state == state)
    }

    /// The states present, firing first.
    fn states(&self) -> Vec<&str> {
        let mut states: Vec<&str> = Vec::new();
        for state in ["firing", "acknowledged", "resolved"]
            .into_iter()
            .chain(self.alerts.iter().map(|a| a.state.as_str()))
        {
            if !states.contains(&state) && self.in_state(state).next().is_some() {
                states.push(state);
            }
        }
        states
    }

    /// `🚨 37 alerts firing — api-server ×30, db ×7` and a line for each other state.
    fn counts(&self) -> String {
        let mut lines = Vec::new();
        for state in self.states() {
            let alerts: Vec<&Alert> = self.in_state(state).collect();
            let services = by_service(
                alerts
                    .iter()
                    .map(|a| a.service.as_deref().unwrap_or("unknown service")),
            );
            let n = alerts.len();
            let noun = if n == 1 { "alert" } else { "alerts" };
            lines.push(format!("{} *{n} {noun} {state}* — {services}", mark(state)));
        }
        lines.join("\n")
    }

    /// The first line, for the fallback template's title.
    fn headline(&self) -> String {
        let firing = self.in_state("firing").count();
        match firing {
            0 => format!("{} alert updates", self.alerts.len()),
            n => format!("{n} alerts firing"),
        }
    }

    /// How to act on the alerts it names.
    fn footer(&self) -> String {
        let first = self
            .in_state("firing")
            .next()
            .or(self.alerts.first())
            .map_or("ALT-0001", |a| a.id.as_str());
        format!(
            "Reply INFO for the list, ACK ALL to acknowledge them all, or ACK {first} for one \
             (RESOLVE and ESC too)."
        )
    }

    /// Every alert on a line of its own.
    fn lines(&self) -> String {
        let mut text = self.counts();
        text.push('\n');
        for state in self.states() {
            text.push('\n');
            for alert in self.in_state(state) {
                let title = alert.title.as_deref().unwrap_or_default();
                text.push_str(&format!("{} {} {title}", mark(state), alert.id));
                text.push('\n');
            }
        }
        text.push('\n');
        text.push_str(&self.footer());
        text
    }

    /// Every alert by its id, consecutive ids as ranges, a line per state.
    fn compact(&self) -> String {
        format!(
            "{}\n\n{}\n\n{}",
            self.counts(),
            self.compact_body(),
            self.footer()
        )
    }

    fn compact_body(&self) -> String {
        self.states()
            .into_iter()
            .map(|state| {
                let ids: Vec<&str> = self.in_state(state).map(|a| a.id.as_str()).collect();
                format!("{} {state}: {}", mark(state), ranges(&ids))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The mark a state is shown with.
fn mark(state: &str) -> &'static str {
    match state {
        "firing" => "🚨",
        "acknowledged" => "👀",
        "resolved" => "✅",
        _ => "•",
    }
}

/// `api-server ×30, db ×7`: how many of `services` name each, most first.
pub fn by_service<'a>(services: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for service in services {
        *counts.entry(service).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    by_count
        .iter()
        .map(|(service, n)| format!("{service} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ALT-0004–ALT-0007, ALT-0009`: ids sorted, runs of consecutive numbers written as ranges; ids
/// that do not end in a number are listed as they are.
pub fn ranges(ids: &[&str]) -> String {
    let mut numbered: Vec<(&str, u64, usize)> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    for id in ids {
        match id.rsplit_once('-') {
            Some((prefix, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                numbered.push((prefix, n.parse().unwrap_or(0), n.len()))
            }
            _ => other.push(id),
        }
    }
    numbered.sort();
    numbered.dedup();
    let name = |(prefix, n, width): (&str, u64, usize)| format!("{prefix}-{n:0width$}");
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbered.len() {
        let mut j = i;
        while j + 1 < numbered.len()
            && numbered[j + 1].0 == numbered[i].0
            && numbered[j + 1].1 == numbered[j].1 + 1
        {
            j += 1;
        }
        parts.push(match j - i {
            0 => name(numbered[i]),
            1 => format!("{}, {}", name(numbered[i]), name(numbered[j])),
            _ => format!("{}–{}", name(numbered[i]), name(numbered[j])),
        });
        i = j + 1;
    }
    parts.extend(other.into_iter().map(str::to_owned));
    parts.join(", ")
}

/// `text` on one line (Meta refuses new lines in a template parameter), cut to `max` bytes.
fn one_line(text: &str, max: usize) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// The `about` all of `jobs` share, if they share one.
fn common_about(jobs: &[&QueuedJob]) -> Option<Value> {
    let first = jobs.first()?.message.about.clone();
    jobs.iter()
        .all(|j| j.message.about == first)
        .then_some(first)
        .flatten()
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
