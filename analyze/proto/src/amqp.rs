//! AMQP 0-9-1 (RabbitMQ): method frames, with the exchange, routing key
//! and queue they name, the content header's properties, and the reply
//! code and text of `close` methods.
//!
//! One row per exchange of methods: a synchronous method (`queue.declare`,
//! `connection.start`, ...) and its reply (`queue.declare-ok`, ...), paired
//! on their channel whichever side opened it; an asynchronous method
//! (`basic.publish`, `basic.deliver`, `basic.ack`, ...) alone, with the
//! content that follows it (its size and content type).

use crate::Limits;
use crate::detail::AmqpInfo;
use crate::exchange::{Exchange, Message, StartLine};
use crate::frames::NAME_KEEP;
use crate::frames::{Cursor, Frame, Framed, Framer, Shape, text};
use crate::pairing::{Book, Flush, Pairing, Waiting};
use get_size2::GetSize;

/// The name of a method (`class.method`).
pub fn method_name(class: u16, method: u16) -> Option<&'static str> {
    Some(match (class, method) {
        (10, 10) => "connection.start",
        (10, 11) => "connection.start-ok",
        (10, 20) => "connection.secure",
        (10, 21) => "connection.secure-ok",
        (10, 30) => "connection.tune",
        (10, 31) => "connection.tune-ok",
        (10, 40) => "connection.open",
        (10, 41) => "connection.open-ok",
        (10, 50) => "connection.close",
        (10, 51) => "connection.close-ok",
        (10, 60) => "connection.blocked",
        (10, 61) => "connection.unblocked",
        (10, 70) => "connection.update-secret",
        (10, 71) => "connection.update-secret-ok",
        (20, 10) => "channel.open",
        (20, 11) => "channel.open-ok",
        (20, 20) => "channel.flow",
        (20, 21) => "channel.flow-ok",
        (20, 40) => "channel.close",
        (20, 41) => "channel.close-ok",
        (40, 10) => "exchange.declare",
        (40, 11) => "exchange.declare-ok",
        (40, 20) => "exchange.delete",
        (40, 21) => "exchange.delete-ok",
        (40, 30) => "exchange.bind",
        (40, 31) => "exchange.bind-ok",
        (40, 40) => "exchange.unbind",
        (40, 51) => "exchange.unbind-ok",
        (50, 10) => "queue.declare",
        (50, 11) => "queue.declare-ok",
        (50, 20) => "queue.bind",
        (50, 21) => "queue.bind-ok",
        (50, 30) => "queue.purge",
        (50, 31) => "queue.purge-ok",
        (50, 40) => "queue.delete",
        (50, 41) => "queue.delete-ok",
        (50, 50) => "queue.unbind",
        (50, 51) => "queue.unbind-ok",
        (60, 10) => "basic.qos",
        (60, 11) => "basic.qos-ok",
        (60, 20) => "basic.consume",
        (60, 21) => "basic.consume-ok",
        (60, 30) => "basic.cancel",
        (60, 31) => "basic.cancel-ok",
        (60, 40) => "basic.publish",
        (60, 50) => "basic.return",
        (60, 60) => "basic.deliver",
        (60, 70) => "basic.get",
        (60, 71) => "basic.get-ok",
        (60, 72) => "basic.get-empty",
        (60, 80) => "basic.ack",
        (60, 90) => "basic.reject",
        (60, 100) => "basic.recover-async",
        (60, 110) => "basic.recover",
        (60, 111) => "basic.recover-ok",
        (60, 120) => "basic.nack",
        (85, 10) => "confirm.select",
        (85, 11) => "confirm.select-ok",
        (90, 10) => "tx.select",
        (90, 11) => "tx.select-ok",
        (90, 20) => "tx.commit",
        (90, 21) => "tx.commit-ok",
        (90, 30) => "tx.rollback",
        (90, 31) => "tx.rollback-ok",
        _ => return None,
    })
}

/// Is `(class, method)` a reply (to a synchronous method)?
fn is_reply(class: u16, method: u16) -> bool {
    method_name(class, method).is_some_and(|n| n.ends_with("-ok")) || (class, method) == (60, 72)
}

/// Does the method wait for a reply?
fn is_synchronous(class: u16, method: u16) -> bool {
    let reply = method.checked_add(1).and_then(|m| method_name(class, m));
    !is_reply(class, method)
        && (reply.is_some_and(|n| n.ends_with("-ok")) || matches!((class, method), (60, 70) | (40, 40)))
}

