//! `harness bugs`: every planted bug hunted through the scenarios meant to expose it, or (with
//! `--scenario`) every bug that applies to one given scenario, in it.

use super::{bad, print_json, print_text, verdict_code, Failure};
use crate::args::BugsArgs;
use broker_under_test::Bug;
use harness::explore::hunt::{applies, hunt, hunt_in};
use harness::report::json::{BugHuntReport, SCHEMA_VERSION};
use harness::report::text;
use harness::scenario::Scenario;
use std::process::ExitCode;

pub fn bugs(args: BugsArgs) -> Result<ExitCode, Failure> {
    let json = args.json.json;
    let jobs = args.jobs.count();
    let only = match &args.scenario {
        Some(name) => Some(Scenario::resolve(name).map_err(bad)?),
        None => None,
    };
    let mut reports = Vec::new();
    for bug in Bug::ALL {
        let report = match &only {
            None => hunt(bug, args.max_seeds, jobs),
            Some(scenario) if applies(bug, scenario) => {
                hunt_in(bug, scenario, args.max_seeds, jobs)
            }
            Some(_) => continue,
        };
        // A row as soon as its hunt ends: the whole hunt takes minutes.
        if !json {
            print_text(|out| text::bug_hunt(out, &report));
        }
        reports.push(report);
    }
    if json {
        let rows: Vec<BugHuntReport> = reports
            .iter()
            .map(|hunt| BugHuntReport {
                schema_version: SCHEMA_VERSION,
                hunt,
            })
            .collect();
        print_json(&rows)?;
    } else {
        print_text(|out| text::bug_hunt_summary(out, &reports));
    }
    Ok(verdict_code(reports.iter().all(|r| r.detected)))
}
