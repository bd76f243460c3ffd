//! What every node runs with: its name, transport, storage, observer and planted bugs, plus the
//! request helper and the error a node dies of.

use crate::bugs::{Bug, Bugs};
use crate::codec::{DecodeError, ErrorCode, Request, Response};
use crate::name::NodeName;
use crate::observe::{Event, Observer, Probe};
use crate::storage::{Storage, StorageError};
use crate::transport::{CallError, Transport};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A node incarnation's view of the world. Built afresh at every (re)start.
#[derive(Clone)]
pub struct NodeCtx {
    pub name: NodeName,
    pub transport: Arc<dyn Transport>,
    pub storage: Arc<dyn Storage>,
    pub observer: Arc<dyn Observer>,
    pub bugs: Bugs,
}

/// Why a call did not produce a usable response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFailure {
    Transport(CallError),
    /// The reply arrived but did not decode.
    BadReply(DecodeError),
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallFailure::Transport(e) => write!(f, "{e}"),
            CallFailure::BadReply(e) => write!(f, "undecodable reply: {e}"),
        }
    }
}

impl NodeCtx {
    pub fn record(&self, event: Event) {
        self.observer.record(self.name, event);
    }

    /// Marks that a rare path that matters was taken (see [`Probe`]).
    pub fn probe(&self, probe: Probe) {
        self.observer.probe(self.name, probe);
    }

    pub fn bug(&self, bug: Bug) -> bool {
        self.bugs.has(bug)
    }

    /// Decodes a request a server received; one that does not decode is recorded and gets
    /// the `Malformed` reply (the `Err`), never a panic.
    pub fn decode_request(&self, body: &[u8]) -> Result<Request, Response> {
        Request::decode(body).map_err(|e| {
            self.record(Event::MalformedRequest {
                error: e.to_string(),
            });
            Response::Error(ErrorCode::Malformed)
        })
    }

    /// One request, one reply (or a failure); no retry.
    pub async fn call(
        &self,
        dst: SocketAddr,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, CallFailure> {
        let reply = self
            .transport
            .call(dst, request.encode(), timeout)
            .await
            .map_err(CallFailure::Transport)?;
        Response::decode(&reply).map_err(CallFailure::BadReply)
    }
}

/// Request timeouts and retry backoff shared by the clients (producer and consumer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub request_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            request_timeout: Duration::from_millis(60),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(320),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry `attempt` (1-based): doubling from the minimum, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff_min
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// What a node dies of. The harness reports a node that returns one as a failed run.
#[derive(Debug)]
pub enum NodeError {
    Storage(StorageError),
    Bind(String),
    /// Durable state that must decode did not (it was written whole by an atomic replace).
    Corrupt {
        file: String,
        error: DecodeError,
    },
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Storage(e) => write!(f, "storage: {e}"),
            NodeError::Bind(e) => write!(f, "bind: {e}"),
            NodeError::Corrupt { file, error } => {
                write!(f, "durable file {file} is corrupt: {error}")
            }
        }
    }
}

impl std::error::Error for NodeError {}

impl From<StorageError> for NodeError {
    fn from(e: StorageError) -> Self {
        NodeError::Storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(6), Duration::from_millis(320));
        assert_eq!(p.backoff(60), Duration::from_millis(320));
    }
}
