//! `harness bench`: how fast the harness explores, measured in rounds on all cores; medians,
//! because this machine is shared and noisy. With `--floor`, each round is followed by a round
//! of madsim's own floor for the same traffic, and their ratio is the figure to optimise.

use crate::explore::floor::{floor_sweep, Traffic};
use crate::explore::{sweep, Sweep};
use crate::scenario::Scenario;
use broker_under_test::Bugs;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub seeds: u64,
    pub wall_ms: u64,
    pub seeds_per_sec: f64,
    pub sim_seconds_per_wall_second: f64,
    pub events_per_sec: f64,
    /// The floor's round right after this one, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorMeasure>,
}

/// madsim's floor for a round's traffic, and the harness's speed as a share of it.
#[derive(Clone, Debug, Serialize)]
pub struct FloorMeasure {
    /// Nodes and messages per seed of the floor program (the round's mean).
    pub nodes: u32,
    pub messages_per_seed: u64,
    pub seeds_per_sec: f64,
    /// Harness seeds/s over floor seeds/s: 1.0 would be the simulator's own speed.
    pub floor_ratio: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    /// Seeds per round.
    pub seeds: u64,
    pub jobs: usize,
    /// Medians over the rounds.
    pub seeds_per_sec: f64,
    pub sim_seconds_per_wall_second: f64,
    /// Recorded history events plus network messages, per wall second.
    pub events_per_sec: f64,
    /// Medians of the floor's seeds/s and of the per-round ratios, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_seeds_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
    /// With `--against`: the other scenario, measured in rounds alternating with these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<Against>,
    pub rounds: Vec<Round>,
}

/// Another scenario measured side by side (its round right after each of the main one's), and
/// the main scenario's speed as a share of it: e.g. the cost of replication.
#[derive(Clone, Debug, Serialize)]
pub struct Against {
    pub scenario: String,
    /// Median seeds/s of its rounds.
    pub seeds_per_sec: f64,
    /// Median over rounds of (main seeds/s) / (its seeds/s).
    pub ratio: f64,
    /// Its seeds/s, round by round.
    pub rounds: Vec<f64>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Runs `rounds` sweeps of `seeds` seeds each (a different seed range per round); with
/// `floor`, each is followed by the floor program over the same seeds and traffic, in the same
/// process, so that noise from a shared machine hits both alike.
pub fn bench(
    scenario: &Scenario,
    seeds: u64,
    rounds: u32,
    jobs: usize,
    floor: bool,
    against: Option<&Scenario>,
) -> BenchReport {
    let mut results = Vec::new();
    let mut other = Vec::new();
    for round in 0..u64::from(rounds) {
        let range = round * seeds..(round + 1) * seeds;
        let mut measured = harness_round(scenario, range.clone(), jobs);
        if let Some(a) = against {
            other.push(harness_round(a, range.clone(), jobs).round.seeds_per_sec);
        }
        if floor && measured.seeds > 0 {
            let traffic = Traffic {
                nodes: crate::system::node_names(scenario).len() as u32,
                messages: measured.messages / measured.seeds,
            };
            let f = floor_sweep(traffic, range, jobs);
            let floor_sps = f.seeds as f64 / f.wall_secs;
            measured.round.floor = Some(FloorMeasure {
                nodes: traffic.nodes,
                messages_per_seed: traffic.messages,
                seeds_per_sec: floor_sps,
                floor_ratio: measured.round.seeds_per_sec / floor_sps,
            });
        }
        results.push(measured.round);
    }
    let floors: Vec<&FloorMeasure> = results.iter().filter_map(|r| r.floor.as_ref()).collect();
    let floor_median = |f: fn(&FloorMeasure) -> f64| {
        (!floors.is_empty()).then(|| median(floors.iter().map(|m| f(m)).collect()))
    };
    BenchReport {
        scenario: scenario.name.clone(),
        seeds,
        jobs,
        seeds_per_sec: median(results.iter().map(|r| r.seeds_per_sec).collect()),
        sim_seconds_per_wall_second: median(
            results
                .iter()
                .map(|r| r.sim_seconds_per_wall_second)
                .collect(),
        ),
        events_per_sec: median(results.iter().map(|r| r.events_per_sec).collect()),
        floor_seeds_per_sec: floor_median(|m| m.seeds_per_sec),
        floor_ratio: floor_median(|m| m.floor_ratio),
        against: against.map(|a| Against {
            scenario: a.name.clone(),
            seeds_per_sec: median(other.clone()),
            ratio: median(
                results
                    .iter()
                    .zip(&other)
                    .map(|(r, o)| r.seeds_per_sec / o.max(1e-9))
                    .collect(),
            ),
            rounds: other,
        }),
        rounds: results,
    }
}

struct Measured {
    round: Round,
    seeds: u64,
    messages: u64,
}

/// One round of the harness's own sweep.
fn harness_round(scenario: &Scenario, seeds: std::ops::Range<u64>, jobs: usize) -> Measured {
    let s = Sweep {
        scenarios: vec![scenario.clone()],
        seeds,
        shard: None,
        bugs: Bugs::NONE,
        jobs,
        keep_going: true,
        check_determinism: false,
        plant_nondeterminism: false,
        system: Default::default(),
    };
    let started = std::time::Instant::now();
    let report = sweep(&s, &|_, _| {});
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    Measured {
        round: Round {
            seeds: report.seeds_run,
            wall_ms: (wall * 1000.0) as u64,
            seeds_per_sec: report.seeds_run as f64 / wall,
            sim_seconds_per_wall_second: report.stats.sim_ms as f64 / 1000.0 / wall,
            events_per_sec: (report.stats.events + report.stats.messages) as f64 / wall,
            floor: None,
        },
        seeds: report.seeds_run,
        messages: report.stats.messages,
    }
}
