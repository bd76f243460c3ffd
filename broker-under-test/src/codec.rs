//! The wire and disk encoding: payments, protocol requests and replies, and CRC-checked frames.
//!
//! Everything that crosses the network or reaches a disk goes through here, so decoding is total:
//! any byte string decodes to a value or a [`DecodeError`], never a panic, and no length read from
//! the input allocates more than the input could hold.

use crate::store::StoreRow;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A payment id (or customer key): short text kept inline, so that decoding a payment, copying
/// its id into an event and dropping it never touch the heap. It serializes as a plain string.
pub type PaymentId = compact_str::CompactString;

/// A payment as the producer outboxes it. The id is stable across retries and restarts; the
/// content is a pure function of (producer, index), so a re-created payment is byte-identical.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub amount: u64,
    pub customer: PaymentId,
    /// Filler bytes carried after the fields (a memo, an attachment), to give payments a size.
    /// Zero by default, and then neither the encoding nor the history's JSON mentions it, so
    /// workloads without sizes produce the very bytes they always did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub padding: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Payment {
    /// The `n`th payment of producer `producer`, spread over `customers` customer keys.
    pub fn generate(producer: u32, n: u32, customers: u32) -> Payment {
        let mix = (u64::from(n) * 7919 + u64::from(producer) * 104_729) % 100_000;
        Payment {
            id: compact_str::format_compact!("p-{producer}-{n}"),
            amount: 100 + mix,
            customer: compact_str::format_compact!(
                "c-{}",
                (n * 13 + producer * 7) % customers.max(1)
            ),
            padding: 0,
        }
    }

    /// This payment padded so that its encoding is `bytes` long (or as short as it gets).
    pub fn with_encoded_len(mut self, bytes: u64) -> Payment {
        self.padding = 0;
        let bare = self.encoded_len();
        // Padding costs its 4-byte length on top of the filler itself.
        if let Some(filler) = bytes.checked_sub(bare + 4).filter(|&f| f > 0) {
            self.padding = u32::try_from(filler).unwrap_or(u32::MAX);
        }
        self
    }

    /// The length of this payment's encoding, without building it.
    pub fn encoded_len(&self) -> u64 {
        let padding = if self.padding == 0 {
            0
        } else {
            4 + u64::from(self.padding)
        };
        (2 + self.id.len() + 8 + 2 + self.customer.len()) as u64 + padding
    }

    /// The partition this payment belongs to: a stable hash of its customer key, so one
    /// customer's payments stay in order.
    pub fn partition(&self, partitions: u32) -> u32 {
        crc32fast::hash(self.customer.as_bytes()) % partitions.max(1)
    }
}

/// Why a byte string did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the value did.
    Truncated,
    /// A tag byte names no known variant.
    UnknownTag(u8),
    /// A string is not UTF-8.
    BadUtf8,
    /// Bytes were left over after a complete value.
    TrailingBytes(usize),
    /// A frame's checksum does not match its body.
    BadChecksum,
    /// A length field is larger than anything this format ever writes.
    TooLarge(u64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "input ends in the middle of a value"),
            DecodeError::UnknownTag(t) => write!(f, "unknown tag byte {t}"),
            DecodeError::BadUtf8 => write!(f, "string is not UTF-8"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes left over after the value"),
            DecodeError::BadChecksum => write!(f, "frame checksum mismatch"),
            DecodeError::TooLarge(n) => write!(f, "length {n} is larger than any valid value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends little-endian fields to a byte buffer.
pub struct Writer {
    pub buf: Vec<u8>,
}

/// Most messages and records are a few dozen to a few hundred bytes; starting there spares
/// each one the chain of small regrowths an empty vector goes through.
const WRITER_CAPACITY: usize = 256;

impl Default for Writer {
    fn default() -> Self {
        Writer {
            buf: Vec::with_capacity(WRITER_CAPACITY),
        }
    }
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        debug_assert!(
            s.len() <= u16::MAX as usize,
            "strings are short identifiers"
        );
        self.buf.extend_from_slice(&(s.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
        }
    }
    /// Every partition's leadership: a count, then per partition its leader, epoch, in-sync
    /// replicas and their version (the `Leadership` reply and the controller's state file).
    pub fn partition_states(&mut self, states: &[PartitionState]) {
        self.u32(states.len() as u32);
        for p in states {
            self.opt_u32(p.leader);
            self.u32(p.leader_epoch);
            self.u32s(&p.isr);
            self.u32(p.isr_version);
        }
    }
    /// A count, then the values.
    pub fn u32s(&mut self, v: &[u32]) {
        self.u32(v.len() as u32);
        v.iter().for_each(|x| self.u32(*x));
    }
    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
        }
    }
    /// A payment: id, amount, customer, then, only if it has padding, its length and filler.
    /// The padding is flagged by the top bit of the id's length (ids are short), so a payment
    /// without padding encodes exactly as before padding existed.
    pub fn payment(&mut self, p: &Payment) {
        debug_assert!(p.id.len() < usize::from(PADDED_FLAG), "ids are short");
        if p.padding == 0 {
            self.str(&p.id);
        } else {
            self.buf
                .extend_from_slice(&(p.id.len() as u16 | PADDED_FLAG).to_le_bytes());
            self.buf.extend_from_slice(p.id.as_bytes());
        }
        self.u64(p.amount);
        self.str(&p.customer);
        if p.padding != 0 {
            self.u32(p.padding);
            self.buf
                .resize(self.buf.len() + p.padding as usize, PADDING_BYTE);
        }
    }
}

