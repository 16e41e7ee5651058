//! HPACK (RFC 7541) header block decoding for captured HTTP/2, on top of
//! `loona-hpack`'s decoder and dynamic table.
//!
//! A passive observer has a problem a peer never has: it may not have
//! seen every header block that built the dynamic table (the capture
//! joined the connection mid-way, or lost a segment). The table then
//! holds only the newest entries. HPACK indexes the dynamic table from
//! the newest entry, so every index we do hold still names the right
//! entry: a reference past what we hold is *unknown*, never wrong. This
//! module therefore hands `loona-hpack` one field representation at a
//! time, so that an unknown reference costs that one header (counted,
//! and the block marked) instead of the rest of the block, and a literal
//! that would have been inserted under an unknown name is inserted under
//! a placeholder name to keep later indexes aligned.
//!
//! Huffman-coded strings are decoded here ([`huffman`], fast) and handed
//! to `loona-hpack` as plain literals; it keeps the table.
//!
//! The table is bounded: a peer's dynamic table size update above
//! [`crate::Limits::max_hpack_table`] is refused (reported), and the
//! table keeps its previous size; references it then cannot resolve are
//! unknown, as above.

use get_size2::GetSize;
use loona_hpack::decoder::DecoderError;

mod huffman;

/// Placeholder name of a header whose name was an unknown table entry.
pub const UNKNOWN_NAME: &str = "?";

/// The result of decoding one header block.
#[derive(Debug, Default, Clone, PartialEq, Eq, GetSize)]
pub struct Block {
    /// Decoded (name, value) pairs, in order; values lossily UTF-8.
    pub fields: Vec<(String, String)>,
    /// Field representations that referenced table entries we never saw.
    pub unknown: u32,
    /// Why decoding stopped early (a malformed block), if it did.
    pub error: Option<String>,
    /// A table size update above the cap was refused.
    pub table_capped: bool,
}

/// One direction's HPACK decoding state.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
    max_table: usize,
    /// The table may lack entries (joined mid-way, a lost block): an
    /// unknown reference is expected rather than an error.
    partial: bool,
    /// What the dynamic table holds, as far as its blocks tell (entries
    /// added, at most the table's size; loona-hpack does not say): the
    /// bytes counted against the flow-state budget.
    table_bytes: usize,
    /// The table's size as the last size update set it.
    table_size: usize,
}

impl GetSize for Decoder {
    fn get_heap_size_with_tracker<T: get_size2::GetSizeTracker>(&self, tracker: T) -> (usize, T) {
        (self.table_bytes, tracker)
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("max_table", &self.max_table).field("partial", &self.partial).finish()
    }
}

impl Decoder {
    /// A decoder whose table may grow to `max_table` bytes. `partial`
    /// says the connection was joined mid-way.
    pub fn new(max_table: usize, partial: bool) -> Decoder {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(max_table.max(4096));
        Decoder { inner, max_table: max_table.max(4096), partial, table_bytes: 0, table_size: 4096 }
    }

    /// Header blocks were lost: start again from an empty table, in which
    /// every entry we hold is still correctly indexed.
    pub fn lost_blocks(&mut self) {
        *self = Decoder::new(self.max_table, true);
    }

