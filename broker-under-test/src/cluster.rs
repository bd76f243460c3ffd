//! Deploys the system under test on madsim nodes: one node per broker (or, replicated, per
//! replica plus the controller), store, consumer and producer, each with its own simulated
//! disk, restartable with its disk crashed in between.
//!
//! This is the deployment, not the fault injector: it offers the verbs an operator would use
//! (`crash`, `kill`, `restart`, `pause`, `resume`) and decides nothing by itself. The harness
//! chooses when to use them.
//!
//! One policy is the node's own: a storage operation that fails with an I/O error is fatal.
//! The node crashes (its disk loses unsynced bytes, as at power loss) and restarts through
//! recovery from its disk, as PostgreSQL PANICs on a failed fsync since 2018: after a failed
//! sync the kernel may have dropped the data it covered, so nothing it covered may be
//! acknowledged, and a failed read must not pass for an empty file. See `IoFatal`.

use crate::broker::{run_broker, BrokerConfig};
use crate::bugs::{Bug, Bugs};
use crate::client::ReplicatedAddrs;
use crate::consumer::{run_consumer, ConsumerConfig};
use crate::controller::run_controller;
use crate::name::NodeName;
use crate::node::{NodeCtx, NodeError, RetryPolicy};
use crate::observe::{Event, Observer, Probe};
use crate::producer::{run_producer, PaymentSizes, ProducerConfig};
use crate::replica::run_replica;
use crate::replication::{ControllerConfig, ReplicaConfig, ReplicationConfig};
use crate::storage::{
    BoxFuture, CrashReport, DiskLatency, IoInjector, IoOp, SimDisk, SimStorage, Storage,
    StorageError, Tear,
};
use crate::store::run_store;
use crate::transport::{NetFaults, SimTransport};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Everything needed to deploy the system: node configurations and planted bugs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub broker: BrokerConfig,
    pub producers: Vec<ProducerConfig>,
    pub consumer: ConsumerConfig,
    pub bugs: Bugs,
    pub disk_latency: DiskLatency,
    /// `None`: the single `broker` node. `Some`: replicas `broker-0..n` and a controller.
    pub replication: Option<ReplicationConfig>,
}

/// The shape of a workload, from which [`ClusterSpec::new`] builds node configurations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub producers: u32,
    pub payments_per_producer: u32,
    pub customers: u32,
    pub partitions: u32,
    pub payment_interval: Duration,
    pub max_batch_records: u32,
    pub seed: u64,
    /// Where producers' sequences start (0 by default; near `u32::MAX` to cross the wrap).
    pub first_seq: u32,
    /// Payment sizes; `None`: the small, same-sized payments of `Payment::generate`.
    pub payment_sizes: Option<PaymentSizes>,
    /// Brokers, each holding a replica of every partition; 1 is the single broker of old.
    pub brokers: u32,
}

impl ClusterSpec {
    pub fn new(workload: &Workload, bugs: Bugs) -> ClusterSpec {
        assert!(
            workload.producers <= 200,
            "producer addresses are 10.0.1.1..=10.0.1.200"
        );
        let retry = RetryPolicy::default();
        let replication = (workload.brokers > 1).then(|| ReplicationConfig::new(workload.brokers));
        let replicated = replication.map(|r| ReplicatedAddrs {
            controller: NodeName::Controller.sim_addr(),
            replicas: (0..r.brokers)
                .map(|i| NodeName::Replica(i).sim_addr())
                .collect(),
        });
        let producers = (0..workload.producers)
            .map(|index| ProducerConfig {
                index,
                payments: workload.payments_per_producer,
                customers: workload.customers,
                payment_interval: workload.payment_interval,
                partitions: workload.partitions,
                broker: NodeName::Broker.sim_addr(),
                max_batch_records: workload.max_batch_records,
                max_in_flight: 5,
                linger: Duration::from_millis(5),
                retry,
                seed: workload.seed,
                first_seq: workload.first_seq,
                payment_sizes: workload.payment_sizes,
                replicated: replicated.clone(),
            })
            .collect();
        ClusterSpec {
            broker: BrokerConfig {
                partitions: workload.partitions,
                first_seq: workload.first_seq,
                ..BrokerConfig::default()
            },
            producers,
            consumer: ConsumerConfig {
                group: "payments".to_string(),
                partitions: workload.partitions,
                broker: NodeName::Broker.sim_addr(),
                store: NodeName::Store.sim_addr(),
                fetch_max_records: 32,
                poll_interval: Duration::from_millis(20),
                retry,
                replicated,
            },
            bugs,
            disk_latency: DiskLatency::default(),
            replication,
        }
    }

    /// Every node's name, in a fixed order: broker (or replicas and controller), store,
    /// consumer, producers.
    pub fn node_names(&self) -> Vec<NodeName> {
        self.roles().into_iter().map(|(name, _)| name).collect()
    }

