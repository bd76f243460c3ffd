//! The broker: partition logs, idempotent producer state, consumer offsets, and the request loop.
//!
//! Safety: a produce is acknowledged only after its batch is synced, so an acknowledged batch
//! survives any crash. Requests are handled one group at a time (group commit): every request
//! that has arrived is handled in order, the touched logs are synced once, and only then do any
//! of the group's replies leave. Memory may run ahead of the disk inside a group, but nothing
//! that depends on it (an ack, a duplicate's offset, InitProducerId's last sequence, a fetched
//! record) is seen outside before the sync; a crash before it wipes memory and replies alike.
//!
//! Liveness: every well-formed request gets a reply while the broker is up; a malformed one gets
//! `Malformed`, never a panic.

use crate::bugs::Bug;
use crate::codec::{
    batch_body_len, frame, single_frame, DecodeError, ErrorCode, FetchedRecord, Reader, Request,
    Response, Writer, FRAME_BODY_LEN_MAX,
};
use crate::log::PartitionLog;
use crate::node::{NodeCtx, NodeError};
use crate::observe::{Event, Probe};
use crate::producer_state::{ProducerRegistry, Rebuild, SeqCheck, SequenceTable, DEDUP_WINDOW};
use crate::storage::{Storage, StorageError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The producer registry, replaced atomically on every InitProducerId.
pub const REGISTRY_FILE: &str = "producers.meta";
/// Committed consumer offsets, replaced atomically on every commit.
pub const OFFSETS_FILE: &str = "offsets.meta";

/// The producer-state snapshot of one partition.
pub fn snapshot_file(partition: u32) -> String {
    format!("partition-{partition}.snapshot")
}

/// The largest number of records one fetch returns.
const FETCH_RECORDS_MAX: u32 = 500;

/// The most payment bytes one fetch returns (at least one record, whatever its size).
const FETCH_BYTES_MAX: u64 = 1 << 20;

/// The most requests handled under one group commit.
const GROUP_COMMIT_MAX: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    pub partitions: u32,
    /// Write a producer-state snapshot after this many appended batches on a partition.
    pub snapshot_every_batches: u32,
    /// With `ack-before-sync`, how often the background flusher syncs the logs.
    pub lazy_flush_interval: Duration,
    /// The sequence every producer's first batch starts at; producers use the same value.
    pub first_seq: u32,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            partitions: 3,
            snapshot_every_batches: 8,
            lazy_flush_interval: Duration::from_millis(50),
            first_seq: 0,
        }
    }
}

struct Broker {
    cfg: BrokerConfig,
    parts: Vec<Partition>,
    registry: ProducerRegistry,
    offsets: BTreeMap<(String, u32), u64>,
}

/// One partition as a broker (or a replica) holds it: the log, its producer state, and what
/// the group commit needs to know about it.
pub(crate) struct Partition {
    pub(crate) log: PartitionLog,
    pub(crate) table: SequenceTable,
    pub(crate) batches_since_snapshot: u32,
    /// Appended to since its last sync.
    pub(crate) dirty: bool,
}

/// How many batches per producer the sequence tables retain (the planted `dedup-window-1`: 1).
pub(crate) fn dedup_window(ctx: &NodeCtx) -> usize {
    if ctx.bug(Bug::DedupWindow1) {
        1
    } else {
        DEDUP_WINDOW
    }
}

