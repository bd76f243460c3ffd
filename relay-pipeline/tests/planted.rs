//! The pipeline's own planted bugs, caught from plain `#[test]`s through the harness's public
//! testing API: each bug fails the scenario that exercises it within a few seeds, with the
//! anomaly it should produce, and passes a run without faults.

use harness::testing::Check;
use harness::AnomalyKind;
use relay_pipeline::{RelayBug, RelaySystem};

/// A scenario of this crate's own: the standard workload with no fault at all.
const CALM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/calm.toml");

/// Runs `bug` on `scenario` over `seeds` and returns the anomaly kinds of the lowest failing
/// seed; panics if every seed passed.
fn caught(bug: RelayBug, scenario: &str, seeds: std::ops::Range<u64>) -> (u64, Vec<AnomalyKind>) {
    let failed = Check::new(RelaySystem::with_bug(bug), scenario)
        .seeds(seeds.clone())
        .run()
        .expect_err("the planted bug went unnoticed");
    let kinds = failed.outcome.anomalies.iter().map(|a| a.kind).collect();
    (failed.outcome.seed, kinds)
}

#[test]
fn a_relay_that_forgets_its_dedup_set_on_restart_duplicates_payments_in_the_log() {
    let (seed, kinds) = caught(RelayBug::DedupInMemoryOnly, "standard", 0..5);
    assert!(
        kinds.contains(&AnomalyKind::LogDuplicate),
        "seed {seed}: {kinds:?}"
    );
}

#[test]
fn a_consumer_that_saves_its_cursor_before_applying_loses_payments_for_the_store() {
    let (seed, kinds) = caught(RelayBug::CursorBeforeApply, "consumer-restarts", 0..5);
    assert!(
        kinds.contains(&AnomalyKind::StoreMissing),
        "seed {seed}: {kinds:?}"
    );
}

#[test]
fn each_planted_bug_passes_a_run_without_faults() {
    for bug in [RelayBug::DedupInMemoryOnly, RelayBug::CursorBeforeApply] {
        Check::new(RelaySystem::with_bug(bug), CALM)
            .seeds(0..5)
            .assert_passes();
    }
}
