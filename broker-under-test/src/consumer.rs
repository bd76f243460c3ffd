//! The consumer (payment processor): fetches from the broker, applies each payment to the store,
//! and commits its offset only after the store acknowledged.
//!
//! Safety (towards the store: at least once): an offset is committed only after every record
//! below it was acknowledged by the store, so a restart resumes at or before the first record
//! not yet applied; the store's dedup by payment id absorbs the re-deliveries.
//!
//! In a replicated deployment it fetches from each partition's leader (which serves records
//! below the high watermark only) and commits and fetches offsets at the controller; a refusal
//! or a timeout makes it ask the controller who leads and try again.

use crate::bugs::Bug;
use crate::client::{leadership_moved, Leaders, ReplicatedAddrs};
use crate::codec::{ErrorCode, FetchedRecord, Request, Response};
use crate::node::{CallFailure, NodeCtx, NodeError, RetryPolicy};
use crate::observe::{Event, Probe};
use crate::transport::CallError;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub group: String,
    pub partitions: u32,
    pub broker: SocketAddr,
    pub store: SocketAddr,
    pub fetch_max_records: u32,
    /// How long to wait before polling again when every partition was empty.
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    /// `Some` in a replicated deployment: the controller and replicas replace `broker`.
    pub replicated: Option<ReplicatedAddrs>,
}

impl ConsumerConfig {
    /// Where offsets are committed and fetched: the broker, or the controller.
    fn coordinator(&self) -> SocketAddr {
        self.replicated
            .as_ref()
            .map_or(self.broker, |addrs| addrs.controller)
    }
}

/// Runs the consumer until the node is killed.
pub async fn run_consumer(ctx: NodeCtx, cfg: ConsumerConfig) -> Result<(), NodeError> {
    let leaders = cfg
        .replicated
        .clone()
        .map(|addrs| Leaders::new(addrs, cfg.retry));
    let mut positions = Vec::with_capacity(cfg.partitions as usize);
    for partition in 0..cfg.partitions {
        let request = Request::OffsetFetch {
            group: cfg.group.clone(),
            partition,
        };
        let offset = match call_until_answered(&ctx, &cfg, cfg.coordinator(), &request).await {
            Response::OffsetFetched { offset } => offset.unwrap_or(0),
            _ => 0,
        };
        if offset > 0 {
            ctx.probe(Probe::ConsumerResumedFromCommit);
        }
        tracing::debug!(
            partition,
            offset,
            "consumer resumed from the committed offset"
        );
        ctx.record(Event::ConsumerResumed { partition, offset });
        positions.push(offset);
    }
    loop {
        let mut fetched_any = false;
        for partition in 0..cfg.partitions {
            let p = partition as usize;
            let request = Request::Fetch {
                partition,
                offset: positions[p],
                max_records: cfg.fetch_max_records,
            };
            let reply = match &leaders {
                None => call_until_answered(&ctx, &cfg, cfg.broker, &request).await,
                Some(leaders) => fetch_from_leader(&ctx, &cfg, leaders, partition, &request).await,
            };
            let records = match reply {
                Response::Fetched { records, .. } => records,
                _ => continue,
            };
            let Some(last) = records.last() else { continue };
            let next = last.offset + 1;
            // The planted `commit-skips-one` commits one past the next offset to read.
            let committed = if ctx.bug(Bug::CommitSkipsOne) {
                next + 1
            } else {
                next
            };
            fetched_any = true;
            ctx.record(Event::Fetched {
                partition,
                from: positions[p],
                records: records
                    .iter()
                    .map(|r| (r.offset, r.payment.id.clone()))
                    .collect(),
            });
            if ctx.bug(Bug::CommitBeforeApply) {
                commit(&ctx, &cfg, partition, committed).await;
            }
            for record in records {
                apply(&ctx, &cfg, partition, record).await;
            }
            if !ctx.bug(Bug::CommitBeforeApply) {
                commit(&ctx, &cfg, partition, committed).await;
            }
            positions[p] = next;
        }
        if !fetched_any {
            madsim::time::sleep(cfg.poll_interval).await;
        }
    }
}

/// Applies one record at the store, retrying until the store acknowledges.
async fn apply(ctx: &NodeCtx, cfg: &ConsumerConfig, partition: u32, record: FetchedRecord) {
    let payment = record.payment.id.clone();
    let request = Request::Apply {
        payment: record.payment,
        partition,
        offset: record.offset,
    };
    if let Response::Applied { duplicate } =
        call_until_answered(ctx, cfg, cfg.store, &request).await
    {
        ctx.record(Event::ApplyAcked {
            partition,
            offset: record.offset,
            payment,
            duplicate,
        });
    }
}

/// Commits `offset` (the next one to read), retrying until the broker acknowledges.
async fn commit(ctx: &NodeCtx, cfg: &ConsumerConfig, partition: u32, offset: u64) {
    let request = Request::OffsetCommit {
        group: cfg.group.clone(),
        partition,
        offset,
    };
    if let Response::OffsetCommitted =
        call_until_answered(ctx, cfg, cfg.coordinator(), &request).await
    {
        tracing::trace!(partition, offset, "offset committed");
        ctx.record(Event::OffsetCommitted { partition, offset });
    }
}

/// Sends a fetch to the partition's leader until it answers with something other than a
/// refusal that means the leadership moved; looks the leader up again after each such refusal
/// or a timeout. Going on to another replica after a refusal or a timeout is a redirect.
async fn fetch_from_leader(
    ctx: &NodeCtx,
    cfg: &ConsumerConfig,
    leaders: &Leaders,
    partition: u32,
    request: &Request,
) -> Response {
    let transport = ctx.transport.as_ref();
    let mut refused_by = None;
    let mut attempt = 0;
    loop {
        if let Some(leader) = leaders.leader(transport, partition).await {
            if refused_by.is_some_and(|r| r != leader.index) {
                refused_by = None;
                ctx.probe(Probe::NotLeaderRedirected);
            }
            match ctx
                .call(leader.addr, request, cfg.retry.request_timeout)
                .await
            {
                Ok(Response::Error(code)) if leadership_moved(&code) => {
                    if code != ErrorCode::NotReady {
                        refused_by = Some(leader.index);
                    }
                }
                Err(CallFailure::Transport(CallError::Timeout)) => refused_by = Some(leader.index),
                Ok(Response::Error(ErrorCode::StorageFailure)) | Err(_) => {}
                Ok(response) => return response,
            }
        }
        leaders.refresh(transport).await;
        attempt += 1;
        madsim::time::sleep(cfg.retry.backoff(attempt)).await;
    }
}

/// Sends `request` until a reply that is not a retriable error arrives.
async fn call_until_answered(
    ctx: &NodeCtx,
    cfg: &ConsumerConfig,
    dst: SocketAddr,
    request: &Request,
) -> Response {
    let mut attempt = 0;
    loop {
        match ctx.call(dst, request, cfg.retry.request_timeout).await {
            Ok(Response::Error(ErrorCode::StorageFailure)) | Err(_) => {}
            Ok(response) => return response,
        }
        attempt += 1;
        madsim::time::sleep(cfg.retry.backoff(attempt)).await;
    }
}