/// Runs the broker on this node until the node is killed.
pub async fn run_broker(ctx: NodeCtx, cfg: BrokerConfig) -> Result<(), NodeError> {
    let broker = Arc::new(tokio::sync::Mutex::new(
        Broker::recover(&ctx, cfg.clone()).await?,
    ));
    let _flusher = ctx.bug(Bug::AckBeforeSync).then(|| {
        let (ctx, broker) = (ctx.clone(), broker.clone());
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(cfg.lazy_flush_interval).await;
                let broker = broker.lock().await;
                for part in &broker.parts {
                    if part.log.sync(ctx.storage.as_ref()).await.is_err() {
                        return;
                    }
                }
            }
        })
    });
    while let Some(first) = ctx.transport.next_request().await {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match ctx.transport.try_next_request() {
                Some(incoming) => group.push(incoming),
                None => break,
            }
        }
        if group.len() > 1 {
            ctx.probe(Probe::GroupCommit);
        }
        let mut responses = Vec::with_capacity(group.len());
        {
            let mut broker = broker.lock().await;
            for incoming in &group {
                responses.push(broker.handle(&ctx, &incoming.body).await?);
            }
            broker.commit(&ctx).await?;
        }
        for (incoming, response) in group.iter().zip(responses) {
            ctx.transport.reply(incoming, response.encode());
        }
    }
    Ok(())
}

/// Rebuilds one partition's producer state from its snapshot (the file's bytes) and its
/// recovered log, and deletes (durably, before any new append) a snapshot the rebuild rejected. A rejected
/// snapshot left on disk is a trap: once the log grows back past its offset with other
/// batches, the next recovery passes the "offset <= log end" guard, trusts it, and answers a
/// retry as a duplicate at another payment's offset (Kafka likewise deletes snapshots beyond
/// the log end when it truncates). Returns the table, how it was rebuilt, and whether a
/// snapshot was deleted. `keep_rejected` is the planted `stale-snapshot-kept`.
pub async fn rebuild_producer_state(
    storage: &dyn Storage,
    snapshot: &[u8],
    log: &PartitionLog,
    window: usize,
    first_seq: u32,
    trust_snapshot_beyond_log: bool,
    keep_rejected: bool,
) -> Result<(SequenceTable, Rebuild, bool), StorageError> {
    let (table, rebuild) = SequenceTable::rebuild(
        Some(snapshot),
        log.batches(),
        window,
        first_seq,
        trust_snapshot_beyond_log,
    );
    // The planted `stale-snapshot-kept` leaves the rejected file in place.
    let delete = rebuild.snapshot_rejected && !keep_rejected;
    if delete {
        // An empty snapshot file reads as no snapshot.
        storage.truncate(&snapshot_file(log.partition), 0).await?;
    }
    Ok((table, rebuild, delete))
}

/// A batch that cannot be framed cannot be read back after a crash, so it is refused (the
/// planted `oversized-batch-accepted` takes it).
pub(crate) fn too_large(ctx: &NodeCtx, records: &[crate::codec::Payment]) -> bool {
    batch_body_len(records) > FRAME_BODY_LEN_MAX as u64 && !ctx.bug(Bug::OversizedBatchAccepted)
}

/// Records that the batch `(partition, producer_id, epoch, base_seq)` was refused, and the
/// refusal to answer with (a single broker's or a replica leader's).
pub(crate) fn reject_produce(
    ctx: &NodeCtx,
    (partition, producer_id, epoch, base_seq): (u32, u64, u32, u32),
    error: ErrorCode,
) -> Response {
    ctx.record(Event::ProduceRejected {
        partition,
        producer_id,
        epoch,
        base_seq,
        error: error.clone(),
    });
    Response::Error(error)
}

pub(crate) fn corrupt(file: &str) -> impl FnOnce(DecodeError) -> NodeError + '_ {
    move |error| NodeError::Corrupt {
        file: file.to_string(),
        error,
    }
}

