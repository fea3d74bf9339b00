//! The fault schedule of a chaos run: a pure function of the seed and the run's length, so a
//! seed that found a loss replays the same faults, in the same order, at the same times.

use std::fmt;
use std::time::Duration;

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Kafka,
    Cassandra,
    /// A service process, by its index in [`SERVICES`].
    Service(usize),
    /// A webhook's endpoint at the receiver, by index.
    Endpoint(usize),
}

/// The service processes of a run: one of each, and two senders sharing the work.
pub const SERVICES: [&str; 5] = ["ingest", "fanout", "sender-1", "sender-2", "ledger"];
/// Webhooks subscribed to every event, each at its own path of the receiver.
pub const ENDPOINTS: usize = 3;

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Kafka => f.write_str("kafka"),
            Target::Cassandra => f.write_str("cassandra"),
            Target::Service(index) => f.write_str(SERVICES[*index]),
            Target::Endpoint(index) => write!(f, "endpoint /w{index}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL, then start it again after `down` (a server keeps its data).
    Kill { down: Duration },
    /// SIGSTOP, then SIGCONT after `for_`: a process that hangs without dying.
    Stall { for_: Duration },
    /// The endpoint answers 500 for a while.
    Fail { for_: Duration },
    /// The endpoint holds every request past the sender's timeout for a while.
    Hang { for_: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// When it starts, from the start of publishing.
    pub at: Duration,
    pub target: Target,
    pub action: Action,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| d.as_secs_f64();
        write!(f, "t+{:5.1}s  ", secs(&self.at))?;
        match &self.action {
            Action::Kill { down } => write!(
                f,
                "kill -9 {}, start it again {:.1}s later",
                self.target,
                secs(down)
            ),
            Action::Stall { for_ } => write!(f, "SIGSTOP {} for {:.1}s", self.target, secs(for_)),
            Action::Fail { for_ } => {
                write!(f, "{} answers 500 for {:.1}s", self.target, secs(for_))
            }
            Action::Hang { for_ } => write!(f, "{} hangs for {:.1}s", self.target, secs(for_)),
        }
    }
}

/// No fault starts this soon after publishing starts, so the pipeline is seen working first.
const LEAD_IN: Duration = Duration::from_secs(5);
/// Faults start on average this far apart; shorter gaps make them overlap now and then.
const MEAN_GAP_SECS: f64 = 10.0;

/// The faults of a run publishing for `publishing`, in order. No fault starts in the last
/// quarter, so the last restarts finish while events still flow. Every kind of fault is in
/// every plan (a broker and a database kill, a service kill, a stall, a failing and a hanging
/// endpoint); the other slots are drawn at random.
pub fn plan(seed: u64, publishing: Duration) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let window = publishing.mul_f64(0.75).saturating_sub(LEAD_IN);
    let count = ((window.as_secs_f64() / MEAN_GAP_SECS) as usize).max(REQUIRED.len());
    let mut kinds: Vec<Kind> = REQUIRED.to_vec();
    while kinds.len() < count {
        kinds.push(rng.weighted(&WEIGHTS));
    }
    rng.shuffle(&mut kinds);
    let mut times: Vec<Duration> = (0..count)
        .map(|_| LEAD_IN + window.mul_f64(rng.unit()))
        .collect();
    times.sort();
    times
        .into_iter()
        .zip(kinds)
        .map(|(at, kind)| kind.fault(at, &mut rng))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    KillKafka,
    KillCassandra,
    KillService,
    Stall,
    Fail,
    Hang,
}

const REQUIRED: [Kind; 6] = [
    Kind::KillKafka,
    Kind::KillCassandra,
    Kind::KillService,
    Kind::Stall,
    Kind::Fail,
    Kind::Hang,
];

/// How often each kind fills the slots beyond the required ones. Cassandra restarts take the
/// longest, so they are the rarest.
const WEIGHTS: [(Kind, u32); 6] = [
    (Kind::KillKafka, 2),
    (Kind::KillCassandra, 1),
    (Kind::KillService, 4),
    (Kind::Stall, 3),
    (Kind::Fail, 2),
    (Kind::Hang, 2),
];

impl Kind {
    fn fault(self, at: Duration, rng: &mut Rng) -> Fault {
        let (target, action) = match self {
            Kind::KillKafka => (
                Target::Kafka,
                Action::Kill {
                    down: rng.secs(0.0, 3.0),
                },
            ),
            Kind::KillCassandra => (
                Target::Cassandra,
                Action::Kill {
                    down: rng.secs(0.0, 3.0),
                },
            ),
            Kind::KillService => (
                Target::Service(rng.below(SERVICES.len())),
                Action::Kill {
                    down: rng.secs(0.0, 3.0),
                },
            ),
            Kind::Stall => {
                // Any process: a stalled broker or database is a fault of its own.
                let target = match rng.below(SERVICES.len() + 2) {
                    0 => Target::Kafka,
                    1 => Target::Cassandra,
                    n => Target::Service(n - 2),
                };
                (
                    target,
                    Action::Stall {
                        for_: rng.secs(2.0, 8.0),
                    },
                )
            }
            Kind::Fail => (
                Target::Endpoint(rng.below(ENDPOINTS)),
                Action::Fail {
                    for_: rng.secs(5.0, 20.0),
                },
            ),
            Kind::Hang => (
                Target::Endpoint(rng.below(ENDPOINTS)),
                Action::Hang {
                    for_: rng.secs(5.0, 20.0),
                },
            ),
        };
        Fault { at, target, action }
    }
}

/// SplitMix64: tiny, seedable and the same everywhere, which is all a schedule needs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// A whole number of tenths of a second in [low, high), so plans print exactly.
    fn secs(&mut self, low: f64, high: f64) -> Duration {
        let tenths = ((low + (high - low) * self.unit()) * 10.0).floor();
        Duration::from_millis(tenths as u64 * 100)
    }

    fn weighted<T: Copy>(&mut self, choices: &[(T, u32)]) -> T {
        let total: u32 = choices.iter().map(|(_, weight)| weight).sum();
        let mut pick = self.below(total as usize) as u32;
        for (choice, weight) in choices {
            if pick < *weight {
                return *choice;
            }
            pick -= weight;
        }
        choices[choices.len() - 1].0
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{plan, Action, Target};

    const TWO_MINUTES: Duration = Duration::from_secs(120);

    #[test]
    fn a_seed_replays_the_same_plan() {
        assert_eq!(plan(7, TWO_MINUTES), plan(7, TWO_MINUTES));
        assert_ne!(plan(7, TWO_MINUTES), plan(8, TWO_MINUTES));
    }

    #[test]
    fn every_plan_kills_the_broker_and_the_database_and_stays_in_its_window() {
        for seed in 0..200 {
            let faults = plan(seed, TWO_MINUTES);
            let kills = |target| {
                faults
                    .iter()
                    .any(|f| f.target == target && matches!(f.action, Action::Kill { .. }))
            };
            assert!(kills(Target::Kafka) && kills(Target::Cassandra), "{seed}");
            assert!(faults
                .iter()
                .any(|f| matches!(f.action, Action::Hang { .. })));
            assert!(faults.windows(2).all(|pair| pair[0].at <= pair[1].at));
            assert!(faults
                .iter()
                .all(|f| f.at >= Duration::from_secs(5) && f.at <= Duration::from_secs(90)));
        }
    }

    #[test]
    fn short_runs_still_get_every_kind_of_fault() {
        assert_eq!(plan(1, Duration::from_secs(20)).len(), 6);
    }
}
