//! `WHO` outside a war room: who is on call now and whose shift starts next, each in their own
//! time zone, so that an engineer woken at 3 a.m. sees at a glance who else is awake and when the
//! next hand-over is.

use super::oncall::{local_time, on_shift, shift_of, RotaError};
use crate::config::{OncallEntry, WhatsAppConfig};
use crate::store::{Cover, Silence};
use chrono::{DateTime, NaiveTime, Timelike, Utc};

/// Minutes from wall-clock `now` to the next `then`, within a day.
fn minutes_until(now: NaiveTime, then: NaiveTime) -> u32 {
    let (a, b) = (
        now.hour() * 60 + now.minute(),
        then.hour() * 60 + then.minute(),
    );
    (b + 24 * 60 - a) % (24 * 60)
}

/// `4 h 30 min`, `25 min`.
fn span(minutes: u32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// What `WHO` answers from the static rota at `at`: everyone on shift, with when their shift ends
/// and their local time, then the shift that starts next.
pub fn from_rota(rota: &[OncallEntry], at: DateTime<Utc>) -> Result<String, RotaError> {
    let mut now_lines = Vec::new();
    let mut next: Option<(u32, String)> = None;
    for (i, entry) in rota.iter().enumerate() {
        let (zone, time) = local_time(entry, at)?;
        let there = time.format("%H:%M");
        let level = i + 1;
        let shift = shift_of(entry)?;
        if on_shift(entry, at)? {
            let until = match &shift {
                Some(s) => format!("until {} {zone}", s.end().format("%H:%M")),
                None => "always on call".to_owned(),
            };
            now_lines.push(format!(
                "• {} (level {level}): {until}, {there} there",
                entry.name
            ));
        } else if let Some(s) = &shift {
            let wait = minutes_until(time, s.start());
            let line = format!(
                "• {}: from {} {zone}, in {} ({there} there)",
                entry.name,
                s.start().format("%H:%M"),
                span(wait)
            );
            if next.as_ref().is_none_or(|(w, _)| wait < *w) {
                next = Some((wait, line));
            }
        }
    }
    let now_block = if now_lines.is_empty() {
        "• nobody on shift: pages go to the fallback number".to_owned()
    } else {
        now_lines.join("\n")
    };
    let mut answer = format!("📟 *On call now*\n{now_block}");
    if let Some((_, line)) = next {
        answer.push_str(&format!("\n\n*Next*\n{line}"));
    }
    Ok(answer)
}

/// What `WHO` answers from PagerDuty's on-calls: each name with its escalation level.
pub fn from_levels(levels: &[(String, String)]) -> String {
    let lines: Vec<String> = levels
        .iter()
        .map(|(name, level)| format!("• {name} (level {level})"))
        .collect();
    format!("📟 *On call now* (PagerDuty)\n{}", lines.join("\n"))
}

/// `HH:MM UTC` of an instant in Unix milliseconds.
fn clock(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "?".into(), |t| t.format("%H:%M UTC").to_string())
}

/// The whole `WHO` answer: the covers in force above who is on call (they are paged first), the
/// silenced services below, and the hint about war rooms.
pub fn with_overrides(
    on_call: String,
    covers: &[Cover],
    silences: &[Silence],
    wa: &WhatsAppConfig,
) -> String {
    let mut answer = String::new();
    if let Some(block) = covering(covers, wa) {
        answer.push_str(&block);
        answer.push_str("\n\n");
    }
    answer.push_str(&on_call);
    if let Some(block) = silenced(silences) {
        answer.push_str("\n\n");
        answer.push_str(&block);
    }
    answer.push_str("\n\nIn a war room, WHO lists its members.");
    answer
}

/// The covers and silences in force, as STATUS adds them below the system's status; `None` when
/// there are none.
pub fn overrides(covers: &[Cover], silences: &[Silence], wa: &WhatsAppConfig) -> Option<String> {
    let blocks: Vec<String> = [covering(covers, wa), silenced(silences)]
        .into_iter()
        .flatten()
        .collect();
    (!blocks.is_empty()).then(|| blocks.join("\n\n"))
}

