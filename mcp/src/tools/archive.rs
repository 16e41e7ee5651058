//! The archive, snapshots and their dissection.

use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::ProgressNotificationParam;
use rmcp::schemars::JsonSchema;
use rmcp::service::RequestContext;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_snapshot::archive::Archive;
use trawl_snapshot::create::CutSpec;
use trawl_snapshot::window::Window;

use super::{TimeArg, blocking};
use crate::error::{ToolError, ToolResult};
use crate::jobs::StartError;
use crate::state::Inner;

/// No parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A snapshot by name.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct SnapshotId {
    /// Snapshot name (see list_snapshots).
    #[serde(alias = "snapshot_id", alias = "snapshot", alias = "name")]
    pub id: String,
}

/// Which pods' traffic a snapshot keeps.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct WorkloadFilter {
    /// Keep packets with a peer in one of these namespaces (pods, and services' cluster IPs).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Keep packets with a peer whose pod name matches this regular expression.
    pub pod_regex: Option<String>,
}

/// create_snapshot's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// New snapshot name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Window start, Unix ms or RFC 3339 (default: the archive's first packet).
    pub start: Option<TimeArg>,
    /// Window end, exclusive (default: after the last packet).
    pub end: Option<TimeArg>,
    /// Window length such as `15m`, `1h`, `90s`: after start if given, else the archive's last duration.
    pub duration: Option<String>,
    /// Only these nodes (default: all; see get_data_boundaries).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Only packets of some workloads (needs Kubernetes sidecars in the archive).
    pub workload_filter: Option<WorkloadFilter>,
    /// Start its dissection right away (default false).
    #[serde(default)]
    pub dissect: bool,
}

/// start_snapshot_dissection's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct StartDissection {
    /// Snapshot name.
    #[serde(alias = "id", alias = "snapshot")]
    pub snapshot_id: String,
    /// Dissect again even if already indexed.
    #[serde(default)]
    pub force: bool,
    /// Wait up to this many seconds (0-600, default 0) for the dissection, sending progress notifications.
    pub wait_seconds: Option<f64>,
}

/// list_snapshot_dissections' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListDissections {
    /// Only this snapshot.
    #[serde(alias = "snapshot_id", alias = "id")]
    pub snapshot: Option<String>,
}

fn ms(ns: Option<i64>) -> Value {
    ns.map_or(Value::Null, |n| json!(crate::rows::unix_ms(n)))
}

fn open_archive(inner: &Inner) -> ToolResult<Archive> {
    let a = &inner.config.data.archive;
    if !a.is_dir() {
        return Err(ToolError::new(format!(
            "no capture archive at {}: put captures there (one folder per node), or start trawl mcp with --archive DIR",
            a.display()
        )));
    }
    Ok(Archive::open(a)?)
}

pub async fn data_boundaries(inner: &Arc<Inner>, _: NoParams) -> ToolResult {
    let inner = inner.clone();
    blocking(move || {
        let b = open_archive(&inner)?.boundaries();
        let nodes: Vec<Value> = b
            .nodes
            .iter()
            .map(|n| {
                let mut v = json!({"name": n.name, "oldest_ts": ms(n.oldest_ns), "newest_ts": ms(n.newest_ns), "oldest": n.oldest, "newest": n.newest,
                    "files": n.files, "bytes": n.bytes, "sidecars": n.sidecars});
                if !n.damaged_files.is_empty() {
                    v["damaged_files"] = json!(n.damaged_files);
                }
                if !n.unreadable_files.is_empty() {
                    v["unreadable_files"] = json!(n.unreadable_files);
                }
                if let Some(d) = n.dropped {
                    v["capture_dropped_packets"] = json!(d);
                    if d > 0 {
                        v["files_with_drops"] = json!(n.files_with_drops);
                    }
                }
                v
            })
            .collect();
        Ok(json!({"cluster": {"oldest_ts": ms(b.oldest_ns), "newest_ts": ms(b.newest_ns), "oldest": b.oldest, "newest": b.newest}, "nodes": nodes}))
    })
    .await
}

