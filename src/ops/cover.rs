//! `COVER` from the chat: someone takes the pager for a while (`COVER 2h`, `COVER until 18:00`) or
//! hands it to a named person (`COVER Bob 90m`, `COVER Bob until 18:00`). A cover puts that person
//! first in line until it ends, above the rota or PagerDuty; it is kept in the store, audited and
//! announced. Only the people `oncall.coverers` names may set a cover for someone else.

use super::Refused;
use crate::config::WhatsAppConfig;
use crate::store::Cover;
use aof_actors::WaId;
use chrono::{DateTime, Duration as Span, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest cover: a week, so that a forgotten one does not outlive a rota change for long.
pub const LONGEST: Span = Span::days(7);

/// How `COVER` is written, for an answer to one written otherwise.
pub const HOW: &str =
    "Write COVER 2h, COVER 90m, COVER until 18:00, or COVER <name> 2h / COVER <name> until 18:00.";

/// When a cover ends, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// For this long from now.
    For(Span),
    /// Until this wall-clock time next comes, in the zone of whoever set it.
    At(NaiveTime),
}

/// A `COVER` as written: who (a name; `None` for whoever wrote it) and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The person named, when not the writer.
    pub who: Option<String>,
    /// When it ends.
    pub until: Until,
}

/// `2h`, `90m`, `45min`, `3 hours` (as one or two words).
fn duration(words: &[&str]) -> Option<Span> {
    let joined = words.concat().to_ascii_lowercase();
    let digits: String = joined.chars().take_while(char::is_ascii_digit).collect();
    let amount: i64 = digits.parse().ok()?;
    let unit = &joined[digits.len()..];
    let span = match unit {
        "h" | "hr" | "hrs" | "hour" | "hours" => Span::hours(amount),
        "m" | "min" | "mins" | "minute" | "minutes" => Span::minutes(amount),
        _ => return None,
    };
    (span > Span::zero()).then_some(span)
}

/// When something ends, written as `2h`, `for 90 min` or `until 18:00`: the whole of `words`, or
/// `None`.
pub fn read_until(words: &[&str]) -> Option<Until> {
    match words {
        [until, time] if until.eq_ignore_ascii_case("until") => {
            NaiveTime::parse_from_str(time, "%H:%M").ok().map(Until::At)
        }
        [first, rest @ ..] if first.eq_ignore_ascii_case("for") && !rest.is_empty() => {
            read_until(rest)
        }
        [_] | [_, _] => duration(words).map(Until::For),
        _ => None,
    }
}

/// Reads what follows `COVER`; why not, in a sentence, when it cannot.
pub fn parse(text: &str) -> Result<Ask, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let rest = match words.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("COVER") => rest,
        _ => return Err(HOW.to_owned()),
    };
    // The end is the last one to three words (the longest reading: `for 2h`, not `2h`); what
    // comes before is the name.
    let (n, until) = (1..=3.min(rest.len()))
        .rev()
        .find_map(|n| read_until(&rest[rest.len() - n..]).map(|u| (n, u)))
        .ok_or(HOW)?;
    if let Until::For(span) = until {
        if span > LONGEST {
            return Err(format!("A cover lasts at most 7 days. {HOW}"));
        }
    }
    let who = &rest[..rest.len() - n];
    let who = (!who.is_empty()).then(|| who.join(" "));
    Ok(Ask { who, until })
}

/// The cover `by` asks for at `now`: who (themselves, or the person they name), until when (a
/// wall-clock time read in `by`'s rota time zone, else UTC). Refused, in a sentence, when `by` may
/// not cover for others, or when the person is not someone the directory or the rota knows.
pub fn settle(
    wa: &WhatsAppConfig,
    by: &WaId,
    ask: &Ask,
    now: DateTime<Utc>,
) -> Result<Cover, Refused> {
    let rota = &wa.oncall.static_oncall;
    let known = |who: &WaId| {
        wa.name_of(who).or_else(|| {
            rota.iter()
                .find(|e| wa.reach(&e.phone).as_ref() == Some(who))
                .map(|e| e.name.clone())
        })
    };
    let (name, phone) = match &ask.who {
        None => {
            let name = known(by).ok_or_else(|| {
                Refused::Answer("ℹ️ Only people in the directory or the rota can take the pager; ask whoever runs this bot to add you.".into())
            })?;
            (name, by.clone())
        }
        Some(named) => {
            let person = wa
                .person(named)
                .and_then(|p| Some((p.name.clone(), wa.canonical(p.wa()?))))
                .or_else(|| {
                    let entry = rota
                        .iter()
                        .find(|e| e.name.eq_ignore_ascii_case(named.trim()))?;
                    Some((entry.name.clone(), wa.reach(&entry.phone)?))
                })
                .ok_or_else(|| {
                    Refused::Answer(format!(
                        "ℹ️ I know no {named} with a WhatsApp number in the directory or the rota."
                    ))
                })?;
            let allowed = wa.oncall.coverers.iter().any(|c| {
                wa.reach(c).as_ref() == Some(by) || wa.person(c).is_some_and(|p| p.is(by))
            });
            if person.1 != *by && !allowed {
                return Err(Refused::Answer(
                    "ℹ️ Only the people in oncall.coverers may set a cover for someone else; COVER 2h takes the pager yourself.".into(),
                ));
            }
            person
        }
    };
    // `parse` bounds a duration by `LONGEST`; a time of day is at most a day away.
    let until = ask.until.end(now, zone_of(wa, by));
    Ok(Cover {
        phone,
        name,
        until_ms: until.timestamp_millis(),
        set_by: by.e164(),
    })
}

