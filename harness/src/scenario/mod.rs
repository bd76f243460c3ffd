//! Scenarios as data: the workload, which faults are on and how hard, and the run's bounds.
//!
//! A scenario is a TOML file in `scenarios/` (embedded in the binary at build time) or any path
//! given to `--scenario`. Every field is checked on load; a bad file is an error naming the file
//! and the field, never a panic.

use broker_under_test::storage::IoOp;
use serde::{Deserialize, Serialize};
mod validate;

use std::fmt;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// An inclusive range `[min, max]`, written in files as a two-element array.
pub type Range<T> = [T; 2];

/// A scenario: a workload, the faults drawn for it, and the run's limits. Each seed expands
/// it into one fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (names artifact files).
    pub name: String,
    /// One line: what this scenario is for.
    pub purpose: String,
    /// The payments and the deployment that carries them.
    pub workload: WorkloadSpec,
    /// Which faults a seed may draw, how many and how long.
    #[serde(default)]
    pub faults: FaultSpec,
    /// The liveness bound and the step limit.
    #[serde(default)]
    pub limits: Limits,
}

/// The deployment and its payments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// How many producers.
    pub producers: u32,
    /// How many payments each producer owes.
    pub payments_per_producer: u32,
    /// How many log partitions.
    pub partitions: u32,
    /// How many customers payments are spread over.
    pub customers: u32,
    /// Simulated time between two payments of one producer.
    pub payment_interval_ms: u64,
    /// The most payments in one batch.
    pub max_batch_records: u32,
    /// How long workload and faults run together before the heal.
    pub duration_ms: u64,
    /// How large payments are; missing: the small, same-sized payments (about 26 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_size: Option<PaymentSizeSpec>,
    /// The sequence every producer's first batch starts at, on every partition; missing: 0.
    /// Near `u32::MAX` (4294967295), runs cross the wrap point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sequence: Option<u32>,
    /// Replicas of every partition: 1 (the single broker of before, the default) or 2..=5
    /// (nodes `broker-0..n` and a `controller`). Left out of a scenario that has 1, so older
    /// scenarios print and hash exactly as before.
    #[serde(default = "one_broker", skip_serializing_if = "is_one_broker")]
    pub brokers: u32,
}

fn one_broker() -> u32 {
    1
}

fn is_one_broker(brokers: &u32) -> bool {
    *brokers == 1
}

impl WorkloadSpec {
    /// Whether the deployment is replicated (more than one broker).
    pub fn replicated(&self) -> bool {
        self.brokers > 1
    }
}

/// Payment sizes: encoded bytes per payment, drawn per payment from a pure function of seed,
/// producer and payment number (no generator stream, so other draws do not move).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSizeSpec {
    /// `[min, max]` encoded bytes. Past the 1 MiB frame limit a payment is refused by its
    /// producer; a batch of several large ones is refused by the broker and split.
    pub bytes: Range<u64>,
    /// How sizes are drawn between the bounds.
    #[serde(default)]
    pub distribution: SizeDistribution,
}

/// How payment sizes are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeDistribution {
    /// Every size in the range equally likely.
    #[default]
    Uniform,
    /// Every binary order of magnitude in the range equally likely: mostly small payments,
    /// some near the top.
    LogUniform,
}

