//! Fields of partial updates that `null` clears.

use serde::{Deserialize, Deserializer};

/// For `#[serde(default, deserialize_with = "nullable")]` on an `Option<Option<T>>`: absent
/// is `None` (keep), `null` is `Some(None)` (remove), a value is `Some(Some(value))` (replace).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "nullable")]
        field: Option<Option<u32>>,
    }

    #[test]
    fn absent_null_and_a_value_are_told_apart() {
        let parse = |body| serde_json::from_value::<Patch>(body).unwrap().field;
        assert_eq!(parse(json!({})), None);
        assert_eq!(parse(json!({"field": null})), Some(None));
        assert_eq!(parse(json!({"field": 7})), Some(Some(7)));
    }
}
