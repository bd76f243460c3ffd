//! What scripts read: the `--json` reports of every subcommand as typed, serde-derived values,
//! each carrying `schema_version`, and the merge of sharded `explore` reports.

use crate::artifact::Artifact;
use crate::check::Anomaly;
use crate::explore::bench::BenchReport;
use crate::explore::hunt::BugReport;
use crate::explore::{merge_aggregates, probe_table, Sweep, SweepReport};
use crate::history::TraceHash;
use crate::scenario::Scenario;
use crate::world::{RunOutcome, Stats, Verdict};
use broker_under_test::Bug;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The version of every report's layout. Raise it when a field is renamed, removed or changes
/// its shape, so that a script can refuse a report it does not understand; adding a field
/// does not need a new version.
pub const SCHEMA_VERSION: u32 = 1;

/// `run --json`: the outcome as it is.
#[derive(Serialize)]
pub struct RunReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub outcome: &'a RunOutcome,
}

impl<'a> RunReport<'a> {
    pub fn new(outcome: &'a RunOutcome) -> RunReport<'a> {
        RunReport {
            schema_version: SCHEMA_VERSION,
            outcome,
        }
    }
}

/// `replay --json`: the outcome, and how it compares with what the artifact recorded.
#[derive(Serialize)]
pub struct ReplayReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub outcome: &'a RunOutcome,
    /// It failed again, with the recorded anomalies.
    pub reproduced: bool,
    pub same_trace_hash: bool,
    pub recorded_trace_hash: TraceHash,
}

impl<'a> ReplayReport<'a> {
    pub fn new(outcome: &'a RunOutcome, recorded: &Artifact) -> ReplayReport<'a> {
        ReplayReport {
            schema_version: SCHEMA_VERSION,
            outcome,
            reproduced: !outcome.passed() && outcome.anomalies == recorded.anomalies,
            same_trace_hash: outcome.trace_hash == recorded.trace_hash,
            recorded_trace_hash: recorded.trace_hash,
        }
    }
}

/// `real --json`: the outcome of a run on real processes, with what only real mode measures.
#[derive(Serialize)]
pub struct RealReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub outcome: &'a RunOutcome,
    /// Broker SIGKILLs that hit a produce request still unanswered: the case that matters.
    pub broker_kills_with_produces_in_flight: u64,
    pub wall_ms: u64,
}

/// `explore --json`; also what `merge` reads back, so it deserializes too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExploreReport {
    /// Reports written before the field existed have version 1's layout, so they still merge.
    #[serde(default = "first_version")]
    pub schema_version: u32,
    /// The scenario's name, or `all`.
    pub scenario: String,
    /// Hits of every probe in the catalogue, summed over the seeds, including those never hit.
    pub probes: BTreeMap<String, u64>,
    pub probes_never_hit: Vec<String>,
    /// The seed range, `A..B`.
    pub seeds: String,
    /// `K/N`, or null for the whole range.
    pub shard: Option<String>,
    pub keep_going: bool,
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub failures: Vec<FailureReport>,
    /// Summed over the seeds.
    pub stats: Stats,
    pub aggregate_hash: String,
    pub wall_ms: u64,
}

fn first_version() -> u32 {
    1
}

/// One failing seed of a sweep and where its artifact went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureReport {
    pub scenario: String,
    pub seed: u64,
    pub anomalies: Vec<Anomaly>,
    pub artifact: String,
    /// The command that replays it.
    pub replay: String,
}

impl ExploreReport {
    /// `artifacts` are the files written for `report.failures`, in the same order.
    pub fn new(s: &Sweep, report: &SweepReport, artifacts: &[PathBuf]) -> ExploreReport {
        let failures = report
            .failures
            .iter()
            .zip(artifacts)
            .map(|(f, path)| FailureReport {
                scenario: f.scenario.clone(),
                seed: f.seed,
                anomalies: f.anomalies.clone(),
                artifact: path.display().to_string(),
                replay: Artifact::replay_command(path),
            })
            .collect();
        let table = probe_table(report);
        ExploreReport {
            schema_version: SCHEMA_VERSION,
            scenario: match s.scenarios.as_slice() {
                [one] => one.name.clone(),
                _ => "all".to_string(),
            },
            probes: table
                .iter()
                .map(|(probe, hits)| (probe.name().to_string(), *hits))
                .collect(),
            probes_never_hit: table
                .iter()
                .filter(|p| p.1 == 0)
                .map(|p| p.0.name().to_string())
                .collect(),
            seeds: format!("{}..{}", s.seeds.start, s.seeds.end),
            shard: s.shard.map(|(k, n)| format!("{k}/{n}")),
            keep_going: s.keep_going,
            seeds_run: report.seeds_run,
            passed: report.passed,
            failed: report.failed,
            failures,
            stats: report.stats.clone(),
            aggregate_hash: report.aggregate_hash.clone(),
            wall_ms: report.wall_ms,
        }
    }

