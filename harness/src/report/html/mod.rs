//! The HTML timeline of a run: one self-contained page (no network, no external scripts or
//! fonts) with an SVG sequence diagram: a lane per node, time flowing down, an arrow per
//! message, crashes, restarts, pauses, partitions and lost writes on the lanes, the first
//! anomaly highlighted and its payment traced across lanes. Quiet stretches are collapsed; a
//! little inline script filters by payment id or node.

use crate::history::{HarnessEvent, What};
use crate::schedule::Fault;
use crate::sim::messages::{MessageClass, MessageRecord};
use crate::world::{RunOutcome, RunPlan};
use broker_under_test::cluster::{producer_name, BROKER, CONSUMER, STORE};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Pixels per simulated millisecond in a busy stretch.
const PX_PER_MS: f64 = 2.0;
/// A stretch with no event longer than this is collapsed to this length.
const QUIET_MS: u64 = 30;
const LANE_GAP: f64 = 170.0;
const LEFT: f64 = 150.0;
const TOP: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Maps simulated time to a vertical position, collapsing quiet stretches.
struct TimeAxis {
    // invariant: keys are every time (ms) anything is drawn at, values increase with keys
    y: BTreeMap<u64, f64>,
    quiet: Vec<(u64, u64, f64, f64)>,
}

impl TimeAxis {
    fn new(times: BTreeSet<u64>) -> TimeAxis {
        let mut y = BTreeMap::new();
        let mut quiet = Vec::new();
        let mut prev: Option<(u64, f64)> = None;
        for t in times {
            let pos = match prev {
                None => TOP,
                Some((pt, py)) if t - pt > QUIET_MS => {
                    let pos = py + QUIET_MS as f64 * PX_PER_MS;
                    quiet.push((pt, t, py, pos));
                    pos
                }
                Some((pt, py)) => py + (t - pt) as f64 * PX_PER_MS,
            };
            y.insert(t, pos);
            prev = Some((t, pos));
        }
        TimeAxis { y, quiet }
    }

    fn at(&self, us: u64) -> f64 {
        let ms = us / 1000;
        self.y.range(..=ms).next_back().map_or(TOP, |(_, y)| *y)
    }

    fn bottom(&self) -> f64 {
        self.y.values().last().copied().unwrap_or(TOP) + 40.0
    }
}

/// The arrow's colour class. A request and its answer share a colour family (fetch and
/// fetched, apply and applied); the answers without a colour of their own are grey.
fn message_class(record: &MessageRecord) -> &'static str {
    match record.class {
        MessageClass::InitProducerId => "k-init",
        MessageClass::Produce => "k-produce",
        MessageClass::Fetch => "k-fetch",
        MessageClass::OffsetCommit => "k-commit",
        MessageClass::Apply => "k-apply",
        MessageClass::OffsetFetch | MessageClass::MalformedRequest => "k-other",
        MessageClass::Produced => "k-ack",
        MessageClass::Fetched => "k-fetched",
        MessageClass::Applied => "k-applied",
        MessageClass::ProducerIdIssued
        | MessageClass::OffsetCommitted
        | MessageClass::OffsetFetched
        | MessageClass::Error
        | MessageClass::MalformedReply => "k-reply",
    }
}

