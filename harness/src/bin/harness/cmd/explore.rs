//! `harness explore`: a seed sweep, its failure artifacts written, its report printed.

use super::{bad, internal, print_json, print_text, progress_bar, verdict_code, Failure};
use crate::args::ExploreArgs;
use harness::artifact::Artifact;
use harness::explore::{sweep, Sweep, SweepReport};
use harness::report::json::ExploreReport;
use harness::report::text;
use harness::scenario::Scenario;
use harness::world::RunPlan;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn explore(args: ExploreArgs) -> Result<ExitCode, Failure> {
    let scenarios = if args.scenario == "all" {
        Scenario::catalogue()
    } else {
        vec![Scenario::resolve(&args.scenario).map_err(bad)?]
    };
    let s = Sweep {
        scenarios,
        seeds: args.seeds,
        shard: args.shard,
        bugs: args.bugs.set(),
        jobs: args.jobs.count(),
        keep_going: args.keep_going,
        check_determinism: args.check_determinism,
        plant_nondeterminism: args.plant_nondeterminism,
    };
    let json = args.json.json;
    let style = ProgressStyle::with_template("  {bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}")
        .map_err(internal)?;
    let bar = progress_bar(!json, || ProgressBar::new(s.len()).with_style(style));
    let report = sweep(&s, &|done, _| bar.set_position(done));
    bar.finish_and_clear();
    let written = write_artifacts(&s, &report, &args.failures)?;
    if json {
        print_json(&ExploreReport::new(&s, &report, &written))?;
    } else {
        print_text(|out| text::sweep(out, &s, &report, &written));
    }
    Ok(verdict_code(report.failed == 0))
}

/// One artifact per failure under `dir`, in the report's order.
fn write_artifacts(s: &Sweep, report: &SweepReport, dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut written = Vec::new();
    for failure in &report.failures {
        let scenario = s
            .scenarios
            .iter()
            .find(|sc| sc.name == failure.scenario)
            .ok_or_else(|| internal("unknown swept scenario"))?;
        let plan = RunPlan::new(scenario.clone(), failure.seed, s.bugs);
        let path = Artifact::path_in(dir, &plan);
        Artifact::new(&plan, failure).save(&path).map_err(bad)?;
        written.push(path);
    }
    Ok(written)
}
