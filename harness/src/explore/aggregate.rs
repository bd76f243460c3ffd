//! The order-independent aggregate hash of a sweep, and the merge of shards' aggregates.

use crate::history::{hash_lines, TraceHash};

/// The order-independent aggregate of a sweep: the XOR of every (scenario, seed, trace hash)
/// line's hash. XOR does not care about order, jobs or sharding, and shards' aggregates merge
/// by XOR into the whole range's.
pub fn aggregate(results: impl IntoIterator<Item = (String, u64, TraceHash)>) -> String {
    let mut acc = 0u128;
    for (scenario, seed, trace_hash) in results {
        let line = format!("{scenario} {seed} {trace_hash}");
        acc ^= hash_lines([line.as_str()]);
    }
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
