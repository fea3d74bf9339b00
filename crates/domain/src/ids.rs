//! Identifiers. Random ids are UUIDv7 (time-ordered, so they sort by creation); a delivery's id
//! is derived from its tenant, event and webhook, so every retry and replay of one event to one
//! webhook carries the same `webhook-id`, whichever process computed it.

use uuid::Uuid;

/// Namespace of derived delivery ids (a fixed random UUID; never change it).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_4e0b_93c2_4d7e_8b51_2f0c_9e3a_d418);

/// Longest id a producer may give its event.
pub const MAX_EVENT_ID_LEN: usize = 128;

fn random(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

pub fn new_event_id() -> String {
    random("evt")
}

pub fn new_tenant_id() -> String {
    random("ten")
}

pub fn new_key_id() -> String {
    random("key")
}

pub fn new_webhook_id() -> String {
    random("wh")
}

pub fn new_attempt_id() -> String {
    random("att")
}

/// The delivery id of one event to one webhook: stable across retries, replays and processes.
pub fn delivery_id(tenant_id: &str, event_id: &str, webhook_id: &str) -> String {
    // The separator cannot occur in any of the three ids, so the name is unambiguous.
    let name = format!("{tenant_id}\n{event_id}\n{webhook_id}");
    let uuid = Uuid::new_v5(&DELIVERY_NAMESPACE, name.as_bytes());
    format!("msg_{}", uuid.simple())
}

/// A producer-supplied event id: 1–128 bytes of ASCII letters, digits, `_`, `-`, `.` and `:`.
pub fn is_valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EVENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_and_distinct_per_webhook() {
        let a = delivery_id("ten_1", "evt_1", "wh_1");
        assert_eq!(a, delivery_id("ten_1", "evt_1", "wh_1"));
        assert_ne!(a, delivery_id("ten_1", "evt_1", "wh_2"));
        assert_ne!(a, delivery_id("ten_2", "evt_1", "wh_1"));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }

    #[test]
    fn random_ids_are_prefixed_and_unique() {
        let (a, b) = (new_event_id(), new_event_id());
        assert!(a.starts_with("evt_"));
        assert_ne!(a, b);
    }

    #[test]
    fn event_ids_are_checked() {
        assert!(is_valid_event_id("order-42:v1.created_1"));
        assert!(!is_valid_event_id(""));
        assert!(!is_valid_event_id("has space"));
        assert!(!is_valid_event_id("new\nline"));
        assert!(!is_valid_event_id(&"x".repeat(MAX_EVENT_ID_LEN + 1)));
    }
}
