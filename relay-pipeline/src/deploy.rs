//! The pipeline deployed on madsim: one node per role with its own simulated disk, the
//! operator's verbs the harness faults it with, and the final read through the pipeline's own
//! clients.

use crate::node::{Node, Stop};
use crate::wire::{self, Reply, Request};
use crate::{consumer, producer, relay, store, Config};
use harness::system::kit::{
    CrashReport, DiskLatency, NetFaults, NoFaults, NodeName, Observer, SimDisk, SimTransport, Tear,
};
use harness::system::{BoxFuture, Deployment, Durable, ReaderNode, READER_ADDR};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Records per page of the final read.
const READ_PAGE: u32 = 256;

pub(crate) struct RelayDeployment {
    handle: Handle,
    nodes: BTreeMap<NodeName, (NodeId, SimDisk)>,
    partitions: u32,
}

impl RelayDeployment {
    /// Creates and starts every node, in the seam's order: relay, store, consumer, producers.
    pub(crate) fn start(
        config: Config,
        producers: u32,
        net: Arc<dyn NetFaults>,
        observer: Arc<dyn Observer>,
    ) -> RelayDeployment {
        let handle = Handle::current();
        let partitions = config.partitions;
        let config = Arc::new(config);
        let mut names = vec![NodeName::Broker, NodeName::Store, NodeName::Consumer];
        names.extend((0..producers).map(NodeName::Producer));
        let mut nodes = BTreeMap::new();
        for name in names {
            let disk = SimDisk::new(DiskLatency::default());
            let started = Arc::new(AtomicU64::new(0));
            let (net, observer, config, node_disk) =
                (net.clone(), observer.clone(), config.clone(), disk.clone());
            // `init` runs at every (re)start: each incarnation gets a fresh disk handle.
            let node = handle
                .create_node()
                .name(name.to_string())
                .ip(name.sim_addr().ip())
                .init(move || {
                    let incarnation = started.fetch_add(1, Ordering::Relaxed);
                    let (net, observer, config) = (net.clone(), observer.clone(), config.clone());
                    let disk = node_disk.handle();
                    async move {
                        let transport = SimTransport::bind(name.sim_addr(), incarnation, net)
                            .await
                            .unwrap_or_else(|e| panic!("{name} could not bind: {e}"));
                        let node = Node {
                            name,
                            transport,
                            disk,
                            observer,
                            config,
                            incarnation,
                        };
                        if let Err(Stop::Broken(why)) = run_role(node).await {
                            panic!("node {name} failed: {why}");
                        }
                    }
                })
                .build();
            nodes.insert(name, (node.id(), disk));
        }
        RelayDeployment {
            handle,
            nodes,
            partitions,
        }
    }

    fn id(&self, name: NodeName) -> NodeId {
        self.nodes
            .get(&name)
            .unwrap_or_else(|| panic!("no node named {name}"))
            .0
    }
}

async fn run_role(node: Node) -> Result<(), Stop> {
    match node.name {
        NodeName::Broker => relay::run(node).await,
        NodeName::Store => store::run(node).await,
        NodeName::Consumer => consumer::run(node).await,
        NodeName::Producer(index) => producer::run(node, index).await,
        // One relay, no replicas: a replicated scenario is not this system's to run.
        NodeName::Replica(_) | NodeName::Controller => {
            panic!("relay-pipeline has no node {}", node.name)
        }
    }
}

impl Deployment for RelayDeployment {
    fn kill(&self, node: NodeName, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport {
        self.handle.kill(self.id(node));
        self.nodes[&node].1.crash(tear)
    }

    fn restart(&self, node: NodeName) {
        self.handle.restart(self.id(node));
    }

    fn pause(&self, node: NodeName) {
        self.handle.pause(self.id(node));
    }

    fn resume(&self, node: NodeName) {
        self.handle.resume(self.id(node));
    }

    fn final_read(&self) -> BoxFuture<'_, Result<Durable, String>> {
        let partitions = self.partitions;
        Box::pin(async move {
            // A client on a node of its own, through the network like any operator's, at the
            // address the harness keeps for it.
            let reader = ReaderNode::new();
            let read = reader.spawn(async move {
                let transport = SimTransport::bind(READER_ADDR, 0, Arc::new(NoFaults))
                    .await
                    .map_err(|e| format!("the final read could not bind: {e}"))?;
                read_back(&transport, partitions).await
            });
            let back = read.await;
            // Killed on drop, also if the harness gives up on the read and drops this future.
            drop(reader);
            back.map_err(|e| format!("the final read stopped: {e}"))?
        })
    }
}

/// Every record of every partition from the relay, every row from the store.
async fn read_back(transport: &SimTransport, partitions: u32) -> Result<Durable, String> {
    let closed = |e| format!("the final read's transport closed: {e}");
    let mut durable = Durable::default();
    for partition in 0..partitions {
        let mut log = Vec::new();
        loop {
            let request = Request::Fetch {
                partition,
                from: log.len() as u64,
                max: READ_PAGE,
            };
            let relay = NodeName::Broker.sim_addr();
            match wire::call(transport, relay, &request, |_| {})
                .await
                .map_err(closed)?
            {
                Reply::Records { records } if records.is_empty() => break,
                Reply::Records { records } => log.extend(records),
                other => return Err(format!("the relay answered a fetch with {other:?}")),
            }
        }
        durable.logs.push(log);
    }
    let store = NodeName::Store.sim_addr();
    match wire::call(transport, store, &Request::ListRows, |_| {})
        .await
        .map_err(closed)?
    {
        Reply::Rows { rows } => durable.rows = rows,
        other => return Err(format!("the store answered list-rows with {other:?}")),
    }
    Ok(durable)
}
