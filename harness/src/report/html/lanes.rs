//! The lanes: a vertical line per node, in the order the scenario deploys them (broker, or the
//! replicas and the controller; store, consumer, then the producers), and the fault bands drawn
//! on them: a partition between two lanes; a pause, an isolation or a lag on one.

use super::axis::{TimeAxis, TOP};
use super::esc;
use crate::history::Actor;
use crate::scenario::Scenario;
use crate::schedule::{Fault, FaultEntry};
use crate::system::node_names;
use broker_under_test::NodeName;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The first lane's x: room on the left for the time ticks and quiet labels.
pub(super) const LEFT: f64 = 150.0;
const LANE_GAP: f64 = 170.0;

pub(super) struct Lanes {
    nodes: Vec<NodeName>,
    x: BTreeMap<NodeName, f64>,
}

impl Lanes {
    pub(super) fn new(scenario: &Scenario) -> Lanes {
        let nodes = node_names(scenario);
        let x = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, LEFT + i as f64 * LANE_GAP))
            .collect();
        Lanes { nodes, x }
    }

    pub(super) fn nodes(&self) -> &[NodeName] {
        &self.nodes
    }

    pub(super) fn width(&self) -> f64 {
        LEFT + self.nodes.len() as f64 * LANE_GAP
    }

    /// A node's x. What has no lane (the harness itself, every node at once) is drawn in the
    /// margin left of the first lane rather than dropped.
    pub(super) fn x(&self, actor: impl Into<Actor>) -> f64 {
        let lane = actor.into().node().and_then(|n| self.x.get(&n));
        lane.copied().unwrap_or(LEFT - 60.0)
    }

    /// Each lane from the top to `height`, its node's name above it.
    pub(super) fn draw(&self, svg: &mut String, height: f64) {
        for node in &self.nodes {
            let lx = self.x(*node);
            let _ = write!(
                svg,
                r#"<line class="lane" data-node="{n}" x1="{lx}" y1="{TOP}" x2="{lx}" y2="{height}"/><text class="lane-label" x="{lx}" y="20">{n}</text>"#,
                n = esc(&node.to_string())
            );
        }
    }

    /// Partitions as a band between the two lanes; pauses, isolations, lags and I/O error
    /// windows as bands on the lane, for as long as the fault lasts. Other faults show as their effects (lost arrows, crashes).
    pub(super) fn draw_fault_bands(
        &self,
        svg: &mut String,
        axis: &TimeAxis,
        schedule: &[FaultEntry],
    ) {
        for f in schedule {
            let (y0, y1) = (
                axis.at(f.at_ms * 1000),
                axis.at((f.at_ms + f.duration_ms) * 1000),
            );
            // A fault shorter than a row still gets a visible sliver.
            let h = (y1 - y0).max(2.0);
            match &f.fault {
                Fault::Partition { peer, two_way } => {
                    let (a, b) = (self.x(f.target), self.x(*peer));
                    let _ = write!(
                        svg,
                        r#"<rect class="partition" x="{}" y="{y0}" width="{}" height="{h}"><title>partition {} {} {} for {} ms</title></rect>"#,
                        a.min(b),
                        (a - b).abs().max(4.0),
                        esc(&f.target.to_string()),
                        if *two_way { "&lt;-&gt;" } else { "-&gt;" },
                        esc(&peer.to_string()),
                        f.duration_ms
                    );
                }
                Fault::Pause => {
                    let _ = write!(
                        svg,
                        r#"<rect class="pause" x="{}" y="{y0}" width="24" height="{h}"><title>{} paused for {} ms</title></rect>"#,
                        self.x(f.target) - 12.0,
                        esc(&f.target.to_string()),
                        f.duration_ms
                    );
                }
                Fault::Isolate => {
                    let _ = write!(
                        svg,
                        r#"<rect class="isolate" x="{}" y="{y0}" width="30" height="{h}"><title>{} isolated from the other brokers and the controller for {} ms</title></rect>"#,
                        self.x(f.target) - 15.0,
                        esc(&f.target.to_string()),
                        f.duration_ms
                    );
                }
                Fault::Lag { delay_ms } => {
                    let _ = write!(
                        svg,
                        r#"<rect class="lag" x="{}" y="{y0}" width="18" height="{h}"><title>{}'s links to the other brokers {delay_ms} ms slower for {} ms</title></rect>"#,
                        self.x(f.target) - 9.0,
                        esc(&f.target.to_string()),
                        f.duration_ms
                    );
                }
                Fault::IoErrors { rate, ops } => {
                    let ops: Vec<&str> = ops.iter().map(|op| op.name()).collect();
                    let _ = write!(
                        svg,
                        r#"<rect class="io-errors" x="{}" y="{y0}" width="12" height="{h}"><title>{} I/O errors ({}) at rate {rate:.3} for {} ms</title></rect>"#,
                        self.x(f.target) - 6.0,
                        esc(&f.target.to_string()),
                        ops.join(", "),
                        f.duration_ms
                    );
                }
                _ => {}
            }
        }
    }
}
