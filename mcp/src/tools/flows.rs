//! L4 flows and PCAP export.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_query::datafusion::arrow::datatypes::DataType;
use trawl_query::datafusion::dataframe::DataFrame;
use trawl_query::datafusion::functions_aggregate::expr_fn::{count, count_distinct, sum};
use trawl_query::datafusion::logical_expr::{Expr, SortExpr, cast, col, lit};
use trawl_query::peers::{count_where, handshake_quantile};
use trawl_query::{KflQuery, Table};
use trawl_snapshot::export::ExportSpec;
use trawl_snapshot::window::Window;

use super::{Format, TimeArg, blocking, bounded, indexed, window};
use crate::error::{ToolError, ToolResult};
use crate::rows::{self, Row};
use crate::state::Inner;

/// Transport protocols of list_l4_flows.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum L4Proto {
    Tcp,
    Udp,
    Icmp,
}

/// What list_l4_flows returns a row for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum FlowGroup {
    /// One row per connection (TCP) or flow (UDP/ICMP), with its TCP metrics.
    #[default]
    Connections,
    /// One row per peer pair (Kubeshark's L4 flow): connections, state,
    /// handshake p50/p90/p99 and summed TCP counters.
    Peers,
}

/// list_l4_flows' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListFlows {
    /// KFL filter on flows, e.g. `tcp && dst.port == 443` (default: all).
    #[serde(default)]
    pub kfl: String,
    /// Only this transport: `tcp`, `udp` or `icmp`.
    pub l4proto: Option<L4Proto>,
    /// Only flows with this address at either end.
    pub ip: Option<String>,
    /// Only flows with an end in this namespace (`internal`/`public` for
    /// addresses outside the cluster).
    pub ns: Option<String>,
    /// Only flows with an end that is this pod.
    pub pod: Option<String>,
    /// Only flows with an end that is this service.
    pub svc: Option<String>,
    /// `connections` (default) or `peers` (all connections between two peers in one row).
    #[serde(default)]
    pub group: FlowGroup,
    /// Rows to return, 1-1000 (default 100).
    pub limit: Option<usize>,
    /// Rows to skip (next_offset of the previous page).
    #[serde(default)]
    pub offset: usize,
    /// `compact` (default) or `full` (every column).
    #[serde(default)]
    pub format: Format,
    /// Only flows that start at or after this time.
    pub start: Option<TimeArg>,
    /// Only flows that start before this time.
    pub end: Option<TimeArg>,
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
}

/// get_l4_flow_summary's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct FlowSummary {
    /// KFL filter on flows (default: all).
    #[serde(default)]
    pub kfl: String,
    /// Entries in each top list, 1-100 (default 10).
    pub top: Option<usize>,
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
}

/// Which table export_snapshot_pcap's KFL filter runs on.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum KflTable {
    /// API calls: export the connections of the matching calls.
    #[default]
    Calls,
    /// Flows: export the matching flows.
    Flows,
}

/// export_snapshot_pcap's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ExportPcap {
    /// Snapshot name.
    #[serde(alias = "snapshot_id", alias = "snapshot")]
    pub id: String,
    /// KFL filter: export the connections of the matching calls (or flows, with kfl_table). Needs a dissected snapshot.
    pub kfl: Option<String>,
    /// `calls` (default) or `flows`: the table kfl runs on.
    #[serde(default)]
    pub kfl_table: KflTable,
    /// tcpdump (BPF) filter on the packets, e.g. `host 10.0.0.5 and tcp port 443`.
    pub bpf_filter: Option<String>,
    /// Only packets captured on these nodes (default: all).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Only packets at or after this time (Unix ms or RFC 3339).
    pub start_time: Option<TimeArg>,
    /// Only packets before this time.
    pub end_time: Option<TimeArg>,
    /// Comment each packet with its flow and peer names (default true).
    pub annotate: Option<bool>,
    /// File name under exports/ (default: SNAPSHOT-export-N, the first N free). An existing file is never overwritten: the call fails and suggests a free name.
    pub name: Option<String>,
}

