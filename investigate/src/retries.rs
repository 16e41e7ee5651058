//! Retries: the same request sent again by the same client to the same
//! server after it failed. A chain starts at a failed call; each identical
//! request that starts after the previous attempt ended (within
//! [`Settings::max_gap_ms`]) is the next attempt; the chain ends at the
//! first success or when the client gives up.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calls::{Call, ms, rfc3339};

/// How a chain's waits between attempts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// One wait only: nothing to compare.
    Single,
    /// The same wait every time (within 25%): no backoff.
    Constant,
    /// Each wait 1.5 to 3.5 times the one before (doubling, typically).
    Exponential,
    /// Each wait longer than the one before by about the same amount.
    Linear,
    Irregular,
}

impl Backoff {
    pub fn name(self) -> &'static str {
        match self {
            Backoff::Single => "single",
            Backoff::Constant => "constant",
            Backoff::Exponential => "exponential",
            Backoff::Linear => "linear",
            Backoff::Irregular => "irregular",
        }
    }

    /// Classifies waits (ms) between attempts.
    pub fn of(waits: &[f64]) -> Backoff {
        if waits.len() < 2 {
            return Backoff::Single;
        }
        let (min, max) = waits.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        if min > 0.0 && max / min <= 1.25 {
            return Backoff::Constant;
        }
        let pairs: Vec<(f64, f64)> = waits.windows(2).map(|w| (w[0], w[1])).collect();
        let growth = |lo: f64, hi: f64| pairs.iter().all(|&(a, b)| a > 0.0 && (lo..=hi).contains(&(b / a)));
        // Doubling first (1, 2 is both doubling and a step of 1), then a
        // constant step, then any steady growth.
        if growth(1.8, 2.2) {
            return Backoff::Exponential;
        }
        let step = waits[1] - waits[0];
        if step > 0.0 && pairs.iter().all(|&(a, b)| ((b - a) - step).abs() <= 0.2 * step) {
            return Backoff::Linear;
        }
        if growth(1.5, 3.5) {
            return Backoff::Exponential;
        }
        Backoff::Irregular
    }
}

/// Settings of the search.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The longest wait between two attempts of one chain.
    pub max_gap_ms: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_gap_ms: 60_000.0 }
    }
}

/// One chain of attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub client: String,
    pub server: String,
    pub endpoint: String,
    pub calls: Vec<String>,
    pub first_ns: i64,
    /// Status (or error) of each attempt.
    pub outcomes: Vec<String>,
    /// Wait before each retry: from the end of one attempt (its response)
    /// to the start of the next, in ms.
    pub waits_ms: Vec<f64>,
    /// From the start of one attempt to the start of the next, in ms.
    pub intervals_ms: Vec<f64>,
    /// Per retry: whether it went over the previous attempt's connection.
    pub reused_connection: Vec<bool>,
    pub backoff: Backoff,
    /// The last attempt succeeded.
    pub succeeded: bool,
}

impl Retry {
    pub fn to_json(&self) -> Value {
        json!({
            "client": self.client,
            "server": self.server,
            "endpoint": self.endpoint,
            "attempts": self.calls.len(),
            "first_at": rfc3339(self.first_ns),
            "waits_ms": self.waits_ms.iter().map(|w| (w * 10.0).round() / 10.0).collect::<Vec<_>>(),
            "intervals_ms": self.intervals_ms.iter().map(|w| (w * 10.0).round() / 10.0).collect::<Vec<_>>(),
            "reused_connection": self.reused_connection,
            "backoff": self.backoff.name(),
            "outcomes": self.outcomes,
            "succeeded": self.succeeded,
            "calls": self.calls,
        })
    }
}

fn outcome(c: &Call) -> String {
    match (c.failed, c.status) {
        (true, _) => c.failure_kind(),
        (false, 0) => "ok".into(),
        (false, s) => s.to_string(),
    }
}

/// Finds retry chains in `calls` (capture order), first attempt first.
pub fn find(calls: &[Call], settings: Settings) -> Vec<Retry> {
    let mut groups: BTreeMap<(&str, u64), Vec<&Call>> = BTreeMap::new();
    for c in calls {
        groups.entry((c.client.as_str(), c.request_key)).or_default().push(c);
    }
    let mut out = Vec::new();
    for same in groups.values() {
        let mut i = 0;
        while i < same.len() {
            if !same[i].failed {
                i += 1;
                continue;
            }
            let mut chain = vec![same[i]];
            let mut j = i + 1;
            while j < same.len() {
                let (prev, next) = (chain[chain.len() - 1], same[j]);
                let wait = ms(prev.end_ns, next.start_ns);
                if wait < 0.0 || wait > settings.max_gap_ms {
                    break;
                }
                chain.push(next);
                j += 1;
                if !next.failed {
                    break;
                }
            }
            if chain.len() >= 2 {
                let waits: Vec<f64> = chain.windows(2).map(|w| ms(w[0].end_ns, w[1].start_ns)).collect();
                let last = chain[chain.len() - 1];
                out.push(Retry {
                    client: chain[0].client.clone(),
                    server: chain[0].server.clone(),
                    endpoint: chain[0].endpoint.clone(),
                    calls: chain.iter().map(|c| c.id.clone()).collect(),
                    first_ns: chain[0].start_ns,
                    outcomes: chain.iter().map(|c| outcome(c)).collect(),
                    backoff: Backoff::of(&waits),
                    waits_ms: waits,
                    intervals_ms: chain.windows(2).map(|w| ms(w[0].start_ns, w[1].start_ns)).collect(),
                    reused_connection: chain.windows(2).map(|w| w[0].flow_id == w[1].flow_id).collect(),
                    succeeded: !last.failed,
                });
            }
            i = j.max(i + 1);
        }
    }
    out.sort_by(|a, b| a.first_ns.cmp(&b.first_ns).then_with(|| a.calls.cmp(&b.calls)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_shapes() {
        assert_eq!(Backoff::of(&[1000.0, 1001.0, 998.0]), Backoff::Constant);
        assert_eq!(Backoff::of(&[1000.0, 2001.0, 4003.0]), Backoff::Exponential);
        assert_eq!(Backoff::of(&[1000.0, 2000.0, 3000.0]), Backoff::Linear);
        assert_eq!(Backoff::of(&[1000.0, 50.0, 3000.0]), Backoff::Irregular);
        assert_eq!(Backoff::of(&[1000.0]), Backoff::Single);
    }
}
