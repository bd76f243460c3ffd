//! Real mode's network faults: a datagram proxy in front of the broker and the store. Clients
//! send to the proxy's public address; it forwards each request through an upstream socket of
//! that client's own (so the server's reply comes back to it) and each reply back to the
//! client, losing, cutting or duplicating messages as the schedule's loss, partition and
//! duplicate windows say, in real time.

use crate::history::{Entry, HarnessEvent, What};
use crate::schedule::{Fault, FaultEntry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DATAGRAM_MAX: usize = 64 * 1024;
/// How often a blocked proxy thread wakes to see whether it should stop.
const POLL: Duration = Duration::from_millis(50);

/// What the proxy decides with, shared by its threads.
pub struct Rules {
    // invariant: every entry is a network fault
    entries: Vec<FaultEntry>,
    started: Instant,
    start_us: u64,
    /// Node name by listening port (every node sends from the port it listens on).
    names: BTreeMap<u16, String>,
    rng: Mutex<ChaCha8Rng>,
    healed: AtomicBool,
    pub messages: AtomicU64,
    pub dropped: AtomicU64,
    events: Mutex<Vec<Entry>>,
}

/// A message's fate.
enum Fate {
    Deliver,
    Drop(&'static str),
    Duplicate,
}

impl Rules {
    pub fn new(
        schedule: &[FaultEntry],
        seed: u64,
        start_us: u64,
        names: BTreeMap<u16, String>,
    ) -> Rules {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        Rules {
            entries: schedule
                .iter()
                .filter(|e| e.fault.is_network())
                .cloned()
                .collect(),
            started: Instant::now(),
            start_us,
            names,
            rng: Mutex::new(rng),
            healed: AtomicBool::new(false),
            messages: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            events: Mutex::new(Vec::new()),
        }
    }

    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }

    fn name(&self, addr: SocketAddr) -> String {
        self.names
            .get(&addr.port())
            .cloned()
            .unwrap_or_else(|| addr.to_string())
    }

    fn fate(&self, from: &str, to: &str) -> Fate {
        self.messages.fetch_add(1, Ordering::Relaxed);
        if self.healed.load(Ordering::Relaxed) {
            return Fate::Deliver;
        }
        let now_ms = self.started.elapsed().as_millis() as u64;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut duplicate = false;
        for e in self.entries.iter().filter(|e| e.active_at(now_ms)) {
            let touches = e.target == "*" || e.target == from || e.target == to;
            match &e.fault {
                Fault::Partition { peer, two_way }
                    if (e.target == from && peer == to)
                        || (*two_way && peer == from && e.target == to) =>
                {
                    return Fate::Drop("partition");
                }
                Fault::Loss { rate } if touches && rng.random_bool(*rate) => {
                    return Fate::Drop("loss")
                }
                Fault::Duplicate { rate } if touches => duplicate |= rng.random_bool(*rate),
                _ => {}
            }
        }
        if duplicate {
            Fate::Duplicate
        } else {
            Fate::Deliver
        }
    }

    /// Applies the fate of one datagram from `from` to `to`, sending it on `socket` to `dst`.
    fn pass(&self, socket: &UdpSocket, bytes: &[u8], dst: SocketAddr, from: &str, to: &str) {
        let fate = self.fate(from, to);
        let at_us = super::epoch_us().saturating_sub(self.start_us);
        match fate {
            Fate::Drop(cause) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let what = HarnessEvent::MessageDropped {
                    from: from.to_string(),
                    message: format!("{} bytes", bytes.len()),
                    cause: cause.to_string(),
                };
                self.events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Entry {
                        at_us,
                        node: to.to_string(),
                        what: What::Harness(what),
                    });
            }
            Fate::Deliver => {
                let _ = socket.send_to(bytes, dst);
            }
            Fate::Duplicate => {
                let _ = socket.send_to(bytes, dst);
                let _ = socket.send_to(bytes, dst);
                let what = HarnessEvent::MessageDuplicated {
                    from: from.to_string(),
                    message: format!("{} bytes", bytes.len()),
                };
                self.events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Entry {
                        at_us,
                        node: to.to_string(),
                        what: What::Harness(what),
                    });
            }
        }
    }

    /// The proxy's drops and duplicates, for the history.
    pub fn events(&self) -> Vec<Entry> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The running proxy. Dropping it stops its threads.
pub struct Proxy {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The public address clients use for each server.
    pub public: BTreeMap<String, SocketAddr>,
}

impl Proxy {
    /// Fronts each `(name, real address)` server.
    pub fn start(servers: &[(String, SocketAddr)], rules: Arc<Rules>) -> std::io::Result<Proxy> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut public = BTreeMap::new();
        for (name, real) in servers {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.set_read_timeout(Some(POLL))?;
            public.insert(name.clone(), socket.local_addr()?);
            let (stop, rules, name, real) = (stop.clone(), rules.clone(), name.clone(), *real);
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
    server: String,
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
        let client_name = rules.name(client);
        if let std::collections::btree_map::Entry::Vacant(slot) = upstreams.entry(client) {
            let Ok(upstream) = UdpSocket::bind("127.0.0.1:0") else {
                continue;
            };
            let _ = upstream.set_read_timeout(Some(POLL));
            let (Ok(up), Ok(back)) = (upstream.try_clone(), public.try_clone()) else {
                continue;
            };
            let (rules, stop, server, client_name) = (
                rules.clone(),
                stop.clone(),
                server.clone(),
                client_name.clone(),
            );
            children.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; DATAGRAM_MAX];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, _)) = up.recv_from(&mut buf) {
                        rules.pass(&back, &buf[..len], client, &server, &client_name);
                    }
                }
            }));
            slot.insert(upstream);
        }
        rules.pass(
            &upstreams[&client],
            &buf[..len],
            real,
            &client_name,
            &server,
        );
    }
    for c in children {
        let _ = c.join();
    }
}
