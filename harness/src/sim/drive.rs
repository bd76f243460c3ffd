//! The simulated run's phases, in simulated time: workload and faults, heal, liveness, final
//! recovery. The node faults of the schedule are carried out here; network faults act in the
//! shim (`sim::net`).
//!
//! Safety: nodes crash and restart, messages are lost, delayed and duplicated; at any time any
//! set of nodes may be down, but each restarts after its downtime or at the heal.

use crate::check::Durable;
use crate::history::{HarnessEvent, Recorder};
use crate::schedule::Fault;
use crate::sim::net::Network;
use crate::world::liveness::Settlement;
use crate::world::plan::{generator, RunPlan, STREAM_DISK};
use broker_under_test::cluster::{Cluster, ClusterSpec, BROKER, STORE};
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::storage::Tear;
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the system rests after liveness before the final crash.
const QUIESCE: Duration = Duration::from_millis(200);

/// What the driver hands back after the final recovery.
pub(crate) struct Finished {
    pub(crate) durable: Durable,
    pub(crate) liveness_missing: Vec<String>,
    pub(crate) never_outboxed: u64,
    pub(crate) heal_us: u64,
    pub(crate) unsynced_writes_lost: u64,
}

/// Nodes that are down (crashed, waiting to restart) or paused, shared by the injector, the
/// restart timers and the heal so that each node is brought back exactly once.
#[derive(Default)]
struct Downed {
    crashed: BTreeSet<String>,
    paused: BTreeSet<String>,
    healed: bool,
}

