//! `trawl cluster scheduler|executor`, and `--cluster` on `sql`, `query`
//! and `mcp`: trawl's queries on a DataFusion Ballista cluster
//! (`trawl-cluster`, built with the `cluster` feature).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use trawl_query::Engine;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: clients (`--cluster df://HOST:PORT`) send it plans, it hands their tasks to executors.
    Scheduler(SchedulerArgs),
    /// Run an executor: runs the tasks a scheduler hands it, reading the dataset itself.
    Executor(ExecutorArgs),
}

#[derive(Args)]
pub struct SchedulerArgs {
    /// Address to listen on (clients and executors connect here).
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,
    /// Seconds without a heartbeat before an executor counts as lost (its tasks then run on the others).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub executor_timeout: u64,
}

#[derive(Args)]
pub struct ExecutorArgs {
    /// The scheduler, df://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub scheduler: String,
    /// Address to serve shuffle data on (Arrow Flight); the task service listens on the next port up.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub bind: SocketAddr,
    /// Port of the task service [default: the --bind port + 1].
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// Host name other executors and clients reach this one at [default: the address the scheduler sees].
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Tasks run at once [default: number of CPUs].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub slots: usize,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub heartbeat: u64,
    /// Folder for shuffle files and spills [default: a temporary folder].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// `--cluster`, shared by the commands that query.
#[derive(Args, Clone, Default)]
pub struct ClusterTarget {
    /// Run the queries on a trawl cluster (its scheduler, df://HOST:PORT) instead of this machine.
    /// -j then sets the tasks each stage is split into.
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

impl ClusterTarget {
    /// The engine the queries run on; checks the scheduler answers.
    pub async fn engine(&self) -> Result<Engine> {
        match &self.cluster {
            None => Ok(Engine::Local),
            Some(url) => connect(url).await,
        }
    }
}

#[cfg(feature = "cluster")]
async fn connect(url: &str) -> Result<Engine> {
    trawl_cluster::connect(url).await.map_err(|e| match e.is_bad_input() {
        true => trawl_snapshot::Error::Usage(e.to_string()).into(),
        false => e.into(),
    })
}

#[cfg(not(feature = "cluster"))]
async fn connect(_url: &str) -> Result<Engine> {
    Err(not_built("--cluster"))
}

#[cfg(not(feature = "cluster"))]
fn not_built(what: &str) -> anyhow::Error {
    trawl_snapshot::Error::Usage(format!(
        "{what}: this trawl was built without cluster support (build it with `cargo build --release --features cluster`)"
    ))
    .into()
}

#[cfg(feature = "cluster")]
pub fn run(c: ClusterCommand) -> Result<ExitCode> {
    use std::time::Duration;
    trawl_cluster::logging::init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match c {
        ClusterCommand::Scheduler(a) => {
            eprintln!("trawl cluster: scheduler listening on df://{}", a.bind);
            let opts = trawl_cluster::SchedulerOptions {
                bind: a.bind,
                executor_timeout: Duration::from_secs(a.executor_timeout),
            };
            rt.block_on(trawl_cluster::run_scheduler(opts))?;
        }
        ClusterCommand::Executor(a) => {
            let grpc_port = match a.grpc_port {
                Some(p) => p,
                None => a.bind.port().checked_add(1).ok_or_else(|| {
                    trawl_snapshot::Error::Usage("--bind: port 65535 leaves no port for the task service".into())
                })?,
            };
            eprintln!(
                "trawl cluster: executor serving shuffle data on {}, tasks on port {grpc_port}, for {}",
                a.bind, a.scheduler
            );
            let opts = trawl_cluster::ExecutorOptions {
                scheduler: a.scheduler,
                bind: a.bind,
                grpc_port,
                external_host: a.external_host,
                slots: a.slots,
                heartbeat: Duration::from_secs(a.heartbeat),
                work_dir: a.work_dir,
            };
            rt.block_on(trawl_cluster::run_executor(opts))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "cluster"))]
pub fn run(c: ClusterCommand) -> Result<ExitCode> {
    let what = match c {
        ClusterCommand::Scheduler(_) => "trawl cluster scheduler",
        ClusterCommand::Executor(_) => "trawl cluster executor",
    };
    Err(not_built(what))
}
