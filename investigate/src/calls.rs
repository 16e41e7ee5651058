//! The calls of a snapshot as the investigations read them: one struct
//! per `calls` row, with who called whom (workloads where Kubernetes
//! metadata named them, else addresses), what was asked (a key that is
//! equal for identical requests) and whether it failed in its protocol's
//! own terms.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::Expr;
use futures::StreamExt;
use trawl_query::{Catalog, KflQuery, Table};

use crate::Error;

/// One call (a `calls` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `snapshot/id`, as MCP and `trawl query` name calls.
    pub id: String,
    pub start_ns: i64,
    /// The last byte of the response (the start, without a response).
    pub end_ns: i64,
    pub answered: bool,
    /// The client: its workload (`namespace/name`), else its name or address.
    pub client: String,
    pub client_ip: String,
    /// The server: its workload or service, else its name and port.
    pub server: String,
    pub server_ip: String,
    /// The server as a node of the service map: its workload or service,
    /// else its name (without the port, so that it is the same node as
    /// the calls it makes).
    pub server_node: String,
    /// The server address is not private, loopback or link-local.
    pub external: bool,
    pub protocol: String,
    pub method: String,
    pub url: String,
    /// The endpoint: method and path template for HTTP (`GET /orders/{id}`),
    /// the command and its target for the other protocols.
    pub endpoint: String,
    pub status: i64,
    pub error: Option<String>,
    /// Failed in its protocol's terms (HTTP >= 400 or no response, DNS
    /// rcode, gRPC status, GraphQL errors, Redis/database/Kafka/AMQP errors).
    pub failed: bool,
    /// Equal for identical requests: protocol, server, method, URL and body.
    pub request_key: u64,
    /// Equal for identical responses: status and stored body (0 when the
    /// bodies were not read, [`Bodies::None`]).
    pub response_key: u64,
    pub server_port: u16,
    /// The connection (`flows.flow_id`) the call travelled on.
    pub flow_id: u64,
    /// Response header names, lower case.
    pub response_headers: Vec<String>,
    /// The JSON shape of the stored response body, when it is JSON and
    /// was asked for ([`load_with_schemas`]): paths (`$.items[].price`)
    /// and their types.
    pub response_schema: Option<Vec<(String, &'static str)>>,
    pub latency_ms: f64,
    pub authorization: bool,
    /// The request's trace or request id: W3C `traceparent`'s trace id,
    /// B3's (`x-b3-traceid` or `b3`), else `x-request-id`.
    pub trace_id: Option<String>,
}

/// The client, as SQL over the `calls` view (see [`Call::client`]): a
/// workload is `namespace/Kind/name` wherever a tool names one in one
/// string (MCP's get_api_stats groups by these same expressions).
pub const CLIENT: &str =
    "COALESCE(src_pod_namespace || '/' || src_workload, src_pod_namespace || '/' || src_pod_name, src_name)";
/// The server, as SQL (see [`Call::server`]).
pub const SERVER: &str = "COALESCE(dst_pod_namespace || '/' || dst_workload, dst_pod_namespace || '/' || dst_pod_name, dst_service_namespace || '/' || dst_service_name, dst_name || ':' || CAST(dst_port AS VARCHAR))";
/// The server as a node of the service map, as SQL (see
/// [`Call::server_node`]): [`SERVER`] without the port.
pub const SERVER_NODE: &str = "COALESCE(dst_pod_namespace || '/' || dst_workload, dst_pod_namespace || '/' || dst_pod_name, dst_service_namespace || '/' || dst_service_name, dst_name)";
/// The endpoint, as SQL (see [`Call::endpoint`]).
pub(crate) const ENDPOINT: &str = "CASE WHEN protocol IN ('http', 'grpc', 'graphql') THEN COALESCE(endpoint, '') ELSE concat(COALESCE(method, ''), ' ', COALESCE(url, '')) END";

/// Where `response_body` is in [`SELECT`].
const RESPONSE_BODY: usize = 17;

/// Which response bodies a load reads (they are the bulk of a snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    /// None: [`Call::response_key`] is 0, [`Call::response_schema`] None.
    None,
    /// Hashed into [`Call::response_key`].
    Keys,
    /// Hashed, and their JSON shape kept ([`Call::response_schema`]).
    Schemas,
}

