//! Scenario validation: every field checked, with an error that names it. The bounds keep any
//! accepted file within what one run can compute.

use super::{
    FaultSpec, Limits, Range, WorkloadSpec, BROKERS_MAX, COUNT_MAX, PAYMENTS_MAX,
    PAYMENT_BYTES_MAX, SPREAD_MAX_MS, TIME_MAX_MS, WORKLOAD_BYTES_MAX,
};
use std::fmt;

pub(super) fn workload(name: &str, w: &WorkloadSpec) -> Result<(), String> {
    check(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "name must be letters, digits, '-' and '_' (it names artifact files)",
    )?;
    check(
        (1..=200).contains(&w.producers),
        "workload.producers must be 1..=200",
    )?;
    check(
        (1..=PAYMENTS_MAX).contains(&w.payments_per_producer),
        &format!("workload.payments_per_producer must be 1..={PAYMENTS_MAX}"),
    )?;
    check(
        (1..=64).contains(&w.partitions),
        "workload.partitions must be 1..=64",
    )?;
    check(
        (1..=PAYMENTS_MAX).contains(&w.customers),
        &format!("workload.customers must be 1..={PAYMENTS_MAX}"),
    )?;
    check(
        (1..=TIME_MAX_MS).contains(&w.payment_interval_ms),
        &format!("workload.payment_interval_ms must be 1..={TIME_MAX_MS}"),
    )?;
    check(
        (1..=1000).contains(&w.max_batch_records),
        "workload.max_batch_records must be 1..=1000",
    )?;
    check(
        (1..=TIME_MAX_MS).contains(&w.duration_ms),
        &format!("workload.duration_ms must be 1..={TIME_MAX_MS}"),
    )?;
    check(
        (1..=BROKERS_MAX).contains(&w.brokers),
        &format!(
            "workload.brokers must be 1 (one broker) or 2..={BROKERS_MAX} (replicated), got {}",
            w.brokers
        ),
    )?;
    if let Some(size) = &w.payment_size {
        range(
            &size.bytes,
            PAYMENT_BYTES_MAX,
            "workload.payment_size.bytes",
        )?;
        let total = u64::from(w.producers) * u64::from(w.payments_per_producer) * size.bytes[1];
        check(
            total <= WORKLOAD_BYTES_MAX,
            &format!(
                "workload.payment_size.bytes: producers x payments_per_producer x max may not exceed {WORKLOAD_BYTES_MAX} bytes, got {total}"
            ),
        )?;
    }
    Ok(())
}

pub(super) fn faults(f: &FaultSpec) -> Result<(), String> {
    for (name, spec) in [
        ("broker_crash", &f.broker_crash),
        ("producer_crash", &f.producer_crash),
        ("consumer_crash", &f.consumer_crash),
        ("store_crash", &f.store_crash),
        ("controller_crash", &f.controller_crash),
    ] {
        if let Some(c) = spec {
            range(&c.count, COUNT_MAX, &format!("faults.{name}.count"))?;
            range(&c.down_ms, TIME_MAX_MS, &format!("faults.{name}.down_ms"))?;
        }
    }
    if let Some(p) = &f.pause {
        range(&p.count, COUNT_MAX, "faults.pause.count")?;
        range(&p.duration_ms, TIME_MAX_MS, "faults.pause.duration_ms")?;
    }
    if let Some(p) = &f.partition {
        range(&p.count, COUNT_MAX, "faults.partition.count")?;
        range(&p.duration_ms, TIME_MAX_MS, "faults.partition.duration_ms")?;
        probability(
            p.two_way_probability,
            "faults.partition.two_way_probability",
        )?;
    }
    for (name, spec) in [("loss", &f.loss), ("duplicate", &f.duplicate)] {
        if let Some(r) = spec {
            range(&r.count, COUNT_MAX, &format!("faults.{name}.count"))?;
            range(
                &r.duration_ms,
                TIME_MAX_MS,
                &format!("faults.{name}.duration_ms"),
            )?;
            range(&r.rate, 1.0, &format!("faults.{name}.rate"))?;
            probability(r.rate[0], &format!("faults.{name}.rate"))?;
        }
    }
    if let Some(d) = &f.delay {
        range(&d.count, COUNT_MAX, "faults.delay.count")?;
        range(&d.duration_ms, TIME_MAX_MS, "faults.delay.duration_ms")?;
        range(&d.spread_ms, SPREAD_MAX_MS, "faults.delay.spread_ms")?;
    }
    replication_ranges(f)?;
    probability(f.torn_write_probability, "faults.torn_write_probability")?;
    probability(f.garble_probability, "faults.garble_probability")?;
    if let Some(c) = &f.corruption {
        probability(c.probability, "faults.corruption.probability")?;
        check(
            (1..=CORRUPTION_BYTES_MAX).contains(&c.max_bytes),
            &format!("faults.corruption.max_bytes must be 1..={CORRUPTION_BYTES_MAX}"),
        )?;
        // Damage comes only with a torn crash: without torn writes it would never be drawn.
        check(
            f.torn_write_probability > 0.0,
            "faults.corruption needs faults.torn_write_probability > 0",
        )?;
    }
    if let Some(io) = &f.io_errors {
        range(&io.count, COUNT_MAX, "faults.io_errors.count")?;
        range(&io.duration_ms, TIME_MAX_MS, "faults.io_errors.duration_ms")?;
        range(&io.rate, 1.0, "faults.io_errors.rate")?;
        probability(io.rate[0], "faults.io_errors.rate")?;
        let mut ops = io.ops.clone();
        ops.sort();
        ops.dedup();
        check(
            !io.ops.is_empty() && ops.len() == io.ops.len(),
            "faults.io_errors.ops must name each of read, write, sync at most once, and one at least",
        )?;
    }
    Ok(())
}

