//! Leadership in a replicated run: a band beside a replica's lane for as long as it leads a
//! partition (from its `became-leader` to its `became-follower` for that partition, its crash,
//! or the end of the run), labelled with the partition and the leader epoch, and a mark on the
//! controller's lane for each election. A run of one broker has none of these events and draws
//! nothing here.

use super::axis::TimeAxis;
use super::esc;
use super::lanes::Lanes;
use crate::history::{Entry, HarnessEvent, What};
use broker_under_test::{Event, NodeName};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Where a replica's band for a partition sits: right of its lane, one column per partition.
const BAND_WIDTH: f64 = 7.0;

/// One stretch of leadership: who, which partition, which epoch, from when (µs).
struct Reign {
    node: NodeName,
    partition: u32,
    epoch: u32,
    from_us: u64,
}

/// Draws every reign and every election of the history.
pub(super) fn draw(svg: &mut String, lanes: &Lanes, axis: &TimeAxis, history: &[Entry]) {
    let end_us = history.last().map_or(0, |e| e.at_us);
    let mut open: BTreeMap<(NodeName, u32), Reign> = BTreeMap::new();
    for e in history {
        let Some(node) = e.node.node() else { continue };
        match &e.what {
            What::Node(Event::BecameLeader {
                partition,
                leader_epoch,
                ..
            }) => {
                let reign = Reign {
                    node,
                    partition: *partition,
                    epoch: *leader_epoch,
                    from_us: e.at_us,
                };
                if let Some(old) = open.insert((node, *partition), reign) {
                    band(svg, lanes, axis, &old, e.at_us);
                }
            }
            What::Node(Event::BecameFollower { partition, .. }) => {
                if let Some(old) = open.remove(&(node, *partition)) {
                    band(svg, lanes, axis, &old, e.at_us);
                }
            }
            What::Harness(HarnessEvent::NodeCrashed { .. }) => {
                let ended: Vec<(NodeName, u32)> = open
                    .range((node, 0)..=(node, u32::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for key in ended {
                    if let Some(old) = open.remove(&key) {
                        band(svg, lanes, axis, &old, e.at_us);
                    }
                }
            }
            What::Node(Event::LeaderElected {
                partition,
                leader,
                leader_epoch,
                clean,
                ..
            }) => election(
                svg,
                lanes,
                axis,
                e,
                *partition,
                *leader,
                *leader_epoch,
                *clean,
            ),
            _ => {}
        }
    }
    for reign in open.into_values() {
        band(svg, lanes, axis, &reign, end_us);
    }
}

/// A reign as a band right of the replica's lane, its partition and epoch at the top.
fn band(svg: &mut String, lanes: &Lanes, axis: &TimeAxis, reign: &Reign, to_us: u64) {
    let x = lanes.x(reign.node) + 4.0 + f64::from(reign.partition % 8) * BAND_WIDTH;
    let (y0, y1) = (axis.at(reign.from_us), axis.at(to_us));
    let h = (y1 - y0).max(2.0);
    let (n, p, ep) = (esc(&reign.node.to_string()), reign.partition, reign.epoch);
    let _ = write!(
        svg,
        r#"<g class="leader" data-node="{n}"><rect x="{x}" y="{y0}" width="{w}" height="{h}"/><text x="{x}" y="{ty}">p{p} e{ep}</text><title>{n} leads partition {p} at epoch {ep} from {t0:.3} ms to {t1:.3} ms</title></g>"#,
        w = BAND_WIDTH - 1.0,
        ty = y0 + 10.0,
        t0 = reign.from_us as f64 / 1000.0,
        t1 = to_us as f64 / 1000.0,
    );
}

/// An election as a mark on the controller's lane.
#[allow(clippy::too_many_arguments)]
fn election(
    svg: &mut String,
    lanes: &Lanes,
    axis: &TimeAxis,
    e: &Entry,
    partition: u32,
    leader: Option<u32>,
    epoch: u32,
    clean: bool,
) {
    let who = leader.map_or("no leader".to_string(), |i| format!("broker-{i}"));
    let unclean = if clean { "" } else { " (unclean)" };
    let _ = write!(
        svg,
        r#"<g class="election" data-node="{n}"><text x="{x}" y="{y}">★ p{partition} → {who} e{epoch}{unclean}</text><title>{n} elected {who} for partition {partition} at epoch {epoch}{unclean} at {t:.3} ms</title></g>"#,
        n = esc(&e.node.to_string()),
        x = lanes.x(e.node) - 8.0,
        // Elections at one instant (a dead broker led several partitions) stack, not overlap.
        y = axis.at(e.at_us) + 4.0 + f64::from(partition % 8) * 11.0,
        t = e.at_us as f64 / 1000.0,
    );
}
