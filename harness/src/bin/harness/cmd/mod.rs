//! One module per subcommand, each a function returning its exit status, and what they share:
//! the `Failure` that maps to exit status 2 or 3, printing, and the files a run writes.

pub mod bench;
pub mod bugs;
pub mod explore;
pub mod interrupt;
pub mod list;
pub mod merge;
pub mod real;
pub mod replay;
pub mod run;
pub mod show;
pub mod shrink;

use harness::artifact::write_atomically;
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

/// Prints text rendered by one of `harness::report::text`'s functions. A failed write to
/// standard output (a full disk, a closed descriptor) is an internal error, exit status 3, by
/// the panic that `main` catches.
pub fn print_text(render: impl FnOnce(&mut String) -> fmt::Result) {
    let text = harness::report::text::render(render);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        panic!("cannot write to standard output: {e}");
    }
}

/// Prints a `--json` report with its keys sorted, as reports have always been printed, so two
/// versions' reports compare line by line.
pub fn print_json(report: &impl Serialize) -> Result<(), Failure> {
    let value = serde_json::to_value(report).map_err(internal)?;
    let text = serde_json::to_string_pretty(&value).map_err(internal)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| internal(format!("cannot write to standard output: {e}")))
}

/// A progress bar on stderr when a person watches it; hidden otherwise, and under `--json`.
pub fn progress_bar(shown: bool, make: impl FnOnce() -> ProgressBar) -> ProgressBar {
    if shown && std::io::stderr().is_terminal() {
        make()
    } else {
        ProgressBar::hidden()
    }
}

/// Checks an output file before any work starts: its directory exists, it is not a directory,
/// and it is not the input (`replay a.json --trace a.json` would destroy the evidence).
pub fn check_output(path: &Path, input: Option<&Path>) -> Result<(), Failure> {
    let shown = path.display();
    if path.is_dir() {
        return Err(bad(format!("output {shown} is a directory")));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(bad(format!(
            "output {shown}: directory {} does not exist",
            dir.display()
        )));
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if input.is_some_and(|input| same(path, input)) {
        return Err(bad(format!(
            "output {shown} is the input artifact; it would be overwritten"
        )));
    }
    Ok(())
}

/// Checks `--failures DIR` before a sweep: it is (or can be made) a directory we can write in.
pub fn check_output_dir(dir: &Path) -> Result<(), Failure> {
    let fail =
        |e: std::io::Error| bad(format!("cannot write failures into {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    Ok(())
}

/// `--html FILE`: the run's timeline page.
pub fn write_html(
    path: &Path,
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
) -> Result<(), Failure> {
    let page = harness::report::html::render(plan, outcome, replay);
    write_atomically(path, |out| out.write_all(page.as_bytes()))
        .map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("timeline written to {}", path.display());
    Ok(())
}

/// `--trace FILE`: the whole history as JSON lines, written atomically.
pub fn write_trace(path: &Path, outcome: &RunOutcome) -> Result<(), Failure> {
    write_atomically(path, |out| {
        for entry in &outcome.history {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|e| bad(format!("cannot write trace {}: {e}", path.display())))
}
