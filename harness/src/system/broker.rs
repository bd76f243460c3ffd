//! This repository's Kafka-like broker as a [`System`]: its deployment on madsim, its final
//! read through its own clients (`Fetch` from the broker, `ListRows` from the store), and its
//! messages decoded for timelines.

use super::{BoxFuture, Deployment, MessageView, ReaderNode, Setup, System, READER_ADDR};
use crate::check::Durable;
use crate::scenario::{Scenario, SizeDistribution};
use crate::sim::messages::MessageClass;
use broker_under_test::client::{read_back, read_back_replicated, ReplicatedAddrs};
use broker_under_test::cluster::{Cluster, ClusterSpec, Workload};
use broker_under_test::codec::{DecodeError, Request, Response};
use broker_under_test::producer::PaymentSizes;
use broker_under_test::storage::{CrashReport, IoInjector, Tear};
use broker_under_test::transport::{MessageKind, NoFaults, SimTransport};
use broker_under_test::{Bugs, NodeName};
use std::sync::Arc;
use std::time::Duration;

/// The broker, store, consumer and producers of `broker-under-test`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrokerSystem;

impl BrokerSystem {
    /// The node configurations a scenario's workload asks for.
    pub(crate) fn cluster_spec(scenario: &Scenario, seed: u64, bugs: Bugs) -> ClusterSpec {
        let w = &scenario.workload;
        let workload = Workload {
            producers: w.producers,
            payments_per_producer: w.payments_per_producer,
            customers: w.customers,
            partitions: w.partitions,
            payment_interval: Duration::from_millis(w.payment_interval_ms),
            max_batch_records: w.max_batch_records,
            seed,
            first_seq: w.first_sequence.unwrap_or(0),
            payment_sizes: w.payment_size.as_ref().map(|size| PaymentSizes {
                min_bytes: size.bytes[0],
                max_bytes: size.bytes[1],
                log_uniform: size.distribution == SizeDistribution::LogUniform,
            }),
            brokers: w.brokers,
        };
        ClusterSpec::new(&workload, bugs)
    }
}

impl System for BrokerSystem {
    fn name(&self) -> &str {
        "broker-under-test"
    }

    fn max_brokers(&self) -> u32 {
        crate::scenario::BROKERS_MAX
    }

    fn deploy(&self, setup: Setup<'_>) -> Box<dyn Deployment> {
        let spec = BrokerSystem::cluster_spec(setup.scenario, setup.seed, setup.bugs);
        Box::new(BrokerDeployment {
            cluster: Cluster::start(&spec, setup.net, setup.observer),
            partitions: setup.scenario.workload.partitions,
            brokers: setup.scenario.workload.brokers,
        })
    }

    fn describe(&self, kind: MessageKind, request_id: u64, body: &[u8]) -> MessageView {
        let body = Body::decode(kind, body);
        MessageView {
            class: body.class(),
            label: body.label(request_id),
            payments: body.payments(),
        }
    }
}

struct BrokerDeployment {
    cluster: Cluster,
    partitions: u32,
    /// 1: the single broker; more: replicas and a controller.
    brokers: u32,
}

/// How long a replicated final read waits for every partition's log to be committed again
/// after the final crash: inside the harness's own bound, so that a read that cannot finish
/// says why (which partition, which leader) rather than only that it timed out.
const REPLICATED_READ_BOUND: Duration = Duration::from_secs(20);

