//! Failure artifacts: everything needed to replay a failing run, as one JSON file, and its
//! careful loading (a missing, truncated or corrupt artifact is an error naming the problem).

use crate::check::Anomaly;
use crate::history::TraceHash;
use crate::scenario::{Scenario, SPREAD_MAX_MS, TIME_MAX_MS};
use crate::schedule::{Fault, FaultEntry, Target};
use crate::world::{RunOutcome, RunPlan};
use broker_under_test::{Bug, NodeName};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub harness_version: String,
    /// The resolved scenario, not only its name: the artifact replays even if the catalogue
    /// changes.
    pub scenario: Scenario,
    pub seed: u64,
    pub bugs: Vec<Bug>,
    pub fault_schedule: Vec<FaultEntry>,
    pub anomalies: Vec<Anomaly>,
    pub trace_hash: TraceHash,
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
    pub fn new(plan: &RunPlan, outcome: &RunOutcome) -> Artifact {
        Artifact {
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: plan.scenario.clone(),
            seed: plan.seed,
            bugs: plan.bugs.iter().collect(),
            fault_schedule: plan.schedule.clone(),
            anomalies: outcome.anomalies.clone(),
            trace_hash: outcome.trace_hash,
        }
    }

    /// The plan that replays this artifact: its scenario, seed, bugs and exact fault schedule.
    pub fn plan(&self) -> RunPlan {
        RunPlan {
            scenario: self.scenario.clone(),
            seed: self.seed,
            bugs: self.bugs.iter().copied().collect(),
            schedule: self.fault_schedule.clone(),
            plant_nondeterminism: false,
            record_messages: false,
            scenario_arg: self.scenario.name.clone(),
        }
    }

    /// Reads and validates an artifact file.
    pub fn load(path: &Path) -> Result<Artifact, ArtifactError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ArtifactError(format!("cannot read artifact {shown}: {e}")))?;
        let artifact: Artifact = serde_json::from_str(&text)
            .map_err(|e| ArtifactError(format!("artifact {shown} is not a valid artifact: {e}")))?;
        artifact
            .validate()
            .map_err(|e| ArtifactError(format!("artifact {shown}: {e}")))?;
        Ok(artifact)
    }

    fn validate(&self) -> Result<(), String> {
        self.scenario
            .validate()
            .map_err(|e| format!("scenario: {e}"))?;
        let producers = self.scenario.workload.producers;
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
            if let Fault::Delay { spread_ms } = e.fault {
                if spread_ms > SPREAD_MAX_MS {
                    return Err(format!(
                        "fault_schedule[{i}]: spread_ms may not exceed {SPREAD_MAX_MS}"
                    ));
                }
            }
            // A node of this scenario's system (the producers it has).
            let known = |n: NodeName| !matches!(n, NodeName::Producer(i) if i >= producers);
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
            match &e.fault {
                Fault::Partition { peer, .. } if !known(*peer) || e.target == (*peer).into() => {
                    return Err(format!("fault_schedule[{i}]: bad partition peer '{peer}'"));
                }
                Fault::Loss { rate } | Fault::Duplicate { rate } if !(0.0..=1.0).contains(rate) => {
                    return Err(format!(
                        "fault_schedule[{i}]: rate {rate} is not a probability"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes the artifact as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), ArtifactError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ArtifactError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let text = serde_json::to_string_pretty(self).expect("artifacts serialize");
        std::fs::write(path, text + "\n")
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

    pub fn replay_command(path: &Path) -> String {
        format!("harness replay {}", path.display())
    }
}
