//! The review's excerpt of behaviour: the life of one payment, chosen by a rule that stays put
//! while behaviour does (the first payment whose batch was sent again after a crash), told in
//! the domain's words rather than the history's encoding, so an encoding change leaves it alone.

use super::counters::BatchKey;
use crate::history::{Entry, HarnessEvent, What};
use broker_under_test::{Event, NodeName, PaymentId};
use std::collections::{BTreeMap, BTreeSet};

/// The most lines of a life: enough to follow a retry across a crash, short enough to review.
const MAX_LINES: usize = 30;

/// The traced payment and why it was chosen.
pub(super) struct Traced {
    pub(super) payment: String,
    pub(super) batch: BatchKey,
    pub(super) why: &'static str,
}

/// The first payment of the first batch sent again after a crash of its producer or the broker
/// since its first send; failing that, of the first batch sent again at all.
pub(super) fn choose(history: &[Entry]) -> Option<Traced> {
    let mut batches: BTreeMap<BatchKey, Vec<PaymentId>> = BTreeMap::new();
    let mut first_sent_us: BTreeMap<BatchKey, u64> = BTreeMap::new();
    let mut last_crash_us: BTreeMap<NodeName, u64> = BTreeMap::new();
    let mut first_retried: Option<BatchKey> = None;
    for entry in history {
        let node = entry.node.node();
        match (node, &entry.what) {
            (_, What::Harness(HarnessEvent::FinalRecovery)) => break,
            (Some(n), What::Harness(HarnessEvent::NodeCrashed { .. })) => {
                last_crash_us.insert(n, entry.at_us);
            }
            (
                Some(p),
                What::Node(Event::BatchPersisted {
                    partition,
                    base_seq,
                    payments,
                }),
            ) => {
                batches.insert((p, *partition, *base_seq), payments.clone());
            }
            (
                Some(p),
                What::Node(Event::ProduceSent {
                    partition,
                    base_seq,
                    ..
                }),
            ) => {
                let key = (p, *partition, *base_seq);
                let Some(&first_us) = first_sent_us.get(&key) else {
                    first_sent_us.insert(key, entry.at_us);
                    continue;
                };
                first_retried.get_or_insert(key);
                let crashed_since =
                    |n: NodeName| last_crash_us.get(&n).is_some_and(|&t| t > first_us);
                if crashed_since(p) || crashed_since(NodeName::Broker) {
                    return traced(&batches, key, "the first payment sent again after a crash");
                }
            }
            _ => {}
        }
    }
    traced(
        &batches,
        first_retried?,
        "the first payment sent again (no retry crossed a crash)",
    )
}

fn traced(
    batches: &BTreeMap<BatchKey, Vec<PaymentId>>,
    key: BatchKey,
    why: &'static str,
) -> Option<Traced> {
    let payment = batches.get(&key)?.first()?.to_string();
    Some(Traced {
        payment,
        batch: key,
        why,
    })
}

/// Every entry of the payment's life, one line each, and the crashes and restarts of the nodes
/// it passes through while it lives; at most [`MAX_LINES`], then how many more there were.
pub(super) fn lines(history: &[Entry], traced: &Traced) -> Vec<String> {
    let (producer, _, _) = traced.batch;
    let producer_ids = producer_ids(history, producer);
    // (whether the line is the payment's own, the line)
    let mut candidates: Vec<(bool, String)> = Vec::new();
    for entry in history {
        let text = match (entry.node.node(), &entry.what) {
            (_, What::Harness(HarnessEvent::FinalRecovery)) => break,
            (Some(n), What::Harness(event)) if passes_through(n, producer) => {
                harness_text(event).map(|t| (false, t))
            }
            (Some(n), What::Node(event)) => {
                node_text(n, event, traced, &producer_ids).map(|t| (true, t))
            }
            _ => None,
        };
        if let Some((own, text)) = text {
            let (ms, us) = (entry.at_us / 1000, entry.at_us % 1000);
            let node = entry.node.to_string();
            candidates.push((own, format!("{ms:>6}.{us:03} ms  {node:<11} {text}")));
        }
    }
    // Crashes and restarts only between the payment's first and last moment.
    let first = candidates.iter().position(|(own, _)| *own).unwrap_or(0);
    let last = candidates
        .iter()
        .rposition(|(own, _)| *own)
        .map_or(0, |i| i + 1);
    let life = candidates.get(first..last).unwrap_or_default();
    let mut out: Vec<String> = life
        .iter()
        .take(MAX_LINES)
        .map(|(_, l)| l.clone())
        .collect();
    if life.len() > MAX_LINES {
        out.push(format!("... {} more", life.len() - MAX_LINES));
    }
    out
}

