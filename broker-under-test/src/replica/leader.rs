//! A replica's request handling: what a partition's leader answers (produce, consumer fetch,
//! follower fetch, `LastSeq`), and the high watermark that releases produce replies.

use super::{Outgoing, Part, Replica, Role, Waiting};
use crate::broker::{fetch_within, reject_produce, too_large};
use crate::bugs::Bug;
use crate::codec::{ErrorCode, Payment, ReplicatedBatch, Request, Response};
use crate::node::{NodeCtx, NodeError};
use crate::observe::Probe;
use crate::producer_state::SeqCheck;
use crate::transport::Incoming;
use madsim::time::Instant;

/// The most batches one follower fetch returns.
const REPLICA_FETCH_BATCHES_MAX: usize = 64;

/// The most payment bytes one follower fetch returns (at least one batch, whatever its size).
const REPLICA_FETCH_BYTES_MAX: u64 = 1 << 20;

/// How a request was answered: now (after the group's sync), or once the high watermark of
/// `partition` reaches `until`.
enum Answer {
    Now(Response),
    Wait {
        partition: u32,
        until: u64,
        response: Response,
    },
}

impl Part {
    /// The leader's high watermark: the least synced end over itself and the followers of the
    /// maximal ISR (the controller's plus those it asked to add). It never moves back. Replies
    /// it now covers are released into `out`.
    pub(super) fn advance_high_watermark(
        &mut self,
        me: u32,
        min_insync: u32,
        out: &mut Vec<Outgoing>,
    ) {
        // Called on every fetch and produce: count and release without allocating.
        let members = || {
            self.isr
                .iter()
                .chain(self.adding.iter())
                .copied()
                .chain([me])
        };
        let maximal = members()
            .enumerate()
            .filter(|&(i, r)| !members().take(i).any(|q| q == r))
            .count();
        if (maximal as u32) < min_insync {
            return; // too few copies to commit anything (`min_insync`)
        }
        let followers = self.isr.iter().chain(self.adding.iter());
        let least = followers
            .filter(|&&r| r != me)
            .map(|r| self.ends.get(r).copied().unwrap_or(0))
            .fold(self.synced_end, u64::min);
        self.high_watermark = self.high_watermark.max(least);
        let hw = self.high_watermark;
        // In arrival order, as they waited.
        let ready = self.waiting.extract_if(.., |w| w.until <= hw);
        out.extend(ready.map(|w| (w.incoming, w.response)));
    }

    /// Whether this replica leads the partition at `leader_epoch` (else the error to answer).
    fn leads_at(&self, leader_epoch: u32) -> Result<(), ErrorCode> {
        match (self.role, self.leader_epoch) {
            (Role::Leader, Some(e)) if e == leader_epoch => Ok(()),
            (Role::Leader, Some(e)) if e > leader_epoch => Err(ErrorCode::StaleLeaderEpoch),
            _ => Err(ErrorCode::NotLeader),
        }
    }
}

impl Replica {
    /// Handles one request of a group; its reply goes to `out` or waits in its partition.
    pub(super) async fn handle(
        &mut self,
        ctx: &NodeCtx,
        incoming: Incoming,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), NodeError> {
        let answer = match ctx.decode_request(&incoming.body) {
            Ok(request) => self.answer(ctx, request).await?,
            Err(malformed) => Answer::Now(malformed),
        };
        match answer {
            Answer::Now(response) => out.push((incoming, response)),
            Answer::Wait {
                partition,
                until,
                response,
            } => self.parts[partition as usize].waiting.push(Waiting {
                incoming,
                until,
                response,
            }),
        }
        Ok(())
    }

    async fn answer(&mut self, ctx: &NodeCtx, request: Request) -> Result<Answer, NodeError> {
        let now = |r| Ok(Answer::Now(r));
        let partition = match &request {
            Request::Produce { partition, .. }
            | Request::Fetch { partition, .. }
            | Request::ReplicaFetch { partition, .. }
            | Request::LastSeq { partition, .. } => *partition,
            // The controller's business, the store's, or nobody's.
            _ => return now(Response::Error(ErrorCode::Malformed)),
        };
        let Some(part) = self.parts.get_mut(partition as usize) else {
            return now(Response::Error(ErrorCode::UnknownPartition));
        };
        if part.role != Role::Leader {
            return now(Response::Error(ErrorCode::NotLeader));
        }
        match request {
            Request::Produce {
                producer_id,
                epoch,
                base_seq,
                records,
                ..
            } => {
                self.produce(ctx, partition, producer_id, epoch, base_seq, records)
                    .await
            }
            Request::Fetch {
                offset,
                max_records,
                ..
            } => {
                let bound = if ctx.bug(Bug::ReadPastHighWatermark) {
                    part.data.log.log_end()
                } else {
                    part.high_watermark
                };
                let mut records = fetch_within(&part.data.log, offset, max_records);
                records.retain(|r| r.offset < bound);
                now(Response::Fetched {
                    records,
                    log_end: bound,
                })
            }
            Request::ReplicaFetch {
                replica,
                leader_epoch,
                offset,
                last_epoch,
                ..
            } => {
                let brokers = self.rep.replication.brokers;
                let me = self.rep.index;
                let fetch = (replica, leader_epoch, offset, last_epoch);
                now(part.replica_fetch(me, brokers, fetch))
            }
            Request::LastSeq {
                producer_id, epoch, ..
            } => now(part.last_seq(producer_id, epoch)),
            _ => now(Response::Error(ErrorCode::Malformed)),
        }
    }

