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

/// The rest of the toolbox works on this system too: the failing seed replays to the same
/// trace, shrinks to a smaller schedule that still duplicates, round-trips through an artifact,
/// and draws as an HTML timeline with the pipeline's own messages.
#[test]
fn a_caught_bug_replays_shrinks_saves_and_draws_on_this_system_too() {
    use harness::{html_timeline, run, shrink, Artifact, RunPlan, Scenario};
    let system = RelaySystem::with_bug(RelayBug::DedupInMemoryOnly);
    let (seed, _) = caught(RelayBug::DedupInMemoryOnly, "standard", 0..5);
    let scenario = Scenario::resolve("standard").unwrap();
    let mut plan = RunPlan::new(scenario, seed, Default::default()).with_system(system);
    plan.record_messages = true;
    let outcome = run(&plan);
    assert_eq!(
        run(&plan).trace_hash,
        outcome.trace_hash,
        "a replay is the same run"
    );

    let shrunk = shrink(&plan, AnomalyKind::LogDuplicate, &|_, _| {}).expect("it shrinks");
    assert!(shrunk.plan.schedule.len() <= plan.schedule.len());
    assert!(shrunk
        .outcome
        .anomalies
        .iter()
        .any(|a| a.kind == AnomalyKind::LogDuplicate));

    let artifact = Artifact::new(&shrunk.plan, &shrunk.outcome);
    assert_eq!(artifact.system, "relay-pipeline+dedup-in-memory-only");
    assert!(
        artifact.require_broker().is_err(),
        "the CLI would run the broker instead"
    );
    let json = serde_json::to_string(&artifact).unwrap();
    let back: Artifact = serde_json::from_str(&json).unwrap();
    let again = run(&back
        .plan()
        .with_system(RelaySystem::with_bug(RelayBug::DedupInMemoryOnly)));
    assert_eq!(
        again.trace_hash, shrunk.outcome.trace_hash,
        "the artifact replays exactly"
    );

    let page = html_timeline(&plan, &outcome, "cargo test -p relay-pipeline");
    let first = &outcome.anomalies[0];
    assert!(page.contains("<svg"), "a timeline");
    assert!(
        page.contains(first.payment.as_deref().unwrap()),
        "it names the payment"
    );
}

/// This pipeline does not carry out I/O error windows (its deployment keeps the seam's
/// default): a scenario that asks for them fails, saying so, rather than passing untested.
#[test]
fn a_scenario_with_io_errors_fails_loudly_on_a_system_that_cannot_inject_them() {
    let failed = Check::new(RelaySystem::new(), "disk-errors")
        .seeds(0..1)
        .run()
        .expect_err("io-errors faults cannot pass silently");
    let first = failed.first().expect("an anomaly");
    assert_eq!(first.kind, AnomalyKind::Panic);
    assert!(
        first.detail.contains("does not carry out io-errors"),
        "{}",
        first.detail
    );
}