    /// Reads one `explore --json` report; the error says whether the text is not JSON at all
    /// or JSON of another kind, and names `origin`.
    pub fn parse(text: &str, origin: &str) -> Result<ExploreReport, String> {
        let report: ExploreReport = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                format!("report {origin} lacks the fields of explore --json output: {e}")
            } else {
                format!("report {origin} is not explore --json output: {e}")
            }
        })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "report {origin} has schema_version {}; this harness reads {SCHEMA_VERSION}",
                report.schema_version
            ));
        }
        Ok(report)
    }
}

/// `merge --json`: the totals of disjoint shards of one sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    pub schema_version: u32,
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub failures: Vec<FailureReport>,
    /// Equals the aggregate hash of one sweep over the whole range.
    pub aggregate_hash: String,
}

impl MergeReport {
    /// Merges `(origin, report)` pairs. They must be disjoint shards of one sweep (same
    /// scenario and seeds): the aggregates merge by XOR, which would cancel a shard given
    /// twice.
    pub fn merge(reports: &[(String, ExploreReport)]) -> Result<MergeReport, String> {
        let Some((_, first)) = reports.first() else {
            return Err("no reports to merge".to_string());
        };
        if reports
            .iter()
            .any(|(_, r)| (&r.scenario, &r.seeds) != (&first.scenario, &first.seeds))
        {
            return Err(
                "the reports are not shards of one sweep (scenario and seeds differ)".to_string(),
            );
        }
        check_disjoint(reports)?;
        let sum = |field: fn(&ExploreReport) -> u64| reports.iter().map(|(_, r)| field(r)).sum();
        Ok(MergeReport {
            schema_version: SCHEMA_VERSION,
            seeds_run: sum(|r| r.seeds_run),
            passed: sum(|r| r.passed),
            failed: sum(|r| r.failed),
            failures: reports
                .iter()
                .flat_map(|(_, r)| r.failures.iter().cloned())
                .collect(),
            aggregate_hash: merge_aggregates(
                reports.iter().map(|(_, r)| r.aggregate_hash.as_str()),
            )?,
        })
    }
}

/// Shards are disjoint when they split the range the same way (one N) into distinct parts; a
/// whole-range report overlaps any other.
fn check_disjoint(reports: &[(String, ExploreReport)]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (origin, r) in reports {
        let shard = r.shard.as_deref().unwrap_or("whole range");
        let (k, n) = match &r.shard {
            None => (1, 1),
            Some(text) => text
                .split_once('/')
                .and_then(|(k, n)| Some((k.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
                .ok_or_else(|| format!("report {origin} has a malformed shard '{text}'"))?,
        };
        let same_split = seen.iter().all(|&(_, other_n)| other_n == n);
        if !same_split || !seen.insert((k, n)) {
            return Err(format!("report {origin} ({shard}) overlaps another report"));
        }
    }
    Ok(())
}

/// `bugs --json`, one per planted bug: how its hunt went.
#[derive(Serialize)]
pub struct BugHuntReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub hunt: &'a BugReport,
}

/// `bench --json`: the speed figures, and the comparison with a real run if asked for.
#[derive(Serialize)]
pub struct SpeedReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub bench: &'a BenchReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_real: Option<&'a VsReal>,
}

/// One seed simulated and the same seed on real processes, side by side.
#[derive(Clone, Debug, Serialize)]
pub struct VsReal {
    pub sim_wall_ms: u64,
    pub sim_verdict: Verdict,
    pub real_wall_ms: u64,
    pub real_verdict: Verdict,
    /// Real wall time over simulated wall time.
    pub speedup: f64,
}

/// `list --json`, one per catalogue scenario.
#[derive(Serialize)]
pub struct ScenarioEntry<'a> {
    pub schema_version: u32,
    pub scenario: &'a str,
    pub purpose: &'a str,
}

