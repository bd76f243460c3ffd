//! Node names: which node of the deployment an event, a fault or a verb is about.
//!
//! The string forms ("broker", "store", "consumer", "producer-3") are what histories, fault
//! schedules, artifacts and the real-mode `--name` flag have always used; they must not change.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// One node of the deployment. The order (broker, replicas by index, controller, store,
/// consumer, then producers by index) is the order nodes are listed and started in.
///
/// A single-broker deployment has `Broker`; a replicated one has `Replica(0..n)` and the
/// `Controller` instead (see `replication`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeName {
    Broker,
    /// One broker of a replicated deployment: "broker-<index>".
    Replica(u32),
    /// The controller of a replicated deployment: leader election, ISR, producer ids and
    /// consumer offsets.
    Controller,
    Store,
    Consumer,
    Producer(u32),
}

/// Every node listens on this port in the simulation, each on its own address.
const SIM_PORT: u16 = 9000;

impl NodeName {
    /// The node's address in the simulation: servers in 10.0.0.x (replicas from 10.0.0.10),
    /// producers in 10.0.1.x.
    pub fn sim_addr(self) -> SocketAddr {
        let (a, b) = match self {
            NodeName::Broker => (0, 1),
            // `ClusterSpec` caps replicas at 100.
            NodeName::Replica(index) => (0, 10 + index as u8),
            NodeName::Controller => (0, 4),
            NodeName::Store => (0, 2),
            NodeName::Consumer => (0, 3),
            // ClusterSpec caps producers at 200, so the host part stays within 1..=200.
            NodeName::Producer(index) => (1, 1 + index as u8),
        };
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, a, b)), SIM_PORT)
    }

    /// Calls `f` with the node's name. Every history entry and every message names a node, so
    /// naming one must not allocate: the names of the first producers and replicas are spelled
    /// once per process (only a larger index is spelled at each call).
    pub fn with_name<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let (kind, index) = match self {
            NodeName::Broker => return f("broker"),
            NodeName::Controller => return f("controller"),
            NodeName::Store => return f("store"),
            NodeName::Consumer => return f("consumer"),
            NodeName::Replica(index) => (REPLICA, index),
            NodeName::Producer(index) => (PRODUCER, index),
        };
        static SPELLED: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
        let spelled = SPELLED.get_or_init(|| {
            PREFIXES.map(|p| (0..SPELLED_COUNT).map(|i| format!("{p}{i}")).collect())
        });
        match spelled[kind].get(index as usize) {
            Some(name) => f(name),
            None => f(&format!("{}{index}", PREFIXES[kind])),
        }
    }
}

/// The numbered kinds of node, by their place in `PREFIXES`.
const PRODUCER: usize = 0;
const REPLICA: usize = 1;
const PREFIXES: [&str; 2] = ["producer-", "broker-"];

/// How many producer and replica names are spelled in advance (`ClusterSpec` caps producers
/// at 200 and replicas at 100).
const SPELLED_COUNT: u32 = 256;

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_name(|name| f.pad(name))
    }
}

/// The error for a string that names no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNode(pub String);

impl fmt::Display for UnknownNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown node '{}' (nodes are broker, broker-<index>, controller, store, consumer and producer-<index>)",
            self.0
        )
    }
}

impl std::error::Error for UnknownNode {}

impl FromStr for NodeName {
    type Err = UnknownNode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownNode(s.to_string());
        match s {
            "broker" => Ok(NodeName::Broker),
            "store" => Ok(NodeName::Store),
            "consumer" => Ok(NodeName::Consumer),
            "controller" => Ok(NodeName::Controller),
            _ => {
                let (make, digits): (fn(u32) -> NodeName, &str) =
                    if let Some(digits) = s.strip_prefix("producer-") {
                        (NodeName::Producer, digits)
                    } else if let Some(digits) = s.strip_prefix("broker-") {
                        (NodeName::Replica, digits)
                    } else {
                        return Err(unknown());
                    };
                let index: u32 = digits.parse().map_err(|_| unknown())?;
                // Only the spelling Display gives ("producer-3", not "producer-03" or
                // "producer-+3"): one node has one name, and it survives a round trip.
                if index.to_string() != digits {
                    return Err(unknown());
                }
                Ok(make(index))
            }
        }
    }
}

// As the name string, so that histories and schedules read as they always have.
impl Serialize for NodeName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_name(|name| serializer.serialize_str(name))
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::serde_str::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_old_strings_and_round_trip() {
        let nodes = [
            (NodeName::Broker, "broker"),
            (NodeName::Store, "store"),
            (NodeName::Consumer, "consumer"),
            (NodeName::Producer(0), "producer-0"),
            (NodeName::Producer(17), "producer-17"),
            (NodeName::Producer(200), "producer-200"),
            (NodeName::Producer(u32::MAX), "producer-4294967295"),
            (NodeName::Replica(0), "broker-0"),
            (NodeName::Replica(2), "broker-2"),
            (NodeName::Controller, "controller"),
        ];
        for (node, text) in nodes {
            assert_eq!(node.to_string(), text);
            assert_eq!(
                format!("{node:>21}"),
                format!("{text:>21}"),
                "padding is kept"
            );
            assert_eq!(text.parse::<NodeName>(), Ok(node));
            let json = serde_json::to_string(&node).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<NodeName>(&json).unwrap(), node);
        }
        for bad in [
            "",
            "harness",
            "producer-",
            "producer-x",
            "producer-03",
            "producer-+3",
            "broker-",
            "broker-01",
        ] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
        let err = serde_json::from_str::<NodeName>("\"zookeeper\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown node 'zookeeper'"),
            "{err}"
        );
    }

    #[test]
    fn order_is_broker_store_consumer_then_producers_by_index() {
        let mut nodes = vec![
            NodeName::Producer(10),
            NodeName::Consumer,
            NodeName::Producer(2),
            NodeName::Store,
            NodeName::Broker,
        ];
        nodes.sort();
        assert_eq!(
            nodes,
            [
                NodeName::Broker,
                NodeName::Store,
                NodeName::Consumer,
                NodeName::Producer(2),
                NodeName::Producer(10),
            ]
        );
    }

    #[test]
    fn simulation_addresses_are_the_deployment_plan() {
        assert_eq!(NodeName::Broker.sim_addr().to_string(), "10.0.0.1:9000");
        assert_eq!(NodeName::Store.sim_addr().to_string(), "10.0.0.2:9000");
        assert_eq!(NodeName::Consumer.sim_addr().to_string(), "10.0.0.3:9000");
        assert_eq!(
            NodeName::Producer(0).sim_addr().to_string(),
            "10.0.1.1:9000"
        );
        assert_eq!(
            NodeName::Producer(199).sim_addr().to_string(),
            "10.0.1.200:9000"
        );
    }
}
