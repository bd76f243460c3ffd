//! Seed sweeps: many runs, spread over worker threads, summarised into an order-independent
//! aggregate hash; and the determinism check that runs every seed twice.

use crate::checker::{Anomaly, AnomalyKind};
use crate::history::{hash_lines, Entry};
use crate::run::{run, RunOutcome, RunPlan, Stats, Verdict};
use crate::scenario::Scenario;
use broker_under_test::{Bugs, Probe};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub scenarios: Vec<Scenario>,
    pub seeds: Range<u64>,
    /// `(k, n)`, 1-based: take the seeds whose index in the range is congruent to k-1 mod n.
    pub shard: Option<(u64, u64)>,
    pub bugs: Bugs,
    pub jobs: usize,
    pub keep_going: bool,
    pub check_determinism: bool,
    /// Only for the determinism check's self-test.
    pub plant_nondeterminism: bool,
}

/// One seed's result, as much as a sweep keeps of it.
#[derive(Clone, Debug)]
pub struct SeedResult {
    pub scenario: String,
    pub seed: u64,
    pub trace_hash: String,
    pub wall_us: u64,
    pub stats: Stats,
    pub probes: BTreeMap<Probe, u64>,
    /// The full outcome, for failures only.
    pub failure: Option<RunOutcome>,
}

#[derive(Clone, Debug)]
pub struct SweepReport {
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    /// Failures in (scenario, seed) order.
    pub failures: Vec<RunOutcome>,
    pub stats: Stats,
    /// Probe hits summed over the seeds.
    pub probes: BTreeMap<Probe, u64>,
    pub aggregate_hash: String,
    pub wall_ms: u64,
    /// The slowest seeds: (wall microseconds, scenario, seed).
    pub slowest: Vec<(u64, String, u64)>,
}

impl Sweep {
    /// The (scenario, seed) pairs of the sweep, in order.
    /// How many seeds of the range the shard takes.
    fn seeds_per_scenario(&self) -> u64 {
        let len = self.seeds.end.saturating_sub(self.seeds.start);
        match self.shard {
            None => len,
            // Indices k-1, k-1+n, k-1+2n, ... below len.
            Some((k, n)) if len > k - 1 => (len - (k - 1)).div_ceil(n),
            Some(_) => 0,
        }
    }

    /// How many (scenario, seed) runs the sweep makes.
    pub fn len(&self) -> u64 {
        self.scenarios.len() as u64 * self.seeds_per_scenario()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th (scenario index, seed) of the sweep, scenario by scenario, seeds in order.
    /// Computed, not listed: a range of a hundred billion seeds costs no memory.
    pub fn item(&self, i: u64) -> (usize, u64) {
        let per = self.seeds_per_scenario();
        debug_assert!(per > 0 && i < self.len());
        let (scenario, j) = ((i / per) as usize, i % per);
        let index = match self.shard {
            None => j,
            Some((k, n)) => (k - 1) + j * n,
        };
        (scenario, self.seeds.start + index)
    }
}

/// The order-independent aggregate of a sweep: the XOR of every (scenario, seed, trace hash)
/// line's hash. XOR does not care about order, jobs or sharding, and shards' aggregates merge
/// by XOR into the whole range's.
pub fn aggregate(results: impl IntoIterator<Item = (String, u64, String)>) -> String {
    let mut acc = 0u128;
    for (scenario, seed, trace_hash) in results {
        let line = format!("{scenario} {seed} {trace_hash}");
        acc ^= u128::from_str_radix(&hash_lines([line.as_str()]), 16).expect("hex hash");
    }
    format!("{acc:032x}")
}

/// Merges aggregate hashes of disjoint shards.
pub fn merge_aggregates<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    let mut acc = 0u128;
    for h in hashes {
        acc ^=
            u128::from_str_radix(h, 16).map_err(|_| format!("'{h}' is not an aggregate hash"))?;
    }
    Ok(format!("{acc:032x}"))
}

/// Runs the sweep on `jobs` worker threads. Unless `keep_going`, workers stop taking items past
/// the lowest failing one seen, and the report covers exactly the items up to and including
/// that failure: the seeds other workers ran past it are dropped, so counts and the aggregate
/// hash do not depend on the number of jobs. `progress(done, total)` is called after every seed.
pub fn sweep(s: &Sweep, progress: &(dyn Fn(u64, u64) + Sync)) -> SweepReport {
    let started = Instant::now();
    let total = s.len();
    let next = AtomicU64::new(0);
    let lowest_failure = AtomicU64::new(u64::MAX);
    let done = AtomicU64::new(0);
    let results: Mutex<BTreeMap<u64, SeedResult>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..s.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || (!s.keep_going && i > lowest_failure.load(Ordering::Relaxed)) {
                    return;
                }
                let (scenario, seed) = s.item(i);
                let result = run_seed(s, &s.scenarios[scenario], seed);
                if result.failure.is_some() {
                    lowest_failure.fetch_min(i, Ordering::Relaxed);
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, result);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    if !s.keep_going {
        let cutoff = lowest_failure.load(Ordering::Relaxed);
        results.retain(|i, _| *i <= cutoff);
    }
    let mut report = SweepReport {
        seeds_run: results.len() as u64,
        passed: 0,
        failed: 0,
        failures: Vec::new(),
        stats: Stats::default(),
        probes: BTreeMap::new(),
        aggregate_hash: aggregate(
            results
                .values()
                .map(|r| (r.scenario.clone(), r.seed, r.trace_hash.clone())),
        ),
        wall_ms: started.elapsed().as_millis() as u64,
        slowest: Vec::new(),
    };
    for r in results.values() {
        report.stats.add(&r.stats);
        for (probe, hits) in &r.probes {
            *report.probes.entry(*probe).or_default() += hits;
        }
        match &r.failure {
            Some(outcome) => {
                report.failed += 1;
                report.failures.push(outcome.clone());
            }
            None => report.passed += 1,
        }
    }
    let mut slowest: Vec<(u64, String, u64)> = results
        .values()
        .map(|r| (r.wall_us, r.scenario.clone(), r.seed))
        .collect();
    slowest.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    slowest.truncate(3);
    report.slowest = slowest;
    report
}

