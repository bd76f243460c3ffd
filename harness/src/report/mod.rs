//! What people and scripts read: the excerpt of the history before an anomaly, the
//! self-contained HTML timeline, the text the command prints, and its typed `--json` reports.

pub mod excerpt;
pub mod html;
pub mod json;
pub mod text;
