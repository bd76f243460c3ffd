//! Durable storage: a small file-like trait, and the simulated disk with sync and crash semantics.
//!
//! madsim's own `fs` keeps unsynced writes across a kill, so the crash model is ours:
//! - every operation awaits a small simulated latency, so a crash can fall between a write and
//!   its sync;
//! - `sync` makes everything written to the file so far durable;
//! - on a crash each file keeps its synced bytes; of the bytes written since the last sync, a
//!   prefix may survive (a torn write, possibly with its last sector garbled) and the rest is lost;
//! - a crash may instead keep every unsynced byte with one damaged region inside them (flipped
//!   bits, a zeroed or a garbage block): the frames still parse and only a checksum can tell;
//! - synced data is never damaged;
//! - a storage handle belongs to one incarnation of its node: after a crash the old handle fails
//!   every operation, so no late write of a dead incarnation lands;
//! - while the harness holds an I/O error window open on the disk ([`SimDisk::set_io_errors`]),
//!   writes, syncs and reads may fail with [`StorageError::Io`], with the kernel's semantics: a
//!   failed write or read changes and returns nothing, and a failed sync loses the file's unsynced
//!   bytes for good (Linux marks the dirty pages clean after a failed write-back, the lesson of
//!   PostgreSQL's "fsyncgate", 2018): the page cache still shows them, but no later sync of this
//!   incarnation makes anything from that point on durable.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A boxed, sendable future: the storage and transport traits are object safe so that nodes hold
/// `Arc<dyn Storage>` and the harness can swap implementations without generics everywhere.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a storage operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The handle's incarnation is dead: its node crashed. Nothing was written.
    Dead,
    /// An I/O error: a real one outside the simulation, an injected one inside it.
    Io(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Dead => write!(f, "storage handle belongs to a crashed incarnation"),
            StorageError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// A node's durable storage: named files that are appended to, synced, read whole, truncated and
/// atomically replaced. Files that were never written read as empty.
pub trait Storage: Send + Sync {
    /// The whole current content of `file` (synced or not, as a real page cache would show it).
    fn read<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<Vec<u8>, StorageError>>;
    /// Appends `bytes` to `file`; not durable until [`Storage::sync`].
    fn append<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Makes everything written to `file` so far durable.
    fn sync<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Cuts `file` to `len` bytes, durably (a journaled metadata operation).
    fn truncate<'a>(&'a self, file: &'a str, len: usize)
        -> BoxFuture<'a, Result<(), StorageError>>;
    /// Replaces `file` with `bytes` atomically and durably (write temp, fsync, rename, fsync dir):
    /// after a crash the file holds either the old content or the new, never a mix.
    fn replace<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>>;
}

/// Simulated latency of each kind of storage operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLatency {
    pub read: Duration,
    pub write: Duration,
    pub sync: Duration,
}

impl Default for DiskLatency {
    fn default() -> Self {
        DiskLatency {
            read: Duration::from_millis(1),
            write: Duration::from_millis(1),
            sync: Duration::from_millis(2),
        }
    }
}

/// What happens to one file's unsynced bytes in a crash, as decided by the caller's generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tear {
    /// How many of the unsynced bytes survive (clamped to what there is).
    pub keep: usize,
    /// Whether the last surviving bytes (up to one 512-byte sector) come back garbled, as a
    /// sector half-written at power loss does.
    pub garble: bool,
    /// A damaged region inside the kept bytes, placed by the caller. Unlike `garble` it can
    /// hit the middle of a well-formed frame, so lengths still parse and only the CRC tells.
    pub damage: Option<Damage>,
}

impl Tear {
    /// Lose every unsynced byte.
    pub const LOSE_ALL: Tear = Tear {
        keep: 0,
        garble: false,
        damage: None,
    };

    /// Keep `keep` unsynced bytes, garbled or not, undamaged.
    pub fn keep(keep: usize, garble: bool) -> Tear {
        Tear {
            keep,
            garble,
            damage: None,
        }
    }
}

/// A damaged region in a file's kept unsynced bytes: a sector that came back wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where it starts, counted from the first unsynced byte (clamped to the kept bytes).
    pub offset: usize,
    pub kind: DamageKind,
}

/// What the damage does to the bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// XORs one byte with `mask`: bit rot, a few flipped bits.
    FlipBits { mask: u8 },
    /// Zeroes `len` bytes: a block that was never written (a lost or misdirected write).
    Zero { len: usize },
    /// Overwrites `len` bytes with noise drawn from `seed`: another block's content.
    Garbage { len: usize, seed: u64 },
}

