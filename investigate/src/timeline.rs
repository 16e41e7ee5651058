//! The incident timeline: per endpoint and time bucket, calls, failures
//! and latency against the endpoint's own level over the whole snapshot;
//! and the failures of each kind in the order they came back, with what
//! caused them. This is what answers "what happened at 14:02".
//!
//! Causes follow the request chains of [`crate::parents`]: a failed call
//! whose server made a downstream call that failed, or that was still in
//! flight when the failure was answered, failed because of it. A
//! downstream call still in flight when its caller's own request failed
//! was abandoned by the caller: its caller gave up on it, and the time
//! from its start to that moment is the caller's timeout (flagged as one
//! when every abandoned call of the kind waited the same time). Following
//! causes down from a failure ends at its origin: the deepest service
//! that failed or was too slow.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calls::{Call, percentile, rfc3339};
use crate::parents::Parents;

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

/// The failure kind of a call its caller gave up on.
pub const ABANDONED: &str = "abandoned_by_caller";

/// What made a failure: a downstream call of the failed call.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `server endpoint` of the downstream call.
    pub callee: String,
    pub call: String,
    /// `503`, `abandoned_by_caller`, ...
    pub kind: String,
    pub detail: String,
}

/// The failures of one kind at one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstFailure {
    pub server: String,
    pub endpoint: String,
    /// `503`, `no_response`, the protocol's error code, or
    /// [`ABANDONED`] for calls the caller gave up on.
    pub kind: String,
    /// When the first failing call was sent.
    pub first_request_ns: i64,
    /// When the first failure came back (the response's last byte; for
    /// an abandoned call, when its caller gave up).
    pub first_failed_ns: i64,
    pub last_failed_ns: i64,
    pub first_call: String,
    pub count: usize,
    /// Latency of that first failing call.
    pub latency_ms: f64,
    /// Latency of the failing calls of this kind: min and max (for
    /// abandoned calls, how long the caller waited).
    pub latency_range_ms: (f64, f64),
    /// The downstream call that made the first failure, if one did.
    pub caused_by: Option<Cause>,
}

impl FirstFailure {
    /// Calls abandoned by their caller after the same wait (within 5%, at
    /// least 100 ms): the caller's own timeout.
    pub fn looks_like_timeout(&self) -> bool {
        let (lo, hi) = self.latency_range_ms;
        self.kind == ABANDONED && lo >= 100.0 && hi <= lo * 1.05
    }
}

/// Where a failure began: the chain of causes from a failure down to the
/// deepest service that failed or was too slow.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// `server endpoint kind` of the failure the chain starts at.
    pub failure: String,
    /// `server endpoint` of the deepest cause.
    pub origin: String,
    pub origin_call: String,
    pub evidence: String,
    /// `server endpoint (kind)`, from the failure down to the origin.
    pub chain: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub bucket_ns: i64,
    pub buckets: Vec<Bucket>,
    /// In the order the first failure of each came back.
    pub first_failures: Vec<FirstFailure>,
    /// One per failure group that is not itself the cause of another,
    /// deepest cause last in its chain.
    pub origins: Vec<Origin>,
}

