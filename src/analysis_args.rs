//! The analysis settings shared by `trawl analyze` and `trawl index`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trawl_analyze::{Error, Options};

#[derive(Args, Debug, Clone)]
pub struct AnalysisArgs {
    /// Worker threads [default: number of CPUs]. The output does not depend on it.
    #[arg(short = 'j', long)]
    threads: Option<usize>,
    /// Body bytes stored per message (after gzip/deflate/br decoding).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    body_cap: usize,
    /// Seconds a TCP connection may stay idle (capture time) before it is closed.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    tcp_timeout: f64,
    /// Seconds a UDP or ICMP flow may stay idle before it is closed.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    udp_timeout: f64,
    /// Out-of-order bytes buffered per TCP direction before a gap is declared.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_ooo_bytes: usize,
    /// Memory for the state of open flows (addresses, counters, TCP and
    /// parser state; 32MiB, 1GB). Past it, the least recently active flows
    /// are closed, those never answered first: their rows say `evicted`,
    /// the manifest counts them (`flow_table_evictions`; raise it when
    /// `flow_table_evictions_answered` is not 0 on a capture with many
    /// connections open at once).
    #[arg(long, default_value = "32MiB", value_parser = crate::parse_size, value_name = "SIZE")]
    flow_memory: u64,
    /// Kubernetes sidecar file, or folder of them, naming the pods, services
    /// and nodes behind the addresses: `kubectl get
    /// pods,services,endpointslices,nodes -A -o json` output, a trawl
    /// timeline (.jsonl) or a compact sidecar (docs/kubernetes.md).
    /// Repeatable. `k8s-*.json[l]` files next to the captures are read too.
    #[arg(long = "k8s", value_name = "FILE|DIR")]
    k8s: Vec<PathBuf>,
    /// Do not read the `k8s-*.json[l]` sidecars next to the captures.
    #[arg(long)]
    pub no_k8s_discovery: bool,
    /// Protobuf descriptor set (`protoc --include_imports
    /// --descriptor_set_out FILE`) naming the fields of gRPC messages in
    /// `request_decoded` / `response_decoded`. Repeatable. Without it,
    /// messages are decoded by field number.
    #[arg(long, value_name = "FILE")]
    proto_descriptors: Vec<PathBuf>,
}

impl AnalysisArgs {
    /// The analysis options for `inputs` (their nearby sidecars included).
    pub fn options(&self, inputs: Vec<PathBuf>) -> Result<Options> {
        let a = self;
        let mut opts = Options { inputs, ..Options::default() };
        if let Some(t) = a.threads {
            if t == 0 {
                return Err(Error::Config("--threads: expected at least 1".into()).into());
            }
            opts.threads = t;
        }
        opts.flow.tcp_timeout_ns = secs_to_ns("tcp-timeout", a.tcp_timeout)?;
        opts.flow.udp_timeout_ns = secs_to_ns("udp-timeout", a.udp_timeout)?;
        opts.flow.limits.max_body_bytes = a.body_cap;
        opts.flow.max_ooo_bytes = a.max_ooo_bytes;
        opts.flow.max_flow_bytes = usize::try_from(a.flow_memory).unwrap_or(usize::MAX);
        if !a.proto_descriptors.is_empty() {
            let mut sets = Vec::new();
            for f in &a.proto_descriptors {
                sets.push(
                    std::fs::read(f).map_err(|e| Error::Config(format!("--proto-descriptors {}: {e}", f.display())))?,
                );
            }
            let schemas = trawl_proto::grpc::Schemas::from_sets(&sets).map_err(|(i, e)| {
            let f = a.proto_descriptors[i].display();
            Error::Config(format!("--proto-descriptors {f}: expected a protobuf descriptor set (protoc --include_imports --descriptor_set_out FILE): {e}"))
        })?;
            opts.schemas = Some(std::sync::Arc::new(schemas));
        }
        if !a.no_k8s_discovery {
            opts.k8s = trawl_analyze::kube::sidecars_near(&opts.inputs);
        }
        for f in trawl_analyze::kube::expand_sidecars("--k8s", &a.k8s)? {
            if !opts.k8s.contains(&f) {
                opts.k8s.push(f);
            }
        }
        Ok(opts)
    }
}

pub fn secs_to_ns(name: &str, s: f64) -> Result<i64> {
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::Config(format!("--{name}: expected a positive number of seconds, got {s}")).into());
    }
    Ok((s * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::AnalysisArgs,
    }

    /// The flags' defaults are written as text for `--help`; they must be
    /// the analysis library's own defaults, not a second copy that drifts.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["trawl", "--no-k8s-discovery"]).unwrap();
        let got = cli.args.options(Vec::new()).unwrap().flow;
        let want = trawl_analyze::flow::FlowConfig::default();
        assert_eq!(got.max_flow_bytes, want.max_flow_bytes);
        assert_eq!(got.max_flow_bytes, trawl_analyze::flow::DEFAULT_MAX_FLOW_BYTES);
        assert_eq!(got.limits.max_body_bytes, want.limits.max_body_bytes);
        assert_eq!(got.max_ooo_bytes, want.max_ooo_bytes);
        assert_eq!(got.tcp_timeout_ns, want.tcp_timeout_ns);
        assert_eq!(got.udp_timeout_ns, want.udp_timeout_ns);
    }
}
