//! Ids filed under a group (a tenant, an event type, a prefix), each group in id order: the
//! shape of the control state's indexes.

use std::collections::{BTreeSet, HashMap};

/// Sets of ids by group. A group is dropped with its last id, so the map holds only groups that
/// have members, whatever was filed and removed before.
#[derive(Debug, Default)]
pub(crate) struct IdGroups(HashMap<String, BTreeSet<String>>);

impl IdGroups {
    pub(crate) fn insert(&mut self, group: &str, id: &str) {
        self.0
            .entry(group.to_owned())
            .or_default()
            .insert(id.to_owned());
    }

    pub(crate) fn remove(&mut self, group: &str, id: &str) {
        let Some(ids) = self.0.get_mut(group) else {
            return;
        };
        ids.remove(id);
        if ids.is_empty() {
            self.0.remove(group);
        }
    }

    /// The group's ids in id order; none for a group without members.
    pub(crate) fn get(&self, group: &str) -> impl Iterator<Item = &str> {
        self.0.get(group).into_iter().flatten().map(String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_list_their_ids_in_order_and_vanish_with_their_last_id() {
        let mut groups = IdGroups::default();
        groups.insert("ten_1", "b");
        groups.insert("ten_1", "a");
        groups.insert("ten_1", "a");
        groups.insert("ten_2", "c");
        assert_eq!(groups.get("ten_1").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(groups.get("ten_3").count(), 0);
        groups.remove("ten_1", "a");
        groups.remove("ten_1", "b");
        groups.remove("ten_1", "b");
        groups.remove("ten_3", "a");
        assert_eq!(groups.get("ten_1").count(), 0);
        groups.remove("ten_2", "c");
        assert!(groups.is_empty());
    }
}
