//! A replica following a partition: it fetches from the leader, appends and syncs what it
//! gets (feeding its producer state as a leader does), and cuts a divergent suffix when the
//! leader says where its last epoch ends.

use super::{epochs::epochs_file, fetch_timeout, Replica, Role};
use crate::bugs::Bug;
use crate::codec::{ReplicatedBatch, Request, Response};
use crate::node::{NodeCtx, NodeError};
use std::sync::Arc;
use tokio::sync::Mutex;

/// What to do after one fetch.
enum Next {
    /// Fetch again at once (something came, or a cut was made).
    Again,
    /// Caught up, refused or unanswered: wait `fetch_interval`.
    Wait,
}

/// Fetches `partition` from its leader for as long as this replica follows it.
pub(super) async fn fetch_loop(
    ctx: &NodeCtx,
    state: &Arc<Mutex<Replica>>,
    partition: u32,
) -> Result<(), NodeError> {
    let (interval, timeout) = {
        let r = state.lock().await;
        (r.rep.replication.fetch_interval, fetch_timeout(&r.rep))
    };
    loop {
        // Not in the match: the lock must not be held across the call.
        let request = state.lock().await.fetch_request(ctx, partition);
        let next = match request {
            None => Next::Wait,
            Some((leader, epoch, request)) => {
                let answer = ctx.call(leader, &request, timeout).await;
                let mut r = state.lock().await;
                match answer {
                    Ok(response) => r.fetched(ctx, partition, epoch, response).await?,
                    Err(_) => Next::Wait,
                }
            }
        };
        if let Next::Wait = next {
            madsim::time::sleep(interval).await;
        }
    }
}

impl Replica {
    /// The fetch to send if this replica follows `partition`: the leader's address, the epoch
    /// it follows, and the request.
    fn fetch_request(
        &self,
        ctx: &NodeCtx,
        partition: u32,
    ) -> Option<(std::net::SocketAddr, u32, Request)> {
        let part = &self.parts[partition as usize];
        let (Role::Follower { leader }, Some(leader_epoch)) = (part.role, part.leader_epoch) else {
            return None;
        };
        let offset = part.data.log.log_end();
        // The planted `truncate-to-high-watermark` never lets the leader validate its log.
        let last_epoch = if ctx.bug(Bug::TruncateToHighWatermark) {
            None
        } else {
            part.epochs.last_batch_epoch(offset)
        };
        let request = Request::ReplicaFetch {
            partition,
            replica: self.rep.index,
            leader_epoch,
            offset,
            last_epoch,
        };
        Some((
            *self.rep.replicas.get(leader as usize)?,
            leader_epoch,
            request,
        ))
    }

    /// Applies a leader's answer to a fetch made while following at `epoch`.
    async fn fetched(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        epoch: u32,
        response: Response,
    ) -> Result<Next, NodeError> {
        let part = &self.parts[partition as usize];
        let following = matches!(part.role, Role::Follower { .. });
        if !following || part.leader_epoch != Some(epoch) {
            return Ok(Next::Wait);
        }
        match response {
            Response::Replicated {
                high_watermark,
                batches,
            } => {
                let got = !batches.is_empty();
                self.append_replicated(ctx, partition, batches).await?;
                let part = &mut self.parts[partition as usize];
                part.high_watermark = high_watermark.min(part.synced_end);
                Ok(if got { Next::Again } else { Next::Wait })
            }
            Response::Diverging { epoch, end_offset } if !ctx.bug(Bug::TruncateToHighWatermark) => {
                let part = &self.parts[partition as usize];
                let log_end = part.data.log.log_end();
                // Where this log's epochs above `epoch` begin (KIP-279): a follower whose last
                // epoch the leader never had keeps none of it.
                let own_end = part.epochs.end_of(epoch, log_end).map_or(0, |(_, end)| end);
                let to = end_offset.min(own_end).min(log_end);
                if to >= log_end {
                    return Ok(Next::Wait);
                }
                self.truncate(ctx, partition, to).await?;
                Ok(Next::Again)
            }
            _ => Ok(Next::Wait),
        }
    }

    /// Appends the batches that continue the log, each epoch's start recorded durably first,
    /// then syncs, so the next fetch's offset is all durable.
    async fn append_replicated(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        batches: Vec<ReplicatedBatch>,
    ) -> Result<(), NodeError> {
        let feed = !ctx.bug(Bug::ProducerStateNotReplicated);
        let part = &mut self.parts[partition as usize];
        let mut end = part.data.log.log_end();
        let mut accepted = Vec::new();
        let mut epochs_changed = false;
        for rb in batches {
            if rb.batch.base_offset != end || rb.batch.records.is_empty() {
                break;
            }
            end = rb.batch.next_offset();
            // Epochs recorded at the log end hold no batch (one this replica led without
            // appending): the batch's own epoch replaces them.
            epochs_changed |= part.epochs.truncate(rb.batch.base_offset);
            epochs_changed |= part.epochs.begin(rb.leader_epoch, rb.batch.base_offset);
            accepted.push(rb.batch);
        }
        if accepted.is_empty() {
            return Ok(());
        }
        if epochs_changed {
            ctx.storage
                .replace(&epochs_file(partition), &part.epochs.encode())
                .await?;
        }
        for b in accepted {
            part.data
                .append_unrecorded(ctx, b.producer_id, b.epoch, b.base_seq, b.records, feed)
                .await?;
            part.data.snapshot_early(ctx, &self.cfg).await?;
        }
        part.data.commit(ctx, &self.cfg).await?;
        part.mark_synced(ctx, partition).await?;
        Ok(())
    }
}
