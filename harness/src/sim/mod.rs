//! The simulated world: one run on a fresh thread with a fresh madsim runtime, seeded from the
//! plan; panics, madsim's deadlock detector and its time limit turned into anomalies.
//!
//! Phases, in simulated time (see `drive`):
//! 1. Workload and faults run together for the scenario's duration.
//! 2. Heal: faults stop, crashed nodes restart at once, paused nodes resume, the network is whole.
//! 3. Liveness: within `limits.liveness_ms` every owed payment must be acknowledged, in the log
//!    and in the store.
//! 4. Final recovery: clients stop; broker and store crash once more and recover; the check
//!    reads their durable state, not memory or the producers' word.

mod drive;
pub mod messages;
#[doc(hidden)]
pub mod net;

use crate::check::{Anomaly, AnomalyKind};
use crate::history::{Recorder, STEP_LIMIT_PANIC};
use crate::system::node_names;
use crate::world::outcome::{RunOutcome, Stats};
use crate::world::plan::{generator, RunPlan, STREAM_NETWORK};
use drive::drive;
use net::Network;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Runs a plan in a fresh thread with a fresh madsim runtime, so no state (statics, hash seeds,
/// thread-locals) carries over from another run.
pub fn run(plan: &RunPlan) -> RunOutcome {
    let plan = plan.clone();
    install_quiet_panic_hook();
    std::thread::Builder::new()
        .name(format!("{RUN_THREAD_PREFIX}{}", plan.seed))
        .spawn(move || run_here(&plan))
        .expect("spawn a run thread")
        .join()
        .expect("a run thread reports its panics as anomalies")
}

const RUN_THREAD_PREFIX: &str = "harness-run-";

/// Panics inside a run are expected (planted bugs, step limits) and reported as anomalies; keep
/// the default hook's backtrace noise for every other thread.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_run = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(RUN_THREAD_PREFIX));
            if !in_run {
                default(info);
            }
        }));
    });
}

fn run_here(plan: &RunPlan) -> RunOutcome {
    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(plan.seed, sim_config());
    runtime.set_time_limit(plan.time_limit());
    let recorder = Arc::new(Recorder::new(plan.scenario.limits.max_steps));
    let names = node_names(&plan.scenario)
        .into_iter()
        .map(|name| (name.sim_addr().ip(), name))
        .collect();
    let network = Arc::new(Network::new(
        names,
        &plan.schedule,
        generator(plan.seed, STREAM_NETWORK),
        recorder.clone(),
        plan.record_messages,
        plan.system.clone(),
    ));
    let driven = {
        let (plan, recorder, network) = (plan.clone(), recorder.clone(), network.clone());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            runtime.block_on(drive(plan, recorder, network))
        }))
    };
    let history = recorder.take();
    let sim_ms = history.last().map_or(0, |e| e.at_us / 1000);
    let ended = driven
        .map_err(|panic| panic_anomaly(&panic, sim_ms))
        .and_then(|ended| ended);
    let stats = Stats {
        messages: network.fates.messages.load(Ordering::Relaxed),
        messages_dropped: network.fates.dropped.load(Ordering::Relaxed),
        ..Stats::default()
    };
    RunOutcome::judged(
        plan,
        history,
        ended,
        stats,
        recorder.probes(),
        network.take_messages(),
    )
}

/// madsim's own network: no loss and a fixed 1 ms latency. Every loss, delay, duplicate and
/// reordering then comes from the fault schedule, drawn from the run's generator and recorded;
/// madsim's default 1-10 ms spread would reorder messages outside the schedule.
pub(crate) fn sim_config() -> madsim::Config {
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = 0.0;
    config.net.send_latency = Duration::from_millis(1)..Duration::from_micros(1001);
    config
}

fn panic_anomaly(panic: &Box<dyn std::any::Any + Send>, sim_ms: u64) -> Anomaly {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string());
    let kind = if message.contains("all tasks will block forever") {
        AnomalyKind::Stuck
    } else if message.contains("time limit exceeded") {
        AnomalyKind::TimeLimit
    } else if message.contains(STEP_LIMIT_PANIC) {
        AnomalyKind::StepLimit
    } else {
        AnomalyKind::Panic
    };
    // The simulated time it stopped at says how far the run got; at_ms carries it too, but
    // a reader of the detail alone should not have to guess.
    let detail = match kind {
        AnomalyKind::StepLimit => format!("at {sim_ms} ms of simulated time: {message}"),
        _ => message,
    };
    Anomaly {
        kind,
        payment: None,
        at_ms: sim_ms,
        detail,
    }
}
