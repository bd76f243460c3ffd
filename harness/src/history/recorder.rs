//! The `Recorder`: collects one run's history from every node (as their `Observer`), the
//! network shim and the driver, counts probes beside it, and bounds the run in steps.

use super::{Entry, HarnessEvent, What};
use broker_under_test::{Event, Observer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Collects the history of one run. Shared by every node (as their [`Observer`]), the network
/// shim and the driver.
pub struct Recorder {
    entries: Mutex<Vec<Entry>>,
    /// How often each probe was hit; probes are counted, not part of the trace.
    probes: Mutex<std::collections::BTreeMap<&'static str, u64>>,
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
        self.push(node, What::Harness(event));
    }

    fn push(&self, node: &str, what: What) {
        self.step();
        let entry = Entry {
            at_us: Self::now_us(),
            node: node.to_string(),
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

    pub fn probes(&self) -> std::collections::BTreeMap<String, u64> {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    pub fn take(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Observer for Recorder {
    fn record(&self, node: &str, event: Event) {
        self.push(node, What::Node(event));
    }

    fn probe(&self, _node: &str, name: &'static str) {
        *self
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default() += 1;
    }
}
