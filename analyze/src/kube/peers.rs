//! Names DNS answers gave addresses, in capture order.
//!
//! The reader parses every DNS response (UDP port 53) and sends its
//! answers, with the ordinal of their packet, inside the tick that holds
//! the packet; every worker applies a tick's answers to its own
//! [`PeerNames`] before it handles the tick. A flow asks for the answers
//! seen before its first packet (its `flow_id`, which is that packet's
//! ordinal), which its worker always has by then: the answer set a row
//! sees depends only on the capture, never on threads, and no lock is
//! shared between workers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use trawl_proto::dns_answers::Answer;

/// Addresses remembered, at most.
pub const MAX_ADDRESSES: usize = 1 << 20;
/// Answers remembered per address, at most.
pub const MAX_PER_ADDRESS: usize = 16;

#[derive(Debug)]
struct Seen {
    ordinal: u64,
    question: Arc<str>,
    names: Arc<[Arc<str>]>,
}

/// DNS names of addresses (one copy per worker).
#[derive(Debug, Default)]
pub struct PeerNames {
    by_ip: HashMap<IpAddr, Vec<Seen>>,
    /// Answers not remembered because a cap was reached.
    pub dropped: u64,
    /// Answers remembered.
    pub answers: u64,
}

/// What DNS said about one address before a moment.
#[derive(Debug, Clone, Default)]
pub struct PeerName {
    /// The question of the latest answer.
    pub dns: Option<Arc<str>>,
    /// Every name of every such answer (questions and CNAME targets).
    pub names: Vec<Arc<str>>,
}

impl PeerNames {
    /// Records the answers of the response in packet `ordinal`.
    pub fn record(&mut self, ordinal: u64, answers: &[Answer]) {
        for a in answers {
            let full = self.by_ip.len() >= MAX_ADDRESSES && !self.by_ip.contains_key(&a.ip);
            let list = if full { None } else { Some(self.by_ip.entry(a.ip).or_default()) };
            match list {
                // The same answer again adds nothing.
                Some(l) if l.last().is_some_and(|s| &*s.question == a.question.as_str()) => {}
                Some(l) if l.len() < MAX_PER_ADDRESS => {
                    let names: Arc<[Arc<str>]> = a.names.iter().map(|n| Arc::from(n.as_str())).collect();
                    l.push(Seen { ordinal, question: Arc::from(a.question.as_str()), names });
                    self.answers += 1;
                }
                _ => self.dropped += 1,
            }
        }
    }

    /// What answers before packet `before` said about `ip`.
    pub fn lookup(&self, ip: IpAddr, before: u64) -> PeerName {
        let Some(list) = self.by_ip.get(&ip) else { return PeerName::default() };
        let mut out = PeerName::default();
        for s in list.iter().take_while(|s| s.ordinal < before) {
            for n in s.names.iter() {
                if !out.names.contains(n) {
                    out.names.push(n.clone());
                }
            }
            out.dns = Some(s.question.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(ip: &str, q: &str, names: &[&str]) -> Answer {
        Answer { ip: ip.parse().unwrap(), question: q.into(), names: names.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_flow_sees_only_earlier_answers() {
        let mut p = PeerNames::default();
        p.record(10, &[answer("203.0.113.10", "api.partner.example", &["api.partner.example", "edge.cdn.example"])]);
        p.record(20, &[answer("203.0.113.10", "other.example", &["other.example"])]);
        let ip = "203.0.113.10".parse().unwrap();
        assert_eq!(p.lookup(ip, 10).dns, None, "the answer's own packet is not before it");
        let at15 = p.lookup(ip, 15);
        assert_eq!(at15.dns.as_deref(), Some("api.partner.example"));
        assert_eq!(at15.names.len(), 2);
        let at30 = p.lookup(ip, 30);
        assert_eq!(at30.dns.as_deref(), Some("other.example"));
        assert_eq!(
            at30.names.iter().map(|n| &**n).collect::<Vec<_>>(),
            ["api.partner.example", "edge.cdn.example", "other.example"]
        );
    }

    #[test]
    fn caps_are_counted() {
        let mut p = PeerNames::default();
        for i in 0..(MAX_PER_ADDRESS as u64 + 3) {
            p.record(i, &[answer("10.0.0.1", &format!("n{i}.example"), &[])]);
        }
        assert_eq!(p.answers, MAX_PER_ADDRESS as u64);
        assert_eq!(p.dropped, 3);
    }
}
