//! The `harness` command line: list, run and explore seeded fault-injection scenarios.

// The harness only means something inside the simulator. A RUSTFLAGS environment variable
// silently replaces `.cargo/config.toml`'s `--cfg madsim`; refuse to build rather than run a
// harness whose simulation tests have vanished.
#[cfg(not(madsim))]
compile_error!(
    "the harness must be built with `--cfg madsim` (set by .cargo/config.toml); \
     a RUSTFLAGS environment variable overrides it: unset RUSTFLAGS or add `--cfg madsim` to it"
);

fn main() {
    eprintln!("harness: the command line arrives with the harness core (issue 3)");
    std::process::exit(3);
}
