//! `harness merge`: sharded `explore --json` reports merged into the whole sweep's totals.

use super::{bad, print_json, print_text, verdict_code, Failure};
use crate::args::MergeArgs;
use harness::artifact::read_input;
use harness::report::json::{ExploreReport, MergeReport};
use harness::report::text;
use std::process::ExitCode;

pub fn merge(args: MergeArgs) -> Result<ExitCode, Failure> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let origin = path.display().to_string();
        let text = read_input(path, "report").map_err(bad)?;
        let report = ExploreReport::parse(&text, &origin).map_err(bad)?;
        reports.push((origin, report));
    }
    let merged = MergeReport::merge(&reports).map_err(bad)?;
    if args.json.json {
        print_json(&merged)?;
    } else {
        print_text(|out| text::merge(out, &merged, reports.len()));
    }
    Ok(verdict_code(merged.failed == 0))
}
