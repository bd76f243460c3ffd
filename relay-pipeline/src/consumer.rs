//! The consumer: reads every partition from the relay in offset order, applies each record to
//! the store, and keeps its cursor (the next offset per partition) on its own disk.
//!
//! The cursor moves past a batch only after the store acknowledged every record of it, and is
//! saved with an atomic replace: a crash rewinds to the last saved cursor and re-applies what
//! followed, which the store absorbs as duplicates. Nothing is ever skipped.

use crate::node::{Node, Stop};
use crate::wire::{self, Reply, Request};
use crate::RelayBug;
use harness::system::kit::{Event, NodeName, Payment, Probe, Storage, StoreRow};
use std::time::Duration;

const CURSOR: &str = "cursor";
/// Records per fetch.
const FETCH_MAX: u32 = 32;
/// How long to wait when no partition had anything new.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub(crate) async fn run(node: Node) -> Result<(), Stop> {
    let mut cursor = load_cursor(&node).await?;
    // Partition 0 first: the checker counts consumer incarnations by it.
    for (partition, &offset) in cursor.iter().enumerate() {
        node.record(Event::ConsumerResumed {
            partition: partition as u32,
            offset,
        });
    }
    if cursor.iter().any(|&offset| offset > 0) {
        node.probe(Probe::ConsumerResumedFromCommit);
    }
    loop {
        let mut idle = true;
        for partition in 0..node.config.partitions {
            let from = cursor[partition as usize];
            let records = fetch(&node, partition, from).await?;
            let Some(&(last, _)) = records.last() else {
                continue;
            };
            idle = false;
            node.record(Event::Fetched {
                partition,
                from,
                records: records.iter().map(|(o, p)| (*o, p.id.clone())).collect(),
            });
            cursor[partition as usize] = last + 1;
            if node.config.bug == Some(RelayBug::CursorBeforeApply) {
                save_cursor(&node, &cursor, partition).await?;
            }
            apply_all(&node, partition, records).await?;
            if node.config.bug != Some(RelayBug::CursorBeforeApply) {
                save_cursor(&node, &cursor, partition).await?;
            }
        }
        if idle {
            madsim::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// The saved cursor, or the start of every partition. `replace` is atomic, so the file holds
/// one whole cursor or none.
async fn load_cursor(node: &Node) -> Result<Vec<u64>, Stop> {
    let bytes = node.disk.read(CURSOR).await?;
    let mut cursor: Vec<u64> = if bytes.is_empty() {
        Vec::new()
    } else {
        wire::decode(&bytes).ok_or_else(|| Stop::Broken("the cursor file is corrupt".into()))?
    };
    cursor.resize(node.config.partitions as usize, 0);
    Ok(cursor)
}

async fn save_cursor(node: &Node, cursor: &[u64], partition: u32) -> Result<(), Stop> {
    node.disk.replace(CURSOR, &wire::encode(&cursor)).await?;
    node.record(Event::OffsetCommitted {
        partition,
        offset: cursor[partition as usize],
    });
    Ok(())
}

/// Records of `partition` from `from`, as the relay serves them (consecutive offsets).
async fn fetch(node: &Node, partition: u32, from: u64) -> Result<Vec<(u64, Payment)>, Stop> {
    let request = Request::Fetch {
        partition,
        from,
        max: FETCH_MAX,
    };
    let relay = NodeName::Broker.sim_addr();
    match wire::call(&node.transport, relay, &request, |_| {}).await? {
        Reply::Records { records } => Ok(records),
        other => Err(Stop::Broken(format!("a fetch answered {other:?}"))),
    }
}

/// Applies every record in order, each until the store acknowledges it.
async fn apply_all(node: &Node, partition: u32, records: Vec<(u64, Payment)>) -> Result<(), Stop> {
    let store = NodeName::Store.sim_addr();
    for (offset, payment) in records {
        let id = payment.id.clone();
        let request = Request::Apply {
            row: StoreRow {
                payment,
                partition,
                offset,
            },
        };
        let Reply::Applied { duplicate } =
            wire::call(&node.transport, store, &request, |_| {}).await?
        else {
            return Err(Stop::Broken(format!("an apply of {id} got another reply")));
        };
        node.record(Event::ApplyAcked {
            partition,
            offset,
            payment: id,
            duplicate,
        });
    }
    Ok(())
}
