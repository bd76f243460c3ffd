//! Real mode: the same broker-under-test code as real processes on loopback (the `node`
//! binary, built without the simulation), driven through the scenario's crashes and pauses in
//! real time, and judged by the same checker from the events the processes append and the
//! files they leave.
//!
//! Faults done for real: SIGKILL and restart of any node (with produces in flight), SIGSTOP and
//! SIGCONT for pauses, and loss, delay, partitions and duplicates through a datagram proxy in
//! front of every server (the broker, or the replicas and the controller, and the store;
//! `proxy.rs`), decided by the same function as in the simulation. A process crash keeps what
//! the kernel already has, so unlike the simulation no unsynced write is lost.
//!
//! A replicated scenario (`workload.brokers > 1`) runs `broker-0..n` and the controller; the
//! replicas reach each other and the controller through the proxy as the clients do. Its
//! final read takes each partition's log from the files of the leader the controller's
//! durable state names (the processes are dead by then): what that leader holds, committed or
//! not.

mod events;
mod procs;
mod proxy;

use crate::history::{Actor, Entry, HarnessEvent, What};
use crate::scenario::{SizeDistribution, WorkloadSpec};
use crate::schedule::Fault;
use crate::world::durable::read_durable;
use crate::world::liveness::{Liveness, Settled};
use crate::world::outcome::Ending;
use crate::world::plan::{generator, STREAM_NETWORK};
use crate::world::{RunOutcome, RunPlan, Stats};
use broker_under_test::controller::{decode_partitions, initial_partitions, PARTITIONS_FILE};
use broker_under_test::log::log_file;
use broker_under_test::storage::CrashReport;
use broker_under_test::{Event, NodeName};
use events::EventFiles;
use procs::Procs;
use proxy::{Proxy, Rules};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long the processes may live at most, beyond the scenario and its liveness bound.
const MARGIN: Duration = Duration::from_secs(10);
/// Real mode caps the liveness wait (the scenario's bound is for simulated time).
const LIVENESS_CAP: Duration = Duration::from_secs(30);
/// How often the liveness phase reads the processes' new events.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

fn free_port() -> Result<u16, String> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| format!("no free loopback port: {e}"))?;
    Ok(socket.local_addr().map_err(|e| e.to_string())?.port())
}

fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The running system: its processes, the proxy in front of broker and store, the event
/// files, and the driver's own notes.
struct World {
    procs: Procs,
    rules: Arc<Rules>,
    proxy: Option<Proxy>,
    events: EventFiles,
    notes: Vec<Entry>,
    /// The run's start: on the monotonic clock for the schedule, on the wall clock for stamps.
    started: Instant,
    start_us: u64,
}

/// The listening port of every node.
struct Ports {
    /// The broker's, or with `brokers > 1` every replica's and the controller's.
    servers: Vec<(NodeName, u16)>,
    store: u16,
    consumer: u16,
    producers: Vec<u16>,
}

impl Ports {
    fn draw(producers: u32, brokers: u32) -> Result<Ports, String> {
        let mut servers = Vec::new();
        if brokers > 1 {
            for index in 0..brokers {
                servers.push((NodeName::Replica(index), free_port()?));
            }
            servers.push((NodeName::Controller, free_port()?));
        } else {
            servers.push((NodeName::Broker, free_port()?));
        }
        Ok(Ports {
            servers,
            store: free_port()?,
            consumer: free_port()?,
            producers: (0..producers)
                .map(|_| free_port())
                .collect::<Result<Vec<_>, _>>()?,
        })
    }

    /// Node names by port: every node sends from the port it listens on.
    fn names(&self) -> BTreeMap<u16, NodeName> {
        let mut names: BTreeMap<u16, NodeName> = [
            (self.store, NodeName::Store),
            (self.consumer, NodeName::Consumer),
        ]
        .into();
        for (name, port) in &self.servers {
            names.insert(*port, *name);
        }
        for (index, port) in self.producers.iter().enumerate() {
            names.insert(*port, NodeName::Producer(index as u32));
        }
        names
    }
}

