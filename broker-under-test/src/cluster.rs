//! Deploys the system under test on madsim nodes: one node per broker, store, consumer and
//! producer, each with its own simulated disk, restartable with its disk crashed in between.
//!
//! This is the deployment, not the fault injector: it offers the verbs an operator would use
//! (`crash`, `kill`, `restart`, `pause`, `resume`) and decides nothing by itself. The harness
//! chooses when to use them.

use crate::broker::{run_broker, BrokerConfig};
use crate::bugs::Bugs;
use crate::consumer::{run_consumer, ConsumerConfig};
use crate::name::NodeName;
use crate::node::{NodeCtx, NodeError, RetryPolicy};
use crate::observe::Observer;
use crate::producer::{run_producer, PaymentSizes, ProducerConfig};
use crate::storage::{CrashReport, DiskLatency, SimDisk, Tear};
use crate::store::run_store;
use crate::transport::{NetFaults, SimTransport};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything needed to deploy the system: node configurations and planted bugs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub broker: BrokerConfig,
    pub producers: Vec<ProducerConfig>,
    pub consumer: ConsumerConfig,
    pub bugs: Bugs,
    pub disk_latency: DiskLatency,
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
}

impl ClusterSpec {
    pub fn new(workload: &Workload, bugs: Bugs) -> ClusterSpec {
        assert!(
            workload.producers <= 200,
            "producer addresses are 10.0.1.1..=10.0.1.200"
        );
        let retry = RetryPolicy::default();
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
            },
            bugs,
            disk_latency: DiskLatency::default(),
        }
    }

    /// Every node's name, in a fixed order: broker, store, consumer, producers.
    pub fn node_names(&self) -> Vec<NodeName> {
        let mut names = vec![NodeName::Broker, NodeName::Store, NodeName::Consumer];
        names.extend(self.producers.iter().map(|p| NodeName::Producer(p.index)));
        names
    }
}

/// The role a node plays, with its configuration.
#[derive(Clone)]
enum Role {
    Broker(BrokerConfig),
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
        let mut roles = vec![
            (NodeName::Broker, Role::Broker(spec.broker.clone())),
            (NodeName::Store, Role::Store),
            (NodeName::Consumer, Role::Consumer(spec.consumer.clone())),
        ];
        for p in &spec.producers {
            roles.push((NodeName::Producer(p.index), Role::Producer(p.clone())));
        }
        let mut nodes = BTreeMap::new();
        for (name, role) in roles {
            let addr = name.sim_addr();
            let disk = SimDisk::new(spec.disk_latency);
            let incarnations = Arc::new(AtomicU64::new(0));
            let (node_disk, faults, observer, bugs) =
                (disk.clone(), faults.clone(), observer.clone(), spec.bugs);
            let node = handle
                .create_node()
                .name(name.to_string())
                .ip(addr.ip())
                .init(move || {
                    let incarnation = incarnations.fetch_add(1, Ordering::Relaxed);
                    let (disk, faults, observer, role) = (
                        node_disk.clone(),
                        faults.clone(),
                        observer.clone(),
                        role.clone(),
                    );
                    async move {
                        if let Err(e) =
                            run_node(name, addr, incarnation, disk, faults, observer, bugs, role)
                                .await
                        {
                            // A node that cannot go on crashes loudly; the harness reports the panic.
                            panic!("node {name} failed: {e}");
                        }
                    }
                })
                .build();
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

    /// Freezes every task of the node (a GC pause, a stopped VM); its messages wait.
    pub fn pause(&self, name: NodeName) {
        self.handle.pause(self.node(name).id);
    }

    pub fn resume(&self, name: NodeName) {
        self.handle.resume(self.node(name).id);
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_node(
    name: NodeName,
    addr: SocketAddr,
    incarnation: u64,
    disk: SimDisk,
    faults: Arc<dyn NetFaults>,
    observer: Arc<dyn Observer>,
    bugs: Bugs,
    role: Role,
) -> Result<(), NodeError> {
    let transport = SimTransport::bind(addr, incarnation, faults)
        .await
        .map_err(|e| NodeError::Bind(e.to_string()))?;
    let ctx = NodeCtx {
        name,
        transport: Arc::new(transport),
        storage: Arc::new(disk.handle()),
        observer,
        bugs,
    };
    match role {
        Role::Broker(cfg) => run_broker(ctx, cfg).await,
        Role::Store => run_store(ctx).await,
        Role::Consumer(cfg) => run_consumer(ctx, cfg).await,
        Role::Producer(cfg) => run_producer(ctx, cfg).await,
    }
}
