//! The network fault shim: the run's [`NetFaults`] hook. For every arriving message it asks
//! the run's [`Fates`] (the decision real mode's proxy shares) what happens to it, and records
//! every loss, duplicate and delay in the history.

use crate::history::{HarnessEvent, Recorder};
use crate::schedule::FaultEntry;
use crate::world::fate::Fates;
use broker_under_test::codec::{Request, Response};
use broker_under_test::transport::{Delivery, MessageKind, NetFaults};
use broker_under_test::NodeName;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message as the HTML timeline draws it: who sent it when, what it carried, and what the
/// network did with it. Kept beside the history (not in it), and only when asked for, so the
/// trace hash is the same with and without it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    pub from: String,
    pub to: String,
    pub kind: &'static str,
    pub label: String,
    /// Payment ids the message carries (a reply: those of its request).
    pub payments: Vec<String>,
    pub sent_us: u64,
    /// When each delivered copy arrived at the receiver (two for a duplicate).
    pub arrived_us: Vec<u64>,
    /// Why it was lost, if the network lost it. No arrival and no cause: the receiver was down.
    pub dropped: Option<String>,
}

#[derive(Default)]
struct MessageLog {
    records: Vec<MessageRecord>,
    /// (src, dst, is reply, request id) -> index of the record in flight.
    open: BTreeMap<(SocketAddr, SocketAddr, bool, u64), usize>,
}

/// The payment ids a message body carries.
fn payments_of(kind: MessageKind, body: &[u8]) -> Vec<String> {
    match kind {
        MessageKind::Request => match Request::decode(body) {
            Ok(Request::Produce { records, .. }) => records.into_iter().map(|p| p.id).collect(),
            Ok(Request::Apply { payment, .. }) => vec![payment.id],
            _ => Vec::new(),
        },
        MessageKind::Reply => match Response::decode(body) {
            Ok(Response::Fetched { records, .. }) => {
                records.into_iter().map(|r| r.payment.id).collect()
            }
            _ => Vec::new(),
        },
    }
}

pub struct Network {
    names: BTreeMap<IpAddr, NodeName>,
    log: Option<Mutex<MessageLog>>,
    /// Decides every message's fate; counts messages and losses.
    pub fates: Fates,
    recorder: Arc<Recorder>,
}

impl Network {
    /// `record_messages` keeps a [`MessageRecord`] per message for the HTML timeline.
    pub fn new(
        names: BTreeMap<IpAddr, NodeName>,
        schedule: &[FaultEntry],
        rng: ChaCha8Rng,
        recorder: Arc<Recorder>,
        record_messages: bool,
    ) -> Network {
        Network {
            names,
            log: record_messages.then(|| Mutex::new(MessageLog::default())),
            fates: Fates::new(schedule, rng),
            recorder,
        }
    }

    /// The recorded messages, in send order (empty unless recording).
    pub fn take_messages(&self) -> Vec<MessageRecord> {
        self.log
            .as_ref()
            .map(|l| std::mem::take(&mut l.lock().unwrap_or_else(|e| e.into_inner()).records))
            .unwrap_or_default()
    }

    fn now_us() -> u64 {
        madsim::time::TimeHandle::current().elapsed().as_micros() as u64
    }

    /// Notes what the network did with a recorded message.
    fn log_fate(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        kind: MessageKind,
        id: u64,
        fate: Delivery,
        cause: Option<&str>,
    ) {
        let Some(log) = &self.log else { return };
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        let key = (src, dst, kind == MessageKind::Reply, id);
        let Some(&i) = log.open.get(&key) else { return };
        let now = Self::now_us();
        let record = &mut log.records[i];
        match fate {
            Delivery::Drop => record.dropped = Some(cause.unwrap_or("loss").to_string()),
            Delivery::Deliver(d) => record.arrived_us.push(now + d.as_micros() as u64),
            Delivery::Duplicate(a, b) => {
                record.arrived_us.push(now + a.as_micros() as u64);
                record.arrived_us.push(now + b.as_micros() as u64);
            }
        }
    }

    /// Ends every network fault.
    pub fn heal(&self) {
        self.fates.heal();
    }

    fn name(&self, addr: SocketAddr) -> Option<NodeName> {
        self.names.get(&addr.ip()).copied()
    }

    /// A node's name for the message log, or its address if it is no node of the system.
    fn label(&self, addr: SocketAddr) -> String {
        self.name(addr)
            .map_or_else(|| addr.ip().to_string(), |n| n.to_string())
    }
}

