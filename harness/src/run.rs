//! One run: turn the plan into a simulated world, drive it through its phases, and judge it.
//!
//! Phases, in simulated time:
//! 1. Workload and faults run together for the scenario's duration.
//! 2. Heal: faults stop, crashed nodes restart at once, paused nodes resume, the network is whole.
//! 3. Liveness: within `limits.liveness_ms` every owed payment must be acknowledged, in the log
//!    and in the store.
//! 4. Final recovery: clients stop; broker and store crash once more and recover; the check
//!    reads their durable state, not memory or the producers' word.
//!
//! Safety: nodes crash and restart, messages are lost, delayed and duplicated; at any time any
//! set of nodes may be down, but each restarts after its downtime or at the heal.

use crate::checker::{self, Anomaly, AnomalyKind, Durable};
use crate::faults::{self, Fault, FaultSchedule};
use crate::history::{trace_hash, Entry, HarnessEvent, Recorder, What, STEP_LIMIT_PANIC};
use crate::net::Network;
use crate::scenario::Scenario;
use broker_under_test::cluster::{Cluster, ClusterSpec, Workload};
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::storage::Tear;
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use broker_under_test::{Bugs, Event, NodeName, Probe};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything one run needs, resolved and validated: the scenario, the seed, the planted bugs
/// and the fault schedule drawn from the seed (or given, when replaying or shrinking).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub scenario: Scenario,
    pub seed: u64,
    pub bugs: Bugs,
    pub schedule: FaultSchedule,
    /// Writes a process-wide counter into the trace: the determinism check's self-test.
    pub plant_nondeterminism: bool,
    /// Keeps every message beside the history, for the HTML timeline. Changes no trace hash.
    pub record_messages: bool,
    /// The `--scenario` argument as the user gave it (a catalogue name or a file path), for
    /// the replay command; the scenario's own name when it came from the catalogue.
    pub scenario_arg: String,
}

/// How long the system rests after liveness before the final crash.
const QUIESCE: Duration = Duration::from_millis(200);

/// The generator streams of a run, derived from the seed in a fixed order.
const STREAM_SCHEDULE: u64 = 0;
const STREAM_NETWORK: u64 = 1;
const STREAM_DISK: u64 = 2;

fn generator(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl RunPlan {
    pub fn new(scenario: Scenario, seed: u64, bugs: Bugs) -> RunPlan {
        let schedule = faults::generate(&scenario, &mut generator(seed, STREAM_SCHEDULE));
        RunPlan {
            scenario_arg: scenario.name.clone(),
            scenario,
            seed,
            bugs,
            schedule,
            plant_nondeterminism: false,
            record_messages: false,
        }
    }

    pub fn bug_names(&self) -> Vec<String> {
        self.bugs.iter().map(|b| b.name().to_string()).collect()
    }

    fn cluster_spec(&self) -> ClusterSpec {
        let w = &self.scenario.workload;
        let workload = Workload {
            producers: w.producers,
            payments_per_producer: w.payments_per_producer,
            customers: w.customers,
            partitions: w.partitions,
            payment_interval: Duration::from_millis(w.payment_interval_ms),
            max_batch_records: w.max_batch_records,
            seed: self.seed,
        };
        ClusterSpec::new(&workload, self.bugs)
    }

    /// The simulated-time bound past which madsim stops the run.
    fn time_limit(&self) -> Duration {
        Duration::from_millis(
            self.scenario.workload.duration_ms + self.scenario.limits.liveness_ms + 60_000,
        )
    }

    /// The command that reruns this plan.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "harness run --scenario {} --seed {}",
            self.scenario_arg, self.seed
        );
        for bug in self.bugs.iter() {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        cmd
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// Counters over one run (summed over seeds by `explore`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub payments: u64,
    pub log_records: u64,
    pub store_rows: u64,
    pub produce_requests: u64,
    pub retries: u64,
    pub dedup_hits: u64,
    pub broker_crashes: u64,
    pub producer_restarts: u64,
    pub consumer_restarts: u64,
    pub store_restarts: u64,
    pub messages: u64,
    pub messages_dropped: u64,
    pub unsynced_writes_lost: u64,
    pub events: u64,
    /// Simulated milliseconds the runs took.
    pub sim_ms: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.payments += o.payments;
        self.log_records += o.log_records;
        self.store_rows += o.store_rows;
        self.produce_requests += o.produce_requests;
        self.retries += o.retries;
        self.dedup_hits += o.dedup_hits;
        self.broker_crashes += o.broker_crashes;
        self.producer_restarts += o.producer_restarts;
        self.consumer_restarts += o.consumer_restarts;
        self.store_restarts += o.store_restarts;
        self.messages += o.messages;
        self.messages_dropped += o.messages_dropped;
        self.unsynced_writes_lost += o.unsynced_writes_lost;
        self.events += o.events;
        self.sim_ms += o.sim_ms;
    }
}

