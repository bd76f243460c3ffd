//! What people and scripts read: the excerpt of the history before an anomaly, the
//! self-contained HTML timeline, the text the command prints, its typed `--json` reports, and the
//! review format that snapshots store.

pub mod excerpt;
pub mod html;
pub mod json;
pub mod review;
pub mod text;