/// Reads little-endian fields from a byte slice; every read checks the remaining length.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub fn str(&mut self) -> Result<String, DecodeError> {
        let bytes = self.take_u16_prefixed()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadUtf8)
    }
    /// What `Writer::str` wrote, as a [`PaymentId`].
    pub fn id(&mut self) -> Result<PaymentId, DecodeError> {
        let bytes = self.take_u16_prefixed()?;
        PaymentId::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)
    }
    fn take_u16_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()? as usize;
        self.take(len)
    }
    /// What `Writer::partition_states` wrote.
    pub fn partition_states(&mut self) -> Result<Vec<PartitionState>, DecodeError> {
        let n = self.count(1 + 4 + 4 + 4)?;
        (0..n)
            .map(|_| {
                Ok(PartitionState {
                    leader: self.opt_u32()?,
                    leader_epoch: self.u32()?,
                    isr: self.u32s()?,
                    isr_version: self.u32()?,
                })
            })
            .collect()
    }
    /// A count, then the values (see `Writer::u32s`).
    pub fn u32s(&mut self) -> Result<Vec<u32>, DecodeError> {
        let n = self.count(4)?;
        (0..n).map(|_| self.u32()).collect()
    }
    pub fn opt_u32(&mut self) -> Result<Option<u32>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u32()?)),
            t => Err(DecodeError::UnknownTag(t)),
        }
    }
    pub fn opt_u64(&mut self) -> Result<Option<u64>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            t => Err(DecodeError::UnknownTag(t)),
        }
    }
    pub fn payment(&mut self) -> Result<Payment, DecodeError> {
        let id_len = self.u16()?;
        let padded = id_len & PADDED_FLAG != 0;
        let id = self.take(usize::from(id_len & !PADDED_FLAG))?;
        let id = PaymentId::from_utf8(id).map_err(|_| DecodeError::BadUtf8)?;
        let (amount, customer) = (self.u64()?, self.id()?);
        let padding = if padded { self.u32()? } else { 0 };
        // Only the canonical form decodes, so that whatever decodes re-encodes to its bytes:
        // a flagged payment has padding, and the filler is nothing but the filler byte.
        if padded && padding == 0 {
            return Err(DecodeError::UnknownTag(0));
        }
        let filler = self.take(padding as usize)?;
        if let Some(&b) = filler.iter().find(|&&b| b != PADDING_BYTE) {
            return Err(DecodeError::UnknownTag(b));
        }
        Ok(Payment {
            id,
            amount,
            customer,
            padding,
        })
    }
    /// Reads a count of items, each at least `min_item_len` bytes, refusing counts the remaining
    /// input cannot hold so that garbage never triggers a huge allocation.
    pub fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_len.max(1)) > self.bytes.len() {
            return Err(DecodeError::TooLarge(n as u64));
        }
        Ok(n)
    }
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// The smallest encoded payment: two empty strings and an amount.
const PAYMENT_LEN_MIN: usize = 2 + 8 + 2;

/// The bit of a payment id's length that says padding follows the customer.
const PADDED_FLAG: u16 = 0x8000;
/// What padding is made of.
const PADDING_BYTE: u8 = b'.';

/// Errors the broker and store answer with. Codes are stable on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request did not decode.
    Malformed,
    /// The partition does not exist.
    UnknownPartition,
    /// The batch's base sequence is not last+1 and it is not a retained duplicate.
    OutOfOrderSequence { expected: u32 },
    /// The producer's epoch (or boot) is older than the broker's: a zombie.
    ProducerFenced,
    /// The producer id or epoch was never issued by this broker.
    UnknownProducer,
    /// The node's storage failed (its incarnation is dying).
    StorageFailure,
    /// The batch (or row) is larger than a frame may be, so it could never be read back:
    /// refused before anything is written (Kafka's RECORD_TOO_LARGE / MESSAGE_TOO_LARGE).
    RecordTooLarge,
    /// Replication: this broker does not lead the partition (or no longer does); ask the
    /// controller's `Metadata` for the leader and retry there.
    NotLeader,
    /// Replication: the request names a leader epoch older than the receiver's; the sender
    /// must learn the new leadership first.
    StaleLeaderEpoch,
    /// Replication: not possible yet (no leader elected, or the leader's high watermark has not
    /// caught up with its log); retry after a backoff.
    NotReady,
}

impl ErrorCode {
    fn encode(&self, w: &mut Writer) {
        match self {
            ErrorCode::Malformed => w.u8(1),
            ErrorCode::UnknownPartition => w.u8(2),
            ErrorCode::OutOfOrderSequence { expected } => {
                w.u8(3);
                w.u32(*expected);
            }
            ErrorCode::ProducerFenced => w.u8(4),
            ErrorCode::UnknownProducer => w.u8(5),
            ErrorCode::StorageFailure => w.u8(6),
            ErrorCode::RecordTooLarge => w.u8(7),
            ErrorCode::NotLeader => w.u8(8),
            ErrorCode::StaleLeaderEpoch => w.u8(9),
            ErrorCode::NotReady => w.u8(10),
        }
    }

