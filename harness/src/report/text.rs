//! What the `harness` command prints for people: plans, outcomes, sweeps, artifacts, bug hunts,
//! benchmarks and merges, rendered into any `fmt::Write` (a `String` in tests) so the binary
//! only prints them.

use crate::artifact::Artifact;
use crate::check::{Anomaly, AnomalyKind};
use crate::explore::bench::BenchReport;
use crate::explore::hunt::BugReport;
use crate::explore::shrink::Shrunk;
use crate::explore::{probe_table, Sweep, SweepReport};
use crate::report::excerpt;
use crate::report::json::{MergeReport, VsReal};
use crate::scenario::Scenario;
use crate::schedule::FaultEntry;
use crate::world::{RunOutcome, RunPlan, Verdict};
use broker_under_test::{Bug, Bugs};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::path::Path;

/// Renders with one of this module's functions into a `String`, which cannot fail to take it.
pub fn render(f: impl FnOnce(&mut String) -> fmt::Result) -> String {
    let mut out = String::new();
    f(&mut out).expect("writing into a String does not fail");
    out
}

/// Text from a file, safe for a terminal: control characters other than newlines (escape
/// sequences, carriage returns, bells) are written as `\u{..}` escapes.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `none`, or the bug names separated by commas.
pub fn bug_list(bugs: Bugs) -> String {
    let names: Vec<&str> = bugs.iter().map(Bug::name).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    }
}

/// What the seed expanded into, printed before the run so a person sees it while it runs.
pub fn plan(out: &mut impl Write, plan: &RunPlan) -> fmt::Result {
    let w = &plan.scenario.workload;
    writeln!(
        out,
        "run {} seed {} (bugs: {}): {} producers x {} payments over {} partitions, {} ms of faults",
        plan.scenario.name,
        plan.seed,
        bug_list(plan.bugs),
        w.producers,
        w.payments_per_producer,
        w.partitions,
        w.duration_ms
    )?;
    schedule(out, &plan.schedule)
}

pub fn schedule(out: &mut impl Write, schedule: &[FaultEntry]) -> fmt::Result {
    writeln!(out, "fault schedule ({} faults):", schedule.len())?;
    writeln!(
        out,
        "  {:>6}     {:<9} {:<12}     {:>4}",
        "at", "kind", "target", "duration"
    )?;
    for entry in schedule {
        writeln!(out, "  {entry}")?;
    }
    Ok(())
}

/// A count per kind, then the first anomalies one a line: a run can have thousands.
pub fn anomalies(out: &mut impl Write, anomalies: &[Anomaly]) -> fmt::Result {
    const SHOWN: usize = 12;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in anomalies {
        *kinds.entry(a.kind.name()).or_default() += 1;
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "{} anomalies ({}):",
        anomalies.len(),
        counts.join(", ")
    )?;
    for a in anomalies.iter().take(SHOWN) {
        writeln!(out, "  {a}")?;
    }
    if anomalies.len() > SHOWN {
        writeln!(out, "  ... and {} more", anomalies.len() - SHOWN)?;
    }
    Ok(())
}

/// The verdict with the run's counters, the anomalies, the history just before the first one,
/// and the trace hash.
pub fn outcome(out: &mut impl Write, outcome: &RunOutcome) -> fmt::Result {
    let s = &outcome.stats;
    writeln!(
        out,
        "{}: {} payments, {} log records, {} store rows, {} produce requests ({} retries, {} dedup hits), {} messages ({} dropped), {} ms simulated",
        if outcome.passed() { "PASS" } else { "FAIL" },
        s.payments,
        s.log_records,
        s.store_rows,
        s.produce_requests,
        s.retries,
        s.dedup_hits,
        s.messages,
        s.messages_dropped,
        outcome.sim_ms
    )?;
    if let Some(first) = outcome.anomalies.first() {
        anomalies(out, &outcome.anomalies)?;
        let lines = excerpt::before(&outcome.history, first, 30);
        if !lines.is_empty() {
            writeln!(
                out,
                "timeline before the first anomaly ({}):",
                first.payment.as_deref().unwrap_or("faults")
            )?;
            for line in lines {
                writeln!(out, "  {line}")?;
            }
        }
    }
    writeln!(out, "trace_hash {}", outcome.trace_hash)
}