impl Deployment for BrokerDeployment {
    fn kill(&self, node: NodeName, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport {
        self.cluster.kill(node, tear)
    }

    fn restart(&self, node: NodeName) {
        self.cluster.restart(node);
    }

    fn pause(&self, node: NodeName) {
        self.cluster.pause(node);
    }

    fn resume(&self, node: NodeName) {
        self.cluster.resume(node);
    }

    fn damage_log(
        &self,
        node: NodeName,
        log: u32,
        damage: &dyn Fn(usize) -> broker_under_test::storage::Damage,
    ) -> bool {
        let file = broker_under_test::log::log_file(log % self.partitions.max(1));
        let disk = self.cluster.disk(node);
        disk.damage_synced(&file, damage(disk.contents(&file).len()))
    }

    fn set_io_errors(&self, node: NodeName, injector: Option<IoInjector>) -> bool {
        self.cluster.set_io_errors(node, injector);
        true
    }

    fn final_read(&self) -> BoxFuture<'_, Result<Durable, String>> {
        let (partitions, brokers) = (self.partitions, self.brokers);
        Box::pin(async move {
            // A client of its own, on a node of its own: the read goes through the system's
            // network and request handling like any operator's.
            let reader = ReaderNode::new();
            let read = reader.spawn(async move {
                let transport = SimTransport::bind(READER_ADDR, 0, Arc::new(NoFaults))
                    .await
                    .map_err(|e| format!("the final read could not bind: {e}"))?;
                let store = NodeName::Store.sim_addr();
                if brokers == 1 {
                    return read_back(&transport, NodeName::Broker.sim_addr(), store, partitions)
                        .await;
                }
                // Leaders from the controller, each log from its leader as an observer.
                let addrs = ReplicatedAddrs {
                    controller: NodeName::Controller.sim_addr(),
                    replicas: (0..brokers)
                        .map(|i| NodeName::Replica(i).sim_addr())
                        .collect(),
                };
                let bound = REPLICATED_READ_BOUND;
                read_back_replicated(&transport, &addrs, store, partitions, bound).await
            });
            let back = read.await;
            drop(reader);
            let back = back.map_err(|e| format!("the final read stopped: {e}"))??;
            Ok(Durable {
                logs: back
                    .logs
                    .into_iter()
                    .map(|records| records.into_iter().map(|r| (r.offset, r.payment)).collect())
                    .collect(),
                rows: back.rows,
            })
        })
    }
}

/// A message body decoded once for its class, label and payments.
enum Body {
    Request(Result<Request, DecodeError>),
    Reply(Result<Response, DecodeError>),
}

impl Body {
    fn decode(kind: MessageKind, bytes: &[u8]) -> Body {
        match kind {
            MessageKind::Request => Body::Request(Request::decode(bytes)),
            MessageKind::Reply => Body::Reply(Response::decode(bytes)),
        }
    }

    fn class(&self) -> MessageClass {
        match self {
            Body::Request(Ok(request)) => match request {
                Request::InitProducerId { .. } => MessageClass::InitProducerId,
                Request::Produce { .. } => MessageClass::Produce,
                Request::Fetch { .. } => MessageClass::Fetch,
                Request::OffsetCommit { .. } => MessageClass::OffsetCommit,
                Request::OffsetFetch { .. } => MessageClass::OffsetFetch,
                Request::Apply { .. } => MessageClass::Apply,
                Request::ListRows { .. } => MessageClass::ListRows,
                Request::Heartbeat { .. } => MessageClass::Heartbeat,
                Request::Resign { .. } => MessageClass::Resign,
                Request::Metadata => MessageClass::Metadata,
                Request::AlterIsr { .. } => MessageClass::AlterIsr,
                Request::ReplicaFetch { .. } => MessageClass::ReplicaFetch,
                Request::LastSeq { .. } => MessageClass::LastSeq,
            },
            Body::Request(Err(_)) => MessageClass::MalformedRequest,
            Body::Reply(Ok(response)) => match response {
                Response::InitProducerId { .. } => MessageClass::ProducerIdIssued,
                Response::Produced { .. } => MessageClass::Produced,
                Response::Fetched { .. } => MessageClass::Fetched,
                Response::OffsetCommitted => MessageClass::OffsetCommitted,
                Response::OffsetFetched { .. } => MessageClass::OffsetFetched,
                Response::Applied { .. } => MessageClass::Applied,
                Response::Error(_) => MessageClass::Error,
                Response::Rows { .. } => MessageClass::Rows,
                Response::Leadership { .. } => MessageClass::Leadership,
                Response::Replicated { .. } => MessageClass::Replicated,
                Response::Diverging { .. } => MessageClass::Diverging,
                Response::LastSeq { .. } => MessageClass::LastSeqAnswered,
            },
            Body::Reply(Err(_)) => MessageClass::MalformedReply,
        }
    }

    /// The payment ids the body itself carries.
    fn payments(&self) -> Vec<String> {
        match self {
            Body::Request(Ok(Request::Produce { records, .. })) => {
                records.iter().map(|p| p.id.to_string()).collect()
            }
            Body::Request(Ok(Request::Apply { payment, .. })) => vec![payment.id.to_string()],
            Body::Reply(Ok(Response::Fetched { records, .. })) => {
                records.iter().map(|r| r.payment.id.to_string()).collect()
            }
            _ => Vec::new(),
        }
    }