    fn decode(r: &mut Reader) -> Result<ErrorCode, DecodeError> {
        Ok(match r.u8()? {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::UnknownPartition,
            3 => ErrorCode::OutOfOrderSequence { expected: r.u32()? },
            4 => ErrorCode::ProducerFenced,
            5 => ErrorCode::UnknownProducer,
            6 => ErrorCode::StorageFailure,
            7 => ErrorCode::RecordTooLarge,
            8 => ErrorCode::NotLeader,
            9 => ErrorCode::StaleLeaderEpoch,
            10 => ErrorCode::NotReady,
            t => return Err(DecodeError::UnknownTag(t)),
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Malformed => write!(f, "malformed request"),
            ErrorCode::UnknownPartition => write!(f, "unknown partition"),
            ErrorCode::OutOfOrderSequence { expected } => {
                write!(f, "out of order sequence (expected {expected})")
            }
            ErrorCode::ProducerFenced => write!(f, "producer fenced"),
            ErrorCode::UnknownProducer => write!(f, "unknown producer"),
            ErrorCode::StorageFailure => write!(f, "storage failure"),
            ErrorCode::RecordTooLarge => write!(f, "record too large"),
            ErrorCode::NotLeader => write!(f, "not the leader"),
            ErrorCode::StaleLeaderEpoch => write!(f, "stale leader epoch"),
            ErrorCode::NotReady => write!(f, "not ready, retry"),
        }
    }
}

/// A request to the broker or the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Register (or re-register after a restart) a producer identity. `boot` increases with every
    /// start of the producer, so the broker can tell a retried init from a stale one.
    InitProducerId {
        producer_key: String,
        boot: u64,
    },
    Produce {
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<Payment>,
    },
    Fetch {
        partition: u32,
        offset: u64,
        max_records: u32,
    },
    OffsetCommit {
        group: String,
        partition: u32,
        offset: u64,
    },
    OffsetFetch {
        group: String,
        partition: u32,
    },
    /// To the store: apply this payment, read from the log at (partition, offset).
    Apply {
        payment: Payment,
        partition: u32,
        offset: u64,
    },
    /// To the store: up to `max_rows` of its applied rows, from the `from`-th, in the order it
    /// applied them (an operator's read, and the harness's final read).
    ListRows {
        from: u32,
        max_rows: u32,
    },
    /// Replication, broker to controller: "broker `broker` is alive". Answered with
    /// `Leadership`, which is how brokers learn what they lead and follow.
    Heartbeat {
        broker: u32,
    },
    /// Replication, client to controller: who leads each partition. Answered with `Leadership`.
    Metadata,
    /// Replication, leader to controller: set the partition's in-sync replicas to `isr`. Applied
    /// (durably, before the reply) only if `leader` still leads at `leader_epoch`; answered with
    /// `Leadership` either way, so a stale leader learns the truth.
    AlterIsr {
        partition: u32,
        leader: u32,
        leader_epoch: u32,
        /// The `isr_version` the change was computed from: a late or duplicated request, made
        /// from a set that has changed since, is refused (Kafka's partition epoch).
        isr_version: u32,
        isr: Vec<u32>,
    },
    /// Replication, follower to leader: batches from `offset` on. `offset` is the follower's
    /// log end, all of it synced; `last_epoch` is the leader epoch of its last batch (`None`
    /// for an empty log), which the leader checks against its own epochs (KIP-320) before it
    /// serves anything or counts `offset` towards the high watermark.
    ReplicaFetch {
        partition: u32,
        replica: u32,
        leader_epoch: u32,
        offset: u64,
        last_epoch: Option<u32>,
    },
    /// Replication, producer to partition leader (second half of InitProducerId): the last
    /// sequence of `producer_id` in the partition's committed log. The leader answers only when
    /// its whole log is committed (else `NotReady`), and fences older epochs from then on.
    LastSeq {
        partition: u32,
        producer_id: u64,
        epoch: u32,
    },
    /// Replication, broker to controller, at startup: "my logs of `partitions` lost synced
    /// data (their recovered end is short of what I had marked synced), so I may lack committed
    /// records there: take me out of those in-sync sets and give those partitions other
    /// leaders". Answered with `Leadership`; the broker then catches up from the leaders as an
    /// out-of-sync follower.
    Resign {
        broker: u32,
        partitions: Vec<u32>,
    },
}

/// One partition's leadership as the controller records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The leading replica's index, or `None` while no eligible replica is alive.
    pub leader: Option<u32>,
    /// Grows by one at every election; batches carry the epoch they were appended under.
    pub leader_epoch: u32,
    /// The in-sync replicas, leader included: every one holds every committed record.
    pub isr: Vec<u32>,
    /// Grows by one at every change of leader or in-sync set.
    pub isr_version: u32,
}

/// A log batch as replicated: the batch and the leader epoch it was appended under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatedBatch {
    pub leader_epoch: u32,
    pub batch: crate::log::StoredBatch,
}

/// A fetched record: its offset in the partition and the payment it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedRecord {
    pub offset: u64,
    pub payment: Payment,
}

