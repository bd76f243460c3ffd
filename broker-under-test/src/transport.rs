//! Request/reply transport between nodes, and the hook through which the harness injects network
//! faults.
//!
//! Nodes only ever see [`Transport`]. In the simulation it is [`SimTransport`], a thin layer over
//! madsim's datagram `Endpoint`: every message is a datagram, so loss is silent and a caller learns
//! of it only by its timeout. Each arriving message first passes the [`NetFaults`] hook, which
//! decides whether it is dropped, delayed or delivered twice. The decision is taken where the
//! message arrives, so a message already in the network outlives a crash of its sender (a
//! zombie's delayed request), and dies with a crash of its receiver.

use crate::storage::BoxFuture;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a call got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No reply within the timeout: the request or the reply was lost or is late, or the peer is
    /// down. The request may or may not have taken effect.
    Timeout,
    /// This node's own network endpoint is gone (its incarnation is dying).
    Closed,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => write!(f, "timed out"),
            CallError::Closed => write!(f, "transport closed"),
        }
    }
}

impl std::error::Error for CallError {}

/// A request that arrived at this node, with what is needed to answer it.
#[derive(Debug)]
pub struct Incoming {
    pub from: SocketAddr,
    pub request_id: u64,
    pub body: Vec<u8>,
}

/// Request/reply messaging between nodes, with request ids and timeouts on simulated time.
pub trait Transport: Send + Sync {
    /// This node's address.
    fn local_addr(&self) -> SocketAddr;
    /// Sends `request` to `dst` and waits at most `timeout` for the matching reply.
    fn call<'a>(
        &'a self,
        dst: SocketAddr,
        request: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, CallError>>;
    /// Waits for the next request addressed to this node; `None` once the transport is closed.
    fn next_request(&self) -> BoxFuture<'_, Option<Incoming>>;
    /// A request that has already arrived, if any, without waiting.
    fn try_next_request(&self) -> Option<Incoming>;
    /// Answers `request`. A reply is fire-and-forget, like any datagram: it leaves in the
    /// background, so a server answering a group of requests does not pay each send in turn.
    fn reply(&self, request: &Incoming, response: Vec<u8>);
}

/// What the network does with one arriving message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver after this extra delay (zero: at once).
    Deliver(Duration),
    /// Lose the message.
    Drop,
    /// Deliver two copies, after each delay.
    Duplicate(Duration, Duration),
}

/// Whether a message is a request or a reply, as the fault hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Reply,
}

/// The harness's hook on every message: it decides each message's fate from the run's seeded
/// generator and records it. `body` is the encoded request or response.
pub trait NetFaults: Send + Sync {
    /// A message leaves `src` for `dst`, before the network decides its fate. Observation only
    /// (the harness draws an HTML timeline from it); the default does nothing.
    fn on_send(
        &self,
        _src: SocketAddr,
        _dst: SocketAddr,
        _kind: MessageKind,
        _request_id: u64,
        _body: &[u8],
    ) {
    }

    fn on_message(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        kind: MessageKind,
        request_id: u64,
        body: &[u8],
    ) -> Delivery;
}

/// A network without faults.
pub struct NoFaults;

impl NetFaults for NoFaults {
    fn on_message(
        &self,
        _: SocketAddr,
        _: SocketAddr,
        _: MessageKind,
        _: u64,
        _: &[u8],
    ) -> Delivery {
        Delivery::Deliver(Duration::ZERO)
    }
}

/// Envelope header: kind (u8) and request id (u64), ahead of the body.
const ENVELOPE_LEN: usize = 9;