/// The verdict of one run, with what is needed to understand and replay it.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub verdict: Verdict,
    pub anomalies: Vec<Anomaly>,
    pub stats: Stats,
    pub sim_ms: u64,
    pub trace_hash: String,
    /// How often each probe (a rare path that matters) was hit.
    pub probes: BTreeMap<Probe, u64>,
    #[serde(skip)]
    pub history: Vec<Entry>,
    /// Every message, when the plan asked for them.
    #[serde(skip)]
    pub messages: Vec<crate::net::MessageRecord>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Runs a plan in a fresh thread with a fresh madsim runtime, so no state (statics, hash seeds,
/// thread-locals) carries over from another run.
pub fn run(plan: &RunPlan) -> RunOutcome {
    let plan = plan.clone();
    install_quiet_panic_hook();
    std::thread::Builder::new()
        .name(format!("{RUN_THREAD_PREFIX}{}", plan.seed))
        .spawn(move || run_here(&plan))
        .expect("spawn a run thread")
        .join()
        .expect("a run thread reports its panics as anomalies")
}

const RUN_THREAD_PREFIX: &str = "harness-run-";

/// Panics inside a run are expected (planted bugs, step limits) and reported as anomalies; keep
/// the default hook's backtrace noise for every other thread.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_run = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(RUN_THREAD_PREFIX));
            if !in_run {
                default(info);
            }
        }));
    });
}

/// What the driver hands back after the final recovery.
struct Finished {
    durable: Durable,
    liveness_missing: Vec<String>,
    never_outboxed: u64,
    heal_us: u64,
    unsynced_writes_lost: u64,
}

fn run_here(plan: &RunPlan) -> RunOutcome {
    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(plan.seed, sim_config());
    runtime.set_time_limit(plan.time_limit());
    let recorder = Arc::new(Recorder::new(plan.scenario.limits.max_steps));
    let spec = plan.cluster_spec();
    let names = spec
        .node_names()
        .into_iter()
        .map(|name| (name.sim_addr().ip(), name.to_string()))
        .collect();
    let network = Arc::new(Network::new(
        names,
        &plan.schedule,
        generator(plan.seed, STREAM_NETWORK),
        recorder.clone(),
        plan.record_messages,
    ));
    let driven = {
        let (plan, recorder, network) = (plan.clone(), recorder.clone(), network.clone());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            runtime.block_on(drive(plan, spec, recorder, network))
        }))
    };
    let history = recorder.take();
    let sim_ms = history.last().map_or(0, |e| e.at_us / 1000);
    let mut anomalies = Vec::new();
    let mut stats = Stats::default();
    match driven {
        Ok(finished) => {
            anomalies.extend(checker::check(&history, &finished.durable));
            if !finished.liveness_missing.is_empty() || finished.never_outboxed > 0 {
                anomalies.push(liveness_anomaly(
                    &finished.liveness_missing,
                    finished.never_outboxed,
                    finished.heal_us,
                    plan.scenario.limits.liveness_ms,
                ));
            }
            stats.log_records = finished.durable.records().count() as u64;
            stats.store_rows = finished.durable.rows.len() as u64;
            stats.unsynced_writes_lost = finished.unsynced_writes_lost;
        }
        Err(panic) => anomalies.push(panic_anomaly(&panic, sim_ms)),
    }
    stats.messages = network.messages.load(std::sync::atomic::Ordering::Relaxed);
    stats.messages_dropped = network.dropped.load(std::sync::atomic::Ordering::Relaxed);
    RunOutcome::judged(
        plan,
        history,
        anomalies,
        stats,
        recorder.probes(),
        network.take_messages(),
    )
}

impl RunOutcome {
    /// Puts a run's verdict together: the counters the history shows, the trace hash, pass or
    /// fail. Shared by the simulation and real mode.
    pub(crate) fn judged(
        plan: &RunPlan,
        history: Vec<Entry>,
        anomalies: Vec<Anomaly>,
        mut stats: Stats,
        probes: BTreeMap<Probe, u64>,
        messages: Vec<crate::net::MessageRecord>,
    ) -> RunOutcome {
        count_history(&history, &mut stats);
        let sim_ms = history.last().map_or(0, |e| e.at_us / 1000);
        stats.events = history.len() as u64;
        stats.sim_ms = sim_ms;
        RunOutcome {
            scenario: plan.scenario.name.clone(),
            seed: plan.seed,
            bugs: plan.bug_names(),
            verdict: if anomalies.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            anomalies,
            stats,
            sim_ms,
            trace_hash: trace_hash(&history),
            probes,
            history,
            messages,
        }
    }
}

