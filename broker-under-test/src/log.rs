//! The partition log: append-only record batches, each framed with length and CRC, recovered by
//! truncating a torn or corrupt tail.
//!
//! Safety: a batch is served (fetched, counted in the log end, fed to producer state) only after
//! it decoded from a frame whose checksum matched and whose base offset continues the log; so a
//! corrupt record is never served, and nothing after it either.

use crate::codec::{
    checksum_fails_at, frame, scan_frames_with, DecodeError, FetchedRecord, Payment, Reader, Tail,
    Writer,
};
use crate::storage::{Storage, StorageError};
use serde::{Deserialize, Serialize};

/// One record batch as it sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBatch {
    pub base_offset: u64,
    pub producer_id: u64,
    pub epoch: u32,
    pub base_seq: u32,
    pub records: Vec<Payment>,
}

impl StoredBatch {
    pub fn count(&self) -> u32 {
        self.records.len() as u32
    }

    /// The sequence of the batch's last record; sequences wrap around (`codec::seq_after`).
    pub fn last_seq(&self) -> u32 {
        self.base_seq.wrapping_add(self.count().saturating_sub(1))
    }

    /// The offset just past the batch.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + self.records.len() as u64
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(self.base_offset);
        w.u64(self.producer_id);
        w.u32(self.epoch);
        w.u32(self.base_seq);
        w.u32(self.records.len() as u32);
        self.records.iter().for_each(|p| w.payment(p));
        w.buf
    }

    pub fn decode(bytes: &[u8]) -> Result<StoredBatch, DecodeError> {
        let mut r = Reader::new(bytes);
        let (base_offset, producer_id, epoch, base_seq) = (r.u64()?, r.u64()?, r.u32()?, r.u32()?);
        let n = r.count(12)?;
        let records = (0..n).map(|_| r.payment()).collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(StoredBatch {
            base_offset,
            producer_id,
            epoch,
            base_seq,
            records,
        })
    }
}

/// The result of reading a log file back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredLog {
    pub batches: Vec<StoredBatch>,
    /// Length of the valid prefix of the file; everything after it must be cut off.
    pub valid_len: usize,
    pub tail: Tail,
}

/// Reads a partition log file: the valid batches in order, and where the valid prefix ends.
/// A frame whose checksum holds but whose body does not decode, or whose base offset does not
/// continue the log, ends the valid prefix as corrupt.
pub fn recover_log(bytes: &[u8]) -> RecoveredLog {
    recover_log_with(bytes, true)
}

/// [`recover_log`], verifying frame checksums only if `verify` (off: the planted
/// `checksum-not-verified`, which trusts any frame whose structure parses).
pub fn recover_log_with(bytes: &[u8], verify: bool) -> RecoveredLog {
    let (bodies, framed_len, mut tail) = scan_frames_with(bytes, verify);
    let mut batches: Vec<StoredBatch> = Vec::with_capacity(bodies.len());
    let mut valid_len = 0;
    let mut next_offset = 0;
    for body in bodies {
        match StoredBatch::decode(body) {
            Ok(batch) if batch.base_offset == next_offset && !batch.records.is_empty() => {
                next_offset = batch.next_offset();
                valid_len += crate::codec::FRAME_HEADER_LEN + body.len();
                batches.push(batch);
            }
            _ => {
                tail = Tail::Corrupt;
                break;
            }
        }
    }
    debug_assert!(valid_len <= framed_len);
    RecoveredLog {
        batches,
        valid_len,
        tail,
    }
}

/// The name of partition `partition`'s log file.
pub fn log_file(partition: u32) -> String {
    format!("partition-{partition}.log")
}

/// One partition's log: the durable file plus the decoded batches, which fetches are served from.
pub struct PartitionLog {
    pub partition: u32,
    file: String,
    // invariant: batches[i].base_offset == batches[i-1].next_offset(), batches[0].base_offset == 0
    batches: Vec<StoredBatch>,
}

/// What recovery found in one partition's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecovery {
    pub truncated_bytes: u64,
    pub tail: Tail,
    /// The cut fell on a whole frame whose checksum failed: damage, not a torn write.
    pub checksum_rejected: bool,
}

impl PartitionLog {
    /// Opens the partition's log, cutting off (durably) a torn or corrupt tail.
    /// With `cut_tail == false` (the planted `torn-tail-kept`) the invalid tail stays in the
    /// file and later appends land after it. With `verify_crc == false` (the planted
    /// `checksum-not-verified`) a damaged frame whose structure parses is served.
    pub async fn open(
        storage: &dyn Storage,
        partition: u32,
        cut_tail: bool,
        verify_crc: bool,
    ) -> Result<(PartitionLog, LogRecovery), StorageError> {
        let file = log_file(partition);
        let bytes = storage.read(&file).await?;
        let recovered = recover_log_with(&bytes, verify_crc);
        let truncated_bytes = (bytes.len() - recovered.valid_len) as u64;
        if truncated_bytes > 0 && cut_tail {
            storage.truncate(&file, recovered.valid_len).await?;
        }
        let log = PartitionLog {
            partition,
            file,
            batches: recovered.batches,
        };
        Ok((
            log,
            LogRecovery {
                truncated_bytes,
                tail: recovered.tail,
                checksum_rejected: checksum_fails_at(&bytes, recovered.valid_len),
            },
        ))
    }

    /// The offset the next record will get.
    pub fn log_end(&self) -> u64 {
        self.batches.last().map_or(0, StoredBatch::next_offset)
    }

    pub fn batches(&self) -> &[StoredBatch] {
        &self.batches
    }

