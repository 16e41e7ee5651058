//! trawl's queries on an Apache DataFusion Ballista cluster.
//!
//! - [`run_scheduler`] and [`run_executor`] are Ballista's scheduler and
//!   executor with trawl's functions (`trawl_query::udf`), its dataset
//!   tables ([`codec`]) and its object stores (`DatasetStores`: a
//!   dataset's `s3://` or local store, opened from the location a plan
//!   names) on both sides: `trawl cluster scheduler|executor`.
//! - [`connect`] gives the [`Engine`] a `trawl_query::Catalog` runs its
//!   queries on: the catalog plans every SQL or KFL query as it does
//!   locally, and Ballista's client sends the plan to the scheduler, which
//!   splits it into stages of tasks for the executors.
//!
//! Nothing here schedules, shuffles or talks RPC of its own: that is all
//! Ballista's.

pub mod codec;
mod error;
pub mod logging;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::{
    SessionConfigExt, SessionStateExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use trawl_query::dataset::DatasetStores;
use trawl_query::{Engine, QueryError};

pub use error::ClusterError;

/// The scheduler's port when a `df://` URL names none (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// The largest gRPC message any trawl cluster process sends or takes
/// (Ballista's default is 16 MiB). A plan carries the data files of the
/// dataset tables it scans, about 230 bytes each (docs/scale.md): 256 MiB
/// is a million files.
const GRPC_MAX_MESSAGE: u32 = 256 << 20;

/// A scheduler's address from `df://HOST[:PORT]`.
pub fn scheduler_address(url: &str) -> Result<(String, u16), ClusterError> {
    let bad = |detail: &str| ClusterError::Url { url: url.to_string(), detail: detail.to_string() };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "df" {
        return Err(bad("expected df://HOST:PORT"));
    }
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
    if !matches!(parsed.path(), "" | "/") {
        return Err(bad("expected df://HOST:PORT, with no path"));
    }
    Ok((
        host.trim_start_matches('[').trim_end_matches(']').to_string(),
        parsed.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
    ))
}

/// trawl's functions beside DataFusion's and Ballista's.
fn with_trawl_functions(builder: SessionStateBuilder) -> SessionStateBuilder {
    let mut scalar = ballista_scalar_functions();
    scalar.extend(trawl_query::udf::all());
    builder
        .with_scalar_functions(scalar)
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
}

/// The runtime a cluster process reads datasets with.
fn runtime(stores: &Arc<DatasetStores>, temp: Option<&PathBuf>) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    let mut b = RuntimeEnvBuilder::new().with_object_store_registry(stores.clone());
    if let Some(t) = temp {
        b = b.with_temp_file_path(t);
    }
    Ok(Arc::new(b.build()?))
}

/// The session a scheduler plans a client's query in: trawl's functions
/// and dataset stores, Ballista's optimizer rules.
fn scheduler_session(config: SessionConfig, stores: &Arc<DatasetStores>) -> datafusion::error::Result<SessionState> {
    let builder = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime(stores, None)?)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules());
    Ok(with_trawl_functions(builder).build())
}

/// Every function a trawl executor knows.
fn function_registry() -> BallistaFunctionRegistry {
    let state = with_trawl_functions(SessionStateBuilder::new().with_default_features()).build();
    BallistaFunctionRegistry::from(&state)
}

/// How a scheduler is run.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// An executor not heard from for this long is lost: its tasks run
    /// again on the others.
    pub executor_timeout: Duration,
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(opts: SchedulerOptions) -> Result<(), ClusterError> {
    let stores = Arc::new(DatasetStores::default());
    let timeout = opts.executor_timeout.as_secs().max(1);
    let mut config = SchedulerConfig::default()
        .with_hostname(opts.bind.ip().to_string())
        .with_port(opts.bind.port())
        .with_override_config_producer(Arc::new(client_config_base))
        .with_override_session_builder(Arc::new(move |config| scheduler_session(config, &stores)))
        .with_no_executors_grace_period_seconds(timeout);
    config.bind_host = opts.bind.ip().to_string();
    config.grpc_server_max_decoding_message_size = GRPC_MAX_MESSAGE;
    config.grpc_server_max_encoding_message_size = GRPC_MAX_MESSAGE;
    config.grpc_client_max_message_size = GRPC_MAX_MESSAGE;
    config.executor_timeout_seconds = timeout;
    config.expire_dead_executor_interval_seconds = timeout.div_ceil(3).max(1);
    config.override_logical_codec = Some(Arc::new(codec::TrawlLogicalCodec::default()));
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(ClusterError::ballista)?;
    ballista_scheduler::scheduler_process::start_server(cluster, opts.bind, Arc::new(config))
        .await
        .map_err(ClusterError::ballista)
}

