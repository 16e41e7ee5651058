//! API calls: list, details, stats.

use std::sync::Arc;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_query::datafusion::arrow::datatypes::DataType;
use trawl_query::datafusion::functions_aggregate::expr_fn::{approx_percentile_cont, array_agg, count, sum};
use trawl_query::datafusion::logical_expr::{Expr, SortExpr, cast, col, lit, when};
use trawl_query::{KflQuery, Order, Table};

use super::{Format, TimeArg, bounded, indexed, window};
use crate::error::{ToolError, ToolResult};
use crate::rows::{self, Row};
use crate::state::Inner;

/// Longest body preview in list rows (`format: full`).
const LIST_BODY_PREVIEW: usize = 256;
/// Largest max_payload_size.
const MAX_PAYLOAD: usize = 1 << 20;

/// list_api_calls' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListCalls {
    /// KFL filter, e.g. `http && status_code >= 500 && path.startsWith("/api")`, `grpc && grpc_status != 0`, `gql && gql_errors > 0`, `postgresql && !postgresql_success`, `kafka && kafka_error_code != 0` (default: all calls). Reference: resource trawl://kfl.
    #[serde(default)]
    pub kfl: String,
    /// Rows to return, 1-1000 (default 100).
    pub limit: Option<usize>,
    /// Rows to skip (use next_offset of the previous page).
    #[serde(default)]
    pub offset: usize,
    /// `time` (default): by the request's timestamp, oldest first; `id`:
    /// by call id, the order exchanges completed in.
    #[serde(default)]
    pub order: CallOrder,
    /// `compact` (default) or `full` (every column, bodies cut to previews).
    #[serde(default)]
    pub format: Format,
    /// Only calls at or after this time (Unix ms or RFC 3339).
    pub start: Option<TimeArg>,
    /// Only calls before this time.
    pub end: Option<TimeArg>,
    /// Snapshot to query (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
}

/// The order of list_api_calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum CallOrder {
    /// By request time (`timestamp`), then id: the first N are the first N sent.
    #[default]
    Time,
    /// By id: the order the exchanges completed in (a slow call comes after faster ones it overlapped).
    Id,
}

/// get_api_call_details' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CallDetails {
    /// Call id as list_api_calls returns it: `snapshot/id` (or the number, with snapshot_id).
    pub id: Value,
    /// Snapshot of the call, when id is a bare number.
    #[serde(alias = "snapshot")]
    pub snapshot_id: Option<String>,
    /// Include request and response bodies (default true).
    pub include_payload: Option<bool>,
    /// Include the L4 flow the call travelled on (default true).
    pub include_l4: Option<bool>,
    /// Write the packets of the call's connection to exports/ and return the path (default false).
    #[serde(default)]
    pub include_pcap: bool,
    /// Most bytes of each body to return (default 65536, at most 1048576).
    pub max_payload_size: Option<usize>,
}

/// get_api_stats' grouping.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Method and templated path (`GET /users/{id}`).
    #[default]
    Endpoint,
    /// Response status code.
    Status,
    /// Client address.
    Src,
    /// Server address and port.
    Dst,
    /// L7 protocol.
    #[serde(alias = "proto")]
    Protocol,
    /// Client namespace (`internal`/`public` outside the cluster).
    #[serde(alias = "src_ns")]
    SrcNamespace,
    /// Server namespace.
    #[serde(alias = "dst_ns")]
    DstNamespace,
    /// Client workload, `namespace/Kind/name` (else `namespace/pod`, else its name: service, node, DNS name or address), as get_service_map names it.
    SrcWorkload,
    /// Server workload, else its pod, else its service, else its name (pod, node, DNS name or address), as get_service_map names its nodes.
    DstWorkload,
    /// Server service, `namespace/name` (else its address and port).
    #[serde(alias = "dst_svc")]
    DstService,
}

