//! The durable state the checker reads after the final recovery, decoded the same way in both
//! worlds from the broker's log files and the store's rows file, however each world stores
//! them (a simulated disk, real files).

use crate::check::Durable;
use broker_under_test::log::{log_file, recover_log};
use broker_under_test::store::{recover_rows, APPLIED_FILE};
use broker_under_test::NodeName;

/// Reads the broker's `partitions` logs and the store's rows; `read(node, file)` gives a
/// file's bytes (empty if it does not exist).
pub(crate) fn read_durable(partitions: u32, read: impl Fn(NodeName, &str) -> Vec<u8>) -> Durable {
    let logs = (0..partitions)
        .map(|p| recover_log(&read(NodeName::Broker, &log_file(p))).batches)
        .collect();
    let (rows, _, _) = recover_rows(&read(NodeName::Store, APPLIED_FILE));
    Durable { logs, rows }
}
