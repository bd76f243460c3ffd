//! The store (payment provider): the downstream database, on its own node with its own disk.
//!
//! Safety: a payment is applied at most once per payment id, and an apply is acknowledged only
//! after it is synced, so an acknowledged payment survives the store's crash.

use crate::bugs::Bug;
use crate::codec::{
    frame, scan_frames, DecodeError, ErrorCode, Payment, PaymentId, Reader, Request, Response,
    Tail, Writer, FRAME_BODY_LEN_MAX,
};
use crate::node::{NodeCtx, NodeError};
use crate::observe::{Event, Probe};
use crate::storage::StorageError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher};

/// The store's table of applied payments, one frame per row.
pub const APPLIED_FILE: &str = "applied.rows";

/// One applied payment, with the log position it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRow {
    pub payment: Payment,
    pub partition: u32,
    pub offset: u64,
}

impl StoreRow {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.payment(&self.payment);
        w.u32(self.partition);
        w.u64(self.offset);
        frame(&w.buf)
    }

    fn decode(body: &[u8]) -> Result<StoreRow, DecodeError> {
        let mut r = Reader::new(body);
        let row = StoreRow {
            payment: r.payment()?,
            partition: r.u32()?,
            offset: r.u64()?,
        };
        r.finish()?;
        Ok(row)
    }
}

/// Reads the store's rows back: the whole rows in order, the valid length, and how it ended.
pub fn recover_rows(bytes: &[u8]) -> (Vec<StoreRow>, usize, Tail) {
    let (bodies, _, mut tail) = scan_frames(bytes);
    let mut rows = Vec::with_capacity(bodies.len());
    let mut valid_len = 0;
    for body in bodies {
        match StoreRow::decode(body) {
            Ok(row) => rows.push(row),
            Err(_) => {
                tail = Tail::Corrupt;
                break;
            }
        }
        valid_len += crate::codec::FRAME_HEADER_LEN + body.len();
    }
    (rows, valid_len, tail)
}

/// The rows file, whole, and whether a read error was taken for its end: only the planted
/// read-error-as-eof sees one (to any other store an I/O error is fatal, see `cluster`). It
/// takes what was read before the error (nothing) for the whole file, and the rest of it, as
/// the file's size shows, for a torn tail to cut.
async fn read_rows_file(ctx: &NodeCtx) -> Result<(Vec<u8>, bool), NodeError> {
    match ctx.storage.read(APPLIED_FILE).await {
        Err(StorageError::Io(_)) if ctx.bug(Bug::ReadErrorAsEof) => Ok((Vec::new(), true)),
        read => Ok((read?, false)),
    }
}

/// Reads the rows back and durably cuts a torn or corrupt tail (and, for the planted
/// read-error-as-eof, everything after a read error). Returns the rows and how many bytes were
/// cut as the read showed them.
async fn recover(ctx: &NodeCtx) -> Result<(Vec<StoreRow>, u64), NodeError> {
    let (bytes, read_failed) = read_rows_file(ctx).await?;
    let (rows, valid_len, _) = recover_rows(&bytes);
    let truncated_bytes = (bytes.len() - valid_len) as u64;
    if truncated_bytes > 0 || read_failed {
        ctx.storage.truncate(APPLIED_FILE, valid_len).await?;
        ctx.probe(Probe::StoreTornRowDropped);
        if crate::codec::checksum_fails_at(&bytes, valid_len) {
            ctx.probe(Probe::ChecksumRejectedFrame);
        }
    }
    Ok((rows, truncated_bytes))
}

