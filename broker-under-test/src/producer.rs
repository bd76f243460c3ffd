//! The producer client (a payment service): a durable outbox, batching with persisted sequence
//! numbers, up to five batches in flight per partition, retries until acknowledged.
//!
//! ## The restart handshake, and why it creates no duplicate
//!
//! 1. Before a payment is owed it is synced into the outbox (`Outboxed`).
//! 2. Before a batch is first sent, its partition, base sequence and payments are synced into the
//!    outbox. A batch is never re-formed: every retry, in any incarnation, carries the same
//!    payments under the same sequence numbers.
//! 3. At start the producer syncs a new boot number into its outbox and sends
//!    InitProducerId(key, boot). The broker bumps the epoch for a higher boot, syncs that before
//!    replying, and replies with the new epoch and, per partition, the last sequence it has
//!    appended for this producer.
//! 4. The producer resends, with the new epoch and their original sequences, exactly the
//!    persisted batches above that last sequence, then continues with new batches.
//!
//! Why it is safe: the broker appends a batch only at last+1 and only after checking the epoch
//! against its durable registry, so (a) the appended sequences of a producer form a gap-free
//! prefix, and every persisted batch at or below the returned last sequence is in the log;
//! (b) once the bump is durable no request of an older epoch (a zombie's delayed retry) can
//! append anything. So after the handshake the batches in the log are exactly the prefix up to
//! the returned sequence, and each batch above it is sent only by the new incarnation, where the
//! retained-batch window turns its retries into duplicates answered with the original offset.
//! A stale InitProducerId (lower boot) is itself fenced, so a delayed init of a dead incarnation
//! cannot bump the epoch under the live one.
//!
//! ## In a replicated deployment
//!
//! InitProducerId goes to the controller, whose reply carries no last sequences; each
//! partition's leader answers `LastSeq` instead, only once its whole log is committed, so what
//! it answers cannot be lost in a failover. The resume logic above is the same. Batches go to
//! each partition's leader as the controller last named it ([`Leaders`]); a refusal
//! (`NotLeader`, `StaleLeaderEpoch`, `NotReady`) or a timeout makes the producer ask the
//! controller again and resend the same batch under the same sequence numbers, which is what
//! lets the new leader answer a batch its predecessor appended as a duplicate.

use crate::bugs::Bug;
use crate::client::{leadership_moved, Leaders, ReplicatedAddrs};
use crate::codec::{
    batch_body_len, frame, scan_frames, seq_after, DecodeError, ErrorCode, Payment, PaymentId,
    Reader, Request, Response, Tail, Writer, FRAME_BODY_LEN_MAX,
};
use crate::node::{CallFailure, NodeCtx, NodeError, RetryPolicy};
use crate::observe::{Event, Probe};
use crate::transport::CallError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The producer's durable outbox file.
pub const OUTBOX_FILE: &str = "outbox";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// This producer's number: its payments are `p-<index>-<n>`, its identity `producer-<index>`.
    pub index: u32,
    /// How many payments it makes in all.
    pub payments: u32,
    /// How many distinct customer keys the payments spread over.
    pub customers: u32,
    /// Simulated time between two new payments.
    pub payment_interval: Duration,
    pub partitions: u32,
    pub broker: SocketAddr,
    pub max_batch_records: u32,
    /// Batches in flight per partition; must not exceed the broker's dedup window (5).
    pub max_in_flight: u32,
    /// How long a partition waits for more payments before sending a partial batch.
    pub linger: Duration,
    pub retry: RetryPolicy,
    /// Seeds the retry jitter, together with the boot number.
    pub seed: u64,
    /// The sequence the producer's first batch on each partition starts at; the broker is
    /// configured with the same value.
    pub first_seq: u32,
    /// How large payments are; `None`: as `Payment::generate` makes them (about 26 bytes).
    pub payment_sizes: Option<PaymentSizes>,
    /// `Some` in a replicated deployment: the controller and replicas replace `broker`.
    pub replicated: Option<ReplicatedAddrs>,
}

/// The encoded sizes of a workload's payments: a range, spread uniformly or over its binary
/// orders of magnitude. A payment's size is a pure function of (seed, producer, index), drawn
/// from no generator stream, so a restarted producer re-creates byte-identical payments and
/// workloads without sizes draw nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentSizes {
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// Uniform over orders of magnitude rather than over bytes: most payments small, a few
    /// near the top of the range.
    pub log_uniform: bool,
}

