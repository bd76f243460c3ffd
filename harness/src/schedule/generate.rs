//! Drawing a run's fault schedule from the scenario and the run's schedule generator.

use super::swarm::swarm;
use super::{Corruption, Damage, Fault, FaultEntry, FaultSchedule, Target};
use crate::scenario::{
    CorruptionSpec, CrashSpec, FaultSpec, IoErrorSpec, PartitionSpec, Range, RotSpec, Scenario,
    WindowSpec,
};
use broker_under_test::NodeName;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

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
    let producers: Vec<NodeName> = (0..w.producers).map(NodeName::Producer).collect();
    let mut nodes = vec![NodeName::Broker, NodeName::Store, NodeName::Consumer];
    nodes.extend(producers.iter().copied());
    let mut draw = Draw {
        rng,
        duration_ms: w.duration_ms,
        nodes,
        schedule: Vec::new(),
    };
    let crash_kinds: [(&Option<CrashSpec>, Vec<NodeName>); 4] = [
        (&f.broker_crash, vec![NodeName::Broker]),
        (&f.producer_crash, producers),
        (&f.consumer_crash, vec![NodeName::Consumer]),
        (&f.store_crash, vec![NodeName::Store]),
    ];
    for (spec, targets) in crash_kinds {
        if let Some(spec) = spec {
            draw.crashes(spec, &targets, f);
        }
    }
    if let Some(spec) = &f.pause {
        draw.pauses(spec);
    }
    if let Some(spec) = &f.partition {
        draw.partitions(spec);
    }
    if let Some(spec) = &f.loss {
        draw.windows(&spec.count, &spec.duration_ms, &|rng| Fault::Loss {
            rate: draw_f64(rng, &spec.rate),
        });
    }
    if let Some(spec) = &f.duplicate {
        draw.windows(&spec.count, &spec.duration_ms, &|rng| Fault::Duplicate {
            rate: draw_f64(rng, &spec.rate),
        });
    }
    if let Some(spec) = &f.delay {
        draw.windows(&spec.count, &spec.duration_ms, &|rng| Fault::Delay {
            spread_ms: draw_u64(rng, &spec.spread_ms),
        });
    }
    // Drawn last, and only when configured, so every scenario without it draws as before.
    if let Some(spec) = &f.io_errors {
        draw.io_errors(spec);
    }
    let mut schedule = draw.schedule;
    // Stable: entries starting at the same time keep their draw order.
    schedule.sort_by_key(|e| e.at_ms);
    schedule
}

/// The schedule being drawn, and what every entry draws from.
struct Draw<'a> {
    rng: &'a mut ChaCha8Rng,
    /// Faults start within the scenario's duration.
    duration_ms: u64,
    /// Every node, in the fixed order broker, store, consumer, producers.
    nodes: Vec<NodeName>,
    schedule: FaultSchedule,
}

