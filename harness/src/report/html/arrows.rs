//! Messages as arrows from the sender's lane at the send time to the receiver's lane at the
//! arrival, coloured by their class: a lost one cut with ✕ half-way, a duplicated one drawn
//! twice with the second copy marked ×2, the traced payment's ones thick and orange.

use super::axis::TimeAxis;
use super::esc;
use super::lanes::Lanes;
use crate::sim::messages::{MessageClass, MessageRecord};
use std::fmt::Write;

/// Every message's arrow. `traced` is the payment whose messages are highlighted.
pub(super) fn draw(
    svg: &mut String,
    lanes: &Lanes,
    axis: &TimeAxis,
    messages: &[MessageRecord],
    traced: Option<&str>,
) {
    for m in messages {
        let (x1, y1, x2) = (lanes.x(m.from), axis.at(m.sent_us), lanes.x(m.to));
        let carries = traced.is_some_and(|p| m.payments.iter().any(|q| q == p));
        let class = format!(
            "msg {}{}",
            css_class(m.class),
            if carries { " trace" } else { "" }
        );
        // Spaces around every id let the filter script match whole ids only.
        let data = format!(
            r#"data-p="{}" data-from="{}" data-to="{}""#,
            esc(&format!(" {} ", m.payments.join(" "))),
            esc(&m.from.to_string()),
            esc(&m.to.to_string())
        );
        let title = esc(&format!(
            "{} → {}: {} (sent {:.3} ms)",
            m.from,
            m.to,
            m.label,
            m.sent_us as f64 / 1000.0
        ));
        if m.arrived_us.is_empty() {
            let (mx, my) = ((x1 + x2) / 2.0, y1 + 6.0);
            let why = esc(m.dropped.as_deref().unwrap_or("receiver down"));
            let _ = write!(
                svg,
                r#"<g class="{class} lost" {data}><line x1="{x1}" y1="{y1}" x2="{mx}" y2="{my}"/><text class="cut" x="{mx}" y="{ty}">✕</text><title>{title} — lost ({why})</title></g>"#,
                ty = my + 4.0,
            );
            continue;
        }
        for (i, arrived) in m.arrived_us.iter().enumerate() {
            let y2 = axis.at(*arrived);
            let (dup, note) = if i > 0 {
                (" dup", " — duplicate copy")
            } else {
                ("", "")
            };
            let _ = write!(
                svg,
                r#"<g class="{class}{dup}" {data}><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" marker-end="url(#arrow)"/><title>{title}{note}</title></g>"#,
            );
            if i > 0 {
                let _ = write!(
                    svg,
                    r#"<text class="dup-label" x="{}" y="{y2}">×2</text>"#,
                    x2 + 4.0
                );
            }
        }
    }
}

/// The arrow's colour class (see `style.css`). A request and its answer share a colour family
/// (fetch and fetched, apply and applied); the answers without a colour of their own are grey.
fn css_class(class: MessageClass) -> &'static str {
    match class {
        MessageClass::InitProducerId => "k-init",
        MessageClass::Produce => "k-produce",
        MessageClass::Fetch => "k-fetch",
        MessageClass::OffsetCommit => "k-commit",
        MessageClass::Apply => "k-apply",
        MessageClass::OffsetFetch
        | MessageClass::MalformedRequest
        | MessageClass::ListRows
        | MessageClass::Heartbeat
        | MessageClass::Resign
        | MessageClass::Metadata
        | MessageClass::AlterIsr
        | MessageClass::ReplicaFetch
        | MessageClass::LastSeq
        | MessageClass::OtherRequest => "k-other",
        MessageClass::Produced => "k-ack",
        MessageClass::Fetched => "k-fetched",
        MessageClass::Applied => "k-applied",
        MessageClass::ProducerIdIssued
        | MessageClass::OffsetCommitted
        | MessageClass::OffsetFetched
        | MessageClass::Error
        | MessageClass::MalformedReply
        | MessageClass::Rows
        | MessageClass::Leadership
        | MessageClass::Replicated
        | MessageClass::Diverging
        | MessageClass::LastSeqAnswered
        | MessageClass::OtherReply => "k-reply",
    }
}