/// Printed before a replay runs.
pub fn replay_header(out: &mut impl Write, path: &Path, plan: &RunPlan) -> fmt::Result {
    writeln!(
        out,
        "replay {}: {} seed {} (bugs: {}), {} faults",
        path.display(),
        plan.scenario.name,
        plan.seed,
        bug_list(plan.bugs),
        plan.schedule.len()
    )
}

/// How a replay compares with what its artifact recorded.
pub fn replay_verdict(out: &mut impl Write, now: &RunOutcome, recorded: &Artifact) -> fmt::Result {
    let same_hash = now.trace_hash == recorded.trace_hash;
    let same_anomalies = now.anomalies == recorded.anomalies;
    if now.passed() {
        writeln!(out, "no longer fails: the recorded anomalies did not occur")?;
    } else if same_anomalies && same_hash {
        writeln!(out, "reproduced: same anomalies, same trace hash")?;
    } else if same_anomalies {
        writeln!(
            out,
            "reproduced the anomalies, but the trace hash differs (recorded {})",
            recorded.trace_hash
        )?;
    } else {
        writeln!(
            out,
            "fails differently than recorded ({} anomalies recorded)",
            recorded.anomalies.len()
        )?;
    }
    if !same_hash {
        writeln!(
            out,
            "trace hash differs: recorded {}, now {}",
            recorded.trace_hash, now.trace_hash
        )?;
    }
    Ok(())
}

/// What a run on real processes did, before its outcome.
pub fn real_header(
    out: &mut impl Write,
    plan: &RunPlan,
    wall_ms: u64,
    broker_kills: u64,
    in_flight_kills: u64,
) -> fmt::Result {
    writeln!(
        out,
        "real {} seed {} (bugs: {}) on loopback processes, {wall_ms} ms wall (times below are wall-clock ms)",
        plan.scenario.name,
        plan.seed,
        bug_list(plan.bugs),
    )?;
    writeln!(
        out,
        "{broker_kills} broker SIGKILLs, {in_flight_kills} of them with produces in flight"
    )
}

/// A sweep's totals, probes and aggregate hash, then its first failure with the command that
/// replays it. An interrupted sweep says so first: its counts are not the range's.
pub fn sweep(out: &mut impl Write, s: &Sweep, report: &SweepReport) -> fmt::Result {
    if report.incomplete {
        writeln!(
            out,
            "INCOMPLETE: the sweep was stopped after {} seeds; this report covers only those",
            report.seeds_run
        )?;
    }
    sweep_totals(out, s, report)?;
    sweep_probes(out, report)?;
    writeln!(out, "aggregate_hash {}", report.aggregate_hash)?;
    let Some(first) = report.failures.first() else {
        return Ok(());
    };
    writeln!(out, "FAIL {} seed {}", first.scenario, first.seed)?;
    anomalies(out, &first.anomalies)?;
    let Some(path) = &first.artifact else {
        return Ok(());
    };
    writeln!(out, "replay with: {}", Artifact::replay_command(path))?;
    if report.failures.len() > 1 {
        writeln!(
            out,
            "({} more failure artifacts in {})",
            report.failures.len() - 1,
            path.parent().unwrap_or(Path::new(".")).display()
        )?;
    }
    Ok(())
}

