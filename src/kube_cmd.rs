//! `trawl workloads` and `trawl ips`: what the Kubernetes sidecars of a
//! snapshot or archive name, over time (the data of MCP `list_workloads`
//! and `list_ips`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use regex::Regex;
use trawl_analyze::kube::Cluster;
use trawl_analyze::kube::list::{self, Filter, Span};

/// Where the sidecars are, and which objects to keep.
#[derive(Args)]
pub struct Common {
    /// A snapshot (its `k8s/`), an archive (every node's sidecars), or
    /// sidecar files and folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// As the cluster was at this time (RFC 3339 or Unix ms) [default: at all times].
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Only these namespaces (repeatable).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    /// Names matching this regular expression.
    #[arg(long, value_name = "REGEX")]
    name_regex: Option<String>,
    /// Only objects with this label (pods) or selector entry (services); repeatable.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct WorkloadsArgs {
    #[command(flatten)]
    common: Common,
    /// Only pods, services or nodes.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// Exact name.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args)]
pub struct IpsArgs {
    #[command(flatten)]
    common: Common,
    /// Only this address.
    #[arg(long)]
    ip: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Pod,
    Service,
    Node,
}

impl Common {
    /// The filter the options describe (checked before anything is read).
    fn filter(&self) -> Result<Filter> {
        let mut labels = BTreeMap::new();
        for l in &self.labels {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| trawl_analyze::Error::Config(format!("--label: expected KEY=VALUE, got `{l}`")))?;
            labels.insert(k.to_string(), v.to_string());
        }
        let name_regex = self
            .name_regex
            .as_deref()
            .map(|r| {
                Regex::new(r).map_err(|e| {
                    trawl_analyze::Error::Config(format!("--name-regex: not a valid regular expression: {e}"))
                })
            })
            .transpose()?;
        let at = self.at.as_deref().map(|t| trawl_snapshot::window::parse_time("--at", t)).transpose()?;
        Ok(Filter { namespaces: self.namespaces.clone(), name_regex, labels, at, ..Filter::default() })
    }

    /// The sidecars of the paths, indexed; their problems go to stderr.
    fn cluster(&self) -> Result<Cluster> {
        let mut files = Vec::new();
        for p in &self.paths {
            files.extend(trawl_snapshot::resolve::sidecars_of(p)?);
        }
        if files.is_empty() {
            return Err(trawl_analyze::Error::Config(format!(
                "{}: holds no Kubernetes sidecars (analyse the capture with --k8s, or keep k8s-*.json next to it; docs/kubernetes.md)",
                self.paths[0].display()
            ))
            .into());
        }
        let cluster = Cluster::load(&files);
        crate::report_sidecars_problems(&cluster.reports());
        Ok(cluster)
    }
}

fn span(s: Span) -> String {
    let t = |x: Option<i64>, open: &str| x.map_or(open.to_string(), trawl_snapshot::window::show);
    format!("{} .. {}", t(s.from, "start"), t(s.until, "end"))
}

pub fn workloads(a: WorkloadsArgs) -> Result<()> {
    let mut f = a.common.filter()?;
    f.kind = a.kind.map(|k| {
        match k {
            Kind::Pod => "pod",
            Kind::Service => "service",
            Kind::Node => "node",
        }
        .to_string()
    });
    f.name = a.name;
    let cluster = a.common.cluster()?;
    let found = list::workloads(&cluster, &f);
    let mut o = std::io::stdout().lock();
    if a.common.json {
        for w in &found {
            writeln!(o, "{}", w.json())?;
        }
        return Ok(());
    }
    writeln!(
        o,
        "{:<8} {:<14} {:<32} {:<26} {:<10} {:<18} WHEN",
        "KIND", "NAMESPACE", "NAME", "WORKLOAD", "NODE", "IPS"
    )?;
    for w in &found {
        let ips: Vec<String> = w.ips.iter().map(|(ip, _)| ip.to_string()).collect();
        writeln!(
            o,
            "{:<8} {:<14} {:<32} {:<26} {:<10} {:<18} {}",
            w.kind,
            if w.namespace.is_empty() { "-" } else { &*w.namespace },
            &*w.name,
            w.workload.as_deref().unwrap_or("-"),
            w.node.as_deref().unwrap_or("-"),
            if ips.is_empty() { "-".to_string() } else { ips.join(",") },
            span(w.span)
        )?;
    }
    Ok(())
}

pub fn ips(a: IpsArgs) -> Result<()> {
    let mut f = a.common.filter()?;
    f.ip = a
        .ip
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| trawl_analyze::Error::Config(format!("--ip: expected an IPv4 or IPv6 address, got `{s}`")))
        })
        .transpose()?;
    let cluster = a.common.cluster()?;
    let found = list::addresses(&cluster, &f);
    let mut o = std::io::stdout().lock();
    if a.common.json {
        for x in &found {
            writeln!(o, "{}", x.json())?;
        }
        return Ok(());
    }
    writeln!(o, "{:<16} {:<8} {:<14} {:<32} {:<26} WHEN", "IP", "KIND", "NAMESPACE", "NAME", "WORKLOAD")?;
    for x in &found {
        for h in &x.holders {
            writeln!(
                o,
                "{:<16} {:<8} {:<14} {:<32} {:<26} {}",
                x.ip,
                h.kind,
                if h.namespace.is_empty() { "-" } else { &*h.namespace },
                &*h.name,
                h.workload.as_deref().unwrap_or("-"),
                span(h.span)
            )?;
        }
    }
    Ok(())
}
