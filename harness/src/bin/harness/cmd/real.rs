//! `harness real`: the scenario on real processes on loopback, judged by the same checker.

use super::{bad, internal, print_json, print_text, verdict_code, Failure};
use crate::args::RealArgs;
use harness::real::broker_kills_with_produces_in_flight;
use harness::report::json::{RealReport, SCHEMA_VERSION};
use harness::report::text;
use harness::scenario::Scenario;
use harness::world::{RunOutcome, RunPlan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn real(args: RealArgs) -> Result<ExitCode, Failure> {
    let scenario = Scenario::resolve(&args.scenario).map_err(bad)?;
    let plan = RunPlan::new(scenario, args.seed, args.bugs.set());
    let (outcome, wall) = run_real(&plan, &args.node_bin.node_bin, args.dir)?;
    let wall_ms = wall.as_millis() as u64;
    let in_flight_kills = broker_kills_with_produces_in_flight(&outcome.history);
    if args.json.json {
        print_json(&RealReport {
            schema_version: SCHEMA_VERSION,
            outcome: &outcome,
            broker_kills_with_produces_in_flight: in_flight_kills,
            wall_ms,
        })?;
    } else {
        print_text(|out| {
            let kills = outcome.stats.broker_crashes;
            text::real_header(out, &plan, wall_ms, kills, in_flight_kills)?;
            text::outcome(out, &outcome)
        });
    }
    Ok(verdict_code(outcome.passed()))
}

/// Runs `plan` for real in `dir` (or a fresh temporary directory); returns the outcome and
/// the wall time it took.
pub fn run_real(
    plan: &RunPlan,
    node_bin: &Path,
    dir: Option<PathBuf>,
) -> Result<(RunOutcome, Duration), Failure> {
    let temp;
    let dir = match dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().map_err(internal)?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    if node_bin.exists() {
        check_node_runs(node_bin)?;
    }
    let started = Instant::now();
    let outcome = harness::real::run_real(plan, node_bin, &dir).map_err(bad)?;
    Ok((outcome, started.elapsed()))
}

/// A node binary that does not even run (`node --help` fails) would make every node die at
/// once and the run end in a liveness verdict about the broker; say what failed instead
/// (exit status 3: the harness's own tooling is broken, not the system under test).
fn check_node_runs(node_bin: &Path) -> Result<(), Failure> {
    let shown = node_bin.display();
    let out = std::process::Command::new(node_bin)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| internal(format!("node binary {shown} does not run: {e}")))?;
    if !out.status.success() {
        return Err(internal(format!(
            "node binary {shown} does not run: `{shown} --help` exited with {}",
            out.status
        )));
    }
    Ok(())
}
