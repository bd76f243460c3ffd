//! `harness list`: the scenario catalogue, or the planted bugs.

use super::{print_json, print_text, Failure};
use crate::args::ListArgs;
use broker_under_test::Bug;
use harness::report::json::{BugEntry, ScenarioEntry};
use harness::report::text;
use harness::scenario::Scenario;
use std::process::ExitCode;

pub fn list(args: ListArgs) -> Result<ExitCode, Failure> {
    if args.bugs {
        if args.json.json {
            print_json(&Bug::ALL.map(BugEntry::new))?;
        } else {
            print_text(text::bug_catalogue);
        }
    } else {
        let all = Scenario::catalogue();
        if args.json.json {
            print_json(&all.iter().map(ScenarioEntry::new).collect::<Vec<_>>())?;
        } else {
            print_text(|out| text::scenarios(out, &all));
        }
    }
    Ok(ExitCode::SUCCESS)
}
