//! A producer: makes its payments on a schedule, owes each one durably in its outbox, and
//! sends the owed ones to the relay in small batches until every one is acknowledged.
//!
//! The outbox is one file of frames: `Owed(payment)` (synced before the payment is reported
//! owed or sent) and `Acked(indices)` (synced before the next batch leaves, so that after a
//! restart sends resume no earlier than where they stopped). One batch is in flight at a time
//! and a batch holds the lowest unacknowledged payment, so each partition receives this
//! producer's payments in index order: their offsets grow with their sequence.

use crate::node::{Node, Stop};
use crate::wire::{self, Reply, Request};
use harness::system::kit::{Event, NodeName, Payment, Probe, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const OUTBOX: &str = "outbox";

#[derive(Serialize, Deserialize)]
enum Entry {
    Owed(Payment),
    Acked(Vec<u32>),
}

/// The outbox as recovered and kept up to date: payment `n` is `owed[n]`.
struct Outbox {
    owed: Vec<Payment>,
    acked: BTreeSet<u32>,
}

pub(crate) async fn run(node: Node, index: u32) -> Result<(), Stop> {
    let mut outbox = recover(&node).await?;
    let start = madsim::time::Instant::now();
    let first_new = outbox.owed.len() as u32;
    let total = node.config.payments_per_producer;
    loop {
        // Every payment due by now (a restarted producer catches up at once).
        let due = first_new + (start.elapsed().as_nanos() / interval_nanos(&node)) as u32 + 1;
        let made = outbox.owed.len() as u32;
        if made < due.min(total) {
            make_payments(&node, &mut outbox, index, made..due.min(total)).await?;
        }
        match next_batch(&node, &outbox) {
            Some(batch) => send(&node, &mut outbox, index, batch).await?,
            None if made >= total => return Ok(()), // everything made and acknowledged
            None => madsim::time::sleep(node.config.payment_interval).await,
        }
    }
}

fn interval_nanos(node: &Node) -> u128 {
    node.config.payment_interval.as_nanos().max(1)
}

/// Reads the outbox back, cuts a torn tail, and owes again every unacknowledged payment: one
/// that survived the crash unsynced was never reported owed, and is now durable.
async fn recover(node: &Node) -> Result<Outbox, Stop> {
    let bytes = node.disk.read(OUTBOX).await?;
    let (entries, valid) = wire::unframe::<Entry>(&bytes);
    if valid < bytes.len() {
        node.disk.truncate(OUTBOX, valid).await?;
        node.probe(Probe::OutboxTornTailDropped);
    }
    let mut outbox = Outbox {
        owed: Vec::new(),
        acked: BTreeSet::new(),
    };
    for entry in entries {
        match entry {
            Entry::Owed(payment) => outbox.owed.push(payment),
            Entry::Acked(indices) => outbox.acked.extend(indices),
        }
    }
    let unacked: Vec<&Payment> = (0..outbox.owed.len() as u32)
        .filter(|n| !outbox.acked.contains(n))
        .map(|n| &outbox.owed[n as usize])
        .collect();
    node.record(Event::ProducerStarted {
        boot: node.incarnation,
        outboxed: outbox.owed.len() as u32,
        batches: 0,
        torn_bytes: (bytes.len() - valid) as u64,
    });
    for payment in unacked {
        node.record(Event::Outboxed {
            payment: payment.clone(),
        });
    }
    Ok(outbox)
}

/// Owes payments `range` of this producer: appended and synced, then reported.
async fn make_payments(
    node: &Node,
    outbox: &mut Outbox,
    index: u32,
    range: std::ops::Range<u32>,
) -> Result<(), Stop> {
    let payments: Vec<Payment> = range
        .map(|n| Payment::generate(index, n, node.config.customers))
        .collect();
    let bytes: Vec<u8> = payments
        .iter()
        .flat_map(|p| wire::frame(&Entry::Owed(p.clone())))
        .collect();
    node.disk.append(OUTBOX, &bytes).await?;
    node.disk.sync(OUTBOX).await?;
    for payment in payments {
        node.record(Event::Outboxed {
            payment: payment.clone(),
        });
        outbox.owed.push(payment);
    }
    Ok(())
}

/// The next batch: the lowest unacknowledged payment, and the following unacknowledged ones
/// of the same partition, up to the batch size.
fn next_batch(node: &Node, outbox: &Outbox) -> Option<Vec<u32>> {
    let partitions = node.config.partitions;
    let mut unacked = (0..outbox.owed.len() as u32).filter(|n| !outbox.acked.contains(n));
    let first = unacked.next()?;
    let partition = wire::partition_of(&outbox.owed[first as usize].id, partitions);
    let same = unacked
        .filter(|&n| wire::partition_of(&outbox.owed[n as usize].id, partitions) == partition);
    let mut batch = vec![first];
    batch.extend(same.take(node.config.max_batch_records as usize - 1));
    Some(batch)
}

/// Sends one batch until the relay answers, reports the acknowledgement, and records it.
async fn send(node: &Node, outbox: &mut Outbox, index: u32, batch: Vec<u32>) -> Result<(), Stop> {
    let payments: Vec<Payment> = batch
        .iter()
        .map(|&n| outbox.owed[n as usize].clone())
        .collect();
    let partition = wire::partition_of(&payments[0].id, node.config.partitions);
    let sent = |attempt: u32| Event::ProduceSent {
        partition,
        epoch: node.incarnation as u32,
        base_seq: batch[0],
        count: batch.len() as u32,
        attempt,
    };
    node.record(sent(0));
    let request = Request::Produce {
        producer: index,
        seq: batch[0],
        payments,
    };
    let relay = NodeName::Broker.sim_addr();
    let reply = wire::call(&node.transport, relay, &request, |a| node.record(sent(a))).await?;
    let Reply::Produced { positions } = reply else {
        return Err(Stop::Broken(format!("a produce answered {reply:?}")));
    };
    if positions.len() != batch.len() {
        return Err(Stop::Broken(
            "a produce answered the wrong number of positions".into(),
        ));
    }
    report_acks(node, &batch, &request, &positions);
    node.disk
        .append(OUTBOX, &wire::frame(&Entry::Acked(batch.clone())))
        .await?;
    node.disk.sync(OUTBOX).await?;
    outbox.acked.extend(batch);
    Ok(())
}

/// One `ProduceAcked` per run of payments at consecutive offsets of one partition (a retried
/// batch may find some of its payments already in the log, elsewhere than the new ones).
fn report_acks(node: &Node, batch: &[u32], request: &Request, positions: &[(u32, u64)]) {
    let Request::Produce { payments, .. } = request else {
        return;
    };
    let mut start = 0;
    for i in 1..=batch.len() {
        let continues = i < batch.len()
            && positions[i].0 == positions[start].0
            && positions[i].1 == positions[i - 1].1 + 1;
        if continues {
            continue;
        }
        node.record(Event::ProduceAcked {
            partition: positions[start].0,
            base_seq: batch[start],
            base_offset: positions[start].1,
            payments: payments[start..i].iter().map(|p| p.id.clone()).collect(),
        });
        start = i;
    }
}
