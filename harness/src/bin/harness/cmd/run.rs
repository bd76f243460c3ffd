//! `harness run`: one seed of one scenario, judged, with the command that reproduces a failure.

use super::{
    bad, check_output, print_json, print_text, verdict_code, write_html, write_trace, Failure,
};
use crate::args::RunArgs;
use harness::artifact::Artifact;
use harness::report::json::RunReport;
use harness::report::{review, text};
use harness::scenario::Scenario;
use harness::sim;
use harness::world::RunPlan;
use std::process::ExitCode;

pub fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    let resolved = Scenario::resolve(&args.scenario).map_err(bad)?;
    for path in [&args.outputs.trace, &args.outputs.html, &args.artifact]
        .into_iter()
        .flatten()
    {
        check_output(path, None)?;
    }
    let mut plan = RunPlan::new(resolved, args.seed, args.bugs.set());
    plan.record_messages = args.outputs.html.is_some();
    plan.scenario_arg = args.scenario;
    let json = args.json.json;
    if !json && !args.review {
        print_text(|out| text::plan(out, &plan));
    }
    let outcome = sim::run(&plan);
    if let Some(path) = &args.outputs.trace {
        write_trace(path, &outcome)?;
    }
    if let Some(path) = &args.artifact {
        Artifact::new(&plan, &outcome).save(path).map_err(bad)?;
    }
    // An artifact replays more exactly than the command line: it keeps the resolved scenario.
    let (verb, command) = match &args.artifact {
        Some(path) => ("replay", Artifact::replay_command(path)),
        None => ("reproduce", plan.replay_command()),
    };
    if let Some(path) = &args.outputs.html {
        write_html(path, &plan, &outcome, &command)?;
    }
    if json {
        print_json(&RunReport::new(&outcome))?;
    } else if args.review {
        // Only the review, so that it can be saved and diffed like a snapshot.
        print!("{}", review::render(&plan, &outcome));
    } else {
        print_text(|out| text::outcome(out, &outcome));
        if !outcome.passed() {
            println!("{verb} with: {command}");
        }
    }
    Ok(verdict_code(outcome.passed()))
}
