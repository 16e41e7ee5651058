//! The service map: who calls whom. Nodes are workloads (or services)
//! where Kubernetes metadata named them, DNS names of external
//! destinations, else addresses; an edge is every call from one node to
//! another, with its count, failures, latency and protocols. A focus on
//! one service shows its callers, its callees, and the blast radius: every
//! node whose calls reach it, directly or through others.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::calls::{Call, percentile};

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub calls: usize,
    pub failures: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub protocols: Vec<String>,
    /// Server ports called.
    pub ports: Vec<u16>,
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub nodes: Vec<String>,
    pub edges: Vec<Edge>,
}

/// What a focus on one node shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Focus {
    pub node: String,
    pub callers: Vec<String>,
    pub callees: Vec<String>,
    /// Every node whose calls reach the focus, directly or not.
    pub blast_radius: Vec<String>,
}

fn r(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Edge {
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 { 0.0 } else { self.failures as f64 / self.calls as f64 }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "from": self.from, "to": self.to, "calls": self.calls, "failures": self.failures,
            "error_rate": r(self.error_rate()), "p50_ms": r(self.p50_ms), "p99_ms": r(self.p99_ms),
            "protocols": self.protocols, "ports": self.ports, "external": self.external,
        })
    }
}

impl Map {
    pub fn to_json(&self, focus: Option<&Focus>) -> Value {
        let mut v = json!({ "nodes": self.nodes, "edges": self.edges.iter().map(Edge::to_json).collect::<Vec<_>>() });
        if let Some(f) = focus {
            v["focus"] =
                json!({ "node": f.node, "callers": f.callers, "callees": f.callees, "blast_radius": f.blast_radius });
        }
        v
    }

    fn label(e: &Edge) -> String {
        let rate = if e.failures > 0 { format!(", {:.0}% errors", e.error_rate() * 100.0) } else { String::new() };
        format!("{} {} calls{rate}, p50 {:.1} ms", e.protocols.join("+"), e.calls, e.p50_ms)
    }

    /// Graphviz.
    pub fn to_dot(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
        let mut out = String::from("digraph trawl {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for n in &self.nodes {
            out.push_str(&format!("  {};\n", q(n)));
        }
        for e in &self.edges {
            let color = if e.failures > 0 { ", color=red" } else { "" };
            out.push_str(&format!("  {} -> {} [label={}{color}];\n", q(&e.from), q(&e.to), q(&Self::label(e))));
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid (GitHub renders it in Markdown).
    pub fn to_mermaid(&self) -> String {
        let id: BTreeMap<&str, String> =
            self.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), format!("n{i}"))).collect();
        let mut out = String::from("flowchart LR\n");
        for n in &self.nodes {
            out.push_str(&format!("  {}[\"{}\"]\n", id[n.as_str()], n.replace('"', "'")));
        }
        for e in &self.edges {
            out.push_str(&format!(
                "  {} -->|\"{}\"| {}\n",
                id[e.from.as_str()],
                Self::label(e).replace('"', "'"),
                id[e.to.as_str()]
            ));
        }
        out
    }
}