impl PaymentSizes {
    /// The encoded size of payment `n` of `producer`.
    pub fn bytes(&self, seed: u64, producer: u32, n: u32) -> u64 {
        let (lo, hi) = (
            self.min_bytes.min(self.max_bytes),
            self.max_bytes.max(self.min_bytes),
        );
        let h = splitmix64(seed ^ (u64::from(producer) << 32 | u64::from(n)));
        if !self.log_uniform {
            return lo + h % (hi - lo + 1);
        }
        // An order of magnitude [2^e, 2^(e+1)) uniformly among those the range touches, then a
        // size uniformly within it (clipped to the range). Integers only: no float rounding
        // that could differ between machines.
        let (e_lo, e_hi) = (lo.max(1).ilog2(), hi.max(1).ilog2());
        let e = e_lo + (h % u64::from(e_hi - e_lo + 1)) as u32;
        let (from, to) = ((1u64 << e).max(lo), ((1u64 << e) * 2 - 1).min(hi));
        from + splitmix64(h) % (to - from + 1)
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ProducerConfig {
    pub fn key(&self) -> String {
        format!("producer-{}", self.index)
    }
}

/// A batch as persisted in the outbox: partition, first sequence, and the payments (by index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedBatch {
    pub partition: u32,
    pub base_seq: u32,
    pub payments: Vec<u32>,
}

impl PersistedBatch {
    /// The sequence of the batch's last payment; sequences wrap around.
    pub fn last_seq(&self) -> u32 {
        self.base_seq
            .wrapping_add(self.payments.len() as u32)
            .wrapping_sub(1)
    }
}

/// The outbox as read back at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// The highest boot number recorded (0: never started).
    pub boot: u64,
    /// Outboxed payments; payment `n` is at index `n`. A refused payment holds its place
    /// with its id alone.
    pub payments: Vec<Payment>,
    /// Payments refused as too large to send: never owed, never batched.
    pub refused: std::collections::BTreeSet<u32>,
    pub batches: Vec<PersistedBatch>,
    /// Length of the valid prefix of the file.
    pub valid_len: usize,
    pub tail: Tail,
}

const ENTRY_BOOT: u8 = 1;
const ENTRY_PAYMENT: u8 = 2;
const ENTRY_BATCH: u8 = 3;
/// Payment `n` is refused: too large for any batch.
const ENTRY_REFUSED: u8 = 4;
/// The batch at (partition, base sequence) is replaced by consecutive parts of these sizes.
const ENTRY_SPLIT: u8 = 5;

fn encode_refused(n: u32, id: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(ENTRY_REFUSED);
    w.u32(n);
    w.str(id);
    frame(&w.buf)
}

fn encode_split(partition: u32, base_seq: u32, parts: &[u32]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(ENTRY_SPLIT);
    w.u32(partition);
    w.u32(base_seq);
    w.u32(parts.len() as u32);
    parts.iter().for_each(|n| w.u32(*n));
    frame(&w.buf)
}

fn encode_boot(boot: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(ENTRY_BOOT);
    w.u64(boot);
    frame(&w.buf)
}

fn encode_payment(n: u32, payment: &Payment) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(ENTRY_PAYMENT);
    w.u32(n);
    w.payment(payment);
    frame(&w.buf)
}

fn encode_batch(batch: &PersistedBatch) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(ENTRY_BATCH);
    w.u32(batch.partition);
    w.u32(batch.base_seq);
    w.u32(batch.payments.len() as u32);
    batch.payments.iter().for_each(|n| w.u32(*n));
    frame(&w.buf)
}

/// Reads an outbox file back. Entries that do not fit (a payment out of order, a batch naming a
/// payment not yet outboxed) end the valid prefix as corrupt, like a bad checksum.
pub fn recover_outbox(bytes: &[u8]) -> Outbox {
    let (bodies, _, mut tail) = scan_frames(bytes);
    let mut outbox = Outbox {
        tail,
        ..Outbox::default()
    };
    let mut valid_len = 0;
    for body in bodies {
        if apply_entry(&mut outbox, body).is_err() {
            tail = Tail::Corrupt;
            break;
        }
        valid_len += crate::codec::FRAME_HEADER_LEN + body.len();
    }
    outbox.valid_len = valid_len;
    outbox.tail = tail;
    outbox
}

fn apply_entry(outbox: &mut Outbox, body: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(body);
    match r.u8()? {
        ENTRY_BOOT => outbox.boot = outbox.boot.max(r.u64()?),
        ENTRY_PAYMENT | ENTRY_REFUSED => {
            let refused = body[0] == ENTRY_REFUSED;
            let n = r.u32()?;
            let payment = if refused {
                placeholder(r.id()?)
            } else {
                r.payment()?
            };
            if n as usize != outbox.payments.len() {
                return Err(DecodeError::TooLarge(u64::from(n)));
            }
            if refused {
                outbox.refused.insert(n);
            }
            outbox.payments.push(payment);
        }
        ENTRY_SPLIT => {
            let (partition, base_seq) = (r.u32()?, r.u32()?);
            let n = r.count(4)?;
            let parts = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            split_batch(outbox, partition, base_seq, &parts)?;
        }
        ENTRY_BATCH => {
            let (partition, base_seq) = (r.u32()?, r.u32()?);
            let n = r.count(4)?;
            let payments = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            if payments.is_empty()
                || payments
                    .iter()
                    .any(|&i| i as usize >= outbox.payments.len())
            {
                return Err(DecodeError::TooLarge(n as u64));
            }
            outbox.batches.push(PersistedBatch {
                partition,
                base_seq,
                payments,
            });
        }
        t => return Err(DecodeError::UnknownTag(t)),
    }
    r.finish()
}