/// Runs `plan` for real. `dir` receives every node's data directory and event file.
pub fn run_real(plan: &RunPlan, node_bin: &Path, dir: &Path) -> Result<RunOutcome, String> {
    if !node_bin.exists() {
        return Err(format!(
            "no node binary at {}: build it with RUSTFLAGS=\"\" cargo build --release -p broker-under-test --bin node --target-dir target/real",
            node_bin.display()
        ));
    }
    // A real kernel's I/O errors cannot be summoned from here (that takes a device mapper's
    // error target and root); refusing beats a run that claims to test them.
    if let Some(e) = plan
        .schedule
        .iter()
        .find(|e| matches!(e.fault, Fault::IoErrors { .. }))
    {
        return Err(format!(
            "real mode cannot inject I/O errors (the schedule's io-errors on {} at {} ms): run this scenario simulated",
            e.target, e.at_ms
        ));
    }
    let liveness = Duration::from_millis(plan.scenario.limits.liveness_ms).min(LIVENESS_CAP);
    let mut world = World::deploy(plan, node_bin, dir, liveness)?;
    // Phase 1: workload and the schedule's crashes and pauses, in real time.
    world.inject(plan)?;
    // Phase 2: heal.
    world.heal()?;
    let heal_us = world.now_us();
    // Phase 3: liveness, bounded.
    let settled = world.await_liveness(plan, liveness);
    // Phase 4: every process is killed; the check reads what they left on disk.
    Ok(world.finish(plan, dir, heal_us, settled, liveness))
}

impl World {
    /// Starts the proxy and every node's process.
    fn deploy(
        plan: &RunPlan,
        node_bin: &Path,
        dir: &Path,
        liveness: Duration,
    ) -> Result<World, String> {
        let w = &plan.scenario.workload;
        let run_for = Duration::from_millis(w.duration_ms) + liveness + MARGIN;
        let (started, start_us) = (Instant::now(), epoch_us());
        let ports = Ports::draw(w.producers, w.brokers)?;
        // Clients reach the broker and the store through the proxy, which carries the faults.
        let network = generator(plan.seed, STREAM_NETWORK);
        let (rules, delayed) = Rules::new(&plan.schedule, network, start_us, ports.names());
        let rules = Arc::new(rules);
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut servers: Vec<(NodeName, SocketAddr)> = ports
            .servers
            .iter()
            .map(|(name, port)| (*name, loopback(*port)))
            .collect();
        servers.push((NodeName::Store, loopback(ports.store)));
        let proxy = Proxy::start(&servers, rules.clone(), delayed)
            .map_err(|e| format!("cannot start the proxy: {e}"))?;
        let mut procs = Procs::new(node_bin, dir, run_for.as_millis() as u64);
        add_nodes(&mut procs, plan, dir, &ports, &proxy);
        let names = procs.names();
        for name in &names {
            procs.start(*name)?;
        }
        Ok(World {
            procs,
            rules,
            proxy: Some(proxy),
            events: EventFiles::new(dir, start_us, &names),
            notes: Vec::new(),
            started,
            start_us,
        })
    }

    fn now_us(&self) -> u64 {
        epoch_us().saturating_sub(self.start_us)
    }

    fn note(&mut self, node: impl Into<Actor>, event: HarnessEvent) {
        self.notes.push(Entry {
            at_us: self.now_us(),
            node: node.into(),
            what: What::Harness(event),
        });
    }

    /// Carries out the schedule's crashes and pauses at their times (network faults act in
    /// the proxy), then waits out the rest of the scenario's duration.
    fn inject(&mut self, plan: &RunPlan) -> Result<(), String> {
        let duration_ms = plan.scenario.workload.duration_ms;
        let mut actions: Vec<(u64, Action, NodeName)> = Vec::new();
        for e in &plan.schedule {
            let (begin, end) = match e.fault {
                Fault::Crash { .. } => (Action::Kill, Action::Restart),
                Fault::Pause => (Action::Pause, Action::Resume),
                _ => continue,
            };
            // Node faults hit one node (a validated schedule says so).
            let Some(node) = e.target.node() else {
                continue;
            };
            actions.push((e.at_ms, begin, node));
            actions.push((e.at_ms + e.duration_ms, end, node));
        }
        actions.retain(|(at, _, _)| *at < duration_ms);
        actions.sort_by_key(|(at, _, _)| *at);
        for (at_ms, action, node) in actions {
            self.sleep_until(at_ms);
            self.act(action, node)?;
        }
        self.sleep_until(duration_ms);
        Ok(())
    }

    fn sleep_until(&self, at_ms: u64) {
        let due = self.started + Duration::from_millis(at_ms);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }

    /// One action on one node, noted in the history if it changed anything.
    fn act(&mut self, action: Action, node: NodeName) -> Result<(), String> {
        let event = match action {
            Action::Kill if self.procs.kill(node) => HarnessEvent::NodeCrashed {
                report: CrashReport::default(),
            },
            Action::Restart if self.procs.is_down(node) => {
                self.procs.start(node)?;
                HarnessEvent::NodeRestarted
            }
            Action::Pause if self.procs.pause(node, true) => HarnessEvent::NodePaused,
            Action::Resume if self.procs.pause(node, false) => HarnessEvent::NodeResumed,
            _ => return Ok(()),
        };
        self.note(node, event);
        Ok(())
    }

    /// Faults stop: every node down restarts, every paused node resumes, the network is whole.
    fn heal(&mut self) -> Result<(), String> {
        for name in self.procs.names() {
            if self.procs.is_down(name) {
                self.act(Action::Restart, name)?;
            } else {
                self.act(Action::Resume, name)?;
            }
        }
        self.rules.heal();
        self.note(Actor::Harness, HarnessEvent::Healed);
        Ok(())
    }

    /// Waits until every owed payment is settled, or `bound` passes; reads only the events
    /// appended since the last poll.
    fn await_liveness(&mut self, plan: &RunPlan, bound: Duration) -> Settled {
        let deadline = Instant::now() + bound;
        let mut liveness = Liveness::new(plan);
        loop {
            liveness.absorb(&self.events.read_new());
            if let Some(settled) = liveness.verdict(Instant::now() >= deadline) {
                self.note(Actor::Harness, settled.event());
                return settled;
            }
            std::thread::sleep(LIVENESS_POLL);
        }
    }

    /// Kills every process, reads what they left, and judges the run.
    fn finish(
        mut self,
        plan: &RunPlan,
        dir: &Path,
        heal_us: u64,
        settled: Settled,
        liveness: Duration,
    ) -> RunOutcome {
        self.note(Actor::Harness, HarnessEvent::FinalRecovery);
        self.procs.kill_all();
        drop(self.proxy.take());
        self.notes.extend(self.rules.events());
        self.events.read_new();
        let history = self.events.history(&self.notes);
        let w = &plan.scenario.workload;
        let logs_of = log_owners(dir, w.partitions, w.brokers);
        let durable = read_durable(w.partitions, |node, file| {
            let node = match logs_of.get(file) {
                Some(owner) if node == NodeName::Broker => *owner,
                _ => node,
            };
            std::fs::read(dir.join(node.to_string()).join(file)).unwrap_or_default()
        });
        let ending = Ending {
            durable,
            settled,
            heal_us,
            liveness_ms: liveness.as_millis() as u64,
            unsynced_writes_lost: 0,
        };
        let stats = Stats {
            messages: self.rules.fates.messages.load(Ordering::Relaxed),
            messages_dropped: self.rules.fates.dropped.load(Ordering::Relaxed),
            ..Stats::default()
        };
        RunOutcome::judged(
            plan,
            history,
            Ok(ending),
            stats,
            BTreeMap::new(),
            Vec::new(),
        )
    }
}

/// In a replicated deployment, whose files each partition's log is read from: the leader the
/// controller's durable state names (its initial choice, `p % n`, if it never wrote one; the
/// last leader if the partition has none now). Empty for the single broker.
fn log_owners(dir: &Path, partitions: u32, brokers: u32) -> BTreeMap<String, NodeName> {
    if brokers < 2 {
        return BTreeMap::new();
    }
    let state = std::fs::read(
        dir.join(NodeName::Controller.to_string())
            .join(PARTITIONS_FILE),
    )
    .ok()
    .and_then(|bytes| decode_partitions(&bytes).ok())
    .unwrap_or_else(|| initial_partitions(partitions, brokers));
    (0..partitions)
        .map(|p| {
            let leader = state
                .get(p as usize)
                .and_then(|s| s.leader.or_else(|| s.isr.first().copied()))
                .unwrap_or(p % brokers);
            (log_file(p), NodeName::Replica(leader))
        })
        .collect()
}

/// What the driver does to a node's process.
#[derive(Clone, Copy)]
enum Action {
    Kill,
    Restart,
    Pause,
    Resume,
}