/// `🔁 *Covering*` and a line per cover; `None` without covers.
fn covering(covers: &[Cover], wa: &WhatsAppConfig) -> Option<String> {
    if covers.is_empty() {
        return None;
    }
    let lines: Vec<String> = covers
        .iter()
        .map(|c| {
            let by = wa.label(Some(&c.set_by));
            format!(
                "• {} has the pager until {} (COVER by {by})",
                c.name,
                clock(c.until_ms)
            )
        })
        .collect();
    Some(format!("🔁 *Covering*\n{}", lines.join("\n")))
}

/// `🔕 *Silenced*` and a line per silenced service; `None` without silences.
fn silenced(silences: &[Silence]) -> Option<String> {
    if silences.is_empty() {
        return None;
    }
    let lines: Vec<String> = silences
        .iter()
        .map(|s| {
            format!(
                "• {} until {} ({} held)",
                s.service,
                clock(s.until_ms),
                s.held.len()
            )
        })
        .collect();
    Some(format!("🔕 *Silenced*\n{}", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(name: &str, hours: Option<&str>, zone: Option<&str>) -> OncallEntry {
        OncallEntry {
            name: name.into(),
            phone: "+15551234567".into(),
            hours: hours.map(str::to_owned),
            timezone: zone.map(str::to_owned),
        }
    }

    #[test]
    fn who_names_the_shift_on_now_and_the_next_one_in_their_zones() {
        let rota = [
            entry("Alice", Some("09:00-18:00"), Some("America/New_York")),
            entry("Bob", Some("18:00-09:00"), Some("America/New_York")),
            entry("Chen", Some("09:00-17:00"), Some("Asia/Singapore")),
        ];
        // 14:30 UTC: 09:30 in New York (Alice on shift), 22:30 in Singapore.
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 14, 30, 0).unwrap();
        let answer = from_rota(&rota, at).unwrap();
        assert!(
            answer.contains("• Alice (level 1): until 18:00 America/New_York, 09:30 there"),
            "{answer}"
        );
        // Bob starts in 8 h 30 min, Chen at 09:00 Singapore in 10 h 30 min: Bob is next.
        assert!(
            answer.contains(
                "*Next*\n• Bob: from 18:00 America/New_York, in 8 h 30 min (09:30 there)"
            ),
            "{answer}"
        );
        assert!(!answer.contains("Chen"), "{answer}");
    }

    #[test]
    fn an_always_on_entry_and_an_empty_rota_read_plainly() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 3, 0, 0).unwrap();
        let answer = from_rota(&[entry("Dana", None, None)], at).unwrap();
        assert!(
            answer.contains("• Dana (level 1): always on call, 03:00 there"),
            "{answer}"
        );
        assert!(!answer.contains("*Next*"), "{answer}");
        assert!(from_rota(&[], at).unwrap().contains("nobody on shift"));
    }

    #[test]
    fn covers_come_above_who_is_on_call_and_silences_below_also_with_pagerduty() {
        let wa: WhatsAppConfig = serde_yaml::from_str(
            "type: whatsapp\nphone_number_id: \"1\"\naccess_token: t\nverify_token: v\napp_secret: s\n",
        )
        .unwrap();
        let on_call = from_levels(&[("Alice".into(), "1".into())]);
        let cover = Cover {
            phone: aof_actors::WaId::parse("15557654321").unwrap(),
            name: "Bob".into(),
            until_ms: 1_796_659_200_000,
            set_by: "Bob".into(),
        };
        let silence = Silence {
            id: 1,
            service: "search".into(),
            until_ms: 1_796_659_200_000,
            set_by: "+15551234567".into(),
            held: vec!["ALT-0001".into()],
        };
        let answer = with_overrides(on_call, &[cover], &[silence], &wa);
        let covering = answer.find("🔁 *Covering*").expect("covers shown");
        let now = answer
            .find("📟 *On call now* (PagerDuty)")
            .expect("PagerDuty's on-calls");
        let silenced = answer
            .find("🔕 *Silenced*\n• search until")
            .expect("silences shown");
        assert!(covering < now && now < silenced, "{answer}");
        assert!(answer.contains("• Bob has the pager until"), "{answer}");
        assert!(answer.contains("(1 held)"), "{answer}");
        assert!(
            answer.ends_with("In a war room, WHO lists its members."),
            "{answer}"
        );
    }
}
