//! The `--keep-going` memory bound, measured: a sweep with ten times the failing seeds peaks at
//! about the same resident memory, because the sweep folds each run as it finishes and keeps only
//! a small summary per failure (it used to keep every run's history: 2.3 GB for 2,000 failures).
//! Measured on the text report: a `--json` report builds its whole document in memory.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

/// A small workload whose consumer restarts three or four times: with `store-no-dedup` nearly
/// every seed re-delivers a payment the store applies twice.
const SCENARIO: &str = r#"
name = "memory-probe"
purpose = "a small workload whose consumer restarts often, for the keep-going memory test"

[workload]
producers = 1
payments_per_producer = 10
partitions = 1
customers = 4
payment_interval_ms = 5
max_batch_records = 8
duration_ms = 200

[faults]
consumer_crash = { count = [3, 4], down_ms = [5, 20] }
"#;

/// How much more a sweep over ten times the seeds (and failures) may peak at. Measured on
/// 200 vs 2,000 seeds: +1.4 MB with the fold (most of it the failures' summaries), +4.3 MB
/// when the sweep kept every run's result.
const GROWTH_BOUND_KB: i64 = 3 * 1024;

/// Runs a `--keep-going` sweep over `seeds` seeds in a child process and returns its failed
/// count and peak resident memory in KB, read with wait4(2).
/// The child is reaped by wait4, which `Child::wait` cannot replace (it returns no rusage).
#[allow(clippy::zombie_processes)]
fn sweep(dir: &Path, seeds: u64) -> (u64, i64) {
    let failures = dir.join(format!("failures-{seeds}"));
    let out_path = dir.join(format!("report-{seeds}.txt"));
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["explore", "--scenario"])
        .arg(dir.join("memory-probe.toml"))
        .args(["--bug", "store-no-dedup", "--keep-going", "--jobs", "2"])
        .args(["--seeds", &format!("0..{seeds}"), "--failures"])
        .arg(&failures)
        .current_dir(dir)
        .stdout(File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on the child we started, by its id, with valid out-pointers; the `Child`
    // is never waited on again.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1,
        "the sweep over {seeds} seeds should exit 1 (failures found), status {status}"
    );
    // "explore memory-probe seeds 0..N (bugs: ...), 2 jobs: P passed, F failed in ..."
    let report = std::fs::read_to_string(&out_path).unwrap();
    let counts = report.lines().next().and_then(|l| l.split_once(" jobs: "));
    let words: Vec<&str> = counts.map_or(vec![], |(_, c)| c.split_whitespace().collect());
    let (Some(passed), Some(failed)) = (
        words.first().and_then(|w| w.parse::<u64>().ok()),
        words.get(2).and_then(|w| w.parse::<u64>().ok()),
    ) else {
        panic!("no counts in the report: {report}");
    };
    assert_eq!(passed + failed, seeds, "{report}");
    assert_eq!(
        std::fs::read_dir(&failures).unwrap().count() as u64,
        failed,
        "one artifact per failing seed"
    );
    // ru_maxrss is in kilobytes on Linux.
    (failed, usage.ru_maxrss)
}

#[test]
fn keep_going_memory_stays_flat_in_the_number_of_failures() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("memory-probe.toml"), SCENARIO).unwrap();
    let (small_failed, small_kb) = sweep(dir.path(), 200);
    let (large_failed, large_kb) = sweep(dir.path(), 2000);
    eprintln!(
        "200 seeds: {small_failed} failed, peak {small_kb} KB; \
         2000 seeds: {large_failed} failed, peak {large_kb} KB"
    );
    assert!(
        large_failed >= 1500 && large_failed >= 8 * small_failed,
        "the planted bug should fail most seeds: {small_failed} then {large_failed} failures"
    );
    assert!(
        large_kb - small_kb < GROWTH_BOUND_KB,
        "{large_failed} failures peaked at {large_kb} KB, {small_failed} at {small_kb} KB: \
         more than {GROWTH_BOUND_KB} KB of growth"
    );
}