/// A short human description of a message, for the history.
pub fn describe(kind: MessageKind, request_id: u64, body: &[u8]) -> String {
    match kind {
        MessageKind::Request => match Request::decode(body) {
            Ok(Request::InitProducerId { producer_key, boot }) => {
                format!("init-producer-id {producer_key} boot={boot}")
            }
            Ok(Request::Produce {
                partition,
                epoch,
                base_seq,
                records,
                ..
            }) => {
                format!(
                    "produce partition={partition} epoch={epoch} seq={base_seq}+{}",
                    records.len()
                )
            }
            Ok(Request::Fetch {
                partition, offset, ..
            }) => format!("fetch partition={partition} offset={offset}"),
            Ok(Request::OffsetCommit {
                partition, offset, ..
            }) => format!("commit partition={partition} offset={offset}"),
            Ok(Request::OffsetFetch { partition, .. }) => {
                format!("offset-fetch partition={partition}")
            }
            Ok(Request::Apply { payment, .. }) => format!("apply {}", payment.id),
            Err(_) => format!("malformed request #{request_id}"),
        },
        MessageKind::Reply => match Response::decode(body) {
            Ok(Response::Produced { base_offset }) => {
                format!("reply #{request_id}: produced offset={base_offset}")
            }
            Ok(Response::Fetched { records, .. }) => {
                format!("reply #{request_id}: {} records", records.len())
            }
            Ok(Response::Applied { duplicate }) => {
                format!("reply #{request_id}: applied duplicate={duplicate}")
            }
            Ok(Response::Error(code)) => format!("reply #{request_id}: error {code}"),
            Ok(other) => format!(
                "reply #{request_id}: {}",
                format!("{other:?}").split([' ', '{']).next().unwrap_or("")
            ),
            Err(_) => format!("malformed reply #{request_id}"),
        },
    }
}

impl NetFaults for Network {
    fn on_send(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        kind: MessageKind,
        request_id: u64,
        body: &[u8],
    ) {
        let Some(log) = &self.log else { return };
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        let payments = match kind {
            MessageKind::Request => payments_of(kind, body),
            // A reply carries what its request carried (or, for a fetch, the records).
            MessageKind::Reply => {
                let fetched = payments_of(kind, body);
                if fetched.is_empty() {
                    log.open
                        .get(&(dst, src, false, request_id))
                        .map(|&i| log.records[i].payments.clone())
                        .unwrap_or_default()
                } else {
                    fetched
                }
            }
        };
        let record = MessageRecord {
            from: self.label(src),
            to: self.label(dst),
            kind: if kind == MessageKind::Request {
                "request"
            } else {
                "reply"
            },
            label: describe(kind, request_id, body),
            payments,
            sent_us: Self::now_us(),
            arrived_us: Vec::new(),
            dropped: None,
        };
        let i = log.records.len();
        log.records.push(record);
        log.open
            .insert((src, dst, kind == MessageKind::Reply, request_id), i);
    }

    fn on_message(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        kind: MessageKind,
        request_id: u64,
        body: &[u8],
    ) -> Delivery {
        self.recorder.step();
        let now_ms = madsim::time::TimeHandle::current().elapsed().as_millis() as u64;
        let (Some(from), Some(to)) = (self.name(src), self.name(dst)) else {
            // Only the system's nodes talk on the simulated network; nothing else has a fate.
            return Delivery::Deliver(Duration::ZERO);
        };
        let fate = self.fates.decide(now_ms, from, to);
        let message = || describe(kind, request_id, body);
        if let Some(cause) = fate.dropped {
            self.recorder.harness(
                to,
                HarnessEvent::MessageDropped {
                    from,
                    message: message(),
                    cause: cause.name().to_string(),
                },
            );
            self.log_fate(
                src,
                dst,
                kind,
                request_id,
                Delivery::Drop,
                Some(cause.name()),
            );
            return Delivery::Drop;
        }
        let delay = fate.delay;
        if !delay.is_zero() {
            self.recorder.harness(
                to,
                HarnessEvent::MessageDelayed {
                    from,
                    message: message(),
                    delay_us: delay.as_micros() as u64,
                },
            );
        }
        let delivery = match fate.duplicate_gap {
            Some(gap) => {
                self.recorder.harness(
                    to,
                    HarnessEvent::MessageDuplicated {
                        from,
                        message: message(),
                    },
                );
                Delivery::Duplicate(delay, delay + gap)
            }
            None => Delivery::Deliver(delay),
        };
        self.log_fate(src, dst, kind, request_id, delivery, None);
        delivery
    }
}
