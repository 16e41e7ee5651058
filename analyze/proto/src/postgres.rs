//! PostgreSQL's frontend/backend protocol (version 3): startup (user,
//! database), SSLRequest, the simple and the extended query protocol,
//! command tags, and errors with their SQLSTATE.
//!
//! One row per exchange:
//! - a `Query` (simple protocol) up to its ReadyForQuery; a query string
//!   of several statements is one row, with the last command tag;
//! - an extended-protocol statement: the Parse, Bind, Describe and
//!   Execute messages that run it (a row starts at Parse, or at Bind when
//!   the statement was prepared earlier), up to the Execute's completion;
//!   the query text of a named statement is remembered from its Parse;
//! - the startup (`StartupMessage`, authentication included) up to the
//!   first ReadyForQuery or the error that refuses it;
//! - `SSLRequest` and `GSSENCRequest` with the one-byte answer (an
//!   accepted one ends reading: TLS follows), `CancelRequest`, and
//!   `Terminate`.
//!
//! Backend messages go to the oldest exchange not yet complete, since the
//! server answers in order. After an error in the extended protocol the
//! server skips to the next Sync: the exchanges it skipped end with
//! `skipped_after_error`.
//!
//! Messages are counted per direction (as tshark counts them); the SSL
//! answer byte is not a message.
//!
//! One file: the parser is one state machine over the simple and extended
//! query protocols; its tests are the last 120 lines.

use get_size2::GetSize;
use std::collections::HashMap;

use crate::detail::DbInfo;
use crate::exchange::{Exchange, Message, StartLine};
use crate::frames::{Cursor, Frame, Framed, Framer, Shape, text};
use crate::frames::{NAME_KEEP, QUERY_KEEP};
use crate::pairing::{Book, Flush, Pairing, Waiting};
use crate::parser::Counts;
use crate::{At, Limits, Side};

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
const CANCEL_REQUEST: u32 = 80877102;
const PROTOCOL_3: u32 = 196608;
/// Prepared statements remembered per connection.
const MAX_STATEMENTS: usize = 1024;
/// Messages longer than this are not PostgreSQL (the server's own limit
/// for most is 1 GB; a probe needs a tighter bound).
const MAX_LEN: u32 = 1 << 30;

/// PostgreSQL's framing: a type byte and a length that counts itself,
/// except for the untyped startup-phase messages (whose length's first
/// byte is 0, never a type byte).
pub(crate) struct Pg;

impl Shape for Pg {
    fn head_len(&self, first: u8) -> usize {
        if first == 0 { 4 } else { 5 }
    }
    fn body_len(&self, head: &[u8]) -> Result<u64, String> {
        let l = &head[head.len() - 4..];
        let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        let min = if head.len() == 4 { 8 } else { 4 };
        if !(min..MAX_LEN).contains(&len) {
            return Err(format!("message length {len}"));
        }
        Ok(u64::from(len) - 4)
    }
}

