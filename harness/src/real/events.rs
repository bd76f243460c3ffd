//! Real mode's history: the events each node process appends to its file as JSON lines, read
//! incrementally (each poll reads only what was appended since the last), and merged with the
//! driver's own notes into one history ordered by wall-clock time.

use super::procs::Procs;
use crate::history::{Actor, Entry, What};
use broker_under_test::{Event, NodeName};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One node's event file and how far it has been read.
struct Tail {
    path: PathBuf,
    // invariant: `offset` is just after a newline (or 0): only whole lines are consumed
    offset: u64,
    entries: Vec<Entry>,
}

/// The event files of every node.
pub(crate) struct EventFiles {
    /// The run's start on the wall clock; entries are stamped relative to it.
    start_us: u64,
    tails: BTreeMap<NodeName, Tail>,
}

impl EventFiles {
    pub(crate) fn new(dir: &Path, start_us: u64, names: &[NodeName]) -> EventFiles {
        let tails = names
            .iter()
            .map(|name| {
                let tail = Tail {
                    path: Procs::events_file(dir, *name),
                    offset: 0,
                    entries: Vec::new(),
                };
                (*name, tail)
            })
            .collect();
        EventFiles { start_us, tails }
    }

    /// Reads what the processes appended since the last call; returns the new entries.
    pub(crate) fn read_new(&mut self) -> Vec<Entry> {
        let mut new = Vec::new();
        for (name, tail) in &mut self.tails {
            let before = tail.entries.len();
            tail.read_new(*name, self.start_us);
            new.extend_from_slice(&tail.entries[before..]);
        }
        new
    }

    /// Everything read so far, with the driver's `notes`, in time order (ties: the driver's
    /// notes first, then node by node in file order).
    pub(crate) fn history(&self, notes: &[Entry]) -> Vec<Entry> {
        let mut entries = notes.to_vec();
        for tail in self.tails.values() {
            entries.extend_from_slice(&tail.entries);
        }
        entries.sort_by_key(|e| e.at_us);
        entries
    }
}

impl Tail {
    fn read_new(&mut self, name: NodeName, start_us: u64) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return; // not created yet
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return;
        }
        // A line still being written waits for its newline.
        let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        self.offset += end as u64 + 1;
        for line in bytes[..end].split(|b| *b == b'\n') {
            // A line cut by a SIGKILL mid-write runs into the next incarnation's first line;
            // the two do not parse and are skipped.
            if let Some(entry) = parse_line(line, name, start_us) {
                self.entries.push(entry);
            }
        }
    }
}

fn parse_line(line: &[u8], name: NodeName, start_us: u64) -> Option<Entry> {
    let value = serde_json::from_slice::<serde_json::Value>(line).ok()?;
    let at_us = value["at_us"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(start_us);
    let node = match value["node"].as_str() {
        Some(node) => node.parse().ok()?,
        None => Actor::Node(name),
    };
    let event = serde_json::from_value::<Event>(value).ok()?;
    Some(Entry {
        at_us,
        node,
        what: What::Node(event),
    })
}
