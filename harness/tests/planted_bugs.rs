//! The harness must be proven to catch bugs: `explore` over standard seeds finds every planted
//! bug (one that only large payments can reach, over its own scenario), naming the anomaly, the
//! payment and the seed, and replaying that seed fails the same way.

use broker_under_test::{Bug, Bugs};
use harness::explore::{sweep, Sweep};
use harness::scenario::Scenario;
use harness::sim::run;
use harness::world::RunPlan;

/// Each bug must be found within this many standard seeds.
const SEEDS_MAX: u64 = 20;

/// Where a bug is hunted here: `standard` if it is among its exposing scenarios, or else its
/// focused one (`oversized-batch-accepted` needs payments that `standard` does not make).
fn hunting_ground(bug: Bug) -> Scenario {
    let exposing = harness::explore::hunt::exposing_scenarios(bug);
    let name = if exposing.contains(&"standard") {
        "standard"
    } else {
        exposing[0]
    };
    Scenario::resolve(name).unwrap()
}

#[test]
fn explore_catches_every_planted_bug_and_the_seed_replays() {
    for bug in Bug::ALL {
        let standard = hunting_ground(bug);
        let s = Sweep {
            scenarios: vec![standard.clone()],
            seeds: 0..SEEDS_MAX,
            shard: None,
            bugs: Bugs::NONE.with(bug),
            jobs: 2,
            keep_going: false,
            check_determinism: false,
            plant_nondeterminism: false,
            system: Default::default(),
        };
        let report = sweep(&s, &|_, _| {});
        let failure = report
            .failures
            .first()
            .unwrap_or_else(|| panic!("{bug} went undetected over {SEEDS_MAX} seeds"));
        let with_payment = failure.anomalies.iter().find(|a| a.payment.is_some());
        assert!(
            with_payment.is_some(),
            "{bug}: no anomaly names a payment: {:#?}",
            failure.anomalies
        );
        let again = run(&RunPlan::new(
            standard.clone(),
            failure.seed,
            Bugs::NONE.with(bug),
        ));
        assert_eq!(
            again.trace_hash, failure.trace_hash,
            "{bug}: seed {} does not replay",
            failure.seed
        );
        assert_eq!(again.anomalies, failure.anomalies);
    }
}

#[test]
fn the_store_dedup_bug_shows_as_a_store_duplicate_and_no_dedup_as_a_log_duplicate() {
    let standard = Scenario::resolve("standard").unwrap();
    let kinds = |bug: Bug| -> Vec<String> {
        let outcome = (0..SEEDS_MAX)
            .map(|seed| run(&RunPlan::new(standard.clone(), seed, Bugs::NONE.with(bug))))
            .find(|o| !o.passed())
            .unwrap_or_else(|| panic!("{bug} undetected"));
        outcome.anomalies.iter().map(|a| a.kind.name()).collect()
    };
    assert!(kinds(Bug::StoreNoDedup).contains(&"store-duplicate".to_string()));
    assert!(kinds(Bug::NoDedup).contains(&"log-duplicate".to_string()));
}

#[test]
fn without_faults_every_planted_bug_passes() {
    // Every bug is latent: only the faults that expose it make it fail.
    let standard = Scenario::resolve("standard").unwrap();
    for bug in Bug::ALL {
        for seed in 0..3 {
            let plan = RunPlan {
                schedule: Vec::new(),
                ..RunPlan::new(standard.clone(), seed, Bugs::NONE.with(bug))
            };
            let outcome = run(&plan);
            assert!(
                outcome.passed(),
                "{bug} fails seed {seed} without faults: {:#?}",
                outcome.anomalies
            );
        }
    }
}

#[test]
fn harness_bugs_detects_every_planted_bug_within_bounded_seeds() {
    const MAX_SEEDS: u64 = 30;
    let reports: Vec<_> = Bug::ALL
        .iter()
        .map(|&bug| harness::explore::hunt::hunt(bug, MAX_SEEDS, 2))
        .collect();
    for r in &reports {
        assert!(
            r.detected,
            "{} went undetected within {MAX_SEEDS} seeds per scenario",
            r.bug
        );
        assert!(r.anomaly.is_some());
    }
    let mut tried: Vec<u64> = reports.iter().map(|r| r.seeds_tried).collect();
    tried.sort();
    assert!(
        tried[tried.len() / 2] < 50,
        "median seeds tried {}",
        tried[tried.len() / 2]
    );
}