pub(crate) async fn drive(
    plan: RunPlan,
    spec: ClusterSpec,
    recorder: Arc<Recorder>,
    network: Arc<Network>,
) -> Finished {
    let cluster = Arc::new(Cluster::start(&spec, network.clone(), recorder.clone()));
    let disk_rng = Arc::new(Mutex::new(generator(plan.seed, STREAM_DISK)));
    let downed = Arc::new(Mutex::new(Downed::default()));
    let unsynced_lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if plan.plant_nondeterminism {
        // A static carries over from one run to the next in the same process: the classic leak.
        // (A std HashMap would not do here: each run's fresh thread takes its hash keys from
        // madsim's seeded randomness, so its order repeats.)
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let runs_before = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        recorder.harness(
            "harness",
            HarnessEvent::PlantedNondeterminism { runs_before },
        );
    }

    // Phase 1: workload and faults.
    let injector = madsim::task::spawn(inject(
        plan.clone(),
        cluster.clone(),
        recorder.clone(),
        disk_rng.clone(),
        downed.clone(),
        unsynced_lost.clone(),
    ));
    madsim::time::sleep(Duration::from_millis(plan.scenario.workload.duration_ms)).await;

    // Phase 2: heal.
    injector.abort();
    network.heal();
    {
        let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
        d.healed = true;
        for node in std::mem::take(&mut d.crashed) {
            cluster.restart(&node);
            recorder.harness(&node, HarnessEvent::NodeRestarted);
        }
        for node in std::mem::take(&mut d.paused) {
            cluster.resume(&node);
            recorder.harness(&node, HarnessEvent::NodeResumed);
        }
    }
    recorder.harness("harness", HarnessEvent::Healed);
    let heal_us = madsim::time::TimeHandle::current().elapsed().as_micros() as u64;

    // Phase 3: liveness, bounded.
    let (liveness_missing, never_outboxed) = await_liveness(&recorder, &plan).await;

    // Phase 4: final recovery. The system rests a moment (background flushers run, as they
    // would in a system at rest); then clients stop, and broker and store lose power once more
    // and recover.
    madsim::time::sleep(QUIESCE).await;
    recorder.harness("harness", HarnessEvent::FinalRecovery);
    for node in spec
        .node_names()
        .iter()
        .filter(|n| *n != BROKER && *n != STORE)
    {
        cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
    }
    for node in [BROKER, STORE] {
        let torn = disk_rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_bool(plan.scenario.faults.torn_write_probability);
        let report = crash_disk(&cluster, node, torn, false, &disk_rng);
        unsynced_lost.fetch_add(report.bytes_lost, std::sync::atomic::Ordering::Relaxed);
        recorder.harness(node, HarnessEvent::NodeCrashed { report });
        cluster.restart(node);
        recorder.harness(node, HarnessEvent::NodeRestarted);
    }
    // Recovery reads and truncates each file: a few milliseconds per partition.
    madsim::time::sleep(Duration::from_millis(
        100 + 10 * u64::from(plan.scenario.workload.partitions),
    ))
    .await;
    for node in [BROKER, STORE] {
        cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
    }
    let broker_disk = cluster.disk(BROKER);
    let logs = (0..plan.scenario.workload.partitions)
        .map(|p| recover_log(&broker_disk.contents(&log_file(p))).batches)
        .collect();
    let (rows, _, _) = recover_rows(&cluster.disk(STORE).contents(APPLIED_FILE));
    Finished {
        durable: Durable { logs, rows },
        liveness_missing,
        never_outboxed,
        heal_us,
        unsynced_writes_lost: unsynced_lost.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Kills `node`, crashing its disk with a tear drawn from the disk generator.
fn crash_disk(
    cluster: &Cluster,
    node: &str,
    torn: bool,
    garble: bool,
    disk_rng: &Mutex<ChaCha8Rng>,
) -> broker_under_test::storage::CrashReport {
    let mut rng = disk_rng.lock().unwrap_or_else(|e| e.into_inner());
    cluster.kill(node, &mut |_, unsynced| {
        if torn && unsynced > 0 {
            Tear {
                keep: rng.random_range(0..unsynced),
                garble,
            }
        } else {
            Tear::LOSE_ALL
        }
    })
}

/// Carries out the schedule's node faults at their times; network faults act in the shim and
/// are only marked here.
async fn inject(
    plan: RunPlan,
    cluster: Arc<Cluster>,
    recorder: Arc<Recorder>,
    disk_rng: Arc<Mutex<ChaCha8Rng>>,
    downed: Arc<Mutex<Downed>>,
    unsynced_lost: Arc<std::sync::atomic::AtomicU64>,
) {
    let start = madsim::time::Instant::now();
    for entry in plan.schedule {
        madsim::time::sleep_until(start + Duration::from_millis(entry.at_ms)).await;
        recorder.harness(
            &entry.target,
            HarnessEvent::FaultStarted {
                fault: entry.clone(),
            },
        );
        let node = entry.target.clone();
        let back_after = Duration::from_millis(entry.duration_ms);
        match entry.fault {
            Fault::Crash { torn, garble } => {
                {
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains(&node) {
                        continue; // already down: the earlier crash's restart stands
                    }
                    d.crashed.insert(node.clone());
                    d.paused.remove(&node);
                }
                let report = crash_disk(&cluster, &node, torn, garble, &disk_rng);
                unsynced_lost.fetch_add(report.bytes_lost, std::sync::atomic::Ordering::Relaxed);
                recorder.harness(&node, HarnessEvent::NodeCrashed { report });
                let (cluster, recorder, downed) =
                    (cluster.clone(), recorder.clone(), downed.clone());
                madsim::task::spawn(async move {
                    madsim::time::sleep(back_after).await;
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if !d.healed && d.crashed.remove(&node) {
                        cluster.restart(&node);
                        recorder.harness(&node, HarnessEvent::NodeRestarted);
                    }
                });
            }
            Fault::Pause => {
                {
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains(&node) || !d.paused.insert(node.clone()) {
                        continue;
                    }
                }
                cluster.pause(&node);
                recorder.harness(&node, HarnessEvent::NodePaused);
                let (cluster, recorder, downed) =
                    (cluster.clone(), recorder.clone(), downed.clone());
                madsim::task::spawn(async move {
                    madsim::time::sleep(back_after).await;
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if !d.healed && d.paused.remove(&node) {
                        cluster.resume(&node);
                        recorder.harness(&node, HarnessEvent::NodeResumed);
                    }
                });
            }
            _ => {}
        }
    }
}

/// Waits until every owed payment is settled, or the liveness bound passes; returns the
/// payments still unsettled and how many were never outboxed (empty and 0 on success).
async fn await_liveness(recorder: &Recorder, plan: &RunPlan) -> (Vec<String>, u64) {
    let deadline =
        madsim::time::Instant::now() + Duration::from_millis(plan.scenario.limits.liveness_ms);
    let expected = u64::from(plan.scenario.workload.producers)
        * u64::from(plan.scenario.workload.payments_per_producer);
    let mut settlement = Settlement::default();
    loop {
        recorder.with_entries(|h| settlement.update(h));
        // Producers outbox every payment once they run again; wait for all of them.
        if settlement.all_settled() && settlement.owed as u64 >= expected {
            recorder.harness("harness", HarnessEvent::LivenessReached);
            return (Vec::new(), 0);
        }
        if madsim::time::Instant::now() >= deadline {
            let missing = settlement.unsettled();
            let never_outboxed = expected.saturating_sub(settlement.owed as u64);
            recorder.harness(
                "harness",
                HarnessEvent::LivenessTimedOut {
                    missing: missing.len() as u32 + never_outboxed as u32,
                },
            );
            return (missing, never_outboxed);
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
}
