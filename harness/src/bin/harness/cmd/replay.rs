//! `harness replay`: an artifact's exact schedule run again, compared with what it recorded.

use super::{
    bad, check_output, print_json, print_text, verdict_code, write_html, write_trace, Failure,
};
use crate::args::ReplayArgs;
use harness::artifact::Artifact;
use harness::report::json::ReplayReport;
use harness::report::text;
use harness::sim;
use std::process::ExitCode;

pub fn replay(args: ReplayArgs) -> Result<ExitCode, Failure> {
    let path = &args.artifact;
    let artifact = Artifact::load(path).map_err(bad)?;
    artifact.require_broker().map_err(bad)?;
    for out in [&args.outputs.trace, &args.outputs.html]
        .into_iter()
        .flatten()
    {
        check_output(out, Some(path))?;
    }
    if let Some(warning) = artifact.version_warning() {
        eprintln!("{warning}");
    }
    let mut plan = artifact.plan();
    plan.record_messages = args.outputs.html.is_some();
    let json = args.json.json;
    if !json {
        print_text(|out| text::replay_header(out, path, &plan));
    }
    let outcome = sim::run(&plan);
    if let Some(trace) = &args.outputs.trace {
        write_trace(trace, &outcome)?;
    }
    if let Some(html) = &args.outputs.html {
        write_html(html, &plan, &outcome, &Artifact::replay_command(path))?;
    }
    if json {
        print_json(&ReplayReport::new(&outcome, &artifact))?;
    } else {
        print_text(|out| {
            text::outcome(out, &outcome)?;
            text::replay_verdict(out, &outcome, &artifact)
        });
    }
    Ok(verdict_code(outcome.passed()))
}
