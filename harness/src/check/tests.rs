//! The checker against hand-made histories: each anomaly is reported when present and not when
//! absent. Every test starts from one clean run and breaks exactly one thing.

use super::{check, AnomalyKind, Durable};
use crate::history::{Entry, What};
use crate::scenario::Scenario;
use crate::world::outcome::{RunOutcome, Stats, Verdict};
use crate::world::RunPlan;
use broker_under_test::store::StoreRow;
use broker_under_test::{Event, Payment, PaymentId};

/// A small clean run: producer-0 outboxes p-0-0..p-0-3, two batches of two on partition 0 are
/// acknowledged at offsets 0 and 2, the consumer fetches all four and the store applies them.
struct Run {
    history: Vec<Entry>,
    durable: Durable,
}

fn payment(n: u32) -> Payment {
    Payment::generate(0, n, 4)
}

fn at(at_us: u64, node: &str, event: Event) -> Entry {
    Entry {
        at_us,
        node: node.parse().expect("a node name"),
        what: What::Node(event),
    }
}

/// The records a batch at `base_offset` holds, as the final read serves them.
fn batch(base_offset: u64, ns: &[u32]) -> Vec<(u64, Payment)> {
    ns.iter()
        .zip(base_offset..)
        .map(|(&n, offset)| (offset, payment(n)))
        .collect()
}

fn row(n: u32, offset: u64) -> StoreRow {
    StoreRow {
        payment: payment(n),
        partition: 0,
        offset,
    }
}

fn ids(ns: &[u32]) -> Vec<PaymentId> {
    ns.iter().map(|&n| payment(n).id).collect()
}

impl Run {
    fn clean() -> Run {
        let mut history: Vec<Entry> = (0..4)
            .map(|n| {
                at(
                    1000 * u64::from(n),
                    "producer-0",
                    Event::Outboxed {
                        payment: payment(n),
                    },
                )
            })
            .collect();
        history.extend([
            at(
                5000,
                "broker",
                Event::BatchAppended {
                    partition: 0,
                    producer_id: 0,
                    epoch: 0,
                    base_seq: 0,
                    base_offset: 0,
                    count: 2,
                },
            ),
            at(
                5500,
                "producer-0",
                Event::ProduceAcked {
                    partition: 0,
                    base_seq: 0,
                    base_offset: 0,
                    payments: ids(&[0, 1]),
                },
            ),
            at(
                6000,
                "broker",
                Event::BatchAppended {
                    partition: 0,
                    producer_id: 0,
                    epoch: 0,
                    base_seq: 2,
                    base_offset: 2,
                    count: 2,
                },
            ),
            at(
                6500,
                "producer-0",
                Event::ProduceAcked {
                    partition: 0,
                    base_seq: 2,
                    base_offset: 2,
                    payments: ids(&[2, 3]),
                },
            ),
            at(
                7000,
                "consumer",
                Event::ConsumerResumed {
                    partition: 0,
                    offset: 0,
                },
            ),
            at(
                8000,
                "consumer",
                Event::Fetched {
                    partition: 0,
                    from: 0,
                    records: vec![(0, payment(0).id), (1, payment(1).id)],
                },
            ),
            at(
                9000,
                "consumer",
                Event::Fetched {
                    partition: 0,
                    from: 2,
                    records: vec![(2, payment(2).id), (3, payment(3).id)],
                },
            ),
        ]);
        for n in 0..4 {
            history.push(at(
                10_000 + u64::from(n),
                "store",
                Event::StoreApplied {
                    payment: payment(n).id,
                    partition: 0,
                    offset: u64::from(n),
                    duplicate: false,
                },
            ));
        }
        let durable = Durable {
            logs: vec![[batch(0, &[0, 1]), batch(2, &[2, 3])].concat()],
            rows: (0..4).map(|n| row(n, u64::from(n))).collect(),
        };
        Run { history, durable }
    }

    fn kinds(&self) -> Vec<AnomalyKind> {
        let mut kinds: Vec<AnomalyKind> = check(&self.history, &self.durable)
            .into_iter()
            .map(|a| a.kind)
            .collect();
        kinds.dedup();
        kinds
    }

    fn only(&self, kind: AnomalyKind) {
        let anomalies = check(&self.history, &self.durable);
        assert!(!anomalies.is_empty(), "expected {kind}, got nothing");
        assert!(
            anomalies.iter().all(|a| a.kind == kind),
            "expected only {kind}, got {anomalies:#?}"
        );
    }
}

#[test]
fn a_clean_run_has_no_anomaly() {
    assert_eq!(Run::clean().kinds(), vec![]);
}

#[test]
fn log_duplicate_names_both_places() {
    let mut run = Run::clean();
    run.durable.logs[0].extend(batch(4, &[1]));
    run.only(AnomalyKind::LogDuplicate);
    let a = &check(&run.history, &run.durable)[0];
    assert_eq!(a.payment.as_deref(), Some("p-0-1"));
    assert!(
        a.detail.contains("offset 1") && a.detail.contains("offset 4"),
        "{}",
        a.detail
    );
}

