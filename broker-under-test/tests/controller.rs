//! The controller as brokers and clients see it on the wire: elections on a missed heartbeat
//! from the in-sync replicas only, fenced ISR changes, and state that survives its own crash.
#![cfg(madsim)]

use broker_under_test::codec::{ErrorCode, PartitionState, Request, Response};
use broker_under_test::controller::run_controller;
use broker_under_test::node::NodeCtx;
use broker_under_test::observe::NullObserver;
use broker_under_test::replication::{ControllerConfig, ReplicationConfig};
use broker_under_test::storage::{DiskLatency, SimDisk, Tear};
use broker_under_test::transport::{NoFaults, SimTransport, Transport};
use broker_under_test::{Bug, Bugs, NodeName};
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BROKERS: u32 = 3;

/// Starts a controller over `disk` for 3 partitions of 3 replicas; returns its madsim node id.
fn start_controller(disk: &SimDisk, bugs: Bugs) -> madsim::task::NodeId {
    let addr = NodeName::Controller.sim_addr();
    let disk = disk.clone();
    let incarnations = Arc::new(AtomicU64::new(0));
    Handle::current()
        .create_node()
        .name("controller")
        .ip(addr.ip())
        .init(move || {
            let (disk, incarnation) = (disk.clone(), incarnations.fetch_add(1, Ordering::Relaxed));
            async move {
                let transport = SimTransport::bind(addr, incarnation, Arc::new(NoFaults))
                    .await
                    .unwrap();
                let ctx = NodeCtx {
                    name: NodeName::Controller,
                    transport: Arc::new(transport),
                    storage: Arc::new(disk.handle()),
                    observer: Arc::new(NullObserver),
                    bugs,
                };
                let cfg = ControllerConfig {
                    partitions: 3,
                    replication: ReplicationConfig::new(BROKERS),
                };
                run_controller(ctx, cfg).await.unwrap();
            }
        })
        .build()
        .id()
}

async fn call(t: &SimTransport, request: &Request) -> Response {
    let reply = t
        .call(
            NodeName::Controller.sim_addr(),
            request.encode(),
            Duration::from_millis(200),
        )
        .await
        .expect("a reply");
    Response::decode(&reply).expect("a well-formed reply")
}

fn leadership(response: Response) -> Vec<PartitionState> {
    match response {
        Response::Leadership { partitions } => partitions,
        other => panic!("expected leadership, got {other:?}"),
    }
}