/// get_api_stats' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ApiStats {
    /// KFL filter of the calls to count (default: all).
    #[serde(default)]
    pub kfl: String,
    /// `endpoint` (default), `status`, `src`, `dst`, `protocol`,
    /// `src_namespace`, `dst_namespace`, `src_workload`, `dst_workload` or
    /// `dst_service`.
    #[serde(default)]
    pub group_by: GroupBy,
    /// Groups to return, busiest first, 1-1000 (default 50).
    pub limit: Option<usize>,
    /// Only calls at or after this time.
    pub start: Option<TimeArg>,
    /// Only calls before this time.
    pub end: Option<TimeArg>,
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
}

/// The compact form of a call row: id, ts, proto, method, path, status,
/// latency_ms, src and dst objects, error when there is one.
fn compact_call(mut r: Row) -> Value {
    rows::set_ref_id(&mut r, "id");
    let mut o = Row::new();
    o.insert("id".into(), r.remove("id").unwrap_or(Value::Null));
    r.remove("snapshot");
    rows::move_times(&mut r, &mut o);
    // The path as sent, query string included.
    if let Some(url) = r.remove("url").filter(|u| !u.is_null()) {
        r.insert("path".into(), url);
    }
    for (from, to) in [
        ("protocol", "proto"),
        ("method", "method"),
        ("path", "path"),
        ("status_code", "status"),
        ("latency_ms", "latency_ms"),
        ("flow_id", "flow_id"),
    ] {
        if let Some(v) = r.remove(from) {
            o.insert(to.into(), v);
        }
    }
    o.insert("src".into(), rows::endpoint(&mut r, "src"));
    o.insert("dst".into(), rows::endpoint(&mut r, "dst"));
    if let Some(e) = r.remove("error") {
        o.insert("error".into(), e);
    }
    for c in PROTOCOL_DETAIL_COLUMNS {
        if let Some(v) = r.remove(*c) {
            o.insert((*c).into(), v);
        }
    }
    rows::drop_nulls(&mut o);
    Value::Object(o)
}

/// The full form: every column; `id` becomes `snapshot/id`.
fn full_row(mut r: Row) -> Value {
    rows::set_ref_id(&mut r, "id");
    Value::Object(r)
}

/// The fields of a compact call row (plus every `src_*`/`dst_*` column
/// and [`PROTOCOL_DETAIL_COLUMNS`]).
const COMPACT_CALL_COLUMNS: &[&str] = &[
    "snapshot",
    "id",
    "timestamp",
    "protocol",
    "method",
    "path",
    "url",
    "status_code",
    "latency_ms",
    "flow_id",
    "error",
];

/// Protocol details a compact call row carries when they are set.
const PROTOCOL_DETAIL_COLUMNS: &[&str] = &[
    "http_version",
    "grpc_method",
    "grpc_status",
    "grpc_message",
    "gql_operation",
    "gql_operation_name",
    "gql_errors",
    "ws_opcode",
    "ws_from_client",
    "ws_close_code",
    "dns_id",
    "dns_answers",
    "redis_error",
    "db_query",
    "db_database",
    "db_collection",
    "db_result",
    "db_error_code",
    "db_error_message",
    "kafka_topics",
    "kafka_error_code",
    "amqp_exchange",
    "amqp_routing_key",
    "amqp_queue",
    "amqp_reply_code",
    "amqp_reply_text",
];

