//! Shrinking a failing fault schedule: delta debugging over its entries, then shorter
//! durations, then no corruption or smaller damage, then gentler parameters, keeping every
//! step that still fails with an anomaly of the same kind.

use crate::check::AnomalyKind;
use crate::schedule::{Corruption, Fault, FaultEntry, FaultSchedule};
use crate::sim::run;
use crate::world::{RunOutcome, RunPlan};

/// The result of a shrink.
pub struct Shrunk {
    /// The smallest plan found that still fails the same way.
    pub plan: RunPlan,
    /// Its run.
    pub outcome: RunOutcome,
    /// How many candidate runs were tried.
    pub runs: u32,
}

/// Shrinks `plan` (whose run fails with `kind`) to a smaller schedule that still does.
/// `progress(runs, faults)` is called after every candidate run.
pub fn shrink(plan: &RunPlan, kind: AnomalyKind, progress: &dyn Fn(u32, usize)) -> Option<Shrunk> {
    let mut shrinker = Shrinker {
        plan,
        kind,
        progress,
        runs: 0,
        best: None,
    };
    let mut schedule = plan.schedule.clone();
    if !shrinker.fails(&schedule) {
        return None;
    }
    shrinker.fewer(&mut schedule);
    shrinker.shorter(&mut schedule);
    shrinker.undamaged(&mut schedule);
    shrinker.gentler(&mut schedule);
    shrinker.fewer_ops(&mut schedule);
    Some(Shrunk {
        plan: RunPlan {
            schedule,
            ..plan.clone()
        },
        outcome: shrinker.best?,
        runs: shrinker.runs,
    })
}

/// The state of one shrink: the plan, what must still fail, and the last failing outcome.
struct Shrinker<'a> {
    plan: &'a RunPlan,
    kind: AnomalyKind,
    progress: &'a dyn Fn(u32, usize),
    runs: u32,
    /// The outcome of the last candidate that still failed with `kind`.
    best: Option<RunOutcome>,
}

impl Shrinker<'_> {
    /// Runs `schedule`; true (and it becomes the best) if it still fails with the kind.
    fn fails(&mut self, schedule: &[FaultEntry]) -> bool {
        let candidate = RunPlan {
            schedule: schedule.to_vec(),
            ..self.plan.clone()
        };
        let outcome = run(&candidate);
        self.runs += 1;
        (self.progress)(self.runs, schedule.len());
        let fails = outcome.anomalies.iter().any(|a| a.kind == self.kind);
        if fails {
            self.best = Some(outcome);
        }
        fails
    }

    /// Keeps `candidate` in `schedule` if it still fails.
    fn keep_if_fails(&mut self, schedule: &mut FaultSchedule, candidate: FaultSchedule) -> bool {
        let fails = self.fails(&candidate);
        if fails {
            *schedule = candidate;
        }
        fails
    }

    /// ddmin over the entries (Zeller and Hildebrandt): drop chunks while it still fails.
    fn fewer(&mut self, schedule: &mut FaultSchedule) {
        let mut chunks = 2;
        while schedule.len() >= 2 {
            let size = schedule.len().div_ceil(chunks);
            let mut reduced = false;
            for start in (0..schedule.len()).step_by(size) {
                let complement: FaultSchedule = schedule[..start]
                    .iter()
                    .chain(&schedule[(start + size).min(schedule.len())..])
                    .cloned()
                    .collect();
                if self.keep_if_fails(schedule, complement) {
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
            self.keep_if_fails(schedule, Vec::new());
        }
    }

    /// Shorter faults: halve each duration while it still fails.
    fn shorter(&mut self, schedule: &mut FaultSchedule) {
        for i in 0..schedule.len() {
            while schedule[i].duration_ms > 1 {
                let mut candidate = schedule.clone();
                candidate[i].duration_ms /= 2;
                if !self.keep_if_fails(schedule, candidate) {
                    break;
                }
            }
        }
    }

    /// Less damage: each corrupted crash without its corruption if it still fails, or else
    /// with smaller damage (fewer flipped bits, half the block) while it still fails.
    fn undamaged(&mut self, schedule: &mut FaultSchedule) {
        for i in 0..schedule.len() {
            let Fault::Crash {
                corrupt: Some(mut current),
                ..
            } = schedule[i].fault
            else {
                continue;
            };
            if self.keep_if_fails(schedule, with_corruption(schedule, i, None)) {
                continue;
            }
            while let Some(smaller) = current.smaller() {
                if !self.keep_if_fails(schedule, with_corruption(schedule, i, Some(smaller))) {
                    break;
                }
                current = smaller;
            }
        }
    }

    /// Gentler faults: lower rates and spreads, untorn crashes, one-way partitions.
    fn gentler(&mut self, schedule: &mut FaultSchedule) {
        for i in 0..schedule.len() {
            while let Some(gentler) = gentler(&schedule[i].fault) {
                let mut candidate = schedule.clone();
                candidate[i].fault = gentler;
                if !self.keep_if_fails(schedule, candidate) {
                    break;
                }
            }
        }
    }

    /// I/O error windows on fewer kinds of operation: any one of them is dropped while the
    /// run still fails, until each window fails only the operations the failure needs.
    fn fewer_ops(&mut self, schedule: &mut FaultSchedule) {
        for i in 0..schedule.len() {
            'window: loop {
                for fewer in without_one_op(&schedule[i].fault) {
                    let mut candidate = schedule.clone();
                    candidate[i].fault = fewer;
                    if self.keep_if_fails(schedule, candidate) {
                        continue 'window;
                    }
                }
                break;
            }
        }
    }
}

