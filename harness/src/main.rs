//! The `harness` command line: list scenarios and bugs, run one seed, explore many.
//!
//! Exit status, for every subcommand: 0 success; 1 an invariant was violated; 2 bad usage or
//! bad input; 3 an internal error of the harness.

use broker_under_test::{Bug, Bugs};
use clap::{Parser, Subcommand};
use harness::checker::Anomaly;
use harness::explore::{sweep, Sweep, SweepReport};
use harness::run::{run, RunOutcome, RunPlan};
use harness::scenario::Scenario;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::ops::Range;
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
        trace: Option<std::path::PathBuf>,
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
        /// Runs every seed twice in separate runtimes and compares trace hashes.
        #[arg(long)]
        check_determinism: bool,
        #[arg(long)]
        json: bool,
        /// The determinism check's self-test: writes a process-wide counter into the trace.
        #[arg(long, hide = true)]
        plant_nondeterminism: bool,
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
        Command::List { bugs: true, json } => {
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
            Ok(ExitCode::SUCCESS)
        }
        Command::List { bugs: false, json } => {
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            scenario,
            seed,
            bugs,
            json,
            trace,
        } => {
            let scenario = Scenario::resolve(&scenario).map_err(bad)?;
            let plan = RunPlan::new(scenario, seed, bugs.iter().copied().collect());
            if !json {
                print_plan(&plan);
            }
            let outcome = run(&plan);
            if let Some(path) = trace {
                write_trace(&path, &outcome)?;
            }
            if json {
                print_json(&serde_json::to_value(&outcome).map_err(internal)?)?;
            } else {
                print_outcome(&plan, &outcome);
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
            check_determinism,
            json,
            plant_nondeterminism,
        } => {
            let scenarios = if scenario == "all" {
                Scenario::catalogue()
            } else {
                vec![Scenario::resolve(&scenario).map_err(bad)?]
            };
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if jobs == 0 {
                return Err(bad("--jobs must be at least 1"));
            }
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
            let names: Vec<&str> = s.scenarios.iter().map(|s| s.name.as_str()).collect();
            let show_progress = !json && std::io::stderr().is_terminal();
            let progress = |done: u64, total: u64| {
                if show_progress && (done.is_multiple_of(25) || done == total) {
                    eprint!("\r  {done}/{total} seeds");
                    let _ = std::io::stderr().flush();
                }
            };
            let report = sweep(&s, &progress);
            if show_progress {
                eprintln!();
            }
            if json {
                print_json(&sweep_json(&s, &report))?;
            } else {
                print_sweep(&s, &names, &report);
            }
            Ok(verdict_code(report.failed == 0))
        }
    }
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
    println!("fault schedule ({} faults):", plan.schedule.len());
    for entry in &plan.schedule {
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
    for a in anomalies.iter().take(SHOWN) {
        println!("  {a}");
    }
    if anomalies.len() > SHOWN {
        println!("  ... and {} more", anomalies.len() - SHOWN);
    }
}

fn print_outcome(plan: &RunPlan, outcome: &RunOutcome) {
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
    if !outcome.passed() {
        println!("{} anomalies:", outcome.anomalies.len());
        print_anomalies(&outcome.anomalies);
        println!("reproduce with: {}", plan.replay_command());
    }
    println!("trace_hash {}", outcome.trace_hash);
}

fn write_trace(path: &std::path::Path, outcome: &RunOutcome) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path)
            .map_err(|e| bad(format!("cannot write trace {}: {e}", path.display())))?,
    );
    for entry in &outcome.history {
        serde_json::to_writer(&mut out, entry).map_err(internal)?;
        out.write_all(b"\n")
            .map_err(|e| bad(format!("cannot write trace {}: {e}", path.display())))?;
    }
    out.flush()
        .map_err(|e| bad(format!("cannot write trace {}: {e}", path.display())))
}

fn sweep_json(s: &Sweep, report: &SweepReport) -> serde_json::Value {
    let failures: Vec<_> = report
        .failures
        .iter()
        .map(|f| {
            let plan = RunPlan::new(s.scenarios.iter().find(|sc| sc.name == f.scenario).expect("swept").clone(), f.seed, s.bugs);
            json!({"scenario": f.scenario, "seed": f.seed, "anomalies": f.anomalies, "replay": plan.replay_command()})
        })
        .collect();
    let scenario = if s.scenarios.len() == 1 {
        json!(s.scenarios[0].name)
    } else {
        json!("all")
    };
    json!({
        "scenario": scenario,
        "seeds_run": report.seeds_run,
        "passed": report.passed,
        "failed": report.failed,
        "failures": failures,
        "stats": report.stats,
        "aggregate_hash": report.aggregate_hash,
        "wall_ms": report.wall_ms,
    })
}

fn print_sweep(s: &Sweep, names: &[&str], report: &SweepReport) {
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
    println!("aggregate_hash {}", report.aggregate_hash);
    if let Some(first) = report.failures.first() {
        let scenario = s
            .scenarios
            .iter()
            .find(|sc| sc.name == first.scenario)
            .expect("swept scenario");
        let plan = RunPlan::new(scenario.clone(), first.seed, s.bugs);
        println!(
            "FAIL {} seed {}: {} anomalies",
            first.scenario,
            first.seed,
            first.anomalies.len()
        );
        print_anomalies(&first.anomalies);
        println!("reproduce with: {}", plan.replay_command());
    }
}