#[test]
fn lost_ack_when_an_acknowledged_payment_is_gone() {
    let mut run = Run::clean();
    run.durable.logs[0].truncate(1);
    let kinds = run.kinds();
    assert!(kinds.contains(&AnomalyKind::LostAck), "{kinds:?}");
    // The consumer fetched what is gone: the offsets it read are no longer in the log.
    assert!(
        kinds.contains(&AnomalyKind::InconsistentOffsets),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&AnomalyKind::LogMissing),
        "acknowledged payments are lost-ack, not log-missing"
    );
}

#[test]
fn log_missing_when_an_unacknowledged_payment_never_arrived() {
    let mut run = Run::clean();
    run.history.insert(
        4,
        at(
            4000,
            "producer-0",
            Event::Outboxed {
                payment: payment(4),
            },
        ),
    );
    run.durable.rows.push(row(4, 9));
    // The store applied it from an offset the log does not have: that read is not in the log.
    assert_eq!(
        run.kinds(),
        vec![AnomalyKind::LogMissing, AnomalyKind::ReadNotInLog]
    );
}

#[test]
fn store_missing_and_store_duplicate() {
    let mut run = Run::clean();
    run.durable.rows.retain(|r| r.payment.id != "p-0-2");
    run.only(AnomalyKind::StoreMissing);
    let mut run = Run::clean();
    run.durable.rows.push(row(3, 3));
    run.only(AnomalyKind::StoreDuplicate);
}

#[test]
fn ack_mismatch_when_the_acknowledged_offset_holds_another_payment() {
    let mut run = Run::clean();
    let Some(What::Node(Event::ProduceAcked { base_offset, .. })) = run
        .history
        .iter_mut()
        .map(|e| &mut e.what)
        .find(|w| matches!(w, What::Node(Event::ProduceAcked { base_seq: 2, .. })))
    else {
        unreachable!()
    };
    *base_offset = 7;
    run.only(AnomalyKind::AckMismatch);
}

#[test]
fn phantom_for_an_unknown_or_altered_payment() {
    let mut run = Run::clean();
    run.durable.logs[0].push((4, Payment::generate(9, 9, 4)));
    run.only(AnomalyKind::Phantom);
    let mut run = Run::clean();
    run.durable.rows[0].payment.amount += 1;
    run.only(AnomalyKind::Phantom);
}

#[test]
fn inconsistent_offsets_when_a_fetch_disagrees_with_the_log() {
    let mut run = Run::clean();
    let Some(What::Node(Event::Fetched { records, .. })) = run
        .history
        .iter_mut()
        .map(|e| &mut e.what)
        .find(|w| matches!(w, What::Node(Event::Fetched { from: 2, .. })))
    else {
        unreachable!()
    };
    records[1].1 = payment(0).id;
    run.only(AnomalyKind::InconsistentOffsets);
}

#[test]
fn read_not_in_log_when_the_store_applied_from_a_position_the_log_no_longer_holds() {
    // A failover truncated payment 3 away and the new leader put payment 5 at offset 3; the
    // store had applied 3 from there. (Other properties see the loss too; this one names the
    // read.) The fetch is left out, so that the store's row is the only evidence.
    let mut run = Run::clean();
    run.history
        .retain(|e| !matches!(&e.what, What::Node(Event::Fetched { from: 2, .. })));
    run.durable.logs[0][3].1 = payment(5);
    let anomalies = check(&run.history, &run.durable);
    let read: Vec<_> = anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::ReadNotInLog)
        .collect();
    assert_eq!(read.len(), 1, "{anomalies:#?}");
    assert_eq!(read[0].payment.as_deref(), Some("p-0-3"));
    assert!(read[0].detail.contains("holds p-0-5"), "{}", read[0].detail);
}

#[test]
fn read_not_in_log_when_a_fetched_payment_is_nowhere_in_the_final_log() {
    // The consumer read payment 3 past the high watermark; a failover cut it and no producer
    // retry brought it back (its producer was never acknowledged, and gave up on nothing).
    let mut run = Run::clean();
    run.history.retain(|e| match &e.what {
        What::Node(Event::Outboxed { payment }) => payment.id != "p-0-3",
        What::Node(Event::StoreApplied { payment, .. }) => payment != "p-0-3",
        _ => true,
    });
    let Some(What::Node(Event::ProduceAcked { payments, .. })) = run
        .history
        .iter_mut()
        .map(|e| &mut e.what)
        .find(|w| matches!(w, What::Node(Event::ProduceAcked { base_seq: 2, .. })))
    else {
        unreachable!()
    };
    payments.truncate(1);
    run.durable.logs[0].truncate(3);
    run.durable.rows.truncate(3);
    let kinds = run.kinds();
    assert!(kinds.contains(&AnomalyKind::ReadNotInLog), "{kinds:?}");
    let a = check(&run.history, &run.durable)
        .into_iter()
        .find(|a| a.kind == AnomalyKind::ReadNotInLog)
        .unwrap();
    assert_eq!(a.payment.as_deref(), Some("p-0-3"));
    assert!(a.detail.contains("offset 3"), "{}", a.detail);
}

