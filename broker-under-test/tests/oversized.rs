//! Issue #14's oversized-batch sequence on the wire: a batch over the log's frame limit, then
//! more acknowledged batches, then a broker crash. The broker must refuse the oversized batch,
//! so that nothing acknowledged is lost; the planted `oversized-batch-accepted` shows the loss.
#![cfg(madsim)]

use broker_under_test::cluster::{Cluster, ClusterSpec, Workload};
use broker_under_test::codec::{ErrorCode, Payment, Request, Response, FRAME_BODY_LEN_MAX};
use broker_under_test::observe::NullObserver;
use broker_under_test::storage::Tear;
use broker_under_test::transport::{NoFaults, SimTransport, Transport};
use broker_under_test::{Bug, Bugs, NodeName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

async fn call(t: &SimTransport, request: &Request) -> Response {
    let reply = t
        .call(
            NodeName::Broker.sim_addr(),
            request.encode(),
            Duration::from_secs(1),
        )
        .await
        .expect("a reply");
    Response::decode(&reply).expect("a well-formed reply")
}

fn produce(producer_id: u64, base_seq: u32, records: Vec<Payment>) -> Request {
    Request::Produce {
        partition: 0,
        producer_id,
        epoch: 0,
        base_seq,
        records,
    }
}

/// Payment `n`, padded to `bytes` encoded bytes.
fn payment(n: u32, bytes: u64) -> Payment {
    Payment::generate(0, n, 1).with_encoded_len(bytes)
}

/// What the client was told, and what the log holds after the crash.
struct Seen {
    replies: Vec<Response>,
    ids_after_crash: Vec<broker_under_test::PaymentId>,
}

/// A small batch; a batch of two 600 KB payments (over the 1 MiB frame limit together); then,
/// as the producer does on a refusal, the two halves, and one more small batch; then a broker
/// crash and a fetch of everything. With the planted bug the oversized batch is acknowledged
/// and the sequence goes on after it.
// One scripted exchange on the wire, in order, as the doc above tells it: kept whole so it reads
// as that story.
fn oversized_batch_then_crash(bugs: Bugs) -> Seen {
    let runtime = madsim::runtime::Runtime::with_seed_and_config(5, madsim::Config::default());
    runtime.block_on(async move {
        let workload = Workload {
            producers: 0,
            payments_per_producer: 0,
            customers: 1,
            partitions: 1,
            payment_interval: Duration::from_millis(1),
            max_batch_records: 1,
            seed: 0,
            first_seq: 0,
            payment_sizes: None,
            brokers: 1,
        };
        let cluster = Cluster::start(
            &ClusterSpec::new(&workload, bugs),
            Arc::new(NoFaults),
            Arc::new(NullObserver),
        );
        let addr: SocketAddr = "10.0.9.9:9000".parse().unwrap();
        let node = madsim::runtime::Handle::current()
            .create_node()
            .name("client")
            .ip(addr.ip())
            .build();
        let t = node
            .spawn(async move {
                madsim::time::sleep(Duration::from_millis(50)).await;
                Arc::new(
                    SimTransport::bind(addr, 0, Arc::new(NoFaults))
                        .await
                        .unwrap(),
                )
            })
            .await
            .unwrap();
        let client = t.clone();
        let replies = node
            .spawn(async move {
                let init = Request::InitProducerId {
                    producer_key: "producer-9".into(),
                    boot: 1,
                };
                let Response::InitProducerId { producer_id, .. } = call(&client, &init).await
                else {
                    panic!("init failed")
                };
                let big = |n| payment(n, 600_000);
                let mut replies =
                    vec![call(&client, &produce(producer_id, 0, vec![payment(0, 30)])).await];
                let oversized = call(&client, &produce(producer_id, 1, vec![big(1), big(2)])).await;
                let next = if oversized == Response::Error(ErrorCode::RecordTooLarge) {
                    replies.push(oversized);
                    replies.push(call(&client, &produce(producer_id, 1, vec![big(1)])).await);
                    replies.push(call(&client, &produce(producer_id, 2, vec![big(2)])).await);
                    3
                } else {
                    replies.push(oversized);
                    3
                };
                replies
                    .push(call(&client, &produce(producer_id, next, vec![payment(3, 30)])).await);
                replies
            })
            .await
            .unwrap();
        cluster.crash(NodeName::Broker, &mut |_, _| Tear::LOSE_ALL);
        // Fetches return about a frame's worth of payment bytes: read on to the log end.
        let ids_after_crash = node
            .spawn(async move {
                madsim::time::sleep(Duration::from_millis(50)).await;
                let mut ids = Vec::new();
                loop {
                    let fetch = Request::Fetch {
                        partition: 0,
                        offset: ids.len() as u64,
                        max_records: 10,
                    };
                    let Response::Fetched { records, log_end } = call(&t, &fetch).await else {
                        panic!("fetch failed")
                    };
                    ids.extend(records.into_iter().map(|r| r.payment.id));
                    if ids.len() as u64 >= log_end {
                        return ids;
                    }
                }
            })
            .await
            .unwrap();
        Seen {
            replies,
            ids_after_crash,
        }
    })
}

#[test]
fn an_oversized_batch_is_refused_and_nothing_acknowledged_is_lost() {
    const {
        assert!(
            2 * 600_000 > FRAME_BODY_LEN_MAX,
            "the batch is over the limit"
        )
    };
    let seen = oversized_batch_then_crash(Bugs::NONE);
    assert_eq!(
        seen.replies,
        vec![
            Response::Produced { base_offset: 0 },
            Response::Error(ErrorCode::RecordTooLarge),
            Response::Produced { base_offset: 1 },
            Response::Produced { base_offset: 2 },
            Response::Produced { base_offset: 3 },
        ]
    );
    assert_eq!(seen.ids_after_crash, ["p-0-0", "p-0-1", "p-0-2", "p-0-3"]);
}

#[test]
fn the_planted_bug_acknowledges_the_oversized_batch_and_recovery_loses_it_and_what_followed() {
    let seen = oversized_batch_then_crash(Bugs::NONE.with(Bug::OversizedBatchAccepted));
    assert_eq!(
        seen.replies,
        vec![
            Response::Produced { base_offset: 0 },
            Response::Produced { base_offset: 1 },
            Response::Produced { base_offset: 3 },
        ]
    );
    // Acknowledged at offsets 1..=3, gone after the crash.
    assert_eq!(seen.ids_after_crash, ["p-0-0"]);
}
