//! The things that drive many runs: seed sweeps and their aggregate hash, the determinism
//! check, shrinking a failing schedule, hunting planted bugs, and the speed benchmark.

pub mod aggregate;
#[doc(hidden)]
pub mod bench;
#[doc(hidden)]
pub mod determinism;
#[doc(hidden)]
pub mod floor;
#[doc(hidden)]
pub mod hunt;
pub mod shrink;
pub mod sweep;

pub use aggregate::{aggregate, merge_aggregates};
pub use sweep::{
    probe_table, sweep, sweep_with, FailureSummary, SeedResult, Sweep, SweepHooks, SweepReport,
    MAX_SWEEP_RUNS,
};
