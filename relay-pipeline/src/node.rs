//! What every node of the pipeline runs with: its name, network, disk, observer and the run's
//! configuration, and the one error type its role returns.

use crate::Config;
use harness::system::kit::StorageError;
use harness::system::kit::{CallError, Event, NodeName, Observer, Probe, SimStorage, SimTransport};
use std::fmt;
use std::sync::Arc;

/// One incarnation of one node.
pub(crate) struct Node {
    pub name: NodeName,
    pub transport: SimTransport,
    pub disk: SimStorage,
    pub observer: Arc<dyn Observer>,
    pub config: Arc<Config>,
    /// How many times this node started before (0 at the first start).
    pub incarnation: u64,
}

impl Node {
    pub fn record(&self, event: Event) {
        self.observer.record(self.name, event);
    }

    pub fn probe(&self, probe: Probe) {
        self.observer.probe(self.name, probe);
    }
}

/// Why a node's role stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The node is dying (killed): its disk handle or network endpoint is gone. Quiet.
    Dying,
    /// Something that should never happen in this pipeline: the node panics loudly.
    Broken(String),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Stop {
        match e {
            StorageError::Dead => Stop::Dying,
            other => Stop::Broken(other.to_string()),
        }
    }
}

impl From<CallError> for Stop {
    fn from(_: CallError) -> Stop {
        // `wire::call` retries timeouts itself; only a closed transport comes back.
        Stop::Dying
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Dying => f.write_str("dying"),
            Stop::Broken(why) => f.write_str(why),
        }
    }
}
