//! Every flag of the `harness` command, defined once with its help; flags that several
//! subcommands share are small structs flattened into each.

use broker_under_test::{Bug, Bugs};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use harness::scenario::Scenario;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Deterministic fault injection for exactly-once payment pipelines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Lists the scenarios with their purpose (or, with --bugs, the planted bugs).
    List(ListArgs),
    /// Runs one seed of one scenario and judges it.
    Run(RunArgs),
    /// Sweeps a range of seeds over one scenario or all of them.
    Explore(ExploreArgs),
    /// Re-runs a failure artifact's exact schedule and says whether it still fails the same way.
    Replay(ReplayArgs),
    /// Minimises a failure artifact's fault schedule while an anomaly of the same kind remains.
    Shrink(ShrinkArgs),
    /// Prints a failure artifact for a person: scenario, seed, bugs, fault schedule, anomalies.
    Show(ShowArgs),
    /// Merges the `explore --json` reports of disjoint shards into the whole sweep's totals and
    /// aggregate hash; exits 1 if any shard failed.
    Merge(MergeArgs),
    /// Hunts every planted bug through the scenarios meant to expose it; exits 1 if one hides.
    Bugs(BugsArgs),
    /// Measures exploration speed: seeds per second on all cores (median of rounds), simulated
    /// seconds per wall second, events per second.
    Bench(BenchArgs),
    /// Runs the scenario for real: the same broker code as processes on loopback (the `node`
    /// binary), SIGKILLed and restarted in real time, judged by the same checker.
    Real(RealArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Lists the planted bugs instead of the scenarios.
    #[arg(long)]
    pub bugs: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(long, help = scenario_help("or a path to a scenario file"))]
    pub scenario: String,
    /// The seed that decides the fault schedule, the network's and the disks' draws.
    #[arg(long)]
    pub seed: u64,
    #[command(flatten)]
    pub bugs: BugArgs,
    #[command(flatten)]
    pub json: JsonArg,
    #[command(flatten)]
    pub outputs: RunOutputs,
    /// Writes the run's failure artifact (scenario, seed, bugs, schedule, anomalies) to FILE.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// Prints only the review format that `tests/snapshots.rs` stores: schedule, verdict,
    /// anomalies, counters, one payment's life, trace hash last.
    #[arg(long, conflicts_with = "json")]
    pub review: bool,
}

#[derive(Args)]
pub struct ExploreArgs {
    #[arg(
        long,
        default_value = "standard",
        help = scenario_help("a path to a scenario file, or `all` for every catalogue scenario")
    )]
    pub scenario: String,
    /// The seeds, a half-open range A..B.
    #[arg(long, default_value = "0..1000", value_name = "A..B", value_parser = parse_seeds)]
    pub seeds: Range<u64>,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// K/N, 1-based: only the seeds whose index in the range is K-1 modulo N.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    #[command(flatten)]
    pub bugs: BugArgs,
    /// Runs the whole range instead of stopping at the first failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Where failure artifacts are written.
    #[arg(long, default_value = "failures", value_name = "DIR")]
    pub failures: PathBuf,
    /// Runs every seed twice in separate runtimes and compares trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    #[command(flatten)]
    pub json: JsonArg,
    /// The determinism check's self-test: writes a process-wide counter into the trace.
    #[arg(long, hide = true)]
    pub plant_nondeterminism: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The failure artifact to replay.
    #[arg(value_name = "FILE")]
    pub artifact: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
    #[command(flatten)]
    pub outputs: RunOutputs,
}

#[derive(Args)]
pub struct ShrinkArgs {
    /// The failure artifact to shrink.
    #[arg(value_name = "FILE")]
    pub artifact: PathBuf,
    /// Where to write the shrunk artifact (default: next to the input, `.shrunk.json`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The failure artifact to show.
    #[arg(value_name = "FILE")]
    pub artifact: PathBuf,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The `explore --json` reports of the shards.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Args)]
