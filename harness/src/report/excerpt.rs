//! A readable timeline of the moments before an anomaly: the faults, and every event that
//! concerns the anomaly's payment, one line each.

use crate::check::Anomaly;
use crate::history::{Entry, HarnessEvent, What};

/// One history entry as a line: time, node, event name and its fields as `key=value`.
pub fn line(entry: &Entry) -> String {
    let value = serde_json::to_value(entry).unwrap_or_default();
    let mut fields = Vec::new();
    let mut name = String::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "at_us" | "node" => {}
                "event" => name = v.as_str().unwrap_or_default().to_string(),
                _ => fields.push(format!("{k}={}", compact(v))),
            }
        }
    }
    format!(
        "{:>10.3} ms  {:<11} {:<22} {}",
        entry.at_us as f64 / 1000.0,
        entry.node,
        name,
        fields.join(" ")
    )
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_fault(what: &What) -> bool {
    matches!(
        what,
        What::Harness(
            HarnessEvent::FaultStarted { .. }
                | HarnessEvent::NodeCrashed { .. }
                | HarnessEvent::NodeRestarted
                | HarnessEvent::NodePaused
                | HarnessEvent::NodeResumed
                | HarnessEvent::Healed
        )
    )
}

/// The last `max_lines` entries up to the anomaly's time that are faults or mention its payment.
pub fn before(history: &[Entry], anomaly: &Anomaly, max_lines: usize) -> Vec<String> {
    let until_us = (anomaly.at_ms + 1) * 1000;
    let payment = anomaly.payment.as_deref().map(|p| format!("\"{p}\""));
    let relevant: Vec<&Entry> = history
        .iter()
        .take_while(|e| e.at_us < until_us)
        .filter(|e| {
            is_fault(&e.what)
                || payment.as_ref().is_some_and(|p| {
                    serde_json::to_string(e).is_ok_and(|json| json.contains(p.as_str()))
                })
        })
        .collect();
    relevant[relevant.len().saturating_sub(max_lines)..]
        .iter()
        .map(|e| line(e))
        .collect()
}
