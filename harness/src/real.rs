//! Real mode: the same broker-under-test code as real processes on loopback (the `node`
//! binary, built without the simulation), driven through the scenario's crashes and pauses in
//! real time, and judged by the same checker from the events the processes append and the
//! files they leave.
//!
//! Faults done for real: SIGKILL and restart of any node (with produces in flight), SIGSTOP and
//! SIGCONT for pauses, and loss, partitions and duplicates through a datagram proxy in front of
//! the broker and the store (`proxy.rs`). A process crash keeps what the kernel already has,
//! so unlike the simulation no unsynced write is lost; delays are not injected for real.

use crate::checker::{self, Durable};
use crate::faults::Fault;
use crate::history::{Entry, HarnessEvent, What};
use crate::proxy::{Proxy, Rules};
use crate::run::{liveness_anomaly, RunOutcome, RunPlan, Settlement, Stats};
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::storage::CrashReport;
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use broker_under_test::{Event, NodeName};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long the processes may live at most, beyond the scenario and its liveness bound.
const MARGIN: Duration = Duration::from_secs(10);
/// Real mode caps the liveness wait (the scenario's bound is for simulated time).
const LIVENESS_CAP: Duration = Duration::from_secs(30);

struct Proc {
    name: String,
    args: Vec<String>,
    child: Option<Child>,
    incarnations: u64,
    paused: bool,
}

fn free_port() -> Result<u16, String> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| format!("no free loopback port: {e}"))?;
    Ok(socket.local_addr().map_err(|e| e.to_string())?.port())
}

pub(crate) fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

struct World {
    node_bin: PathBuf,
    dir: PathBuf,
    procs: BTreeMap<String, Proc>,
    run_for_ms: u64,
    start_us: u64,
    harness_events: Vec<Entry>,
}

impl World {
    fn note(&mut self, node: &str, event: HarnessEvent) {
        let at_us = epoch_us().saturating_sub(self.start_us);
        self.harness_events.push(Entry {
            at_us,
            node: node.to_string(),
            what: What::Harness(event),
        });
    }

    fn start(&mut self, name: &str) -> Result<(), String> {
        let events = self.dir.join(format!("{name}.events.jsonl"));
        let run_for_ms = self.run_for_ms;
        let proc = self
            .procs
            .get_mut(name)
            .ok_or_else(|| format!("no node {name}"))?;
        proc.incarnations += 1;
        let child = Command::new(&self.node_bin)
            .args(&proc.args)
            .args(["--events", &events.display().to_string()])
            .args([
                "--incarnation",
                &proc.incarnations.to_string(),
                "--run-for-ms",
                &run_for_ms.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.node_bin.display()))?;
        proc.child = Some(child);
        Ok(())
    }

    /// SIGKILL: the process dies wherever it is, produces in flight and all.
    fn kill(&mut self, name: &str) -> bool {
        let Some(proc) = self.procs.get_mut(name) else {
            return false;
        };
        let Some(mut child) = proc.child.take() else {
            return false;
        };
        if proc.paused {
            signal(&child, "CONT");
            proc.paused = false;
        }
        let _ = child.kill();
        let _ = child.wait();
        true
    }

    fn pause(&mut self, name: &str, stop: bool) -> bool {
        let Some(proc) = self.procs.get_mut(name) else {
            return false;
        };
        let Some(child) = &proc.child else {
            return false;
        };
        if proc.paused == stop {
            return false;
        }
        signal(child, if stop { "STOP" } else { "CONT" });
        proc.paused = stop;
        true
    }

    fn is_down(&self, name: &str) -> bool {
        self.procs.get(name).is_none_or(|p| p.child.is_none())
    }

    fn kill_all(&mut self) {
        let names: Vec<String> = self.procs.keys().cloned().collect();
        for name in names {
            self.kill(&name);
        }
    }

