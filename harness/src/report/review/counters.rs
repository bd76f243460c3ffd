//! The review's counters, each counted from the recorded history in the words of the domain:
//! payments retried, batches the broker deduplicated, deliveries the store absorbed, unsynced
//! bytes lost and restarts per node.

use crate::history::{Entry, HarnessEvent, What};
use broker_under_test::{Event, NodeName, PaymentId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A producer's batch as the history names it: the producer, the partition, the base sequence.
/// Batches are never re-formed, so the key holds across retries and producer restarts.
pub(super) type BatchKey = (NodeName, u32, u32);

/// What a reviewer judges a run by. Counted over the workload and the faults (up to the final
/// recovery, whose crashes belong to the check, not to the scenario's faults).
#[derive(Debug, Default)]
pub(super) struct Counters {
    payments_outboxed: BTreeSet<PaymentId>,
    produce_sends: u64,
    produce_retries: u64,
    payments_retried: BTreeSet<PaymentId>,
    batches_deduplicated: u64,
    store_deliveries: u64,
    store_redeliveries: u64,
    store_absorbed: u64,
    bytes_lost: BTreeMap<NodeName, u64>,
    restarts: BTreeMap<NodeName, u64>,
    pauses: BTreeMap<NodeName, u64>,
    messages_dropped: u64,
    messages_duplicated: u64,
    messages_delayed: u64,
}

impl Counters {
    pub(super) fn from_history(history: &[Entry]) -> Counters {
        let mut counters = Counters::default();
        let mut batches: BTreeMap<BatchKey, Vec<PaymentId>> = BTreeMap::new();
        let mut applied: BTreeSet<PaymentId> = BTreeSet::new();
        for entry in history {
            if matches!(entry.what, What::Harness(HarnessEvent::FinalRecovery)) {
                break;
            }
            let node = entry.node.node();
            match &entry.what {
                What::Node(event) => {
                    counters.node_event(node, event, &mut batches, &mut applied);
                }
                What::Harness(event) => counters.harness_event(node, event),
            }
        }
        counters
    }

    fn node_event(
        &mut self,
        node: Option<NodeName>,
        event: &Event,
        batches: &mut BTreeMap<BatchKey, Vec<PaymentId>>,
        applied: &mut BTreeSet<PaymentId>,
    ) {
        match (node, event) {
            (_, Event::Outboxed { payment }) => {
                self.payments_outboxed.insert(payment.id.clone());
            }
            (
                Some(producer),
                Event::BatchPersisted {
                    partition,
                    base_seq,
                    payments,
                },
            ) => {
                batches.insert((producer, *partition, *base_seq), payments.clone());
            }
            (
                Some(producer),
                Event::ProduceSent {
                    partition,
                    base_seq,
                    attempt,
                    ..
                },
            ) => {
                self.produce_sends += 1;
                if *attempt > 0 {
                    self.produce_retries += 1;
                    let batch = batches.get(&(producer, *partition, *base_seq));
                    self.payments_retried
                        .extend(batch.into_iter().flatten().cloned());
                }
            }
            (_, Event::DuplicateBatch { .. }) => self.batches_deduplicated += 1,
            (
                _,
                Event::StoreApplied {
                    payment, duplicate, ..
                },
            ) => {
                self.store_deliveries += 1;
                // A payment the store saw before came again: re-delivered, whether the store
                // absorbed it (its dedup) or applied it once more (a store-duplicate anomaly).
                self.store_redeliveries += u64::from(!applied.insert(payment.clone()));
                self.store_absorbed += u64::from(*duplicate);
            }
            _ => {}
        }
    }

    fn harness_event(&mut self, node: Option<NodeName>, event: &HarnessEvent) {
        match (node, event) {
            (Some(node), HarnessEvent::NodeCrashed { report }) => {
                *self.bytes_lost.entry(node).or_default() += report.bytes_lost;
            }
            (Some(node), HarnessEvent::NodeRestarted) => {
                *self.restarts.entry(node).or_default() += 1;
            }
            (Some(node), HarnessEvent::NodePaused) => *self.pauses.entry(node).or_default() += 1,
            (_, HarnessEvent::MessageDropped { .. }) => self.messages_dropped += 1,
            (_, HarnessEvent::MessageDuplicated { .. }) => self.messages_duplicated += 1,
            (_, HarnessEvent::MessageDelayed { .. }) => self.messages_delayed += 1,
            _ => {}
        }
    }
}

/// `broker 2, store 1`, or `none`: per node, in name order, leaving out the zeros.
fn per_node(counts: &BTreeMap<NodeName, u64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(node, n)| format!("{node} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, String); 13] = [
            (
                "payments outboxed",
                self.payments_outboxed.len().to_string(),
            ),
            ("payments retried", self.payments_retried.len().to_string()),
            ("produce sends", self.produce_sends.to_string()),
            ("produce retries", self.produce_retries.to_string()),
            (
                "batches deduplicated by the broker",
                self.batches_deduplicated.to_string(),
            ),
            ("deliveries to the store", self.store_deliveries.to_string()),
            (
                "re-delivered to the store",
                self.store_redeliveries.to_string(),
            ),
            ("absorbed by the store", self.store_absorbed.to_string()),
            ("unsynced bytes lost", per_node(&self.bytes_lost)),
            ("restarts", per_node(&self.restarts)),
            ("pauses", per_node(&self.pauses)),
            ("messages dropped", self.messages_dropped.to_string()),
            (
                "messages duplicated, delayed",
                format!("{}, {}", self.messages_duplicated, self.messages_delayed),
            ),
        ];
        for (name, value) in rows {
            writeln!(f, "  {name:<36} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Actor;
    use broker_under_test::storage::CrashReport;

    fn at(at_us: u64, node: NodeName, event: Event) -> Entry {
        Entry {
            at_us,
            node: Actor::Node(node),
            what: What::Node(event),
        }
    }

    fn crash(at_us: u64, node: NodeName, bytes_lost: u64) -> Entry {
        let report = CrashReport {
            bytes_lost,
            ..CrashReport::default()
        };
        Entry {
            at_us,
            node: Actor::Node(node),
            what: What::Harness(HarnessEvent::NodeCrashed { report }),
        }
    }

    fn applied(at_us: u64, payment: &str, duplicate: bool) -> Entry {
        let event = Event::StoreApplied {
            payment: payment.into(),
            partition: 0,
            offset: 0,
            duplicate,
        };
        at(at_us, NodeName::Store, event)
    }

    #[test]
    fn counts_retried_payments_redeliveries_and_losses_before_the_final_recovery_only() {
        let producer = NodeName::Producer(0);
        let payments = vec!["p-0-0".into(), "p-0-1".into()];
        let sent = |at_us, attempt| {
            let event = Event::ProduceSent {
                partition: 0,
                epoch: 0,
                base_seq: 0,
                count: 2,
                attempt,
            };
            at(at_us, producer, event)
        };
        let history = vec![
            at(
                1,
                producer,
                Event::BatchPersisted {
                    partition: 0,
                    base_seq: 0,
                    payments,
                },
            ),
            sent(2, 0),
            crash(3, NodeName::Broker, 40),
            sent(4, 1),
            applied(5, "p-0-0", false),
            applied(6, "p-0-0", true),
            Entry {
                at_us: 7,
                node: Actor::Harness,
                what: What::Harness(HarnessEvent::FinalRecovery),
            },
            // The check's own crash: not a fault of the scenario.
            crash(8, NodeName::Broker, 99),
        ];
        let counters = Counters::from_history(&history);
        assert_eq!(counters.payments_retried.len(), 2);
        assert_eq!((counters.produce_sends, counters.produce_retries), (2, 1));
        assert_eq!(counters.store_deliveries, 2);
        assert_eq!(counters.store_redeliveries, 1);
        assert_eq!(counters.store_absorbed, 1);
        assert_eq!(counters.bytes_lost.get(&NodeName::Broker), Some(&40));
    }
}