/// The replication faults' counts, lengths, delays and sizes.
fn replication_ranges(f: &FaultSpec) -> Result<(), String> {
    if let Some(i) = &f.isolate {
        range(&i.count, COUNT_MAX, "faults.isolate.count")?;
        range(&i.duration_ms, TIME_MAX_MS, "faults.isolate.duration_ms")?;
    }
    if let Some(l) = &f.lag {
        range(&l.count, COUNT_MAX, "faults.lag.count")?;
        range(&l.duration_ms, TIME_MAX_MS, "faults.lag.duration_ms")?;
        range(&l.delay_ms, SPREAD_MAX_MS, "faults.lag.delay_ms")?;
    }
    if let Some(o) = &f.outage {
        range(&o.count, COUNT_MAX, "faults.outage.count")?;
        range(&o.down_ms, TIME_MAX_MS, "faults.outage.down_ms")?;
    }
    if let Some(r) = &f.rot {
        range(&r.count, COUNT_MAX, "faults.rot.count")?;
        check(
            (1..=CORRUPTION_BYTES_MAX).contains(&r.max_bytes),
            &format!("faults.rot.max_bytes must be 1..={CORRUPTION_BYTES_MAX}"),
        )?;
    }
    Ok(())
}

/// The largest damaged block: eight sectors.
const CORRUPTION_BYTES_MAX: u32 = 4096;

/// Replication faults need replicas: in a one-broker scenario they would never happen.
pub(super) fn replication(w: &WorkloadSpec, f: &FaultSpec) -> Result<(), String> {
    if let Some(r) = &f.rot {
        check(
            r.count[1] <= w.partitions,
            "faults.rot.count may not exceed workload.partitions (one damaged copy per partition)",
        )?;
    }
    for (name, set) in [
        ("controller_crash", f.controller_crash.is_some()),
        ("isolate", f.isolate.is_some()),
        ("lag", f.lag.is_some()),
        ("rot", f.rot.is_some()),
        ("outage", f.outage.is_some()),
    ] {
        check(
            !set || w.replicated(),
            &format!("faults.{name} needs workload.brokers >= 2 (a replicated deployment)"),
        )?;
    }
    Ok(())
}

pub(super) fn limits(limits: &Limits) -> Result<(), String> {
    check(
        (1_000..=TIME_MAX_MS).contains(&limits.liveness_ms),
        &format!("limits.liveness_ms must be 1000..={TIME_MAX_MS}"),
    )?;
    check(
        (1_000..=MAX_STEPS_BUDGET).contains(&limits.max_steps),
        &format!("limits.max_steps must be 1000..={MAX_STEPS_BUDGET}"),
    )?;
    Ok(())
}

/// The most steps (recorded events plus network messages) one run may take. A run holds about
/// 0.8 KB per step (measured: 286 MB for 351,000 steps), so a run at this limit holds about
/// 8 GB; the default 2,000,000 about 1.6 GB.
pub const MAX_STEPS_BUDGET: u64 = 10_000_000;

/// The most payments one run makes (producers x payments_per_producer): each is outboxed,
/// produced, fetched and applied, so the history holds several entries per payment.
pub const PAYMENTS_BUDGET: u64 = 1_000_000;
/// The most fault windows and crashes one run may draw, summed over the kinds: a message's
/// fate is decided against the open windows.
pub const FAULTS_BUDGET: u64 = 10_000;

