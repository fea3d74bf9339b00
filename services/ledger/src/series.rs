//! A webhook's attempts over time: its statistics window cut into equal intervals, oldest
//! first, each counting the attempts that succeeded, failed and were retried, and failed for
//! good. Pure, so the cutting and counting are tested without a database.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Intervals a window is cut into unless the caller chooses their length.
const DEFAULT_INTERVALS: i64 = 24;
/// Most intervals of one series.
pub const MAX_INTERVALS: i64 = 500;

/// The longest interval: the longest window the statistics cover (366 days).
pub const MAX_INTERVAL_MINUTES: u32 = 366 * 24 * 60;

/// Why a window cannot be cut as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalsError {
    #[error("at least 1 minute")]
    Zero,
    #[error("at most {MAX_INTERVAL_MINUTES} minutes (366 days)")]
    OverAYear,
    #[error("the window would have {count} intervals, at most {MAX_INTERVALS}")]
    TooMany { count: i64 },
}

/// A window `since..=until` cut into `count` intervals of `length` from `since`; the last one
/// ends at or after `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    length: Duration,
    count: i64,
}

impl Intervals {
    /// Intervals of `minutes` (by default the window's 24th, rounded up to whole minutes).
    pub fn new(
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        minutes: Option<u32>,
    ) -> Result<Self, IntervalsError> {
        let window = (until - since).max(Duration::zero());
        let minutes = match minutes {
            Some(0) => return Err(IntervalsError::Zero),
            Some(minutes) if minutes > MAX_INTERVAL_MINUTES => {
                return Err(IntervalsError::OverAYear)
            }
            Some(minutes) => i64::from(minutes),
            None => ceil_div(window.num_seconds(), DEFAULT_INTERVALS * 60).max(1),
        };
        let length = Duration::minutes(minutes);
        let count = ceil_div(window.num_milliseconds(), length.num_milliseconds()).max(1);
        if count > MAX_INTERVALS {
            return Err(IntervalsError::TooMany { count });
        }
        Ok(Self {
            since,
            until,
            length,
            count,
        })
    }

    /// The length of each interval.
    pub fn minutes(&self) -> i64 {
        self.length.num_minutes()
    }

    /// The index of the interval `at` falls in; `None` outside the window.
    fn index_of(&self, at: DateTime<Utc>) -> Option<usize> {
        if at < self.since || at > self.until {
            return None;
        }
        let index = (at - self.since).num_milliseconds() / self.length.num_milliseconds();
        usize::try_from(index.min(self.count - 1)).ok()
    }
}

fn ceil_div(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator - 1).div_euclid(denominator)
}

/// What one attempt counts as in a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Succeeded,
    /// Failed, with a next attempt scheduled.
    Retrying,
    /// Failed with no next attempt: the delivery ended failed.
    Failed,
}

impl Tally {
    /// How an attempt with `outcome` counts; cancelled attempts (nothing was sent) do not.
    pub fn of(outcome: &str, next_attempt_at: Option<DateTime<Utc>>) -> Option<Self> {
        match (outcome, next_attempt_at) {
            ("succeeded", _) => Some(Tally::Succeeded),
            ("failed", Some(_)) => Some(Tally::Retrying),
            ("failed", None) => Some(Tally::Failed),
            _ => None,
        }
    }
}

/// One interval of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// When the interval starts (it lasts `interval_minutes`).
    start: DateTime<Utc>,
    /// Attempts that succeeded.
    succeeded: u64,
    /// Attempts that failed and had a next attempt scheduled.
    retrying: u64,
    /// Attempts that failed with no next attempt: their delivery ended failed or dead.
    failed: u64,
}

/// The counts of every interval of a window, empty ones included.
#[derive(Debug, Clone)]
pub struct Series {
    intervals: Intervals,
    points: Vec<SeriesPoint>,
}

impl Series {
    pub fn new(intervals: Intervals) -> Self {
        let points = (0..intervals.count)
            .map(|index| SeriesPoint {
                start: intervals.since + intervals.length * i32::try_from(index).unwrap_or(0),
                succeeded: 0,
                retrying: 0,
                failed: 0,
            })
            .collect();
        Self { intervals, points }
    }

    /// Counts an attempt made `at`; one outside the window is ignored.
    pub fn count(&mut self, at: DateTime<Utc>, tally: Tally) {
        let Some(point) = self
            .intervals
            .index_of(at)
            .and_then(|index| self.points.get_mut(index))
        else {
            return;
        };
        match tally {
            Tally::Succeeded => point.succeeded += 1,
            Tally::Retrying => point.retrying += 1,
            Tally::Failed => point.failed += 1,
        }
    }