/// What stands for a refused payment in the outbox: its id, nothing to send.
fn placeholder(id: PaymentId) -> Payment {
    Payment {
        id,
        amount: 0,
        customer: PaymentId::default(),
        padding: 0,
    }
}

/// Replaces the persisted batch at (partition, base_seq) by consecutive parts of the given
/// sizes, with consecutive sequences. Parts that do not add up to the batch are corrupt.
fn split_batch(
    outbox: &mut Outbox,
    partition: u32,
    base_seq: u32,
    parts: &[u32],
) -> Result<(), DecodeError> {
    let bad = DecodeError::TooLarge(parts.len() as u64);
    let at = outbox
        .batches
        .iter()
        .rposition(|b| b.partition == partition && b.base_seq == base_seq)
        .ok_or(bad.clone())?;
    let whole = outbox.batches[at].payments.clone();
    let total: u64 = parts.iter().map(|&n| u64::from(n)).sum();
    if parts.len() < 2 || parts.contains(&0) || total != whole.len() as u64 {
        return Err(bad);
    }
    let (mut seq, mut from) = (base_seq, 0);
    let pieces = parts.iter().map(|&n| {
        let piece = PersistedBatch {
            partition,
            base_seq: seq,
            payments: whole[from..from + n as usize].to_vec(),
        };
        (seq, from) = (seq.wrapping_add(n), from + n as usize);
        piece
    });
    let pieces: Vec<PersistedBatch> = pieces.collect();
    outbox.batches.splice(at..=at, pieces);
    Ok(())
}

/// A batch ready to send: where it goes and what it carries.
struct SendBatch {
    partition: u32,
    base_seq: u32,
    payments: Vec<u32>,
}

/// A partition's send window, by batch position. Batch `k` (the k-th batch this incarnation
/// sends on the partition) may leave only while `k < oldest_unacked + max_in_flight`.
///
/// Counting unacknowledged batches is not enough: if batch 8's ack is lost while 9..12 are
/// acknowledged, a count-based limit sends 13, 14, ... and the broker's five-batch window moves
/// past 8, so 8's retry is no longer recognised as a duplicate and the producer is stuck on
/// `OutOfOrderSequence` for ever. Kafka gets this from TCP's ordered replies; over datagrams
/// the producer has to keep the window itself.
#[derive(Default)]
struct Window {
    next: u64,
    // invariant: oldest_unacked <= next, and every index in acked_ahead is in oldest_unacked..next
    oldest_unacked: u64,
    acked_ahead: std::collections::BTreeSet<u64>,
}

impl Window {
    fn open(&self, max_in_flight: u32) -> bool {
        self.next < self.oldest_unacked + u64::from(max_in_flight)
    }

    fn ack(&mut self, index: u64) {
        self.acked_ahead.insert(index);
        while self.acked_ahead.remove(&self.oldest_unacked) {
            self.oldest_unacked += 1;
        }
    }
}

struct Inner {
    payments: Vec<Payment>,
    /// Outboxed payments not yet in a batch, per partition.
    pending: Vec<VecDeque<u32>>,
    /// Persisted batches to resend after a restart, per partition, in sequence order.
    resend: Vec<VecDeque<SendBatch>>,
    next_seq: Vec<u32>,
    windows: Vec<Window>,
    rng: ChaCha8Rng,
}

struct Shared {
    ctx: NodeCtx,
    cfg: ProducerConfig,
    /// The partitions' leaders, in a replicated deployment.
    leaders: Option<Leaders>,
    producer_id: u64,
    epoch: u32,
    inner: Mutex<Inner>,
    /// Woken when a partition gets pending payments or its window moves.
    wake: Vec<Notify>,
    fenced: AtomicBool,
    fenced_notify: Notify,
}

impl Shared {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    fn ids(&self, payments: &[u32]) -> Vec<PaymentId> {
        let inner = self.inner();
        payments
            .iter()
            .map(|&n| inner.payments[n as usize].id.clone())
            .collect()
    }
}

/// Runs the producer until it has sent every payment and is fenced or killed.
pub async fn run_producer(ctx: NodeCtx, cfg: ProducerConfig) -> Result<(), NodeError> {
    assert!(cfg.max_in_flight >= 1 && cfg.max_batch_records >= 1 && cfg.partitions >= 1);
    let (outbox, boot) = recover(&ctx).await?;
    let leaders = cfg
        .replicated
        .clone()
        .map(|addrs| Leaders::new(addrs, cfg.retry));
    let init = init_producer_id(&ctx, &cfg, leaders.as_ref(), boot).await;
    let Some((producer_id, epoch, last_seqs)) = init else {
        return Ok(());
    };
    let inner = resume(&ctx, &cfg, &outbox, &last_seqs, boot);
    let partitions = cfg.partitions as usize;
    let shared = Arc::new(Shared {
        ctx,
        leaders,
        producer_id,
        epoch,
        inner: Mutex::new(inner),
        wake: (0..partitions).map(|_| Notify::new()).collect(),
        fenced: AtomicBool::new(false),
        fenced_notify: Notify::new(),
        cfg,
    });
    for partition in 0..partitions as u32 {
        madsim::task::spawn(partition_sender(shared.clone(), partition));
    }
    generate_payments(&shared).await?;
    // Everything is outboxed; the senders finish the job. Stay until fenced (or killed).
    while !shared.is_fenced() {
        shared.fenced_notify.notified().await;
    }
    Ok(())
}

