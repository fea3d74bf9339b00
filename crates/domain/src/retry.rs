//! When to try a failed delivery again, and which retry tier carries it there.
//!
//! A [`RetrySchedule`] lists the waits after each failed attempt; its length plus one is the
//! number of attempts. Retry tiers are Kafka topics with one fixed delay each
//! ([`RetryTiers`]); a task waiting longer than a tier's delay rides the largest tier that does
//! not overshoot and hops on when it comes out early, so any wait is served within a second.

use std::fmt;
use std::time::Duration;

/// The default waits after attempts 1, 2, …: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h,
/// 12 h, 24 h (eleven attempts in all, about two days).
pub const DEFAULT_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h";

/// The default tier delays. The one-second tier lets short back-offs ("2 s doubling") be served
/// accurately.
pub const DEFAULT_TIERS: &str = "1s,5s,30s,2m,10m,30m,1h,3h,6h,12h,24h";

/// Longest wait a `Retry-After` header may impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryConfigError {
    #[error("`{0}` is not a duration like 500ms, 5s, 2m, 1h or 1d")]
    BadDuration(String),
    #[error("a retry schedule needs at most 50 waits")]
    TooLong,
    #[error("retry tiers need at least one delay of 1s or more")]
    NoTiers,
    #[error("max_attempts must be 1 to 50")]
    BadMaxAttempts,
    #[error("initial_delay_secs must be 1 to 86400 and multiplier 1 to 10")]
    BadBackoff,
}

/// Parses `500ms`, `5s`, `2m`, `1h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, RetryConfigError> {
    let bad = || RetryConfigError::BadDuration(text.to_owned());
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

/// Formats a delay the way tier topics are named: `1s`, `30s`, `2m`, `1h`.
pub fn format_delay(delay: Duration) -> String {
    let ms = delay.as_millis();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn parse_list(text: &str) -> Result<Vec<Duration>, RetryConfigError> {
    text.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(parse_duration)
        .collect()
}

/// The waits after each failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

impl RetrySchedule {
    /// A comma-separated list of waits, like [`DEFAULT_SCHEDULE`].
    pub fn parse(text: &str) -> Result<Self, RetryConfigError> {
        let waits = parse_list(text)?;
        if waits.len() > 50 {
            return Err(RetryConfigError::TooLong);
        }
        Ok(Self { waits })
    }

    /// `max_attempts` attempts, waiting `initial` after the first failure and multiplying the
    /// wait by `multiplier` after each further one ("5 attempts from 2 s doubling").
    pub fn exponential(
        max_attempts: u32,
        initial: Duration,
        multiplier: f64,
    ) -> Result<Self, RetryConfigError> {
        if !(1..=50).contains(&max_attempts) {
            return Err(RetryConfigError::BadMaxAttempts);
        }
        if !(1..=86_400).contains(&initial.as_secs()) || !(1.0..=10.0).contains(&multiplier) {
            return Err(RetryConfigError::BadBackoff);
        }
        let mut waits = Vec::new();
        let mut wait = initial.as_secs_f64();
        for _ in 1..max_attempts {
            waits.push(Duration::from_secs_f64(
                wait.min(MAX_RETRY_AFTER.as_secs_f64()),
            ));
            wait *= multiplier;
        }
        Ok(Self { waits })
    }

    pub fn max_attempts(&self) -> u32 {
        self.waits.len() as u32 + 1
    }

    /// The wait after failed attempt number `attempt` (from 1); `None` once attempts are spent.
    pub fn wait_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.waits.get(index).copied()
    }

    /// The waits still ahead of a task asking for attempt number `attempt`: how long until its
    /// last attempt if every one from this one on failed.
    pub fn time_left_before_last(&self, attempt: u32) -> Duration {
        let done = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.waits.iter().skip(done).sum()
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_SCHEDULE).expect("the default schedule parses")
    }
}

/// Adds up to `fraction` (0..1) of random extra wait, so retries of many tasks that failed
/// together do not arrive together. `unit` is a random number in [0, 1).
pub fn with_jitter(wait: Duration, fraction: f64, unit: f64) -> Duration {
    wait + wait.mul_f64((fraction * unit).clamp(0.0, 1.0))
}

/// The delays of the retry-tier topics, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTiers {
    delays: Vec<Duration>,
}

impl RetryTiers {
    pub fn parse(text: &str) -> Result<Self, RetryConfigError> {
        let mut delays = parse_list(text)?;
        delays.retain(|delay| *delay >= Duration::from_secs(1));
        delays.sort();
        delays.dedup();
        if delays.is_empty() {
            return Err(RetryConfigError::NoTiers);
        }
        Ok(Self { delays })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The tier for a task due `wait` from now: the largest delay that does not overshoot it
    /// (the smallest tier when the wait is shorter than every delay).
    pub fn for_wait(&self, wait: Duration) -> Duration {
        self.delays
            .iter()
            .rev()
            .find(|delay| **delay <= wait)
            .copied()
            .unwrap_or(self.delays[0])
    }
}

impl Default for RetryTiers {
    fn default() -> Self {
        Self::parse(DEFAULT_TIERS).expect("the default tiers parse")
    }
}

impl fmt::Display for RetryTiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.delays.iter().map(|d| format_delay(*d)).collect();
        f.write_str(&names.join(","))
    }
}

