//! Shrinking a failing fault schedule: delta debugging over its entries, then shorter
//! durations, then gentler parameters, keeping every step that still fails with an anomaly of
//! the same kind.

use crate::check::AnomalyKind;
use crate::schedule::{Fault, FaultEntry};
use crate::sim::run;
use crate::world::{RunOutcome, RunPlan};

/// The result of a shrink.
pub struct Shrunk {
    pub plan: RunPlan,
    pub outcome: RunOutcome,
    /// How many candidate runs were tried.
    pub runs: u32,
}

/// Shrinks `plan` (whose run fails with `kind`) to a smaller schedule that still does.
/// `progress(runs, faults)` is called after every candidate run.
pub fn shrink(plan: &RunPlan, kind: AnomalyKind, progress: &dyn Fn(u32, usize)) -> Option<Shrunk> {
    let mut runs = 0;
    let mut try_schedule = |schedule: &[FaultEntry]| -> Option<RunOutcome> {
        let candidate = RunPlan {
            schedule: schedule.to_vec(),
            ..plan.clone()
        };
        let outcome = run(&candidate);
        runs += 1;
        progress(runs, schedule.len());
        outcome
            .anomalies
            .iter()
            .any(|a| a.kind == kind)
            .then_some(outcome)
    };
    let mut best_outcome = try_schedule(&plan.schedule)?;
    let mut schedule = plan.schedule.clone();

    // 1. ddmin over the entries (Zeller and Hildebrandt): drop chunks while it still fails.
    let mut chunks = 2;
    while schedule.len() >= 2 {
        let size = schedule.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..schedule.len()).step_by(size) {
            let complement: Vec<FaultEntry> = schedule[..start]
                .iter()
                .chain(&schedule[(start + size).min(schedule.len())..])
                .cloned()
                .collect();
            if let Some(outcome) = try_schedule(&complement) {
                schedule = complement;
                best_outcome = outcome;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= schedule.len() {
                break;
            }
            chunks = (chunks * 2).min(schedule.len());
        }
    }
    if schedule.len() == 1 {
        if let Some(outcome) = try_schedule(&[]) {
            schedule.clear();
            best_outcome = outcome;
        }
    }

    // 2. Shorter faults: halve each duration while it still fails.
    for i in 0..schedule.len() {
        while schedule[i].duration_ms > 1 {
            let mut candidate = schedule.clone();
            candidate[i].duration_ms /= 2;
            match try_schedule(&candidate) {
                Some(outcome) => {
                    schedule = candidate;
                    best_outcome = outcome;
                }
                None => break,
            }
        }
    }

    // 3. Gentler faults: lower rates and spreads, untorn crashes, one-way partitions.
    for i in 0..schedule.len() {
        while let Some(gentler) = gentler(&schedule[i].fault) {
            let mut candidate = schedule.clone();
            candidate[i].fault = gentler;
            match try_schedule(&candidate) {
                Some(outcome) => {
                    schedule = candidate;
                    best_outcome = outcome;
                }
                None => break,
            }
        }
    }
    Some(Shrunk {
        plan: RunPlan {
            schedule,
            ..plan.clone()
        },
        outcome: best_outcome,
        runs,
    })
}

/// One step gentler, or `None` at the gentlest.
fn gentler(fault: &Fault) -> Option<Fault> {
    match fault {
        Fault::Crash {
            torn: true,
            garble: true,
        } => Some(Fault::Crash {
            torn: true,
            garble: false,
        }),
        Fault::Crash {
            torn: true,
            garble: false,
        } => Some(Fault::Crash {
            torn: false,
            garble: false,
        }),
        Fault::Partition {
            peer,
            two_way: true,
        } => Some(Fault::Partition {
            peer: peer.clone(),
            two_way: false,
        }),
        Fault::Loss { rate } if *rate > 0.01 => Some(Fault::Loss { rate: rate / 2.0 }),
        Fault::Duplicate { rate } if *rate > 0.01 => Some(Fault::Duplicate { rate: rate / 2.0 }),
        Fault::Delay { spread_ms } if *spread_ms > 1 => Some(Fault::Delay {
            spread_ms: spread_ms / 2,
        }),
        _ => None,
    }
}
