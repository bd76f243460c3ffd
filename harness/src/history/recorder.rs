//! The `Recorder`: collects one run's history from every node (as their `Observer`), the
//! network shim and the driver, counts probes beside it, and bounds the run in steps.

use super::{Actor, Entry, HarnessEvent, What};
use broker_under_test::{Event, NodeName, Observer, Probe};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Collects the history of one run. Shared by every node (as their [`Observer`]), the network
/// shim and the driver.
pub struct Recorder {
    entries: Mutex<Vec<Entry>>,
    /// How often each probe was hit; probes are counted, not part of the trace.
    probes: Mutex<BTreeMap<Probe, u64>>,
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
            probes: Mutex::new(BTreeMap::new()),
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

    /// Records what the harness did to `node` (or to every node, or as the harness).
    pub fn harness(&self, node: impl Into<Actor>, event: HarnessEvent) {
        self.push(node.into(), What::Harness(event));
    }

    fn push(&self, node: Actor, what: What) {
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

    pub fn probes(&self) -> BTreeMap<Probe, u64> {
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
        self.push(node.into(), What::Node(event));
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
