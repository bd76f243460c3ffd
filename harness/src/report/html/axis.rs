//! The time axis: simulated time flowing down the page, with every quiet stretch collapsed to
//! a fixed height so that a run's busy moments stay readable however long it idles between.

use crate::world::{RunOutcome, RunPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Where the first drawn time sits, below the lane labels.
pub(super) const TOP: f64 = 40.0;
/// Pixels per simulated millisecond in a busy stretch.
const PX_PER_MS: f64 = 2.0;
/// A stretch with no event longer than this is collapsed to this length.
const QUIET_MS: u64 = 30;

/// Maps simulated time to a vertical position.
pub(super) struct TimeAxis {
    // invariant: keys are every time (ms) anything is drawn at, values increase with keys
    y: BTreeMap<u64, f64>,
    quiet: Vec<Quiet>,
}

/// A collapsed stretch: simulated milliseconds `from..to`, drawn between `y0` and `y1`.
struct Quiet {
    from: u64,
    to: u64,
    y0: f64,
    y1: f64,
}

impl TimeAxis {
    /// The axis over every time the page draws something at: events, sends and arrivals, fault
    /// windows' starts and ends, the first anomaly.
    pub(super) fn of_run(plan: &RunPlan, outcome: &RunOutcome) -> TimeAxis {
        let mut times = BTreeSet::new();
        times.extend(outcome.history.iter().map(|e| e.at_us / 1000));
        for m in &outcome.messages {
            times.insert(m.sent_us / 1000);
            times.extend(m.arrived_us.iter().map(|a| a / 1000));
        }
        for f in &plan.schedule {
            times.insert(f.at_ms);
            times.insert(f.at_ms + f.duration_ms);
        }
        times.extend(outcome.anomalies.first().map(|a| a.at_ms));
        TimeAxis::new(times)
    }

    fn new(times: BTreeSet<u64>) -> TimeAxis {
        let mut y = BTreeMap::new();
        let mut quiet = Vec::new();
        let mut prev: Option<(u64, f64)> = None;
        for t in times {
            let pos = match prev {
                None => TOP,
                Some((pt, py)) if t - pt > QUIET_MS => {
                    let pos = py + QUIET_MS as f64 * PX_PER_MS;
                    quiet.push(Quiet {
                        from: pt,
                        to: t,
                        y0: py,
                        y1: pos,
                    });
                    pos
                }
                Some((pt, py)) => py + (t - pt) as f64 * PX_PER_MS,
            };
            y.insert(t, pos);
            prev = Some((t, pos));
        }
        TimeAxis { y, quiet }
    }

    /// The position of a time in microseconds; within a millisecond everything shares a row.
    pub(super) fn at(&self, us: u64) -> f64 {
        let ms = us / 1000;
        self.y.range(..=ms).next_back().map_or(TOP, |(_, y)| *y)
    }

    /// The page's height: a margin below the last drawn time.
    pub(super) fn bottom(&self) -> f64 {
        self.y.values().last().copied().unwrap_or(TOP) + 40.0
    }

    /// A grey band across the page for each collapsed stretch, saying how long it was.
    pub(super) fn draw_quiet(&self, svg: &mut String, width: f64) {
        for Quiet { from, to, y0, y1 } in &self.quiet {
            let _ = write!(
                svg,
                r#"<rect class="quiet" x="0" y="{y0}" width="{width}" height="{h}"/><text class="quiet-label" x="8" y="{ty}">… {d} ms quiet …</text>"#,
                h = y1 - y0,
                ty = (y0 + y1) / 2.0 + 4.0,
                d = to - from
            );
        }
    }

    /// A tick every 100 ms. Collapsing leaves no row at most multiples, so a tick goes at the
    /// first drawn time past each multiple and shows that time.
    pub(super) fn draw_ticks(&self, svg: &mut String) {
        let mut next_tick = 0;
        for (ms, y) in &self.y {
            if *ms >= next_tick {
                let _ = write!(
                    svg,
                    r#"<text class="tick" x="8" y="{}">{ms} ms</text>"#,
                    y + 4.0
                );
                next_tick = (ms / 100 + 1) * 100;
            }
        }
    }
}