pub async fn list_calls(inner: &Arc<Inner>, p: ListCalls) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let (start_ns, end_ns) = window(&p.start, &p.end)?;
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    let columns = match p.format {
        Format::Compact => {
            let fixed: Vec<&str> = COMPACT_CALL_COLUMNS.iter().chain(PROTOCOL_DETAIL_COLUMNS).copied().collect();
            Some(super::compact_columns(&cat, "calls", &fixed).await?)
        }
        Format::Full => None,
    };
    let (order, order_name) = match p.order {
        CallOrder::Time => (Order::Time, "time"),
        CallOrder::Id => (Order::Id, "id"),
    };
    let q = KflQuery {
        table: Table::Calls,
        filter: p.kfl.clone(),
        limit: Some(limit),
        offset: p.offset,
        columns,
        start_ns,
        end_ns,
        order,
        ..Default::default()
    };
    let (total, page) = cat.page(&q).await?;
    let mut calls: Vec<Value> = rows::rows(&page.batches, LIST_BODY_PREVIEW)
        .into_iter()
        .map(|r| if p.format == Format::Compact { compact_call(r) } else { full_row(r) })
        .collect();
    let names = if p.format == Format::Compact { rows::legend(&mut calls, &["src", "dst"]) } else { None };
    let mut v = super::page("calls", calls, total, p.offset, page.notes);
    if let Some(n) = names {
        v["names"] = n;
    }
    v["order"] = json!(order_name);
    Ok(v)
}

/// `snapshot/id` or a number (with `snapshot_id`, or the only snapshot).
fn parse_call_id(inner: &Inner, id: &Value, snapshot: Option<&str>) -> ToolResult<(String, u64)> {
    let bad = || ToolError::new(format!("id: expected `snapshot/id` as list_api_calls returns it, got {id}"));
    if let Value::String(s) = id {
        rows::refuse_flow_id("id", s)?;
    }
    let (snap, num) = match id {
        Value::Number(n) => (None, n.as_u64().ok_or_else(bad)?),
        Value::String(s) => match s.rsplit_once('/') {
            Some((sn, n)) => (Some(sn.to_string()), n.parse().map_err(|_| bad())?),
            None => (None, s.parse().map_err(|_| bad())?),
        },
        _ => return Err(bad()),
    };
    let snap = match (snap, snapshot) {
        (Some(s), _) => s,
        (None, Some(s)) => s.to_string(),
        (None, None) => {
            let all = indexed(inner, None)?;
            match all.as_slice() {
                [one] => one.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
                _ => return Err(bad().with("known_snapshots", json!(inner.config.data.snapshot_names()))),
            }
        }
    };
    Ok((snap, num))
}

/// A body as text (or base64 when it is not UTF-8), cut to `max` bytes.
fn body(raw: Option<&[u8]>, row: &Row, truncated_column: &str, size_column: &str, max: usize) -> Value {
    use base64::Engine;
    let Some(raw) = raw else {
        return Value::Null;
    };
    let cut = &raw[..raw.len().min(max)];
    let (text, encoding) = match std::str::from_utf8(cut) {
        Ok(s) => (s.to_string(), "utf-8"),
        // A cut may split a character: keep the valid prefix as text.
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
            (String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned(), "utf-8")
        }
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(cut), "base64"),
    };
    json!({
        "text": text,
        "encoding": encoding,
        "stored_bytes": raw.len(),
        "wire_bytes": row.get(size_column),
        "returned_bytes": cut.len(),
        "truncated": cut.len() < raw.len() || row.get(truncated_column).and_then(Value::as_bool).unwrap_or(false),
    })
}

