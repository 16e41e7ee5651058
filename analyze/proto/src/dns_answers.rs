//! What DNS responses say addresses are called: the address records of a
//! response, each with the question that led to it and the CNAME chain
//! on the way. Parsing is simple-dns's (a checked view of the message);
//! this module only follows the chain. A message that does not parse
//! yields nothing: the caller counts it.

use get_size2::GetSize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag};

/// One address a response gave.
#[derive(Debug, Clone, PartialEq, Eq, GetSize)]
pub struct Answer {
    #[get_size(ignore)]
    pub ip: IpAddr,
    /// The name asked for (lower case, no trailing dot).
    pub question: String,
    /// Every name from the question to the address record, in order
    /// (the question, then CNAME targets).
    pub names: Vec<String>,
}

/// Chains longer than this are cut (loops, hostile responses).
const MAX_CHAIN: usize = 8;

fn norm(s: String) -> String {
    let s = s.trim_end_matches('.');
    s.to_ascii_lowercase()
}

/// The addresses of a DNS response; `None` if the payload is not a DNS
/// response.
pub fn answers(payload: &[u8]) -> Option<Vec<Answer>> {
    let p = Packet::parse(payload).ok()?;
    if !p.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let mut out = Vec::new();
    let cnames: Vec<(String, String)> = p
        .answers
        .iter()
        .filter_map(|rr| match &rr.rdata {
            RData::CNAME(c) => Some((norm(rr.name.to_string()), norm(c.0.to_string()))),
            _ => None,
        })
        .collect();
    for q in &p.questions {
        let question = norm(q.qname.to_string());
        let mut names = vec![question.clone()];
        while names.len() < MAX_CHAIN {
            let Some(last) = names.last() else { break };
            match cnames.iter().find(|(from, _)| from == last) {
                Some((_, to)) if !names.contains(to) => names.push(to.clone()),
                _ => break,
            }
        }
        for rr in &p.answers {
            let ip = match &rr.rdata {
                RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
                RData::AAAA(a) => IpAddr::V6(Ipv6Addr::from(a.address)),
                _ => continue,
            };
            if names.contains(&norm(rr.name.to_string())) && !out.iter().any(|a: &Answer| a.ip == ip) {
                out.push(Answer { ip, question: question.clone(), names: names.clone() });
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for www.example.com: CNAME edge.example.net, A 93.184.216.34.
    fn response() -> Vec<u8> {
        crate::dns::tests::example().1
    }

    #[test]
    fn follows_the_cname_chain() {
        let a = answers(&response()).unwrap_or_default();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].ip, "93.184.216.34".parse::<IpAddr>().unwrap());
        assert_eq!(a[0].question, "www.example.com");
        assert_eq!(a[0].names, ["www.example.com", "edge.example.net"]);
    }

    #[test]
    fn queries_and_garbage_give_nothing() {
        let mut q = response();
        q[2] = 0x01; // a query
        assert_eq!(answers(&q), None);
        assert_eq!(answers(&[1, 2, 3]), None);
        for cut in 0..response().len() {
            let _ = answers(&response()[..cut]);
        }
    }
}