impl Damage {
    /// Applies the damage to `bytes` (at a crash: the kept unsynced bytes only, so a crash
    /// never touches synced data; `SimDisk::damage_synced` is the separate fault that does);
    /// the region is clipped to them. Returns whether any byte changed.
    fn apply(&self, bytes: &mut [u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let start = self.offset.min(bytes.len() - 1);
        let total = bytes.len();
        let region = |len: usize| start..total.min(start.saturating_add(len.max(1)));
        let before = bytes.to_vec();
        match self.kind {
            DamageKind::FlipBits { mask } => bytes[start] ^= mask,
            DamageKind::Zero { len } => bytes[region(len)].fill(0),
            DamageKind::Garbage { len, seed } => {
                // splitmix64: a tiny, fixed generator, so the noise is a pure function of the
                // seed recorded in the schedule.
                let mut state = seed;
                for b in &mut bytes[region(len)] {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    *b = (z ^ (z >> 31)) as u8;
                }
            }
        }
        before != bytes
    }
}

/// What one crash of a disk threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrashReport {
    /// Unsynced bytes that did not survive.
    pub bytes_lost: u64,
    /// Unsynced bytes that survived as a torn prefix.
    pub bytes_torn: u64,
    /// Files whose unsynced tail was partly kept.
    pub files_torn: u32,
    /// Files whose surviving tail was garbled.
    pub files_garbled: u32,
    /// Files whose kept tail came back with a damaged region. Left out of the JSON when zero,
    /// so that crash records of runs without damage (every trace before damage existed) hash
    /// as they always did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_damaged: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Default)]
struct SimFile {
    data: Vec<u8>,
    // invariant: synced_len <= data.len()
    synced_len: usize,
    /// After a failed sync: the incarnation it failed in and the durable length then. No later
    /// sync of that incarnation makes bytes past it durable (their pages were marked clean
    /// without reaching the disk). A crash starts a new incarnation, which ends the cap.
    sync_failed: Option<(u64, usize)>,
}

/// Which kind of storage operation an injected I/O error hits.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum IoOp {
    /// `read`.
    Read,
    /// `append`, `truncate` and `replace`.
    Write,
    /// `sync`.
    Sync,
}

impl IoOp {
    pub const ALL: [IoOp; 3] = [IoOp::Read, IoOp::Write, IoOp::Sync];

    pub fn name(self) -> &'static str {
        match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Sync => "sync",
        }
    }
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decides, operation by operation, whether an injected I/O error hits it: `(op, file)` to
/// true for a failure. The harness draws it from the run's seeded generator; the disk calls it
/// in simulated time, under its lock, so the same run asks the same questions in the same order.
pub type IoInjector = Box<dyn FnMut(IoOp, &str) -> bool + Send>;

struct DiskState {
    incarnation: u64,
    files: BTreeMap<String, SimFile>,
    io_errors: Option<IoInjector>,
}

impl DiskState {
    /// Whether an injected I/O error hits this operation (asks the injector only if one is set).
    fn io_fails(&mut self, op: IoOp, file: &str) -> Result<(), StorageError> {
        let fails = self.io_errors.as_mut().is_some_and(|fails| fails(op, file));
        if fails {
            return Err(StorageError::Io(format!("injected {op} error on {file}")));
        }
        Ok(())
    }
}

/// One node's simulated disk. It outlives the node's incarnations: the harness owns it, crashes
/// it between a kill and a restart, and inspects its durable content after the run.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
    latency: DiskLatency,
}

