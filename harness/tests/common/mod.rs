//! What the integration tests that measure faults over many seeds share: running a scenario's
//! seeds on two threads with every history kept (a sweep keeps only summaries).

use broker_under_test::Bugs;
use harness::scenario::Scenario;
use harness::sim::run;
use harness::world::{RunOutcome, RunPlan};

/// Every seed of `seeds` of `scenario`, with its whole history, in seed order.
pub fn outcomes(scenario: &Scenario, seeds: std::ops::Range<u64>) -> Vec<RunOutcome> {
    let seeds: Vec<u64> = seeds.collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&s| run(&RunPlan::new(scenario.clone(), s, Bugs::NONE)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}
