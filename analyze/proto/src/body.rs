//! Content decoding of stored bodies (gzip, deflate, br), capped: the
//! stored copy of an HTTP body (HTTP/1 and HTTP/2 alike) is the decoded
//! one.

use std::io::Read;

use crate::Issue;
use crate::exchange::Message;

/// Stores `raw`, the body of `m` as captured (up to the cap), as its
/// stored copy, content-decoded (gzip, deflate, br) and capped at `cap`
/// decoded bytes: a body that decodes to more is cut there and marked
/// truncated (a decompression bomb costs `cap` bytes). Undecodable
/// bodies are kept raw.
pub(crate) fn decode_body(m: &mut Message, raw: Vec<u8>, cap: usize, issues: &mut Vec<Issue>) {
    m.body = decoded(m, raw, cap, issues);
    if m.body.len() > cap {
        m.body.truncate(cap);
        m.body_truncated = true;
    }
}

/// `raw` decoded, up to one byte past `cap` (which says there was more).
fn decoded(m: &Message, raw: Vec<u8>, cap: usize, issues: &mut Vec<Issue>) -> Vec<u8> {
    let Some(enc) = m.header("content-encoding") else { return raw };
    let enc = enc.trim().to_ascii_lowercase();
    if raw.is_empty() || enc == "identity" {
        return raw;
    }
    let over = cap.saturating_add(1);
    let result = match enc.as_str() {
        "gzip" | "x-gzip" => inflate::gunzip(&raw, over),
        "deflate" => inflate::inflate(&raw, true, over).or_else(|_| inflate::inflate(&raw, false, over)),
        "br" => {
            let mut out = Vec::new();
            let first = [brotli_window_for(raw[0], over)];
            let stream = first.chain(&raw[1..]);
            match brotli::Decompressor::new(stream, 4096).take(over as u64).read_to_end(&mut out) {
                Ok(_) => Ok(out),
                Err(_) if !out.is_empty() => Ok(out),
                Err(e) => Err(e.to_string()),
            }
        }
        _ => return raw,
    };
    match result {
        Ok(out) => out,
        Err(e) => {
            if !m.body_truncated {
                issues.push(Issue {
                    at: m.at,
                    kind: "body_decode",
                    detail: format!("{enc} body could not be decoded: {e}"),
                });
            }
            raw
        }
    }
}

/// The first byte of a brotli stream with its window (WBITS, RFC 7932
/// §9.1) lowered to the smallest that decoding `over` bytes needs. The
/// decoder allocates a ring buffer of the window's size (4 or 16 MiB for
/// what servers send) for every body, which made a body cost
/// milliseconds however little of it is stored. The output is the same:
/// a distance can reach back at most min(window - 16, bytes decoded so
/// far), so while fewer than window - 16 bytes are decoded the window
/// changes nothing. Only the 4-bit forms (WBITS 18 to 24) are rewritten,
/// in place.
fn brotli_window_for(first: u8, over: usize) -> u8 {
    let n = (first >> 1) & 7;
    if first & 1 == 0 || n < 2 {
        return first;
    }
    let needed = (18..=24).find(|w| (1usize << w) - 16 >= over).unwrap_or(24);
    if needed >= 17 + n {
        return first;
    }
    (first & !0b1110) | ((needed - 17) << 1)
}

/// gzip and deflate decoding with one reusable inflate state per thread:
/// bodies are many and small, and a fresh decoder per body (its window
/// allocated and zeroed, a CRC computed) cost more than the inflating.
/// The gzip member header (RFC 1952) is read here; the CRC is not
/// checked, as the stored copy is informational.
pub(crate) mod inflate {
    use std::cell::RefCell;

    use flate2::{Decompress, FlushDecompress, Status};

    thread_local! {
        static RAW: RefCell<Decompress> = RefCell::new(Decompress::new(false));
        static ZLIB: RefCell<Decompress> = RefCell::new(Decompress::new(true));
    }