impl Draw<'_> {
    fn at(&mut self) -> u64 {
        self.rng.random_range(0..self.duration_ms)
    }

    fn any_node(&mut self) -> NodeName {
        self.nodes[self.rng.random_range(0..self.nodes.len())]
    }

    /// Each crash draws, in this order: target, torn, garble, the corruption (only if the
    /// scenario has `faults.corruption` and the crash is torn), start, downtime.
    fn crashes(&mut self, spec: &CrashSpec, targets: &[NodeName], f: &FaultSpec) {
        for _ in 0..draw_u32(self.rng, &spec.count) {
            let target = targets[self.rng.random_range(0..targets.len())].into();
            let torn = self.rng.random_bool(f.torn_write_probability);
            let garble = torn && self.rng.random_bool(f.garble_probability);
            let corrupt = match &f.corruption {
                Some(c) if torn => self.corruption(c),
                _ => None,
            };
            let at_ms = self.at();
            let duration_ms = draw_u64(self.rng, &spec.down_ms);
            let fault = Fault::Crash {
                torn,
                garble,
                corrupt,
            };
            self.push(at_ms, target, duration_ms, fault);
        }
    }

    /// A corruption draws: whether, position, kind, then the kind's mask or length (and
    /// a garbage block's seed).
    fn corruption(&mut self, spec: &CorruptionSpec) -> Option<Corruption> {
        if !self.rng.random_bool(spec.probability) {
            return None;
        }
        let at_permille = self.rng.random_range(0..1000);
        let damage = match self.rng.random_range(0..3) {
            0 => Damage::FlipBits {
                mask: self.rng.random_range(1..=u8::MAX),
            },
            1 => Damage::Zero {
                len: self.rng.random_range(1..=spec.max_bytes),
            },
            _ => Damage::Garbage {
                len: self.rng.random_range(1..=spec.max_bytes),
                seed: self.rng.random(),
            },
        };
        Some(Corruption {
            at_permille,
            damage,
        })
    }

    /// Each pause draws: target, start, length.
    fn pauses(&mut self, spec: &WindowSpec) {
        self.pauses_of(spec, Fault::Pause);
    }

    /// Windows of `fault` on one node each, drawn as pauses are: target, start, length.
    fn pauses_of(&mut self, spec: &WindowSpec, fault: Fault) {
        for _ in 0..draw_u32(self.rng, &spec.count) {
            let target = self.any_node().into();
            let at_ms = self.at();
            let duration_ms = draw_u64(self.rng, &spec.duration_ms);
            self.push(at_ms, target, duration_ms, fault.clone());
        }
    }

    /// Each partition draws: one side, the other (never the same node), two-way, start,
    /// length.
    fn partitions(&mut self, spec: &PartitionSpec) {
        let n = self.nodes.len();
        for _ in 0..draw_u32(self.rng, &spec.count) {
            let a = self.rng.random_range(0..n);
            let b = (a + self.rng.random_range(1..n)) % n;
            let two_way = self.rng.random_bool(spec.two_way_probability);
            let at_ms = self.at();
            let duration_ms = draw_u64(self.rng, &spec.duration_ms);
            let (target, peer) = (self.nodes[a].into(), self.nodes[b]);
            self.push(
                at_ms,
                target,
                duration_ms,
                Fault::Partition { peer, two_way },
            );
        }
    }

    /// Each network window draws, in this order: target, parameter, start, length. A window
    /// hits every node half the time, one node otherwise.
    fn windows(
        &mut self,
        count: &Range<u32>,
        length: &Range<u64>,
        param: &dyn Fn(&mut ChaCha8Rng) -> Fault,
    ) {
        for _ in 0..draw_u32(self.rng, count) {
            let target = if self.rng.random_bool(0.5) {
                Target::All
            } else {
                self.any_node().into()
            };
            let fault = param(self.rng);
            let at_ms = self.at();
            let duration_ms = draw_u64(self.rng, length);
            self.push(at_ms, target, duration_ms, fault);
        }
    }

    /// Each I/O error window draws, in this order: target (one node), rate, start, length.
    fn io_errors(&mut self, spec: &IoErrorSpec) {
        for _ in 0..draw_u32(self.rng, &spec.count) {
            let target = self.any_node().into();
            let rate = draw_f64(self.rng, &spec.rate);
            let at_ms = self.at();
            let duration_ms = draw_u64(self.rng, &spec.duration_ms);
            let ops = spec.ops.clone();
            self.push(at_ms, target, duration_ms, Fault::IoErrors { rate, ops });
        }
    }

    fn push(&mut self, at_ms: u64, target: Target, duration_ms: u64, fault: Fault) {
        self.schedule.push(FaultEntry {
            at_ms,
            target,
            duration_ms,
            fault,
        });
    }
}

