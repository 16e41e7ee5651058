//! Which inbound call each downstream call was made for.
//!
//! A call C from address A is a downstream call of an inbound call P when
//! P reached A (A is P's server), C started while P was in flight, and C
//! goes to another server than P. When several inbound calls were in
//! flight at A, the trace or request id decides (W3C `traceparent`, B3,
//! `x-request-id`: a different id rules a candidate out, the same id
//! picks it); when no id decides and more than one candidate is left,
//! timing cannot tell which request C served. C then still gets one
//! parent (so that counts per request add up: every downstream call is
//! counted once), the best guess, and is marked [`Link::Ambiguous`] with
//! its candidates, so that a trace can say so instead of showing C under
//! every request that was in flight.
//!
//! The best guess is taken among the candidates of the endpoint most of
//! them share (twelve order reads and one payment in flight: an order
//! read), so that counts per endpoint hold even where the one request
//! cannot be told: the one that answered first once C had returned (a
//! server that serves one request at a time answers the one it made C
//! for next), else the latest to start.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::calls::Call;

/// How a call was linked to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The same trace or request id.
    Header,
    /// The only inbound call in flight at the caller when it started.
    Timing,
    /// Several inbound calls were in flight and no id decides: the parent
    /// is a guess among [`Parents::candidates`].
    Ambiguous,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Header => "trace header",
            Link::Timing => "timing",
            Link::Ambiguous => "timing (ambiguous)",
        }
    }

    /// How sure the link is: 1 for an id, 1 for the only candidate, 1/n
    /// for a guess among n.
    pub fn confidence(self, candidates: usize) -> f64 {
        match self {
            Link::Header | Link::Timing => 1.0,
            Link::Ambiguous => 1.0 / candidates.max(1) as f64,
        }
    }
}

/// Candidates kept per ambiguous call (the count is kept whole).
const MAX_CANDIDATES: usize = 64;

/// The parent of every call that has one.
#[derive(Debug, Default)]
pub struct Parents {
    /// Per call: its parent and the link.
    parent: Vec<Option<(usize, Link)>>,
    /// Per ambiguous call: its candidate parents (best guess first, at
    /// most [`MAX_CANDIDATES`]), how many there were, and whether they
    /// all serve one endpoint.
    candidates: HashMap<usize, (Vec<usize>, usize, bool)>,
    /// Per call: the calls whose parent it is, in start order.
    children: Vec<Vec<usize>>,
    /// Per call: the ambiguous calls it is a candidate parent of.
    maybe_children: HashMap<usize, Vec<usize>>,
}

impl Parents {
    /// Links `calls` (in start order, as [`crate::calls::load`] returns them).
    pub fn new(calls: &[Call]) -> Parents {
        let n = calls.len();
        let mut p = Parents { parent: vec![None; n], children: vec![Vec::new(); n], ..Default::default() };
        // Per address: the calls it served (intervals) and the calls it made (points).
        let mut served: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut made: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in calls.iter().enumerate() {
            served.entry(c.server_ip.as_str()).or_default().push(i);
            made.entry(c.client_ip.as_str()).or_default().push(i);
        }
        for (ip, out) in &made {
            let Some(inb) = served.get(ip) else { continue };
            // Sweep in start order: inbound calls join the in-flight set as
            // they start and leave it once they ended before the next
            // outbound call (an inbound call starting at the same instant
            // as an outbound one counts as in flight).
            let mut in_flight: BTreeSet<(i64, usize)> = BTreeSet::new();
            let mut next_in = 0;
            for &c in out {
                let child = &calls[c];
                while next_in < inb.len() && calls[inb[next_in]].start_ns <= child.start_ns {
                    let j = inb[next_in];
                    in_flight.insert((calls[j].end_ns, j));
                    next_in += 1;
                }
                while in_flight.first().is_some_and(|&(end, _)| end < child.start_ns) {
                    in_flight.pop_first();
                }
                let fits = |&&(_, j): &&(i64, usize)| j != c && calls[j].server != child.server;
                let compatible = |j: usize| match (&calls[j].trace_id, &child.trace_id) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                let same_id: Vec<usize> = match &child.trace_id {
                    Some(t) => in_flight
                        .iter()
                        .filter(fits)
                        .map(|&(_, j)| j)
                        .filter(|&j| calls[j].trace_id.as_ref() == Some(t))
                        .collect(),
                    None => Vec::new(),
                };
                let (pool, link) = if !same_id.is_empty() {
                    (same_id, Link::Header)
                } else {
                    let pool: Vec<usize> =
                        in_flight.iter().filter(fits).map(|&(_, j)| j).filter(|&j| compatible(j)).collect();
                    let link = if pool.len() == 1 { Link::Timing } else { Link::Ambiguous };
                    (pool, link)
                };
                let Some(best) = best_guess(calls, child, &pool) else { continue };
                p.parent[c] = Some((best, link));
                p.children[best].push(c);
                if link == Link::Ambiguous {
                    let one_endpoint = pool
                        .iter()
                        .all(|&j| calls[j].server == calls[best].server && calls[j].endpoint == calls[best].endpoint);
                    let mut list: Vec<usize> =
                        std::iter::once(best).chain(pool.iter().copied().filter(|&j| j != best)).collect();
                    let count = list.len();
                    list.truncate(MAX_CANDIDATES);
                    for &j in &list {
                        p.maybe_children.entry(j).or_default().push(c);
                    }
                    p.candidates.insert(c, (list, count, one_endpoint));
                }
            }
        }
        for v in p.children.iter_mut().chain(p.maybe_children.values_mut()) {
            v.sort_by(|&a, &b| calls[a].start_ns.cmp(&calls[b].start_ns).then(a.cmp(&b)));
        }
        p
    }

