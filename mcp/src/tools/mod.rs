//! The tools: Kubeshark's names and parameters over trawl's snapshots.
//!
//! Each tool has a parameter struct (its JSON schema is the tool's input
//! schema; doc comments become descriptions) and a handler returning
//! compact JSON or a [`ToolError`]. Unknown parameters are errors that
//! name the accepted ones: a misspelt `filter` for `kfl` must not
//! silently return everything.

mod archive;
mod calls;
mod flows;
mod investigate;
mod sql;
mod workloads;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{Tool, ToolAnnotations};
use rmcp::schemars::JsonSchema;
use rmcp::service::RequestContext;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::budget::{BUDGET_PARAM, DEFAULT_BUDGET, MAX_BUDGET, fit, take_budget};
use crate::error::{ToolError, ToolResult};
use crate::state::Inner;

/// A time: Unix milliseconds, or RFC 3339 text.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(untagged)]
pub enum TimeArg {
    Ms(i64),
    Text(String),
}

impl TimeArg {
    /// Nanoseconds since the epoch; `param` names the parameter in errors.
    pub fn ns(&self, param: &str) -> ToolResult<i64> {
        let text = match self {
            TimeArg::Ms(ms) => ms.to_string(),
            TimeArg::Text(t) => t.clone(),
        };
        trawl_snapshot::window::parse_time(param, &text).map_err(|e| ToolError::new(e.to_string()))
    }
}

/// Optional start and end as ns.
pub fn window(start: &Option<TimeArg>, end: &Option<TimeArg>) -> ToolResult<(Option<i64>, Option<i64>)> {
    let s = start.as_ref().map(|t| t.ns("start")).transpose()?;
    let e = end.as_ref().map(|t| t.ns("end")).transpose()?;
    if let (Some(s), Some(e)) = (s, e)
        && e <= s
    {
        return Err(ToolError::new("end: must be after start"));
    }
    Ok((s, e))
}

/// Row output formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A few fields per row, for scanning many rows.
    #[default]
    Compact,
    /// Every column the snapshot has (bodies cut to previews).
    Full,
}

/// `value` (default `default`) checked against 1..=`max`.
pub fn bounded(param: &str, value: Option<usize>, default: usize, max: usize) -> ToolResult<usize> {
    let v = value.unwrap_or(default);
    if v == 0 || v > max {
        return Err(ToolError::new(format!("{param}: expected 1 to {max}, got {v}")));
    }
    Ok(v)
}

/// Parses a tool's arguments; errors name the tool and what it accepts.
fn parse<P: DeserializeOwned + JsonSchema + 'static>(tool: &str, args: Value) -> ToolResult<P> {
    serde_json::from_value(args).map_err(|e| {
        let schema = schema_for_type::<P>();
        let mut accepted: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        accepted.push(BUDGET_PARAM.to_string());
        accepted.sort();
        let text = e.to_string();
        // serde names the fields it knows, aliases included, but not the
        // budget every tool takes: say it in one list, the aliases apart.
        let Some(rest) = text.strip_prefix("unknown field `") else {
            return ToolError::new(format!("{tool}: {text}")).with("accepted_parameters", json!(accepted));
        };
        let bad = rest.split('`').next().unwrap_or_default().to_string();
        let listed = rest.split_once("expected ").map_or("", |(_, l)| l);
        let aliases: Vec<String> = listed
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| !accepted.iter().any(|a| a == n))
            .map(str::to_string)
            .collect();
        let closest = accepted
            .iter()
            .chain(&aliases)
            .min_by_key(|a| strsim::levenshtein(a, &bad))
            .filter(|a| strsim::levenshtein(a, &bad) <= 2);
        let mut msg = format!("{tool}: unknown parameter `{bad}`; it accepts {}", accepted.join(", "));
        if !aliases.is_empty() {
            msg.push_str(&format!(" (and, as other names of these, {})", aliases.join(", ")));
        }
        if let Some(c) = closest {
            msg.push_str(&format!("; did you mean `{c}`?"));
        }
        let mut err = ToolError::new(msg).with("accepted_parameters", json!(accepted));
        if !aliases.is_empty() {
            err = err.with("aliases", json!(aliases));
        }
        err
    })
}