/// A replicated scenario's schedule: `schedule` (drawn by [`generate`] exactly as for one
/// broker) with each fault on the broker moved to one replica, then the replication faults.
/// Everything here draws from `rng`, the replication stream, never from the schedule stream,
/// so a scenario's one-broker faults are the same draws whatever its replication keys say.
///
/// Draw order: for each entry in schedule order, a replica for a broker target, then one for a
/// broker partition peer; then controller
/// crashes (torn, garble, start, downtime), isolations (replica, start, length), lag windows
/// (replica, delay, start, length), outages (start, downtime, then torn and garble per
/// replica), rot (first partition, then per rot: replica, start, damage).
pub fn replicate(
    scenario: &Scenario,
    mut schedule: FaultSchedule,
    rng: &mut ChaCha8Rng,
) -> FaultSchedule {
    let brokers = scenario.workload.brokers;
    for entry in &mut schedule {
        if entry.target == Target::Node(NodeName::Broker) {
            entry.target = NodeName::Replica(rng.random_range(0..brokers)).into();
        }
        if let Fault::Partition { peer, .. } = &mut entry.fault {
            if *peer == NodeName::Broker {
                *peer = NodeName::Replica(rng.random_range(0..brokers));
            }
        }
    }
    let f = &scenario.faults;
    let replicas: Vec<NodeName> = (0..brokers).map(NodeName::Replica).collect();
    let mut draw = Draw {
        rng,
        duration_ms: scenario.workload.duration_ms,
        nodes: replicas,
        schedule,
    };
    if let Some(spec) = &f.controller_crash {
        draw.crashes(spec, &[NodeName::Controller], &no_corruption(f));
    }
    if let Some(spec) = &f.isolate {
        draw.pauses_of(spec, Fault::Isolate);
    }
    if let Some(spec) = &f.lag {
        for _ in 0..draw_u32(draw.rng, &spec.count) {
            let target = draw.any_node().into();
            let delay_ms = draw_u64(draw.rng, &spec.delay_ms);
            let at_ms = draw.at();
            let duration_ms = draw_u64(draw.rng, &spec.duration_ms);
            draw.push(at_ms, target, duration_ms, Fault::Lag { delay_ms });
        }
    }
    if let Some(spec) = &f.outage {
        outages(&mut draw, spec, f, brokers);
    }
    if let Some(spec) = &f.rot {
        rots(&mut draw, spec, scenario.workload.partitions);
    }
    let mut schedule = draw.schedule;
    schedule.sort_by_key(|e| e.at_ms);
    schedule
}

/// Outages: each a crash of every replica at one moment, for one downtime.
fn outages(draw: &mut Draw, spec: &CrashSpec, f: &FaultSpec, brokers: u32) {
    // Every replica loses power at once (a rack or a data centre): unsynced writes are
    // gone everywhere, which replication alone cannot cover.
    for _ in 0..draw_u32(draw.rng, &spec.count) {
        let at_ms = draw.at();
        let duration_ms = draw_u64(draw.rng, &spec.down_ms);
        for b in 0..brokers {
            let torn = draw.rng.random_bool(f.torn_write_probability);
            let garble = torn && draw.rng.random_bool(f.garble_probability);
            let fault = Fault::Crash {
                torn,
                garble,
                corrupt: None,
            };
            draw.push(at_ms, NodeName::Replica(b).into(), duration_ms, fault);
        }
    }
}

/// Rot: damage to synced logs, one replica's copy of one partition each.
fn rots(draw: &mut Draw, spec: &RotSpec, partitions: u32) {
    let every = CorruptionSpec {
        probability: 1.0,
        max_bytes: spec.max_bytes,
    };
    // One damaged copy per partition at most: with `min_insync` 2 every committed record
    // has another whole copy to repair from; two damaged copies of one record are a loss
    // no replication factor of 2 survives (validation keeps count <= partitions).
    let count = draw_u32(draw.rng, &spec.count);
    let first = draw.rng.random_range(0..partitions.max(1));
    for i in 0..count {
        let target = draw.any_node().into();
        let at_ms = draw.at();
        let log = (first + i) % partitions.max(1);
        if let Some(damage) = draw.corruption(&every) {
            draw.push(at_ms, target, 0, Fault::Rot { log, damage });
        }
    }
}

/// The crash parameters of `f` without corruption: a controller's state file is replaced
/// atomically, and damage in it is for a later round.
fn no_corruption(f: &FaultSpec) -> FaultSpec {
    FaultSpec {
        torn_write_probability: f.torn_write_probability,
        garble_probability: f.garble_probability,
        ..FaultSpec::default()
    }
}
