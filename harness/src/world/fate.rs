//! The network's decision for one message, made by one function in both worlds: the simulated
//! shim (`sim::net`) and real mode's proxy (`real::proxy`) ask the same [`Fates`] what happens
//! to each message, so a schedule means the same thing wherever it runs.
//!
//! Every decision draws from the run's network generator, in the order messages arrive; the
//! draws per message are fixed (each active window in schedule order, then the second copy's
//! gap), so the same arrivals give the same fates.

use crate::schedule::{Fault, FaultEntry, Target};
use broker_under_test::NodeName;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The longest gap between the two copies of a duplicated message.
const DUPLICATE_GAP_US_MAX: u64 = 20_000;

/// Why the network lost a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// A partition window cut the link between sender and receiver.
    Partition,
    /// A loss window's draw lost it.
    Loss,
}

impl DropCause {
    /// The name the history records.
    pub fn name(self) -> &'static str {
        match self {
            DropCause::Partition => "partition",
            DropCause::Loss => "loss",
        }
    }
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fate {
    /// Lost, and why; a lost message has no delay and no copy.
    pub dropped: Option<DropCause>,
    /// Extra delay before it arrives (the sum of every open delay window's draw).
    pub delay: Duration,
    /// Delivered twice: the second copy arrives this long after the first.
    pub duplicate_gap: Option<Duration>,
}

/// The run's network faults: its network windows, its generator, and whether the heal has
/// ended them. Shared by every message of the run.
pub struct Fates {
    // invariant: every entry's fault is a network fault, in schedule order
    windows: Vec<FaultEntry>,
    /// `ends[i]`: the latest end (ms) of `windows[..=i]`, non-decreasing, so the windows before
    /// the first `ends[i] > now` have all closed. Only used when `sorted`.
    ends: Vec<u64>,
    /// The windows are in start order (as every generated or validated schedule is), so the
    /// ones started by `now` are a prefix.
    sorted: bool,
    state: Mutex<State>,
    /// Messages decided on, and how many of them were lost.
    pub messages: AtomicU64,
    pub dropped: AtomicU64,
}

struct State {
    /// Draws every per-message decision; one stream, consumed in arrival order.
    rng: ChaCha8Rng,
    /// After the heal the network is whole and nothing more is drawn.
    healed: bool,
}

impl Fates {
    /// The network part of `schedule`, drawing from `rng` (the run's network stream).
    pub fn new(schedule: &[FaultEntry], rng: ChaCha8Rng) -> Fates {
        let windows: Vec<FaultEntry> = schedule
            .iter()
            .filter(|e| e.fault.is_network())
            .cloned()
            .collect();
        let ends = windows
            .iter()
            .scan(0, |latest: &mut u64, e| {
                *latest = (*latest).max(e.at_ms.saturating_add(e.duration_ms));
                Some(*latest)
            })
            .collect();
        Fates {
            sorted: windows.is_sorted_by_key(|e| e.at_ms),
            windows,
            ends,
            state: Mutex::new(State { rng, healed: false }),
            messages: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The windows that may be open at `now_ms`, in schedule order: a contiguous slice when the
    /// windows are sorted (found by binary search, not a scan of every window per message),
    /// else all of them. The open windows and their order are the same either way, so the
    /// draws and the trace do not change.
    fn candidates(&self, now_ms: u64) -> &[FaultEntry] {
        if !self.sorted {
            return &self.windows;
        }
        let closed = self.ends.partition_point(|&end| end <= now_ms);
        let started = self.windows.partition_point(|e| e.at_ms <= now_ms);
        &self.windows[closed.min(started)..started]
    }

    /// Ends every network fault.
    pub fn heal(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).healed = true;
    }

    /// Decides the fate of a message from `from` to `to` arriving at `now_ms` (milliseconds
    /// since the run started).
    pub fn decide(&self, now_ms: u64, from: NodeName, to: NodeName) -> Fate {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.healed {
            return Fate::default();
        }
        let rng = &mut state.rng;
        let mut dropped = None;
        let mut duplicate = false;
        let mut delay_us = 0;
        for entry in self
            .candidates(now_ms)
            .iter()
            .filter(|e| e.active_at(now_ms))
        {
            let touches = entry.target.touches(from, to);
            match &entry.fault {
                Fault::Partition { peer, two_way } => {
                    let side = Target::Node;
                    let cut = (entry.target == side(from) && *peer == to)
                        || (*two_way && *peer == from && entry.target == side(to));
                    if cut {
                        dropped = Some(DropCause::Partition);
                    }
                }
                // Every touching window draws, lost or not, so one message's draws do not
                // depend on the order of the windows that decide it.
                Fault::Loss { rate } if touches => {
                    let lost = rng.random_bool(*rate);
                    dropped = dropped.or(lost.then_some(DropCause::Loss));
                }
                Fault::Duplicate { rate } if touches => duplicate |= rng.random_bool(*rate),
                Fault::Delay { spread_ms } if touches => {
                    delay_us += rng.random_range(0..=spread_ms * 1000)
                }
                // Replication faults decide by who talks to whom, and draw nothing.
                Fault::Isolate if isolated(entry.target, from, to) => {
                    dropped = Some(DropCause::Partition);
                }
                Fault::Lag { delay_ms } if lagging(entry.target, from, to) => {
                    delay_us += delay_ms * 1000;
                }
                _ => {}
            }
        }
        if dropped.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Fate {
                dropped,
                ..Fate::default()
            };
        }
        let duplicate_gap =
            duplicate.then(|| Duration::from_micros(rng.random_range(0..=DUPLICATE_GAP_US_MAX)));
        Fate {
            dropped: None,
            delay: Duration::from_micros(delay_us),
            duplicate_gap,
        }
    }
}

