//! The run plan: everything one run needs, resolved and validated, and the seeded generator
//! streams every random decision of a run is drawn from.

use crate::scenario::{Scenario, SizeDistribution};
use crate::schedule::{self, FaultSchedule};
use broker_under_test::cluster::{ClusterSpec, Workload};
use broker_under_test::producer::PaymentSizes;
use broker_under_test::Bugs;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Everything one run needs, resolved and validated: the scenario, the seed, the planted bugs
/// and the fault schedule drawn from the seed (or given, when replaying or shrinking).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub scenario: Scenario,
    pub seed: u64,
    pub bugs: Bugs,
    pub schedule: FaultSchedule,
    /// Writes a process-wide counter into the trace: the determinism check's self-test.
    pub plant_nondeterminism: bool,
    /// Keeps every message beside the history, for the HTML timeline. Changes no trace hash.
    pub record_messages: bool,
    /// The `--scenario` argument as the user gave it (a catalogue name or a file path), for
    /// the replay command; the scenario's own name when it came from the catalogue.
    pub scenario_arg: String,
}

/// The generator streams of a run, derived from the seed in a fixed order.
pub(crate) const STREAM_SCHEDULE: u64 = 0;
pub(crate) const STREAM_NETWORK: u64 = 1;
pub(crate) const STREAM_DISK: u64 = 2;

pub(crate) fn generator(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl RunPlan {
    pub fn new(scenario: Scenario, seed: u64, bugs: Bugs) -> RunPlan {
        let schedule = schedule::generate(&scenario, &mut generator(seed, STREAM_SCHEDULE));
        RunPlan {
            scenario_arg: scenario.name.clone(),
            scenario,
            seed,
            bugs,
            schedule,
            plant_nondeterminism: false,
            record_messages: false,
        }
    }

    pub(crate) fn cluster_spec(&self) -> ClusterSpec {
        let w = &self.scenario.workload;
        let workload = Workload {
            producers: w.producers,
            payments_per_producer: w.payments_per_producer,
            customers: w.customers,
            partitions: w.partitions,
            payment_interval: Duration::from_millis(w.payment_interval_ms),
            max_batch_records: w.max_batch_records,
            seed: self.seed,
            first_seq: w.first_sequence.unwrap_or(0),
            payment_sizes: w.payment_size.as_ref().map(|size| PaymentSizes {
                min_bytes: size.bytes[0],
                max_bytes: size.bytes[1],
                log_uniform: size.distribution == SizeDistribution::LogUniform,
            }),
        };
        ClusterSpec::new(&workload, self.bugs)
    }

    /// The simulated-time bound past which madsim stops the run.
    pub(crate) fn time_limit(&self) -> Duration {
        Duration::from_millis(
            self.scenario.workload.duration_ms + self.scenario.limits.liveness_ms + 60_000,
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
