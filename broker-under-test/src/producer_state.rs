//! Idempotent producer state (KIP-98): who the producers are, and per partition the last few
//! batches of each, so that a retried batch is recognised and answered with its original offset.
//!
//! The broker keeps no per-payment state: deduplication is by producer id, epoch and sequence
//! alone. Two pieces, persisted differently:
//! - the [`ProducerRegistry`] (producer key -> id, epoch, boot) is replaced atomically and synced
//!   on every InitProducerId, before the reply;
//! - the [`SequenceTable`] of one partition is snapshotted now and then and rebuilt after a crash
//!   from the snapshot plus the log after it, never trusting a snapshot beyond the log end.

use crate::codec::{frame, single_frame, DecodeError, ErrorCode, Reader, Writer};
use crate::log::StoredBatch;
use std::collections::{BTreeMap, VecDeque};

/// How many recent batches per producer and partition are retained for duplicate detection.
/// It equals the producer's in-flight limit: any retry is then of one of the last five batches.
pub const DEDUP_WINDOW: usize = 5;

/// A registered producer identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredProducer {
    pub producer_id: u64,
    pub epoch: u32,
    /// The producer's boot counter at its last InitProducerId.
    pub boot: u64,
}

/// The broker's producer registry: producer key (like Kafka's transactional.id) to identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRegistry {
    next_producer_id: u64,
    by_key: BTreeMap<String, RegisteredProducer>,
    // invariant: epoch_by_id[p.producer_id] == p.epoch for every p in by_key
    epoch_by_id: BTreeMap<u64, u32>,
}

/// The outcome of an InitProducerId against the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitOutcome {
    pub producer: RegisteredProducer,
    /// Whether the registry changed and must be persisted before replying.
    pub changed: bool,
}

impl ProducerRegistry {
    /// Registers a producer start. A new key gets a fresh id at epoch 0; a higher boot bumps the
    /// epoch (fencing every request of older incarnations); the same boot is a retried init and
    /// gets the same answer; a lower boot is a stale init from a dead incarnation and is fenced,
    /// so a delayed duplicate of an old InitProducerId cannot fence the live producer.
    pub fn init(&mut self, key: &str, boot: u64) -> Result<InitOutcome, ErrorCode> {
        if let Some(p) = self.by_key.get_mut(key) {
            if boot < p.boot {
                return Err(ErrorCode::ProducerFenced);
            }
            if boot == p.boot {
                return Ok(InitOutcome {
                    producer: p.clone(),
                    changed: false,
                });
            }
            p.epoch += 1;
            p.boot = boot;
            self.epoch_by_id.insert(p.producer_id, p.epoch);
            return Ok(InitOutcome {
                producer: p.clone(),
                changed: true,
            });
        }
        let producer = RegisteredProducer {
            producer_id: self.next_producer_id,
            epoch: 0,
            boot,
        };
        self.next_producer_id += 1;
        self.epoch_by_id.insert(producer.producer_id, 0);
        self.by_key.insert(key.to_string(), producer.clone());
        Ok(InitOutcome {
            producer,
            changed: true,
        })
    }

