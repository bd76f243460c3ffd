//! Properties of the durable log: each owed payment exactly once, where it was acknowledged,
//! and nothing in it that no producer outboxed.

use super::{Anomaly, AnomalyKind, Durable, Facts};
use broker_under_test::codec::{batch_body_len, PaymentId, FRAME_BODY_LEN_MAX};

/// `log-duplicate`: a payment sits in the log more than once.
pub(super) fn log_duplicate(facts: &Facts) -> Vec<Anomaly> {
    facts
        .positions
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(id, at)| {
            let (partition, offset) = at[1];
            let places: Vec<String> = at
                .iter()
                .map(|(p, o)| format!("partition {p} offset {o}"))
                .collect();
            let detail = format!("in the log {} times: {}", at.len(), places.join(", "));
            Anomaly::new(
                AnomalyKind::LogDuplicate,
                Some(id),
                facts.appended_at(partition, offset),
                detail,
            )
        })
        .collect()
}

/// `lost-ack`: the broker acknowledged a payment that is not in the log after recovery.
pub(super) fn lost_ack(facts: &Facts) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for ack in &facts.acks {
        for (i, id) in ack.payments.iter().enumerate() {
            if !facts.positions.contains_key(id.as_str()) && reported.insert(id.as_str()) {
                let detail = format!(
                    "acknowledged to {} at partition {} offset {}, but gone from the log after recovery",
                    ack.producer,
                    ack.partition,
                    ack.base_offset + i as u64
                );
                out.push(Anomaly::new(
                    AnomalyKind::LostAck,
                    Some(id),
                    ack.at_us,
                    detail,
                ));
            }
        }
    }
    out
}

/// `log-missing`: an outboxed payment never reached the log (and was never acknowledged; an
/// acknowledged one that is missing is a `lost-ack`).
pub(super) fn log_missing(facts: &Facts) -> Vec<Anomaly> {
    let acked: std::collections::BTreeSet<&str> = facts
        .acks
        .iter()
        .flat_map(|a| a.payments.iter().map(PaymentId::as_str))
        .collect();
    facts
        .outboxed
        .iter()
        .filter(|(id, _)| !facts.positions.contains_key(*id) && !acked.contains(*id))
        .map(|(id, (_, at_us))| {
            Anomaly::new(
                AnomalyKind::LogMissing,
                Some(id),
                *at_us,
                "outboxed, never in the log".to_string(),
            )
        })
        .collect()
}

/// `log-missing`, for a payment its producer refused: a refusal is legitimate only for a
/// payment that no batch can carry (a one-payment batch over the frame limit). One that fits
/// was owed and never sent. Legitimately refused payments are owed nothing.
pub(super) fn wrongly_refused(facts: &Facts) -> Vec<Anomaly> {
    let fits = |bytes: u64| batch_body_len(&[]) + bytes <= FRAME_BODY_LEN_MAX as u64;
    facts
        .refused
        .iter()
        .filter(|(_, (bytes, _))| fits(*bytes))
        .map(|(id, (bytes, at_us))| {
            let detail = format!(
                "refused as too large at {bytes} bytes, though a batch of it fits in a frame"
            );
            Anomaly::new(AnomalyKind::LogMissing, Some(id), *at_us, detail)
        })
        .collect()
}

/// `ack-mismatch`: the acknowledged offset is not where the payment sits in the log.
pub(super) fn ack_mismatch(facts: &Facts) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ack in &facts.acks {
        for (i, id) in ack.payments.iter().enumerate() {
            let acked_at = (ack.partition, ack.base_offset + i as u64);
            let Some(positions) = facts.positions.get(id.as_str()) else {
                continue;
            };
            if !positions.contains(&acked_at) {
                let (p, o) = positions[0];
                let detail = format!(
                    "acknowledged at partition {} offset {}, but it sits at partition {p} offset {o}",
                    acked_at.0, acked_at.1
                );
                out.push(Anomaly::new(
                    AnomalyKind::AckMismatch,
                    Some(id),
                    ack.at_us,
                    detail,
                ));
            }
        }
    }
    out
}

/// `ack-mismatch` from the history alone: one payment acknowledged at two different places
/// of the log. Acknowledgements follow syncs, so at least one of them is a duplicate or a lie.
pub(super) fn acked_twice(facts: &Facts) -> Vec<Anomaly> {
    let mut first: std::collections::BTreeMap<&str, (u32, u64)> = Default::default();
    let mut out = Vec::new();
    for ack in &facts.acks {
        for (i, id) in ack.payments.iter().enumerate() {
            let here = (ack.partition, ack.base_offset + i as u64);
            let there = *first.entry(id.as_str()).or_insert(here);
            if there != here {
                let detail = format!(
                    "acknowledged at partition {} offset {} and at partition {} offset {}",
                    there.0, there.1, here.0, here.1
                );
                out.push(Anomaly::new(
                    AnomalyKind::AckMismatch,
                    Some(id),
                    ack.at_us,
                    detail,
                ));
            }
        }
    }
    out
}

/// `phantom`: a record in the log or a row in the store that no producer outboxed, or whose
/// content differs from what was outboxed.
pub(super) fn phantom(facts: &Facts, durable: &Durable) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (partition, offset, payment) in durable.records() {
        let problem = match facts.outboxed.get(payment.id.as_str()) {
            None => Some("no producer outboxed it"),
            Some((owed, _)) if *owed != payment => {
                Some("its content differs from what was outboxed")
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            let detail = format!("log record at partition {partition} offset {offset}: {problem}");
            out.push(Anomaly::new(
                AnomalyKind::Phantom,
                Some(&payment.id),
                facts.appended_at(partition, offset),
                detail,
            ));
        }
    }
    for row in &durable.rows {
        let problem = match facts.outboxed.get(row.payment.id.as_str()) {
            None => Some("no producer outboxed it"),
            Some((owed, _)) if **owed != row.payment => {
                Some("its content differs from what was outboxed")
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            let at = facts
                .applied_at
                .get(row.payment.id.as_str())
                .copied()
                .unwrap_or(facts.end_us);
            out.push(Anomaly::new(
                AnomalyKind::Phantom,
                Some(&row.payment.id),
                at,
                format!("store row: {problem}"),
            ));
        }
    }
    out
}