/// Reads the outbox back, cuts a torn tail, and syncs the next boot number into it: the boot
/// InitProducerId will carry. Returns the outbox as read and that boot.
async fn recover(ctx: &NodeCtx) -> Result<(Outbox, u64), NodeError> {
    let storage = ctx.storage.clone();
    let bytes = storage.read(OUTBOX_FILE).await?;
    let outbox = recover_outbox(&bytes);
    let torn_bytes = (bytes.len() - outbox.valid_len) as u64;
    if torn_bytes > 0 {
        storage.truncate(OUTBOX_FILE, outbox.valid_len).await?;
        ctx.probe(Probe::OutboxTornTailDropped);
        if crate::codec::checksum_fails_at(&bytes, outbox.valid_len) {
            ctx.probe(Probe::ChecksumRejectedFrame);
        }
    }
    let boot = outbox.boot + 1;
    storage.append(OUTBOX_FILE, &encode_boot(boot)).await?;
    storage.sync(OUTBOX_FILE).await?;
    tracing::debug!(
        boot,
        outboxed = outbox.payments.len(),
        batches = outbox.batches.len(),
        torn_bytes,
        "outbox recovered"
    );
    ctx.record(Event::ProducerStarted {
        boot,
        outboxed: outbox.payments.len() as u32,
        batches: outbox.batches.len() as u32,
        torn_bytes,
    });
    Ok((outbox, boot))
}

/// The restart handshake's second half: from the outbox and the broker's last sequences, which
/// persisted batches are already in the log, which to resend, and which payments still wait
/// for a batch.
fn resume(
    ctx: &NodeCtx,
    cfg: &ProducerConfig,
    outbox: &Outbox,
    last_seqs: &[Option<u32>],
    boot: u64,
) -> Inner {
    let partitions = cfg.partitions as usize;
    let mut inner = Inner {
        payments: outbox.payments.clone(),
        pending: vec![VecDeque::new(); partitions],
        resend: (0..partitions).map(|_| VecDeque::new()).collect(),
        next_seq: vec![cfg.first_seq; partitions],
        windows: (0..partitions).map(|_| Window::default()).collect(),
        rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ boot.rotate_left(32) ^ u64::from(cfg.index)),
    };
    let mut batched = vec![false; outbox.payments.len()];
    for batch in &outbox.batches {
        let p = batch.partition as usize;
        if p >= partitions {
            continue;
        }
        batch
            .payments
            .iter()
            .for_each(|&n| batched[n as usize] = true);
        // A partition's batches are persisted in sequence order, so the last one decides the
        // next sequence; the comparison with the broker's last sequence is wrap-aware.
        inner.next_seq[p] = batch.last_seq().wrapping_add(1);
        let in_log = last_seqs
            .get(p)
            .copied()
            .flatten()
            .is_some_and(|last| !seq_after(batch.last_seq(), last));
        if in_log {
            let payments = batch
                .payments
                .iter()
                .map(|&n| outbox.payments[n as usize].id.clone())
                .collect();
            ctx.probe(Probe::BatchKnownInLogAfterRestart);
            ctx.record(Event::BatchRecoveredAsAcked {
                partition: batch.partition,
                base_seq: batch.base_seq,
                payments,
            });
        } else {
            ctx.probe(Probe::BatchResentAfterRestart);
            inner.resend[p].push_back(SendBatch {
                partition: batch.partition,
                base_seq: batch.base_seq,
                payments: batch.payments.clone(),
            });
        }
    }
    for (n, payment) in outbox.payments.iter().enumerate() {
        if !batched[n] && !outbox.refused.contains(&(n as u32)) {
            inner.pending[payment.partition(cfg.partitions) as usize].push_back(n as u32);
            // A payment whose write survived the crash unsynced (a torn tail that held whole
            // frames) was made durable by the boot sync in `recover`: from now on it is owed.
            // Payments in a batch were synced before their batch was written, so only unbatched
            // ones can be new; announcing an already announced one again is harmless.
            ctx.record(Event::Outboxed {
                payment: payment.clone(),
            });
        }
    }
    inner
}

