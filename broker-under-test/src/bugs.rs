//! The catalogue of planted bugs: known classes of failure, off by default, switched on by name.
//!
//! Each bug exists to prove that the harness catches what it claims to catch. Every one of them
//! passes a fault-free run; only the faults named in its description expose it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One planted bug. The kebab-case name is what users pass to `--bug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// The broker appends every batch, ignoring producer id and sequence numbers: a broker
    /// without idempotence. Seen as duplicates on broker restarts with retrying producers
    /// (IBM/sarama#1965). Exposed by a lost produce acknowledgement and the producer's retry.
    NoDedup,
    /// The broker remembers only the last batch per producer instead of the last five, so a
    /// retry of an older in-flight batch is rejected as out of order and the producer is stuck
    /// (the OUT_OF_ORDER_SEQUENCE_NUMBER dead end of platformatic/kafka#309). Exposed by several
    /// lost acknowledgements in a row.
    DedupWindow1,
    /// The broker acknowledges a produce before the batch is synced, like a log that trusts the
    /// page cache. Exposed by a broker crash that loses unsynced writes after the ack.
    AckBeforeSync,
    /// After a restart the broker starts with empty producer state instead of rebuilding it from
    /// the snapshot and the log, and, as Kafka does for a producer whose state expired, accepts
    /// any sequence from a producer it has no state for (platformatic/kafka#309: a broker that
    /// lost producer state; AutoMQ/automq#437: idempotent duplicates after reassignment).
    /// Exposed by a broker crash followed by a retried batch or a producer restart.
    ProducerStateNotRebuilt,
    /// The consumer commits its offset before the store has applied the records: at-most-once
    /// delivery by accident. Exposed by a consumer crash between the commit and the apply.
    CommitBeforeApply,
    /// The store applies every delivery instead of deduplicating by payment id. Exposed by a
    /// consumer restart that re-delivers records after its committed offset.
    StoreNoDedup,
    /// A producer whose request timed out re-sends the batch's records under a new sequence
    /// number, as a client that re-batches on retry does (librdkafka#4953 discusses the epoch
    /// bump and sequence reset that cause such duplicates). Exposed by a lost acknowledgement:
    /// the original batch is in the log, the retry is a new batch.
    RetryWithNewSequence,
    /// The broker answers a retried duplicate with the current log end instead of the
    /// duplicate's original offset, so the producer records where its payment is not. Exposed
    /// by a lost acknowledgement and a retry.
    DuplicateGetsLogEndOffset,
    /// The broker snapshots producer state at every append, before the batch is synced, and
    /// trusts the snapshot on recovery even when it covers more than the recovered log.
    /// Exposed by a broker crash that loses unsynced appends: a retry of a lost batch is then
    /// answered as a duplicate and acknowledged, though it is in no log.
    SnapshotAheadOfLog,
    /// Log recovery stops at a torn tail but does not cut it off, so later appends land after
    /// the garbage and the next recovery loses them (pmcfadin/cqlite#1390,
    /// marmos91/dittofs#2230, amelielabs/amelie#17). Exposed by a torn broker crash followed by
    /// more appends and another crash.
    TornTailKept,
    /// The consumer commits one past the next offset to read (an off-by-one on Kafka's
    /// "committed offset is the next one to read" rule). Exposed by a consumer restart, which
    /// then skips a record.
    CommitSkipsOne,
    /// The store acknowledges an apply before its row is synced (a non-durable commit at the
    /// sink). Exposed by a store crash after the consumer has committed past the payment.
    StoreAckBeforeSync,
    /// The broker accepts a batch larger than its log's frame limit: it writes it as one frame,
    /// syncs and acknowledges it, and the next recovery takes the oversized frame for garbage
    /// and cuts the log there, losing it and every acknowledged batch after it (Kafka refuses
    /// such a batch up front with RECORD_TOO_LARGE; KAFKA-3995 is the producer side, splitting
    /// the batch). Exposed by large payments and a broker crash.
    OversizedBatchAccepted,
    /// Log recovery does not verify frame checksums: it trusts any frame whose length and
    /// structure parse, so a damaged sector inside a well-formed batch is served as data
    /// (memgraph/memgraph#4219: local WAL crash recovery applied transactions without checking
    /// their CRC32, so a flipped byte inside a payload was replayed as data). Exposed by a
    /// broker crash whose kept tail comes back damaged.
    ChecksumNotVerified,
    /// The broker takes its periodic producer-state snapshot at the append, before the log
    /// sync, and recovery rejects a snapshot beyond the recovered log end but leaves the file.
    /// Once the log grows back past the snapshot's offset with other batches, a later recovery
    /// trusts it: producers it never saw lose their state, and a retry of a lost batch is
    /// answered as a duplicate at another payment's offset. Kafka deletes snapshots beyond the
    /// log end when it truncates (ProducerStateManager.truncateAndReload; apache/kafka#3306,
    /// KAFKA-5435, on keeping that deletion safe; apache/kafka#7599, KAFKA-9105, a regression
    /// that stopped removing snapshots). Exposed by broker crashes that lose unsynced appends.
    StaleSnapshotKept,
    /// The broker retries a failed log sync and, when the retry succeeds, trusts it and
    /// acknowledges the group, as PostgreSQL did until 2018 ("fsyncgate": Craig Ringer's report
    /// on pgsql-hackers, "PostgreSQL's handling of fsync() errors is unsafe and risks data
    /// loss at least on XFS"): Linux had already marked the failed pages clean, so the retry
    /// succeeded without writing them. Exposed by a sync error on the broker and a later crash.
    SyncFailureRetried,
    /// The store's recovery takes a read error for the end of its rows file: it keeps what it
    /// read before the error (nothing) and cuts the "torn" rest, losing acknowledged rows
    /// (Ganesan et al., "Redundancy Does Not Imply Fault Tolerance", FAST 2017: stores that on
    /// a read error or corruption at recovery treated the log as ending there and truncated
    /// it). Exposed by a read error during a store restart.
    ReadErrorAsEof,
    /// Replication: the leader acknowledges a produce once its own log has synced the batch,
    /// without waiting for the in-sync followers (the high watermark): Kafka's `acks=1`, whose
    /// documented price is that "the record will be lost" if the leader fails before the
    /// followers replicate it (the producer `acks` documentation; KAFKA-1211 is the upstream
    /// discussion of acknowledging against the high watermark). Exposed by a leader crash or
    /// isolation before its followers fetched the batch.
    AckBeforeReplication,
    /// Replication: a follower that learns of a new leader truncates its log to its own high
    /// watermark instead of asking the leader where its last epoch ends: the pre-KIP-101
    /// Kafka replication protocol, which lost committed records and let replicas diverge
    /// (KIP-101 "Alter Replication Protocol to use Leader Epoch rather than High Watermark for
    /// Truncation"; KAFKA-6361, log divergence after a fast leader failover). Exposed by
    /// repeated failovers.
    TruncateToHighWatermark,
    /// Replication: the controller elects the next live replica in ring order whether or not it
    /// is in sync, as a controller that ignores the in-sync set would (Kafka does so only with
    /// `unclean.leader.election.enable=true` and no in-sync replica alive; Jepsen's 2013 Kafka
    /// analysis lost acknowledged writes to such elections). Exposed by a lagging or restarted
    /// follower and a leader failure.
    UncleanLeaderElection,
    /// Replication: followers append replicated batches without feeding them to their producer
    /// state, so a new leader does not know the producers' last sequences and, like a broker
    /// whose producer state expired, accepts a retry as new (librdkafka#4953: duplicates
    /// during a leader transition with an idempotent producer; AutoMQ/automq#437: idempotent
    /// duplicates after reassignment). Exposed by a retry that crosses a failover.
    ProducerStateNotReplicated,
    /// Replication: the leader serves consumer fetches up to its log end instead of its high
    /// watermark, so a consumer can read (and the store apply) records that a failover then
    /// truncates (apache/kafka#13230, KAFKA-14704: a former leader exposed uncommitted records
    /// before truncating them; kurrent-io/KurrentDB#3972 likewise). Exposed by a leader failure
    /// with unreplicated records that were read.
    ReadPastHighWatermark,
    /// Replication: a replica whose recovered log ends short of what it had synced (its synced
    /// bytes were damaged) keeps its place in the in-sync set and its leaderships instead of
    /// resigning and repairing from its peers, so it can lead, serve, and make its followers
    /// truncate to, a log that lost committed records (KIP-966, Eligible Leader Replicas: a
    /// replica that lost data in an unclean shutdown could be elected and lose committed
    /// records). Exposed by `rot` faults.
    DamagedReplicaStaysInSync,
}

