//! Proof of power: hunt every planted bug through the scenarios meant to expose it (or every
//! bug that applies to one scenario, in it), and report how many seeds it took.

use crate::check::AnomalyKind;
use crate::explore::{sweep, Sweep};
use crate::scenario::Scenario;
use broker_under_test::{Bug, Bugs};
use serde::Serialize;
use std::time::Instant;

/// The scenarios that should expose `bug`, the focused one first.
pub fn exposing_scenarios(bug: Bug) -> &'static [&'static str] {
    match bug {
        Bug::NoDedup
        | Bug::DedupWindow1
        | Bug::RetryWithNewSequence
        | Bug::DuplicateGetsLogEndOffset => &["lossy-network", "standard"],
        Bug::AckBeforeSync
        | Bug::ProducerStateNotRebuilt
        | Bug::SnapshotAheadOfLog
        | Bug::TornTailKept => &["broker-crash-loop", "standard"],
        Bug::CommitBeforeApply | Bug::StoreNoDedup | Bug::CommitSkipsOne => {
            &["consumer-restarts", "standard"]
        }
        Bug::StoreAckBeforeSync => &["store-crashes", "standard"],
        // Only batches over the frame limit expose it, and only this scenario makes them.
        Bug::OversizedBatchAccepted => &["large-payments"],
        // Only damage inside a whole frame gets past the structure checks to the checksum,
        // and only this scenario draws it.
        Bug::ChecksumNotVerified => &["disk-corruption"],
        // It needs a lost unsnapshotted append, regrowth past the snapshot and another crash
        // before the next snapshot: 10 of 200 broker-crash-loop seeds, none of 200 standard.
        Bug::StaleSnapshotKept => &["broker-crash-loop"],
        // Only I/O errors expose them, and only this scenario injects them.
        Bug::SyncFailureRetried | Bug::ReadErrorAsEof => &["disk-errors"],
        // Replication bugs need replicas and failovers.
        Bug::AckBeforeReplication
        | Bug::TruncateToHighWatermark
        | Bug::UncleanLeaderElection
        | Bug::ProducerStateNotReplicated
        | Bug::ReadPastHighWatermark => &["failover", "standard-replicated"],
        // Only damage to synced data exposes it, and only this scenario draws it.
        Bug::DamagedReplicaStaysInSync => &["replica-rot"],
    }
}

/// How the hunt for one bug went.
#[derive(Clone, Debug, Serialize)]
pub struct BugReport {
    pub bug: String,
    /// The scenario whose seed caught it (the last one tried if none did).
    pub scenario: String,
    pub detected: bool,
    pub first_seed: Option<u64>,
    /// Seeds run until the first failure, over every scenario tried.
    pub seeds_tried: u64,
    /// The kind of the first anomaly of the failing seed.
    pub anomaly: Option<AnomalyKind>,
    pub wall_ms: u64,
}

/// Whether `bug` can show in `scenario`: a replication bug needs replicas; a bug that needs a
/// focused scenario's faults (large payments, damage inside frames, I/O errors, a rare crash
/// pattern) applies only to that scenario; every other bug (the ones `standard` exposes)
/// applies to every scenario, replicated or not.
pub fn applies(bug: Bug, scenario: &Scenario) -> bool {
    // A replica whose recovery loses synced batches behind a kept torn tail finds its log short
    // of its synced mark, resigns and repairs from its peers: replicated, this local bug loses
    // nothing (no anomaly to find in 300 seeds of each replicated scenario), so it is not hunted
    // there.
    if bug == Bug::TornTailKept && scenario.workload.replicated() {
        return false;
    }
    let exposing = exposing_scenarios(bug);
    if exposing.contains(&scenario.name.as_str()) {
        return true;
    }
    if exposing.contains(&"failover") {
        return scenario.workload.replicated();
    }
    exposing.contains(&"standard")
}

/// Sweeps each exposing scenario (seeds `0..max_seeds`) until the bug shows.
pub fn hunt(bug: Bug, max_seeds: u64, jobs: usize) -> BugReport {
    let scenarios = exposing_scenarios(bug)
        .iter()
        .map(|name| Scenario::resolve(name).expect("exposing scenarios are in the catalogue"));
    hunt_over(bug, scenarios, max_seeds, jobs)
}

/// Sweeps `scenario` alone (seeds `0..max_seeds`) until the bug shows.
pub fn hunt_in(bug: Bug, scenario: &Scenario, max_seeds: u64, jobs: usize) -> BugReport {
    hunt_over(bug, [scenario.clone()], max_seeds, jobs)
}

fn hunt_over(
    bug: Bug,
    scenarios: impl IntoIterator<Item = Scenario>,
    max_seeds: u64,
    jobs: usize,
) -> BugReport {
    let started = Instant::now();
    let mut seeds_tried = 0;
    let mut report = BugReport {
        bug: bug.name().to_string(),
        scenario: String::new(),
        detected: false,
        first_seed: None,
        seeds_tried: 0,
        anomaly: None,
        wall_ms: 0,
    };
    for scenario in scenarios {
        report.scenario = scenario.name.clone();
        let s = Sweep {
            scenarios: vec![scenario],
            seeds: 0..max_seeds,
            shard: None,
            bugs: Bugs::NONE.with(bug),
            jobs,
            keep_going: false,
            check_determinism: false,
            plant_nondeterminism: false,
            system: Default::default(),
        };
        let result = sweep(&s, &|_, _| {});
        if let Some(failure) = result.failures.first() {
            seeds_tried += failure.seed + 1;
            report.detected = true;
            report.first_seed = Some(failure.seed);
            report.anomaly = failure.anomalies.first().map(|a| a.kind);
            break;
        }
        seeds_tried += max_seeds;
    }
    report.seeds_tried = seeds_tried;
    report.wall_ms = started.elapsed().as_millis() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_bugs_apply_to_replicated_scenarios_and_standard_bugs_to_every_one() {
        let replicated = Scenario::resolve("standard-replicated").unwrap();
        let single = Scenario::resolve("standard").unwrap();
        let crash_loop = Scenario::resolve("broker-crash-loop").unwrap();
        assert!(applies(Bug::UncleanLeaderElection, &replicated));
        assert!(!applies(Bug::UncleanLeaderElection, &single));
        assert!(applies(Bug::NoDedup, &replicated) && applies(Bug::NoDedup, &single));
        assert!(!applies(Bug::OversizedBatchAccepted, &replicated));
        assert!(applies(Bug::StaleSnapshotKept, &crash_loop));
        assert!(!applies(Bug::StaleSnapshotKept, &single));
    }
}