pub async fn l7_boundaries(inner: &Arc<Inner>, _: NoParams) -> ToolResult {
    let inner = inner.clone();
    blocking(move || {
        let list = trawl_snapshot::workspace::list(&inner.config.data.snapshots)?;
        let mut snaps = Vec::new();
        let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
        let mut dissecting = Vec::new();
        for e in &list {
            if inner.jobs.running(&e.name) {
                dissecting.push(e.name.clone());
            }
            if e.state == "raw" {
                continue;
            }
            let show = trawl_snapshot::workspace::show(&inner.config.data.snapshots.join(&e.name))?;
            let t = |k: &str| show.get(k).and_then(Value::as_str).and_then(trawl_schemas::time::parse_rfc3339);
            let (first, last) = (t("first_timestamp"), t("last_timestamp"));
            lo = match (lo, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            hi = match (hi, last) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let rows = |t: &str| show["tables"][t]["rows"].as_u64().unwrap_or(0);
            snaps.push(
                json!({"name": e.name, "oldest_ts": ms(first), "newest_ts": ms(last), "oldest": show["first_timestamp"], "newest": show["last_timestamp"],
                "api_calls": rows("api_calls"), "flows": rows("flows")}),
            );
        }
        Ok(json!({"dissection_enabled": true, "cluster": {"oldest_ts": ms(lo), "newest_ts": ms(hi)}, "snapshots": snaps, "dissecting": dissecting}))
    })
    .await
}

pub async fn create_snapshot(inner: &Arc<Inner>, p: CreateSnapshot) -> ToolResult {
    let inner2 = inner.clone();
    let out = inner.config.data.new_snapshot(&p.name)?;
    let (start, end) = super::window(&p.start, &p.end)?;
    let duration = p
        .duration
        .as_deref()
        .map(|d| {
            trawl_schemas::time::parse_duration(d).filter(|n| *n > 0).ok_or_else(|| {
                ToolError::new(format!("duration: expected a positive duration such as 15m, 1h or 90s, got `{d}`"))
            })
        })
        .transpose()?;
    let name = p.name.clone();
    let meta = blocking(move || {
        let archive = open_archive(&inner2)?;
        let (lo, hi) = (archive.first_ns(), archive.last_ns().map(|n| n.saturating_add(1)));
        let window = match (start, end, duration) {
            (Some(_), Some(_), Some(_)) => return Err(ToolError::new("give at most two of start, end and duration")),
            (Some(s), None, Some(d)) => Window { start_ns: s, end_ns: s.saturating_add(d) },
            (None, Some(e), Some(d)) => Window { start_ns: e.saturating_sub(d), end_ns: e },
            (None, None, Some(d)) => {
                let hi = hi.ok_or_else(|| ToolError::new("the archive holds no packets"))?;
                Window { start_ns: hi.saturating_sub(d), end_ns: hi }
            }
            (s, e, None) => Window { start_ns: s.or(lo).unwrap_or(i64::MIN), end_ns: e.or(hi).unwrap_or(i64::MAX) },
        };
        if window.end_ns <= window.start_ns {
            return Err(ToolError::new("the window is empty: end is not after start"));
        }
        let wf = p.workload_filter.unwrap_or(WorkloadFilter { namespaces: Vec::new(), pod_regex: None });
        let spec = CutSpec { window, nodes: p.nodes, namespaces: wf.namespaces, pod_regex: wf.pod_regex };
        let meta = trawl_snapshot::create::create(&archive, &spec, &out, &Default::default())?;
        let empty = meta.nodes.iter().all(|n| n.packets == 0);
        let b = archive.boundaries();
        Ok((meta, empty, b.oldest, b.newest))
    })
    .await?;
    let (meta, empty, oldest, newest) = meta;
    let mut v = json!({
        "success": true,
        "name": name,
        "status": "completed",
        "state": "raw",
        "start": meta.window.start,
        "end": meta.window.end,
        "packet_count": meta.nodes.iter().map(|n| n.packets).sum::<u64>(),
        "size_bytes": meta.nodes.iter().map(|n| n.bytes).sum::<u64>(),
        "nodes": meta.nodes.iter().map(|n| json!({"name": n.name, "packets": n.packets, "bytes": n.bytes, "first": n.first, "last": n.last})).collect::<Vec<_>>(),
        "next": "start_snapshot_dissection",
    });
    let unreadable: Vec<&String> = meta.nodes.iter().flat_map(|n| n.unreadable_files.iter()).collect();
    if !unreadable.is_empty() {
        v["unreadable_files"] = json!(unreadable);
    }
    if empty {
        v["warning"] = json!(format!(
            "the window holds no packets; the archive spans {} .. {}",
            oldest.unwrap_or_default(),
            newest.unwrap_or_default()
        ));
    } else if !unreadable.is_empty() {
        v["warning"] = json!(format!(
            "{} file(s) are not readable captures and were skipped (unreadable_files says why)",
            unreadable.len()
        ));
    }
    if p.dissect {
        let snap = inner.config.data.snapshot(&name)?;
        start_job(inner, &name, &snap, false)?;
        v["dissection"] = inner.jobs.status(&name, &snap);
        v["next"] = json!("get_snapshot_dissection_status");
    }
    Ok(v)
}

pub async fn get_snapshot(inner: &Arc<Inner>, p: SnapshotId) -> ToolResult {
    let snap = inner.config.data.snapshot(&p.id)?;
    let inner = inner.clone();
    blocking(move || {
        let show = trawl_snapshot::workspace::show(&snap)?;
        let cut = &show["cut"];
        let nodes = cut["nodes"].as_array().cloned().unwrap_or_default();
        let packets: u64 = nodes.iter().filter_map(|n| n["packets"].as_u64()).sum();
        let state = if inner.jobs.running(&p.id) { "dissecting" } else { show["state"].as_str().unwrap_or("raw") };
        let rows = |t: &str| show["tables"][t]["rows"].clone();
        Ok(json!({
            "name": p.id,
            "status": "completed",
            "state": state,
            "size_bytes": show["bytes"],
            "start": cut["window"]["start"],
            "end": cut["window"]["end"],
            "node_count": nodes.len(),
            "nodes": nodes.iter().map(|n| json!({"name": n["name"], "packets": n["packets"], "bytes": n["bytes"]})).collect::<Vec<_>>(),
            "packet_count": packets,
            "filter": cut["filter"],
            "first_timestamp": show["first_timestamp"],
            "last_timestamp": show["last_timestamp"],
            "tables": {"api_calls": rows("api_calls"), "flows": rows("flows"), "packets": rows("packets"), "parse_issues": rows("parse_issues")},
            "dissection": inner.jobs.status(&p.id, &snap),
        }))
    })
    .await
}

pub async fn list_snapshots(inner: &Arc<Inner>, _: NoParams) -> ToolResult {
    let inner = inner.clone();
    blocking(move || {
        let list = trawl_snapshot::workspace::list(&inner.config.data.snapshots)?;
        let snaps: Vec<Value> = list
            .iter()
            .map(|e| {
                let state = if inner.jobs.running(&e.name) { "dissecting" } else { e.state };
                json!({"name": e.name, "state": state, "start": e.start, "end": e.end, "nodes": e.nodes, "size_bytes": e.bytes})
            })
            .collect();
        Ok(json!({"snapshots": snaps, "total": snaps.len()}))
    })
    .await
}

pub async fn delete_snapshot(inner: &Arc<Inner>, p: SnapshotId) -> ToolResult {
    let snap = inner.config.data.snapshot(&p.id)?;
    if inner.jobs.running(&p.id) {
        return Err(ToolError::new(format!(
            "snapshot `{}` is being dissected; delete it when get_snapshot_dissection_status says completed",
            p.id
        )));
    }
    inner.evict(&snap);
    inner.jobs.forget(&p.id);
    let ws = inner.config.data.snapshots.clone();
    let name = p.id.clone();
    blocking(move || Ok(trawl_snapshot::workspace::delete(&ws, &name)?)).await?;
    Ok(json!({"success": true, "name": p.id}))
}

fn start_job(inner: &Inner, name: &str, snap: &std::path::Path, force: bool) -> ToolResult<&'static str> {
    let threads = (inner.config.threads > 0).then_some(inner.config.threads);
    inner.evict(snap);
    match inner.jobs.start(name, snap, force, threads) {
        Ok(()) => Ok("started"),
        Err(StartError::AlreadyRunning) => Ok("already running"),
        Err(StartError::AlreadyIndexed) => Ok("already indexed (force: true dissects it again)"),
    }
}

