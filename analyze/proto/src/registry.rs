//! The protocols trawl decodes, in one place: each one's row name, its
//! names in a flow's `l7_protocols`, the ports that break ties, how its
//! parser is made, and how a connection is recognised as speaking it
//! ([`detect`], from the first bytes of one side; [`is_dns`] for UDP).
//!
//! The caller (analyze's L7 layer) asks this module instead of knowing
//! each protocol: adding one is a variant here, its parser module, and
//! its detection below.

use get_size2::GetSize;
use std::sync::Arc;

use crate::grpc::Schemas;
use crate::h2::{self, H2Conn, Start};
use crate::http1::{self, Http1Conn};
use crate::parser::{Parser, Switch};
use crate::websocket::WsConn;
use crate::{Limits, Side, amqp, dns, kafka, mongodb, mysql, postgres, redis, tls};

/// A protocol of connections (UDP DNS included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, GetSize)]
pub enum Protocol {
    Http1,
    Http2,
    /// Entered only by an HTTP/1 Upgrade.
    WebSocket,
    Dns,
    Tls,
    Redis,
    Postgres,
    Mysql,
    Kafka,
    Amqp,
    Mongo,
}

impl Protocol {
    /// Every protocol, in the order the docs list them.
    pub const ALL: [Protocol; 11] = [
        Protocol::Http1,
        Protocol::Http2,
        Protocol::WebSocket,
        Protocol::Dns,
        Protocol::Tls,
        Protocol::Redis,
        Protocol::Postgres,
        Protocol::Mysql,
        Protocol::Mongo,
        Protocol::Kafka,
        Protocol::Amqp,
    ];

    /// The layer of its parse issues, and the `protocol` of its rows
    /// (HTTP's rows are named by what rode on them: `http`, `grpc`,
    /// `graphql`).
    pub fn layer(self) -> &'static str {
        match self {
            Protocol::Http1 => "http",
            Protocol::Http2 => "http2",
            Protocol::WebSocket => "websocket",
            Protocol::Dns => "dns",
            Protocol::Tls => "tls",
            Protocol::Redis => "redis",
            Protocol::Postgres => "postgresql",
            Protocol::Mysql => "mysql",
            Protocol::Kafka => "kafka",
            Protocol::Amqp => "amqp",
            Protocol::Mongo => "mongodb",
        }
    }

    /// Its names in a flow's `l7_protocols` (HTTP/2 and WebSocket are
    /// entered through HTTP).
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Protocol::Http1 => &["HTTP"],
            Protocol::Http2 => &["HTTP", "HTTP2"],
            Protocol::WebSocket => &["HTTP", "WebSocket"],
            Protocol::Dns => &["DNS"],
            Protocol::Tls => &["TLS"],
            Protocol::Redis => &["Redis"],
            Protocol::Postgres => &["PostgreSQL"],
            Protocol::Mysql => &["MySQL"],
            Protocol::Kafka => &["Kafka"],
            Protocol::Amqp => &["AMQP"],
            Protocol::Mongo => &["MongoDB"],
        }
    }

    /// Ports that break ties where content alone is ambiguous: RESP
    /// replies and inline commands look like many protocols, and DNS
    /// messages over UDP are taken as DNS on these ports whatever their
    /// names look like.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Protocol::Redis => &[6379],
            Protocol::Dns => &DNS_PORTS,
            _ => &[],
        }
    }

    /// A parser for a connection found to speak this protocol (`None`
    /// for WebSocket, which only an Upgrade enters: [`after_switch`]).
    pub fn parser(self, d: &Detection, limits: Limits, schemas: &Option<Arc<Schemas>>) -> Option<Box<dyn Parser>> {
        Some(match self {
            Protocol::Http1 => Box::new(Http1Conn::new(limits, d.mid_stream)),
            Protocol::Http2 => {
                let start =
                    if d.requester == Requester::Sender || !d.mid_stream { Start::Preface } else { Start::MidStream };
                Box::new(H2Conn::new(limits, start, schemas.clone()))
            }
            Protocol::WebSocket => return None,
            Protocol::Dns => Box::new(dns::DnsConn::new(limits)),
            Protocol::Tls => Box::new(tls::TlsConn::new(limits)),
            Protocol::Redis => Box::new(redis::RedisConn::new(limits)),
            Protocol::Postgres => Box::new(postgres::PgConn::new(limits)),
            Protocol::Mysql => Box::new(mysql::MysqlConn::new(limits)),
            Protocol::Kafka => Box::new(kafka::KafkaConn::new(limits)),
            Protocol::Amqp => Box::new(amqp::AmqpConn::new(limits)),
            Protocol::Mongo => Box::new(mongodb::MongoConn::new(limits)),
        })
    }
}

/// The parser that takes a connection over after an HTTP/1 switch (h2c
/// or WebSocket), and its protocol; it is fed the switch's held bytes
/// by the caller.
pub fn after_switch(sw: &Switch, limits: Limits, schemas: &Option<Arc<Schemas>>) -> (Protocol, Box<dyn Parser>) {
    if sw.protocol == "h2c" {
        let start = Start::Upgrade { request: sw.request.clone().map(Box::new), next_index: sw.next_index };
        (Protocol::Http2, Box::new(H2Conn::new(limits, start, schemas.clone())))
    } else {
        (Protocol::WebSocket, Box::new(WsConn::new(limits, sw.request.as_ref(), &sw.response, sw.next_index)))
    }
}

