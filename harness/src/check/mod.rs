//! The checker: reads the recorded history and the durable state after the final recovery, and
//! names every way the run broke exactly-once delivery. One function per property, named after
//! its anomaly; each anomaly carries the payment, the simulated time and a line a person can
//! act on. Checkers observe; they never drive the run.

mod consumer;
mod log;
mod producer;
mod store;

use crate::history::{Actor, Entry, What};
use broker_under_test::store::StoreRow;
use broker_under_test::{Event, Payment, PaymentId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The anomaly vocabulary: Jepsen's Kafka names plus the sink's and the run's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A payment appears more than once in the log.
    LogDuplicate,
    /// An owed payment is not in the log.
    LogMissing,
    /// The log acknowledged a payment that is not in it after recovery.
    LostAck,
    /// A payment was applied more than once by the store.
    StoreDuplicate,
    /// An owed payment was never applied by the store.
    StoreMissing,
    /// A payment was acknowledged at an offset where the log does not hold it, or at two places.
    AckMismatch,
    /// The log or the store holds a payment no producer owed, or an altered one.
    Phantom,
    /// A fetch saw a payment at an offset where the durable log holds another, or none.
    InconsistentOffsets,
    /// A payment the consumer fetched, or the store applied, from a log position is no longer
    /// there in the final log: a read of a write the log did not keep (an uncommitted read).
    ReadNotInLog,
    /// The consumer committed an offset past the end of its partition's final log, over
    /// records it had read: the log lost records whose processing was committed.
    CommitBeyondLog,
    /// A producer's batches, in sequence order, were acknowledged at offsets that do not increase.
    NonmonotonicSend,
    /// Within one consumer incarnation, a fetch went back to an offset it had already read past.
    NonmonotonicPoll,
    /// Within one consumer incarnation, a fetch skipped offsets.
    PollSkip,
    /// An owed payment was not settled within the liveness bound after the heal.
    Liveness,
    /// A node or the harness panicked.
    Panic,
    /// Every task blocked forever (madsim's deadlock detector).
    Stuck,
    /// The run passed its simulated-time limit.
    TimeLimit,
    /// The run passed its step limit (messages plus events).
    StepLimit,
    /// Two runs of the same seed recorded different histories.
    Nondeterminism,
}

impl AnomalyKind {
    /// The kebab-case name reports and artifacts use.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One way a run broke exactly-once delivery, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    /// Which property broke.
    pub kind: AnomalyKind,
    /// The payment it concerns, if one.
    pub payment: Option<String>,
    /// When (simulated milliseconds) the evidence was recorded.
    pub at_ms: u64,
    /// A line a person can act on: what was seen, where and when.
    pub detail: String,
}

impl Anomaly {
    /// An anomaly at `at_us` simulated microseconds (kept as milliseconds).
    pub fn new(kind: AnomalyKind, payment: Option<&str>, at_us: u64, detail: String) -> Anomaly {
        Anomaly {
            kind,
            payment: payment.map(str::to_string),
            at_ms: at_us / 1000,
            detail,
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<20} {:>6} ms  ", self.kind.name(), self.at_ms)?;
        if let Some(p) = &self.payment {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.detail)
    }
}

/// What survived: each partition's log and the store's rows, as the system served them to
/// its final read after the final crash and recovery.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// Each partition's records in offset order: (offset, payment).
    pub logs: Vec<Vec<(u64, Payment)>>,
    /// The store's rows, each with the log position it was applied from.
    pub rows: Vec<StoreRow>,
}

impl Durable {
    /// Every record of every partition: (partition, offset, payment).
    pub fn records(&self) -> impl Iterator<Item = (u32, u64, &Payment)> {
        self.logs.iter().enumerate().flat_map(|(p, records)| {
            records
                .iter()
                .map(move |(offset, payment)| (p as u32, *offset, payment))
        })
    }
}

/// A produce acknowledgement as the producer saw it.
#[derive(Clone, Debug)]
pub(crate) struct Ack<'a> {
    pub producer: Actor,
    pub partition: u32,
    pub base_seq: u32,
    pub base_offset: u64,
    pub payments: &'a [PaymentId],
    pub at_us: u64,
}

/// A fetch as the consumer saw it, tagged with the consumer's incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Fetch<'a> {
    pub incarnation: u32,
    pub partition: u32,
    pub from: u64,
    pub records: &'a [(u64, PaymentId)],
    pub at_us: u64,
}

/// The history, digested once for every property.
pub(crate) struct Facts<'a> {
    /// Owed payments: id -> (content, when outboxed).
    pub outboxed: BTreeMap<&'a str, (&'a Payment, u64)>,
    /// Payments their producer refused as too large, never owed: id -> (bytes, when).
    pub refused: BTreeMap<&'a str, (u64, u64)>,
    pub acks: Vec<Ack<'a>>,
    pub fetches: Vec<Fetch<'a>>,
    /// Every committed consumer offset: (partition, offset, when).
    pub commits: Vec<(u32, u64, u64)>,
    /// (partition, base offset) -> when the batch there was (last) appended.
    pub appended_at: BTreeMap<(u32, u64), u64>,
    /// id -> when the store last applied it.
    pub applied_at: BTreeMap<&'a str, u64>,
    /// Where each payment sits in the durable log: id -> [(partition, offset)].
    pub positions: BTreeMap<&'a str, Vec<(u32, u64)>>,
    /// What the durable log holds at each position: (partition, offset) -> id.
    pub held: BTreeMap<(u32, u64), &'a str>,
    /// How many rows the store holds per payment id.
    pub rows: BTreeMap<&'a str, Vec<&'a StoreRow>>,
    pub end_us: u64,
}

