//! A run's verdict, assembled the same way for both worlds: the anomalies, the counters the
//! history shows, the trace hash, pass or fail.

use crate::check::{self, Anomaly, Durable};
use crate::history::{trace_hash, Entry, HarnessEvent, TraceHash, What};
use crate::world::liveness::Settled;
use crate::world::plan::RunPlan;
use broker_under_test::{Bug, Event, NodeName, Probe};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Whether a run passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No anomaly.
    Pass,
    /// At least one anomaly.
    Fail,
}

/// Counters over one run (summed over seeds by `explore`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Payments owed (outboxed).
    pub payments: u64,
    /// Records in the log after the final recovery.
    pub log_records: u64,
    /// Rows in the store after the final recovery.
    pub store_rows: u64,
    /// Produce requests sent.
    pub produce_requests: u64,
    /// Of which retries.
    pub retries: u64,
    /// Retries the broker answered as duplicates.
    pub dedup_hits: u64,
    /// Broker crashes injected (in a replicated deployment: of any replica or the controller).
    pub broker_crashes: u64,
    /// Producer crashes injected.
    pub producer_restarts: u64,
    /// Consumer crashes injected.
    pub consumer_restarts: u64,
    /// Store crashes injected.
    pub store_restarts: u64,
    /// Messages on the network.
    pub messages: u64,
    /// Of which lost.
    pub messages_dropped: u64,
    /// Unsynced bytes lost in crashes.
    pub unsynced_writes_lost: u64,
    /// History entries.
    pub events: u64,
    /// Simulated milliseconds the runs took.
    pub sim_ms: u64,
}

impl Stats {
    /// Adds another run's counters.
    pub fn add(&mut self, o: &Stats) {
        self.payments += o.payments;
        self.log_records += o.log_records;
        self.store_rows += o.store_rows;
        self.produce_requests += o.produce_requests;
        self.retries += o.retries;
        self.dedup_hits += o.dedup_hits;
        self.broker_crashes += o.broker_crashes;
        self.producer_restarts += o.producer_restarts;
        self.consumer_restarts += o.consumer_restarts;
        self.store_restarts += o.store_restarts;
        self.messages += o.messages;
        self.messages_dropped += o.messages_dropped;
        self.unsynced_writes_lost += o.unsynced_writes_lost;
        self.events += o.events;
        self.sim_ms += o.sim_ms;
    }
}

/// The verdict of one run, with what is needed to understand and replay it.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The planted bugs.
    pub bugs: Vec<Bug>,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Every anomaly, ordered by time, then kind, then payment.
    pub anomalies: Vec<Anomaly>,
    /// The run's counters.
    pub stats: Stats,
    /// Simulated milliseconds the run took.
    pub sim_ms: u64,
    /// The hash of the whole history: same seed, same hash.
    pub trace_hash: TraceHash,
    /// How often each probe (a rare path that matters) was hit.
    pub probes: BTreeMap<Probe, u64>,
    /// The whole history (not serialised).
    #[serde(skip)]
    pub history: Vec<Entry>,
    /// Every message, when the plan asked for them.
    #[serde(skip)]
    pub messages: Vec<crate::sim::messages::MessageRecord>,
}

impl RunOutcome {
    /// Whether the run showed no anomaly.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// How a world's run ended, when it reached the check: what the checker reads besides the
/// history.
pub(crate) struct Ending {
    /// The broker's logs and the store's rows after the final recovery.
    pub(crate) durable: Durable,
    pub(crate) settled: Settled,
    /// When the heal happened (microseconds since the start), and the liveness bound after it.
    pub(crate) heal_us: u64,
    pub(crate) liveness_ms: u64,
    pub(crate) unsynced_writes_lost: u64,
}

impl RunOutcome {
    /// Puts a run's verdict together, the same for both worlds: the checker's anomalies (or
    /// the one that stopped the run early), liveness, the counters the history shows, the
    /// trace hash, pass or fail. `stats` brings the world's message counts.
    pub(crate) fn judged(
        plan: &RunPlan,
        history: Vec<Entry>,
        ended: Result<Ending, Anomaly>,
        mut stats: Stats,
        probes: BTreeMap<Probe, u64>,
        messages: Vec<crate::sim::messages::MessageRecord>,
    ) -> RunOutcome {
        let anomalies = match ended {
            Ok(ending) => {
                let mut anomalies = check::check(&history, &ending.durable);
                anomalies.extend(ending.settled.anomaly(ending.heal_us, ending.liveness_ms));
                stats.log_records = ending.durable.records().count() as u64;
                stats.store_rows = ending.durable.rows.len() as u64;
                stats.unsynced_writes_lost = ending.unsynced_writes_lost;
                anomalies
            }
            // A step or time limit, a stuck run or a panic cuts the run short, not its
            // history: what that history already proves (safety properties, sound on any
            // prefix) is still reported beside the stop, which must not hide a violation.
            Err(stopped) => {
                let mut anomalies = check::check_history(&history);
                anomalies.push(stopped);
                anomalies
            }
        };
        count_history(&history, &mut stats);
        let sim_ms = history.last().map_or(0, |e| e.at_us / 1000);
        stats.events = history.len() as u64;
        stats.sim_ms = sim_ms;
        RunOutcome {
            scenario: plan.scenario.name.clone(),
            seed: plan.seed,
            bugs: plan.bugs.iter().collect(),
            verdict: if anomalies.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            anomalies,
            stats,
            sim_ms,
            trace_hash: trace_hash(&history),
            probes,
            history,
            messages,
        }
    }
}

fn count_history(history: &[Entry], stats: &mut Stats) {
    let mut outboxed = BTreeSet::new();
    let mut final_recovery = false;
    for entry in history {
        match &entry.what {
            What::Harness(HarnessEvent::FinalRecovery) => final_recovery = true,
            // The final recovery's crashes are the check's, not faults: count only the faults.
            What::Harness(HarnessEvent::NodeCrashed { .. }) if final_recovery => {}
            What::Node(Event::Outboxed { payment }) => {
                outboxed.insert(payment.id.as_str());
            }
            What::Node(Event::ProduceSent { attempt, .. }) => {
                stats.produce_requests += 1;
                stats.retries += u64::from(*attempt > 0);
            }
            What::Node(Event::DuplicateBatch { .. }) => stats.dedup_hits += 1,
            What::Harness(HarnessEvent::NodeCrashed { .. }) => match entry.node.node() {
                // A replicated deployment's brokers and controller count as the broker's.
                Some(NodeName::Broker | NodeName::Replica(_) | NodeName::Controller) => {
                    stats.broker_crashes += 1
                }
                Some(NodeName::Store) => stats.store_restarts += 1,
                Some(NodeName::Consumer) => stats.consumer_restarts += 1,
                _ => stats.producer_restarts += 1,
            },
            _ => {}
        }
    }
    stats.payments = outboxed.len() as u64;
}
