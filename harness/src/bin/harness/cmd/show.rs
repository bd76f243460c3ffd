//! `harness show`: a failure artifact, readable.

use super::{bad, print_text, Failure};
use crate::args::ShowArgs;
use harness::artifact::Artifact;
use harness::report::text;
use std::fmt::Write;
use std::process::ExitCode;

pub fn show(args: ShowArgs) -> Result<ExitCode, Failure> {
    let artifact = Artifact::load(&args.artifact).map_err(bad)?;
    if let Some(warning) = artifact.version_warning() {
        eprintln!("{}", text::escape_controls(&warning));
    }
    // Every string in the artifact came from a file: its control characters (a terminal's
    // escape sequences) are shown escaped, never sent to the terminal.
    let shown = text::render(|out| text::artifact(out, &artifact, &args.artifact));
    print_text(|out| out.write_str(&text::escape_controls(&shown)));
    Ok(ExitCode::SUCCESS)
}