/// InitProducerId, retried until answered (in a replicated deployment, at the controller and
/// then `LastSeq` at every partition's leader). `None` if this incarnation is already fenced.
async fn init_producer_id(
    ctx: &NodeCtx,
    cfg: &ProducerConfig,
    leaders: Option<&Leaders>,
    boot: u64,
) -> Option<(u64, u32, Vec<Option<u32>>)> {
    let request = Request::InitProducerId {
        producer_key: cfg.key(),
        boot,
    };
    let coordinator = leaders.map_or(cfg.broker, Leaders::controller);
    let mut attempt = 0;
    loop {
        match ctx
            .call(coordinator, &request, cfg.retry.request_timeout)
            .await
        {
            Ok(Response::InitProducerId {
                producer_id,
                epoch,
                mut last_seqs,
            }) => {
                if let Some(leaders) = leaders {
                    last_seqs = leaders_last_seqs(ctx, cfg, leaders, producer_id, epoch).await?;
                }
                tracing::debug!(producer_id, epoch, ?last_seqs, "producer initialized");
                ctx.record(Event::ProducerInitialized {
                    producer_id,
                    epoch,
                    last_seqs: last_seqs.clone(),
                });
                return Some((producer_id, epoch, last_seqs));
            }
            Ok(Response::Error(ErrorCode::ProducerFenced)) => {
                tracing::debug!(boot, "InitProducerId fenced: a newer incarnation took over");
                ctx.record(Event::ProducerFenced { epoch: 0 });
                return None;
            }
            Ok(_) | Err(_) => {}
        }
        attempt += 1;
        madsim::time::sleep(cfg.retry.backoff(attempt)).await;
    }
}

/// The second half of InitProducerId in a replicated deployment: every partition leader's
/// last committed sequence of this producer, each asked until it answers. `None` if a leader
/// says this incarnation is fenced.
async fn leaders_last_seqs(
    ctx: &NodeCtx,
    cfg: &ProducerConfig,
    leaders: &Leaders,
    producer_id: u64,
    epoch: u32,
) -> Option<Vec<Option<u32>>> {
    let mut last_seqs = Vec::with_capacity(cfg.partitions as usize);
    for partition in 0..cfg.partitions {
        let request = Request::LastSeq {
            partition,
            producer_id,
            epoch,
        };
        let mut redirect = Redirect::default();
        let mut attempt = 0;
        let last_seq = loop {
            if let Some(leader) = redirect.leader(ctx, leaders, partition).await {
                let reply = ctx.call(leader, &request, cfg.retry.request_timeout).await;
                match reply {
                    Ok(Response::LastSeq { last_seq }) => break last_seq,
                    Ok(Response::Error(ErrorCode::ProducerFenced)) => {
                        tracing::debug!(epoch, partition, "LastSeq fenced: a newer incarnation");
                        ctx.record(Event::ProducerFenced { epoch });
                        return None;
                    }
                    Ok(Response::Error(code)) => redirect.refused(&code),
                    Err(CallFailure::Transport(CallError::Timeout)) => redirect.timed_out(),
                    Ok(_) | Err(_) => {}
                }
            }
            leaders.refresh(ctx.transport.as_ref()).await;
            attempt += 1;
            madsim::time::sleep(cfg.retry.backoff(attempt)).await;
        };
        last_seqs.push(last_seq);
    }
    Some(last_seqs)
}

/// Follows a partition's leadership for one request's retries: remembers the replica that
/// refused as no (longer the) leader or did not answer at all (a dead or cut-off leader), and
/// marks the retry that goes on to another one.
#[derive(Default)]
struct Redirect {
    refused_by: Option<u32>,
    /// The replica the last attempt went to.
    sent_to: Option<u32>,
}

impl Redirect {
    /// Where the next attempt goes: the partition's leader as last known, if any.
    async fn leader(
        &mut self,
        ctx: &NodeCtx,
        leaders: &Leaders,
        partition: u32,
    ) -> Option<SocketAddr> {
        let leader = leaders.leader(ctx.transport.as_ref(), partition).await?;
        if self.refused_by.is_some_and(|r| r != leader.index) {
            self.refused_by = None;
            ctx.probe(Probe::NotLeaderRedirected);
        }
        self.sent_to = Some(leader.index);
        Some(leader.addr)
    }

    /// The replica last sent to refused with `code`.
    fn refused(&mut self, code: &ErrorCode) {
        if matches!(code, ErrorCode::NotLeader | ErrorCode::StaleLeaderEpoch) {
            self.refused_by = self.sent_to;
        }
    }

    /// The replica last sent to did not answer in time.
    fn timed_out(&mut self) {
        self.refused_by = self.sent_to;
    }
}

/// Makes the remaining payments, one per interval: each is synced into the outbox before it is
/// owed and before it can be batched.
async fn generate_payments(shared: &Arc<Shared>) -> Result<(), NodeError> {
    let cfg = &shared.cfg;
    let storage = shared.ctx.storage.clone();
    let mut n = shared.inner().payments.len() as u32;
    while n < cfg.payments && !shared.is_fenced() {
        madsim::time::sleep(cfg.payment_interval).await;
        let mut payment = Payment::generate(cfg.index, n, cfg.customers);
        if let Some(sizes) = cfg.payment_sizes {
            payment = payment.with_encoded_len(sizes.bytes(cfg.seed, cfg.index, n));
        }
        if batch_body_len(std::slice::from_ref(&payment)) > FRAME_BODY_LEN_MAX as u64 {
            refuse(shared, n, payment).await?;
            n += 1;
            continue;
        }
        storage
            .append(OUTBOX_FILE, &encode_payment(n, &payment))
            .await?;
        storage.sync(OUTBOX_FILE).await?;
        let partition = payment.partition(cfg.partitions);
        shared.ctx.record(Event::Outboxed {
            payment: payment.clone(),
        });
        {
            let mut inner = shared.inner();
            inner.payments.push(payment);
            inner.pending[partition as usize].push_back(n);
        }
        shared.wake[partition as usize].notify_one();
        n += 1;
    }
    Ok(())
}

