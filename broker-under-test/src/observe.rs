//! What nodes report about themselves: the events the harness records into its history.
//!
//! Nodes call [`Observer::record`] at the moments that matter to the checker (a payment made
//! durable in the outbox, an acknowledgement with its offset, a dedup hit, an apply, a commit,
//! a recovery). They never read anything back: observing must not change behaviour.

use crate::codec::{ErrorCode, Payment};
use serde::{Deserialize, Serialize};

/// One thing a node did or saw. Offsets are log offsets; sequences are producer sequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    // --- producer ---
    /// The producer started and read its outbox back.
    ProducerStarted {
        boot: u64,
        outboxed: u32,
        batches: u32,
        torn_bytes: u64,
    },
    /// The payment is synced into the producer's outbox: from now on it is owed. A restarted
    /// producer announces its recovered, not yet batched payments again (some may have survived
    /// the crash unsynced and only now be synced).
    Outboxed { payment: Payment },
    /// A batch's partition, sequence and payments are synced into the outbox, before any send.
    BatchPersisted {
        partition: u32,
        base_seq: u32,
        payments: Vec<String>,
    },
    /// InitProducerId answered: the producer's id, new epoch and the broker's last sequences.
    ProducerInitialized {
        producer_id: u64,
        epoch: u32,
        last_seqs: Vec<Option<u32>>,
    },
    /// A produce request left (attempt 0 is the first send, higher ones are retries).
    ProduceSent {
        partition: u32,
        epoch: u32,
        base_seq: u32,
        count: u32,
        attempt: u32,
    },
    /// The broker acknowledged a batch at `base_offset`; payment `i` sits at `base_offset + i`.
    ProduceAcked {
        partition: u32,
        base_seq: u32,
        base_offset: u64,
        payments: Vec<String>,
    },
    /// A produce got no reply or an error and will be retried (or, if fenced, abandoned).
    ProduceFailed {
        partition: u32,
        base_seq: u32,
        error: String,
    },
    /// The broker's InitProducerId told us this batch is already in the log: acknowledged
    /// without an offset.
    BatchRecoveredAsAcked {
        partition: u32,
        base_seq: u32,
        payments: Vec<String>,
    },
    /// This producer incarnation learnt it is a zombie and stopped.
    ProducerFenced { epoch: u32 },

    // --- broker ---
    /// A partition's log was recovered at start: valid length, what was cut off, and how
    /// producer state was rebuilt.
    LogRecovered {
        partition: u32,
        log_end: u64,
        truncated_bytes: u64,
        tail: String,
        snapshot_offset: Option<u64>,
        batches_replayed: u32,
    },
    /// A batch was appended (and, unless a bug says otherwise, synced before the ack).
    BatchAppended {
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        base_offset: u64,
        count: u32,
    },
    /// A retried batch matched a retained one: answered with its original offset, not appended.
    DuplicateBatch {
        partition: u32,
        producer_id: u64,
        base_seq: u32,
        base_offset: u64,
    },
    /// A produce was refused.
    ProduceRejected {
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        error: ErrorCode,
    },
    /// InitProducerId bumped (or, for a retried init, re-answered) a producer's epoch.
    EpochBumped {
        producer_key: String,
        producer_id: u64,
        epoch: u32,
        boot: u64,
    },
    /// The broker wrote a producer-state snapshot covering the log up to `offset`.
    SnapshotWritten { partition: u32, offset: u64 },
    /// A request did not decode and got a `Malformed` error reply.
    MalformedRequest { error: String },

    // --- consumer ---
    /// The consumer (re)started on a partition from its committed offset.
    ConsumerResumed { partition: u32, offset: u64 },
    /// A fetch returned records `offsets` (in order) from the partition.
    Fetched {
        partition: u32,
        from: u64,
        records: Vec<(u64, String)>,
    },
    /// The store acknowledged applying the record at `offset`.
    ApplyAcked {
        partition: u32,
        offset: u64,
        payment: String,
        duplicate: bool,
    },
    /// The broker acknowledged the consumer's commit of `offset` (the next offset to read).
    OffsetCommitted { partition: u32, offset: u64 },

    // --- store ---
    /// The store recovered its applied payments at start.
    StoreRecovered { rows: u32, truncated_bytes: u64 },
    /// The store applied a payment durably (`duplicate == false`) or recognised it as applied.
    StoreApplied {
        payment: String,
        partition: u32,
        offset: u64,
        duplicate: bool,
    },
}

/// Receives a node's events. The harness's implementation stamps them with simulated time and
/// the node name; [`NullObserver`] discards them.
pub trait Observer: Send + Sync {
    fn record(&self, node: &str, event: Event);

    /// A "sometimes" assertion (FoundationDB's code probes, Antithesis's `sometimes`): the node
    /// took a rare path that matters. Probes are counted, not recorded in the history.
    fn probe(&self, _node: &str, _name: &'static str) {}
}

/// Every probe, with the path it marks. A sweep that never hits one has not tested that path.
pub const PROBES: &[(&str, &str)] = &[
    (
        "duplicate-batch-answered",
        "broker: a retried batch matched a retained one and got its original offset",
    ),
    (
        "out-of-order-rejected",
        "broker: a batch with a sequence gap was rejected",
    ),
    (
        "zombie-fenced",
        "broker: a produce of an older epoch (a dead incarnation's) was fenced",
    ),
    (
        "init-producer-id-retried",
        "broker: a retried InitProducerId was answered without a second bump",
    ),
    ("group-commit", "broker: several requests shared one sync"),
    (
        "torn-tail-truncated",
        "broker: recovery cut a torn or corrupt log tail",
    ),
    (
        "snapshot-used",
        "broker: recovery started from a producer-state snapshot",
    ),
    (
        "producer-state-replayed-from-log",
        "broker: recovery replayed batches after the snapshot",
    ),
    (
        "outbox-torn-tail-dropped",
        "producer: recovery cut a torn outbox tail",
    ),
    (
        "batch-resent-after-restart",
        "producer: a persisted batch above the broker's last sequence was resent",
    ),
    (
        "batch-known-in-log-after-restart",
        "producer: InitProducerId showed a persisted batch already in the log",
    ),
    (
        "consumer-resumed-from-commit",
        "consumer: restarted from a committed offset past 0",
    ),
    (
        "store-dedup-hit",
        "store: a re-delivered payment was recognised as applied",
    ),
    ("store-torn-row-dropped", "store: recovery cut a torn row"),
];

/// Discards every event.
pub struct NullObserver;

impl Observer for NullObserver {
    fn record(&self, _: &str, _: Event) {}
}
