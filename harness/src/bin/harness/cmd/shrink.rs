//! `harness shrink`: an artifact's fault schedule minimised while an anomaly of its first
//! anomaly's kind remains, written as a new artifact.

use super::{bad, check_output, print_text, progress_bar, Failure};
use crate::args::ShrinkArgs;
use harness::artifact::Artifact;
use harness::explore::shrink;
use harness::report::text;
use indicatif::ProgressBar;
use std::process::ExitCode;

pub fn shrink(args: ShrinkArgs) -> Result<ExitCode, Failure> {
    let path = &args.artifact;
    let artifact = Artifact::load(path).map_err(bad)?;
    artifact.require_broker().map_err(bad)?;
    let plan = artifact.plan();
    let Some(kind) = artifact.anomalies.first().map(|a| a.kind) else {
        return Err(bad(format!(
            "artifact {} records no anomaly: nothing to shrink",
            path.display()
        )));
    };
    let out = args
        .out
        .unwrap_or_else(|| path.with_extension("shrunk.json"));
    check_output(&out, Some(path))?;
    if let Some(warning) = artifact.version_warning() {
        eprintln!("{warning}");
    }
    print_text(|o| text::shrink_header(o, path, &plan, kind));
    let bar = progress_bar(true, ProgressBar::new_spinner);
    let shrunk = shrink::shrink(&plan, kind, &|runs, faults| {
        bar.set_message(format!("{runs} runs, {faults} faults"))
    });
    bar.finish_and_clear();
    let Some(shrunk) = shrunk else {
        println!("the artifact no longer fails with {kind}: nothing to shrink");
        return Ok(ExitCode::SUCCESS);
    };
    Artifact::new(&shrunk.plan, &shrunk.outcome)
        .save(&out)
        .map_err(bad)?;
    print_text(|o| text::shrunk(o, &artifact, kind, &shrunk, &out));
    Ok(ExitCode::SUCCESS)
}
