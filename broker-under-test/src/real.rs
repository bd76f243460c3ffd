//! The real world, outside the simulation: a UDP transport on loopback, files with fsync, and
//! an observer that appends events as JSON lines. The node binary (`src/bin/node.rs`) runs the
//! very same broker, producer, consumer and store code on these.
//!
//! Only built without `--cfg madsim`; see the README for the command.

use crate::name::NodeName;
use crate::observe::{Event, Observer};
use crate::storage::{BoxFuture, Storage, StorageError};
use crate::transport::{CallError, Dispatch, Incoming, MessageKind, Transport};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// The largest datagram a node sends or accepts.
const DATAGRAM_MAX: usize = 64 * 1024;

/// [`Transport`] over a UDP socket: the same envelope and request ids as the simulation's
/// `SimTransport`, real datagrams on loopback.
pub struct UdpTransport {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    dispatch: Arc<Dispatch>,
}

impl UdpTransport {
    /// Binds `addr`. `incarnation` must differ between runs of the same node (see
    /// `SimTransport::bind`): late replies to a dead incarnation are then never mistaken.
    pub async fn bind(addr: SocketAddr, incarnation: u64) -> std::io::Result<UdpTransport> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let local = socket.local_addr()?;
        let dispatch = Arc::new(Dispatch::new(incarnation));
        tokio::spawn(receive_loop(socket.clone(), dispatch.clone()));
        Ok(UdpTransport {
            socket,
            local,
            dispatch,
        })
    }
}

async fn receive_loop(socket: Arc<UdpSocket>, dispatch: Arc<Dispatch>) {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some((kind, id, body)) = crate::transport::open_envelope(&buf[..len]) {
            dispatch.deliver(kind, id, from, body.to_vec());
        }
    }
}

impl Transport for UdpTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn call<'a>(
        &'a self,
        dst: SocketAddr,
        request: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, CallError>> {
        Box::pin(async move {
            let (id, reply) = self.dispatch.begin_call();
            let datagram = crate::transport::envelope(MessageKind::Request, id, &request);
            // A send that fails (a full buffer) is a lost datagram: the timeout covers it.
            let _ = self.socket.send_to(&datagram, dst).await;
            self.dispatch.finish_call(id, reply, timeout).await
        })
    }

    fn next_request(&self) -> BoxFuture<'_, Option<Incoming>> {
        Box::pin(self.dispatch.next_request())
    }

    fn try_next_request(&self) -> Option<Incoming> {
        self.dispatch.try_next_request()
    }

    fn reply(&self, request: &Incoming, response: Vec<u8>) {
        let datagram =
            crate::transport::envelope(MessageKind::Reply, request.request_id, &response);
        let (socket, to) = (self.socket.clone(), request.from);
        tokio::spawn(async move {
            let _ = socket.send_to(&datagram, to).await;
        });
    }
}

/// [`Storage`] on real files in one directory, with real fsync.
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    pub fn new(dir: PathBuf) -> std::io::Result<FileStorage> {
        std::fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Io(e.to_string())
}

impl Storage for FileStorage {
    fn read<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<Vec<u8>, StorageError>> {
        Box::pin(async move {
            match std::fs::read(self.dir.join(file)) {
                Ok(bytes) => Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(io(e)),
            }
        })
    }

    fn append<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file))
                .map_err(io)?;
            f.write_all(bytes).map_err(io)
        })
    }

    fn sync<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            match std::fs::OpenOptions::new()
                .append(true)
                .open(self.dir.join(file))
            {
                Ok(f) => f.sync_all().map_err(io),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(e)),
            }
        })
    }

    fn truncate<'a>(
        &'a self,
        file: &'a str,
        len: usize,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join(file))
                .map_err(io)?;
            f.set_len(len as u64).map_err(io)?;
            f.sync_all().map_err(io)
        })
    }

    fn replace<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let tmp = self.dir.join(format!("{file}.tmp"));
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, self.dir.join(file)).map_err(io)?;
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io)
        })
    }
}

/// Appends every event as a JSON line `{"at_us", "node", "event", ...}` to a file, one
/// unbuffered write per line, so a SIGKILL loses no event that was recorded.
pub struct JsonLinesObserver {
    file: Mutex<std::fs::File>,
}

impl JsonLinesObserver {
    pub fn open(path: &std::path::Path) -> std::io::Result<JsonLinesObserver> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLinesObserver {
            file: Mutex::new(file),
        })
    }
}

impl Observer for JsonLinesObserver {
    fn record(&self, node: NodeName, event: Event) {
        // Real mode only: events are stamped with the wall clock so that the harness can merge
        // the processes' files into one history. Nothing reads the stamp to decide anything.
        let at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut line = serde_json::to_value(&event).unwrap_or_default();
        if let Some(map) = line.as_object_mut() {
            map.insert("at_us".to_string(), at_us.into());
            map.insert("node".to_string(), node.to_string().into());
        }
        let mut text = line.to_string();
        text.push('\n');
        let _ = self
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(text.as_bytes());
    }
}