impl<'a> ScenarioEntry<'a> {
    pub fn new(s: &'a Scenario) -> ScenarioEntry<'a> {
        ScenarioEntry {
            schema_version: SCHEMA_VERSION,
            scenario: &s.name,
            purpose: &s.purpose,
        }
    }
}

/// `list --bugs --json`, one per planted bug.
#[derive(Serialize)]
pub struct BugEntry {
    pub schema_version: u32,
    pub bug: &'static str,
    pub description: &'static str,
}

impl BugEntry {
    pub fn new(bug: Bug) -> BugEntry {
        BugEntry {
            schema_version: SCHEMA_VERSION,
            bug: bug.name(),
            description: bug.description(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(shard: Option<&str>, hash: &str, failed: u64) -> ExploreReport {
        ExploreReport {
            schema_version: SCHEMA_VERSION,
            scenario: "standard".to_string(),
            probes: BTreeMap::new(),
            probes_never_hit: Vec::new(),
            seeds: "0..9".to_string(),
            shard: shard.map(str::to_string),
            keep_going: false,
            seeds_run: 3,
            passed: 3 - failed,
            failed,
            failures: Vec::new(),
            stats: Stats::default(),
            aggregate_hash: hash.to_string(),
            wall_ms: 1,
        }
    }

    fn named(reports: Vec<ExploreReport>) -> Vec<(String, ExploreReport)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("r{i}.json"), r))
            .collect()
    }

    #[test]
    fn disjoint_shards_merge_by_xor_and_sum() {
        let merged = MergeReport::merge(&named(vec![
            shard(Some("1/2"), "0000000000000000000000000000000f", 0),
            shard(Some("2/2"), "000000000000000000000000000000f0", 1),
        ]))
        .unwrap();
        assert_eq!(merged.aggregate_hash, "000000000000000000000000000000ff");
        assert_eq!((merged.seeds_run, merged.passed, merged.failed), (6, 5, 1));
    }

    #[test]
    fn overlapping_or_foreign_reports_are_refused() {
        let h = "0".repeat(32);
        let refused = |reports| MergeReport::merge(&named(reports)).unwrap_err();
        let twice = refused(vec![shard(Some("1/2"), &h, 0), shard(Some("1/2"), &h, 0)]);
        assert_eq!(twice, "report r1.json (1/2) overlaps another report");
        let whole = refused(vec![shard(Some("1/2"), &h, 0), shard(None, &h, 0)]);
        assert_eq!(
            whole,
            "report r1.json (whole range) overlaps another report"
        );
        let other_split = refused(vec![shard(Some("1/2"), &h, 0), shard(Some("2/3"), &h, 0)]);
        assert_eq!(other_split, "report r1.json (2/3) overlaps another report");
        let mut other_seeds = shard(Some("2/2"), &h, 0);
        other_seeds.seeds = "0..10".to_string();
        let foreign = refused(vec![shard(Some("1/2"), &h, 0), other_seeds]);
        assert!(foreign.contains("not shards of one sweep"), "{foreign}");
    }

    #[test]
    fn a_report_reads_back_and_names_what_is_wrong_with_other_text() {
        let report = shard(Some("1/2"), &"a".repeat(32), 0);
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(ExploreReport::parse(&text, "r.json").as_ref(), Ok(&report));
        let not_json = ExploreReport::parse("{", "r.json").unwrap_err();
        assert!(not_json.starts_with("report r.json is not explore --json output"));
        let other = ExploreReport::parse(r#"{"seed": 3}"#, "r.json").unwrap_err();
        assert!(other.starts_with("report r.json lacks"), "{other}");
        let unversioned = text.replace("\"schema_version\":1,", "");
        assert_eq!(ExploreReport::parse(&unversioned, "r.json"), Ok(report));
        let newer = text.replace("\"schema_version\":1", "\"schema_version\":2");
        let newer = ExploreReport::parse(&newer, "r.json").unwrap_err();
        assert!(newer.contains("schema_version 2"), "{newer}");
    }
}
