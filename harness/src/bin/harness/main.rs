//! The `harness` command: parses the arguments, hands them to the subcommand, and turns its
//! result into the exit status of DESIGN.md's contract: 0 success; 1 an invariant was violated
//! (`replay`: the failure reproduced); 2 bad usage or bad input; 3 an internal error.

mod args;
mod cmd;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like any Unix filter: when the reader goes away (`harness explore | head`), stop quietly
    // instead of panicking on a broken pipe. Rust ignores SIGPIPE by default.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Node logs are for a person chasing a run; off unless RUST_LOG asks. They go to stderr and
    // never into the history, so they change no trace hash.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let cli = Cli::parse();
    install_panic_hook();
    let result = std::panic::catch_unwind(|| dispatch(cli)).unwrap_or_else(|payload| {
        let what = PANICKED
            .get()
            .cloned()
            .unwrap_or_else(|| describe(&*payload));
        Err(cmd::Failure::Internal(what))
    });
    result.unwrap_or_else(|failure| {
        eprintln!("harness: {failure}");
        failure.exit_code()
    })
}

fn dispatch(cli: Cli) -> Result<ExitCode, cmd::Failure> {
    match cli.command {
        Command::List(a) => cmd::list::list(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Explore(a) => cmd::explore::explore(a),
        Command::Replay(a) => cmd::replay::replay(a),
        Command::Shrink(a) => cmd::shrink::shrink(a),
        Command::Show(a) => cmd::show::show(a),
        Command::Merge(a) => cmd::merge::merge(a),
        Command::Bugs(a) => cmd::bugs::bugs(a),
        Command::Bench(a) => cmd::bench::bench(a),
        Command::Real(a) => cmd::real::real(a),
    }
}

/// The first panic outside a simulated run (those are anomalies, reported by `sim`): where it
/// happened and what it said, for the one line `main` prints before exiting 3.
static PANICKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Replaces the default hook's multi-line report (and a worker's panic reaching `main` only as
/// "a scoped thread panicked") with the first panic's own message, kept for `main`.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        let _ = PANICKED.set(format!("panic{place}: {}", describe(info.payload())));
    }));
}

fn describe(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}