/// Runs the store until the node is killed.
pub async fn run_store(ctx: NodeCtx) -> Result<(), NodeError> {
    let storage = ctx.storage.clone();
    let (mut rows, truncated_bytes) = recover(&ctx).await?;
    // The planted `store-ack-before-sync` leaves syncing to a background flusher.
    let _flusher = ctx.bug(Bug::StoreAckBeforeSync).then(|| {
        let storage = storage.clone();
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(std::time::Duration::from_millis(50)).await;
                if storage.sync(APPLIED_FILE).await.is_err() {
                    return;
                }
            }
        })
    });
    tracing::debug!(rows = rows.len(), truncated_bytes, "store recovered");
    ctx.record(Event::StoreRecovered {
        rows: rows.len() as u32,
        truncated_bytes,
    });
    // Only looked up, never iterated, so a hash set spares the string comparisons a BTreeSet
    // makes per apply. Fixed keys, not RandomState: under madsim a RandomState takes its keys
    // from the run's seeded generator, and that draw would shift every later one.
    let mut applied: HashSet<PaymentId, BuildHasherDefault<DefaultHasher>> =
        rows.iter().map(|r| r.payment.id.clone()).collect();
    while let Some(incoming) = ctx.transport.next_request().await {
        let response = match Request::decode(&incoming.body) {
            Ok(Request::ListRows { from, max_rows }) => list_rows(&rows, from, max_rows),
            Ok(Request::Apply {
                payment,
                partition,
                offset,
            }) => {
                let duplicate = applied.contains(&payment.id) && !ctx.bug(Bug::StoreNoDedup);
                // A row that cannot be framed could not be read back: refuse it unwritten.
                let row_len = payment.encoded_len() + 4 + 8;
                if !duplicate && row_len > FRAME_BODY_LEN_MAX as u64 {
                    tracing::debug!(payment = %payment.id, row_len, "row too large");
                    let response = Response::Error(ErrorCode::RecordTooLarge);
                    ctx.transport.reply(&incoming, response.encode());
                    continue;
                }
                if !duplicate {
                    let row = StoreRow {
                        payment,
                        partition,
                        offset,
                    };
                    storage.append(APPLIED_FILE, &row.encode()).await?;
                    if !ctx.bug(Bug::StoreAckBeforeSync) {
                        storage.sync(APPLIED_FILE).await?;
                    }
                    applied.insert(row.payment.id.clone());
                    ctx.record(Event::StoreApplied {
                        payment: row.payment.id.clone(),
                        partition,
                        offset,
                        duplicate,
                    });
                    rows.push(row);
                } else {
                    ctx.probe(Probe::StoreDedupHit);
                    tracing::debug!(payment = %payment.id, "re-delivered payment already applied");
                    ctx.record(Event::StoreApplied {
                        payment: payment.id,
                        partition,
                        offset,
                        duplicate,
                    });
                }
                Response::Applied { duplicate }
            }
            Ok(_) | Err(_) => Response::Error(ErrorCode::Malformed),
        };
        ctx.transport.reply(&incoming, response.encode());
    }
    Ok(())
}

/// Rows from the `from`-th, at most `max_rows` and (after the first) at most a frame's worth
/// of payments, like a fetch.
fn list_rows(rows: &[StoreRow], from: u32, max_rows: u32) -> Response {
    let mut bytes = 0;
    let page = rows
        .iter()
        .skip(from as usize)
        .take(max_rows.clamp(1, LIST_ROWS_MAX) as usize)
        .take_while(|row| {
            let first = bytes == 0;
            bytes += row.payment.encoded_len() + 4 + 8;
            first || bytes <= LIST_BYTES_MAX
        })
        .cloned()
        .collect();
    Response::Rows {
        rows: page,
        total: rows.len() as u32,
    }
}

/// The most rows one `ListRows` answer carries.
const LIST_ROWS_MAX: u32 = 500;
/// The most payment bytes one `ListRows` answer carries after its first row.
const LIST_BYTES_MAX: u64 = 1 << 19;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_and_a_torn_row_is_dropped() {
        let rows: Vec<StoreRow> = (0..3)
            .map(|n| StoreRow {
                payment: Payment::generate(0, n, 2),
                partition: n % 2,
                offset: u64::from(n),
            })
            .collect();
        let mut bytes: Vec<u8> = rows.iter().flat_map(StoreRow::encode).collect();
        let whole = bytes.len();
        bytes.extend(&rows[0].encode()[..10]);
        let (got, valid_len, tail) = recover_rows(&bytes);
        assert_eq!(got, rows);
        assert_eq!((valid_len, tail), (whole, Tail::Torn));
    }
}
