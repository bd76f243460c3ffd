//! The order-independent aggregate hash of a sweep, and the merge of shards' aggregates.

use crate::history::{hash_lines, TraceHash};

/// The order-independent aggregate of a sweep: the XOR of every (scenario, seed, trace hash)
/// line's hash. XOR does not care about order, jobs or sharding, and shards' aggregates merge
/// by XOR into the whole range's.
pub fn aggregate(results: impl IntoIterator<Item = (String, u64, TraceHash)>) -> String {
    let mut acc = 0u128;
    for (scenario, seed, trace_hash) in results {
        acc ^= aggregate_term(&scenario, seed, trace_hash);
    }
    format_aggregate(acc)
}

/// One run's term of the aggregate: XOR the terms of a sweep's runs, in any order, and format
/// the result with `format_aggregate`, to fold a sweep without keeping its runs.
pub fn aggregate_term(scenario: &str, seed: u64, trace_hash: TraceHash) -> u128 {
    let line = format!("{scenario} {seed} {trace_hash}");
    hash_lines([line.as_str()])
}

/// The aggregate hash as printed: 32 lowercase hex digits.
pub fn format_aggregate(acc: u128) -> String {
    format!("{acc:032x}")
}

/// Merges aggregate hashes of disjoint shards.
pub fn merge_aggregates<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    let mut acc = 0u128;
    for h in hashes {
        acc ^=
            u128::from_str_radix(h, 16).map_err(|_| format!("'{h}' is not an aggregate hash"))?;
    }
    Ok(format!("{acc:032x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_ignore_order_and_shards_merge_into_the_whole() {
        let lines = |seeds: &[u64]| {
            seeds
                .iter()
                .map(|s| ("standard".to_string(), *s, TraceHash(u128::from(*s))))
                .collect::<Vec<_>>()
        };
        let whole = aggregate(lines(&[0, 1, 2, 3, 4]));
        assert_eq!(whole, aggregate(lines(&[4, 2, 0, 3, 1])));
        let shards = [
            aggregate(lines(&[0, 3])),
            aggregate(lines(&[1, 4])),
            aggregate(lines(&[2])),
        ];
        assert_eq!(
            merge_aggregates(shards.iter().map(String::as_str)).unwrap(),
            whole
        );
        assert_ne!(whole, aggregate(lines(&[0, 1, 2, 3])));
        assert!(merge_aggregates(["xyz"]).is_err());
    }
}
