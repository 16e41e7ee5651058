//! Capture-time text (shared with the query layer through `trawl-schemas`).

pub use trawl_schemas::time::{parse_rfc3339, rfc3339};
