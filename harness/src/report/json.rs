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

/// `explore --json`; also what `merge` reads back, so it deserializes too, strictly: an unknown
/// or ill-typed field is an error, never ignored. It carries its provenance (version, the
/// scenarios, the whole range, the shard, bugs and settings) so `merge` can prove its inputs are
/// the shards of one sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExploreReport {
    pub schema_version: u32,
    /// The harness that ran the shard; shards of different versions do not compose.
    pub harness_version: String,
    /// The scenario's name, or `all`.
    pub scenario: String,
    /// Every scenario swept, by name.
    pub scenarios: Vec<String>,
    /// The planted bugs switched on, by name.
    pub bugs: Vec<String>,
    pub check_determinism: bool,
    /// The sweep was interrupted before it covered its share of the range.
    pub incomplete: bool,
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

/// One failing seed of a sweep and where its artifact went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureReport {
    pub scenario: String,
    pub seed: u64,
    pub anomalies: Vec<Anomaly>,
    pub artifact: String,
    /// The command that replays it.
    pub replay: String,
}

impl ExploreReport {
    pub fn new(s: &Sweep, report: &SweepReport) -> ExploreReport {
        let failures = report
            .failures
            .iter()
            .map(|f| FailureReport {
                scenario: f.scenario.clone(),
                seed: f.seed,
                anomalies: f.anomalies.clone(),
                artifact: f
                    .artifact
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                replay: f
                    .artifact
                    .as_deref()
                    .map_or(String::new(), Artifact::replay_command),
            })
            .collect();
        let table = probe_table(report);
        ExploreReport {
            schema_version: SCHEMA_VERSION,
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            scenarios: s.scenarios.iter().map(|sc| sc.name.clone()).collect(),
            bugs: s.bugs.iter().map(|b| b.name().to_string()).collect(),
            check_determinism: s.check_determinism,
            incomplete: report.incomplete,
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
                format!("report {origin} is not a valid explore --json report: {e}")
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
    /// Merges `(origin, report)` pairs, having proved that they are exactly the shards of one
    /// sweep: the same version and settings, each complete, none given twice, none missing. The
    /// aggregates merge by XOR, which would cancel a shard given twice, and a shard that stopped
    /// at its first failure covers an unknown part of its range.
    pub fn merge(reports: &[(String, ExploreReport)]) -> Result<MergeReport, String> {
        let Some((first_origin, first)) = reports.first() else {
            return Err("no reports to merge".to_string());
        };
        for (origin, r) in reports {
            if let Some(field) = differing_setting(first, r) {
                return Err(format!(
                    "report {origin} is not a shard of the same sweep as {first_origin}: its {field} differs"
                ));
            }
            check_complete(origin, r)?;
        }
        check_disjoint(reports)?;
        let sum = |field: fn(&ExploreReport) -> u64| {
            reports
                .iter()
                .try_fold(0u64, |acc, (_, r)| acc.checked_add(field(r)))
                .ok_or_else(|| "the reports' counts overflow".to_string())
        };
        Ok(MergeReport {
            schema_version: SCHEMA_VERSION,
            seeds_run: sum(|r| r.seeds_run)?,
            passed: sum(|r| r.passed)?,
            failed: sum(|r| r.failed)?,
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

/// The first setting in which `r` differs from `first`, by name.
fn differing_setting(first: &ExploreReport, r: &ExploreReport) -> Option<&'static str> {
    let settings: [(&str, bool); 7] = [
        (
            "harness_version",
            first.harness_version == r.harness_version,
        ),
        (
            "scenario",
            (&first.scenario, &first.scenarios) == (&r.scenario, &r.scenarios),
        ),
        ("seed range", first.seeds == r.seeds),
        ("bugs", first.bugs == r.bugs),
        ("keep_going", first.keep_going == r.keep_going),
        (
            "check_determinism",
            first.check_determinism == r.check_determinism,
        ),
        (
            "shard count",
            parse_shard(&first.shard).map(|s| s.1) == parse_shard(&r.shard).map(|s| s.1),
        ),
    ];
    settings.into_iter().find(|s| !s.1).map(|s| s.0)
}

/// A report whose counts cover its whole shard: not interrupted, not stopped at a failure, and
/// with counts that add up to the seeds its shard of the range holds.
fn check_complete(origin: &str, r: &ExploreReport) -> Result<(), String> {
    if r.incomplete {
        return Err(format!(
            "report {origin} is of an interrupted sweep: it covers only part of its shard"
        ));
    }
    if !r.keep_going && r.failed > 0 {
        return Err(format!(
            "report {origin} stopped at its first failure (no --keep-going): its counts and \
             aggregate cover an unknown part of its shard; run the shards with --keep-going"
        ));
    }
    let (k, n) = parse_shard(&r.shard).map_err(|e| format!("report {origin}: {e}"))?;
    let expected = shard_size(&r.seeds, k, n)
        .and_then(|per| per.checked_mul(r.scenarios.len() as u64))
        .ok_or_else(|| format!("report {origin} has a malformed seed range '{}'", r.seeds))?;
    let counted = r.passed.checked_add(r.failed);
    if counted != Some(r.seeds_run)
        || r.seeds_run != expected
        || r.failures.len() as u64 != r.failed
    {
        return Err(format!(
            "report {origin}: its counts (seeds_run {}, passed {}, failed {}, {} failures listed) \
             do not cover its shard, which holds {expected} runs",
            r.seeds_run,
            r.passed,
            r.failed,
            r.failures.len()
        ));
    }
    Ok(())
}

/// `K/N` as numbers; the whole range is 1/1.
fn parse_shard(shard: &Option<String>) -> Result<(u64, u64), String> {
    let Some(text) = shard else {
        return Ok((1, 1));
    };
    text.split_once('/')
        .and_then(|(k, n)| Some((k.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
        .filter(|&(k, n)| 1 <= k && k <= n)
        .ok_or_else(|| format!("malformed shard '{text}'"))
}

/// How many seeds of the range `A..B` shard `k/n` holds, or `None` for a malformed range.
fn shard_size(seeds: &str, k: u64, n: u64) -> Option<u64> {
    let (a, b) = seeds.split_once("..")?;
    let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    let len = b.checked_sub(a)?;
    Some(if len > k - 1 {
        (len - (k - 1)).div_ceil(n)
    } else {
        0
    })
}

/// Shards are disjoint when they split the range the same way (one N) into distinct parts, and
/// complete when every part from 1 to N is there.
fn check_disjoint(reports: &[(String, ExploreReport)]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let mut n = 1;
    for (origin, r) in reports {
        let shard = r.shard.as_deref().unwrap_or("whole range");
        let (k, this_n) = parse_shard(&r.shard).map_err(|e| format!("report {origin}: {e}"))?;
        n = this_n;
        if !seen.insert(k) {
            return Err(format!("report {origin} ({shard}) overlaps another report"));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.contains(k))
        .take(20)
        .map(|k| format!("{k}/{n}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("shards missing: {}", missing.join(", ")))
    }
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
            harness_version: "0.1.0".to_string(),
            scenario: "standard".to_string(),
            scenarios: vec!["standard".to_string()],
            bugs: Vec::new(),
            check_determinism: false,
            incomplete: false,
            probes: BTreeMap::new(),
            probes_never_hit: Vec::new(),
            seeds: "0..6".to_string(),
            shard: shard.map(str::to_string),
            keep_going: true,
            seeds_run: 3,
            passed: 3 - failed,
            failed,
            failures: (0..failed)
                .map(|seed| FailureReport {
                    scenario: "standard".to_string(),
                    seed,
                    anomalies: Vec::new(),
                    artifact: String::new(),
                    replay: String::new(),
                })
                .collect(),
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
    fn overlapping_foreign_partial_or_missing_shards_are_refused() {
        let h = "0".repeat(32);
        let refused = |reports| MergeReport::merge(&named(reports)).unwrap_err();
        let twice = refused(vec![shard(Some("1/2"), &h, 0), shard(Some("1/2"), &h, 0)]);
        assert_eq!(twice, "report r1.json (1/2) overlaps another report");
        let whole = refused(vec![shard(Some("1/2"), &h, 0), shard(None, &h, 0)]);
        assert!(whole.contains("its shard count differs"), "{whole}");
        let missing = refused(vec![shard(Some("2/2"), &h, 0)]);
        assert_eq!(missing, "shards missing: 1/2");
        let differs = |change: fn(&mut ExploreReport), what: &str| {
            let mut other = shard(Some("2/2"), &h, 0);
            change(&mut other);
            let e = refused(vec![shard(Some("1/2"), &h, 0), other]);
            assert!(e.contains(&format!("its {what} differs")), "{e}");
        };
        differs(|r| r.seeds = "0..7".to_string(), "seed range");
        differs(
            |r| r.harness_version = "9.9.9".to_string(),
            "harness_version",
        );
        differs(|r| r.bugs = vec!["no-dedup".to_string()], "bugs");
        differs(|r| r.keep_going = false, "keep_going");
        let mut stopped = (shard(Some("1/2"), &h, 1), shard(Some("2/2"), &h, 0));
        (stopped.0.keep_going, stopped.1.keep_going) = (false, false);
        let e = refused(vec![stopped.0, stopped.1]);
        assert!(e.contains("stopped at its first failure"), "{e}");
        let mut short = shard(Some("2/2"), &h, 0);
        (short.seeds_run, short.passed) = (2, 2);
        let e = refused(vec![shard(Some("1/2"), &h, 0), short]);
        assert!(e.contains("do not cover its shard"), "{e}");
        let mut cut = shard(Some("2/2"), &h, 0);
        cut.incomplete = true;
        let e = refused(vec![shard(Some("1/2"), &h, 0), cut]);
        assert!(e.contains("interrupted"), "{e}");
    }

    #[test]
    fn a_report_reads_back_and_names_what_is_wrong_with_other_text() {
        let report = shard(Some("1/2"), &"a".repeat(32), 0);
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(ExploreReport::parse(&text, "r.json").as_ref(), Ok(&report));
        let not_json = ExploreReport::parse("{", "r.json").unwrap_err();
        assert!(not_json.starts_with("report r.json is not explore --json output"));
        let other = ExploreReport::parse(r#"{"seed": 3}"#, "r.json").unwrap_err();
        assert!(other.starts_with("report r.json is not a valid"), "{other}");
        let extra = text.replace("\"wall_ms\"", "\"extra\":1,\"wall_ms\"");
        let extra = ExploreReport::parse(&extra, "r.json").unwrap_err();
        assert!(extra.contains("unknown field `extra`"), "{extra}");
        let negative = text.replace("\"seeds_run\":3", "\"seeds_run\":-3");
        assert!(ExploreReport::parse(&negative, "r.json").is_err());
        let newer = text.replace("\"schema_version\":1", "\"schema_version\":2");
        let newer = ExploreReport::parse(&newer, "r.json").unwrap_err();
        assert!(newer.contains("schema_version 2"), "{newer}");
    }
}
