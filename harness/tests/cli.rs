//! The command line as scripts and people use it: failure artifacts that replay, shrink and
//! show; sharded sweeps; and bad input that gets a message naming the problem and exit status 2.

use broker_under_test::Bug;
use harness::scenario::Scenario;
use std::path::Path;
use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harness(args: &[&str], dir: &Path) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run harness");
    Out {
        code: out.status.code().expect("exit status"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}{}", out.stdout, out.stderr))
}

// One user's session from sweep to show, in order; split, its steps would lose the artifact
// they pass along.
#[test]
fn a_failure_found_by_explore_replays_shrinks_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    let found = harness(
        &[
            "explore",
            "--bug",
            "store-no-dedup",
            "--seeds",
            "0..50",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(found.code, 1, "{}{}", found.stdout, found.stderr);
    let report = json(&found);
    let failure = &report["failures"][0];
    let artifact = failure["artifact"].as_str().unwrap();
    assert_eq!(failure["replay"], format!("harness replay {artifact}"));
    assert!(dir.path().join(artifact).exists());

    let replayed = harness(&["replay", artifact, "--json"], dir.path());
    assert_eq!(replayed.code, 1, "a reproduced failure exits 1");
    let replayed = json(&replayed);
    assert_eq!(replayed["reproduced"], true);
    assert_eq!(replayed["same_trace_hash"], true);
    assert_eq!(replayed["anomalies"], failure["anomalies"]);

    let shrunk_path = dir.path().join("small.json");
    let shrunk = harness(
        &["shrink", artifact, "--out", shrunk_path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(shrunk.code, 0, "{}{}", shrunk.stdout, shrunk.stderr);
    assert!(
        shrunk.stdout.contains("before:") && shrunk.stdout.contains("after:"),
        "{}",
        shrunk.stdout
    );
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(artifact)).unwrap()).unwrap();
    let small: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shrunk_path).unwrap()).unwrap();
    let faults = |a: &serde_json::Value| a["fault_schedule"].as_array().unwrap().len();
    assert!(
        faults(&small) < faults(&original),
        "{} faults, was {}",
        faults(&small),
        faults(&original)
    );
    let kind = &original["anomalies"][0]["kind"];
    assert!(small["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| &a["kind"] == kind));
    let again = harness(
        &["replay", shrunk_path.to_str().unwrap(), "--json"],
        dir.path(),
    );
    assert_eq!(again.code, 1);
    assert_eq!(
        json(&again)["same_trace_hash"],
        true,
        "the shrunk artifact replays exactly"
    );

    let shown = harness(&["show", artifact], dir.path());
    assert_eq!(shown.code, 0);
    for part in [
        "scenario  standard",
        "seed",
        "bugs      store-no-dedup",
        "fault schedule",
        "store-duplicate",
        "replay with",
    ] {
        assert!(
            shown.stdout.contains(part),
            "show lacks {part:?}:\n{}",
            shown.stdout
        );
    }
}

#[test]
fn run_writes_a_trace_and_an_artifact_and_a_passing_artifact_replays_as_no_longer_failing() {
    let dir = tempfile::tempdir().unwrap();
    let ran = harness(
        &[
            "run",
            "--scenario",
            "standard",
            "--seed",
            "4",
            "--trace",
            "t.jsonl",
            "--artifact",
            "a.json",
        ],
        dir.path(),
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("fault schedule"),
        "the plan is printed: {}",
        ran.stdout
    );
    let trace = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    assert!(trace.lines().count() > 100);
    assert!(trace
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let replayed = harness(&["replay", "a.json"], dir.path());
    assert_eq!(replayed.code, 0);
    assert!(
        replayed.stdout.contains("no longer fails"),
        "{}",
        replayed.stdout
    );
}

/// `--trace` and `--html` are written like artifacts: into a temporary file beside the output,
/// then renamed over it. A rename replaces whatever was at the path, a link included; a plain
/// create-and-write would write through the link into the file it points to.
#[test]
fn trace_and_html_outputs_are_replaced_atomically_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = ["run", "--scenario", "consumer-restarts", "--seed", "0"];
    let ran = harness(
        &[
            &artifact[..],
            &["--bug", "store-no-dedup", "--artifact", "a.json"],
        ]
        .concat(),
        dir.path(),
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    for (name, precious) in [("t.jsonl", "kept-t"), ("p.html", "kept-p")] {
        std::fs::write(dir.path().join(precious), "precious").unwrap();
        std::os::unix::fs::symlink(precious, dir.path().join(name)).unwrap();
    }
    let replayed = harness(
        &["replay", "a.json", "--trace", "t.jsonl", "--html", "p.html"],
        dir.path(),
    );
    assert_eq!(replayed.code, 1, "{}{}", replayed.stdout, replayed.stderr);
    for precious in ["kept-t", "kept-p"] {
        let kept = std::fs::read_to_string(dir.path().join(precious)).unwrap();
        assert_eq!(kept, "precious", "{precious} was written through its link");
    }
    let trace = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    assert!(trace.ends_with('\n') && trace.lines().count() > 100);
    assert!(trace
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let page = std::fs::read_to_string(dir.path().join("p.html")).unwrap();
    assert!(page.trim_end().ends_with("</html>"), "a whole page");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a.json", "kept-p", "kept-t", "p.html", "t.jsonl"],
        "no temporary file is left behind"
    );
}

#[test]
fn a_scenario_file_is_reproduced_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let standard = include_str!("../../scenarios/standard.toml")
        .replace("name = \"standard\"", "name = \"my-scenario\"");
    std::fs::write(dir.path().join("mine.toml"), standard).unwrap();
    let ran = harness(
        &[
            "run",
            "--scenario",
            "mine.toml",
            "--seed",
            "0",
            "--bug",
            "store-no-dedup",
        ],
        dir.path(),
    );
    assert_eq!(ran.code, 1);
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("reproduce with:"))
        .expect("a reproduce line");
    assert_eq!(
        line,
        "reproduce with: harness run --scenario mine.toml --seed 0 --bug store-no-dedup"
    );
}

