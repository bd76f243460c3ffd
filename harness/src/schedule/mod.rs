//! The fault schedule: every fault a run injects, as explicit data drawn from the seed.
//!
//! A schedule is generated once per run from the scenario and the run's generator, before the
//! simulation starts, so it can be printed, stored in a failure artifact, replayed as is and
//! shrunk entry by entry. Per-message draws (which message a loss window drops) come from the
//! run's network generator while the entry is active.

mod generate;
mod swarm;
mod target;

pub use generate::{generate, replicate};
pub use target::Target;

use broker_under_test::storage::IoOp;
use broker_under_test::NodeName;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One fault: what, to whom, when, for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEntry {
    /// When it starts, in simulated milliseconds from the start of the run.
    pub at_ms: u64,
    /// The node it hits, or for a loss, duplicate or delay window every node's messages.
    pub target: Target,
    /// How long it lasts (a crashed node's downtime, a window's length).
    pub duration_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// The kind of a fault and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Power loss: the node dies, its disk loses unsynced writes (keeping a torn, possibly
    /// garbled, prefix if `torn`), and it restarts after `duration_ms`. With `corrupt` every
    /// unsynced byte reaches the platter but one region inside comes back damaged.
    Crash {
        torn: bool,
        garble: bool,
        /// Absent from the JSON when `None`, so schedules without damage (every schedule
        /// before it existed) serialize and hash exactly as they did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        corrupt: Option<Corruption>,
    },
    /// The node's tasks freeze for `duration_ms`, then go on as if nothing happened.
    Pause,
    /// Messages from `target` to `peer` (and back, if `two_way`) are lost.
    Partition { peer: NodeName, two_way: bool },
    /// Each message to or from `target` is lost with probability `rate`.
    Loss { rate: f64 },
    /// Each message to or from `target` is delivered twice with probability `rate`.
    Duplicate { rate: f64 },
    /// Each message to or from `target` waits an extra uniform delay up to `spread_ms`.
    Delay { spread_ms: u64 },
    /// For `duration_ms`, each storage operation of `target` of a kind in `ops` fails with an
    /// I/O error with probability `rate` (a failed sync loses the unsynced bytes it covered).
    IoErrors { rate: f64, ops: Vec<IoOp> },
    /// Replicated deployments: messages between `target` (a broker) and the other brokers and
    /// the controller are lost, both ways, for `duration_ms`; producers, consumer and store
    /// still reach it (an old leader keeps taking requests it can never commit).
    Isolate,
    /// Replicated deployments: every message between `target` (a broker) and another broker
    /// waits `delay_ms` more, for `duration_ms` (a slow follower, or a slow leader to fetch
    /// from). The same delay for each message, so the link stays in order; no draw.
    Lag { delay_ms: u64 },
    /// Replicated deployments: bit rot or a lost write in `target`'s synced log of partition
    /// `log` (the one fault that reaches durable bytes), found when the node next recovers. A
    /// replica must repair it from its peers, never serve it nor lose what it held.
    Rot { log: u32, damage: Corruption },
}

/// A damaged region in a crashed node's kept tail: in every file with unsynced bytes, the
/// crash keeps them all and damages them at `at_permille` thousandths of their length. The
/// frames around it stay whole, so only a checksum can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corruption {
    /// Where the damage starts, in thousandths of the file's unsynced bytes (0..1000).
    pub at_permille: u16,
    #[serde(flatten)]
    pub damage: Damage,
}

/// What a [`Corruption`] does to the bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "damage", rename_all = "kebab-case")]
pub enum Damage {
    /// One byte XORed with `mask` (bit rot).
    FlipBits { mask: u8 },
    /// `len` bytes zeroed (a block never written).
    Zero { len: u32 },
    /// `len` bytes of noise drawn from `seed` (another block's content).
    Garbage { len: u32, seed: u64 },
}

