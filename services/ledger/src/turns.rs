//! Writes that must happen in the order their records were read, while other writes run
//! concurrently: the copies of an event published again under its id, which share a partition.
//! The ledger keeps the copy it writes first, so that must be the first accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{FutureExt, Shared};
use hookline_domain::idempotency::IdempotencyKey;
use tokio::sync::oneshot;

type Finished = Shared<oneshot::Receiver<()>>;

/// The last turn taken for each key still running.
#[derive(Default)]
pub struct Turns {
    last: Mutex<HashMap<IdempotencyKey, (u64, Finished)>>,
    taken: Mutex<u64>,
}

/// A place after every turn of its key taken before it; dropping it lets the next one go.
pub struct Turn {
    turns: Arc<Turns>,
    key: IdempotencyKey,
    number: u64,
    previous: Option<Finished>,
    _finished: oneshot::Sender<()>,
}

impl Turns {
    /// Takes the next turn of `key`: call it in the order the records were read.
    pub fn take(self: &Arc<Self>, key: IdempotencyKey) -> Turn {
        let number = {
            let mut taken = self.taken.lock().expect("turns lock");
            *taken += 1;
            *taken
        };
        let (finished, on_finished) = oneshot::channel();
        let previous = self
            .last
            .lock()
            .expect("turns lock")
            .insert(key, (number, on_finished.shared()))
            .map(|(_, previous)| previous);
        Turn {
            turns: Arc::clone(self),
            key,
            number,
            previous,
            _finished: finished,
        }
    }
}

impl Turn {
    /// Waits until every earlier turn of its key has finished.
    pub async fn wait(&mut self) {
        if let Some(previous) = &self.previous {
            // An error only says the sender was dropped: that turn finished.
            let _ = previous.clone().await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut last = self.turns.last.lock().expect("turns lock");
        if last
            .get(&self.key)
            .is_some_and(|(number, _)| *number == self.number)
        {
            last.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_key_s_turns_go_in_order_and_other_keys_do_not_wait() {
        let turns = Arc::new(Turns::default());
        let (a, b) = (IdempotencyKey::of("t", "a"), IdempotencyKey::of("t", "b"));
        let first = turns.take(a);
        let mut second = turns.take(a);
        let mut other = turns.take(b);
        other.wait().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), second.wait())
                .await
                .is_err(),
            "the second turn went before the first finished"
        );
        drop(first);
        second.wait().await;
        drop(second);
        drop(other);
        assert!(
            turns.last.lock().unwrap().is_empty(),
            "finished turns are forgotten"
        );
    }
}
