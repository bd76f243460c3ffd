//! The simulated run's phases, in simulated time: workload and faults, heal, liveness, final
//! recovery. The node faults of the schedule are carried out here; network faults act in the
//! shim (`sim::net`).
//!
//! Safety: nodes crash and restart, messages are lost, delayed and duplicated; at any time any
//! set of nodes may be down, but each restarts after its downtime or at the heal.

use crate::check::{Anomaly, AnomalyKind, Durable};
use crate::history::{Actor, HarnessEvent, Recorder};
use crate::schedule::{Corruption, Fault};
use crate::sim::net::Network;
use crate::system::{durable_nodes, node_names, Deployment, Setup};
use crate::world::liveness::{Liveness, Settled};
use crate::world::outcome::Ending;
use crate::world::plan::{generator, RunPlan, STREAM_DISK, STREAM_IO, TIME_LIMIT_SLACK_MS};
use broker_under_test::storage::{IoOp, Tear};
use broker_under_test::NodeName;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the system rests after liveness before the final crash.
const QUIESCE: Duration = Duration::from_millis(200);

/// How long the final read may take, in simulated time: ample for recovery and for reading
/// the largest accepted scenario back through its clients, and well inside the run's time
/// limit, so that a read that never finishes is reported as such, not as `time-limit`.
const FINAL_READ_BOUND: Duration = Duration::from_millis(TIME_LIMIT_SLACK_MS / 2);

/// Nodes that are down (crashed, waiting to restart) or paused, shared by the injector, the
/// restart timers and the heal so that each node is brought back exactly once.
///
/// Keyed by the node's name as text: the heal brings nodes back in that order, and changing
/// it would change every trace.
#[derive(Default)]
struct Downed {
    crashed: BTreeMap<String, NodeName>,
    paused: BTreeMap<String, NodeName>,
    /// Nodes with an I/O error window open, with the window's number: a window's end closes
    /// it only if no later window on that node replaced it.
    io_windows: BTreeMap<String, (NodeName, u64)>,
    io_windows_opened: u64,
    healed: bool,
}

/// The simulated system and what the driver's tasks share about it.
#[derive(Clone)]
struct Sim {
    deployment: Arc<dyn Deployment>,
    recorder: Arc<Recorder>,
    /// The disk stream: how much of each crash's unsynced bytes survives.
    disk_rng: Arc<Mutex<ChaCha8Rng>>,
    /// The I/O error stream: which storage operation an open window fails. A stream of its
    /// own, so that crashes' tears draw exactly as in a run without I/O errors.
    io_rng: Arc<Mutex<ChaCha8Rng>>,
    downed: Arc<Mutex<Downed>>,
    unsynced_lost: Arc<AtomicU64>,
}

