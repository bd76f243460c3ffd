//! The store: applies each payment once, durably, and lists its rows.
//!
//! Its rows file is both the data and the dedup set: a payment is applied when its row is
//! synced, and recovery rebuilds "already applied" from the rows that survived. Like the
//! relay it handles one request at a time, so an answer never precedes its sync.

use crate::node::{Node, Stop};
use crate::wire::{self, Reply, Request};
use harness::system::kit::{Event, PaymentId, Probe, Storage, StoreRow, Transport};
use std::collections::BTreeSet;

const ROWS: &str = "rows";

pub(crate) async fn run(node: Node) -> Result<(), Stop> {
    let mut rows = recover(&node).await?;
    let mut applied: BTreeSet<PaymentId> = rows.iter().map(|r| r.payment.id.clone()).collect();
    while let Some(incoming) = node.transport.next_request().await {
        let Some(request) = wire::decode::<Request>(&incoming.body) else {
            continue;
        };
        let reply = match request {
            Request::Apply { row } => {
                let duplicate = applied.contains(&row.payment.id);
                if duplicate {
                    node.probe(Probe::StoreDedupHit);
                } else {
                    node.disk.append(ROWS, &wire::frame(&row)).await?;
                    node.disk.sync(ROWS).await?;
                    applied.insert(row.payment.id.clone());
                }
                node.record(Event::StoreApplied {
                    payment: row.payment.id.clone(),
                    partition: row.partition,
                    offset: row.offset,
                    duplicate,
                });
                if !duplicate {
                    rows.push(row);
                }
                Reply::Applied { duplicate }
            }
            Request::ListRows => Reply::Rows { rows: rows.clone() },
            Request::Produce { .. } | Request::Fetch { .. } => continue,
        };
        node.transport.reply(&incoming, wire::encode(&reply));
    }
    Ok(())
}

/// The rows that survived, with a torn tail cut off.
async fn recover(node: &Node) -> Result<Vec<StoreRow>, Stop> {
    let bytes = node.disk.read(ROWS).await?;
    let (rows, valid) = wire::unframe::<StoreRow>(&bytes);
    if valid < bytes.len() {
        node.disk.truncate(ROWS, valid).await?;
        node.probe(Probe::StoreTornRowDropped);
    }
    node.record(Event::StoreRecovered {
        rows: rows.len() as u32,
        truncated_bytes: (bytes.len() - valid) as u64,
    });
    Ok(rows)
}