    /// True once the table may lack entries.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Decodes one complete header block (HEADERS or PUSH_PROMISE plus its
    /// CONTINUATION frames, padding and priority removed).
    pub fn decode(&mut self, block: &[u8]) -> Block {
        let mut out = Block::default();
        let mut pos = 0;
        while pos < block.len() {
            let rep = match split_representation(&block[pos..]) {
                Ok(r) => r,
                Err(e) => {
                    out.error = Some(format!("malformed header block: {e}"));
                    self.partial = true;
                    break;
                }
            };
            let wire = &block[pos..pos + rep.len];
            pos += rep.len;
            let plain;
            let (bytes, rep) = if rep.huffman {
                match dehuffman(wire, &rep) {
                    Ok((b, r)) => {
                        plain = b;
                        (&plain[..], r)
                    }
                    Err(e) => {
                        out.error = Some(format!("malformed header block: {e}"));
                        self.partial = true;
                        break;
                    }
                }
            } else {
                (wire, rep)
            };
            let before = out.fields.len();
            let fields = &mut out.fields;
            let result = self.inner.decode_with_cb(bytes, |n, v| {
                fields.push((String::from_utf8_lossy(&n).into_owned(), String::from_utf8_lossy(&v).into_owned()));
            });
            match result {
                Ok(()) => {}
                // A size update decoded alone is "at the end": it was applied.
                Err(DecoderError::SizeUpdateAtEnd) if rep.kind == Kind::SizeUpdate => {
                    if let Ok((size, _)) = integer(bytes, 5) {
                        self.table_size = (size as usize).min(self.max_table);
                        self.table_bytes = self.table_bytes.min(self.table_size);
                    }
                }
                Err(DecoderError::InvalidMaxDynamicSize) => {
                    out.table_capped = true;
                    self.partial = true;
                }
                Err(DecoderError::HeaderIndexOutOfBounds) => {
                    out.unknown += 1;
                    if !self.partial {
                        out.error
                            .get_or_insert_with(|| "header block references a table entry that was never sent".into());
                        self.partial = true;
                    }
                    if rep.kind == Kind::Indexing {
                        // Keep later indexes aligned: insert the literal
                        // value under a placeholder name.
                        let mut synthetic = vec![0x40, 0x01, UNKNOWN_NAME.as_bytes()[0]];
                        synthetic.extend_from_slice(&bytes[rep.value_at..]);
                        let fields = &mut out.fields;
                        if self.inner.decode_with_cb(&synthetic, |n, v| fields.push((lossy(&n), lossy(&v)))).is_err() {
                            out.error.get_or_insert_with(|| "undecodable literal".into());
                        }
                    }
                }
                Err(e) => {
                    out.error = Some(format!("malformed header block: {e}"));
                    self.partial = true;
                    break;
                }
            }
            // An entry costs its name and value and 32 bytes (RFC 7541
            // §4.1); the table evicts past its size.
            if rep.kind == Kind::Indexing
                && out.fields.len() > before
                && let Some((n, v)) = out.fields.last()
            {
                self.table_bytes = (self.table_bytes + n.len() + v.len() + 32).min(self.table_size);
            }
        }
        out
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum Kind {
    Indexed,
    /// Literal with incremental indexing (it enters the table).
    Indexing,
    /// Literal without indexing or never indexed.
    Literal,
    SizeUpdate,
}

#[derive(Debug, Clone, Copy, GetSize)]
struct Representation {
    kind: Kind,
    len: usize,
    /// Offset of the name string of a literal with a new name.
    name_at: Option<usize>,
    /// Offset of the value string (literals).
    value_at: usize,
    /// A string is Huffman-coded.
    huffman: bool,
}

/// The representation `wire` with its Huffman-coded strings decoded
/// into plain literals, and where its parts now lie.
fn dehuffman(wire: &[u8], rep: &Representation) -> Result<(Vec<u8>, Representation), &'static str> {
    let head = rep.name_at.unwrap_or(rep.value_at);
    let mut out = wire[..head].to_vec();
    let mut name_at = None;
    if let Some(at) = rep.name_at {
        name_at = Some(out.len());
        plain_string(&wire[at..rep.value_at], &mut out)?;
    }
    let value_at = out.len();
    plain_string(&wire[rep.value_at..rep.len], &mut out)?;
    let len = out.len();
    Ok((out, Representation { kind: rep.kind, len, name_at, value_at, huffman: false }))
}

/// Appends the string literal `s` (length-prefixed, maybe Huffman-coded)
/// to `out` as a plain literal.
fn plain_string(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let (len, used) = integer(s, 7)?;
    let body = &s[used..used + len as usize];
    if s[0] & 0x80 == 0 {
        out.extend_from_slice(s);
        return Ok(());
    }
    let mut text = Vec::with_capacity(body.len() * 8 / 5);
    huffman::decode(body, &mut text)?;
    encode_integer(text.len() as u64, 7, 0, out);
    out.extend_from_slice(&text);
    Ok(())
}

/// Appends an HPACK integer with an N-bit prefix (high bits `flags`).
fn encode_integer(mut v: u64, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1u64 << prefix) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// Finds where the field representation at the start of `b` ends
/// (RFC 7541 §6) without decoding its strings.
fn split_representation(b: &[u8]) -> Result<Representation, &'static str> {
    let first = *b.first().ok_or("empty")?;
    let (kind, prefix) = if first & 0x80 != 0 {
        (Kind::Indexed, 7)
    } else if first & 0x40 != 0 {
        (Kind::Indexing, 6)
    } else if first & 0x20 != 0 {
        (Kind::SizeUpdate, 5)
    } else {
        (Kind::Literal, 4)
    };
    let (index, mut pos) = integer(b, prefix)?;
    if matches!(kind, Kind::Indexed | Kind::SizeUpdate) {
        return Ok(Representation { kind, len: pos, name_at: None, value_at: pos, huffman: false });
    }
    let mut huffman = false;
    let mut name_at = None;
    if index == 0 {
        name_at = Some(pos);
        huffman |= b.get(pos).is_some_and(|h| h & 0x80 != 0);
        pos += string_len(&b[pos..])?;
    }
    let value_at = pos;
    huffman |= b.get(pos).is_some_and(|h| h & 0x80 != 0);
    pos += string_len(&b[pos..])?;
    Ok(Representation { kind, len: pos, name_at, value_at, huffman })
}

/// An HPACK integer with an N-bit prefix: (value, bytes used).
fn integer(b: &[u8], prefix: u8) -> Result<(u64, usize), &'static str> {
    let mask = (1u16 << prefix) as u8 - 1;
    let first = *b.first().ok_or("truncated integer")? & mask;
    if first < mask {
        return Ok((first as u64, 1));
    }
    let mut value = mask as u64;
    for (i, &byte) in b.iter().enumerate().skip(1) {
        let shift = 7 * (i - 1);
        if shift > 28 {
            return Err("integer too large");
        }
        value += ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("truncated integer")
}

