//! Request chains: from one inbound call to the calls its server made
//! for it, and theirs in turn. Each downstream call has at most one
//! parent ([`crate::parents`]): the chain follows the calls linked by a
//! trace or request id, or by timing where only one request was in
//! flight. Calls that timing alone cannot place (several requests were
//! in flight at the server) are not followed: they are listed apart as
//! ambiguous, each with its number of candidate parents, so that a
//! chain under load does not gather every call the server made.

use serde_json::{Value, json};

use crate::calls::{Call, ms, rfc3339};
use crate::parents::{Link, Parents};

/// One call of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub depth: usize,
    pub call: usize,
    /// None for the root.
    pub link: Option<Link>,
}

/// A call that may belong to the chain: timing cannot tell which of
/// `candidates` requests it served.
#[derive(Debug, Clone, PartialEq)]
pub struct Ambiguous {
    pub call: usize,
    /// The chain's call it may belong to.
    pub maybe_parent: usize,
    pub candidates: usize,
    /// Whether the best guess ([`Parents`]) is `maybe_parent`.
    pub guessed_here: bool,
}

/// A chain: its calls (depth first, in start order), the ambiguous calls
/// around it, and whether either list was cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub steps: Vec<Step>,
    pub ambiguous: Vec<Ambiguous>,
    pub truncated: bool,
}

/// Deepest chain followed, and calls shown at most (each list).
const MAX_DEPTH: usize = 8;
const MAX_STEPS: usize = 1000;

/// The chain below `calls[root]` (calls in capture order).
pub fn chain(calls: &[Call], parents: &Parents, root: usize) -> Chain {
    let mut c =
        Chain { steps: vec![Step { depth: 0, call: root, link: None }], ambiguous: Vec::new(), truncated: false };
    walk(parents, root, 1, &mut c);
    c.ambiguous.sort_by_key(|a| (calls[a.call].start_ns, a.call));
    c
}

fn walk(parents: &Parents, parent: usize, depth: usize, out: &mut Chain) {
    if depth > MAX_DEPTH || out.truncated {
        return;
    }
    for &i in parents.maybe_children(parent) {
        if out.ambiguous.len() >= MAX_STEPS {
            out.truncated = true;
            return;
        }
        let candidates = parents.candidates(i).map_or(1, |(_, n)| n);
        let guessed_here = parents.of(i).is_some_and(|(p, _)| p == parent);
        out.ambiguous.push(Ambiguous { call: i, maybe_parent: parent, candidates, guessed_here });
    }
    for &i in parents.children(parent) {
        let Some((_, link)) = parents.of(i) else { continue };
        if link == Link::Ambiguous {
            continue;
        }
        if out.steps.len() >= MAX_STEPS {
            out.truncated = true;
            return;
        }
        out.steps.push(Step { depth, call: i, link: Some(link) });
        walk(parents, i, depth + 1, out);
    }
}

/// The chain as JSON: each call with its offset from the root.
pub fn to_json(calls: &[Call], chain: &Chain) -> Value {
    let root = &calls[chain.steps[0].call];
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    let call = |c: &Call| {
        json!({
            "id": c.id,
            "offset_ms": r(ms(root.start_ns, c.start_ns)),
            "duration_ms": r(c.latency_ms),
            "started": rfc3339(c.start_ns),
            "client": c.client,
            "server": c.server,
            "endpoint": c.endpoint,
            "protocol": c.protocol,
            "status": c.status,
            "failed": c.failed,
            "error": c.error,
        })
    };
    let mut v = json!({
        "root": root.id,
        "trace_id": root.trace_id,
        "truncated": chain.truncated,
        "calls": chain.steps.iter().map(|s| {
            let mut o = call(&calls[s.call]);
            o["depth"] = json!(s.depth);
            o["link"] = json!(s.link.map_or("root", Link::name));
            o
        }).collect::<Vec<_>>(),
    });
    if !chain.ambiguous.is_empty() {
        v["ambiguous"] = json!(
            chain
                .ambiguous
                .iter()
                .map(|a| {
                    let mut o = call(&calls[a.call]);
                    o["maybe_parent"] = json!(calls[a.maybe_parent].id);
                    o["candidate_parents"] = json!(a.candidates);
                    o["confidence"] = json!(r(Link::Ambiguous.confidence(a.candidates)));
                    o["best_guess_is_this_parent"] = json!(a.guessed_here);
                    o
                })
                .collect::<Vec<_>>()
        );
    }
    v
}
