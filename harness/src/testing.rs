//! Seeded runs from a plain `#[test]`: sweep a system over a scenario's seeds, and on a failure
//! panic with its anomalies and the line that reruns exactly that seed.
//!
//! Like madsim's own test macro, the seeds can be chosen from the environment, so a failure
//! printed by CI is rerun by pasting one line: `MADSIM_TEST_SEED=N` (or `HARNESS_SEED=N`) runs
//! seed N instead of the test's range, and `MADSIM_TEST_NUM=K` (or `HARNESS_TEST_NUM=K`) runs
//! K seeds from it.
//!
//! ```no_run
//! use harness::system::BrokerSystem;
//! use harness::testing::Check;
//!
//! #[test]
//! fn the_broker_delivers_exactly_once() {
//!     Check::new(BrokerSystem, "standard").seeds(0..100).assert_passes();
//! }
//! ```

use crate::check::Anomaly;
use crate::explore::sweep::{sweep, Sweep};
use crate::scenario::Scenario;
use crate::sim::run;
use crate::system::{System, SystemRef};
use crate::world::outcome::RunOutcome;
use crate::world::plan::RunPlan;
use broker_under_test::Bugs;
use std::fmt;
use std::ops::Range;

/// The environment variables that pick the seed, in the order they are read.
pub const SEED_VARS: [&str; 2] = ["HARNESS_SEED", "MADSIM_TEST_SEED"];
/// The environment variables that pick how many seeds to run from it.
pub const NUM_VARS: [&str; 2] = ["HARNESS_TEST_NUM", "MADSIM_TEST_NUM"];

/// A sweep of one system over one scenario's seeds, set up for a test.
pub struct Check {
    system: SystemRef,
    scenario: Scenario,
    seeds: Range<u64>,
    bugs: Bugs,
    jobs: usize,
}

/// Every seed passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    /// How many seeds ran.
    pub seeds: u64,
    /// The order-independent hash of every run's trace (see `harness explore`).
    pub aggregate_hash: String,
}

/// The lowest failing seed, run again in full.
pub struct Failed {
    /// The failing run: its anomalies, history and trace hash.
    pub outcome: Box<RunOutcome>,
    /// How many seeds failed before the sweep stopped: it stops at the lowest failing seed,
    /// so this is a floor (often 1), not a count over the whole range.
    pub failed: u64,
    /// The seed range that ran.
    pub seeds: Range<u64>,
}

impl Check {
    /// A check of `system` on the catalogue scenario (or scenario file) `scenario`, over seeds
    /// `0..100` unless [`Check::seeds`] or the environment says otherwise.
    ///
    /// # Panics
    ///
    /// When the scenario does not resolve, or asks for more brokers than the system deploys
    /// ([`System::max_brokers`]): a test with a bad name should fail loudly.
    pub fn new(system: impl System, scenario: &str) -> Check {
        let scenario = Scenario::resolve(scenario).unwrap_or_else(|e| panic!("{e}"));
        let (asked, max) = (scenario.workload.brokers, system.max_brokers());
        assert!(
            asked <= max,
            "system '{}' deploys at most {max} broker(s); scenario '{}' asks for {asked} \
             (workload.brokers)",
            system.name(),
            scenario.name
        );
        Check {
            system: SystemRef::new(system),
            scenario,
            seeds: 0..100,
            bugs: Bugs::NONE,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The seeds to run (the environment's seed, when set, replaces them).
    pub fn seeds(mut self, seeds: Range<u64>) -> Check {
        self.seeds = seeds;
        self
    }

    /// Plants bugs of this repository's broker (other systems plant their own).
    pub fn bugs(mut self, bugs: Bugs) -> Check {
        self.bugs = bugs;
        self
    }

    /// How many worker threads run seeds (default: one per core).
    pub fn jobs(mut self, jobs: usize) -> Check {
        self.jobs = jobs.max(1);
        self
    }

    /// The seeds that will run: the environment's, or the test's own.
    pub fn seed_range(&self) -> Range<u64> {
        seeds_from_env(|name| std::env::var(name).ok())
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| self.seeds.clone())
    }

    /// Runs every seed, stopping at the lowest failing one, which is run again in full.
    pub fn run(&self) -> Result<Passed, Failed> {
        let seeds = self.seed_range();
        let report = sweep(
            &Sweep {
                scenarios: vec![self.scenario.clone()],
                seeds: seeds.clone(),
                shard: None,
                bugs: self.bugs,
                jobs: self.jobs,
                keep_going: false,
                check_determinism: false,
                plant_nondeterminism: false,
                system: self.system.clone(),
            },
            &|_, _| {},
        );
        match report.failures.first() {
            None => Ok(Passed {
                seeds: report.seeds_run,
                aggregate_hash: report.aggregate_hash,
            }),
            Some(failure) => {
                let plan = RunPlan::new(self.scenario.clone(), failure.seed, self.bugs)
                    .with_system_ref(self.system.clone());
                Err(Failed {
                    outcome: Box::new(run(&plan)),
                    failed: report.failed,
                    seeds,
                })
            }
        }
    }

    /// Runs every seed and panics at the first failure, with its anomalies and the line that
    /// reruns it.
    pub fn assert_passes(&self) -> Passed {
        self.run().unwrap_or_else(|failed| panic!("{failed}"))
    }
}

impl Failed {
    /// The first anomaly of the failing run; `None` when the run, made again, passed (the
    /// system is not deterministic).
    pub fn first(&self) -> Option<&Anomaly> {
        self.outcome.anomalies.first()
    }
}

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        writeln!(
            f,
            "seeds {}..{}: {} seed {} fails (the lowest failing seed), with {} anomalies:",
            self.seeds.start,
            self.seeds.end,
            o.scenario,
            o.seed,
            o.anomalies.len()
        )?;
        for anomaly in &o.anomalies {
            writeln!(f, "  {anomaly}")?;
        }
        if o.anomalies.is_empty() {
            writeln!(
                f,
                "  none when run again: the system under test is not deterministic"
            )?;
        }
        writeln!(f, "trace hash {}", o.trace_hash)?;
        let test = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .map(|name| format!(" {name} -- --exact"))
            .unwrap_or_default();
        write!(
            f,
            "rerun this seed: MADSIM_TEST_SEED={} cargo test{test}",
            o.seed
        )
    }
}