    /// Checks a produce's epoch: older is a zombie, unknown or newer was never issued here.
    pub fn check_epoch(&self, producer_id: u64, epoch: u32) -> Result<(), ErrorCode> {
        match self.epoch_by_id.get(&producer_id) {
            None => Err(ErrorCode::UnknownProducer),
            Some(&current) if epoch < current => Err(ErrorCode::ProducerFenced),
            Some(&current) if epoch > current => Err(ErrorCode::UnknownProducer),
            Some(_) => Ok(()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(self.next_producer_id);
        w.u32(self.by_key.len() as u32);
        for (key, p) in &self.by_key {
            w.str(key);
            w.u64(p.producer_id);
            w.u32(p.epoch);
            w.u64(p.boot);
        }
        frame(&w.buf)
    }

    /// Decodes a registry file; an empty file is an empty registry.
    pub fn decode(bytes: &[u8]) -> Result<ProducerRegistry, DecodeError> {
        if bytes.is_empty() {
            return Ok(ProducerRegistry::default());
        }
        let body = single_frame(bytes)?;
        let mut r = Reader::new(body);
        let mut registry = ProducerRegistry {
            next_producer_id: r.u64()?,
            ..Default::default()
        };
        for _ in 0..r.count(22)? {
            let key = r.str()?;
            let p = RegisteredProducer {
                producer_id: r.u64()?,
                epoch: r.u32()?,
                boot: r.u64()?,
            };
            registry.epoch_by_id.insert(p.producer_id, p.epoch);
            registry.by_key.insert(key, p);
        }
        r.finish()?;
        Ok(registry)
    }
}

/// One retained batch: its sequence range and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: u32,
    pub last_seq: u32,
    pub base_offset: u64,
}

/// What a partition's producer state says about an arriving batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The batch continues the producer's sequence: append it.
    Append,
    /// The batch is a retry of a retained batch: answer with its original offset.
    Duplicate { base_offset: u64 },
    /// Neither: a gap, or a retry too old to recognise.
    OutOfOrder { expected: u32 },
}

/// Per producer, on one partition: the last epoch seen and the last batches appended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: u32,
    // invariant: len() <= window; consecutive entries have consecutive sequence ranges
    batches: VecDeque<BatchMeta>,
}

/// The idempotent-producer state of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceTable {
    window: usize,
    /// Take a producer with no state on this partition at its word: accept its batch whatever
    /// the sequence, as Kafka does for a producer whose state has expired. Only the planted bug
    /// `producer-state-not-rebuilt` sets it; the correct broker never loses state and requires
    /// a producer's first batch to start at 0.
    trust_unknown_producers: bool,
    /// The sequence every producer's first batch starts at (0 unless a workload starts near
    /// the wrap point; producers are configured with the same value).
    first_seq: u32,
    entries: BTreeMap<u64, ProducerEntry>,
}

impl SequenceTable {
    /// An empty table retaining `window` batches per producer (the planted bug `dedup-window-1`
    /// passes 1).
    pub fn new(window: usize) -> SequenceTable {
        assert!(window >= 1, "a dedup window holds at least the last batch");
        SequenceTable {
            window,
            trust_unknown_producers: false,
            first_seq: 0,
            entries: BTreeMap::new(),
        }
    }

    /// An empty table that accepts any first batch of an unknown producer (see the field).
    pub fn trusting_unknown_producers(window: usize) -> SequenceTable {
        SequenceTable {
            trust_unknown_producers: true,
            ..SequenceTable::new(window)
        }
    }

    /// The same table, taking unknown producers at their word (the planted
    /// `producer-state-not-replicated` on a replica: see the field).
    pub fn trusting(self) -> SequenceTable {
        SequenceTable {
            trust_unknown_producers: true,
            ..self
        }
    }

    /// The highest epoch seen in a batch of `producer_id` on this partition, if any.
    pub fn epoch(&self, producer_id: u64) -> Option<u32> {
        self.entries.get(&producer_id).map(|e| e.epoch)
    }

    /// The same table, expecting every producer's first batch at `first_seq`.
    pub fn starting_at(self, first_seq: u32) -> SequenceTable {
        SequenceTable { first_seq, ..self }
    }

    /// The last sequence appended for `producer_id`, if any.
    pub fn last_seq(&self, producer_id: u64) -> Option<u32> {
        self.entries
            .get(&producer_id)?
            .batches
            .back()
            .map(|b| b.last_seq)
    }