/// A reply from the broker or the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `last_seqs[p]` is the last sequence the broker has appended for this producer on
    /// partition `p`, or `None` if it has appended nothing.
    InitProducerId {
        producer_id: u64,
        epoch: u32,
        last_seqs: Vec<Option<u32>>,
    },
    /// The batch is durable at `base_offset`; for a retried duplicate, the original offset.
    Produced {
        base_offset: u64,
    },
    Fetched {
        records: Vec<FetchedRecord>,
        log_end: u64,
    },
    OffsetCommitted,
    OffsetFetched {
        offset: Option<u64>,
    },
    /// The store applied the payment now (`duplicate == false`) or had already applied it.
    Applied {
        duplicate: bool,
    },
    /// Rows of the store from the requested one; `total` is how many it holds in all.
    Rows {
        rows: Vec<StoreRow>,
        total: u32,
    },
    Error(ErrorCode),
    /// Replication: the controller's view of every partition (to `Heartbeat`, `Metadata` and
    /// `AlterIsr`).
    Leadership {
        partitions: Vec<PartitionState>,
    },
    /// Replication: batches for a follower, and the leader's high watermark.
    Replicated {
        high_watermark: u64,
        batches: Vec<ReplicatedBatch>,
    },
    /// Replication: the follower's log diverges from the leader's. The leader's largest epoch
    /// not above the follower's `last_epoch` is `epoch`, and it ends at `end_offset`: truncate
    /// to at most that and fetch again.
    Diverging {
        epoch: u32,
        end_offset: u64,
    },
    /// Replication: the answer to `LastSeq`.
    LastSeq {
        last_seq: Option<u32>,
    },
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Request::InitProducerId { producer_key, boot } => {
                w.u8(1);
                w.str(producer_key);
                w.u64(*boot);
            }
            Request::Produce {
                partition,
                producer_id,
                epoch,
                base_seq,
                records,
            } => {
                w.u8(2);
                w.u32(*partition);
                w.u64(*producer_id);
                w.u32(*epoch);
                w.u32(*base_seq);
                w.u32(records.len() as u32);
                records.iter().for_each(|p| w.payment(p));
            }
            Request::Fetch {
                partition,
                offset,
                max_records,
            } => {
                w.u8(3);
                w.u32(*partition);
                w.u64(*offset);
                w.u32(*max_records);
            }
            Request::OffsetCommit {
                group,
                partition,
                offset,
            } => {
                w.u8(4);
                w.str(group);
                w.u32(*partition);
                w.u64(*offset);
            }
            Request::OffsetFetch { group, partition } => {
                w.u8(5);
                w.str(group);
                w.u32(*partition);
            }
            Request::Apply {
                payment,
                partition,
                offset,
            } => {
                w.u8(6);
                w.payment(payment);
                w.u32(*partition);
                w.u64(*offset);
            }
            Request::ListRows { from, max_rows } => {
                w.u8(7);
                w.u32(*from);
                w.u32(*max_rows);
            }
            other => other.encode_replication(&mut w),
        }
        w.buf
    }

    /// The replication requests' encodings (tags 8 and up).
    fn encode_replication(&self, w: &mut Writer) {
        match self {
            Request::Heartbeat { broker } => {
                w.u8(8);
                w.u32(*broker);
            }
            Request::Metadata => w.u8(9),
            Request::AlterIsr {
                partition,
                leader,
                leader_epoch,
                isr_version,
                isr,
            } => {
                w.u8(10);
                w.u32(*partition);
                w.u32(*leader);
                w.u32(*leader_epoch);
                w.u32(*isr_version);
                w.u32s(isr);
            }
            Request::ReplicaFetch {
                partition,
                replica,
                leader_epoch,
                offset,
                last_epoch,
            } => {
                w.u8(11);
                w.u32(*partition);
                w.u32(*replica);
                w.u32(*leader_epoch);
                w.u64(*offset);
                w.opt_u32(*last_epoch);
            }
            Request::LastSeq {
                partition,
                producer_id,
                epoch,
            } => {
                w.u8(12);
                w.u32(*partition);
                w.u64(*producer_id);
                w.u32(*epoch);
            }
            Request::Resign { broker, partitions } => {
                w.u8(13);
                w.u32(*broker);
                w.u32s(partitions);
            }
            _ => unreachable!("the single-broker requests are encoded by `encode`"),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(bytes);
        let req = match r.u8()? {
            1 => Request::InitProducerId {
                producer_key: r.str()?,
                boot: r.u64()?,
            },
            2 => {
                let (partition, producer_id, epoch, base_seq) =
                    (r.u32()?, r.u64()?, r.u32()?, r.u32()?);
                let n = r.count(PAYMENT_LEN_MIN)?;
                let records = (0..n).map(|_| r.payment()).collect::<Result<_, _>>()?;
                Request::Produce {
                    partition,
                    producer_id,
                    epoch,
                    base_seq,
                    records,
                }
            }
            3 => Request::Fetch {
                partition: r.u32()?,
                offset: r.u64()?,
                max_records: r.u32()?,
            },
            4 => Request::OffsetCommit {
                group: r.str()?,
                partition: r.u32()?,
                offset: r.u64()?,
            },
            5 => Request::OffsetFetch {
                group: r.str()?,
                partition: r.u32()?,
            },
            6 => Request::Apply {
                payment: r.payment()?,
                partition: r.u32()?,
                offset: r.u64()?,
            },
            7 => Request::ListRows {
                from: r.u32()?,
                max_rows: r.u32()?,
            },
            t => Request::decode_replication(t, &mut r)?,
        };
        r.finish()?;
        Ok(req)
    }
}

