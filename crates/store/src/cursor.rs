//! API cursors over day-bucketed partitions: the day being read and the driver's paging state
//! within it, as one opaque URL-safe string.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub day: NaiveDate,
    /// Where to resume within the day; `None` to start at its beginning.
    pub paging_state: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API returned")]
pub struct BadCursor;

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = self.day.format("%Y%m%d").to_string().into_bytes();
        if let Some(state) = &self.paging_state {
            bytes.push(b':');
            bytes.extend_from_slice(state);
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Self, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BadCursor)?;
        let (day, rest) = bytes.split_at(bytes.len().min(8));
        let day = std::str::from_utf8(day).map_err(|_| BadCursor)?;
        let day = NaiveDate::parse_from_str(day, "%Y%m%d").map_err(|_| BadCursor)?;
        let paging_state = match rest {
            [] => None,
            [b':', state @ ..] => Some(state.to_vec()),
            _ => return Err(BadCursor),
        };
        Ok(Self { day, paging_state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        for paging_state in [None, Some(vec![0, 1, 2, 255, b':'])] {
            let cursor = Cursor { day, paging_state };
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }
        for bad in ["", "!!", "MjAyNg", "MjAyNjEzNDA"] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad}");
        }
    }
}