    /// The intervals, oldest first.
    pub fn into_points(self) -> Vec<SeriesPoint> {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn by_default_a_window_is_cut_into_24_whole_minute_intervals() {
        let until = at("2026-01-02T00:00:00Z");
        let day = Intervals::new(until - Duration::hours(24), until, None).unwrap();
        assert_eq!((day.length, day.count), (Duration::minutes(60), 24));
        // An hour: 2.5 minutes rounded up to 3, so 20 intervals.
        let hour = Intervals::new(until - Duration::hours(1), until, None).unwrap();
        assert_eq!((hour.length, hour.count), (Duration::minutes(3), 20));
        // A window not a whole number of minutes still gets whole-minute intervals.
        let odd = Intervals::new(until - Duration::seconds(90), until, None).unwrap();
        assert_eq!((odd.length, odd.count), (Duration::minutes(1), 2));
    }

    #[test]
    fn chosen_intervals_are_refused_when_empty_too_long_or_too_many() {
        let until = at("2026-01-02T00:00:00Z");
        let day = until - Duration::hours(24);
        assert_eq!(
            Intervals::new(day, until, Some(0)),
            Err(IntervalsError::Zero)
        );
        assert_eq!(
            Intervals::new(day, until, Some(MAX_INTERVAL_MINUTES + 1)),
            Err(IntervalsError::OverAYear)
        );
        assert_eq!(
            Intervals::new(day, until, Some(MAX_INTERVAL_MINUTES))
                .unwrap()
                .count,
            1
        );
        assert_eq!(
            Intervals::new(day, until, Some(2)),
            Err(IntervalsError::TooMany { count: 720 })
        );
        assert_eq!(Intervals::new(day, until, Some(3)).unwrap().count, 480);
        // 500 hours in hours is the most; 501 is one too many.
        let hours = |n| Intervals::new(until - Duration::hours(n), until, Some(60));
        assert_eq!(hours(500).unwrap().count, 500);
        assert_eq!(hours(501), Err(IntervalsError::TooMany { count: 501 }));
    }

    #[test]
    fn attempts_count_in_their_interval_and_empty_intervals_are_zeros() {
        let since = at("2026-01-01T00:00:00Z");
        let until = at("2026-01-01T01:00:00Z");
        let mut series = Series::new(Intervals::new(since, until, Some(15)).unwrap());
        series.count(at("2026-01-01T00:00:00Z"), Tally::Succeeded);
        series.count(at("2026-01-01T00:14:59.999Z"), Tally::Retrying);
        series.count(at("2026-01-01T00:15:00Z"), Tally::Failed);
        // The end of the window belongs to the last interval; outside it, nowhere.
        series.count(until, Tally::Succeeded);
        series.count(since - Duration::milliseconds(1), Tally::Failed);
        series.count(until + Duration::milliseconds(1), Tally::Failed);
        let points = series.into_points();
        let counts: Vec<(String, u64, u64, u64)> = points
            .iter()
            .map(|p| (p.start.to_rfc3339(), p.succeeded, p.retrying, p.failed))
            .collect();
        assert_eq!(
            counts,
            [
                ("2026-01-01T00:00:00+00:00".to_owned(), 1, 1, 0),
                ("2026-01-01T00:15:00+00:00".to_owned(), 0, 0, 1),
                ("2026-01-01T00:30:00+00:00".to_owned(), 0, 0, 0),
                ("2026-01-01T00:45:00+00:00".to_owned(), 1, 0, 0),
            ]
        );
    }

    #[test]
    fn a_last_partial_interval_holds_the_end_of_the_window() {
        let since = at("2026-01-01T00:00:00Z");
        let until = at("2026-01-01T00:50:00Z");
        let mut series = Series::new(Intervals::new(since, until, Some(20)).unwrap());
        series.count(until, Tally::Retrying);
        let points = series.into_points();
        assert_eq!(points.len(), 3);
        assert_eq!(points[2].start, at("2026-01-01T00:40:00Z"));
        assert_eq!(points[2].retrying, 1);
    }

    #[test]
    fn attempts_tally_by_outcome_and_next_attempt() {
        let next = Some(at("2026-01-01T00:00:05Z"));
        assert_eq!(Tally::of("succeeded", None), Some(Tally::Succeeded));
        assert_eq!(Tally::of("failed", next), Some(Tally::Retrying));
        assert_eq!(Tally::of("failed", None), Some(Tally::Failed));
        assert_eq!(Tally::of("cancelled", None), None);
    }
}