impl Partition {
    /// Recovery of one partition: the log is cut at its last valid batch; producer state is
    /// rebuilt from the snapshot plus the log after it.
    pub(crate) async fn recover(
        ctx: &NodeCtx,
        cfg: &BrokerConfig,
        partition: u32,
    ) -> Result<Partition, NodeError> {
        let storage = ctx.storage.as_ref();
        let window = dedup_window(ctx);
        let cut_tail = !ctx.bug(Bug::TornTailKept);
        let verify_crc = !ctx.bug(Bug::ChecksumNotVerified);
        let (log, recovery) = PartitionLog::open(storage, partition, cut_tail, verify_crc).await?;
        if recovery.truncated_bytes > 0 && cut_tail {
            ctx.probe(Probe::TornTailTruncated);
        }
        if recovery.checksum_rejected {
            ctx.probe(Probe::ChecksumRejectedFrame);
        }
        let snapshot = storage.read(&snapshot_file(partition)).await?;
        let (table, rebuild) = if ctx.bug(Bug::ProducerStateNotRebuilt) {
            (
                SequenceTable::trusting_unknown_producers(window).starting_at(cfg.first_seq),
                Default::default(),
            )
        } else {
            let trust = ctx.bug(Bug::SnapshotAheadOfLog);
            let keep = ctx.bug(Bug::StaleSnapshotKept);
            let first_seq = cfg.first_seq;
            let rebuilt =
                rebuild_producer_state(storage, &snapshot, &log, window, first_seq, trust, keep);
            let (table, rebuild, deleted) = rebuilt.await?;
            if deleted {
                ctx.probe(Probe::StaleSnapshotDeleted);
            }
            (table, rebuild)
        };
        if rebuild.snapshot_offset.is_some() {
            ctx.probe(Probe::SnapshotUsed);
        }
        if rebuild.batches_replayed > 0 {
            ctx.probe(Probe::ProducerStateReplayedFromLog);
        }
        tracing::debug!(
            partition,
            log_end = log.log_end(),
            truncated_bytes = recovery.truncated_bytes,
            snapshot_offset = ?rebuild.snapshot_offset,
            batches_replayed = rebuild.batches_replayed,
            "log recovered"
        );
        ctx.record(Event::LogRecovered {
            partition,
            log_end: log.log_end(),
            truncated_bytes: recovery.truncated_bytes,
            tail: format!("{:?}", recovery.tail).to_lowercase(),
            snapshot_offset: rebuild.snapshot_offset,
            batches_replayed: rebuild.batches_replayed,
        });
        Ok(Partition {
            log,
            table,
            batches_since_snapshot: 0,
            dirty: false,
        })
    }
}

impl Broker {
    /// Recovery: each log is cut at its last valid batch; producer state is rebuilt from the
    /// snapshot plus the log after it; registry and offsets are read as last replaced.
    async fn recover(ctx: &NodeCtx, cfg: BrokerConfig) -> Result<Broker, NodeError> {
        let storage = ctx.storage.as_ref();
        let registry = ProducerRegistry::decode(&storage.read(REGISTRY_FILE).await?)
            .map_err(corrupt(REGISTRY_FILE))?;
        let offsets =
            decode_offsets(&storage.read(OFFSETS_FILE).await?).map_err(corrupt(OFFSETS_FILE))?;
        let mut parts = Vec::new();
        for partition in 0..cfg.partitions {
            parts.push(Partition::recover(ctx, &cfg, partition).await?);
        }
        Ok(Broker {
            cfg,
            parts,
            registry,
            offsets,
        })
    }

    async fn handle(&mut self, ctx: &NodeCtx, body: &[u8]) -> Result<Response, NodeError> {
        let request = match ctx.decode_request(body) {
            Ok(r) => r,
            Err(malformed) => return Ok(malformed),
        };
        Ok(match request {
            Request::InitProducerId { producer_key, boot } => {
                self.init_producer_id(ctx, producer_key, boot).await?
            }
            Request::Produce {
                partition,
                producer_id,
                epoch,
                base_seq,
                records,
            } => {
                self.produce(ctx, partition, producer_id, epoch, base_seq, records)
                    .await?
            }
            Request::Fetch {
                partition,
                offset,
                max_records,
            } => match self.parts.get(partition as usize) {
                None => Response::Error(ErrorCode::UnknownPartition),
                Some(part) => Response::Fetched {
                    records: fetch_within(&part.log, offset, max_records),
                    log_end: part.log.log_end(),
                },
            },
            Request::OffsetCommit {
                group,
                partition,
                offset,
            } => self.offset_commit(ctx, group, partition, offset).await?,
            Request::OffsetFetch { group, partition } => {
                if partition >= self.cfg.partitions {
                    Response::Error(ErrorCode::UnknownPartition)
                } else {
                    Response::OffsetFetched {
                        offset: self.offsets.get(&(group, partition)).copied(),
                    }
                }
            }
            Request::Apply { .. } | Request::ListRows { .. } => {
                Response::Error(ErrorCode::Malformed)
            }
            // A single broker is not part of a replicated deployment.
            Request::Heartbeat { .. }
            | Request::Metadata
            | Request::AlterIsr { .. }
            | Request::ReplicaFetch { .. }
            | Request::LastSeq { .. }
            | Request::Resign { .. } => Response::Error(ErrorCode::Malformed),
        })
    }