impl SimDisk {
    pub fn new(latency: DiskLatency) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(DiskState {
                incarnation: 0,
                files: BTreeMap::new(),
                io_errors: None,
            })),
            latency,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskState> {
        // A panic while holding the lock is a harness bug already reported; keep the data usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle for the node's current incarnation.
    pub fn handle(&self) -> SimStorage {
        SimStorage {
            disk: self.clone(),
            incarnation: self.lock().incarnation,
        }
    }

    /// Crashes the disk: every handle dies, and each file's unsynced bytes are lost except the
    /// prefix `tear(file, unsynced_len)` keeps. Files are visited in name order, so a seeded
    /// `tear` decides the same way every run.
    pub fn crash(&self, tear: &mut dyn FnMut(&str, usize) -> Tear) -> CrashReport {
        let mut state = self.lock();
        state.incarnation += 1;
        let mut report = CrashReport::default();
        for (name, file) in state.files.iter_mut() {
            let unsynced = file.data.len() - file.synced_len;
            if unsynced == 0 {
                continue;
            }
            let decision = tear(name, unsynced);
            let keep = decision.keep.min(unsynced);
            report.bytes_lost += (unsynced - keep) as u64;
            report.bytes_torn += keep as u64;
            file.data.truncate(file.synced_len + keep);
            if keep > 0 {
                report.files_torn += 1;
                if decision.garble {
                    // Only unsynced bytes are garbled: synced data is never damaged.
                    let start = file.synced_len.max(file.data.len().saturating_sub(512));
                    file.data[start..].iter_mut().for_each(|b| *b = !*b);
                    report.files_garbled += 1;
                }
                let synced = file.synced_len;
                if let Some(damage) = decision.damage {
                    if damage.apply(&mut file.data[synced..]) {
                        report.files_damaged += 1;
                    }
                }
            }
            // What survived a crash is what is on the platter now.
            file.synced_len = file.data.len();
        }
        report
    }

    /// Opens (`Some`) or closes (`None`) an I/O error window: while open, every operation of
    /// every live handle asks `injector` whether it fails. Crashes leave it as it is.
    pub fn set_io_errors(&self, injector: Option<IoInjector>) {
        self.lock().io_errors = injector;
    }

    /// The bytes of `file` as they are now; after a crash, exactly the durable content. For the
    /// harness's final check, outside simulated time.
    pub fn contents(&self, file: &str) -> Vec<u8> {
        self.lock()
            .files
            .get(file)
            .map(|f| f.data.clone())
            .unwrap_or_default()
    }

    /// The names of the files on this disk, in order.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }

    /// How many bytes are written but not yet synced, over all files.
    pub fn unsynced_bytes(&self) -> usize {
        self.lock()
            .files
            .values()
            .map(|f| f.data.len() - f.synced_len)
            .sum()
    }

    /// Damages `file`'s durable bytes in place, `damage.offset` counted from the start of the
    /// file: bit rot, a lost or misdirected write found at the next read. The one fault that
    /// reaches synced data; the harness applies it only while the node is down (between a kill
    /// and its restart), so the node meets it at recovery. Returns whether a byte changed.
    pub fn damage_synced(&self, file: &str, damage: Damage) -> bool {
        let mut state = self.lock();
        let Some(f) = state.files.get_mut(file) else {
            return false;
        };
        let synced = f.synced_len;
        damage.apply(&mut f.data[..synced])
    }
}

/// A node incarnation's handle on its [`SimDisk`].
#[derive(Clone)]
pub struct SimStorage {
    disk: SimDisk,
    incarnation: u64,
}

impl SimStorage {
    /// Waits the operation's latency, then applies `op` only if this incarnation is still alive.
    async fn op<T>(
        &self,
        latency: Duration,
        op: impl FnOnce(&mut DiskState) -> T,
    ) -> Result<T, StorageError> {
        madsim::time::sleep(latency).await;
        let mut state = self.disk.lock();
        if state.incarnation != self.incarnation {
            return Err(StorageError::Dead);
        }
        Ok(op(&mut state))
    }

    /// Like [`SimStorage::op`], but the operation may fail with an injected I/O error first;
    /// `op` runs only if it does not (a failed write or read changes and returns nothing).
    async fn faulty_op<T>(
        &self,
        latency: Duration,
        kind: IoOp,
        file: &str,
        op: impl FnOnce(&mut DiskState) -> T,
    ) -> Result<T, StorageError> {
        self.op(latency, move |s| {
            s.io_fails(kind, file)?;
            Ok(op(s))
        })
        .await
        .and_then(|r| r)
    }
}

/// The operations as plain futures: [`Storage`] boxes them for `dyn Storage`, and a wrapper
/// that holds a `SimStorage` (the cluster's `FatalOnIo`) awaits them without a second box.
impl SimStorage {
    /// See [`Storage::read`].
    pub async fn read_file(&self, file: &str) -> Result<Vec<u8>, StorageError> {
        self.faulty_op(self.disk.latency.read, IoOp::Read, file, move |s| {
            s.files
                .get(file)
                .map(|f| f.data.clone())
                .unwrap_or_default()
        })
        .await
    }

