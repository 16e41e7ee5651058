//! TLS handshakes as seen on the wire: the ClientHello and ServerHello of
//! a connection (and, up to TLS 1.2, the server's certificate), one
//! [`Exchange`] per handshake with the version, SNI, ALPN, cipher suites,
//! JA3/JA3S and JA4 fingerprints, the certificate's subject and issuer,
//! and what is weak about it. Nothing is decrypted: once either side
//! switches to encrypted records, the rest of that direction is counted.
//!
//! Records are reassembled into handshake messages, which may span
//! records (a ClientHello split over two records is common with large
//! key shares); each direction keeps at most `max_head_bytes` of an
//! incomplete message.

use get_size2::GetSize;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::detail::{Detail, TlsInfo};
use crate::exchange::{CloseReason, Exchange, Message, Output, StartLine};
use crate::pairing::Rows;
use crate::parser::Parser;
use crate::{At, Issue, Limits, Side};

/// Name of a TLS version code.
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    }
}

fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Does a record header start here (a handshake record of SSL 3 to TLS 1.3)?
pub fn probe(b: &[u8]) -> Option<bool> {
    let h = b.get(..6)?;
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    (h[0] == 22 && h[1] == 3 && h[2] <= 4 && (4..=16384 + 2048).contains(&len) && matches!(h[5], 1 | 2))
        .then_some(h[5] == 1)
}

