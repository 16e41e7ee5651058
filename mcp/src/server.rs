//! The MCP server: tools, prompts and resources over one data folder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::error::{ToolError, ToolResult};
use crate::http::ClientGone;
use crate::state::{Config, Inner};
use crate::{prompts, tools};

/// The server: cheap to clone (one per HTTP session, all sharing state).
#[derive(Clone)]
pub struct TrawlServer {
    pub inner: Arc<Inner>,
}

impl TrawlServer {
    pub fn new(config: Config) -> TrawlServer {
        TrawlServer { inner: Arc::new(Inner::new(config)) }
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
        let limit = self.inner.config.call_timeout;
        let has_turn = AtomicBool::new(false);
        // The call's work is one future: dropped at the time limit or when
        // the client cancels (or goes away), which stops its queries at
        // their next batch. A call that runs queries first waits for its
        // turn, within the same limit.
        let work = async {
            let _turn = if tools::runs_queries(&name) {
                Some(self.inner.turns.acquire().await.map_err(|_| ToolError::new("the server is stopping"))?)
            } else {
                None
            };
            has_turn.store(true, Ordering::Relaxed);
            tools::call(&self.inner, &name, args, &context).await
        };
        let result = tokio::select! {
            r = tokio::time::timeout(limit, work) => {
                r.unwrap_or_else(|_| Err(ToolError::new(if has_turn.load(Ordering::Relaxed) {
                    format!(
                        "{name} ran longer than the server's per-call limit ({:.3} s) and was cancelled: narrow it \
                         (a snapshot_id, a shorter window, a KFL filter that selects fewer calls, a lower limit), \
                         or ask for a larger --call-timeout",
                        limit.as_secs_f64()
                    )
                } else {
                    format!(
                        "{name} waited the whole per-call limit ({:.3} s) for a turn: the server was busy with \
                         {} calls that run queries at once; retry later, or start trawl mcp with a larger \
                         --max-concurrent-calls or --call-timeout",
                        limit.as_secs_f64(),
                        self.inner.turns_total
                    )
                })))
            }
            _ = context.ct.cancelled() => Err(ToolError::new(format!("{name} was cancelled by the client"))),
            _ = client_gone(&context) => Err(ToolError::new(format!("{name}: the client went away"))),
        };
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

/// Resolves when the HTTP client that sent the request goes away (never
/// over stdio, where the session's end stops everything).
async fn client_gone(context: &RequestContext<RoleServer>) {
    let gone = context.extensions.get::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<ClientGone>());
    match gone {
        Some(g) => g.gone().await,
        None => std::future::pending().await,
    }
}