fn compact_flow(mut r: Row) -> Value {
    rows::set_ref_id(&mut r, "flow_id");
    let mut o = Row::new();
    o.insert("id".into(), r.remove("id").unwrap_or(Value::Null));
    r.remove("snapshot");
    r.remove("flow_id");
    o.insert("proto".into(), r.remove("protocol").unwrap_or(Value::Null));
    o.insert("client".into(), rows::endpoint(&mut r, "src"));
    o.insert("server".into(), rows::endpoint(&mut r, "dst"));
    rows::move_times(&mut r, &mut o);
    o.insert(
        "duration_ms".into(),
        r.get("duration_us").and_then(Value::as_f64).map_or(Value::Null, |us| json!(us / 1000.0)),
    );
    for (from, to) in
        [("conn_state", "state"), ("zeek_state", "zeek_state"), ("history", "history"), ("l7_protocols", "l7")]
    {
        if let Some(v) = r.remove(from) {
            o.insert(to.into(), v);
        }
    }
    o.insert("client_stats".into(), json!({"pkts": r.get("client_packets"), "bytes": r.get("client_bytes")}));
    o.insert("server_stats".into(), json!({"pkts": r.get("server_packets"), "bytes": r.get("server_bytes")}));
    // Kubeshark's tcp_metrics object (TCP only; docs/tcp-insights.md).
    let mut m = Row::new();
    for (column, key) in TCP_METRICS {
        if let Some(v) = r.remove(*column).filter(|v| !v.is_null()) {
            m.insert(key.to_string(), v);
        }
    }
    if !m.is_empty() {
        o.insert("tcp_metrics".into(), Value::Object(m));
    }
    rows::drop_nulls(&mut o);
    Value::Object(o)
}

/// Flow columns of the TCP expert metrics and their keys in `tcp_metrics`
/// (Kubeshark's names; window scale and receive window per side).
const TCP_METRICS: &[(&str, &str)] = &[
    ("retransmissions", "retransmissions"),
    ("client_retransmissions", "client_retransmissions"),
    ("server_retransmissions", "server_retransmissions"),
    ("resent_segments", "resent_segments"),
    ("fast_retransmissions", "fast_retransmissions"),
    ("spurious_retransmissions", "spurious_retransmissions"),
    ("retransmission_rate", "retransmission_rate"),
    ("zero_window_events", "zero_window_events"),
    ("window_full_events", "window_full_events"),
    ("client_window_scale", "client_window_scale"),
    ("server_window_scale", "server_window_scale"),
    ("client_avg_receive_window", "client_avg_receive_window"),
    ("server_avg_receive_window", "server_avg_receive_window"),
    ("out_of_order", "out_of_order"),
    ("dup_acks", "dup_acks"),
    ("missing_segments", "missing_segments"),
    ("rst_count", "rst_count"),
    ("fin_count", "fin_count"),
    ("keepalive_count", "keepalive_count"),
    ("connection_completeness", "connection_completeness"),
    ("initial_rtt_us", "initial_rtt_us"),
    ("handshake_rtt_us", "handshake_time_us"),
    ("connection_time_us", "connection_time_us"),
    ("time_to_first_byte_us", "time_to_first_byte_us"),
    ("rtt_min_us", "rtt_min_us"),
    ("rtt_max_us", "rtt_max_us"),
    ("rtt_avg_us", "rtt_avg_us"),
    ("rtt_samples", "rtt_samples"),
    ("jitter_us", "jitter_us"),
    ("goodput_bytes", "goodput_bytes"),
];

/// A peer-pair row in Kubeshark's L4 flow shape.
fn compact_peer(mut r: Row) -> Value {
    let mut o = Row::new();
    o.insert("proto".into(), r.remove("protocol").unwrap_or(Value::Null));
    if let Some(s) = r.remove("snapshot") {
        o.insert("snapshot".into(), s);
    }
    o.insert("client".into(), rows::endpoint(&mut r, "src"));
    o.insert("server".into(), rows::endpoint(&mut r, "dst"));
    o.insert("first_ts".into(), rows::ms_of(&r, "timestamp"));
    o.insert("last_ts".into(), rows::ms_of(&r, "end_timestamp"));
    o.insert("state".into(), r.remove("flow_state").unwrap_or(Value::Null));
    let g = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    o.insert(
        "connections".into(),
        json!({"total": g("connections"), "open": g("open"), "in_progress": g("in_progress"), "closed": g("closed")}),
    );
    o.insert(
        "client_stats".into(),
        json!({"tx_pkts": g("client_packets"), "tx_bytes": g("client_bytes"), "rx_pkts": g("server_packets"), "rx_bytes": g("server_bytes")}),
    );
    o.insert(
        "server_stats".into(),
        json!({"tx_pkts": g("server_packets"), "tx_bytes": g("server_bytes"), "rx_pkts": g("client_packets"), "rx_bytes": g("client_bytes")}),
    );
    for (from, to) in [
        ("handshake_p50_us", "tcp_handshake_p50_us"),
        ("handshake_p90_us", "tcp_handshake_p90_us"),
        ("handshake_p99_us", "tcp_handshake_p99_us"),
    ] {
        o.insert(to.into(), g(from));
    }
    let mut m = Row::new();
    for k in ["retransmissions", "out_of_order", "dup_acks", "zero_window_events", "rst_count"] {
        m.insert(k.into(), g(k));
    }
    rows::drop_nulls(&mut m);
    if !m.is_empty() {
        o.insert("tcp_totals".into(), Value::Object(m));
    }
    rows::drop_nulls(&mut o);
    Value::Object(o)
}

