//! Cursor pagination of lists kept in memory: items in id order (ids are time-ordered), the
//! cursor is the id of the last item of the previous page.

use hookline_domain::ErrorCode;
use hookline_runtime::api::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

/// Items per page unless the request asks for fewer or more.
pub const DEFAULT_LIMIT: usize = 50;
/// Most items per page.
pub const MAX_LIMIT: usize = 100;

/// One page of a list and the cursor of the next, absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Checks a requested page size.
pub fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("limit: 1 to {MAX_LIMIT}"),
        )),
    }
}

/// The page of `items` (sorted by id) after `cursor`, at most `limit` long.
pub fn paginate<T>(
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    limit: usize,
) -> Page<T> {
    let mut data: Vec<T> = items
        .into_iter()
        .filter(|item| cursor.is_none_or(|cursor| id(item) > cursor))
        .take(limit + 1)
        .collect();
    let more = data.len() > limit;
    data.truncate(limit);
    let next_cursor = more
        .then(|| data.last().map(|item| id(item).to_owned()))
        .flatten();
    Page { data, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let ids: Vec<String> = (0..7).map(|n| format!("id_{n}")).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = paginate(ids.iter(), |id| id.as_str(), cursor.as_deref(), 3);
            seen.extend(page.data.iter().map(|id| id.to_string()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids);
    }

    #[test]
    fn an_exactly_full_last_page_has_no_next_cursor() {
        let ids = ["a", "b"];
        let page = paginate(ids.iter(), |id| id, None, 2);
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
