//! The pipeline's formats: JSON messages between nodes, CRC-checked frames on disk, and the one
//! call helper every client uses (retry on silence, give up only when the node is dying).

use harness::system::kit::{CallError, Payment, StoreRow, Transport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// A request to the relay (`Produce`, `Fetch`) or to the store (`Apply`, `ListRows`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Payments of one producer, in its order; `seq` is the index of the first, for labels.
    Produce {
        producer: u32,
        seq: u32,
        payments: Vec<Payment>,
    },
    /// Up to `max` records of `partition` from offset `from`.
    Fetch { partition: u32, from: u64, max: u32 },
    /// Apply one record; the row says where in the log it came from.
    Apply { row: StoreRow },
    /// Every row the store holds.
    ListRows,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Reply {
    /// Where each payment of the produce sits: (partition, offset), in request order.
    Produced {
        positions: Vec<(u32, u64)>,
    },
    /// Consecutive records from the fetch's offset: (offset, payment).
    Records {
        records: Vec<(u64, Payment)>,
    },
    Applied {
        duplicate: bool,
    },
    Rows {
        rows: Vec<StoreRow>,
    },
}

/// JSON bytes of a message. Serialising these plain types cannot fail.
pub fn encode(message: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(message).expect("messages serialise")
}

/// A message decoded, or `None` for bytes that are not one (a garbled datagram is dropped).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// The partition a payment belongs to: FNV-1a of its id, so every incarnation of every node
/// agrees without sharing state (std's hasher is not promised to be stable).
pub fn partition_of(id: &str, partitions: u32) -> u32 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(partitions.max(1))) as u32
}

/// Header of a disk frame: body length and CRC-32 of the body, little-endian.
const HEADER: usize = 8;

/// One value as a disk frame. The CRC lets recovery tell a torn or garbled tail from data.
pub fn frame(value: &impl Serialize) -> Vec<u8> {
    let body = encode(value);
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The values of a file's valid frames, and the length they cover. Reading stops at the first
/// frame that is short, fails its CRC or does not decode: everything after it is a torn tail.
pub fn unframe<T: DeserializeOwned>(bytes: &[u8]) -> (Vec<T>, usize) {
    let mut values = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Some(value) = decode(body) else { break };
        values.push(value);
        at += HEADER + len;
    }
    (values, at)
}

/// How long a client waits for one reply before sending again.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// Sends `request` until a reply arrives. Every request of this pipeline is idempotent (the
/// relay and the store deduplicate by payment id), so resending after silence is safe.
/// `Err` only when this node's transport is closed: its incarnation is dying.
pub async fn call(
    transport: &dyn Transport,
    dst: SocketAddr,
    request: &Request,
    mut on_retry: impl FnMut(u32),
) -> Result<Reply, CallError> {
    let bytes = encode(request);
    let mut attempt = 0;
    loop {
        if attempt > 0 {
            on_retry(attempt);
        }
        attempt += 1;
        match transport.call(dst, bytes.clone(), CALL_TIMEOUT).await {
            Ok(reply) => match decode(&reply) {
                Some(reply) => return Ok(reply),
                None => continue,
            },
            Err(CallError::Timeout) => continue,
            Err(CallError::Closed) => return Err(CallError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_or_garbled_tail_is_cut() {
        let mut bytes = frame(&"first");
        bytes.extend(frame(&"second"));
        let whole = bytes.len();
        let (values, len) = unframe::<String>(&bytes);
        assert_eq!(
            (values, len),
            (vec!["first".into(), "second".into()], whole)
        );
        let first_len = frame(&"first").len();
        let (values, len) = unframe::<String>(&bytes[..whole - 2]);
        assert_eq!((values.len(), len), (1, first_len));
        bytes[whole - 1] ^= 0xff;
        assert_eq!(unframe::<String>(&bytes).1, first_len);
    }

    #[test]
    fn every_partition_is_used_and_the_choice_is_stable() {
        let parts: std::collections::BTreeSet<u32> = (0..60)
            .map(|n| partition_of(&format!("p-0-{n}"), 3))
            .collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(partition_of("p-1-7", 3), partition_of("p-1-7", 3));
    }
}
