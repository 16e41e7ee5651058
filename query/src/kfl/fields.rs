//! Every KFL2 variable: its type, the protocol it is scoped to, and where it
//! comes from in each table. docs/kfl.md is generated from this list
//! ([`markdown`]), so the documentation cannot drift from the compiler.
//!
//! Kubeshark's variables are all known here, including those trawl cannot
//! answer yet: naming one gives an error saying why (protocol not decoded
//! yet, not in a packet capture, lives in the other table), never an
//! empty result.
//!
//! One file on purpose: it is the table of every KFL variable (most of its
//! length is that table and its examples); docs/kfl.md is generated from
//! it.

use std::fmt::Write;

/// The tables a filter can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Table {
    /// `calls`: one row per L7 request/response exchange (`api_calls.parquet`).
    #[default]
    Calls,
    /// `flows`: one row per L4 connection or flow (`flows.parquet`).
    Flows,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Calls => "calls",
            Table::Flows => "flows",
        }
    }
}

/// KFL types (CEL's, restricted to what trawl's tables hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarTy {
    Bool,
    Int,
    Double,
    Str,
    Bytes,
    Timestamp,
    StrList,
    StrMap,
}

impl VarTy {
    pub fn name(self) -> &'static str {
        match self {
            VarTy::Bool => "bool",
            VarTy::Int => "int",
            VarTy::Double => "double",
            VarTy::Str => "string",
            VarTy::Bytes => "bytes",
            VarTy::Timestamp => "timestamp",
            VarTy::StrList => "list(string)",
            VarTy::StrMap => "map(string, string)",
        }
    }
}