/// Refuses payment `n`, which no batch can carry (Kafka's client refuses such a record in
/// `send()`, before it has a sequence): the refusal is synced into the outbox in its place,
/// so the payment is never owed and no sequence is spent on it.
async fn refuse(shared: &Shared, n: u32, payment: Payment) -> Result<(), NodeError> {
    let storage = shared.ctx.storage.clone();
    storage
        .append(OUTBOX_FILE, &encode_refused(n, &payment.id))
        .await?;
    storage.sync(OUTBOX_FILE).await?;
    let bytes = payment.encoded_len();
    tracing::debug!(payment = %payment.id, bytes, "payment refused: too large for any batch");
    shared.ctx.record(Event::PaymentRefused {
        payment: payment.id.clone(),
        bytes,
    });
    shared.inner().payments.push(placeholder(payment.id));
    Ok(())
}

/// Sends one partition's batches: first the resends of a restart, then new batches, each first
/// persisted, within the partition's send window.
async fn partition_sender(shared: Arc<Shared>, partition: u32) {
    let p = partition as usize;
    let cfg = &shared.cfg;
    loop {
        if shared.is_fenced() {
            return;
        }
        let ready = {
            let inner = shared.inner();
            let has_work = !inner.resend[p].is_empty() || !inner.pending[p].is_empty();
            has_work && inner.windows[p].open(cfg.max_in_flight)
        };
        if !ready {
            shared.wake[p].notified().await;
            continue;
        }
        let resend = shared.inner().resend[p].pop_front();
        let batch = match resend {
            Some(batch) => batch,
            None => {
                if (shared.inner().pending[p].len() as u32) < cfg.max_batch_records
                    && !cfg.linger.is_zero()
                {
                    madsim::time::sleep(cfg.linger).await;
                }
                let batch = {
                    let mut inner = shared.inner();
                    let take = inner.pending[p].len().min(cfg.max_batch_records as usize);
                    let payments: Vec<u32> = inner.pending[p].drain(..take).collect();
                    let base_seq = inner.next_seq[p];
                    inner.next_seq[p] = base_seq.wrapping_add(payments.len() as u32);
                    PersistedBatch {
                        partition,
                        base_seq,
                        payments,
                    }
                };
                let storage = shared.ctx.storage.clone();
                let persisted = async {
                    storage.append(OUTBOX_FILE, &encode_batch(&batch)).await?;
                    storage.sync(OUTBOX_FILE).await
                };
                if persisted.await.is_err() {
                    return; // the incarnation is dying
                }
                shared.ctx.record(Event::BatchPersisted {
                    partition,
                    base_seq: batch.base_seq,
                    payments: shared.ids(&batch.payments),
                });
                SendBatch {
                    partition,
                    base_seq: batch.base_seq,
                    payments: batch.payments,
                }
            }
        };
        let index = {
            let mut inner = shared.inner();
            inner.windows[p].next += 1;
            inner.windows[p].next - 1
        };
        madsim::task::spawn(send_until_acked(shared.clone(), batch, index));
    }
}

/// How sending one batch ended.
enum Sent {
    Acked(u64),
    /// The broker refused the batch as larger than it can store.
    TooLarge,
    /// This incarnation is fenced (or dying): stop.
    Stopped,
}

/// Sends one batch until the broker acknowledges it (or this incarnation is fenced). A batch
/// the broker refuses as too large is split into parts that fit, sent one after the other;
/// the window moves past the batch when its last part is acknowledged.
async fn send_until_acked(shared: Arc<Shared>, batch: SendBatch, index: u64) {
    let mut parts = VecDeque::from([batch]);
    while let Some(mut part) = parts.pop_front() {
        match send_part(&shared, &mut part).await {
            Sent::Acked(base_offset) => {
                record_ack(&shared, &part, base_offset);
                if parts.is_empty() {
                    let p = part.partition as usize;
                    shared.inner().windows[p].ack(index);
                    shared.wake[p].notify_one();
                }
            }
            Sent::TooLarge => match split(&shared, part, index).await {
                Some(pieces) => pieces.into_iter().rev().for_each(|b| parts.push_front(b)),
                None => return,
            },
            Sent::Stopped => return,
        }
    }
}