/// Does content (a header frame and body frames) follow the method?
fn carries_content(class: u16, method: u16) -> bool {
    matches!((class, method), (60, 40) | (60, 50) | (60, 60) | (60, 71))
}

const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";
const FRAME_END: u8 = 0xce;

/// AMQP's framing: type, channel and size (7 bytes), the payload and a
/// frame-end byte; the protocol header is read as a frame of its own.
pub(crate) struct Amqp;

impl Shape for Amqp {
    fn head_len(&self, _: u8) -> usize {
        7
    }
    fn body_len(&self, head: &[u8]) -> Result<u64, String> {
        if head.starts_with(b"AMQP") {
            return Ok(1);
        }
        if !matches!(head[0], 1..=4 | 8) {
            return Err(format!("frame type {}", head[0]));
        }
        Ok(u64::from(u32::from_be_bytes([head[3], head[4], head[5], head[6]])) + 1)
    }
}

/// Does this look like the start of AMQP 0-9-1: the protocol header, or
/// (joined mid-way) a method frame whose end byte is in place? Says
/// whether the sender is the client.
pub fn probe(b: &[u8]) -> Option<bool> {
    if b.starts_with(PROTOCOL_HEADER) {
        return Some(true);
    }
    let mut c = Cursor::new(b);
    let (1, _channel, size, class, method) = (c.u8()?, c.u16()?, c.u32()?, c.u16()?, c.u16()?) else { return None };
    let name = method_name(class, method)?;
    (size >= 4 && b.get(7 + size as usize) == Some(&FRAME_END)).then(|| !sent_by_server(name))
}

/// Methods only a server sends.
fn sent_by_server(name: &str) -> bool {
    let client_replies = ["connection.start-ok", "connection.secure-ok", "connection.tune-ok"];
    (name.ends_with("-ok") && !client_replies.contains(&name))
        || matches!(
            name,
            "connection.start"
                | "connection.secure"
                | "connection.tune"
                | "basic.deliver"
                | "basic.return"
                | "basic.get-empty"
        )
}

#[derive(Debug, GetSize)]
struct Open {
    info: AmqpInfo,
    request: Message,
    response: Option<Message>,
    /// Content bytes still to come (`u64::MAX` until its header frame).
    content_left: Option<u64>,
    /// A reply is expected.
    sync: bool,
    error: Option<&'static str>,
}

impl Open {
    fn into_row(self, error: Option<&str>) -> Exchange {
        Exchange {
            request: Some(self.request),
            response: self.response,
            error: error.map(str::to_string),
            detail: self.info.into(),
            ..Exchange::default()
        }
    }
}

impl Waiting for Open {
    /// Given up: `no_response`. At the connection's end, a method that
    /// wanted a reply and got none gets the end's error, unless it has
    /// one of its own.
    fn unanswered(self, why: Flush) -> Exchange {
        let error = match why {
            Flush::GivenUp => Some(why.error()),
            Flush::Closed(_) => self.error.or((self.sync && self.response.is_none()).then_some(why.error())),
        };
        self.into_row(error)
    }
}

impl Framed for AmqpConn {
    type Shape = Amqp;
    const NAME: &'static str = "AMQP";
    const BAD: &'static str = "bad_amqp_frame";
    const LOST: &'static str = "amqp_framing_lost";
    fn shape() -> Amqp {
        Amqp
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
        self.frame(i == 1, f)
    }
}

/// AMQP state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct AmqpConn {
    framers: [Framer; 2],
    /// Exchanges waiting for a reply or for their content, oldest first.
    pairs: Pairing<Open>,
}

impl AmqpConn {
    pub fn new(limits: Limits) -> AmqpConn {
        AmqpConn { framers: Default::default(), pairs: Pairing::new(limits.max_pending) }
    }