impl<'a> Facts<'a> {
    pub fn new(history: &'a [Entry], durable: &'a Durable) -> Facts<'a> {
        let mut facts = Facts {
            outboxed: BTreeMap::new(),
            refused: refusals(history),
            acks: Vec::new(),
            fetches: Vec::new(),
            commits: Vec::new(),
            appended_at: BTreeMap::new(),
            applied_at: BTreeMap::new(),
            positions: BTreeMap::new(),
            held: BTreeMap::new(),
            rows: BTreeMap::new(),
            end_us: history.last().map_or(0, |e| e.at_us),
        };
        let mut consumer_incarnation = 0;
        for entry in history {
            let What::Node(event) = &entry.what else {
                continue;
            };
            let at_us = entry.at_us;
            match event {
                Event::Outboxed { payment } => {
                    facts
                        .outboxed
                        .entry(&payment.id)
                        .or_insert((payment, at_us));
                }
                Event::ProduceAcked {
                    partition,
                    base_seq,
                    base_offset,
                    payments,
                } => facts.acks.push(Ack {
                    producer: entry.node,
                    partition: *partition,
                    base_seq: *base_seq,
                    base_offset: *base_offset,
                    payments,
                    at_us,
                }),
                Event::ConsumerResumed { partition: 0, .. } => consumer_incarnation += 1,
                Event::Fetched {
                    partition,
                    from,
                    records,
                } => facts.fetches.push(Fetch {
                    incarnation: consumer_incarnation,
                    partition: *partition,
                    from: *from,
                    records,
                    at_us,
                }),
                Event::OffsetCommitted { partition, offset } => {
                    facts.commits.push((*partition, *offset, at_us))
                }
                Event::BatchAppended {
                    partition,
                    base_offset,
                    ..
                } => {
                    facts.appended_at.insert((*partition, *base_offset), at_us);
                }
                Event::StoreApplied {
                    payment,
                    duplicate: false,
                    ..
                } => {
                    facts.applied_at.insert(payment, at_us);
                }
                _ => {}
            }
        }
        facts.absorb_durable(durable);
        facts
    }

    /// Where the final state holds each payment: its log positions and its store rows.
    fn absorb_durable(&mut self, durable: &'a Durable) {
        for (partition, offset, payment) in durable.records() {
            self.held.insert((partition, offset), &payment.id);
            self.positions
                .entry(&payment.id)
                .or_default()
                .push((partition, offset));
        }
        for row in &durable.rows {
            self.rows.entry(&row.payment.id).or_default().push(row);
        }
    }

    /// When the batch holding (partition, offset) was appended, or the end of the run.
    pub fn appended_at(&self, partition: u32, offset: u64) -> u64 {
        self.appended_at
            .range((partition, 0)..=(partition, offset))
            .next_back()
            .map_or(self.end_us, |(_, at)| *at)
    }
}

/// Payments their producer refused as too large: id -> (bytes, when).
fn refusals(history: &[Entry]) -> BTreeMap<&str, (u64, u64)> {
    let refused = history.iter().filter_map(|entry| match &entry.what {
        What::Node(Event::PaymentRefused { payment, bytes }) => {
            Some((payment.as_str(), (*bytes, entry.at_us)))
        }
        _ => None,
    });
    refused.collect()
}

/// Every anomaly the history and the durable state show, ordered by time, then kind.
pub fn check(history: &[Entry], durable: &Durable) -> Vec<Anomaly> {
    let facts = Facts::new(history, durable);
    let mut anomalies = Vec::new();
    anomalies.extend(log::log_duplicate(&facts));
    anomalies.extend(log::lost_ack(&facts));
    anomalies.extend(log::log_missing(&facts));
    anomalies.extend(log::wrongly_refused(&facts));
    anomalies.extend(log::ack_mismatch(&facts));
    anomalies.extend(log::phantom(&facts, durable));
    anomalies.extend(store::store_duplicate(&facts));
    anomalies.extend(store::store_missing(&facts));
    anomalies.extend(consumer::inconsistent_offsets(&facts));
    anomalies.extend(consumer::nonmonotonic_poll(&facts));
    anomalies.extend(consumer::poll_skip(&facts));
    anomalies.extend(consumer::read_not_in_log(&facts, durable));
    anomalies.extend(consumer::commit_beyond_log(&facts, durable));
    anomalies.extend(producer::nonmonotonic_send(&facts));
    in_time_order(anomalies)
}

/// What the history alone proves when a run was cut short (a step or time limit, a stuck run,
/// a panic) before the final recovery: only properties that more history or the durable state
/// could not undo. A regressing send or poll, a gap in a poll, and one payment acknowledged at
/// two places stay violations whatever comes next; missing or durable-state properties are not
/// judged.
pub fn check_history(history: &[Entry]) -> Vec<Anomaly> {
    let durable = Durable::default();
    let facts = Facts::new(history, &durable);
    let mut anomalies = log::acked_twice(&facts);
    anomalies.extend(consumer::nonmonotonic_poll(&facts));
    anomalies.extend(consumer::poll_skip(&facts));
    anomalies.extend(producer::nonmonotonic_send(&facts));
    in_time_order(anomalies)
}

/// Anomalies ordered by time, then kind, then payment: the order every report shows.
fn in_time_order(mut anomalies: Vec<Anomaly>) -> Vec<Anomaly> {
    anomalies.sort_by(|a, b| (a.at_ms, a.kind, &a.payment).cmp(&(b.at_ms, b.kind, &b.payment)));
    anomalies
}

#[cfg(test)]
mod tests;
