//! Scenario outcomes as insta snapshots in `snapshots/`: a behaviour change shows up as a diff
//! for `cargo insta review`. Stored: verdict, anomalies, stats and trace hash over a few pinned
//! seeds, and for each planted bug the anomalies of its first failing standard seed; nothing
//! that varies between machines (no wall time, no paths).

use broker_under_test::{Bug, Bugs};
use harness::scenario::Scenario;
use harness::sim::run;
use harness::world::RunPlan;
use serde_json::json;
use std::collections::BTreeMap;

/// The seeds every scenario snapshot pins.
const PINNED_SEEDS: [u64; 3] = [0, 1, 2];

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn scenario_outcomes_over_pinned_seeds() {
    for scenario in Scenario::catalogue() {
        let outcomes: Vec<_> = PINNED_SEEDS
            .iter()
            .map(|&seed| {
                let outcome = run(&RunPlan::new(scenario.clone(), seed, Bugs::NONE));
                json!({
                    "seed": seed,
                    "verdict": outcome.verdict,
                    "anomalies": outcome.anomalies,
                    "stats": outcome.stats,
                    "sim_ms": outcome.sim_ms,
                    "trace_hash": outcome.trace_hash,
                })
            })
            .collect();
        settings()
            .bind(|| insta::assert_json_snapshot!(format!("scenario-{}", scenario.name), outcomes));
    }
}

#[test]
fn planted_bug_first_failures() {
    for bug in Bug::ALL {
        // `standard` for every bug it exposes; a bug only large payments reach, over its own.
        let exposing = harness::explore::hunt::exposing_scenarios(bug);
        let name = if exposing.contains(&"standard") {
            "standard"
        } else {
            exposing[0]
        };
        let standard = Scenario::resolve(name).unwrap();
        let outcome = (0..20)
            .map(|seed| run(&RunPlan::new(standard.clone(), seed, Bugs::NONE.with(bug))))
            .find(|o| !o.passed())
            .unwrap_or_else(|| panic!("{bug} undetected over 20 {name} seeds"));
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for a in &outcome.anomalies {
            *kinds.entry(a.kind.name()).or_default() += 1;
        }
        let summary = json!({
            "bug": bug.name(),
            "scenario": name,
            "first_failing_seed": outcome.seed,
            "anomaly_counts": kinds,
            "first_anomalies": outcome.anomalies.iter().take(5).collect::<Vec<_>>(),
            "trace_hash": outcome.trace_hash,
        });
        settings().bind(|| insta::assert_json_snapshot!(format!("bug-{}", bug.name()), summary));
    }
}