/// The seed range the environment asks for, if any: the seed from [`SEED_VARS`] and the count
/// from [`NUM_VARS`] (default 1). A value that is not a number is an error naming it.
pub fn seeds_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Range<u64>>, String> {
    let read = |names: [&str; 2]| -> Result<Option<u64>, String> {
        for name in names {
            if let Some(value) = var(name) {
                return value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{name}={value:?} is not a whole number"));
            }
        }
        Ok(None)
    };
    let Some(seed) = read(SEED_VARS)? else {
        return Ok(None);
    };
    let num = read(NUM_VARS)?.unwrap_or(1).max(1);
    let end = seed
        .checked_add(num)
        .ok_or_else(|| format!("seed {seed} + {num} seeds overflows"))?;
    Ok(Some(seed..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_environment_picks_the_seeds_like_madsims_macro() {
        assert_eq!(seeds_from_env(env(&[])), Ok(None));
        assert_eq!(
            seeds_from_env(env(&[("MADSIM_TEST_SEED", "17")])),
            Ok(Some(17..18))
        );
        let both = [("MADSIM_TEST_SEED", "17"), ("HARNESS_SEED", "4")];
        assert_eq!(seeds_from_env(env(&both)), Ok(Some(4..5)));
        let num = [("MADSIM_TEST_SEED", "17"), ("MADSIM_TEST_NUM", "3")];
        assert_eq!(seeds_from_env(env(&num)), Ok(Some(17..20)));
        let bad = seeds_from_env(env(&[("HARNESS_SEED", "x")])).unwrap_err();
        assert!(bad.contains("HARNESS_SEED"), "{bad}");
        let wraps = [
            ("HARNESS_SEED", "18446744073709551615"),
            ("HARNESS_TEST_NUM", "2"),
        ];
        assert!(seeds_from_env(env(&wraps)).is_err());
    }

    #[test]
    fn a_planted_bug_fails_with_the_line_that_reruns_its_seed() {
        use broker_under_test::Bug;
        let check = Check::new(crate::system::BrokerSystem, "standard")
            .seeds(0..20)
            .bugs(Bugs::NONE.with(Bug::StoreNoDedup));
        let failed = check.run().expect_err("store-no-dedup is caught");
        assert_eq!(
            failed.first().map(|a| a.kind),
            Some(crate::check::AnomalyKind::StoreDuplicate)
        );
        let text = failed.to_string();
        assert!(
            text.contains(&format!(
                "MADSIM_TEST_SEED={} cargo test",
                failed.outcome.seed
            )),
            "{text}"
        );
        let passed = Check::new(crate::system::BrokerSystem, "standard")
            .seeds(0..3)
            .assert_passes();
        assert_eq!(passed.seeds, 3);
    }
}