/// Which faults are on, how many of each a run draws, and how hard. A missing section is off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Swarm testing: each seed switches every fault kind below on or off (each on with
    /// probability 1/2, at least one on) and scales its counts and rates by a factor of its own.
    #[serde(default)]
    pub swarm: bool,
    /// Broker crashes.
    pub broker_crash: Option<CrashSpec>,
    /// Producer crashes (one producer each).
    pub producer_crash: Option<CrashSpec>,
    /// Consumer crashes.
    pub consumer_crash: Option<CrashSpec>,
    /// Store crashes.
    pub store_crash: Option<CrashSpec>,
    /// Pauses of one node (a GC pause, a stopped VM).
    pub pause: Option<WindowSpec>,
    /// Network partitions between two nodes.
    pub partition: Option<PartitionSpec>,
    /// Windows in which messages are lost at a rate.
    pub loss: Option<RateSpec>,
    /// Windows in which messages are duplicated at a rate.
    pub duplicate: Option<RateSpec>,
    /// Windows in which messages are delayed.
    pub delay: Option<DelaySpec>,
    /// Probability that a crash keeps a torn prefix of a file's unsynced bytes.
    #[serde(default)]
    pub torn_write_probability: f64,
    /// Probability that a torn prefix comes back garbled.
    #[serde(default)]
    pub garble_probability: f64,
    /// Damage inside well-formed frames of a torn crash's tail; missing: none, and no draw
    /// for it, so scenarios without it keep their schedules and traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<CorruptionSpec>,
    /// Windows in which one node's storage operations fail with I/O errors. Last, and left out
    /// of a scenario that has none, so older scenarios draw and print exactly as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_errors: Option<IoErrorSpec>,
    /// Controller crashes (replicated scenarios only). This and the two keys below are drawn
    /// from a generator stream of their own, so scenarios without them draw as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_crash: Option<CrashSpec>,
    /// Isolations of one broker from the other brokers and the controller, both ways, while
    /// producers, consumer and store still reach it (replicated scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolate: Option<WindowSpec>,
    /// Windows in which one broker's links to the other brokers are slow: a lagging follower
    /// (replicated scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<LagSpec>,
    /// Power losses of every broker at once (replicated scenarios only): each a crash of every
    /// replica at the same moment, for the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<CrashSpec>,
    /// Damage to one broker's synced log (replicated scenarios only), found at its next
    /// recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rot: Option<RotSpec>,
}

/// How many `rot` faults a seed draws, and how large a damaged block may be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// The longest zeroed or garbage block, in bytes (1..=4096).
    pub max_bytes: u32,
}

/// How many lag windows a seed draws, how long, and how slow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
    /// The extra delay of every message between the broker and another broker (the same for
    /// each message of a window, so the link stays in order).
    pub delay_ms: Range<u64>,
}

impl FaultSpec {
    /// Whether any replication fault key is set.
    pub fn has_replication_faults(&self) -> bool {
        self.controller_crash.is_some()
            || self.isolate.is_some()
            || self.lag.is_some()
            || self.rot.is_some()
            || self.outage.is_some()
    }
}

/// How often a torn crash comes back with a damaged region, and how large one may be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionSpec {
    /// Probability that a torn crash keeps every unsynced byte with one damaged region
    /// inside them (flipped bits, a zeroed block or a garbage block, equally likely).
    pub probability: f64,
    /// The longest zeroed or garbage block, in bytes (1..=4096).
    pub max_bytes: u32,
}

/// How many I/O error windows a seed draws, how long, at what rate, on which operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoErrorSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
    /// Per-operation probability of an error while the window is open.
    pub rate: Range<f64>,
    /// Which kinds of operation fail (`read`, `write`, `sync`); missing: all three.
    #[serde(default = "all_io_ops")]
    pub ops: Vec<IoOp>,
}

fn all_io_ops() -> Vec<IoOp> {
    IoOp::ALL.to_vec()
}

/// How many crashes of a kind a seed draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long the node stays down before it restarts.
    pub down_ms: Range<u64>,
}

/// How many windows of a kind a seed draws, and how long each lasts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
}

/// How many partitions a seed draws, and how long each lasts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
    /// Probability that a partition cuts both directions rather than one.
    pub two_way_probability: f64,
}

/// How many windows of loss or duplication a seed draws, how long, at what rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
    /// Per-message probability while the window is open.
    pub rate: Range<f64>,
}

/// How many windows of delay a seed draws, how long, and how much delay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    /// How many (inclusive range).
    pub count: Range<u32>,
    /// How long each lasts (inclusive range, milliseconds).
    pub duration_ms: Range<u64>,
    /// Each message in the window waits a uniform extra delay up to this spread (reordering).
    pub spread_ms: Range<u64>,
}

/// The bounds of one run. Running past either is a named failure, never a hang.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// After the heal, how long (simulated) every owed payment has to reach log and store.
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
    /// The most recorded events plus network messages one run may take.
    #[serde(default = "default_max_steps")]
    pub max_steps: u64,
}

