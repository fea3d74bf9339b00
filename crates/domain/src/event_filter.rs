//! Event types and the filters a webhook subscribes with: an exact name, `*`, or `prefix.*`.
//!
//! An event type is one or more dot-separated segments of ASCII letters, digits, `_` and `-`
//! (`invoice.paid`, `meeting.transcript_ready`), at most 128 bytes.

use std::fmt;

/// Longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventFilterError {
    #[error("event type must not be empty")]
    Empty,
    #[error("event type is longer than {MAX_EVENT_TYPE_LEN} bytes")]
    TooLong,
    #[error("event type `{0}` must be dot-separated segments of letters, digits, `_` and `-`")]
    Malformed(String),
    #[error("`*` may only stand alone or as the last segment, as in `invoice.*`")]
    MisplacedWildcard(String),
    #[error("events must list at least one event type")]
    NoFilters,
}

/// Checks that `name` is a well-formed event type.
pub fn validate_event_type(name: &str) -> Result<(), EventFilterError> {
    if name.is_empty() {
        return Err(EventFilterError::Empty);
    }
    if name.len() > MAX_EVENT_TYPE_LEN {
        return Err(EventFilterError::TooLong);
    }
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if name.split('.').all(segment_ok) {
        Ok(())
    } else {
        Err(EventFilterError::Malformed(name.to_owned()))
    }
}

/// One subscription filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// `*`: every event type.
    Any,
    /// `invoice.*`: every type starting with `invoice.` (stored with the trailing dot).
    Prefix(String),
    /// `invoice.paid`.
    Exact(String),
}

impl EventFilter {
    pub fn parse(filter: &str) -> Result<Self, EventFilterError> {
        if filter == "*" {
            return Ok(EventFilter::Any);
        }
        if let Some(prefix) = filter.strip_suffix(".*") {
            validate_event_type(prefix).map_err(|err| match err {
                EventFilterError::Malformed(_) if prefix.contains('*') => {
                    EventFilterError::MisplacedWildcard(filter.to_owned())
                }
                other => other,
            })?;
            return Ok(EventFilter::Prefix(format!("{prefix}.")));
        }
        if filter.contains('*') {
            return Err(EventFilterError::MisplacedWildcard(filter.to_owned()));
        }
        validate_event_type(filter)?;
        Ok(EventFilter::Exact(filter.to_owned()))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            EventFilter::Any => true,
            EventFilter::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            EventFilter::Exact(name) => name == event_type,
        }
    }
}

impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventFilter::Any => f.write_str("*"),
            EventFilter::Prefix(prefix) => write!(f, "{prefix}*"),
            EventFilter::Exact(name) => f.write_str(name),
        }
    }
}

/// The filters of one webhook; it matches an event when any filter does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilters(Vec<EventFilter>);

impl EventFilters {
    /// Parses a webhook's `events` list; it must be non-empty and every entry valid.
    pub fn parse<S: AsRef<str>>(filters: &[S]) -> Result<Self, EventFilterError> {
        if filters.is_empty() {
            return Err(EventFilterError::NoFilters);
        }
        let parsed = filters
            .iter()
            .map(|filter| EventFilter::parse(filter.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(parsed))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|filter| filter.matches(event_type))
    }

    /// Each filter, in the order the webhook lists them.
    pub fn iter(&self) -> impl Iterator<Item = &EventFilter> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn exact_any_and_prefix_filters_match_as_documented() {
        let filters = EventFilters::parse(&["invoice.paid", "meeting.*"]).unwrap();
        assert!(filters.matches("invoice.paid"));
        assert!(!filters.matches("invoice.paid.late"));
        assert!(!filters.matches("invoice.created"));
        assert!(filters.matches("meeting.completed"));
        assert!(filters.matches("meeting.transcript.ready"));
        assert!(!filters.matches("meeting"));
        assert!(!filters.matches("meetings.completed"));
        assert!(EventFilters::parse(&["*"])
            .unwrap()
            .matches("anything.at.all"));
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert_eq!(
            EventFilters::parse::<&str>(&[]),
            Err(EventFilterError::NoFilters)
        );
        for bad in [
            "", ".", "a..b", "a.", ".a", "in voice", "a.*.b", "*.paid", "a*", "**", "é",
        ] {
            assert!(EventFilter::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(MAX_EVENT_TYPE_LEN + 1);
        assert_eq!(EventFilter::parse(&long), Err(EventFilterError::TooLong));
    }

    #[test]
    fn filters_display_as_written() {
        for text in ["*", "invoice.*", "invoice.paid"] {
            assert_eq!(EventFilter::parse(text).unwrap().to_string(), text);
        }
    }

    fn event_type() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z0-9_-]{1,8}", 1..5).prop_map(|segments| segments.join("."))
    }

    proptest! {
        #[test]
        fn a_type_matches_itself_star_and_each_of_its_prefixes(name in event_type()) {
            prop_assert!(validate_event_type(&name).is_ok());
            prop_assert!(EventFilter::parse(&name).unwrap().matches(&name));
            prop_assert!(EventFilter::Any.matches(&name));
            let segments: Vec<&str> = name.split('.').collect();
            for end in 1..segments.len() {
                let filter = format!("{}.*", segments[..end].join("."));
                prop_assert!(EventFilter::parse(&filter).unwrap().matches(&name), "{filter}");
            }
        }

        #[test]
        fn a_prefix_filter_never_matches_the_bare_prefix_or_a_sibling(name in event_type(), suffix in "[a-z]{1,4}") {
            let filter = EventFilter::parse(&format!("{name}.*")).unwrap();
            prop_assert!(!filter.matches(&name));
            let sibling = format!("{name}{suffix}.x");
            prop_assert!(!filter.matches(&sibling));
        }

        #[test]
        fn an_exact_filter_matches_only_its_name(a in event_type(), b in event_type()) {
            prop_assert_eq!(EventFilter::parse(&a).unwrap().matches(&b), a == b);
        }
    }
}