#[test]
fn a_failing_run_prints_a_timeline_before_its_first_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let ran = harness(
        &[
            "run",
            "--scenario",
            "standard",
            "--seed",
            "0",
            "--bug",
            "store-no-dedup",
        ],
        dir.path(),
    );
    assert_eq!(ran.code, 1);
    assert!(
        ran.stdout.contains("timeline before the first anomaly"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(
            "reproduce with: harness run --scenario standard --seed 0 --bug store-no-dedup"
        ),
        "{}",
        ran.stdout
    );
}

#[test]
fn shards_cover_the_range_once_and_their_aggregates_merge_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |extra: &[&str]| {
        let mut args = vec!["explore", "--seeds", "0..9", "--json", "--jobs", "2"];
        args.extend_from_slice(extra);
        let out = harness(&args, dir.path());
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        json(&out)
    };
    let whole = sweep(&[]);
    let shards: Vec<_> = (1..=3)
        .map(|k| sweep(&["--shard", &format!("{k}/3")]))
        .collect();
    assert_eq!(
        shards
            .iter()
            .map(|s| s["seeds_run"].as_u64().unwrap())
            .sum::<u64>(),
        9
    );
    let merged = shards.iter().fold(0u128, |acc, s| {
        acc ^ u128::from_str_radix(s["aggregate_hash"].as_str().unwrap(), 16).unwrap()
    });
    assert_eq!(
        format!("{merged:032x}"),
        whole["aggregate_hash"].as_str().unwrap()
    );
    for (k, shard) in shards.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("shard-{k}.json")),
            shard.to_string(),
        )
        .unwrap();
    }
    let merged_cli = harness(
        &[
            "merge",
            "shard-0.json",
            "shard-1.json",
            "shard-2.json",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(merged_cli.code, 0, "{}", merged_cli.stderr);
    let merged_cli = json(&merged_cli);
    assert_eq!(merged_cli["aggregate_hash"], whole["aggregate_hash"]);
    assert_eq!(merged_cli["seeds_run"], 9);
    assert_eq!(whole["schema_version"], 1);
    assert_eq!(merged_cli["schema_version"], 1);
    let one_job = harness(
        &["explore", "--seeds", "0..9", "--json", "--jobs", "1"],
        dir.path(),
    );
    assert_eq!(json(&one_job)["aggregate_hash"], whole["aggregate_hash"]);
}

#[test]
fn help_and_list_name_the_catalogue_scenarios_and_the_planted_bugs() {
    let dir = tempfile::tempdir().unwrap();
    let help = harness(&["explore", "--help"], dir.path());
    assert_eq!(help.code, 0);
    let scenarios: Vec<String> = Scenario::catalogue().into_iter().map(|s| s.name).collect();
    let bugs: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
    for name in scenarios
        .iter()
        .map(String::as_str)
        .chain(bugs.iter().copied())
    {
        assert!(help.stdout.contains(name), "explore --help lacks {name}");
    }
    let names = |args: &[&str], field: &str| -> Vec<String> {
        let listed = json(&harness(args, dir.path()));
        let listed = listed.as_array().expect("a list");
        assert!(listed.iter().all(|e| e["schema_version"] == 1));
        listed
            .iter()
            .map(|e| e[field].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&["list", "--json"], "scenario"), scenarios);
    assert_eq!(names(&["list", "--bugs", "--json"], "bug"), bugs);
}

/// Bad input: a message that names the problem, exit status 2, never a panic.
fn rejects(args: &[&str], dir: &Path, names: &str) {
    let out = harness(args, dir);
    assert_eq!(
        out.code, 2,
        "{args:?} exited {}: {}{}",
        out.code, out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(names),
        "{args:?}: the message should name {names:?}: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{args:?} panicked: {}",
        out.stderr
    );
}

// A table of bad inputs, a line each: its length is the number of cases, not of steps.
#[test]
fn bad_input_is_named_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rejects(
        &["run", "--scenario", "nope", "--seed", "1"],
        d,
        "unknown scenario 'nope'",
    );
    rejects(
        &["explore", "--scenario", "nope"],
        d,
        "unknown scenario 'nope'",
    );
    rejects(
        &[
            "run",
            "--scenario",
            "standard",
            "--seed",
            "1",
            "--bug",
            "no-such-bug",
        ],
        d,
        "no-such-bug",
    );
    rejects(&["explore", "--seeds", "5..1"], d, "5..1");
    rejects(&["explore", "--seeds", "x..y"], d, "'x'");
    rejects(&["explore", "--seeds", "12"], d, "'12' is not a seed range");
    rejects(
        &["explore", "--shard", "4/3"],
        d,
        "shard 4/3 is out of range",
    );
    rejects(
        &["explore", "--shard", "0/3"],
        d,
        "shard 0/3 is out of range",
    );
    rejects(&["explore", "--jobs", "0"], d, "--jobs");
    rejects(&["run", "--scenario", "standard", "--seed", "-3"], d, "-3");

    std::fs::write(
        d.join("bad.toml"),
        "name = \"bad\"\npurpose = \"x\"\n[workload]\nproducers = 0\n",
    )
    .unwrap();
    rejects(
        &["run", "--scenario", "bad.toml", "--seed", "1"],
        d,
        "bad.toml",
    );
    std::fs::write(
        d.join("zero.toml"),
        include_str!("../../scenarios/standard.toml").replace("producers = 3", "producers = 0"),
    )
    .unwrap();
    rejects(
        &["run", "--scenario", "zero.toml", "--seed", "1"],
        d,
        "workload.producers",
    );

    rejects(
        &["replay", "missing.json"],
        d,
        "cannot read artifact missing.json",
    );
    rejects(&["show", "missing.json"], d, "missing.json");
    let ran = harness(
        &[
            "run",
            "--scenario",
            "standard",
            "--seed",
            "2",
            "--artifact",
            "good.json",
        ],
        d,
    );
    assert_eq!(ran.code, 0);
    let good = std::fs::read_to_string(d.join("good.json")).unwrap();
    std::fs::write(d.join("truncated.json"), &good[..good.len() / 2]).unwrap();
    rejects(
        &["replay", "truncated.json"],
        d,
        "truncated.json is not a valid artifact",
    );
    rejects(&["shrink", "truncated.json"], d, "truncated.json");
    std::fs::write(
        d.join("target.json"),
        good.replacen("\"target\": \"broker\"", "\"target\": \"mainframe\"", 1)
            .replacen("\"target\": \"store\"", "\"target\": \"mainframe\"", 1),
    )
    .unwrap();
    rejects(&["replay", "target.json"], d, "unknown target 'mainframe'");
    std::fs::write(
        d.join("bug.json"),
        good.replacen("\"bugs\": []", "\"bugs\": [\"imaginary\"]", 1),
    )
    .unwrap();
    rejects(&["replay", "bug.json"], d, "imaginary");
    std::fs::write(d.join("garbage.json"), "\u{0}\u{1}not json at all").unwrap();
    rejects(
        &["show", "garbage.json"],
        d,
        "garbage.json is not a valid artifact",
    );
    rejects(
        &["merge", "garbage.json"],
        d,
        "garbage.json is not explore --json output",
    );
    let shard = harness(
        &["explore", "--seeds", "0..3", "--shard", "1/2", "--json"],
        d,
    );
    std::fs::write(d.join("shard.json"), &shard.stdout).unwrap();
    rejects(
        &["merge", "shard.json", "shard.json"],
        d,
        "overlaps another report",
    );
    let standard = include_str!("../../scenarios/standard.toml");
    std::fs::write(
        d.join("escape.toml"),
        standard.replace("name = \"standard\"", "name = \"../../escaped\""),
    )
    .unwrap();
    rejects(
        &["explore", "--scenario", "escape.toml", "--seeds", "0..1"],
        d,
        "name must be letters",
    );
    std::fs::write(
        d.join("long.toml"),
        standard.replace("duration_ms = 1000", "duration_ms = 18446744073709551615"),
    )
    .unwrap();
    rejects(
        &["run", "--scenario", "long.toml", "--seed", "1"],
        d,
        "workload.duration_ms",
    );
    std::fs::write(
        d.join("many.toml"),
        standard.replace(
            "store_crash = { count = [1, 1]",
            "store_crash = { count = [4000000000, 4000000000]",
        ),
    )
    .unwrap();
    rejects(
        &["run", "--scenario", "many.toml", "--seed", "1"],
        d,
        "faults.store_crash.count",
    );
    rejects(
        &["merge", "good.json"],
        d,
        "good.json is not a valid explore --json report",
    );
    let other = harness(
        &["explore", "--seeds", "0..4", "--shard", "2/2", "--json"],
        d,
    );
    std::fs::write(d.join("other.json"), &other.stdout).unwrap();
    rejects(
        &["merge", "shard.json", "other.json"],
        d,
        "not a shard of the same sweep as shard.json: its seed range differs",
    );
    // Nothing already recorded is lost: the good artifact is untouched by the failed commands.
    assert_eq!(std::fs::read_to_string(d.join("good.json")).unwrap(), good);
}