    /// Bumps the producer's epoch for a higher boot (synced before the reply), or re-answers a
    /// retried init; the reply carries the last appended sequence per partition.
    async fn init_producer_id(
        &mut self,
        ctx: &NodeCtx,
        producer_key: String,
        boot: u64,
    ) -> Result<Response, NodeError> {
        Ok(match self.registry.init(&producer_key, boot) {
            Err(code) => Response::Error(code),
            Ok(outcome) => {
                if !outcome.changed {
                    ctx.probe(Probe::InitProducerIdRetried);
                }
                if outcome.changed {
                    ctx.storage
                        .replace(REGISTRY_FILE, &self.registry.encode())
                        .await?;
                }
                let p = outcome.producer;
                tracing::debug!(
                    producer_key = %producer_key,
                    producer_id = p.producer_id,
                    epoch = p.epoch,
                    boot,
                    retried = !outcome.changed,
                    "InitProducerId answered"
                );
                ctx.record(Event::EpochBumped {
                    producer_key,
                    producer_id: p.producer_id,
                    epoch: p.epoch,
                    boot,
                });
                let last_seqs = self
                    .parts
                    .iter()
                    .map(|part| part.table.last_seq(p.producer_id))
                    .collect();
                Response::InitProducerId {
                    producer_id: p.producer_id,
                    epoch: p.epoch,
                    last_seqs,
                }
            }
        })
    }

    /// Records the group's committed offset, durably (replaced) before the reply.
    async fn offset_commit(
        &mut self,
        ctx: &NodeCtx,
        group: String,
        partition: u32,
        offset: u64,
    ) -> Result<Response, NodeError> {
        if partition >= self.cfg.partitions {
            return Ok(Response::Error(ErrorCode::UnknownPartition));
        }
        self.offsets.insert((group, partition), offset);
        ctx.storage
            .replace(OFFSETS_FILE, &encode_offsets(&self.offsets))
            .await?;
        Ok(Response::OffsetCommitted)
    }

    async fn produce(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<crate::codec::Payment>,
    ) -> Result<Response, NodeError> {
        let p = partition as usize;
        if p >= self.parts.len() {
            return Ok(Response::Error(ErrorCode::UnknownPartition));
        }
        if records.is_empty() {
            return Ok(Response::Error(ErrorCode::Malformed));
        }
        let count = records.len() as u32;
        let batch = (partition, producer_id, epoch, base_seq);
        let reject = |error| Ok(reject_produce(ctx, batch, error));
        // A batch that cannot be framed cannot be read back after a crash: refuse it before
        // anything is written (the planted `oversized-batch-accepted` does not).
        if too_large(ctx, &records) {
            tracing::debug!(partition, producer_id, base_seq, count, "batch too large");
            return reject(ErrorCode::RecordTooLarge);
        }
        if let Err(code) = self.registry.check_epoch(producer_id, epoch) {
            if code == ErrorCode::ProducerFenced {
                ctx.probe(Probe::ZombieFenced);
                tracing::debug!(
                    partition,
                    producer_id,
                    epoch,
                    "produce of an older epoch fenced"
                );
            }
            return reject(code);
        }
        let part = &mut self.parts[p];
        match part.check(ctx, producer_id, base_seq, count) {
            SeqCheck::OutOfOrder { expected } => {
                ctx.probe(Probe::OutOfOrderRejected);
                tracing::debug!(partition, producer_id, base_seq, expected, "sequence gap");
                reject(ErrorCode::OutOfOrderSequence { expected })
            }
            SeqCheck::Duplicate { base_offset } => {
                Ok(part.duplicate(ctx, partition, producer_id, base_seq, base_offset))
            }
            SeqCheck::Append => {
                let base_offset = part
                    .append(ctx, &self.cfg, producer_id, epoch, base_seq, records)
                    .await?;
                Ok(Response::Produced { base_offset })
            }
        }
    }