/// Renders the page. `replay` is the command a reader runs to reproduce the run.
pub fn render(plan: &RunPlan, outcome: &RunOutcome, replay: &str) -> String {
    let mut nodes = vec![BROKER.to_string(), STORE.to_string(), CONSUMER.to_string()];
    nodes.extend((0..plan.scenario.workload.producers).map(producer_name));
    let lane: BTreeMap<&str, f64> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), LEFT + i as f64 * LANE_GAP))
        .collect();
    let x = |node: &str| lane.get(node).copied().unwrap_or(LEFT - 60.0);
    let first = outcome.anomalies.first();
    let traced = first.and_then(|a| a.payment.clone());

    // Every time something is drawn at.
    let mut times = BTreeSet::new();
    for e in &outcome.history {
        times.insert(e.at_us / 1000);
    }
    for m in &outcome.messages {
        times.insert(m.sent_us / 1000);
        times.extend(m.arrived_us.iter().map(|a| a / 1000));
    }
    for f in &plan.schedule {
        times.insert(f.at_ms);
        times.insert(f.at_ms + f.duration_ms);
    }
    if let Some(a) = first {
        times.insert(a.at_ms);
    }
    let axis = TimeAxis::new(times);
    let width = LEFT + nodes.len() as f64 * LANE_GAP;
    let height = axis.bottom();

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">"#
    );
    // Collapsed quiet stretches.
    for (from, to, y0, y1) in &axis.quiet {
        let _ = write!(
            svg,
            r#"<rect class="quiet" x="0" y="{y0}" width="{width}" height="{h}"/><text class="quiet-label" x="8" y="{ty}">… {d} ms quiet …</text>"#,
            h = y1 - y0,
            ty = (y0 + y1) / 2.0 + 4.0,
            d = to - from
        );
    }
    // Partitions: a band between the two lanes; pauses: a band on the lane.
    for f in &plan.schedule {
        let (y0, y1) = (
            axis.at(f.at_ms * 1000),
            axis.at((f.at_ms + f.duration_ms) * 1000),
        );
        match &f.fault {
            Fault::Partition { peer, two_way } => {
                let (a, b) = (x(&f.target), x(peer));
                let _ = write!(
                    svg,
                    r#"<rect class="partition" x="{}" y="{y0}" width="{}" height="{}"><title>partition {} {} {} for {} ms</title></rect>"#,
                    a.min(b),
                    (a - b).abs().max(4.0),
                    (y1 - y0).max(2.0),
                    esc(&f.target),
                    if *two_way { "&lt;-&gt;" } else { "-&gt;" },
                    esc(peer),
                    f.duration_ms
                );
            }
            Fault::Pause => {
                let _ = write!(
                    svg,
                    r#"<rect class="pause" x="{}" y="{y0}" width="24" height="{}"><title>{} paused for {} ms</title></rect>"#,
                    x(&f.target) - 12.0,
                    (y1 - y0).max(2.0),
                    esc(&f.target),
                    f.duration_ms
                );
            }
            _ => {}
        }
    }
    // Lanes.
    for node in &nodes {
        let lx = x(node);
        let _ = write!(
            svg,
            r#"<line class="lane" data-node="{n}" x1="{lx}" y1="{TOP}" x2="{lx}" y2="{height}"/><text class="lane-label" x="{lx}" y="20">{n}</text>"#,
            n = esc(node)
        );
    }
    // Time ticks every 100 ms (at the first drawn time past each multiple).
    let mut next_tick = 0;
    for (ms, y) in &axis.y {
        if *ms >= next_tick {
            let _ = write!(
                svg,
                r#"<text class="tick" x="8" y="{}">{ms} ms</text>"#,
                y + 4.0
            );
            next_tick = (ms / 100 + 1) * 100;
        }
    }
    // Messages.
    for m in &outcome.messages {
        let (x1, y1, x2) = (x(&m.from), axis.at(m.sent_us), x(&m.to));
        let carries = traced.as_ref().is_some_and(|p| m.payments.contains(p));
        let class = format!(
            "msg {}{}",
            message_class(m),
            if carries { " trace" } else { "" }
        );
        let payments = format!(" {} ", m.payments.join(" "));
        let title = format!(
            "{} → {}: {} (sent {:.3} ms)",
            m.from,
            m.to,
            m.label,
            m.sent_us as f64 / 1000.0
        );
        if m.arrived_us.is_empty() {
            let (mx, my) = ((x1 + x2) / 2.0, y1 + 6.0);
            let why = m.dropped.as_deref().unwrap_or("receiver down");
            let _ = write!(
                svg,
                r#"<g class="{class} lost" data-p="{p}" data-from="{f}" data-to="{t}"><line x1="{x1}" y1="{y1}" x2="{mx}" y2="{my}"/><text class="cut" x="{mx}" y="{ty}">✕</text><title>{title} — lost ({why})</title></g>"#,
                p = esc(&payments),
                f = esc(&m.from),
                t = esc(&m.to),
                ty = my + 4.0,
                title = esc(&title),
                why = esc(why)
            );
            continue;
        }
        for (i, arrived) in m.arrived_us.iter().enumerate() {
            let y2 = axis.at(*arrived);
            let dup = if i > 0 { " dup" } else { "" };
            let _ = write!(
                svg,
                r#"<g class="{class}{dup}" data-p="{p}" data-from="{f}" data-to="{t}"><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" marker-end="url(#arrow)"/><title>{title}{note}</title></g>"#,
                p = esc(&payments),
                f = esc(&m.from),
                t = esc(&m.to),
                title = esc(&title),
                note = if i > 0 { " — duplicate copy" } else { "" }
            );
            if i > 0 {
                let _ = write!(
                    svg,
                    r#"<text class="dup-label" x="{}" y="{}">×2</text>"#,
                    x2 + 4.0,
                    y2
                );
            }
        }
    }
    // Crashes, restarts, and the traced payment's events on the lanes.
    for e in &outcome.history {
        let (lx, y) = (x(&e.node), axis.at(e.at_us));
        match &e.what {
            What::Harness(HarnessEvent::NodeCrashed { report }) => {
                let lost = if report.bytes_lost > 0 {
                    format!(" lost {} B", report.bytes_lost)
                } else {
                    String::new()
                };
                let _ = write!(
                    svg,
                    r#"<g class="crash" data-node="{n}"><text x="{tx}" y="{ty}">✖ crash{lost}</text><title>{n} lost power at {t:.3} ms: {lost_b} unsynced bytes lost, {torn} kept torn</title></g>"#,
                    n = esc(&e.node),
                    tx = lx - 8.0,
                    ty = y + 4.0,
                    t = e.at_us as f64 / 1000.0,
                    lost_b = report.bytes_lost,
                    torn = report.bytes_torn
                );
            }
            What::Harness(HarnessEvent::NodeRestarted) => {
                let _ = write!(
                    svg,
                    r#"<text class="restart" x="{}" y="{}">▲ restart</text>"#,
                    lx - 8.0,
                    y + 4.0
                );
            }
            What::Harness(HarnessEvent::Healed) | What::Harness(HarnessEvent::FinalRecovery) => {
                let label = if matches!(e.what, What::Harness(HarnessEvent::Healed)) {
                    "heal"
                } else {
                    "final recovery"
                };
                let _ = write!(
                    svg,
                    r#"<line class="phase" x1="0" y1="{y}" x2="{width}" y2="{y}"/><text class="phase-label" x="8" y="{}">{label}</text>"#,
                    y - 3.0
                );
            }
            What::Node(_) => {
                let Some(p) = &traced else { continue };
                let json = serde_json::to_string(&e.what).unwrap_or_default();
                if json.contains(&format!("\"{p}\"")) {
                    let _ = write!(
                        svg,
                        r#"<circle class="trace-event" cx="{lx}" cy="{y}" r="5"><title>{}</title></circle>"#,
                        esc(&crate::report::excerpt::line(e))
                    );
                }
            }
            _ => {}
        }
    }
    if let Some(a) = first {
        let y = axis.at(a.at_ms * 1000);
        let _ = write!(
            svg,
            r#"<g class="anomaly" id="first-anomaly"><line x1="0" y1="{y}" x2="{width}" y2="{y}"/><text x="{tx}" y="{ty}">first anomaly: {}</text></g>"#,
            esc(&a.to_string()),
            tx = LEFT,
            ty = y - 4.0
        );
    }
    svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs></svg>"#);

    page(plan, outcome, replay, &nodes, &svg, traced.as_deref())
}

