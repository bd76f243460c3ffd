//! The review format: one run as lines a person can judge in a snapshot diff. The fault
//! schedule, the verdict and anomalies, domain counters and one payment's life come first, in
//! words; the trace hash comes last, as the exact-equality guard. A change of behaviour shows
//! up in the words; a change of the history's encoding touches only the hash line.

mod counters;
mod life;

use crate::world::{RunOutcome, RunPlan, Verdict};
use counters::Counters;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// How many anomalies are listed one by one; the rest are counted by kind above them.
const MAX_ANOMALIES: usize = 8;

/// The review of a finished run of `plan`.
pub fn render(plan: &RunPlan, outcome: &RunOutcome) -> String {
    let mut out = String::new();
    write_review(&mut out, plan, outcome).expect("writing to a String cannot fail");
    out
}

/// Writes the review of a finished run of `plan` into `out`.
pub fn write_review(out: &mut impl Write, plan: &RunPlan, outcome: &RunOutcome) -> fmt::Result {
    header(out, outcome)?;
    writeln!(out, "\nfault schedule: {} faults", plan.schedule.len())?;
    for entry in &plan.schedule {
        writeln!(out, "{entry}")?;
    }
    anomalies(out, outcome)?;
    writeln!(
        out,
        "\ncounters, from the history up to the final recovery:"
    )?;
    write!(out, "{}", Counters::from_history(&outcome.history))?;
    match life::choose(&outcome.history) {
        Some(traced) => {
            writeln!(out, "\nlife of {}, {}:", traced.payment, traced.why)?;
            for line in life::lines(&outcome.history, &traced) {
                writeln!(out, "  {line}")?;
            }
        }
        None => writeln!(out, "\nno payment was sent twice")?,
    }
    writeln!(out, "\nsimulated {} ms", outcome.sim_ms)?;
    writeln!(out, "trace hash {}", outcome.trace_hash)
}

fn header(out: &mut impl Write, outcome: &RunOutcome) -> fmt::Result {
    let bugs: Vec<&str> = outcome.bugs.iter().map(|b| b.name()).collect();
    let bugs = if bugs.is_empty() {
        "none".to_string()
    } else {
        bugs.join(", ")
    };
    writeln!(
        out,
        "scenario {} seed {}, planted bugs: {bugs}",
        outcome.scenario, outcome.seed
    )?;
    let verdict = match outcome.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
    };
    writeln!(out, "verdict: {verdict}")
}

fn anomalies(out: &mut impl Write, outcome: &RunOutcome) -> fmt::Result {
    if outcome.anomalies.is_empty() {
        return writeln!(out, "\nanomalies: none");
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &outcome.anomalies {
        *kinds.entry(a.kind.name()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "\nanomalies: {} ({})",
        outcome.anomalies.len(),
        kinds.join(", ")
    )?;
    for a in outcome.anomalies.iter().take(MAX_ANOMALIES) {
        let payment = a.payment.as_deref().unwrap_or("-");
        writeln!(
            out,
            "  {:>6} ms  {:<20} {payment}: {}",
            a.at_ms,
            a.kind.name(),
            a.detail
        )?;
    }
    if outcome.anomalies.len() > MAX_ANOMALIES {
        writeln!(
            out,
            "  ... {} more",
            outcome.anomalies.len() - MAX_ANOMALIES
        )?;
    }
    Ok(())
}

/// Runs `plan` in the simulation and returns its review: what a snapshot test of a user's own
/// scenario stores (`insta::assert_snapshot!(name, review::of_run(&plan))`).
pub fn of_run(plan: &RunPlan) -> String {
    render(plan, &crate::sim::run(plan))
}
