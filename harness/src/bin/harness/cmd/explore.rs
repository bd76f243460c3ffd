//! `harness explore`: a seed sweep, its failure artifacts written, its report printed.

use super::{
    bad, check_output_dir, internal, interrupt, print_json, print_text, progress_bar, verdict_code,
    Failure,
};
use crate::args::ExploreArgs;
use harness::artifact::Artifact;
use harness::explore::{sweep_with, Sweep, SweepHooks};
use harness::report::json::ExploreReport;
use harness::report::text;
use harness::scenario::Scenario;
use harness::world::{RunOutcome, RunPlan};
use indicatif::{ProgressBar, ProgressStyle};
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
        system: Default::default(),
    };
    s.check().map_err(bad)?;
    check_output_dir(&args.failures)?;
    let json = args.json.json;
    let style = ProgressStyle::with_template("  {bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}")
        .map_err(internal)?;
    let bar = progress_bar(!json, || ProgressBar::new(s.len()).with_style(style));
    let dir = args.failures.clone();
    let write = move |plan: &RunPlan, outcome: &RunOutcome| {
        let path = Artifact::path_in(&dir, plan);
        Artifact::new(plan, outcome)
            .save(&path)
            .map(|()| path)
            .map_err(|e| e.to_string())
    };
    let hooks = SweepHooks {
        on_failure: Some(&write),
        stop: Some(interrupt::flag()),
    };
    let report = sweep_with(&s, &|done, _| bar.set_position(done), &hooks);
    bar.finish_and_clear();
    if let Some(e) = &report.write_error {
        return Err(bad(e));
    }
    if json {
        print_json(&ExploreReport::new(&s, &report))?;
    } else {
        print_text(|out| text::sweep(out, &s, &report));
    }
    if report.incomplete {
        eprintln!("harness: interrupted; the report covers only the seeds that ran");
        return Ok(ExitCode::from(130));
    }
    Ok(verdict_code(report.failed == 0))
}