/// Names of frontend messages, by type byte.
fn frontend_name(t: u8) -> &'static str {
    match t {
        b'Q' => "Query",
        b'P' => "Parse",
        b'B' => "Bind",
        b'D' => "Describe",
        b'E' => "Execute",
        b'C' => "Close",
        b'S' => "Sync",
        b'H' => "Flush",
        b'F' => "FunctionCall",
        b'X' => "Terminate",
        b'p' => "PasswordMessage",
        b'd' => "CopyData",
        b'c' => "CopyDone",
        b'f' => "CopyFail",
        _ => "Unknown",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum Kind {
    Startup,
    /// SSLRequest or GSSENCRequest: answered by one byte.
    Encryption,
    Simple,
    Extended,
    /// FunctionCall: answered up to ReadyForQuery.
    Function,
}

#[derive(Debug, GetSize)]
struct Pending {
    kind: Kind,
    info: DbInfo,
    request: Message,
    response: Option<Message>,
    /// Extended: the frontend part is still growing (no Execute or Sync yet).
    open: bool,
    executes: bool,
    synced: bool,
    has_bind: bool,
    error: Option<&'static str>,
}

impl Pending {
    fn into_row(self) -> Exchange {
        Exchange {
            request: Some(self.request),
            response: self.response,
            error: self.error.map(str::to_string),
            detail: self.info.into(),
            ..Exchange::default()
        }
    }
}

impl Waiting for Pending {
    /// A request given up keeps the error it had; at the connection's
    /// end an unanswered one gets the end's.
    fn unanswered(mut self, why: Flush) -> Exchange {
        match why {
            Flush::GivenUp => {
                self.error.get_or_insert(why.error());
            }
            Flush::Closed(_) if self.response.is_none() => self.error = Some(why.error()),
            Flush::Closed(_) => {}
        }
        self.into_row()
    }
}

impl Framed for PgConn {
    type Shape = Pg;
    const NAME: &'static str = "PostgreSQL";
    const BAD: &'static str = "bad_pgsql_message";
    const LOST: &'static str = "pgsql_framing_lost";
    fn shape() -> Pg {
        Pg
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
        let t = if f.head.len() == 4 { 0 } else { f.head[0] };
        self.counts[i] += 1;
        if i == 0 {
            self.frontend(t, f.body, f.size(), f.at, f.end);
        } else {
            self.backend(t, f.body, f.size(), f.at, f.end);
        }
    }
    fn stopped(&self) -> bool {
        self.encrypted
    }
    /// The answer to SSLRequest/GSSENCRequest is one untyped byte; after
    /// an accepted one the rest is encrypted.
    fn unframed<'a>(&mut self, side: Side, at: At, data: &'a [u8]) -> &'a [u8] {
        if self.encrypted {
            return &[];
        }
        if side == Side::Responder
            && let Some(&b) = data.first()
            && self.pairs.waiting.front().is_some_and(|p| p.kind == Kind::Encryption && p.response.is_none())
            && matches!(b, b'S' | b'N' | b'G')
        {
            if let Some(mut p) = self.pairs.waiting.pop_front() {
                p.response = Some(Message::wire(at, at, StartLine::Unknown, 1));
                let accepted = b != b'N';
                p.info.result = Some(if accepted { "accepted" } else { "refused" }.into());
                p.info.success = Some(true);
                self.pairs.rows.emit(p.into_row());
                if accepted {
                    self.encrypted = true;
                    return &[];
                }
            }
            return &data[1..];
        }
        data
    }
    /// Frontend and backend messages, as tshark counts them.
    fn counts(&self) -> Counts {
        Counts { messages: self.counts, ..self.pairs.counts() }
    }
}

/// PostgreSQL state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct PgConn {
    framers: [Framer; 2],
    /// Exchanges waiting for (the rest of) their answers, in order.
    pairs: Pairing<Pending>,
    statements: HashMap<String, String>,
    user: Option<String>,
    database: Option<String>,
    /// TLS or GSS encryption was accepted: the rest is unreadable.
    encrypted: bool,
    /// Messages read: frontend, backend.
    counts: [u64; 2],
}

