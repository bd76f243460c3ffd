//! The history of a run: everything nodes reported and everything the harness did, stamped with
//! simulated time, and its stable `trace_hash`.
//!
//! Checkers read the history; they never drive the run. Entries are appended in the order the
//! single-threaded simulation produced them, so the history is itself deterministic.

use crate::faults::FaultEntry;
use broker_under_test::storage::CrashReport;
use broker_under_test::{Event, NodeName, Observer, Probe};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One thing that happened, when (simulated microseconds since the run started) and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at_us: u64,
    pub node: String,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum What {
    Node(Event),
    Harness(HarnessEvent),
}

/// What the harness did to the world, or saw the network do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum HarnessEvent {
    /// A fault of the schedule started.
    FaultStarted {
        fault: FaultEntry,
    },
    /// The node lost power; its disk threw away what `report` says.
    NodeCrashed {
        report: CrashReport,
    },
    NodeRestarted,
    NodePaused,
    NodeResumed,
    /// The network lost a message from `from` (recorded at the receiver, `node`).
    MessageDropped {
        from: String,
        message: String,
        cause: String,
    },
    MessageDuplicated {
        from: String,
        message: String,
    },
    MessageDelayed {
        from: String,
        message: String,
        delay_us: u64,
    },
    /// Faults stop: the network is whole, crashed nodes restart, paused nodes resume.
    Healed,
    /// Every owed payment is acknowledged, in the log and in the store.
    LivenessReached,
    /// The liveness bound passed with payments still missing.
    LivenessTimedOut {
        missing: u32,
    },
    /// Broker and store are crashed and recovered once more before the final check.
    FinalRecovery,
    /// Planted for the determinism self-test: how many runs this process made before this one.
    PlantedNondeterminism {
        runs_before: u64,
    },
}

/// Collects the history of one run. Shared by every node (as their [`Observer`]), the network
/// shim and the driver.
pub struct Recorder {
    entries: Mutex<Vec<Entry>>,
    /// How often each probe was hit; probes are counted, not part of the trace.
    probes: Mutex<std::collections::BTreeMap<Probe, u64>>,
    steps: AtomicU64,
    max_steps: u64,
}

/// The message a run panics with when it exceeds its step bound; the driver turns it into a
/// `step-limit` anomaly.
pub const STEP_LIMIT_PANIC: &str = "harness step limit exceeded";

impl Recorder {
    pub fn new(max_steps: u64) -> Recorder {
        Recorder {
            entries: Mutex::new(Vec::with_capacity(4096)),
            probes: Mutex::new(std::collections::BTreeMap::new()),
            steps: AtomicU64::new(0),
            max_steps,
        }
    }

    fn now_us() -> u64 {
        madsim::time::TimeHandle::current().elapsed().as_micros() as u64
    }

    /// Counts one step (an event or a message) and stops the run past the bound.
    pub fn step(&self) {
        let steps = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
        if steps > self.max_steps {
            panic!("{STEP_LIMIT_PANIC} ({})", self.max_steps);
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    pub fn harness(&self, node: &str, event: HarnessEvent) {
        self.push(node.to_string(), What::Harness(event));
    }

    fn push(&self, node: String, what: What) {
        self.step();
        let entry = Entry {
            at_us: Self::now_us(),
            node,
            what,
        };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Reads the history so far.
    pub fn with_entries<T>(&self, f: impl FnOnce(&[Entry]) -> T) -> T {
        f(&self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn probes(&self) -> std::collections::BTreeMap<Probe, u64> {
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn take(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Observer for Recorder {
    fn record(&self, node: NodeName, event: Event) {
        self.push(node.to_string(), What::Node(event));
    }

    fn probe(&self, _node: NodeName, probe: Probe) {
        *self
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(probe)
            .or_default() += 1;
    }
}

/// Feeds bytes to an xxh3-128 hasher.
struct HashWriter(xxhash_rust::xxh3::Xxh3);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The stable hash of a history: xxh3-128 over each entry's JSON line, as 32 hex digits. xxh3 is
/// a fixed, published function (unlike std's `DefaultHasher`), and JSON field order is fixed
/// by the types, so the hash is the same on every machine and Rust release.
pub fn trace_hash(entries: &[Entry]) -> String {
    let mut w = HashWriter(xxhash_rust::xxh3::Xxh3::new());
    for entry in entries {
        serde_json::to_writer(&mut w, entry).expect("history entries serialize");
        w.0.update(b"\n");
    }
    format!("{:032x}", w.0.digest128())
}

/// The hash of arbitrary lines, for aggregates.
pub fn hash_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    format!("{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_us: u64, node: &str) -> Entry {
        Entry {
            at_us,
            node: node.into(),
            what: What::Harness(HarnessEvent::Healed),
        }
    }

    /// xxh3-128 of the two JSON lines of `history` below.
    const PINNED: &str = "952a1fc2bcd2339441de5da5e8607c75";

    #[test]
    fn the_trace_hash_is_pinned_and_sensitive_to_every_field() {
        let history = vec![entry(1, "broker"), entry(2, "store")];
        // Pinned: if this changes, every recorded trace hash in the wild changes with it.
        assert_eq!(trace_hash(&history), PINNED);
        assert_eq!(
            trace_hash(&[]),
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
            node: "store".into(),
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