pub async fn call_details(inner: &Arc<Inner>, p: CallDetails) -> ToolResult {
    let max = p.max_payload_size.unwrap_or(65_536);
    if max > MAX_PAYLOAD {
        return Err(ToolError::new(format!("max_payload_size: at most {MAX_PAYLOAD}, got {max}")));
    }
    let (snap_name, id) = parse_call_id(inner, &p.id, p.snapshot_id.as_deref())?;
    let snaps = indexed(inner, Some(&snap_name))?;
    let cat = inner.catalog(&snaps).await?;
    let df = cat.context().table("calls").await?.filter(col("id").eq(lit(id)))?;
    // Bodies as byte lists: exact bytes, cut here to max_payload_size.
    let batches = df.collect().await?;
    let mut found = rows::rows(&batches, 0);
    if found.is_empty() {
        return Err(ToolError::new(format!("no call {id} in snapshot `{snap_name}`"))
            .with("hint", "ids come from list_api_calls"));
    }
    let mut call = found.swap_remove(0);
    let flow_id = call.get("flow_id").and_then(Value::as_u64);
    // A dataset's rows name their node: its ids read NODE/ID.
    let snap_name = call.get("snapshot").and_then(Value::as_str).map_or(snap_name, str::to_string);
    let mut v = json!({"id": format!("{snap_name}/{id}"), "snapshot": snap_name});
    if p.include_payload.unwrap_or(true) {
        let req = raw_body(&batches, "request_body");
        let resp = raw_body(&batches, "response_body");
        v["request_body"] = body(req, &call, "request_body_truncated", "request_body_size", max);
        v["response_body"] = body(resp, &call, "response_body_truncated", "response_body_size", max);
    }
    call.remove("request_body");
    call.remove("response_body");
    v["call"] = Value::Object(call);
    if p.include_l4.unwrap_or(true)
        && let Some(f) = flow_id
    {
        let flows = cat.context().table("flows").await?.filter(col("flow_id").eq(lit(f)))?.collect().await?;
        v["l4_flow"] = rows::rows(&flows, 0).into_iter().next().map_or(Value::Null, Value::Object);
    }
    if p.include_pcap
        && let Some(f) = flow_id
    {
        let out = inner.config.data.export_file(&format!("{snap_name}-call-{id}"), ".pcapng")?;
        let snap = snaps[0].clone();
        v["pcap"] = super::flows::write_pcap(snap, f, out).await?;
    }
    Ok(v)
}

/// A body column of the first row, as stored.
fn raw_body<'a>(batches: &'a [trawl_query::datafusion::arrow::array::RecordBatch], column: &str) -> Option<&'a [u8]> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    rows::bytes(b.column_by_name(column)?, 0)
}

