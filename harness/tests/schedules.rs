//! Generated fault schedules (proptest over the harness's own schedule type): the correct broker
//! passes any of them; with a planted bug a failing schedule shrinks to a small one, and the
//! failure prints the command that replays it.
//!
//! `cargo test` runs a bounded number of cases from a fixed seed; proptest's own
//! `PROPTEST_CASES` asks for more (`PROPTEST_CASES=500 cargo test --test schedules`).

use broker_under_test::NodeName;
use broker_under_test::{Bug, Bugs};
use harness::artifact::Artifact;
use harness::scenario::Scenario;
use harness::schedule::{Fault, FaultEntry, FaultSchedule, Target};
use harness::sim::run;
use harness::world::{RunOutcome, RunPlan};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use std::path::PathBuf;

fn nodes() -> Vec<NodeName> {
    let mut nodes = vec![NodeName::Broker, NodeName::Store, NodeName::Consumer];
    nodes.extend((0..3).map(NodeName::Producer));
    nodes
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (any::<bool>(), any::<bool>()).prop_map(|(torn, garble)| Fault::Crash {
            torn,
            garble: torn && garble,
            corrupt: None,
        }),
        Just(Fault::Pause),
        (0..6usize, any::<bool>()).prop_map(|(peer, two_way)| Fault::Partition {
            peer: nodes()[peer],
            two_way
        }),
        (0.0..0.5f64).prop_map(|rate| Fault::Loss { rate }),
        (0.0..0.5f64).prop_map(|rate| Fault::Duplicate { rate }),
        (1..200u64).prop_map(|spread_ms| Fault::Delay { spread_ms }),
    ]
}

fn entry() -> impl Strategy<Value = FaultEntry> {
    (0..1000u64, 0..7usize, 1..400u64, fault()).prop_map(|(at_ms, target, duration_ms, fault)| {
        let nodes = nodes();
        // Network windows may hit everyone ("*"); a partition needs two distinct nodes.
        let mut target = if target == 6 {
            Target::All
        } else {
            nodes[target].into()
        };
        if let Fault::Partition { peer, .. } = &fault {
            if target == Target::All || target == (*peer).into() {
                target = (*nodes.iter().find(|n| *n != peer).unwrap()).into();
            }
        }
        if target == Target::All && !fault.is_network() {
            target = NodeName::Broker.into();
        }
        FaultEntry {
            at_ms,
            target,
            duration_ms,
            fault,
        }
    })
}

fn schedule() -> impl Strategy<Value = FaultSchedule> {
    prop::collection::vec(entry(), 0..10).prop_map(|mut s| {
        s.sort_by_key(|e| e.at_ms);
        s
    })
}

fn cases() -> u32 {
    // The config below is explicit, so proptest would not read its variable by itself.
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x0005_eed5),
        failure_persistence: None,
        ..Config::default()
    }
}

fn plan(schedule: FaultSchedule, bugs: Bugs) -> RunPlan {
    RunPlan {
        schedule,
        ..RunPlan::new(Scenario::resolve("standard").unwrap(), 11, bugs)
    }
}

/// Files a failing case as an artifact and returns the command that replays it.
fn file_failure(plan: &RunPlan, outcome: &RunOutcome, name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.json"));
    Artifact::new(plan, outcome)
        .save(&path)
        .expect("write the artifact");
    Artifact::replay_command(&path)
}

#[test]
fn the_correct_broker_passes_generated_schedules() {
    let mut runner = TestRunner::new(config(cases()));
    let result = runner.run(&schedule(), |schedule| {
        let plan = plan(schedule, Bugs::NONE);
        let outcome = run(&plan);
        if outcome.passed() {
            return Ok(());
        }
        let replay = file_failure(&plan, &outcome, "proptest-correct-broker");
        Err(TestCaseError::fail(format!(
            "{:#?}\nreplay with: {replay}",
            outcome.anomalies
        )))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn with_a_planted_bug_a_failing_schedule_shrinks_small_and_replays() {
    let bugs = Bugs::NONE.with(Bug::StoreNoDedup);
    let mut runner = TestRunner::new(config(64));
    let result = runner.run(&schedule(), |schedule| {
        let outcome = run(&plan(schedule, bugs));
        prop_assert!(outcome.passed(), "{} anomalies", outcome.anomalies.len());
        Ok(())
    });
    let Err(TestError::Fail(_, minimal)) = result else {
        panic!("store-no-dedup survived 64 generated schedules: {result:?}")
    };
    assert!(
        minimal.len() <= 2,
        "shrunk to {} faults: {minimal:#?}",
        minimal.len()
    );
    let plan = plan(minimal, bugs);
    let outcome = run(&plan);
    assert!(!outcome.passed());
    let replay = file_failure(&plan, &outcome, "proptest-store-no-dedup");
    println!(
        "store-no-dedup: minimal failing schedule of {} faults; replay with: {replay}",
        plan.schedule.len()
    );
    assert!(replay.starts_with("harness replay "));
}
