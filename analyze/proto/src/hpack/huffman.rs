//! The HPACK Huffman code (RFC 7541 Appendix B), decoded fast.
//!
//! `loona-hpack` builds its Huffman decoding table (a map of maps) anew
//! for every Huffman-coded string and walks it bit by bit; on captured
//! traffic that made HPACK the bulk of HTTP/2 parsing (docs/crates.md has
//! the figures). The code is canonical, so it is rebuilt here from its
//! code lengths alone, once, into a 9-bit lookup table (every printable
//! ASCII character is 5 to 8 bits long) with the canonical walk for the
//! rare longer codes. A test checks every symbol against loona-hpack's
//! own decoder.

use std::sync::OnceLock;

/// Code length in bits of each symbol 0..=255 and of EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12,
    10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
    5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22,
    22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20,
    22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28,
    27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28,
    27, 27, 27, 27, 27, 26, 30,
];

const FAST_BITS: u32 = 9;
const EOS: u16 = 256;

struct Table {
    /// Symbols in canonical order (by length, then value).
    symbols: [u16; 257],
    /// Per length: the first code, the number of codes, and where they
    /// start in `symbols`.
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    /// For every 9-bit prefix: symbol and length, when the code is that short.
    fast: Vec<(u16, u8)>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut order: Vec<u16> = (0..257).collect();
        order.sort_by_key(|&s| (LENGTHS[s as usize], s));
        let mut t = Table {
            symbols: [0; 257],
            first: [0; 31],
            count: [0; 31],
            offset: [0; 31],
            fast: vec![(0, 0); 1 << FAST_BITS],
        };
        for (i, &s) in order.iter().enumerate() {
            t.symbols[i] = s;
            t.count[LENGTHS[s as usize] as usize] += 1;
        }
        let (mut code, mut start) = (0u32, 0u32);
        for len in 1..31 {
            code <<= 1;
            t.first[len] = code;
            t.offset[len] = start;
            code += t.count[len];
            start += t.count[len];
        }
        for len in 1..=FAST_BITS as usize {
            for k in 0..t.count[len] {
                let sym = t.symbols[(t.offset[len] + k) as usize];
                let code = t.first[len] + k;
                let shift = FAST_BITS as usize - len;
                for low in 0..(1u32 << shift) {
                    t.fast[((code << shift) | low) as usize] = (sym, len as u8);
                }
            }
        }
        t
    })
}

/// Decodes a Huffman-coded string, appending to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let t = table();
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut bytes = src.iter();
    loop {
        while bits <= 56 {
            match bytes.next() {
                Some(&b) => {
                    acc |= (b as u64) << (56 - bits);
                    bits += 8;
                }
                None => break,
            }
        }
        if bits == 0 {
            return Ok(());
        }
        let (sym, len) = t.fast[(acc >> (64 - FAST_BITS)) as usize];
        let (sym, len) = if len != 0 {
            (sym, len as u32)
        } else {
            let mut code = 0u32;
            let mut found = None;
            for len in 1..31u32 {
                code = (code << 1) | ((acc >> (63 - (len - 1))) & 1) as u32;
                let d = code.wrapping_sub(t.first[len as usize]);
                if d < t.count[len as usize] {
                    found = Some((t.symbols[(t.offset[len as usize] + d) as usize], len));
                    break;
                }
            }
            found.ok_or("invalid Huffman code")?
        };
        if len > bits {
            // Only padding may remain: fewer than 8 bits, all ones.
            let pad = acc >> (64 - bits);
            return if bits < 8 && pad == (1u64 << bits) - 1 { Ok(()) } else { Err("bad Huffman padding") };
        }
        if sym == EOS {
            return Err("EOS in a Huffman-coded string");
        }
        out.push(sym as u8);
        acc <<= len;
        bits -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with the canonical codes (for the test only).
    fn encode(s: &[u8]) -> Vec<u8> {
        let t = table();
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &b in s {
            let len = LENGTHS[b as usize] as u32;
            let rank = t.symbols.iter().position(|&x| x == b as u16).unwrap_or(0) as u32;
            let code = t.first[len as usize] + (rank - t.offset[len as usize]);
            acc = (acc << len) | code as u64;
            bits += len;
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | ((1u8 << (8 - bits)) - 1));
        }
        out
    }

    #[test]
    fn every_symbol_matches_loona_hpack() {
        let mut reference = loona_hpack::huffman::HuffmanDecoder::new();
        for b in 0..=255u8 {
            let s = [b, b'a', b];
            let coded = encode(&s);
            let mut ours = Vec::new();
            decode(&coded, &mut ours).unwrap();
            assert_eq!(ours, s, "symbol {b}");
            assert_eq!(reference.decode(&coded).ok(), Some(s.to_vec()), "loona on symbol {b}");
        }
    }

    #[test]
    fn rfc7541_examples_and_bad_padding() {
        let mut out = Vec::new();
        decode(&[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff], &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // Padding of zeros, and a whole byte of padding, are errors.
        assert!(decode(&[0x00], &mut Vec::new()).is_err(), "'0' (5 bits) then 3 bits of zero padding");
        assert!(decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()).is_err(), "EOS");
        assert!(decode(&[0x1f, 0xff], &mut Vec::new()).is_err(), "8 bits of padding");
    }
}
