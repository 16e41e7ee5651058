//! The packet index of a snapshot (`packets` table): where each frame
//! of the inputs lies and the flow it was given to, one tick at a time.
//! The pipeline fills it; the Parquet sink writes it.

use std::sync::Arc;

/// Where one frame lies, for the packet index (`packets` table).
#[derive(Debug, Clone, Copy)]
pub struct FrameRef {
    pub ts: i64,
    pub file_index: u32,
    pub frame_number: u64,
    pub offset: u64,
    pub caplen: u32,
    pub wire_len: u32,
    pub link: u32,
    /// For an IP fragment: its datagram (the ordinal of its first fragment).
    pub datagram: Option<u64>,
}

/// The frames of one tick, numbered from `first_ordinal`, and the flow
/// each was given to.
#[derive(Debug, Default)]
pub struct PacketIndex {
    pub first_ordinal: u64,
    /// Shared with the tick the reader built: not copied.
    pub frames: Arc<Vec<FrameRef>>,
    pub flow_ids: Vec<Option<u64>>,
    /// TCP expert flags of each frame (0: none).
    pub tcp_expert: Vec<u16>,
}