/// Flow columns of compact rows, besides the TCP metrics ([`TCP_METRICS`])
/// and the endpoints' `src_`/`dst_` columns.
const COMPACT_FLOW_COLUMNS: &[&str] = &[
    "snapshot",
    "flow_id",
    "protocol",
    "timestamp",
    "duration_us",
    "conn_state",
    "zeek_state",
    "history",
    "l7_protocols",
    "client_packets",
    "client_bytes",
    "server_packets",
    "server_bytes",
];

/// The transport, address and workload conditions of list_l4_flows, each
/// a KFL filter of its own: they are compiled apart from the client's
/// `kfl` and joined to it as expressions ([`KflQuery::also`]), so that a
/// client's filter can neither escape them nor show up in their errors.
fn flow_conditions(p: &ListFlows) -> ToolResult<Vec<String>> {
    let mut parts = Vec::new();
    if let Some(p) = p.l4proto {
        parts.push(
            match p {
                L4Proto::Tcp => "tcp",
                L4Proto::Udp => "udp",
                L4Proto::Icmp => "icmp",
            }
            .to_string(),
        );
    }
    if let Some(ip) = p.ip.as_deref() {
        let a: IpAddr =
            ip.parse().map_err(|_| ToolError::new(format!("ip: expected an IPv4 or IPv6 address, got `{ip}`")))?;
        parts.push(format!("src.ip == \"{a}\" || dst.ip == \"{a}\""));
    }
    // Either end; a JSON string is a valid KFL (CEL) string literal.
    for (value, field) in [(&p.ns, "namespace"), (&p.pod, "pod.name"), (&p.svc, "service.name")] {
        if let Some(v) = value {
            let lit = serde_json::to_string(v).unwrap_or_default();
            parts.push(format!("src.{field} == {lit} || dst.{field} == {lit}"));
        }
    }
    Ok(parts)
}

pub async fn list_flows(inner: &Arc<Inner>, p: ListFlows) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let (start_ns, end_ns) = window(&p.start, &p.end)?;
    let also = flow_conditions(&p)?;
    let filter = p.kfl.clone();
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    if p.group == FlowGroup::Peers {
        let q = KflQuery { table: Table::Flows, filter, also, start_ns, end_ns, ..Default::default() };
        let (df, notes) = cat.kfl_filtered(&q).await?;
        let df = trawl_query::peers::peer_flows(df)?;
        let total = df.clone().count().await?;
        let batches = df.limit(p.offset, Some(limit))?.collect().await?;
        let flows: Vec<Value> = rows::rows(&batches, 0)
            .into_iter()
            .map(|r| if p.format == Format::Compact { compact_peer(r) } else { Value::Object(r) })
            .collect();
        return Ok(super::page("flows", flows, total, p.offset, notes));
    }
    let columns = match p.format {
        Format::Compact => {
            let fixed: Vec<&str> =
                COMPACT_FLOW_COLUMNS.iter().copied().chain(TCP_METRICS.iter().map(|(c, _)| *c)).collect();
            Some(super::compact_columns(&cat, "flows", &fixed).await?)
        }
        Format::Full => None,
    };
    let q = KflQuery {
        table: Table::Flows,
        filter,
        also,
        limit: Some(limit),
        offset: p.offset,
        columns,
        start_ns,
        end_ns,
        ..Default::default()
    };
    let (total, page) = cat.page(&q).await?;
    let mut flows: Vec<Value> = rows::rows(&page.batches, 0)
        .into_iter()
        .map(|mut r| {
            if p.format == Format::Compact {
                compact_flow(r)
            } else {
                rows::set_ref_id(&mut r, "flow_id");
                Value::Object(r)
            }
        })
        .collect();
    let names = if p.format == Format::Compact { rows::legend(&mut flows, &["client", "server"]) } else { None };
    let mut v = super::page("flows", flows, total, p.offset, page.notes);
    if let Some(n) = names {
        v["names"] = n;
    }
    Ok(v)
}

