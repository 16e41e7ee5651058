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
            match brotli::Decompressor::new(&raw[..], 4096).take(over as u64).read_to_end(&mut out) {
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