/// The time zone `who` reads wall-clock times in: their rota entry's, else UTC.
pub fn zone_of(wa: &WhatsAppConfig, who: &WaId) -> Tz {
    wa.oncall
        .static_oncall
        .iter()
        .find(|e| wa.reach(&e.phone).as_ref() == Some(who))
        .and_then(|e| e.timezone.as_deref()?.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// An end as people read it: `2026-12-07 18:00 UTC, in 3 h 30 min`.
pub fn until_text(until_ms: i64, now: DateTime<Utc>) -> String {
    let until = DateTime::from_timestamp_millis(until_ms).unwrap_or(now);
    let minutes = (until - now).num_minutes().max(0);
    format!(
        "{} UTC, in {} h {} min",
        until.format("%Y-%m-%d %H:%M"),
        minutes / 60,
        minutes % 60
    )
}

impl Until {
    /// The instant it ends, from `now`, reading a wall-clock time in `zone`.
    pub fn end(self, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        match self {
            Until::For(span) => now + span,
            Until::At(time) => {
                let local = now.with_timezone(&zone);
                let mut day = local.date_naive();
                if local.time() >= time {
                    day = day.succ_opt().unwrap_or(day);
                }
                // A time that a clock change skips or repeats takes its earliest reading.
                let at = zone
                    .from_local_datetime(&day.and_time(time))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc));
                at.unwrap_or(now + Span::hours(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_are_read_as_written() {
        let hours = |h| Until::For(Span::hours(h));
        for (text, who, until) in [
            ("COVER 2h", None, hours(2)),
            ("cover 90m", None, Until::For(Span::minutes(90))),
            ("COVER 3 hours", None, hours(3)),
            ("COVER Bob 2h", Some("Bob"), hours(2)),
            ("COVER Bob for 2h", Some("Bob"), hours(2)),
            (
                "COVER Mary Ann 45 min",
                Some("Mary Ann"),
                Until::For(Span::minutes(45)),
            ),
            (
                "COVER Bob until 18:00",
                Some("Bob"),
                Until::At(NaiveTime::from_hms_opt(18, 0, 0).unwrap()),
            ),
            (
                "COVER until 07:30",
                None,
                Until::At(NaiveTime::from_hms_opt(7, 30, 0).unwrap()),
            ),
        ] {
            let ask = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((ask.who.as_deref(), ask.until), (who, until), "{text}");
        }
        for bad in [
            "COVER",
            "COVER Bob",
            "COVER until",
            "COVER until 25:00",
            "COVER 0h",
            "COVER 9d",
            "COVER 200h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn until_a_time_is_the_next_time_that_clock_reads_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 14, 30, 0).unwrap();
        let six = Until::At(NaiveTime::from_hms_opt(18, 0, 0).unwrap());
        assert_eq!(
            six.end(now, Tz::UTC),
            Utc.with_ymd_and_hms(2026, 12, 7, 18, 0, 0).unwrap()
        );
        // 18:00 in New York is 23:00 UTC in December.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            six.end(now, ny),
            Utc.with_ymd_and_hms(2026, 12, 7, 23, 0, 0).unwrap()
        );
        // 07:00 has passed today: tomorrow's.
        let seven = Until::At(NaiveTime::from_hms_opt(7, 0, 0).unwrap());
        assert_eq!(
            seven.end(now, Tz::UTC),
            Utc.with_ymd_and_hms(2026, 12, 8, 7, 0, 0).unwrap()
        );
    }
}
