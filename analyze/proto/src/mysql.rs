//! MySQL's client/server protocol: the handshake (user, database), the
//! commands (`COM_QUERY`, `COM_STMT_PREPARE`, `COM_STMT_EXECUTE`, ...),
//! and their OK, ERR and result-set responses.
//!
//! The protocol is strictly one command, then its response: a client
//! packet with sequence number 0 starts a command, and the server's
//! packets up to the response's last answer it. The handshake is a row
//! of its own (`Handshake`), from the client's HandshakeResponse to the
//! server's OK or ERR; a client asking for TLS ends the reading.
//!
//! Result sets are followed packet by packet (column count, column
//! definitions, an EOF if the client did not deprecate it, rows, the
//! closing EOF or OK) to count their rows.

use get_size2::GetSize;
use std::collections::HashMap;

use crate::Limits;
use crate::detail::{DbInfo, Detail};
use crate::exchange::{CloseReason, Exchange, Message, StartLine};
use crate::frames::{Cursor, Frame, Framed, Framer, Shape, text};
use crate::frames::{NAME_KEEP, QUERY_KEEP};
use crate::pairing::{Book, Rows};

/// Prepared statements remembered per connection.
const MAX_STATEMENTS: usize = 1024;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
const MORE_RESULTS: u16 = 0x8;

/// MySQL's framing: a 3-byte little-endian length and a sequence number.
pub(crate) struct My;

impl Shape for My {
    fn head_len(&self, _: u8) -> usize {
        4
    }
    fn body_len(&self, head: &[u8]) -> Result<u64, String> {
        Ok(u64::from(u32::from_le_bytes([head[0], head[1], head[2], 0])))
    }
}

/// A command's name by its code.
pub fn command_name(code: u8) -> &'static str {
    match code {
        0x00 => "COM_SLEEP",
        0x01 => "COM_QUIT",
        0x02 => "COM_INIT_DB",
        0x03 => "COM_QUERY",
        0x04 => "COM_FIELD_LIST",
        0x05 => "COM_CREATE_DB",
        0x06 => "COM_DROP_DB",
        0x07 => "COM_REFRESH",
        0x08 => "COM_SHUTDOWN",
        0x09 => "COM_STATISTICS",
        0x0a => "COM_PROCESS_INFO",
        0x0b => "COM_CONNECT",
        0x0c => "COM_PROCESS_KILL",
        0x0d => "COM_DEBUG",
        0x0e => "COM_PING",
        0x0f => "COM_TIME",
        0x10 => "COM_DELAYED_INSERT",
        0x11 => "COM_CHANGE_USER",
        0x12 => "COM_BINLOG_DUMP",
        0x13 => "COM_TABLE_DUMP",
        0x14 => "COM_CONNECT_OUT",
        0x15 => "COM_REGISTER_SLAVE",
        0x16 => "COM_STMT_PREPARE",
        0x17 => "COM_STMT_EXECUTE",
        0x18 => "COM_STMT_SEND_LONG_DATA",
        0x19 => "COM_STMT_CLOSE",
        0x1a => "COM_STMT_RESET",
        0x1b => "COM_SET_OPTION",
        0x1c => "COM_STMT_FETCH",
        0x1d => "COM_DAEMON",
        0x1e => "COM_BINLOG_DUMP_GTID",
        0x1f => "COM_RESET_CONNECTION",
        _ => "COM_UNKNOWN",
    }
}

/// Commands the server does not answer.
fn unanswered(code: u8) -> bool {
    matches!(code, 0x01 | 0x18 | 0x19)
}

/// Where in a response the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum Reply {
    First,
    Columns(u64),
    AfterColumns,
    Rows,
    /// COM_STMT_PREPARE's OK: definitions follow, then nothing to read.
    Definitions,
    Done,
}

#[derive(Debug, GetSize)]
struct Pending {
    code: Option<u8>,
    info: DbInfo,
    request: Message,
    response: Option<Message>,
    reply: Reply,
    /// COM_STMT_PREPARE: its query, for the statement id the OK gives.
    prepared: Option<String>,
}

