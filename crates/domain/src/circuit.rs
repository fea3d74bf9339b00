//! A per-endpoint circuit breaker: after `threshold` consecutive failures the circuit opens and
//! tasks skip the HTTP call for `cooldown`; then one probe is let through, and its outcome
//! closes the circuit or opens it again. While it is open, tasks are held rather than
//! attempted; [`CircuitBreaker::state`] tells them how long until the probe.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: attempt normally.
    Attempt,
    /// Half-open: this attempt is the probe.
    Probe,
    /// Open: skip the HTTP call.
    Skip,
}

/// The circuit as a waiting task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Closed, or open with its probe due: go and ask for admission.
    Admitting,
    /// Open: the probe may go in this long.
    Open { probe_in: Duration },
    /// Open, and its probe is waiting for an answer.
    Probing,
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: 0,
            open_until: None,
            probe_in_flight: false,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.open_until {
            None => Admission::Attempt,
            Some(until) if now < until || self.probe_in_flight => Admission::Skip,
            Some(_) => {
                self.probe_in_flight = true;
                Admission::Probe
            }
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.open_until = None;
        self.probe_in_flight = false;
    }

    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.probe_in_flight = false;
        if self.consecutive_failures >= self.threshold {
            self.open_until = Some(now + self.cooldown);
        }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.open_until {
            None => CircuitState::Admitting,
            Some(_) if self.probe_in_flight => CircuitState::Probing,
            Some(until) if now < until => CircuitState::Open {
                probe_in: until - now,
            },
            Some(_) => CircuitState::Admitting,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_a_probe_closes_it() {
        let start = Instant::now();
        let mut breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert_eq!(breaker.admit(start), Admission::Attempt);
            breaker.record_failure(start);
        }
        assert!(!breaker.is_open());
        breaker.record_failure(start);
        assert!(breaker.is_open());
        assert_eq!(
            breaker.admit(start + Duration::from_secs(9)),
            Admission::Skip
        );
        let later = start + Duration::from_secs(10);
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert_eq!(breaker.admit(later), Admission::Skip, "one probe at a time");
        breaker.record_success();
        assert_eq!(breaker.admit(later), Admission::Attempt);
        assert_eq!(breaker.consecutive_failures(), 0);
    }

    #[test]
    fn waiting_tasks_see_the_time_until_the_probe_and_the_probe_in_flight() {
        let start = Instant::now();
        let mut breaker = CircuitBreaker::new(1, Duration::from_secs(10));
        assert_eq!(breaker.state(start), CircuitState::Admitting);
        breaker.record_failure(start);
        assert_eq!(
            breaker.state(start + Duration::from_secs(4)),
            CircuitState::Open {
                probe_in: Duration::from_secs(6)
            }
        );
        let due = start + Duration::from_secs(10);
        assert_eq!(breaker.state(due), CircuitState::Admitting);
        assert_eq!(breaker.admit(due), Admission::Probe);
        assert_eq!(breaker.state(due), CircuitState::Probing);
        breaker.record_success();
        assert_eq!(breaker.state(due), CircuitState::Admitting);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let start = Instant::now();
        let mut breaker = CircuitBreaker::new(1, Duration::from_secs(5));
        breaker.record_failure(start);
        let probe_time = start + Duration::from_secs(5);
        assert_eq!(breaker.admit(probe_time), Admission::Probe);
        breaker.record_failure(probe_time);
        assert_eq!(
            breaker.admit(probe_time + Duration::from_secs(4)),
            Admission::Skip
        );
        assert_eq!(
            breaker.admit(probe_time + Duration::from_secs(5)),
            Admission::Probe
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = CircuitBreaker::new(2, Duration::from_secs(5));
        breaker.record_failure(now);
        breaker.record_success();
        breaker.record_failure(now);
        assert!(!breaker.is_open());
    }
}