/// Where a variable's value comes from in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    /// A column; nulls read as the type's default.
    Col(&'static str),
    /// A column's value upper-cased (`protocol`: `http` -> `HTTP`).
    Upper(&'static str),
    /// A column divided by a constant, as a double (`flow_local_pps`...).
    PerSecond(&'static str),
    /// The bytes of a column read as UTF-8 text.
    Text(&'static str),
    /// Cookies parsed from a header of a header map column.
    Cookies(&'static str, &'static str),
    /// The first non-empty of these Kubernetes columns (pod, then service).
    Kube(&'static [&'static str]),
    /// The non-empty values of these Kubernetes columns, as a list.
    KubeList(&'static [&'static str]),
    /// A `*_resolution` column as Kubeshark's resolution status: empty when
    /// the address was named (`pod`, `service`, `node`), else the reason.
    Resolution(&'static str),
    /// A protocol flag.
    Flag(Flag),
    /// A boolean column negated (a null reads as false).
    Negated(&'static str),
    /// A number column is above zero (a part of the exchange is present).
    Positive(&'static str),
    /// The sum of number columns.
    Sum(&'static [&'static str]),
    /// Always this boolean.
    Const(bool),
    /// Lives in the other table.
    Elsewhere(Table),
}

/// What a protocol flag tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `protocol` column equals one of these.
    Protocol(&'static [&'static str]),
    /// `l7_protocols` list holds this name.
    Detected(&'static str),
    /// `protocol` column equals the first, and `http_version` is one of
    /// the second (GraphQL over HTTP/1 or HTTP/2).
    ProtocolOver(&'static str, &'static [&'static str]),
}

#[derive(Debug)]
pub struct VarDef {
    pub name: &'static str,
    pub ty: VarTy,
    /// The protocol flag this variable is scoped to: it only matches
    /// entries of that protocol (`status_code == 0` never matches a flow).
    pub scope: Option<&'static str>,
    pub calls: Src,
    pub flows: Src,
    /// Closed set of values; a string literal outside it is an error.
    pub values: &'static [&'static str],
    pub doc: &'static str,
    pub example: &'static str,
}

impl VarDef {
    pub fn src(&self, t: Table) -> Src {
        match t {
            Table::Calls => self.calls,
            Table::Flows => self.flows,
        }
    }
}

/// Application protocols trawl decodes into the calls table.
pub const DECODED: &[&str] =
    &["http", "grpc", "graphql", "websocket", "dns", "tls", "redis", "postgresql", "mysql", "mongodb", "kafka", "amqp"];

/// Kubeshark's protocol flags that name protocols trawl does not decode yet.
const PENDING_FLAGS: &[(&str, &str)] = &[("ldap", "LDAP"), ("radius", "RADIUS"), ("diameter", "Diameter")];

/// Kubeshark's protocol-specific variables for protocols not decoded yet,
/// grouped by flag.
const PENDING_VARS: &[(&str, &[&str])] = &[
    (
        "ldap",
        &[
            "ldap_type",
            "ldap_summary",
            "ldap_request",
            "ldap_response",
            "ldap_request_length",
            "ldap_response_length",
            "ldap_total_size",
        ],
    ),
    (
        "radius",
        &[
            "radius_code",
            "radius_code_name",
            "radius_request",
            "radius_response",
            "radius_request_authenticator",
            "radius_request_length",
            "radius_response_length",
            "radius_total_size",
        ],
    ),
    (
        "diameter",
        &[
            "diameter_method",
            "diameter_summary",
            "diameter_request",
            "diameter_response",
            "diameter_request_length",
            "diameter_response_length",
            "diameter_total_size",
        ],
    ),
];

/// Variables of other kinds that are Kubeshark's and not trawl's yet.
const LATER: &[(&str, &str)] = &[
    (
        "mongodb_opcode",
        "trawl does not keep the opcode: OP_MSG and legacy OP_QUERY rows fill the same columns (OP_COMPRESSED rows have the command `compressed`)",
    ),
    (
        "tlsx_summary",
        "trawl writes one row per TLS handshake; its parts are tlsx_version, tlsx_sni, tlsx_alpn and tlsx_cipher_suite",
    ),
    (
        "tlsx_info",
        "trawl writes one row per TLS handshake (ClientHello as the request, ServerHello as the response), not one per hello",
    ),
    (
        "tcp_method",
        "per-packet `tcp` entries are not produced; the TCP expert metrics are flow fields (retransmissions, dup_acks, ...)",
    ),
    (
        "tcp_payload",
        "per-packet `tcp` entries are not produced; the TCP expert metrics are flow fields (retransmissions, dup_acks, ...)",
    ),
    (
        "tcp_error_type",
        "per-packet `tcp` entries are not produced; the TCP expert metrics are flow fields (retransmissions, dup_acks, ...)",
    ),
    (
        "tcp_error_message",
        "per-packet `tcp` entries are not produced; the TCP expert metrics are flow fields (retransmissions, dup_acks, ...)",
    ),
    ("udp_length", "per-datagram UDP entries are not produced; use the flows table"),
    ("udp_checksum", "per-datagram UDP entries are not produced; use the flows table"),
    ("udp_payload", "per-datagram UDP entries are not produced; use the flows table"),
    ("sctp_checksum", "SCTP is not decoded yet"),
    ("sctp_chunk_type", "SCTP is not decoded yet"),
    ("sctp_length", "SCTP is not decoded yet"),
    ("icmp_type", "ICMP messages are not decoded yet; flows carry the type in src.port"),
    ("icmp_version", "ICMP messages are not decoded yet; use the icmp flag on the flows table"),
    ("icmp_length", "ICMP messages are not decoded yet"),
    ("tls_summary", "`tls` entries come from eBPF TLS interception, which a packet capture cannot see"),
    ("tls_info", "`tls` entries come from eBPF TLS interception, which a packet capture cannot see"),
    ("tls_request_size", "`tls` entries come from eBPF TLS interception, which a packet capture cannot see"),
    ("tls_response_size", "`tls` entries come from eBPF TLS interception, which a packet capture cannot see"),
    ("tls_total_size", "`tls` entries come from eBPF TLS interception, which a packet capture cannot see"),
    ("local_process_name", "process names come from eBPF socket hooks, not from packets"),
    ("remote_process_name", "process names come from eBPF socket hooks, not from packets"),
    ("node_id", "node ids are assigned by Kubeshark's hub"),
    ("worker", "worker ids belong to Kubeshark's live capture"),
    ("capture_source", "capture source metadata arrives with the capture agent"),
    ("capture_backend", "capture source metadata arrives with the capture agent"),
    ("capture_source_code", "capture source metadata arrives with the capture agent"),
    ("capture", "capture source metadata arrives with the capture agent"),
    ("conn_group_id", "connection groups are not computed yet"),
    ("flow_group_id", "flow groups are not computed yet"),
    ("stream", "use flow_id (conn_id) to name a connection"),
    ("node", "the `node` map is not built; use node_name / node_ip"),
];

const HTTP_VERSIONS: &[&str] = &["HTTP/1.0", "HTTP/1.1", "HTTP/2"];
const CONN_STATES: &[&str] = &["open", "in_progress", "closed"];
const RESOLUTION_STATUSES: &[&str] = &["", "not_found", "not_at_time", "no_metadata"];

macro_rules! var {
    ($name:expr, $ty:ident, $scope:expr, $calls:expr, $flows:expr, $values:expr, $doc:expr, $ex:expr) => {
        VarDef {
            name: $name,
            ty: VarTy::$ty,
            scope: $scope,
            calls: $calls,
            flows: $flows,
            values: $values,
            doc: $doc,
            example: $ex,
        }
    };
}

use Src::*;
const E_CALLS: Src = Elsewhere(Table::Calls);
const E_FLOWS: Src = Elsewhere(Table::Flows);
const HTTP: Option<&str> = Some("http");
/// HTTP exchanges and DNS ones (whose response code is their status).
const HTTP_DNS: Option<&str> = Some("http|dns");
const DNS: Option<&str> = Some("dns");
const TLSX: Option<&str> = Some("tlsx");
const REDIS: Option<&str> = Some("redis");
const PG: Option<&str> = Some("postgresql");
const MYSQL: Option<&str> = Some("mysql");
const MONGO: Option<&str> = Some("mongodb");
const KAFKA: Option<&str> = Some("kafka");
const AMQP: Option<&str> = Some("amqp");
const REQ_SIZE: Src = Col("request_body_size");
const RESP_SIZE: Src = Col("response_body_size");
const TOTAL_SIZE: Src = Sum(&["request_body_size", "response_body_size"]);
const GRPC: Option<&str> = Some("grpc");
const GQL: Option<&str> = Some("gql");
const WS: Option<&str> = Some("ws");
const WS_OPCODES: &[&str] = &["text", "binary", "close", "ping", "pong"];
const GQL_OPERATIONS: &[&str] = &["query", "mutation", "subscription"];

/// The variables trawl answers (plus the protocol flags), in documentation order.
pub static VARS: &[VarDef] = &[
    // Network
    var!(
        "src.ip",
        Str,
        None,
        Col("src_ip"),
        Col("src_ip"),
        &[],
        "Client (requester) address.",
        r#"src.ip.startsWith("192.168.")"#
    ),
    var!(
        "dst.ip",
        Str,
        None,
        Col("dst_ip"),
        Col("dst_ip"),
        &[],
        "Server (responder) address.",
        r#"dst.ip == "169.254.169.254""#
    ),
    var!(
        "src.port",
        Int,
        None,
        Col("src_port"),
        Col("src_port"),
        &[],
        "Client port (ICMP flows: the type).",
        "src.port > 1023"
    ),
    var!(
        "dst.port",
        Int,
        None,
        Col("dst_port"),
        Col("dst_port"),
        &[],
        "Server port (ICMP flows: the code).",
        "dst.port >= 8000 && dst.port <= 9000"
    ),
    var!(
        "protocol",
        Str,
        None,
        Upper("protocol"),
        Upper("protocol"),
        &[],
        "Calls: the application protocol (`HTTP`, `GRPC`, `GRAPHQL`, `WEBSOCKET`). Flows: the transport (`TCP`, `UDP`, `ICMP`, `ICMPV6`, `IP-<n>`).",
        r#"protocol == "HTTP""#
    ),
    // Identity and time
    var!("id", Int, None, Col("id"), Col("flow_id"), &[], "Calls: the call's id. Flows: the flow id.", "id == 42"),
    var!(
        "index",
        Int,
        None,
        Col("index"),
        E_CALLS,
        &[],
        "0-based position of the exchange within its connection.",
        "index > 0"
    ),
    var!(
        "flow_id",
        Int,
        None,
        Col("flow_id"),
        Col("flow_id"),
        &[],
        "The L4 flow (flows.flow_id) that carried the call.",
        "flow_id == 7"
    ),
    var!("conn_id", Int, None, Col("flow_id"), Col("flow_id"), &[], "Same as flow_id.", "conn_id == 7"),
    var!(
        "timestamp",
        Timestamp,
        None,
        Col("timestamp"),
        Col("timestamp"),
        &[],
        "Capture time of the request's first byte (flows: first packet), UTC.",
        r#"timestamp > timestamp("2026-03-14T22:00:00Z")"#
    ),
    var!(
        "elapsed_time",
        Int,
        None,
        Col("elapsed_time_us"),
        Col("duration_us"),
        &[],
        "Calls: request-to-response latency in microseconds (0 without a response). Flows: duration in microseconds.",
        "elapsed_time > 5000000"
    ),
    var!(
        "has_pcap",
        Bool,
        None,
        Const(true),
        Const(true),
        &[],
        "Always true: every record comes from a capture its packets can be exported from.",
        "has_pcap"
    ),
    // Protocol flags
    var!(
        "http",
        Bool,
        None,
        Flag(Flag::Protocol(&["http", "grpc", "graphql"])),
        Flag(Flag::Detected("HTTP")),
        &[],
        "HTTP/1.x and HTTP/2 exchanges, gRPC and GraphQL included; on flows, HTTP (either version) was detected on the connection.",
        "http"
    ),
    var!(
        "grpc",
        Bool,
        None,
        Flag(Flag::Protocol(&["grpc"])),
        Flag(Flag::Detected("gRPC")),
        &[],
        "gRPC calls (one per HTTP/2 stream); on flows, gRPC was seen on the connection.",
        "grpc"
    ),
    var!(
        "gql",
        Bool,
        None,
        Flag(Flag::Protocol(&["graphql"])),
        Flag(Flag::Detected("GraphQL")),
        &[],
        "GraphQL operations over HTTP/1 or HTTP/2; on flows, GraphQL was seen on the connection.",
        "gql"
    ),
    var!(
        "gqlv1",
        Bool,
        None,
        Flag(Flag::ProtocolOver("graphql", &["HTTP/1.0", "HTTP/1.1"])),
        E_CALLS,
        &[],
        "GraphQL operations over HTTP/1.x.",
        "gqlv1"
    ),
    var!(
        "gqlv2",
        Bool,
        None,
        Flag(Flag::ProtocolOver("graphql", &["HTTP/2"])),
        E_CALLS,
        &[],
        "GraphQL operations over HTTP/2.",
        "gqlv2"
    ),
    var!(
        "redis",
        Bool,
        None,
        Flag(Flag::Protocol(&["redis"])),
        Flag(Flag::Detected("Redis")),
        &[],
        "Redis commands and replies (RESP2 and RESP3).",
        "redis"
    ),
    var!(
        "postgresql",
        Bool,
        None,
        Flag(Flag::Protocol(&["postgresql"])),
        Flag(Flag::Detected("PostgreSQL")),
        &[],
        "PostgreSQL queries, statements and startups.",
        "postgresql"
    ),
    var!(
        "mysql",
        Bool,
        None,
        Flag(Flag::Protocol(&["mysql"])),
        Flag(Flag::Detected("MySQL")),
        &[],
        "MySQL commands and handshakes.",
        "mysql"
    ),
    var!(
        "mongodb",
        Bool,
        None,
        Flag(Flag::Protocol(&["mongodb"])),
        Flag(Flag::Detected("MongoDB")),
        &[],
        "MongoDB commands (OP_MSG, OP_QUERY).",
        "mongodb"
    ),
    var!(
        "kafka",
        Bool,
        None,
        Flag(Flag::Protocol(&["kafka"])),
        Flag(Flag::Detected("Kafka")),
        &[],
        "Kafka requests and responses.",
        "kafka"
    ),
    var!(
        "amqp",
        Bool,
        None,
        Flag(Flag::Protocol(&["amqp"])),
        Flag(Flag::Detected("AMQP")),
        &[],
        "AMQP 0-9-1 methods.",
        "amqp"
    ),
    var!(
        "tlsx",
        Bool,
        None,
        Flag(Flag::Protocol(&["tls"])),
        Flag(Flag::Detected("TLS")),
        &[],
        "TLS handshakes (ClientHello and ServerHello) seen in the clear; on flows, a TLS handshake was seen.",
        "tlsx"
    ),
    var!(
        "dns",
        Bool,
        None,
        Flag(Flag::Protocol(&["dns"])),
        Flag(Flag::Detected("DNS")),
        &[],
        "DNS, mDNS and LLMNR exchanges over UDP or TCP; on flows, DNS was seen.",
        "dns"
    ),
    var!(
        "ws",
        Bool,
        None,
        Flag(Flag::Protocol(&["websocket"])),
        Flag(Flag::Detected("WebSocket")),
        &[],
        "WebSocket messages (one row each); on flows, the connection was upgraded to WebSocket.",
        "ws"
    ),
    var!("tcp", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["tcp"])), &[], "TCP connections.", "tcp"),
    var!("udp", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["udp"])), &[], "UDP flows.", "udp"),
    var!("icmp", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["icmp", "icmpv6"])), &[], "ICMP and ICMPv6 flows.", "icmp"),
    var!(
        "sctp",
        Bool,
        None,
        E_FLOWS,
        Flag(Flag::Protocol(&["ip-132"])),
        &[],
        "SCTP associations (IP protocol 132; not decoded further).",
        "sctp"
    ),
    var!("conn", Bool, None, E_FLOWS, Const(true), &[], "Every flows row is a connection entry.", "conn"),
    var!("flow", Bool, None, E_FLOWS, Const(true), &[], "Every flows row is also a flow entry.", "flow"),
    var!("tcp_conn", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["tcp"])), &[], "TCP connection entries.", "tcp_conn"),
    var!("udp_conn", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["udp"])), &[], "UDP connection entries.", "udp_conn"),
    var!("tcp_flow", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["tcp"])), &[], "TCP flow entries.", "tcp_flow"),
    var!("udp_flow", Bool, None, E_FLOWS, Flag(Flag::Protocol(&["udp"])), &[], "UDP flow entries.", "udp_flow"),
    var!(
        "tls",
        Bool,
        None,
        Const(false),
        Const(false),
        &[],
        "Kubeshark: entries decrypted by eBPF TLS interception. A packet capture has none, so always false.",
        "!tls"
    ),
    // HTTP
    var!("method", Str, HTTP, Col("method"), E_CALLS, &[], "Request method as sent.", r#"method == "POST""#),
    var!("url", Str, HTTP, Col("url"), E_CALLS, &[], "Request target: path and query.", r#"url.contains("/api")"#),
    var!(
        "path",
        Str,
        HTTP,
        Col("path"),
        E_CALLS,
        &[],
        "Request path without the query.",
        r#"!path.contains("/health")"#
    ),
    var!(
        "host",
        Str,
        HTTP,
        Col("host"),
        E_CALLS,
        &[],
        "Host header (trawl extension).",
        r#"host.endsWith(".internal")"#
    ),
    var!(
        "status_code",
        Int,
        HTTP_DNS,
        Col("status_code"),
        E_CALLS,
        &[],
        "Final response status; DNS: the response code (3 is NXDOMAIN). 0 without a response.",
        "status_code >= 500"
    ),
    var!(
        "status_text",
        Str,
        HTTP_DNS,
        Col("status_text"),
        E_CALLS,
        &[],
        "Reason phrase of the final response (trawl extension).",
        r#"status_text == "Bad Gateway""#
    ),
    var!(
        "http_version",
        Str,
        HTTP,
        Col("http_version"),
        E_CALLS,
        HTTP_VERSIONS,
        "HTTP/1.0, HTTP/1.1 or HTTP/2.",
        r#"http_version == "HTTP/2""#
    ),
    var!(
        "query_string",
        StrMap,
        HTTP,
        Col("query_string"),
        E_CALLS,
        &[],
        "Query parameters, percent-decoded.",
        r#"query_string["debug"] == "1""#
    ),
    var!(
        "request.headers",
        StrMap,
        HTTP,
        Col("request_headers"),
        E_CALLS,
        &[],
        "Request headers. Names are lower-cased in the data, and keys written in a filter are lower-cased to match.",
        r#"request.headers["content-type"] == "application/json""#
    ),
    var!(
        "response.headers",
        StrMap,
        HTTP,
        Col("response_headers"),
        E_CALLS,
        &[],
        "Final response headers (keys lower-cased as above).",
        r#""set-cookie" in response.headers"#
    ),
    var!(
        "request.cookies",
        StrMap,
        HTTP,
        Cookies("request_headers", "cookie"),
        E_CALLS,
        &[],
        "Cookies of the request's Cookie header.",
        r#""session" in request.cookies"#
    ),
    var!(
        "response.cookies",
        StrMap,
        HTTP,
        Cookies("response_headers", "set-cookie"),
        E_CALLS,
        &[],
        "Cookies set by the response (name=value of each Set-Cookie).",
        r#"response.cookies["session"] != """#
    ),
    var!(
        "request_headers_size",
        Int,
        HTTP,
        Col("request_headers_size"),
        E_CALLS,
        &[],
        "Bytes of the request line and headers.",
        "request_headers_size > 8192"
    ),
    var!(
        "request_body_size",
        Int,
        HTTP,
        Col("request_body_size"),
        E_CALLS,
        &[],
        "Bytes of the request body on the wire.",
        "request_body_size > 1000000"
    ),
    var!(
        "response_headers_size",
        Int,
        HTTP,
        Col("response_headers_size"),
        E_CALLS,
        &[],
        "Bytes of the status line and headers.",
        "response_headers_size > 4096"
    ),
    var!(
        "response_body_size",
        Int,
        HTTP,
        Col("response_body_size"),
        E_CALLS,
        &[],
        "Bytes of the response body on the wire.",
        "response_body_size > 10000"
    ),
    var!(
        "request.body",
        Str,
        HTTP,
        Text("request_body"),
        E_CALLS,
        &[],
        "Stored request body (content-decoded, capped) as text (trawl extension).",
        r#"request.body.contains("password")"#
    ),
    var!(
        "response.body",
        Str,
        HTTP,
        Text("response_body"),
        E_CALLS,
        &[],
        "Stored response body (content-decoded, capped) as text (trawl extension).",
        r#"response.body.contains("error")"#
    ),
    // DNS
    var!(
        "dns_questions",
        StrList,
        DNS,
        Col("dns_questions"),
        E_CALLS,
        &[],
        "Question names (lower case, no trailing dot).",
        r#""google.com" in dns_questions"#
    ),
    var!(
        "dns_question_types",
        StrList,
        DNS,
        Col("dns_question_types"),
        E_CALLS,
        &[],
        "Question types: A, AAAA, NS, CNAME, SOA, MX, TXT, SRV, PTR, ANY, ...",
        r#""A" in dns_question_types"#
    ),
    var!(
        "dns_answers",
        StrList,
        DNS,
        Col("dns_answers"),
        E_CALLS,
        &[],
        "Data of the response's answers.",
        "size(dns_answers) == 0"
    ),
    var!(
        "dns_request",
        Bool,
        DNS,
        Positive("request_headers_size"),
        E_CALLS,
        &[],
        "The query was captured.",
        "dns_request"
    ),
    var!(
        "dns_response",
        Bool,
        DNS,
        Positive("response_headers_size"),
        E_CALLS,
        &[],
        "The response was captured.",
        "dns_response && status_code != 0"
    ),
    var!(
        "dns_request_length",
        Int,
        DNS,
        Col("request_body_size"),
        E_CALLS,
        &[],
        "Bytes of the query message.",
        "dns_request_length > 512"
    ),
    var!(
        "dns_response_length",
        Int,
        DNS,
        Col("response_body_size"),
        E_CALLS,
        &[],
        "Bytes of the response message.",
        "dns_response_length > 512"
    ),
    var!(
        "dns_total_size",
        Int,
        DNS,
        Sum(&["request_body_size", "response_body_size"]),
        E_CALLS,
        &[],
        "Query plus response bytes.",
        "dns_total_size > 1000"
    ),
    // Redis
    var!(
        "redis_type",
        Str,
        REDIS,
        Col("redis_command"),
        E_CALLS,
        &[],
        "The command (`GET`, `SET`, ...).",
        r#"redis_type == "GET""#
    ),
    var!(
        "redis_command",
        Str,
        REDIS,
        Col("redis_line"),
        E_CALLS,
        &[],
        "The command line (command and first arguments, cut).",
        r#"redis_command.contains("session:")"#
    ),
    var!(
        "redis_key",
        Str,
        REDIS,
        Col("redis_key"),
        E_CALLS,
        &[],
        "The first argument, cut at 64 bytes.",
        r#"redis_key.startsWith("session:")"#
    ),
    var!(
        "redis_request_size",
        Int,
        REDIS,
        Col("request_body_size"),
        E_CALLS,
        &[],
        "Bytes of the command.",
        "redis_request_size > 1000000"
    ),
    var!(
        "redis_response_size",
        Int,
        REDIS,
        Col("response_body_size"),
        E_CALLS,
        &[],
        "Bytes of the reply.",
        "redis_response_size > 1000000"
    ),
    var!(
        "redis_total_size",
        Int,
        REDIS,
        Sum(&["request_body_size", "response_body_size"]),
        E_CALLS,
        &[],
        "Command plus reply bytes.",
        "redis_total_size > 1000000"
    ),
    var!(
        "redis_reply_type",
        Str,
        REDIS,
        Col("redis_reply_type"),
        E_CALLS,
        &[],
        "The reply's RESP type (trawl extension).",
        r#"redis_reply_type == "error""#
    ),
    var!(
        "redis_error",
        Str,
        REDIS,
        Col("redis_error"),
        E_CALLS,
        &[],
        "The text of an error reply (trawl extension).",
        r#"redis_error.startsWith("WRONGTYPE")"#
    ),
    // PostgreSQL
    var!(
        "postgresql_command",
        Str,
        PG,
        Col("db_command"),
        E_CALLS,
        &[],
        "The exchange's first message: `Query`, `Parse`, `Bind`, `StartupMessage`, ...",
        r#"postgresql_command == "Query""#
    ),
    var!(
        "postgresql_query",
        Str,
        PG,
        Col("db_query"),
        E_CALLS,
        &[],
        "The SQL text (cut at 4 KiB).",
        r#"postgresql_query.contains("UNION SELECT")"#
    ),
    var!(
        "postgresql_database",
        Str,
        PG,
        Col("db_database"),
        E_CALLS,
        &[],
        "The database of the connection.",
        r#"postgresql_database == "shop""#
    ),
    var!(
        "postgresql_user",
        Str,
        PG,
        Col("db_user"),
        E_CALLS,
        &[],
        "The user of the connection.",
        r#"postgresql_user == "postgres""#
    ),
    var!(
        "postgresql_request_size",
        Int,
        PG,
        REQ_SIZE,
        E_CALLS,
        &[],
        "Bytes of the frontend messages.",
        "postgresql_request_size > 100000"
    ),
    var!(
        "postgresql_response_size",
        Int,
        PG,
        RESP_SIZE,
        E_CALLS,
        &[],
        "Bytes of the backend messages.",
        "postgresql_response_size > 1000000"
    ),
    var!("postgresql_total_size", Int, PG, TOTAL_SIZE, E_CALLS, &[], "Both.", "postgresql_total_size > 1000000"),
    var!(
        "postgresql_success",
        Bool,
        PG,
        Col("db_success"),
        E_CALLS,
        &[],
        "Answered without an ErrorResponse.",
        "!postgresql_success"
    ),
    var!(
        "postgresql_error_code",
        Str,
        PG,
        Col("db_error_code"),
        E_CALLS,
        &[],
        "The SQLSTATE of the error (`23505` unique violation).",
        r#"postgresql_error_code == "23505""#
    ),
    var!(
        "postgresql_error_message",
        Str,
        PG,
        Col("db_error_message"),
        E_CALLS,
        &[],
        "The error's message.",
        r#"postgresql_error_message.contains("deadlock")"#
    ),
    var!(
        "postgresql_result",
        Str,
        PG,
        Col("db_result"),
        E_CALLS,
        &[],
        "The command tag (`INSERT 0 1`) (trawl extension).",
        r#"postgresql_result.startsWith("DELETE")"#
    ),
    var!(
        "postgresql_rows",
        Int,
        PG,
        Col("db_rows"),
        E_CALLS,
        &[],
        "Rows returned (trawl extension).",
        "postgresql_rows > 1000"
    ),
    // MySQL
    var!(
        "mysql_command",
        Str,
        MYSQL,
        Col("db_command"),
        E_CALLS,
        &[],
        "The command: `COM_QUERY`, `COM_STMT_PREPARE`, `COM_STMT_EXECUTE`, `Handshake`, ...",
        r#"mysql_command == "COM_QUERY""#
    ),
    var!(
        "mysql_query",
        Str,
        MYSQL,
        Col("db_query"),
        E_CALLS,
        &[],
        "The SQL text (a prepared statement's, for an execute).",
        r#"mysql_query.contains("SELECT") && !mysql_success"#
    ),
    var!(
        "mysql_database",
        Str,
        MYSQL,
        Col("db_database"),
        E_CALLS,
        &[],
        "The database in use.",
        r#"mysql_database == "shop""#
    ),
    var!(
        "mysql_statement_id",
        Int,
        MYSQL,
        Col("db_statement"),
        E_CALLS,
        &[],
        "The prepared statement's id.",
        "mysql_statement_id == 1"
    ),
    var!(
        "mysql_request_size",
        Int,
        MYSQL,
        REQ_SIZE,
        E_CALLS,
        &[],
        "Bytes of the command's packets.",
        "mysql_request_size > 100000"
    ),
    var!(
        "mysql_response_size",
        Int,
        MYSQL,
        RESP_SIZE,
        E_CALLS,
        &[],
        "Bytes of the response's packets.",
        "mysql_response_size > 1000000"
    ),
    var!("mysql_total_size", Int, MYSQL, TOTAL_SIZE, E_CALLS, &[], "Both.", "mysql_total_size > 1000000"),
    var!(
        "mysql_success",
        Bool,
        MYSQL,
        Col("db_success"),
        E_CALLS,
        &[],
        "Answered without an ERR packet.",
        "!mysql_success"
    ),
    var!(
        "mysql_error_code",
        Int,
        MYSQL,
        Col("db_error_code"),
        E_CALLS,
        &[],
        "The error number (1146 no such table).",
        "mysql_error_code == 1146"
    ),
    var!(
        "mysql_error_message",
        Str,
        MYSQL,
        Col("db_error_message"),
        E_CALLS,
        &[],
        "The error's message.",
        r#"mysql_error_message.contains("doesn't exist")"#
    ),
    var!(
        "mysql_user",
        Str,
        MYSQL,
        Col("db_user"),
        E_CALLS,
        &[],
        "The user of the connection (trawl extension).",
        r#"mysql_user == "root""#
    ),
    var!(
        "mysql_rows",
        Int,
        MYSQL,
        Col("db_rows"),
        E_CALLS,
        &[],
        "Rows returned (trawl extension).",
        "mysql_rows > 1000"
    ),
    // MongoDB
    var!(
        "mongodb_command",
        Str,
        MONGO,
        Col("db_command"),
        E_CALLS,
        &[],
        "The command: `find`, `insert`, `update`, `aggregate`, ...",
        r#"mongodb_command == "find" && mongodb_collection == "users""#
    ),
    var!(
        "mongodb_database",
        Str,
        MONGO,
        Col("db_database"),
        E_CALLS,
        &[],
        "The database (`$db`).",
        r#"mongodb_database == "shop""#
    ),
    var!(
        "mongodb_collection",
        Str,
        MONGO,
        Col("db_collection"),
        E_CALLS,
        &[],
        "The collection the command names.",
        r#"mongodb_collection == "users""#
    ),
    var!(
        "mongodb_request_size",
        Int,
        MONGO,
        REQ_SIZE,
        E_CALLS,
        &[],
        "Bytes of the request.",
        "mongodb_request_size > 100000"
    ),
    var!(
        "mongodb_response_size",
        Int,
        MONGO,
        RESP_SIZE,
        E_CALLS,
        &[],
        "Bytes of the reply.",
        "mongodb_response_size > 1000000"
    ),
    var!("mongodb_total_size", Int, MONGO, TOTAL_SIZE, E_CALLS, &[], "Both.", "mongodb_total_size > 1000000"),
    var!(
        "mongodb_success",
        Bool,
        MONGO,
        Col("db_success"),
        E_CALLS,
        &[],
        "The reply said `ok: 1` without write errors.",
        "!mongodb_success"
    ),
    var!(
        "mongodb_error_code",
        Int,
        MONGO,
        Col("db_error_code"),
        E_CALLS,
        &[],
        "The error code (11000 duplicate key).",
        "mongodb_error_code == 11000"
    ),
    var!(
        "mongodb_error_message",
        Str,
        MONGO,
        Col("db_error_message"),
        E_CALLS,
        &[],
        "The error's message.",
        r#"mongodb_error_message.contains("duplicate")"#
    ),
    var!(
        "mongodb_error_code_name",
        Str,
        MONGO,
        Col("db_error_name"),
        E_CALLS,
        &[],
        "The error's code name.",
        r#"mongodb_error_code_name == "DuplicateKey""#
    ),
    var!(
        "mongodb_query",
        Str,
        MONGO,
        Col("db_query"),
        E_CALLS,
        &[],
        "The command document as JSON-like text (trawl extension).",
        r#"mongodb_query.contains("$where")"#
    ),
    // Kafka
    var!(
        "kafka_api_key",
        Int,
        KAFKA,
        Col("kafka_api_key"),
        E_CALLS,
        &[],
        "The API key (0 Produce, 1 Fetch, 3 Metadata, ...).",
        "kafka_api_key == 0"
    ),
    var!(
        "kafka_api_key_name",
        Str,
        KAFKA,
        Upper("kafka_api_name"),
        E_CALLS,
        &[],
        "The API key's name, upper-cased as Kubeshark shows it (`PRODUCE`, `FETCH`, `APIVERSIONS`).",
        r#"kafka_api_key_name == "PRODUCE""#
    ),
    var!(
        "kafka_client_id",
        Str,
        KAFKA,
        Col("kafka_client_id"),
        E_CALLS,
        &[],
        "The client id.",
        r#"kafka_client_id.startsWith("consumer-")"#
    ),
    var!("kafka_size", Int, KAFKA, TOTAL_SIZE, E_CALLS, &[], "Request plus response bytes.", "kafka_size > 1000000"),
    var!(
        "kafka_request",
        Bool,
        KAFKA,
        Positive("request_body_size"),
        E_CALLS,
        &[],
        "The request was captured.",
        "kafka_request"
    ),
    var!(
        "kafka_response",
        Bool,
        KAFKA,
        Positive("response_body_size"),
        E_CALLS,
        &[],
        "The response was captured.",
        "!kafka_response"
    ),
    var!(
        "kafka_request_summary",
        Str,
        KAFKA,
        Col("url"),
        E_CALLS,
        &[],
        "The topics of a Produce or Fetch request, joined by commas.",
        r#"kafka_request_summary.contains("orders")"#
    ),
    var!(
        "kafka_request_size",
        Int,
        KAFKA,
        REQ_SIZE,
        E_CALLS,
        &[],
        "Bytes of the request.",
        "kafka_request_size > 1000000"
    ),
    var!(
        "kafka_response_size",
        Int,
        KAFKA,
        RESP_SIZE,
        E_CALLS,
        &[],
        "Bytes of the response.",
        "kafka_response_size > 1000000"
    ),
    var!(
        "kafka_api_version",
        Int,
        KAFKA,
        Col("kafka_api_version"),
        E_CALLS,
        &[],
        "The API version (trawl extension).",
        "kafka_api_version >= 12"
    ),
    var!(
        "kafka_error_code",
        Int,
        KAFKA,
        Col("kafka_error_code"),
        E_CALLS,
        &[],
        "The response's error code, 0 on success (trawl extension).",
        "kafka_error_code != 0"
    ),
    var!(
        "kafka_topics",
        StrList,
        KAFKA,
        Col("kafka_topics"),
        E_CALLS,
        &[],
        "The topics named, as a list (trawl extension).",
        r#""orders" in kafka_topics"#
    ),
    // AMQP
    var!(
        "amqp_method",
        Str,
        AMQP,
        Col("amqp_method"),
        E_CALLS,
        &[],
        "The method (`basic.publish`, `queue.declare`, ...).",
        r#"amqp_method == "basic.publish""#
    ),
    var!(
        "amqp_summary",
        Str,
        AMQP,
        Col("url"),
        E_CALLS,
        &[],
        "The exchange the method names, else its queue.",
        r#"amqp_summary == "orders""#
    ),
    var!(
        "amqp_request",
        Bool,
        AMQP,
        Positive("request_body_size"),
        E_CALLS,
        &[],
        "The method was captured.",
        "amqp_request"
    ),
    var!(
        "amqp_response",
        Bool,
        AMQP,
        Positive("response_body_size"),
        E_CALLS,
        &[],
        "Its reply was captured.",
        "!amqp_response"
    ),
    var!(
        "amqp_request_length",
        Int,
        AMQP,
        REQ_SIZE,
        E_CALLS,
        &[],
        "Bytes of the method's frames and content.",
        "amqp_request_length > 100000"
    ),
    var!(
        "amqp_response_length",
        Int,
        AMQP,
        RESP_SIZE,
        E_CALLS,
        &[],
        "Bytes of the reply's frame.",
        "amqp_response_length > 0"
    ),
    var!("amqp_total_size", Int, AMQP, TOTAL_SIZE, E_CALLS, &[], "Both.", "amqp_total_size > 100000"),
    var!(
        "amqp_exchange",
        Str,
        AMQP,
        Col("amqp_exchange"),
        E_CALLS,
        &[],
        "The exchange named (trawl extension).",
        r#"amqp_exchange == "orders""#
    ),
    var!(
        "amqp_routing_key",
        Str,
        AMQP,
        Col("amqp_routing_key"),
        E_CALLS,
        &[],
        "The routing key (trawl extension).",
        r#"amqp_routing_key.startsWith("order.")"#
    ),
    var!(
        "amqp_queue",
        Str,
        AMQP,
        Col("amqp_queue"),
        E_CALLS,
        &[],
        "The queue named (trawl extension).",
        r#"amqp_queue == "tasks""#
    ),
    var!(
        "amqp_reply_code",
        Int,
        AMQP,
        Col("amqp_reply_code"),
        E_CALLS,
        &[],
        "A close's or return's reply code (trawl extension).",
        "amqp_reply_code >= 300"
    ),
    var!(
        "amqp_reply_text",
        Str,
        AMQP,
        Col("amqp_reply_text"),
        E_CALLS,
        &[],
        "Its reply text (trawl extension).",
        r#"amqp_reply_text.startsWith("NOT_FOUND")"#
    ),
    // TLS handshakes (Kubeshark's tlsx_* names, and the tls_* names of its unmerged docs)
    var!(
        "tlsx_sni",
        Str,
        TLSX,
        Col("tls_sni"),
        E_CALLS,
        &[],
        "Server name the client asked for (SNI).",
        r#"tlsx_sni.endsWith(".amazonaws.com")"#
    ),
    var!("tls_sni", Str, TLSX, Col("tls_sni"), E_CALLS, &[], "Same as tlsx_sni.", r#"tls_sni == "example.com""#),
    var!(
        "tlsx_version",
        Int,
        TLSX,
        Col("tls_version_code"),
        E_CALLS,
        &[],
        "Negotiated version code (771 is TLS 1.2, 772 TLS 1.3).",
        "tlsx_version < 771"
    ),
    var!("tls_version", Int, TLSX, Col("tls_version_code"), E_CALLS, &[], "Same as tlsx_version.", "tls_version < 771"),
    var!(
        "tlsx_cipher_suite",
        Int,
        TLSX,
        Col("tls_cipher_suite"),
        E_CALLS,
        &[],
        "Cipher suite the server chose (4865 is TLS_AES_128_GCM_SHA256).",
        "tlsx_cipher_suite == 4865"
    ),
    var!(
        "tls_cipher_suite",
        Int,
        TLSX,
        Col("tls_cipher_suite"),
        E_CALLS,
        &[],
        "Same as tlsx_cipher_suite.",
        "tls_cipher_suite == 5"
    ),
    var!(
        "tlsx_cipher_suites",
        StrList,
        TLSX,
        Col("tls_cipher_suites"),
        E_CALLS,
        &[],
        "Cipher suites the client offered (`0x1301` form).",
        r#""0x0005" in tlsx_cipher_suites"#
    ),
    var!(
        "tls_cipher_suites",
        StrList,
        TLSX,
        Col("tls_cipher_suites"),
        E_CALLS,
        &[],
        "Same as tlsx_cipher_suites.",
        r#""0x0005" in tls_cipher_suites"#
    ),
    var!(
        "tlsx_alpn",
        Str,
        TLSX,
        Col("tls_alpn_selected"),
        E_CALLS,
        &[],
        "Application protocol the server chose (ALPN).",
        r#"tlsx_alpn == "h2""#
    ),
    var!("tls_alpn", Str, TLSX, Col("tls_alpn_selected"), E_CALLS, &[], "Same as tlsx_alpn.", r#"tls_alpn == "h2""#),
    var!(
        "tlsx_ja3",
        Str,
        TLSX,
        Col("tls_ja3"),
        E_CALLS,
        &[],
        "JA3 of the ClientHello (trawl extension).",
        r#"tlsx_ja3 == "35708a08e7be9f7aa5bce7f2d5c1cecb""#
    ),
    var!(
        "tlsx_ja3s",
        Str,
        TLSX,
        Col("tls_ja3s"),
        E_CALLS,
        &[],
        "JA3S of the ServerHello (trawl extension).",
        r#"tlsx_ja3s.startsWith("eb1d")"#
    ),
    var!(
        "tlsx_ja4",
        Str,
        TLSX,
        Col("tls_ja4"),
        E_CALLS,
        &[],
        "JA4 of the ClientHello (trawl extension).",
        r#"tlsx_ja4.startsWith("t13d")"#
    ),
    var!(
        "tlsx_weak",
        StrList,
        TLSX,
        Col("tls_weak"),
        E_CALLS,
        &[],
        "Weak version or cipher protection (trawl extension).",
        "size(tlsx_weak) > 0"
    ),
    // gRPC
    var!(
        "grpc_method",
        Str,
        GRPC,
        Col("grpc_method"),
        E_CALLS,
        &[],
        "The method: the last segment of the path (`SayHello`).",
        r#"grpc_method == "SayHello""#
    ),
    var!(
        "grpc_service",
        Str,
        GRPC,
        Col("grpc_service"),
        E_CALLS,
        &[],
        "The fully qualified service (trawl extension).",
        r#"grpc_service.startsWith("helloworld.")"#
    ),
    var!(
        "grpc_status",
        Int,
        GRPC,
        Col("grpc_status"),
        E_CALLS,
        &[],
        "`grpc-status` of the trailers; 0 (OK) when absent.",
        "grpc_status != 0"
    ),
    var!(
        "grpc_message",
        Str,
        GRPC,
        Col("grpc_message"),
        E_CALLS,
        &[],
        "`grpc-message`, percent-decoded (trawl extension).",
        r#"grpc_message.contains("timeout")"#
    ),
    var!(
        "grpc_request_messages",
        Int,
        GRPC,
        Col("grpc_request_messages"),
        E_CALLS,
        &[],
        "Messages the client sent (trawl extension).",
        "grpc_request_messages > 1"
    ),
    var!(
        "grpc_response_messages",
        Int,
        GRPC,
        Col("grpc_response_messages"),
        E_CALLS,
        &[],
        "Messages the server sent (trawl extension).",
        "grpc_response_messages == 0"
    ),
    // GraphQL
    var!(
        "gql_operation",
        Str,
        GQL,
        Col("gql_operation"),
        E_CALLS,
        GQL_OPERATIONS,
        "`query`, `mutation` or `subscription` (trawl extension).",
        r#"gql_operation == "mutation""#
    ),
    var!(
        "gql_operation_name",
        Str,
        GQL,
        Col("gql_operation_name"),
        E_CALLS,
        &[],
        "The operation name (trawl extension).",
        r#"gql_operation_name == "AddItem""#
    ),
    var!(
        "gql_errors",
        Int,
        GQL,
        Col("gql_errors"),
        E_CALLS,
        &[],
        "Entries of the response's `errors` array (trawl extension).",
        "gql_errors > 0"
    ),
    // WebSocket
    var!(
        "ws_opcode",
        Str,
        WS,
        Col("ws_opcode"),
        E_CALLS,
        WS_OPCODES,
        "`text`, `binary`, `close`, `ping` or `pong`.",
        r#"ws_opcode == "close""#
    ),
    var!(
        "ws_request",
        Bool,
        WS,
        Col("ws_from_client"),
        E_CALLS,
        &[],
        "The message was sent by the client.",
        "ws_request"
    ),
    var!(
        "ws_response",
        Bool,
        WS,
        Negated("ws_from_client"),
        E_CALLS,
        &[],
        "The message was sent by the server.",
        "ws_response"
    ),
    var!(
        "ws_request_payload_data",
        Str,
        WS,
        Text("request_body"),
        E_CALLS,
        &[],
        "Payload of a client's message (inflated, capped) as text.",
        r#"ws_request_payload_data.contains("subscribe")"#
    ),
    var!(
        "ws_request_payload_length",
        Int,
        WS,
        Col("request_body_size"),
        E_CALLS,
        &[],
        "Payload bytes of a client's message on the wire.",
        "ws_request_payload_length > 65536"
    ),
    var!(
        "ws_response_payload_length",
        Int,
        WS,
        Col("response_body_size"),
        E_CALLS,
        &[],
        "Payload bytes of a server's message on the wire.",
        "ws_response_payload_length > 65536"
    ),
    var!(
        "ws_close_code",
        Int,
        WS,
        Col("ws_close_code"),
        E_CALLS,
        &[],
        "Status code of a close message (trawl extension).",
        "ws_close_code != 1000"
    ),
    var!(
        "error",
        Str,
        HTTP,
        Col("error"),
        E_CALLS,
        &[],
        "Why the exchange is incomplete (`no_response`, `gap`, ...; trawl extension).",
        r#"error == "no_response""#
    ),
    // L4 connection and flow entries
    var!(
        "conn_state",
        Str,
        None,
        E_FLOWS,
        Col("conn_state"),
        CONN_STATES,
        "`open`, `in_progress` or `closed`.",
        r#"conn_state == "open""#
    ),
    var!(
        "conn_local_pkts",
        Int,
        None,
        E_FLOWS,
        Col("client_packets"),
        &[],
        "Packets sent by the client (local = client side offline).",
        "conn_local_pkts > 100"
    ),
    var!(
        "conn_local_bytes",
        Int,
        None,
        E_FLOWS,
        Col("client_bytes"),
        &[],
        "Bytes sent by the client.",
        "conn_local_bytes > 1000000"
    ),
    var!(
        "conn_remote_pkts",
        Int,
        None,
        E_FLOWS,
        Col("server_packets"),
        &[],
        "Packets sent by the server.",
        "conn_remote_pkts == 0"
    ),
    var!(
        "conn_remote_bytes",
        Int,
        None,
        E_FLOWS,
        Col("server_bytes"),
        &[],
        "Bytes sent by the server.",
        "conn_remote_bytes > 1000000"
    ),
    var!(
        "conn_l7_detected",
        StrList,
        None,
        E_FLOWS,
        Col("l7_protocols"),
        &[],
        "Application protocols detected on the connection.",
        r#""HTTP" in conn_l7_detected"#
    ),
    var!(
        "flow_state",
        Str,
        None,
        E_FLOWS,
        Col("conn_state"),
        CONN_STATES,
        "Same as conn_state.",
        r#"flow_state == "closed""#
    ),
    var!(
        "flow_local_pkts",
        Int,
        None,
        E_FLOWS,
        Col("client_packets"),
        &[],
        "Same as conn_local_pkts.",
        "flow_local_pkts > 100"
    ),
    var!(
        "flow_local_bytes",
        Int,
        None,
        E_FLOWS,
        Col("client_bytes"),
        &[],
        "Same as conn_local_bytes.",
        "flow_local_bytes > 1000000"
    ),
    var!(
        "flow_remote_pkts",
        Int,
        None,
        E_FLOWS,
        Col("server_packets"),
        &[],
        "Same as conn_remote_pkts.",
        "flow_remote_pkts > 100"
    ),
    var!(
        "flow_remote_bytes",
        Int,
        None,
        E_FLOWS,
        Col("server_bytes"),
        &[],
        "Same as conn_remote_bytes.",
        "flow_remote_bytes > 1000000"
    ),
    var!(
        "flow_local_pps",
        Double,
        None,
        E_FLOWS,
        PerSecond("client_packets"),
        &[],
        "Client packets per second over the flow's duration.",
        "flow_local_pps > 1000"
    ),
    var!(
        "flow_local_bps",
        Double,
        None,
        E_FLOWS,
        PerSecond("client_bytes"),
        &[],
        "Client bytes per second over the flow's duration.",
        "flow_local_bps > 5000000"
    ),
    var!(
        "flow_remote_pps",
        Double,
        None,
        E_FLOWS,
        PerSecond("server_packets"),
        &[],
        "Server packets per second.",
        "flow_remote_pps > 1000"
    ),
    var!(
        "flow_remote_bps",
        Double,
        None,
        E_FLOWS,
        PerSecond("server_bytes"),
        &[],
        "Server bytes per second.",
        "flow_remote_bps > 5000000"
    ),
    var!(
        "flow_l7_detected",
        StrList,
        None,
        E_FLOWS,
        Col("l7_protocols"),
        &[],
        "Same as conn_l7_detected.",
        r#""HTTP" in flow_l7_detected"#
    ),
    // TCP expert insights (docs/tcp-insights.md)
    var!(
        "retransmissions",
        Int,
        None,
        E_FLOWS,
        Col("retransmissions"),
        &[],
        "Retransmitted packets, fast and spurious included (tcp.analysis.retransmission).",
        "retransmissions > 0"
    ),
    var!(
        "client_retransmissions",
        Int,
        None,
        E_FLOWS,
        Col("client_retransmissions"),
        &[],
        "Retransmissions the client sent (trawl extension).",
        "client_retransmissions > 0"
    ),
    var!(
        "server_retransmissions",
        Int,
        None,
        E_FLOWS,
        Col("server_retransmissions"),
        &[],
        "Retransmissions the server sent (trawl extension).",
        "server_retransmissions > 0"
    ),
    var!(
        "resent_segments",
        Int,
        None,
        E_FLOWS,
        Col("resent_segments"),
        &[],
        "Segments whose bytes had all been captured before (trawl extension: loss recovery whatever the timing).",
        "resent_segments > 10"
    ),
    var!(
        "fast_retransmissions",
        Int,
        None,
        E_FLOWS,
        Col("fast_retransmissions"),
        &[],
        "Retransmissions asked for by two duplicate ACKs within 20 ms.",
        "fast_retransmissions > 0"
    ),
    var!(
        "spurious_retransmissions",
        Int,
        None,
        E_FLOWS,
        Col("spurious_retransmissions"),
        &[],
        "Retransmissions of data already acknowledged.",
        "spurious_retransmissions > 0"
    ),
    var!(
        "retransmission_rate",
        Double,
        None,
        E_FLOWS,
        Col("retransmission_rate"),
        &[],
        "Retransmissions / packets carrying data, SYN or FIN (0.0-1.0; over 0.05 is severe).",
        "retransmission_rate > 0.01"
    ),
    var!(
        "out_of_order",
        Int,
        None,
        E_FLOWS,
        Col("out_of_order"),
        &[],
        "Out-of-order segments (tcp.analysis.out_of_order).",
        "out_of_order > 0"
    ),
    var!("dup_acks", Int, None, E_FLOWS, Col("dup_acks"), &[], "Duplicate ACKs.", "dup_acks >= 3"),
    var!(
        "missing_segments",
        Int,
        None,
        E_FLOWS,
        Col("missing_segments"),
        &[],
        "Packets after a gap: previous segment not captured.",
        "missing_segments > 0"
    ),
    var!(
        "acked_unseen",
        Int,
        None,
        E_FLOWS,
        Col("acked_unseen"),
        &[],
        "ACKs for data the capture never saw (trawl extension).",
        "acked_unseen > 0"
    ),
    var!(
        "zero_window_events",
        Int,
        None,
        E_FLOWS,
        Col("zero_window_events"),
        &[],
        "Zero receive windows advertised: a receiver that stopped reading.",
        "zero_window_events > 0"
    ),
    var!(
        "zero_window_probes",
        Int,
        None,
        E_FLOWS,
        Col("zero_window_probes"),
        &[],
        "Zero-window probes (trawl extension).",
        "zero_window_probes > 0"
    ),
    var!(
        "window_full_events",
        Int,
        None,
        E_FLOWS,
        Col("window_full_events"),
        &[],
        "Data segments that filled the peer's window.",
        "window_full_events > 0"
    ),
    var!(
        "client_window_scale",
        Int,
        None,
        E_FLOWS,
        Col("client_window_scale"),
        &[],
        "Window scale shift of the client's SYN (trawl's split of window_scale).",
        "client_window_scale >= 7"
    ),
    var!(
        "server_window_scale",
        Int,
        None,
        E_FLOWS,
        Col("server_window_scale"),
        &[],
        "Window scale shift of the server's SYN-ACK.",
        "server_window_scale == 0"
    ),
    var!(
        "client_avg_receive_window",
        Int,
        None,
        E_FLOWS,
        Col("client_avg_receive_window"),
        &[],
        "Mean receive window the client advertised, bytes (trawl's split of avg_receive_window).",
        "client_avg_receive_window < 65536"
    ),
    var!(
        "server_avg_receive_window",
        Int,
        None,
        E_FLOWS,
        Col("server_avg_receive_window"),
        &[],
        "Mean receive window the server advertised, bytes.",
        "server_avg_receive_window < 65536"
    ),
    var!("rst_count", Int, None, E_FLOWS, Col("rst_count"), &[], "RST packets.", "rst_count > 0"),
    var!(
        "fin_count",
        Int,
        None,
        E_FLOWS,
        Col("fin_count"),
        &[],
        "FIN packets (2 is a normal close, 1 a half-close).",
        "fin_count == 1"
    ),
    var!(
        "keepalive_count",
        Int,
        None,
        E_FLOWS,
        Col("keepalive_count"),
        &[],
        "Keep-alive probes.",
        "keepalive_count > 0"
    ),
    var!(
        "connection_completeness",
        Int,
        None,
        E_FLOWS,
        Col("connection_completeness"),
        &[],
        "tcp.completeness bitmask: 1 SYN, 2 SYN-ACK, 4 ACK, 8 data, 16 FIN, 32 RST (31 full, 47 data then RST, 33 refused).",
        "connection_completeness == 33"
    ),
    var!(
        "initial_rtt_us",
        Int,
        None,
        E_FLOWS,
        Col("initial_rtt_us"),
        &[],
        "SYN to SYN-ACK, microseconds.",
        "initial_rtt_us > 100000"
    ),
    var!(
        "handshake_time_us",
        Int,
        None,
        E_FLOWS,
        Col("handshake_rtt_us"),
        &[],
        "SYN to the handshake's ACK, microseconds (tshark's initial RTT; column handshake_rtt_us).",
        "handshake_time_us > 10000"
    ),
    var!(
        "handshake_rtt_us",
        Int,
        None,
        E_FLOWS,
        Col("handshake_rtt_us"),
        &[],
        "Same as handshake_time_us.",
        "handshake_rtt_us > 10000"
    ),
    var!(
        "connection_time_us",
        Int,
        None,
        E_FLOWS,
        Col("connection_time_us"),
        &[],
        "SYN to the first payload byte, microseconds.",
        "connection_time_us > 50000"
    ),
    var!(
        "time_to_first_byte_us",
        Int,
        None,
        E_FLOWS,
        Col("time_to_first_byte_us"),
        &[],
        "Client's first payload byte to the server's first, microseconds.",
        "time_to_first_byte_us > 500000"
    ),
    var!(
        "rtt_min_us",
        Int,
        None,
        E_FLOWS,
        Col("rtt_min_us"),
        &[],
        "Smallest data-to-ACK round trip, microseconds.",
        "rtt_min_us > 1000"
    ),
    var!(
        "rtt_max_us",
        Int,
        None,
        E_FLOWS,
        Col("rtt_max_us"),
        &[],
        "Largest data-to-ACK round trip, microseconds.",
        "rtt_max_us > 200000"
    ),
    var!(
        "rtt_avg_us",
        Int,
        None,
        E_FLOWS,
        Col("rtt_avg_us"),
        &[],
        "Mean data-to-ACK round trip, microseconds.",
        "rtt_avg_us > 10000"
    ),
    var!("rtt_samples", Int, None, E_FLOWS, Col("rtt_samples"), &[], "Round trips measured.", "rtt_samples >= 10"),
    var!(
        "jitter_us",
        Int,
        None,
        E_FLOWS,
        Col("jitter_us"),
        &[],
        "Standard deviation of the round trips, microseconds.",
        "jitter_us > rtt_min_us"
    ),
    var!(
        "goodput_bytes",
        Int,
        None,
        E_FLOWS,
        Col("goodput_bytes"),
        &[],
        "Application bytes delivered, retransmissions excluded.",
        "goodput_bytes > 1000000"
    ),
    // Kubernetes (directional); pod fields fall back to the service.
    var!(
        "src.pod.name",
        Str,
        None,
        Kube(&["src_pod_name", "src_service_name"]),
        Kube(&["src_pod_name", "src_service_name"]),
        &[],
        "Client pod, else its service.",
        r#"src.pod.name.startsWith("checkout-")"#
    ),
    var!(
        "src.pod.namespace",
        Str,
        None,
        Kube(&["src_pod_namespace", "src_service_namespace"]),
        Kube(&["src_pod_namespace", "src_service_namespace"]),
        &[],
        "Client pod's namespace, else its service's.",
        r#"!(src.pod.namespace == "kube-system")"#
    ),
    var!(
        "dst.pod.name",
        Str,
        None,
        Kube(&["dst_pod_name", "dst_service_name"]),
        Kube(&["dst_pod_name", "dst_service_name"]),
        &[],
        "Server pod, else its service.",
        r#"dst.pod.name == "bifrost-0""#
    ),
    var!(
        "dst.pod.namespace",
        Str,
        None,
        Kube(&["dst_pod_namespace", "dst_service_namespace"]),
        Kube(&["dst_pod_namespace", "dst_service_namespace"]),
        &[],
        "Server pod's namespace, else its service's.",
        r#"dst.pod.namespace == "production""#
    ),
    var!(
        "src.service.name",
        Str,
        None,
        Kube(&["src_service_name"]),
        Kube(&["src_service_name"]),
        &[],
        "Client service.",
        r#"src.service.name == "api-gateway""#
    ),
    var!(
        "src.service.namespace",
        Str,
        None,
        Kube(&["src_service_namespace"]),
        Kube(&["src_service_namespace"]),
        &[],
        "Client service's namespace.",
        r#"src.service.namespace != dst.service.namespace"#
    ),
    var!(
        "dst.service.name",
        Str,
        None,
        Kube(&["dst_service_name"]),
        Kube(&["dst_service_name"]),
        &[],
        "Server service.",
        r#"dst.service.name == "user-service""#
    ),
    var!(
        "dst.service.namespace",
        Str,
        None,
        Kube(&["dst_service_namespace"]),
        Kube(&["dst_service_namespace"]),
        &[],
        "Server service's namespace.",
        r#"dst.service.namespace == "payments""#
    ),
    var!(
        "src.name",
        Str,
        None,
        Kube(&["src_pod_name", "src_service_name", "src_node_name", "src_dns"]),
        Kube(&["src_pod_name", "src_service_name", "src_node_name", "src_dns"]),
        &[],
        "Best name of the client: pod, else service, else node, else the DNS name.",
        r#"src.name == "api-gateway""#
    ),
    var!(
        "dst.name",
        Str,
        None,
        Kube(&["dst_pod_name", "dst_service_name", "dst_node_name", "dst_dns"]),
        Kube(&["dst_pod_name", "dst_service_name", "dst_node_name", "dst_dns"]),
        &[],
        "Best name of the server: pod, else service, else node, else the DNS name.",
        r#"dst.name.contains("payment")"#
    ),
    var!(
        "src.namespace",
        Str,
        None,
        Kube(&["src_namespace"]),
        Kube(&["src_namespace"]),
        &[],
        "Client namespace: pod's, else service's, else `internal` (private address) or `public`.",
        r#"src.namespace == "frontend""#
    ),
    var!(
        "dst.namespace",
        Str,
        None,
        Kube(&["dst_namespace"]),
        Kube(&["dst_namespace"]),
        &[],
        "Server namespace: pod's, else service's, else `internal` (private address) or `public`.",
        r#"dst.namespace == "backend""#
    ),
    var!(
        "namespaces",
        StrList,
        None,
        KubeList(&["src_namespace", "dst_namespace"]),
        KubeList(&["src_namespace", "dst_namespace"]),
        &[],
        "Namespaces of both ends (`internal` or `public` for addresses outside the cluster).",
        r#""production" in namespaces"#
    ),
    var!(
        "pods",
        StrList,
        None,
        KubeList(&["src_pod_name", "dst_pod_name"]),
        KubeList(&["src_pod_name", "dst_pod_name"]),
        &[],
        "Pods of both ends.",
        r#""bifrost-0" in pods"#
    ),
    var!(
        "services",
        StrList,
        None,
        KubeList(&["src_service_name", "dst_service_name"]),
        KubeList(&["src_service_name", "dst_service_name"]),
        &[],
        "Services of both ends.",
        r#""payments" in services"#
    ),
    var!(
        "node_name",
        Str,
        None,
        Kube(&["node_name"]),
        Kube(&["node_name"]),
        &[],
        "Node the traffic was captured on.",
        r#"node_name == "ip-10-0-25-170.ec2.internal""#
    ),
    var!(
        "node_ip",
        Str,
        None,
        Kube(&["node_ip"]),
        Kube(&["node_ip"]),
        &[],
        "Address of that node.",
        r#"node_ip == "10.0.25.170""#
    ),
    var!(
        "local_node_name",
        Str,
        None,
        Kube(&["src_node_name"]),
        Kube(&["src_node_name"]),
        &[],
        "Node of the client pod.",
        r#"local_node_name != remote_node_name"#
    ),
    var!(
        "remote_node_name",
        Str,
        None,
        Kube(&["dst_node_name"]),
        Kube(&["dst_node_name"]),
        &[],
        "Node of the server pod.",
        r#"remote_node_name == "node-2""#
    ),
    var!(
        "local_labels",
        StrMap,
        None,
        Kube(&["src_labels"]),
        Kube(&["src_labels"]),
        &[],
        "Labels of the client pod.",
        r#"map_get(local_labels, "app", "") == "payments""#
    ),
    var!(
        "remote_labels",
        StrMap,
        None,
        Kube(&["dst_labels"]),
        Kube(&["dst_labels"]),
        &[],
        "Labels of the server pod.",
        r#"remote_labels["app"] == "db""#
    ),
    var!(
        "local_annotations",
        StrMap,
        None,
        Kube(&["src_annotations"]),
        Kube(&["src_annotations"]),
        &[],
        "Annotations of the client pod.",
        r#""sidecar.istio.io/status" in local_annotations"#
    ),
    var!(
        "remote_annotations",
        StrMap,
        None,
        Kube(&["dst_annotations"]),
        Kube(&["dst_annotations"]),
        &[],
        "Annotations of the server pod.",
        r#"size(remote_annotations) > 0"#
    ),
    var!(
        "src.workload",
        Str,
        None,
        Kube(&["src_workload"]),
        Kube(&["src_workload"]),
        &[],
        "trawl: workload owning the client pod, `Kind/name` (Deployment through its ReplicaSet, StatefulSet, DaemonSet, Job, CronJob).",
        r#"src.workload == "Deployment/checkout""#
    ),
    var!(
        "dst.workload",
        Str,
        None,
        Kube(&["dst_workload"]),
        Kube(&["dst_workload"]),
        &[],
        "trawl: workload owning the server pod.",
        r#"dst.workload.startsWith("StatefulSet/")"#
    ),
    var!(
        "src.dns",
        Str,
        None,
        Kube(&["src_dns"]),
        Kube(&["src_dns"]),
        &[],
        "Name a DNS answer earlier in the capture gave the client address.",
        r#"src.dns != """#
    ),
    var!(
        "dst.dns",
        Str,
        None,
        Kube(&["dst_dns"]),
        Kube(&["dst_dns"]),
        &[],
        "Name a DNS answer earlier in the capture gave the server address (the question asked).",
        r#"dst.dns != "" && !dst.dns.endsWith(".internal")"#
    ),
    var!(
        "dns_resolutions",
        StrList,
        None,
        Col("dns_resolutions"),
        Col("dns_resolutions"),
        &[],
        "Every name DNS answers earlier in the capture gave either address (questions and CNAME targets).",
        r#""db.example.com" in dns_resolutions"#
    ),
    var!(
        "local_resolution_status",
        Str,
        None,
        Resolution("src_resolution"),
        Resolution("src_resolution"),
        RESOLUTION_STATUSES,
        "Empty when the client address was named from Kubernetes metadata, else why not: `not_found`, `not_at_time`, `no_metadata`.",
        r#"local_resolution_status == "not_found""#
    ),
    var!(
        "remote_resolution_status",
        Str,
        None,
        Resolution("dst_resolution"),
        Resolution("dst_resolution"),
        RESOLUTION_STATUSES,
        "Empty when the server address was named from Kubernetes metadata, else why not.",
        r#"remote_resolution_status != """#
    ),
];

/// A variable known to KFL2 and where it leads in `table`.
pub enum Lookup {
    Var(&'static VarDef),
    /// A flag of a protocol not decoded yet (its display name).
    PendingFlag(&'static str),
    /// A variable of a protocol not decoded yet: (flag, display name).
    PendingVar(&'static str, &'static str),
    /// Known, but not available: the reason.
    Later(&'static str),
}

pub fn lookup(name: &str) -> Option<Lookup> {
    if let Some(v) = VARS.iter().find(|v| v.name == name) {
        return Some(Lookup::Var(v));
    }
    if let Some((_, disp)) = PENDING_FLAGS.iter().find(|(f, _)| *f == name) {
        return Some(Lookup::PendingFlag(disp));
    }
    for (flag, vars) in PENDING_VARS {
        if vars.contains(&name) {
            let disp = PENDING_FLAGS.iter().find(|(f, _)| f == flag).map_or(*flag, |(_, d)| *d);
            return Some(Lookup::PendingVar(flag, disp));
        }
    }
    LATER.iter().find(|(n, _)| *n == name).map(|(_, why)| Lookup::Later(why))
}

/// Every name KFL knows (for "did you mean").
pub fn all_names() -> impl Iterator<Item = &'static str> {
    VARS.iter()
        .map(|v| v.name)
        .chain(PENDING_FLAGS.iter().map(|(f, _)| *f))
        .chain(PENDING_VARS.iter().flat_map(|(_, v)| v.iter().copied()))
        .chain(LATER.iter().map(|(n, _)| *n))
}

/// Protocol names Kubeshark uses for `protocol == "..."`, upper-case.
pub fn pending_protocol(name: &str) -> Option<&'static str> {
    PENDING_FLAGS.iter().find(|(f, d)| f.eq_ignore_ascii_case(name) || d.eq_ignore_ascii_case(name)).map(|(_, d)| *d)
}

fn describe_src(s: Src) -> String {
    match s {
        Col(c) => format!("`{c}`"),
        Upper(c) => format!("upper(`{c}`)"),
        PerSecond(c) => format!("`{c}` / duration"),
        Text(c) => format!("`{c}` as text"),
        Cookies(c, h) => format!("cookies of `{c}['{h}']`"),
        Kube(cols) => cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", else "),
        KubeList(cols) => {
            format!("non-empty of {}", cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))
        }
        Resolution(c) => format!("`{c}`, empty when named"),
        Flag(Flag::Protocol(p)) => {
            format!("protocol in ({})", p.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", "))
        }
        Flag(Flag::Detected(p)) => format!("'{p}' in `l7_protocols`"),
        Flag(Flag::ProtocolOver(p, v)) => {
            format!(
                "protocol = '{p}' and `http_version` in ({})",
                v.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
            )
        }
        Negated(c) => format!("not `{c}`"),
        Positive(c) => format!("`{c}` > 0"),
        Sum(cols) => cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" + "),
        Const(b) => format!("always {b}"),
        Elsewhere(t) => format!("(in {})", t.name()),
    }
}