/// Sends one batch, retrying until it is acknowledged, refused as too large, or fenced.
async fn send_part(shared: &Shared, batch: &mut SendBatch) -> Sent {
    let cfg = &shared.cfg;
    let records: Vec<Payment> = {
        let inner = shared.inner();
        batch
            .payments
            .iter()
            .map(|&n| inner.payments[n as usize].clone())
            .collect()
    };
    let count = records.len() as u32;
    let mut request = Request::Produce {
        partition: batch.partition,
        producer_id: shared.producer_id,
        epoch: shared.epoch,
        base_seq: batch.base_seq,
        records,
    };
    let mut redirect = Redirect::default();
    let mut attempt = 0;
    while !shared.is_fenced() {
        let (error, refusal) = match destination(shared, batch.partition, &mut redirect).await {
            Some(dst) => {
                shared.ctx.record(Event::ProduceSent {
                    partition: batch.partition,
                    epoch: shared.epoch,
                    base_seq: batch.base_seq,
                    count,
                    attempt,
                });
                match shared
                    .ctx
                    .call(dst, &request, cfg.retry.request_timeout)
                    .await
                {
                    Ok(Response::Produced { base_offset }) => return Sent::Acked(base_offset),
                    Ok(Response::Error(ErrorCode::ProducerFenced)) => {
                        fence(shared);
                        return Sent::Stopped;
                    }
                    Ok(Response::Error(ErrorCode::RecordTooLarge)) => return Sent::TooLarge,
                    Ok(Response::Error(code)) => (code.to_string(), Some(code)),
                    Ok(other) => (format!("unexpected reply {other:?}"), None),
                    Err(e) => (e.to_string(), None),
                }
            }
            None => ("no leader known for the partition".to_string(), None),
        };
        let timed_out = error == CallError::Timeout.to_string();
        tracing::debug!(
            partition = batch.partition,
            base_seq = batch.base_seq,
            attempt,
            %error,
            "produce failed; will retry"
        );
        shared.ctx.record(Event::ProduceFailed {
            partition: batch.partition,
            base_seq: batch.base_seq,
            error,
        });
        if timed_out && shared.ctx.bug(Bug::RetryWithNewSequence) {
            renumber(shared, batch, &mut request, count);
        }
        if let Some(leaders) = &shared.leaders {
            if let Some(code) = &refusal {
                redirect.refused(code);
            }
            if timed_out {
                redirect.timed_out();
            }
            if timed_out || refusal.as_ref().is_none_or(leadership_moved) {
                leaders.refresh(shared.ctx.transport.as_ref()).await;
            }
        }
        attempt += 1;
        madsim::time::sleep(retry_delay(shared, attempt)).await;
    }
    Sent::Stopped
}

/// Where the next attempt of a produce to `partition` goes: the broker, or in a replicated
/// deployment the partition's leader as last known (`None` if none is).
async fn destination(
    shared: &Shared,
    partition: u32,
    redirect: &mut Redirect,
) -> Option<SocketAddr> {
    match &shared.leaders {
        None => Some(shared.cfg.broker),
        Some(leaders) => redirect.leader(&shared.ctx, leaders, partition).await,
    }
}

/// The broker has the batch at `base_offset`.
fn record_ack(shared: &Shared, batch: &SendBatch, base_offset: u64) {
    let payments = shared.ids(&batch.payments);
    shared.ctx.record(Event::ProduceAcked {
        partition: batch.partition,
        base_seq: batch.base_seq,
        base_offset,
        payments,
    });
}

/// Splits a batch the broker refused as too large into consecutive parts that fit (Kafka's
/// producer does the same on MESSAGE_TOO_LARGE, KAFKA-3995), keeping its sequence range, and
/// persists the split before any part is sent, so a restart resends the parts. `None` if the
/// batch cannot be split (one payment: the producer refuses those before batching) or the
/// incarnation stops.
///
/// The parts go out only once every earlier batch of the partition is acknowledged: a part
/// is sent only after the one before it is acknowledged, so no unacknowledged earlier batch
/// can drop out of the broker's five-batch window behind a run of parts.
async fn split(shared: &Shared, batch: SendBatch, index: u64) -> Option<Vec<SendBatch>> {
    let sizes: Vec<u64> = {
        let inner = shared.inner();
        let size = |&n: &u32| inner.payments[n as usize].encoded_len();
        batch.payments.iter().map(size).collect()
    };
    let parts = pack(&sizes);
    if parts.len() < 2 {
        shared.ctx.record(Event::ProduceFailed {
            partition: batch.partition,
            base_seq: batch.base_seq,
            error: "record too large and cannot be split; given up".to_string(),
        });
        return None;
    }
    let p = batch.partition as usize;
    while shared.inner().windows[p].oldest_unacked < index {
        if shared.is_fenced() {
            return None;
        }
        madsim::time::sleep(shared.cfg.retry.backoff(1)).await;
    }
    let storage = shared.ctx.storage.clone();
    let entry = encode_split(batch.partition, batch.base_seq, &parts);
    let persisted = async {
        storage.append(OUTBOX_FILE, &entry).await?;
        storage.sync(OUTBOX_FILE).await
    };
    persisted.await.ok()?;
    shared.ctx.record(Event::BatchSplit {
        partition: batch.partition,
        base_seq: batch.base_seq,
        parts: parts.clone(),
    });
    let (mut seq, mut from) = (batch.base_seq, 0);
    let pieces = parts.iter().map(|&n| {
        let piece = SendBatch {
            partition: batch.partition,
            base_seq: seq,
            payments: batch.payments[from..from + n as usize].to_vec(),
        };
        (seq, from) = (seq.wrapping_add(n), from + n as usize);
        piece
    });
    Some(pieces.collect())
}