/// Adds every node's process with its flags: the servers (broker, or replicas and controller,
/// and store) listen behind the proxy; every node is pointed at the proxy's public addresses.
fn add_nodes(procs: &mut Procs, plan: &RunPlan, dir: &Path, ports: &Ports, proxy: &Proxy) {
    let w = &plan.scenario.workload;
    let store = proxy.public[&NodeName::Store].to_string();
    let brokers = broker_flags(proxy, w.brokers);
    let common = |role: &str, name: NodeName, port: u16| -> Vec<String> {
        let mut args = vec![
            "--role".into(),
            role.into(),
            "--name".into(),
            name.to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            dir.join(name.to_string()).display().to_string(),
            "--partitions".into(),
            w.partitions.to_string(),
            "--seed".into(),
            plan.seed.to_string(),
        ];
        for bug in plan.bugs.iter() {
            args.extend(["--bug".to_string(), bug.name().to_string()]);
        }
        if let Some(seq) = w.first_sequence {
            args.extend(["--first-seq".to_string(), seq.to_string()]);
        }
        args
    };
    for (name, port) in &ports.servers {
        let args = match name {
            NodeName::Replica(index) => {
                let mut args = common("replica", *name, *port);
                args.extend(["--index".into(), index.to_string()]);
                args.extend(brokers.iter().cloned());
                args
            }
            NodeName::Controller => {
                let mut args = common("controller", *name, *port);
                args.extend(brokers.iter().skip(2).cloned());
                args
            }
            _ => common("broker", *name, *port),
        };
        procs.add(*name, args);
    }
    procs.add(
        NodeName::Store,
        common("store", NodeName::Store, ports.store),
    );
    let mut consumer = common("consumer", NodeName::Consumer, ports.consumer);
    consumer.extend(brokers.iter().cloned());
    consumer.extend(["--store".into(), store]);
    procs.add(NodeName::Consumer, consumer);
    for (index, port) in ports.producers.iter().enumerate() {
        let name = NodeName::Producer(index as u32);
        let mut args = common("producer", name, *port);
        args.extend(brokers.iter().cloned());
        args.extend(producer_flags(w, index));
        procs.add(name, args);
    }
}

/// How clients (and replicas) reach the brokers: `--broker`, or `--controller` and
/// `--replicas` in a replicated deployment.
fn broker_flags(proxy: &Proxy, brokers: u32) -> Vec<String> {
    match proxy.public.get(&NodeName::Broker) {
        Some(broker) => vec!["--broker".into(), broker.to_string()],
        None => {
            let replicas: Vec<String> = (0..brokers)
                .map(|i| proxy.public[&NodeName::Replica(i)].to_string())
                .collect();
            vec![
                "--controller".into(),
                proxy.public[&NodeName::Controller].to_string(),
                "--replicas".into(),
                replicas.join(","),
            ]
        }
    }
}

/// Producer `index`'s share of the workload, as `node` flags.
fn producer_flags(w: &WorkloadSpec, index: usize) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--index".into(),
        index.to_string(),
        "--payments".into(),
        w.payments_per_producer.to_string(),
        "--customers".into(),
        w.customers.to_string(),
        "--payment-interval-ms".into(),
        w.payment_interval_ms.to_string(),
        "--max-batch".into(),
        w.max_batch_records.to_string(),
    ];
    // Flags for the workload's shape only when it has one, so that a default workload
    // starts its nodes with the very arguments it always did.
    if let Some(size) = &w.payment_size {
        args.extend([
            "--payment-bytes".into(),
            format!("{}..{}", size.bytes[0], size.bytes[1]),
        ]);
        if size.distribution == SizeDistribution::LogUniform {
            args.push("--payment-bytes-log-uniform".into());
        }
    }
    args
}

/// How many broker (or replica) SIGKILLs hit while some produce request was in flight (sent,
/// neither acknowledged nor failed yet): the crashes that test the idempotent producer.
pub fn broker_kills_with_produces_in_flight(history: &[Entry]) -> u64 {
    let mut in_flight: std::collections::BTreeSet<(Actor, u32, u32)> =
        std::collections::BTreeSet::new();
    let mut kills = 0;
    for e in history {
        match &e.what {
            What::Node(Event::ProduceSent {
                partition,
                base_seq,
                ..
            }) => {
                in_flight.insert((e.node, *partition, *base_seq));
            }
            What::Node(
                Event::ProduceAcked {
                    partition,
                    base_seq,
                    ..
                }
                | Event::ProduceFailed {
                    partition,
                    base_seq,
                    ..
                },
            ) => {
                in_flight.remove(&(e.node, *partition, *base_seq));
            }
            What::Harness(HarnessEvent::NodeCrashed { .. })
                if matches!(e.node, Actor::Node(NodeName::Broker | NodeName::Replica(_))) =>
            {
                kills += u64::from(!in_flight.is_empty());
            }
            _ => {}
        }
    }
    kills
}
