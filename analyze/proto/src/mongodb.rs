//! MongoDB's wire protocol: OP_MSG (MongoDB 3.6 and later) and the
//! legacy OP_QUERY/OP_REPLY, with the command, database, collection and
//! the reply's `ok`, error code, code name and message.
//!
//! Replies are paired with requests by `responseTo`. A request flagged
//! `moreToCome` expects no reply and is a row at once. OP_COMPRESSED
//! messages are rows with the command `compressed` (their content is not
//! inflated).

use get_size2::GetSize;
use std::fmt::Write;

use crate::Limits;
use crate::detail::DbInfo;
use crate::exchange::{Message, StartLine};
use crate::frames::{Cursor, Frame, Framed, Framer, Shape, text};
use crate::frames::{NAME_KEEP, QUERY_KEEP};
use crate::pairing::{Asked, Book, Pairing};

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_COMPRESSED: i32 = 2012;
const OP_MSG: i32 = 2013;
/// MongoDB's own limit on a message (48 MB).
const MAX_MESSAGE: u32 = 48_000_000;
const MAX_DEPTH: usize = 16;

/// MongoDB's framing: a little-endian length that counts itself.
pub(crate) struct Mongo;

impl Shape for Mongo {
    fn head_len(&self, _: u8) -> usize {
        4
    }
    fn body_len(&self, head: &[u8]) -> Result<u64, String> {
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if !(16..=MAX_MESSAGE).contains(&n) {
            return Err(format!("message length {n}"));
        }
        Ok(u64::from(n) - 4)
    }
}

/// Does this look like a MongoDB message: `Some(true)` a request,
/// `Some(false)` an OP_MSG reply?
pub fn probe(b: &[u8]) -> Option<bool> {
    let mut c = Cursor::new(b);
    let (len, _id, response_to, op) = (c.u32_le()?, c.i32_le()?, c.i32_le()?, c.i32_le()?);
    if !(21..=MAX_MESSAGE).contains(&len) {
        return None;
    }
    match op {
        OP_MSG => {
            let _flags = c.u32_le()?;
            let kind = c.u8()?;
            let doc = c.u32_le()?;
            (kind <= 1 && (5..len).contains(&doc)).then_some(response_to == 0)
        }
        OP_QUERY if response_to == 0 => {
            c.skip(4)?;
            let name = c.cstr()?;
            (name.contains(&b'.') && name.iter().all(|x| x.is_ascii_graphic())).then_some(true)
        }
        OP_COMPRESSED if response_to == 0 => {
            let original = c.i32_le()?;
            matches!(original, OP_MSG | OP_QUERY).then_some(true)
        }
        _ => None,
    }
}

