//! Determinism is the product: the same seed gives the same trace hash in another process, with
//! any number of jobs; and the determinism check catches a planted source of nondeterminism.

use broker_under_test::Bugs;
use harness::explore::{sweep, Sweep};
use harness::scenario::Scenario;
use harness::sim::run;
use harness::world::RunPlan;
use std::process::Command;

fn harness(args: &[&str]) -> (i32, serde_json::Value) {
    // A failing explore writes artifacts under failures/: never into the source tree.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run the harness binary");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("an exit status"), json)
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_in_two_processes_and_in_process() {
    let (code_a, a) = harness(&["run", "--scenario", "standard", "--seed", "7", "--json"]);
    let (code_b, b) = harness(&["run", "--scenario", "standard", "--seed", "7", "--json"]);
    assert_eq!((code_a, code_b), (0, 0), "{a}");
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(a, b, "the whole outcome is reproducible, not only the hash");
    let here = run(&RunPlan::new(
        Scenario::resolve("standard").unwrap(),
        7,
        Bugs::NONE,
    ));
    assert_eq!(
        a["trace_hash"].as_str(),
        Some(here.trace_hash.to_string().as_str())
    );
    let (_, other) = harness(&["run", "--scenario", "standard", "--seed", "8", "--json"]);
    assert_ne!(
        a["trace_hash"], other["trace_hash"],
        "another seed is another run"
    );
}

#[test]
fn run_json_has_the_contracted_fields() {
    let (code, out) = harness(&[
        "run",
        "--scenario",
        "lossy-network",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    for field in [
        "scenario",
        "seed",
        "bugs",
        "verdict",
        "anomalies",
        "stats",
        "sim_ms",
        "trace_hash",
    ] {
        assert!(out.get(field).is_some(), "missing {field} in {out}");
    }
    for stat in [
        "payments",
        "log_records",
        "store_rows",
        "produce_requests",
        "retries",
        "dedup_hits",
        "broker_crashes",
        "producer_restarts",
        "consumer_restarts",
        "store_restarts",
        "messages_dropped",
        "unsynced_writes_lost",
    ] {
        assert!(
            out["stats"].get(stat).is_some(),
            "missing stats.{stat} in {out}"
        );
    }
    assert_eq!(out["verdict"], "pass");
    assert_eq!(out["stats"]["payments"], 300);
}

#[test]
fn the_aggregate_hash_does_not_depend_on_the_number_of_jobs() {
    let sweep_with = |jobs| {
        let s = Sweep {
            scenarios: vec![Scenario::resolve("standard").unwrap()],
            seeds: 0..8,
            shard: None,
            bugs: Bugs::NONE,
            jobs,
            keep_going: true,
            check_determinism: false,
            plant_nondeterminism: false,
            system: Default::default(),
        };
        sweep(&s, &|_, _| {})
    };
    let (one, two) = (sweep_with(1), sweep_with(2));
    assert_eq!((one.passed, two.passed), (8, 8));
    assert_eq!(one.aggregate_hash, two.aggregate_hash);
}

#[test]
fn stopping_at_the_first_failure_reports_the_same_whatever_the_jobs() {
    let sweep_with = |jobs| {
        let s = Sweep {
            scenarios: vec![Scenario::resolve("standard").unwrap()],
            seeds: 0..20,
            shard: None,
            bugs: Bugs::NONE.with(broker_under_test::Bug::StoreNoDedup),
            jobs,
            keep_going: false,
            check_determinism: false,
            plant_nondeterminism: false,
            system: Default::default(),
        };
        sweep(&s, &|_, _| {})
    };
    let (one, two) = (sweep_with(1), sweep_with(2));
    assert_eq!((one.seeds_run, one.failed), (two.seeds_run, two.failed));
    assert_eq!(one.failures[0].seed, two.failures[0].seed);
    assert_eq!(one.aggregate_hash, two.aggregate_hash);
}

#[test]
fn the_determinism_check_passes_a_deterministic_run_and_catches_a_planted_static() {
    let (code, out) = harness(&[
        "explore",
        "--seeds",
        "0..2",
        "--check-determinism",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["passed"], 2);

    let (code, out) = harness(&[
        "explore",
        "--seeds",
        "0..2",
        "--check-determinism",
        "--plant-nondeterminism",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let failure = &out["failures"][0];
    assert_eq!(failure["seed"], 0);
    let anomaly = failure["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "nondeterminism")
        .expect("a nondeterminism anomaly");
    let detail = anomaly["detail"].as_str().unwrap();
    assert!(
        detail.contains("seed 0") && detail.contains("planted-nondeterminism"),
        "{detail}"
    );
}