pub(crate) fn envelope(kind: MessageKind, request_id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_LEN + body.len());
    out.push(match kind {
        MessageKind::Request => 0,
        MessageKind::Reply => 1,
    });
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits an envelope; `None` for bytes that are not one (a malformed datagram is dropped, as a
/// real stack drops a packet with a bad header).
pub(crate) fn open_envelope(bytes: &[u8]) -> Option<(MessageKind, u64, &[u8])> {
    if bytes.len() < ENVELOPE_LEN {
        return None;
    }
    let kind = match bytes[0] {
        0 => MessageKind::Request,
        1 => MessageKind::Reply,
        _ => return None,
    };
    let id = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
    Some((kind, id, &bytes[ENVELOPE_LEN..]))
}

/// The bookkeeping every transport shares: request ids, calls waiting for their reply, and
/// the queue of requests that arrived. A transport only moves datagrams and hands each arriving
/// one to [`Dispatch::deliver`].
pub(crate) struct Dispatch {
    next_id: std::sync::atomic::AtomicU64,
    /// Calls waiting for their reply, by request id.
    pending:
        std::sync::Mutex<std::collections::BTreeMap<u64, tokio::sync::oneshot::Sender<Vec<u8>>>>,
    requests_tx: tokio::sync::mpsc::UnboundedSender<Incoming>,
    requests_rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Incoming>>,
}

impl Dispatch {
    /// `incarnation` is folded into request ids, so a late reply to a dead incarnation's
    /// request can never be taken for the reply to a new one.
    pub(crate) fn new(incarnation: u64) -> Dispatch {
        let (requests_tx, requests_rx) = tokio::sync::mpsc::unbounded_channel();
        Dispatch {
            next_id: std::sync::atomic::AtomicU64::new((incarnation << 40) + 1),
            pending: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            requests_tx,
            requests_rx: tokio::sync::Mutex::new(requests_rx),
        }
    }

    fn pending(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<u64, tokio::sync::oneshot::Sender<Vec<u8>>>,
    > {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new request id, with the receiver its reply will arrive on.
    pub(crate) fn begin_call(&self) -> (u64, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending().insert(id, tx);
        (id, rx)
    }

    /// Waits at most `timeout` for the reply to call `id`, then forgets the call.
    pub(crate) async fn finish_call(
        &self,
        id: u64,
        reply: tokio::sync::oneshot::Receiver<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let result = match madsim::time::timeout(timeout, reply).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(CallError::Closed),
            Err(_) => Err(CallError::Timeout),
        };
        self.pending().remove(&id);
        result
    }

    /// Forgets call `id` (its request could not be sent).
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub(crate) fn abandon_call(&self, id: u64) {
        self.pending().remove(&id);
    }

    /// Hands an arriving message on: a request to the queue, a reply to its waiting call.
    pub(crate) fn deliver(&self, kind: MessageKind, id: u64, from: SocketAddr, body: Vec<u8>) {
        match kind {
            MessageKind::Request => {
                let _ = self.requests_tx.send(Incoming {
                    from,
                    request_id: id,
                    body,
                });
            }
            MessageKind::Reply => {
                // A reply nobody waits for (late, or a duplicate) is dropped, as a client would.
                if let Some(tx) = self.pending().remove(&id) {
                    let _ = tx.send(body);
                }
            }
        }
    }

    pub(crate) async fn next_request(&self) -> Option<Incoming> {
        self.requests_rx.lock().await.recv().await
    }

    pub(crate) fn try_next_request(&self) -> Option<Incoming> {
        self.requests_rx.try_lock().ok()?.try_recv().ok()
    }
}

#[cfg(madsim)]
pub use sim::SimTransport;

#[cfg(madsim)]
mod sim {
    use super::*;
    use madsim::net::Endpoint;
    use std::sync::Arc;

    /// The one tag every message travels on; the envelope says what it is.
    const TAG: u64 = 0x6578_6163_746c_7931;

    struct Shared {
        local: SocketAddr,
        faults: Arc<dyn NetFaults>,
        dispatch: Dispatch,
    }

    /// [`Transport`] over a madsim `Endpoint`, with every arriving message passed through the
    /// [`NetFaults`] hook.
    pub struct SimTransport {
        endpoint: Endpoint,
        shared: Arc<Shared>,
        /// The one receive loop. madsim charges every receive 1 ms of the receiving task's
        /// simulated time, which caps a node at 1,000 messages per simulated second; several
        /// loops would lift the cap but reorder messages that arrive together, outside the fault
        /// schedule (measured: no-dedup then failed without any fault).
        receiver: madsim::task::JoinHandle<()>,
    }

    impl SimTransport {
        /// Binds `addr` on the current node. `incarnation` must differ between incarnations of the
        /// node: it is folded into request ids, so a late reply to a dead incarnation's request
        /// can never be taken for the reply to a new one.
        pub async fn bind(
            addr: SocketAddr,
            incarnation: u64,
            faults: Arc<dyn NetFaults>,
        ) -> std::io::Result<SimTransport> {
            let endpoint = Endpoint::bind(addr).await?;
            let shared = Arc::new(Shared {
                local: endpoint.local_addr()?,
                faults,
                dispatch: Dispatch::new(incarnation),
            });
            let receiver = madsim::task::spawn(receive_loop(endpoint.clone(), shared.clone()));
            Ok(SimTransport {
                endpoint,
                shared,
                receiver,
            })
        }
    }

    impl Drop for SimTransport {
        fn drop(&mut self) {
            self.receiver.abort();
        }
    }

    async fn receive_loop(endpoint: Endpoint, shared: Arc<Shared>) {
        loop {
            let Ok((payload, from)) = endpoint.recv_from_raw(TAG).await else {
                return;
            };
            let Ok(bytes) = payload.downcast::<Vec<u8>>() else {
                continue;
            };
            let Some((kind, id, body)) = open_envelope(&bytes) else {
                continue;
            };
            let delivery = shared.faults.on_message(from, shared.local, kind, id, body);
            // The datagram's own buffer becomes the body: no copy for a message delivered once.
            let mut body = *bytes;
            body.drain(..ENVELOPE_LEN);
            match delivery {
                Delivery::Drop => {}
                Delivery::Deliver(delay) => deliver_after(&shared, delay, kind, id, from, body),
                Delivery::Duplicate(first, second) => {
                    deliver_after(&shared, first, kind, id, from, body.clone());
                    deliver_after(&shared, second, kind, id, from, body);
                }
            }
        }
    }

    fn deliver_after(
        shared: &Arc<Shared>,
        delay: Duration,
        kind: MessageKind,
        id: u64,
        from: SocketAddr,
        body: Vec<u8>,
    ) {
        if delay.is_zero() {
            shared.dispatch.deliver(kind, id, from, body);
            return;
        }
        // The delayed copy waits on the receiving node, so it dies if the receiver crashes first.
        let shared = shared.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(delay).await;
            shared.dispatch.deliver(kind, id, from, body);
        });
    }

    impl Transport for SimTransport {
        fn local_addr(&self) -> SocketAddr {
            self.shared.local
        }

        fn call<'a>(
            &'a self,
            dst: SocketAddr,
            request: Vec<u8>,
            timeout: Duration,
        ) -> BoxFuture<'a, Result<Vec<u8>, CallError>> {
            Box::pin(async move {
                let (id, reply) = self.shared.dispatch.begin_call();
                self.shared.faults.on_send(
                    self.shared.local,
                    dst,
                    MessageKind::Request,
                    id,
                    &request,
                );
                let datagram = envelope(MessageKind::Request, id, &request);
                let sent = self
                    .endpoint
                    .send_to_raw(dst, TAG, Box::new(datagram))
                    .await;
                if sent.is_err() {
                    self.shared.dispatch.abandon_call(id);
                    return Err(CallError::Closed);
                }
                self.shared.dispatch.finish_call(id, reply, timeout).await
            })
        }

        fn next_request(&self) -> BoxFuture<'_, Option<Incoming>> {
            Box::pin(self.shared.dispatch.next_request())
        }

        fn try_next_request(&self) -> Option<Incoming> {
            self.shared.dispatch.try_next_request()
        }

        fn reply(&self, request: &Incoming, response: Vec<u8>) {
            self.shared.faults.on_send(
                self.shared.local,
                request.from,
                MessageKind::Reply,
                request.request_id,
                &response,
            );
            let datagram = envelope(MessageKind::Reply, request.request_id, &response);
            let (endpoint, to) = (self.endpoint.clone(), request.from);
            madsim::task::spawn(async move {
                // A reply that cannot be sent is a lost datagram; the caller's timeout covers it.
                let _ = endpoint.send_to_raw(to, TAG, Box::new(datagram)).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_garbage_is_refused() {
        let bytes = envelope(MessageKind::Reply, 42, b"body");
        assert_eq!(
            open_envelope(&bytes),
            Some((MessageKind::Reply, 42, &b"body"[..]))
        );
        assert_eq!(open_envelope(&bytes[..5]), None);
        let mut bad = bytes.clone();
        bad[0] = 7;
        assert_eq!(open_envelope(&bad), None);
    }
}
