//! Coverage of rare paths: a standard sweep must hit every probe (duplicate answered, zombie
//! fenced, torn tail cut, snapshot used, ...) but those of I/O errors, which only `disk-errors`
//! injects (`tests/faults_bite.rs` proves they happen there). A probe never hit is a path the
//! harness claims to test but does not.

use broker_under_test::{Bugs, Probe};
use harness::explore::{probe_table, sweep, Sweep};
use harness::scenario::Scenario;

#[test]
fn a_standard_sweep_hits_every_probe() {
    let s = Sweep {
        scenarios: vec![Scenario::resolve("standard").unwrap()],
        seeds: 0..300,
        shard: None,
        bugs: Bugs::NONE,
        jobs: 2,
        keep_going: true,
        check_determinism: false,
        plant_nondeterminism: false,
        system: Default::default(),
    };
    let report = sweep(&s, &|_, _| {});
    assert_eq!(report.failed, 0);
    let table = probe_table(&report);
    assert_eq!(table.len(), Probe::ALL.len());
    let io_errors = [Probe::SyncFailed, Probe::ReadFailed, Probe::WriteFailed];
    let never: Vec<&str> = table
        .iter()
        .filter(|(probe, hits)| *hits == 0 && !io_errors.contains(probe))
        .map(|(probe, _)| probe.name())
        .collect();
    assert!(
        never.is_empty(),
        "probes never hit over 300 standard seeds: {never:?}"
    );
}