/// The whole run's work, beyond each field's bounds: the payments and faults it may draw stay
/// within a documented budget, and a workload that cannot finish is refused rather than
/// reported as data loss.
pub(super) fn budget(w: &WorkloadSpec, f: &FaultSpec, limits: &Limits) -> Result<(), String> {
    let payments = u64::from(w.producers) * u64::from(w.payments_per_producer);
    check(
        payments <= PAYMENTS_BUDGET,
        &format!(
            "workload.producers x workload.payments_per_producer is {payments} payments; a run \
             makes at most {PAYMENTS_BUDGET}"
        ),
    )?;
    let faults: u64 = fault_counts(f).iter().map(|&n| u64::from(n)).sum();
    check(
        faults <= FAULTS_BUDGET,
        &format!("faults: up to {faults} faults a run; the sum of the count maxima may not exceed {FAULTS_BUDGET}"),
    )?;
    // A producer makes one payment every interval, through the faults and the liveness
    // window; payments still unmade when the window closes could never settle in time.
    let making = u64::from(w.payments_per_producer) * w.payment_interval_ms;
    let deadline = w.duration_ms + limits.liveness_ms;
    check(
        making <= deadline,
        &format!(
            "workload.payments_per_producer x workload.payment_interval_ms is {making} ms, past \
             duration_ms + limits.liveness_ms ({deadline} ms): the payments cannot all be made and \
             settled before the liveness deadline"
        ),
    )?;
    // The one consumer applies the payments one at a time, each a round trip to the store.
    let consuming = payments * CONSUMER_MS_PER_PAYMENT;
    check(
        consuming <= deadline,
        &format!(
            "workload.producers x workload.payments_per_producer is {payments} payments; the \
             consumer applies one per round trip to the store (at least \
             {CONSUMER_MS_PER_PAYMENT} ms), {consuming} ms, past workload.duration_ms + \
             limits.liveness_ms ({deadline} ms): the consumer cannot keep up, and the payments \
             cannot all be applied before the liveness deadline"
        ),
    )
}

/// The least simulated time the consumer spends on one payment. It fetches up to 32 records
/// per partition and then applies them one by one, each an `Apply` request to the store and
/// its reply, each message at least 1 ms of simulated time (madsim's send latency; see
/// `sim::mod`), before the commit and the next fetch; it sleeps its 20 ms poll interval only
/// when every partition was empty. So N payments take at least 2N ms to apply, whatever the
/// faults: a lower bound, so a scenario refused by it certainly cannot finish, and none of the
/// catalogue's (at most 300 payments, 600 ms, against 31 s) comes near it.
pub const CONSUMER_MS_PER_PAYMENT: u64 = 2;

/// The most faults of each kind a run may draw.
fn fault_counts(f: &FaultSpec) -> Vec<u32> {
    let crashes = [
        &f.broker_crash,
        &f.producer_crash,
        &f.consumer_crash,
        &f.store_crash,
        &f.controller_crash,
    ];
    let mut counts: Vec<u32> = crashes
        .iter()
        .flat_map(|c| c.as_ref().map(|c| c.count[1]))
        .collect();
    counts.extend(f.pause.as_ref().map(|p| p.count[1]));
    counts.extend(f.partition.as_ref().map(|p| p.count[1]));
    counts.extend(f.loss.as_ref().map(|p| p.count[1]));
    counts.extend(f.duplicate.as_ref().map(|p| p.count[1]));
    counts.extend(f.delay.as_ref().map(|p| p.count[1]));
    counts.extend(f.io_errors.as_ref().map(|p| p.count[1]));
    counts.extend(f.isolate.as_ref().map(|p| p.count[1]));
    counts.extend(f.lag.as_ref().map(|p| p.count[1]));
    counts.extend(f.rot.as_ref().map(|p| p.count[1]));
    // An outage crashes every broker: five at most.
    counts.extend(f.outage.as_ref().map(|p| p.count[1] * 5));
    counts
}

fn check(ok: bool, message: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message.to_string())
    }
}

fn range<T: PartialOrd + fmt::Debug>(r: &Range<T>, max: T, field: &str) -> Result<(), String> {
    check(
        r[0] <= r[1],
        &format!("{field} is [min, max] with min <= max, got {r:?}"),
    )?;
    check(
        r[1] <= max,
        &format!("{field} may not exceed {max:?}, got {r:?}"),
    )
}

fn probability(p: f64, field: &str) -> Result<(), String> {
    check(
        (0.0..=1.0).contains(&p),
        &format!("{field} must be a probability in [0, 1], got {p}"),
    )
}
