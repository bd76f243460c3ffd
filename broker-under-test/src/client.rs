//! An operator's read client: every record of the log through the broker's `Fetch`, every row
//! of the store through its `ListRows`. The harness's final read uses it, so that what it
//! judges is what the system itself serves, not a decoding of its files.

use crate::codec::{ErrorCode, FetchedRecord, Request, Response};
use crate::node::RetryPolicy;
use crate::store::StoreRow;
use crate::transport::Transport;
use std::net::SocketAddr;

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
    let mut back = ReadBack::default();
    for partition in 0..partitions {
        back.logs
            .push(read_partition(transport, broker, partition).await?);
    }
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