/// The producer ids the broker gave this producer (one, unless its registry was lost).
fn producer_ids(history: &[Entry], producer: NodeName) -> BTreeSet<u64> {
    history
        .iter()
        .filter(|e| e.node.node() == Some(producer))
        .filter_map(|e| match &e.what {
            What::Node(Event::ProducerInitialized { producer_id, .. }) => Some(*producer_id),
            _ => None,
        })
        .collect()
}

fn passes_through(node: NodeName, producer: NodeName) -> bool {
    node == producer || !matches!(node, NodeName::Producer(_))
}

fn harness_text(event: &HarnessEvent) -> Option<String> {
    match event {
        // The damage is named only when there was some, so reviews of crashes without it
        // read as they always did.
        HarnessEvent::NodeCrashed { report } => Some(match report.files_damaged {
            0 => format!("crashed, {} unsynced bytes lost", report.bytes_lost),
            n => format!(
                "crashed, {} unsynced bytes lost, a damaged region kept in {n} files",
                report.bytes_lost
            ),
        }),
        HarnessEvent::NodeRestarted => Some("restarted".to_string()),
        _ => None,
    }
}

/// The event in words, if it concerns the traced payment or its batch.
fn node_text(
    node: NodeName,
    event: &Event,
    traced: &Traced,
    ids: &BTreeSet<u64>,
) -> Option<String> {
    let (producer, _, _) = traced.batch;
    let from_producer = if node == producer {
        producer_text(event, traced)
    } else {
        None
    };
    from_producer
        .or_else(|| broker_text(event, traced, ids))
        .or_else(|| downstream_text(event, &traced.payment))
}

fn is_batch(traced: &Traced, partition: u32, base_seq: u32) -> bool {
    (traced.batch.1, traced.batch.2) == (partition, base_seq)
}

/// What the traced payment's producer did with it.
fn producer_text(event: &Event, traced: &Traced) -> Option<String> {
    let p = traced.payment.as_str();
    let index = |payments: &[PaymentId]| {
        payments
            .iter()
            .position(|x| x.as_str() == p)
            .map(|i| i as u64)
    };
    match event {
        Event::Outboxed { payment } if payment.id == p => Some("outboxed".to_string()),
        Event::BatchPersisted {
            partition,
            base_seq,
            payments,
        } if is_batch(traced, *partition, *base_seq) => Some(format!(
            "batched: partition {partition} sequence {base_seq}, {} payments",
            payments.len()
        )),
        Event::ProduceSent {
            partition,
            base_seq,
            epoch,
            attempt,
            ..
        } if is_batch(traced, *partition, *base_seq) => {
            Some(format!("produce sent, epoch {epoch}, attempt {attempt}"))
        }
        Event::ProduceFailed {
            partition,
            base_seq,
            error,
        } if is_batch(traced, *partition, *base_seq) => Some(format!("produce failed: {error}")),
        Event::ProduceAcked {
            base_offset,
            payments,
            ..
        } => index(payments).map(|i| format!("acknowledged at offset {}", base_offset + i)),
        Event::BatchRecoveredAsAcked { payments, .. } if index(payments).is_some() => {
            Some("acknowledged after restart: the broker has it".to_string())
        }
        _ => None,
    }
}

/// What the broker did with the traced payment's batch, known by the producer's ids.
fn broker_text(event: &Event, traced: &Traced, ids: &BTreeSet<u64>) -> Option<String> {
    let ours = |producer_id: &u64, partition: &u32, base_seq: &u32| {
        ids.contains(producer_id) && is_batch(traced, *partition, *base_seq)
    };
    match event {
        Event::BatchAppended {
            partition,
            producer_id,
            base_seq,
            base_offset,
            ..
        } if ours(producer_id, partition, base_seq) => {
            Some(format!("appended at base offset {base_offset}"))
        }
        Event::DuplicateBatch {
            partition,
            producer_id,
            base_seq,
            base_offset,
        } if ours(producer_id, partition, base_seq) => Some(format!(
            "duplicate: answered with base offset {base_offset}"
        )),
        Event::ProduceRejected {
            partition,
            producer_id,
            base_seq,
            error,
            ..
        } if ours(producer_id, partition, base_seq) => Some(format!("rejected: {error}")),
        _ => None,
    }
}

/// What the consumer and the store did with the traced payment.
fn downstream_text(event: &Event, p: &str) -> Option<String> {
    match event {
        Event::Fetched { records, .. } => records
            .iter()
            .find(|(_, id)| id == p)
            .map(|(offset, _)| format!("fetched at offset {offset}")),
        Event::ApplyAcked {
            payment, duplicate, ..
        } if payment == p => Some(format!(
            "apply acknowledged{}",
            if *duplicate { " as a duplicate" } else { "" }
        )),
        Event::StoreApplied {
            payment, duplicate, ..
        } if payment == p => Some(
            if *duplicate {
                "absorbed: applied before"
            } else {
                "applied"
            }
            .to_string(),
        ),
        _ => None,
    }
}