/// Packs payments of the given encoded sizes, in order, into as few consecutive batches as fit
/// in a frame; returns each batch's payment count.
fn pack(sizes: &[u64]) -> Vec<u32> {
    let empty = batch_body_len(&[]);
    let mut parts: Vec<u32> = Vec::new();
    let mut bytes = empty;
    for &size in sizes {
        if parts.is_empty() || bytes + size > FRAME_BODY_LEN_MAX as u64 {
            parts.push(0);
            bytes = empty;
        }
        *parts.last_mut().expect("just pushed") += 1;
        bytes += size;
    }
    parts
}

/// A newer incarnation owns the producer id: this one stops sending, and `run_producer` ends.
fn fence(shared: &Shared) {
    tracing::debug!(
        epoch = shared.epoch,
        "fenced: a newer incarnation took over"
    );
    shared.ctx.record(Event::ProducerFenced {
        epoch: shared.epoch,
    });
    shared.fenced.store(true, Ordering::Relaxed);
    shared.fenced_notify.notify_waiters();
    shared.wake.iter().for_each(Notify::notify_one);
}

/// The planted `retry-with-new-sequence`: the retry goes out as a new batch, though the first
/// may be in.
fn renumber(shared: &Shared, batch: &mut SendBatch, request: &mut Request, count: u32) {
    let mut inner = shared.inner();
    let p = batch.partition as usize;
    batch.base_seq = inner.next_seq[p];
    inner.next_seq[p] = batch.base_seq.wrapping_add(count);
    if let Request::Produce { base_seq, .. } = request {
        *base_seq = batch.base_seq;
    }
}

/// The backoff before retry `attempt`, with up to half of it again as jitter from the
/// producer's seeded generator.
fn retry_delay(shared: &Shared, attempt: u32) -> Duration {
    let backoff = shared.cfg.retry.backoff(attempt);
    let jitter = shared
        .inner()
        .rng
        .random_range(0..=backoff.as_micros() as u64 / 2);
    backoff + Duration::from_micros(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_window_waits_for_the_oldest_unacknowledged_batch() {
        let mut w = Window::default();
        for _ in 0..5 {
            assert!(w.open(5));
            w.next += 1;
        }
        assert!(!w.open(5));
        // Batches 1..=4 are acknowledged, batch 0's ack is lost: the window must not move.
        (1..5).for_each(|i| w.ack(i));
        assert!(!w.open(5), "batch 0 would leave the broker's dedup window");
        w.ack(0);
        assert_eq!(w.oldest_unacked, 5);
        assert!(w.open(5));
    }

    #[test]
    fn the_outbox_reads_back_boots_payments_and_batches() {
        let payments: Vec<Payment> = (0..3).map(|n| Payment::generate(1, n, 4)).collect();
        let mut bytes = encode_boot(1);
        for (n, p) in payments.iter().enumerate() {
            bytes.extend(encode_payment(n as u32, p));
        }
        let batch = PersistedBatch {
            partition: 2,
            base_seq: 0,
            payments: vec![0, 2],
        };
        bytes.extend(encode_batch(&batch));
        bytes.extend(encode_boot(2));
        let outbox = recover_outbox(&bytes);
        assert_eq!(outbox.boot, 2);
        assert_eq!(outbox.payments, payments);
        assert_eq!(outbox.batches, vec![batch]);
        assert_eq!((outbox.valid_len, outbox.tail), (bytes.len(), Tail::Clean));
    }

    #[test]
    fn a_torn_outbox_keeps_what_was_whole() {
        let mut bytes = encode_boot(1);
        bytes.extend(encode_payment(0, &Payment::generate(0, 0, 4)));
        let whole = bytes.len();
        bytes.extend(&encode_payment(1, &Payment::generate(0, 1, 4))[..7]);
        let outbox = recover_outbox(&bytes);
        assert_eq!(outbox.payments.len(), 1);
        assert_eq!((outbox.valid_len, outbox.tail), (whole, Tail::Torn));
    }

    #[test]
    fn a_batch_naming_a_payment_that_is_not_outboxed_is_corrupt() {
        let mut bytes = encode_payment(0, &Payment::generate(0, 0, 4));
        let whole = bytes.len();
        bytes.extend(encode_batch(&PersistedBatch {
            partition: 0,
            base_seq: 0,
            payments: vec![0, 1],
        }));
        let outbox = recover_outbox(&bytes);
        assert!(outbox.batches.is_empty());
        assert_eq!((outbox.valid_len, outbox.tail), (whole, Tail::Corrupt));
    }
}
