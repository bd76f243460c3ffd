//! The whole pipeline on madsim: producers, broker, consumer and store, with a broker crash that
//! loses unsynced writes, a producer restart and dropped acknowledgements; then the durable state
//! is read back and every payment must be there exactly once.
#![cfg(madsim)]

use broker_under_test::cluster::{Cluster, ClusterSpec, Workload};
use broker_under_test::codec::Response;
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::storage::Tear;
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use broker_under_test::transport::{Delivery, MessageKind, NetFaults, NoFaults};
use broker_under_test::{Bug, Bugs, Event, NodeName, Observer, PaymentId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps the payments producers made durable in their outboxes (exactly what is owed), and
/// counts the events that show the faults really bit.
#[derive(Default)]
struct Recorder {
    outboxed: Mutex<BTreeSet<PaymentId>>,
    duplicate_batches: AtomicU32,
    torn_tails_cut: AtomicU32,
    batches_known_after_restart: AtomicU32,
}

impl Observer for Recorder {
    fn record(&self, _node: NodeName, event: Event) {
        match event {
            Event::Outboxed { payment } => {
                self.outboxed.lock().unwrap().insert(payment.id);
            }
            Event::DuplicateBatch { .. } => {
                self.duplicate_batches.fetch_add(1, Ordering::Relaxed);
            }
            Event::LogRecovered {
                truncated_bytes, ..
            } if truncated_bytes > 0 => {
                self.torn_tails_cut.fetch_add(1, Ordering::Relaxed);
            }
            Event::BatchRecoveredAsAcked { .. } => {
                self.batches_known_after_restart
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Drops every fourth produce acknowledgement on its way back to a producer, so producers
/// retry batches the broker already has.
#[derive(Default)]
struct DropEveryFourthAck(AtomicU32);

impl NetFaults for DropEveryFourthAck {
    fn on_message(
        &self,
        _: SocketAddr,
        _: SocketAddr,
        kind: MessageKind,
        _: u64,
        body: &[u8],
    ) -> Delivery {
        if kind == MessageKind::Reply
            && matches!(Response::decode(body), Ok(Response::Produced { .. }))
        {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            if n % 4 == 1 {
                return Delivery::Drop;
            }
        }
        Delivery::Deliver(Duration::ZERO)
    }
}

struct Faults {
    drop_acks: bool,
    crashes: bool,
}

/// What the durable state said at the end.
struct Outcome {
    outboxed: BTreeSet<PaymentId>,
    in_log: BTreeMap<PaymentId, u32>,
    in_store: BTreeMap<PaymentId, u32>,
    sim_time: Duration,
    recorder: Arc<Recorder>,
}

impl Outcome {
    fn duplicates(counts: &BTreeMap<PaymentId, u32>) -> Vec<&str> {
        counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    fn assert_exactly_once(&self) {
        assert_eq!(self.outboxed.len(), 300, "every payment was outboxed");
        for (name, counts) in [("log", &self.in_log), ("store", &self.in_store)] {
            assert_eq!(
                Self::duplicates(counts),
                Vec::<&str>::new(),
                "duplicates in the {name}"
            );
            let present: BTreeSet<PaymentId> = counts.keys().cloned().collect();
            assert_eq!(
                present, self.outboxed,
                "the {name} holds exactly the outboxed payments"
            );
        }
    }
}

const PARTITIONS: u32 = 3;

fn workload() -> Workload {
    Workload {
        producers: 3,
        payments_per_producer: 100,
        customers: 12,
        partitions: PARTITIONS,
        payment_interval: Duration::from_millis(4),
        max_batch_records: 4,
        seed: 7,
        first_seq: 0,
        payment_sizes: None,
        brokers: 1,
    }
}

/// Reads every partition log and the store's rows from their disks, after a final crash of both
/// that keeps only synced bytes.
fn durable_counts(cluster: &Cluster) -> (BTreeMap<PaymentId, u32>, BTreeMap<PaymentId, u32>) {
    let mut in_log = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let log = recover_log(
            &cluster
                .disk(NodeName::Broker)
                .contents(&log_file(partition)),
        );
        for payment in log.batches.iter().flat_map(|b| &b.records) {
            *in_log.entry(payment.id.clone()).or_default() += 1;
        }
    }
    let (rows, _, _) = recover_rows(&cluster.disk(NodeName::Store).contents(APPLIED_FILE));
    let mut in_store = BTreeMap::new();
    for row in rows {
        *in_store.entry(row.payment.id).or_default() += 1;
    }
    (in_log, in_store)
}

fn run_pipeline(bugs: Bugs, faults: Faults) -> Outcome {
    run_pipeline_with(workload(), bugs, faults)
}

fn run_pipeline_with(workload: Workload, bugs: Bugs, faults: Faults) -> Outcome {
    let runtime = madsim::runtime::Runtime::with_seed_and_config(42, madsim::Config::default());
    runtime.block_on(async move {
        let spec = ClusterSpec::new(&workload, bugs);
        let recorder = Arc::new(Recorder::default());
        let net: Arc<dyn NetFaults> = if faults.drop_acks {
            Arc::new(DropEveryFourthAck::default())
        } else {
            Arc::new(NoFaults)
        };
        let cluster = Cluster::start(&spec, net, recorder.clone());
        let start = madsim::time::Instant::now();
        if faults.crashes {
            madsim::time::sleep(Duration::from_millis(150)).await;
            // Keep half of each file's unsynced tail: a torn write for recovery to cut off.
            cluster.crash(NodeName::Broker, &mut |_, unsynced| {
                Tear::keep(unsynced / 2, false)
            });
            madsim::time::sleep(Duration::from_millis(100)).await;
            cluster.crash(NodeName::Producer(1), &mut |_, unsynced| {
                Tear::keep(unsynced / 2, true)
            });
        }
        // Liveness, bounded: wait (in simulated time) until the store holds every owed payment.
        let deadline = start + Duration::from_secs(60);
        while madsim::time::Instant::now() < deadline {
            madsim::time::sleep(Duration::from_millis(100)).await;
            let owed = recorder.outboxed.lock().unwrap().clone();
            let (in_log, in_store) = durable_counts(&cluster);
            let done =
                |counts: &BTreeMap<PaymentId, u32>| owed.iter().all(|id| counts.contains_key(id));
            if owed.len() == 300 && done(&in_log) && done(&in_store) {
                break;
            }
        }
        let sim_time = start.elapsed();
        // Final recovery: the check reads what survives a crash, not what nodes hold in memory.
        cluster.kill(NodeName::Broker, &mut |_, _| Tear::LOSE_ALL);
        cluster.kill(NodeName::Store, &mut |_, _| Tear::LOSE_ALL);
        let (in_log, in_store) = durable_counts(&cluster);
        let outboxed = recorder.outboxed.lock().unwrap().clone();
        Outcome {
            outboxed,
            in_log,
            in_store,
            sim_time,
            recorder,
        }
    })
}

#[test]
fn every_payment_lands_exactly_once_through_crashes_restarts_and_lost_acks() {
    let outcome = run_pipeline(
        Bugs::NONE,
        Faults {
            drop_acks: true,
            crashes: true,
        },
    );
    outcome.assert_exactly_once();
    assert!(
        outcome.sim_time < Duration::from_secs(60),
        "liveness bound reached"
    );
    // The faults bit: retries were deduplicated, the crash tore a tail that recovery cut off,
    // and the restarted producer learnt from the broker which of its batches were in the log.
    let recorder = &outcome.recorder;
    assert!(recorder.duplicate_batches.load(Ordering::Relaxed) > 0);
    assert!(recorder.torn_tails_cut.load(Ordering::Relaxed) > 0);
    assert!(recorder.batches_known_after_restart.load(Ordering::Relaxed) > 0);
}

#[test]
fn sequences_crossing_the_wrap_point_stay_exactly_once_through_crashes_and_lost_acks() {
    // Every producer starts a few short of u32::MAX, so each crosses the wrap on every
    // partition in its first batches, with a broker crash, a producer restart and lost acks
    // around it: the broker's table, the stored batches, the outbox and the restart handshake
    // all compare sequences across the wrap.
    let outcome = run_pipeline_with(
        Workload {
            first_seq: u32::MAX - 6,
            ..workload()
        },
        Bugs::NONE,
        Faults {
            drop_acks: true,
            crashes: true,
        },
    );
    outcome.assert_exactly_once();
    assert!(
        outcome.sim_time < Duration::from_secs(60),
        "liveness bound reached"
    );
    let recorder = &outcome.recorder;
    assert!(recorder.duplicate_batches.load(Ordering::Relaxed) > 0);
    assert!(recorder.batches_known_after_restart.load(Ordering::Relaxed) > 0);
}

#[test]
fn without_faults_every_planted_bug_passes() {
    for bug in Bug::ALL {
        let outcome = run_pipeline(
            Bugs::NONE.with(bug),
            Faults {
                drop_acks: false,
                crashes: false,
            },
        );
        outcome.assert_exactly_once();
    }
}

#[test]
fn no_dedup_duplicates_a_batch_whose_ack_was_lost() {
    let outcome = run_pipeline(
        Bugs::NONE.with(Bug::NoDedup),
        Faults {
            drop_acks: true,
            crashes: true,
        },
    );
    assert!(
        !Outcome::duplicates(&outcome.in_log).is_empty(),
        "no-dedup must leave a duplicate in the log"
    );
}

#[test]
fn producer_state_not_rebuilt_duplicates_after_a_broker_restart() {
    let bugs = Bugs::NONE.with(Bug::ProducerStateNotRebuilt);
    let outcome = run_pipeline(
        bugs,
        Faults {
            drop_acks: true,
            crashes: true,
        },
    );
    assert!(
        !Outcome::duplicates(&outcome.in_log).is_empty(),
        "forgetting producer state must leave a duplicate in the log"
    );
}
