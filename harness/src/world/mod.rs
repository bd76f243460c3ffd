//! What both worlds, simulated (`sim`) and real (`real`), share: the run plan, settlement of
//! owed payments after the heal, and the verdict assembled from a history.

pub mod durable;
pub mod fate;
pub mod liveness;
pub mod outcome;
pub mod plan;

pub use outcome::{RunOutcome, Stats, Verdict};
pub use plan::RunPlan;
