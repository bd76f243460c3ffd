//! The relay: one log file per partition, deduplicated by payment id, served to fetches.
//!
//! It handles one request at a time, and a produce syncs before it is answered, so everything
//! in memory between two requests is durable: a fetch never sees a record a crash could take
//! back. The dedup set is not a file of its own but the log: recovery rebuilds it from the
//! records that survived, so a payment is in the dedup set exactly when it is in the log.

use crate::node::{Node, Stop};
use crate::wire::{self, Reply, Request};
use crate::RelayBug;
use harness::system::kit::{Event, Payment, PaymentId, Probe, Storage, Transport};
use std::collections::BTreeMap;

fn log_file(partition: u32) -> String {
    format!("partition-{partition}.log")
}

struct Relay {
    /// Each partition's records; a record's offset is its index.
    logs: Vec<Vec<Payment>>,
    /// Payment id -> where it sits.
    dedup: BTreeMap<PaymentId, (u32, u64)>,
}

pub(crate) async fn run(node: Node) -> Result<(), Stop> {
    let mut relay = recover(&node).await?;
    while let Some(incoming) = node.transport.next_request().await {
        let Some(request) = wire::decode::<Request>(&incoming.body) else {
            continue; // a garbled datagram; its sender will retry
        };
        let reply = match request {
            Request::Produce {
                producer,
                seq,
                payments,
            } => relay.produce(&node, producer, seq, payments).await?,
            Request::Fetch {
                partition,
                from,
                max,
            } => relay.fetch(partition, from, max),
            Request::Apply { .. } | Request::ListRows => continue, // the store's, not ours
        };
        node.transport.reply(&incoming, wire::encode(&reply));
    }
    Ok(())
}

/// Reads every partition back, cuts torn tails, and rebuilds the dedup set from the log.
async fn recover(node: &Node) -> Result<Relay, Stop> {
    let mut relay = Relay {
        logs: Vec::new(),
        dedup: BTreeMap::new(),
    };
    for partition in 0..node.config.partitions {
        let file = log_file(partition);
        let bytes = node.disk.read(&file).await?;
        let (records, valid) = wire::unframe::<Payment>(&bytes);
        if valid < bytes.len() {
            // New records must follow the last whole one, not the garbage after it.
            node.disk.truncate(&file, valid).await?;
            node.probe(Probe::TornTailTruncated);
        }
        node.record(Event::LogRecovered {
            partition,
            log_end: records.len() as u64,
            truncated_bytes: (bytes.len() - valid) as u64,
            tail: if valid < bytes.len() { "torn" } else { "clean" }.to_string(),
            snapshot_offset: None,
            batches_replayed: 0,
        });
        if node.config.bug != Some(RelayBug::DedupInMemoryOnly) {
            for (offset, payment) in records.iter().enumerate() {
                relay
                    .dedup
                    .insert(payment.id.clone(), (partition, offset as u64));
            }
        }
        relay.logs.push(records);
    }
    Ok(relay)
}

impl Relay {
    /// Appends the payments not yet in the log, syncs, and answers every payment's position.
    async fn produce(
        &mut self,
        node: &Node,
        producer: u32,
        seq: u32,
        payments: Vec<Payment>,
    ) -> Result<Reply, Stop> {
        let mut positions = Vec::with_capacity(payments.len());
        // Per partition: the first new offset and the frames to append there.
        let mut fresh: BTreeMap<u32, (u64, Vec<u8>)> = BTreeMap::new();
        for payment in payments {
            if let Some(&at) = self.dedup.get(&payment.id) {
                node.probe(Probe::DuplicateBatchAnswered);
                positions.push(at);
                continue;
            }
            let partition = wire::partition_of(&payment.id, node.config.partitions);
            let log = &mut self.logs[partition as usize];
            let at = (partition, log.len() as u64);
            let (_, bytes) = fresh.entry(partition).or_insert((at.1, Vec::new()));
            bytes.extend(wire::frame(&payment));
            self.dedup.insert(payment.id.clone(), at);
            log.push(payment);
            positions.push(at);
        }
        for (&partition, (base_offset, bytes)) in &fresh {
            node.disk.append(&log_file(partition), bytes).await?;
            let count = self.logs[partition as usize].len() as u64 - base_offset;
            node.record(Event::BatchAppended {
                partition,
                producer_id: u64::from(producer),
                epoch: 0,
                base_seq: seq,
                base_offset: *base_offset,
                count: count as u32,
            });
        }
        // Durable before acknowledged: an ack is a promise the record survives any crash.
        for &partition in fresh.keys() {
            node.disk.sync(&log_file(partition)).await?;
        }
        Ok(Reply::Produced { positions })
    }

    fn fetch(&self, partition: u32, from: u64, max: u32) -> Reply {
        let log = self
            .logs
            .get(partition as usize)
            .map_or(&[][..], Vec::as_slice);
        let start = (from as usize).min(log.len());
        let end = (start + max as usize).min(log.len());
        let records = (start..end)
            .map(|offset| (offset as u64, log[offset].clone()))
            .collect();
        Reply::Records { records }
    }
}
