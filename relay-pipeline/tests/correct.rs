//! The correct pipeline delivers every payment exactly once under every fault the catalogue
//! throws at it: a sweep of seeds per scenario, each a plain `#[test]`. `ci/relay-sweep` runs
//! 1,000 seeds per scenario in release.

use harness::testing::Check;
use relay_pipeline::RelaySystem;

/// Seeds per scenario in `cargo test` (debug): enough to meet every fault kind many times,
/// few enough for the whole crate to test in well under a minute on two cores.
const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn standard() {
    Check::new(RelaySystem::new(), "standard")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn broker_crash_loop() {
    Check::new(RelaySystem::new(), "broker-crash-loop")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn lossy_network() {
    Check::new(RelaySystem::new(), "lossy-network")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn store_crashes() {
    Check::new(RelaySystem::new(), "store-crashes")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn consumer_restarts() {
    Check::new(RelaySystem::new(), "consumer-restarts")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn producer_restarts() {
    Check::new(RelaySystem::new(), "producer-restarts")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn partitions() {
    Check::new(RelaySystem::new(), "partitions")
        .seeds(SEEDS)
        .assert_passes();
}

#[test]
fn swarm() {
    Check::new(RelaySystem::new(), "swarm")
        .seeds(SEEDS)
        .assert_passes();
}

/// The same seeds give the same runs: a pipeline that read the wall clock, an unseeded random
/// source or a process-wide counter would change the aggregate trace hash between sweeps.
#[test]
fn runs_are_deterministic() {
    let sweep = || {
        Check::new(RelaySystem::new(), "standard")
            .seeds(0..20)
            .assert_passes()
            .aggregate_hash
    };
    assert_eq!(sweep(), sweep());
}