pub(crate) async fn drive(
    plan: RunPlan,
    recorder: Arc<Recorder>,
    network: Arc<Network>,
) -> Result<Ending, Anomaly> {
    refuse_unsupported(&plan)?;
    let deployment = plan.system.deploy(Setup {
        scenario: &plan.scenario,
        seed: plan.seed,
        bugs: plan.bugs,
        net: network.clone(),
        observer: recorder.clone(),
    });
    let sim = Sim {
        deployment: Arc::from(deployment),
        recorder,
        disk_rng: Arc::new(Mutex::new(generator(plan.seed, STREAM_DISK))),
        io_rng: Arc::new(Mutex::new(generator(plan.seed, STREAM_IO))),
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
    let durable = sim.final_recovery(&plan).await?;
    Ok(Ending {
        durable,
        settled,
        heal_us,
        liveness_ms: plan.scenario.limits.liveness_ms,
        unsynced_writes_lost: sim.unsynced_lost.load(Ordering::Relaxed),
    })
}

/// A scenario with more brokers than the system deploys fails at once, saying so, rather than
/// deep inside the system's deployment.
fn refuse_unsupported(plan: &RunPlan) -> Result<(), Anomaly> {
    let (asked, max) = (plan.scenario.workload.brokers, plan.system.max_brokers());
    if asked <= max {
        return Ok(());
    }
    let detail = format!(
        "system '{}' deploys at most {max} broker(s); scenario '{}' asks for {asked} \
         (workload.brokers)",
        plan.system.name(),
        plan.scenario.name
    );
    Err(Anomaly::new(AnomalyKind::Panic, None, 0, detail))
}

/// The determinism check's self-test: a static carries over from one run to the next in the
/// same process, the classic leak. (A std HashMap would not do here: each run's fresh thread
/// takes its hash keys from madsim's seeded randomness, so its order repeats.)
fn plant_nondeterminism(recorder: &Recorder) {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let runs_before = RUNS.fetch_add(1, Ordering::Relaxed);
    recorder.harness(
        Actor::Harness,
        HarnessEvent::PlantedNondeterminism { runs_before },
    );
}

impl Sim {
    /// Faults stop: crashed nodes restart at once, paused nodes resume.
    fn heal(&self) {
        let mut d = self.downed.lock().unwrap_or_else(|e| e.into_inner());
        d.healed = true;
        for node in std::mem::take(&mut d.crashed).into_values() {
            self.deployment.restart(node);
            self.recorder.harness(node, HarnessEvent::NodeRestarted);
        }
        for node in std::mem::take(&mut d.paused).into_values() {
            self.deployment.resume(node);
            self.recorder.harness(node, HarnessEvent::NodeResumed);
        }
        for (node, _) in std::mem::take(&mut d.io_windows).into_values() {
            self.deployment.set_io_errors(node, None);
        }
        drop(d);
        self.recorder.harness(Actor::Harness, HarnessEvent::Healed);
    }

    /// The system rests a moment (background flushers run, as they would in a system at
    /// rest); then clients stop, and broker (or replicas and controller) and store lose power
    /// once more and recover.
    /// Returns what they serve to the system's own read clients then; one that does not
    /// answer within [`FINAL_READ_BOUND`] fails the run.
    async fn final_recovery(&self, plan: &RunPlan) -> Result<Durable, Anomaly> {
        madsim::time::sleep(QUIESCE).await;
        self.recorder
            .harness(Actor::Harness, HarnessEvent::FinalRecovery);
        let durable = durable_nodes(&plan.scenario);
        for node in node_names(&plan.scenario)
            .into_iter()
            .filter(|n| !durable.contains(n))
        {
            self.deployment.kill(node, &mut |_, _| Tear::LOSE_ALL);
        }
        // One broker: the broker, then the store, each drawing its tear in that order (as
        // every trace before replication). Replicated: every replica, the controller, the
        // store, all down at once and then all back, so the read meets a cluster recovered
        // from its disks alone.
        for &node in &durable {
            let torn = self
                .disk_rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random_bool(plan.scenario.faults.torn_write_probability);
            self.crash(node, torn, false, None);
            if !plan.scenario.workload.replicated() {
                self.restart(node);
            }
        }
        if plan.scenario.workload.replicated() {
            for &node in &durable {
                self.restart(node);
            }
        }
        let read = madsim::time::timeout(FINAL_READ_BOUND, self.deployment.final_read()).await;
        // Every node stops: a madsim runtime is not torn down when dropped, and a live node's
        // tasks would keep it (and every disk) alive, run after run.
        for &node in &durable {
            self.deployment.kill(node, &mut |_, _| Tear::LOSE_ALL);
        }
        let failed = |why: String| {
            let at_us = madsim::time::TimeHandle::current().elapsed().as_micros() as u64;
            let detail = format!("the final read failed: {why}");
            Anomaly::new(AnomalyKind::Liveness, None, at_us, detail)
        };
        match read {
            Ok(Ok(durable)) => Ok(durable),
            Ok(Err(why)) => Err(failed(why)),
            Err(_) => Err(failed(format!(
                "no answer within {} s",
                FINAL_READ_BOUND.as_secs()
            ))),
        }
    }

    /// Starts `node` again and records it.
    fn restart(&self, node: NodeName) {
        self.deployment.restart(node);
        self.recorder.harness(node, HarnessEvent::NodeRestarted);
    }

    /// Kills `node`, crashing its disk with a tear drawn from the disk generator, and records
    /// the crash. A corrupted crash keeps every unsynced byte (so its frames are whole) with
    /// the schedule's damage inside them, and draws nothing from the disk generator.
    fn crash(&self, node: NodeName, torn: bool, garble: bool, corrupt: Option<Corruption>) {
        let report = {
            let mut rng = self.disk_rng.lock().unwrap_or_else(|e| e.into_inner());
            self.deployment.kill(node, &mut |_, unsynced| {
                if let Some(c) = corrupt.filter(|_| torn && unsynced > 0) {
                    Tear {
                        keep: unsynced,
                        garble,
                        damage: Some(c.for_file(unsynced)),
                    }
                } else if torn && unsynced > 0 {
                    Tear::keep(rng.random_range(0..unsynced), garble)
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

    /// Opens an I/O error window on `node`'s disk for `length`: each operation of a kind in
    /// `ops` fails with probability `rate`, drawn from the I/O error stream. A later window on
    /// the same node replaces this one; the heal closes every window.
    fn io_window(&self, node: NodeName, rate: f64, ops: Vec<IoOp>, length: Duration) {
        let number = {
            let mut d = self.downed.lock().unwrap_or_else(|e| e.into_inner());
            d.io_windows_opened += 1;
            let number = d.io_windows_opened;
            d.io_windows.insert(node.to_string(), (node, number));
            number
        };
        let rng = self.io_rng.clone();
        let carried_out = self.deployment.set_io_errors(
            node,
            Some(Box::new(move |op, _file| {
                ops.contains(&op)
                    && rng
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .random_bool(rate)
            })),
        );
        // A scenario whose I/O errors never happen must not pass: the run fails, saying why.
        assert!(
            carried_out,
            "the system under test does not carry out io-errors faults \
             (Deployment::set_io_errors returned false)"
        );
        let sim = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(length).await;
            let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
            let name = node.to_string();
            if !d.healed && d.io_windows.get(&name).map(|w| w.1) == Some(number) {
                d.io_windows.remove(&name);
                sim.deployment.set_io_errors(node, None);
            }
        });
    }

    /// Brings `node` back after `after`, unless the heal did first.
    fn restart_later(&self, node: NodeName, after: Duration, paused: bool) {
        let sim = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(after).await;
            let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
            if d.healed {
                return;
            }
            let name = node.to_string();
            if paused && d.paused.remove(&name).is_some() {
                sim.deployment.resume(node);
                sim.recorder.harness(node, HarnessEvent::NodeResumed);
            } else if !paused && d.crashed.remove(&name).is_some() {
                sim.deployment.restart(node);
                sim.recorder.harness(node, HarnessEvent::NodeRestarted);
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
            entry.target,
            HarnessEvent::FaultStarted {
                fault: entry.clone(),
            },
        );
        // Node faults hit one node (a validated schedule says so); windows act in the shim.
        let Some(node) = entry.target.node() else {
            continue;
        };
        let name = node.to_string();
        let back_after = Duration::from_millis(entry.duration_ms);
        match entry.fault {
            Fault::Crash {
                torn,
                garble,
                corrupt,
            } => {
                {
                    let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains_key(&name) {
                        continue; // already down: the earlier crash's restart stands
                    }
                    d.crashed.insert(name.clone(), node);
                    d.paused.remove(&name);
                }
                sim.crash(node, torn, garble, corrupt);
                sim.restart_later(node, back_after, false);
            }
            Fault::Pause => {
                {
                    let mut d = sim.downed.lock().unwrap_or_else(|e| e.into_inner());
                    if d.crashed.contains_key(&name) || d.paused.insert(name, node).is_some() {
                        continue;
                    }
                }
                sim.deployment.pause(node);
                sim.recorder.harness(node, HarnessEvent::NodePaused);
                sim.restart_later(node, back_after, true);
            }
            Fault::IoErrors { rate, ops } => sim.io_window(node, rate, ops, back_after),
            Fault::Rot { log, damage } => {
                sim.deployment
                    .damage_log(node, log, &|len| damage.for_file(len));
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
            recorder.harness(Actor::Harness, settled.event());
            return settled;
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use crate::system::{Deployment, Setup, System};
    use crate::world::RunPlan;

    /// A system of one broker that must never be deployed here.
    struct OneBroker;

    impl System for OneBroker {
        fn name(&self) -> &str {
            "one-broker"
        }

        fn deploy(&self, _: Setup<'_>) -> Box<dyn Deployment> {
            unreachable!("a replicated scenario is refused before deployment")
        }
    }

    #[test]
    fn a_system_of_one_broker_refuses_a_replicated_scenario_with_a_clear_line() {
        let failover = Scenario::resolve("failover").unwrap();
        let plan = RunPlan::new(failover, 0, Default::default()).with_system(OneBroker);
        let outcome = crate::sim::run(&plan);
        assert_eq!(outcome.anomalies.len(), 1, "{:#?}", outcome.anomalies);
        let detail = &outcome.anomalies[0].detail;
        assert!(
            detail.contains("deploys at most 1 broker") && detail.contains("asks for 3"),
            "{detail}"
        );
    }
}