    fn frame(&mut self, from_server: bool, f: &Frame<'_>) {
        if f.head.starts_with(b"AMQP") {
            return;
        }
        let (kind, channel) = (f.head[0], u16::from_be_bytes([f.head[1], f.head[2]]));
        let payload = &f.body[..f.body.len().min(f.body_len as usize - 1)];
        match kind {
            1 => self.method(from_server, channel, payload, f),
            2 | 3 => {
                // Content of the newest exchange on the channel sent by this side.
                let Some(o) = self.pairs.waiting.iter_mut().rev().find(|o| {
                    o.info.channel == channel && o.content_left.is_some() && o.info.from_server == from_server
                }) else {
                    return;
                };
                o.request.end = f.end;
                o.request.body_size += f.size() + 1;
                let mut c = Cursor::new(payload);
                if kind == 2 {
                    let (Some(_class), Some(_weight), Some(size), Some(flags)) = (c.u16(), c.u16(), c.u64(), c.u16())
                    else {
                        return;
                    };
                    o.info.body_size = Some(size);
                    properties(flags, &mut c, &mut o.info);
                    o.content_left = Some(size);
                } else {
                    o.content_left = o.content_left.map(|l| l.saturating_sub(f.body_len - 1));
                }
                if o.content_left == Some(0) {
                    o.content_left = None;
                    self.flush();
                }
            }
            // Heartbeats.
            _ => {}
        }
    }

    fn method(&mut self, from_server: bool, channel: u16, payload: &[u8], f: &Frame<'_>) {
        let mut c = Cursor::new(payload);
        let (Some(class), Some(method)) = (c.u16(), c.u16()) else { return };
        let Some(name) = method_name(class, method) else {
            self.pairs.rows.issue(f.at, "unknown_amqp_method", format!("method {class}.{method}"));
            return;
        };
        let message = Message::wire(f.at, f.end, StartLine::Unknown, f.size() + 1);
        if is_reply(class, method)
            && let Some(o) = self.pairs.waiting.iter_mut().find(|o| {
                o.info.channel == channel
                    && o.info.from_server != from_server
                    && o.response.is_none()
                    && o.content_left.is_none()
                    && o.info.reply_method.is_none()
            })
        {
            o.info.reply_method = Some(name.into());
            o.response = Some(message);
            args(class, method, &mut c, &mut o.info);
            self.flush();
            return;
        }
        let mut info = AmqpInfo { method: name.into(), from_server, channel, ..AmqpInfo::default() };
        args(class, method, &mut c, &mut info);
        if matches!((class, method), (10, 50) | (20, 40)) {
            // The peer closed instead of replying: that is the answer to
            // what it was asked.
            for o in self.pairs.waiting.iter_mut().filter(|o| {
                (class == 10 || o.info.channel == channel)
                    && o.info.from_server != from_server
                    && o.sync
                    && o.response.is_none()
            }) {
                o.info.reply_code = info.reply_code;
                o.info.reply_text.clone_from(&info.reply_text);
                o.error = Some(if class == 10 { "connection_closed" } else { "channel_closed" });
                o.sync = false;
            }
        }
        let request = Message::wire(
            f.at,
            f.end,
            StartLine::Request {
                method: name.into(),
                target: info.exchange.clone().or_else(|| info.queue.clone()).unwrap_or_default(),
            },
            f.size() + 1,
        );
        let content = carries_content(class, method);
        self.pairs.wait(Open {
            info,
            request,
            response: None,
            content_left: content.then_some(u64::MAX),
            sync: is_synchronous(class, method),
            error: None,
        });
        self.flush();
    }

    /// Emits, in order, the exchanges at the front that are complete.
    fn flush(&mut self) {
        let done = |o: &Open| o.content_left.is_none() && (o.response.is_some() || !o.sync);
        while self.pairs.waiting.front().is_some_and(done) {
            if let Some(o) = self.pairs.waiting.pop_front() {
                let error = o.error;
                self.pairs.rows.emit(o.into_row(error));
            }
        }
    }
}

/// The properties of a content header, in flag order (bit 15 first).
fn properties(flags: u16, c: &mut Cursor<'_>, info: &mut AmqpInfo) -> Option<()> {
    const NAMES: [&str; 14] = [
        "content-type",
        "content-encoding",
        "headers",
        "delivery-mode",
        "priority",
        "correlation-id",
        "reply-to",
        "expiration",
        "message-id",
        "timestamp",
        "type",
        "user-id",
        "app-id",
        "cluster-id",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        if flags & (0x8000 >> i) == 0 {
            continue;
        }
        let value = match *name {
            "headers" => {
                // A field table: its entries are counted, not decoded.
                let n = c.u32()? as usize;
                let table = c.take(n)?;
                format!("{} bytes", table.len())
            }
            "delivery-mode" | "priority" => c.u8()?.to_string(),
            "timestamp" => c.u64()?.to_string(),
            _ => short_str(c)?,
        };
        if *name == "content-type" {
            info.content_type = Some(value.clone());
        }
        info.properties.push((name.to_string(), value));
    }
    Some(())
}