/// Bytes taken by the string literal at the start of `b`.
fn string_len(b: &[u8]) -> Result<usize, &'static str> {
    let (len, used) = integer(b, 7)?;
    let end = used.checked_add(len as usize).ok_or("string too long")?;
    if end > b.len() {
        return Err("truncated string");
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn pairs(b: &Block) -> Vec<(&str, &str)> {
        b.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    /// RFC 7541 C.4: three requests with Huffman coding and a shared table.
    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(4096, false);
        let b1 = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(
            pairs(&b1),
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
        );
        // What the table holds, as the RFC gives it after each request
        // ("Table size"): counted against the flow-state budget.
        assert_eq!(d.get_heap_size(), 57);
        let b2 = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(pairs(&b2)[3..], [(":authority", "www.example.com"), ("cache-control", "no-cache")]);
        assert_eq!(d.get_heap_size(), 110);
        let b3 = d.decode(&hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"));
        assert_eq!(
            pairs(&b3)[2..],
            [(":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")]
        );
        assert!(b3.error.is_none() && b3.unknown == 0);
        assert_eq!(d.get_heap_size(), 164);
        // A size update to zero empties the table.
        d.decode(&[0x20]);
        assert_eq!(d.get_heap_size(), 0);
    }

    /// Entries past the table's size evict older ones: what the table is
    /// counted as holding never passes its size.
    #[test]
    fn the_table_is_counted_at_most_at_its_size() {
        let mut d = Decoder::new(4096, false);
        // 200 literals with incremental indexing, 10 + 20 + 32 bytes each.
        for i in 0..200u32 {
            let mut b = vec![0x40, 10];
            b.extend_from_slice(format!("name-{i:05}").as_bytes());
            b.push(20);
            b.extend_from_slice(format!("{i:020}").as_bytes());
            assert!(d.decode(&b).error.is_none());
            assert_eq!(d.get_heap_size(), ((i as usize + 1) * 62).min(4096));
        }
    }

    /// The second block of C.4 seen without the first: the two table
    /// references are unknown, the rest decodes, and the literal that
    /// entered the table keeps the next block's indexes right.
    #[test]
    fn joined_mid_connection_marks_unknown_entries_and_recovers() {
        let mut d = Decoder::new(4096, true);
        let b2 = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(b2.unknown, 1);
        assert!(b2.error.is_none());
        assert_eq!(
            pairs(&b2),
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("cache-control", "no-cache")]
        );
        // C.4.3 refers to index 63 (:authority, from the unseen block).
        let b3 = d.decode(&hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"));
        assert_eq!(b3.unknown, 1);
        assert_eq!(pairs(&b3)[2..], [(":path", "/index.html"), ("custom-key", "custom-value")]);
        // The entries we saw enter keep their true indexes (62, 63); 64 is unknown.
        let b4 = d.decode(&[0xbe, 0xbf, 0xc0]);
        assert_eq!(pairs(&b4), [("custom-key", "custom-value"), ("cache-control", "no-cache")]);
        assert_eq!(b4.unknown, 1);
    }

    /// A literal entering the table under an unknown name is kept under a
    /// placeholder, so the entry after it is not shifted.
    #[test]
    fn literal_with_unknown_name_keeps_its_table_slot() {
        let mut d = Decoder::new(4096, true);
        let b = d.decode(&[0x7e, 0x03, b'a', b'b', b'c']);
        assert_eq!(b.unknown, 1);
        assert_eq!(pairs(&b), [(UNKNOWN_NAME, "abc")]);
        assert_eq!(pairs(&d.decode(&[0x40, 0x01, b'k', 0x01, b'v', 0xbf])), [("k", "v"), (UNKNOWN_NAME, "abc")]);
    }

    #[test]
    fn unknown_reference_on_a_clean_connection_is_an_error() {
        let mut d = Decoder::new(4096, false);
        let b = d.decode(&hex("82 be"));
        assert_eq!(b.unknown, 1);
        assert!(b.error.is_some());
        assert!(d.is_partial());
    }

    #[test]
    fn oversized_table_update_is_refused_not_obeyed() {
        let mut d = Decoder::new(4096, false);
        // Size update to 1 MiB (prefix 5: 0x3f then 2^20 - 31 in 7-bit groups).
        let b = d.decode(&[0x3f, 0xe1, 0xff, 0x3f, 0x82]);
        assert!(b.table_capped);
        assert_eq!(pairs(&b), [(":method", "GET")]);
    }

    #[test]
    fn malformed_blocks_stop_without_panicking() {
        let mut d = Decoder::new(4096, false);
        for bad in [&[0x40, 0x05, b'a'][..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &[0x00, 0x81]] {
            let b = d.decode(bad);
            assert!(b.error.is_some(), "{bad:?}");
        }
    }
}