/// Does this look like the first bytes a PostgreSQL client sends: a
/// startup-phase message, or (joined mid-way) a run of well-formed
/// frontend messages that ends exactly at the end of `b`, or is followed
/// by one?
pub fn probe(b: &[u8]) -> bool {
    let mut c = Cursor::new(b);
    if b.first() == Some(&0) {
        let (Some(len), Some(code)) = (c.u32(), c.u32()) else { return false };
        return match code {
            SSL_REQUEST | GSSENC_REQUEST => len == 8,
            CANCEL_REQUEST => len == 16,
            PROTOCOL_3 => {
                (9..10_000).contains(&len)
                    && b.get(len as usize - 1).is_none_or(|&z| z == 0)
                    && b.get(8..).is_some_and(|p| p.starts_with(b"user\0") || p.contains(&0))
            }
            _ => false,
        };
    }
    let mut messages = 0;
    while let Some(t) = c.u8() {
        let Some(len) = c.u32() else { return false };
        let plausible = match t {
            b'S' | b'H' | b'c' | b'X' => len == 4,
            b'Q' | b'P' | b'B' | b'D' | b'E' | b'C' | b'p' | b'F' | b'd' | b'f' => (5..MAX_LEN).contains(&len),
            _ => false,
        };
        if !plausible {
            return false;
        }
        let Some(body) = c.take(len as usize - 4) else {
            // A first message cut by the end of the probe: its start must
            // be convincing on its own.
            return messages > 0
                || matches!(t, b'Q' | b'P')
                    && c.rest().len() >= 16
                    && c.rest().iter().take(16).all(|&x| x.is_ascii_graphic() || x == b' ' || x == 0);
        };
        let well_formed = match t {
            b'Q' => body.last() == Some(&0) && !body[..body.len() - 1].contains(&0),
            b'P' => Cursor::new(body).cstr().is_some() && body.iter().filter(|&&x| x == 0).count() >= 2,
            b'D' | b'C' => matches!(body.first(), Some(b'S' | b'P')) && body.last() == Some(&0),
            b'E' | b'B' => body.contains(&0),
            _ => true,
        };
        if !well_formed {
            return false;
        }
        messages += 1;
    }
    messages > 0
}

impl PgConn {
    pub fn new(limits: Limits) -> PgConn {
        PgConn {
            framers: Default::default(),
            pairs: Pairing::new(limits.max_pending),
            statements: HashMap::new(),
            user: None,
            database: None,
            encrypted: false,
            counts: [0; 2],
        }
    }

    /// Opens an exchange; returns it (the newest).
    fn start(&mut self, kind: Kind, command: &str, size: u64, at: At, end: At) -> Option<&mut Pending> {
        let info = DbInfo {
            command: command.into(),
            user: self.user.clone(),
            database: self.database.clone(),
            ..DbInfo::default()
        };
        let request =
            Message::wire(at, end, StartLine::Request { method: command.into(), target: String::new() }, size);
        self.pairs.wait(Pending {
            kind,
            info,
            request,
            response: None,
            open: kind == Kind::Extended,
            executes: false,
            synced: false,
            has_bind: false,
            error: None,
        });
        self.pairs.waiting.back_mut()
    }

    /// The extended-protocol exchange still being written, or a new one.
    fn open_extended(&mut self, t: u8, size: u64, at: At, end: At) -> Option<&mut Pending> {
        let starts_new = match self.pairs.waiting.back() {
            Some(p) if p.kind == Kind::Extended && p.open => match t {
                b'P' => p.info.query.is_some() || p.has_bind,
                b'B' => p.has_bind,
                _ => false,
            },
            _ => true,
        };
        if starts_new {
            return self.start(Kind::Extended, frontend_name(t), size, at, end);
        }
        let p = self.pairs.waiting.back_mut()?;
        p.request.end = end;
        p.request.body_size += size;
        Some(p)
    }

    /// A message that expects no answer, as a row of its own.
    fn expects_no_answer(&mut self, command: &str, size: u64, at: At, end: At) {
        let info = DbInfo {
            command: command.into(),
            user: self.user.clone(),
            database: self.database.clone(),
            success: Some(true),
            ..DbInfo::default()
        };
        let request =
            Message::wire(at, end, StartLine::Request { method: command.into(), target: String::new() }, size);
        self.pairs.rows.row(Some(request), None, info, None);
    }

    fn set_query(p: &mut Pending, q: &str) {
        p.info.query = Some(q.into());
        if let StartLine::Request { target, .. } = &mut p.request.start {
            *target = q.into();
        }
    }