    /// Every node with its role, in the order of [`ClusterSpec::node_names`].
    fn roles(&self) -> Vec<(NodeName, Role)> {
        let mut roles = match self.replication {
            None => vec![(NodeName::Broker, Role::Broker(self.broker.clone()))],
            Some(replication) => {
                let replicas: Vec<SocketAddr> = (0..replication.brokers)
                    .map(|i| NodeName::Replica(i).sim_addr())
                    .collect();
                let mut roles: Vec<(NodeName, Role)> = (0..replication.brokers)
                    .map(|index| {
                        let replica = ReplicaConfig {
                            index,
                            replication,
                            controller: NodeName::Controller.sim_addr(),
                            replicas: replicas.clone(),
                        };
                        let role = Role::Replica(self.broker.clone(), replica);
                        (NodeName::Replica(index), role)
                    })
                    .collect();
                let controller = ControllerConfig {
                    partitions: self.broker.partitions,
                    replication,
                };
                roles.push((NodeName::Controller, Role::Controller(controller)));
                roles
            }
        };
        roles.push((NodeName::Store, Role::Store));
        roles.push((NodeName::Consumer, Role::Consumer(self.consumer.clone())));
        for p in &self.producers {
            roles.push((NodeName::Producer(p.index), Role::Producer(p.clone())));
        }
        roles
    }
}

/// The role a node plays, with its configuration.
#[derive(Clone)]
enum Role {
    Broker(BrokerConfig),
    /// One broker of a replicated deployment.
    Replica(BrokerConfig, ReplicaConfig),
    Controller(ControllerConfig),
    Store,
    Consumer(ConsumerConfig),
    Producer(ProducerConfig),
}

struct Node {
    id: NodeId,
    disk: SimDisk,
}

/// A deployed system on the current madsim runtime.
pub struct Cluster {
    handle: Handle,
    nodes: BTreeMap<NodeName, Node>,
}

impl Cluster {
    /// Creates and starts every node. Must be called inside a madsim runtime.
    pub fn start(
        spec: &ClusterSpec,
        faults: Arc<dyn NetFaults>,
        observer: Arc<dyn Observer>,
    ) -> Cluster {
        let handle = Handle::current();
        // Nodes are created in this order (not the map's), which fixes their madsim node ids.
        let roles = spec.roles();
        let mut nodes = BTreeMap::new();
        for (name, role) in roles {
            let addr = name.sim_addr();
            let disk = SimDisk::new(spec.disk_latency);
            let incarnations = Arc::new(AtomicU64::new(0));
            // The node's own id, for restarting itself after an I/O error; set once built,
            // before its first task runs.
            let own_id = Arc::new(OnceLock::new());
            let (node_disk, faults, observer, bugs, id) = (
                disk.clone(),
                faults.clone(),
                observer.clone(),
                spec.bugs,
                own_id.clone(),
            );
            let node = handle
                .create_node()
                .name(name.to_string())
                .ip(addr.ip())
                .init(move || {
                    let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
                    let fatal = Arc::new(IoFatal {
                        name,
                        disk: node_disk.clone(),
                        observer: observer.clone(),
                        id: id.clone(),
                    });
                    let (faults, role) = (faults.clone(), role.clone());
                    async move {
                        match run_node(addr, incarnation, fatal.clone(), faults, bugs, role).await {
                            Ok(()) => {}
                            // Only a planted bug lets an I/O error reach the role's code; the
                            // role gave up on it, and the node dies of it all the same.
                            Err(NodeError::Storage(StorageError::Io(why))) => fatal.die(&why).await,
                            // A node that cannot go on crashes loudly; the harness reports the panic.
                            Err(e) => panic!("node {name} failed: {e}"),
                        }
                    }
                })
                .build();
            let _ = own_id.set(node.id());
            nodes.insert(
                name,
                Node {
                    id: node.id(),
                    disk,
                },
            );
        }
        Cluster { handle, nodes }
    }

