//! The history of a run: everything nodes reported and everything the harness did, stamped with
//! simulated time, and its stable `trace_hash`.
//!
//! Checkers read the history; they never drive the run. Entries are appended in the order the
//! single-threaded simulation produced them, so the history is itself deterministic.

mod actor;
mod encode;
mod hash;
mod recorder;

pub use actor::Actor;
pub use hash::{hash_lines, trace_hash, TraceHash};
pub use recorder::{Recorder, STEP_LIMIT_PANIC};

use crate::schedule::FaultEntry;
use broker_under_test::storage::CrashReport;
use broker_under_test::{Event, NodeName};
use serde::{Deserialize, Serialize};

/// One thing that happened, when (simulated microseconds since the run started) and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at_us: u64,
    /// Who it is about (a node, every node, or the harness); `node` in the JSON.
    pub node: Actor,
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
        from: NodeName,
        message: String,
        cause: String,
    },
    MessageDuplicated {
        from: NodeName,
        message: String,
    },
    MessageDelayed {
        from: NodeName,
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