/// madsim's own network: no loss and a fixed 1 ms latency. Every loss, delay, duplicate and
/// reordering then comes from the fault schedule, drawn from the run's generator and recorded;
/// madsim's default 1-10 ms spread would reorder messages outside the schedule.
fn sim_config() -> madsim::Config {
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = 0.0;
    config.net.send_latency = Duration::from_millis(1)..Duration::from_micros(1001);
    config
}

/// `missing`: owed payments not settled; `never_outboxed`: payments the workload should have
/// made but no producer outboxed by the deadline.
pub(crate) fn liveness_anomaly(
    missing: &[String],
    never_outboxed: u64,
    heal_us: u64,
    liveness_ms: u64,
) -> Anomaly {
    let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
    let more = if missing.len() > shown.len() {
        format!(" and {} more", missing.len() - shown.len())
    } else {
        String::new()
    };
    let never = if never_outboxed > 0 {
        format!("; {never_outboxed} payments never outboxed")
    } else {
        String::new()
    };
    let detail = format!(
        "{} payments not acknowledged, logged and applied within {liveness_ms} ms after the heal: {}{more}{never}",
        missing.len(),
        shown.join(", ")
    );
    Anomaly::new(
        AnomalyKind::Liveness,
        missing.first().map(String::as_str),
        heal_us + liveness_ms * 1000,
        detail,
    )
}

fn panic_anomaly(panic: &Box<dyn std::any::Any + Send>, sim_ms: u64) -> Anomaly {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string());
    let kind = if message.contains("all tasks will block forever") {
        AnomalyKind::Stuck
    } else if message.contains("time limit exceeded") {
        AnomalyKind::TimeLimit
    } else if message.contains(STEP_LIMIT_PANIC) {
        AnomalyKind::StepLimit
    } else {
        AnomalyKind::Panic
    };
    Anomaly {
        kind,
        payment: None,
        at_ms: sim_ms,
        detail: message,
    }
}

fn count_history(history: &[Entry], stats: &mut Stats) {
    let mut outboxed = BTreeSet::new();
    let mut final_recovery = false;
    for entry in history {
        match &entry.what {
            What::Harness(HarnessEvent::FinalRecovery) => final_recovery = true,
            // The final recovery's crashes are the check's, not faults: count only the faults.
            What::Harness(HarnessEvent::NodeCrashed { .. }) if final_recovery => {}
            What::Node(Event::Outboxed { payment }) => {
                outboxed.insert(payment.id.as_str());
            }
            What::Node(Event::ProduceSent { attempt, .. }) => {
                stats.produce_requests += 1;
                stats.retries += u64::from(*attempt > 0);
            }
            What::Node(Event::DuplicateBatch { .. }) => stats.dedup_hits += 1,
            What::Harness(HarnessEvent::NodeCrashed { .. }) => match entry.node.parse() {
                Ok(NodeName::Broker) => stats.broker_crashes += 1,
                Ok(NodeName::Store) => stats.store_restarts += 1,
                Ok(NodeName::Consumer) => stats.consumer_restarts += 1,
                _ => stats.producer_restarts += 1,
            },
            _ => {}
        }
    }
    stats.payments = outboxed.len() as u64;
}

/// Nodes that are down (crashed, waiting to restart) or paused, shared by the injector, the
/// restart timers and the heal so that each node is brought back exactly once.
#[derive(Default)]
struct Downed {
    crashed: BTreeSet<String>,
    paused: BTreeSet<String>,
    healed: bool,
}