impl Bug {
    /// Every planted bug, in catalogue order.
    pub const ALL: [Bug; 23] = [
        Bug::NoDedup,
        Bug::DedupWindow1,
        Bug::AckBeforeSync,
        Bug::ProducerStateNotRebuilt,
        Bug::CommitBeforeApply,
        Bug::StoreNoDedup,
        Bug::RetryWithNewSequence,
        Bug::DuplicateGetsLogEndOffset,
        Bug::SnapshotAheadOfLog,
        Bug::TornTailKept,
        Bug::CommitSkipsOne,
        Bug::StoreAckBeforeSync,
        Bug::OversizedBatchAccepted,
        Bug::ChecksumNotVerified,
        Bug::StaleSnapshotKept,
        Bug::SyncFailureRetried,
        Bug::ReadErrorAsEof,
        Bug::AckBeforeReplication,
        Bug::TruncateToHighWatermark,
        Bug::UncleanLeaderElection,
        Bug::ProducerStateNotReplicated,
        Bug::ReadPastHighWatermark,
        Bug::DamagedReplicaStaysInSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::NoDedup => "no-dedup",
            Bug::DedupWindow1 => "dedup-window-1",
            Bug::AckBeforeSync => "ack-before-sync",
            Bug::ProducerStateNotRebuilt => "producer-state-not-rebuilt",
            Bug::CommitBeforeApply => "commit-before-apply",
            Bug::StoreNoDedup => "store-no-dedup",
            Bug::RetryWithNewSequence => "retry-with-new-sequence",
            Bug::DuplicateGetsLogEndOffset => "duplicate-gets-log-end-offset",
            Bug::SnapshotAheadOfLog => "snapshot-ahead-of-log",
            Bug::TornTailKept => "torn-tail-kept",
            Bug::CommitSkipsOne => "commit-skips-one",
            Bug::StoreAckBeforeSync => "store-ack-before-sync",
            Bug::OversizedBatchAccepted => "oversized-batch-accepted",
            Bug::ChecksumNotVerified => "checksum-not-verified",
            Bug::StaleSnapshotKept => "stale-snapshot-kept",
            Bug::SyncFailureRetried => "sync-failure-retried",
            Bug::ReadErrorAsEof => "read-error-as-eof",
            Bug::AckBeforeReplication => "ack-before-replication",
            Bug::TruncateToHighWatermark => "truncate-to-high-watermark",
            Bug::UncleanLeaderElection => "unclean-leader-election",
            Bug::ProducerStateNotReplicated => "producer-state-not-replicated",
            Bug::ReadPastHighWatermark => "read-past-high-watermark",
            Bug::DamagedReplicaStaysInSync => "damaged-replica-stays-in-sync",
        }
    }

    /// One line for `harness list --bugs`: what is wrong and which faults expose it.
    pub fn description(self) -> &'static str {
        match self {
            Bug::NoDedup => "broker appends every batch, ignoring producer sequence numbers; exposed by a lost produce ack",
            Bug::DedupWindow1 => "broker retains 1 batch per producer instead of 5; exposed by several lost acks in flight",
            Bug::AckBeforeSync => "broker acks a produce before syncing it; exposed by a broker crash losing unsynced writes",
            Bug::ProducerStateNotRebuilt => "broker forgets producer state on restart; exposed by a broker crash and a retry or producer restart",
            Bug::CommitBeforeApply => "consumer commits its offset before the store applied; exposed by a consumer crash",
            Bug::StoreNoDedup => "store applies every delivery, not once per payment id; exposed by a consumer restart",
            Bug::RetryWithNewSequence => "producer re-sends a timed-out batch under a new sequence; exposed by a lost ack",
            Bug::DuplicateGetsLogEndOffset => "broker answers a duplicate with the log end, not its offset; exposed by a lost ack",
            Bug::SnapshotAheadOfLog => "broker snapshots producer state before the sync and trusts it; exposed by a broker crash",
            Bug::TornTailKept => "log recovery leaves a torn tail in place; exposed by a torn broker crash and more appends",
            Bug::CommitSkipsOne => "consumer commits one past the next offset; exposed by a consumer restart",
            Bug::StoreAckBeforeSync => "store acks an apply before syncing it; exposed by a store crash",
            Bug::OversizedBatchAccepted => "broker accepts a batch over its frame limit, which recovery then cuts; exposed by large payments and a broker crash",
            Bug::ChecksumNotVerified => "log recovery does not verify frame checksums; exposed by a broker crash with a damaged tail",
            Bug::StaleSnapshotKept => "broker snapshots before the sync and keeps a snapshot recovery rejected; exposed by broker crashes losing unsynced appends",
            Bug::SyncFailureRetried => "broker retries a failed log sync and trusts the retry (fsyncgate); exposed by a sync error and a broker crash",
            Bug::ReadErrorAsEof => "store recovery takes a read error for the end of its rows and cuts the rest; exposed by a read error at a store restart",
            Bug::AckBeforeReplication => "leader acks once its own log synced, not at the high watermark; exposed by a leader failure before followers fetched",
            Bug::TruncateToHighWatermark => "follower truncates to its own high watermark, not its leader's epoch end (pre-KIP-101); exposed by repeated failovers",
            Bug::UncleanLeaderElection => "controller elects the next live replica, in sync or not; exposed by a lagging follower and a leader failure",
            Bug::ProducerStateNotReplicated => "followers do not rebuild producer state from replicated batches; exposed by a retry across a failover",
            Bug::ReadPastHighWatermark => "leader serves consumers past the high watermark; exposed by a failover truncating records already read",
            Bug::DamagedReplicaStaysInSync => "a replica whose synced log was damaged stays in sync instead of resigning and repairing; exposed by rot faults",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a bug name that is not in the catalogue; it lists the names that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBug(pub String);

impl fmt::Display for UnknownBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        write!(f, "unknown bug '{}' (known: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownBug {}

impl FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

// As the name users pass to `--bug`; an unknown name is an error that lists the catalogue.
impl Serialize for Bug {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Bug {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::serde_str::deserialize(deserializer)
    }
}

/// The set of planted bugs switched on for one run. Copy-cheap: nodes consult it on hot paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bugs(u32);

impl Bugs {
    pub const NONE: Bugs = Bugs(0);

    pub fn with(self, bug: Bug) -> Bugs {
        Bugs(self.0 | (1 << bug as u32))
    }

    pub fn has(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u32) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The switched-on bugs in catalogue order.
    pub fn iter(self) -> impl Iterator<Item = Bug> {
        Bug::ALL.into_iter().filter(move |b| self.has(*b))
    }
}

impl FromIterator<Bug> for Bugs {
    fn from_iter<I: IntoIterator<Item = Bug>>(iter: I) -> Self {
        iter.into_iter().fold(Bugs::NONE, Bugs::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_catalogue() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        }
        let err = "no-such-bug".parse::<Bug>().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("no-such-bug"), "{message}");
        assert!(message.contains("store-no-dedup"), "{message}");
    }

    #[test]
    fn bugs_serialize_as_their_names_and_unknown_names_are_clear_errors() {
        for bug in Bug::ALL {
            let json = serde_json::to_string(&bug).unwrap();
            assert_eq!(json, format!("\"{}\"", bug.name()));
            assert_eq!(serde_json::from_str::<Bug>(&json).unwrap(), bug);
        }
        let err = serde_json::from_str::<Bug>("\"no-such-bug\"").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown bug 'no-such-bug'"), "{message}");
        assert!(message.contains("store-no-dedup"), "{message}");
        assert!(serde_json::from_str::<Bug>("3").is_err());
    }

    #[test]
    fn bug_set_holds_exactly_what_was_added() {
        let bugs: Bugs = [Bug::NoDedup, Bug::StoreNoDedup].into_iter().collect();
        assert!(bugs.has(Bug::NoDedup));
        assert!(bugs.has(Bug::StoreNoDedup));
        assert!(!bugs.has(Bug::AckBeforeSync));
        assert_eq!(
            bugs.iter().collect::<Vec<_>>(),
            vec![Bug::NoDedup, Bug::StoreNoDedup]
        );
        assert!(Bugs::NONE.is_empty());
    }
}