/// The operations an I/O error window could do without, one at a time, each a candidate:
/// whichever kind the failure needs (a failed read, say, listed first) is kept.
fn without_one_op(fault: &Fault) -> Vec<Fault> {
    match fault {
        Fault::IoErrors { rate, ops } if ops.len() > 1 => (0..ops.len())
            .map(|drop| Fault::IoErrors {
                rate: *rate,
                ops: (0..ops.len())
                    .filter(|&k| k != drop)
                    .map(|k| ops[k])
                    .collect(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `schedule` with entry `i` (a crash) damaged by `corrupt` instead.
fn with_corruption(
    schedule: &FaultSchedule,
    i: usize,
    corrupt: Option<Corruption>,
) -> FaultSchedule {
    let mut candidate = schedule.clone();
    if let Fault::Crash { corrupt: c, .. } = &mut candidate[i].fault {
        *c = corrupt;
    }
    candidate
}

/// One step gentler, or `None` at the gentlest. A crash's corruption (already as small as
/// it fails with, see `undamaged`) needs a torn tail, so it goes with the tear.
fn gentler(fault: &Fault) -> Option<Fault> {
    match fault {
        Fault::Crash {
            torn: true,
            garble: true,
            corrupt,
        } => Some(Fault::Crash {
            torn: true,
            garble: false,
            corrupt: *corrupt,
        }),
        Fault::Crash {
            torn: true,
            garble: false,
            ..
        } => Some(Fault::Crash {
            torn: false,
            garble: false,
            corrupt: None,
        }),
        Fault::Partition {
            peer,
            two_way: true,
        } => Some(Fault::Partition {
            peer: *peer,
            two_way: false,
        }),
        Fault::Loss { rate } if *rate > 0.01 => Some(Fault::Loss { rate: rate / 2.0 }),
        Fault::Duplicate { rate } if *rate > 0.01 => Some(Fault::Duplicate { rate: rate / 2.0 }),
        Fault::Delay { spread_ms } if *spread_ms > 1 => Some(Fault::Delay {
            spread_ms: spread_ms / 2,
        }),
        Fault::Lag { delay_ms } if *delay_ms > 1 => Some(Fault::Lag {
            delay_ms: delay_ms / 2,
        }),
        // Fewer kinds of failing operation is `fewer_ops`' step: any of them may go.
        Fault::IoErrors { rate, ops } if *rate > 0.01 => Some(Fault::IoErrors {
            rate: rate / 2.0,
            ops: ops.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_under_test::storage::IoOp;

    #[test]
    fn an_io_error_window_softens_by_rate_then_drops_any_one_operation() {
        let mut fault = Fault::IoErrors {
            rate: 0.04,
            ops: IoOp::ALL.to_vec(),
        };
        let mut steps = Vec::new();
        while let Some(next) = gentler(&fault) {
            steps.push(next.clone());
            fault = next;
        }
        let rate_then_ops: Vec<(f64, usize)> = steps
            .iter()
            .map(|f| match f {
                Fault::IoErrors { rate, ops } => (*rate, ops.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(rate_then_ops, vec![(0.02, 3), (0.01, 3)]);
        // Then each kind of operation is a candidate to drop, the first listed included.
        let drops: Vec<Vec<IoOp>> = without_one_op(&fault)
            .into_iter()
            .map(|f| match f {
                Fault::IoErrors { ops, .. } => ops,
                other => panic!("{other:?}"),
            })
            .collect();
        let [read, write, sync] = IoOp::ALL;
        assert_eq!(
            drops,
            vec![vec![write, sync], vec![read, sync], vec![read, write]]
        );
        let one = Fault::IoErrors {
            rate: 0.01,
            ops: vec![read],
        };
        assert!(
            without_one_op(&one).is_empty(),
            "one kind is as few as it gets"
        );
    }
}
