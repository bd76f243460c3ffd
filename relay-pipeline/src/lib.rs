//! relay-pipeline: a small payment pipeline of its own, tested by the harness through its
//! public `System` seam only, the way any user of the library would test theirs.
//!
//! Producers keep an outbox on disk and send owed payments in small batches to the **relay**,
//! which deduplicates by payment id (its dedup set is the log itself, rebuilt at recovery),
//! puts each payment in the partition its id hashes to, syncs, and only then acknowledges.
//! The **consumer** reads each partition from the relay, applies every record to the
//! **store** (which deduplicates by payment id too), and keeps its own cursor on its own disk.
//!
//! [`RelayBug`] plants the pipeline's own mistakes, for its tests to catch.

mod consumer;
mod deploy;
mod node;
mod producer;
mod relay;
mod store;
mod wire;

use harness::system::kit::MessageKind;
use harness::system::MessageClass;
use harness::system::{Deployment, MessageView, Setup, System};
use std::time::Duration;
use wire::{Reply, Request};

/// A mistake planted in the pipeline, for its own tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayBug {
    /// The relay keeps its dedup set in memory only: after a relay restart, a producer's retry
    /// of a payment already in the log is appended again (`log-duplicate`).
    DedupInMemoryOnly,
    /// The consumer saves its cursor past a fetched batch before applying it: a consumer crash
    /// in between skips those records for good (`store-missing`).
    CursorBeforeApply,
}

/// The pipeline as a system under test; `bug: None` is the correct version.
#[derive(Clone, Copy, Debug, Default)]
pub struct RelaySystem {
    /// The planted bug, if any.
    pub bug: Option<RelayBug>,
}

impl RelaySystem {
    /// The correct pipeline.
    pub fn new() -> RelaySystem {
        RelaySystem { bug: None }
    }

    /// The pipeline with one planted bug.
    pub fn with_bug(bug: RelayBug) -> RelaySystem {
        RelaySystem { bug: Some(bug) }
    }
}

/// What every node knows of the run: the scenario's workload and the planted bug.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub partitions: u32,
    pub payments_per_producer: u32,
    pub customers: u32,
    pub payment_interval: Duration,
    pub max_batch_records: u32,
    pub bug: Option<RelayBug>,
}

impl System for RelaySystem {
    fn name(&self) -> &str {
        // Distinct per bug: a run plan compares systems by name.
        match self.bug {
            None => "relay-pipeline",
            Some(RelayBug::DedupInMemoryOnly) => "relay-pipeline+dedup-in-memory-only",
            Some(RelayBug::CursorBeforeApply) => "relay-pipeline+cursor-before-apply",
        }
    }

    fn deploy(&self, setup: Setup<'_>) -> Box<dyn Deployment> {
        let w = &setup.scenario.workload;
        let config = Config {
            partitions: w.partitions,
            payments_per_producer: w.payments_per_producer,
            customers: w.customers,
            payment_interval: Duration::from_millis(w.payment_interval_ms),
            max_batch_records: w.max_batch_records.max(1),
            bug: self.bug,
        };
        Box::new(deploy::RelayDeployment::start(
            config,
            w.producers,
            setup.net,
            setup.observer,
        ))
    }

    fn describe(&self, kind: MessageKind, request_id: u64, body: &[u8]) -> MessageView {
        match kind {
            MessageKind::Request => match wire::decode::<Request>(body) {
                Some(request) => describe_request(&request),
                None => malformed(MessageClass::MalformedRequest, request_id),
            },
            MessageKind::Reply => match wire::decode::<Reply>(body) {
                Some(reply) => describe_reply(&reply, request_id),
                None => malformed(MessageClass::MalformedReply, request_id),
            },
        }
    }
}

fn malformed(class: MessageClass, request_id: u64) -> MessageView {
    MessageView {
        class,
        label: format!("malformed #{request_id}"),
        payments: Vec::new(),
    }
}

fn describe_request(request: &Request) -> MessageView {
    let (class, label, payments) = match request {
        Request::Produce {
            producer,
            seq,
            payments,
        } => (
            MessageClass::Produce,
            format!("produce producer={producer} seq={seq}+{}", payments.len()),
            payments.iter().map(|p| p.id.to_string()).collect(),
        ),
        Request::Fetch {
            partition, from, ..
        } => (
            MessageClass::Fetch,
            format!("fetch partition={partition} offset={from}"),
            Vec::new(),
        ),
        Request::Apply { row } => (
            MessageClass::Apply,
            format!("apply {}", row.payment.id),
            vec![row.payment.id.to_string()],
        ),
        Request::ListRows => (MessageClass::ListRows, "list-rows".into(), Vec::new()),
    };
    MessageView {
        class,
        label,
        payments,
    }
}

fn describe_reply(reply: &Reply, request_id: u64) -> MessageView {
    let (class, label, payments) = match reply {
        Reply::Produced { positions } => (
            MessageClass::Produced,
            format!("produced {} positions", positions.len()),
            Vec::new(),
        ),
        Reply::Records { records } => (
            MessageClass::Fetched,
            format!("{} records", records.len()),
            records.iter().map(|(_, p)| p.id.to_string()).collect(),
        ),
        Reply::Applied { duplicate } => (
            MessageClass::Applied,
            format!("applied duplicate={duplicate}"),
            Vec::new(),
        ),
        Reply::Rows { rows } => (
            MessageClass::Rows,
            format!("{} rows", rows.len()),
            Vec::new(),
        ),
    };
    MessageView {
        class,
        label: format!("reply #{request_id}: {label}"),
        payments,
    }
}