/// How an executor is run.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `df://HOST:PORT`.
    pub scheduler: String,
    /// Where shuffle data is served (Arrow Flight).
    pub bind: SocketAddr,
    /// The port of the executor's gRPC service (tasks from the scheduler).
    pub grpc_port: u16,
    /// The host name other processes reach this executor at [default: the
    /// address the scheduler sees it connect from].
    pub external_host: Option<String>,
    /// Tasks run at once (0: one per core).
    pub slots: usize,
    /// How often the executor tells the scheduler it is alive.
    pub heartbeat: Duration,
    /// Shuffle files and spills [default: a temporary directory].
    pub work_dir: Option<PathBuf>,
}

/// Runs an executor until the process ends (or the scheduler stops it).
pub async fn run_executor(opts: ExecutorOptions) -> Result<(), ClusterError> {
    let (host, port) = scheduler_address(&opts.scheduler)?;
    let stores = Arc::new(DatasetStores::default());
    let temp = opts.work_dir.clone();
    let runtime_stores = stores.clone();
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        port: opts.bind.port(),
        grpc_port: opts.grpc_port,
        external_host: opts.external_host.clone(),
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.slots,
        work_dir: opts.work_dir.as_ref().map(|p| p.to_string_lossy().into_owned()),
        print_thread_info: false,
        executor_heartbeat_interval_seconds: opts.heartbeat.as_secs().max(1),
        grpc_max_decoding_message_size: GRPC_MAX_MESSAGE,
        grpc_max_encoding_message_size: GRPC_MAX_MESSAGE,
        override_function_registry: Some(Arc::new(function_registry())),
        override_runtime_producer: Some(Arc::new(move |_| runtime(&runtime_stores, temp.as_ref()))),
        override_config_producer: Some(Arc::new(client_config_base)),
        override_logical_codec: Some(Arc::new(codec::TrawlLogicalCodec::default())),
        ..Default::default()
    };
    start_executor_process(Arc::new(config)).await.map_err(ClusterError::ballista)
}

/// The Ballista part of every trawl session's config: trawl's codec.
fn client_config_base() -> SessionConfig {
    with_trawl_ballista_config(SessionConfig::new_with_ballista())
}

/// Ballista's settings as trawl sets them on every side: trawl's codec
/// for its tables and room for plans that name many files.
fn with_trawl_ballista_config(config: SessionConfig) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(Arc::new(codec::TrawlLogicalCodec::default()))
        .with_ballista_grpc_client_max_message_size(GRPC_MAX_MESSAGE as usize)
}

/// How long [`connect`]'s probe query may wait for an executor.
const PROBE_WAIT: Duration = Duration::from_secs(20);

/// The engine that runs a catalog's queries on the cluster whose
/// scheduler is at `url` (`df://HOST:PORT`), once the cluster has run a
/// probe query that calls one of trawl's functions on an executor: a
/// scheduler with no executor (Ballista queues such jobs until one
/// registers) or with executors that lack trawl's functions fails here,
/// in one line, rather than at the first query or never.
pub async fn connect(url: &str) -> Result<Engine, ClusterError> {
    let (host, port) = scheduler_address(url)?;
    let reach = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host.as_str(), port)));
    match reach.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(ClusterError::Unreachable { url: url.to_string(), detail: e.to_string() }),
        Err(_) => {
            return Err(ClusterError::Unreachable { url: url.to_string(), detail: "no answer in 10 s".to_string() });
        }
    }
    let scheduler = format!("http://{host}:{port}");
    let session = move |config: SessionConfig| -> Result<SessionContext, QueryError> {
        let config = config.with_option_extension(ballista_core::config::BallistaConfig::default());
        let config = with_trawl_ballista_config(config);
        let state = SessionStateBuilder::new().with_default_features().with_config(config).build();
        Ok(SessionContext::new_with_state(state.upgrade_for_ballista(scheduler.clone())?))
    };
    let engine = Engine::Cluster { url: url.to_string(), session: Arc::new(session) };
    probe(&engine, url).await?;
    Ok(engine)
}

