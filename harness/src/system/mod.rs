//! The seam between the harness and a system under test: everything the harness needs from a
//! pipeline to deploy it on madsim, fault it, and read back what it holds.
//!
//! A system is a payment pipeline with four roles: producers that owe payments, a log server
//! (the "broker") that orders them into partitions, a consumer that carries them from the log to
//! a store, and the store that applies each one. The harness decides *when* nodes crash, pause
//! and restart and what the network does to each message; the system decides *how* (its own
//! processes, disks and recovery). Its nodes report what they do as [`kit::Event`]s through the
//! [`Observer`] they are given: those reports are the history the checker judges. After the
//! final crash and recovery, the harness asks the system to read its whole log and all its
//! store's rows **through its own client API** ([`Deployment::final_read`]): the checker never
//! decodes a system's files.
//!
//! [`BrokerSystem`] (the Kafka-like broker of this repository) is one implementation; a second,
//! independent one is the workspace's `relay-pipeline` crate.
//!
//! # The contract, in short
//!
//! - Deploy one madsim node per name of [`node_names`], at the address
//!   [`NodeName::sim_addr`] gives it, and make every message between them pass through the
//!   [`NetFaults`] hook (the kit's [`SimTransport`](kit::SimTransport) does both).
//! - Report through the [`Observer`], at the moment it becomes true (the variants of
//!   [`kit::Event`]):
//!   - producer: `Outboxed` when a payment is durably owed (again after each restart, for
//!     what is still unacknowledged); `ProduceSent` for each send (counted, not judged);
//!     `ProduceAcked` when the log acknowledges payments, payment `i` at `base_offset + i` (a
//!     batch acknowledged at scattered offsets is reported as several events); its `base_seq`
//!     is the producer's order of sends on that partition, and in that order a producer's
//!     acknowledged offsets must increase (`nonmonotonic-send`); `PaymentRefused` for a payment
//!     refused before it was owed (legitimate only above the kit's 1 MiB frame limit);
//!   - fields of an event that mean nothing to a system (an epoch, a producer id) may be 0;
//!   - log: `BatchAppended` when a batch is appended at `base_offset`;
//!   - consumer: `ConsumerResumed` for every partition at each start (partition 0 first: it
//!     marks a new incarnation), `Fetched` for each read, `OffsetCommitted` for each commit;
//!   - store: `StoreApplied` when a payment is applied (`duplicate: false`) or seen again.
//!
//!   Other events are free for the system's own use; the checker ignores them.
//! - Answer [`Deployment::final_read`] with every record of every partition (offset order) and
//!   every row of the store, as the system itself would serve them.

mod broker;

use crate::scenario::Scenario;
use broker_under_test::storage::{CrashReport, IoInjector, Tear};
use broker_under_test::transport::{MessageKind, NetFaults};
use broker_under_test::{Bugs, NodeName, Observer};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

pub use crate::check::Durable;
pub use crate::sim::messages::MessageClass;
pub use broker::BrokerSystem;

/// The address a final read's client node should take: outside every address the system's
/// nodes use, so the network's fault hook lets its messages through untouched.
pub const READER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)), 9000);

/// The node a final read's client runs on, at [`READER_ADDR`], killed when this is dropped:
/// also when the harness gives up on a read that does not finish in time and drops its
/// future. (madsim does not tear a runtime down when it is dropped, so a node left running
/// would keep the whole run in memory.)
pub struct ReaderNode {
    node: madsim::runtime::NodeHandle,
}

impl ReaderNode {
    /// Creates the node on the current madsim runtime.
    pub fn new() -> ReaderNode {
        let node = madsim::runtime::Handle::current()
            .create_node()
            .name("final-read")
            .ip(READER_ADDR.ip())
            .build();
        ReaderNode { node }
    }

    /// Runs the read on the node.
    pub fn spawn<F>(&self, read: F) -> madsim::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.node.spawn(read)
    }
}

impl Default for ReaderNode {
    fn default() -> ReaderNode {
        ReaderNode::new()
    }
}

impl Drop for ReaderNode {
    fn drop(&mut self) {
        if let Ok(handle) = madsim::runtime::Handle::try_current() {
            handle.kill(self.node.id());
        }
    }
}

/// The pieces a system under test builds on, re-exported so that a system needs only this
/// crate: node names, the event vocabulary, payments, the simulated disk with its crash model,
/// and the request/reply transport whose every message passes the harness's fault hook.
pub mod kit {
    pub use broker_under_test::codec::{Payment, PaymentId};
    pub use broker_under_test::node::RetryPolicy;
    pub use broker_under_test::storage::{
        CrashReport, DiskLatency, IoInjector, IoOp, SimDisk, SimStorage, Storage, StorageError,
        Tear,
    };
    pub use broker_under_test::store::StoreRow;
    pub use broker_under_test::transport::{
        CallError, Delivery, Incoming, MessageKind, NetFaults, NoFaults, SimTransport, Transport,
    };
    pub use broker_under_test::{Event, NodeName, Observer, Probe};
}

/// A boxed future, as the seam's async methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a system is given to deploy itself for one run.
pub struct Setup<'a> {
    /// The scenario: its workload (producers, payments, partitions, sizes) and limits.
    pub scenario: &'a Scenario,
    /// The run's seed, for anything the system draws (payment contents, jitter).
    pub seed: u64,
    /// The planted bugs of this repository's broker, for the systems that plant them.
    pub bugs: Bugs,
    /// The network fault hook every message must pass.
    pub net: Arc<dyn NetFaults>,
    /// Where nodes report their events.
    pub observer: Arc<dyn Observer>,
}