    /// See [`Storage::append`].
    pub async fn append_file(&self, file: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.faulty_op(self.disk.latency.write, IoOp::Write, file, move |s| {
            // `entry` would need an owned name even for an existing file, and appending to one
            // is the hot path: copy the name only for a new file.
            match s.files.get_mut(file) {
                Some(f) => f.data.extend_from_slice(bytes),
                None => {
                    let f = SimFile {
                        data: bytes.to_vec(),
                        ..SimFile::default()
                    };
                    s.files.insert(file.to_string(), f);
                }
            }
        })
        .await
    }

    /// See [`Storage::sync`].
    pub async fn sync_file(&self, file: &str) -> Result<(), StorageError> {
        let incarnation = self.incarnation;
        self.op(self.disk.latency.sync, move |s| {
            let failed = s.io_fails(IoOp::Sync, file);
            let Some(f) = s.files.get_mut(file) else {
                return failed;
            };
            let cap = match f.sync_failed {
                Some((inc, cap)) if inc == incarnation => Some(cap),
                _ => None,
            };
            if failed.is_err() && cap.is_none() {
                // fsyncgate: the unsynced bytes' pages are marked clean, never written.
                f.sync_failed = Some((incarnation, f.synced_len));
            }
            if failed.is_ok() {
                // A later sync succeeds, but only up to where the failed one lost bytes.
                f.synced_len = cap.unwrap_or(f.data.len()).min(f.data.len());
            }
            failed
        })
        .await
        .and_then(|r| r)
    }

    /// See [`Storage::truncate`].
    pub async fn truncate_file(&self, file: &str, len: usize) -> Result<(), StorageError> {
        self.faulty_op(self.disk.latency.sync, IoOp::Write, file, move |s| {
            if let Some(f) = s.files.get_mut(file) {
                f.data.truncate(len);
                f.synced_len = f.synced_len.min(f.data.len());
                // Cut below a failed sync's mark: the bytes it lost are gone anyway.
                if f.sync_failed.is_some_and(|(_, cap)| len <= cap) {
                    f.sync_failed = None;
                }
            }
        })
        .await
    }

    /// See [`Storage::replace`].
    pub async fn replace_file(&self, file: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let latency = self.disk.latency.write + self.disk.latency.sync;
        self.faulty_op(latency, IoOp::Write, file, move |s| {
            // A new file renamed over the old: whatever a failed sync lost went with the old.
            *s.files.entry(file.to_string()).or_default() = SimFile {
                data: bytes.to_vec(),
                synced_len: bytes.len(),
                sync_failed: None,
            };
        })
        .await
    }
}

impl Storage for SimStorage {
    fn read<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<Vec<u8>, StorageError>> {
        Box::pin(self.read_file(file))
    }

    fn append<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(self.append_file(file, bytes))
    }

    fn sync<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(self.sync_file(file))
    }

    fn truncate<'a>(
        &'a self,
        file: &'a str,
        len: usize,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(self.truncate_file(file, len))
    }

    fn replace<'a>(
        &'a self,
        file: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(self.replace_file(file, bytes))
    }
}

#[cfg(all(test, madsim))]
mod io_error_tests {
    use super::*;

    fn run<F: Future<Output = ()>>(f: impl FnOnce(SimDisk) -> F) {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(f(SimDisk::new(DiskLatency::default())));
    }

    /// An injector failing exactly the listed operations, once each, in order.
    fn failing(mut script: Vec<IoOp>) -> IoInjector {
        Box::new(move |op, _| {
            if script.first() == Some(&op) {
                script.remove(0);
                true
            } else {
                false
            }
        })
    }