impl Corruption {
    /// The disk model's damage for a file with `unsynced` bytes, all of them kept.
    pub fn for_file(&self, unsynced: usize) -> broker_under_test::storage::Damage {
        use broker_under_test::storage::DamageKind;
        let kind = match self.damage {
            Damage::FlipBits { mask } => DamageKind::FlipBits { mask },
            Damage::Zero { len } => DamageKind::Zero { len: len as usize },
            Damage::Garbage { len, seed } => DamageKind::Garbage {
                len: len as usize,
                seed,
            },
        };
        broker_under_test::storage::Damage {
            offset: unsynced * usize::from(self.at_permille.min(999)) / 1000,
            kind,
        }
    }

    /// One step smaller, or `None` at the smallest: fewer flipped bits, half the block.
    pub fn smaller(&self) -> Option<Corruption> {
        let damage = match self.damage {
            Damage::FlipBits { mask } if mask.count_ones() > 1 => Damage::FlipBits {
                mask: mask & (mask - 1),
            },
            Damage::Zero { len } if len > 1 => Damage::Zero { len: len / 2 },
            Damage::Garbage { len, seed } if len > 1 => Damage::Garbage { len: len / 2, seed },
            _ => return None,
        };
        Some(Corruption { damage, ..*self })
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = f64::from(self.at_permille) / 10.0;
        match self.damage {
            Damage::FlipBits { mask } => write!(f, "flip-bits mask={mask:#04x} at {at:.1}%"),
            Damage::Zero { len } => write!(f, "zero {len} B at {at:.1}%"),
            Damage::Garbage { len, seed } => write!(f, "garbage {len} B (seed {seed}) at {at:.1}%"),
        }
    }
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Pause => "pause",
            Fault::Partition { .. } => "partition",
            Fault::Loss { .. } => "loss",
            Fault::Duplicate { .. } => "duplicate",
            Fault::Delay { .. } => "delay",
            Fault::IoErrors { .. } => "io-errors",
            Fault::Isolate => "isolate",
            Fault::Lag { .. } => "lag",
            Fault::Rot { .. } => "rot",
        }
    }

    /// Whether the network shim (rather than the node driver) carries this fault out.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Fault::Partition { .. }
                | Fault::Loss { .. }
                | Fault::Duplicate { .. }
                | Fault::Delay { .. }
                | Fault::Isolate
                | Fault::Lag { .. }
        )
    }
}

impl FaultEntry {
    /// Whether the window is open at `now_ms`.
    pub fn active_at(&self, now_ms: u64) -> bool {
        self.at_ms <= now_ms && now_ms < self.at_ms.saturating_add(self.duration_ms)
    }
}

impl fmt::Display for FaultEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6} ms  {:<9} {:<12} for {:>4} ms",
            self.at_ms,
            self.fault.kind(),
            self.target,
            self.duration_ms
        )?;
        match &self.fault {
            Fault::Crash {
                torn,
                garble,
                corrupt,
            } => {
                write!(f, "  torn={torn} garble={garble}")?;
                match corrupt {
                    Some(c) => write!(f, " corrupt={c}"),
                    None => Ok(()),
                }
            }
            Fault::Pause | Fault::Isolate => Ok(()),
            Fault::Lag { delay_ms } => write!(f, "  delay={delay_ms} ms"),
            Fault::Rot { log, damage } => write!(f, "  log={log} {damage}"),
            Fault::Partition { peer, two_way } => {
                write!(f, "  {} {peer}", if *two_way { "<->" } else { "->" })
            }
            Fault::Loss { rate } | Fault::Duplicate { rate } => write!(f, "  rate={rate:.3}"),
            Fault::Delay { spread_ms } => write!(f, "  spread={spread_ms} ms"),
            Fault::IoErrors { rate, ops } => {
                let ops: Vec<&str> = ops.iter().map(|op| op.name()).collect();
                write!(f, "  rate={rate:.3} ops={}", ops.join(","))
            }
        }
    }
}

