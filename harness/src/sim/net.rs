//! The network fault shim: the run's [`NetFaults`] hook. For every arriving message it asks
//! the run's [`Fates`] (the decision real mode's proxy shares) what happens to it, and records
//! every loss, duplicate and delay in the history. Asked to, it also tells [`MessageLog`]
//! every message and its fate, for the HTML timeline.

use crate::history::{HarnessEvent, Recorder};
use crate::schedule::FaultEntry;
use crate::sim::messages::{InFlight, MessageLog, MessageRecord};
use crate::system::SystemRef;
use crate::world::fate::Fates;
use broker_under_test::transport::{Delivery, MessageKind, NetFaults};
use broker_under_test::NodeName;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub struct Network {
    /// Every node's address; a dozen at most, so a scan beats a tree on every message.
    names: Vec<(IpAddr, NodeName)>,
    log: Option<MessageLog>,
    /// Decides every message's fate; counts messages and losses.
    pub fates: Fates,
    recorder: Arc<Recorder>,
    /// Describes messages for the history and the timeline.
    system: SystemRef,
}

impl Network {
    /// `record_messages` keeps a [`MessageRecord`] per message for the HTML timeline.
    pub fn new(
        names: BTreeMap<IpAddr, NodeName>,
        schedule: &[FaultEntry],
        rng: ChaCha8Rng,
        recorder: Arc<Recorder>,
        record_messages: bool,
        system: SystemRef,
    ) -> Network {
        Network {
            names: names.into_iter().collect(),
            log: record_messages.then(MessageLog::default),
            fates: Fates::new(schedule, rng),
            recorder,
            system,
        }
    }

    /// The recorded messages, in send order (empty unless recording).
    pub fn take_messages(&self) -> Vec<MessageRecord> {
        self.log.as_ref().map(MessageLog::take).unwrap_or_default()
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
        if let Some(log) = &self.log {
            let msg = InFlight::new(src, dst, kind, id);
            log.fate(msg, fate, cause, Self::now_us());
        }
    }

    /// Ends every network fault.
    pub fn heal(&self) {
        self.fates.heal();
    }

    fn name(&self, addr: SocketAddr) -> Option<NodeName> {
        let ip = addr.ip();
        self.names.iter().find(|(a, _)| *a == ip).map(|(_, n)| *n)
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
        // Only the system's nodes talk on the simulated network.
        if let (Some(from), Some(to)) = (self.name(src), self.name(dst)) {
            let msg = InFlight::new(src, dst, kind, request_id);
            let view = self.system.describe(kind, request_id, body);
            log.sent(msg, from, to, view, Self::now_us());
        }
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
        let message = || self.system.describe(kind, request_id, body).label;
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