/// A checked reader over a byte slice.
struct Rd<'a> {
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let v = self.b.get(..2)?;
        self.b = &self.b[2..];
        Some(u16::from_be_bytes([v[0], v[1]]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(..n)?;
        self.b = &self.b[n..];
        Some(v)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

#[derive(Debug, Default, GetSize)]
struct Hello {
    version: u16,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    groups: Vec<u16>,
    point_formats: Vec<u8>,
    sig_algs: Vec<u16>,
    versions: Vec<u16>,
    sni: Option<String>,
    alpn: Vec<String>,
}

fn hello(body: &[u8], client: bool) -> Option<Hello> {
    let mut r = Rd { b: body };
    let mut h = Hello { version: r.u16()?, ..Hello::default() };
    r.take(32)?;
    r.vec8()?;
    if client {
        h.ciphers = u16s(r.vec16()?);
        r.vec8()?;
    } else {
        h.ciphers = vec![r.u16()?];
        r.u8()?;
    }
    let Some(exts) = r.vec16() else { return Some(h) };
    let mut e = Rd { b: exts };
    while !e.b.is_empty() {
        let t = e.u16()?;
        let data = e.vec16()?;
        h.extensions.push(t);
        let mut d = Rd { b: data };
        match t {
            0 if client => {
                let mut list = Rd { b: d.vec16()? };
                while let (Some(kind), Some(name)) = (list.u8(), list.vec16()) {
                    if kind == 0 {
                        h.sni = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
                        break;
                    }
                }
            }
            10 => h.groups = u16s(d.vec16()?),
            11 => h.point_formats = d.vec8()?.to_vec(),
            13 => h.sig_algs = u16s(d.vec16()?),
            16 => {
                let mut list = Rd { b: d.vec16()? };
                while let Some(p) = list.vec8() {
                    h.alpn.push(String::from_utf8_lossy(p).into_owned());
                }
            }
            43 if client => h.versions = u16s(d.vec8()?),
            43 => h.versions = vec![d.u16()?],
            _ => {}
        }
    }
    Some(h)
}

fn join(v: impl Iterator<Item = String>, sep: &str) -> String {
    v.collect::<Vec<_>>().join(sep)
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_12(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn ja3(h: &Hello) -> String {
    let list = |v: &[u16]| join(v.iter().filter(|x| !grease(**x)).map(|x| x.to_string()), "-");
    let pf = join(h.point_formats.iter().map(|x| x.to_string()), "-");
    md5_hex(&format!("{},{},{},{},{}", h.version, list(&h.ciphers), list(&h.extensions), list(&h.groups), pf))
}

fn ja3s(h: &Hello) -> String {
    let list = |v: &[u16]| join(v.iter().filter(|x| !grease(**x)).map(|x| x.to_string()), "-");
    md5_hex(&format!("{},{},{}", h.version, h.ciphers.first().copied().unwrap_or(0), list(&h.extensions)))
}

/// JA4 (FoxIO) of a ClientHello seen over TCP.
fn ja4(h: &Hello) -> String {
    let v = h.versions.iter().copied().filter(|v| !grease(*v)).max().unwrap_or(h.version);
    let ver = match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        _ => "00",
    };
    let ciphers: Vec<u16> = h.ciphers.iter().copied().filter(|c| !grease(*c)).collect();
    let exts: Vec<u16> = h.extensions.iter().copied().filter(|e| !grease(*e)).collect();
    let alpn = h.alpn.first().map_or("00".to_string(), |a| {
        let (f, l) = (a.chars().next().unwrap_or('0'), a.chars().last().unwrap_or('0'));
        if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() { format!("{f}{l}") } else { "99".into() }
    });
    let a = format!(
        "t{ver}{}{:02}{:02}{alpn}",
        if h.sni.is_some() { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99)
    );
    let mut sorted_c = ciphers.clone();
    sorted_c.sort_unstable();
    let b = if sorted_c.is_empty() {
        "000000000000".into()
    } else {
        sha256_12(&join(sorted_c.iter().map(|c| format!("{c:04x}")), ","))
    };
    let mut sorted_e: Vec<u16> = exts.into_iter().filter(|e| *e != 0 && *e != 16).collect();
    sorted_e.sort_unstable();
    let mut c_in = join(sorted_e.iter().map(|e| format!("{e:04x}")), ",");
    let sigs: Vec<u16> = h.sig_algs.iter().copied().filter(|s| !grease(*s)).collect();
    if !sigs.is_empty() {
        c_in.push('_');
        c_in.push_str(&join(sigs.iter().map(|s| format!("{s:04x}")), ","));
    }
    let c = if sorted_e.is_empty() { "000000000000".into() } else { sha256_12(&c_in) };
    format!("{a}_{b}_{c}")
}

/// Cipher suites with NULL, anonymous, EXPORT, RC4 or (3)DES protection.
fn weak_cipher(c: u16) -> Option<&'static str> {
    Some(match c {
        0x0000..=0x0002 | 0x002c..=0x002e | 0x003b | 0xc001 | 0xc006 | 0xc00b | 0xc010 | 0xc015 => "NULL",
        0x0003 | 0x0006 | 0x0008 | 0x000b | 0x000e | 0x0011 | 0x0014 | 0x0017 | 0x0019 | 0x0026..=0x002b => "EXPORT",
        0x0004 | 0x0005 | 0x0018 | 0x0020 | 0x0024 | 0x008a | 0x008e | 0x0092 | 0xc002 | 0xc007 | 0xc00c | 0xc011
        | 0xc016 => "RC4",
        0x0009 | 0x000a | 0x000c | 0x000d | 0x000f | 0x0010 | 0x0012 | 0x0013 | 0x0015 | 0x0016 | 0x001a | 0x001b
        | 0x001f | 0x0023 | 0x008b | 0x008f | 0x0093 | 0xc003 | 0xc008 | 0xc00d | 0xc012 | 0xc017 => "DES",
        0x0034 | 0x003a | 0x006c | 0x006d | 0xc018 | 0xc019 => "anon",
        _ => return None,
    })
}

// ---- certificates: just enough DER to read two names ----

fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 3 {
            return None;
        }
        (b.get(2..2 + n)?.iter().fold(0usize, |a, &x| a << 8 | x as usize), 2 + n)
    };
    let body = b.get(hdr..hdr + len)?;
    Some((tag, body, &b[hdr + len..]))
}

