//! Failure artifacts: everything needed to replay a failing run, as one JSON file, and its
//! careful loading (a missing, truncated or corrupt artifact is an error naming the problem).

use crate::check::Anomaly;
use crate::history::TraceHash;
use crate::scenario::{Scenario, SPREAD_MAX_MS, TIME_MAX_MS};
use crate::schedule::{Fault, FaultEntry, Target};
use crate::system::System;
use crate::world::{RunOutcome, RunPlan};
use broker_under_test::{Bug, NodeName};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest input file the harness reads (scenario, artifact, report). Real ones are a few
/// kilobytes, a big sweep's report a few megabytes; a path to `/dev/zero` or a runaway file is
/// refused after reading this much, not read until memory runs out.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Reads a whole input file of at most `MAX_INPUT_BYTES`, as UTF-8; the error names `what` and
/// the file.
pub fn read_input(path: &Path, what: &str) -> Result<String, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{what} {shown} is larger than {MAX_INPUT_BYTES} bytes: not a {what}"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{what} {shown} is not UTF-8 text"))
}

/// Quotes a word for a POSIX shell when it needs it, so a printed command runs as printed
/// whatever the path holds (spaces, quotes, `$`, newlines).
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A failing run, saved so it can be replayed, shrunk and shown: everything needed to rerun
/// it exactly, and what it showed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// The version of the harness that wrote it (a different one replays with a warning).
    pub harness_version: String,
    /// The resolved scenario, not only its name: the artifact replays even if the catalogue
    /// changes.
    pub scenario: Scenario,
    /// The seed the run was drawn from.
    pub seed: u64,
    /// The planted bugs of the run.
    pub bugs: Vec<Bug>,
    /// The exact fault schedule, replayed as is (not drawn from the seed again).
    pub fault_schedule: Vec<FaultEntry>,
    /// The anomalies the run showed.
    pub anomalies: Vec<Anomaly>,
    /// The run's trace hash; a replay says when its own differs.
    pub trace_hash: TraceHash,
    /// The name of the system under test that ran (artifacts written before systems had
    /// names: this repository's broker).
    #[serde(default = "broker_system_name")]
    pub system: String,
}

fn broker_system_name() -> String {
    crate::system::BrokerSystem.name().to_string()
}

/// Why an artifact could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactError(pub String);

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArtifactError {}

impl Artifact {
    /// The artifact of `outcome`, the run of `plan`.
    pub fn new(plan: &RunPlan, outcome: &RunOutcome) -> Artifact {
        Artifact {
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: plan.scenario.clone(),
            seed: plan.seed,
            bugs: plan.bugs.iter().collect(),
            fault_schedule: plan.schedule.clone(),
            anomalies: outcome.anomalies.clone(),
            trace_hash: outcome.trace_hash,
            system: plan.system.name().to_string(),
        }
    }

    /// The plan that replays this artifact: its scenario, seed, bugs and exact fault schedule,
    /// for this repository's broker; an artifact of another system replays with
    /// `artifact.plan().with_system(system)`.
    pub fn plan(&self) -> RunPlan {
        RunPlan {
            scenario: self.scenario.clone(),
            seed: self.seed,
            bugs: self.bugs.iter().copied().collect(),
            schedule: self.fault_schedule.clone(),
            plant_nondeterminism: false,
            record_messages: false,
            scenario_arg: self.scenario.name.clone(),
            system: Default::default(),
        }
    }