fn page(
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
    nodes: &[String],
    svg: &str,
    traced: Option<&str>,
) -> String {
    let s = &outcome.stats;
    let bugs = if outcome.bugs.is_empty() {
        "none".to_string()
    } else {
        outcome.bugs.join(", ")
    };
    let mut anomalies = String::new();
    for (i, a) in outcome.anomalies.iter().take(30).enumerate() {
        let _ = write!(
            anomalies,
            r#"<li class="{}">{}</li>"#,
            if i == 0 { "first" } else { "" },
            esc(&a.to_string())
        );
    }
    if outcome.anomalies.len() > 30 {
        let _ = write!(
            anomalies,
            "<li>… and {} more</li>",
            outcome.anomalies.len() - 30
        );
    }
    let stats = format!(
        "{} payments · {} log records · {} store rows · {} produce requests ({} retries, {} dedup hits) · {} messages ({} dropped) · crashes: {} broker, {} producer, {} consumer, {} store · {} unsynced bytes lost · {} ms simulated",
        s.payments, s.log_records, s.store_rows, s.produce_requests, s.retries, s.dedup_hits, s.messages, s.messages_dropped,
        s.broker_crashes, s.producer_restarts, s.consumer_restarts, s.store_restarts, s.unsynced_writes_lost, outcome.sim_ms
    );
    let node_boxes: String = nodes
        .iter()
        .map(|n| format!(r#"<label><input type="checkbox" class="node-filter" value="{n}" checked> {n}</label>"#, n = esc(n)))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{scenario} seed {seed}: {verdict}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 0; color: #222; }}
header {{ padding: 12px 16px; background: #f4f4f6; border-bottom: 1px solid #ccc; position: sticky; top: 0; z-index: 1; }}
h1 {{ font-size: 17px; margin: 0 0 6px; }}
.verdict-fail {{ color: #b00020; }} .verdict-pass {{ color: #1b7f3b; }}
code {{ background: #fff; padding: 1px 4px; border: 1px solid #ddd; }}
ol {{ margin: 4px 0; max-height: 120px; overflow: auto; }} li.first {{ font-weight: bold; color: #b00020; }}
.controls label {{ margin-right: 10px; }}
svg text {{ font: 11px system-ui, sans-serif; }}
.lane {{ stroke: #999; stroke-width: 1; }} .lane-label {{ font-weight: bold; text-anchor: middle; }}
.tick {{ fill: #777; }} .quiet {{ fill: #f2f2f2; }} .quiet-label {{ fill: #999; font-style: italic; }}
.msg line {{ stroke-width: 1.2; stroke: #7a7a7a; }}
.k-produce line {{ stroke: #1f77b4; }} .k-ack line {{ stroke: #2ca02c; }} .k-fetch line, .k-fetched line {{ stroke: #9467bd; }}
.k-commit line {{ stroke: #8c564b; }} .k-apply line, .k-applied line {{ stroke: #e377c2; }} .k-init line {{ stroke: #17becf; }}
.lost line {{ stroke-dasharray: 3 2; stroke: #d62728; }} .cut {{ fill: #d62728; font-weight: bold; }}
.dup line {{ stroke-dasharray: 6 3; }} .dup-label {{ fill: #ff7f0e; font-weight: bold; }}
.trace line {{ stroke: #ff7f0e !important; stroke-width: 3; }} .trace-event {{ fill: #ff7f0e; stroke: #000; }}
.crash text {{ fill: #d62728; font-weight: bold; }} .restart {{ fill: #1b7f3b; font-weight: bold; }}
.partition {{ fill: rgba(214, 39, 40, 0.12); }} .pause {{ fill: rgba(31, 119, 180, 0.18); }}
.phase {{ stroke: #555; stroke-dasharray: 8 4; }} .phase-label {{ fill: #555; }}
.anomaly line {{ stroke: #b00020; stroke-width: 2; }} .anomaly text {{ fill: #b00020; font-weight: bold; font-size: 13px; }}
.dim {{ opacity: 0.15; }} .hit line {{ stroke-width: 3; }} .hidden {{ display: none; }}
</style></head>
<body data-ready="no">
<header>
<h1>{scenario} · seed {seed} · bugs: {bugs} · <span class="verdict-{verdict}">{verdict_upper}</span></h1>
<div>replay: <code>{replay}</code> · trace_hash <code>{hash}</code></div>
<div>{stats}</div>
<div>{count} anomalies{traced_note}{jump}:</div><ol>{anomalies}</ol>
<div class="controls">filter by payment <input id="payment" placeholder="p-0-7" size="10">
<button id="clear">clear</button> · nodes: {node_boxes}</div>
<div>arrows: <span style="color:#1f77b4">produce</span>, <span style="color:#2ca02c">ack</span>, <span style="color:#9467bd">fetch</span>, <span style="color:#8c564b">commit</span>, <span style="color:#e377c2">apply</span>, <span style="color:#17becf">init</span>; <span style="color:#d62728">✕ lost</span>, ×2 duplicated; shaded: <span style="color:#d62728">partition</span>, <span style="color:#1f77b4">pause</span>; grey: quiet stretch collapsed.</div>
</header>
<main>{svg}</main>
<script>
(function () {{
  var input = document.getElementById('payment');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.node-filter'));
  var msgs = Array.prototype.slice.call(document.querySelectorAll('#timeline .msg'));
  function apply() {{
    var id = input.value.trim();
    var shown = {{}};
    boxes.forEach(function (b) {{ shown[b.value] = b.checked; }});
    msgs.forEach(function (m) {{
      var nodeOk = shown[m.getAttribute('data-from')] !== false && shown[m.getAttribute('data-to')] !== false;
      var carries = id !== '' && m.getAttribute('data-p').indexOf(' ' + id + ' ') >= 0;
      m.classList.toggle('hidden', !nodeOk);
      m.classList.toggle('hit', carries);
      m.classList.toggle('dim', id !== '' && !carries);
    }});
  }}
  input.addEventListener('input', apply);
  boxes.forEach(function (b) {{ b.addEventListener('change', apply); }});
  document.getElementById('clear').addEventListener('click', function () {{ input.value = ''; apply(); }});
  apply();
  document.body.setAttribute('data-ready', 'yes');
}})();
</script>
</body></html>
"#,
        scenario = esc(&plan.scenario.name),
        seed = plan.seed,
        bugs = esc(&bugs),
        verdict = if outcome.passed() { "pass" } else { "fail" },
        verdict_upper = if outcome.passed() { "PASS" } else { "FAIL" },
        replay = esc(replay),
        hash = outcome.trace_hash,
        stats = esc(&stats),
        count = outcome.anomalies.len(),
        traced_note = traced.map_or(String::new(), |p| format!(
            " (the first one's payment {} is traced in orange)",
            esc(p)
        )),
        jump = if outcome.anomalies.is_empty() {
            ""
        } else {
            r##" · <a href="#first-anomaly">jump to the first anomaly</a>"##
        },
    )
}
