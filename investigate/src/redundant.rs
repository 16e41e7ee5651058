//! Redundant calls: the same downstream request made more than once while
//! serving one inbound request (an N+1 query, a cache that never hits).
//! The downstream calls of an inbound call are those its server made
//! (from the address the inbound call reached) that started inside the
//! inbound call's window (a call the server abandoned on a timeout may
//! end after it). A repeat after a failure is a retry ([`crate::retries`]),
//! not redundancy: only successful identical calls count. Servers that serve several requests
//! at once can have another request's calls inside the window; identical
//! repeats are still what this reports.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calls::{Call, rfc3339};

/// One inbound call with a downstream request repeated inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Redundant {
    pub inbound: String,
    pub inbound_endpoint: String,
    /// The service that made the repeated calls.
    pub service: String,
    pub downstream: String,
    pub protocol: String,
    /// The repeated request: method and URL (command and key, SQL, ...).
    pub request: String,
    pub count: usize,
    /// Downstream calls of the inbound call in all.
    pub downstream_calls: usize,
    pub first_ns: i64,
    pub calls: Vec<String>,
}

impl Redundant {
    pub fn to_json(&self) -> Value {
        json!({
            "inbound": self.inbound,
            "inbound_endpoint": self.inbound_endpoint,
            "service": self.service,
            "downstream": self.downstream,
            "protocol": self.protocol,
            "request": self.request,
            "count": self.count,
            "downstream_calls": self.downstream_calls,
            "first_at": rfc3339(self.first_ns),
            "calls": self.calls,
        })
    }
}

/// Finds the calls a server made while serving a call: those from the
/// address the call reached, to another server, starting inside the
/// call's window. (A call to the same server in that window is other
/// traffic to it: on a host whose clients and servers share an address,
/// every concurrent request would look like a downstream call.)
pub struct Downstream<'a> {
    calls: &'a [Call],
    /// Indexes of the calls each address made, in start order.
    by_client: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Downstream<'a> {
    /// `calls` must be in capture order.
    pub fn new(calls: &'a [Call]) -> Downstream<'a> {
        let mut by_client: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in calls.iter().enumerate() {
            by_client.entry(c.client_ip.as_str()).or_default().push(i);
        }
        Downstream { calls, by_client }
    }

    /// The downstream calls of `calls[i]`, in start order.
    pub fn of(&self, i: usize) -> Vec<usize> {
        let (calls, inbound) = (self.calls, &self.calls[i]);
        let Some(made) = self.by_client.get(inbound.server_ip.as_str()) else { return Vec::new() };
        let from = made.partition_point(|&j| calls[j].start_ns < inbound.start_ns);
        made[from..].iter().copied().take_while(|&j| calls[j].start_ns <= inbound.end_ns).filter(|&j| j != i && calls[j].server != inbound.server).collect()
    }
}

/// The downstream calls of every call that made some, by index.
pub fn downstream_of(calls: &[Call]) -> Vec<(usize, Vec<usize>)> {
    let d = Downstream::new(calls);
    (0..calls.len()).map(|i| (i, d.of(i))).filter(|(_, v)| !v.is_empty()).collect()
}

/// Finds the inbound calls inside which an identical downstream request
/// was made more than `min_repeats - 1` times.
pub fn find(calls: &[Call], min_repeats: usize) -> Vec<Redundant> {
    let mut out = Vec::new();
    for (i, inside) in downstream_of(calls) {
        let inbound = &calls[i];
        let mut same: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &j in inside.iter().filter(|&&j| !calls[j].failed) {
            same.entry(calls[j].request_key).or_default().push(j);
        }
        for group in same.values().filter(|g| g.len() >= min_repeats.max(2)) {
            let d = &calls[group[0]];
            out.push(Redundant {
                inbound: inbound.id.clone(),
                inbound_endpoint: inbound.endpoint.clone(),
                service: inbound.server.clone(),
                downstream: d.server.clone(),
                protocol: d.protocol.clone(),
                request: format!("{} {}", d.method, d.url).trim().to_string(),
                count: group.len(),
                downstream_calls: inside.len(),
                first_ns: d.start_ns,
                calls: group.iter().map(|&j| calls[j].id.clone()).collect(),
            });
        }
    }
    out.sort_by(|a, b| a.first_ns.cmp(&b.first_ns).then_with(|| a.inbound.cmp(&b.inbound)));
    out
}
