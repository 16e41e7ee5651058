//! `trawl mcp`: the MCP server for AI agents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use trawl_mcp::{Config, DataDir, TrawlServer};

#[derive(Args)]
pub struct McpArgs {
    /// Data folder: archive/ (captures, one folder per node), snapshots/ and exports/ (created if missing).
    /// A dataset written by `trawl index` (a folder or s3://bucket/prefix) is served as it is, as --dataset.
    #[arg(long, value_name = "DIR", required_unless_present = "tools_doc")]
    pub data: Option<PathBuf>,
    /// Also serve a dataset written by `trawl index` (a folder or s3://bucket/prefix), as the snapshot
    /// named `dataset`: queries that name no snapshot read it.
    #[arg(long, value_name = "DATASET")]
    pub dataset: Option<String>,
    /// Capture archive to read instead of DIR/archive (read only).
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8765).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Bearer token HTTP clients must send [default: $TRAWL_MCP_TOKEN, else one is generated and printed].
    #[arg(long, env = "TRAWL_MCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Offer delete_snapshot.
    #[arg(long)]
    pub allow_destructive: bool,
    /// Threads for queries and dissection [default: number of CPUs].
    #[arg(short = 'j', long, default_value_t = 0, hide_default_value = true)]
    pub threads: usize,
    /// Print the tools (the tools/list result) as JSON and exit.
    #[arg(long)]
    pub list_tools: bool,
    /// Print the tool reference as Markdown (the source of docs/mcp.md's tool section) and exit.
    #[arg(long)]
    pub tools_doc: bool,
    /// Print a Claude Desktop / Cursor `mcpServers` entry for this data folder and exit.
    #[arg(long)]
    pub mcp_config: bool,
    /// Seconds a tool call may run before it is cancelled and answered
    /// with an error that says how to narrow it.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub call_timeout: f64,
    /// Tool calls that run queries at once; more wait their turn (within
    /// --call-timeout), which keeps memory and latency bounded when many
    /// agents ask at once [default: one per CPU, at least 2].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub max_concurrent_calls: usize,
    /// Mask credentials and personal data in everything the tools return
    /// (Authorization, Cookie and Set-Cookie values; tokens, keys and
    /// passwords in URLs and bodies; card numbers, JWTs and the keys
    /// `trawl audit` finds), each as a short hash of itself [default: on
    /// with --listen, off over stdio].
    #[arg(long, overrides_with = "no_redact")]
    pub redact: bool,
    /// Return payloads as captured, over HTTP too.
    #[arg(long)]
    pub no_redact: bool,
    /// Do not log tool calls to stderr.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterTarget,
}

fn call_timeout(secs: f64) -> Result<std::time::Duration> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(trawl_snapshot::Error::Usage(format!(
            "--call-timeout: expected seconds between 0 and 86400, got {secs}"
        ))
        .into());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

pub fn run(a: McpArgs) -> Result<ExitCode> {
    if a.token.as_deref().is_some_and(|t| t.trim().len() < 16) {
        return Err(trawl_snapshot::Error::Usage("--token: expected at least 16 characters".into()).into());
    }
    if a.tools_doc {
        print!("{}", trawl_mcp::tools_markdown());
        return Ok(ExitCode::SUCCESS);
    }
    let mut root = a.data.clone().unwrap_or_default();
    let mut dataset = a.dataset.clone();
    if trawl_dataset::read::is_dataset(&root) {
        // --data names a dataset: exports and snapshots go to a folder of
        // this user's beside it, in the temporary directory.
        dataset = Some(root.to_string_lossy().to_string());
        root = std::env::temp_dir().join("trawl-mcp");
    }
    let mut data =
        DataDir::open(&root, a.archive.as_deref()).map_err(|e| trawl_snapshot::Error::Usage(e.to_string()))?;
    if let Some(d) = dataset {
        trawl_dataset::Location::parse(&d, false)?;
        data = data.with_dataset(d);
    }
    if a.mcp_config {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("trawl"));
        let v = serde_json::json!({"mcpServers": {"trawl": {"command": exe, "args": ["mcp", "--data", data.root]}}});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let engine = rt.block_on(a.cluster.engine())?;
    let server = TrawlServer::new(Config {
        data: data.clone(),
        allow_destructive: a.allow_destructive,
        threads: a.threads,
        log: !a.quiet,
        engine,
        call_timeout: call_timeout(a.call_timeout)?,
        max_concurrent_calls: a.max_concurrent_calls,
        redact: if a.listen.is_some() { !a.no_redact } else { a.redact && !a.no_redact },
    });
    if a.list_tools {
        println!("{}", serde_json::to_string_pretty(&server.tools())?);
        return Ok(ExitCode::SUCCESS);
    }
    rt.block_on(async move {
        match a.listen {
            None => {
                eprintln!("trawl mcp: serving {} over stdio", data.root.display());
                trawl_mcp::serve_stdio(server).await.context("serving MCP over stdio")
            }
            Some(addr) => {
                let generated = a.token.is_none();
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                trawl_mcp::serve_http(
                    server,
                    addr,
                    a.token,
                    |bound, token| {
                        eprintln!("trawl mcp: serving {} at http://{bound}/mcp", data.root.display());
                        if generated {
                            eprintln!("trawl mcp: bearer token (generated; pass --token or TRAWL_MCP_TOKEN to choose one): {token}");
                        }
                    },
                    shutdown,
                )
                .await
                .map_err(|e| match e {
                    trawl_mcp::HttpError::NeedsToken(_) | trawl_mcp::HttpError::Bind { .. } => anyhow::Error::new(trawl_snapshot::Error::Usage(e.to_string())),
                    other => anyhow::Error::new(other),
                })
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
