//! A token bucket: `per_second` tokens flow in continuously, up to `burst` saved up, and each
//! admitted unit of work takes one.

use std::time::{Duration, Instant};

/// A rate and how much of it may be saved up for a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens per second; must be positive (callers treat 0 as "no limit" before a bucket).
    pub per_second: u32,
    /// Most tokens saved up; at least 1 is kept whatever is asked.
    pub burst: u32,
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    /// May go below zero: a cost above the burst leaves the bucket in debt.
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: Self::capacity(limit),
            refilled_at: now,
        }
    }

    fn capacity(limit: RateLimit) -> f64 {
        f64::from(limit.burst.max(1))
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `cost` tokens, or answers how long until they would be there. A cost above the
    /// burst is admitted from a full bucket and leaves it in debt, so a large batch is slowed
    /// down, never refused forever.
    pub fn try_take(&mut self, cost: u32, now: Instant) -> Result<(), Duration> {
        let capacity = Self::capacity(self.limit);
        let per_second = f64::from(self.limit.per_second.max(1));
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.refilled_at = now;
        let needed = f64::from(cost).min(capacity);
        if self.tokens >= needed {
            self.tokens -= f64::from(cost);
            return Ok(());
        }
        Err(Duration::from_secs_f64((needed - self.tokens) / per_second))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10,
        burst: 20,
    };

    #[test]
    fn a_full_bucket_admits_the_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        assert_eq!(bucket.try_take(20, start), Ok(()));
        let wait = bucket.try_take(5, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(bucket
            .try_take(5, start + Duration::from_millis(400))
            .is_err());
        assert_eq!(
            bucket.try_take(5, start + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn a_cost_above_the_burst_waits_for_a_full_bucket_and_leaves_a_debt() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        assert_eq!(bucket.try_take(1, start), Ok(()));
        assert!(bucket.try_take(50, start).is_err(), "not full");
        let full = start + Duration::from_millis(100);
        assert_eq!(bucket.try_take(50, full), Ok(()));
        // 30 tokens of debt, then 1 more: 3.1 s at 10 per second.
        let wait = bucket.try_take(1, full).unwrap_err();
        assert!((wait.as_secs_f64() - 3.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn saved_tokens_never_exceed_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        let later = start + Duration::from_secs(3600);
        assert_eq!(bucket.try_take(20, later), Ok(()));
        assert!(bucket.try_take(1, later).is_err());
    }

    proptest! {
        /// Over any schedule of requests, what is admitted never exceeds the burst plus what
        /// flowed in, bar the one debt a cost above the burst may leave.
        #[test]
        fn admitted_work_is_bounded_by_burst_plus_rate(
            requests in proptest::collection::vec((0u64..2_000, 1u32..30), 1..200)
        ) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(LIMIT, start);
            let mut at = start;
            let mut admitted = 0u64;
            let mut largest = 0u64;
            for (gap_ms, cost) in requests {
                at += Duration::from_millis(gap_ms);
                if bucket.try_take(cost, at).is_ok() {
                    admitted += u64::from(cost);
                    largest = largest.max(u64::from(cost));
                }
            }
            let elapsed = at.duration_since(start).as_secs_f64();
            let allowed = f64::from(LIMIT.burst) + elapsed * f64::from(LIMIT.per_second)
                + largest.saturating_sub(u64::from(LIMIT.burst)) as f64;
            prop_assert!(admitted as f64 <= allowed + 1e-6, "{admitted} > {allowed}");
        }
    }
}