/// A system under test: how to deploy it, and how to describe its messages.
pub trait System: Send + Sync + 'static {
    /// Its name, as reports and artifacts show it. Plans compare systems by name, so two
    /// configurations of one system (a planted bug on or off) should have different names.
    fn name(&self) -> &str;

    /// The most brokers it deploys: a scenario with more (`workload.brokers`) is refused
    /// before anything starts, with a line that says so. The default is the single broker;
    /// a system that replicates says how far.
    fn max_brokers(&self) -> u32 {
        1
    }

    /// Creates and starts every node of [`node_names`] on the current madsim runtime.
    fn deploy(&self, setup: Setup<'_>) -> Box<dyn Deployment>;

    /// A message's class and a short label, for timelines and fault records. The default
    /// knows only its size.
    fn describe(&self, kind: MessageKind, request_id: u64, body: &[u8]) -> MessageView {
        let _ = request_id;
        MessageView {
            class: match kind {
                MessageKind::Request => MessageClass::OtherRequest,
                MessageKind::Reply => MessageClass::OtherReply,
            },
            label: format!("{} bytes", body.len()),
            payments: Vec::new(),
        }
    }
}

/// One message as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// Which lane of the timeline it belongs to.
    pub class: MessageClass,
    /// A short label ("produce p0 seq 3..5").
    pub label: String,
    /// The payments it carries, for following one payment through the timeline.
    pub payments: Vec<String>,
}

/// A deployed system: the operator's verbs the harness uses to fault it, and its final read.
pub trait Deployment: Send + Sync {
    /// Kills the node (power loss): its tasks stop, and its disk loses unsynced writes except
    /// what `tear` keeps of each file (`tear(file, unsynced_bytes)`).
    fn kill(&self, node: NodeName, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport;
    /// Starts a killed node again, from what its disk holds.
    fn restart(&self, node: NodeName);
    /// Freezes every task of the node; its messages wait.
    fn pause(&self, node: NodeName);
    /// Unfreezes a paused node.
    fn resume(&self, node: NodeName);
    /// Opens (`Some`) or closes (`None`) a window of I/O errors on the node's disk: while open,
    /// `injector(op, file)` says which storage operations fail (the kit's
    /// [`SimDisk::set_io_errors`](kit::SimDisk::set_io_errors) carries it out, with the
    /// kernel's semantics). Returns whether the system carried it out: the default cannot, and
    /// a scenario with I/O errors then tests nothing of them for this system.
    fn set_io_errors(&self, node: NodeName, injector: Option<IoInjector>) -> bool {
        let _ = (node, injector);
        false
    }
    /// Reads every record of the log and every row of the store through the system's own
    /// client API, after the final recovery; an error says why it could not (a node that does
    /// not answer within the harness's bound fails the run).
    fn final_read(&self) -> BoxFuture<'_, Result<Durable, String>>;

    /// Damages the synced bytes of `node`'s log of partition `log` (the `rot` fault): `damage`
    /// maps the file's length to the region hit. Returns whether a byte changed; a system
    /// without logs to damage keeps the default, and `rot` faults do nothing to it.
    fn damage_log(
        &self,
        node: NodeName,
        log: u32,
        damage: &dyn Fn(usize) -> broker_under_test::storage::Damage,
    ) -> bool {
        let _ = (node, log, damage);
        false
    }
}

/// The nodes a scenario deploys, in the order they are created: broker, store, consumer, then
/// the producers by index. A replicated scenario (`workload.brokers > 1`) has the replicas
/// `broker-0..n` and the `controller` in the broker's place.
pub fn node_names(scenario: &Scenario) -> Vec<NodeName> {
    let mut names = durable_nodes(scenario);
    names.push(NodeName::Consumer);
    names.extend((0..scenario.workload.producers).map(NodeName::Producer));
    names
}

/// The nodes whose disks the final read depends on, in the order the final recovery crashes
/// them: the broker (or the replicas and the controller), then the store.
pub fn durable_nodes(scenario: &Scenario) -> Vec<NodeName> {
    let w = &scenario.workload;
    let mut names = if w.replicated() {
        let mut replicas: Vec<NodeName> = (0..w.brokers).map(NodeName::Replica).collect();
        replicas.push(NodeName::Controller);
        replicas
    } else {
        vec![NodeName::Broker]
    };
    names.push(NodeName::Store);
    names
}

/// A shared handle on a system, as a run plan holds it: compared and printed by name.
#[derive(Clone)]
pub struct SystemRef(pub Arc<dyn System>);

impl SystemRef {
    /// Wraps a system.
    pub fn new(system: impl System) -> SystemRef {
        SystemRef(Arc::new(system))
    }
}

impl Default for SystemRef {
    /// This repository's broker.
    fn default() -> SystemRef {
        SystemRef::new(BrokerSystem)
    }
}

impl std::ops::Deref for SystemRef {
    type Target = dyn System;
    fn deref(&self) -> &(dyn System + 'static) {
        &*self.0
    }
}

impl fmt::Debug for SystemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "System({})", self.0.name())
    }
}

impl PartialEq for SystemRef {
    fn eq(&self, other: &SystemRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.name() == other.0.name()
    }
}