    /// Classifies a batch of `count` records starting at `base_seq`. The epoch was checked
    /// against the registry before; sequences continue across epochs (see the producer's
    /// restart handshake), so the rules here are about sequences alone.
    pub fn check(&self, producer_id: u64, base_seq: u32, count: u32) -> SeqCheck {
        debug_assert!(count >= 1);
        let last_seq = base_seq.wrapping_add(count - 1);
        let Some(entry) = self.entries.get(&producer_id) else {
            return if base_seq == self.first_seq || self.trust_unknown_producers {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder {
                    expected: self.first_seq,
                }
            };
        };
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == base_seq && b.last_seq == last_seq)
        {
            return SeqCheck::Duplicate {
                base_offset: b.base_offset,
            };
        }
        let expected = entry
            .batches
            .back()
            .map_or(self.first_seq, |b| b.last_seq.wrapping_add(1));
        if base_seq == expected {
            SeqCheck::Append
        } else {
            SeqCheck::OutOfOrder { expected }
        }
    }

    /// Records an appended batch.
    pub fn record(
        &mut self,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        count: u32,
        base_offset: u64,
    ) {
        let entry = self.entries.entry(producer_id).or_default();
        entry.epoch = entry.epoch.max(epoch);
        entry.batches.push_back(BatchMeta {
            first_seq: base_seq,
            last_seq: base_seq.wrapping_add(count.saturating_sub(1)),
            base_offset,
        });
        while entry.batches.len() > self.window {
            entry.batches.pop_front();
        }
    }

    /// Snapshot file content: the log offset the table covers, then the table, in one frame.
    pub fn encode_snapshot(&self, log_offset: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(log_offset);
        w.u32(self.entries.len() as u32);
        for (producer_id, entry) in &self.entries {
            w.u64(*producer_id);
            w.u32(entry.epoch);
            w.u32(entry.batches.len() as u32);
            for b in &entry.batches {
                w.u32(b.first_seq);
                w.u32(b.last_seq);
                w.u64(b.base_offset);
            }
        }
        frame(&w.buf)
    }

    /// Decodes a snapshot into (covered log offset, table).
    pub fn decode_snapshot(
        bytes: &[u8],
        window: usize,
    ) -> Result<(u64, SequenceTable), DecodeError> {
        let body = single_frame(bytes)?;
        let mut r = Reader::new(body);
        let log_offset = r.u64()?;
        let mut table = SequenceTable::new(window);
        for _ in 0..r.count(16)? {
            let producer_id = r.u64()?;
            let mut entry = ProducerEntry {
                epoch: r.u32()?,
                batches: VecDeque::new(),
            };
            for _ in 0..r.count(16)? {
                entry.batches.push_back(BatchMeta {
                    first_seq: r.u32()?,
                    last_seq: r.u32()?,
                    base_offset: r.u64()?,
                });
            }
            while entry.batches.len() > window {
                entry.batches.pop_front();
            }
            table.entries.insert(producer_id, entry);
        }
        r.finish()?;
        Ok((log_offset, table))
    }

    /// Rebuilds a partition's table after a crash: from the snapshot if it is usable (it decodes
    /// and covers no more than the recovered log), then every batch of the log after it.
    ///
    /// `trust_snapshot_beyond_log` is the planted `snapshot-ahead-of-log`: it keeps a snapshot
    /// that covers more than the recovered log, so state claims batches the log lost.
    pub fn rebuild(
        snapshot: Option<&[u8]>,
        log: &[StoredBatch],
        window: usize,
        first_seq: u32,
        trust_snapshot_beyond_log: bool,
    ) -> (SequenceTable, Rebuild) {
        let log_end = log.last().map_or(0, StoredBatch::next_offset);
        // None: no snapshot; Some(None): one exists but is unusable; Some(Some(_)): used.
        let decoded = snapshot.filter(|bytes| !bytes.is_empty()).map(|bytes| {
            SequenceTable::decode_snapshot(bytes, window)
                .ok()
                .filter(|(offset, _)| *offset <= log_end || trust_snapshot_beyond_log)
        });
        let snapshot_rejected = matches!(decoded, Some(None));
        let usable = decoded.flatten();
        let snapshot_offset = usable.as_ref().map(|(offset, _)| *offset);
        let (from, table) = usable.unwrap_or((0, SequenceTable::new(window)));
        let mut table = table.starting_at(first_seq);
        let mut replayed = 0;
        for batch in log.iter().filter(|b| b.base_offset >= from) {
            table.record(
                batch.producer_id,
                batch.epoch,
                batch.base_seq,
                batch.count(),
                batch.base_offset,
            );
            replayed += 1;
        }
        (
            table,
            Rebuild {
                snapshot_offset,
                snapshot_rejected,
                batches_replayed: replayed,
            },
        )
    }
}

