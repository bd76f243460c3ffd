//! The HTML timeline of a run: one self-contained page (no network, no external scripts or
//! fonts) with an SVG sequence diagram: a lane per node, time flowing down, an arrow per
//! message, crashes, restarts, pauses, partitions and lost writes on the lanes, the first
//! anomaly highlighted and its payment traced across lanes. Quiet stretches are collapsed; a
//! little embedded script filters by payment id or node.
//!
//! The diagram is painted back to front, later layers over earlier ones: quiet stretches
//! (`axis`), fault bands and lanes (`lanes`), time ticks, arrows (`arrows`), leadership in a
//! replicated run (`leaders`), events on the lanes and the first anomaly (`events`). `page` puts the header, `style.css` and `script.js`
//! around it.

mod arrows;
mod axis;
mod events;
mod lanes;
mod leaders;
mod page;

use crate::world::{RunOutcome, RunPlan};
use axis::TimeAxis;
use lanes::Lanes;
use std::fmt::Write;

/// The arrow head every delivered message's line ends with.
const DEFS: &str = r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>"#;

/// Renders the page. `replay` is the command a reader runs to reproduce the run.
pub fn render(plan: &RunPlan, outcome: &RunOutcome, replay: &str) -> String {
    let lanes = Lanes::new(&plan.scenario);
    let axis = TimeAxis::of_run(plan, outcome);
    let first = outcome.anomalies.first();
    let traced = first.and_then(|a| a.payment.as_deref());
    let (width, height) = (lanes.width(), axis.bottom());

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">"#
    );
    axis.draw_quiet(&mut svg, width);
    lanes.draw_fault_bands(&mut svg, &axis, &plan.schedule);
    lanes.draw(&mut svg, height);
    axis.draw_ticks(&mut svg);
    arrows::draw(&mut svg, &lanes, &axis, &outcome.messages, traced);
    leaders::draw(&mut svg, &lanes, &axis, &outcome.history);
    events::draw(&mut svg, &lanes, &axis, &outcome.history, traced, width);
    if let Some(anomaly) = first {
        events::draw_first_anomaly(&mut svg, &axis, anomaly, width);
    }
    svg.push_str(DEFS);
    svg.push_str("</svg>");

    page::page(plan, outcome, replay, lanes.nodes(), &svg, traced)
}

/// Escapes text for HTML content and quoted attribute values: node names, labels and anomaly
/// details come from the run, not from this code.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