/// Whether an isolation of `target` cuts a message from `from` to `to`: one side is the
/// isolated broker, the other another broker or the controller.
fn isolated(target: Target, from: NodeName, to: NodeName) -> bool {
    let cluster = |n: NodeName| matches!(n, NodeName::Replica(_) | NodeName::Controller);
    let t = target.node();
    from != to && ((t == Some(from) && cluster(to)) || (t == Some(to) && cluster(from)))
}

/// Whether a lag window on `target` slows a message from `from` to `to`: one side is the
/// lagging broker, the other another broker.
fn lagging(target: Target, from: NodeName, to: NodeName) -> bool {
    let broker = |n: NodeName| matches!(n, NodeName::Replica(_));
    let t = target.node();
    from != to && ((t == Some(from) && broker(to)) || (t == Some(to) && broker(from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const BROKER: NodeName = NodeName::Broker;
    const STORE: NodeName = NodeName::Store;
    const CONSUMER: NodeName = NodeName::Consumer;
    const PRODUCER_0: NodeName = NodeName::Producer(0);

    fn window(target: Target, fault: Fault) -> FaultEntry {
        FaultEntry {
            at_ms: 10,
            target,
            duration_ms: 100,
            fault,
        }
    }

    #[test]
    fn partitions_cut_one_or_both_ways_only_while_open() {
        let one_way = window(
            BROKER.into(),
            Fault::Partition {
                peer: STORE,
                two_way: false,
            },
        );
        let fates = Fates::new(&[one_way], ChaCha8Rng::seed_from_u64(1));
        let cut = |now, from, to| fates.decide(now, from, to).dropped;
        assert_eq!(cut(50, BROKER, STORE), Some(DropCause::Partition));
        assert_eq!(cut(50, STORE, BROKER), None);
        assert_eq!(cut(9, BROKER, STORE), None);
        assert_eq!(cut(110, BROKER, STORE), None);
        assert_eq!(fates.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(fates.messages.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn certain_windows_lose_duplicate_and_delay_and_the_heal_ends_them() {
        let fates = Fates::new(
            &[
                window(Target::All, Fault::Duplicate { rate: 1.0 }),
                window(PRODUCER_0.into(), Fault::Delay { spread_ms: 5 }),
                window(CONSUMER.into(), Fault::Loss { rate: 1.0 }),
            ],
            ChaCha8Rng::seed_from_u64(2),
        );
        let fate = fates.decide(20, PRODUCER_0, BROKER);
        assert_eq!(fate.dropped, None);
        assert!(fate.duplicate_gap.is_some());
        assert!(fate.delay <= Duration::from_millis(5));
        let lost = fates.decide(20, BROKER, CONSUMER);
        assert_eq!(
            (lost.dropped, lost.duplicate_gap),
            (Some(DropCause::Loss), None)
        );
        fates.heal();
        assert_eq!(fates.decide(20, BROKER, CONSUMER), Fate::default());
    }

    #[test]
    fn an_isolated_broker_loses_its_cluster_but_not_its_clients_and_a_lag_slows_its_peers() {
        let (b0, b1, ctl) = (
            NodeName::Replica(0),
            NodeName::Replica(1),
            NodeName::Controller,
        );
        let fates = Fates::new(
            &[
                window(b0.into(), Fault::Isolate),
                window(b1.into(), Fault::Lag { delay_ms: 30 }),
            ],
            ChaCha8Rng::seed_from_u64(4),
        );
        let cut = |from, to| fates.decide(50, from, to).dropped;
        assert_eq!(cut(b0, b1), Some(DropCause::Partition));
        assert_eq!(cut(b1, b0), Some(DropCause::Partition));
        assert_eq!(cut(ctl, b0), Some(DropCause::Partition));
        assert_eq!(cut(b0, ctl), Some(DropCause::Partition));
        assert_eq!(cut(PRODUCER_0, b0), None);
        assert_eq!(cut(b0, CONSUMER), None);
        assert_eq!(cut(b0, STORE), None);
        let b2 = NodeName::Replica(2);
        assert_eq!(fates.decide(50, b2, b1).delay, Duration::from_millis(30));
        assert_eq!(fates.decide(50, b1, b2).delay, Duration::from_millis(30));
        assert_eq!(fates.decide(50, b1, ctl).delay, Duration::ZERO);
        assert_eq!(fates.decide(50, PRODUCER_0, b1).delay, Duration::ZERO);
        assert_eq!(fates.decide(200, b2, b1), Fate::default());
    }

    #[test]
    fn the_same_arrivals_draw_the_same_fates() {
        let schedule = [
            window(Target::All, Fault::Loss { rate: 0.3 }),
            window(Target::All, Fault::Delay { spread_ms: 40 }),
            window(BROKER.into(), Fault::Duplicate { rate: 0.3 }),
        ];
        let run = || {
            let fates = Fates::new(&schedule, ChaCha8Rng::seed_from_u64(3));
            (0..200)
                .map(|i| fates.decide(10 + i % 100, NodeName::Producer(1), BROKER))
                .collect::<Vec<_>>()
        };
        let fates = run();
        assert_eq!(fates, run());
        assert!(fates.iter().any(|f| f.dropped.is_some()));
        assert!(fates.iter().any(|f| f.duplicate_gap.is_some()));
    }

    #[test]
    fn the_candidates_hold_exactly_the_open_windows_in_schedule_order() {
        // Overlapping windows of mixed lengths, sorted by start; and the same unsorted.
        let mut schedule: Vec<FaultEntry> = (0..40u64)
            .map(|i| FaultEntry {
                at_ms: i * 7,
                duration_ms: [5, 300, 20, 1][i as usize % 4],
                ..window(Target::All, Fault::Loss { rate: 0.5 })
            })
            .collect();
        for _ in 0..2 {
            let fates = Fates::new(&schedule, ChaCha8Rng::seed_from_u64(1));
            for now in 0..400 {
                let fast: Vec<&FaultEntry> = fates
                    .candidates(now)
                    .iter()
                    .filter(|e| e.active_at(now))
                    .collect();
                let all: Vec<&FaultEntry> =
                    fates.windows.iter().filter(|e| e.active_at(now)).collect();
                assert_eq!(fast, all, "at {now} ms");
            }
            schedule.reverse();
        }
    }
}
