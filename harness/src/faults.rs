//! The fault schedule: every fault a run injects, as explicit data drawn from the seed.
//!
//! A schedule is generated once per run from the scenario and the run's generator, before the
//! simulation starts, so it can be printed, stored in a failure artifact, replayed as is and
//! shrunk entry by entry. Per-message draws (which message a loss window drops) come from the
//! run's network generator while the entry is active.

use crate::scenario::{
    CrashSpec, DelaySpec, FaultSpec, PartitionSpec, Range, RateSpec, Scenario, WindowSpec,
};
use broker_under_test::NodeName;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One fault: what, to whom, when, for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEntry {
    /// When it starts, in simulated milliseconds from the start of the run.
    pub at_ms: u64,
    /// The node it hits; for network faults `*` means every node's messages.
    pub target: String,
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
    /// garbled, prefix if `torn`), and it restarts after `duration_ms`.
    Crash { torn: bool, garble: bool },
    /// The node's tasks freeze for `duration_ms`, then go on as if nothing happened.
    Pause,
    /// Messages from `target` to `peer` (and back, if `two_way`) are lost.
    Partition { peer: String, two_way: bool },
    /// Each message to or from `target` is lost with probability `rate`.
    Loss { rate: f64 },
    /// Each message to or from `target` is delivered twice with probability `rate`.
    Duplicate { rate: f64 },
    /// Each message to or from `target` waits an extra uniform delay up to `spread_ms`.
    Delay { spread_ms: u64 },
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
            Fault::Crash { torn, garble } => write!(f, "  torn={torn} garble={garble}"),
            Fault::Pause => Ok(()),
            Fault::Partition { peer, two_way } => {
                write!(f, "  {} {peer}", if *two_way { "<->" } else { "->" })
            }
            Fault::Loss { rate } | Fault::Duplicate { rate } => write!(f, "  rate={rate:.3}"),
            Fault::Delay { spread_ms } => write!(f, "  spread={spread_ms} ms"),
        }
    }
}

/// Every fault of a run, sorted by start time.
pub type FaultSchedule = Vec<FaultEntry>;

fn draw_u32(rng: &mut ChaCha8Rng, r: &Range<u32>) -> u32 {
    rng.random_range(r[0]..=r[1])
}

fn draw_u64(rng: &mut ChaCha8Rng, r: &Range<u64>) -> u64 {
    rng.random_range(r[0]..=r[1])
}

fn draw_f64(rng: &mut ChaCha8Rng, r: &Range<f64>) -> f64 {
    if r[0] == r[1] {
        r[0]
    } else {
        rng.random_range(r[0]..=r[1])
    }
}

/// Draws a run's fault schedule. The order of draws is fixed (kind by kind, as listed here), so
/// the same seed gives the same schedule on every machine.
pub fn generate(scenario: &Scenario, rng: &mut ChaCha8Rng) -> FaultSchedule {
    let swarmed;
    let f = if scenario.faults.swarm {
        swarmed = swarm(&scenario.faults, rng);
        &swarmed
    } else {
        &scenario.faults
    };
    let w = &scenario.workload;
    let producers: Vec<String> = (0..w.producers)
        .map(|i| NodeName::Producer(i).to_string())
        .collect();
    let mut nodes = vec![
        NodeName::Broker.to_string(),
        NodeName::Store.to_string(),
        NodeName::Consumer.to_string(),
    ];
    nodes.extend(producers.iter().cloned());
    let mut schedule = Vec::new();
    let at = |rng: &mut ChaCha8Rng| rng.random_range(0..w.duration_ms);

    let crash_kinds: [(&Option<_>, Vec<String>); 4] = [
        (&f.broker_crash, vec![NodeName::Broker.to_string()]),
        (&f.producer_crash, producers.clone()),
        (&f.consumer_crash, vec![NodeName::Consumer.to_string()]),
        (&f.store_crash, vec![NodeName::Store.to_string()]),
    ];
    for (spec, targets) in crash_kinds {
        let Some(spec) = spec else { continue };
        for _ in 0..draw_u32(rng, &spec.count) {
            let target = targets[rng.random_range(0..targets.len())].clone();
            let torn = rng.random_bool(f.torn_write_probability);
            let garble = torn && rng.random_bool(f.garble_probability);
            schedule.push(FaultEntry {
                at_ms: at(rng),
                target,
                duration_ms: draw_u64(rng, &spec.down_ms),
                fault: Fault::Crash { torn, garble },
            });
        }
    }
    if let Some(spec) = &f.pause {
        for _ in 0..draw_u32(rng, &spec.count) {
            let target = nodes[rng.random_range(0..nodes.len())].clone();
            schedule.push(FaultEntry {
                at_ms: at(rng),
                target,
                duration_ms: draw_u64(rng, &spec.duration_ms),
                fault: Fault::Pause,
            });
        }
    }
    if let Some(spec) = &f.partition {
        for _ in 0..draw_u32(rng, &spec.count) {
            let a = rng.random_range(0..nodes.len());
            let b = (a + rng.random_range(1..nodes.len())) % nodes.len();
            let two_way = rng.random_bool(spec.two_way_probability);
            schedule.push(FaultEntry {
                at_ms: at(rng),
                target: nodes[a].clone(),
                duration_ms: draw_u64(rng, &spec.duration_ms),
                fault: Fault::Partition {
                    peer: nodes[b].clone(),
                    two_way,
                },
            });
        }
    }
    // A network window hits every node half the time, one node otherwise.
    let window_target = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            "*".to_string()
        } else {
            nodes[rng.random_range(0..nodes.len())].clone()
        }
    };
    // Each window draws, in this order: target, parameter, start, length.
    let mut windows = |count: &Range<u32>,
                       length: &Range<u64>,
                       rng: &mut ChaCha8Rng,
                       param: &dyn Fn(&mut ChaCha8Rng) -> Fault| {
        for _ in 0..draw_u32(rng, count) {
            let target = window_target(rng);
            let fault = param(rng);
            schedule.push(FaultEntry {
                at_ms: at(rng),
                target,
                duration_ms: draw_u64(rng, length),
                fault,
            });
        }
    };
    if let Some(spec) = &f.loss {
        windows(&spec.count, &spec.duration_ms, rng, &|rng| Fault::Loss {
            rate: draw_f64(rng, &spec.rate),
        });
    }
    if let Some(spec) = &f.duplicate {
        windows(&spec.count, &spec.duration_ms, rng, &|rng| {
            Fault::Duplicate {
                rate: draw_f64(rng, &spec.rate),
            }
        });
    }
    if let Some(spec) = &f.delay {
        windows(&spec.count, &spec.duration_ms, rng, &|rng| Fault::Delay {
            spread_ms: draw_u64(rng, &spec.spread_ms),
        });
    }
    // Stable: entries starting at the same time keep their draw order.
    schedule.sort_by_key(|e| e.at_ms);
    schedule
}

