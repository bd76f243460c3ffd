//! Seed sweeps: many runs spread over worker threads, summarised into counts, stats, probe
//! hits and an order-independent aggregate hash.

use super::aggregate::{aggregate_term, format_aggregate};
use super::determinism::compare_runs;
use crate::history::TraceHash;
use crate::scenario::Scenario;
use crate::sim::run;
use crate::system::SystemRef;
use crate::world::outcome::{RunOutcome, Stats, Verdict};
use crate::world::plan::RunPlan;
use broker_under_test::{Bugs, Probe};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The most runs one sweep may make. Every run's index must fit a `u64` with room for each
/// worker's overshoot; a sweep folds its runs as they finish and keeps only a summary per
/// failure. At about 200 runs a second this bound is already centuries of work, so nothing
/// reasonable is refused.
pub const MAX_SWEEP_RUNS: u64 = 1 << 40;

/// A validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The scenarios, each run over every seed of the range.
    pub scenarios: Vec<Scenario>,
    /// The half-open seed range.
    pub seeds: Range<u64>,
    /// `(k, n)`, 1-based: take the seeds whose index in the range is congruent to k-1 mod n.
    pub shard: Option<(u64, u64)>,
    /// The planted bugs of this repository's broker, in every run.
    pub bugs: Bugs,
    /// How many worker threads run seeds.
    pub jobs: usize,
    /// Runs every seed, instead of stopping at the lowest failing one.
    pub keep_going: bool,
    /// Runs every seed twice, in separate runtimes, and fails a seed whose traces differ.
    pub check_determinism: bool,
    /// Only for the determinism check's self-test.
    pub plant_nondeterminism: bool,
    /// The system under test (this repository's broker by default).
    pub system: SystemRef,
}

/// One seed's result, as much as a sweep keeps of it.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The run's trace hash.
    pub trace_hash: TraceHash,
    /// Wall-clock microseconds the run took (never part of a verdict).
    pub wall_us: u64,
    /// The run's counters.
    pub stats: Stats,
    /// How often each probe was hit.
    pub probes: BTreeMap<Probe, u64>,
    /// What a sweep keeps of a failure: a summary, never the whole history, so memory stays
    /// flat however many seeds fail.
    pub failure: Option<FailureSummary>,
}

/// A failing seed as a sweep keeps it; the artifact holds the rest.
#[derive(Clone, Debug)]
pub struct FailureSummary {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Its anomalies.
    pub anomalies: Vec<crate::check::Anomaly>,
    /// Its trace hash.
    pub trace_hash: TraceHash,
    /// Where its artifact was written, when the sweep writes them.
    pub artifact: Option<PathBuf>,
}

/// What a caller may add to a sweep: persisting each failure as it is found, and a flag that
/// stops the sweep early (Ctrl-C).
#[derive(Default)]
pub struct SweepHooks<'a> {
    /// Called on the worker thread with each failing run; returns the artifact written, or an
    /// error naming the file, which stops the sweep.
    pub on_failure: OnFailure<'a>,
    /// When set, workers take no more seeds and the report is marked incomplete.
    pub stop: Option<&'a AtomicBool>,
}

/// What a sweep found: counts, failures, summed counters and probes, the aggregate hash.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// How many runs were made.
    pub seeds_run: u64,
    /// How many passed.
    pub passed: u64,
    /// How many failed.
    pub failed: u64,
    /// Failures in (scenario, seed) order.
    pub failures: Vec<FailureSummary>,
    /// The sweep was stopped (Ctrl-C, or a failure artifact could not be written) before it
    /// covered its range: the counts are of the seeds that ran, not of the range.
    pub incomplete: bool,
    /// The first artifact that could not be written.
    pub write_error: Option<String>,
    /// Counters summed over the runs.
    pub stats: Stats,
    /// Probe hits summed over the seeds.
    pub probes: BTreeMap<Probe, u64>,
    /// The XOR of every run's trace hash: independent of order, jobs and sharding.
    pub aggregate_hash: String,
    /// Wall-clock milliseconds the sweep took.
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

    /// How many (scenario, seed) runs the sweep makes. Checked: a sweep that `check` would
    /// refuse panics here (an internal error, exit 3) rather than wrapping into a small count
    /// and passing without running anything.
    pub fn len(&self) -> u64 {
        (self.scenarios.len() as u64)
            .checked_mul(self.seeds_per_scenario())
            .expect("a sweep's size is checked before it runs")
    }

    /// Refuses a sweep that would run nothing or more than `MAX_SWEEP_RUNS`; returns its size.
    pub fn check(&self) -> Result<u64, String> {
        let range = format!("{}..{}", self.seeds.start, self.seeds.end);
        if self.seeds.is_empty() {
            return Err(format!("seed range {range} is empty"));
        }
        if self.scenarios.is_empty() {
            return Err("the sweep has no scenario".to_string());
        }
        let per = self.seeds_per_scenario();
        if let (0, Some((k, n))) = (per, self.shard) {
            return Err(format!(
                "shard {k}/{n} of seeds {range} receives no seeds (the range has fewer than {k})"
            ));
        }
        (self.scenarios.len() as u64)
            .checked_mul(per)
            .filter(|&runs| runs <= MAX_SWEEP_RUNS)
            .ok_or_else(|| {
                format!(
                    "seeds {range} over {} scenarios is too large a sweep: at most {MAX_SWEEP_RUNS} runs",
                    self.scenarios.len()
                )
            })
    }

    /// Whether the sweep makes no run.
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
    sweep_with(s, progress, &SweepHooks::default())
}

