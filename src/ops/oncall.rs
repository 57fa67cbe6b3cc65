//! Who is on call at an instant, from the static rota (`platforms.whatsapp.oncall.static_oncall`).
//!
//! Pure functions of the rota and an instant, so they test with fixed times: the `oncall-manager`
//! agent passes `Utc::now()`. Each entry's `hours` (`HH:MM-HH:MM`) are wall-clock times in its
//! `timezone` (UTC when absent), so a 09:00-18:00 shift in `America/New_York` follows daylight
//! saving; a shift whose end is not after its start crosses midnight (18:00-09:00 is 18:00 today to
//! 09:00 tomorrow); no `hours` means always on.
//!
//! The rota's order is its escalation order: entry `i` is escalation level `i + 1`, and the
//! escalation after someone is the next entry after theirs, wrapping once, preferring whoever is on
//! shift at that instant.

use crate::config::OncallEntry;
use aof_actors::WaId;
use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

/// A rota entry that cannot be read. Config validation rejects these at load, so this only shows
/// when a rota was built some other way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotaError {
    /// `hours` is not `HH:MM-HH:MM`.
    #[error("static_oncall `{name}`: hours `{hours}` is not a shift; write HH:MM-HH:MM, e.g. 18:00-09:00")]
    Hours {
        /// The entry's name.
        name: String,
        /// What was written.
        hours: String,
    },
    /// `timezone` is not an IANA zone.
    #[error(
        "static_oncall `{name}`: timezone `{zone}` is not an IANA zone such as America/New_York"
    )]
    Zone {
        /// The entry's name.
        name: String,
        /// What was written.
        zone: String,
    },
    /// `phone` holds no phone number.
    #[error("static_oncall `{name}`: `{phone}` is not a phone number")]
    Phone {
        /// The entry's name.
        name: String,
        /// What was written.
        phone: String,
    },
}

/// A daily shift in wall-clock time: on from `start` (inclusive) to `end` (exclusive), crossing
/// midnight when `end` is not after `start`. Equal ends mean the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    start: NaiveTime,
    end: NaiveTime,
}

impl Shift {
    /// Reads `HH:MM-HH:MM`.
    pub fn parse(hours: &str) -> Option<Shift> {
        let (a, b) = hours.split_once('-')?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        Some(Shift {
            start: time(a)?,
            end: time(b)?,
        })
    }

    /// When the shift starts, in its own zone's wall-clock time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// When the shift ends, in its own zone's wall-clock time.
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Whether wall-clock time `t` falls in the shift.
    pub fn contains(&self, t: NaiveTime) -> bool {
        // Seconds are dropped: 08:59:59 is still before a 09:00 end, and an hour-minute shift has
        // no finer edges.
        let t =
            NaiveTime::from_hms_opt(t.hour(), t.minute(), 0).expect("hour and minute of a time");
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start <= t && t < self.end,
            std::cmp::Ordering::Greater => t >= self.start || t < self.end,
            std::cmp::Ordering::Equal => true,
        }
    }
}

/// One person on call, with their escalation level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// As the rota (or the people directory) names them.
    pub name: String,
    /// Their number.
    pub phone: WaId,
    /// Escalation level, 1 first.
    pub level: u32,
}

/// `entry`'s shift, `None` when it is always on call.
pub fn shift_of(entry: &OncallEntry) -> Result<Option<Shift>, RotaError> {
    let Some(hours) = entry.hours.as_deref().filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    Shift::parse(hours)
        .map(Some)
        .ok_or_else(|| RotaError::Hours {
            name: entry.name.clone(),
            hours: hours.to_owned(),
        })
}

/// `entry`'s time zone as written (`UTC` when it names none) and its wall-clock time at `at`.
pub fn local_time(
    entry: &OncallEntry,
    at: DateTime<Utc>,
) -> Result<(String, NaiveTime), RotaError> {
    match entry
        .timezone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty())
    {
        None => Ok(("UTC".to_owned(), at.time())),
        Some(zone) => {
            let tz: Tz = zone.parse().map_err(|_| RotaError::Zone {
                name: entry.name.clone(),
                zone: zone.to_owned(),
            })?;
            Ok((zone.to_owned(), at.with_timezone(&tz).time()))
        }
    }
}

/// Whether `entry` is on shift at `at`.
pub fn on_shift(entry: &OncallEntry, at: DateTime<Utc>) -> Result<bool, RotaError> {
    let Some(shift) = shift_of(entry)? else {
        return Ok(true);
    };
    Ok(shift.contains(local_time(entry, at)?.1))
}