/// One seed's swarm: every configured fault kind on with probability 1/2 (at least one on),
/// and each kept kind's counts and rates scaled by its own factor in [0.25, 1].
fn swarm(spec: &FaultSpec, rng: &mut ChaCha8Rng) -> FaultSpec {
    const KINDS: usize = 9;
    let mut on: [bool; KINDS] = std::array::from_fn(|_| rng.random_bool(0.5));
    if !on.contains(&true) {
        on[rng.random_range(0..KINDS)] = true;
    }
    let mut factor = || rng.random_range(0.25..=1.0f64);
    let count = |c: &Range<u32>, k: f64| [c[0], c[0].max((f64::from(c[1]) * k).round() as u32)];
    let keep = |i: usize| on[i];
    let crash = |c: &Option<CrashSpec>, i: usize, k: f64| {
        c.as_ref().filter(|_| keep(i)).map(|c| CrashSpec {
            count: count(&c.count, k),
            down_ms: c.down_ms,
        })
    };
    let k: [f64; KINDS] = std::array::from_fn(|_| factor());
    FaultSpec {
        swarm: false,
        broker_crash: crash(&spec.broker_crash, 0, k[0]),
        producer_crash: crash(&spec.producer_crash, 1, k[1]),
        consumer_crash: crash(&spec.consumer_crash, 2, k[2]),
        store_crash: crash(&spec.store_crash, 3, k[3]),
        pause: spec.pause.as_ref().filter(|_| keep(4)).map(|p| WindowSpec {
            count: count(&p.count, k[4]),
            duration_ms: p.duration_ms,
        }),
        partition: spec
            .partition
            .as_ref()
            .filter(|_| keep(5))
            .map(|p| PartitionSpec {
                count: count(&p.count, k[5]),
                ..p.clone()
            }),
        loss: spec.loss.as_ref().filter(|_| keep(6)).map(|r| RateSpec {
            count: count(&r.count, k[6]),
            rate: [r.rate[0] * k[6], r.rate[1] * k[6]],
            duration_ms: r.duration_ms,
        }),
        duplicate: spec
            .duplicate
            .as_ref()
            .filter(|_| keep(7))
            .map(|r| RateSpec {
                count: count(&r.count, k[7]),
                rate: [r.rate[0] * k[7], r.rate[1] * k[7]],
                duration_ms: r.duration_ms,
            }),
        delay: spec.delay.as_ref().filter(|_| keep(8)).map(|d| DelaySpec {
            count: count(&d.count, k[8]),
            spread_ms: [
                d.spread_ms[0],
                d.spread_ms[0].max((d.spread_ms[1] as f64 * k[8]) as u64),
            ],
            duration_ms: d.duration_ms,
        }),
        torn_write_probability: spec.torn_write_probability,
        garble_probability: spec.garble_probability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
        let crashed = |prefix: &str| {
            schedule
                .iter()
                .any(|e| matches!(e.fault, Fault::Crash { .. }) && e.target.starts_with(prefix))
        };
        for kind in ["broker", "producer-", "consumer", "store"] {
            assert!(crashed(kind), "no {kind} crash in {schedule:#?}");
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
            target: "broker".into(),
            duration_ms: 50,
            fault: Fault::Crash {
                torn: true,
                garble: false,
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
}