#[test]
fn commit_beyond_log_when_a_committed_offset_passes_the_final_log_end() {
    let commit = |offset| {
        at(
            11_000,
            "consumer",
            Event::OffsetCommitted {
                partition: 0,
                offset,
            },
        )
    };
    let mut run = Run::clean();
    run.history.push(commit(4));
    assert_eq!(run.kinds(), vec![], "committing the log end is fine");
    // Past everything ever fetched: not this property's to judge.
    run.history.push(commit(6));
    assert_eq!(run.kinds(), vec![]);
    // The log lost the last record after the consumer read it and committed past it.
    run.durable.logs[0].truncate(3);
    let anomalies = check(&run.history, &run.durable);
    let beyond: Vec<_> = anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::CommitBeyondLog)
        .collect();
    assert_eq!(beyond.len(), 1, "one per partition: {anomalies:#?}");
    assert!(
        beyond[0].detail.contains("offset 4") && beyond[0].detail.contains("ends at 3"),
        "{}",
        beyond[0].detail
    );
}

#[test]
fn nonmonotonic_poll_only_without_a_restart_in_between() {
    let rewind = at(
        9500,
        "consumer",
        Event::Fetched {
            partition: 0,
            from: 1,
            records: vec![(1, payment(1).id)],
        },
    );
    let mut run = Run::clean();
    run.history.insert(11, rewind.clone());
    run.only(AnomalyKind::NonmonotonicPoll);
    // The same rewind after a consumer restart is the expected re-delivery.
    let mut run = Run::clean();
    run.history.insert(
        11,
        at(
            9400,
            "consumer",
            Event::ConsumerResumed {
                partition: 0,
                offset: 1,
            },
        ),
    );
    run.history.insert(12, rewind);
    assert_eq!(run.kinds(), vec![]);
}

#[test]
fn poll_skip_when_a_fetch_leaves_a_gap() {
    let mut run = Run::clean();
    let Some(What::Node(Event::Fetched { from, records, .. })) = run
        .history
        .iter_mut()
        .map(|e| &mut e.what)
        .find(|w| matches!(w, What::Node(Event::Fetched { from: 2, .. })))
    else {
        unreachable!()
    };
    *from = 3;
    records.remove(0);
    run.only(AnomalyKind::PollSkip);
}

#[test]
fn nonmonotonic_send_when_a_later_sequence_gets_a_lower_offset() {
    let mut run = Run::clean();
    run.history.push(later_sequence_at_lower_offset());
    run.only(AnomalyKind::NonmonotonicSend);
}

/// Producer 0's sequence 4 acknowledged at offset 1, below its earlier batches' offsets.
fn later_sequence_at_lower_offset() -> Entry {
    at(
        12_000,
        "producer-0",
        Event::ProduceAcked {
            partition: 0,
            base_seq: 4,
            base_offset: 1,
            payments: vec![],
        },
    )
}

/// Every early stop, not only the step limit, still reports what the history recorded before
/// it proves: a panic, a stuck run or the time limit must not hide a safety violation.
#[test]
fn every_early_stop_reports_the_safety_anomalies_recorded_before_it() {
    for stop in [
        AnomalyKind::Panic,
        AnomalyKind::Stuck,
        AnomalyKind::TimeLimit,
        AnomalyKind::StepLimit,
    ] {
        let mut run = Run::clean();
        run.history.push(later_sequence_at_lower_offset());
        let (kinds, verdict) = stopped_by(stop, run.history);
        assert_eq!(kinds, vec![AnomalyKind::NonmonotonicSend, stop], "{stop}");
        assert_eq!(verdict, Verdict::Fail);
    }
    // Durable-state and missing properties are not judged on a cut history: a clean prefix
    // reports the stop alone.
    let (kinds, _) = stopped_by(AnomalyKind::Panic, Run::clean().history);
    assert_eq!(kinds, vec![AnomalyKind::Panic]);
}

/// The anomaly kinds and verdict of a run of standard seed 0 that recorded `history` and
/// then stopped early with `stop`.
fn stopped_by(stop: AnomalyKind, history: Vec<Entry>) -> (Vec<AnomalyKind>, Verdict) {
    let plan = RunPlan::new(
        Scenario::resolve("standard").unwrap(),
        0,
        broker_under_test::Bugs::NONE,
    );
    let stopped = super::Anomaly::new(stop, None, 13_000, format!("stopped: {stop}"));
    let outcome = RunOutcome::judged(
        &plan,
        history,
        Err(stopped),
        Stats::default(),
        Default::default(),
        Vec::new(),
    );
    let kinds = outcome.anomalies.iter().map(|a| a.kind).collect();
    (kinds, outcome.verdict)
}