fn default_liveness_ms() -> u64 {
    30_000
}

fn default_max_steps() -> u64 {
    2_000_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            liveness_ms: default_liveness_ms(),
            max_steps: default_max_steps(),
        }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Resolves `--scenario`: a catalogue name, or else a path to a scenario file.
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((_, text)) = CATALOGUE.iter().find(|(name, _)| *name == name_or_path) {
            return Scenario::parse(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = crate::artifact::read_input(path, "scenario file").map_err(ScenarioError)?;
            return Scenario::parse(&text, name_or_path);
        }
        let names: Vec<&str> = CATALOGUE.iter().map(|(n, _)| *n).collect();
        Err(ScenarioError(format!(
            "unknown scenario '{name_or_path}': not a catalogue name ({}) nor an existing file",
            names.join(", ")
        )))
    }

    /// Every scenario of the catalogue, in name order.
    pub fn catalogue() -> Vec<Scenario> {
        CATALOGUE
            .iter()
            .map(|(name, text)| {
                Scenario::parse(text, name)
                    .unwrap_or_else(|e| panic!("catalogue scenario {name}: {e}"))
            })
            .collect()
    }

    /// Parses and validates a scenario file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)
            .map_err(|e| ScenarioError(format!("scenario {origin} is malformed: {e}")))?;
        scenario
            .validate()
            .map_err(|e| ScenarioError(format!("scenario {origin}: {e}")))?;
        Ok(scenario)
    }

    /// Checks every field; the error names the field. Counts and times are bounded, so no
    /// file can make a run allocate or compute past what a machine holds.
    pub fn validate(&self) -> Result<(), String> {
        validate::workload(&self.name, &self.workload)?;
        validate::faults(&self.faults)?;
        validate::replication(&self.workload, &self.faults)?;
        validate::limits(&self.limits)?;
        validate::budget(&self.workload, &self.faults, &self.limits)
    }
}

/// The most brokers a replicated scenario may have.
pub const BROKERS_MAX: u32 = 5;

/// The most faults of one kind a run may draw.
pub const COUNT_MAX: u32 = 10_000;
/// The longest duration, downtime or interval, in milliseconds: a day.
pub const TIME_MAX_MS: u64 = 86_400_000;
/// The widest delay spread, in milliseconds: an hour.
pub const SPREAD_MAX_MS: u64 = 3_600_000;
/// The most payments per producer (and customer keys).
pub const PAYMENTS_MAX: u32 = 1_000_000;
/// The largest payment, in encoded bytes: 4 MiB, well past the 1 MiB frame limit.
pub const PAYMENT_BYTES_MAX: u64 = 4 << 20;
/// The most payment bytes one scenario may ask for in all (producers x payments x max size),
/// so that no file makes a run hold more than a machine does.
pub const WORKLOAD_BYTES_MAX: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_scenario_loads_and_is_named_after_its_file() {
        let all = Scenario::catalogue();
        assert!(
            all.len() >= 4,
            "standard and at least three focused scenarios"
        );
        for (scenario, (file, _)) in all.iter().zip(CATALOGUE) {
            assert_eq!(scenario.name, *file);
            assert!(!scenario.purpose.is_empty());
        }
        let standard = Scenario::resolve("standard").unwrap();
        assert!(standard.workload.producers >= 3);
        assert!(standard.workload.producers * standard.workload.payments_per_producer >= 300);
    }

    #[test]
    fn bad_scenarios_are_errors_that_name_the_problem() {
        let err = Scenario::resolve("no-such-scenario")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown scenario 'no-such-scenario'") && err.contains("standard"),
            "{err}"
        );
        let err = Scenario::parse("name = 3", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml is malformed"), "{err}");
        let standard = CATALOGUE.iter().find(|(n, _)| *n == "standard").unwrap().1;
        let err = Scenario::parse(
            &standard.replace("producers = 3", "producers = 0"),
            "y.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("workload.producers"), "{err}");
        let err = Scenario::parse(&format!("{standard}\nsurprise = 1\n"), "z.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("surprise"), "{err}");
    }
}
