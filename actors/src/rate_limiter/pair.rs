//! How fast one person may receive messages. WhatsApp allows about one message every six seconds to
//! the same person, with short bursts borrowed, and answers 131056 beyond that; pacing each
//! recipient keeps a storm from bouncing, and holds back only that person, never the lane.
//!
//! A generic cell rate per person: each has a theoretical arrival time (`tat`); a message may
//! leave once `tat` is at most `burst - 1` intervals ahead of now, and each one sent moves `tat`
//! an interval on.

use crate::ids::WaId;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The pace for one person: `burst` messages at once, then one every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairPace {
    /// Messages that may leave back to back.
    pub burst: NonZeroU32,
    /// The steady interval between messages to one person.
    pub every: Duration,
}

/// Above this many people remembered, those whose pace is back to rest are forgotten.
const REMEMBERED: usize = 1024;

/// Every recipient's pace; with no [`PairPace`], nobody is held back (but a 131056 still is).
#[derive(Debug, Default)]
pub struct PairPaces {
    pace: Option<PairPace>,
    tat: HashMap<WaId, Instant>,
}

impl PairPaces {
    /// Paces at `pace`, or not at all.
    pub fn new(pace: Option<PairPace>) -> Self {
        PairPaces {
            pace,
            tat: HashMap::new(),
        }
    }

    /// The burst's lead: how far `tat` may run ahead of now.
    fn lead(&self) -> Duration {
        self.pace
            .map_or(Duration::ZERO, |p| p.every * (p.burst.get() - 1))
    }

    /// When `to` may next receive a message: `now`, or later.
    pub fn ready_at(&self, to: &WaId, now: Instant) -> Instant {
        match self.tat.get(to) {
            Some(tat) => now.max(tat.checked_sub(self.lead()).unwrap_or(now)),
            None => now,
        }
    }

    /// A message to `to` left at `now`.
    pub fn sent(&mut self, to: &WaId, now: Instant) {
        let Some(pace) = self.pace else { return };
        let next = self.tat.get(to).map_or(now, |t| (*t).max(now)) + pace.every;
        self.tat.insert(to.clone(), next);
        if self.tat.len() > REMEMBERED {
            self.tat.retain(|_, t| *t > now);
        }
    }

    /// WhatsApp said `to` gets too many (131056): nothing more to them before `until`.
    pub fn hold(&mut self, to: &WaId, until: Instant) {
        let at_least = until + self.lead();
        let tat = self.tat.entry(to.clone()).or_insert(at_least);
        *tat = (*tat).max(at_least);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> WaId {
        WaId::parse("15551234567").unwrap()
    }

    #[test]
    fn a_burst_leaves_at_once_then_one_an_interval() {
        let pace = PairPace {
            burst: NonZeroU32::new(2).unwrap(),
            every: Duration::from_secs(6),
        };
        let mut paces = PairPaces::new(Some(pace));
        let t0 = Instant::now();
        assert_eq!(paces.ready_at(&alice(), t0), t0);
        paces.sent(&alice(), t0);
        assert_eq!(paces.ready_at(&alice(), t0), t0, "the burst's second");
        paces.sent(&alice(), t0);
        assert_eq!(paces.ready_at(&alice(), t0), t0 + Duration::from_secs(6));
        let later = t0 + Duration::from_secs(6);
        paces.sent(&alice(), later);
        assert_eq!(
            paces.ready_at(&alice(), later),
            t0 + Duration::from_secs(12)
        );
        // Rested for a long while: the burst is back.
        let rested = t0 + Duration::from_secs(60);
        assert_eq!(paces.ready_at(&alice(), rested), rested);
    }

    #[test]
    fn a_131056_holds_that_person_even_without_a_pace() {
        let mut paces = PairPaces::new(None);
        let t0 = Instant::now();
        paces.sent(&alice(), t0);
        assert_eq!(paces.ready_at(&alice(), t0), t0, "no pace: never held back");
        paces.hold(&alice(), t0 + Duration::from_secs(30));
        assert_eq!(paces.ready_at(&alice(), t0), t0 + Duration::from_secs(30));
        let bob = WaId::parse("15557654321").unwrap();
        assert_eq!(paces.ready_at(&bob, t0), t0, "only that person");
    }
}