/// The SQL expressions of the columns read, in [`Call`]'s order.
const SELECT: &[&str] = &[
    "concat(snapshot, '/', CAST(id AS VARCHAR))",
    "CAST(timestamp AS BIGINT)",
    "CAST(COALESCE(end_timestamp, timestamp) AS BIGINT)",
    "response_timestamp IS NOT NULL",
    CLIENT,
    "src_ip",
    SERVER,
    "dst_ip",
    "protocol",
    "COALESCE(method, '')",
    "COALESCE(url, '')",
    ENDPOINT,
    "CAST(COALESCE(status_code, 0) AS BIGINT)",
    "error",
    // Failure, per protocol (the rule MCP's get_api_stats counts by).
    trawl_query::failure::FAILED_SQL,
    "request_body",
    "array_to_string(map_keys(response_headers), ',')",
    "response_body", // RESPONSE_BODY
    "COALESCE(latency_ms, 0.0)",
    "map_extract(request_headers, 'authorization')[1] IS NOT NULL",
    SERVER_NODE,
    "COALESCE(split_part(map_extract(request_headers, 'traceparent')[1], '-', 2), map_extract(request_headers, 'x-b3-traceid')[1], \
     split_part(map_extract(request_headers, 'b3')[1], '-', 1), map_extract(request_headers, 'x-request-id')[1])",
    "CAST(COALESCE(dst_port, 0) AS BIGINT)",
    "CAST(COALESCE(flow_id, 0) AS BIGINT)",
];

/// Reads the calls a KFL filter selects (all: an empty filter), in
/// capture order, without their response bodies.
pub async fn load(cat: &Catalog, kfl: &str) -> Result<Vec<Call>, Error> {
    load_with(cat, kfl, Bodies::None).await
}

/// [`load`], with the JSON shape of each response body
/// ([`Call::response_schema`], for [`crate::diff`]).
pub async fn load_with_schemas(cat: &Catalog, kfl: &str) -> Result<Vec<Call>, Error> {
    load_with(cat, kfl, Bodies::Schemas).await
}

/// Reads the calls a KFL filter selects, with what of their response
/// bodies `bodies` says.
pub async fn load_with(cat: &Catalog, kfl: &str, bodies: Bodies) -> Result<Vec<Call>, Error> {
    let mut exprs: Vec<&str> = SELECT.to_vec();
    if bodies == Bodies::None {
        // Bodies are the bulk of a snapshot: leave them unread.
        exprs[RESPONSE_BODY] = "CAST(NULL AS BYTEA)";
    }
    let mut out = Vec::new();
    for_each_batch(cat, kfl, &exprs, |b| read_batch(b, bodies, &mut out)).await?;
    out.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Runs SQL expressions over the calls a KFL filter selects and hands
/// each batch of results to `f` as it comes (unordered): a snapshot's
/// bodies never sit in memory all at once.
pub(crate) async fn for_each_batch(
    cat: &Catalog,
    kfl: &str,
    exprs: &[&str],
    mut f: impl FnMut(&RecordBatch) -> Result<(), Error>,
) -> Result<(), Error> {
    let q = KflQuery { table: Table::Calls, filter: kfl.to_string(), ..Default::default() };
    let (df, _) = cat.kfl_filtered(&q).await?;
    // Snapshots from before a protocol was decoded lack its columns.
    let df = trawl_query::failure::with_every_call_column(df)?;
    let exprs: Vec<Expr> = exprs
        .iter()
        .enumerate()
        .map(|(i, s)| df.parse_sql_expr(s).map(|e| e.alias(format!("c{i}"))))
        .collect::<Result<_, _>>()?;
    let mut stream = df.select(exprs)?.execute_stream().await?;
    while let Some(b) = stream.next().await {
        f(&b?)?;
    }
    Ok(())
}

/// Typed reads of a batch's cells (nulls as empty, 0 or false).
pub(crate) struct Cells<'a>(pub &'a RecordBatch);

impl Cells<'_> {
    pub fn text(&self, i: usize, r: usize) -> Result<String, Error> {
        let a = self.0.column(i);
        if a.is_null(r) {
            return Ok(String::new());
        }
        match a.data_type() {
            DataType::Utf8 => Ok(a.as_string::<i32>().value(r).to_string()),
            DataType::Utf8View => Ok(a.as_string_view().value(r).to_string()),
            DataType::LargeUtf8 => Ok(a.as_string::<i64>().value(r).to_string()),
            t => Err(Error::Column(format!("column {i} is {t}, expected text"))),
        }
    }
    pub fn bytes(&self, i: usize, r: usize) -> Option<Vec<u8>> {
        let a = self.0.column(i);
        if a.is_null(r) {
            return None;
        }
        match a.data_type() {
            DataType::Binary => Some(a.as_binary::<i32>().value(r).to_vec()),
            DataType::LargeBinary => Some(a.as_binary::<i64>().value(r).to_vec()),
            DataType::BinaryView => Some(a.as_binary_view().value(r).to_vec()),
            _ => None,
        }
    }
    pub fn int(&self, i: usize, r: usize) -> i64 {
        self.0.column(i).as_primitive_opt::<Int64Type>().filter(|a| !a.is_null(r)).map_or(0, |a| a.value(r))
    }
    pub fn float(&self, i: usize, r: usize) -> f64 {
        self.0.column(i).as_primitive_opt::<Float64Type>().filter(|a| !a.is_null(r)).map_or(0.0, |a| a.value(r))
    }
    pub fn boolean(&self, i: usize, r: usize) -> bool {
        self.0.column(i).as_boolean_opt().filter(|a| !a.is_null(r)).is_some_and(|a| a.value(r))
    }
}

