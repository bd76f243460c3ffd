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

pub mod artifact;
pub mod bench;
pub mod checker;
pub mod explore;
pub mod faults;
pub mod history;
pub mod html;
pub mod hunt;
pub mod net;
pub mod proxy;
pub mod real;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod timeline;