/// `sweep`, with each failure handed to `hooks.on_failure` as soon as it is found (so an
/// interrupted sweep loses no finished failure) and `hooks.stop` checked before every seed.
pub fn sweep_with(
    s: &Sweep,
    progress: &(dyn Fn(u64, u64) + Sync),
    hooks: &SweepHooks,
) -> SweepReport {
    let started = Instant::now();
    let total = s.len();
    let next = AtomicU64::new(0);
    let lowest_failure = AtomicU64::new(u64::MAX);
    let done = AtomicU64::new(0);
    let halted = AtomicBool::new(false);
    let write_error: Mutex<Option<String>> = Mutex::new(None);
    let fold = Mutex::new(Fold::new(s.keep_going));
    let stopped =
        || halted.load(Ordering::Relaxed) || hooks.stop.is_some_and(|f| f.load(Ordering::Relaxed));
    std::thread::scope(|scope| {
        for _ in 0..s.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total
                    || stopped()
                    || (!s.keep_going && i > lowest_failure.load(Ordering::Relaxed))
                {
                    return;
                }
                let (scenario, seed) = s.item(i);
                let mut result = run_seed(s, &s.scenarios[scenario], seed, hooks.on_failure);
                if let Some(Err(e)) = result.1.take() {
                    halted.store(true, Ordering::Relaxed);
                    lock(&write_error).get_or_insert(e);
                }
                if result.0.failure.is_some() {
                    lowest_failure.fetch_min(i, Ordering::Relaxed);
                }
                lock(&fold).add(i, result.0);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            });
        }
    });
    let fold = fold.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut report = fold.finish(started);
    report.incomplete = stopped() && done.load(Ordering::Relaxed) != total;
    report.write_error = write_error.into_inner().unwrap_or_else(|e| e.into_inner());
    report
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A sweep's report, folded run by run in item order as the runs finish: counts, sums, the
/// aggregate and one summary per failure, never a result per seed, so a sweep's memory does
/// not grow with its seeds. Without keep-going, the runs past the first failure in item order
/// (the lowest) are dropped with their artifacts, so neither the report nor the failures
/// directory depends on the number of jobs.
struct Fold {
    keep_going: bool,
    /// The next item to fold; runs that finish ahead of it wait in `pending`: usually a few
    /// per job, but as many as finish while one slow seed (bounded by its time limit) runs.
    next: u64,
    pending: BTreeMap<u64, SeedResult>,
    /// Without keep-going: a failure was folded, so every later run is dropped.
    cut: bool,
    aggregate: u128,
    report: SweepReport,
}

impl Fold {
    fn new(keep_going: bool) -> Fold {
        Fold {
            keep_going,
            next: 0,
            pending: BTreeMap::new(),
            cut: false,
            aggregate: 0,
            report: SweepReport {
                seeds_run: 0,
                passed: 0,
                failed: 0,
                failures: Vec::new(),
                incomplete: false,
                write_error: None,
                stats: Stats::default(),
                probes: BTreeMap::new(),
                aggregate_hash: String::new(),
                wall_ms: 0,
                slowest: Vec::new(),
            },
        }
    }

    /// Takes item `i`'s result and folds every run now contiguous with the folded prefix.
    fn add(&mut self, i: u64, result: SeedResult) {
        self.pending.insert(i, result);
        while let Some(r) = self.pending.remove(&self.next) {
            self.next += 1;
            self.fold(r);
        }
    }

