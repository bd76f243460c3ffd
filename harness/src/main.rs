//! The `harness` command line: list scenarios and bugs, run one seed, explore many, and replay,
//! shrink and show failure artifacts.
//!
//! Exit status, for every subcommand: 0 success; 1 an invariant was violated (`replay`: the
//! failure reproduced); 2 bad usage or bad input; 3 an internal error of the harness.

use broker_under_test::{Bug, Bugs};
use clap::{Parser, Subcommand};
use harness::artifact::Artifact;
use harness::checker::Anomaly;
use harness::explore::{merge_aggregates, probe_table, sweep, Sweep, SweepReport};
use harness::run::{run, RunOutcome, RunPlan};
use harness::scenario::Scenario;
use harness::{shrink, timeline};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Deterministic fault injection for exactly-once payment pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the scenarios with their purpose (or, with --bugs, the planted bugs).
    List {
        #[arg(long)]
        bugs: bool,
        #[arg(long)]
        json: bool,
    },
    /// Runs one seed of one scenario and judges it.
    Run {
        /// A catalogue name or a path to a scenario file.
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// A planted bug to switch on (repeatable).
        #[arg(long = "bug")]
        bugs: Vec<Bug>,
        #[arg(long)]
        json: bool,
        /// Writes the full history as JSON lines to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Writes the run's failure artifact (scenario, seed, bugs, schedule, anomalies) to FILE.
        #[arg(long, value_name = "FILE")]
        artifact: Option<PathBuf>,
        /// Writes a self-contained HTML timeline of the run to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Sweeps a range of seeds over one scenario or all of them.
    Explore {
        /// A catalogue name, a path to a scenario file, or `all`.
        #[arg(long, default_value = "standard")]
        scenario: String,
        /// A half-open range A..B.
        #[arg(long, default_value = "0..1000", value_parser = parse_seeds)]
        seeds: Range<u64>,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// K/N, 1-based: only the seeds whose index in the range is K-1 modulo N.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(u64, u64)>,
        #[arg(long = "bug")]
        bugs: Vec<Bug>,
        /// Runs the whole range instead of stopping at the first failure.
        #[arg(long)]
        keep_going: bool,
        /// Where failure artifacts are written.
        #[arg(long, default_value = "failures", value_name = "DIR")]
        failures: PathBuf,
        /// Runs every seed twice in separate runtimes and compares trace hashes.
        #[arg(long)]
        check_determinism: bool,
        #[arg(long)]
        json: bool,
        /// The determinism check's self-test: writes a process-wide counter into the trace.
        #[arg(long, hide = true)]
        plant_nondeterminism: bool,
    },
    /// Re-runs a failure artifact's exact schedule and says whether it still fails the same way.
    Replay {
        artifact: PathBuf,
        #[arg(long)]
        json: bool,
        /// Writes the full history as JSON lines to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Writes a self-contained HTML timeline of the run to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Minimises a failure artifact's fault schedule while an anomaly of the same kind remains.
    Shrink {
        artifact: PathBuf,
        /// Where to write the shrunk artifact (default: next to the input, `.shrunk.json`).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Prints a failure artifact for a person: scenario, seed, bugs, fault schedule, anomalies.
    Show { artifact: PathBuf },
    /// Hunts every planted bug through the scenarios meant to expose it; exits 1 if one hides.
    Bugs {
        /// The most seeds tried per scenario.
        #[arg(long, default_value_t = 200)]
        max_seeds: u64,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Measures exploration speed: seeds per second on all cores (median of rounds), simulated
    /// seconds per wall second, events per second.
    Bench {
        #[arg(long, default_value = "standard")]
        scenario: String,
        /// Seeds per round.
        #[arg(long, default_value_t = 400)]
        seeds: u64,
        /// Also runs one seed for real (see `real`) and reports the simulation's speedup.
        #[arg(long)]
        vs_real: bool,
        #[arg(long, default_value = "target/real/release/node", value_name = "PATH")]
        node_bin: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Runs the scenario for real: the same broker code as processes on loopback (the `node`
    /// binary), SIGKILLed and restarted in real time, judged by the same checker.
    Real {
        #[arg(long, default_value = "broker-crash-loop")]
        scenario: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long = "bug")]
        bugs: Vec<Bug>,
        /// The node binary built without the simulation.
        #[arg(long, default_value = "target/real/release/node", value_name = "PATH")]
        node_bin: PathBuf,
        /// Where the nodes' data and events go (default: a fresh temporary directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Merges the `explore --json` reports of disjoint shards into the whole sweep's totals and
    /// aggregate hash; exits 1 if any shard failed.
    Merge {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a seed range A..B (e.g. 0..1000)"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' in '{s}' is not a seed (a whole number)"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' in '{s}' is not a seed (a whole number)"))?;
    if a >= b {
        return Err(format!(
            "seed range {s} is empty: A..B is half-open and needs A < B"
        ));
    }
    Ok(a..b)
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}' is not a shard K/N (e.g. 1/4)"))?;
    let k: u64 = k
        .parse()
        .map_err(|_| format!("shard '{s}': K is not a whole number"))?;
    let n: u64 = n
        .parse()
        .map_err(|_| format!("shard '{s}': N is not a whole number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {s} is out of range: K/N needs 1 <= K <= N"));
    }
    Ok((k, n))
}

/// A failure of the command itself, with its exit status.
enum Failure {
    BadInput(String),
    Internal(String),
}

fn main() -> ExitCode {
    // Like any Unix filter: when the reader goes away (`harness explore | head`), stop quietly
    // instead of panicking on a broken pipe. Rust ignores SIGPIPE by default.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Node logs are for a person chasing a run; off unless RUST_LOG asks. They go to stderr and
    // never into the history, so they change no trace hash.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(Failure::BadInput(message)) => {
            eprintln!("harness: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Internal(message)) => {
            eprintln!("harness: internal error: {message}");
            ExitCode::from(3)
        }
    }
}

fn bad(e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(internal)?;
    println!("{text}");
    Ok(())
}

fn verdict_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn dispatch(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::List { bugs, json } => list(bugs, json),
        Command::Run {
            scenario,
            seed,
            bugs,
            json,
            trace,
            artifact,
            html,
        } => {
            let resolved = Scenario::resolve(&scenario).map_err(bad)?;
            let mut plan = RunPlan::new(resolved, seed, bugs.iter().copied().collect());
            plan.record_messages = html.is_some();
            plan.scenario_arg = scenario;
            if !json {
                print_plan(&plan);
            }
            let outcome = run(&plan);
            if let Some(path) = &trace {
                write_trace(path, &outcome)?;
            }
            if let Some(path) = &artifact {
                Artifact::new(&plan, &outcome).save(path).map_err(bad)?;
            }
            if let Some(path) = &html {
                let replay = match &artifact {
                    Some(a) => Artifact::replay_command(a),
                    None => plan.replay_command(),
                };
                write_html(path, &plan, &outcome, &replay)?;
            }
            if json {
                print_json(&serde_json::to_value(&outcome).map_err(internal)?)?;
            } else {
                print_outcome(&outcome);
                if !outcome.passed() {
                    match &artifact {
                        Some(path) => println!("replay with: {}", Artifact::replay_command(path)),
                        None => println!("reproduce with: {}", plan.replay_command()),
                    }
                }
            }
            Ok(verdict_code(outcome.passed()))
        }
        Command::Explore {
            scenario,
            seeds,
            jobs,
            shard,
            bugs,
            keep_going,
            failures,
            check_determinism,
            json,
            plant_nondeterminism,
        } => {
            let scenarios = if scenario == "all" {
                Scenario::catalogue()
            } else {
                vec![Scenario::resolve(&scenario).map_err(bad)?]
            };
            let jobs = jobs_or_cores(jobs)?;
            let bugs: Bugs = bugs.iter().copied().collect();
            let s = Sweep {
                scenarios,
                seeds,
                shard,
                bugs,
                jobs,
                keep_going,
                check_determinism,
                plant_nondeterminism,
            };
            explore(&s, &failures, json)
        }
        Command::Replay {
            artifact,
            json,
            trace,
            html,
        } => replay(&artifact, json, trace.as_deref(), html.as_deref()),
        Command::Shrink { artifact, out } => shrink_artifact(&artifact, out),
        Command::Merge { reports, json } => merge(&reports, json),
        Command::Bugs {
            max_seeds,
            jobs,
            json,
        } => {
            if max_seeds == 0 {
                return Err(bad("--max-seeds must be at least 1"));
            }
            bugs(max_seeds, jobs_or_cores(jobs)?, json)
        }
        Command::Real {
            scenario,
            seed,
            bugs,
            node_bin,
            dir,
            json,
        } => {
            let scenario = Scenario::resolve(&scenario).map_err(bad)?;
            let plan = RunPlan::new(scenario, seed, bugs.iter().copied().collect());
            let (outcome, wall) = run_real(&plan, &node_bin, dir)?;
            let in_flight_kills =
                harness::real::broker_kills_with_produces_in_flight(&outcome.history);
            if json {
                let mut value = serde_json::to_value(&outcome).map_err(internal)?;
                value["broker_kills_with_produces_in_flight"] = json!(in_flight_kills);
                value["wall_ms"] = json!(wall.as_millis() as u64);
                print_json(&value)?;
            } else {
                println!(
                    "real {} seed {} (bugs: {}) on loopback processes, {} ms wall (times below are wall-clock ms)",
                    plan.scenario.name,
                    plan.seed,
                    bug_list(plan.bugs),
                    wall.as_millis()
                );
                println!(
                    "{} broker SIGKILLs, {in_flight_kills} of them with produces in flight",
                    outcome.stats.broker_crashes
                );
                print_outcome(&outcome);
            }
            Ok(verdict_code(outcome.passed()))
        }
        Command::Bench {
            scenario,
            seeds,
            rounds,
            jobs,
            json,
            vs_real,
            node_bin,
        } => {
            let scenario = Scenario::resolve(&scenario).map_err(bad)?;
            if seeds == 0 || rounds == 0 {
                return Err(bad("--seeds and --rounds must be at least 1"));
            }
            let report = harness::bench::bench(&scenario, seeds, rounds, jobs_or_cores(jobs)?);
            let versus = if vs_real {
                Some(vs_real_report(&scenario, &node_bin)?)
            } else {
                None
            };
            if json {
                let mut value = serde_json::to_value(&report).map_err(internal)?;
                if let Some(v) = versus {
                    value["vs_real"] = v;
                }
                print_json(&value)?;
            } else {
                if let Some(v) = &versus {
                    println!(
                        "vs real ({} seed 0, one run each): simulated {} ms wall ({}), real {} ms wall ({}): speedup {:.0}x",
                        report.scenario, v["sim_wall_ms"], v["sim_verdict"], v["real_wall_ms"], v["real_verdict"], v["speedup"].as_f64().unwrap_or(0.0)
                    );
                }
                println!(
                    "bench {}: {} rounds of {} seeds on {} jobs (medians)",
                    report.scenario,
                    report.rounds.len(),
                    report.seeds,
                    report.jobs
                );
                println!(
                    "  seeds/s                      {:>10.1}",
                    report.seeds_per_sec
                );
                println!(
                    "  simulated s per wall s       {:>10.1}",
                    report.sim_seconds_per_wall_second
                );
                println!(
                    "  events+messages per s        {:>10.0}",
                    report.events_per_sec
                );
                let per_round: Vec<String> = report
                    .rounds
                    .iter()
                    .map(|r| format!("{:.1}", r.seeds_per_sec))
                    .collect();
                println!("  rounds (seeds/s): {}", per_round.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { artifact } => {
            let a = Artifact::load(&artifact).map_err(bad)?;
            show(&a, &artifact);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `plan` for real in `dir` (or a fresh temporary directory); returns the outcome and
/// the wall time it took.
fn run_real(
    plan: &RunPlan,
    node_bin: &Path,
    dir: Option<PathBuf>,
) -> Result<(RunOutcome, std::time::Duration), Failure> {
    let temp;
    let dir = match dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().map_err(internal)?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    let started = std::time::Instant::now();
    let outcome = harness::real::run_real(plan, node_bin, &dir).map_err(bad)?;
    Ok((outcome, started.elapsed()))
}

/// The same scenario and payments, simulated and real, side by side.
fn vs_real_report(scenario: &Scenario, node_bin: &Path) -> Result<serde_json::Value, Failure> {
    let plan = RunPlan::new(scenario.clone(), 0, Bugs::NONE);
    let started = std::time::Instant::now();
    let simulated = run(&plan);
    let sim_wall = started.elapsed();
    let (real, real_wall) = run_real(&plan, node_bin, None)?;
    let verdict = |o: &RunOutcome| if o.passed() { "pass" } else { "fail" };
    Ok(json!({
        "sim_wall_ms": sim_wall.as_millis() as u64,
        "sim_verdict": verdict(&simulated),
        "real_wall_ms": real_wall.as_millis() as u64,
        "real_verdict": verdict(&real),
        "speedup": real_wall.as_secs_f64() / sim_wall.as_secs_f64().max(1e-9),
    }))
}

fn jobs_or_cores(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(0) => Err(bad("--jobs must be at least 1")),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

fn bugs(max_seeds: u64, jobs: usize, json: bool) -> Result<ExitCode, Failure> {
    let mut reports = Vec::new();
    for bug in Bug::ALL {
        let report = harness::hunt::hunt(bug, max_seeds, jobs);
        if !json {
            println!(
                "{:<30} {:<9} {:<18} seed {:>5}  after {:>4} seeds  {:<20} {:>6} ms",
                report.bug,
                if report.detected {
                    "detected"
                } else {
                    "MISSED"
                },
                report.scenario,
                report.first_seed.map_or("-".to_string(), |s| s.to_string()),
                report.seeds_tried,
                report.anomaly.map_or("-".to_string(), |a| a.name()),
                report.wall_ms
            );
        }
        reports.push(report);
    }
    let all = reports.iter().all(|r| r.detected);
    if json {
        print_json(&serde_json::to_value(&reports).map_err(internal)?)?;
    } else {
        let mut tried: Vec<u64> = reports.iter().map(|r| r.seeds_tried).collect();
        tried.sort();
        let median = tried[tried.len() / 2];
        println!(
            "{} of {} planted bugs detected; median seeds tried {median}",
            reports.iter().filter(|r| r.detected).count(),
            reports.len()
        );
    }
    Ok(verdict_code(all))
}

fn list(bugs: bool, json: bool) -> Result<ExitCode, Failure> {
    if bugs {
        if json {
            let list: Vec<_> = Bug::ALL
                .iter()
                .map(|b| json!({"bug": b.name(), "description": b.description()}))
                .collect();
            print_json(&json!(list))?;
        } else {
            for bug in Bug::ALL {
                println!("{:<28} {}", bug.name(), bug.description());
            }
        }
    } else {
        let all = Scenario::catalogue();
        if json {
            let list: Vec<_> = all
                .iter()
                .map(|s| json!({"scenario": s.name, "purpose": s.purpose}))
                .collect();
            print_json(&json!(list))?;
        } else {
            for s in all {
                println!("{:<20} {}", s.name, s.purpose);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &RunPlan) {
    let w = &plan.scenario.workload;
    println!(
        "run {} seed {} (bugs: {}): {} producers x {} payments over {} partitions, {} ms of faults",
        plan.scenario.name,
        plan.seed,
        bug_list(plan.bugs),
        w.producers,
        w.payments_per_producer,
        w.partitions,
        w.duration_ms
    );
    print_schedule(&plan.schedule);
}

fn print_schedule(schedule: &[harness::faults::FaultEntry]) {
    println!("fault schedule ({} faults):", schedule.len());
    println!(
        "  {:>6}     {:<9} {:<12}     {:>4}",
        "at", "kind", "target", "duration"
    );
    for entry in schedule {
        println!("  {entry}");
    }
}

fn bug_list(bugs: Bugs) -> String {
    let names: Vec<&str> = bugs.iter().map(Bug::name).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn print_anomalies(anomalies: &[Anomaly]) {
    const SHOWN: usize = 12;
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for a in anomalies {
        *kinds.entry(a.kind.name()).or_default() += 1;
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("{} anomalies ({}):", anomalies.len(), counts.join(", "));
    for a in anomalies.iter().take(SHOWN) {
        println!("  {a}");
    }
    if anomalies.len() > SHOWN {
        println!("  ... and {} more", anomalies.len() - SHOWN);
    }
}

fn print_outcome(outcome: &RunOutcome) {
    let s = &outcome.stats;
    println!(
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
    );
    if let Some(first) = outcome.anomalies.first() {
        print_anomalies(&outcome.anomalies);
        let lines = timeline::before(&outcome.history, first, 30);
        if !lines.is_empty() {
            println!(
                "timeline before the first anomaly ({}):",
                first.payment.as_deref().unwrap_or("faults")
            );
            for line in lines {
                println!("  {line}");
            }
        }
    }
    println!("trace_hash {}", outcome.trace_hash);
}

fn write_html(
    path: &Path,
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
) -> Result<(), Failure> {
    let page = harness::html::render(plan, outcome, replay);
    std::fs::write(path, page).map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("timeline written to {}", path.display());
    Ok(())
}

fn write_trace(path: &Path, outcome: &RunOutcome) -> Result<(), Failure> {
    let fail = |e: std::io::Error| bad(format!("cannot write trace {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for entry in &outcome.history {
        serde_json::to_writer(&mut out, entry).map_err(internal)?;
        out.write_all(b"\n").map_err(fail)?;
    }
    out.flush().map_err(fail)
}

fn explore(s: &Sweep, failures_dir: &Path, json: bool) -> Result<ExitCode, Failure> {
    let names: Vec<&str> = s.scenarios.iter().map(|s| s.name.as_str()).collect();
    let bar = if !json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(s.len());
        bar.set_style(
            ProgressStyle::with_template("  {bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}")
                .map_err(internal)?,
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = sweep(s, &|done, _| bar.set_position(done));
    bar.finish_and_clear();
    let mut written = Vec::new();
    for failure in &report.failures {
        let scenario = s
            .scenarios
            .iter()
            .find(|sc| sc.name == failure.scenario)
            .ok_or_else(|| internal("unknown swept scenario"))?;
        let plan = RunPlan::new(scenario.clone(), failure.seed, s.bugs);
        let path = Artifact::path_in(failures_dir, &plan);
        Artifact::new(&plan, failure).save(&path).map_err(bad)?;
        written.push(path);
    }
    if json {
        print_json(&sweep_json(s, &report, &written))?;
    } else {
        print_sweep(s, &names, &report, &written);
    }
    Ok(verdict_code(report.failed == 0))
}

fn sweep_json(s: &Sweep, report: &SweepReport, artifacts: &[PathBuf]) -> serde_json::Value {
    let failures: Vec<_> = report
        .failures
        .iter()
        .zip(artifacts)
        .map(|(f, path)| {
            json!({
                "scenario": f.scenario,
                "seed": f.seed,
                "anomalies": f.anomalies,
                "artifact": path.display().to_string(),
                "replay": Artifact::replay_command(path),
            })
        })
        .collect();
    let scenario = if s.scenarios.len() == 1 {
        json!(s.scenarios[0].name)
    } else {
        json!("all")
    };
    let probes: serde_json::Map<String, serde_json::Value> = probe_table(report)
        .into_iter()
        .map(|(probe, hits)| (probe.name().to_string(), json!(hits)))
        .collect();
    let never_hit: Vec<&str> = probe_table(report)
        .into_iter()
        .filter(|p| p.1 == 0)
        .map(|p| p.0.name())
        .collect();
    json!({
        "scenario": scenario,
        "probes": probes,
        "probes_never_hit": never_hit,
        "seeds": format!("{}..{}", s.seeds.start, s.seeds.end),
        "shard": s.shard.map(|(k, n)| format!("{k}/{n}")),
        "keep_going": s.keep_going,
        "seeds_run": report.seeds_run,
        "passed": report.passed,
        "failed": report.failed,
        "failures": failures,
        "stats": report.stats,
        "aggregate_hash": report.aggregate_hash,
        "wall_ms": report.wall_ms,
    })
}

fn print_sweep(s: &Sweep, names: &[&str], report: &SweepReport, artifacts: &[PathBuf]) {
    let rate = report.seeds_run as f64 / (report.wall_ms.max(1) as f64 / 1000.0);
    println!(
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
    );
    let st = &report.stats;
    println!(
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
    );
    let slowest: Vec<String> = report
        .slowest
        .iter()
        .map(|(us, sc, seed)| format!("{sc}/{seed} {:.0} ms", *us as f64 / 1000.0))
        .collect();
    println!("  slowest seeds: {}", slowest.join(", "));
    println!("  probes (rare paths hit, summed over seeds):");
    let table = probe_table(report);
    for (probe, hits) in &table {
        println!("    {hits:>9}  {probe:<34} {}", probe.description());
    }
    let never: Vec<&str> = table
        .iter()
        .filter(|p| p.1 == 0)
        .map(|p| p.0.name())
        .collect();
    if !never.is_empty() {
        println!("  probes never hit: {}", never.join(", "));
    }
    println!("aggregate_hash {}", report.aggregate_hash);
    if let (Some(first), Some(path)) = (report.failures.first(), artifacts.first()) {
        println!("FAIL {} seed {}", first.scenario, first.seed);
        print_anomalies(&first.anomalies);
        println!("replay with: {}", Artifact::replay_command(path));
        if artifacts.len() > 1 {
            println!(
                "({} more failure artifacts in {})",
                artifacts.len() - 1,
                path.parent().unwrap_or(Path::new(".")).display()
            );
        }
    }
}

fn replay(
    path: &Path,
    json: bool,
    trace: Option<&Path>,
    html: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let artifact = Artifact::load(path).map_err(bad)?;
    let mut plan = artifact.plan().map_err(bad)?;
    plan.record_messages = html.is_some();
    if !json {
        println!(
            "replay {}: {} seed {} (bugs: {}), {} faults",
            path.display(),
            plan.scenario.name,
            plan.seed,
            bug_list(plan.bugs),
            plan.schedule.len()
        );
    }
    let outcome = run(&plan);
    if let Some(trace) = trace {
        write_trace(trace, &outcome)?;
    }
    if let Some(out) = html {
        write_html(out, &plan, &outcome, &Artifact::replay_command(path))?;
    }
    let same_hash = outcome.trace_hash == artifact.trace_hash;
    let same_anomalies = outcome.anomalies == artifact.anomalies;
    if json {
        let mut value = serde_json::to_value(&outcome).map_err(internal)?;
        value["reproduced"] = json!(!outcome.passed() && same_anomalies);
        value["same_trace_hash"] = json!(same_hash);
        value["recorded_trace_hash"] = json!(artifact.trace_hash);
        print_json(&value)?;
    } else {
        print_outcome(&outcome);
        if outcome.passed() {
            println!("no longer fails: the recorded anomalies did not occur");
        } else if same_anomalies && same_hash {
            println!("reproduced: same anomalies, same trace hash");
        } else if same_anomalies {
            println!(
                "reproduced the anomalies, but the trace hash differs (recorded {})",
                artifact.trace_hash
            );
        } else {
            println!(
                "fails differently than recorded ({} anomalies recorded)",
                artifact.anomalies.len()
            );
        }
        if !same_hash {
            println!(
                "trace hash differs: recorded {}, now {}",
                artifact.trace_hash, outcome.trace_hash
            );
        }
    }
    Ok(verdict_code(outcome.passed()))
}

fn shrink_artifact(path: &Path, out: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let artifact = Artifact::load(path).map_err(bad)?;
    let plan = artifact.plan().map_err(bad)?;
    let Some(kind) = artifact.anomalies.first().map(|a| a.kind) else {
        return Err(bad(format!(
            "artifact {} records no anomaly: nothing to shrink",
            path.display()
        )));
    };
    let out = out.unwrap_or_else(|| path.with_extension("shrunk.json"));
    println!(
        "shrinking {} ({} seed {}) while a {kind} anomaly remains",
        path.display(),
        plan.scenario.name,
        plan.seed
    );
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    let shrunk = shrink::shrink(&plan, kind, &|runs, faults| {
        bar.set_message(format!("{runs} runs, {faults} faults"))
    });
    bar.finish_and_clear();
    let Some(shrunk) = shrunk else {
        println!("the artifact no longer fails with {kind}: nothing to shrink");
        return Ok(ExitCode::SUCCESS);
    };
    let before_ms = artifact
        .anomalies
        .iter()
        .map(|a| a.at_ms)
        .min()
        .unwrap_or(0);
    println!(
        "before: {} faults, first anomaly at {} ms; after: {} faults, {} simulated ms, first anomaly at {} ms ({} runs)",
        plan.schedule.len(),
        before_ms,
        shrunk.plan.schedule.len(),
        shrunk.outcome.sim_ms,
        shrunk.outcome.anomalies.iter().filter(|a| a.kind == kind).map(|a| a.at_ms).min().unwrap_or(0),
        shrunk.runs
    );
    print_schedule(&shrunk.plan.schedule);
    Artifact::new(&shrunk.plan, &shrunk.outcome)
        .save(&out)
        .map_err(bad)?;
    println!("wrote {}", out.display());
    println!("replay with: {}", Artifact::replay_command(&out));
    Ok(ExitCode::SUCCESS)
}

fn show(a: &Artifact, path: &Path) {
    let w = &a.scenario.workload;
    println!(
        "artifact {} (harness {})",
        path.display(),
        a.harness_version
    );
    println!("scenario  {}: {}", a.scenario.name, a.scenario.purpose);
    println!(
        "workload  {} producers x {} payments, {} partitions, {} customers, a payment every {} ms, batches up to {}, {} ms of faults",
        w.producers, w.payments_per_producer, w.partitions, w.customers, w.payment_interval_ms, w.max_batch_records, w.duration_ms
    );
    println!("seed      {}", a.seed);
    println!(
        "bugs      {}",
        if a.bugs.is_empty() {
            "none".to_string()
        } else {
            a.bugs.join(", ")
        }
    );
    print_schedule(&a.fault_schedule);
    if a.anomalies.is_empty() {
        println!("no anomalies recorded");
    } else {
        print_anomalies(&a.anomalies);
    }
    println!("trace_hash {}", a.trace_hash);
    println!("replay with: {}", Artifact::replay_command(path));
}

fn merge(paths: &[PathBuf], json: bool) -> Result<ExitCode, Failure> {
    let mut reports = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read report {}: {e}", path.display())))?;
        let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "report {} is not explore --json output: {e}",
                path.display()
            ))
        })?;
        let field = |name: &str| report.get(name).is_some();
        if !(field("seeds_run") && field("passed") && field("failed") && field("aggregate_hash")) {
            return Err(bad(format!(
                "report {} lacks seeds_run, passed, failed or aggregate_hash",
                path.display()
            )));
        }
        reports.push(report);
    }
    // The reports must be disjoint shards of one sweep: XOR would cancel a report given twice.
    let sweep_of = |r: &serde_json::Value| (r["scenario"].to_string(), r["seeds"].to_string());
    if reports.iter().any(|r| sweep_of(r) != sweep_of(&reports[0])) {
        return Err(bad(
            "the reports are not shards of one sweep (scenario and seeds differ)",
        ));
    }
    let mut shards = std::collections::BTreeSet::new();
    for (r, path) in reports.iter().zip(paths) {
        let shard = r["shard"].as_str().unwrap_or("whole range").to_string();
        if (reports.len() > 1 && shard == "whole range") || !shards.insert(shard.clone()) {
            return Err(bad(format!(
                "report {} ({shard}) overlaps another report",
                path.display()
            )));
        }
    }
    let sum = |name: &str| {
        reports
            .iter()
            .map(|r| r[name].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let hashes: Vec<&str> = reports
        .iter()
        .map(|r| r["aggregate_hash"].as_str().unwrap_or(""))
        .collect();
    let aggregate_hash = merge_aggregates(hashes).map_err(bad)?;
    let failures: Vec<&serde_json::Value> = reports
        .iter()
        .flat_map(|r| r["failures"].as_array().into_iter().flatten())
        .collect();
    let (seeds_run, passed, failed) = (sum("seeds_run"), sum("passed"), sum("failed"));
    if json {
        print_json(
            &json!({"seeds_run": seeds_run, "passed": passed, "failed": failed, "failures": failures, "aggregate_hash": aggregate_hash}),
        )?;
    } else {
        println!(
            "merged {} reports: {seeds_run} seeds, {passed} passed, {failed} failed",
            reports.len()
        );
        println!("aggregate_hash {aggregate_hash}");
        for f in &failures {
            println!(
                "FAIL {} seed {}: replay with: {}",
                f["scenario"].as_str().unwrap_or("?"),
                f["seed"],
                f["replay"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(verdict_code(failed == 0))
}