impl Request {
    /// The replication requests (tags 8 and up), after their tag.
    fn decode_replication(tag: u8, r: &mut Reader) -> Result<Request, DecodeError> {
        Ok(match tag {
            8 => Request::Heartbeat { broker: r.u32()? },
            9 => Request::Metadata,
            10 => Request::AlterIsr {
                partition: r.u32()?,
                leader: r.u32()?,
                leader_epoch: r.u32()?,
                isr_version: r.u32()?,
                isr: r.u32s()?,
            },
            11 => Request::ReplicaFetch {
                partition: r.u32()?,
                replica: r.u32()?,
                leader_epoch: r.u32()?,
                offset: r.u64()?,
                last_epoch: r.opt_u32()?,
            },
            12 => Request::LastSeq {
                partition: r.u32()?,
                producer_id: r.u64()?,
                epoch: r.u32()?,
            },
            13 => Request::Resign {
                broker: r.u32()?,
                partitions: r.u32s()?,
            },
            t => return Err(DecodeError::UnknownTag(t)),
        })
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Response::InitProducerId {
                producer_id,
                epoch,
                last_seqs,
            } => {
                w.u8(1);
                w.u64(*producer_id);
                w.u32(*epoch);
                w.u32(last_seqs.len() as u32);
                last_seqs.iter().for_each(|s| w.opt_u32(*s));
            }
            Response::Produced { base_offset } => {
                w.u8(2);
                w.u64(*base_offset);
            }
            Response::Fetched { records, log_end } => {
                w.u8(3);
                w.u64(*log_end);
                w.u32(records.len() as u32);
                for rec in records {
                    w.u64(rec.offset);
                    w.payment(&rec.payment);
                }
            }
            Response::OffsetCommitted => w.u8(4),
            Response::OffsetFetched { offset } => {
                w.u8(5);
                w.opt_u64(*offset);
            }
            Response::Applied { duplicate } => {
                w.u8(6);
                w.u8(u8::from(*duplicate));
            }
            Response::Error(code) => {
                w.u8(7);
                code.encode(&mut w);
            }
            Response::Rows { rows, total } => {
                w.u8(8);
                w.u32(*total);
                w.u32(rows.len() as u32);
                for row in rows {
                    w.payment(&row.payment);
                    w.u32(row.partition);
                    w.u64(row.offset);
                }
            }
            other => other.encode_replication(&mut w),
        }
        w.buf
    }

    /// The replication replies' encodings (tags 9 and up).
    fn encode_replication(&self, w: &mut Writer) {
        match self {
            Response::Leadership { partitions } => {
                w.u8(9);
                w.partition_states(partitions);
            }
            Response::Replicated {
                high_watermark,
                batches,
            } => {
                w.u8(10);
                w.u64(*high_watermark);
                w.u32(batches.len() as u32);
                for b in batches {
                    w.u32(b.leader_epoch);
                    let body = b.batch.encode();
                    w.u32(body.len() as u32);
                    w.buf.extend_from_slice(&body);
                }
            }
            Response::Diverging { epoch, end_offset } => {
                w.u8(11);
                w.u32(*epoch);
                w.u64(*end_offset);
            }
            Response::LastSeq { last_seq } => {
                w.u8(12);
                w.opt_u32(*last_seq);
            }
            _ => unreachable!("the single-broker replies are encoded by `encode`"),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(bytes);
        let resp = match r.u8()? {
            1 => {
                let (producer_id, epoch) = (r.u64()?, r.u32()?);
                let n = r.count(1)?;
                let last_seqs = (0..n).map(|_| r.opt_u32()).collect::<Result<_, _>>()?;
                Response::InitProducerId {
                    producer_id,
                    epoch,
                    last_seqs,
                }
            }
            2 => Response::Produced {
                base_offset: r.u64()?,
            },
            3 => {
                let log_end = r.u64()?;
                let n = r.count(8 + PAYMENT_LEN_MIN)?;
                let records = (0..n)
                    .map(|_| {
                        Ok(FetchedRecord {
                            offset: r.u64()?,
                            payment: r.payment()?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Response::Fetched { records, log_end }
            }
            4 => Response::OffsetCommitted,
            5 => Response::OffsetFetched {
                offset: r.opt_u64()?,
            },
            6 => match r.u8()? {
                0 => Response::Applied { duplicate: false },
                1 => Response::Applied { duplicate: true },
                t => return Err(DecodeError::UnknownTag(t)),
            },
            7 => Response::Error(ErrorCode::decode(&mut r)?),
            8 => {
                let total = r.u32()?;
                let n = r.count(PAYMENT_LEN_MIN + 4 + 8)?;
                let rows = (0..n)
                    .map(|_| {
                        Ok(StoreRow {
                            payment: r.payment()?,
                            partition: r.u32()?,
                            offset: r.u64()?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Response::Rows { rows, total }
            }
            t => Response::decode_replication(t, &mut r)?,
        };
        r.finish()?;
        Ok(resp)
    }
}

impl Response {
    /// The replication replies (tags 9 and up), after their tag.
    fn decode_replication(tag: u8, r: &mut Reader) -> Result<Response, DecodeError> {
        Ok(match tag {
            9 => Response::Leadership {
                partitions: r.partition_states()?,
            },
            10 => {
                let high_watermark = r.u64()?;
                let n = r.count(4 + 4)?;
                let batches = (0..n)
                    .map(|_| {
                        let leader_epoch = r.u32()?;
                        let len = r.u32()? as usize;
                        let batch = crate::log::StoredBatch::decode(r.take(len)?)?;
                        Ok(ReplicatedBatch {
                            leader_epoch,
                            batch,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Response::Replicated {
                    high_watermark,
                    batches,
                }
            }
            11 => Response::Diverging {
                epoch: r.u32()?,
                end_offset: r.u64()?,
            },
            12 => Response::LastSeq {
                last_seq: r.opt_u32()?,
            },
            t => return Err(DecodeError::UnknownTag(t)),
        })
    }
}

/// Frame header: body length (u32) and CRC-32 of the body (u32).
pub const FRAME_HEADER_LEN: usize = 8;

/// The largest frame body any node writes; a larger length field is garbage.
pub const FRAME_BODY_LEN_MAX: usize = 1 << 20;

/// The encoded length of a log batch of `records` (see `log::StoredBatch::encode`): base
/// offset, producer id, epoch, base sequence, count, then the records. A batch whose length is
/// over [`FRAME_BODY_LEN_MAX`] cannot be framed, so it cannot be stored.
pub fn batch_body_len(records: &[Payment]) -> u64 {
    8 + 8 + 4 + 4 + 4 + records.iter().map(Payment::encoded_len).sum::<u64>()
}

/// Sequence numbers are `u32` and wrap around (like Kafka's, which wrap at `i32::MAX`); they
/// compare as serial numbers (RFC 1982): `a` is after `b` when it is less than half the circle
/// ahead. Every window of sequences in use is tiny next to 2^31, so the order is total there.
pub fn seq_after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Wraps `body` as `[len][crc32(body)][body]`, the unit of every durable file.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The end of a scan over a sequence of frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tail {
    /// Every byte belonged to a complete, valid frame.
    #[default]
    Clean,
    /// The last frame is incomplete: a write torn by a crash.
    Torn,
    /// A complete frame failed its checksum or length check.
    Corrupt,
}

/// Splits `bytes` into the bodies of its valid frames, stopping at the first torn or corrupt one.
/// Returns the bodies, the length of the valid prefix and how the scan ended.
pub fn scan_frames(bytes: &[u8]) -> (Vec<&[u8]>, usize, Tail) {
    scan_frames_with(bytes, true)
}

/// [`scan_frames`], checking each frame's CRC only if `verify`: without it (the planted
/// `checksum-not-verified`) any frame whose length parses is taken, damaged or not.
pub fn scan_frames_with(bytes: &[u8], verify: bool) -> (Vec<&[u8]>, usize, Tail) {
    let mut bodies = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < FRAME_HEADER_LEN {
            return (bodies, pos, Tail::Torn);
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > FRAME_BODY_LEN_MAX {
            return (bodies, pos, Tail::Corrupt);
        }
        if rest.len() < FRAME_HEADER_LEN + len {
            return (bodies, pos, Tail::Torn);
        }
        let body = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
        if verify && crc32fast::hash(body) != crc {
            return (bodies, pos, Tail::Corrupt);
        }
        bodies.push(body);
        pos += FRAME_HEADER_LEN + len;
    }
    (bodies, pos, Tail::Clean)
}

/// Whether the frame at `at` is whole, with a length within the limit, yet fails its CRC:
/// damage that only the checksum could see, unlike a torn tail or a garbage length. Recovery
/// asks this at the point where it cut a file, to tell a checksum rejection from a torn write.
pub fn checksum_fails_at(bytes: &[u8], at: usize) -> bool {
    let Some(rest) = bytes.get(at..).filter(|r| r.len() >= FRAME_HEADER_LEN) else {
        return false;
    };
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    len <= FRAME_BODY_LEN_MAX
        && rest.len() >= FRAME_HEADER_LEN + len
        && crc32fast::hash(&rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len]) != crc
}

/// The body of a file written whole by an atomic replace: exactly one valid frame.
pub fn single_frame(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    match scan_frames(bytes) {
        (bodies, _, Tail::Clean) if bodies.len() == 1 => Ok(bodies[0]),
        (_, _, Tail::Torn) => Err(DecodeError::Truncated),
        _ => Err(DecodeError::BadChecksum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payment() -> impl Strategy<Value = Payment> {
        // Ids past 24 bytes leave `PaymentId`'s inline form for the heap: both must round-trip.
        (
            "[a-z0-9-]{0,40}",
            any::<u64>(),
            "[a-z0-9-]{0,30}",
            prop_oneof![Just(0u32), 1..40u32],
        )
            .prop_map(|(id, amount, customer, padding)| Payment {
                id: id.into(),
                amount,
                customer: customer.into(),
                padding,
            })
    }

    fn error_code() -> impl Strategy<Value = ErrorCode> {
        prop_oneof![
            Just(ErrorCode::Malformed),
            Just(ErrorCode::UnknownPartition),
            any::<u32>().prop_map(|expected| ErrorCode::OutOfOrderSequence { expected }),
            Just(ErrorCode::ProducerFenced),
            Just(ErrorCode::UnknownProducer),
            Just(ErrorCode::StorageFailure),
            Just(ErrorCode::RecordTooLarge),
            Just(ErrorCode::NotLeader),
            Just(ErrorCode::StaleLeaderEpoch),
            Just(ErrorCode::NotReady),
        ]
    }

    fn replicas() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(0..5u32, 0..4)
    }

    fn stored_batch() -> impl Strategy<Value = crate::log::StoredBatch> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(payment(), 0..4),
        )
            .prop_map(|(base_offset, producer_id, epoch, base_seq, records)| {
                crate::log::StoredBatch {
                    base_offset,
                    producer_id,
                    epoch,
                    base_seq,
                    records,
                }
            })
    }

    fn replication_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            any::<u32>().prop_map(|broker| Request::Heartbeat { broker }),
            (any::<u32>(), replicas())
                .prop_map(|(broker, partitions)| Request::Resign { broker, partitions }),
            Just(Request::Metadata),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                replicas()
            )
                .prop_map(|(partition, leader, leader_epoch, isr_version, isr)| {
                    Request::AlterIsr {
                        partition,
                        leader,
                        leader_epoch,
                        isr_version,
                        isr,
                    }
                }),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                any::<Option<u32>>()
            )
                .prop_map(|(partition, replica, leader_epoch, offset, last_epoch)| {
                    Request::ReplicaFetch {
                        partition,
                        replica,
                        leader_epoch,
                        offset,
                        last_epoch,
                    }
                }),
            (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
                |(partition, producer_id, epoch)| Request::LastSeq {
                    partition,
                    producer_id,
                    epoch
                }
            ),
        ]
    }

    fn replication_response() -> impl Strategy<Value = Response> {
        prop_oneof![
            prop::collection::vec(
                (any::<Option<u32>>(), any::<u32>(), replicas(), any::<u32>()),
                0..4
            )
            .prop_map(|states| Response::Leadership {
                partitions: states
                    .into_iter()
                    .map(|(leader, leader_epoch, isr, isr_version)| PartitionState {
                        leader,
                        leader_epoch,
                        isr,
                        isr_version,
                    })
                    .collect()
            }),
            (
                any::<u64>(),
                prop::collection::vec((any::<u32>(), stored_batch()), 0..3)
            )
                .prop_map(|(high_watermark, batches)| Response::Replicated {
                    high_watermark,
                    batches: batches
                        .into_iter()
                        .map(|(leader_epoch, batch)| ReplicatedBatch {
                            leader_epoch,
                            batch
                        })
                        .collect()
                }),
            (any::<u32>(), any::<u64>())
                .prop_map(|(epoch, end_offset)| Response::Diverging { epoch, end_offset }),
            any::<Option<u32>>().prop_map(|last_seq| Response::LastSeq { last_seq }),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            ("[a-z0-9-]{0,12}", any::<u64>())
                .prop_map(|(producer_key, boot)| Request::InitProducerId { producer_key, boot }),
            (
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                prop::collection::vec(payment(), 0..6)
            )
                .prop_map(|(partition, producer_id, epoch, base_seq, records)| {
                    Request::Produce {
                        partition,
                        producer_id,
                        epoch,
                        base_seq,
                        records,
                    }
                }),
            (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
                |(partition, offset, max_records)| Request::Fetch {
                    partition,
                    offset,
                    max_records
                }
            ),
            ("[a-z]{0,8}", any::<u32>(), any::<u64>()).prop_map(|(group, partition, offset)| {
                Request::OffsetCommit {
                    group,
                    partition,
                    offset,
                }
            }),
            ("[a-z]{0,8}", any::<u32>())
                .prop_map(|(group, partition)| Request::OffsetFetch { group, partition }),
            (payment(), any::<u32>(), any::<u64>()).prop_map(|(payment, partition, offset)| {
                Request::Apply {
                    payment,
                    partition,
                    offset,
                }
            }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(from, max_rows)| Request::ListRows { from, max_rows }),
            replication_request(),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            (
                any::<u64>(),
                any::<u32>(),
                prop::collection::vec(any::<Option<u32>>(), 0..5)
            )
                .prop_map(|(producer_id, epoch, last_seqs)| Response::InitProducerId {
                    producer_id,
                    epoch,
                    last_seqs
                }),
            any::<u64>().prop_map(|base_offset| Response::Produced { base_offset }),
            (
                prop::collection::vec((any::<u64>(), payment()), 0..5),
                any::<u64>()
            )
                .prop_map(|(records, log_end)| {
                    Response::Fetched {
                        records: records
                            .into_iter()
                            .map(|(offset, payment)| FetchedRecord { offset, payment })
                            .collect(),
                        log_end,
                    }
                }),
            Just(Response::OffsetCommitted),
            any::<Option<u64>>().prop_map(|offset| Response::OffsetFetched { offset }),
            any::<bool>().prop_map(|duplicate| Response::Applied { duplicate }),
            error_code().prop_map(Response::Error),
            (
                prop::collection::vec((payment(), any::<u32>(), any::<u64>()), 0..4),
                any::<u32>()
            )
                .prop_map(|(rows, total)| Response::Rows {
                    rows: rows
                        .into_iter()
                        .map(|(payment, partition, offset)| StoreRow {
                            payment,
                            partition,
                            offset
                        })
                        .collect(),
                    total,
                }),
            replication_response(),
        ]
    }

    fn config() -> ProptestConfig {
        // A fixed seed, so that what CI runs is what a developer reruns.
        ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_c0de),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn requests_round_trip(req in request()) {
            prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
        }

        #[test]
        fn responses_round_trip(resp in response()) {
            prop_assert_eq!(Response::decode(&resp.encode()), Ok(resp));
        }

        #[test]
        fn arbitrary_bytes_decode_to_a_value_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            // Decoding must be total: reaching the end of this body without a panic is the property;
            // a value that does decode must re-encode to the very same bytes.
            if let Ok(req) = Request::decode(&bytes) {
                prop_assert_eq!(req.encode(), bytes.clone());
            }
            if let Ok(resp) = Response::decode(&bytes) {
                prop_assert_eq!(resp.encode(), bytes.clone());
            }
            let (bodies, valid, _tail) = scan_frames(&bytes);
            prop_assert!(valid <= bytes.len());
            prop_assert!(bodies.iter().map(|b| b.len() + FRAME_HEADER_LEN).sum::<usize>() == valid);
        }

        #[test]
        fn truncated_requests_are_rejected(req in request(), cut in any::<prop::sample::Index>()) {
            let bytes = req.encode();
            let cut = cut.index(bytes.len());
            prop_assert!(Request::decode(&bytes[..cut]).is_err());
        }

        #[test]
        fn a_flipped_bit_in_a_frame_is_never_served(body in prop::collection::vec(any::<u8>(), 1..40), bit in any::<prop::sample::Index>()) {
            let mut framed = frame(&body);
            let bit = bit.index(framed.len() * 8);
            framed[bit / 8] ^= 1 << (bit % 8);
            let (bodies, _, tail) = scan_frames(&framed);
            prop_assert!(bodies.is_empty(), "a damaged frame was accepted");
            prop_assert_ne!(tail, Tail::Clean);
        }
    }

    #[test]
    fn an_id_or_customer_that_is_not_utf8_is_refused_inline_or_long() {
        let encoded = |id: &[u8], customer: &[u8]| {
            let mut bytes = (id.len() as u16).to_le_bytes().to_vec();
            bytes.extend_from_slice(id);
            bytes.extend_from_slice(&7u64.to_le_bytes());
            bytes.extend_from_slice(&(customer.len() as u16).to_le_bytes());
            bytes.extend_from_slice(customer);
            bytes
        };
        // 30 bytes: past `PaymentId`'s 24 inline bytes, where it would go to the heap.
        let mut long_bad = [b'p'; 30];
        long_bad[29] = 0xff;
        for bad in [&[0xc3, 0x28][..], &long_bad[..]] {
            let as_id = encoded(bad, b"c-1");
            assert_eq!(Reader::new(&as_id).payment(), Err(DecodeError::BadUtf8));
            let as_customer = encoded(b"p-0-1", bad);
            assert_eq!(
                Reader::new(&as_customer).payment(),
                Err(DecodeError::BadUtf8)
            );
        }
        let long = [b'p'; 30];
        let payment = Reader::new(&encoded(&long, b"c-1")).payment().unwrap();
        assert_eq!(payment.id.as_bytes(), long, "a long id reads back whole");
    }

    #[test]
    fn a_checksum_failure_is_told_apart_from_a_torn_or_oversized_frame() {
        let mut bytes = frame(b"first");
        let second = bytes.len();
        bytes.extend_from_slice(&frame(b"second body"));
        assert!(!checksum_fails_at(&bytes, second), "a good frame");
        bytes[second + FRAME_HEADER_LEN + 4] ^= 0x20;
        assert!(checksum_fails_at(&bytes, second));
        assert_eq!(scan_frames(&bytes).2, Tail::Corrupt);
        // Unverified, the damaged frame is taken as it is.
        let (bodies, _, tail) = scan_frames_with(&bytes, false);
        assert_eq!((bodies.len(), tail), (2, Tail::Clean));
        assert_eq!(bodies[1], b"secoNd body");
        assert!(
            !checksum_fails_at(&bytes[..bytes.len() - 1], second),
            "torn"
        );
        assert!(!checksum_fails_at(&bytes, bytes.len()), "nothing there");
        let mut huge = bytes.clone();
        huge[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!checksum_fails_at(&huge, second), "a garbage length");
    }

    #[test]
    fn frames_scan_back_and_a_torn_tail_is_reported() {
        let mut bytes = frame(b"first");
        bytes.extend(frame(b"second"));
        let whole = bytes.len();
        bytes.extend(&frame(b"third")[..5]);
        let (bodies, valid, tail) = scan_frames(&bytes);
        assert_eq!(bodies, vec![&b"first"[..], &b"second"[..]]);
        assert_eq!(valid, whole);
        assert_eq!(tail, Tail::Torn);
    }

    #[test]
    fn a_malformed_request_names_its_problem() {
        assert_eq!(Request::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(Request::decode(&[99]), Err(DecodeError::UnknownTag(99)));
        let mut bytes = Request::OffsetFetch {
            group: "g".into(),
            partition: 0,
        }
        .encode();
        bytes.push(0);
        assert_eq!(Request::decode(&bytes), Err(DecodeError::TrailingBytes(1)));
        // A produce that claims four billion records in a ten-byte body must not allocate them.
        let mut huge = vec![2];
        huge.extend_from_slice(&[0; 20]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Request::decode(&huge),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn generated_payments_are_stable_and_partitioned_by_customer() {
        let a = Payment::generate(2, 17, 10);
        assert_eq!(a, Payment::generate(2, 17, 10));
        assert_eq!(a.id, "p-2-17");
        assert!(a.partition(3) < 3);
        let same_customer = Payment {
            id: "other".into(),
            ..a.clone()
        };
        assert_eq!(a.partition(3), same_customer.partition(3));
    }
}