    /// Decodes deflate data (zlib-wrapped or raw) up to `cap` bytes. A
    /// stream cut short decodes as far as it goes.
    pub fn inflate(data: &[u8], zlib: bool, cap: usize) -> Result<Vec<u8>, String> {
        let cell = if zlib { &ZLIB } else { &RAW };
        cell.with(|d| {
            let mut d = d.borrow_mut();
            d.reset(zlib);
            let mut out = Vec::with_capacity(cap.min(data.len().saturating_mul(4).max(1024)));
            let mut input = data;
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= cap {
                        break;
                    }
                    out.reserve((cap - out.len()).min(out.capacity().max(1024)));
                }
                let before_in = d.total_in();
                let before_out = d.total_out();
                let status = d.decompress_vec(input, &mut out, FlushDecompress::None);
                let used = (d.total_in() - before_in) as usize;
                input = &input[used..];
                match status {
                    Ok(Status::StreamEnd) => break,
                    Ok(_) if used == 0 && d.total_out() == before_out && out.len() < out.capacity() => break,
                    Ok(_) => {}
                    Err(e) if out.is_empty() => return Err(e.to_string()),
                    Err(_) => break,
                }
            }
            out.truncate(cap);
            Ok(out)
        })
    }

    /// Decodes the first member of a gzip stream.
    pub fn gunzip(data: &[u8], cap: usize) -> Result<Vec<u8>, String> {
        let body = member_body(data).ok_or_else(|| "not a gzip header".to_string())?;
        inflate(body, false, cap)
    }

    /// Skips a gzip member header; returns the deflate data after it.
    fn member_body(d: &[u8]) -> Option<&[u8]> {
        if d.len() < 10 || d[0] != 0x1f || d[1] != 0x8b || d[2] != 8 {
            return None;
        }
        let flags = d[3];
        let mut p = 10usize;
        if flags & 4 != 0 {
            let xlen = u16::from_le_bytes([*d.get(p)?, *d.get(p + 1)?]) as usize;
            p += 2 + xlen;
        }
        for bit in [8u8, 16] {
            if flags & bit != 0 {
                p += d.get(p..)?.iter().position(|b| *b == 0)? + 1;
            }
        }
        if flags & 2 != 0 {
            p += 2;
        }
        d.get(p..)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::At;
    use crate::exchange::StartLine;

    fn brotli(data: &[u8], lgwin: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, lgwin);
            w.write_all(data).ok();
        }
        out
    }

    fn decode(raw: Vec<u8>, cap: usize) -> Message {
        let mut m = Message::wire(At::default(), At::default(), StartLine::Unknown, raw.len() as u64);
        m.headers.push("Content-Encoding", "br");
        let mut issues = Vec::new();
        decode_body(&mut m, raw, cap, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        m
    }

    #[test]
    fn brotli_bodies_decode_alike_with_the_window_lowered() {
        // Text with long-distance repeats and dictionary words, sent with
        // the largest standard window (16 MiB).
        let text: Vec<u8> =
            (0..40_000u32).flat_map(|i| format!("the order {} of {} ", i % 997, i % 13).into_bytes()).collect();
        let raw = brotli(&text, 24);
        // WBITS 24 is the 4-bit form 1, 111; lowered to 18 for 64 KiB.
        assert_eq!(raw[0] & 0b1111, 0b1111);
        assert_eq!(brotli_window_for(raw[0], 64 * 1024 + 1) & 0b1111, 0b0011);
        let m = decode(raw.clone(), 64 * 1024);
        assert_eq!((&m.body[..], m.body_truncated), (&text[..64 * 1024], true));
        // A cap past the lowered window's reach keeps more of it.
        let m = decode(raw, 1 << 20);
        assert_eq!((m.body.len(), m.body_truncated), (text.len(), false));
        assert!(m.body == text);
        // Windows already small enough, and the 1- and 7-bit forms, are
        // left as they are.
        for first in [0b0000_0000, 0b0000_0011, 0b0001_0001, 0b0000_0001] {
            assert_eq!(brotli_window_for(first, 64 * 1024 + 1), first, "{first:#b}");
        }
    }
}
