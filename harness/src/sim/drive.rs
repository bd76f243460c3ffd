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
use crate::world::durable::read_durable;
use crate::world::liveness::{Liveness, Settled};
use crate::world::outcome::Ending;
use crate::world::plan::{generator, RunPlan, STREAM_DISK};
use broker_under_test::cluster::{Cluster, ClusterSpec, BROKER, STORE};
use broker_under_test::storage::Tear;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the system rests after liveness before the final crash.
const QUIESCE: Duration = Duration::from_millis(200);

/// Nodes that are down (crashed, waiting to restart) or paused, shared by the injector, the
/// restart timers and the heal so that each node is brought back exactly once.
#[derive(Default)]
struct Downed {
    crashed: BTreeSet<String>,
    paused: BTreeSet<String>,
    healed: bool,
}

/// The simulated system and what the driver's tasks share about it.
#[derive(Clone)]
struct Sim {
    cluster: Arc<Cluster>,
    recorder: Arc<Recorder>,
    /// The disk stream: how much of each crash's unsynced bytes survives.
    disk_rng: Arc<Mutex<ChaCha8Rng>>,
    downed: Arc<Mutex<Downed>>,
    unsynced_lost: Arc<AtomicU64>,
}

pub(crate) async fn drive(
    plan: RunPlan,
    spec: ClusterSpec,
    recorder: Arc<Recorder>,
    network: Arc<Network>,
) -> Ending {
    let sim = Sim {
        cluster: Arc::new(Cluster::start(&spec, network.clone(), recorder.clone())),
        recorder,
        disk_rng: Arc::new(Mutex::new(generator(plan.seed, STREAM_DISK))),
        downed: Arc::default(),
        unsynced_lost: Arc::default(),
    };
    if plan.plant_nondeterminism {
        plant_nondeterminism(&sim.recorder);
    }

    // Phase 1: workload and faults.
    let injector = madsim::task::spawn(inject(plan.clone(), sim.clone()));
    madsim::time::sleep(Duration::from_millis(plan.scenario.workload.duration_ms)).await;

    // Phase 2: heal.
    injector.abort();
    network.heal();
    sim.heal();
    let heal_us = madsim::time::TimeHandle::current().elapsed().as_micros() as u64;

    // Phase 3: liveness, bounded.
    let settled = await_liveness(&sim.recorder, &plan).await;

    // Phase 4: final recovery.
    let durable = sim.final_recovery(&plan, &spec).await;
    Ending {
        durable,
        settled,
        heal_us,
        liveness_ms: plan.scenario.limits.liveness_ms,
        unsynced_writes_lost: sim.unsynced_lost.load(Ordering::Relaxed),
    }
}

/// The determinism check's self-test: a static carries over from one run to the next in the
/// same process, the classic leak. (A std HashMap would not do here: each run's fresh thread
/// takes its hash keys from madsim's seeded randomness, so its order repeats.)
fn plant_nondeterminism(recorder: &Recorder) {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let runs_before = RUNS.fetch_add(1, Ordering::Relaxed);
    recorder.harness(
        "harness",
        HarnessEvent::PlantedNondeterminism { runs_before },
    );
}

impl Sim {
    /// Faults stop: crashed nodes restart at once, paused nodes resume.
    fn heal(&self) {
        let mut d = self.downed.lock().unwrap_or_else(|e| e.into_inner());
        d.healed = true;
        for node in std::mem::take(&mut d.crashed) {
            self.cluster.restart(&node);
            self.recorder.harness(&node, HarnessEvent::NodeRestarted);
        }
        for node in std::mem::take(&mut d.paused) {
            self.cluster.resume(&node);
            self.recorder.harness(&node, HarnessEvent::NodeResumed);
        }
        drop(d);
        self.recorder.harness("harness", HarnessEvent::Healed);
    }