    /// Ends a group: syncs every partition appended to, then snapshots the producer state of
    /// those due for one (see [`Partition::commit`]).
    async fn commit(&mut self, ctx: &NodeCtx) -> Result<(), NodeError> {
        for part in &mut self.parts {
            part.commit(ctx, &self.cfg).await?;
        }
        Ok(())
    }
}

impl Partition {
    /// The sequence check of a batch (the planted `no-dedup` appends whatever arrives).
    pub(crate) fn check(
        &self,
        ctx: &NodeCtx,
        producer_id: u64,
        base_seq: u32,
        count: u32,
    ) -> SeqCheck {
        if ctx.bug(Bug::NoDedup) {
            SeqCheck::Append
        } else {
            self.table.check(producer_id, base_seq, count)
        }
    }

    /// Answers a retried batch that matched a retained one, with its original offset.
    pub(crate) fn duplicate(
        &self,
        ctx: &NodeCtx,
        partition: u32,
        producer_id: u64,
        base_seq: u32,
        base_offset: u64,
    ) -> Response {
        ctx.probe(Probe::DuplicateBatchAnswered);
        tracing::debug!(
            partition,
            producer_id,
            base_seq,
            base_offset,
            "duplicate batch answered with its original offset"
        );
        ctx.record(Event::DuplicateBatch {
            partition,
            producer_id,
            base_seq,
            base_offset,
        });
        if ctx.bug(Bug::DuplicateGetsLogEndOffset) {
            return Response::Produced {
                base_offset: self.log.log_end(),
            };
        }
        Response::Produced { base_offset }
    }

    /// Appends a batch that passed the epoch and sequence checks and returns its base offset.
    /// It is synced at the end of the group (`commit`), before the reply leaves.
    pub(crate) async fn append(
        &mut self,
        ctx: &NodeCtx,
        cfg: &BrokerConfig,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<crate::codec::Payment>,
    ) -> Result<u64, NodeError> {
        let partition = self.log.partition;
        let count = records.len() as u32;
        let base_offset = self
            .append_unrecorded(ctx, producer_id, epoch, base_seq, records, true)
            .await?;
        tracing::trace!(
            partition,
            producer_id,
            epoch,
            base_seq,
            base_offset,
            count,
            "batch appended"
        );
        ctx.record(Event::BatchAppended {
            partition,
            producer_id,
            epoch,
            base_seq,
            base_offset,
            count,
        });
        self.snapshot_early(ctx, cfg).await?;
        Ok(base_offset)
    }

    /// Writes a batch at the log end and, if `feed`, records it in the producer state; a
    /// replica's follower appends this way, without the history's `BatchAppended`.
    pub(crate) async fn append_unrecorded(
        &mut self,
        ctx: &NodeCtx,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<crate::codec::Payment>,
        feed: bool,
    ) -> Result<u64, NodeError> {
        let count = records.len() as u32;
        let storage = ctx.storage.as_ref();
        let base_offset = self
            .log
            .append(storage, producer_id, epoch, base_seq, records)
            .await?;
        if feed {
            self.table
                .record(producer_id, epoch, base_seq, count, base_offset);
        }
        self.dirty = true;
        self.batches_since_snapshot += 1;
        Ok(base_offset)
    }