    fn frontend(&mut self, t: u8, body: &[u8], size: u64, at: At, end: At) {
        let mut c = Cursor::new(body);
        match t {
            0 => {
                let code = c.u32().unwrap_or_default();
                let (kind, name) = match code {
                    SSL_REQUEST => (Kind::Encryption, "SSLRequest"),
                    GSSENC_REQUEST => (Kind::Encryption, "GSSENCRequest"),
                    CANCEL_REQUEST => {
                        self.expects_no_answer("CancelRequest", size, at, end);
                        return;
                    }
                    _ => (Kind::Startup, "StartupMessage"),
                };
                if kind == Kind::Startup {
                    while let (Some(k), Some(v)) = (c.cstr(), c.cstr()) {
                        if k.is_empty() {
                            break;
                        }
                        match k {
                            b"user" => self.user = Some(text(v, NAME_KEEP)),
                            b"database" => self.database = Some(text(v, NAME_KEEP)),
                            _ => {}
                        }
                    }
                    if self.database.is_none() {
                        // The server's default: the user's name.
                        self.database = self.user.clone();
                    }
                }
                self.start(kind, name, size, at, end);
            }
            b'Q' => {
                let q = text(c.cstr().unwrap_or(body), QUERY_KEEP);
                if let Some(p) = self.start(Kind::Simple, "Query", size, at, end) {
                    Self::set_query(p, &q);
                }
            }
            b'P' => {
                let name = text(c.cstr().unwrap_or_default(), NAME_KEEP);
                let q = text(c.cstr().unwrap_or_default(), QUERY_KEEP);
                if self.statements.len() < MAX_STATEMENTS || self.statements.contains_key(&name) {
                    self.statements.insert(name.clone(), q.clone());
                }
                if let Some(p) = self.open_extended(t, size, at, end) {
                    Self::set_query(p, &q);
                    if !name.is_empty() {
                        p.info.statement = Some(name);
                    }
                }
            }
            b'B' => {
                let _portal = c.cstr();
                let name = text(c.cstr().unwrap_or_default(), NAME_KEEP);
                let known = self.statements.get(&name).cloned();
                if let Some(p) = self.open_extended(t, size, at, end) {
                    p.has_bind = true;
                    if p.info.query.is_none()
                        && let Some(q) = known
                    {
                        Self::set_query(p, &q);
                    }
                    if !name.is_empty() {
                        p.info.statement = Some(name);
                    }
                }
            }
            b'D' | b'C' => {
                if t == b'C' && c.u8() == Some(b'S') {
                    self.statements.remove(&text(c.cstr().unwrap_or_default(), NAME_KEEP));
                }
                self.open_extended(t, size, at, end);
            }
            b'E' => {
                if let Some(p) = self.open_extended(t, size, at, end) {
                    p.executes = true;
                    p.open = false;
                }
            }
            b'S' => {
                for p in self.pairs.waiting.iter_mut() {
                    p.synced = true;
                    p.open = false;
                }
            }
            b'F' => {
                self.start(Kind::Function, "FunctionCall", size, at, end);
            }
            b'X' => self.expects_no_answer("Terminate", size, at, end),
            b'p' => {
                // Password and SASL messages belong to the startup.
                if let Some(p) = self.pairs.waiting.back_mut().filter(|p| p.kind == Kind::Startup) {
                    p.request.end = end;
                    p.request.body_size += size;
                }
            }
            // Flush, COPY data: nothing to pair.
            _ => {}
        }
    }