/// Whether an HTTP answer is worth retrying. 2xx never reaches here; 3xx (redirects are not
/// followed), 408, 429 and 5xx always retry; other 4xx retry when `retry_client_errors`.
pub fn status_is_retryable(status: u16, retry_client_errors: bool) -> bool {
    match status {
        408 | 429 => true,
        400..=499 => retry_client_errors,
        _ => true,
    }
}

/// Reads a `Retry-After` header: delay-seconds, or an HTTP date relative to `now_unix`.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = httpdate_to_unix(value)?;
    let wait = u64::try_from(at.saturating_sub(now_unix)).unwrap_or(0);
    Some(Duration::from_secs(wait).min(MAX_RETRY_AFTER))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP requires senders
/// to use.
fn httpdate_to_unix(value: &str) -> Option<i64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [hour, minute, second] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn time_left_before_the_last_attempt_counts_the_waits_still_ahead() {
        let schedule = RetrySchedule::parse("5s,1m,10m").unwrap();
        assert_eq!(schedule.time_left_before_last(1), Duration::from_secs(665));
        assert_eq!(schedule.time_left_before_last(3), Duration::from_secs(600));
        assert_eq!(
            schedule.time_left_before_last(4),
            Duration::ZERO,
            "the last"
        );
        assert_eq!(schedule.time_left_before_last(9), Duration::ZERO);
    }

    #[test]
    fn the_default_schedule_is_the_documented_one() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 11);
        assert_eq!(schedule.wait_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.wait_after(2), Some(Duration::from_secs(30)));
        assert_eq!(schedule.wait_after(10), Some(Duration::from_secs(86_400)));
        assert_eq!(schedule.wait_after(11), None);
        assert_eq!(schedule.wait_after(0), None);
    }

    #[test]
    fn five_attempts_from_two_seconds_doubling() {
        let schedule = RetrySchedule::exponential(5, Duration::from_secs(2), 2.0).unwrap();
        let waits: Vec<u64> = (1..=4)
            .map(|a| schedule.wait_after(a).unwrap().as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16]);
        assert_eq!(schedule.wait_after(5), None);
        assert!(RetrySchedule::exponential(0, Duration::from_secs(2), 2.0).is_err());
        assert!(RetrySchedule::exponential(5, Duration::ZERO, 2.0).is_err());
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "5", "s", "5x", "-5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RetryTiers::default().to_string(), DEFAULT_TIERS);
        assert_eq!(format_delay(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn tiers_pick_the_largest_delay_that_does_not_overshoot() {
        let tiers = RetryTiers::default();
        let secs = |s| Duration::from_secs(s);
        assert_eq!(tiers.for_wait(secs(0)), secs(1));
        assert_eq!(tiers.for_wait(secs(4)), secs(1));
        assert_eq!(tiers.for_wait(secs(5)), secs(5));
        assert_eq!(tiers.for_wait(secs(100)), secs(30));
        assert_eq!(tiers.for_wait(secs(10 * 86_400)), secs(86_400));
        assert!(RetryTiers::parse("500ms").is_err());
    }

    #[test]
    fn which_answers_are_retried() {
        for status in [300, 301, 408, 429, 500, 502, 503, 504] {
            assert!(status_is_retryable(status, false), "{status}");
        }
        for status in [400, 401, 404, 410, 422] {
            assert!(status_is_retryable(status, true));
            assert!(!status_is_retryable(status, false));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999", 0), Some(MAX_RETRY_AFTER));
        // 1994-11-06T08:49:37Z is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse_retry_after(date, 784_111_777 - 30),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(date, 784_111_777 + 30),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    proptest! {
        #[test]
        fn a_tier_never_overshoots_a_wait_of_a_second_or_more(wait_ms in 1_000u64..200_000_000) {
            let tiers = RetryTiers::default();
            let wait = Duration::from_millis(wait_ms);
            prop_assert!(tiers.for_wait(wait) <= wait);
        }

        #[test]
        fn jitter_only_ever_adds_a_bounded_amount(wait_ms in 0u64..100_000_000, unit in 0.0f64..1.0) {
            let wait = Duration::from_millis(wait_ms);
            let jittered = with_jitter(wait, 0.1, unit);
            prop_assert!(jittered >= wait);
            prop_assert!(jittered <= wait + wait.mul_f64(0.1) + Duration::from_nanos(1));
        }
    }
}
