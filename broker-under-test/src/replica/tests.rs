//! Replicas driven by a fake controller (it answers every heartbeat with the leadership the
//! test sets, and applies `AlterIsr` as the real one does), on madsim.

use super::epochs::{epochs_file, Epochs};
use super::run_replica;
use crate::broker::BrokerConfig;
use crate::bugs::Bugs;
use crate::codec::{PartitionState, Payment, Request, Response};
use crate::log::{log_file, recover_log, PartitionLog};
use crate::name::NodeName;
use crate::node::NodeCtx;
use crate::observe::{Event, Observer, Probe};
use crate::replication::{ReplicaConfig, ReplicationConfig};
use crate::storage::{DiskLatency, SimDisk, Storage, Tear};
use crate::transport::{NoFaults, SimTransport, Transport};
use madsim::runtime::{Handle, NodeHandle};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every event and probe, by node.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(NodeName, Event)>>,
    probes: Mutex<Vec<(NodeName, Probe)>>,
}

impl Observer for Recorder {
    fn record(&self, node: NodeName, event: Event) {
        self.events.lock().unwrap().push((node, event));
    }
    fn probe(&self, node: NodeName, probe: Probe) {
        self.probes.lock().unwrap().push((node, probe));
    }
}

impl Recorder {
    fn probed(&self, node: NodeName, probe: Probe) -> bool {
        self.probes.lock().unwrap().contains(&(node, probe))
    }
}

/// Two replicas of one partition, a fake controller and a client node.
struct World {
    handle: Handle,
    leadership: Arc<Mutex<PartitionState>>,
    recorder: Arc<Recorder>,
    disks: Vec<SimDisk>,
    replicas: Vec<NodeHandle>,
    client: NodeHandle,
}

/// Two replicas under a scripted controller, which may leave one alone in the in-sync set
/// (the real controller keeps `min_insync` members; scenarios test that rule end to end).
fn replication(lag_max: Duration) -> ReplicationConfig {
    ReplicationConfig {
        replica_lag_max: lag_max,
        min_insync: 1,
        ..ReplicationConfig::new(2)
    }
}

impl World {
    /// Starts the world; `prepare` writes each replica's disk before it first starts.
    async fn start(
        state: PartitionState,
        lag_max: Duration,
        prepare: impl AsyncFnOnce(&[SimDisk]),
    ) -> World {
        let handle = Handle::current();
        let leadership = Arc::new(Mutex::new(state));
        let recorder = Arc::new(Recorder::default());
        let disks: Vec<SimDisk> = (0..2)
            .map(|_| SimDisk::new(DiskLatency::default()))
            .collect();
        prepare(&disks).await;
        let controller = NodeName::Controller.sim_addr();
        let replicas_addr: Vec<SocketAddr> =
            (0..2).map(|i| NodeName::Replica(i).sim_addr()).collect();
        let shared = leadership.clone();
        handle
            .create_node()
            .name("controller")
            .ip(controller.ip())
            .init(move || fake_controller(controller, shared.clone()))
            .build();
        let mut replicas = Vec::new();
        for index in 0..2u32 {
            let name = NodeName::Replica(index);
            let (disk, recorder) = (disks[index as usize].clone(), recorder.clone());
            let rep = ReplicaConfig {
                index,
                replication: replication(lag_max),
                controller,
                replicas: replicas_addr.clone(),
            };
            let incarnation = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let node = handle
                .create_node()
                .name(name.to_string())
                .ip(name.sim_addr().ip())
                .init(move || {
                    let (disk, recorder, rep) = (disk.clone(), recorder.clone(), rep.clone());
                    let inc = incarnation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async move {
                        let transport =
                            SimTransport::bind(name.sim_addr(), inc, Arc::new(NoFaults))
                                .await
                                .unwrap();
                        let ctx = NodeCtx {
                            name,
                            transport: Arc::new(transport),
                            storage: Arc::new(disk.handle()),
                            observer: recorder,
                            bugs: Bugs::NONE,
                        };
                        let cfg = BrokerConfig {
                            partitions: 1,
                            ..BrokerConfig::default()
                        };
                        run_replica(ctx, cfg, rep).await.unwrap();
                    }
                })
                .build();
            replicas.push(node);
        }
        let client = handle
            .create_node()
            .name("client")
            .ip([10, 0, 0, 200].into())
            .build();
        World {
            handle,
            leadership,
            recorder,
            disks,
            replicas,
            client,
        }
    }