async fn drive(
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
            cluster.restart(node_name(&node));
            recorder.harness(&node, HarnessEvent::NodeRestarted);
        }
        for node in std::mem::take(&mut d.paused) {
            cluster.resume(node_name(&node));
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
        .into_iter()
        .filter(|n| !matches!(n, NodeName::Broker | NodeName::Store))
    {
        cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
    }
    for node in [NodeName::Broker, NodeName::Store] {
        let torn = disk_rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_bool(plan.scenario.faults.torn_write_probability);
        let report = crash_disk(&cluster, node, torn, false, &disk_rng);
        unsynced_lost.fetch_add(report.bytes_lost, std::sync::atomic::Ordering::Relaxed);
        recorder.harness(&node.to_string(), HarnessEvent::NodeCrashed { report });
        cluster.restart(node);
        recorder.harness(&node.to_string(), HarnessEvent::NodeRestarted);
    }
    // Recovery reads and truncates each file: a few milliseconds per partition.
    madsim::time::sleep(Duration::from_millis(
        100 + 10 * u64::from(plan.scenario.workload.partitions),
    ))
    .await;
    for node in [NodeName::Broker, NodeName::Store] {
        cluster.kill(node, &mut |_, _| Tear::LOSE_ALL);
    }
    let broker_disk = cluster.disk(NodeName::Broker);
    let logs = (0..plan.scenario.workload.partitions)
        .map(|p| recover_log(&broker_disk.contents(&log_file(p))).batches)
        .collect();
    let (rows, _, _) = recover_rows(&cluster.disk(NodeName::Store).contents(APPLIED_FILE));
    Finished {
        durable: Durable { logs, rows },
        liveness_missing,
        never_outboxed,
        heal_us,
        unsynced_writes_lost: unsynced_lost.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// A schedule's node target as the cluster names it; schedules are validated before a run.
fn node_name(target: &str) -> NodeName {
    target
        .parse()
        .unwrap_or_else(|e| panic!("fault target: {e}"))
}

/// Kills `node`, crashing its disk with a tear drawn from the disk generator.
fn crash_disk(
    cluster: &Cluster,
    node: NodeName,
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
                let report = crash_disk(&cluster, node_name(&node), torn, garble, &disk_rng);
                unsynced_lost.fetch_add(report.bytes_lost, std::sync::atomic::Ordering::Relaxed);
                recorder.harness(&node, HarnessEvent::NodeCrashed { report });
                let (cluster, recorder, downed) =
                    (cluster.clone(), recorder.clone(), downed.clone());
                madsim::task::spawn(async move {
                    madsim::time::sleep(back_after).await;
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if !d.healed && d.crashed.remove(&node) {
                        cluster.restart(node_name(&node));
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
                cluster.pause(node_name(&node));
                recorder.harness(&node, HarnessEvent::NodePaused);
                let (cluster, recorder, downed) =
                    (cluster.clone(), recorder.clone(), downed.clone());
                madsim::task::spawn(async move {
                    madsim::time::sleep(back_after).await;
                    let mut d = downed.lock().unwrap_or_else(|e| e.into_inner());
                    if !d.healed && d.paused.remove(&node) {
                        cluster.resume(node_name(&node));
                        recorder.harness(&node, HarnessEvent::NodeResumed);
                    }
                });
            }
            _ => {}
        }
    }
}

/// Tracks, from the history, which owed payments are acknowledged to their producer and applied
/// by the store. Incremental: each check reads only the entries recorded since the last one.
#[derive(Default)]
pub(crate) struct Settlement {
    cursor: usize,
    /// Per payment: which of OWED, ACKED and APPLIED it has reached.
    state: BTreeMap<String, u8>,
    pub(crate) owed: usize,
    // invariant: settled == the number of payments whose state has all three bits
    settled: usize,
}

const OWED: u8 = 1;
const ACKED: u8 = 2;
const APPLIED: u8 = 4;

impl Settlement {
    fn mark(&mut self, id: &str, bit: u8) {
        let state = match self.state.get_mut(id) {
            Some(state) => state,
            None => self.state.entry(id.to_string()).or_default(),
        };
        if *state & bit != 0 {
            return;
        }
        *state |= bit;
        let all = *state == OWED | ACKED | APPLIED;
        self.owed += usize::from(bit == OWED);
        self.settled += usize::from(all);
    }

    pub(crate) fn update(&mut self, history: &[Entry]) {
        for entry in &history[self.cursor..] {
            match &entry.what {
                What::Node(Event::Outboxed { payment }) => self.mark(&payment.id, OWED),
                What::Node(
                    Event::ProduceAcked { payments, .. }
                    | Event::BatchRecoveredAsAcked { payments, .. },
                ) => payments.iter().for_each(|id| self.mark(id, ACKED)),
                What::Node(Event::StoreApplied { payment, .. }) => self.mark(payment, APPLIED),
                _ => {}
            }
        }
        self.cursor = history.len();
    }

    pub(crate) fn all_settled(&self) -> bool {
        self.settled == self.owed
    }

    pub(crate) fn unsettled(&self) -> Vec<String> {
        let settled = OWED | ACKED | APPLIED;
        self.state
            .iter()
            .filter(|(_, s)| **s & OWED != 0 && **s != settled)
            .map(|(id, _)| id.clone())
            .collect()
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
