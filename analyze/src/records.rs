//! Rows on their way to the table writers, and the order they are written in.
//!
//! Every row carries a [`SortKey`] that depends only on the capture, never
//! on how packets were sharded over threads: the flow's virtual shard (one
//! of [`VSHARDS`], from the symmetric 5-tuple hash), the global number of
//! the packet that produced it (or of the tick at whose end a timeout
//! produced it), then a phase, then the flow id, then a sequence number.
//! Within each tick rows are written in key order. A worker owns whole
//! virtual shards, so the writer only concatenates slices of the workers'
//! batches, and the output is identical at any thread count.

use std::net::IpAddr;

use trawl_proto::exchange::Exchange;

pub use crate::tcp_analysis::TcpMetrics;

/// (virtual shard, ordinal, phase, flow_id, seq): see the module docs.
pub type SortKey = (u8, u64, u8, u64, u32);

/// Virtual shards: flows are hashed onto these, and each worker owns a
/// contiguous range of them ([`worker_of`]).
pub const VSHARDS: u8 = 64;

/// The worker (of `threads`) that owns virtual shard `vshard`: worker 0
/// the first `VSHARDS / threads`, and so on. Ranges, not interleaving, so
/// that a tick's rows in key order are each worker's batch in turn, and
/// the writer hands the Parquet writer one batch per worker per tick.
pub fn worker_of(vshard: u8, threads: u32) -> u32 {
    vshard as u32 * threads / VSHARDS as u32
}

/// Phase of rows produced by the reader (decode problems).
pub const PHASE_READER: u8 = 0;
/// Phase of rows produced while processing a packet.
pub const PHASE_PACKET: u8 = 1;
/// Phase of rows produced by a timeout sweep or at the end of input.
pub const PHASE_SWEEP: u8 = 2;

/// Packs a file index and a frame number into a [`trawl_proto::At`] tag.
pub fn tag(file_index: u32, frame_number: u64) -> u64 {
    ((file_index as u64) << 40) | (frame_number & ((1 << 40) - 1))
}

/// Unpacks a tag made by [`tag`].
pub fn untag(tag: u64) -> (u32, u64) {
    ((tag >> 40) as u32, tag & ((1 << 40) - 1))
}

/// Per-direction counters of a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirRow {
    pub packets: u64,
    pub bytes: u64,
    pub payload_bytes: u64,
    pub stream_bytes: u64,
    pub gap_bytes: u64,
    pub tcp_flags: u8,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

/// Byte count and sha256 of each reassembled direction (debug streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDigest {
    /// [client, server]: bytes and lower-case hex sha256.
    pub dirs: [(u64, String); 2],
    /// True when the first packet of the flow came from the client.
    pub first_from_client: bool,
}

/// One row of `flows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRow {
    pub flow_id: u64,
    pub community_id: String,
    pub protocol: String,
    pub ip_version: u8,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    pub orientation: &'static str,
    pub ts: i64,
    pub end_ts: i64,
    pub conn_state: &'static str,
    pub zeek_state: &'static str,
    pub history: String,
    pub end_reason: &'static str,
    /// [client, server].
    pub dirs: [DirRow; 2],
    pub handshake_rtt_ns: Option<i64>,
    /// TCP expert metrics (TCP flows only).
    pub tcp: Option<Box<TcpMetrics>>,
    pub l7_protocols: Vec<&'static str>,
    pub vlan: Option<u16>,
    pub file_index: u32,
    pub frame_number: u64,
    pub digest: Option<Box<StreamDigest>>,
}

/// One row of `api_calls` (before its `id` is assigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub flow_id: u64,
    pub protocol: &'static str,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    pub exchange: Exchange,
}

/// One row of `parse_issues`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRow {
    pub flow_id: Option<u64>,
    pub file_index: u32,
    pub frame_number: Option<u64>,
    pub ts: Option<i64>,
    pub layer: &'static str,
    pub kind: &'static str,
    pub detail: String,
}

/// A row of any table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Flow(Box<FlowRow>),
    Call(Box<CallRow>),
    Issue(Box<IssueRow>),
}

/// A row and its place in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub key: SortKey,
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every virtual shard has one worker; each worker's shards are one
    /// contiguous range, in worker order, of near-equal size.
    #[test]
    fn workers_own_contiguous_even_ranges_of_virtual_shards() {
        for threads in [1u32, 2, 3, 4, 7, 64] {
            let owners: Vec<u32> = (0..VSHARDS).map(|v| worker_of(v, threads)).collect();
            assert!(owners.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 1), "{threads}: {owners:?}");
            assert_eq!((owners[0], owners[VSHARDS as usize - 1]), (0, threads - 1));
            let sizes: Vec<usize> = (0..threads).map(|w| owners.iter().filter(|&&o| o == w).count()).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{threads}: {sizes:?}");
        }
        assert_eq!(worker_of(31, 2), 0);
        assert_eq!(worker_of(32, 2), 1);
    }
}