#[test]
fn no_output_overwrites_the_input_artifact_and_commands_are_shell_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sub = d.join("a dir");
    std::fs::create_dir(&sub).unwrap();
    let made = harness(
        &[
            "run",
            "--scenario",
            "standard",
            "--seed",
            "0",
            "--bug",
            "store-no-dedup",
            "--artifact",
            "a dir/it's.json",
        ],
        d,
    );
    assert_eq!(made.code, 1, "{}", made.stderr);
    assert!(
        made.stdout.contains(r"harness replay 'a dir/it'\''s.json'"),
        "{}",
        made.stdout
    );
    let artifact = sub.join("it's.json");
    let before = std::fs::read_to_string(&artifact).unwrap();
    let path = "a dir/it's.json";
    rejects(
        &["replay", path, "--trace", path],
        d,
        "is the input artifact",
    );
    rejects(
        &["replay", path, "--html", path],
        d,
        "is the input artifact",
    );
    rejects(&["shrink", path, "--out", path], d, "is the input artifact");
    rejects(
        &["explore", "--failures", path],
        d,
        "cannot write failures into",
    );
    assert_eq!(std::fs::read_to_string(&artifact).unwrap(), before);
    // Control characters from a file reach the terminal escaped.
    let evil = before.replacen("\"detail\": \"", "\"detail\": \"\\u001b[2J", 1);
    std::fs::write(d.join("evil.json"), evil).unwrap();
    let shown = harness(&["show", "evil.json"], d);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(!shown.stdout.contains('\u{1b}') && shown.stdout.contains(r"\u{1b}[2J"));
}

#[test]
fn bench_floor_reports_the_ratio_to_madsims_own_floor_for_the_same_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(
        &[
            "bench", "--floor", "--seeds", "4", "--rounds", "2", "--jobs", "2", "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    let ratio = report["floor_ratio"].as_f64().expect("floor_ratio");
    assert!(ratio > 0.0 && ratio.is_finite(), "{report}");
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    for round in rounds {
        let floor = &round["floor"];
        // The floor carries the round's own traffic: the standard scenario's six nodes and
        // its mean messages per seed, which are many.
        assert_eq!(floor["nodes"], 6, "{round}");
        assert!(
            floor["messages_per_seed"].as_u64().unwrap() > 100,
            "{round}"
        );
        let per_round =
            round["seeds_per_sec"].as_f64().unwrap() / floor["seeds_per_sec"].as_f64().unwrap();
        assert!((per_round - floor["floor_ratio"].as_f64().unwrap()).abs() < 1e-9);
    }
    let plain = harness(
        &["bench", "--seeds", "2", "--rounds", "1", "--json"],
        dir.path(),
    );
    assert!(
        json(&plain).get("floor_ratio").is_none(),
        "no floor unless asked"
    );
}
