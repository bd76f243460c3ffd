//! Drawing a run's fault schedule from the scenario and the run's schedule generator.

use super::swarm::swarm;
use super::{Fault, FaultEntry, FaultSchedule};
use crate::scenario::{Range, Scenario};
use broker_under_test::cluster::{producer_name, BROKER, CONSUMER, STORE};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) fn draw_u32(rng: &mut ChaCha8Rng, r: &Range<u32>) -> u32 {
    rng.random_range(r[0]..=r[1])
}

pub(super) fn draw_u64(rng: &mut ChaCha8Rng, r: &Range<u64>) -> u64 {
    rng.random_range(r[0]..=r[1])
}

pub(super) fn draw_f64(rng: &mut ChaCha8Rng, r: &Range<f64>) -> f64 {
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
    let producers: Vec<String> = (0..w.producers).map(producer_name).collect();
    let mut nodes = vec![BROKER.to_string(), STORE.to_string(), CONSUMER.to_string()];
    nodes.extend(producers.iter().cloned());
    let mut schedule = Vec::new();
    let at = |rng: &mut ChaCha8Rng| rng.random_range(0..w.duration_ms);

    let crash_kinds: [(&Option<_>, Vec<String>); 4] = [
        (&f.broker_crash, vec![BROKER.to_string()]),
        (&f.producer_crash, producers.clone()),
        (&f.consumer_crash, vec![CONSUMER.to_string()]),
        (&f.store_crash, vec![STORE.to_string()]),
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