    /// The parent of call `i` and how it was linked.
    pub fn of(&self, i: usize) -> Option<(usize, Link)> {
        self.parent.get(i).copied().flatten()
    }

    /// The calls whose parent `i` is (guesses included), in start order.
    pub fn children(&self, i: usize) -> &[usize] {
        self.children.get(i).map_or(&[], Vec::as_slice)
    }

    /// The ambiguous calls `i` may be the parent of (whether or not it is
    /// the guess), in start order.
    pub fn maybe_children(&self, i: usize) -> &[usize] {
        self.maybe_children.get(&i).map_or(&[], Vec::as_slice)
    }

    /// An ambiguous call's candidate parents (best guess first, at most
    /// 64) and their full count.
    pub fn candidates(&self, i: usize) -> Option<(&[usize], usize)> {
        self.candidates.get(&i).map(|(v, n, _)| (v.as_slice(), *n))
    }

    /// Whether the endpoint call `i` was made for is known: it has a
    /// parent by id or by the only request in flight, or every candidate
    /// serves the same endpoint (which request, timing cannot tell; which
    /// endpoint, it can). Counts per endpoint ([`crate::diff`]) keep to these.
    pub fn endpoint_known(&self, i: usize) -> bool {
        match self.of(i) {
            None => false,
            Some((_, Link::Ambiguous)) => self.candidates.get(&i).is_some_and(|c| c.2),
            Some(_) => true,
        }
    }

    /// Every call with children, and its children.
    pub fn with_children(&self) -> impl Iterator<Item = (usize, &[usize])> {
        self.children.iter().enumerate().filter(|(_, v)| !v.is_empty()).map(|(i, v)| (i, v.as_slice()))
    }
}

/// Among the candidates of the endpoint most candidates share (ties: the
/// endpoint first in order), the one that answered first once `child`
/// had returned, else the one that started last (ties: the lower index).
fn best_guess(calls: &[Call], child: &Call, pool: &[usize]) -> Option<usize> {
    let mut by_endpoint: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for &j in pool {
        by_endpoint.entry((calls[j].server.as_str(), calls[j].endpoint.as_str())).or_default().push(j);
    }
    let most = by_endpoint.values().map(Vec::len).max()?;
    let pool = by_endpoint.into_values().find(|v| v.len() == most)?;
    let after = pool.iter().copied().filter(|&j| calls[j].end_ns >= child.end_ns).min_by_key(|&j| (calls[j].end_ns, j));
    after.or_else(|| pool.iter().copied().max_by_key(|&j| (calls[j].start_ns, std::cmp::Reverse(j))))
}
