//! Out-of-order completion, in-order commits.
//!
//! A consumer may finish the records of one partition in any order, but it may only commit an
//! offset once every record below it is finished. Per partition we keep the set of unfinished
//! offsets; the committable position is the lowest unfinished offset, or one past the highest
//! finished offset when none is unfinished.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct PartitionProgress {
    unfinished: BTreeSet<i64>,
    highest_started: Option<i64>,
}

/// Tracks unfinished offsets per partition (any key type, typically `(topic, partition)`).
#[derive(Debug)]
pub struct OffsetTracker<P> {
    partitions: HashMap<P, PartitionProgress>,
}

impl<P> Default for OffsetTracker<P> {
    fn default() -> Self {
        Self {
            partitions: HashMap::new(),
        }
    }
}

impl<P: std::hash::Hash + Eq + Clone> OffsetTracker<P> {
    /// Records that work on `offset` began. Offsets of one partition start in increasing order.
    pub fn start(&mut self, partition: P, offset: i64) {
        let progress = self.partitions.entry(partition).or_default();
        progress.unfinished.insert(offset);
        progress.highest_started = Some(progress.highest_started.map_or(offset, |h| h.max(offset)));
    }

    /// Records that `offset` finished and returns the position now safe to commit (the offset of
    /// the next record to consume), if any.
    pub fn finish(&mut self, partition: &P, offset: i64) -> Option<i64> {
        let progress = self.partitions.get_mut(partition)?;
        progress.unfinished.remove(&offset);
        match progress.unfinished.first() {
            Some(lowest) => Some(*lowest),
            None => progress.highest_started.map(|h| h + 1),
        }
    }

    /// Number of records started and not yet finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.unfinished.len()).sum()
    }

    /// Forgets a partition (after it was revoked).
    pub fn forget(&mut self, partition: &P) {
        self.partitions.remove(partition);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn commits_only_below_the_lowest_unfinished_offset() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..15 {
            tracker.start(0, offset);
        }
        assert_eq!(tracker.finish(&0, 12), Some(10));
        assert_eq!(tracker.finish(&0, 10), Some(11));
        assert_eq!(tracker.finish(&0, 11), Some(13));
        assert_eq!(tracker.finish(&0, 14), Some(13));
        assert_eq!(tracker.finish(&0, 13), Some(15));
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::default();
        tracker.start("a", 0);
        tracker.start("b", 0);
        assert_eq!(tracker.finish(&"b", 0), Some(1));
        assert_eq!(tracker.in_flight(), 1);
        tracker.forget(&"a");
        assert_eq!(tracker.in_flight(), 0);
        assert_eq!(tracker.finish(&"a", 0), None);
    }

    proptest! {
        #[test]
        fn the_committable_position_never_passes_an_unfinished_offset(
            order in Just((0..40i64).collect::<Vec<_>>()).prop_shuffle()
        ) {
            let mut tracker = OffsetTracker::default();
            for offset in 0..40 {
                tracker.start((), offset);
            }
            let mut finished = BTreeSet::new();
            let mut last = 0;
            for offset in order {
                finished.insert(offset);
                let position = tracker.finish(&(), offset).unwrap();
                prop_assert!((0..position).all(|o| finished.contains(&o)));
                prop_assert!(position >= last);
                last = position;
            }
            prop_assert_eq!(last, 40);
        }
    }
}
