//! Real mode's processes: one `node` process per node of the system, started, SIGKILLed,
//! SIGSTOPped and SIGCONTed by name. Each start is a new incarnation of the node.

use broker_under_test::NodeName;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One node's process and how to start it again.
struct Proc {
    args: Vec<String>,
    child: Option<Child>,
    incarnations: u64,
    paused: bool,
}

/// Every node's process, by node name. Dropping it kills them all.
pub(crate) struct Procs {
    node_bin: PathBuf,
    dir: PathBuf,
    /// How long a process may live at most: a bound, so that no process outlives a run.
    run_for_ms: u64,
    procs: BTreeMap<NodeName, Proc>,
}

impl Procs {
    pub(crate) fn new(node_bin: &Path, dir: &Path, run_for_ms: u64) -> Procs {
        Procs {
            node_bin: node_bin.to_path_buf(),
            dir: dir.to_path_buf(),
            run_for_ms,
            procs: BTreeMap::new(),
        }
    }

    /// Where the node `name` appends its events.
    pub(crate) fn events_file(dir: &Path, name: NodeName) -> PathBuf {
        dir.join(format!("{name}.events.jsonl"))
    }

    /// Adds a node, not started, with the arguments its every incarnation gets.
    pub(crate) fn add(&mut self, name: NodeName, args: Vec<String>) {
        let proc = Proc {
            args,
            child: None,
            incarnations: 0,
            paused: false,
        };
        self.procs.insert(name, proc);
    }

    pub(crate) fn names(&self) -> Vec<NodeName> {
        self.procs.keys().copied().collect()
    }

    /// Starts a new incarnation of the node.
    pub(crate) fn start(&mut self, name: NodeName) -> Result<(), String> {
        let events = Self::events_file(&self.dir, name);
        let proc = self
            .procs
            .get_mut(&name)
            .ok_or_else(|| format!("no node {name}"))?;
        proc.incarnations += 1;
        let child = Command::new(&self.node_bin)
            .args(&proc.args)
            .args(["--events", &events.display().to_string()])
            .args(["--incarnation", &proc.incarnations.to_string()])
            .args(["--run-for-ms", &self.run_for_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.node_bin.display()))?;
        proc.child = Some(child);
        Ok(())
    }

    /// SIGKILL: the process dies wherever it is, produces in flight and all. False if it was
    /// already down.
    pub(crate) fn kill(&mut self, name: NodeName) -> bool {
        let Some(proc) = self.procs.get_mut(&name) else {
            return false;
        };
        let Some(mut child) = proc.child.take() else {
            return false;
        };
        if proc.paused {
            signal(&child, libc::SIGCONT);
            proc.paused = false;
        }
        let _ = child.kill();
        let _ = child.wait();
        true
    }

    /// SIGSTOP (`stop`) or SIGCONT; false if the process is down or already so.
    pub(crate) fn pause(&mut self, name: NodeName, stop: bool) -> bool {
        let Some(proc) = self.procs.get_mut(&name) else {
            return false;
        };
        let Some(child) = &proc.child else {
            return false;
        };
        if proc.paused == stop {
            return false;
        }
        signal(child, if stop { libc::SIGSTOP } else { libc::SIGCONT });
        proc.paused = stop;
        true
    }

    pub(crate) fn is_down(&self, name: NodeName) -> bool {
        self.procs.get(&name).is_none_or(|p| p.child.is_none())
    }

    pub(crate) fn kill_all(&mut self) {
        for name in self.names() {
            self.kill(name);
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (the child is
    // still owned), so the pid cannot have been reused; it touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}