pub async fn start_dissection(inner: &Arc<Inner>, p: StartDissection, ctx: &RequestContext<RoleServer>) -> ToolResult {
    let snap = inner.config.data.snapshot(&p.snapshot_id)?;
    let wait = p.wait_seconds.unwrap_or(0.0);
    if !(0.0..=600.0).contains(&wait) {
        return Err(ToolError::new(format!("wait_seconds: expected 0 to 600, got {wait}")));
    }
    let what = start_job(inner, &p.snapshot_id, &snap, p.force)?;
    let token = ctx.meta.get_progress_token();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    let mut last = -1.0;
    while wait > 0.0 && inner.jobs.running(&p.snapshot_id) && tokio::time::Instant::now() < deadline {
        if let (Some(t), Some(pct)) = (&token, inner.jobs.percent(&p.snapshot_id))
            && pct > last
        {
            last = pct;
            let n = ProgressNotificationParam::new(t.clone(), pct)
                .with_total(100.0)
                .with_message(format!("dissecting {}: {pct:.0}%", p.snapshot_id));
            // A client that went away does not stop the job.
            let _ = ctx.peer.notify_progress(n).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = ctx.ct.cancelled() => break,
        }
    }
    if let Some(t) = &token
        && wait > 0.0
        && !inner.jobs.running(&p.snapshot_id)
    {
        let _ = ctx
            .peer
            .notify_progress(
                ProgressNotificationParam::new(t.clone(), 100.0)
                    .with_total(100.0)
                    .with_message(format!("dissected {}", p.snapshot_id)),
            )
            .await;
    }
    inner.evict(&snap);
    let mut v = inner.jobs.status(&p.snapshot_id, &snap);
    v["started"] = json!(what);
    if v["status"] == "running" {
        v["next"] = json!("get_snapshot_dissection_status");
    }
    Ok(v)
}

pub async fn dissection_status(inner: &Arc<Inner>, p: SnapshotId) -> ToolResult {
    let snap = inner.config.data.snapshot(&p.id)?;
    Ok(inner.jobs.status(&p.id, &snap))
}

pub async fn list_dissections(inner: &Arc<Inner>, p: ListDissections) -> ToolResult {
    let names = match &p.snapshot {
        Some(n) => {
            inner.config.data.snapshot(n)?;
            vec![n.clone()]
        }
        None => inner.config.data.snapshot_names(),
    };
    let list: Vec<Value> = names.iter().map(|n| inner.jobs.status(n, &inner.config.data.snapshots.join(n))).collect();
    Ok(json!({"dissections": list, "total": list.len()}))
}
