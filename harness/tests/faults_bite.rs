//! The faults really bite: over 200 standard seeds, most runs see a retried batch deduplicated
//! after its acknowledgement was lost, crash every kind of node, and lose unsynced writes; over
//! `disk-errors` seeds, syncs and reads fail and every node survives them by crash and recovery.

mod common;

use broker_under_test::storage::IoOp;
use broker_under_test::{Event, NodeName, Probe};
use harness::history::{Actor, HarnessEvent, What};
use harness::scenario::Scenario;
use std::collections::BTreeSet;

const SEEDS: u64 = 200;

#[derive(Default)]
struct Seen {
    dedup_after_lost_ack: u64,
    broker_crash: u64,
    producer_crash: u64,
    consumer_crash: u64,
    store_crash: u64,
    unsynced_lost: u64,
}

// One pass over the outcomes gathers every fault kind's evidence, then one assertion each.
#[test]
fn over_200_standard_seeds_every_fault_kind_bites() {
    let standard = Scenario::resolve("standard").unwrap();
    let mut seen = Seen::default();
    let outcomes = common::outcomes(&standard, 0..SEEDS);
    for outcome in &outcomes {
        assert!(
            outcome.passed(),
            "seed {}: {:#?}",
            outcome.seed,
            outcome.anomalies
        );
        // A batch whose first send timed out (its request or its ack was lost) and whose retry
        // the broker recognised as a duplicate.
        let mut timed_out = BTreeSet::new();
        // The broker knows producers by id; the history names them by node.
        let producer_ids: std::collections::BTreeMap<Actor, u64> = outcome
            .history
            .iter()
            .filter_map(|e| match &e.what {
                What::Node(Event::ProducerInitialized { producer_id, .. }) => {
                    Some((e.node, *producer_id))
                }
                _ => None,
            })
            .collect();
        let mut dedup_after_lost_ack = false;
        let mut crashed = BTreeSet::new();
        let mut lost = false;
        for entry in &outcome.history {
            match &entry.what {
                What::Node(Event::ProduceFailed {
                    partition,
                    base_seq,
                    error,
                }) if error == "timed out" => {
                    timed_out.insert((entry.node, *partition, *base_seq));
                }
                What::Node(Event::ProduceAcked {
                    partition,
                    base_seq,
                    ..
                }) => {
                    dedup_after_lost_ack |= timed_out.contains(&(entry.node, *partition, *base_seq))
                        && outcome.history.iter().any(|e| matches!(&e.what, What::Node(Event::DuplicateBatch { partition: p, base_seq: s, producer_id, .. }) if p == partition && s == base_seq && Some(producer_id) == producer_ids.get(&entry.node) && e.at_us <= entry.at_us));
                }
                What::Harness(HarnessEvent::FinalRecovery) => break,
                What::Harness(HarnessEvent::NodeCrashed { report }) => {
                    crashed.insert(match entry.node.node() {
                        Some(NodeName::Producer(_)) => "producer".to_string(),
                        other => other.map_or(String::new(), |n| n.to_string()),
                    });
                    lost |= report.bytes_lost > 0;
                }
                _ => {}
            }
        }
        seen.dedup_after_lost_ack += u64::from(dedup_after_lost_ack);
        seen.broker_crash += u64::from(crashed.contains("broker"));
        seen.producer_crash += u64::from(crashed.contains("producer"));
        seen.consumer_crash += u64::from(crashed.contains("consumer"));
        seen.store_crash += u64::from(crashed.contains("store"));
        seen.unsynced_lost += u64::from(lost);
    }
    let half = SEEDS / 2;
    assert!(
        seen.dedup_after_lost_ack >= half,
        "dedup after a lost ack in {} of {SEEDS} seeds",
        seen.dedup_after_lost_ack
    );
    for (kind, n) in [
        ("broker", seen.broker_crash),
        ("producer", seen.producer_crash),
        ("consumer", seen.consumer_crash),
        ("store", seen.store_crash),
    ] {
        assert!(n >= half, "{kind} crashed in {n} of {SEEDS} seeds");
    }
    assert!(
        seen.unsynced_lost >= SEEDS / 10,
        "unsynced writes lost in {} of {SEEDS} seeds",
        seen.unsynced_lost
    );
}

/// How many `disk-errors` seeds the I/O error test runs.
const DISK_SEEDS: u64 = 100;

/// Over `disk-errors` seeds the correct system passes, and syncs and reads fail in a good
/// share of them, each failure followed by the node's crash and recovery (the node's own
/// `storage-failed` event), never by an acknowledgement of what the failed sync covered.
#[test]
fn over_100_disk_errors_seeds_syncs_and_reads_fail_and_the_system_passes() {
    let scenario = Scenario::resolve("disk-errors").unwrap();
    let (mut sync_failed, mut read_failed, mut restarted) = (0u64, 0u64, 0u64);
    for outcome in common::outcomes(&scenario, 0..DISK_SEEDS) {
        let seed = outcome.seed;
        assert!(outcome.passed(), "seed {seed}: {:#?}", outcome.anomalies);
        let hits = |p: Probe| outcome.probes.get(&p).copied().unwrap_or(0) > 0;
        sync_failed += u64::from(hits(Probe::SyncFailed));
        read_failed += u64::from(hits(Probe::ReadFailed));
        let read_restarts = outcome
            .history
            .iter()
            .filter(|e| {
                matches!(
                    &e.what,
                    What::Node(Event::StorageFailed { op: IoOp::Read, .. })
                )
            })
            .count();
        assert_eq!(
            hits(Probe::ReadFailed),
            read_restarts > 0,
            "seed {seed}: every failed read restarts recovery"
        );
        restarted += u64::from(
            outcome
                .history
                .iter()
                .any(|e| matches!(&e.what, What::Node(Event::StorageFailed { .. }))),
        );
    }
    println!(
        "over {DISK_SEEDS} disk-errors seeds: a sync failed in {sync_failed}, a read failed in \
         {read_failed}, a node restarted on an I/O error in {restarted}"
    );
    // Measured: 93, 86 and 98 of 100.
    assert!(
        sync_failed * 10 >= DISK_SEEDS * 6,
        "syncs failed in {sync_failed} seeds"
    );
    assert!(
        read_failed * 2 >= DISK_SEEDS,
        "reads failed in {read_failed} seeds"
    );
    assert!(
        restarted * 10 >= DISK_SEEDS * 8,
        "restarts in {restarted} seeds"
    );
}