/// Entry `index` of the rota as an [`OnCall`] (level `index + 1`).
fn entry_at(rota: &[OncallEntry], index: usize) -> Result<OnCall, RotaError> {
    let entry = &rota[index];
    let phone = WaId::parse(&entry.phone).ok_or_else(|| RotaError::Phone {
        name: entry.name.clone(),
        phone: entry.phone.clone(),
    })?;
    Ok(OnCall {
        name: entry.name.clone(),
        phone,
        level: index as u32 + 1,
    })
}

/// Everyone on shift at `at`, in rota order (so the first is the lowest level). Empty when nobody is.
pub fn on_call_at(rota: &[OncallEntry], at: DateTime<Utc>) -> Result<Vec<OnCall>, RotaError> {
    let mut on = Vec::new();
    for (i, entry) in rota.iter().enumerate() {
        if on_shift(entry, at)? {
            on.push(entry_at(rota, i)?);
        }
    }
    Ok(on)
}

/// Who to escalate to after `current` at `at`: the entries after `current`'s in rota order, wrapping
/// once and skipping `current`'s own entries, first whoever of them is on shift, else the first of
/// them at all. When `current` is unknown or not in the rota, the escalation starts after whoever is
/// on call first (the primary), or from the top when nobody is. `None`: the rota has nobody else (the caller
/// pages the fallback number).
pub fn next_after(
    rota: &[OncallEntry],
    current: Option<&WaId>,
    at: DateTime<Utc>,
) -> Result<Option<OnCall>, RotaError> {
    let mut shifts = Vec::with_capacity(rota.len());
    for entry in rota {
        shifts.push(on_shift(entry, at)?);
    }
    let phone_is = |i: usize, who: &WaId| WaId::parse(&rota[i].phone).as_ref() == Some(who);
    let mine: Vec<usize> = match current {
        Some(who) => (0..rota.len()).filter(|&i| phone_is(i, who)).collect(),
        None => Vec::new(),
    };
    // Where the walk starts: current's entry on shift now (they may hold several), else their first;
    // for a stranger, the primary's.
    let (from, skip) = match mine.iter().find(|&&i| shifts[i]).or(mine.first()) {
        Some(&i) => (Some(i), current.cloned()),
        None => match (0..rota.len()).find(|&i| shifts[i]) {
            Some(i) => (Some(i), WaId::parse(&rota[i].phone)),
            None => (None, None),
        },
    };
    let order: Vec<usize> = match from {
        Some(i) => (1..rota.len()).map(|k| (i + k) % rota.len()).collect(),
        None => (0..rota.len()).collect(),
    };
    let candidates: Vec<usize> = order
        .into_iter()
        .filter(|&i| skip.as_ref().is_none_or(|s| !phone_is(i, s)))
        .collect();
    match candidates
        .iter()
        .find(|&&i| shifts[i])
        .or(candidates.first())
    {
        Some(&i) => entry_at(rota, i).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(name: &str, phone: &str, hours: Option<&str>, zone: Option<&str>) -> OncallEntry {
        OncallEntry {
            name: name.to_owned(),
            phone: phone.to_owned(),
            hours: hours.map(str::to_owned),
            timezone: zone.map(str::to_owned),
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn names(on: &[OnCall]) -> Vec<&str> {
        on.iter().map(|o| o.name.as_str()).collect()
    }

    /// The tutorial's rota: Alice days, Bob nights, New York time.
    fn tutorial() -> Vec<OncallEntry> {
        let ny = Some("America/New_York");
        vec![
            entry("Alice", "+1234567890", Some("09:00-18:00"), ny),
            entry("Bob", "+0987654321", Some("18:00-09:00"), ny),
        ]
    }

    #[test]
    fn shifts_read_hh_mm_pairs_and_nothing_else() {
        assert!(Shift::parse("09:00-18:00").is_some());
        assert!(Shift::parse(" 18:00 - 09:00 ").is_some());
        assert!(Shift::parse("9-18").is_none());
        assert!(Shift::parse("25:00-09:00").is_none());
        assert!(Shift::parse("09:00").is_none());
    }

    #[test]
    fn a_day_shift_includes_its_start_and_excludes_its_end() {
        let rota = vec![entry("Alice", "+15551234567", Some("09:00-18:00"), None)];
        assert!(on_call_at(&rota, utc(2024, 6, 17, 8, 59))
            .unwrap()
            .is_empty());
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 6, 17, 9, 0)).unwrap()),
            ["Alice"]
        );
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 6, 17, 17, 59)).unwrap()),
            ["Alice"]
        );
        assert!(on_call_at(&rota, utc(2024, 6, 17, 18, 0))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_night_shift_runs_from_evening_to_the_next_morning() {
        let rota = [entry("Bob", "+15557654321", Some("18:00-09:00"), None)];
        for (h, m, on) in [
            (17, 59, false),
            (18, 0, true),
            (23, 59, true),
            (0, 0, true),
            (3, 30, true),
            (8, 59, true),
            (9, 0, false),
            (12, 0, false),
        ] {
            let at = utc(2024, 6, 17, h, m);
            assert_eq!(on_shift(&rota[0], at).unwrap(), on, "{h:02}:{m:02}");
        }
    }

    #[test]
    fn no_hours_means_always_on_and_no_zone_means_utc() {
        let rota = vec![
            entry("Always", "+15550000001", None, None),
            entry("Utc", "+15550000002", Some("10:00-11:00"), None),
        ];
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 1, 1, 10, 30)).unwrap()),
            ["Always", "Utc"]
        );
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 1, 1, 11, 30)).unwrap()),
            ["Always"]
        );
    }

    #[test]
    fn new_york_hours_follow_daylight_saving() {
        let rota = tutorial();
        // Summer (EDT, UTC-4): 09:00 local is 13:00 UTC.
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 7, 1, 13, 0)).unwrap()),
            ["Alice"]
        );
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 7, 1, 12, 59)).unwrap()),
            ["Bob"]
        );
        // Winter (EST, UTC-5): 13:30 UTC is 08:30 local, still Bob's night.
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 1, 15, 13, 30)).unwrap()),
            ["Bob"]
        );
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 1, 15, 14, 0)).unwrap()),
            ["Alice"]
        );
        // 2024-03-10 clocks went forward at 02:00 EST (07:00 UTC): 22:30 UTC that day is 18:30 EDT.
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 3, 10, 22, 30)).unwrap()),
            ["Bob"]
        );
        // The day before it was 17:30 EST, Alice's.
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 3, 9, 22, 30)).unwrap()),
            ["Alice"]
        );
        // 2024-11-03 clocks went back: 13:30 UTC is 08:30 EST (Bob), a week earlier 09:30 EDT (Alice).
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 11, 3, 13, 30)).unwrap()),
            ["Bob"]
        );
        assert_eq!(
            names(&on_call_at(&rota, utc(2024, 10, 27, 13, 30)).unwrap()),
            ["Alice"]
        );
    }

    #[test]
    fn everyone_on_shift_is_returned_in_rota_order_with_levels() {
        let rota = vec![
            entry("Alice", "+15551234567", Some("09:00-18:00"), None),
            entry("Bob", "+15557654321", Some("00:00-23:59"), None),
            entry("Carol", "+15550001234", Some("12:00-13:00"), None),
        ];
        let on = on_call_at(&rota, utc(2024, 6, 17, 12, 15)).unwrap();
        assert_eq!(names(&on), ["Alice", "Bob", "Carol"]);
        assert_eq!(
            on.iter().map(|o| o.level).collect::<Vec<_>>(),
            [1, 2, 3],
            "the level is the rota position"
        );
        assert_eq!(on[1].phone.e164(), "+15557654321");
        let on = on_call_at(&rota, utc(2024, 6, 17, 20, 0)).unwrap();
        assert_eq!(names(&on), ["Bob"]);
        assert_eq!(on[0].level, 2);
    }

    #[test]
    fn a_gap_in_the_rota_leaves_nobody_on_call() {
        let rota = vec![
            entry("Alice", "+15551234567", Some("09:00-17:00"), None),
            entry("Bob", "+15557654321", Some("18:00-08:00"), None),
        ];
        assert!(on_call_at(&rota, utc(2024, 6, 17, 17, 30))
            .unwrap()
            .is_empty());
        assert!(on_call_at(&[], utc(2024, 6, 17, 17, 30))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_next_on_call_is_the_next_entry_on_shift() {
        let rota = vec![
            entry("Alice", "+15551234567", None, None),
            entry("Bob", "+15557654321", Some("00:00-01:00"), None),
            entry("Carol", "+15550001234", None, None),
        ];
        let alice = WaId::parse("+15551234567").unwrap();
        let at = utc(2024, 6, 17, 12, 0);
        // Bob is next in the list but off shift: Carol, on shift, comes first.
        let next = next_after(&rota, Some(&alice), at).unwrap().unwrap();
        assert_eq!((next.name.as_str(), next.level), ("Carol", 3));
        // At 00:30 Bob is on.
        let next = next_after(&rota, Some(&alice), utc(2024, 6, 17, 0, 30))
            .unwrap()
            .unwrap();
        assert_eq!((next.name.as_str(), next.level), ("Bob", 2));
        // After Carol the walk wraps to Alice.
        let carol = WaId::parse("15550001234").unwrap();
        let next = next_after(&rota, Some(&carol), at).unwrap().unwrap();
        assert_eq!((next.name.as_str(), next.level), ("Alice", 1));
    }

    #[test]
    fn with_nobody_else_on_shift_the_next_entry_in_the_list_is_paged() {
        let rota = vec![
            entry("Alice", "+15551234567", None, None),
            entry("Bob", "+15557654321", Some("00:00-01:00"), None),
            entry("Carol", "+15550001234", Some("02:00-03:00"), None),
        ];
        let alice = WaId::parse("15551234567").unwrap();
        let next = next_after(&rota, Some(&alice), utc(2024, 6, 17, 12, 0))
            .unwrap()
            .unwrap();
        assert_eq!(next.name, "Bob");
    }

    #[test]
    fn nobody_after_the_only_person_means_the_fallback() {
        let rota = vec![entry("Alice", "+15551234567", None, None)];
        let alice = WaId::parse("15551234567").unwrap();
        assert_eq!(
            next_after(&rota, Some(&alice), utc(2024, 6, 17, 12, 0)).unwrap(),
            None
        );
        assert_eq!(
            next_after(&[], Some(&alice), utc(2024, 6, 17, 12, 0)).unwrap(),
            None
        );
    }

    #[test]
    fn a_stranger_escalates_past_the_primary() {
        let rota = vec![
            entry("Alice", "+15551234567", None, None),
            entry("Bob", "+15557654321", None, None),
        ];
        let stranger = WaId::parse("15559990000").unwrap();
        let next = next_after(&rota, Some(&stranger), utc(2024, 6, 17, 12, 0))
            .unwrap()
            .unwrap();
        assert_eq!(next.name, "Bob");
        // With nobody on shift, the walk starts at the top.
        let rota = vec![
            entry("Alice", "+15551234567", Some("00:00-01:00"), None),
            entry("Bob", "+15557654321", Some("02:00-03:00"), None),
        ];
        let next = next_after(&rota, Some(&stranger), utc(2024, 6, 17, 12, 0))
            .unwrap()
            .unwrap();
        assert_eq!(next.name, "Alice");
    }

    #[test]
    fn the_tutorial_rota_escalates_between_day_and_night() {
        let rota = tutorial();
        let alice = WaId::parse("+1234567890").unwrap();
        let next = next_after(&rota, Some(&alice), utc(2024, 7, 1, 15, 0))
            .unwrap()
            .unwrap();
        assert_eq!((next.name.as_str(), next.level), ("Bob", 2));
        let bob = WaId::parse("+0987654321").unwrap();
        let next = next_after(&rota, Some(&bob), utc(2024, 7, 1, 15, 0))
            .unwrap()
            .unwrap();
        assert_eq!((next.name.as_str(), next.level), ("Alice", 1));
    }

    #[test]
    fn an_unreadable_entry_is_an_error_naming_it() {
        let rota = vec![entry("Zed", "+15551234567", Some("9-5"), None)];
        let err = on_call_at(&rota, utc(2024, 6, 17, 12, 0)).unwrap_err();
        assert!(err.to_string().contains("Zed"), "{err}");
        let rota = vec![entry("Zed", "+15551234567", None, Some("Mars/Olympus"))];
        assert!(
            on_call_at(&rota, utc(2024, 6, 17, 12, 0)).is_ok(),
            "no hours, no zone needed"
        );
        let rota = vec![entry(
            "Zed",
            "+15551234567",
            Some("09:00-10:00"),
            Some("Mars/Olympus"),
        )];
        assert!(matches!(
            on_call_at(&rota, utc(2024, 6, 17, 12, 0)),
            Err(RotaError::Zone { .. })
        ));
    }
}