/// `CN=..., O=..., C=...` of an X.501 Name.
fn name(b: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    let mut sets = b;
    while !sets.is_empty() {
        let (_, set, rest) = der(sets)?;
        sets = rest;
        let (_, atv, _) = der(set)?;
        let (_, oid, after) = der(atv)?;
        let (_, value, _) = der(after)?;
        let key = match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x06] => "C",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            _ => continue,
        };
        out.push(format!("{key}={}", String::from_utf8_lossy(value)));
    }
    Some(out.join(", "))
}

/// Subject and issuer of a DER certificate.
fn cert_names(cert: &[u8]) -> Option<(String, String)> {
    let (_, c, _) = der(cert)?;
    let (_, tbs, _) = der(c)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    let (_, _, r) = der(rest)?; // serial
    let (_, _, r) = der(r)?; // signature algorithm
    let (_, issuer, r) = der(r)?;
    let (_, _, r) = der(r)?; // validity
    let (_, subject, _) = der(r)?;
    Some((name(subject)?, name(issuer)?))
}

#[derive(Debug, Default, GetSize)]
struct Dir {
    /// Bytes of an incomplete record.
    rec: Vec<u8>,
    rec_at: At,
    /// Handshake bytes not yet forming a whole message.
    hs: Vec<u8>,
    /// Encrypted from here on (or framing lost).
    done: bool,
}

/// TLS handshake state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct TlsConn {
    limits: Limits,
    dirs: [Dir; 2],
    client: Option<(Message, Hello)>,
    server: Option<(Message, Hello)>,
    cert: Option<(String, String)>,
    emitted: bool,
    rows: Rows,
}

impl TlsConn {
    pub fn new(limits: Limits) -> TlsConn {
        TlsConn {
            limits,
            dirs: Default::default(),
            client: None,
            server: None,
            cert: None,
            emitted: false,
            rows: Rows::default(),
        }
    }

    fn records(&mut self, i: usize, at: At, b: &[u8]) -> usize {
        let mut pos = 0;
        while let Some(h) = b.get(pos..pos + 5) {
            let len = u16::from_be_bytes([h[3], h[4]]) as usize;
            if h[1] != 3 || len > 16384 + 2048 {
                self.rows.output().issues.push(Issue {
                    at,
                    kind: "tls_framing_lost",
                    detail: format!("not a TLS record header: {:02x?}", h),
                });
                self.dirs[i].done = true;
                return b.len();
            }
            let Some(body) = b.get(pos + 5..pos + 5 + len) else { break };
            pos += 5 + len;
            match h[0] {
                22 => self.handshake(i, at, body),
                // ChangeCipherSpec, application data: encrypted from here.
                20 | 23 => {
                    self.dirs[i].done = true;
                    if i == 1 && !self.emitted && self.server.is_some() {
                        self.emit(None);
                    }
                    return b.len();
                }
                _ => {}
            }
            if self.dirs[i].done {
                return b.len();
            }
        }
        if b.len() - pos > self.limits.max_head_bytes {
            self.dirs[i].done = true;
            return b.len();
        }
        pos
    }

    fn handshake(&mut self, i: usize, at: At, body: &[u8]) {
        let cap = self.limits.max_head_bytes;
        let d = &mut self.dirs[i];
        d.hs.extend_from_slice(body);
        let hs = std::mem::take(&mut d.hs);
        let mut pos = 0;
        while let Some(h) = hs.get(pos..pos + 4) {
            let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let Some(msg) = hs.get(pos + 4..pos + 4 + len) else { break };
            pos += 4 + len;
            self.message(i, at, h[0], msg);
        }
        let rest = &hs[pos..];
        if rest.len() > cap {
            self.dirs[i].done = true;
        } else {
            self.dirs[i].hs = rest.to_vec();
        }
    }

