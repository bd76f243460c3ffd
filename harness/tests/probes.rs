//! Coverage of rare paths: a standard sweep must hit every probe (duplicate answered, zombie
//! fenced, torn tail cut, snapshot used, ...) but the storage-fault and replication ones, and a
//! sweep of `disk-corruption`, `disk-errors` or `failover` each of those that the scenario
//! reaches. A probe never
//! hit is a path the harness claims to test but does not.

use broker_under_test::{Bugs, Probe};
use harness::explore::{probe_table, sweep, Sweep};
use harness::scenario::Scenario;

/// Probes no standard seed can reach, each with the scenario that does (`None`: no correct
/// run can, and a unit test drives the path instead).
fn elsewhere(probe: Probe) -> Option<Option<&'static str>> {
    match probe {
        // Garbled tails always break a frame's structure first; only damage inside a whole
        // frame is left to the checksum.
        Probe::ChecksumRejectedFrame => Some(Some("disk-corruption")),
        // The broker snapshots only after the log sync, so no correct run has a snapshot
        // beyond its durable log; broker::tests changes that ordering to reach it.
        Probe::StaleSnapshotDeleted => Some(None),
        // Only injected I/O errors make a storage operation fail.
        Probe::SyncFailed | Probe::ReadFailed | Probe::WriteFailed => Some(Some("disk-errors")),
        // Only a replicated deployment elects leaders, replicates and redirects.
        Probe::LeaderElected
        | Probe::IsrShrunk
        | Probe::IsrExpanded
        | Probe::FollowerTruncated
        | Probe::DedupAcrossFailover
        | Probe::NotLeaderRedirected
        | Probe::AckWaitedForReplication => Some(Some("failover")),
        _ => None,
    }
}

fn sweep_of(scenario: &str, seeds: std::ops::Range<u64>) -> Vec<(Probe, u64)> {
    let s = Sweep {
        scenarios: vec![Scenario::resolve(scenario).unwrap()],
        seeds,
        shard: None,
        bugs: Bugs::NONE,
        jobs: 2,
        keep_going: true,
        check_determinism: false,
        plant_nondeterminism: false,
        system: Default::default(),
    };
    let report = sweep(&s, &|_, _| {});
    assert_eq!(report.failed, 0);
    let table = probe_table(&report);
    assert_eq!(table.len(), Probe::ALL.len());
    table
}

#[test]
fn a_standard_sweep_hits_every_probe() {
    let never: Vec<&str> = sweep_of("standard", 0..300)
        .iter()
        .filter(|(probe, hits)| *hits == 0 && elsewhere(*probe).is_none())
        .map(|(probe, _)| probe.name())
        .collect();
    assert!(
        never.is_empty(),
        "probes never hit over 300 standard seeds: {never:?}"
    );
}

#[test]
fn the_storage_fault_and_failover_scenarios_hit_the_probes_standard_cannot() {
    for scenario in ["disk-corruption", "disk-errors", "failover"] {
        for (probe, hits) in sweep_of(scenario, 0..20) {
            if elsewhere(probe) == Some(Some(scenario)) {
                assert!(hits > 0, "{probe} never hit over 20 {scenario} seeds");
            }
        }
    }
}
