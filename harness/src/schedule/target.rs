//! Whom a fault hits: one node, or (for a network window) every node's messages.

use broker_under_test::NodeName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A fault's target. Crashes, pauses and partitions hit one node; a loss, duplicate or delay
/// window may hit every node's messages (written `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Every node's messages.
    All,
    Node(NodeName),
}

impl Target {
    /// Whether a message from `from` to `to` passes through the target.
    pub fn touches(self, from: NodeName, to: NodeName) -> bool {
        match self {
            Target::All => true,
            Target::Node(node) => node == from || node == to,
        }
    }

    /// The one node hit, if the target is one node.
    pub fn node(self) -> Option<NodeName> {
        match self {
            Target::All => None,
            Target::Node(node) => Some(node),
        }
    }
}

impl From<NodeName> for Target {
    fn from(node: NodeName) -> Target {
        Target::Node(node)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.pad("*"),
            Target::Node(node) => node.fmt(f),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "*" => Ok(Target::All),
            node => node
                .parse()
                .map(Target::Node)
                .map_err(|_| format!("unknown target '{s}': a node name or '*'")),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Target, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