    /// Both planted snapshot bugs snapshot before the group's sync: `snapshot-ahead-of-log`
    /// at every append, `stale-snapshot-kept` when the periodic one falls due.
    pub(crate) async fn snapshot_early(
        &mut self,
        ctx: &NodeCtx,
        cfg: &BrokerConfig,
    ) -> Result<(), NodeError> {
        let due = self.batches_since_snapshot >= cfg.snapshot_every_batches;
        if ctx.bug(Bug::SnapshotAheadOfLog) || (due && ctx.bug(Bug::StaleSnapshotKept)) {
            self.snapshot(ctx).await?;
        }
        Ok(())
    }

    /// Ends a group for this partition: syncs it if appended to, then snapshots the producer
    /// state if one is due, so a snapshot never covers more than the synced log. With the
    /// planted `ack-before-sync` the sync is left to the background flusher, and the group's
    /// replies leave before their batches are durable.
    pub(crate) async fn commit(
        &mut self,
        ctx: &NodeCtx,
        cfg: &BrokerConfig,
    ) -> Result<(), NodeError> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(());
        }
        if !ctx.bug(Bug::AckBeforeSync) {
            let storage = ctx.storage.as_ref();
            let mut synced = self.log.sync(storage).await;
            if synced.is_err() && ctx.bug(Bug::SyncFailureRetried) {
                // The planted fsyncgate: a second sync succeeds without writing what the
                // first one lost, and the group is acknowledged on its word.
                synced = self.log.sync(storage).await;
            }
            synced?;
        }
        if self.batches_since_snapshot >= cfg.snapshot_every_batches {
            self.snapshot(ctx).await?;
        }
        Ok(())
    }

    /// Snapshots the partition's producer state, covering the log as it is now.
    pub(crate) async fn snapshot(&mut self, ctx: &NodeCtx) -> Result<(), NodeError> {
        let partition = self.log.partition;
        let offset = self.log.log_end();
        ctx.storage
            .replace(
                &snapshot_file(partition),
                &self.table.encode_snapshot(offset),
            )
            .await?;
        self.batches_since_snapshot = 0;
        ctx.record(Event::SnapshotWritten { partition, offset });
        Ok(())
    }
}

/// Up to `max_records` records from `offset`, cut (after the first) once their payments pass
/// [`FETCH_BYTES_MAX`], so a fetch of large payments stays one frame's worth, like Kafka's
/// `fetch.max.bytes`. Small payments never reach the cut.
pub(crate) fn fetch_within(
    log: &PartitionLog,
    offset: u64,
    max_records: u32,
) -> Vec<FetchedRecord> {
    let mut records = log.read(offset, max_records.min(FETCH_RECORDS_MAX) as usize);
    let mut bytes = 0;
    let keep = records
        .iter()
        .take_while(|r| {
            let first = bytes == 0;
            bytes += r.payment.encoded_len();
            first || bytes <= FETCH_BYTES_MAX
        })
        .count();
    records.truncate(keep);
    records
}

pub fn encode_offsets(offsets: &BTreeMap<(String, u32), u64>) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(offsets.len() as u32);
    for ((group, partition), offset) in offsets {
        w.str(group);
        w.u32(*partition);
        w.u64(*offset);
    }
    frame(&w.buf)
}