/// The indexed snapshots a query runs on: the named one, or every
/// indexed snapshot of the workspace (the dataset, when one is served).
pub fn indexed(inner: &Inner, name: Option<&str>) -> ToolResult<Vec<PathBuf>> {
    let data = &inner.config.data;
    match name {
        None if data.dataset.is_some() => Ok(data.dataset_path().into_iter().collect()),
        Some(n) => {
            let p = data.snapshot(n)?;
            if data.dataset_path().as_ref() == Some(&p) {
                return Ok(vec![p]);
            }
            if !p.join(trawl_analyze::MANIFEST).is_file() {
                let state = if inner.jobs.running(n) { "is being dissected now" } else { "is not dissected yet" };
                return Err(ToolError::new(format!(
                    "snapshot `{n}` {state}: its calls and flows exist once start_snapshot_dissection completes"
                ))
                .with("next", "start_snapshot_dissection / get_snapshot_dissection_status"));
            }
            Ok(vec![p])
        }
        None => {
            let list = trawl_snapshot::workspace::list(&data.snapshots)?;
            let dirs: Vec<PathBuf> =
                list.iter().filter(|e| e.state != "raw").map(|e| data.snapshots.join(&e.name)).collect();
            if dirs.is_empty() {
                let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
                return Err(ToolError::new(
                    "no dissected snapshot yet: create_snapshot, then start_snapshot_dissection",
                )
                .with("known_snapshots", json!(names)));
            }
            Ok(dirs)
        }
    }
}

/// A page of rows: `{total, offset, returned, truncated, next_offset, KEY: rows, notes}`.
pub fn page(key: &str, rows: Vec<Value>, total: usize, offset: usize, notes: Vec<String>) -> Value {
    let returned = rows.len();
    let end = offset + returned;
    let mut v = json!({"total": total, "offset": offset, "returned": returned, "truncated": end < total});
    v[key] = Value::Array(rows);
    if end < total {
        v["next_offset"] = json!(end);
    }
    if !notes.is_empty() {
        v["notes"] = json!(notes);
    }
    v
}

/// The columns of `table` a compact row is made of: `fixed` ones, and
/// every `src_*`/`dst_*` column (the endpoint objects).
pub async fn compact_columns(cat: &trawl_query::Catalog, table: &str, fixed: &[&str]) -> ToolResult<Vec<String>> {
    let df = cat.context().table(table).await?;
    Ok(df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|f| fixed.contains(&f.as_str()) || f.starts_with("src_") || f.starts_with("dst_"))
        .collect())
}

/// Runs blocking work (file reads, cuts, exports) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ToolResult<T> + Send + 'static) -> ToolResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// A tool's result, on its way.
type Pending<'a> = Pin<Box<dyn Future<Output = ToolResult> + Send + 'a>>;

/// A tool: its name (written here only), description, input schema,
/// annotations and handler.
struct Def {
    name: &'static str,
    description: &'static str,
    schema: fn() -> Arc<rmcp::model::JsonObject>,
    read_only: bool,
    destructive: bool,
    run: for<'a> fn(&'a Arc<Inner>, Value, &'a RequestContext<RoleServer>) -> Pending<'a>,
    /// Decodes the arguments as `run` does, and stops there.
    decode: fn(Value) -> ToolResult<()>,
}

