//! Request chains: from one inbound call to the calls its server made
//! while it was in flight, and theirs in turn. A downstream call belongs
//! to the chain when it carries the same trace id (W3C `traceparent`,
//! B3, or `x-request-id`), or, without one, when it started inside the
//! call's window from the address the call reached, to another server
//! (timing). A
//! downstream call with another trace id belongs to another request and
//! is left out.

use serde_json::{Value, json};

use crate::calls::{Call, ms, rfc3339};
use crate::redundant::Downstream;

/// How a call was linked to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Root,
    /// The same trace id.
    Header,
    /// Made by the parent's server while the parent was in flight.
    Timing,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Root => "root",
            Link::Header => "trace header",
            Link::Timing => "timing",
        }
    }
}

/// One call of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub depth: usize,
    pub call: usize,
    pub link: Link,
}

/// Deepest chain followed, and calls shown at most.
const MAX_DEPTH: usize = 8;
const MAX_STEPS: usize = 1000;

/// The chain below `calls[root]` (capture order), depth first, in start
/// order; and whether it was cut at [`MAX_STEPS`] calls.
pub fn chain(calls: &[Call], root: usize) -> (Vec<Step>, bool) {
    let index = Downstream::new(calls);
    let mut out = vec![Step { depth: 0, call: root, link: Link::Root }];
    let cut = walk(calls, &index, root, 1, &mut out);
    (out, cut)
}

fn walk(calls: &[Call], index: &Downstream<'_>, parent: usize, depth: usize, out: &mut Vec<Step>) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let p = &calls[parent];
    for i in index.of(parent) {
        let link = match (&p.trace_id, &calls[i].trace_id) {
            (Some(a), Some(b)) if a == b => Link::Header,
            (Some(_), Some(_)) => continue,
            _ => Link::Timing,
        };
        if out.len() >= MAX_STEPS {
            return true;
        }
        out.push(Step { depth, call: i, link });
        if walk(calls, index, i, depth + 1, out) {
            return true;
        }
    }
    false
}

/// The chain as JSON: each call with its offset from the root.
pub fn to_json(calls: &[Call], steps: &[Step], cut: bool) -> Value {
    let root = &calls[steps[0].call];
    json!({
        "root": root.id,
        "trace_id": root.trace_id,
        "truncated": cut,
        "calls": steps.iter().map(|s| {
            let c = &calls[s.call];
            json!({
                "id": c.id,
                "depth": s.depth,
                "link": s.link.name(),
                "offset_ms": (ms(root.start_ns, c.start_ns) * 1000.0).round() / 1000.0,
                "duration_ms": (c.latency_ms * 1000.0).round() / 1000.0,
                "started": rfc3339(c.start_ns),
                "client": c.client,
                "server": c.server,
                "endpoint": c.endpoint,
                "protocol": c.protocol,
                "status": c.status,
                "failed": c.failed,
                "error": c.error,
            })
        }).collect::<Vec<_>>(),
    })
}