fn sweep_totals(out: &mut impl Write, s: &Sweep, report: &SweepReport) -> fmt::Result {
    let names: Vec<&str> = s.scenarios.iter().map(|s| s.name.as_str()).collect();
    let rate = report.seeds_run as f64 / (report.wall_ms.max(1) as f64 / 1000.0);
    writeln!(
        out,
        "explore {} seeds {}..{}{} (bugs: {}), {} jobs: {} passed, {} failed in {:.1} s ({rate:.0} seeds/s)",
        names.join(","),
        s.seeds.start,
        s.seeds.end,
        s.shard.map_or(String::new(), |(k, n)| format!(" shard {k}/{n}")),
        bug_list(s.bugs),
        s.jobs,
        report.passed,
        report.failed,
        report.wall_ms as f64 / 1000.0
    )?;
    let st = &report.stats;
    writeln!(
        out,
        "  {} payments, {} produce retries, {} dedup hits, {} broker / {} producer / {} consumer / {} store crashes, {} messages dropped, {} unsynced bytes lost",
        st.payments,
        st.retries,
        st.dedup_hits,
        st.broker_crashes,
        st.producer_restarts,
        st.consumer_restarts,
        st.store_restarts,
        st.messages_dropped,
        st.unsynced_writes_lost
    )?;
    let slowest: Vec<String> = report
        .slowest
        .iter()
        .map(|(us, sc, seed)| format!("{sc}/{seed} {:.0} ms", *us as f64 / 1000.0))
        .collect();
    writeln!(out, "  slowest seeds: {}", slowest.join(", "))
}

fn sweep_probes(out: &mut impl Write, report: &SweepReport) -> fmt::Result {
    writeln!(out, "  probes (rare paths hit, summed over seeds):")?;
    let table = probe_table(report);
    for (probe, hits) in &table {
        let (name, what) = (probe.name(), probe.description());
        writeln!(out, "    {hits:>9}  {name:<34} {what}")?;
    }
    let never: Vec<&str> = table
        .iter()
        .filter(|p| p.1 == 0)
        .map(|p| p.0.name())
        .collect();
    if !never.is_empty() {
        writeln!(out, "  probes never hit: {}", never.join(", "))?;
    }
    Ok(())
}

/// Printed before shrinking starts.
pub fn shrink_header(
    out: &mut impl Write,
    path: &Path,
    plan: &RunPlan,
    kind: AnomalyKind,
) -> fmt::Result {
    writeln!(
        out,
        "shrinking {} ({} seed {}) while a {kind} anomaly remains",
        path.display(),
        plan.scenario.name,
        plan.seed
    )
}

/// Before and after shrinking while a `kind` anomaly remains, the shrunk schedule, and where
/// its artifact went.
pub fn shrunk(
    out: &mut impl Write,
    before: &Artifact,
    kind: AnomalyKind,
    shrunk: &Shrunk,
    written: &Path,
) -> fmt::Result {
    let before_ms = before.anomalies.iter().map(|a| a.at_ms).min();
    let after_ms = shrunk
        .outcome
        .anomalies
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.at_ms)
        .min();
    writeln!(
        out,
        "before: {} faults, first anomaly at {} ms; after: {} faults, {} simulated ms, first anomaly at {} ms ({} runs)",
        before.fault_schedule.len(),
        before_ms.unwrap_or(0),
        shrunk.plan.schedule.len(),
        shrunk.outcome.sim_ms,
        after_ms.unwrap_or(0),
        shrunk.runs
    )?;
    schedule(out, &shrunk.plan.schedule)?;
    writeln!(out, "wrote {}", written.display())?;
    writeln!(out, "replay with: {}", Artifact::replay_command(written))
}

/// `harness show`: an artifact for a person.
pub fn artifact(out: &mut impl Write, a: &Artifact, path: &Path) -> fmt::Result {
    let w = &a.scenario.workload;
    writeln!(
        out,
        "artifact {} (harness {})",
        path.display(),
        a.harness_version
    )?;
    writeln!(out, "scenario  {}: {}", a.scenario.name, a.scenario.purpose)?;
    writeln!(
        out,
        "workload  {} producers x {} payments, {} partitions, {} customers, a payment every {} ms, batches up to {}, {} ms of faults",
        w.producers, w.payments_per_producer, w.partitions, w.customers, w.payment_interval_ms, w.max_batch_records, w.duration_ms
    )?;
    writeln!(out, "seed      {}", a.seed)?;
    let bugs = bug_list(a.bugs.iter().copied().collect());
    writeln!(out, "bugs      {bugs}")?;
    schedule(out, &a.fault_schedule)?;
    if a.anomalies.is_empty() {
        writeln!(out, "no anomalies recorded")?;
    } else {
        anomalies(out, &a.anomalies)?;
    }
    writeln!(out, "trace_hash {}", a.trace_hash)?;
    writeln!(out, "replay with: {}", Artifact::replay_command(path))
}