impl Timeline {
    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "bucket_ms": self.bucket_ns as f64 / 1e6,
            "first_failures": self.first_failures.iter().map(|f| {
                let mut v = json!({
                    "first_failed_at": rfc3339(f.first_failed_ns),
                    "first_request_at": rfc3339(f.first_request_ns),
                    "last_failed_at": rfc3339(f.last_failed_ns),
                    "server": f.server,
                    "endpoint": f.endpoint,
                    "kind": f.kind,
                    "count": f.count,
                    "first_call": f.first_call,
                    "latency_ms": r(f.latency_ms),
                    "latency_range_ms": [r(f.latency_range_ms.0), r(f.latency_range_ms.1)],
                    "looks_like_timeout": f.looks_like_timeout(),
                });
                if f.looks_like_timeout() {
                    v["timeout_ms"] = json!(r(f.latency_range_ms.0));
                }
                if let Some(c) = &f.caused_by {
                    v["caused_by"] = json!({"callee": c.callee, "call": c.call, "kind": c.kind, "detail": c.detail});
                }
                v
            }).collect::<Vec<_>>(),
            "origins": self.origins.iter().map(|o| json!({
                "failure": o.failure, "origin": o.origin, "origin_call": o.origin_call, "evidence": o.evidence, "chain": o.chain,
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

/// Shortest bucket, and most buckets per endpoint over a snapshot.
pub const MIN_BUCKET_NS: i64 = 1_000_000;
pub const MAX_BUCKETS: i64 = 10_000;

/// Checks a bucket size against the calls' span: at least 1 ms and at
/// most [`MAX_BUCKETS`] buckets; the message says what would do.
pub fn check_bucket(calls: &[Call], bucket_ns: Option<i64>) -> Result<Option<i64>, String> {
    let Some(b) = bucket_ns else { return Ok(None) };
    if b < MIN_BUCKET_NS {
        return Err(format!("expected at least 0.001 s (1 ms), got {} s", b as f64 / 1e9));
    }
    let span = calls.last().map_or(0, |l| l.start_ns) - calls.first().map_or(0, |f| f.start_ns);
    if span / b > MAX_BUCKETS {
        let least = (span / MAX_BUCKETS) as f64 / 1e9;
        return Err(format!(
            "{} s makes more than {MAX_BUCKETS} buckets over the calls' {:.3} s: use at least {least:.3} s",
            b as f64 / 1e9,
            span as f64 / 1e9
        ));
    }
    Ok(Some(b))
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

/// How a failed call failed, and the downstream call that made it fail.
struct Failed {
    call: usize,
    kind: String,
    /// When it failed: its response, or when its caller gave up on it.
    at_ns: i64,
    /// How long it took to fail (ms).
    took_ms: f64,
    cause: Option<usize>,
}

/// Every failed call (in the protocol's terms, or abandoned by its
/// caller) with its cause, in capture order.
fn failures(calls: &[Call], parents: &Parents) -> Vec<Failed> {
    let mut out: BTreeMap<usize, Failed> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate().filter(|(_, c)| c.failed) {
        out.insert(i, Failed { call: i, kind: c.failure_kind(), at_ns: c.end_ns, took_ms: c.latency_ms, cause: None });
    }
    // Downstream calls still in flight when their caller's request failed
    // were abandoned (unless they failed on their own before).
    let failed_parents: Vec<usize> = out.keys().copied().collect();
    for p in failed_parents {
        let parent = &calls[p];
        for &c in parents.children(p) {
            let child = &calls[c];
            let in_flight = !child.answered || child.end_ns > parent.end_ns;
            if in_flight && !child.failed {
                let took = (parent.end_ns - child.start_ns) as f64 / 1e6;
                out.entry(c).or_insert(Failed {
                    call: c,
                    kind: ABANDONED.to_string(),
                    at_ns: parent.end_ns,
                    took_ms: took,
                    cause: None,
                });
            }
        }
    }
    // A failure's cause: its first downstream call that failed (or was
    // abandoned) no later than it.
    let failed: Vec<usize> = out.keys().copied().collect();
    for p in failed {
        let at = out[&p].at_ns;
        let cause = parents.children(p).iter().copied().find(|c| out.get(c).is_some_and(|f| f.at_ns <= at && *c != p));
        if let Some(f) = out.get_mut(&p) {
            f.cause = cause;
        }
    }
    out.into_values().collect()
}

/// Builds the timeline of `calls` (capture order) with buckets of
/// `bucket_ns` (None: [`auto_bucket_ns`]).
pub fn build(calls: &[Call], parents: &Parents, bucket_ns: Option<i64>) -> Timeline {
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
                anomalous: (failures > 0 && failures as f64 / b.len() as f64 > rate)
                    || (usual > 0.0 && p50 > 3.0 * usual && b.len() < cs.len()),
            });
        }
    }
    buckets.sort_by(|a, b| {
        a.start_ns.cmp(&b.start_ns).then_with(|| (&a.server, &a.endpoint).cmp(&(&b.server, &b.endpoint)))
    });
    let failed = failures(calls, parents);
    let by_call: BTreeMap<usize, &Failed> = failed.iter().map(|f| (f.call, f)).collect();
    let name = |i: usize| format!("{} {}", calls[i].server, calls[i].endpoint);
    let mut groups: BTreeMap<(String, String, String), FirstFailure> = BTreeMap::new();
    for f in &failed {
        let c = &calls[f.call];
        let cause = f.cause.map(|k| {
            let kf = by_call[&k];
            let callee = &calls[k];
            let detail = if kf.kind == ABANDONED {
                format!(
                    "still in flight when {} answered: {} gave up on it after {:.1} ms (it took {:.1} ms)",
                    c.server, callee.client, kf.took_ms, callee.latency_ms
                )
            } else {
                format!("failed first with {} after {:.1} ms", kf.kind, kf.took_ms)
            };
            Cause { callee: name(k), call: callee.id.clone(), kind: kf.kind.clone(), detail }
        });
        groups
            .entry((c.server.clone(), c.endpoint.clone(), f.kind.clone()))
            .and_modify(|g| {
                g.count += 1;
                g.last_failed_ns = g.last_failed_ns.max(f.at_ns);
                g.latency_range_ms = (g.latency_range_ms.0.min(f.took_ms), g.latency_range_ms.1.max(f.took_ms));
                if f.at_ns < g.first_failed_ns {
                    g.first_failed_ns = f.at_ns;
                    g.first_request_ns = c.start_ns;
                    g.first_call = c.id.clone();
                    g.latency_ms = f.took_ms;
                    g.caused_by = cause.clone();
                }
            })
            .or_insert(FirstFailure {
                server: c.server.clone(),
                endpoint: c.endpoint.clone(),
                kind: f.kind.clone(),
                first_request_ns: c.start_ns,
                first_failed_ns: f.at_ns,
                last_failed_ns: f.at_ns,
                first_call: c.id.clone(),
                count: 1,
                latency_ms: f.took_ms,
                latency_range_ms: (f.took_ms, f.took_ms),
                caused_by: cause,
            });
    }
    let mut first_failures: Vec<FirstFailure> = groups.into_values().collect();
    first_failures
        .sort_by(|a, b| a.first_failed_ns.cmp(&b.first_failed_ns).then_with(|| a.first_call.cmp(&b.first_call)));
    Timeline { bucket_ns, buckets, origins: origins(calls, &failed, &by_call), first_failures }
}

/// The origin of each failure group that caused no other: its first
/// failure's causes followed down.
fn origins(calls: &[Call], failed: &[Failed], by_call: &BTreeMap<usize, &Failed>) -> Vec<Origin> {
    let key = |f: &Failed| (calls[f.call].server.clone(), calls[f.call].endpoint.clone(), f.kind.clone());
    // Groups that are some failure's cause are not where a story starts.
    let causes: std::collections::BTreeSet<(String, String, String)> =
        failed.iter().filter_map(|f| f.cause.map(|c| key(by_call[&c]))).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut ordered: Vec<&Failed> = failed.iter().collect();
    ordered.sort_by_key(|f| (f.at_ns, f.call));
    for f in ordered {
        let k = key(f);
        if causes.contains(&k) || !seen.insert(k.clone()) {
            continue;
        }
        let mut chain = vec![f];
        while let Some(next) = chain.last().and_then(|l| l.cause).map(|c| by_call[&c]) {
            if chain.len() > 16 || chain.iter().any(|x| x.call == next.call) {
                break;
            }
            chain.push(next);
        }
        let last = chain[chain.len() - 1];
        let lc = &calls[last.call];
        let evidence = if last.kind == ABANDONED {
            format!(
                "{} {} took {:.1} ms; its caller {} gave up after {:.1} ms, and the failure went back up from there",
                lc.server, lc.endpoint, lc.latency_ms, lc.client, last.took_ms
            )
        } else if chain.len() > 1 {
            format!(
                "{} {} failed with {} after {:.1} ms, and its callers failed after it",
                lc.server, lc.endpoint, last.kind, last.took_ms
            )
        } else {
            format!(
                "{} {} failed with {} after {:.1} ms, with no failing or slow downstream call",
                lc.server, lc.endpoint, last.kind, last.took_ms
            )
        };
        out.push(Origin {
            failure: format!("{} {} {}", k.0, k.1, k.2),
            origin: format!("{} {}", lc.server, lc.endpoint),
            origin_call: lc.id.clone(),
            evidence,
            chain: chain
                .iter()
                .map(|x| format!("{} {} ({})", calls[x.call].server, calls[x.call].endpoint, x.kind))
                .collect(),
        });
    }
    out
}
