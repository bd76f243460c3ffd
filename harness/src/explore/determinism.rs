//! The determinism check: the same plan run twice must leave the same trace; where it does
//! not, a `nondeterminism` anomaly names the first history entry where the runs part.

use crate::check::{Anomaly, AnomalyKind};
use crate::history::Entry;
use crate::world::outcome::RunOutcome;

/// Compares two runs of the same plan: `None` if their traces agree, else a `nondeterminism`
/// anomaly naming the seed and the first history entry where they part.
pub fn compare_runs(a: &RunOutcome, b: &RunOutcome) -> Option<Anomaly> {
    if a.trace_hash == b.trace_hash {
        return None;
    }
    let index = a
        .history
        .iter()
        .zip(&b.history)
        .position(|(x, y)| x != y)
        .unwrap_or(a.history.len().min(b.history.len()));
    let show = |h: &[Entry]| {
        h.get(index).map_or("(history ended)".to_string(), |e| {
            serde_json::to_string(e).unwrap_or_default()
        })
    };
    let at_us = a
        .history
        .get(index)
        .or(b.history.get(index))
        .map_or(0, |e| e.at_us);
    let detail = format!(
        "seed {} ran twice with trace hashes {} and {}; first difference at history entry {index}: {} vs {}",
        a.seed,
        a.trace_hash,
        b.trace_hash,
        show(&a.history),
        show(&b.history)
    );
    Some(Anomaly::new(
        AnomalyKind::Nondeterminism,
        None,
        at_us,
        detail,
    ))
}