/// A BSON value, as far as a row needs it.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Str(&'a [u8]),
    Num(f64),
    Bool(bool),
    Doc(&'a [u8]),
    Array(&'a [u8]),
    Other,
}

/// Iterates over a BSON document's elements (stops at the first malformed one).
fn elements(doc: &[u8]) -> impl Iterator<Item = (&[u8], u8, Value<'_>, &[u8])> {
    let mut c = Cursor::new(doc);
    let ok = c.u32_le().is_some();
    std::iter::from_fn(move || {
        if !ok {
            return None;
        }
        let t = c.u8()?;
        if t == 0 {
            return None;
        }
        let key = c.cstr()?;
        let start = c.pos;
        let v = match t {
            0x01 => Value::Num(f64::from_le_bytes(c.take(8)?.try_into().ok()?)),
            0x02 | 0x0d | 0x0e => {
                let n = c.u32_le()? as usize;
                let s = c.take(n)?;
                Value::Str(s.strip_suffix(&[0]).unwrap_or(s))
            }
            0x03 | 0x04 => {
                let n = c.u32_le()? as usize;
                c.pos -= 4;
                let d = c.take(n)?;
                if t == 3 { Value::Doc(d) } else { Value::Array(d) }
            }
            0x05 => {
                let n = c.u32_le()? as usize;
                c.skip(1 + n)?;
                Value::Other
            }
            0x06 | 0x0a | 0x7f | 0xff => Value::Other,
            0x07 => {
                c.skip(12)?;
                Value::Other
            }
            0x08 => Value::Bool(c.u8()? != 0),
            0x09 | 0x11 => {
                c.skip(8)?;
                Value::Other
            }
            0x0b => {
                c.cstr()?;
                c.cstr()?;
                Value::Other
            }
            0x0c => {
                let n = c.u32_le()? as usize;
                c.skip(n + 12)?;
                Value::Other
            }
            0x0f => {
                let n = c.u32_le()? as usize;
                c.skip(n.checked_sub(4)?)?;
                Value::Other
            }
            0x10 => Value::Num(f64::from(c.i32_le()?)),
            0x12 => Value::Num(i64::from_le_bytes(c.take(8)?.try_into().ok()?) as f64),
            0x13 => {
                c.skip(16)?;
                Value::Other
            }
            _ => return None,
        };
        Some((key, t, v, &doc[start..c.pos]))
    })
}

/// A document as compact JSON-like text (extended types shown by their
/// BSON type), cut at `max` bytes.
fn render(doc: &[u8], array: bool, depth: usize, out: &mut String, max: usize) {
    out.push(if array { '[' } else { '{' });
    for (i, (k, t, v, raw)) in elements(doc).enumerate() {
        if out.len() >= max {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        if !array {
            let _ = write!(out, "{:?}:", String::from_utf8_lossy(k));
        }
        match v {
            Value::Str(s) => {
                let _ = write!(out, "{:?}", String::from_utf8_lossy(&s[..s.len().min(max)]));
            }
            Value::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Doc(d) | Value::Array(d) if depth < MAX_DEPTH => {
                render(d, matches!(v, Value::Array(_)), depth + 1, out, max)
            }
            _ => {
                let name = match t {
                    0x05 => "Binary",
                    0x07 => "ObjectId",
                    0x09 => "Date",
                    0x0a => "null",
                    0x11 => "Timestamp",
                    0x13 => "Decimal128",
                    _ => "…",
                };
                let _ = write!(
                    out,
                    "{}",
                    if name == "null" { "null".to_string() } else { format!("{name}({})", raw.len()) }
                );
            }
        }
    }
    out.push(if array { ']' } else { '}' });
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
}

fn doc_text(doc: &[u8]) -> String {
    let mut s = String::new();
    render(doc, false, 0, &mut s, QUERY_KEEP);
    s
}

/// Commands whose first value names a collection.
const ON_COLLECTION: &[&[u8]] = &[
    b"find",
    b"insert",
    b"update",
    b"delete",
    b"aggregate",
    b"count",
    b"distinct",
    b"findAndModify",
    b"findandmodify",
    b"mapReduce",
    b"create",
    b"drop",
    b"createIndexes",
    b"dropIndexes",
    b"listIndexes",
    b"collMod",
    b"validate",
    b"collStats",
    b"renameCollection",
];

/// A command document's name, collection and database.
fn command(doc: &[u8], info: &mut DbInfo) {
    if let Some((k, _, v, _)) = elements(doc).next() {
        info.command = text(k, NAME_KEEP);
        if let Value::Str(s) = v
            && ON_COLLECTION.contains(&k)
        {
            info.collection = Some(text(s, NAME_KEEP));
        }
    }
    if info.command == "getMore" {
        // getMore names its cursor first, its collection after.
        info.collection = elements(doc).find_map(|(k, _, v, _)| match (k, v) {
            (b"collection", Value::Str(s)) => Some(text(s, NAME_KEEP)),
            _ => None,
        });
    }
    for (k, _, v, _) in elements(doc) {
        if k == b"$db"
            && let Value::Str(s) = v
        {
            info.database = Some(text(s, NAME_KEEP));
        }
    }
    info.query = Some(doc_text(doc));
}

/// Reads a reply document's outcome.
fn outcome(doc: &[u8], info: &mut DbInfo) {
    let mut ok = None;
    let mut write_error = false;
    for (k, _, v, _) in elements(doc) {
        match (k, v) {
            (b"ok", Value::Num(n)) => ok = Some(n == 1.0),
            (b"ok", Value::Bool(b)) => ok = Some(b),
            (b"errmsg" | b"$err", Value::Str(s)) => info.error_message = Some(text(s, QUERY_KEEP)),
            (b"code", Value::Num(n)) => info.error_code = Some(format!("{n}")),
            (b"codeName", Value::Str(s)) => info.error_name = Some(text(s, NAME_KEEP)),
            (b"cursor", Value::Doc(d)) => {
                for (k, _, v, _) in elements(d) {
                    if let (b"firstBatch" | b"nextBatch", Value::Array(a)) = (k, v) {
                        info.rows = Some(elements(a).count() as u64);
                    }
                }
            }
            (b"n", Value::Num(n)) if info.rows.is_none() => info.rows = Some(n as u64),
            (b"writeErrors", Value::Array(a)) => {
                // A write error under ok: 1: the first one is the error.
                if let Some((_, _, Value::Doc(d), _)) = elements(a).next() {
                    write_error = true;
                    for (k, _, v, _) in elements(d) {
                        match (k, v) {
                            (b"code", Value::Num(n)) => info.error_code = Some(format!("{n}")),
                            (b"codeName", Value::Str(s)) => info.error_name = Some(text(s, NAME_KEEP)),
                            (b"errmsg", Value::Str(s)) => info.error_message = Some(text(s, QUERY_KEEP)),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    info.success = Some(!write_error && ok.unwrap_or(info.error_message.is_none()));
    info.result = Some(if info.success == Some(true) { "ok" } else { "error" }.into());
}

/// The OP_MSG body document (section kind 0), and its flags.
fn msg_body(c: &mut Cursor<'_>) -> Option<(u32, Vec<u8>)> {
    let flags = c.u32_le()?;
    while let Some(kind) = c.u8() {
        let n = Cursor::new(c.rest()).u32_le()? as usize;
        let section = c.take(n)?;
        if kind == 0 {
            return Some((flags, section.to_vec()));
        }
    }
    None
}

impl Framed for MongoConn {
    type Shape = Mongo;
    const NAME: &'static str = "MongoDB";
    const BAD: &'static str = "bad_mongodb_message";
    const LOST: &'static str = "mongodb_framing_lost";
    fn shape() -> Mongo {
        Mongo
    }
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }
    fn book(&mut self) -> &mut dyn Book {
        &mut self.pairs
    }
    fn book_ref(&self) -> &dyn Book {
        &self.pairs
    }
    fn message(&mut self, i: usize, f: &Frame<'_>) {
        if i == 0 { self.request(f) } else { self.reply(f) }
    }
}

/// MongoDB state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct MongoConn {
    framers: [Framer; 2],
    /// Requests waiting for their replies, paired by request id.
    pairs: Pairing<Asked<DbInfo>>,
}

impl MongoConn {
    pub fn new(limits: Limits) -> MongoConn {
        MongoConn { framers: Default::default(), pairs: Pairing::new(limits.max_pending) }
    }

    fn request(&mut self, f: &Frame<'_>) {
        let mut c = Cursor::new(f.body);
        let (Some(id), Some(_), Some(op)) = (c.i32_le(), c.i32_le(), c.i32_le()) else { return };
        let mut info = DbInfo::default();
        let mut expects_reply = true;
        match op {
            OP_MSG => {
                if let Some((flags, doc)) = msg_body(&mut c) {
                    command(&doc, &mut info);
                    expects_reply = flags & 2 == 0;
                }
            }
            OP_QUERY => {
                let _flags = c.i32_le();
                let name = c.cstr().unwrap_or_default();
                let (db, coll) =
                    name.iter().position(|&x| x == b'.').map_or((name, &b""[..]), |p| (&name[..p], &name[p + 1..]));
                c.skip(8);
                let doc = c.rest();
                if coll == b"$cmd" {
                    command(doc, &mut info);
                } else {
                    info.command = "query".into();
                    info.collection = Some(text(coll, NAME_KEEP));
                    info.query = Some(doc_text(doc));
                }
                info.database = Some(text(db, NAME_KEEP));
            }
            OP_COMPRESSED => info.command = "compressed".into(),
            _ => info.command = format!("opcode {op}"),
        }
        let target = info.collection.clone().unwrap_or_default();
        let request = Message::wire(f.at, f.end, StartLine::Request { method: info.command.clone(), target }, f.size());
        if !expects_reply {
            info.success = Some(true);
            self.pairs.rows.row(Some(request), None, info, None);
            return;
        }
        self.pairs.wait(Asked { key: id.into(), request, info });
    }

    fn reply(&mut self, f: &Frame<'_>) {
        let mut c = Cursor::new(f.body);
        let (Some(_), Some(response_to), Some(op)) = (c.i32_le(), c.i32_le(), c.i32_le()) else { return };
        let response = Message::wire(f.at, f.end, StartLine::Unknown, f.size());
        let (mut info, request) = match self.pairs.answer(|p| p.key == i64::from(response_to)) {
            Some(p) => (p.info, Some(p.request)),
            None => (DbInfo { command: "reply".into(), ..DbInfo::default() }, None),
        };
        match op {
            OP_MSG => {
                if let Some((_, doc)) = msg_body(&mut c) {
                    outcome(&doc, &mut info);
                }
            }
            OP_REPLY => {
                let flags = c.i32_le().unwrap_or_default();
                c.skip(8 + 4);
                let returned = c.i32_le().unwrap_or_default();
                if info.command == "query" {
                    info.rows = Some(returned.max(0) as u64);
                    info.success = Some(flags & 2 == 0);
                    if flags & 2 != 0 {
                        outcome(c.rest(), &mut info);
                    }
                } else {
                    outcome(c.rest(), &mut info);
                }
            }
            _ => {}
        }
        let error = request.is_none().then_some("no_request");
        self.pairs.rows.row(request, Some(response), info, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Side;
    use crate::testing::{Step, every_chunking};

    /// A BSON document from (key, type, value bytes).
    fn doc(fields: &[(&str, u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, t, v) in fields {
            body.push(*t);
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v);
        }
        body.push(0);
        let mut d = (body.len() as u32 + 4).to_le_bytes().to_vec();
        d.extend(body);
        d
    }

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u32 + 1).to_le_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        v
    }

    fn op_msg(id: i32, response_to: i32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_le_bytes());
        m.extend_from_slice(&response_to.to_le_bytes());
        m.extend_from_slice(&OP_MSG.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.push(0);
        m.extend_from_slice(body);
        let mut out = (m.len() as u32 + 4).to_le_bytes().to_vec();
        out.extend(m);
        out
    }

    #[test]
    fn op_msg_find_and_a_duplicate_key_error() {
        let find = doc(&[
            ("find", 2, string("users")),
            ("filter", 3, doc(&[("age", 0x10, 30i32.to_le_bytes().to_vec())])),
            ("$db", 2, string("shop")),
        ]);
        let req = op_msg(7, 0, &find);
        assert_eq!(probe(&req), Some(true));
        let batch = doc(&[("0", 3, doc(&[("age", 0x10, 30i32.to_le_bytes().to_vec())]))]);
        let reply = doc(&[
            ("cursor", 3, doc(&[("firstBatch", 4, batch), ("id", 0x12, 0i64.to_le_bytes().to_vec())])),
            ("ok", 1, 1f64.to_le_bytes().to_vec()),
        ]);
        let insert = doc(&[("insert", 2, string("users")), ("$db", 2, string("shop"))]);
        let err = doc(&[
            ("index", 0x10, vec![0; 4]),
            ("code", 0x10, 11000i32.to_le_bytes().to_vec()),
            ("errmsg", 2, string("E11000 duplicate key")),
        ]);
        let werr = doc(&[
            ("n", 0x10, vec![0; 4]),
            ("writeErrors", 4, doc(&[("0", 3, err)])),
            ("ok", 1, 1f64.to_le_bytes().to_vec()),
        ]);
        let mut client = req;
        client.extend(op_msg(8, 0, &insert));
        let mut server = op_msg(100, 7, &reply);
        server.extend(op_msg(101, 8, &werr));
        let out = every_chunking(
            || Box::new(MongoConn::new(Limits::default())),
            &[Step::Data(Side::Requester, &client), Step::Data(Side::Responder, &server)],
        );
        let rows: Vec<&DbInfo> = out.exchanges.iter().map(|e| e.detail.db().unwrap()).collect();
        assert_eq!(
            (rows[0].command.as_str(), rows[0].collection.as_deref(), rows[0].database.as_deref()),
            ("find", Some("users"), Some("shop"))
        );
        assert_eq!((rows[0].rows, rows[0].success), (Some(1), Some(true)));
        assert_eq!(rows[0].query.as_deref(), Some(r#"{"find":"users","filter":{"age":30},"$db":"shop"}"#));
        assert_eq!(
            (rows[1].success, rows[1].error_code.as_deref(), rows[1].error_message.as_deref()),
            (Some(false), Some("11000"), Some("E11000 duplicate key"))
        );
    }
}
