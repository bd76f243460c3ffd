//! Real mode's network faults: a datagram proxy in front of the broker and the store. Clients
//! send to the proxy's public address; it forwards each request through an upstream socket of
//! that client's own (so the server's reply comes back to it) and each reply back to the
//! client. Each datagram's fate comes from the same [`Fates`] the simulation's shim asks:
//! lost, delayed or duplicated as the schedule's windows say, in real time.

use crate::history::{Entry, HarnessEvent, What};
use crate::schedule::FaultEntry;
use crate::world::fate::{Fate, Fates};
use broker_under_test::NodeName;
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DATAGRAM_MAX: usize = 64 * 1024;
/// How often a blocked proxy thread wakes to see whether it should stop.
const POLL: Duration = Duration::from_millis(50);

/// What the proxy decides with, shared by its threads.
pub struct Rules {
    /// The network's decisions, shared with the simulation; counts messages and losses.
    pub fates: Fates,
    started: Instant,
    start_us: u64,
    /// Node name by listening port (every node sends from the port it listens on).
    names: BTreeMap<u16, NodeName>,
    delayed: Mutex<Sender<Delayed>>,
    events: Mutex<Vec<Entry>>,
}

/// A datagram waiting out its injected delay.
pub struct Delayed {
    due: Instant,
    // Orders datagrams due at the same instant by arrival.
    seq: u64,
    socket: UdpSocket,
    bytes: Vec<u8>,
    dst: SocketAddr,
}

impl Rules {
    /// The rules and the receiving end of their delay line (see [`delay_line`]).
    pub fn new(
        schedule: &[FaultEntry],
        network_rng: ChaCha8Rng,
        start_us: u64,
        names: BTreeMap<u16, NodeName>,
    ) -> (Rules, Receiver<Delayed>) {
        let (tx, rx) = mpsc::channel();
        let rules = Rules {
            fates: Fates::new(schedule, network_rng),
            started: Instant::now(),
            start_us,
            names,
            delayed: Mutex::new(tx),
            events: Mutex::new(Vec::new()),
        };
        (rules, rx)
    }

    pub fn heal(&self) {
        self.fates.heal();
    }

    fn name(&self, addr: SocketAddr) -> Option<NodeName> {
        self.names.get(&addr.port()).copied()
    }

    fn note(&self, to: NodeName, what: HarnessEvent) {
        let at_us = super::epoch_us().saturating_sub(self.start_us);
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry {
                at_us,
                node: to.into(),
                what: What::Harness(what),
            });
    }

    /// Sends `bytes` to `dst` on `socket` after `delay`: at once, or through the delay line.
    fn send_after(&self, socket: &UdpSocket, bytes: &[u8], dst: SocketAddr, delay: Duration) {
        if delay.is_zero() {
            let _ = socket.send_to(bytes, dst);
            return;
        }
        let Ok(socket) = socket.try_clone() else {
            return;
        };
        let delayed = Delayed {
            due: Instant::now() + delay,
            seq: 0,
            socket,
            bytes: bytes.to_vec(),
            dst,
        };
        let _ = self
            .delayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(delayed);
    }

    /// Applies the fate of one datagram from `from` to `to`, sending it on `socket` to `dst`.
    fn pass(
        &self,
        socket: &UdpSocket,
        bytes: &[u8],
        dst: SocketAddr,
        from: NodeName,
        to: NodeName,
    ) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let Fate {
            dropped,
            delay,
            duplicate_gap,
        } = self.fates.decide(now_ms, from, to);
        let message = || format!("{} bytes", bytes.len());
        if let Some(cause) = dropped {
            let what = HarnessEvent::MessageDropped {
                from,
                message: message(),
                cause: cause.name().to_string(),
            };
            self.note(to, what);
            return;
        }
        if !delay.is_zero() {
            let delay_us = delay.as_micros() as u64;
            let message = message();
            self.note(
                to,
                HarnessEvent::MessageDelayed {
                    from,
                    message,
                    delay_us,
                },
            );
        }
        self.send_after(socket, bytes, dst, delay);
        if let Some(gap) = duplicate_gap {
            self.send_after(socket, bytes, dst, delay + gap);
            let what = HarnessEvent::MessageDuplicated {
                from,
                message: message(),
            };
            self.note(to, what);
        }
    }

    /// The proxy's drops, delays and duplicates, for the history.
    pub fn events(&self) -> Vec<Entry> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The delay line: holds delayed datagrams and sends each when it is due, until `stop`.
fn delay_line(rx: Receiver<Delayed>, stop: Arc<AtomicBool>) {
    let mut waiting: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    let mut seq = 0;
    loop {
        while waiting.peek().is_some_and(|d| d.0.due <= Instant::now()) {
            let Reverse(d) = waiting.pop().expect("peeked");
            let _ = d.socket.send_to(&d.bytes, d.dst);
        }
        let wait = waiting
            .peek()
            .map_or(POLL, |d| d.0.due.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait.min(POLL)) {
            Ok(mut d) => {
                seq += 1;
                d.seq = seq;
                waiting.push(Reverse(d));
            }
            // Stopping ends the run: whatever still waits is lost with the processes.
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
    }
}

/// The running proxy. Dropping it stops its threads.
pub struct Proxy {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The public address clients use for each server.
    pub public: BTreeMap<NodeName, SocketAddr>,
}

impl Proxy {
    /// Fronts each `(name, real address)` server; `delayed` is the receiving end of the
    /// rules' delay line.
    pub fn start(
        servers: &[(NodeName, SocketAddr)],
        rules: Arc<Rules>,
        delayed: Receiver<Delayed>,
    ) -> std::io::Result<Proxy> {
        let stop = Arc::new(AtomicBool::new(false));
        let line_stop = stop.clone();
        let mut threads = vec![std::thread::spawn(move || delay_line(delayed, line_stop))];
        let mut public = BTreeMap::new();
        for (name, real) in servers {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.set_read_timeout(Some(POLL))?;
            public.insert(*name, socket.local_addr()?);
            let (stop, rules, name, real) = (stop.clone(), rules.clone(), *name, *real);
            threads.push(std::thread::spawn(move || {
                front(socket, real, name, rules, stop)
            }));
        }
        Ok(Proxy {
            stop,
            threads,
            public,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Serves one server's public socket: requests in, through each client's upstream socket.
fn front(
    public: UdpSocket,
    real: SocketAddr,
    server: NodeName,
    rules: Arc<Rules>,
    stop: Arc<AtomicBool>,
) {
    let mut upstreams: BTreeMap<SocketAddr, UdpSocket> = BTreeMap::new();
    let mut children = Vec::new();
    let mut buf = vec![0u8; DATAGRAM_MAX];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, client)) = public.recv_from(&mut buf) else {
            continue;
        };
        // Only the system's nodes talk through the proxy; anything else is not forwarded.
        let Some(client_name) = rules.name(client) else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = upstreams.entry(client) {
            let Ok(upstream) = UdpSocket::bind("127.0.0.1:0") else {
                continue;
            };
            let _ = upstream.set_read_timeout(Some(POLL));
            let (Ok(up), Ok(back)) = (upstream.try_clone(), public.try_clone()) else {
                continue;
            };
            let (rules, stop) = (rules.clone(), stop.clone());
            children.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; DATAGRAM_MAX];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, _)) = up.recv_from(&mut buf) {
                        rules.pass(&back, &buf[..len], client, server, client_name);
                    }
                }
            }));
            slot.insert(upstream);
        }
        rules.pass(&upstreams[&client], &buf[..len], real, client_name, server);
    }
    for c in children {
        let _ = c.join();
    }
}