impl Framed for MysqlConn {
    type Shape = My;
    const NAME: &'static str = "MySQL";
    const BAD: &'static str = "bad_mysql_packet";
    const LOST: &'static str = "mysql_framing_lost";
    fn shape() -> My {
        My
    }
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }
    fn book(&mut self) -> &mut dyn Book {
        &mut self.rows
    }
    fn book_ref(&self) -> &dyn Book {
        &self.rows
    }
    fn message(&mut self, i: usize, f: &Frame<'_>) {
        if i == 0 { self.client(f) } else { self.server(f) }
    }
    fn stopped(&self) -> bool {
        self.encrypted
    }
    /// A command still waiting is emitted.
    fn close(&mut self, reason: CloseReason) {
        if let Some(p) = self.current.take() {
            let why = (p.response.is_none() && !p.code.is_some_and(unanswered)).then_some(reason.unanswered());
            self.emit(p, why);
        }
    }
}

/// MySQL state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct MysqlConn {
    framers: [Framer; 2],
    current: Option<Pending>,
    statements: HashMap<u32, String>,
    user: Option<String>,
    database: Option<String>,
    encrypted: bool,
    /// The server's greeting was seen: the handshake row is next.
    greeted: bool,
    rows: Rows,
}

/// Does this look like a MySQL server's greeting (`Some(false)`: the
/// responder sent it) or, joined mid-way, a client's command
/// (`Some(true)`)?
pub fn probe(b: &[u8]) -> Option<bool> {
    let mut c = Cursor::new(b);
    let len = u32::from_le_bytes([c.u8()?, c.u8()?, c.u8()?, 0]) as usize;
    let seq = c.u8()?;
    let body = c.rest();
    if seq == 0 && body.first() == Some(&0x0a) && len > 20 {
        // Protocol 10, then the server version as text.
        let v = Cursor::new(&body[1..]).cstr()?;
        return (v.len() >= 3 && v[0].is_ascii_digit() && v.iter().all(|x| x.is_ascii_graphic())).then_some(false);
    }
    let code = *body.first()?;
    if seq != 0 || len == 0 || body.len() < len || command_name(code) == "COM_UNKNOWN" || code == 0 {
        return None;
    }
    let args = &body[1..len];
    let fits = match code {
        0x01 | 0x09 | 0x0e | 0x0f | 0x1f => args.is_empty(),
        0x03 | 0x16 => {
            args.len() >= 4 && args.iter().take(64).all(|x| !x.is_ascii_control() || x.is_ascii_whitespace())
        }
        0x02 => !args.is_empty() && args.iter().all(u8::is_ascii_graphic),
        0x17 | 0x19 | 0x1a => args.len() >= 4,
        _ => false,
    };
    // The packet ends the buffer, or the next one is also a command.
    let next = &body[len..];
    (fits && (next.is_empty() || next.get(3) == Some(&0))).then_some(true)
}

/// A length-encoded integer.
fn lenenc(c: &mut Cursor<'_>) -> Option<u64> {
    match c.u8()? {
        0xfc => c.u16_le().map(u64::from),
        0xfd => Some(u64::from(u32::from_le_bytes([c.u8()?, c.u8()?, c.u8()?, 0]))),
        0xfe => c.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())),
        0xff => None,
        n => Some(u64::from(n)),
    }
}

impl MysqlConn {
    pub fn new(_limits: Limits) -> MysqlConn {
        MysqlConn {
            framers: Default::default(),
            current: None,
            statements: HashMap::new(),
            user: None,
            database: None,
            encrypted: false,
            greeted: false,
            rows: Rows::default(),
        }
    }