    /// A produce to the leader: epoch fencing, the single broker's sequence checks, append;
    /// the acknowledgement (or a duplicate's) waits for the high watermark to cover the batch.
    async fn produce(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        records: Vec<Payment>,
    ) -> Result<Answer, NodeError> {
        let part = &mut self.parts[partition as usize];
        if records.is_empty() {
            return Ok(Answer::Now(Response::Error(ErrorCode::Malformed)));
        }
        let count = records.len() as u32;
        let batch = (partition, producer_id, epoch, base_seq);
        let reject = |error| Ok(Answer::Now(reject_produce(ctx, batch, error)));
        if too_large(ctx, &records) {
            return reject(ErrorCode::RecordTooLarge);
        }
        let seen = part
            .data
            .table
            .epoch(producer_id)
            .max(part.fenced.get(&producer_id).copied());
        if seen.is_some_and(|seen| epoch < seen) {
            ctx.probe(Probe::ZombieFenced);
            return reject(ErrorCode::ProducerFenced);
        }
        let (base_offset, response) = match part.data.check(ctx, producer_id, base_seq, count) {
            SeqCheck::OutOfOrder { expected } => {
                ctx.probe(Probe::OutOfOrderRejected);
                return reject(ErrorCode::OutOfOrderSequence { expected });
            }
            SeqCheck::Duplicate { base_offset } => {
                if base_offset < part.epoch_start {
                    ctx.probe(Probe::DedupAcrossFailover);
                }
                let response =
                    part.data
                        .duplicate(ctx, partition, producer_id, base_seq, base_offset);
                (base_offset, response)
            }
            SeqCheck::Append => {
                let base_offset = part
                    .data
                    .append(ctx, &self.cfg, producer_id, epoch, base_seq, records)
                    .await?;
                (base_offset, Response::Produced { base_offset })
            }
        };
        let until = base_offset + u64::from(count);
        if ctx.bug(Bug::AckBeforeReplication) || until <= part.high_watermark {
            return Ok(Answer::Now(response));
        }
        // Past this group's sync, the followers still have to fetch it.
        ctx.probe(Probe::AckWaitedForReplication);
        Ok(Answer::Wait {
            partition,
            until,
            response,
        })
    }
}

impl Part {
    /// A follower's (or an observer's) fetch: the divergence check against the epoch file
    /// (KIP-320), else batches from `offset` up to the leader's synced end, and the follower's
    /// durable end counted.
    fn replica_fetch(
        &mut self,
        me: u32,
        brokers: u32,
        (replica, leader_epoch, offset, last_epoch): (u32, u32, u64, Option<u32>),
    ) -> Response {
        if let Err(code) = self.leads_at(leader_epoch) {
            return Response::Error(code);
        }
        if replica == me {
            return Response::Error(ErrorCode::Malformed);
        }
        let end = self.synced_end;
        if let Some(last) = last_epoch {
            let (epoch, end_offset) = self.epochs.end_of(last, end).unwrap_or((last, 0));
            if epoch != last || end_offset < offset {
                return Response::Diverging { epoch, end_offset };
            }
        }
        // An offset inside one of the leader's batches is a log that diverged unseen.
        let batches = self.data.log.batches();
        let start = batches.partition_point(|b| b.next_offset() <= offset);
        if let Some(b) = batches.get(start).filter(|b| b.base_offset < offset) {
            return Response::Diverging {
                epoch: last_epoch.unwrap_or(0),
                end_offset: b.base_offset,
            };
        }
        if replica < brokers {
            // Caught up: it has all the leader had at its previous fetch (Kafka's rule, so a
            // follower trailing a busy leader by one fetch still counts as keeping up).
            let previous = self.end_at_fetch.insert(replica, end).unwrap_or(end);
            self.ends.insert(replica, offset.min(end));
            if offset >= previous.min(end) {
                self.caught_up_at.insert(replica, Instant::now());
            }
        }
        let mut bytes = 0;
        let batches = batches[start..]
            .iter()
            .take_while(|b| b.next_offset() <= end)
            .take(REPLICA_FETCH_BATCHES_MAX)
            .take_while(|b| {
                let first = bytes == 0;
                bytes += b.records.iter().map(Payment::encoded_len).sum::<u64>();
                first || bytes <= REPLICA_FETCH_BYTES_MAX
            })
            .map(|b| ReplicatedBatch {
                leader_epoch: self.epochs.epoch_at(b.base_offset).unwrap_or(0),
                batch: b.clone(),
            })
            .collect();
        Response::Replicated {
            high_watermark: self.high_watermark,
            batches,
        }
    }

    /// The last sequence of `producer_id`, only when the leader's whole log is committed; from
    /// then on `epoch` fences the producer's older incarnations on this leader, in memory. (A
    /// new leader does not know it; a zombie's batch there is one the new incarnation resends
    /// with the same sequences and payments, so it is answered as a duplicate, never doubled.)
    fn last_seq(&mut self, producer_id: u64, epoch: u32) -> Response {
        let end = self.data.log.log_end();
        if self.high_watermark != end || self.synced_end != end {
            return Response::Error(ErrorCode::NotReady);
        }
        let fenced = self.fenced.entry(producer_id).or_insert(epoch);
        *fenced = (*fenced).max(epoch);
        Response::LastSeq {
            last_seq: self.data.table.last_seq(producer_id),
        }
    }
}
