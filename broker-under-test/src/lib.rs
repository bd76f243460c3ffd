//! A Kafka-like broker with idempotent producers, a consumer and a payment store: the system
//! under test. It never imports the harness; it sees the world through its own [`Transport`] and
//! [`Storage`] traits and madsim's clock.
//!
//! [`Transport`]: transport::Transport
//! [`Storage`]: storage::Storage

pub mod broker;
pub mod bugs;
pub mod client;
#[cfg(madsim)]
pub mod cluster;
pub mod codec;
pub mod consumer;
pub mod controller;
pub mod log;
pub mod name;
pub mod node;
pub mod observe;
pub mod producer;
pub mod producer_state;
#[cfg(not(madsim))]
pub mod real;
pub mod replica;
pub mod replication;
mod serde_str;
pub mod storage;
pub mod store;
pub mod transport;

pub use bugs::{Bug, Bugs};
pub use codec::{Payment, PaymentId};
pub use name::NodeName;
pub use observe::{Event, Observer, Probe};
