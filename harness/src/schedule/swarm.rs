//! Swarm testing (Groce et al., 2012): each seed switches fault kinds on or off and scales
//! how hard the kept ones hit, so that rare combinations get explored.

use crate::scenario::{
    CrashSpec, DelaySpec, FaultSpec, PartitionSpec, Range, RateSpec, WindowSpec,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One seed's swarm: every configured fault kind on with probability 1/2 (at least one on),
/// and each kept kind's counts and rates scaled by its own factor in [0.25, 1].
pub(super) fn swarm(spec: &FaultSpec, rng: &mut ChaCha8Rng) -> FaultSpec {
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
        // Not swarmed: switching it draws nothing, so swarm schedules stay as they were.
        corruption: spec.corruption.clone(),
        // Not swarmed (yet): switching it would need draws that would move every existing
        // swarm seed's schedule. Kept as configured.
        io_errors: spec.io_errors.clone(),
        // Not swarmed either, for the same reason; drawn from their own stream.
        controller_crash: spec.controller_crash.clone(),
        isolate: spec.isolate.clone(),
        lag: spec.lag.clone(),
        rot: spec.rot.clone(),
        outage: spec.outage.clone(),
    }
}