    fn backend(&mut self, t: u8, body: &[u8], size: u64, at: At, end: At) {
        match t {
            // Asynchronous: ParameterStatus, BackendKeyData, notices,
            // notifications; and COPY data.
            b'S' | b'K' | b'N' | b'A' | b'd' | b'c' => {
                if let Some(p) = self.pairs.waiting.front_mut().filter(|p| p.kind == Kind::Startup) {
                    Self::answered(p, size, at, end);
                }
            }
            b'Z' => {
                while let Some(p) = self.pairs.waiting.front() {
                    let done = match p.kind {
                        Kind::Extended => p.synced,
                        _ => true,
                    };
                    if !done {
                        break;
                    }
                    let Some(mut p) = self.pairs.waiting.pop_front() else { break };
                    Self::answered(&mut p, size, at, end);
                    if p.kind == Kind::Extended && p.executes && p.info.result.is_none() && p.info.error_code.is_none()
                    {
                        p.error = Some("skipped_after_error");
                        p.info.success = Some(false);
                    }
                    p.info.success.get_or_insert(true);
                    let simple = p.kind != Kind::Extended;
                    self.pairs.rows.emit(p.into_row());
                    if simple {
                        break;
                    }
                }
            }
            b'E' => {
                let (code, message) = error_fields(body);
                let Some(p) = self.pairs.waiting.front_mut() else {
                    // An error without a request (a FATAL shutdown notice).
                    let info = DbInfo {
                        command: "ErrorResponse".into(),
                        error_code: code,
                        error_message: message,
                        success: Some(false),
                        ..DbInfo::default()
                    };
                    let response = Message::wire(at, end, StartLine::Unknown, size);
                    self.pairs.rows.row(None, Some(response), info, Some("no_request"));
                    return;
                };
                Self::answered(p, size, at, end);
                p.info.error_code = code;
                p.info.error_message = message;
                p.info.success = Some(false);
                if matches!(p.kind, Kind::Extended | Kind::Startup)
                    && let Some(p) = self.pairs.waiting.pop_front()
                {
                    self.pairs.rows.emit(p.into_row());
                }
            }
            b'C' | b'I' | b's' => {
                let tag = match t {
                    b'C' => text(Cursor::new(body).cstr().unwrap_or(body), NAME_KEEP),
                    b'I' => "EMPTY".into(),
                    _ => "SUSPENDED".into(),
                };
                let Some(p) = self.pairs.waiting.front_mut() else { return };
                Self::answered(p, size, at, end);
                p.info.result = Some(tag);
                if p.kind == Kind::Extended && p.executes {
                    p.info.success = Some(true);
                    if let Some(p) = self.pairs.waiting.pop_front() {
                        self.pairs.rows.emit(p.into_row());
                    }
                }
            }
            b'D' => {
                if let Some(p) = self.pairs.waiting.front_mut() {
                    Self::answered(p, size, at, end);
                    *p.info.rows.get_or_insert(0) += 1;
                }
            }
            // Authentication, ParseComplete, BindComplete, CloseComplete,
            // NoData, descriptions, COPY starts, function results.
            _ => {
                if let Some(p) = self.pairs.waiting.front_mut() {
                    Self::answered(p, size, at, end);
                }
            }
        }
    }

    fn answered(p: &mut Pending, size: u64, at: At, end: At) {
        match &mut p.response {
            Some(r) => {
                r.end = end;
                r.body_size += size;
            }
            None => p.response = Some(Message::wire(at, end, StartLine::Unknown, size)),
        }
    }
}

