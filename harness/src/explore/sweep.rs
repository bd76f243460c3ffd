//! Seed sweeps: many runs spread over worker threads, summarised into counts, stats, probe
//! hits and an order-independent aggregate hash.

use super::aggregate::aggregate;
use super::determinism::compare_runs;
use crate::history::TraceHash;
use crate::scenario::Scenario;
use crate::sim::run;
use crate::world::outcome::{RunOutcome, Stats, Verdict};
use crate::world::plan::RunPlan;
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
    pub trace_hash: TraceHash,
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
                .map(|r| (r.scenario.clone(), r.seed, r.trace_hash)),
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
        trace_hash: outcome.trace_hash,
        wall_us: started.elapsed().as_micros() as u64,
        stats: outcome.stats.clone(),
        probes: outcome.probes.clone(),
        failure: (!outcome.passed()).then_some(outcome),
    }
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