fn run_seed(s: &Sweep, scenario: &Scenario, seed: u64) -> SeedResult {
    let started = Instant::now();
    let mut plan = RunPlan::new(scenario.clone(), seed, s.bugs);
    plan.plant_nondeterminism = s.plant_nondeterminism;
    let mut outcome = run(&plan);
    if s.check_determinism {
        let again = run(&plan);
        if let Some(anomaly) = compare_runs(&outcome, &again) {
            outcome.anomalies.push(anomaly);
            outcome.verdict = Verdict::Fail;
        }
    }
    SeedResult {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: outcome.trace_hash.clone(),
        wall_us: started.elapsed().as_micros() as u64,
        stats: outcome.stats.clone(),
        probes: outcome.probes.clone(),
        failure: (!outcome.passed()).then_some(outcome),
    }
}

/// Compares two runs of the same plan: `None` if their traces agree, else a `nondeterminism`
/// anomaly naming the seed and the first history entry where they part.
pub fn compare_runs(a: &RunOutcome, b: &RunOutcome) -> Option<Anomaly> {
    if a.trace_hash == b.trace_hash {
        return None;
    }
    let index = a
        .history
        .iter()
        .zip(&b.history)
        .position(|(x, y)| x != y)
        .unwrap_or(a.history.len().min(b.history.len()));
    let show = |h: &[Entry]| {
        h.get(index).map_or("(history ended)".to_string(), |e| {
            serde_json::to_string(e).unwrap_or_default()
        })
    };
    let at_us = a
        .history
        .get(index)
        .or(b.history.get(index))
        .map_or(0, |e| e.at_us);
    let detail = format!(
        "seed {} ran twice with trace hashes {} and {}; first difference at history entry {index}: {} vs {}",
        a.seed,
        a.trace_hash,
        b.trace_hash,
        show(&a.history),
        show(&b.history)
    );
    Some(Anomaly::new(
        AnomalyKind::Nondeterminism,
        None,
        at_us,
        detail,
    ))
}

/// Every probe with its hits in a sweep, in catalogue order; never-hit probes have 0.
pub fn probe_table(report: &SweepReport) -> Vec<(Probe, u64)> {
    Probe::ALL
        .into_iter()
        .map(|probe| (probe, report.probes.get(&probe).copied().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_ignore_order_and_shards_merge_into_the_whole() {
        let lines = |seeds: &[u64]| {
            seeds
                .iter()
                .map(|s| ("standard".to_string(), *s, format!("{s:032x}")))
                .collect::<Vec<_>>()
        };
        let whole = aggregate(lines(&[0, 1, 2, 3, 4]));
        assert_eq!(whole, aggregate(lines(&[4, 2, 0, 3, 1])));
        let shards = [
            aggregate(lines(&[0, 3])),
            aggregate(lines(&[1, 4])),
            aggregate(lines(&[2])),
        ];
        assert_eq!(
            merge_aggregates(shards.iter().map(String::as_str)).unwrap(),
            whole
        );
        assert_ne!(whole, aggregate(lines(&[0, 1, 2, 3])));
        assert!(merge_aggregates(["xyz"]).is_err());
    }

    #[test]
    fn shards_partition_the_range() {
        let sweep = |shard| Sweep {
            scenarios: vec![Scenario::resolve("standard").unwrap()],
            seeds: 10..20,
            shard,
            bugs: Bugs::NONE,
            jobs: 1,
            keep_going: true,
            check_determinism: false,
            plant_nondeterminism: false,
        };
        let mut covered: Vec<u64> = (1..=3)
            .flat_map(|k| {
                let s = sweep(Some((k, 3)));
                (0..s.len()).map(move |i| s.item(i)).collect::<Vec<_>>()
            })
            .map(|(_, seed)| seed)
            .collect();
        covered.sort();
        assert_eq!(covered, (10..20).collect::<Vec<_>>());
        let first = sweep(Some((1, 3)));
        assert_eq!(
            (0..first.len())
                .map(|i| first.item(i).1)
                .collect::<Vec<_>>(),
            vec![10, 13, 16, 19]
        );
        let last = sweep(Some((3, 3)));
        assert_eq!(
            (0..last.len()).map(|i| last.item(i).1).collect::<Vec<_>>(),
            vec![12, 15, 18]
        );
        // A huge range is counted, never listed.
        let huge = Sweep {
            seeds: 0..100_000_000_000,
            ..sweep(Some((2, 7)))
        };
        assert_eq!(huge.len(), 14_285_714_286);
        assert_eq!(huge.item(huge.len() - 1).1, 99_999_999_996);
    }
}