    #[test]
    fn after_a_failed_sync_a_successful_one_does_not_make_the_lost_bytes_durable() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("f", b"durable").await.unwrap();
            s.sync("f").await.unwrap();
            s.append("f", b"-lost").await.unwrap();
            disk.set_io_errors(Some(failing(vec![IoOp::Sync])));
            assert!(matches!(s.sync("f").await, Err(StorageError::Io(_))));
            s.append("f", b"-later").await.unwrap();
            s.sync("f").await.unwrap();
            // The page cache still shows everything ...
            assert_eq!(s.read("f").await.unwrap(), b"durable-lost-later");
            // ... but a power loss keeps only what the last good sync before the failure did.
            disk.crash(&mut |_, _| Tear::LOSE_ALL);
            assert_eq!(disk.contents("f"), b"durable");
            // The next incarnation starts clean: its syncs are whole again.
            disk.set_io_errors(None);
            let s = disk.handle();
            s.append("f", b"+new").await.unwrap();
            s.sync("f").await.unwrap();
            disk.crash(&mut |_, _| Tear::LOSE_ALL);
            assert_eq!(disk.contents("f"), b"durable+new");
        });
    }

    #[test]
    fn a_failed_read_or_write_returns_an_error_and_changes_nothing() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("f", b"abc").await.unwrap();
            s.sync("f").await.unwrap();
            disk.set_io_errors(Some(failing(vec![IoOp::Read, IoOp::Write, IoOp::Write])));
            assert!(matches!(s.read("f").await, Err(StorageError::Io(_))));
            assert!(matches!(
                s.append("f", b"x").await,
                Err(StorageError::Io(_))
            ));
            assert!(matches!(
                s.replace("f", b"y").await,
                Err(StorageError::Io(_))
            ));
            assert_eq!(s.read("f").await.unwrap(), b"abc");
            assert_eq!(disk.unsynced_bytes(), 0);
        });
    }

    #[test]
    fn the_injector_is_asked_only_while_the_window_is_open_and_in_operation_order() {
        run(|disk| async move {
            let asked = Arc::new(Mutex::new(Vec::new()));
            let log = asked.clone();
            let s = disk.handle();
            s.append("a", b"1").await.unwrap();
            disk.set_io_errors(Some(Box::new(move |op, file| {
                log.lock().unwrap().push((op, file.to_string()));
                false
            })));
            s.sync("a").await.unwrap();
            s.read("b").await.unwrap();
            disk.set_io_errors(None);
            s.append("a", b"2").await.unwrap();
            let asked = asked.lock().unwrap().clone();
            assert_eq!(
                asked,
                vec![(IoOp::Sync, "a".to_string()), (IoOp::Read, "b".to_string())]
            );
        });
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;

    fn run<F: Future<Output = ()>>(f: impl FnOnce(SimDisk) -> F) {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(f(SimDisk::new(DiskLatency::default())));
    }

    #[test]
    fn damage_to_synced_bytes_stays_inside_them_and_survives_the_restart() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("f", b"durable").await.unwrap();
            s.sync("f").await.unwrap();
            s.append("f", b"+tail").await.unwrap();
            disk.crash(&mut |_, _| Tear::keep(0, false));
            let flip = Damage {
                offset: 2,
                kind: DamageKind::FlipBits { mask: 0x20 },
            };
            assert!(disk.damage_synced("f", flip));
            assert_eq!(disk.contents("f"), b"duRable");
            // Clipped to the durable bytes; a missing file is left alone.
            let zero = Damage {
                offset: 100,
                kind: DamageKind::Zero { len: 4 },
            };
            assert!(disk.damage_synced("f", zero));
            assert_eq!(disk.contents("f"), b"duRabl\0");
            assert!(!disk.damage_synced("nothing", zero));
        });
    }

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_ones_are_lost() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("f", b"durable").await.unwrap();
            s.sync("f").await.unwrap();
            s.append("f", b"-volatile").await.unwrap();
            assert_eq!(s.read("f").await.unwrap(), b"durable-volatile");
            let report = disk.crash(&mut |_, _| Tear::LOSE_ALL);
            assert_eq!(
                report,
                CrashReport {
                    bytes_lost: 9,
                    ..CrashReport::default()
                }
            );
            assert_eq!(disk.contents("f"), b"durable");
        });
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_and_a_garbled_one_never_touches_synced_bytes() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("a", b"synced").await.unwrap();
            s.sync("a").await.unwrap();
            s.append("a", b"0123456789").await.unwrap();
            s.append("b", b"xyz").await.unwrap();
            let mut seen = Vec::new();
            let report = disk.crash(&mut |file, unsynced| {
                seen.push((file.to_string(), unsynced));
                if file == "a" {
                    Tear::keep(4, true)
                } else {
                    Tear::keep(99, false)
                }
            });
            assert_eq!(seen, vec![("a".to_string(), 10), ("b".to_string(), 3)]);
            assert_eq!(
                report,
                CrashReport {
                    bytes_lost: 6,
                    bytes_torn: 7,
                    files_torn: 2,
                    files_garbled: 1,
                    files_damaged: 0,
                }
            );
            let a = disk.contents("a");
            assert_eq!(&a[..6], b"synced");
            assert_eq!(a.len(), 10);
            assert_ne!(&a[6..], b"0123", "the kept tail is garbled");
            assert_eq!(disk.contents("b"), b"xyz");
        });
    }

    #[test]
    fn damage_hits_only_kept_unsynced_bytes_and_keeps_the_length() {
        run(|disk| async move {
            let s = disk.handle();
            s.append("f", b"synced").await.unwrap();
            s.sync("f").await.unwrap();
            s.append("f", b"0123456789").await.unwrap();
            let damaged = |kind| {
                let damage = Some(Damage { offset: 3, kind });
                move |_: &str, unsynced: usize| Tear {
                    keep: unsynced,
                    garble: false,
                    damage,
                }
            };
            let report = disk.crash(&mut damaged(DamageKind::FlipBits { mask: 0x01 }));
            assert_eq!(report.files_damaged, 1);
            assert_eq!(disk.contents("f"), b"synced0122456789");
            // Nothing unsynced is left: a second damaged crash changes nothing.
            disk.crash(&mut damaged(DamageKind::Zero { len: 99 }));
            assert_eq!(disk.contents("f"), b"synced0122456789");
            let s = disk.handle();
            s.append("f", b"abcdef").await.unwrap();
            disk.crash(&mut damaged(DamageKind::Zero { len: 99 }));
            assert_eq!(disk.contents("f"), b"synced0122456789abc\0\0\0");
            s.append("f", b"x").await.unwrap_err();
            let s = disk.handle();
            s.append("f", b"wxyz").await.unwrap();
            let report = disk.crash(&mut damaged(DamageKind::Garbage { len: 2, seed: 7 }));
            let f = disk.contents("f");
            assert_eq!(f.len(), 26);
            assert_eq!(&f[..25], b"synced0122456789abc\0\0\0wxy");
            assert_eq!(report.files_damaged, u32::from(f[25] != b'z'));
        });
    }

    #[test]
    fn a_dead_incarnation_cannot_write() {
        run(|disk| async move {
            let old = disk.handle();
            old.append("f", b"before").await.unwrap();
            old.sync("f").await.unwrap();
            disk.crash(&mut |_, _| Tear::LOSE_ALL);
            assert_eq!(old.append("f", b"late").await, Err(StorageError::Dead));
            assert_eq!(old.sync("f").await, Err(StorageError::Dead));
            let new = disk.handle();
            new.append("f", b"+after").await.unwrap();
            assert_eq!(new.read("f").await.unwrap(), b"before+after");
        });
    }

    #[test]
    fn a_crash_during_an_operation_drops_it() {
        run(|disk| async move {
            let s = disk.handle();
            let write = madsim::task::spawn({
                let s = s.clone();
                async move { s.append("f", b"in flight").await }
            });
            // The write is still waiting out its latency when the node loses power.
            madsim::time::sleep(Duration::from_micros(10)).await;
            disk.crash(&mut |_, _| Tear::keep(usize::MAX, false));
            assert_eq!(write.await.unwrap(), Err(StorageError::Dead));
            assert!(disk.contents("f").is_empty());
        });
    }

    #[test]
    fn replace_is_atomic_and_durable_and_truncate_is_durable() {
        run(|disk| async move {
            let s = disk.handle();
            s.replace("snap", b"v1").await.unwrap();
            s.replace("snap", b"version-2").await.unwrap();
            s.append("log", b"abcdef").await.unwrap();
            s.sync("log").await.unwrap();
            s.truncate("log", 2).await.unwrap();
            disk.crash(&mut |_, _| Tear::LOSE_ALL);
            assert_eq!(disk.contents("snap"), b"version-2");
            assert_eq!(disk.contents("log"), b"ab");
            assert_eq!(
                disk.file_names(),
                vec!["log".to_string(), "snap".to_string()]
            );
        });
    }

    #[test]
    fn every_operation_takes_simulated_time() {
        run(|disk| async move {
            let s = disk.handle();
            let start = madsim::time::Instant::now();
            s.append("f", b"x").await.unwrap();
            s.sync("f").await.unwrap();
            let latency = DiskLatency::default();
            // madsim adds a few microseconds of scheduling time on top of the sleeps.
            let elapsed = start.elapsed();
            assert!(elapsed >= latency.write + latency.sync, "{elapsed:?}");
            assert!(
                elapsed < latency.write + latency.sync + Duration::from_millis(1),
                "{elapsed:?}"
            );
        });
    }
}
