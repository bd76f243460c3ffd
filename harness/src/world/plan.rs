//! The run plan: everything one run needs, resolved and validated, and the seeded generator
//! streams every random decision of a run is drawn from.

use crate::scenario::Scenario;
use crate::schedule::{self, FaultSchedule};
use crate::system::{System, SystemRef};
use broker_under_test::Bugs;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Everything one run needs, resolved and validated: the scenario, the seed, the planted bugs
/// and the fault schedule drawn from the seed (or given, when replaying or shrinking).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    /// The scenario, resolved and validated.
    pub scenario: Scenario,
    /// The seed every random decision of the run is drawn from.
    pub seed: u64,
    /// The planted bugs of this repository's broker.
    pub bugs: Bugs,
    /// The fault schedule: drawn from the seed, or given (replay, shrink).
    pub schedule: FaultSchedule,
    /// Writes a process-wide counter into the trace: the determinism check's self-test.
    pub plant_nondeterminism: bool,
    /// Keeps every message beside the history, for the HTML timeline. Changes no trace hash.
    pub record_messages: bool,
    /// The `--scenario` argument as the user gave it (a catalogue name or a file path), for
    /// the replay command; the scenario's own name when it came from the catalogue.
    pub scenario_arg: String,
    /// The system under test (this repository's broker unless set).
    pub system: SystemRef,
}

/// How far past its liveness bound a run may go (the final recovery and read) before madsim
/// stops it as `time-limit`.
pub(crate) const TIME_LIMIT_SLACK_MS: u64 = 60_000;

/// The generator streams of a run, derived from the seed in a fixed order.
pub(crate) const STREAM_SCHEDULE: u64 = 0;
pub(crate) const STREAM_NETWORK: u64 = 1;
pub(crate) const STREAM_DISK: u64 = 2;
/// Which storage operations fail in an I/O error window (drawn only while one is open).
pub(crate) const STREAM_IO: u64 = 3;
/// Replicated scenarios: which replica each broker fault hits, and the replication faults.
/// A stream of its own, so the schedule stream draws as for one broker.
pub(crate) const STREAM_REPLICATION: u64 = 4;

pub(crate) fn generator(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl RunPlan {
    /// The plan of `scenario` at `seed`, its fault schedule drawn from the seed.
    pub fn new(scenario: Scenario, seed: u64, bugs: Bugs) -> RunPlan {
        let mut schedule = schedule::generate(&scenario, &mut generator(seed, STREAM_SCHEDULE));
        if scenario.workload.replicated() {
            let mut rng = generator(seed, STREAM_REPLICATION);
            schedule = schedule::replicate(&scenario, schedule, &mut rng);
        }
        RunPlan {
            scenario_arg: scenario.name.clone(),
            scenario,
            seed,
            bugs,
            schedule,
            plant_nondeterminism: false,
            record_messages: false,
            system: SystemRef::default(),
        }
    }

    /// The same plan for another system under test.
    pub fn with_system(self, system: impl System) -> RunPlan {
        self.with_system_ref(SystemRef::new(system))
    }

    /// The same plan for a shared system under test.
    pub fn with_system_ref(mut self, system: SystemRef) -> RunPlan {
        self.system = system;
        self
    }

    /// The simulated-time bound past which madsim stops the run.
    pub(crate) fn time_limit(&self) -> Duration {
        Duration::from_millis(
            self.scenario.workload.duration_ms
                + self.scenario.limits.liveness_ms
                + TIME_LIMIT_SLACK_MS,
        )
    }

    /// The command that reruns this plan.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "harness run --scenario {} --seed {}",
            crate::artifact::shell_quote(&self.scenario_arg),
            self.seed
        );
        for bug in self.bugs.iter() {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        cmd
    }
}
