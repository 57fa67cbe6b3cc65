//! What the fake Graph API received in the failover scenario, counted against what the storm asked
//! for: each alert named to the on-call engineer (an `ops_alert` page, or an id in a digest), each
//! HELP answered, and the most sends in any one second.

use crate::digests::named_in;
use crate::fake::Send;
use crate::setup::{self, ONCALL};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The series of the numbers asking for HELP ([`setup::sender`]).
const ASKERS: u32 = 160;

/// The message of storm alert `i`.
pub fn alert_message(i: usize) -> String {
    format!("failover-{i}")
}

/// The number of the `i`th person asking for HELP.
pub fn asker(i: usize) -> String {
    setup::sender(ASKERS, i as u32)
}

/// Which storm alert a message names (`failover-N`), if one.
fn alert_number(message: &str) -> Option<usize> {
    message.strip_prefix("failover-")?.parse().ok()
}

/// Which asker a number is, if one.
fn asker_number(to: &str) -> Option<usize> {
    let prefix = setup::sender(ASKERS, 0);
    let series = &prefix[..prefix.len() - 7];
    to.strip_prefix(series)?.parse().ok()
}

/// How many times each alert was named and each HELP answered, and the sends that were neither.
pub struct Told {
    /// Per storm alert, the times it was named to the engineer.
    pub alerts: Vec<usize>,
    /// Per asker, the help replies received.
    pub helps: Vec<usize>,
    /// Accepted sends that were neither a page, a digest nor a help reply to an asker.
    pub other: usize,
}

impl Told {
    /// Alerts never named plus HELPs never answered.
    pub fn lost(&self) -> usize {
        let missing = |counts: &[usize]| counts.iter().filter(|c| **c == 0).count();
        missing(&self.alerts) + missing(&self.helps)
    }

    /// Extra namings and extra answers.
    pub fn duplicated(&self) -> usize {
        let extra = |counts: &[usize]| counts.iter().map(|c| c.saturating_sub(1)).sum::<usize>();
        extra(&self.alerts) + extra(&self.helps)
    }

    /// What was lost and what came twice, a line each (at most 20 each).
    pub fn detail(&self) -> (Vec<String>, Vec<String>) {
        let (mut lost, mut twice) = (Vec::new(), Vec::new());
        let lines = self
            .alerts
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, format!("alert {} to {ONCALL}", alert_message(i))));
        let helps = (self.helps.iter().enumerate())
            .map(|(i, n)| (*n, format!("help reply to {}", asker(i))));
        for (n, what) in lines.chain(helps) {
            if n == 0 && lost.len() < 20 {
                lost.push(format!("{what}: never sent"));
            } else if n > 1 && twice.len() < 20 {
                twice.push(format!("{what}: sent {n} times"));
            }
        }
        (lost, twice)
    }
}

/// Counts `sends` against `alerts` alerts and `helps` askers; `ids` maps the alert ids the bot
/// gave (`ALT-0012` → 12) to their messages, for the digests.
pub fn told(sends: &[Send], alerts: usize, helps: usize, ids: &HashMap<u64, String>) -> Told {
    let mut t = Told {
        alerts: vec![0; alerts],
        helps: vec![0; helps],
        other: 0,
    };
    for send in sends.iter().filter(|s| s.accepted) {
        if send.to == ONCALL {
            // ops_alert|severity|service|message|time
            if send.what.starts_with("ops_alert|") {
                let named = send.what.split('|').nth(3).and_then(alert_number);
                match named.filter(|i| *i < alerts) {
                    Some(i) => t.alerts[i] += 1,
                    None => t.other += 1,
                }
                continue;
            }
            if send.what.contains("alerts firing") {
                for id in named_in(&send.what) {
                    let named = ids.get(&id).and_then(|m| alert_number(m));
                    match named.filter(|i| *i < alerts) {
                        Some(i) => t.alerts[i] += 1,
                        None => t.other += 1,
                    }
                }
                continue;
            }
        }
        let asked = asker_number(&send.to).filter(|i| *i < helps);
        match asked {
            Some(i) if send.what.contains("I'm the ops bot") => t.helps[i] += 1,
            _ => t.other += 1,
        }
    }
    t
}

/// The most sends that arrived within any one second among those that arrived in `[from, to]`.
pub fn most_in_one_second(sends: &[Send], from: Instant, to: Instant) -> usize {
    let times: Vec<Instant> = sends
        .iter()
        .map(|s| s.at)
        .filter(|at| *at >= from && *at <= to)
        .collect();
    aof_actors::testing::most_in_any_window(&times, Duration::from_secs(1))
}

/// How many sends arrived in the second before `now`.
pub fn in_last_second(sends: &[Send], now: Instant) -> usize {
    let from = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
    sends.iter().filter(|s| s.at >= from).count()
}

/// The last send that arrived before `at` and the first one after it: the pause in sending around
/// a kill.
pub fn gap_around(sends: &[Send], at: Instant) -> Option<Duration> {
    let before = sends.iter().map(|s| s.at).filter(|t| *t <= at).max()?;
    let after = sends.iter().map(|s| s.at).filter(|t| *t > at).min()?;
    Some(after - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(to: &str, what: &str) -> Send {
        Send {
            at: Instant::now(),
            to: to.to_owned(),
            what: what.to_owned(),
            accepted: true,
        }
    }

    #[test]
    fn pages_digests_and_replies_are_counted_once_each() {
        let ids = HashMap::from([(4, alert_message(1)), (5, alert_message(2))]);
        let sends = [
            send(ONCALL, "ops_alert|CRITICAL|api|failover-0|12:00"),
            send(ONCALL, "🚨 2 alerts firing: ALT-0004–ALT-0005"),
            send(ONCALL, "ops_alert|CRITICAL|api|failover-2|12:00"),
            send(&asker(1), "👋 Hi, I'm the ops bot."),
            send(&asker(7), "something else"),
        ];
        let t = told(&sends, 3, 2, &ids);
        assert_eq!(t.alerts, [1, 1, 2]);
        assert_eq!(t.helps, [0, 1]);
        assert_eq!((t.lost(), t.duplicated(), t.other), (1, 1, 1));
    }
}
