//! Retry delays: exponential with jitter, so that many failed sends do not come back in step.

use rand::Rng;
use std::time::Duration;

/// How long to wait before attempt `attempt + 1` after `attempt` failures (1-based): doubling from
/// `base`, capped at `cap`, then a random point in the upper half ("equal jitter"), so retries spread
/// out yet never come back sooner than half the nominal delay.
pub fn exponential(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let nominal = base.saturating_mul(1u32 << exp).min(cap);
    let half = nominal / 2;
    let jitter_ms = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter_ms)
}

/// Meta's advice for the pair rate limit (131056): wait 4^n seconds before writing to that person again.
pub fn pair_rate(attempt: u32, cap: Duration) -> Duration {
    let exp = attempt.clamp(1, 6);
    Duration::from_secs(4u64.pow(exp)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_half_and_full_nominal() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        for attempt in 1..=10 {
            let nominal = (base * 2u32.pow(attempt - 1)).min(cap);
            let d = exponential(attempt, base, cap);
            assert!(
                d >= nominal / 2 && d <= nominal + Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn pair_rate_backoff_is_four_to_the_n_seconds() {
        let cap = Duration::from_secs(3600);
        assert_eq!(pair_rate(1, cap), Duration::from_secs(4));
        assert_eq!(pair_rate(2, cap), Duration::from_secs(16));
    }
}
