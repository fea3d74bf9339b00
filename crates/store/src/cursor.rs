//! Time-bucketed partitions, and API cursors over them: the bucket being read and the driver's
//! paging state within it, as one opaque URL-safe string.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, DurationRound, Utc};

/// How much time one partition of a listing covers. Its key names its start, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// `2026-12-08`
    Day,
    /// `2026-12-08T03`
    Hour,
}

#[derive(Debug, Clone, Copy)]
pub enum Direction {
    NewestFirst,
    OldestFirst,
}

impl Bucket {
    fn length(self) -> Duration {
        match self {
            Self::Day => Duration::days(1),
            Self::Hour => Duration::hours(1),
        }
    }

    fn format(self) -> &'static str {
        match self {
            Self::Day => "%Y-%m-%d",
            Self::Hour => "%Y-%m-%dT%H",
        }
    }

    /// The key of the bucket `at` falls in.
    pub fn of(self, at: DateTime<Utc>) -> String {
        at.format(self.format()).to_string()
    }

    /// The keys of the buckets from `since`'s to `until`'s, in `direction`.
    pub fn between(
        self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        direction: Direction,
    ) -> Vec<String> {
        let Ok(mut start) = since.duration_trunc(self.length()) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        while start <= until {
            keys.push(self.of(start));
            start += self.length();
        }
        if matches!(direction, Direction::NewestFirst) {
            keys.reverse();
        }
        keys
    }

    /// Whether `key` names a bucket of this length.
    fn parses(self, key: &str) -> bool {
        let with_minutes = match self {
            Self::Day => format!("{key}T00:00"),
            Self::Hour => format!("{key}:00"),
        };
        key.len() == self.of(DateTime::<Utc>::UNIX_EPOCH).len()
            && chrono::NaiveDateTime::parse_from_str(&with_minutes, "%Y-%m-%dT%H:%M").is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The key of the bucket being read.
    pub bucket: String,
    /// Where to resume within the bucket; `None` to start at its beginning.
    pub paging_state: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API returned")]
pub struct BadCursor;

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = self.bucket.clone().into_bytes();
        if let Some(state) = &self.paging_state {
            bytes.push(b':');
            bytes.extend_from_slice(state);
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor of a listing bucketed by `bucket` (a cursor of another listing, or one
    /// from before its buckets changed, is refused).
    pub fn decode(text: &str, bucket: Bucket) -> Result<Self, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BadCursor)?;
        let split = bytes.iter().position(|byte| *byte == b':');
        let (key, rest) = bytes.split_at(split.unwrap_or(bytes.len()));
        let key = std::str::from_utf8(key).map_err(|_| BadCursor)?;
        if !bucket.parses(key) {
            return Err(BadCursor);
        }
        let paging_state = match rest {
            [] => None,
            [b':', state @ ..] => Some(state.to_vec()),
            _ => return Err(BadCursor),
        };
        Ok(Self {
            bucket: key.to_owned(),
            paging_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for (bucket, key) in [(Bucket::Day, "2026-11-23"), (Bucket::Hour, "2026-11-23T07")] {
            for paging_state in [None, Some(vec![0, 1, 2, 255, b':'])] {
                let cursor = Cursor {
                    bucket: key.to_owned(),
                    paging_state,
                };
                assert_eq!(Cursor::decode(&cursor.encode(), bucket), Ok(cursor));
            }
        }
        let hour = Cursor {
            bucket: "2026-11-23T07".into(),
            paging_state: None,
        };
        assert_eq!(Cursor::decode(&hour.encode(), Bucket::Day), Err(BadCursor));
        for bad in ["", "!!", "MjAyNg", "MjAyNjEzNDA", "MjAyNjExMjM"] {
            assert_eq!(Cursor::decode(bad, Bucket::Day), Err(BadCursor), "{bad}");
            assert_eq!(Cursor::decode(bad, Bucket::Hour), Err(BadCursor), "{bad}");
        }
    }

    #[test]
    fn buckets_cover_the_window_in_either_direction() {
        let since = Utc.with_ymd_and_hms(2026, 12, 7, 22, 30, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2026, 12, 8, 1, 0, 0).unwrap();
        assert_eq!(
            Bucket::Hour.between(since, until, Direction::NewestFirst),
            [
                "2026-12-08T01",
                "2026-12-08T00",
                "2026-12-07T23",
                "2026-12-07T22"
            ]
        );
        assert_eq!(
            Bucket::Day.between(since, until, Direction::OldestFirst),
            ["2026-12-07", "2026-12-08"]
        );
        assert_eq!(Bucket::Hour.of(until), "2026-12-08T01");
        assert!(Bucket::Hour
            .between(until, since, Direction::OldestFirst)
            .is_empty());
    }
}
