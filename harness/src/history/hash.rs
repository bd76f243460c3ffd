//! The stable trace hash of a history, and the line hash that aggregates build on.

use super::Entry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The stable hash of a run's history: 128 bits, written as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceHash(pub u128);

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for TraceHash {
    type Err = String;

    fn from_str(s: &str) -> Result<TraceHash, String> {
        if s.len() != 32 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("trace hash '{s}' is not 32 hex digits"));
        }
        u128::from_str_radix(s, 16)
            .map(TraceHash)
            .map_err(|e| format!("trace hash '{s}': {e}"))
    }
}

impl Serialize for TraceHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TraceHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How many bytes of encoded entries are gathered before the hasher takes them: xxh3's
/// streaming update has a fixed cost per call.
const HASH_CHUNK: usize = 64 * 1024;

/// The stable hash of a history: xxh3-128 over the entries' binary encoding (see `encode`), as
/// 32 hex digits. xxh3 is a fixed, published function (unlike std's `DefaultHasher`), and the
/// encoding follows the serde derives, as the JSON history does, so the hash is the same on
/// every machine and Rust release. (Until this encoding, the hash was taken over the JSON lines;
/// JSON text made most of the hash's cost, and the hash of a run is all a sweep keeps of it.)
pub fn trace_hash(entries: &[Entry]) -> TraceHash {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut chunk = Vec::with_capacity(HASH_CHUNK + 1024);
    for entry in entries {
        super::encode::encode(&mut chunk, entry);
        if chunk.len() >= HASH_CHUNK {
            hasher.update(&chunk);
            chunk.clear();
        }
    }
    hasher.update(&chunk);
    TraceHash(hasher.digest128())
}

/// The hash of arbitrary lines, for aggregates.
pub fn hash_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{HarnessEvent, What};
    use broker_under_test::{Event, NodeName};

    fn entry(at_us: u64, node: &str) -> Entry {
        Entry {
            at_us,
            node: node.parse().unwrap(),
            what: What::Harness(HarnessEvent::Healed),
        }
    }

    /// xxh3-128 of the binary encoding of the two entries of `history` below.
    const PINNED: &str = "6c13cbf80de26378cc4dff396a72138a";

    #[test]
    fn the_trace_hash_is_pinned_and_sensitive_to_every_field() {
        let history = vec![entry(1, "broker"), entry(2, "store")];
        // Pinned: if this changes, every recorded trace hash in the wild changes with it.
        assert_eq!(trace_hash(&history).to_string(), PINNED);
        assert_eq!(PINNED.parse::<TraceHash>(), Ok(trace_hash(&history)));
        assert!("6c13cbf8".parse::<TraceHash>().is_err());
        assert!("6c13cbf80de26378cc4dff396a72138g"
            .parse::<TraceHash>()
            .is_err());
        assert_eq!(
            trace_hash(&[]).to_string(),
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b""))
        );
        assert_ne!(
            trace_hash(&history),
            trace_hash(&[entry(1, "broker"), entry(3, "store")])
        );
        assert_ne!(
            trace_hash(&history),
            trace_hash(&[entry(1, "broker"), entry(2, "consumer")])
        );
        assert_ne!(trace_hash(&history), trace_hash(&history[..1]));
    }

    #[test]
    fn entries_serialize_flat_with_their_event_name() {
        let json = serde_json::to_string(&entry(5, "broker")).unwrap();
        assert_eq!(json, r#"{"at_us":5,"node":"broker","event":"healed"}"#);
        let node = Entry {
            at_us: 7,
            node: NodeName::Store.into(),
            what: What::Node(Event::StoreRecovered {
                rows: 1,
                truncated_bytes: 0,
            }),
        };
        let json = serde_json::to_string(&node).unwrap();
        assert_eq!(
            json,
            r#"{"at_us":7,"node":"store","event":"store-recovered","rows":1,"truncated_bytes":0}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), node);
    }
}
