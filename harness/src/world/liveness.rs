//! Liveness after the heal, decided the same way in both worlds: which owed payments are
//! acknowledged to their producer, in the log and applied by the store, tracked from the
//! history as it grows, and the verdict once all are settled or the bound has passed.
//!
//! Liveness: after the heal every node is up and the network whole, so every payment a
//! producer synced into its outbox must settle within the scenario's bound.

use crate::check::{Anomaly, AnomalyKind};
use crate::history::{Entry, HarnessEvent, What};
use crate::world::RunPlan;
use broker_under_test::{Event, PaymentId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

/// Tracks, from the history, which owed payments are acknowledged to their producer and applied
/// by the store. Incremental: it reads each entry once, as the history grows.
#[derive(Default)]
struct Settlement {
    /// Per payment: which of OWED, ACKED and APPLIED it has reached.
    /// Looked up per mark; iterated only by `unsettled`, which sorts. Fixed hash keys, not
    /// RandomState: under madsim a RandomState draws its keys from the run's seeded generator.
    state: HashMap<PaymentId, u8, BuildHasherDefault<DefaultHasher>>,
    owed: usize,
    /// Payments their producer refused as too large for any batch: made, but never owed.
    refused: std::collections::BTreeSet<PaymentId>,
    // invariant: settled == the number of payments whose state has all three bits
    settled: usize,
}

const OWED: u8 = 1;
const ACKED: u8 = 2;
const APPLIED: u8 = 4;

impl Settlement {
    fn mark(&mut self, id: &PaymentId, bit: u8) {
        let state = self.state.entry(id.clone()).or_default();
        if *state & bit != 0 {
            return;
        }
        *state |= bit;
        let all = *state == OWED | ACKED | APPLIED;
        self.owed += usize::from(bit == OWED);
        self.settled += usize::from(all);
    }

    /// Takes in entries not seen before. Marks are idempotent, so their order does not matter.
    fn absorb(&mut self, entries: &[Entry]) {
        for entry in entries {
            match &entry.what {
                What::Node(Event::Outboxed { payment }) => self.mark(&payment.id, OWED),
                What::Node(
                    Event::ProduceAcked { payments, .. }
                    | Event::BatchRecoveredAsAcked { payments, .. },
                ) => payments.iter().for_each(|id| self.mark(id, ACKED)),
                What::Node(Event::StoreApplied { payment, .. }) => self.mark(payment, APPLIED),
                What::Node(Event::PaymentRefused { payment, .. }) => {
                    self.refused.insert(payment.clone());
                }
                _ => {}
            }
        }
    }

    fn all_settled(&self) -> bool {
        self.settled == self.owed
    }

    fn unsettled(&self) -> Vec<String> {
        let settled = OWED | ACKED | APPLIED;
        let mut unsettled: Vec<String> = self
            .state
            .iter()
            .filter(|(_, s)| **s & OWED != 0 && **s != settled)
            .map(|(id, _)| id.to_string())
            .collect();
        unsettled.sort_unstable();
        unsettled
    }
}

/// How the liveness phase ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Owed payments not acknowledged, logged and applied by the deadline.
    pub(crate) missing: Vec<String>,
    /// Payments the workload should have made that no producer outboxed by the deadline.
    pub(crate) never_outboxed: u64,
}

impl Settled {
    /// Whether every payment settled.
    pub(crate) fn reached(&self) -> bool {
        self.missing.is_empty() && self.never_outboxed == 0
    }

    /// What the history records about the phase's end.
    pub(crate) fn event(&self) -> HarnessEvent {
        if self.reached() {
            HarnessEvent::LivenessReached
        } else {
            HarnessEvent::LivenessTimedOut {
                missing: self.missing.len() as u32 + self.never_outboxed as u32,
            }
        }
    }

    /// The `liveness` anomaly, if the phase timed out: `heal_us` is when the bound of
    /// `liveness_ms` started.
    pub(crate) fn anomaly(&self, heal_us: u64, liveness_ms: u64) -> Option<Anomaly> {
        (!self.reached())
            .then(|| liveness_anomaly(&self.missing, self.never_outboxed, heal_us, liveness_ms))
    }
}

/// The liveness phase's judge: fed the history as it grows, it says when the phase is over.
pub(crate) struct Liveness {
    settlement: Settlement,
    /// Every payment the workload makes.
    expected: u64,
}

impl Liveness {
    pub(crate) fn new(plan: &RunPlan) -> Liveness {
        let w = &plan.scenario.workload;
        Liveness {
            settlement: Settlement::default(),
            expected: u64::from(w.producers) * u64::from(w.payments_per_producer),
        }
    }

    /// Takes in history entries not given before.
    pub(crate) fn absorb(&mut self, new_entries: &[Entry]) {
        self.settlement.absorb(new_entries);
    }

    /// `Some` once the phase is over: every payment settled, or `deadline_passed`.
    pub(crate) fn verdict(&self, deadline_passed: bool) -> Option<Settled> {
        let s = &self.settlement;
        // Producers outbox every payment once they run again; wait for all of them.
        // A refused payment is made but never owed (the checker judges the refusal).
        let made = (s.owed + s.refused.len()) as u64;
        if s.all_settled() && made >= self.expected {
            return Some(Settled::default());
        }
        deadline_passed.then(|| Settled {
            missing: s.unsettled(),
            never_outboxed: self.expected.saturating_sub(made),
        })
    }
}

/// `missing`: owed payments not settled; `never_outboxed`: payments the workload should have
/// made but no producer outboxed by the deadline.
fn liveness_anomaly(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Actor;
    use broker_under_test::{NodeName, Payment};

    fn entry(event: Event) -> Entry {
        Entry {
            at_us: 0,
            node: Actor::Node(NodeName::Producer(0)),
            what: What::Node(event),
        }
    }

    fn outboxed(n: u32) -> Entry {
        entry(Event::Outboxed {
            payment: Payment::generate(0, n, 3),
        })
    }

    fn acked(ids: &[&str]) -> Entry {
        entry(Event::ProduceAcked {
            partition: 0,
            base_seq: 0,
            base_offset: 0,
            payments: ids.iter().map(|&id| id.into()).collect(),
        })
    }

    fn applied(id: &str) -> Entry {
        entry(Event::StoreApplied {
            payment: id.into(),
            partition: 0,
            offset: 0,
            duplicate: false,
        })
    }

    #[test]
    fn a_payment_settles_when_owed_acked_and_applied_in_any_order() {
        let mut s = Settlement::default();
        s.absorb(&[applied("p-0-1"), outboxed(1), acked(&["p-0-1"])]);
        assert!(s.all_settled());
        // Marks are idempotent: a re-delivery or a second ack settles nothing twice.
        s.absorb(&[applied("p-0-1"), acked(&["p-0-1"])]);
        assert_eq!((s.owed, s.settled), (1, 1));
        s.absorb(&[outboxed(2)]);
        assert!(!s.all_settled());
    }

    #[test]
    fn the_unsettled_are_listed_in_id_order_whatever_order_they_came_in() {
        let mut s = Settlement::default();
        let history: Vec<Entry> = [12, 3, 7, 10, 1].into_iter().map(outboxed).collect();
        s.absorb(&history);
        s.absorb(&[acked(&["p-0-7"]), applied("p-0-7"), applied("p-0-3")]);
        assert_eq!(s.unsettled(), ["p-0-1", "p-0-10", "p-0-12", "p-0-3"]);
        // Applied but never outboxed: not owed, so not missing either.
        s.absorb(&[applied("p-0-99")]);
        assert_eq!(s.unsettled().len(), 4);
    }
}