/// Decodes the committed-offsets file; an empty file holds no offsets.
pub fn decode_offsets(bytes: &[u8]) -> Result<BTreeMap<(String, u32), u64>, DecodeError> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut r = Reader::new(single_frame(bytes)?);
    let mut offsets = BTreeMap::new();
    for _ in 0..r.count(14)? {
        offsets.insert((r.str()?, r.u32()?), r.u64()?);
    }
    r.finish()?;
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_file_round_trips() {
        let mut offsets = BTreeMap::new();
        offsets.insert(("payments".to_string(), 0), 17);
        offsets.insert(("payments".to_string(), 2), 4);
        assert_eq!(decode_offsets(&encode_offsets(&offsets)), Ok(offsets));
        assert_eq!(decode_offsets(&[]), Ok(BTreeMap::new()));
        assert!(decode_offsets(&[1, 2, 3]).is_err());
    }

    /// Issue 16, item 3: the broker's own ordering (snapshot only after the log sync) never lets
    /// a snapshot outrun the durable log, so recovery must be robust without it. Here the
    /// ordering is changed by hand: a snapshot covering an unsynced batch is written, the crash
    /// loses the batch, the log grows back past the snapshot's offset with another producer's
    /// batch, and the broker crashes again. Without the deletion the second recovery trusts
    /// the stale snapshot and answers producer 0's retry as a duplicate at producer 1's offset.
    #[cfg(madsim)]
    #[test]
    fn a_rejected_snapshot_is_deleted_so_a_regrown_log_never_trusts_it() {
        use crate::codec::Payment;
        use crate::storage::{DiskLatency, SimDisk, Tear};
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async {
            let disk = SimDisk::new(DiskLatency::default());
            let payments = |producer: u32, from: u32, n: u32| -> Vec<Payment> {
                (from..from + n)
                    .map(|i| Payment::generate(producer, i, 5))
                    .collect()
            };
            let s = disk.handle();
            let (mut log, _) = PartitionLog::open(&s, 0, true, true).await.unwrap();
            let mut table = SequenceTable::new(DEDUP_WINDOW);
            // Producer 0's first batch, synced: offsets 0..2.
            log.append(&s, 0, 0, 0, payments(0, 0, 2)).await.unwrap();
            log.sync(&s).await.unwrap();
            table.record(0, 0, 0, 2, 0);
            // Its second batch (seqs 2..4) at offsets 2..4, snapshotted BEFORE the log sync.
            log.append(&s, 0, 0, 2, payments(0, 2, 2)).await.unwrap();
            table.record(0, 0, 2, 2, 2);
            let snapshot = table.encode_snapshot(log.log_end());
            s.replace(&snapshot_file(0), &snapshot).await.unwrap();
            disk.crash(&mut |_, _| Tear::LOSE_ALL);

            // First recovery: the snapshot (offset 4) lies beyond the log end (2).
            let s = disk.handle();
            let (mut log, _) = PartitionLog::open(&s, 0, true, true).await.unwrap();
            let snapshot = s.read(&snapshot_file(0)).await.unwrap();
            let (_, how, deleted) =
                rebuild_producer_state(&s, &snapshot, &log, DEDUP_WINDOW, 0, false, false)
                    .await
                    .unwrap();
            assert!(how.snapshot_rejected);
            // The log grows back past offset 4 with producer 1's batch: offsets 2..6.
            log.append(&s, 1, 0, 0, payments(1, 0, 4)).await.unwrap();
            log.sync(&s).await.unwrap();
            disk.crash(&mut |_, _| Tear::LOSE_ALL);

            // Second recovery: producer 0 retries its lost batch (seqs 2..4).
            let s = disk.handle();
            let (log, _) = PartitionLog::open(&s, 0, true, true).await.unwrap();
            assert_eq!(log.log_end(), 6);
            let snapshot = s.read(&snapshot_file(0)).await.unwrap();
            let (table, how, _) =
                rebuild_producer_state(&s, &snapshot, &log, DEDUP_WINDOW, 0, false, false)
                    .await
                    .unwrap();
            assert_eq!(
                table.check(0, 2, 2),
                SeqCheck::Append,
                "a retry answered from the stale snapshot, at producer 1's offset 2"
            );
            assert_eq!(table.last_seq(1), Some(3), "producer 1's batch is known");
            assert_eq!(how.snapshot_offset, None);
            assert!(deleted, "the first recovery deleted what it rejected");
        });
    }
}
