//! The broker and store as a client sees them on the wire: malformed requests, fencing of
//! zombies, and duplicates answered with their original offset.
#![cfg(madsim)]

use broker_under_test::cluster::{Cluster, ClusterSpec, Workload};
use broker_under_test::codec::{ErrorCode, Payment, Request, Response};
use broker_under_test::observe::NullObserver;
use broker_under_test::transport::{NoFaults, SimTransport, Transport};
use broker_under_test::{Bugs, NodeName};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Starts a broker and a store (no producers, an idle consumer) and runs `client` on a node of
/// its own.
fn with_cluster<F: Future<Output = ()> + Send + 'static>(
    client: impl FnOnce(Arc<SimTransport>) -> F + Send + 'static,
) {
    let runtime = madsim::runtime::Runtime::with_seed_and_config(3, madsim::Config::default());
    runtime.block_on(async move {
        let workload = Workload {
            producers: 0,
            payments_per_producer: 0,
            customers: 1,
            partitions: 2,
            payment_interval: Duration::from_millis(1),
            max_batch_records: 1,
            seed: 0,
            first_seq: 0,
            payment_sizes: None,
            brokers: 1,
        };
        let _cluster = Cluster::start(
            &ClusterSpec::new(&workload, Bugs::NONE),
            Arc::new(NoFaults),
            Arc::new(NullObserver),
        );
        let addr: SocketAddr = "10.0.9.9:9000".parse().unwrap();
        let node = madsim::runtime::Handle::current()
            .create_node()
            .name("client")
            .ip(addr.ip())
            .build();
        node.spawn(async move {
            madsim::time::sleep(Duration::from_millis(50)).await; // let the servers recover
            let transport = Arc::new(
                SimTransport::bind(addr, 0, Arc::new(NoFaults))
                    .await
                    .unwrap(),
            );
            client(transport).await;
        })
        .await
        .unwrap();
    });
}

async fn call(t: &SimTransport, dst: SocketAddr, request: &Request) -> Response {
    let reply = t
        .call(dst, request.encode(), Duration::from_secs(1))
        .await
        .expect("a reply");
    Response::decode(&reply).expect("a well-formed reply")
}

fn produce(producer_id: u64, epoch: u32, base_seq: u32, n: u32) -> Request {
    Request::Produce {
        partition: 1,
        producer_id,
        epoch,
        base_seq,
        records: (base_seq..base_seq + n)
            .map(|i| Payment::generate(0, i, 4))
            .collect(),
    }
}

fn broker_addr() -> SocketAddr {
    NodeName::Broker.sim_addr()
}

fn store_addr() -> SocketAddr {
    NodeName::Store.sim_addr()
}

#[test]
fn a_malformed_request_gets_an_error_reply_and_the_server_keeps_serving() {
    with_cluster(|t| async move {
        for dst in [broker_addr(), store_addr()] {
            for garbage in [
                vec![],
                vec![0xff],
                vec![2, 0, 0],
                b"GET / HTTP/1.1".to_vec(),
            ] {
                let reply = t
                    .call(dst, garbage, Duration::from_secs(1))
                    .await
                    .expect("a reply");
                assert_eq!(
                    Response::decode(&reply),
                    Ok(Response::Error(ErrorCode::Malformed))
                );
            }
        }
        let fetch = Request::Fetch {
            partition: 7,
            offset: 0,
            max_records: 10,
        };
        assert_eq!(
            call(&t, broker_addr(), &fetch).await,
            Response::Error(ErrorCode::UnknownPartition)
        );
        let fetch = Request::Fetch {
            partition: 0,
            offset: 0,
            max_records: 10,
        };
        assert_eq!(
            call(&t, broker_addr(), &fetch).await,
            Response::Fetched {
                records: vec![],
                log_end: 0
            }
        );
    });
}

#[test]
fn duplicates_get_their_original_offset_and_zombies_are_fenced() {
    with_cluster(|t| async move {
        let init = |boot| Request::InitProducerId {
            producer_key: "producer-9".into(),
            boot,
        };
        let Response::InitProducerId {
            producer_id,
            epoch: 0,
            ..
        } = call(&t, broker_addr(), &init(1)).await
        else {
            panic!("init failed")
        };
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 0, 0, 2)).await,
            Response::Produced { base_offset: 0 }
        );
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 0, 2, 1)).await,
            Response::Produced { base_offset: 2 }
        );
        // A retry of the first batch: success with the original offset, nothing appended.
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 0, 0, 2)).await,
            Response::Produced { base_offset: 0 }
        );
        // A gap.
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 0, 5, 1)).await,
            Response::Error(ErrorCode::OutOfOrderSequence { expected: 3 })
        );
        // The producer restarts: epoch 1, and the broker tells it where its sequence stands.
        assert_eq!(
            call(&t, broker_addr(), &init(2)).await,
            Response::InitProducerId {
                producer_id,
                epoch: 1,
                last_seqs: vec![None, Some(2)]
            }
        );
        // The old incarnation's delayed request and its delayed init are both fenced.
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 0, 3, 1)).await,
            Response::Error(ErrorCode::ProducerFenced)
        );
        assert_eq!(
            call(&t, broker_addr(), &init(1)).await,
            Response::Error(ErrorCode::ProducerFenced)
        );
        // The new incarnation continues the sequence.
        assert_eq!(
            call(&t, broker_addr(), &produce(producer_id, 1, 3, 1)).await,
            Response::Produced { base_offset: 3 }
        );
        let fetch = Request::Fetch {
            partition: 1,
            offset: 0,
            max_records: 10,
        };
        let Response::Fetched {
            records,
            log_end: 4,
        } = call(&t, broker_addr(), &fetch).await
        else {
            panic!("fetch failed")
        };
        let ids: Vec<&str> = records.iter().map(|r| r.payment.id.as_str()).collect();
        assert_eq!(ids, vec!["p-0-0", "p-0-1", "p-0-2", "p-0-3"]);
    });
}

#[test]
fn the_store_applies_a_payment_once_and_offsets_are_committed() {
    with_cluster(|t| async move {
        let apply = Request::Apply {
            payment: Payment::generate(1, 1, 4),
            partition: 0,
            offset: 5,
        };
        assert_eq!(
            call(&t, store_addr(), &apply).await,
            Response::Applied { duplicate: false }
        );
        assert_eq!(
            call(&t, store_addr(), &apply).await,
            Response::Applied { duplicate: true }
        );
        let fetch = Request::OffsetFetch {
            group: "g".into(),
            partition: 1,
        };
        assert_eq!(
            call(&t, broker_addr(), &fetch).await,
            Response::OffsetFetched { offset: None }
        );
        let commit = Request::OffsetCommit {
            group: "g".into(),
            partition: 1,
            offset: 6,
        };
        assert_eq!(
            call(&t, broker_addr(), &commit).await,
            Response::OffsetCommitted
        );
        assert_eq!(
            call(&t, broker_addr(), &fetch).await,
            Response::OffsetFetched { offset: Some(6) }
        );
    });
}