    fn node(&self, name: NodeName) -> &Node {
        self.nodes
            .get(&name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// The deployed nodes, in `NodeName` order.
    pub fn node_names(&self) -> impl Iterator<Item = NodeName> + '_ {
        self.nodes.keys().copied()
    }

    pub fn disk(&self, name: NodeName) -> &SimDisk {
        &self.node(name).disk
    }

    /// Kills the node (power loss): its tasks stop, and its disk loses unsynced writes except
    /// what `tear` keeps. It stays down until [`Cluster::restart`].
    pub fn kill(&self, name: NodeName, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport {
        let node = self.node(name);
        self.handle.kill(node.id);
        node.disk.crash(tear)
    }

    /// Starts a killed node again: recovery from its disk, then its role.
    pub fn restart(&self, name: NodeName) {
        self.handle.restart(self.node(name).id);
    }

    /// Kill and restart at once.
    pub fn crash(&self, name: NodeName, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport {
        let report = self.kill(name, tear);
        self.restart(name);
        report
    }

    /// Opens (`Some`) or closes (`None`) an I/O error window on the node's disk: while open,
    /// `injector` decides which of its storage operations fail (see [`SimDisk::set_io_errors`]).
    pub fn set_io_errors(&self, name: NodeName, injector: Option<IoInjector>) {
        self.node(name).disk.set_io_errors(injector);
    }

    /// Freezes every task of the node (a GC pause, a stopped VM); its messages wait.
    pub fn pause(&self, name: NodeName) {
        self.handle.pause(self.node(name).id);
    }

    pub fn resume(&self, name: NodeName) {
        self.handle.resume(self.node(name).id);
    }
}

/// Runs one incarnation of a node's role, its storage fatal on I/O errors (see [`IoFatal`]).
async fn run_node(
    addr: SocketAddr,
    incarnation: u64,
    fatal: Arc<IoFatal>,
    faults: Arc<dyn NetFaults>,
    bugs: Bugs,
    role: Role,
) -> Result<(), NodeError> {
    let transport = SimTransport::bind(addr, incarnation, faults)
        .await
        .map_err(|e| NodeError::Bind(e.to_string()))?;
    let storage = FatalOnIo {
        inner: fatal.disk.handle(),
        passed: passed_to_role(&role, bugs),
        fatal: fatal.clone(),
    };
    let ctx = NodeCtx {
        name: fatal.name,
        transport: Arc::new(transport),
        storage: Arc::new(storage),
        observer: fatal.observer.clone(),
        bugs,
    };
    match role {
        Role::Broker(cfg) => run_broker(ctx, cfg).await,
        Role::Replica(cfg, replica) => run_replica(ctx, cfg, replica).await,
        Role::Controller(cfg) => run_controller(ctx, cfg).await,
        Role::Store => run_store(ctx).await,
        Role::Consumer(cfg) => run_consumer(ctx, cfg).await,
        Role::Producer(cfg) => run_producer(ctx, cfg).await,
    }
}

/// The I/O errors a role sees itself rather than dying of at once: none, except where a
/// planted bug handles them (wrongly) in the role's own code.
fn passed_to_role(role: &Role, bugs: Bugs) -> Option<IoOp> {
    match role {
        Role::Broker(_) | Role::Replica(..) if bugs.has(Bug::SyncFailureRetried) => {
            Some(IoOp::Sync)
        }
        Role::Store if bugs.has(Bug::ReadErrorAsEof) => Some(IoOp::Read),
        _ => None,
    }
}

/// What a node needs to die of an I/O error and come back: its name, disk, observer and
/// madsim id.
struct IoFatal {
    name: NodeName,
    disk: SimDisk,
    observer: Arc<dyn Observer>,
    id: Arc<OnceLock<NodeId>>,
}

impl IoFatal {
    /// The node crashes and restarts through recovery: its disk loses every unsynced byte (a
    /// failed sync may have dropped them already; nothing the node did not sync may be
    /// trusted), every handle of this incarnation dies, and madsim kills its tasks and runs
    /// its init again, which binds afresh (a kill frees the address). Never returns: this
    /// task is killed at its next await.
    async fn die(&self, why: &str) {
        tracing::debug!(node = %self.name, why, "i/o error: crash and recover");
        self.disk.crash(&mut |_, _| Tear::LOSE_ALL);
        let id = *self.id.get().expect("a node's id is set before it runs");
        let handle = Handle::current();
        handle.kill(id);
        handle.restart(id);
        std::future::pending::<()>().await;
    }

    /// Reports an I/O error of `op` on `file`; it is fatal unless `passed` lets the role see it.
    async fn failed(&self, op: IoOp, file: &str, why: &str, passed: Option<IoOp>) {
        self.observer.probe(
            self.name,
            match op {
                IoOp::Read => Probe::ReadFailed,
                IoOp::Write => Probe::WriteFailed,
                IoOp::Sync => Probe::SyncFailed,
            },
        );
        if passed != Some(op) {
            let file = file.to_string();
            self.observer
                .record(self.name, Event::StorageFailed { op, file });
            self.die(why).await;
        }
    }
}

/// A node's storage: the incarnation's disk handle, on which an I/O error is fatal to the node
/// (it never returns to the caller, see [`IoFatal::die`]) unless `passed` names its kind. It
/// awaits `SimStorage`'s own futures, so each operation is boxed once, not twice.
struct FatalOnIo {
    inner: SimStorage,
    passed: Option<IoOp>,
    fatal: Arc<IoFatal>,
}

impl FatalOnIo {
    async fn check<T>(
        &self,
        op: IoOp,
        file: &str,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(StorageError::Io(why)) = &result {
            self.fatal.failed(op, file, why, self.passed).await;
        }
        result
    }
}

impl Storage for FatalOnIo {
    fn read<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<Vec<u8>, StorageError>> {
        Box::pin(async move {
            let result = self.inner.read_file(file).await;
            self.check(IoOp::Read, file, result).await
        })
    }

    fn append<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let result = self.inner.append_file(file, bytes).await;
            self.check(IoOp::Write, file, result).await
        })
    }

    fn sync<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let result = self.inner.sync_file(file).await;
            self.check(IoOp::Sync, file, result).await
        })
    }

    fn truncate<'a>(
        &'a self,
        file: &'a str,
        len: usize,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let result = self.inner.truncate_file(file, len).await;
            self.check(IoOp::Write, file, result).await
        })
    }

    fn replace<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let result = self.inner.replace_file(file, bytes).await;
            self.check(IoOp::Write, file, result).await
        })
    }
}