/// The SQLSTATE and message of an ErrorResponse.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let mut c = Cursor::new(body);
    let (mut code, mut message) = (None, None);
    while let Some(k) = c.u8() {
        if k == 0 {
            break;
        }
        let Some(v) = c.cstr() else { break };
        match k {
            b'C' => code = Some(text(v, 16)),
            b'M' => message = Some(text(v, QUERY_KEEP)),
            _ => {}
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = PROTOCOL_3.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut m = (body.len() as u32 + 4).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn startup_simple_query_and_error_with_sqlstate() {
        let mut c = PgConn::new(Limits::default());
        let mut client = startup(&[("user", "alice"), ("database", "shop")]);
        assert!(probe(&client));
        client.extend(msg(b'Q', b"SELECT 1; SELECT 2\0"));
        client.extend(msg(b'Q', b"SELECT * FROM nope\0"));
        let mut server = msg(b'R', &0u32.to_be_bytes());
        server.extend(msg(b'S', b"server_version\x0015\0"));
        server.extend(msg(b'Z', b"I"));
        server.extend(msg(b'T', b"\0\x01x\0"));
        server.extend(msg(b'D', b"\0\x01"));
        server.extend(msg(b'C', b"SELECT 1\0"));
        server.extend(msg(b'D', b"\0\x01"));
        server.extend(msg(b'C', b"SELECT 1\0"));
        server.extend(msg(b'Z', b"I"));
        server.extend(msg(b'E', b"SERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0"));
        server.extend(msg(b'Z', b"I"));
        let out = every_chunking(
            || Box::new(PgConn::new(Limits::default())),
            &[Step::Data(Side::Requester, &client), Step::Data(Side::Responder, &server)],
        );
        c.on_data(Side::Requester, at(1), &client);
        c.on_data(Side::Responder, at(2), &server);
        let rows: Vec<&DbInfo> = out.exchanges.iter().map(|e| e.detail.db().unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].command.as_str(), rows[0].user.as_deref(), rows[0].database.as_deref()),
            ("StartupMessage", Some("alice"), Some("shop"))
        );
        assert_eq!(
            (rows[1].query.as_deref(), rows[1].result.as_deref(), rows[1].rows, rows[1].success),
            (Some("SELECT 1; SELECT 2"), Some("SELECT 1"), Some(2), Some(true))
        );
        assert_eq!((rows[2].error_code.as_deref(), rows[2].success), (Some("42P01"), Some(false)));
        assert_eq!(rows[2].error_message.as_deref(), Some("relation \"nope\" does not exist"));
        assert_eq!(Parser::counts(&c).messages, [3, 11]);
    }

    #[test]
    fn extended_protocol_pairs_statements_and_skips_after_an_error() {
        let mut c = PgConn::new(Limits::default());
        let mut client = msg(b'P', b"s1\0SELECT $1\0\0\0");
        client.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
        client.extend(msg(b'E', b"\0\0\0\0\0"));
        client.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
        client.extend(msg(b'E', b"\0\0\0\0\0"));
        client.extend(msg(b'S', b""));
        assert!(probe(&client), "joined mid-way, frontend messages are recognised");
        c.on_data(Side::Requester, at(1), &client);
        let mut server = msg(b'1', b"");
        server.extend(msg(b'2', b""));
        server.extend(msg(b'E', b"SERROR\0C22P02\0Minvalid input\0\0"));
        server.extend(msg(b'Z', b"I"));
        c.on_data(Side::Responder, at(2), &server);
        let out = c.drain();
        let rows: Vec<(&DbInfo, Option<&str>)> =
            out.exchanges.iter().map(|e| (e.detail.db().unwrap(), e.error.as_deref())).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].0.command.as_str(), rows[0].0.query.as_deref(), rows[0].0.error_code.as_deref()),
            ("Parse", Some("SELECT $1"), Some("22P02"))
        );
        assert_eq!(
            (rows[1].0.command.as_str(), rows[1].0.query.as_deref(), rows[1].1),
            ("Bind", Some("SELECT $1"), Some("skipped_after_error"))
        );
    }

    #[test]
    fn refused_ssl_then_startup_and_accepted_ssl_stops() {
        let mut c = PgConn::new(Limits::default());
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert!(probe(&ssl));
        c.on_data(Side::Requester, at(1), &ssl);
        c.on_data(Side::Responder, at(2), b"N");
        c.on_data(Side::Requester, at(3), &startup(&[("user", "bob")]));
        c.on_data(Side::Responder, at(4), &msg(b'E', b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"));
        let mut d = PgConn::new(Limits::default());
        d.on_data(Side::Requester, at(1), &ssl);
        d.on_data(Side::Responder, at(2), b"S\x16\x03\x01");
        d.on_data(Side::Requester, at(3), b"\x16\x03\x01\x02\x00");
        let (out, out_d) = (c.drain(), d.drain());
        let rows: Vec<&DbInfo> = out.exchanges.iter().map(|e| e.detail.db().unwrap()).collect();
        assert_eq!((rows[0].command.as_str(), rows[0].result.as_deref()), ("SSLRequest", Some("refused")));
        assert_eq!(
            (rows[1].command.as_str(), rows[1].database.as_deref(), rows[1].error_code.as_deref()),
            ("StartupMessage", Some("bob"), Some("28P01"))
        );
        assert_eq!(out_d.exchanges.len(), 1);
        assert!(out_d.issues.is_empty(), "TLS after an accepted SSLRequest is not a PostgreSQL error");
        assert!(!probe(b"GET / HTTP/1.1\r\n\r\n") && !probe(b"\x16\x03\x01\x02\x00\x01"));
    }
}