impl Map {
    /// An SVG picture: nodes in columns by their depth from the callers
    /// nobody calls, edges as arrows with their label (red with failures).
    pub fn to_svg(&self) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        // Depth: the longest chain of callers above a node (cycles cut at the node count).
        let mut depth: BTreeMap<&str, usize> = self.nodes.iter().map(|n| (n.as_str(), 0)).collect();
        for _ in 0..self.nodes.len() {
            let mut changed = false;
            for e in self.edges.iter().filter(|e| e.from != e.to) {
                let d = depth[e.from.as_str()] + 1;
                if d > depth[e.to.as_str()] && d < self.nodes.len() {
                    depth.insert(&e.to, d);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let (w, h, gap_x, gap_y) = (200.0, 44.0, 420.0, 96.0);
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        let mut at: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for n in &self.nodes {
            let d = depth[n.as_str()];
            let row = rows.entry(d).or_insert(0);
            at.insert(n, (30.0 + d as f64 * gap_x, 30.0 + *row as f64 * gap_y));
            *row += 1;
        }
        let width = 60.0 + (rows.keys().max().copied().unwrap_or(0) as f64) * gap_x + w;
        let height = 60.0 + (rows.values().max().copied().unwrap_or(1) as f64 - 1.0) * gap_y + h + 20.0;
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n"
        );
        for e in &self.edges {
            let ((x1, y1), (x2, y2)) = (at[e.from.as_str()], at[e.to.as_str()]);
            let (sx, sy, tx, ty) = (x1 + w, y1 + h / 2.0, x2, y2 + h / 2.0);
            let color = if e.failures > 0 { "#c62828" } else { "#555" };
            let errors =
                if e.failures > 0 { format!("{:.0}% errors, ", e.error_rate() * 100.0) } else { String::new() };
            let (mx, my) = ((sx + tx) / 2.0, (sy + ty) / 2.0);
            out.push_str(&format!(
                "<line x1=\"{sx:.1}\" y1=\"{sy:.1}\" x2=\"{tx:.1}\" y2=\"{ty:.1}\" stroke=\"{color}\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n\
                 <text x=\"{mx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{color}\"><tspan x=\"{mx:.1}\">{} · {} calls</tspan><tspan x=\"{mx:.1}\" dy=\"12\">{}p50 {:.1} ms</tspan></text>\n",
                my - 16.0,
                esc(&e.protocols.join("+")),
                e.calls,
                errors,
                e.p50_ms
            ));
        }
        for n in &self.nodes {
            let (x, y) = at[n.as_str()];
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w}\" height=\"{h}\" rx=\"6\" fill=\"#eef3fb\" stroke=\"#3b6db3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                x + w / 2.0,
                y + h / 2.0 + 4.0,
                esc(n)
            ));
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Builds the map of `calls`.
pub fn build(calls: &[Call]) -> Map {
    let mut groups: BTreeMap<(&str, &str), Vec<&Call>> = BTreeMap::new();
    for c in calls {
        groups.entry((c.client.as_str(), c.server_node.as_str())).or_default().push(c);
    }
    let mut nodes = BTreeSet::new();
    let edges = groups
        .into_iter()
        .map(|((from, to), cs)| {
            nodes.insert(from.to_string());
            nodes.insert(to.to_string());
            let lat: Vec<f64> = cs.iter().filter(|c| c.answered).map(|c| c.latency_ms).collect();
            let protocols: BTreeSet<String> = cs.iter().map(|c| c.protocol.clone()).collect();
            let ports: BTreeSet<u16> = cs.iter().map(|c| c.server_port).filter(|p| *p != 0).collect();
            Edge {
                from: from.to_string(),
                to: to.to_string(),
                calls: cs.len(),
                failures: cs.iter().filter(|c| c.failed).count(),
                p50_ms: percentile(&lat, 0.5),
                p99_ms: percentile(&lat, 0.99),
                protocols: protocols.into_iter().collect(),
                ports: ports.into_iter().collect(),
                external: cs.iter().any(|c| c.external),
            }
        })
        .collect();
    Map { nodes: nodes.into_iter().collect(), edges }
}

/// The neighbourhood of `node` (None: it is not on the map).
pub fn focus(map: &Map, node: &str) -> Option<Focus> {
    if !map.nodes.iter().any(|n| n == node) {
        return None;
    }
    let callers: BTreeSet<&str> =
        map.edges.iter().filter(|e| e.to == node && e.from != node).map(|e| e.from.as_str()).collect();
    let callees: BTreeSet<&str> =
        map.edges.iter().filter(|e| e.from == node && e.to != node).map(|e| e.to.as_str()).collect();
    let mut reach: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = vec![node];
    while let Some(n) = todo.pop() {
        for e in map.edges.iter().filter(|e| e.to == n) {
            if e.from != node && reach.insert(e.from.as_str()) {
                todo.push(e.from.as_str());
            }
        }
    }
    let own = |s: BTreeSet<&str>| s.into_iter().map(str::to_string).collect();
    Some(Focus { node: node.to_string(), callers: own(callers), callees: own(callees), blast_radius: own(reach) })
}

/// The map around `node`: the edges that touch it and their nodes, with
/// its [`Focus`]; or, when `node` is not on the map, the map's nodes.
pub fn focused(mut map: Map, node: &str) -> Result<(Map, Focus), Vec<String>> {
    let Some(f) = focus(&map, node) else { return Err(map.nodes) };
    map.edges.retain(|e| e.from == f.node || e.to == f.node);
    map.nodes.retain(|n| *n == f.node || f.callers.contains(n) || f.callees.contains(n));
    Ok((map, f))
}