    fn client(&mut self, f: &Frame<'_>) {
        let seq = f.head[3];
        let mut c = Cursor::new(f.body);
        if seq != 0 {
            match self.current.as_mut() {
                // More authentication data.
                Some(p) if p.code.is_none() => {
                    p.request.end = f.end;
                    p.request.body_size += f.size();
                }
                None if self.greeted => self.handshake_response(f),
                _ => {}
            }
            return;
        }
        if let Some(p) = self.current.take() {
            self.emit(p, None);
        }
        let Some(code) = c.u8() else { return };
        let name = command_name(code);
        let mut info = DbInfo {
            command: name.into(),
            user: self.user.clone(),
            database: self.database.clone(),
            ..DbInfo::default()
        };
        let mut target = String::new();
        let mut prepared = None;
        match code {
            0x03 | 0x16 => {
                let q = text(c.rest(), QUERY_KEEP);
                target.clone_from(&q);
                if code == 0x16 {
                    prepared = Some(q.clone());
                }
                info.query = Some(q);
            }
            0x02 => {
                let db = text(c.rest(), NAME_KEEP);
                target.clone_from(&db);
                info.database = Some(db);
            }
            0x04 => target = text(c.cstr().unwrap_or_default(), NAME_KEEP),
            0x17 | 0x18 | 0x19 | 0x1a | 0x1c => {
                if let Some(id) = c.u32_le() {
                    info.statement = Some(id.to_string());
                    if let Some(q) = self.statements.get(&id) {
                        info.query = Some(q.clone());
                        target.clone_from(q);
                    }
                    if code == 0x19 {
                        self.statements.remove(&id);
                    }
                }
            }
            _ => {}
        }
        let request = Message::wire(f.at, f.end, StartLine::Request { method: name.into(), target }, f.size());
        if unanswered(code) {
            info.success = Some(true);
        }
        let p = Pending { code: Some(code), info, request, response: None, reply: Reply::First, prepared };
        if unanswered(code) {
            self.emit(p, None);
        } else {
            self.current = Some(p);
        }
    }

