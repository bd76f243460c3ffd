//! An operator's read client: every record of the log through the broker's `Fetch` (or, in a
//! replicated deployment, each partition leader's `ReplicaFetch` as an observer), every row of
//! the store through its `ListRows`. The harness's final read uses it, so that what it judges is
//! what the system itself serves, not a decoding of its files.
//!
//! Also the clients' view of a replicated deployment: where the controller and the replicas
//! listen ([`ReplicatedAddrs`]) and who leads each partition ([`Leaders`], a metadata cache).

use crate::codec::{ErrorCode, FetchedRecord, PartitionState, Request, Response};
use crate::node::RetryPolicy;
use crate::store::StoreRow;
use crate::transport::Transport;
use std::net::SocketAddr;
use std::time::Duration;

/// The whole log, per partition in offset order, and the store's rows in applied order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBack {
    pub logs: Vec<Vec<FetchedRecord>>,
    pub rows: Vec<StoreRow>,
}

/// Reads everything back, retrying each request until it is answered (the caller bounds the
/// time). An answer that makes no sense (an error, a record out of place) is an error.
pub async fn read_back(
    transport: &dyn Transport,
    broker: SocketAddr,
    store: SocketAddr,
    partitions: u32,
) -> Result<ReadBack, String> {
    let mut logs = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        logs.push(read_partition(transport, broker, partition).await?);
    }
    let mut back = read_back_rows(transport, store).await?;
    back.logs = logs;
    Ok(back)
}

/// Every row of the store, in applied order (no logs).
async fn read_back_rows(transport: &dyn Transport, store: SocketAddr) -> Result<ReadBack, String> {
    let mut back = ReadBack::default();
    loop {
        let request = Request::ListRows {
            from: back.rows.len() as u32,
            max_rows: 500,
        };
        match call_until_answered(transport, store, &request).await {
            Response::Rows { rows, total } => {
                let done = rows.is_empty() || back.rows.len() + rows.len() >= total as usize;
                back.rows.extend(rows);
                if done {
                    return Ok(back);
                }
            }
            other => return Err(format!("the store answered ListRows with {other:?}")),
        }
    }
}

async fn read_partition(
    transport: &dyn Transport,
    broker: SocketAddr,
    partition: u32,
) -> Result<Vec<FetchedRecord>, String> {
    let mut records: Vec<FetchedRecord> = Vec::new();
    let mut offset = 0;
    loop {
        let request = Request::Fetch {
            partition,
            offset,
            max_records: 500,
        };
        let (page, log_end) = match call_until_answered(transport, broker, &request).await {
            Response::Fetched { records, log_end } => (records, log_end),
            other => {
                return Err(format!(
                    "the broker answered a fetch of partition {partition} with {other:?}"
                ))
            }
        };
        if let Some(wrong) = page.iter().find(|r| r.offset < offset) {
            return Err(format!(
                "partition {partition}: a fetch from offset {offset} returned offset {}",
                wrong.offset
            ));
        }
        let Some(last) = page.last() else {
            return Ok(records);
        };
        offset = last.offset + 1;
        records.extend(page);
        if offset >= log_end {
            return Ok(records);
        }
    }
}

async fn call_until_answered(
    transport: &dyn Transport,
    dst: SocketAddr,
    request: &Request,
) -> Response {
    let retry = RetryPolicy::default();
    let mut attempt = 0;
    loop {
        if let Ok(reply) = transport
            .call(dst, request.encode(), retry.request_timeout)
            .await
        {
            match Response::decode(&reply) {
                Ok(Response::Error(ErrorCode::StorageFailure)) | Err(_) => {}
                Ok(response) => return response,
            }
        }
        attempt += 1;
        madsim::time::sleep(retry.backoff(attempt)).await;
    }
}

/// Where a replicated deployment's clients find the controller and every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatedAddrs {
    pub controller: SocketAddr,
    /// Replica `i` listens at `replicas[i]`.
    pub replicas: Vec<SocketAddr>,
}

/// A partition's leader as a client last learnt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    pub index: u32,
    pub leader_epoch: u32,
    pub addr: SocketAddr,
}

/// A client's metadata cache: every partition's leadership as the controller last told it,
/// refreshed on demand (after a refusal or a timeout), at most once per `min_interval`, one
/// `Metadata` request at a time however many of the client's tasks ask.
pub struct Leaders {
    addrs: ReplicatedAddrs,
    retry: RetryPolicy,
    min_interval: Duration,
    known: tokio::sync::Mutex<Known>,
}

#[derive(Default)]
struct Known {
    partitions: Vec<PartitionState>,
    /// When the last `Metadata` was sent; `None`: never.
    asked: Option<madsim::time::Instant>,
}

impl Leaders {
    pub fn new(addrs: ReplicatedAddrs, retry: RetryPolicy) -> Leaders {
        Leaders {
            addrs,
            retry,
            min_interval: retry.backoff_min,
            known: tokio::sync::Mutex::new(Known::default()),
        }
    }

    pub fn controller(&self) -> SocketAddr {
        self.addrs.controller
    }

    /// The partition's leader as last known, asking the controller first if nothing is known
    /// yet. `None`: no leader (none elected, or the controller has not answered).
    pub async fn leader(&self, transport: &dyn Transport, partition: u32) -> Option<Leader> {
        if self.known.lock().await.asked.is_none() {
            self.refresh(transport).await;
        }
        let known = self.known.lock().await;
        let state = known.partitions.get(partition as usize)?;
        let index = state.leader?;
        Some(Leader {
            index,
            leader_epoch: state.leader_epoch,
            addr: *self.addrs.replicas.get(index as usize)?,
        })
    }