    /// Writes a batch at the log end (not yet synced) and returns its base offset.
    pub async fn append(
        &mut self,
        storage: &dyn Storage,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<Payment>,
    ) -> Result<u64, StorageError> {
        debug_assert!(
            !records.is_empty(),
            "empty batches are refused before they get here"
        );
        let batch = StoredBatch {
            base_offset: self.log_end(),
            producer_id,
            epoch,
            base_seq,
            records,
        };
        storage.append(&self.file, &frame(&batch.encode())).await?;
        let base_offset = batch.base_offset;
        self.batches.push(batch);
        Ok(base_offset)
    }

    /// Cuts the log back to `end` (rounded down to a batch boundary), durably, and returns the
    /// new log end. A replica does this to drop a suffix its leader does not have.
    pub async fn truncate(&mut self, storage: &dyn Storage, end: u64) -> Result<u64, StorageError> {
        let keep = self.batches.partition_point(|b| b.next_offset() <= end);
        let len = self.batches[..keep]
            .iter()
            .map(|b| crate::codec::FRAME_HEADER_LEN + b.encode().len())
            .sum();
        storage.truncate(&self.file, len).await?;
        self.batches.truncate(keep);
        Ok(self.log_end())
    }

    pub async fn sync(&self, storage: &dyn Storage) -> Result<(), StorageError> {
        storage.sync(&self.file).await
    }

    /// Up to `max_records` records from `offset` on, in offset order.
    pub fn read(&self, offset: u64, max_records: usize) -> Vec<FetchedRecord> {
        let start = self.batches.partition_point(|b| b.next_offset() <= offset);
        self.batches[start..]
            .iter()
            .flat_map(|b| {
                b.records
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| (b.base_offset + i as u64, p))
            })
            .filter(|(o, _)| *o >= offset)
            .take(max_records)
            .map(|(offset, payment)| FetchedRecord {
                offset,
                payment: payment.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base_offset: u64, producer_id: u64, base_seq: u32, n: u32) -> StoredBatch {
        StoredBatch {
            base_offset,
            producer_id,
            epoch: 0,
            base_seq,
            records: (0..n)
                .map(|i| Payment::generate(producer_id as u32, base_seq + i, 5))
                .collect(),
        }
    }

    fn file_of(batches: &[StoredBatch]) -> Vec<u8> {
        batches.iter().flat_map(|b| frame(&b.encode())).collect()
    }

    #[test]
    fn a_clean_log_recovers_whole() {
        let batches = vec![batch(0, 1, 0, 3), batch(3, 2, 0, 2)];
        let bytes = file_of(&batches);
        let got = recover_log(&bytes);
        assert_eq!(got.batches, batches);
        assert_eq!(got.valid_len, bytes.len());
        assert_eq!(got.tail, Tail::Clean);
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_batch() {
        let batches = vec![batch(0, 1, 0, 3), batch(3, 1, 3, 2)];
        let mut bytes = file_of(&batches);
        let whole = bytes.len();
        bytes.extend_from_slice(&frame(&batch(5, 1, 5, 4).encode())[..20]);
        let got = recover_log(&bytes);
        assert_eq!(got.batches, batches);
        assert_eq!(got.valid_len, whole);
        assert_eq!(got.tail, Tail::Torn);
    }

    #[test]
    fn a_corrupt_batch_is_never_served_nor_anything_after_it() {
        let batches = vec![batch(0, 1, 0, 3), batch(3, 1, 3, 2), batch(5, 1, 5, 1)];
        let mut bytes = file_of(&batches);
        let first_len = frame(&batches[0].encode()).len();
        bytes[first_len + 12] ^= 0x40; // inside the second batch's body
        let got = recover_log(&bytes);
        assert_eq!(got.batches, batches[..1].to_vec());
        assert_eq!(got.valid_len, first_len);
        assert_eq!(got.tail, Tail::Corrupt);
    }

    #[test]
    fn a_flipped_bit_inside_a_well_formed_batch_is_cut_only_by_the_checksum() {
        let batches = vec![batch(0, 1, 0, 3), batch(3, 1, 3, 2)];
        let mut bytes = file_of(&batches);
        let first_len = frame(&batches[0].encode()).len();
        // The last byte of the second batch: inside its last payment, structure intact.
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let got = recover_log(&bytes);
        assert_eq!((got.batches.len(), got.valid_len), (1, first_len));
        assert!(checksum_fails_at(&bytes, got.valid_len));
        // Without the checksum, the altered batch decodes and would be served.
        let trusting = recover_log_with(&bytes, false);
        assert_eq!(trusting.batches.len(), 2);
        assert_ne!(trusting.batches[1], batches[1]);
    }

    #[test]
    fn a_batch_that_does_not_continue_the_offsets_is_corrupt() {
        // A valid checksum over a batch at the wrong offset: e.g. a stale block from an old file.
        let bytes = file_of(&[batch(0, 1, 0, 3), batch(7, 1, 3, 1)]);
        let got = recover_log(&bytes);
        assert_eq!(got.batches.len(), 1);
        assert_eq!(got.tail, Tail::Corrupt);
    }

    #[test]
    fn reads_start_mid_batch_and_stop_at_the_limit() {
        let log = PartitionLog {
            partition: 0,
            file: log_file(0),
            batches: vec![batch(0, 1, 0, 3), batch(3, 1, 3, 3)],
        };
        let offsets: Vec<u64> = log.read(2, 3).iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![2, 3, 4]);
        assert!(log.read(6, 10).is_empty());
        assert_eq!(log.log_end(), 6);
    }
}