    /// The system rests a moment (background flushers run, as they would in a system at
    /// rest); then clients stop, and broker and store lose power once more, recover, and stop.
    /// Returns what their disks hold.
    async fn final_recovery(&self, plan: &RunPlan, spec: &ClusterSpec) -> Durable {
        madsim::time::sleep(QUIESCE).await;
        self.recorder
            .harness("harness", HarnessEvent::FinalRecovery);
        for node in spec
            .node_names()
            .iter()
            .filter(|n| *n != BROKER && *n != STORE)
        {
            self.cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
        }
        for node in [BROKER, STORE] {
            let torn = self
                .disk_rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random_bool(plan.scenario.faults.torn_write_probability);
            self.crash(node, torn, false);
            self.cluster.restart(node);
            self.recorder.harness(node, HarnessEvent::NodeRestarted);
        }
        // Recovery reads and truncates each file: a few milliseconds per partition.
        let partitions = plan.scenario.workload.partitions;
        madsim::time::sleep(Duration::from_millis(100 + 10 * u64::from(partitions))).await;
        for node in [BROKER, STORE] {
            self.cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
        }
        read_durable(partitions, |node, file| {
            self.cluster.disk(node).contents(file)
        })
    }

    /// Kills `node`, crashing its disk with a tear drawn from the disk generator, and records
    /// the crash.
    fn crash(&self, node: &str, torn: bool, garble: bool) {
        let report = {
            let mut rng = self.disk_rng.lock().unwrap_or_else(|e| e.into_inner());
            self.cluster.kill(node, &mut |_, unsynced| {
                if torn && unsynced > 0 {
                    Tear {
                        keep: rng.random_range(0..unsynced),
                        garble,
                    }
                } else {
                    Tear::LOSE_ALL
                }
            })
        };
        self.unsynced_lost
            .fetch_add(report.bytes_lost, Ordering::Relaxed);
        self.recorder
            .harness(node, HarnessEvent::NodeCrashed { report });
    }

    /// Brings `node` back after `after`, unless the heal did first.
    fn restart_later(&self, node: String, after: Duration, paused: bool) {
        let sim = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(after).await;
            let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
            if d.healed {
                return;
            }
            if paused && d.paused.remove(&node) {
                sim.cluster.resume(&node);
                sim.recorder.harness(&node, HarnessEvent::NodeResumed);
            } else if !paused && d.crashed.remove(&node) {
                sim.cluster.restart(&node);
                sim.recorder.harness(&node, HarnessEvent::NodeRestarted);
            }
        });
    }
}

/// Carries out the schedule's node faults at their times; network faults act in the shim and
/// are only marked here.
async fn inject(plan: RunPlan, sim: Sim) {
    let start = madsim::time::Instant::now();
    for entry in plan.schedule {
        madsim::time::sleep_until(start + Duration::from_millis(entry.at_ms)).await;
        sim.recorder.harness(
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
                    let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains(&node) {
                        continue; // already down: the earlier crash's restart stands
                    }
                    d.crashed.insert(node.clone());
                    d.paused.remove(&node);
                }
                sim.crash(&node, torn, garble);
                sim.restart_later(node, back_after, false);
            }
            Fault::Pause => {
                {
                    let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains(&node) || !d.paused.insert(node.clone()) {
                        continue;
                    }
                }
                sim.cluster.pause(&node);
                sim.recorder.harness(&node, HarnessEvent::NodePaused);
                sim.restart_later(node, back_after, true);
            }
            _ => {}
        }
    }
}

/// Waits until every owed payment is settled, or the liveness bound passes.
async fn await_liveness(recorder: &Recorder, plan: &RunPlan) -> Settled {
    let deadline =
        madsim::time::Instant::now() + Duration::from_millis(plan.scenario.limits.liveness_ms);
    let mut liveness = Liveness::new(plan);
    let mut seen = 0;
    loop {
        recorder.with_entries(|h| {
            liveness.absorb(&h[seen..]);
            seen = h.len();
        });
        if let Some(settled) = liveness.verdict(madsim::time::Instant::now() >= deadline) {
            recorder.harness("harness", settled.event());
            return settled;
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
}
