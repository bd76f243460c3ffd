//! The network fault shim: the run's [`NetFaults`] hook. For every arriving message it checks
//! the schedule's open network windows, draws the message's fate from the run's network
//! generator, and records every loss, duplicate and delay in the history. Asked to, it also
//! tells [`MessageLog`] every message and its fate, for the HTML timeline.

use crate::history::{HarnessEvent, Recorder};
use crate::schedule::{Fault, FaultEntry};
use crate::sim::messages::{describe, InFlight, MessageLog, MessageRecord};
use broker_under_test::transport::{Delivery, MessageKind, NetFaults};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct NetState {
    /// Draws every per-message decision; one stream, consumed in delivery order.
    rng: ChaCha8Rng,
    /// After the heal the network is whole.
    healed: bool,
}

pub struct Network {
    names: BTreeMap<IpAddr, String>,
    log: Option<MessageLog>,
    // invariant: every entry's fault is a network fault
    entries: Vec<FaultEntry>,
    state: Mutex<NetState>,
    recorder: Arc<Recorder>,
    pub messages: AtomicU64,
    pub dropped: AtomicU64,
}

impl Network {
    /// `record_messages` keeps a [`MessageRecord`] per message for the HTML timeline.
    pub fn new(
        names: BTreeMap<IpAddr, String>,
        schedule: &[FaultEntry],
        rng: ChaCha8Rng,
        recorder: Arc<Recorder>,
        record_messages: bool,
    ) -> Network {
        Network {
            names,
            log: record_messages.then(MessageLog::default),
            entries: schedule
                .iter()
                .filter(|e| e.fault.is_network())
                .cloned()
                .collect(),
            state: Mutex::new(NetState { rng, healed: false }),
            recorder,
            messages: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
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
        self.state.lock().unwrap_or_else(|e| e.into_inner()).healed = true;
    }

    fn name(&self, addr: SocketAddr) -> std::borrow::Cow<'_, str> {
        match self.names.get(&addr.ip()) {
            Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
            None => std::borrow::Cow::Owned(addr.ip().to_string()),
        }
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
        if let Some(log) = &self.log {
            let msg = InFlight::new(src, dst, kind, request_id);
            let (from, to) = (self.name(src).into_owned(), self.name(dst).into_owned());
            log.sent(msg, from, to, body, Self::now_us());
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
        self.messages.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.healed {
            drop(state);
            self.log_fate(
                src,
                dst,
                kind,
                request_id,
                Delivery::Deliver(Duration::ZERO),
                None,
            );
            return Delivery::Deliver(Duration::ZERO);
        }
        let now_ms = madsim::time::TimeHandle::current().elapsed().as_millis() as u64;
        let (from, to) = (self.name(src), self.name(dst));
        let mut dropped = None;
        let mut duplicate = false;
        let mut delay_us = 0;
        for entry in self.entries.iter().filter(|e| e.active_at(now_ms)) {
            let touches = entry.target == "*" || entry.target == from || entry.target == to;
            match &entry.fault {
                Fault::Partition { peer, two_way } => {
                    let cut = (entry.target == from && *peer == to)
                        || (*two_way && *peer == from && entry.target == to);
                    if cut {
                        dropped = Some("partition");
                    }
                }
                Fault::Loss { rate } if touches => {
                    let lost = state.rng.random_bool(*rate);
                    dropped = dropped.or(lost.then_some("loss"));
                }
                Fault::Duplicate { rate } if touches => duplicate |= state.rng.random_bool(*rate),
                Fault::Delay { spread_ms } if touches => {
                    delay_us += state.rng.random_range(0..=spread_ms * 1000)
                }
                _ => {}
            }
        }
        let second_copy_us = if duplicate && dropped.is_none() {
            state.rng.random_range(0..=20_000)
        } else {
            0
        };
        drop(state);
        let message = || describe(kind, request_id, body);
        if let Some(cause) = dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.recorder.harness(
                &to,
                HarnessEvent::MessageDropped {
                    from: from.into_owned(),
                    message: message(),
                    cause: cause.to_string(),
                },
            );
            self.log_fate(src, dst, kind, request_id, Delivery::Drop, Some(cause));
            return Delivery::Drop;
        }
        if delay_us > 0 {
            self.recorder.harness(
                &to,
                HarnessEvent::MessageDelayed {
                    from: from.to_string(),
                    message: message(),
                    delay_us,
                },
            );
        }
        let delay = Duration::from_micros(delay_us);
        if duplicate {
            self.recorder.harness(
                &to,
                HarnessEvent::MessageDuplicated {
                    from: from.into_owned(),
                    message: message(),
                },
            );
            let fate = Delivery::Duplicate(delay, delay + Duration::from_micros(second_copy_us));
            self.log_fate(src, dst, kind, request_id, fate, None);
            return fate;
        }
        self.log_fate(src, dst, kind, request_id, Delivery::Deliver(delay), None);
        Delivery::Deliver(delay)
    }
}
