//! Scenario outcomes as insta snapshots in `tests/snapshots/`, in the review format
//! (`harness::report::review`): one test case per scenario file and pinned seed, and one per
//! planted bug, so a mismatch in one case never hides another and `cargo insta review` shows
//! every change at once. Cases come from the files in `scenarios/` at run time: a new scenario
//! file gets its snapshots without new code. Nothing here varies between machines.

use broker_under_test::{Bug, Bugs};
use harness::report::review;
use harness::scenario::Scenario;
use harness::world::RunPlan;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};

/// The seeds every scenario snapshot pins.
const PINNED_SEEDS: [u64; 3] = [0, 1, 2];

/// How many seeds a planted bug's first failure is looked for in.
const BUG_SEEDS: u64 = 20;

fn main() {
    let args = Arguments::from_args();
    let mut trials = scenario_trials();
    trials.extend(Bug::ALL.into_iter().map(bug_trial));
    trials.push(Trial::test(
        "cli/run-review-prints-the-review",
        run_review_prints_the_review,
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// Inside the package, not at the workspace root: `cargo insta review` looks for pending
/// snapshots only under each package's directory.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

/// Every `*.toml` in `scenarios/`, in name order.
fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable scenarios/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

fn scenario_trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    for file in scenario_files() {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for seed in PINNED_SEEDS {
            let file = file.clone();
            let name = format!("scenario-{stem}-seed-{seed}");
            trials.push(Trial::test(
                format!("scenario/{stem}/seed-{seed}"),
                move || {
                    let scenario = Scenario::resolve(&file.to_string_lossy()).map_err(fail)?;
                    let review = review::of_run(&RunPlan::new(scenario, seed, Bugs::NONE));
                    settings().bind(|| insta::assert_snapshot!(name, review));
                    Ok(())
                },
            ));
        }
    }
    trials
}

/// The review of the planted bug's first failing seed: of `standard` for every bug it exposes,
/// of the bug's own scenario for one only it reaches (large payments).
fn bug_trial(bug: Bug) -> Trial {
    Trial::test(format!("bug/{}", bug.name()), move || {
        let exposing = harness::explore::hunt::exposing_scenarios(bug);
        let name = if exposing.contains(&"standard") {
            "standard"
        } else {
            exposing[0]
        };
        let scenario = Scenario::resolve(name).map_err(fail)?;
        let plan = (0..BUG_SEEDS)
            .map(|seed| RunPlan::new(scenario.clone(), seed, Bugs::NONE.with(bug)))
            .find(|plan| !harness::sim::run(plan).passed())
            .ok_or_else(|| format!("{bug} undetected over {BUG_SEEDS} {name} seeds"))?;
        let review = review::of_run(&plan);
        settings().bind(|| insta::assert_snapshot!(format!("bug-{}", bug.name()), review));
        Ok(())
    })
}

fn fail(e: impl std::fmt::Display) -> Failed {
    e.to_string().into()
}

/// `harness run --review` prints exactly what a snapshot stores, so users can review their own
/// scenario files in the same format.
fn run_review_prints_the_review() -> Result<(), Failed> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            "--scenario",
            "producer-restarts",
            "--seed",
            "1",
            "--review",
        ])
        .output()
        .map_err(fail)?;
    let plan = RunPlan::new(
        Scenario::resolve("producer-restarts").map_err(fail)?,
        1,
        Bugs::NONE,
    );
    let expected = review::of_run(&plan);
    let printed = String::from_utf8_lossy(&output.stdout);
    if printed != expected {
        return Err(format!("run --review printed:\n{printed}\nexpected:\n{expected}").into());
    }
    Ok(())
}
