//! Real mode's final read: the broker's log files and the store's rows file decoded with the
//! broker's own recovery. (The simulated world reads through the system's clients instead, see
//! `system::Deployment::final_read`; real mode runs only this repository's broker.)

use crate::check::Durable;
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use broker_under_test::NodeName;

/// Reads the broker's `partitions` logs and the store's rows; `read(node, file)` gives a
/// file's bytes (empty if it does not exist).
pub(crate) fn read_durable(partitions: u32, read: impl Fn(NodeName, &str) -> Vec<u8>) -> Durable {
    let logs = (0..partitions)
        .map(|p| {
            let batches = recover_log(&read(NodeName::Broker, &log_file(p))).batches;
            let records = batches.into_iter().flat_map(|b| {
                let base = b.base_offset;
                b.records
                    .into_iter()
                    .enumerate()
                    .map(move |(i, payment)| (base + i as u64, payment))
            });
            records.collect()
        })
        .collect();
    let (rows, _, _) = recover_rows(&read(NodeName::Store, APPLIED_FILE));
    Durable { logs, rows }
}