/// One row of `harness bugs`, printed as soon as that bug's hunt ends.
pub fn bug_hunt(out: &mut impl Write, r: &BugReport) -> fmt::Result {
    writeln!(
        out,
        "{:<30} {:<9} {:<18} seed {:>5}  after {:>4} seeds  {:<20} {:>6} ms",
        r.bug,
        if r.detected { "detected" } else { "MISSED" },
        r.scenario,
        r.first_seed.map_or("-".to_string(), |s| s.to_string()),
        r.seeds_tried,
        r.anomaly.map_or("-".to_string(), |a| a.name()),
        r.wall_ms
    )
}

/// The closing line of `harness bugs`: the proof of power in one figure.
pub fn bug_hunt_summary(out: &mut impl Write, reports: &[BugReport]) -> fmt::Result {
    let mut tried: Vec<u64> = reports.iter().map(|r| r.seeds_tried).collect();
    tried.sort();
    let median = tried.get(tried.len() / 2).copied().unwrap_or(0);
    writeln!(
        out,
        "{} of {} planted bugs detected; median seeds tried {median}",
        reports.iter().filter(|r| r.detected).count(),
        reports.len()
    )
}

pub fn bench(out: &mut impl Write, report: &BenchReport, vs_real: Option<&VsReal>) -> fmt::Result {
    if let Some(v) = vs_real {
        // The verdicts quoted, as they read in the JSON report.
        writeln!(
            out,
            "vs real ({} seed 0, one run each): simulated {} ms wall (\"{}\"), real {} ms wall (\"{}\"): speedup {:.0}x",
            report.scenario,
            v.sim_wall_ms,
            verdict_name(v.sim_verdict),
            v.real_wall_ms,
            verdict_name(v.real_verdict),
            v.speedup
        )?;
    }
    writeln!(
        out,
        "bench {}: {} rounds of {} seeds on {} jobs (medians)",
        report.scenario,
        report.rounds.len(),
        report.seeds,
        report.jobs
    )?;
    writeln!(
        out,
        "  seeds/s                      {:>10.1}",
        report.seeds_per_sec
    )?;
    writeln!(
        out,
        "  simulated s per wall s       {:>10.1}",
        report.sim_seconds_per_wall_second
    )?;
    writeln!(
        out,
        "  events+messages per s        {:>10.0}",
        report.events_per_sec
    )?;
    let per_round: Vec<String> = report
        .rounds
        .iter()
        .map(|r| format!("{:.1}", r.seeds_per_sec))
        .collect();
    writeln!(out, "  rounds (seeds/s): {}", per_round.join(", "))?;
    if let Some(a) = &report.against {
        let rounds: Vec<String> = a.rounds.iter().map(|r| format!("{r:.1}")).collect();
        writeln!(out, "  against {}, alternating rounds:", a.scenario)?;
        writeln!(
            out,
            "    seeds/s                    {:>10.1}",
            a.seeds_per_sec
        )?;
        writeln!(
            out,
            "    ratio                      {:>10.3}  ({} seeds/s over {})",
            a.ratio, report.scenario, a.scenario
        )?;
        writeln!(out, "    rounds (seeds/s): {}", rounds.join(", "))?;
    }
    bench_floor(out, report)
}

/// The floor's lines of `harness bench --floor`: madsim's own speed for the same traffic, and
/// the harness's as a share of it.
fn bench_floor(out: &mut impl Write, report: &BenchReport) -> fmt::Result {
    let (Some(floor), Some(ratio)) = (report.floor_seeds_per_sec, report.floor_ratio) else {
        return Ok(());
    };
    let shape = report.rounds.iter().find_map(|r| r.floor.as_ref());
    if let Some(f) = shape {
        writeln!(
            out,
            "  floor: madsim alone, {} nodes, {} messages a seed, alternating rounds",
            f.nodes, f.messages_per_seed
        )?;
    }
    writeln!(out, "  floor seeds/s                {floor:>10.1}")?;
    writeln!(out, "  floor_ratio (harness/floor)  {ratio:>10.3}")?;
    let per_round: Vec<String> = report
        .rounds
        .iter()
        .filter_map(|r| r.floor.as_ref().map(|f| format!("{:.3}", f.floor_ratio)))
        .collect();
    writeln!(out, "  rounds (floor_ratio): {}", per_round.join(", "))
}

