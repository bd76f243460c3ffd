//! `harness bench`: how fast the harness explores, measured in rounds on all cores; medians,
//! because this machine is shared and noisy.

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
    pub rounds: Vec<Round>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Runs `rounds` sweeps of `seeds` seeds each (a different seed range per round).
pub fn bench(scenario: &Scenario, seeds: u64, rounds: u32, jobs: usize) -> BenchReport {
    let mut results = Vec::new();
    for round in 0..u64::from(rounds) {
        let s = Sweep {
            scenarios: vec![scenario.clone()],
            seeds: round * seeds..(round + 1) * seeds,
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
        results.push(Round {
            seeds: report.seeds_run,
            wall_ms: (wall * 1000.0) as u64,
            seeds_per_sec: report.seeds_run as f64 / wall,
            sim_seconds_per_wall_second: report.stats.sim_ms as f64 / 1000.0 / wall,
            events_per_sec: (report.stats.events + report.stats.messages) as f64 / wall,
        });
    }
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
        rounds: results,
    }
}
