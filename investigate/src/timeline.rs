//! The incident timeline: per endpoint and time bucket, calls, failures
//! and latency against the endpoint's own level over the whole snapshot;
//! and the first failure of each kind, in the order they began. This is
//! what answers "what happened at 14:02".

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calls::{Call, percentile, rfc3339};

/// One endpoint in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start_ns: i64,
    pub server: String,
    pub endpoint: String,
    pub calls: usize,
    pub failures: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Failures here while the endpoint's rate over the snapshot is lower,
    /// or latency (p50) above three times the endpoint's usual p50.
    pub anomalous: bool,
}

/// The first failure of a kind: an endpoint and a status or error.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstFailure {
    pub server: String,
    pub endpoint: String,
    /// `503`, `no_response`, the protocol's error code, ...
    pub kind: String,
    pub first_ns: i64,
    pub last_ns: i64,
    pub first_call: String,
    pub count: usize,
    /// Latency of that first failing call.
    pub latency_ms: f64,
    /// Latency of the failing calls of this kind: min and max.
    pub latency_range_ms: (f64, f64),
}

impl FirstFailure {
    /// Several failures that all took the same time (within 5%, and at
    /// least 100 ms): the mark of a caller's timeout.
    pub fn looks_like_timeout(&self) -> bool {
        let (lo, hi) = self.latency_range_ms;
        self.count >= 2 && lo >= 100.0 && hi <= lo * 1.05
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub bucket_ns: i64,
    pub buckets: Vec<Bucket>,
    pub first_failures: Vec<FirstFailure>,
}

impl Timeline {
    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "bucket_ms": self.bucket_ns / 1_000_000,
            "first_failures": self.first_failures.iter().map(|f| json!({
                "first_at": rfc3339(f.first_ns),
                "last_at": rfc3339(f.last_ns),
                "server": f.server,
                "endpoint": f.endpoint,
                "kind": f.kind,
                "count": f.count,
                "first_call": f.first_call,
                "latency_ms": r(f.latency_ms),
                "latency_range_ms": [r(f.latency_range_ms.0), r(f.latency_range_ms.1)],
                "looks_like_timeout": f.looks_like_timeout(),
            })).collect::<Vec<_>>(),
            "buckets": self.buckets.iter().map(|b| json!({
                "start": rfc3339(b.start_ns),
                "server": b.server,
                "endpoint": b.endpoint,
                "calls": b.calls,
                "failures": b.failures,
                "p50_ms": r(b.p50_ms),
                "p99_ms": r(b.p99_ms),
                "anomalous": b.anomalous,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A bucket size for a span: about 60 buckets, rounded to 1, 2, 5 times
/// a power of ten of seconds (at least 1 s).
pub fn auto_bucket_ns(span_ns: i64) -> i64 {
    let target = (span_ns / 60).max(1_000_000_000);
    let mut unit = 1_000_000_000i64;
    loop {
        for m in [1, 2, 5] {
            if unit * m >= target {
                return unit * m;
            }
        }
        unit *= 10;
    }
}

/// Builds the timeline of `calls` (capture order) with buckets of
/// `bucket_ns` (None: [`auto_bucket_ns`]).
pub fn build(calls: &[Call], bucket_ns: Option<i64>) -> Timeline {
    let span = calls.last().map_or(0, |l| l.start_ns) - calls.first().map_or(0, |f| f.start_ns);
    let bucket_ns = bucket_ns.unwrap_or_else(|| auto_bucket_ns(span)).max(1);
    let mut per_endpoint: BTreeMap<(&str, &str), Vec<&Call>> = BTreeMap::new();
    for c in calls {
        per_endpoint.entry((&c.server, &c.endpoint)).or_default().push(c);
    }
    let mut buckets = Vec::new();
    for ((server, endpoint), cs) in &per_endpoint {
        let rate = cs.iter().filter(|c| c.failed).count() as f64 / cs.len() as f64;
        let usual = percentile(&cs.iter().map(|c| c.latency_ms).collect::<Vec<_>>(), 0.5);
        let mut by_bucket: BTreeMap<i64, Vec<&Call>> = BTreeMap::new();
        for c in cs {
            by_bucket.entry(c.start_ns.div_euclid(bucket_ns) * bucket_ns).or_default().push(c);
        }
        for (start, b) in by_bucket {
            let lat: Vec<f64> = b.iter().map(|c| c.latency_ms).collect();
            let failures = b.iter().filter(|c| c.failed).count();
            let p50 = percentile(&lat, 0.5);
            buckets.push(Bucket {
                start_ns: start,
                server: server.to_string(),
                endpoint: endpoint.to_string(),
                calls: b.len(),
                failures,
                p50_ms: p50,
                p99_ms: percentile(&lat, 0.99),
                anomalous: (failures > 0 && failures as f64 / b.len() as f64 > rate) || (usual > 0.0 && p50 > 3.0 * usual && b.len() < cs.len()),
            });
        }
    }
    buckets.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then_with(|| (&a.server, &a.endpoint).cmp(&(&b.server, &b.endpoint))));
    let mut firsts: BTreeMap<(String, String, String), FirstFailure> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.failed) {
        let k = c.failure_kind();
        firsts
            .entry((c.server.clone(), c.endpoint.clone(), k.clone()))
            .and_modify(|f| {
                f.count += 1;
                f.last_ns = c.start_ns;
                f.latency_range_ms = (f.latency_range_ms.0.min(c.latency_ms), f.latency_range_ms.1.max(c.latency_ms));
            })
            .or_insert(FirstFailure {
                server: c.server.clone(),
                endpoint: c.endpoint.clone(),
                kind: k,
                first_ns: c.start_ns,
                last_ns: c.start_ns,
                first_call: c.id.clone(),
                count: 1,
                latency_ms: c.latency_ms,
                latency_range_ms: (c.latency_ms, c.latency_ms),
            });
    }
    let mut first_failures: Vec<FirstFailure> = firsts.into_values().collect();
    first_failures.sort_by(|a, b| a.first_ns.cmp(&b.first_ns).then_with(|| a.first_call.cmp(&b.first_call)));
    Timeline { bucket_ns, buckets, first_failures }
}
