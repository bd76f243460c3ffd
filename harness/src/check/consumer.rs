//! Properties of what the consumer read: offsets that agree with the log, polls that move
//! forward without gaps within one consumer incarnation. A rewind after a restart is expected.

use super::{Anomaly, AnomalyKind, Durable, Facts, Fetch};
use std::collections::BTreeMap;

/// `inconsistent-offsets`: a fetch saw a payment at an offset where the durable log holds
/// another, or that the log no longer has.
pub(super) fn inconsistent_offsets(facts: &Facts) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for fetch in &facts.fetches {
        for (offset, id) in fetch.records {
            let key = (fetch.partition, *offset);
            let detail = match facts.held.get(&key) {
                Some(durable_id) if durable_id == id => continue,
                Some(durable_id) => format!(
                    "fetched at partition {} offset {offset}, where the log now holds {durable_id}",
                    fetch.partition
                ),
                None => format!(
                    "fetched at partition {} offset {offset}, which the log no longer has",
                    fetch.partition
                ),
            };
            if reported.insert(key) {
                out.push(Anomaly::new(
                    AnomalyKind::InconsistentOffsets,
                    Some(id),
                    fetch.at_us,
                    detail,
                ));
            }
        }
    }
    out
}

/// `read-not-in-log`: a payment read from the log that the final log does not hold where it was
/// read: a store row whose (partition, offset) holds another payment or none, or a fetched
/// payment the final log holds nowhere. (A fetched payment the log holds at another offset is
/// `inconsistent-offsets` already.) With replication this is a read past the high watermark
/// of a write a failover then truncated away.
pub(super) fn read_not_in_log(facts: &Facts, durable: &Durable) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for fetch in &facts.fetches {
        for (offset, id) in fetch.records {
            let key = (fetch.partition, *offset);
            if facts.positions.contains_key(id.as_str()) || !reported.insert(key) {
                continue;
            }
            let detail = format!(
                "fetched at partition {} offset {offset}; the final log holds it nowhere",
                fetch.partition
            );
            out.push(Anomaly::new(
                AnomalyKind::ReadNotInLog,
                Some(id),
                fetch.at_us,
                detail,
            ));
        }
    }
    for row in &durable.rows {
        let (id, key) = (row.payment.id.as_str(), (row.partition, row.offset));
        let there = facts.held.get(&key).copied();
        if there == Some(id) || !reported.insert(key) {
            continue;
        }
        let held = match there {
            Some(other) => format!("the final log holds {other} there"),
            None => "the final log has no record there".to_string(),
        };
        let detail = format!(
            "applied by the store from partition {} offset {}; {held}",
            row.partition, row.offset
        );
        let at = facts.applied_at.get(id).copied().unwrap_or(facts.end_us);
        out.push(Anomaly::new(
            AnomalyKind::ReadNotInLog,
            Some(id),
            at,
            detail,
        ));
    }
    out
}

/// `commit-beyond-log`: the consumer committed an offset (the next it would read) past the end
/// of its partition's final log, over records it had fetched: the log lost records whose
/// processing was already committed (a read past the high watermark, then a failover). A
/// commit past everything ever fetched is not judged here. One per partition, the first.
pub(super) fn commit_beyond_log(facts: &Facts, durable: &Durable) -> Vec<Anomaly> {
    let end = |p: u32| {
        durable
            .logs
            .get(p as usize)
            .and_then(|records| records.last())
            .map_or(0, |(offset, _)| offset + 1)
    };
    let mut fetched_end: BTreeMap<u32, u64> = BTreeMap::new();
    for fetch in &facts.fetches {
        if let Some((last, _)) = fetch.records.last() {
            let e = fetched_end.entry(fetch.partition).or_default();
            *e = (*e).max(last + 1);
        }
    }
    let mut reported = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for &(partition, offset, at_us) in &facts.commits {
        let (log_end, read) = (end(partition), fetched_end.get(&partition).copied());
        if offset > log_end && read.is_some_and(|r| offset <= r) && reported.insert(partition) {
            let detail = format!(
                "committed offset {offset} on partition {partition} after reading up to it; the final log ends at {log_end}"
            );
            out.push(Anomaly::new(
                AnomalyKind::CommitBeyondLog,
                None,
                at_us,
                detail,
            ));
        }
    }
    out
}

/// Consecutive fetches of one partition within one consumer incarnation.
fn pairs<'a>(facts: &'a Facts) -> impl Iterator<Item = (&'a Fetch<'a>, &'a Fetch<'a>)> {
    let mut last: BTreeMap<(u32, u32), &Fetch> = BTreeMap::new();
    facts.fetches.iter().filter_map(move |f| {
        last.insert((f.incarnation, f.partition), f)
            .map(|prev| (prev, f))
    })
}

/// `nonmonotonic-poll`: within one consumer incarnation, a fetch went back to an offset it had
/// already read past.
pub(super) fn nonmonotonic_poll(facts: &Facts) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for fetch in &facts.fetches {
        if fetch.records.windows(2).any(|w| w[1].0 <= w[0].0) {
            let detail = format!(
                "offsets within one fetch of partition {} do not increase",
                fetch.partition
            );
            out.push(Anomaly::new(
                AnomalyKind::NonmonotonicPoll,
                None,
                fetch.at_us,
                detail,
            ));
        }
    }
    for (prev, next) in pairs(facts) {
        let (Some(last), Some(first)) = (prev.records.last(), next.records.first()) else {
            continue;
        };
        if first.0 <= last.0 {
            let detail = format!(
                "partition {}: polled offset {} after already reading offset {} (no restart in between)",
                next.partition, first.0, last.0
            );
            out.push(Anomaly::new(
                AnomalyKind::NonmonotonicPoll,
                Some(&first.1),
                next.at_us,
                detail,
            ));
        }
    }
    out
}

/// `poll-skip`: within one consumer incarnation, a fetch skipped offsets: it did not start
/// where it asked to, had a gap, or did not continue where the previous fetch ended.
pub(super) fn poll_skip(facts: &Facts) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for fetch in &facts.fetches {
        let expected = (fetch.from..).take(fetch.records.len());
        if let Some(((got, id), want)) = fetch
            .records
            .iter()
            .zip(expected)
            .find(|((got, _), want)| got != want)
        {
            let detail = format!(
                "partition {}: expected offset {want}, got {got}",
                fetch.partition
            );
            out.push(Anomaly::new(
                AnomalyKind::PollSkip,
                Some(id),
                fetch.at_us,
                detail,
            ));
        }
    }
    for (prev, next) in pairs(facts) {
        let Some(last) = prev.records.last() else {
            continue;
        };
        if next.from > last.0 + 1 {
            let detail = format!(
                "partition {}: polled from offset {} after reading up to {}, skipping {} records",
                next.partition,
                next.from,
                last.0,
                next.from - last.0 - 1
            );
            out.push(Anomaly::new(
                AnomalyKind::PollSkip,
                next.records.first().map(|r| r.1.as_str()),
                next.at_us,
                detail,
            ));
        }
    }
    out
}