/// Which side of the connection sends requests, as detection found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub enum Requester {
    /// The side whose bytes were recognised.
    Sender,
    /// The other side.
    Receiver,
    /// Unknown from these bytes: the flow's client is assumed (an HTTP/2
    /// connection joined without its preface; its parser corrects it
    /// from the first header block).
    FlowClient,
}

/// A connection recognised from the first bytes of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub struct Detection {
    pub protocol: Protocol,
    pub requester: Requester,
    /// The first bytes may be the middle of a message: the connection
    /// was joined mid-way, or the message start was found further in.
    pub mid_stream: bool,
}

/// What the first bytes of one side say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub enum Detect {
    /// Not enough bytes yet.
    Wait,
    /// Not a protocol trawl decodes.
    No,
    Found(Detection),
}

/// Decides from the first bytes of one side what a connection speaks.
/// `mid` says the connection's start was not seen; `ports` are its two
/// ports (hints for [`Protocol::ports`]).
pub fn detect(buf: &[u8], mid: bool, ports: (u16, u16)) -> Detect {
    let at = |protocol, requester, mid_stream| Detect::Found(Detection { protocol, requester, mid_stream });
    let side = |sender_is_requester: bool| if sender_is_requester { Requester::Sender } else { Requester::Receiver };
    let found = |protocol, sender_is_requester: bool| at(protocol, side(sender_is_requester), mid);
    let h2 = h2::probe(buf);
    match h2 {
        h2::Probe::Preface => {
            return at(Protocol::Http2, Requester::Sender, mid);
        }
        h2::Probe::Frames => {
            return at(Protocol::Http2, Requester::FlowClient, mid);
        }
        h2::Probe::NeedMore | h2::Probe::No => {}
    }
    if let Some(client_hello) = tls::probe(buf) {
        return found(Protocol::Tls, client_hello);
    }
    if redis::probe(buf) {
        return found(Protocol::Redis, true);
    }
    let on_port = |p: Protocol| p.ports().contains(&ports.0) || p.ports().contains(&ports.1);
    if on_port(Protocol::Redis)
        && let Some(&first) = buf.first()
    {
        if first.is_ascii_alphabetic() {
            // An inline command (`PING`, `INFO` ...).
            return found(Protocol::Redis, true);
        }
        if b"+-:$*%_,#(=!>~|".contains(&first) {
            return found(Protocol::Redis, false);
        }
    }
    if postgres::probe(buf) {
        return found(Protocol::Postgres, true);
    }
    if let Some(client) = mysql::probe(buf) {
        return found(Protocol::Mysql, client);
    }
    if kafka::probe(buf) {
        return found(Protocol::Kafka, true);
    }
    if let Some(client) = amqp::probe(buf) {
        return found(Protocol::Amqp, client);
    }
    if let Some(request) = mongodb::probe(buf) {
        return found(Protocol::Mongo, request);
    }
    if let Some(h) = buf.get(2..).and_then(dns::header)
        && dns_like(&h)
        && u16::from_be_bytes([buf[0], buf[1]]) as usize >= 12
    {
        return found(Protocol::Dns, !h.response);
    }
    let http = |sender_is_requester: bool, resync: bool| at(Protocol::Http1, side(sender_is_requester), mid || resync);
    match http1::probe(buf) {
        http1::Probe::Request => http(true, false),
        http1::Probe::Response => http(false, false),
        http1::Probe::NeedMore => Detect::Wait,
        http1::Probe::NotHttp if h2 == h2::Probe::NeedMore => Detect::Wait,
        http1::Probe::NotHttp if !mid => Detect::No,
        // Joined mid-stream: a message may start further in.
        http1::Probe::NotHttp => match http1::find_message_start(buf) {
            Some(side) => http(side == Side::Requester, true),
            None => Detect::Wait,
        },
    }
}

/// DNS, mDNS and LLMNR ports: a payload that parses as DNS is taken as
/// DNS on them; elsewhere its question names must look like names too.
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

/// NetBIOS name and datagram services: DNS-shaped messages with their
/// own encoding of names, not DNS.
const NETBIOS_PORTS: [u16; 2] = [137, 138];

/// A DNS message start whose questions look like names.
fn dns_like(h: &dns::Header) -> bool {
    !h.questions.is_empty()
        && h.questions.iter().all(|(n, _)| {
            !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        })
}

/// Is this UDP payload DNS? Content decides; the ports break ties.
pub fn is_dns(payload: &[u8], client_port: u16, server_port: u16) -> bool {
    dns_header(payload, client_port, server_port).is_some()
}

/// The header of a UDP payload that is DNS ([`is_dns`]), parsed once for
/// both the question and [`dns::DnsConn::message_with_header`].
pub fn dns_header(payload: &[u8], client_port: u16, server_port: u16) -> Option<dns::Header> {
    let h = dns::header(payload)?;
    let port = |set: &[u16]| set.contains(&client_port) || set.contains(&server_port);
    (!port(&NETBIOS_PORTS) && (port(&DNS_PORTS) || dns_like(&h))).then_some(h)
}
