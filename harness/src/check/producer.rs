//! Properties of what producers were told: acknowledged offsets follow their sequences.

use super::{Anomaly, AnomalyKind, Facts};
use crate::history::Actor;
use broker_under_test::codec::{seq_after, PaymentId};
use std::collections::BTreeMap;

/// `nonmonotonic-send`: a producer's batches, in sequence order, were acknowledged at offsets
/// that do not increase.
pub(super) fn nonmonotonic_send(facts: &Facts) -> Vec<Anomaly> {
    let mut by_producer: BTreeMap<(Actor, u32), BTreeMap<u32, &super::Ack>> = BTreeMap::new();
    for ack in &facts.acks {
        by_producer
            .entry((ack.producer, ack.partition))
            .or_default()
            .insert(ack.base_seq, ack);
    }
    let mut out = Vec::new();
    for ((producer, partition), acks) in by_producer {
        // Sequences wrap around: order them as serial numbers, not as plain integers (the
        // same order as plain integers while no run crosses the wrap).
        let mut acks: Vec<&super::Ack> = acks.into_values().collect();
        acks.sort_by(|a, b| serial_order(a.base_seq, b.base_seq));
        for w in acks.windows(2) {
            if w[1].base_offset <= w[0].base_offset {
                let detail = format!(
                    "{producer} partition {partition}: sequence {} acknowledged at offset {}, but the later sequence {} at offset {}",
                    w[0].base_seq, w[0].base_offset, w[1].base_seq, w[1].base_offset
                );
                out.push(Anomaly::new(
                    AnomalyKind::NonmonotonicSend,
                    w[1].payments.first().map(PaymentId::as_str),
                    w[1].at_us,
                    detail,
                ));
            }
        }
    }
    out
}

/// The order of two sequences on the wrapping circle (`codec::seq_after`).
fn serial_order(a: u32, b: u32) -> std::cmp::Ordering {
    if a == b {
        std::cmp::Ordering::Equal
    } else if seq_after(a, b) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Less
    }
}