    fn message(&mut self, i: usize, at: At, kind: u8, body: &[u8]) {
        let m = |at| Message { head_size: 4, ..Message::wire(at, at, StartLine::Unknown, body.len() as u64) };
        match (i, kind) {
            (0, 1) if self.client.is_none() => match hello(body, true) {
                Some(h) => self.client = Some((m(at), h)),
                None => self.rows.output().issues.push(Issue {
                    at,
                    kind: "bad_client_hello",
                    detail: format!("{} byte ClientHello that does not parse", body.len()),
                }),
            },
            (1, 2) if self.server.is_none() => match hello(body, false) {
                Some(h) => {
                    let tls13 = h.versions.first() == Some(&0x0304);
                    self.server = Some((m(at), h));
                    if tls13 {
                        // The rest of the server's flight is encrypted.
                        self.dirs[1].done = true;
                        self.emit(None);
                    }
                }
                None => self.rows.output().issues.push(Issue {
                    at,
                    kind: "bad_server_hello",
                    detail: format!("{} byte ServerHello that does not parse", body.len()),
                }),
            },
            (1, 11) if self.cert.is_none() => {
                let mut r = Rd { b: body };
                let first = r
                    .take(3)
                    .and_then(|_| r.take(3))
                    .map(|l| u32::from_be_bytes([0, l[0], l[1], l[2]]) as usize)
                    .and_then(|n| r.take(n));
                self.cert = first.and_then(cert_names);
            }
            // ServerHelloDone: the server's clear flight is complete.
            (1, 14) if !self.emitted => self.emit(None),
            _ => {}
        }
    }

    fn emit(&mut self, error: Option<&str>) {
        self.emitted = true;
        let client = self.client.take();
        let server = self.server.take();
        let (ch, sh) = (client.as_ref().map(|c| &c.1), server.as_ref().map(|s| &s.1));
        let version = sh
            .map(|s| s.versions.first().copied().unwrap_or(s.version))
            .or(ch.map(|c| c.versions.iter().copied().filter(|v| !grease(*v)).max().unwrap_or(c.version)));
        let cipher = sh.and_then(|s| s.ciphers.first().copied());
        let mut weak = Vec::new();
        if let Some(v) = version.filter(|v| *v < 0x0303) {
            weak.push(version_name(v));
        }
        weak.extend(cipher.and_then(weak_cipher).map(str::to_string));
        let (cert_subject, cert_issuer) = self.cert.take().map_or((None, None), |(s, i)| (Some(s), Some(i)));
        let info = TlsInfo {
            version,
            sni: ch.and_then(|c| c.sni.clone()),
            alpn: ch.map(|c| c.alpn.clone()).unwrap_or_default(),
            alpn_selected: sh.and_then(|s| s.alpn.first().cloned()),
            cipher_suites: ch
                .map(|c| c.ciphers.iter().filter(|x| !grease(**x)).map(|x| format!("0x{x:04x}")).collect())
                .unwrap_or_default(),
            cipher_suite: cipher,
            ja3: ch.map(ja3),
            ja3s: sh.map(ja3s),
            ja4: ch.map(ja4),
            cert_subject,
            cert_issuer,
            weak,
        };
        let error = error.map(str::to_string).or_else(|| client.is_none().then(|| "no_request".to_string()));
        self.rows.emit(Exchange {
            request: client.map(|c| c.0),
            response: server.map(|s| s.0),
            error,
            detail: Detail::Tls(Box::new(info)),
            ..Exchange::default()
        });
    }
}

impl Parser for TlsConn {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    /// Takes what was produced so far.
    fn drain(&mut self) -> Output {
        self.rows.drain()
    }

