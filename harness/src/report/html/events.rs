//! What the history shows on the lanes besides messages: crashes (with the unsynced bytes they
//! lost and any damage to what they kept; a node's own crash on an I/O error with the failed operation), restarts, the heal and the final recovery across the page, every event of the traced
//! payment as a dot on its lane, and the first anomaly as a line across the page.

use super::axis::TimeAxis;
use super::esc;
use super::lanes::{Lanes, LEFT};
use crate::check::Anomaly;
use crate::history::{Entry, HarnessEvent, What};
use crate::report::excerpt;
use crate::schedule::{Corruption, Fault};
use broker_under_test::storage::CrashReport;
use broker_under_test::Event;
use std::fmt::Write;

/// A crash's mark: the bytes it lost, and, for a damaged tail, the damage the schedule asked
/// for and how many files it changed.
fn crash(
    svg: &mut String,
    e: &Entry,
    lx: f64,
    y: f64,
    report: &CrashReport,
    damage: Option<Corruption>,
) {
    let lost = if report.bytes_lost > 0 {
        format!(" lost {} B", report.bytes_lost)
    } else {
        String::new()
    };
    let (mark, detail) = match damage.filter(|_| report.files_damaged > 0) {
        Some(c) => (
            " ☢ damaged",
            format!(", {} files damaged: {c}", report.files_damaged),
        ),
        None => ("", String::new()),
    };
    let _ = write!(
        svg,
        r#"<g class="crash" data-node="{n}"><text x="{tx}" y="{ty}">✖ crash{lost}{mark}</text><title>{n} lost power at {t:.3} ms: {lost_b} unsynced bytes lost, {torn} kept torn{detail}</title></g>"#,
        n = esc(&e.node.to_string()),
        tx = lx - 8.0,
        ty = y + 4.0,
        t = e.at_us as f64 / 1000.0,
        lost_b = report.bytes_lost,
        torn = report.bytes_torn,
        detail = esc(&detail),
    );
}

/// Every event worth a mark. `traced` is the payment whose events are dotted.
pub(super) fn draw(
    svg: &mut String,
    lanes: &Lanes,
    axis: &TimeAxis,
    history: &[Entry],
    traced: Option<&str>,
    width: f64,
) {
    // The scheduled damage of the crash about to be recorded: the fault's start comes first.
    let mut scheduled_damage: Option<Corruption> = None;
    for e in history {
        let (lx, y) = (lanes.x(e.node), axis.at(e.at_us));
        match &e.what {
            What::Harness(HarnessEvent::FaultStarted { fault }) => {
                if let Fault::Crash { corrupt, .. } = fault.fault {
                    scheduled_damage = corrupt;
                }
            }
            What::Harness(HarnessEvent::NodeCrashed { report }) => {
                let damage = scheduled_damage.take();
                crash(svg, e, lx, y, report, damage);
            }
            What::Harness(HarnessEvent::NodeRestarted) => {
                let _ = write!(
                    svg,
                    r#"<text class="restart" x="{}" y="{}">▲ restart</text>"#,
                    lx - 8.0,
                    y + 4.0
                );
            }
            What::Node(Event::StorageFailed { op, file }) => {
                let _ = write!(
                    svg,
                    r#"<g class="crash" data-node="{n}"><text x="{tx}" y="{ty}">✖ {op} error</text><title>{n}: {op} of {f} failed at {t:.3} ms; the node crashed and recovered from its disk</title></g>"#,
                    n = esc(&e.node.to_string()),
                    f = esc(file),
                    tx = lx - 8.0,
                    ty = y + 4.0,
                    t = e.at_us as f64 / 1000.0,
                );
            }
            What::Harness(HarnessEvent::Healed) => phase(svg, y, width, "heal"),
            What::Harness(HarnessEvent::FinalRecovery) => phase(svg, y, width, "final recovery"),
            What::Node(_) if traced.is_some_and(|p| mentions(e, p)) => {
                let _ = write!(
                    svg,
                    r#"<circle class="trace-event" cx="{lx}" cy="{y}" r="5"><title>{}</title></circle>"#,
                    esc(&excerpt::line(e))
                );
            }
            _ => {}
        }
    }
}

/// Whether a node's event names the payment. Events name payments in different fields (a
/// payment, a batch's records, a fetch's pairs), so the event's JSON is searched for the id as a
/// whole string.
fn mentions(e: &Entry, payment: &str) -> bool {
    let json = serde_json::to_string(&e.what).unwrap_or_default();
    json.contains(&format!("\"{payment}\""))
}

/// A phase of the run (heal, final recovery): a dashed line across every lane.
fn phase(svg: &mut String, y: f64, width: f64, label: &str) {
    let _ = write!(
        svg,
        r#"<line class="phase" x1="0" y1="{y}" x2="{width}" y2="{y}"/><text class="phase-label" x="8" y="{}">{label}</text>"#,
        y - 3.0
    );
}

/// The first anomaly: a line across the page when its evidence was recorded, `#first-anomaly`
/// for the header's link to jump to.
pub(super) fn draw_first_anomaly(svg: &mut String, axis: &TimeAxis, anomaly: &Anomaly, width: f64) {
    let y = axis.at(anomaly.at_ms * 1000);
    let _ = write!(
        svg,
        r#"<g class="anomaly" id="first-anomaly"><line x1="0" y1="{y}" x2="{width}" y2="{y}"/><text x="{tx}" y="{ty}">first anomaly: {}</text></g>"#,
        esc(&anomaly.to_string()),
        tx = LEFT,
        ty = y - 4.0
    );
}
