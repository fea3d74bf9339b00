//! A producer-chosen event id is an idempotency key: a second event with the id of one accepted
//! for the same tenant within the window is a retry, and is not delivered again.
//!
//! [`SeenIds`] holds the first acceptance of every key of one partition of `events` (fanout
//! reads each partition in order, and an event's retries share its partition). Its clock is the
//! acceptance time of the events it is shown, not the wall clock, so a stage that lags behind
//! still judges each event by when it was accepted.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// A (tenant, event id) pair, hashed to 128 bits: collisions are out of reach at any volume
/// (about 2^64 keys for an even chance), and each costs a fixed 16 bytes (two words, so a
/// table entry with its time takes 24 bytes, not the 32 a `u128`'s alignment would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey([u64; 2]);

impl IdempotencyKey {
    pub fn of(tenant_id: &str, event_id: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(tenant_id.as_bytes());
        // Ids never hold a NUL, so `a` + `bc` and `ab` + `c` differ.
        hash.update([0]);
        hash.update(event_id.as_bytes());
        let digest = hash.finalize();
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        Self([word(0), word(8)])
    }
}

/// What an event is, judged by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// The first with its key within the window: deliver it.
    First,
    /// A retry of the event first accepted at this time (Unix milliseconds): deliver nothing.
    Repeat { first_accepted_ms: i64 },
}

/// The first acceptance time of each key within `window_ms` of the latest acceptance seen.
#[derive(Debug)]
pub struct SeenIds {
    window_ms: i64,
    first: HashMap<IdempotencyKey, i64>,
    /// The latest acceptance time shown: the clock that ages keys out.
    clock_ms: i64,
    swept_at_ms: i64,
}

impl SeenIds {
    pub fn new(window_ms: i64) -> Self {
        Self {
            window_ms,
            first: HashMap::new(),
            clock_ms: i64::MIN,
            swept_at_ms: i64::MIN,
        }
    }

    /// Judges an event with `key` accepted at `accepted_ms`, and remembers it if it is the first.
    pub fn accept(&mut self, key: IdempotencyKey, accepted_ms: i64) -> Acceptance {
        self.advance(accepted_ms);
        match self.first.get(&key) {
            // An earlier acceptance time than the first's (another ingest's clock) is within
            // the window too.
            Some(&first) if accepted_ms - first <= self.window_ms => Acceptance::Repeat {
                first_accepted_ms: first,
            },
            _ => {
                self.first.insert(key, accepted_ms);
                Acceptance::First
            }
        }
    }

    /// Restores a first acceptance read back from the changelog.
    pub fn restore(&mut self, key: IdempotencyKey, accepted_ms: i64) {
        self.advance(accepted_ms);
        if accepted_ms + self.window_ms >= self.clock_ms {
            let first = self.first.entry(key).or_insert(accepted_ms);
            *first = (*first).min(accepted_ms);
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Moves the clock forward and, every tenth of a window, drops the keys it has passed.
    fn advance(&mut self, now_ms: i64) {
        self.clock_ms = self.clock_ms.max(now_ms);
        let sweep_every = (self.window_ms / 10).max(1);
        if self.clock_ms.saturating_sub(self.swept_at_ms) < sweep_every {
            return;
        }
        self.swept_at_ms = self.clock_ms;
        let (window, clock) = (self.window_ms, self.clock_ms);
        self.first.retain(|_, first| *first + window >= clock);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn key(id: &str) -> IdempotencyKey {
        IdempotencyKey::of("tnt_a", id)
    }

    #[test]
    fn a_repeat_within_the_window_names_the_first_acceptance() {
        let mut seen = SeenIds::new(24 * HOUR);
        assert_eq!(seen.accept(key("a"), 1_000), Acceptance::First);
        assert_eq!(
            seen.accept(key("a"), 1_000 + 23 * HOUR),
            Acceptance::Repeat {
                first_accepted_ms: 1_000
            }
        );
        assert_eq!(seen.accept(key("b"), 2_000 + 23 * HOUR), Acceptance::First);
    }

    #[test]
    fn a_repeat_after_the_window_is_a_new_event() {
        let mut seen = SeenIds::new(HOUR);
        assert_eq!(seen.accept(key("a"), 0), Acceptance::First);
        assert_eq!(seen.accept(key("a"), HOUR + 1), Acceptance::First);
        assert_eq!(
            seen.accept(key("a"), HOUR + 2),
            Acceptance::Repeat {
                first_accepted_ms: HOUR + 1
            }
        );
    }

    #[test]
    fn the_key_is_the_tenant_and_the_id() {
        assert_ne!(
            IdempotencyKey::of("tnt_a", "bc"),
            IdempotencyKey::of("tnt_ab", "c")
        );
        assert_ne!(
            IdempotencyKey::of("tnt_a", "x"),
            IdempotencyKey::of("tnt_b", "x")
        );
        assert_eq!(
            IdempotencyKey::of("tnt_a", "x"),
            IdempotencyKey::of("tnt_a", "x")
        );
    }

    #[test]
    fn keys_older_than_the_window_are_dropped_as_the_clock_moves() {
        let mut seen = SeenIds::new(HOUR);
        for n in 0..100 {
            seen.accept(key(&n.to_string()), n);
        }
        assert_eq!(seen.len(), 100);
        seen.accept(key("late"), 3 * HOUR);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn restoring_keeps_the_earliest_acceptance_and_skips_expired_ones() {
        let mut seen = SeenIds::new(HOUR);
        seen.restore(key("a"), 5 * HOUR);
        seen.restore(key("a"), 4 * HOUR + 10);
        seen.restore(key("old"), 2 * HOUR);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen.accept(key("a"), 5 * HOUR),
            Acceptance::Repeat {
                first_accepted_ms: 4 * HOUR + 10
            }
        );
        assert_eq!(seen.accept(key("old"), 5 * HOUR), Acceptance::First);
    }

    proptest! {
        /// Whatever the order of acceptance times: a repeat names the first acceptance of its
        /// id, within the window; a first is either new, outside the window of the earlier
        /// one, or of an id the clock has aged out.
        #[test]
        fn repeats_are_exactly_the_ids_seen_within_the_window(
            events in proptest::collection::vec((0u8..8, 0i64..10_000), 1..200),
            window in 1i64..5_000,
        ) {
            let mut seen = SeenIds::new(window);
            let mut firsts: HashMap<u8, i64> = HashMap::new();
            let mut clock = i64::MIN;
            for (id, at) in events {
                clock = clock.max(at);
                match seen.accept(key(&id.to_string()), at) {
                    Acceptance::Repeat { first_accepted_ms } => {
                        prop_assert_eq!(Some(first_accepted_ms), firsts.get(&id).copied());
                        prop_assert!(at - first_accepted_ms <= window);
                    }
                    Acceptance::First => {
                        if let Some(&first) = firsts.get(&id) {
                            prop_assert!(at - first > window || first + window < clock);
                        }
                        firsts.insert(id, at);
                    }
                }
            }
        }
    }
}
