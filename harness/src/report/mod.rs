//! What a person reads about a run: the excerpt of the history before an anomaly, and the
//! self-contained HTML timeline.

pub mod excerpt;
pub mod html;
