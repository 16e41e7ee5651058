//! The MCP server: tools, prompts and resources over one data folder.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;
use trawl_query::{Catalog, KflQuery, KflRows};

use crate::data::DataDir;
use crate::error::{ToolError, ToolResult};
use crate::jobs::Jobs;
use crate::{prompts, tools};

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: DataDir,
    /// Exposes `delete_snapshot`.
    pub allow_destructive: bool,
    /// Threads for queries and indexing (0: one per core).
    pub threads: usize,
    /// Log each tool call to stderr.
    pub log: bool,
}

/// Snapshot folders and their manifests' modification times.
type CatalogKey = Vec<(PathBuf, Option<SystemTime>)>;

/// What every tool call shares.
pub struct Inner {
    pub config: Config,
    pub jobs: Jobs,
    /// Opened catalogs by snapshot set, reopened when a manifest changes.
    catalogs: Mutex<HashMap<CatalogKey, Arc<Opened>>>,
}

/// The most catalogs kept open (each holds Parquet metadata, not rows).
const CATALOG_CACHE: usize = 16;

impl Inner {
    /// The catalog of some snapshots (by folder), opened once and reused
    /// while their manifests stay the same.
    pub async fn catalog(&self, snaps: &[PathBuf]) -> ToolResult<Arc<Opened>> {
        let key: Vec<(PathBuf, Option<SystemTime>)> = snaps
            .iter()
            .map(|p| (p.clone(), std::fs::metadata(p.join(trawl_analyze::MANIFEST)).and_then(|m| m.modified()).ok()))
            .collect();
        if let Some(c) = self.catalogs.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let cat = if let [one] = snaps {
            Catalog::open(one, self.config.threads).await?
        } else {
            Catalog::open_many(snaps, self.config.threads).await?
        };
        let cat = Arc::new(Opened { catalog: cat, totals: Mutex::new(HashMap::new()) });
        let mut cache = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CATALOG_CACHE {
            cache.clear();
        }
        cache.insert(key, cat.clone());
        Ok(cat)
    }

    /// Drops the cached catalogs that read a snapshot (it was deleted or re-indexed).
    pub fn evict(&self, snap: &std::path::Path) {
        self.catalogs.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| !k.iter().any(|(p, _)| p == snap));
    }
}

/// An opened catalog and the match counts of the filters asked of it.
/// Snapshots are immutable, and a re-indexed one opens a new catalog, so
/// a count stays true for as long as its catalog lives: paging through
/// results costs one count, not one per page.
pub struct Opened {
    pub catalog: Catalog,
    totals: Mutex<HashMap<String, usize>>,
}

/// The most counts kept per catalog.
const TOTALS_CACHE: usize = 1024;

impl std::ops::Deref for Opened {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

impl Opened {
    /// One page of a KFL query and how many rows match in all.
    pub async fn page(&self, q: &KflQuery) -> ToolResult<(usize, KflRows)> {
        let key = format!("{:?}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}", q.table, q.filter, q.also, q.start_ns, q.end_ns);
        let known = self.totals.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        if let Some(t) = known {
            let (df, notes) = self.catalog.kfl_frame(q).await?;
            return Ok((t, KflRows { batches: df.collect().await?, notes }));
        }
        let (total, rows) = self.catalog.kfl_page(q).await?;
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        if totals.len() >= TOTALS_CACHE {
            totals.clear();
        }
        totals.insert(key, total);
        Ok((total, rows))
    }
}

/// The server: cheap to clone (one per HTTP session, all sharing state).
#[derive(Clone)]
pub struct TrawlServer {
    pub inner: Arc<Inner>,
}

impl TrawlServer {
    pub fn new(config: Config) -> TrawlServer {
        TrawlServer { inner: Arc::new(Inner { config, jobs: Jobs::default(), catalogs: Mutex::new(HashMap::new()) }) }
    }

    /// The tools this server offers (`delete_snapshot` only with `--allow-destructive`).
    pub fn tools(&self) -> Vec<Tool> {
        tools::definitions(self.inner.config.allow_destructive)
    }
}

const INSTRUCTIONS: &str = "trawl answers questions about recorded network traffic (PCAP archives plus Kubernetes metadata) with evidence. \
Workflow: get_data_boundaries (what raw capture exists) -> create_snapshot (a time window) -> start_snapshot_dissection (index it; poll get_snapshot_dissection_status) -> \
get_api_stats / list_api_calls (KFL filters, e.g. `http && status_code >= 500`) -> get_api_call_details -> export_snapshot_pcap for Wireshark. \
For evidence instead of rows: get_service_map, find_retries, find_redundant_calls, get_incident_timeline (what failed first, and when) and diff_snapshots (baseline against candidate). \
list_snapshots shows what is already indexed. Times are Unix milliseconds or RFC 3339, UTC, and come from the capture, not the wall clock. \
KFL reference: resource trawl://kfl; tables and columns: trawl://schema; run_sql for anything KFL cannot say.";

impl ServerHandler for TrawlServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build())
            .with_server_info(Implementation::new("trawl", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let started = Instant::now();
        let name = request.name.to_string();
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let result = tools::call(&self.inner, &name, args, &context).await;
        if self.inner.config.log {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(_) => eprintln!("trawl mcp: {name} ok in {ms:.1} ms"),
                Err(e) => {
                    eprintln!("trawl mcp: {name} failed in {ms:.1} ms: {}", e.message.lines().next().unwrap_or(""))
                }
            }
        }
        Ok(CallToolResponse::Complete(to_result(result)))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.clone().unwrap_or_default();
        prompts::get(&request.name, &args)
            .map(GetPromptResponse::Complete)
            .map_err(|e| McpError::invalid_params(e.message, Some(Value::Object(e.hints))))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(prompts::resources()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match prompts::read_resource(&self.inner, &request.uri) {
            Ok((text, mime)) => Ok(ReadResourceResponse::Complete(ReadResourceResult::new(vec![
                ResourceContents::text(text, request.uri.clone()).with_mime_type(mime),
            ]))),
            Err(e) => Err(McpError::resource_not_found(e.message, Some(Value::Object(e.hints)))),
        }
    }
}

/// A tool's JSON (compact, for a model's context) or its error with `isError: true`.
fn to_result(r: ToolResult) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_json().to_string())]),
    }
}

impl From<tokio::task::JoinError> for ToolError {
    fn from(e: tokio::task::JoinError) -> ToolError {
        ToolError::new(format!("internal error: the task stopped: {e}"))
    }
}