/// Heartbeats for `brokers` every 20 ms for `ms` simulated milliseconds; the last answer.
async fn beat(t: &SimTransport, brokers: &[u32], ms: u64) -> Vec<PartitionState> {
    let mut last = Vec::new();
    for _ in 0..ms / 20 {
        for &b in brokers {
            last = leadership(call(t, &Request::Heartbeat { broker: b }).await);
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

/// Runs `client` against a fresh controller (bugs `bugs`) on a node of its own.
fn with_controller<F>(
    bugs: Bugs,
    client: impl FnOnce(Arc<SimTransport>, SimDisk, madsim::task::NodeId) -> F + Send + 'static,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = madsim::runtime::Runtime::with_seed_and_config(5, madsim::Config::default());
    runtime.block_on(async move {
        let disk = SimDisk::new(DiskLatency::default());
        let id = start_controller(&disk, bugs);
        let addr: SocketAddr = "10.0.9.9:9000".parse().unwrap();
        let node = Handle::current()
            .create_node()
            .name("client")
            .ip(addr.ip())
            .build();
        node.spawn(async move {
            madsim::time::sleep(Duration::from_millis(5)).await;
            let t = Arc::new(
                SimTransport::bind(addr, 0, Arc::new(NoFaults))
                    .await
                    .unwrap(),
            );
            client(t, disk, id).await;
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_silent_leader_is_replaced_by_an_in_sync_replica_and_survives_a_controller_crash() {
    with_controller(Bugs::NONE, |t, disk, id| async move {
        let fresh = leadership(call(&t, &Request::Metadata).await);
        assert_eq!(fresh[0].leader, Some(0));
        assert!(fresh
            .iter()
            .all(|p| p.leader_epoch == 0 && p.isr == [0, 1, 2]));
        // Broker 2's leader drops broker 1 from partition 2's in-sync set.
        let isr = leadership(
            call(
                &t,
                &Request::AlterIsr {
                    partition: 2,
                    leader: 2,
                    leader_epoch: 0,
                    isr_version: 0,
                    isr: vec![2, 0],
                },
            )
            .await,
        );
        assert_eq!((&isr[2].isr, isr[2].isr_version), (&vec![0, 2], 1));
        // The same request again (a late or duplicated copy) was made from version 0: refused.
        let replay = Request::AlterIsr {
            partition: 2,
            leader: 2,
            leader_epoch: 0,
            isr_version: 0,
            isr: vec![0, 1, 2],
        };
        assert_eq!(leadership(call(&t, &replay).await)[2], isr[2]);
        // Broker 0 goes silent: partition 0 moves to broker 1 at epoch 1, without broker 0.
        let after = beat(&t, &[1, 2], 400).await;
        assert_eq!(after[0].leader, Some(1));
        assert_eq!(after[0].leader_epoch, 1);
        assert_eq!(after[0].isr, vec![1, 2]);
        // Partition 2 keeps its leader, and broker 0 in its set of two: dropping it would
        // leave fewer than min_insync copies of what is committed.
        assert_eq!((after[2].leader, after[2].leader_epoch), (Some(2), 0));
        assert_eq!(after[2].isr, vec![0, 2]);
        // Nor may a leader shrink a set below min_insync itself.
        let alone = Request::AlterIsr {
            partition: 2,
            leader: 2,
            leader_epoch: 0,
            isr_version: 1,
            isr: vec![2],
        };
        assert_eq!(leadership(call(&t, &alone).await)[2].isr, vec![0, 2]);
        // The old leader's request at its old epoch changes nothing.
        let stale = Request::AlterIsr {
            partition: 0,
            leader: 0,
            leader_epoch: 0,
            isr_version: 0,
            isr: vec![0],
        };
        assert_eq!(leadership(call(&t, &stale).await), after);
        // The controller crashes and comes back with what it had said.
        let handle = Handle::current();
        handle.kill(id);
        disk.crash(&mut |_, _| Tear::LOSE_ALL);
        handle.restart(id);
        madsim::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(leadership(call(&t, &Request::Metadata).await), after);
    });
}

#[test]
fn with_no_in_sync_replica_alive_a_partition_waits_unless_the_election_is_unclean() {
    let run = |bugs: Bugs| {
        let (tx, rx) = std::sync::mpsc::channel();
        with_controller(bugs, move |t, _, _| async move {
            // Partition 1's set shrinks to brokers 1 and 2; then both go silent.
            call(
                &t,
                &Request::AlterIsr {
                    partition: 1,
                    leader: 1,
                    leader_epoch: 0,
                    isr_version: 0,
                    isr: vec![1, 2],
                },
            )
            .await;
            let after = beat(&t, &[0], 400).await;
            tx.send(after[1].clone()).unwrap();
        });
        rx.recv().unwrap()
    };
    let clean = run(Bugs::NONE);
    // Broker 1 is found dead first (broker 2 takes over, epoch 1), then broker 2 (epoch 2).
    assert_eq!((clean.leader, clean.leader_epoch), (None, 2));
    assert_eq!(
        clean.isr,
        vec![1, 2],
        "the replicas holding everything stay in"
    );
    let unclean = run(Bugs::NONE.with(Bug::UncleanLeaderElection));
    assert_eq!(unclean.leader, Some(0), "an out-of-sync replica leads");
    assert_eq!(unclean.isr, vec![0]);
}

#[test]
fn garbage_and_data_requests_are_refused_not_fatal() {
    with_controller(Bugs::NONE, |t, _, _| async move {
        let reply = t
            .call(
                NodeName::Controller.sim_addr(),
                vec![200, 1],
                Duration::from_millis(200),
            )
            .await
            .unwrap();
        assert_eq!(
            Response::decode(&reply),
            Ok(Response::Error(ErrorCode::Malformed))
        );
        let fetch = Request::Fetch {
            partition: 0,
            offset: 0,
            max_records: 1,
        };
        assert_eq!(
            call(&t, &fetch).await,
            Response::Error(ErrorCode::Malformed)
        );
        let stranger = Request::Heartbeat { broker: 9 };
        assert_eq!(
            call(&t, &stranger).await,
            Response::Error(ErrorCode::Malformed)
        );
        let init = Request::InitProducerId {
            producer_key: "producer-0".into(),
            boot: 1,
        };
        assert!(matches!(
            call(&t, &init).await,
            Response::InitProducerId { last_seqs, .. } if last_seqs.is_empty()
        ));
    });
}

#[test]
fn a_resigning_broker_leaves_the_damaged_partitions_in_sync_sets_and_leadership() {
    with_controller(Bugs::NONE, |t, _, _| async move {
        let resign = Request::Resign {
            broker: 1,
            partitions: vec![0, 1],
        };
        let after = leadership(call(&t, &resign).await);
        // Partition 1 was broker 1's: the next in-sync replica leads it at epoch 1.
        assert_eq!((after[1].leader, after[1].leader_epoch), (Some(2), 1));
        assert_eq!((&after[0].isr, &after[1].isr), (&vec![0, 2], &vec![0, 2]));
        // Its log of partition 2 is whole: it stays in sync there.
        assert_eq!(after[2].isr, vec![0, 1, 2]);
        // Still alive: heartbeats do not bring leadership back, and nobody is declared dead.
        let later = beat(&t, &[0, 1, 2], 400).await;
        assert_eq!(later, after);
    });
}
