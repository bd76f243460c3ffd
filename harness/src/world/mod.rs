//! What both worlds, simulated (`sim`) and real (`real`), share: the run plan, settlement of
//! owed payments after the heal, and the verdict assembled from a history.

#[doc(hidden)]
pub mod durable;
#[doc(hidden)]
pub mod fate;
#[doc(hidden)]
pub mod liveness;
pub mod outcome;
pub mod plan;

pub use outcome::{RunOutcome, Stats, Verdict};
pub use plan::RunPlan;
