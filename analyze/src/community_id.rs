//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>),
//! so that trawl's flows join with Zeek, Suricata, Arkime and Wireshark output.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const ICMP4_PAIRS: &[(u16, u16)] =
    &[(8, 0), (0, 8), (13, 14), (14, 13), (15, 16), (16, 15), (10, 9), (9, 10), (17, 18), (18, 17)];
const ICMP6_PAIRS: &[(u16, u16)] = &[
    (128, 129),
    (129, 128),
    (133, 134),
    (134, 133),
    (135, 136),
    (136, 135),
    (130, 131),
    (131, 130),
    (144, 145),
    (145, 144),
];

/// An address's bytes in network order: the first 4 of 16 for IPv4.
fn ip_bytes(a: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0; 16];
    match a {
        IpAddr::V4(v) => {
            out[..4].copy_from_slice(&v.octets());
            (out, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

/// Community ID's port equivalents for ICMP and ICMPv6 (`sport`, `dport`
/// are the type and code): a type with a counterpart (echo request/reply
/// and the like) pairs with it, and the flow is two-way; any other type
/// keeps its code and is one-way. Returns (port1, port2, one_way). Flow
/// keys use the same pairing, so both directions share a flow.
pub fn icmp_ports(proto: u8, sport: u16, dport: u16) -> Option<(u16, u16, bool)> {
    let pairs = match proto {
        1 => ICMP4_PAIRS,
        58 => ICMP6_PAIRS,
        _ => return None,
    };
    Some(match pairs.iter().find(|(t, _)| *t == sport) {
        Some((t, other)) => (*t, *other, false),
        None => (sport, dport, true),
    })
}

/// The Community ID v1 string (`1:<base64>`) of a flow, for the given seed.
/// For ICMP/ICMPv6, `sport` and `dport` are the type and code.
pub fn community_id(seed: u16, src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> String {
    let (mut sport, mut dport, one_way) = icmp_ports(proto, sport, dport).unwrap_or((sport, dport, false));
    let ((s, sn), (d, dn)) = (ip_bytes(&src), ip_bytes(&dst));
    let (mut s, mut d) = (&s[..sn], &d[..dn]);
    if !(one_way || (s, sport) < (d, dport)) {
        std::mem::swap(&mut s, &mut d);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(s);
    h.update(d);
    h.update([proto, 0]);
    if matches!(proto, 1 | 6 | 17 | 58 | 132) {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(h.finalize(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_id_matches_tshark_and_is_symmetric() {
        // tshark --enable-protocol communityid on zeek_http-vlan-0.pcap.
        let a: IpAddr = "141.142.228.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "192.150.187.43".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(community_id(0, a, b, 6, 59856, 80), "1:yvyB8h+3dnggTZW0UEITWCst97w=");
        assert_eq!(community_id(0, b, a, 6, 80, 59856), "1:yvyB8h+3dnggTZW0UEITWCst97w=");
    }
}
