//! The investigations (trawl-investigate) as tools: the service map,
//! retries, redundant calls, the incident timeline and the regression
//! diff of two snapshots.

use std::sync::Arc;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_investigate::calls::{self, Call};
use trawl_investigate::parents::Parents;
use trawl_investigate::{audit, diff, map, redundant, retries, timeline, trace};

use super::indexed;
use crate::error::{ToolError, ToolResult};
use crate::state::Inner;

/// One snapshot and the calls to look at.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct Investigate {
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
    /// KFL filter of the calls to look at (default: all).
    #[serde(default)]
    pub kfl: String,
}

/// get_service_map's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ServiceMap {
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
    /// KFL filter of the calls drawn (default: all).
    #[serde(default)]
    pub kfl: String,
    /// A node: only its edges, with its callers, callees and blast radius (the nodes whose calls reach it).
    pub focus: Option<String>,
    /// `json` (default), or the graph as `mermaid`, `dot` or `svg` text.
    #[serde(default)]
    pub format: MapFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum MapFormat {
    #[default]
    Json,
    Mermaid,
    Dot,
    Svg,
}

/// get_incident_timeline's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
    /// KFL filter of the calls to look at (default: all).
    #[serde(default)]
    pub kfl: String,
    /// Bucket size in seconds (default: about 60 buckets, at least 1 s).
    pub bucket_seconds: Option<f64>,
    /// Return every bucket, not only the anomalous ones (default false).
    #[serde(default)]
    pub all_buckets: bool,
}

/// security_audit's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Snapshot (default: every dissected snapshot).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
    /// KFL filter of the calls audited (default: all).
    #[serde(default)]
    pub kfl: String,
    /// Return secrets unredacted (default false: first and last 4 characters only).
    #[serde(default)]
    pub show_secrets: bool,
}

/// trace_api_call's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// The inbound call, `snapshot/id` as list_api_calls returns it.
    #[serde(alias = "call_id")]
    pub id: String,
}

/// diff_snapshots' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct Diff {
    /// The snapshot that behaved as expected.
    pub baseline: String,
    /// The snapshot to verify.
    pub candidate: String,
    /// KFL filter applied to both (default: all calls).
    #[serde(default)]
    pub kfl: String,
    /// Latency growth in percent that is a regression (default 50)...
    pub latency_pct: Option<f64>,
    /// ...when also more than this many ms (default 20).
    pub latency_min_ms: Option<f64>,
}

async fn load(inner: &Arc<Inner>, snapshot: Option<&str>, kfl: &str) -> ToolResult<Vec<Call>> {
    load_calls(inner, snapshot, kfl, calls::Bodies::None).await
}

async fn load_calls(
    inner: &Arc<Inner>,
    snapshot: Option<&str>,
    kfl: &str,
    bodies: calls::Bodies,
) -> ToolResult<Vec<Call>> {
    let snaps = indexed(inner, snapshot)?;
    let cat = inner.catalog(&snaps).await?;
    Ok(calls::load_with(&cat.catalog, kfl, bodies).await?)
}

pub async fn service_map(inner: &Arc<Inner>, p: ServiceMap) -> ToolResult {
    let calls = load(inner, p.snapshot_id.as_deref(), &p.kfl).await?;
    let (m, focus) = match &p.focus {
        None => (map::build(&calls), None),
        Some(f) => {
            let (m, focus) = map::focused(map::build(&calls), f).map_err(|nodes| {
                ToolError::new(format!("focus: `{f}` is not a node of the map")).with("nodes", json!(nodes))
            })?;
            (m, Some(focus))
        }
    };
    Ok(match p.format {
        MapFormat::Json => m.to_json(focus.as_ref()),
        MapFormat::Mermaid => json!({ "mermaid": m.to_mermaid() }),
        MapFormat::Dot => json!({ "dot": m.to_dot() }),
        MapFormat::Svg => json!({ "svg": m.to_svg() }),
    })
}

pub async fn find_retries(inner: &Arc<Inner>, p: Investigate) -> ToolResult {
    let calls = load(inner, p.snapshot_id.as_deref(), &p.kfl).await?;
    let found = retries::find(&calls, retries::Settings::default());
    Ok(json!({ "retry_chains": found.iter().map(retries::Retry::to_json).collect::<Vec<_>>(), "count": found.len() }))
}

pub async fn find_redundant_calls(inner: &Arc<Inner>, p: Investigate) -> ToolResult {
    let calls = load_calls(inner, p.snapshot_id.as_deref(), &p.kfl, calls::Bodies::Keys).await?;
    let parents = Parents::new(&calls);
    let found = redundant::find(&calls, &parents, redundant::Settings::default());
    Ok(
        json!({ "redundant": found.iter().map(redundant::Redundant::to_json).collect::<Vec<_>>(), "count": found.len() }),
    )
}

pub async fn incident_timeline(inner: &Arc<Inner>, p: Timeline) -> ToolResult {
    let bucket_ns = match p.bucket_seconds {
        Some(s) if s.is_finite() && s > 0.0 => Some((s * 1e9) as i64),
        Some(s) => return Err(ToolError::new(format!("bucket_seconds: expected a positive number, got {s}"))),
        None => None,
    };
    let calls = load(inner, p.snapshot_id.as_deref(), &p.kfl).await?;
    let bucket_ns =
        timeline::check_bucket(&calls, bucket_ns).map_err(|e| ToolError::new(format!("bucket_seconds: {e}")))?;
    let parents = Parents::new(&calls);
    let mut t = timeline::build(&calls, &parents, bucket_ns);
    if !p.all_buckets {
        t.buckets.retain(|b| b.anomalous);
    }
    Ok(t.to_json())
}

pub async fn security_audit(inner: &Arc<Inner>, p: Audit) -> ToolResult {
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    // A redacting server shows no secret, whatever the agent asks.
    let show = p.show_secrets && inner.redactor.is_none();
    let found = audit::run(&cat.catalog, &p.kfl, show).await?;
    Ok(
        json!({ "findings": found.iter().map(audit::Finding::to_json).collect::<Vec<_>>(), "count": found.len(), "redacted": !show }),
    )
}

pub async fn trace_call(inner: &Arc<Inner>, p: Trace) -> ToolResult {
    crate::rows::refuse_flow_id("id", &p.id)?;
    let Some((snapshot, _)) = p.id.rsplit_once('/') else {
        return Err(ToolError::new(format!("id: expected `snapshot/id` as list_api_calls returns it, got `{}`", p.id)));
    };
    let calls = load(inner, Some(snapshot), "").await?;
    let root =
        calls.iter().position(|c| c.id == p.id).ok_or_else(|| ToolError::new(format!("id: no call `{}`", p.id)))?;
    let parents = Parents::new(&calls);
    Ok(trace::to_json(&calls, &trace::chain(&calls, &parents, root)))
}

pub async fn diff_snapshots(inner: &Arc<Inner>, p: Diff) -> ToolResult {
    let base = load_calls(inner, Some(&p.baseline), &p.kfl, calls::Bodies::Schemas).await?;
    let new = load_calls(inner, Some(&p.candidate), &p.kfl, calls::Bodies::Schemas).await?;
    let d = diff::Settings::default();
    let s = diff::Settings {
        latency_pct: p.latency_pct.unwrap_or(d.latency_pct),
        latency_min_ms: p.latency_min_ms.unwrap_or(d.latency_min_ms),
    };
    let mut v: Value = diff::compare(&base, &new, s).to_json();
    v["baseline"] = json!(p.baseline);
    v["candidate"] = json!(p.candidate);
    Ok(v)
}