/// docs/kfl.md's variable reference, generated from [`VARS`].
pub fn markdown_variables() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| variable | type | scope | calls column | flows column | example | description |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for v in VARS {
        let cell = |x: &str| x.replace('|', "\\|");
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | `{}` | {} |",
            v.name,
            v.ty.name(),
            v.scope.unwrap_or(""),
            cell(&describe_src(v.calls)),
            cell(&describe_src(v.flows)),
            cell(v.example),
            cell(v.doc)
        );
    }
    s
}

/// docs/kfl.md's list of Kubeshark variables trawl knows but cannot answer yet.
pub fn markdown_pending() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| protocol flag | variables |");
    let _ = writeln!(s, "|---|---|");
    for (flag, disp) in PENDING_FLAGS {
        let vars = PENDING_VARS
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "));
        let _ = writeln!(s, "| `{flag}` ({disp}) | {} |", vars.unwrap_or_default());
    }
    let _ = writeln!(s, "\n| variable | why not |");
    let _ = writeln!(s, "|---|---|");
    for (n, why) in LATER {
        let _ = writeln!(s, "| `{n}` | {why} |");
    }
    s
}

/// Scopes that are not a single protocol flag: `http|dns` for the status
/// variables, which DNS exchanges answer with their response code.
pub fn scope_flag(name: &str) -> Option<Flag> {
    match name {
        "http|dns" => Some(Flag::Protocol(&["http", "grpc", "graphql", "dns"])),
        _ => None,
    }
}
