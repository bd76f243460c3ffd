//! The page around the diagram: the header (run, verdict, replay command, counters, anomalies,
//! the filter controls and a legend) and the embedded style and script, so that the page opens
//! from a file with no network.

use super::esc;
use crate::world::{RunOutcome, RunPlan};
use broker_under_test::NodeName;
use std::fmt::Write;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");
/// More anomalies than this are counted, not listed: the list scrolls, but a broken run can
/// have thousands.
const LISTED_ANOMALIES: usize = 30;
/// The arrow colours of `style.css`, for a reader without it in their head.
const LEGEND: &str = r#"<div>arrows: <span style="color:#1f77b4">produce</span>, <span style="color:#2ca02c">ack</span>, <span style="color:#9467bd">fetch</span>, <span style="color:#8c564b">commit</span>, <span style="color:#e377c2">apply</span>, <span style="color:#17becf">init</span>; <span style="color:#d62728">✕ lost</span>, ×2 duplicated; shaded: <span style="color:#d62728">partition</span>, <span style="color:#1f77b4">pause</span>, <span style="color:#ff7f0e">I/O errors</span>, <span style="color:#9467bd">isolate</span>, <span style="color:#bcbd22">lag</span>; <span style="color:#2ca02c">green band</span> beside a broker: it leads partition pN at epoch eN; <span style="color:#6a3d9a">★</span> an election; grey: quiet stretch collapsed.</div>"#;

/// The whole page, `svg` being the drawn diagram and `traced` the payment it highlights.
pub(super) fn page(
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
    nodes: &[NodeName],
    svg: &str,
    traced: Option<&str>,
) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{scenario} seed {seed}: {verdict}</title>
<style>
{STYLE}</style></head>
<body data-ready="no">
{header}
<main>{svg}</main>
<script>
{SCRIPT}</script>
</body></html>
"#,
        scenario = esc(&plan.scenario.name),
        seed = plan.seed,
        verdict = if outcome.passed() { "pass" } else { "fail" },
        header = header(plan, outcome, replay, nodes, traced),
    )
}

fn header(
    plan: &RunPlan,
    outcome: &RunOutcome,
    replay: &str,
    nodes: &[NodeName],
    traced: Option<&str>,
) -> String {
    let bugs = if outcome.bugs.is_empty() {
        "none".to_string()
    } else {
        let names: Vec<&str> = outcome.bugs.iter().map(|b| b.name()).collect();
        names.join(", ")
    };
    let (verdict, verdict_upper) = if outcome.passed() {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let traced_note = traced.map_or(String::new(), |p| {
        format!(" (the first one's payment {} is traced in orange)", esc(p))
    });
    let jump = if outcome.anomalies.is_empty() {
        ""
    } else {
        r##" · <a href="#first-anomaly">jump to the first anomaly</a>"##
    };
    format!(
        r#"<header>
<h1>{scenario} · seed {seed} · bugs: {bugs} · <span class="verdict-{verdict}">{verdict_upper}</span></h1>
<div>replay: <code>{replay}</code> · trace_hash <code>{hash}</code></div>
<div>{stats}</div>
<div>{count} anomalies{traced_note}{jump}:</div><ol>{anomalies}</ol>
<div class="controls">filter by payment <input id="payment" placeholder="p-0-7" size="10">
<button id="clear">clear</button> · nodes: {node_boxes}</div>
{LEGEND}
</header>"#,
        scenario = esc(&plan.scenario.name),
        seed = plan.seed,
        bugs = esc(&bugs),
        replay = esc(replay),
        hash = outcome.trace_hash,
        stats = esc(&stats(outcome)),
        count = outcome.anomalies.len(),
        anomalies = anomaly_list(outcome),
        node_boxes = node_boxes(nodes),
    )
}

/// The run's counters in one line.
fn stats(outcome: &RunOutcome) -> String {
    let s = &outcome.stats;
    format!(
        "{} payments · {} log records · {} store rows · {} produce requests ({} retries, {} dedup hits) · {} messages ({} dropped) · crashes: {} broker, {} producer, {} consumer, {} store · {} unsynced bytes lost · {} ms simulated",
        s.payments, s.log_records, s.store_rows, s.produce_requests, s.retries, s.dedup_hits, s.messages, s.messages_dropped,
        s.broker_crashes, s.producer_restarts, s.consumer_restarts, s.store_restarts, s.unsynced_writes_lost, outcome.sim_ms
    )
}

/// The anomalies as list items, the first one emphasised.
fn anomaly_list(outcome: &RunOutcome) -> String {
    let mut items = String::new();
    for (i, a) in outcome.anomalies.iter().take(LISTED_ANOMALIES).enumerate() {
        let _ = write!(
            items,
            r#"<li class="{}">{}</li>"#,
            if i == 0 { "first" } else { "" },
            esc(&a.to_string())
        );
    }
    let more = outcome.anomalies.len().saturating_sub(LISTED_ANOMALIES);
    if more > 0 {
        let _ = write!(items, "<li>… and {more} more</li>");
    }
    items
}

/// A checkbox per node; `script.js` hides the arrows from or to an unchecked node.
fn node_boxes(nodes: &[NodeName]) -> String {
    nodes
        .iter()
        .map(|n| {
            format!(
                r#"<label><input type="checkbox" class="node-filter" value="{n}" checked> {n}</label>"#,
                n = esc(&n.to_string())
            )
        })
        .collect()
}