pub async fn api_stats(inner: &Arc<Inner>, p: ApiStats) -> ToolResult {
    let limit = bounded("limit", p.limit, 50, 1000)?;
    let (start_ns, end_ns) = window(&p.start, &p.end)?;
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    let q = KflQuery { table: Table::Calls, filter: p.kfl.clone(), start_ns, end_ns, ..Default::default() };
    let (df, notes) = cat.kfl_filtered(&q).await?;
    use trawl_query::datafusion::functions::core::expr_fn::coalesce;
    use trawl_query::datafusion::functions::string::expr_fn::concat_ws;
    // `a/b/...`, null when a part is null (concat_ws would skip it).
    let path = |parts: Vec<Expr>| {
        let all_set = parts.iter().cloned().map(Expr::is_not_null).reduce(Expr::and).unwrap_or(lit(true));
        when(all_set, concat_ws(lit("/"), parts)).end()
    };
    let dst = trawl_query::datafusion::functions::string::expr_fn::concat(vec![
        col("dst_ip"),
        lit(":"),
        cast(col("dst_port"), DataType::Utf8),
    ]);
    let key: Expr = match p.group_by {
        GroupBy::Endpoint => col("endpoint"),
        GroupBy::Status => cast(col("status_code"), DataType::Utf8),
        GroupBy::Src => col("src_ip"),
        GroupBy::Dst => dst,
        GroupBy::Protocol => col("protocol"),
        GroupBy::SrcNamespace => col("src_namespace"),
        GroupBy::DstNamespace => col("dst_namespace"),
        // The same names as the service map and the investigations.
        GroupBy::SrcWorkload => df.parse_sql_expr(trawl_investigate::calls::CLIENT)?,
        GroupBy::DstWorkload => df.parse_sql_expr(trawl_investigate::calls::SERVER_NODE)?,
        GroupBy::DstService => coalesce(vec![path(vec![col("dst_service_namespace"), col("dst_service_name")])?, dst]),
    };
    let one_if = |cond: Expr| when(cond, lit(1i64)).otherwise(lit(0i64));
    // What failure means depends on the protocol: trawl_query::failure.
    // Snapshots from before a protocol's columns have none of its rows.
    let df = trawl_query::failure::with_every_call_column(df)?;
    let no_response = df.parse_sql_expr(trawl_query::failure::NO_RESPONSE_SQL)?;
    let failed_when = df.parse_sql_expr(trawl_query::failure::FAILED_SQL)?;
    let answered = col("response_timestamp").is_not_null();
    let failed = one_if(failed_when)?;
    // Latency of answered calls only: an unanswered call has none.
    let latency = when(answered, col("latency_ms")).end()?;
    // Percentiles: exact (nearest rank, as the investigations compute
    // them) while the calls are few enough to hold, else a t-digest.
    let exact = df.clone().count().await? <= trawl_query::stats::EXACT_LIMIT;
    let pct = |q: f64| approx_percentile_cont(SortExpr::new(latency.clone(), true, false), lit(q), None);
    let mut aggs = vec![
        count(lit(1)).alias("calls"),
        sum(failed).alias("errors"),
        sum(one_if(col("status_code").gt_eq(lit(500)))?).alias("server_errors"),
        sum(one_if(no_response)?).alias("no_response"),
        sum(one_if(col("error").is_not_null())?).alias("incomplete"),
    ];
    if exact {
        aggs.push(array_agg(latency.clone()).alias("latencies"));
    } else {
        aggs.extend([pct(0.5).alias("p50_ms"), pct(0.9).alias("p90_ms"), pct(0.99).alias("p99_ms")]);
    }
    let agg = df
        .aggregate(vec![key.alias("key")], aggs)?
        .sort(vec![SortExpr::new(col("calls"), false, false), SortExpr::new(col("key"), true, false)])?;
    let all = agg.collect().await?;
    let mut groups = rows::rows(&all, 0);
    if exact {
        for g in &mut groups {
            let mut lat: Vec<f64> = g
                .remove("latencies")
                .and_then(|l| l.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()))
                .unwrap_or_default();
            lat.sort_by(f64::total_cmp);
            for (k, q) in [("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)] {
                g.insert(
                    k.into(),
                    if lat.is_empty() { Value::Null } else { json!(trawl_query::stats::percentile_sorted(&lat, q)) },
                );
            }
        }
    }
    let total_calls: u64 = groups.iter().filter_map(|g| g.get("calls").and_then(Value::as_u64)).sum();
    let total_errors: u64 = groups.iter().filter_map(|g| g.get("errors").and_then(Value::as_u64)).sum();
    let n = groups.len();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let out: Vec<Value> = groups
        .into_iter()
        .take(limit)
        .map(|mut g| {
            let calls = g.get("calls").and_then(Value::as_u64).unwrap_or(0);
            let errors = g.get("errors").and_then(Value::as_u64).unwrap_or(0);
            g.insert("error_rate".into(), json!(if calls == 0 { 0.0 } else { round(errors as f64 / calls as f64) }));
            for k in ["p50_ms", "p90_ms", "p99_ms"] {
                if let Some(x) = g.get(k).and_then(Value::as_f64) {
                    g.insert(k.into(), json!(round(x)));
                }
            }
            Value::Object(g)
        })
        .collect();
    let group_by = serde_json::to_value(p.group_by).ok();
    let mut v = json!({
        "group_by": group_by,
        "total_calls": total_calls,
        "total_errors": total_errors,
        "error_rate": if total_calls == 0 { 0.0 } else { round(total_errors as f64 / total_calls as f64) },
        "total_groups": n,
        "truncated": n > limit,
        "groups": out,
        "percentile_method": if exact { trawl_query::stats::EXACT_METHOD } else { trawl_query::stats::APPROX_METHOD },
    });
    if !notes.is_empty() {
        v["notes"] = json!(notes);
    }
    Ok(v)
}