fn read_batch(b: &RecordBatch, bodies: Bodies, out: &mut Vec<Call>) -> Result<(), Error> {
    let cells = Cells(b);
    let s = |i: usize, r: usize| cells.text(i, r);
    let bin = |i: usize, r: usize| cells.bytes(i, r);
    let int = |i: usize, r: usize| cells.int(i, r);
    let boolean = |i: usize, r: usize| cells.boolean(i, r);
    for r in 0..b.num_rows() {
        let (protocol, method, url, server) = (s(8, r)?, s(9, r)?, s(10, r)?, s(6, r)?);
        let body = bin(15, r);
        let mut h = DefaultHasher::new();
        (&protocol, &server, &method, &url, &body).hash(&mut h);
        let server_ip = s(7, r)?;
        let response = bin(RESPONSE_BODY, r);
        let status = int(12, r);
        let response_key = match bodies {
            Bodies::None => 0,
            Bodies::Keys | Bodies::Schemas => {
                let mut h = DefaultHasher::new();
                (status, &response).hash(&mut h);
                h.finish()
            }
        };
        let response_schema = response
            .filter(|_| bodies == Bodies::Schemas)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v.is_object() || v.is_array())
            .map(|v| json_paths(&v));
        out.push(Call {
            id: s(0, r)?,
            start_ns: int(1, r),
            end_ns: int(2, r),
            answered: boolean(3, r),
            client: s(4, r)?,
            client_ip: s(5, r)?,
            external: is_external(&server_ip),
            server,
            server_ip,
            protocol,
            method,
            url,
            endpoint: s(11, r)?,
            status,
            error: Some(s(13, r)?).filter(|e| !e.is_empty()),
            failed: boolean(14, r),
            request_key: h.finish(),
            response_key,
            server_port: u16::try_from(int(22, r)).unwrap_or(0),
            flow_id: u64::try_from(int(23, r)).unwrap_or(0),
            response_headers: s(16, r)?.split(',').filter(|h| !h.is_empty()).map(str::to_ascii_lowercase).collect(),
            response_schema,
            latency_ms: cells.float(18, r),
            authorization: boolean(19, r),
            server_node: s(20, r)?,
            trace_id: Some(s(21, r)?).filter(|t| !t.is_empty()),
        });
    }
    Ok(())
}

fn type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON document's paths (`$.items[].price`) and their types, sorted and
/// unique: 8 levels deep, the first 16 elements of an array, 256 paths.
pub fn json_paths(v: &serde_json::Value) -> Vec<(String, &'static str)> {
    fn walk(
        v: &serde_json::Value,
        at: &str,
        depth: usize,
        out: &mut std::collections::BTreeSet<(String, &'static str)>,
    ) {
        if out.len() >= 256 {
            return;
        }
        out.insert((at.to_string(), type_name(v)));
        if depth >= 8 {
            return;
        }
        match v {
            serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{at}.{k}"), depth + 1, out)),
            serde_json::Value::Array(a) => a.iter().take(16).for_each(|x| walk(x, &format!("{at}[]"), depth + 1, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(v, "$", 0, &mut out);
    out.into_iter().collect()
}

/// Outside private, loopback, link-local and CGNAT ranges.
pub(crate) fn is_external(ip: &str) -> bool {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v)) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        Ok(std::net::IpAddr::V6(v)) => {
            !(v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80)
        }
        Err(_) => false,
    }
}

impl Call {
    /// What a failed call failed with: its status (HTTP, DNS), else its
    /// row error (`no_response`, ...), else `PROTOCOL error`.
    pub fn failure_kind(&self) -> String {
        if self.status >= 400 || (self.status != 0 && self.protocol == "dns") {
            return self.status.to_string();
        }
        self.error.clone().unwrap_or_else(|| format!("{} error", self.protocol))
    }
}

/// Milliseconds between two capture times.
pub fn ms(from_ns: i64, to_ns: i64) -> f64 {
    (to_ns - from_ns) as f64 / 1e6
}

/// The percentile every tool reports (exact, by nearest rank).
pub use trawl_query::stats::percentile;

/// Formats capture time (ns) as RFC 3339 with microseconds.
pub fn rfc3339(ns: i64) -> String {
    trawl_schemas::time::rfc3339(ns)
}