    /// In-order bytes from one side (the requester is the client).
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let i = side.index();
        if self.dirs[i].done {
            return;
        }
        let (mut held, mut held_at) = (std::mem::take(&mut self.dirs[i].rec), self.dirs[i].rec_at);
        crate::feed_held(&mut held, &mut held_at, at, data, |first_at, _, bytes| self.records(i, first_at, bytes));
        (self.dirs[i].rec, self.dirs[i].rec_at) = (held, held_at);
    }

    /// Bytes of one side were not captured: its framing is lost.
    fn on_gap(&mut self, side: Side, _at: At, _len: u64) {
        let d = &mut self.dirs[side.index()];
        d.done = true;
        d.rec.clear();
        d.hs.clear();
    }

    /// The connection ended: a handshake not yet emitted is.
    fn on_close(&mut self, _at: At, reason: CloseReason) {
        if !self.emitted && self.client.is_some() | self.server.is_some() {
            let why = if self.server.is_none() { Some(reason.unanswered()) } else { None };
            self.emit(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    /// A ClientHello: TLS 1.2 legacy version, SNI example.com, ALPN h2 and
    /// http/1.1, supported_versions 1.3 and 1.2, a GREASE cipher.
    fn client_hello() -> Vec<u8> {
        let mut ext = Vec::new();
        let sni = b"example.com";
        let mut e0 = vec![0, (sni.len() + 3) as u8, 0, 0, sni.len() as u8];
        e0.extend_from_slice(sni);
        ext.extend([0, 0, 0, e0.len() as u8]);
        ext.extend(e0);
        let alpn = [0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'];
        ext.extend([0, 16, 0, alpn.len() as u8]);
        ext.extend(alpn);
        ext.extend([0, 43, 0, 5, 4, 3, 4, 3, 3]);
        ext.extend([0, 10, 0, 4, 0, 2, 0, 29]);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 6, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2f]);
        body.extend([1, 0]);
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend(body);
        hs
    }

    fn server_hello(version13: bool) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([9u8; 32]);
        body.push(0);
        body.extend(if version13 { [0x13, 0x01] } else { [0x00, 0x05] });
        body.push(0);
        let ext: Vec<u8> = if version13 { vec![0, 43, 0, 2, 3, 4] } else { vec![0, 16, 0, 5, 0, 3, 2, b'h', b'2'] };
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![2, 0, 0, body.len() as u8];
        hs.extend(body);
        hs
    }

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 1];
        r.extend((body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn tls13_handshake_with_a_client_hello_split_over_two_records() {
        let ch = client_hello();
        let (a, b) = ch.split_at(20);
        let mut wire = record(22, a);
        wire.extend(record(22, b));
        let sh = record(22, &server_hello(true));
        let out = every_chunking(
            || Box::new(TlsConn::new(Limits::default())),
            &[Step::Data(Side::Requester, &wire), Step::Data(Side::Responder, &sh)],
        );
        assert_eq!(out.exchanges.len(), 1);
        let t = out.exchanges[0].detail.tls().unwrap();
        assert_eq!((t.version, t.sni.as_deref(), t.cipher_suite), (Some(0x0304), Some("example.com"), Some(0x1301)));
        assert_eq!(t.alpn, ["h2", "http/1.1"]);
        assert_eq!(t.cipher_suites, ["0x1301", "0xc02f"], "GREASE is left out");
        assert!(t.weak.is_empty());
        assert_eq!(t.ja4.as_deref().map(|j| &j[..10]), Some("t13d0204h2"));
        assert_eq!(t.ja3.as_ref().map(String::len), Some(32));
    }

    #[test]
    fn old_versions_and_weak_ciphers_are_flagged() {
        let mut c = TlsConn::new(Limits::default());
        c.on_data(Side::Requester, at(1), &record(22, &client_hello()));
        let mut sh = server_hello(false);
        sh[5] = 1; // TLS 1.0
        c.on_data(Side::Responder, at(2), &record(22, &sh));
        c.on_data(Side::Responder, at(3), &record(22, &[14, 0, 0, 0]));
        let out = c.drain();
        let t = out.exchanges[0].detail.tls().unwrap();
        assert_eq!(t.weak, ["TLS 1.0", "RC4"]);
        assert_eq!(t.alpn_selected.as_deref(), Some("h2"));
    }

    #[test]
    fn garbage_and_cut_hellos_never_panic() {
        let ch = record(22, &client_hello());
        for cut in 0..ch.len() {
            let mut c = TlsConn::new(Limits::default());
            c.on_data(Side::Requester, at(1), &ch[..cut]);
            c.on_close(At::default(), CloseReason::CaptureEnd);
            let _ = c.drain();
        }
        let mut c = TlsConn::new(Limits::default());
        c.on_data(Side::Requester, at(1), b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(c.drain().issues[0].kind, "tls_framing_lost");
    }
}
