//! `harness bench`: exploration speed in rounds on all cores, and optionally against a run of
//! the same seed on real processes.

use super::real::run_real;
use super::{bad, print_json, print_text, Failure};
use crate::args::BenchArgs;
use broker_under_test::Bugs;
use harness::explore::bench::bench as measure;
use harness::report::json::{SpeedReport, VsReal, SCHEMA_VERSION};
use harness::report::text;
use harness::scenario::Scenario;
use harness::sim;
use harness::world::RunPlan;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn bench(args: BenchArgs) -> Result<ExitCode, Failure> {
    let scenario = Scenario::resolve(&args.scenario).map_err(bad)?;
    let against = match &args.against {
        Some(name) => Some(Scenario::resolve(name).map_err(bad)?),
        None => None,
    };
    let report = measure(
        &scenario,
        args.seeds,
        args.rounds,
        args.jobs.count(),
        args.floor,
        against.as_ref(),
    );
    let vs_real = if args.vs_real {
        Some(vs_real(&scenario, &args.node_bin.node_bin)?)
    } else {
        None
    };
    if args.json.json {
        print_json(&SpeedReport {
            schema_version: SCHEMA_VERSION,
            bench: &report,
            vs_real: vs_real.as_ref(),
        })?;
    } else {
        print_text(|out| text::bench(out, &report, vs_real.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Seed 0 of the scenario, simulated and real, side by side.
fn vs_real(scenario: &Scenario, node_bin: &Path) -> Result<VsReal, Failure> {
    let plan = RunPlan::new(scenario.clone(), 0, Bugs::NONE);
    let started = Instant::now();
    let simulated = sim::run(&plan);
    let sim_wall = started.elapsed();
    let (real, real_wall) = run_real(&plan, node_bin, None)?;
    Ok(VsReal {
        sim_wall_ms: sim_wall.as_millis() as u64,
        sim_verdict: simulated.verdict,
        real_wall_ms: real_wall.as_millis() as u64,
        real_verdict: real.verdict,
        speedup: real_wall.as_secs_f64() / sim_wall.as_secs_f64().max(1e-9),
    })
}
