//! `harness show`: a failure artifact, readable.

use super::{bad, print_text, Failure};
use crate::args::ShowArgs;
use harness::artifact::Artifact;
use harness::report::text;
use std::process::ExitCode;

pub fn show(args: ShowArgs) -> Result<ExitCode, Failure> {
    let artifact = Artifact::load(&args.artifact).map_err(bad)?;
    print_text(|out| text::artifact(out, &artifact, &args.artifact));
    Ok(ExitCode::SUCCESS)
}