/// One row of the tool table: the parameter struct parses the arguments
/// (its schema is the tool's input schema) and the handler gets them.
macro_rules! tool {
    ($name:literal, $params:ty, $ro:expr, $destructive:expr, $desc:expr, $handler:expr) => {
        Def {
            name: $name,
            description: $desc,
            schema: schema_for_type::<$params>,
            read_only: $ro,
            destructive: $destructive,
            run: |inner, args, ctx| {
                Box::pin(async move {
                    let p: $params = parse($name, args)?;
                    ($handler)(inner, p, ctx).await
                })
            },
            decode: |args| parse::<$params>($name, args).map(|_| ()),
        }
    };
}

const DEFS: &[Def] = &[
    tool!(
        "get_data_boundaries",
        archive::NoParams,
        true,
        false,
        "Time range of the raw capture (PCAP archive) per node and overall: what create_snapshot can cut. Unix ms and RFC 3339.",
        |i, p, _| archive::data_boundaries(i, p)
    ),
    tool!(
        "get_l7_data_boundaries",
        archive::NoParams,
        true,
        false,
        "Time range of the dissected data (API calls and flows) per snapshot: the window list_api_calls can query.",
        |i, p, _| archive::l7_boundaries(i, p)
    ),
    tool!(
        "create_snapshot",
        archive::CreateSnapshot,
        false,
        false,
        "Cut a time window (optionally some nodes or workloads) of the archive into a named, immutable snapshot. Then call start_snapshot_dissection.",
        |i, p, _| archive::create_snapshot(i, p)
    ),
    tool!(
        "get_snapshot",
        archive::SnapshotId,
        true,
        false,
        "A snapshot's state (raw, dissecting, indexed), window, nodes, packets, size and table rows.",
        |i, p, _| archive::get_snapshot(i, p)
    ),
    tool!(
        "list_snapshots",
        archive::NoParams,
        true,
        false,
        "Every snapshot of the workspace with its state, window, nodes and size.",
        |i, p, _| { archive::list_snapshots(i, p) }
    ),
    tool!(
        "delete_snapshot",
        archive::SnapshotId,
        false,
        true,
        "Delete a snapshot and its indexes. Cannot be undone.",
        |i, p, _| archive::delete_snapshot(i, p)
    ),
    tool!(
        "start_snapshot_dissection",
        archive::StartDissection,
        false,
        false,
        "Index a snapshot in the background: reassemble TCP, parse L7 and write its calls and flows. Sends progress while wait_seconds lasts; poll get_snapshot_dissection_status after.",
        archive::start_dissection
    ),
    tool!(
        "get_snapshot_dissection_status",
        archive::SnapshotId,
        true,
        false,
        "Progress (0-100) and stats of a snapshot's dissection.",
        |i, p, _| { archive::dissection_status(i, p) }
    ),
    tool!(
        "list_snapshot_dissections",
        archive::ListDissections,
        true,
        false,
        "Dissection status of every snapshot (or one).",
        |i, p, _| { archive::list_dissections(i, p) }
    ),
    tool!(
        "list_api_calls",
        calls::ListCalls,
        true,
        false,
        "List API calls matching a KFL filter (e.g. `http && status_code >= 500`), oldest first by request time (order: id for completion order), paged by limit/offset. Returns total, truncated and next_offset; compact rows name Kubernetes peers once, in the page's `names` legend.",
        |i, p, _| calls::list_calls(i, p)
    ),
    tool!(
        "get_api_call_details",
        calls::CallDetails,
        true,
        false,
        "One API call in full: every field, headers, request and response bodies up to max_payload_size, its L4 flow, and optionally a PCAP of its connection.",
        |i, p, _| calls::call_details(i, p)
    ),
    tool!(
        "get_api_stats",
        calls::ApiStats,
        true,
        false,
        "Counts, error rate and latency p50/p90/p99 of the calls matching a KFL filter, grouped by endpoint, status, src, dst or protocol. \
errors: HTTP status_code >= 400 or no response; DNS rcode != 0 or no answer; a non-OK gRPC status; GraphQL errors; Redis error replies; database errors; \
Kafka error codes; AMQP reply codes above 200; for other protocols, no answer where one was due. incomplete: calls with `error` set (malformed or cut short). \
Percentiles are exact by nearest rank (the latency of a real call; the same as get_service_map's) up to 100000 calls, t-digest estimates above (percentile_method says which).",
        |i, p, _| calls::api_stats(i, p)
    ),
    tool!(
        "list_l4_flows",
        flows::ListFlows,
        true,
        false,
        "List TCP/UDP/ICMP connections with packets, bytes, state and TCP expert metrics (tcp_metrics: retransmissions, dup ACKs, zero windows, RTTs, completeness...), or with group=peers one row per peer pair with handshake p50/p90/p99; filtered by KFL (e.g. `retransmission_rate > 0.01`), protocol, IP, or an end's namespace, pod or service, paged by limit/offset.",
        |i, p, _| flows::list_flows(i, p)
    ),
    tool!(
        "get_l4_flow_summary",
        flows::FlowSummary,
        true,
        false,
        "Connectivity overview: flow counts per protocol and state, bytes, unique clients and servers, TCP health (retransmissions, zero windows, refused connections, handshake p50/p99, and the packets the capture itself dropped, which look like network loss), top talkers by bytes and packets.",
        |i, p, _| flows::flow_summary(i, p)
    ),
    tool!(
        "list_workloads",
        workloads::ListWorkloads,
        true,
        false,
        "Pods, services and nodes the Kubernetes sidecars (archive or snapshot) name: namespace, workload, node, labels, and each IP with the span it was held (from_ts/until_ts). Calls and flows already carry these names per side.",
        |i, p, _| workloads::list_workloads(i, p)
    ),
    tool!(
        "list_ips",
        workloads::ListIps,
        true,
        false,
        "Addresses and what held each one when (pod, service or node, with from_ts/until_ts): an address reused by a new pod shows both holders.",
        |i, p, _| workloads::list_ips(i, p)
    ),
    tool!(
        "export_snapshot_pcap",
        flows::ExportPcap,
        false,
        false,
        "Write a pcapng of a snapshot's packets (the connections of a KFL filter, a BPF filter, nodes, a time range) under the data folder's exports/. Returns path, size and packet count.",
        |i, p, _| flows::export_pcap(i, p)
    ),
    tool!(
        "get_service_map",
        investigate::ServiceMap,
        true,
        false,
        "Who calls whom: nodes are workloads, services, external domains or addresses; edges carry calls, error rate, p50/p99 latency and protocols. With focus: a service's callers, callees and blast radius. JSON, Mermaid or Graphviz dot.",
        |i, p, _| investigate::service_map(i, p)
    ),
    tool!(
        "find_retries",
        investigate::Investigate,
        true,
        false,
        "Retry chains: the same request sent again by the same client after failures, with attempts, outcomes, waits between attempts (ms) and the backoff they follow (constant, linear, exponential).",
        |i, p, _| investigate::find_retries(i, p)
    ),
    tool!(
        "find_redundant_calls",
        investigate::Investigate,
        true,
        false,
        "Redundant calls: the same downstream request (SQL, Redis key, HTTP call) repeated inside one inbound request (scope within_request: N+1 queries), or the same read with the same response made for several inbound requests within 60 s (scope across_requests: a cache that never hits), with the calls, the count and the saving a cache would give.",
        |i, p, _| investigate::find_redundant_calls(i, p)
    ),
    tool!(
        "get_incident_timeline",
        investigate::Timeline,
        true,
        false,
        "What happened when: the failures of each kind per endpoint in the order they came back (first_failed_at, and first_request_at when it was sent), what caused each (caused_by: a failing or abandoned downstream call), calls their caller gave up on (abandoned_by_caller; looks_like_timeout with timeout_ms when each waited the same), the origin of each cascade (origins), and the time buckets where an endpoint failed or slowed beyond its own baseline.",
        |i, p, _| investigate::incident_timeline(i, p)
    ),
    tool!(
        "security_audit",
        investigate::Audit,
        true,
        false,
        "Security findings: calls without Authorization to endpoints that usually have it, one credential sent to several services or outside, card numbers (Luhn-checked), SSNs, JWTs, API and private keys in URLs and bodies, plaintext HTTP across namespaces, external egress by domain (DNS, SNI), weak TLS. Secrets are redacted unless show_secrets.",
        |i, p, _| investigate::security_audit(i, p)
    ),
    tool!(
        "trace_api_call",
        investigate::Trace,
        true,
        false,
        "The request chain of one inbound call: the calls its server made for it (linked by traceparent, b3 or x-request-id, else by timing when only one request was in flight), and theirs in turn, with offsets, durations and statuses. A downstream call has one parent at most: calls made while several requests were in flight and no id tells which are listed apart under `ambiguous` (with candidate_parents and confidence), not followed.",
        |i, p, _| investigate::trace_call(i, p)
    ),
    tool!(
        "diff_snapshots",
        investigate::Diff,
        true,
        false,
        "Regression verification of a candidate snapshot against a baseline, per endpoint: missing and new endpoints, new and resolved errors, latency up or down, changed, added or vanished downstream calls, removed response headers, JSON response schema changes, new and removed external destinations. Each finding has a direction (worse, better, neutral); verdict fails only on worse.",
        |i, p, _| investigate::diff_snapshots(i, p)
    ),
    tool!(
        "run_sql",
        sql::RunSql,
        true,
        false,
        "Read-only SQL (DataFusion) over tables api_calls, flows, packets, parse_issues and views calls, http, tcp, udp, icmp, l4_flows. Row and time limits apply.",
        |i, p, _| sql::run_sql(i, p)
    ),
];

