//! L4 flows as Kubeshark defines them: every connection between the same
//! two peers (client address, server address and port, transport) folded
//! into one row, with connection states and the handshake RTT's
//! percentiles (Kubeshark's `tcp_handshake_p50/p90/p99_us`).
//!
//! The `l4_flows` view is this over all flows; [`peer_flows`] applies it
//! to any filtered flows (a KFL query), for `trawl query --peers` and the
//! MCP `list_l4_flows` tool.

use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{approx_percentile_cont, count, max, min, sum};
use datafusion::logical_expr::{Expr, SortExpr, cast, col, lit, when};

use crate::error::QueryError;

/// Counts summed over a peer pair's connections (TCP expert metrics).
const SUMMED: &[&str] = &[
    "client_packets",
    "client_bytes",
    "server_packets",
    "server_bytes",
    "retransmissions",
    "out_of_order",
    "dup_acks",
    "zero_window_events",
    "rst_count",
];

/// Names kept for each side (the most common case is one name per address
/// over the capture; where it changed, the greatest is shown).
const NAMES: &[&str] = &["pod_name", "pod_namespace", "service_name", "workload_name", "dns"];

/// The `q` quantile of the handshake RTT (µs) over aggregated flows, by
/// t-digest as Kubeshark's `tcp_handshake_p50_us`.
pub fn handshake_quantile(q: f64) -> Expr {
    cast(approx_percentile_cont(SortExpr::new(col("handshake_rtt_us"), true, false), lit(q), None), DataType::Int64)
}

/// How many aggregated rows satisfy `cond`.
pub fn count_where(cond: Expr) -> Expr {
    sum(when(cond, lit(1i64)).otherwise(lit(0i64)).unwrap_or(lit(0i64)))
}

/// Folds flows (rows of the `flows` table, already filtered) into one row
/// per peer pair, ordered by first activity.
pub fn peer_flows(df: DataFrame) -> Result<DataFrame, QueryError> {
    let schema = df.schema().clone();
    let has = |c: &str| schema.has_column_with_unqualified_name(c);
    let mut keys: Vec<Expr> = Vec::new();
    if has("snapshot") {
        keys.push(col("snapshot"));
    }
    keys.extend(["protocol", "src_ip", "dst_ip", "dst_port"].map(col));
    let state = |s: &str| count_where(col("conn_state").eq(lit(s)));
    let mut aggs = vec![
        count(lit(1)).alias("connections"),
        state("open").alias("open"),
        state("in_progress").alias("in_progress"),
        state("closed").alias("closed"),
        min(col("timestamp")).alias("timestamp"),
        max(col("end_timestamp")).alias("end_timestamp"),
        handshake_quantile(0.5).alias("handshake_p50_us"),
        handshake_quantile(0.9).alias("handshake_p90_us"),
        handshake_quantile(0.99).alias("handshake_p99_us"),
    ];
    for c in SUMMED.iter().filter(|c| has(c)) {
        aggs.push(cast(sum(col(*c)), DataType::UInt64).alias(*c));
    }
    for side in ["src", "dst"] {
        for n in NAMES {
            let c = format!("{side}_{n}");
            if has(&c) {
                aggs.push(max(col(c.as_str())).alias(c));
            }
        }
    }
    let grouped = df.aggregate(keys.clone(), aggs)?;
    // A flow is open while any of its connections is, in progress while
    // one is still in its handshake, closed when all are.
    let flow_state = when(col("open").gt(lit(0i64)), lit("open"))
        .when(col("in_progress").gt(lit(0i64)), lit("in_progress"))
        .otherwise(lit("closed"))
        .unwrap_or(lit("closed"));
    let mut cols: Vec<Expr> = grouped.schema().fields().iter().map(|f| col(format!("\"{}\"", f.name()))).collect();
    cols.push(flow_state.alias("flow_state"));
    let mut order = vec![SortExpr::new(col("timestamp"), true, false)];
    order.extend(keys.into_iter().map(|k| SortExpr::new(k, true, false)));
    Ok(grouped.select(cols)?.sort(order)?)
}