    /// Asks the controller who leads now, unless someone asked less than `min_interval` ago
    /// (their answer is as fresh as ours would be). A partition's state is replaced only by
    /// one at least as new (its leader epoch never goes back), so a late answer cannot undo a
    /// newer one.
    pub async fn refresh(&self, transport: &dyn Transport) {
        let mut known = self.known.lock().await;
        let now = madsim::time::Instant::now();
        if known
            .asked
            .is_some_and(|at| now.duration_since(at) < self.min_interval)
        {
            return;
        }
        known.asked = Some(now);
        let request = Request::Metadata.encode();
        let reply = transport
            .call(self.addrs.controller, request, self.retry.request_timeout)
            .await;
        let Ok(Ok(Response::Leadership { partitions })) = reply.map(|r| Response::decode(&r))
        else {
            return;
        };
        if known.partitions.len() != partitions.len() {
            known.partitions = partitions;
            return;
        }
        for (old, new) in known.partitions.iter_mut().zip(partitions) {
            if new.leader_epoch >= old.leader_epoch {
                *old = new;
            }
        }
    }
}

/// Whether a refusal from a partition's (supposed) leader means "look up the leader again and
/// retry": it is not (or no longer) the leader, or not ready yet.
pub fn leadership_moved(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeader | ErrorCode::StaleLeaderEpoch | ErrorCode::NotReady
    )
}

/// [`read_back`] for a replicated deployment: the leaders from the controller, each partition's
/// whole log from its leader as an observer (`ReplicaFetch` with a replica index no broker has),
/// once all of it is committed, and the store's rows. After the final crash and restart of
/// every node a leader's high watermark comes back only as its followers fetch again, so a
/// partition is read again (after `retry_pause`) until the high watermark its leader reports
/// covers the whole log it served. Gives up with an error once `bound` has passed.
pub async fn read_back_replicated(
    transport: &dyn Transport,
    addrs: &ReplicatedAddrs,
    store: SocketAddr,
    partitions: u32,
    bound: Duration,
) -> Result<ReadBack, String> {
    let deadline = madsim::time::Instant::now() + bound;
    let leaders = Leaders::new(addrs.clone(), RetryPolicy::default());
    let mut logs = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        logs.push(read_committed(transport, &leaders, partition, deadline).await?);
    }
    let mut back = read_back_rows(transport, store).await?;
    back.logs = logs;
    Ok(back)
}

/// How long the final read waits before it reads a partition again.
const READ_AGAIN_AFTER: Duration = Duration::from_millis(5);

/// One partition's whole log from its leader, once the leader's high watermark covers it.
async fn read_committed(
    transport: &dyn Transport,
    leaders: &Leaders,
    partition: u32,
    deadline: madsim::time::Instant,
) -> Result<Vec<FetchedRecord>, String> {
    let mut last = String::from("no leader known");
    while madsim::time::Instant::now() < deadline {
        match leaders.leader(transport, partition).await {
            Some(leader) => match read_from_leader(transport, leader, partition).await {
                Ok(Some(records)) => return Ok(records),
                Ok(None) => last = format!("the high watermark of broker-{} lags", leader.index),
                Err(Attempt::Retry(why)) => last = why,
                Err(Attempt::Fatal(why)) => return Err(why),
            },
            None => last = String::from("no leader known"),
        }
        madsim::time::sleep(READ_AGAIN_AFTER).await;
        leaders.refresh(transport).await;
    }
    Err(format!(
        "partition {partition}: the whole log was not committed in time ({last})"
    ))
}

/// Why one pass over a partition did not return its log.
enum Attempt {
    /// Worth another pass: the leader moved, did not answer, or is not ready.
    Retry(String),
    /// The leader served something that makes no sense.
    Fatal(String),
}

/// One pass over a partition's log at its leader: `Some` records if the high watermark the
/// leader reported at the end covers all it served, `None` if it does not yet.
async fn read_from_leader(
    transport: &dyn Transport,
    leader: Leader,
    partition: u32,
) -> Result<Option<Vec<FetchedRecord>>, Attempt> {
    let retry = RetryPolicy::default();
    let mut records: Vec<FetchedRecord> = Vec::new();
    let mut offset = 0;
    loop {
        let request = Request::ReplicaFetch {
            partition,
            replica: u32::MAX,
            leader_epoch: leader.leader_epoch,
            offset,
            last_epoch: None,
        };
        let reply = transport
            .call(leader.addr, request.encode(), retry.request_timeout)
            .await
            .map_err(|e| Attempt::Retry(format!("broker-{}: {e}", leader.index)))?;
        let (high_watermark, batches) = match Response::decode(&reply) {
            Ok(Response::Replicated {
                high_watermark,
                batches,
            }) => (high_watermark, batches),
            Ok(Response::Error(code)) => {
                return Err(Attempt::Retry(format!("broker-{}: {code}", leader.index)))
            }
            other => {
                return Err(Attempt::Fatal(format!(
                    "broker-{} answered a read of partition {partition} with {other:?}",
                    leader.index
                )))
            }
        };
        if batches.is_empty() {
            return Ok((high_watermark == offset).then_some(records));
        }
        for replicated in batches {
            let batch = replicated.batch;
            if batch.base_offset != offset {
                return Err(Attempt::Fatal(format!(
                    "partition {partition}: a read from offset {offset} returned a batch at {}",
                    batch.base_offset
                )));
            }
            offset = batch.next_offset();
            let base = batch.base_offset;
            records.extend(
                (base..)
                    .zip(batch.records)
                    .map(|(offset, payment)| FetchedRecord { offset, payment }),
            );
        }
    }
}