    /// Sends `request` to replica `to` from the client and returns the reply (None: timeout).
    async fn call(&self, to: u32, request: Request, timeout: Duration) -> Option<Response> {
        let dst = NodeName::Replica(to).sim_addr();
        self.client
            .spawn(async move {
                let port = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let addr = SocketAddr::from(([10, 0, 0, 200], port));
                let t = SimTransport::bind(addr, 0, Arc::new(NoFaults))
                    .await
                    .unwrap();
                let reply = t.call(dst, request.encode(), timeout).await.ok()?;
                Response::decode(&reply).ok()
            })
            .await
            .unwrap()
    }

    fn events(&self, node: NodeName) -> Vec<Event> {
        let events = self.recorder.events.lock().unwrap();
        events
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The replica's log after a power loss (what it had synced).
    fn durable_log(&self, index: u32) -> Vec<crate::log::StoredBatch> {
        self.handle.kill(self.replicas[index as usize].id());
        let disk = &self.disks[index as usize];
        disk.crash(&mut |_, _| Tear::LOSE_ALL);
        recover_log(&disk.contents(&log_file(0))).batches
    }
}

/// Answers every request with the leadership the test set; applies an `AlterIsr` whose leader
/// and epoch match (as the real controller does).
async fn fake_controller(addr: SocketAddr, leadership: Arc<Mutex<PartitionState>>) {
    let t = SimTransport::bind(addr, 0, Arc::new(NoFaults))
        .await
        .unwrap();
    while let Some(incoming) = t.next_request().await {
        let mut state = leadership.lock().unwrap();
        if let Ok(Request::AlterIsr {
            leader,
            leader_epoch,
            isr,
            ..
        }) = Request::decode(&incoming.body)
        {
            if state.leader == Some(leader) && state.leader_epoch == leader_epoch {
                state.isr = isr;
            }
        }
        let reply = Response::Leadership {
            partitions: vec![state.clone()],
        };
        t.reply(&incoming, reply.encode());
    }
}

fn payments(producer: u32, from: u32, n: u32) -> Vec<Payment> {
    (from..from + n)
        .map(|i| Payment::generate(producer, i, 5))
        .collect()
}

fn produce(producer_id: u64, epoch: u32, base_seq: u32, n: u32) -> Request {
    Request::Produce {
        partition: 0,
        producer_id,
        epoch,
        base_seq,
        records: payments(producer_id as u32, base_seq, n),
    }
}

fn run(test: impl AsyncFnOnce()) {
    let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
    rt.block_on(test());
}

/// Every client call binds a fresh port.
static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(9000);

const LONG: Duration = Duration::from_secs(10);

#[test]
fn a_produce_is_acknowledged_only_once_the_follower_synced_it() {
    run(async || {
        let state = PartitionState {
            leader: Some(0),
            leader_epoch: 0,
            isr: vec![0, 1],
            isr_version: 0,
        };
        let w = World::start(state, LONG, async |_| {}).await;
        madsim::time::sleep(Duration::from_millis(100)).await;
        // The follower freezes: the leader syncs the batch but may not acknowledge it.
        w.handle.pause(w.replicas[1].id());
        let none = w
            .call(0, produce(0, 0, 0, 3), Duration::from_millis(300))
            .await;
        assert_eq!(none, None, "acknowledged without the follower");
        w.handle.resume(w.replicas[1].id());
        // The retry is a duplicate of the appended batch, answered once the follower has it.
        let ack = w
            .call(0, produce(0, 0, 0, 3), Duration::from_millis(300))
            .await;
        assert_eq!(ack, Some(Response::Produced { base_offset: 0 }));
        assert!(w
            .recorder
            .probed(NodeName::Replica(0), Probe::AckWaitedForReplication));
        let follower = w.durable_log(1);
        assert_eq!(
            follower.len(),
            1,
            "the follower synced the batch before the ack"
        );
        assert_eq!(follower[0].records, payments(0, 0, 3));
    });
}

/// Writes a log of `batches` (producer id, base seq, count) and an epoch file on `disk`.
async fn write_replica(disk: &SimDisk, batches: &[(u64, u32, u32)], epochs: &[(u32, u64)]) {
    let s = disk.handle();
    let (mut log, _) = PartitionLog::open(&s, 0, true, true).await.unwrap();
    for &(producer, seq, n) in batches {
        let records = payments(producer as u32, seq, n);
        log.append(&s, producer, 0, seq, records).await.unwrap();
    }
    log.sync(&s).await.unwrap();
    let mut file = Epochs::default();
    for &(epoch, start) in epochs {
        assert!(file.begin(epoch, start));
    }
    s.replace(&epochs_file(0), &file.encode()).await.unwrap();
}

#[test]
fn a_divergent_suffix_is_cut_to_the_leaders_epoch_end_not_the_high_watermark() {
    run(async || {
        // Both hold offsets 0..2 from epoch 0. Replica 1 then led epoch 1 and appended 2..4
        // that nobody else has; replica 0 leads epoch 2 with 2..5 of another producer.
        let state = PartitionState {
            leader: Some(0),
            leader_epoch: 2,
            isr: vec![0, 1],
            isr_version: 0,
        };
        let w = World::start(state, LONG, async |disks: &[SimDisk]| {
            write_replica(&disks[0], &[(0, 0, 2), (1, 0, 3)], &[(0, 0), (2, 2)]).await;
            write_replica(&disks[1], &[(0, 0, 2), (0, 2, 2)], &[(0, 0), (1, 2)]).await;
        })
        .await;
        madsim::time::sleep(Duration::from_millis(300)).await;
        let truncated: Vec<Event> = w
            .events(NodeName::Replica(1))
            .into_iter()
            .filter(|e| matches!(e, Event::FollowerTruncated { .. }))
            .collect();
        // Its high watermark after the restart is 0: the old protocol would cut everything.
        assert_eq!(
            truncated,
            vec![Event::FollowerTruncated {
                partition: 0,
                from: 4,
                to: 2
            }]
        );
        assert!(w
            .recorder
            .probed(NodeName::Replica(1), Probe::FollowerTruncated));
        let leader = w.durable_log(0);
        let follower = w.durable_log(1);
        assert_eq!(follower, leader, "the follower holds the leader's log");
        assert_eq!(leader.last().map(|b| b.next_offset()), Some(5));
    });
}

#[test]
fn a_retry_after_failover_gets_its_original_offset() {
    run(async || {
        let state = PartitionState {
            leader: Some(0),
            leader_epoch: 0,
            isr: vec![0, 1],
            isr_version: 0,
        };
        let w = World::start(state, LONG, async |_| {}).await;
        madsim::time::sleep(Duration::from_millis(100)).await;
        let first = w
            .call(0, produce(0, 0, 0, 2), Duration::from_millis(300))
            .await;
        assert_eq!(first, Some(Response::Produced { base_offset: 0 }));
        let second = w
            .call(0, produce(0, 0, 2, 3), Duration::from_millis(300))
            .await;
        assert_eq!(second, Some(Response::Produced { base_offset: 2 }));
        // The leader dies; the controller elects replica 1.
        w.handle.kill(w.replicas[0].id());
        *w.leadership.lock().unwrap() = PartitionState {
            leader: Some(1),
            leader_epoch: 1,
            isr: vec![1],
            isr_version: 0,
        };
        madsim::time::sleep(Duration::from_millis(100)).await;
        let not_leader = w
            .call(0, produce(0, 0, 2, 3), Duration::from_millis(50))
            .await;
        assert_eq!(not_leader, None, "the old leader is down");
        // The producer retries its second batch at the new leader.
        let retry = w
            .call(1, produce(0, 0, 2, 3), Duration::from_millis(300))
            .await;
        assert_eq!(retry, Some(Response::Produced { base_offset: 2 }));
        assert!(w
            .recorder
            .probed(NodeName::Replica(1), Probe::DedupAcrossFailover));
        let last = Request::LastSeq {
            partition: 0,
            producer_id: 0,
            epoch: 0,
        };
        let answer = w.call(1, last, Duration::from_millis(300)).await;
        assert_eq!(answer, Some(Response::LastSeq { last_seq: Some(4) }));
        let next = w
            .call(1, produce(0, 0, 5, 1), Duration::from_millis(300))
            .await;
        assert_eq!(next, Some(Response::Produced { base_offset: 5 }));
    });
}
