//! One module per subcommand, each a function returning its exit status, and what they share:
//! the `Failure` that maps to exit status 2 or 3, printing, and the files a run writes.

pub mod bench;
pub mod bugs;
pub mod explore;
pub mod list;
pub mod merge;
pub mod real;
pub mod replay;
pub mod run;
pub mod show;
pub mod shrink;

use harness::world::{RunOutcome, RunPlan};
use indicatif::ProgressBar;
use serde::Serialize;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// A failure of the command itself, with its exit status.
pub enum Failure {
    /// Bad usage or bad input (exit status 2): the message names the problem.
    BadInput(String),
    /// A fault of the harness (exit status 3).
    Internal(String),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::BadInput(_) => ExitCode::from(2),
            Failure::Internal(_) => ExitCode::from(3),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(message) => f.write_str(message),
            Failure::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

pub fn bad(e: impl fmt::Display) -> Failure {
    Failure::BadInput(e.to_string())
}

pub fn internal(e: impl fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

/// 0 when everything passed, 1 when an invariant was violated.
pub fn verdict_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints text rendered by one of `harness::report::text`'s functions.
pub fn print_text(render: impl FnOnce(&mut String) -> fmt::Result) {
    print!("{}", harness::report::text::render(render));
}

/// Prints a `--json` report with its keys sorted, as reports have always been printed, so two
/// versions' reports compare line by line.
pub fn print_json(report: &impl Serialize) -> Result<(), Failure> {
    let value = serde_json::to_value(report).map_err(internal)?;
    let text = serde_json::to_string_pretty(&value).map_err(internal)?;
    println!("{text}");
    Ok(())
}

/// A progress bar on stderr when a person watches it; hidden otherwise, and under `--json`.
pub fn progress_bar(shown: bool, make: impl FnOnce() -> ProgressBar) -> ProgressBar {
    if shown && std::io::stderr().is_terminal() {
        make()
    } else {
        ProgressBar::hidden()
    }
}

/// `--html FILE`: the run's timeline page.
pub fn write_html(
    path: &Path,
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
) -> Result<(), Failure> {
    let page = harness::report::html::render(plan, outcome, replay);
    std::fs::write(path, page).map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("timeline written to {}", path.display());
    Ok(())
}

/// `--trace FILE`: the whole history as JSON lines.
pub fn write_trace(path: &Path, outcome: &RunOutcome) -> Result<(), Failure> {
    let fail = |e: std::io::Error| bad(format!("cannot write trace {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for entry in &outcome.history {
        serde_json::to_writer(&mut out, entry).map_err(internal)?;
        out.write_all(b"\n").map_err(fail)?;
    }
    out.flush().map_err(fail)
}
