//! One broker of a replicated deployment: leader of some partitions, follower of the others
//! (the protocol is in `replication`).

use crate::broker::BrokerConfig;
use crate::node::{NodeCtx, NodeError};
use crate::replication::ReplicaConfig;

/// Runs replica `replica.index` on this node until the node is killed.
pub async fn run_replica(
    ctx: NodeCtx,
    cfg: BrokerConfig,
    replica: ReplicaConfig,
) -> Result<(), NodeError> {
    let _ = (ctx, cfg, replica);
    unimplemented!("the replicated broker is being built")
}