/// The tool list (`delete_snapshot` only when destructive tools are allowed).
pub fn definitions(allow_destructive: bool) -> Vec<Tool> {
    DEFS.iter()
        .filter(|d| allow_destructive || !d.destructive)
        .map(|d| {
            let mut a = ToolAnnotations::new().read_only(d.read_only).open_world(false);
            if !d.read_only {
                a = a.destructive(d.destructive);
            }
            // The parameter struct's own title and doc comment repeat the
            // tool description: leave them out of what the agent reads.
            let mut schema = (d.schema)().as_ref().clone();
            schema.remove("title");
            schema.remove("description");
            let props = schema.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = props.as_object_mut() {
                p.insert(
                    BUDGET_PARAM.into(),
                    json!({"type": "integer", "minimum": 1000, "maximum": MAX_BUDGET, "description": format!(
                        "Most characters of the result (default {DEFAULT_BUDGET}, at most {MAX_BUDGET}). Beyond it rows are left out from the end \
                    (truncated and result_truncated say so; next_offset continues a page) and long texts are cut."
                    )}),
                );
            }
            Tool::new(d.name, d.description, Arc::new(schema)).with_annotations(a)
        })
        .collect()
}

/// Decodes a call's arguments as the tool `name` would (the budget
/// parameter, then the tool's own), without running it: what the
/// `mcp_arguments` fuzz target drives with any JSON.
pub fn decode_arguments(name: &str, mut args: Value) -> ToolResult<()> {
    take_budget(&mut args)?;
    match DEFS.iter().find(|d| d.name == name) {
        Some(d) => (d.decode)(args),
        None => Err(ToolError::new(format!("no tool named `{name}`"))),
    }
}