    fn fold(&mut self, r: SeedResult) {
        if self.cut {
            if let Some(path) = r.failure.and_then(|f| f.artifact) {
                // A failure past the reported one; its artifact would be an orphan. Removing
                // it is best effort: a leftover file is harmless.
                let _ = std::fs::remove_file(path);
            }
            return;
        }
        let report = &mut self.report;
        report.seeds_run += 1;
        self.aggregate ^= aggregate_term(&r.scenario, r.seed, r.trace_hash);
        report.stats.add(&r.stats);
        for (probe, hits) in &r.probes {
            *report.probes.entry(*probe).or_default() += hits;
        }
        // Stable, so ties keep item order: the three slowest, seed breaking ties.
        report.slowest.push((r.wall_us, r.scenario, r.seed));
        report
            .slowest
            .sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
        report.slowest.truncate(3);
        match r.failure {
            Some(summary) => {
                report.failed += 1;
                report.failures.push(summary);
                self.cut = !self.keep_going;
            }
            None => report.passed += 1,
        }
    }

    /// The report over the runs kept; runs still pending (a sweep stopped early leaves gaps)
    /// are folded in item order.
    fn finish(mut self, started: Instant) -> SweepReport {
        for r in std::mem::take(&mut self.pending).into_values() {
            self.fold(r);
        }
        self.report.aggregate_hash = format_aggregate(self.aggregate);
        self.report.wall_ms = started.elapsed().as_millis() as u64;
        self.report
    }
}

type OnFailure<'a> = Option<&'a (dyn Fn(&RunPlan, &RunOutcome) -> Result<PathBuf, String> + Sync)>;

/// One seed's run, summarised; a failure is handed to `on_failure` (its result returned beside)
/// and then only its summary kept.
fn run_seed(
    s: &Sweep,
    scenario: &Scenario,
    seed: u64,
    on_failure: OnFailure,
) -> (SeedResult, Option<Result<PathBuf, String>>) {
    let started = Instant::now();
    let mut plan = RunPlan::new(scenario.clone(), seed, s.bugs).with_system_ref(s.system.clone());
    plan.plant_nondeterminism = s.plant_nondeterminism;
    let mut outcome = run(&plan);
    if s.check_determinism {
        let again = run(&plan);
        if let Some(anomaly) = compare_runs(&outcome, &again) {
            outcome.anomalies.push(anomaly);
            outcome.verdict = Verdict::Fail;
        }
    }
    let written = (!outcome.passed())
        .then(|| on_failure.map(|write| write(&plan, &outcome)))
        .flatten();
    let failure = (!outcome.passed()).then(|| FailureSummary {
        scenario: scenario.name.clone(),
        seed,
        anomalies: std::mem::take(&mut outcome.anomalies),
        trace_hash: outcome.trace_hash,
        artifact: written.as_ref().and_then(|w| w.as_ref().ok().cloned()),
    });
    let result = SeedResult {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: outcome.trace_hash,
        wall_us: started.elapsed().as_micros() as u64,
        stats: std::mem::take(&mut outcome.stats),
        probes: std::mem::take(&mut outcome.probes),
        failure,
    };
    (result, written)
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
            system: Default::default(),
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

    #[test]
    fn a_sweep_too_large_or_empty_is_refused_not_wrapped() {
        let sweep = |scenarios: Vec<Scenario>, seeds, shard| Sweep {
            scenarios,
            seeds,
            shard,
            bugs: Bugs::NONE,
            jobs: 1,
            keep_going: true,
            check_determinism: false,
            plant_nondeterminism: false,
            system: Default::default(),
        };
        // 8 scenarios x 2^62 seeds wraps a u64 to 0: it used to run nothing and pass.
        let all = sweep(Scenario::catalogue(), 0..1 << 62, None);
        assert!(all.check().unwrap_err().contains("too large a sweep"));
        let max = sweep(Scenario::catalogue(), 0..u64::MAX, Some((1, 1)));
        assert!(max.check().is_err());
        let standard = || vec![Scenario::resolve("standard").unwrap()];
        let empty = sweep(standard(), 0..2, Some((3, 4)));
        assert_eq!(
            empty.check().unwrap_err(),
            "shard 3/4 of seeds 0..2 receives no seeds (the range has fewer than 3)"
        );
        assert_eq!(sweep(standard(), 0..2, Some((2, 4))).check(), Ok(1));
    }
}
