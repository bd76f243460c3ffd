//! Settlement: which owed payments are acknowledged to their producer and applied by the
//! store, tracked from the history as it grows. Both worlds wait on it after the heal.

use crate::history::{Entry, What};
use broker_under_test::Event;
use std::collections::BTreeMap;

/// Tracks, from the history, which owed payments are acknowledged to their producer and applied
/// by the store. Incremental: each check reads only the entries recorded since the last one.
#[derive(Default)]
pub(crate) struct Settlement {
    cursor: usize,
    /// Per payment: which of OWED, ACKED and APPLIED it has reached.
    state: BTreeMap<String, u8>,
    pub(crate) owed: usize,
    // invariant: settled == the number of payments whose state has all three bits
    settled: usize,
}

const OWED: u8 = 1;
const ACKED: u8 = 2;
const APPLIED: u8 = 4;

impl Settlement {
    fn mark(&mut self, id: &str, bit: u8) {
        let state = match self.state.get_mut(id) {
            Some(state) => state,
            None => self.state.entry(id.to_string()).or_default(),
        };
        if *state & bit != 0 {
            return;
        }
        *state |= bit;
        let all = *state == OWED | ACKED | APPLIED;
        self.owed += usize::from(bit == OWED);
        self.settled += usize::from(all);
    }

    pub(crate) fn update(&mut self, history: &[Entry]) {
        for entry in &history[self.cursor..] {
            match &entry.what {
                What::Node(Event::Outboxed { payment }) => self.mark(&payment.id, OWED),
                What::Node(
                    Event::ProduceAcked { payments, .. }
                    | Event::BatchRecoveredAsAcked { payments, .. },
                ) => payments.iter().for_each(|id| self.mark(id, ACKED)),
                What::Node(Event::StoreApplied { payment, .. }) => self.mark(payment, APPLIED),
                _ => {}
            }
        }
        self.cursor = history.len();
    }

    pub(crate) fn all_settled(&self) -> bool {
        self.settled == self.owed
    }

    pub(crate) fn unsettled(&self) -> Vec<String> {
        let settled = OWED | ACKED | APPLIED;
        self.state
            .iter()
            .filter(|(_, s)| **s & OWED != 0 && **s != settled)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
