//! Redundant calls: the same downstream request made more than once
//! where one answer would have done. Two shapes:
//! - **within one request**: the same call repeated while serving one
//!   inbound request (an N+1 query, a loop that re-reads a key);
//! - **across requests**: the same call (same caller, same request, same
//!   response) made while serving several inbound requests inside a
//!   window (a cache that never hits, or that is missing): a cache would
//!   have answered all but the first.
//!
//! Across requests, only reads count (what a cache could answer: HTTP
//! GET and HEAD, Redis read commands, SQL SELECT, MongoDB finds and
//! counts, DNS queries): two identical payments are two payments. A
//! downstream call belongs to the inbound request [`crate::parents`]
//! links it to. A repeat after a failure is a retry ([`crate::retries`]),
//! not redundancy: only successful identical calls count.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calls::{Call, rfc3339};
use crate::parents::Parents;

/// Where the repeats were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    WithinRequest,
    AcrossRequests,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::WithinRequest => "within_request",
            Scope::AcrossRequests => "across_requests",
        }
    }
}

/// One repeated downstream request.
#[derive(Debug, Clone, PartialEq)]
pub struct Redundant {
    pub scope: Scope,
    /// The inbound calls served while the repeats were made (one for
    /// [`Scope::WithinRequest`]).
    pub inbound: Vec<String>,
    pub inbound_endpoint: String,
    /// The service that made the repeated calls.
    pub service: String,
    pub downstream: String,
    pub protocol: String,
    /// The repeated request: method and URL (command and key, SQL, ...).
    pub request: String,
    pub count: usize,
    /// Within a request: the downstream calls of the inbound call in all.
    /// Across requests: the inbound requests the repeats served.
    pub downstream_calls: usize,
    pub first_ns: i64,
    pub last_ns: i64,
    pub calls: Vec<String>,
    /// What one answer reused would save: calls (all but the first) and
    /// their summed latency in ms.
    pub saving_calls: usize,
    pub saving_ms: f64,
}

/// Call ids listed at most per finding (the count is always whole).
const MAX_LISTED: usize = 50;

impl Redundant {
    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut v = json!({
            "scope": self.scope.name(),
            "inbound": self.inbound.first(),
            "inbound_endpoint": self.inbound_endpoint,
            "service": self.service,
            "downstream": self.downstream,
            "protocol": self.protocol,
            "request": self.request,
            "count": self.count,
            "first_at": rfc3339(self.first_ns),
            "last_at": rfc3339(self.last_ns),
            "calls": self.calls.iter().take(MAX_LISTED).collect::<Vec<_>>(),
            "calls_truncated": self.calls.len() > MAX_LISTED,
            "saving": {"calls": self.saving_calls, "ms": r(self.saving_ms)},
        });
        match self.scope {
            Scope::WithinRequest => v["downstream_calls"] = json!(self.downstream_calls),
            Scope::AcrossRequests => {
                v["inbound_requests"] = json!(self.downstream_calls);
                v["inbound_calls"] = json!(self.inbound.iter().take(MAX_LISTED).collect::<Vec<_>>());
            }
        }
        v
    }
}

/// Settings of the search.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Identical calls to report (2: any repeat).
    pub min_repeats: usize,
    /// Across requests: repeats count together while they start within
    /// this many ms of the first (a cache's lifetime).
    pub window_ms: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { min_repeats: 2, window_ms: 60_000.0 }
    }
}

/// Redis commands that only read.
const REDIS_READS: &[&str] = &[
    "GET",
    "MGET",
    "GETRANGE",
    "STRLEN",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "LRANGE",
    "LINDEX",
    "LLEN",
    "SMEMBERS",
    "SISMEMBER",
    "SCARD",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGE",
    "ZSCORE",
    "ZCARD",
    "ZRANK",
    "KEYS",
    "SCAN",
];

/// A request a cache could answer: a read.
pub fn is_read(c: &Call) -> bool {
    let m = c.method.to_ascii_uppercase();
    match c.protocol.as_str() {
        "http" => m == "GET" || m == "HEAD",
        "redis" => REDIS_READS.contains(&m.as_str()),
        "postgresql" | "mysql" => c.url.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("select")),
        "mongodb" => ["find", "count", "countdocuments", "distinct", "aggregate"]
            .contains(&c.method.to_ascii_lowercase().as_str()),
        "dns" => true,
        _ => false,
    }
}

fn finding(calls: &[Call], scope: Scope, inbound: Vec<usize>, group: &[usize], downstream_calls: usize) -> Redundant {
    let d = &calls[group[0]];
    let first = &calls[inbound[0]];
    Redundant {
        scope,
        inbound: inbound.iter().map(|&i| calls[i].id.clone()).collect(),
        inbound_endpoint: first.endpoint.clone(),
        service: first.server.clone(),
        downstream: d.server.clone(),
        protocol: d.protocol.clone(),
        request: format!("{} {}", d.method, d.url).trim().to_string(),
        count: group.len(),
        downstream_calls,
        first_ns: d.start_ns,
        last_ns: group.iter().map(|&j| calls[j].start_ns).max().unwrap_or(d.start_ns),
        calls: group.iter().map(|&j| calls[j].id.clone()).collect(),
        saving_calls: group.len() - 1,
        saving_ms: group[1..].iter().map(|&j| calls[j].latency_ms).sum(),
    }
}

/// Finds repeated downstream requests in `calls` (capture order): within
/// one inbound request, then across requests; each sorted by first time.
pub fn find(calls: &[Call], parents: &Parents, s: Settings) -> Vec<Redundant> {
    let min = s.min_repeats.max(2);
    let mut out = Vec::new();
    for (i, inside) in parents.with_children() {
        let mut same: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
        for &j in inside.iter().filter(|&&j| !calls[j].failed) {
            same.entry((calls[j].request_key, calls[j].response_key)).or_default().push(j);
        }
        for group in same.values().filter(|g| g.len() >= min) {
            out.push(finding(calls, Scope::WithinRequest, vec![i], group, inside.len()));
        }
    }
    // Across requests: the same caller, request and response, under at
    // least two inbound requests, within the window.
    let mut same: BTreeMap<(&str, u64, u64), Vec<usize>> = BTreeMap::new();
    for (j, c) in calls.iter().enumerate().filter(|(j, c)| !c.failed && is_read(c) && parents.of(*j).is_some()) {
        same.entry((c.client.as_str(), c.request_key, c.response_key)).or_default().push(j);
    }
    let window_ns = (s.window_ms * 1e6) as i64;
    for group in same.values() {
        let mut at = 0;
        while at < group.len() {
            let start = calls[group[at]].start_ns;
            let end =
                group[at..].iter().position(|&j| calls[j].start_ns - start > window_ns).map_or(group.len(), |k| at + k);
            let run = &group[at..end];
            let mut inbound: Vec<usize> = run.iter().filter_map(|&j| parents.of(j).map(|(p, _)| p)).collect();
            inbound.sort_by_key(|&p| (calls[p].start_ns, p));
            inbound.dedup();
            if run.len() >= min && inbound.len() >= 2 {
                let n = inbound.len();
                out.push(finding(calls, Scope::AcrossRequests, inbound, run, n));
            }
            at = end;
        }
    }
    out.sort_by(|a, b| (a.scope as u8, a.first_ns, &a.inbound).cmp(&(b.scope as u8, b.first_ns, &b.inbound)));
    out
}