/// Every tool's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    DEFS.iter().map(|d| d.name)
}

/// Runs one tool, its result cut to the client's budget ([`fit`]).
/// Whether a tool runs queries over snapshot tables (and so waits for a
/// turn when the server is busy): all but those that read folders and
/// manifests or start background work.
pub fn runs_queries(name: &str) -> bool {
    !matches!(
        name,
        "get_data_boundaries"
            | "create_snapshot"
            | "get_snapshot"
            | "list_snapshots"
            | "delete_snapshot"
            | "start_snapshot_dissection"
            | "get_snapshot_dissection_status"
            | "list_snapshot_dissections"
    )
}

pub async fn call(inner: &Arc<Inner>, name: &str, mut args: Value, ctx: &RequestContext<RoleServer>) -> ToolResult {
    let budget = take_budget(&mut args)?;
    let mut v = run(inner, name, args, ctx).await?;
    if let Some(r) = &inner.redactor {
        r.json(&mut v);
    }
    fit(&mut v, budget);
    Ok(v)
}

async fn run(inner: &Arc<Inner>, name: &str, args: Value, ctx: &RequestContext<RoleServer>) -> ToolResult {
    let allowed = |d: &&Def| inner.config.allow_destructive || !d.destructive;
    match DEFS.iter().find(|d| d.name == name) {
        Some(d) if allowed(&d) => (d.run)(inner, args, ctx).await,
        Some(d) => Err(ToolError::new(format!(
            "{} is disabled: start trawl mcp with --allow-destructive to enable it",
            d.name
        ))),
        None => {
            let known: Vec<&str> = DEFS.iter().filter(allowed).map(|d| d.name).collect();
            Err(ToolError::new(format!("no tool named `{name}`")).with("known_tools", json!(known)))
        }
    }
}