fn short_str(c: &mut Cursor<'_>) -> Option<String> {
    let n = c.u8()?;
    c.take(n.into()).map(|s| text(s, NAME_KEEP))
}

/// Reads the arguments a row shows.
fn args(class: u16, method: u16, c: &mut Cursor<'_>, info: &mut AmqpInfo) -> Option<()> {
    match (class, method) {
        (10 | 20, 50 | 40) if (class, method) != (10, 40) => {
            info.reply_code = c.u16();
            info.reply_text = short_str(c);
        }
        (60, 40) => {
            c.skip(2)?;
            info.exchange = short_str(c);
            info.routing_key = short_str(c);
        }
        (60, 50) => {
            info.reply_code = c.u16();
            info.reply_text = short_str(c);
            info.exchange = short_str(c);
            info.routing_key = short_str(c);
        }
        (60, 60) | (60, 71) => {
            if method == 60 {
                short_str(c)?;
            }
            c.skip(8 + 1)?;
            info.exchange = short_str(c);
            info.routing_key = short_str(c);
        }
        (60, 70) | (60, 20) | (50, 30) | (50, 40) => {
            c.skip(2)?;
            info.queue = short_str(c);
        }
        (50, 10) => {
            c.skip(2)?;
            info.queue = short_str(c).filter(|q| !q.is_empty());
        }
        // The server names the queue it declared.
        (50, 11) => info.queue = short_str(c),
        (50, 20) | (50, 50) => {
            c.skip(2)?;
            info.queue = short_str(c);
            info.exchange = short_str(c);
            info.routing_key = short_str(c);
        }
        (40, 10) | (40, 20) => {
            c.skip(2)?;
            info.exchange = short_str(c);
        }
        _ => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Side;
    use crate::testing::{Step, every_chunking};

    fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f.push(FRAME_END);
        f
    }

    fn method(class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = class.to_be_bytes().to_vec();
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        p
    }

    #[test]
    fn declare_publish_with_content_and_a_channel_error() {
        let mut client = PROTOCOL_HEADER.to_vec();
        client.extend(frame(1, 1, &method(50, 10, b"\0\0\x06orders\0\0")));
        client.extend(frame(1, 1, &method(60, 40, b"\0\0\x02ex\x07new.key\0")));
        let mut h = 60u16.to_be_bytes().to_vec();
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&5u64.to_be_bytes());
        h.extend_from_slice(&0x8000u16.to_be_bytes());
        h.extend_from_slice(b"\x10application/json");
        client.extend(frame(2, 1, &h));
        client.extend(frame(3, 1, b"hello"));
        assert_eq!(probe(&client), Some(true));
        let mut server = frame(1, 1, &method(50, 11, b"\x06orders\0\0\0\0\0\0\0\0"));
        server.extend(frame(1, 1, &method(20, 40, b"\x01\x94\x0fNOT_FOUND - no\0\x3c\0\x28")));
        let close_ok = frame(1, 1, &method(20, 41, b""));
        let steps = [
            Step::Data(Side::Requester, &client),
            Step::Data(Side::Responder, &server),
            Step::Data(Side::Requester, &close_ok),
        ];
        let out = every_chunking(|| Box::new(AmqpConn::new(Limits::default())), &steps);
        let rows: Vec<&AmqpInfo> = out.exchanges.iter().map(|e| e.detail.amqp().unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].method.as_str(), rows[0].reply_method.as_deref(), rows[0].queue.as_deref()),
            ("queue.declare", Some("queue.declare-ok"), Some("orders"))
        );
        assert_eq!(
            (rows[1].method.as_str(), rows[1].exchange.as_deref(), rows[1].routing_key.as_deref()),
            ("basic.publish", Some("ex"), Some("new.key"))
        );
        assert_eq!((rows[1].content_type.as_deref(), rows[1].body_size), (Some("application/json"), Some(5)));
        assert_eq!(rows[1].properties, [("content-type".to_string(), "application/json".to_string())]);
        assert_eq!(
            (rows[2].method.as_str(), rows[2].from_server, rows[2].reply_code, rows[2].reply_method.as_deref()),
            ("channel.close", true, Some(404), Some("channel.close-ok"))
        );
    }
}
