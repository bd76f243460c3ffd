//! The controller of a replicated deployment: leader election, in-sync replicas, producer ids
//! and consumer offsets, all durable (the protocol is in `replication`).

use crate::node::{NodeCtx, NodeError};
use crate::replication::ControllerConfig;

/// Runs the controller on this node until the node is killed.
pub async fn run_controller(ctx: NodeCtx, cfg: ControllerConfig) -> Result<(), NodeError> {
    let _ = (ctx, cfg);
    unimplemented!("the controller is being built")
}