/// A parameter's type for people, from its JSON schema.
fn type_text(p: &Value, defs: &Value) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let d = &defs[r.trim_start_matches("#/$defs/")];
        if let Some(consts) = d.get("oneOf").and_then(Value::as_array) {
            return consts
                .iter()
                .filter_map(|c| c["const"].as_str())
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
        if let Some(e) = d.get("enum").and_then(Value::as_array) {
            return e.iter().filter_map(Value::as_str).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" \\| ");
        }
        if d.get("anyOf").is_some() {
            return "time".into();
        }
        return "object".into();
    }
    if let Some(any) = p.get("anyOf").and_then(Value::as_array) {
        return any.iter().filter(|a| a["type"] != "null").map(|a| type_text(a, defs)).collect::<Vec<_>>().join(" or ");
    }
    let types: Vec<&str> = match &p["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec!["any"],
    };
    types
        .iter()
        .map(|t| match *t {
            "array" => format!("array of {}", type_text(&p["items"], defs)),
            "object" => "object of strings".to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The tool reference of docs/mcp.md: every tool, its annotations and
/// parameters, from the same definitions `tools/list` serves.
pub fn markdown() -> String {
    let mut out = String::new();
    for t in definitions(true) {
        let ro = t.annotations.as_ref().and_then(|a| a.read_only_hint).unwrap_or(false);
        let destructive = t.annotations.as_ref().and_then(|a| a.destructive_hint).unwrap_or(false);
        let kind = if destructive {
            "destructive, only with `--allow-destructive`"
        } else if ro {
            "read-only"
        } else {
            "writes inside the data folder"
        };
        out.push_str(&format!("### `{}`\n\n{} ({kind})\n\n", t.name, t.description.as_deref().unwrap_or("")));
        let schema = Value::Object(t.input_schema.as_ref().clone());
        let required: Vec<&str> =
            schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        match schema["properties"].as_object() {
            Some(props) if !props.is_empty() => {
                out.push_str("| parameter | type | |\n|---|---|---|\n");
                for (name, p) in props {
                    let req = if required.contains(&name.as_str()) { " (required)" } else { "" };
                    let desc = p["description"].as_str().unwrap_or("").replace('|', "\\|");
                    out.push_str(&format!("| `{name}`{req} | {} | {desc} |\n", type_text(p, &schema["$defs"])));
                }
                out.push('\n');
            }
            _ => out.push_str("No parameters.\n\n"),
        }
    }
    out
}