    /// Everything the processes recorded so far, merged in time order, with the driver's own.
    fn history(&self) -> Vec<Entry> {
        let mut entries = self.harness_events.clone();
        for name in self.procs.keys() {
            let Ok(text) = std::fs::read_to_string(self.dir.join(format!("{name}.events.jsonl")))
            else {
                continue;
            };
            for line in text.lines() {
                // A line cut by a SIGKILL mid-write does not parse and is skipped.
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let at_us = value["at_us"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(self.start_us);
                let node = value["node"].as_str().unwrap_or(name).to_string();
                if let Ok(event) = serde_json::from_value::<Event>(value) {
                    entries.push(Entry {
                        at_us,
                        node,
                        what: What::Node(event),
                    });
                }
            }
        }
        entries.sort_by_key(|e| e.at_us);
        entries
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status();
}

/// One action of the real schedule, at a time from the start.
enum Action {
    Kill(String),
    Restart(String),
    Pause(String),
    Resume(String),
}

/// Runs `plan` for real. `dir` receives every node's data directory and event file.
pub fn run_real(plan: &RunPlan, node_bin: &Path, dir: &Path) -> Result<RunOutcome, String> {
    if !node_bin.exists() {
        return Err(format!(
            "no node binary at {}: build it with RUSTFLAGS=\"\" cargo build --release -p broker-under-test --bin node --target-dir target/real",
            node_bin.display()
        ));
    }
    let w = &plan.scenario.workload;
    let started = Instant::now();
    let liveness = Duration::from_millis(plan.scenario.limits.liveness_ms).min(LIVENESS_CAP);
    let run_for = Duration::from_millis(w.duration_ms) + liveness + MARGIN;
    let mut world = World {
        node_bin: node_bin.to_path_buf(),
        dir: dir.to_path_buf(),
        procs: BTreeMap::new(),
        run_for_ms: run_for.as_millis() as u64,
        start_us: epoch_us(),
        harness_events: Vec::new(),
    };
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let (broker_port, store_port, consumer_port) = (free_port()?, free_port()?, free_port()?);
    let producer_ports = (0..w.producers)
        .map(|_| free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: BTreeMap<u16, String> = [
        (broker_port, NodeName::Broker.to_string()),
        (store_port, NodeName::Store.to_string()),
        (consumer_port, NodeName::Consumer.to_string()),
    ]
    .into();
    for (index, port) in producer_ports.iter().enumerate() {
        names.insert(*port, NodeName::Producer(index as u32).to_string());
    }
    // Clients reach the broker and the store through the proxy, which carries the faults.
    let rules = Arc::new(Rules::new(&plan.schedule, plan.seed, world.start_us, names));
    let loopback = |port: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], port)) };
    let servers = [
        (NodeName::Broker.to_string(), loopback(broker_port)),
        (NodeName::Store.to_string(), loopback(store_port)),
    ];
    let proxy = Proxy::start(&servers, rules.clone())
        .map_err(|e| format!("cannot start the proxy: {e}"))?;
    let (broker_public, store_public) = (
        proxy.public[&NodeName::Broker.to_string()].to_string(),
        proxy.public[&NodeName::Store.to_string()].to_string(),
    );
    let bugs: Vec<String> = plan
        .bugs
        .iter()
        .flat_map(|b| ["--bug".to_string(), b.name().to_string()])
        .collect();
    let common = |role: &str, name: &str, port: u16| -> Vec<String> {
        let mut args = vec![
            "--role".into(),
            role.into(),
            "--name".into(),
            name.into(),
            "--listen".into(),
            addr(port),
            "--data-dir".into(),
            dir.join(name).display().to_string(),
            "--partitions".into(),
            w.partitions.to_string(),
            "--seed".into(),
            plan.seed.to_string(),
        ];
        args.extend(bugs.iter().cloned());
        args
    };
    let mut add = |name: String, args: Vec<String>| {
        world.procs.insert(
            name.clone(),
            Proc {
                name,
                args,
                child: None,
                incarnations: 0,
                paused: false,
            },
        );
    };
    add(
        NodeName::Broker.to_string(),
        common("broker", &NodeName::Broker.to_string(), broker_port),
    );
    add(
        NodeName::Store.to_string(),
        common("store", &NodeName::Store.to_string(), store_port),
    );
    let mut consumer = common("consumer", &NodeName::Consumer.to_string(), consumer_port);
    consumer.extend([
        "--broker".into(),
        broker_public.clone(),
        "--store".into(),
        store_public,
    ]);
    add(NodeName::Consumer.to_string(), consumer);
    for index in 0..w.producers {
        let name = NodeName::Producer(index).to_string();
        let mut args = common("producer", &name, producer_ports[index as usize]);
        args.extend([
            "--broker".into(),
            broker_public.clone(),
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
        ]);
        add(name, args);
    }
    let names: Vec<String> = world.procs.values().map(|p| p.name.clone()).collect();
    for name in &names {
        world.start(name)?;
    }

    // Phase 1: workload and the schedule's crashes and pauses, in real time.
    let mut actions: Vec<(u64, Action)> = Vec::new();
    for e in &plan.schedule {
        match e.fault {
            Fault::Crash { .. } => {
                actions.push((e.at_ms, Action::Kill(e.target.clone())));
                actions.push((e.at_ms + e.duration_ms, Action::Restart(e.target.clone())));
            }
            Fault::Pause => {
                actions.push((e.at_ms, Action::Pause(e.target.clone())));
                actions.push((e.at_ms + e.duration_ms, Action::Resume(e.target.clone())));
            }
            _ => {}
        }
    }
    actions.retain(|(at, _)| *at < w.duration_ms);
    actions.sort_by_key(|(at, _)| *at);
    for (at_ms, action) in actions {
        let due = started + Duration::from_millis(at_ms);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        match action {
            Action::Kill(node) => {
                if world.kill(&node) {
                    world.note(
                        &node,
                        HarnessEvent::NodeCrashed {
                            report: CrashReport::default(),
                        },
                    );
                }
            }
            Action::Restart(node) => {
                if world.is_down(&node) {
                    world.start(&node)?;
                    world.note(&node, HarnessEvent::NodeRestarted);
                }
            }
            Action::Pause(node) => {
                if world.pause(&node, true) {
                    world.note(&node, HarnessEvent::NodePaused);
                }
            }
            Action::Resume(node) => {
                if world.pause(&node, false) {
                    world.note(&node, HarnessEvent::NodeResumed);
                }
            }
        }
    }
    std::thread::sleep(
        (started + Duration::from_millis(w.duration_ms)).saturating_duration_since(Instant::now()),
    );

    // Phase 2: heal.
    for name in &names {
        if world.is_down(name) {
            world.start(name)?;
            world.note(name, HarnessEvent::NodeRestarted);
        } else if world.pause(name, false) {
            world.note(name, HarnessEvent::NodeResumed);
        }
    }
    rules.heal();
    world.note("harness", HarnessEvent::Healed);
    let heal_us = epoch_us().saturating_sub(world.start_us);

    // Phase 3: liveness, bounded.
    let deadline = Instant::now() + liveness;
    let expected = u64::from(w.producers) * u64::from(w.payments_per_producer);
    let (missing, never_outboxed) = loop {
        let mut settlement = Settlement::default();
        settlement.update(&world.history());
        if settlement.all_settled() && settlement.owed as u64 >= expected {
            world.note("harness", HarnessEvent::LivenessReached);
            break (Vec::new(), 0);
        }
        if Instant::now() >= deadline {
            let missing = settlement.unsettled();
            let never_outboxed = expected.saturating_sub(settlement.owed as u64);
            let count = missing.len() as u32 + never_outboxed as u32;
            world.note("harness", HarnessEvent::LivenessTimedOut { missing: count });
            break (missing, never_outboxed);
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    // Phase 4: every process is killed; the check reads what they left on disk.
    world.note("harness", HarnessEvent::FinalRecovery);
    world.kill_all();
    drop(proxy);
    world.harness_events.extend(rules.events());
    let logs = (0..w.partitions)
        .map(|p| {
            recover_log(
                &std::fs::read(dir.join(NodeName::Broker.to_string()).join(log_file(p)))
                    .unwrap_or_default(),
            )
            .batches
        })
        .collect();
    let (rows, _, _) = recover_rows(
        &std::fs::read(dir.join(NodeName::Store.to_string()).join(APPLIED_FILE))
            .unwrap_or_default(),
    );
    let durable = Durable { logs, rows };
    let history = world.history();
    let mut anomalies = checker::check(&history, &durable);
    if !missing.is_empty() || never_outboxed > 0 {
        anomalies.push(liveness_anomaly(
            &missing,
            never_outboxed,
            heal_us,
            liveness.as_millis() as u64,
        ));
    }
    let mut stats = Stats {
        log_records: durable.records().count() as u64,
        store_rows: durable.rows.len() as u64,
        ..Stats::default()
    };
    stats.messages = rules.messages.load(std::sync::atomic::Ordering::Relaxed);
    stats.messages_dropped = rules.dropped.load(std::sync::atomic::Ordering::Relaxed);
    Ok(RunOutcome::judged(
        plan,
        history,
        anomalies,
        stats,
        BTreeMap::new(),
        Vec::new(),
    ))
}

/// How many broker SIGKILLs hit while some produce request was in flight (sent, neither
/// acknowledged nor failed yet): the crashes that test the idempotent producer.
pub fn broker_kills_with_produces_in_flight(history: &[Entry]) -> u64 {
    let mut in_flight: std::collections::BTreeSet<(String, u32, u32)> =
        std::collections::BTreeSet::new();
    let mut kills = 0;
    for e in history {
        match &e.what {
            What::Node(Event::ProduceSent {
                partition,
                base_seq,
                ..
            }) => {
                in_flight.insert((e.node.clone(), *partition, *base_seq));
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
                in_flight.remove(&(e.node.clone(), *partition, *base_seq));
            }
            What::Harness(HarnessEvent::NodeCrashed { .. })
                if e.node == NodeName::Broker.to_string() =>
            {
                kills += u64::from(!in_flight.is_empty());
            }
            _ => {}
        }
    }
    kills
}