/// Every fault of a run, sorted by start time.
pub type FaultSchedule = Vec<FaultEntry>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_same_seed_draws_the_same_schedule_and_another_seed_another() {
        let standard = Scenario::resolve("standard").unwrap();
        let a = generate(&standard, &mut ChaCha8Rng::seed_from_u64(5));
        let b = generate(&standard, &mut ChaCha8Rng::seed_from_u64(5));
        let c = generate(&standard, &mut ChaCha8Rng::seed_from_u64(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(a.iter().all(|e| e.at_ms < standard.workload.duration_ms));
    }

    #[test]
    fn standard_crashes_every_kind_of_node() {
        let standard = Scenario::resolve("standard").unwrap();
        let schedule = generate(&standard, &mut ChaCha8Rng::seed_from_u64(1));
        let crashed = |kind: fn(NodeName) -> bool| {
            schedule.iter().any(|e| {
                matches!(e.fault, Fault::Crash { .. }) && e.target.node().is_some_and(kind)
            })
        };
        assert!(crashed(|n| n == NodeName::Broker), "{schedule:#?}");
        assert!(
            crashed(|n| matches!(n, NodeName::Producer(_))),
            "{schedule:#?}"
        );
        assert!(crashed(|n| n == NodeName::Consumer), "{schedule:#?}");
        assert!(crashed(|n| n == NodeName::Store), "{schedule:#?}");
    }

    #[test]
    fn a_replicated_scenario_draws_the_one_broker_faults_unchanged_and_the_rest_apart() {
        let standard = Scenario::resolve("standard").unwrap();
        let mut replicated = Scenario::resolve("standard-replicated").unwrap();
        // An outage's crashes are plain crashes of every replica, drawn last: left out here so
        // that what remains lines up with the one-broker schedule.
        replicated.faults.outage = None;
        for seed in 0..20 {
            let plan = crate::world::RunPlan::new(replicated.clone(), seed, Default::default());
            let single = crate::world::RunPlan::new(standard.clone(), seed, Default::default());
            // Every one-broker fault is there, at its time and for its length, a broker's
            // on one replica; nothing targets the single broker.
            let kept: Vec<&FaultEntry> = plan
                .schedule
                .iter()
                .filter(|e| !matches!(e.fault, Fault::Isolate | Fault::Lag { .. }))
                .filter(|e| e.target != Target::Node(NodeName::Controller))
                .collect();
            assert_eq!(kept.len(), single.schedule.len(), "seed {seed}");
            for (r, s) in kept.iter().zip(&single.schedule) {
                assert_eq!((r.at_ms, r.duration_ms), (s.at_ms, s.duration_ms));
                if s.target == Target::Node(NodeName::Broker) {
                    assert!(matches!(r.target, Target::Node(NodeName::Replica(0..=2))));
                } else {
                    assert_eq!(r.target, s.target);
                }
            }
            for e in &plan.schedule {
                assert_ne!(e.target, Target::Node(NodeName::Broker), "seed {seed}");
                if matches!(e.fault, Fault::Isolate | Fault::Lag { .. }) {
                    assert!(matches!(e.target, Target::Node(NodeName::Replica(0..=2))));
                }
            }
            assert!(plan.schedule.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }

    #[test]
    fn failover_crashes_replicas_again_and_again_and_isolates_and_lags_one() {
        let failover = Scenario::resolve("failover").unwrap();
        for seed in 0..20 {
            let plan = crate::world::RunPlan::new(failover.clone(), seed, Default::default());
            let count = |kind: &str, replica: bool| {
                plan.schedule
                    .iter()
                    .filter(|e| e.fault.kind() == kind)
                    .filter(|e| !replica || matches!(e.target, Target::Node(NodeName::Replica(_))))
                    .count()
            };
            assert!(
                count("crash", true) >= 2,
                "seed {seed}: {:#?}",
                plan.schedule
            );
            assert!(count("isolate", true) >= 1, "seed {seed}");
            assert!(count("lag", true) >= 1, "seed {seed}");
        }
    }

    #[test]
    fn swarm_seeds_differ_in_which_fault_kinds_are_on() {
        let swarm = Scenario::resolve("swarm").unwrap();
        let kinds = |seed| -> std::collections::BTreeSet<&'static str> {
            generate(&swarm, &mut ChaCha8Rng::seed_from_u64(seed))
                .iter()
                .map(|e| e.fault.kind())
                .collect()
        };
        let sets: std::collections::BTreeSet<_> = (0..20).map(kinds).collect();
        assert!(
            sets.len() >= 5,
            "20 swarm seeds gave only {} kind sets: {sets:?}",
            sets.len()
        );
        assert!(
            sets.iter().all(|s| s.len() < 6),
            "no seed has every kind on: {sets:?}"
        );
    }

    #[test]
    fn entries_serialize_with_kind_target_and_parameters() {
        let entry = FaultEntry {
            at_ms: 10,
            target: Target::Node(NodeName::Broker),
            duration_ms: 50,
            fault: Fault::Crash {
                torn: true,
                garble: false,
                corrupt: None,
            },
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":10,"target":"broker","duration_ms":50,"kind":"crash","torn":true,"garble":false}"#
        );
        assert_eq!(serde_json::from_str::<FaultEntry>(&json).unwrap(), entry);
        assert!(entry.active_at(10) && entry.active_at(59) && !entry.active_at(60));
    }

    #[test]
    fn a_corrupted_crash_carries_its_damage_and_shrinks_to_smaller_damage() {
        let corrupt = Corruption {
            at_permille: 420,
            damage: Damage::Garbage { len: 6, seed: 9 },
        };
        let entry = FaultEntry {
            at_ms: 10,
            target: Target::Node(NodeName::Store),
            duration_ms: 50,
            fault: Fault::Crash {
                torn: true,
                garble: false,
                corrupt: Some(corrupt),
            },
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":10,"target":"store","duration_ms":50,"kind":"crash","torn":true,"garble":false,"corrupt":{"at_permille":420,"damage":"garbage","len":6,"seed":9}}"#
        );
        assert_eq!(serde_json::from_str::<FaultEntry>(&json).unwrap(), entry);
        assert!(entry
            .to_string()
            .ends_with("corrupt=garbage 6 B (seed 9) at 42.0%"));
        let lens: Vec<u32> = std::iter::successors(Some(corrupt), Corruption::smaller)
            .map(|c| match c.damage {
                Damage::Garbage { len, .. } => len,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(lens, [6, 3, 1]);
        let flips = Corruption {
            at_permille: 999,
            damage: Damage::FlipBits { mask: 0b1011 },
        };
        let masks: Vec<_> = std::iter::successors(Some(flips), Corruption::smaller)
            .map(|c| c.damage)
            .collect();
        assert_eq!(masks.last(), Some(&Damage::FlipBits { mask: 0b1000 }));
        assert_eq!(flips.for_file(1000).offset, 999);
        assert_eq!(flips.for_file(10).offset, 9);
    }

    #[test]
    fn isolate_and_lag_serialize_as_network_faults_and_print_their_delay() {
        let isolate = FaultEntry {
            at_ms: 5,
            target: Target::Node(NodeName::Replica(1)),
            duration_ms: 200,
            fault: Fault::Isolate,
        };
        let json = serde_json::to_string(&isolate).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":5,"target":"broker-1","duration_ms":200,"kind":"isolate"}"#
        );
        assert_eq!(serde_json::from_str::<FaultEntry>(&json).unwrap(), isolate);
        let lag = FaultEntry {
            fault: Fault::Lag { delay_ms: 30 },
            ..isolate.clone()
        };
        let json = serde_json::to_string(&lag).unwrap();
        assert!(json.ends_with(r#""kind":"lag","delay_ms":30}"#), "{json}");
        assert_eq!(serde_json::from_str::<FaultEntry>(&json).unwrap(), lag);
        assert!(isolate.fault.is_network() && lag.fault.is_network());
        assert!(lag.to_string().ends_with("delay=30 ms"), "{lag}");
    }

    #[test]
    fn an_io_error_window_serializes_with_its_rate_and_operations() {
        let entry = FaultEntry {
            at_ms: 120,
            target: Target::Node(NodeName::Store),
            duration_ms: 400,
            fault: Fault::IoErrors {
                rate: 0.25,
                ops: vec![IoOp::Read, IoOp::Sync],
            },
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":120,"target":"store","duration_ms":400,"kind":"io-errors","rate":0.25,"ops":["read","sync"]}"#
        );
        assert_eq!(serde_json::from_str::<FaultEntry>(&json).unwrap(), entry);
        assert!(!entry.fault.is_network());
        assert!(
            entry.to_string().ends_with("rate=0.250 ops=read,sync"),
            "{entry}"
        );
    }
}