async fn top(df: &DataFrame, measure: Expr, name: &str, n: usize) -> ToolResult<Vec<Value>> {
    let t = df
        .clone()
        .aggregate(
            vec![col("src_ip"), col("dst_ip"), col("dst_port"), col("protocol")],
            vec![sum(measure).alias(name), count(lit(1)).alias("flows")],
        )?
        .sort(["src_ip", "dst_ip", "dst_port", "protocol"].iter().fold(
            vec![SortExpr::new(col(name), false, false)],
            |mut v, c| {
                v.push(SortExpr::new(col(*c), true, false));
                v
            },
        ))?
        .limit(0, Some(n))?
        .collect()
        .await?;
    Ok(rows::rows(&t, 0)
        .into_iter()
        .map(|mut r| json!({"client": r.remove("src_ip"), "server": r.remove("dst_ip"), "server_port": r.remove("dst_port"), "proto": r.remove("protocol"), name: r.remove(name), "flows": r.remove("flows")}))
        .collect())
}

/// TCP expert totals of the selected flows (docs/tcp-insights.md); None
/// for snapshots made before the TCP metrics.
async fn tcp_health(df: &DataFrame) -> ToolResult<Option<Value>> {
    if !df.schema().has_column_with_unqualified_name("retransmissions") {
        return Ok(None);
    }
    let tcp = df.clone().filter(col("protocol").eq(lit("tcp")))?;
    let total = |c: &str| cast(sum(col(c)), DataType::Int64).alias(c.to_string());
    let flagged = |c: &str, name: &str| count_where(col(c).gt(lit(0u32))).alias(name.to_string());
    let pct = |q: f64, name: &str| handshake_quantile(q).alias(name.to_string());
    let t = tcp
        .aggregate(
            vec![],
            vec![
                total("retransmissions"),
                total("out_of_order"),
                total("dup_acks"),
                total("zero_window_events"),
                total("rst_count"),
                flagged("retransmissions", "connections_with_retransmissions"),
                flagged("zero_window_events", "connections_with_zero_windows"),
                count_where(col("connection_completeness").eq(lit(33u8))).alias("refused"),
                pct(0.5, "handshake_p50_us"),
                pct(0.99, "handshake_p99_us"),
            ],
        )?
        .collect()
        .await?;
    Ok(rows::rows(&t, 0).into_iter().next().map(Value::Object))
}

pub async fn flow_summary(inner: &Arc<Inner>, p: FlowSummary) -> ToolResult {
    let n = bounded("top", p.top, 10, 100)?;
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    let q = KflQuery { table: Table::Flows, filter: p.kfl.clone(), ..Default::default() };
    let (df, mut notes) = cat.kfl_filtered(&q).await?;
    let bytes = col("client_bytes") + col("server_bytes");
    let pkts = col("client_packets") + col("server_packets");
    let totals = df
        .clone()
        .aggregate(
            vec![],
            vec![
                count(lit(1)).alias("total_flows"),
                sum(bytes.clone()).alias("total_bytes"),
                sum(pkts.clone()).alias("total_pkts"),
                count_distinct(col("src_ip")).alias("unique_clients"),
                count_distinct(col("dst_ip")).alias("unique_servers"),
            ],
        )?
        .collect()
        .await?;
    let mut out = rows::rows(&totals, 0).into_iter().next().unwrap_or_default();
    let by = |c: &'static str| {
        let df = df.clone();
        async move {
            let t = df
                .aggregate(vec![col(c)], vec![count(lit(1)).alias("n")])?
                .sort(vec![SortExpr::new(col(c), true, false)])?
                .collect()
                .await?;
            let mut m = serde_json::Map::new();
            for r in rows::rows(&t, 0) {
                let k = match r.get(c) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => "null".into(),
                };
                m.insert(k, r.get("n").cloned().unwrap_or(Value::Null));
            }
            Ok::<Value, ToolError>(Value::Object(m))
        }
    };
    out.insert("by_protocol".into(), by("protocol").await?);
    out.insert("by_state".into(), by("conn_state").await?);
    out.insert("by_zeek_state".into(), by("zeek_state").await?);
    for (k, proto) in [("tcp_flows", "tcp"), ("udp_flows", "udp")] {
        out.insert(k.into(), out["by_protocol"].get(proto).cloned().unwrap_or(json!(0)));
    }
    if let Some(mut h) = tcp_health(&df).await? {
        // Packets the capture itself lost look like network loss here.
        let dropped: u64 = snaps
            .iter()
            .filter_map(|s| crate::jobs::manifest_counters(s).get("capture_dropped").and_then(Value::as_u64))
            .sum();
        h["capture_dropped_packets"] = json!(dropped);
        if dropped > 0 {
            notes.push(format!(
                "the capture dropped {dropped} packets (its pcapng statistics say): they are missing from the snapshot, so some retransmissions, gaps and dup ACKs may be capture loss, not network loss"
            ));
        }
        out.insert("tcp_health".into(), h);
    }
    out.insert("top_by_bytes".into(), json!(top(&df, bytes, "bytes", n).await?));
    out.insert("top_by_pkts".into(), json!(top(&df, pkts, "pkts", n).await?));
    if !notes.is_empty() {
        out.insert("notes".into(), json!(notes));
    }
    Ok(Value::Object(out))
}