    /// Reads and validates an artifact file.
    pub fn load(path: &Path) -> Result<Artifact, ArtifactError> {
        let shown = path.display();
        let text = read_input(path, "artifact").map_err(ArtifactError)?;
        let artifact: Artifact = serde_json::from_str(&text)
            .map_err(|e| ArtifactError(format!("artifact {shown} is not a valid artifact: {e}")))?;
        // serde cannot deny unknown fields in a flattened fault entry; compare with what the
        // parsed entries write back instead.
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ArtifactError(format!("artifact {shown}: {e}")))?;
        let strict = strict_entries(&value, &artifact.fault_schedule);
        strict
            .and_then(|()| artifact.validate())
            .map_err(|e| ArtifactError(format!("artifact {shown}: {e}")))?;
        Ok(artifact)
    }

    /// Another harness version wrote it: its schedule still replays, but the run may differ.
    pub fn version_warning(&self) -> Option<String> {
        let ours = env!("CARGO_PKG_VERSION");
        (self.harness_version != ours).then(|| {
            format!(
                "warning: the artifact was written by harness {}, this is {ours}; the replay may differ",
                self.harness_version
            )
        })
    }

    /// Refuses an artifact of another system than this repository's broker, which is all the
    /// `harness` binary runs.
    pub fn require_broker(&self) -> Result<(), ArtifactError> {
        if self.system == broker_system_name() {
            return Ok(());
        }
        Err(ArtifactError(format!(
            "the artifact is of system '{}', not {}; replay it from your own code with \
             artifact.plan().with_system(..)",
            self.system,
            broker_system_name()
        )))
    }

    fn validate(&self) -> Result<(), String> {
        self.scenario
            .validate()
            .map_err(|e| format!("scenario: {e}"))?;
        let nodes = crate::system::node_names(&self.scenario);
        if self
            .fault_schedule
            .windows(2)
            .any(|w| w[1].at_ms < w[0].at_ms)
        {
            return Err("fault_schedule is not sorted by at_ms".to_string());
        }
        for (i, e) in self.fault_schedule.iter().enumerate() {
            if e.at_ms > TIME_MAX_MS || e.duration_ms > TIME_MAX_MS {
                return Err(format!(
                    "fault_schedule[{i}]: at_ms and duration_ms may not exceed {TIME_MAX_MS}"
                ));
            }
            if let Fault::Delay { spread_ms }
            | Fault::Lag {
                delay_ms: spread_ms,
            } = e.fault
            {
                if spread_ms > SPREAD_MAX_MS {
                    return Err(format!(
                        "fault_schedule[{i}]: spread_ms may not exceed {SPREAD_MAX_MS}"
                    ));
                }
            }
            // A node of this scenario's system (the producers, brokers and controller it has).
            let known = |n: NodeName| nodes.contains(&n);
            let target_ok = match e.target {
                Target::Node(node) => known(node),
                // Only a window of messages may hit every node.
                Target::All => matches!(
                    e.fault,
                    Fault::Loss { .. } | Fault::Duplicate { .. } | Fault::Delay { .. }
                ),
            };
            if !target_ok {
                return Err(format!(
                    "fault_schedule[{i}]: unknown target '{}'",
                    e.target
                ));
            }
            let replica = matches!(e.target, Target::Node(NodeName::Replica(_)));
            match &e.fault {
                Fault::Isolate | Fault::Lag { .. } if !replica => {
                    return Err(format!(
                        "fault_schedule[{i}]: {} hits one broker of a replicated deployment, not '{}'",
                        e.fault.kind(),
                        e.target
                    ));
                }
                Fault::Partition { peer, .. } if !known(*peer) || e.target == (*peer).into() => {
                    return Err(format!("fault_schedule[{i}]: bad partition peer '{peer}'"));
                }
                Fault::Loss { rate } | Fault::Duplicate { rate } | Fault::IoErrors { rate, .. }
                    if !(0.0..=1.0).contains(rate) =>
                {
                    return Err(format!(
                        "fault_schedule[{i}]: rate {rate} is not a probability"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes the artifact as pretty JSON, atomically: into a temporary file in the same
    /// directory, then renamed over `path`, so an interrupted write never leaves a truncated
    /// artifact.
    pub fn save(&self, path: &Path) -> Result<(), ArtifactError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| ArtifactError(format!("cannot create {}: {e}", dir.display())))?;
        let text = serde_json::to_string_pretty(self).expect("artifacts serialize") + "\n";
        write_atomically(path, |out| out.write_all(text.as_bytes()))
            .map_err(|e| ArtifactError(format!("cannot write artifact {}: {e}", path.display())))
    }

    /// Where `explore` files the artifact of a failing seed: one name per scenario, seed and
    /// bug set, so sweeps with different bugs never overwrite each other's artifacts.
    pub fn path_in(dir: &Path, plan: &RunPlan) -> PathBuf {
        let mut name = format!("{}-seed-{}", plan.scenario.name, plan.seed);
        for bug in plan.bugs.iter() {
            name.push('-');
            name.push_str(bug.name());
        }
        dir.join(name + ".json")
    }

    /// The command that replays the artifact at `path`, shell-quoted.
    pub fn replay_command(path: &Path) -> String {
        format!(
            "harness replay {}",
            shell_quote(&path.display().to_string())
        )
    }
}

/// Writes a file atomically: `write` fills a temporary file in `path`'s directory (buffered),
/// which is then renamed over `path`. An interrupted or failed write leaves no truncated file
/// and no temporary one, and an existing `path` (or a link there) is replaced, never written
/// through. Artifacts, traces and timelines are all written this way.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    let mut out = std::io::BufWriter::new(temp);
    write(&mut out)?;
    let temp = out.into_inner().map_err(|e| e.into_error())?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Every key of every entry of the file's `fault_schedule` must be one the parsed entry writes
/// back: a misspelt parameter is an error, not a silent default.
fn strict_entries(value: &serde_json::Value, parsed: &[FaultEntry]) -> Result<(), String> {
    let Some(entries) = value.get("fault_schedule").and_then(|v| v.as_array()) else {
        return Ok(());
    };
    for (i, (raw, entry)) in entries.iter().zip(parsed).enumerate() {
        let known = serde_json::to_value(entry).map_err(|e| e.to_string())?;
        let (Some(raw), Some(known)) = (raw.as_object(), known.as_object()) else {
            continue;
        };
        if let Some(key) = raw.keys().find(|k| !known.contains_key(*k)) {
            return Err(format!("fault_schedule[{i}]: unknown field '{key}'"));
        }
    }
    Ok(())
}
