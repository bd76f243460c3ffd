//! A run's verdict, assembled the same way for both worlds: the anomalies, the counters the
//! history shows, the trace hash, pass or fail.

use crate::check::{Anomaly, AnomalyKind};
use crate::history::{trace_hash, Entry, HarnessEvent, What};
use crate::world::plan::RunPlan;
use broker_under_test::cluster::{BROKER, CONSUMER, STORE};
use broker_under_test::Event;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// Counters over one run (summed over seeds by `explore`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub payments: u64,
    pub log_records: u64,
    pub store_rows: u64,
    pub produce_requests: u64,
    pub retries: u64,
    pub dedup_hits: u64,
    pub broker_crashes: u64,
    pub producer_restarts: u64,
    pub consumer_restarts: u64,
    pub store_restarts: u64,
    pub messages: u64,
    pub messages_dropped: u64,
    pub unsynced_writes_lost: u64,
    pub events: u64,
    /// Simulated milliseconds the runs took.
    pub sim_ms: u64,
}

impl Stats {
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
    pub scenario: String,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub verdict: Verdict,
    pub anomalies: Vec<Anomaly>,
    pub stats: Stats,
    pub sim_ms: u64,
    pub trace_hash: String,
    /// How often each probe (a rare path that matters) was hit.
    pub probes: BTreeMap<String, u64>,
    #[serde(skip)]
    pub history: Vec<Entry>,
    /// Every message, when the plan asked for them.
    #[serde(skip)]
    pub messages: Vec<crate::sim::net::MessageRecord>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

impl RunOutcome {
    /// Puts a run's verdict together: the counters the history shows, the trace hash, pass or
    /// fail. Shared by the simulation and real mode.
    pub(crate) fn judged(
        plan: &RunPlan,
        history: Vec<Entry>,
        anomalies: Vec<Anomaly>,
        mut stats: Stats,
        probes: BTreeMap<String, u64>,
        messages: Vec<crate::sim::net::MessageRecord>,
    ) -> RunOutcome {
        count_history(&history, &mut stats);
        let sim_ms = history.last().map_or(0, |e| e.at_us / 1000);
        stats.events = history.len() as u64;
        stats.sim_ms = sim_ms;
        RunOutcome {
            scenario: plan.scenario.name.clone(),
            seed: plan.seed,
            bugs: plan.bug_names(),
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

/// `missing`: owed payments not settled; `never_outboxed`: payments the workload should have
/// made but no producer outboxed by the deadline.
pub(crate) fn liveness_anomaly(
    missing: &[String],
    never_outboxed: u64,
    heal_us: u64,
    liveness_ms: u64,
) -> Anomaly {
    let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
    let more = if missing.len() > shown.len() {
        format!(" and {} more", missing.len() - shown.len())
    } else {
        String::new()
    };
    let never = if never_outboxed > 0 {
        format!("; {never_outboxed} payments never outboxed")
    } else {
        String::new()
    };
    let detail = format!(
        "{} payments not acknowledged, logged and applied within {liveness_ms} ms after the heal: {}{more}{never}",
        missing.len(),
        shown.join(", ")
    );
    Anomaly::new(
        AnomalyKind::Liveness,
        missing.first().map(String::as_str),
        heal_us + liveness_ms * 1000,
        detail,
    )
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
            What::Harness(HarnessEvent::NodeCrashed { .. }) => match entry.node.as_str() {
                BROKER => stats.broker_crashes += 1,
                STORE => stats.store_restarts += 1,
                CONSUMER => stats.consumer_restarts += 1,
                _ => stats.producer_restarts += 1,
            },
            _ => {}
        }
    }
    stats.payments = outboxed.len() as u64;
}