/// Runs `path_template` on a value of a VALUES list (not folded into a
/// constant by the client's optimizer, so an executor computes it).
async fn probe(engine: &Engine, url: &str) -> Result<(), ClusterError> {
    use datafusion::arrow::array::AsArray;
    let not_ready = |detail: String| ClusterError::NotReady { url: url.to_string(), detail };
    let Engine::Cluster { session, .. } = engine else { return Ok(()) };
    let ctx = session(trawl_query::catalog::session_config(1)).map_err(|e| not_ready(e.to_string()))?;
    trawl_query::udf::register(&ctx);
    let q = "SELECT path_template(x) AS route FROM (VALUES ('/orders/17')) AS t(x)";
    let run = async { ctx.sql(q).await?.collect().await };
    let batches = match tokio::time::timeout(PROBE_WAIT, run).await {
        Err(_) => {
            return Err(not_ready(format!(
                "no executor ran a probe query within {} s (are `trawl cluster executor`s registered with it?)",
                PROBE_WAIT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(not_ready(format!("a probe query failed: {}", QueryError::from(e)))),
        Ok(Ok(b)) => b,
    };
    let route = batches
        .first()
        .and_then(|b| b.column(0).as_string_opt::<i32>().map(|a| a.value(0).to_string()))
        .or_else(|| batches.first().and_then(|b| b.column(0).as_string_view_opt().map(|a| a.value(0).to_string())));
    match route.as_deref() {
        Some("/orders/{id}") => Ok(()),
        other => Err(not_ready(format!("a probe query answered {other:?}, not \"/orders/{{id}}\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls_are_df_host_port() {
        assert_eq!(scheduler_address("df://127.0.0.1:50070").unwrap(), ("127.0.0.1".to_string(), 50070));
        assert_eq!(scheduler_address("df://sched").unwrap(), ("sched".to_string(), DEFAULT_SCHEDULER_PORT));
        assert_eq!(scheduler_address("df://[::1]:7").unwrap(), ("::1".to_string(), 7));
        for bad in ["http://x:1", "df://", "df://x:1/path", "x:1"] {
            assert!(scheduler_address(bad).is_err(), "{bad}");
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
    }

    /// A cluster whose executor is a stock Ballista one (DataFusion's
    /// functions only): `connect`'s probe fails, in one line that says
    /// why. (The function's name is only in the executor's log: Ballista's
    /// scheduler keeps no more than "rejected".)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_without_trawls_functions_is_refused_in_one_line() {
        let port = free_port();
        let bind: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        tokio::spawn(run_scheduler(SchedulerOptions { bind, executor_timeout: Duration::from_secs(30) }));
        let url = format!("df://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(bind).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stock = ExecutorProcessConfig {
            port: free_port(),
            grpc_port: free_port(),
            scheduler_host: "127.0.0.1".into(),
            scheduler_port: port,
            vcores: 1,
            print_thread_info: false,
            override_logical_codec: Some(Arc::new(codec::TrawlLogicalCodec::default())),
            ..Default::default()
        };
        tokio::spawn(start_executor_process(Arc::new(stock)));
        let msg = match connect(&url).await {
            Ok(_) => panic!("a stock executor ran trawl's path_template"),
            Err(e) => e.to_string(),
        };
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with(&format!("--cluster {url}: ")), "{msg}");
        assert!(msg.contains("rejected by executor") && msg.contains("lacks one of trawl's functions"), "{msg}");
    }

    #[test]
    fn executors_know_every_trawl_function() {
        let reg = function_registry();
        for f in trawl_query::udf::all() {
            assert!(reg.scalar_functions.contains_key(f.name()), "{}", f.name());
        }
        assert!(reg.scalar_functions.contains_key("abs"));
    }
}