/// Writes the packets of one flow of a snapshot to `out`.
pub async fn write_pcap(snap: PathBuf, flow_id: u64, out: PathBuf) -> ToolResult {
    let spec = ExportSpec {
        flow_ids: Some(HashSet::from([flow_id])),
        window: None,
        nodes: Vec::new(),
        bpf: None,
        annotate: true,
    };
    export(snap, spec, out).await
}

async fn export(snap: PathBuf, spec: ExportSpec, out: PathBuf) -> ToolResult {
    blocking(move || {
        let sum = trawl_snapshot::export::export(&snap, &spec, &out)?;
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        Ok(json!({"path": out, "size_bytes": size, "format": "pcapng", "packets": sum.packets, "flows": sum.flows, "bpf_dropped": sum.bpf_dropped}))
    })
    .await
}

pub async fn export_pcap(inner: &Arc<Inner>, p: ExportPcap) -> ToolResult {
    let data = &inner.config.data;
    let snap = data.snapshot(&p.id)?;
    let (start, end) = window(&p.start_time, &p.end_time)?;
    let win = (start.is_some() || end.is_some())
        .then(|| Window { start_ns: start.unwrap_or(i64::MIN), end_ns: end.unwrap_or(i64::MAX) });
    let mut notes = Vec::new();
    let flow_ids = match p.kfl.as_deref().filter(|k| !k.trim().is_empty()) {
        Some(k) => {
            let snaps = indexed(inner, Some(&p.id))?;
            let cat = inner.catalog(&snaps).await?;
            let table = match p.kfl_table {
                KflTable::Calls => Table::Calls,
                KflTable::Flows => Table::Flows,
            };
            let (ids, n) = cat.kfl_flow_ids(table, k).await?;
            notes = n;
            Some(ids)
        }
        None => None,
    };
    let out = match &p.name {
        Some(n) => {
            let f = data.export_file(n, ".pcapng")?;
            if f.exists() {
                // An earlier export is evidence too: never overwritten.
                let stem = n.strip_suffix(".pcapng").unwrap_or(n);
                let free = (2..)
                    .map(|i| format!("{stem}-{i}"))
                    .find(|c| data.export_file(c, ".pcapng").is_ok_and(|p| !p.exists()))
                    .unwrap_or_default();
                return Err(ToolError::new(format!("name: exports/{stem}.pcapng exists already and is not overwritten; choose another name, e.g. `{free}`"))
                    .with("existing", json!(f))
                    .with("suggested_name", json!(free)));
            }
            f
        }
        None => {
            let mut i = 1;
            loop {
                let f = data.export_file(&format!("{}-export-{i}", p.id), ".pcapng")?;
                if !f.exists() {
                    break f;
                }
                i += 1;
            }
        }
    };
    let spec =
        ExportSpec { flow_ids, window: win, nodes: p.nodes, bpf: p.bpf_filter, annotate: p.annotate.unwrap_or(true) };
    let mut v = export(snap, spec, out).await?;
    if !notes.is_empty() {
        v["notes"] = json!(notes);
    }
    Ok(v)
}
