//! The rows of `flows` and `parse_issues`, and the Kubernetes and DNS
//! context columns that flows and calls share.

use std::net::IpAddr;

use crate::Error;
use crate::kube::Context;
use crate::kube::peers::PeerNames;
use crate::records::{FlowRow, IssueRow};

use super::columns::TableBuilder;

/// What names the sides of a row: the shared Kubernetes context, the
/// worker's DNS names, and its counts of sides each sidecar named.
pub struct Names<'a> {
    pub(super) ctx: &'a Context,
    pub(super) peers: &'a PeerNames,
    pub(super) matches: &'a mut [u64],
}

impl TableBuilder {
    pub(super) fn flow(&mut self, r: &FlowRow, names: &mut Names) -> Result<(), Error> {
        self.u64(r.flow_id);
        self.str(&r.community_id);
        self.str(&r.protocol);
        self.u8(r.ip_version);
        self.ip(&r.src_ip);
        self.u16(r.src_port);
        self.ip(&r.dst_ip);
        self.u16(r.dst_port);
        self.str(r.orientation);
        self.ts(r.ts);
        self.ts(r.end_ts);
        self.i64((r.end_ts - r.ts) / 1000);
        self.str(r.conn_state);
        self.str(r.zeek_state);
        self.str(&r.history);
        self.str(r.end_reason);
        for d in &r.dirs {
            self.u64(d.packets);
            self.u64(d.bytes);
            self.u64(d.payload_bytes);
            self.u64(d.stream_bytes);
            self.u64(d.gap_bytes);
            self.u8(d.tcp_flags);
            self.opt_ts(d.first_ts);
            self.opt_ts(d.last_ts);
        }
        self.opt_i64(r.handshake_rtt_ns.map(|n| n / 1000));
        self.tcp_metrics(r);
        self.list(&r.l7_protocols);
        self.opt_u16(r.vlan);
        self.u32(r.file_index);
        self.u64(r.frame_number);
        self.context(names, r.ts, r.flow_id, r.file_index, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port));
        self.end_row()
    }

    /// The TCP expert columns, from `initial_rtt_us` to `goodput_bytes`
    /// (null for UDP and ICMP flows).
    fn tcp_metrics(&mut self, r: &FlowRow) {
        let m = r.tcp.as_deref();
        let us = |v: Option<i64>| v.map(|n| n / 1000);
        let rtt = m.map(|m| m.rtt).filter(|r| r.samples > 0);
        self.opt_i64(us(m.and_then(|m| m.initial_rtt_ns)));
        self.opt_i64(us(m.and_then(|m| m.connection_time_ns)));
        self.opt_i64(us(m.and_then(|m| m.ttfb_ns)));
        self.opt_i64(us(rtt.map(|r| r.min_ns)));
        self.opt_i64(us(rtt.map(|r| r.max_ns)));
        self.opt_i64(rtt.and_then(|r| r.mean_us()).map(|v| v.round() as i64));
        self.opt_u32(m.map(|m| m.rtt.samples));
        self.opt_i64(rtt.and_then(|r| r.std_dev_us()).map(|v| v.round() as i64));
        self.opt_u32(m.map(|m| m.retransmissions()));
        self.opt_u32(m.map(|m| m.retransmissions_by[0]));
        self.opt_u32(m.map(|m| m.retransmissions_by[1]));
        self.opt_u32(m.map(|m| m.resent_segments));
        self.opt_u32(m.map(|m| m.fast_retransmissions));
        self.opt_u32(m.map(|m| m.spurious_retransmissions));
        self.opt_f64(m.map(|m| m.retransmission_rate()));
        self.opt_u32(m.map(|m| m.out_of_order));
        self.opt_u32(m.map(|m| m.dup_acks));
        self.opt_u32(m.map(|m| m.missing_segments));
        self.opt_u32(m.map(|m| m.acked_unseen));
        self.opt_u32(m.map(|m| m.zero_windows));
        self.opt_u32(m.map(|m| m.zero_window_probes));
        self.opt_u32(m.map(|m| m.window_full));
        self.opt_u8(m.and_then(|m| m.window_scale[0]));
        self.opt_u8(m.and_then(|m| m.window_scale[1]));
        self.opt_u64(m.and_then(|m| m.avg_window(0)));
        self.opt_u64(m.and_then(|m| m.avg_window(1)));
        self.opt_u32(m.map(|m| m.rst_packets));
        self.opt_u32(m.map(|m| m.fin_packets));
        self.opt_u32(m.map(|m| m.keep_alives));
        self.opt_u8(m.map(|m| m.completeness));
        self.opt_u64(m.map(|m| m.goodput_bytes));
    }

    /// The Kubernetes and DNS columns (`trawl_schemas::KUBE_COLUMNS`): each
    /// side named at `ts`, from DNS answers seen before packet `flow_id`.
    pub(super) fn context(
        &mut self,
        names: &mut Names,
        ts: i64,
        flow_id: u64,
        file_index: u32,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
    ) {
        let ctx = names.ctx;
        let node = ctx.node_of(file_index);
        self.opt_str(node);
        let node_ip = node.and_then(|n| ctx.cluster.node_ip(n, ts)).map(|ip| ip.to_string());
        self.opt_str(node_ip.as_deref());
        let mut all: Vec<std::sync::Arc<str>> = Vec::new();
        for (ip, port) in [src, dst] {
            let side = ctx.cluster.resolve(ip, port, ts);
            if let Some(n) = side.file.and_then(|f| names.matches.get_mut(f)) {
                *n += 1;
            }
            let peer = names.peers.lookup(ip, flow_id);
            let pod = side.pod();
            self.opt_str(pod.map(|p| &*p.name));
            self.opt_str(pod.map(|p| &*p.namespace));
            self.opt_str(side.service.map(|s| s.1));
            self.opt_str(side.service.map(|s| s.0));
            self.opt_str(pod.and_then(|p| p.workload.as_deref()));
            self.opt_str(side.node);
            let empty = std::collections::BTreeMap::new();
            self.map(pod.map_or(&empty, |p| &p.labels).iter().map(|(k, v)| (k.as_str(), v.as_str())));
            self.map(pod.map_or(&empty, |p| &p.annotations).iter().map(|(k, v)| (k.as_str(), v.as_str())));
            self.str(side.namespace());
            self.opt_str(peer.dns.as_deref());
            self.str(side.resolution);
            for n in peer.names {
                if !all.contains(&n) {
                    all.push(n);
                }
            }
        }
        let all: Vec<&str> = all.iter().map(|n| &**n).collect();
        self.list(&all);
    }

    pub(super) fn issue(&mut self, r: &IssueRow) -> Result<(), Error> {
        self.opt_u64(r.flow_id);
        self.u32(r.file_index);
        self.opt_u64(r.frame_number);
        self.opt_ts(r.ts);
        self.str(r.layer);
        self.str(r.kind);
        self.str(&r.detail);
        self.end_row()
    }
}
