//! Who an entry of the history is about: a node, every node (a network window's start), or the
//! harness itself (the heal, liveness, the final recovery).

use crate::schedule::Target;
use broker_under_test::NodeName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An entry's subject, written in the history as a node's name, `*` or `harness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Actor {
    /// The driver: phases and other whole-run moments.
    Harness,
    /// Every node: a network window that hits all messages started.
    AllNodes,
    Node(NodeName),
}

impl Actor {
    /// The node, if the entry is about one node.
    pub fn node(self) -> Option<NodeName> {
        match self {
            Actor::Node(node) => Some(node),
            _ => None,
        }
    }
}

impl From<NodeName> for Actor {
    fn from(node: NodeName) -> Actor {
        Actor::Node(node)
    }
}

impl From<Target> for Actor {
    fn from(target: Target) -> Actor {
        match target {
            Target::All => Actor::AllNodes,
            Target::Node(node) => Actor::Node(node),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Harness => f.pad("harness"),
            Actor::AllNodes => f.pad("*"),
            Actor::Node(node) => node.fmt(f),
        }
    }
}

impl FromStr for Actor {
    type Err = String;

    fn from_str(s: &str) -> Result<Actor, String> {
        match s {
            "harness" => Ok(Actor::Harness),
            "*" => Ok(Actor::AllNodes),
            node => node
                .parse()
                .map(Actor::Node)
                .map_err(|_| format!("unknown node '{s}' in a history entry")),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // As the Display form, without formatting machinery: every history entry has one.
        match self {
            Actor::Harness => serializer.serialize_str("harness"),
            Actor::AllNodes => serializer.serialize_str("*"),
            Actor::Node(node) => node.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Actor, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