/// `harness list`.
pub fn scenarios(out: &mut impl Write, scenarios: &[Scenario]) -> fmt::Result {
    for s in scenarios {
        writeln!(out, "{:<20} {}", s.name, s.purpose)?;
    }
    Ok(())
}

/// `harness list --bugs`.
pub fn bug_catalogue(out: &mut impl Write) -> fmt::Result {
    for bug in Bug::ALL {
        writeln!(out, "{:<28} {}", bug.name(), bug.description())?;
    }
    Ok(())
}

/// `harness merge`: the whole sweep's totals and every failure with its replay command.
pub fn merge(out: &mut impl Write, merged: &MergeReport, reports: usize) -> fmt::Result {
    writeln!(
        out,
        "merged {reports} reports: {} seeds, {} passed, {} failed",
        merged.seeds_run, merged.passed, merged.failed
    )?;
    writeln!(out, "aggregate_hash {}", merged.aggregate_hash)?;
    for f in &merged.failures {
        writeln!(
            out,
            "FAIL {} seed {}: replay with: {}",
            f.scenario, f.seed, f.replay
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::{FailureReport, SCHEMA_VERSION};

    fn anomaly(kind: AnomalyKind, at_ms: u64) -> Anomaly {
        Anomaly::new(
            kind,
            Some("p-1-1"),
            at_ms * 1000,
            "applied 2 times".to_string(),
        )
    }

    #[test]
    fn bugs_read_none_or_their_names() {
        assert_eq!(bug_list(Bugs::NONE), "none");
        let two = Bugs::NONE.with(Bug::NoDedup).with(Bug::StoreNoDedup);
        assert_eq!(bug_list(two), "no-dedup, store-no-dedup");
    }

    #[test]
    fn an_empty_schedule_still_has_its_header() {
        assert_eq!(
            render(|out| schedule(out, &[])),
            "fault schedule (0 faults):\n      at     kind      target           duration\n"
        );
    }

    #[test]
    fn anomalies_are_counted_by_kind_and_cut_after_twelve() {
        let mut list = vec![anomaly(AnomalyKind::LostAck, 5)];
        list.extend((0..13).map(|i| anomaly(AnomalyKind::StoreDuplicate, 10 + i)));
        let text = render(|out| anomalies(out, &list));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "14 anomalies (1 lost-ack, 13 store-duplicate):");
        assert_eq!(
            lines[1],
            "  lost-ack                  5 ms  p-1-1: applied 2 times"
        );
        assert_eq!(lines.len(), 1 + 12 + 1);
        assert_eq!(lines[13], "  ... and 2 more");
    }

    #[test]
    fn a_merge_lists_every_failure_with_its_replay_command() {
        let merged = MergeReport {
            schema_version: SCHEMA_VERSION,
            seeds_run: 9,
            passed: 8,
            failed: 1,
            failures: vec![FailureReport {
                scenario: "standard".to_string(),
                seed: 4,
                anomalies: vec![anomaly(AnomalyKind::LostAck, 5)],
                artifact: "failures/standard-seed-4.json".to_string(),
                replay: "harness replay failures/standard-seed-4.json".to_string(),
            }],
            aggregate_hash: "ab".repeat(16),
        };
        assert_eq!(
            render(|out| merge(out, &merged, 3)),
            format!(
                "merged 3 reports: 9 seeds, 8 passed, 1 failed\naggregate_hash {}\n\
                 FAIL standard seed 4: replay with: harness replay failures/standard-seed-4.json\n",
                "ab".repeat(16)
            )
        );
    }
}
