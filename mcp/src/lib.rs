//! trawl's MCP server: Kubeshark's forensic tools over capture archives
//! and snapshots on disk.
//!
//! `trawl mcp --data DIR` serves one data folder ([`DataDir`]: the
//! archive, the snapshot workspace, the exports) to an AI agent over
//! stdio, or over streamable HTTP with a bearer token ([`serve_http`]).
//! Tools keep Kubeshark's names and parameters ([`tools`]); results are
//! compact JSON with totals, `truncated` and the next offset; failures
//! come back with `isError: true` and say what to do next.

mod budget;
mod data;
mod error;
mod http;
mod jobs;
mod prompts;
mod rows;
mod server;
mod state;
mod tools;

pub use data::{DataDir, DataDirError};
pub use error::ToolError;
pub use http::{HttpError, generate_token, serve_http};
pub use server::TrawlServer;
pub use state::Config;
pub use tools::markdown as tools_markdown;
pub use tools::{decode_arguments, names as tool_names};

/// Serves over stdin/stdout until the client closes them.
pub async fn serve_stdio(server: TrawlServer) -> std::io::Result<()> {
    use rmcp::ServiceExt;
    let running = server.serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
