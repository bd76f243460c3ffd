//! A limit does not hide a violation: a run stopped by its step limit still reports what its
//! history already proves (here the no-dedup bug's regressing sends), beside `step-limit`, with
//! the simulated time at which the limit hit.

use broker_under_test::Bug;
use harness::check::AnomalyKind;
use harness::scenario::Scenario;
use harness::sim;
use harness::world::RunPlan;

#[test]
fn a_step_limited_run_still_reports_the_violations_its_history_shows() {
    let mut scenario = Scenario::resolve("lossy-network").unwrap();
    // Enough steps to pass the first regressing send (345 ms), too few to finish the run.
    scenario.limits.max_steps = 2000;
    let plan = RunPlan::new(scenario, 0, [Bug::NoDedup].into_iter().collect());
    let outcome = sim::run(&plan);
    let kinds: Vec<AnomalyKind> = outcome.anomalies.iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&AnomalyKind::NonmonotonicSend), "{kinds:?}");
    let limit = outcome.anomalies.last().unwrap();
    assert_eq!(limit.kind, AnomalyKind::StepLimit, "{kinds:?}");
    assert_eq!(limit.at_ms, outcome.sim_ms);
    assert!(
        limit
            .detail
            .starts_with(&format!("at {} ms of simulated time", outcome.sim_ms)),
        "{}",
        limit.detail
    );
    // Durable-state properties are not judged on a cut run: nothing is called missing.
    assert!(!kinds.iter().any(|k| matches!(
        k,
        AnomalyKind::LogMissing | AnomalyKind::StoreMissing | AnomalyKind::LostAck
    )));
    // And a correct broker cut by the same limit shows only the limit.
    let mut scenario = Scenario::resolve("lossy-network").unwrap();
    scenario.limits.max_steps = 2000;
    let clean = sim::run(&RunPlan::new(scenario, 0, broker_under_test::Bugs::NONE));
    let kinds: Vec<AnomalyKind> = clean.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::StepLimit]);
}
