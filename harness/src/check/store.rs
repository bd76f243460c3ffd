//! Properties of the downstream store: each owed payment applied exactly once.

use super::{Anomaly, AnomalyKind, Facts};

/// `store-duplicate`: the store holds more than one row for a payment.
pub(super) fn store_duplicate(facts: &Facts) -> Vec<Anomaly> {
    facts
        .rows
        .iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|(id, rows)| {
            let from: Vec<String> = rows
                .iter()
                .map(|r| format!("partition {} offset {}", r.partition, r.offset))
                .collect();
            let at = facts.applied_at.get(id).copied().unwrap_or(facts.end_us);
            let detail = format!("applied {} times, from {}", rows.len(), from.join(", "));
            Anomaly::new(AnomalyKind::StoreDuplicate, Some(id), at, detail)
        })
        .collect()
}

/// `store-missing`: an outboxed payment is not in the store.
pub(super) fn store_missing(facts: &Facts) -> Vec<Anomaly> {
    facts
        .outboxed
        .iter()
        .filter(|(id, _)| !facts.rows.contains_key(*id))
        .map(|(id, (_, at_us))| {
            let detail = match facts.positions.get(id) {
                Some(at) => format!(
                    "in the log at partition {} offset {}, never applied to the store",
                    at[0].0, at[0].1
                ),
                None => "outboxed, never applied to the store".to_string(),
            };
            Anomaly::new(AnomalyKind::StoreMissing, Some(id), *at_us, detail)
        })
        .collect()
}