/// How a partition's producer state was rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuild {
    /// The offset of the snapshot used, if one was.
    pub snapshot_offset: Option<u64>,
    /// A snapshot existed but was unusable (corrupt, or beyond the recovered log end).
    pub snapshot_rejected: bool,
    pub batches_replayed: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Payment;
    use proptest::prelude::*;

    #[test]
    fn the_first_batch_of_a_producer_must_start_at_zero() {
        let table = SequenceTable::new(DEDUP_WINDOW);
        assert_eq!(table.check(7, 0, 3), SeqCheck::Append);
        assert_eq!(table.check(7, 1, 3), SeqCheck::OutOfOrder { expected: 0 });
        // The planted bug's table takes an unknown producer at its word.
        assert_eq!(
            SequenceTable::trusting_unknown_producers(DEDUP_WINDOW).check(7, 40, 3),
            SeqCheck::Append
        );
    }

    #[test]
    fn a_batch_continuing_the_sequence_is_appended_and_a_gap_is_out_of_order() {
        let mut table = SequenceTable::new(DEDUP_WINDOW);
        table.record(1, 0, 0, 3, 0);
        assert_eq!(table.check(1, 3, 2), SeqCheck::Append);
        assert_eq!(table.check(1, 4, 2), SeqCheck::OutOfOrder { expected: 3 });
        assert_eq!(table.last_seq(1), Some(2));
        assert_eq!(table.last_seq(2), None);
    }

    #[test]
    fn a_retry_of_any_of_the_last_five_batches_gets_its_original_offset() {
        let mut table = SequenceTable::new(DEDUP_WINDOW);
        for i in 0..6u32 {
            table.record(1, 0, i * 2, 2, u64::from(i) * 10);
        }
        // Batches 1..=5 are retained, batch 0 has left the window.
        for i in 1..6u32 {
            assert_eq!(
                table.check(1, i * 2, 2),
                SeqCheck::Duplicate {
                    base_offset: u64::from(i) * 10
                }
            );
        }
        assert_eq!(table.check(1, 0, 2), SeqCheck::OutOfOrder { expected: 12 });
        // Same start, different length: not the same batch.
        assert_eq!(table.check(1, 2, 1), SeqCheck::OutOfOrder { expected: 12 });
    }

    #[test]
    fn a_window_of_one_forgets_older_in_flight_batches() {
        let mut table = SequenceTable::new(1);
        table.record(1, 0, 0, 1, 0);
        table.record(1, 0, 1, 1, 1);
        assert_eq!(table.check(1, 1, 1), SeqCheck::Duplicate { base_offset: 1 });
        assert_eq!(table.check(1, 0, 1), SeqCheck::OutOfOrder { expected: 2 });
    }

    #[test]
    fn registry_bumps_the_epoch_per_boot_and_fences_stale_inits() {
        let mut reg = ProducerRegistry::default();
        let first = reg.init("producer-0", 1).unwrap();
        assert_eq!(
            (
                first.producer.producer_id,
                first.producer.epoch,
                first.changed
            ),
            (0, 0, true)
        );
        let other = reg.init("producer-1", 1).unwrap();
        assert_eq!(other.producer.producer_id, 1);
        // A retried init of the same boot is answered the same, without a bump.
        let retry = reg.init("producer-0", 1).unwrap();
        assert_eq!((retry.producer.epoch, retry.changed), (0, false));
        let restarted = reg.init("producer-0", 2).unwrap();
        assert_eq!(
            (restarted.producer.producer_id, restarted.producer.epoch),
            (0, 1)
        );
        // A delayed init of the dead incarnation must not fence the live one.
        assert_eq!(reg.init("producer-0", 1), Err(ErrorCode::ProducerFenced));
        assert_eq!(reg.check_epoch(0, 1), Ok(()));
        assert_eq!(reg.check_epoch(0, 0), Err(ErrorCode::ProducerFenced));
        assert_eq!(reg.check_epoch(0, 2), Err(ErrorCode::UnknownProducer));
        assert_eq!(reg.check_epoch(9, 0), Err(ErrorCode::UnknownProducer));
    }

    #[test]
    fn registry_survives_encoding_and_refuses_a_torn_file() {
        let mut reg = ProducerRegistry::default();
        reg.init("a", 1).unwrap();
        reg.init("b", 3).unwrap();
        reg.init("a", 2).unwrap();
        let bytes = reg.encode();
        assert_eq!(ProducerRegistry::decode(&bytes), Ok(reg));
        assert_eq!(
            ProducerRegistry::decode(&[]),
            Ok(ProducerRegistry::default())
        );
        assert_eq!(
            ProducerRegistry::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
    }

    fn stored(base_offset: u64, producer_id: u64, base_seq: u32, n: u32) -> StoredBatch {
        StoredBatch {
            base_offset,
            producer_id,
            epoch: 0,
            base_seq,
            records: (0..n)
                .map(|i| Payment::generate(0, base_seq + i, 3))
                .collect(),
        }
    }

    #[test]
    fn rebuild_uses_the_snapshot_plus_the_log_after_it() {
        let log = vec![stored(0, 1, 0, 2), stored(2, 1, 2, 2), stored(4, 2, 0, 1)];
        let mut at_two = SequenceTable::new(DEDUP_WINDOW);
        at_two.record(1, 0, 0, 2, 0);
        let snapshot = at_two.encode_snapshot(2);
        let (table, how) = SequenceTable::rebuild(Some(&snapshot), &log, DEDUP_WINDOW, 0, false);
        assert_eq!(
            how,
            Rebuild {
                snapshot_offset: Some(2),
                snapshot_rejected: false,
                batches_replayed: 2
            }
        );
        let (from_scratch, _) = SequenceTable::rebuild(None, &log, DEDUP_WINDOW, 0, false);
        assert_eq!(table, from_scratch);
        assert_eq!(table.check(1, 2, 2), SeqCheck::Duplicate { base_offset: 2 });
    }

    #[test]
    fn a_snapshot_beyond_the_recovered_log_end_is_not_trusted() {
        // The snapshot saw a batch that the crash took from the log: trusting it would make the
        // broker answer "duplicate" for a batch that is not in the log.
        let log = vec![stored(0, 1, 0, 2)];
        let mut ahead = SequenceTable::new(DEDUP_WINDOW);
        ahead.record(1, 0, 0, 2, 0);
        ahead.record(1, 0, 2, 2, 2);
        let snapshot = ahead.encode_snapshot(4);
        let (table, how) = SequenceTable::rebuild(Some(&snapshot), &log, DEDUP_WINDOW, 0, false);
        assert!(how.snapshot_rejected);
        assert_eq!(how.snapshot_offset, None);
        assert_eq!(table.check(1, 2, 2), SeqCheck::Append);
    }

    #[test]
    fn a_corrupt_snapshot_is_rejected_and_the_log_replayed() {
        let log = vec![stored(0, 1, 0, 2)];
        let mut snapshot = SequenceTable::new(DEDUP_WINDOW).encode_snapshot(0);
        let last = snapshot.len() - 1;
        snapshot[last] ^= 1;
        let (table, how) = SequenceTable::rebuild(Some(&snapshot), &log, DEDUP_WINDOW, 0, false);
        assert!(how.snapshot_rejected);
        assert_eq!(how.batches_replayed, 1);
        assert_eq!(table.last_seq(1), Some(1));
    }

    // --- The model: what the rules say, written the simplest way. ---
    //
    // A producer's history is the full list of its appended batches; a batch is a duplicate if
    // it equals one of the last five, appended if it starts right after the last, and out of
    // order otherwise. Epoch bumps and broker restarts (snapshot + log replay) must not change
    // any answer.

    #[derive(Clone, Debug)]
    enum Op {
        /// Producer `p` sends `count` records from `base_seq`, where `base_seq` is chosen
        /// relative to its next sequence (`back` batches-worth back: retries and gaps).
        Produce {
            producer: u64,
            offset_from_next: i8,
            count: u32,
        },
        /// The producer restarts: its epoch is bumped.
        Restart { producer: u64 },
        /// The broker snapshots its state now.
        Snapshot,
        /// The broker crashes and rebuilds from its last snapshot and the log.
        BrokerRestart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3u64, -8i8..3, 1..4u32).prop_map(|(producer, offset_from_next, count)| Op::Produce { producer, offset_from_next, count }),
            1 => (0..3u64).prop_map(|producer| Op::Restart { producer }),
            1 => Just(Op::Snapshot),
            1 => Just(Op::BrokerRestart),
        ]
    }

    #[derive(Default)]
    struct Model {
        appended: BTreeMap<u64, Vec<BatchMeta>>,
    }

    impl Model {
        fn check(&self, producer: u64, base_seq: u32, count: u32) -> SeqCheck {
            let history = self
                .appended
                .get(&producer)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let last = base_seq + count - 1;
            let recent = &history[history.len().saturating_sub(DEDUP_WINDOW)..];
            if let Some(b) = recent
                .iter()
                .find(|b| b.first_seq == base_seq && b.last_seq == last)
            {
                return SeqCheck::Duplicate {
                    base_offset: b.base_offset,
                };
            }
            let expected = history.last().map_or(0, |b| b.last_seq + 1);
            if base_seq == expected {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder { expected }
            }
        }
        fn next_seq(&self, producer: u64) -> u32 {
            self.appended
                .get(&producer)
                .and_then(|h| h.last())
                .map_or(0, |b| b.last_seq + 1)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_5eed),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        // `origin` is where producers' sequences start: 0, or just below the wrap point so
        // that a run of batches crosses it. The model counts from 0; the table sees
        // origin + model sequence, wrapping.
        #[test]
        fn sequence_table_agrees_with_the_model(
            ops in prop::collection::vec(op(), 1..80),
            origin in prop_oneof![Just(0u32), Just(u32::MAX - 20)],
        ) {
            let mut model = Model::default();
            let mut table = SequenceTable::new(DEDUP_WINDOW).starting_at(origin);
            let mut log: Vec<StoredBatch> = Vec::new();
            let mut snapshot: Option<Vec<u8>> = None;
            let mut epochs: BTreeMap<u64, u32> = BTreeMap::new();
            let real = |seq: u32| origin.wrapping_add(seq);
            for op in ops {
                match op {
                    Op::Produce { producer, offset_from_next, count } => {
                        let next = i64::from(model.next_seq(producer));
                        let base_seq = (next + i64::from(offset_from_next)).max(0) as u32;
                        let want = match model.check(producer, base_seq, count) {
                            SeqCheck::OutOfOrder { expected } => SeqCheck::OutOfOrder { expected: real(expected) },
                            other => other,
                        };
                        prop_assert_eq!(table.check(producer, real(base_seq), count), want);
                        if want == SeqCheck::Append {
                            let base_offset = log.last().map_or(0, StoredBatch::next_offset);
                            let epoch = epochs.get(&producer).copied().unwrap_or(0);
                            table.record(producer, epoch, real(base_seq), count, base_offset);
                            let mut batch = stored(base_offset, producer, base_seq, count);
                            batch.base_seq = real(base_seq);
                            batch.epoch = epoch;
                            log.push(batch);
                            model.appended.entry(producer).or_default().push(BatchMeta {
                                first_seq: base_seq, last_seq: base_seq + count - 1, base_offset,
                            });
                        }
                    }
                    Op::Restart { producer } => *epochs.entry(producer).or_default() += 1,
                    Op::Snapshot => {
                        let end = log.last().map_or(0, StoredBatch::next_offset);
                        snapshot = Some(table.encode_snapshot(end));
                    }
                    Op::BrokerRestart => {
                        let (rebuilt, how) = SequenceTable::rebuild(snapshot.as_deref(), &log, DEDUP_WINDOW, origin, false);
                        prop_assert!(!how.snapshot_rejected);
                        prop_assert_eq!(&rebuilt, &table);
                        table = rebuilt;
                    }
                }
            }
        }
    }
}