    fn label(&self, request_id: u64) -> String {
        match self {
            Body::Request(Ok(request)) => request_label(request),
            Body::Request(Err(_)) => format!("malformed request #{request_id}"),
            Body::Reply(Ok(response)) => format!("reply #{request_id}: {}", reply_label(response)),
            Body::Reply(Err(_)) => format!("malformed reply #{request_id}"),
        }
    }
}

fn request_label(request: &Request) -> String {
    match request {
        Request::InitProducerId { producer_key, boot } => {
            format!("init-producer-id {producer_key} boot={boot}")
        }
        Request::Produce {
            partition,
            epoch,
            base_seq,
            records,
            ..
        } => format!(
            "produce partition={partition} epoch={epoch} seq={base_seq}+{}",
            records.len()
        ),
        Request::Fetch {
            partition, offset, ..
        } => format!("fetch partition={partition} offset={offset}"),
        Request::OffsetCommit {
            partition, offset, ..
        } => format!("commit partition={partition} offset={offset}"),
        Request::OffsetFetch { partition, .. } => format!("offset-fetch partition={partition}"),
        Request::Apply { payment, .. } => format!("apply {}", payment.id),
        Request::ListRows { from, .. } => format!("list-rows from={from}"),
        Request::Heartbeat { broker } => format!("heartbeat broker-{broker}"),
        Request::Resign { broker, partitions } => {
            format!("resign broker-{broker} partitions={partitions:?}")
        }
        Request::Metadata => "metadata".to_string(),
        Request::AlterIsr {
            partition,
            leader_epoch,
            isr,
            ..
        } => format!("alter-isr partition={partition} epoch={leader_epoch} isr={isr:?}"),
        Request::ReplicaFetch {
            partition,
            leader_epoch,
            offset,
            ..
        } => format!("replica-fetch partition={partition} epoch={leader_epoch} offset={offset}"),
        Request::LastSeq { partition, .. } => format!("last-seq partition={partition}"),
    }
}

/// The part of a reply's label after its request id. The replies without detail are named as
/// their variant (once printed with `Debug`; kept so that no trace hash changes).
fn reply_label(response: &Response) -> String {
    match response {
        Response::Produced { base_offset } => format!("produced offset={base_offset}"),
        Response::Fetched { records, .. } => format!("{} records", records.len()),
        Response::Applied { duplicate } => format!("applied duplicate={duplicate}"),
        Response::Error(code) => format!("error {code}"),
        Response::InitProducerId { .. } => "InitProducerId".to_string(),
        Response::OffsetCommitted => "OffsetCommitted".to_string(),
        Response::OffsetFetched { .. } => "OffsetFetched".to_string(),
        Response::Rows { rows, total } => format!("{} of {total} rows", rows.len()),
        Response::Leadership { partitions } => {
            let leaders: Vec<String> = partitions
                .iter()
                .map(|p| match p.leader {
                    Some(l) => format!("{l}@{}", p.leader_epoch),
                    None => format!("-@{}", p.leader_epoch),
                })
                .collect();
            format!("leaders {}", leaders.join(","))
        }
        Response::Replicated {
            high_watermark,
            batches,
        } => format!("{} batches hw={high_watermark}", batches.len()),
        Response::Diverging { epoch, end_offset } => {
            format!("diverging epoch={epoch} end={end_offset}")
        }
        Response::LastSeq { last_seq } => format!("last-seq {last_seq:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_under_test::codec::ErrorCode;

    #[test]
    fn undecodable_bodies_and_plain_replies_are_classed_and_labelled() {
        let class = |kind, bytes: &[u8]| Body::decode(kind, bytes).class();
        assert_eq!(
            class(MessageKind::Request, b"\xff"),
            MessageClass::MalformedRequest
        );
        assert_eq!(
            class(MessageKind::Reply, b"\xff"),
            MessageClass::MalformedReply
        );
        let error = Response::Error(ErrorCode::ProducerFenced).encode();
        assert_eq!(class(MessageKind::Reply, &error), MessageClass::Error);
        let committed = Response::OffsetCommitted.encode();
        assert_eq!(
            BrokerSystem
                .describe(MessageKind::Reply, 4, &committed)
                .label,
            "reply #4: OffsetCommitted"
        );
        assert_eq!(
            serde_json::to_value(MessageClass::ProducerIdIssued).unwrap(),
            "producer-id-issued"
        );
    }
}