pub struct BugsArgs {
    /// Hunts every bug that applies to this one scenario in it, instead of each bug in the
    /// scenarios meant to expose it (e.g. the older broker bugs with replication on:
    /// `--scenario standard-replicated`).
    #[arg(
        long,
        help = scenario_help(
            "or a path to a scenario file: hunt every bug that applies to it there, instead of \
             each bug in the scenarios meant to expose it"
        )
    )]
    pub scenario: Option<String>,
    /// The most seeds tried per scenario.
    #[arg(long, default_value_t = 200, value_name = "N", value_parser = at_least_one::<u64>)]
    pub max_seeds: u64,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(
        long,
        default_value = "standard",
        help = scenario_help("or a path to a scenario file")
    )]
    pub scenario: String,
    /// Seeds per round.
    #[arg(long, default_value_t = 400, value_name = "N", value_parser = at_least_one::<u64>)]
    pub seeds: u64,
    /// Rounds; the figures are their medians.
    #[arg(long, default_value_t = 5, value_name = "R", value_parser = at_least_one::<u32>)]
    pub rounds: u32,
    /// After each round, runs madsim's own floor for the same traffic (the scenario's nodes and
    /// mean messages per seed through bare `Endpoint`s, no storage, history or checking) and
    /// reports floor_ratio: harness seeds/s over floor seeds/s, the figure to optimise.
    #[arg(long)]
    pub floor: bool,
    /// Also measures this other scenario, a round of it after each round of `--scenario`, and
    /// reports the ratio of their seeds/s (e.g. `--scenario standard-replicated --against
    /// standard`: what replication costs).
    #[arg(long, value_name = "SCENARIO")]
    pub against: Option<String>,
    /// Also runs one seed for real (see `real`) and reports the simulation's speedup.
    #[arg(long)]
    pub vs_real: bool,
    #[command(flatten)]
    pub node_bin: NodeBinArg,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Args)]
pub struct RealArgs {
    #[arg(
        long,
        default_value = "broker-crash-loop",
        help = scenario_help("or a path to a scenario file")
    )]
    pub scenario: String,
    /// The seed that decides the fault schedule.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub bugs: BugArgs,
    #[command(flatten)]
    pub node_bin: NodeBinArg,
    /// Where the nodes' data and events go (default: a fresh temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

// The shared flags.

#[derive(Args)]
pub struct JsonArg {
    /// Prints the report as JSON (each object with `schema_version`) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BugArgs {
    /// A planted bug to switch on (repeatable).
    #[arg(long = "bug", value_name = "BUG", value_parser = bug_parser())]
    pub bugs: Vec<Bug>,
}

impl BugArgs {
    pub fn set(&self) -> Bugs {
        self.bugs.iter().copied().collect()
    }
}

#[derive(Args)]
pub struct JobsArg {
    /// Worker threads (default: the number of cores), at most 256.
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

impl JobsArg {
    pub fn count(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The outputs a single run can write beside its report.
#[derive(Args)]
pub struct RunOutputs {
    /// Writes the full history as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Writes a self-contained HTML timeline of the run to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Args)]
pub struct NodeBinArg {
    /// The node binary built without the simulation.
    #[arg(long, default_value = "target/real/release/node", value_name = "PATH")]
    pub node_bin: PathBuf,
}

/// `--scenario`'s help: the catalogue's names, then what else the flag takes.
fn scenario_help(otherwise: &str) -> String {
    let names: Vec<String> = Scenario::catalogue().into_iter().map(|s| s.name).collect();
    format!("A catalogue scenario ({}), {otherwise}", names.join(", "))
}

/// `--bug`: the planted bugs as possible values, each with its description in `--help`.
fn bug_parser() -> impl TypedValueParser<Value = Bug> {
    PossibleValuesParser::new(
        Bug::ALL.map(|bug| PossibleValue::new(bug.name()).help(bug.description())),
    )
    .map(|name| {
        name.parse::<Bug>()
            .expect("the possible values are the bugs' names")
    })
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// The most worker threads: each run also takes a thread of its own with its stack, so a huge
/// `--jobs` would fail to spawn threads rather than go faster.
const MAX_JOBS: usize = 256;

fn parse_jobs(s: &str) -> Result<usize, String> {
    let jobs = at_least_one::<usize>(s)?;
    if jobs > MAX_JOBS {
        return Err(format!("{jobs} jobs is too many: at most {MAX_JOBS}"));
    }
    Ok(jobs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help() {
        for sub in Cli::command().get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no about", sub.get_name());
            for arg in sub.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{} {} has no help",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn bug_takes_the_catalogue_names_and_nothing_else() {
        let run = |bug: &str| {
            Cli::try_parse_from(
                ["harness", "run", "--scenario", "standard", "--seed", "1"]
                    .into_iter()
                    .chain(["--bug", bug]),
            )
        };
        for bug in Bug::ALL {
            let Command::Run(args) = run(bug.name()).unwrap().command else {
                panic!("not run");
            };
            assert_eq!(args.bugs.bugs, vec![bug]);
        }
        let unknown = run("no-such-bug").err().unwrap().to_string();
        assert!(unknown.contains("no-such-bug") && unknown.contains("store-no-dedup"));
    }

    #[test]
    fn seed_ranges_and_shards_are_checked() {
        assert_eq!(parse_seeds("3..7"), Ok(3..7));
        assert!(parse_seeds("7..7").unwrap_err().contains("empty"));
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("5/4").unwrap_err().contains("out of range"));
        assert_eq!(at_least_one::<usize>("0"), Err("must be at least 1".into()));
        assert_eq!(at_least_one::<u32>("2"), Ok(2));
    }
}