    /// The client's HandshakeResponse (or its SSLRequest).
    fn handshake_response(&mut self, f: &Frame<'_>) {
        self.greeted = false;
        let mut c = Cursor::new(f.body);
        let caps = c.u32_le().unwrap_or_default();
        let request = Message::wire(
            f.at,
            f.end,
            StartLine::Request { method: "Handshake".into(), target: String::new() },
            f.size(),
        );
        if caps & CLIENT_SSL != 0 && f.body_len == 32 {
            self.encrypted = true;
            let info = DbInfo { command: "SSLRequest".into(), result: Some("TLS".into()), ..DbInfo::default() };
            self.emit(Pending { code: None, info, request, response: None, reply: Reply::Done, prepared: None }, None);
            return;
        }
        if c.skip(4 + 1 + 23).is_some() {
            self.user = c.cstr().map(|u| text(u, NAME_KEEP));
            let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
                lenenc(&mut c)
            } else if caps & CLIENT_SECURE_CONNECTION != 0 {
                c.u8().map(u64::from)
            } else {
                c.cstr().map(|_| 0)
            };
            if let Some(n) = auth
                && c.skip(n as usize).is_some()
                && caps & CLIENT_CONNECT_WITH_DB != 0
            {
                self.database = c.cstr().map(|d| text(d, NAME_KEEP)).filter(|d| !d.is_empty());
            }
        }
        let info = DbInfo {
            command: "Handshake".into(),
            user: self.user.clone(),
            database: self.database.clone(),
            ..DbInfo::default()
        };
        self.current = Some(Pending { code: None, info, request, response: None, reply: Reply::First, prepared: None });
    }

    fn server(&mut self, f: &Frame<'_>) {
        let seq = f.head[3];
        let first = f.body.first().copied();
        if seq == 0 && first == Some(0x0a) {
            // A greeting: the handshake starts.
            if let Some(p) = self.current.take() {
                self.emit(p, None);
            }
            self.greeted = true;
            return;
        }
        let Some(p) = self.current.as_mut() else { return };
        match &mut p.response {
            Some(r) => {
                r.end = f.end;
                r.body_size += f.size();
            }
            None => p.response = Some(Message::wire(f.at, f.end, StartLine::Unknown, f.size())),
        }
        let mut c = Cursor::new(f.body);
        let short = f.body_len < 0xff_ffff;
        let eof = first == Some(0xfe) && short;
        let mut finished = false;
        match (p.reply, first) {
            (_, Some(0xff)) => {
                c.skip(1);
                p.info.error_code = c.u16_le().map(|e| e.to_string());
                if c.rest().first() == Some(&b'#') {
                    p.info.error_name = c.take(6).map(|s| text(&s[1..], 8));
                }
                p.info.error_message = Some(text(c.rest(), QUERY_KEEP));
                p.info.success = Some(false);
                finished = true;
            }
            (Reply::First, Some(0x00)) if p.code.is_none() || f.body_len >= 7 || p.code == Some(0x16) => {
                c.skip(1);
                if p.code == Some(0x16) {
                    if let Some(id) = c.u32_le() {
                        p.info.statement = Some(id.to_string());
                        if let Some(q) = p.prepared.take()
                            && (self.statements.len() < MAX_STATEMENTS || self.statements.contains_key(&id))
                        {
                            self.statements.insert(id, q);
                        }
                    }
                    p.info.result = Some("OK".into());
                    p.info.success = Some(true);
                    p.reply = Reply::Definitions;
                    finished = true;
                } else {
                    let _affected = lenenc(&mut c);
                    let _insert_id = lenenc(&mut c);
                    let status = c.u16_le().unwrap_or_default();
                    p.info.result = Some("OK".into());
                    p.info.success = Some(true);
                    finished = status & MORE_RESULTS == 0;
                }
            }
            (Reply::First, _) if eof => {
                // Authentication switch (handshake) or an old-style EOF.
                if p.code.is_some() {
                    p.info.result = Some("EOF".into());
                    p.info.success = Some(true);
                    finished = true;
                }
            }
            (Reply::First, Some(0x01)) if p.code.is_none() => {}
            (Reply::First, _) if p.code == Some(0x04) => p.reply = Reply::AfterColumns,
            (Reply::First, _) => {
                let n = lenenc(&mut c).unwrap_or_default();
                p.info.result = Some("result set".into());
                p.reply = if n == 0 { Reply::AfterColumns } else { Reply::Columns(n) };
            }
            (Reply::Columns(n), _) => p.reply = if n <= 1 { Reply::AfterColumns } else { Reply::Columns(n - 1) },
            (Reply::AfterColumns | Reply::Rows, _) if eof => {
                if p.reply == Reply::Rows || p.code == Some(0x04) {
                    c.skip(1);
                    let _warnings = c.u16_le();
                    let status = c.u16_le().unwrap_or_default();
                    p.info.success = Some(true);
                    p.info.result.get_or_insert_with(|| "EOF".into());
                    if status & MORE_RESULTS != 0 {
                        p.reply = Reply::First;
                    } else {
                        finished = true;
                    }
                } else {
                    p.reply = Reply::Rows;
                }
            }
            // COM_FIELD_LIST answers with column definitions only.
            (Reply::AfterColumns, _) if p.code == Some(0x04) => {}
            (Reply::AfterColumns | Reply::Rows, _) => {
                p.reply = Reply::Rows;
                *p.info.rows.get_or_insert(0) += 1;
            }
            (Reply::Definitions | Reply::Done, _) => {}
        }
        if finished
            && p.reply != Reply::Definitions
            && let Some(mut p) = self.current.take()
        {
            p.reply = Reply::Done;
            self.current = Some(p);
        }
    }

    fn emit(&mut self, p: Pending, error: Option<&str>) {
        if p.code == Some(0x02) && p.info.success == Some(true) {
            self.database.clone_from(&p.info.database);
        }
        self.rows.emit(Exchange {
            request: Some(p.request),
            response: p.response,
            error: error.map(str::to_string),
            detail: Detail::Db(Box::new(p.info)),
            ..Exchange::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;
    use crate::testing::{Step, every_chunking};

    use crate::{At, Side};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    fn packet(seq: u8, body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn handshake_query_result_set_and_error() {
        let greeting = packet(0, b"\x0a8.0.36\0\x01\0\0\0abcdefgh\0\xff\xf7\x21\x02\0\xff\x81\x15\0\0\0\0\0\0\0\0\0\0ijklmnopqrst\0mysql_native_password\0");
        assert_eq!(probe(&greeting), Some(false));
        let caps: u32 = 0x0000_8000 | CLIENT_CONNECT_WITH_DB | 0x200;
        let mut hs = caps.to_le_bytes().to_vec();
        hs.extend_from_slice(&[0, 0, 0, 1, 33]);
        hs.extend_from_slice(&[0; 23]);
        hs.extend_from_slice(b"root\0\x14");
        hs.extend_from_slice(&[7; 20]);
        hs.extend_from_slice(b"shop\0");
        let q = packet(0, b"\x03SELECT id FROM users");
        assert_eq!(probe(&q), Some(true));
        let mut rs = packet(1, b"\x01");
        rs.extend(packet(2, b"\x03def\x04shop\x05users\x05users\x02id\x02id\x0c\x3f\0\x0b\0\0\0\x03\x03\x42\0\0\0"));
        rs.extend(packet(3, b"\xfe\0\0\x02\0"));
        rs.extend(packet(4, b"\x011"));
        rs.extend(packet(5, b"\x012"));
        rs.extend(packet(6, b"\xfe\0\0\x02\0"));
        let (hs, ok) = (packet(1, &hs), packet(2, b"\0\0\0\x02\0\0\0"));
        let (q2, e2, quit) = (
            packet(0, b"\x03SELECT * FROM nope"),
            packet(1, b"\xff\x7a\x04#42S02Table 'shop.nope' doesn't exist"),
            packet(0, b"\x01"),
        );
        let steps = [
            Step::Data(Side::Responder, &greeting),
            Step::Data(Side::Requester, &hs),
            Step::Data(Side::Responder, &ok),
            Step::Data(Side::Requester, &q),
            Step::Data(Side::Responder, &rs),
            Step::Data(Side::Requester, &q2),
            Step::Data(Side::Responder, &e2),
            Step::Data(Side::Requester, &quit),
        ];
        let out = every_chunking(|| Box::new(MysqlConn::new(Limits::default())), &steps);
        let rows: Vec<&DbInfo> = out.exchanges.iter().map(|e| e.detail.db().unwrap()).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            (rows[0].command.as_str(), rows[0].user.as_deref(), rows[0].database.as_deref(), rows[0].success),
            ("Handshake", Some("root"), Some("shop"), Some(true))
        );
        assert_eq!(
            (rows[1].query.as_deref(), rows[1].rows, rows[1].result.as_deref()),
            (Some("SELECT id FROM users"), Some(2), Some("result set"))
        );
        assert_eq!((rows[2].error_code.as_deref(), rows[2].error_name.as_deref()), (Some("1146"), Some("42S02")));
        assert_eq!(rows[2].error_message.as_deref(), Some("Table 'shop.nope' doesn't exist"));
        assert_eq!((rows[3].command.as_str(), out.exchanges[3].error.as_deref()), ("COM_QUIT", None));
    }

    #[test]
    fn prepared_statements_are_remembered() {
        let mut c = MysqlConn::new(Limits::default());
        c.on_data(Side::Requester, at(1), &packet(0, b"\x16SELECT ? + 1"));
        c.on_data(Side::Responder, at(2), &packet(1, b"\0\x07\0\0\0\x01\0\x01\0\0\0\0"));
        let mut exec = b"\x17\x07\0\0\0\0\x01\0\0\0".to_vec();
        exec.extend_from_slice(&[0, 1, 8, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        c.on_data(Side::Requester, at(3), &packet(0, &exec));
        c.on_data(Side::Responder, at(4), &packet(1, b"\0\0\0\x02\0\0\0"));
        c.on_close(At::default(), CloseReason::CaptureEnd);
        let out = c.drain();
        let rows: Vec<&DbInfo> = out.exchanges.iter().map(|e| e.detail.db().unwrap()).collect();
        assert_eq!((rows[0].command.as_str(), rows[0].statement.as_deref()), ("COM_STMT_PREPARE", Some("7")));
        assert_eq!(
            (rows[1].command.as_str(), rows[1].statement.as_deref(), rows[1].query.as_deref()),
            ("COM_STMT_EXECUTE", Some("7"), Some("SELECT ? + 1"))
        );
    }
}
