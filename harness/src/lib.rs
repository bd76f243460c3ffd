//! The deterministic fault-injection harness: seeded scenarios drive the system under test
//! through faults on madsim, and the checker judges the recorded history and durable state.

// The harness only means something inside the simulator. A RUSTFLAGS environment variable
// silently replaces `.cargo/config.toml`'s `--cfg madsim`; refuse to build rather than run a
// harness whose simulation tests have vanished.
#[cfg(not(madsim))]
compile_error!(
    "the harness must be built with `--cfg madsim` (set by .cargo/config.toml); \
     a RUSTFLAGS environment variable overrides it: unset RUSTFLAGS or add `--cfg madsim` to it"
);

// The stages, in the order data flows through a run: a scenario becomes a fault schedule; a
// world (simulated or real) runs it and records a history; the checker judges the history;
// sweeps drive many runs; reports show the results.
pub mod artifact;
pub mod check;
pub mod explore;
pub mod history;
pub mod real;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod sim;
pub mod system;
pub mod testing;
pub mod world;
