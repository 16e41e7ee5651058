//! The one definition of every table trawl writes.
//!
//! Each table is a static list of [`Column`]s: name, logical type,
//! nullability and a one-line doc. Everything else derives from it:
//! the Arrow schema the analyzer writes ([`Table::arrow_schema`]), the
//! Parquet files, and `docs/schema.md` ([`markdown`]), which a test keeps
//! current.
//!
//! Column names follow the KFL2 variables of Kubeshark's filter language
//! (`src_ip`, `dst_port`, `method`, `path`, `status_code`,
//! `request_headers`, ...) so that a KFL filter maps straight onto columns.
//! Timestamps are Arrow `Timestamp(ns, "UTC")` and always come from the
//! capture, never from the wall clock.
//!
//! One file on purpose: it is the one definition of every table (the column
//! docs are most of its length), so that no column is defined twice.

pub mod k8s;
pub mod time;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

/// Version of the snapshot layout. Bumped on any change that is not a
/// pure addition of columns or tables.
pub const SCHEMA_VERSION: u32 = 2;

/// Logical column types used by trawl tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Int32,
    Int64,
    Float64,
    Bool,
    Utf8,
    Binary,
    /// `Timestamp(Nanosecond, "UTC")`.
    Timestamp,
    /// `Map<Utf8, Utf8>`: header names (lower-cased) to values.
    StringMap,
    /// `List<Utf8>`.
    StringList,
}

impl ColumnType {
    /// The Arrow type of this column.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::UInt8 => DataType::UInt8,
            ColumnType::UInt16 => DataType::UInt16,
            ColumnType::UInt32 => DataType::UInt32,
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Binary => DataType::Binary,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ColumnType::StringMap => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Utf8, false),
                        Field::new("values", DataType::Utf8, true),
                    ])),
                    false,
                )),
                false,
            ),
            ColumnType::StringList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        }
    }

    /// A short name for documentation.
    pub fn doc_name(self) -> &'static str {
        match self {
            ColumnType::UInt8 => "uint8",
            ColumnType::UInt16 => "uint16",
            ColumnType::UInt32 => "uint32",
            ColumnType::UInt64 => "uint64",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Utf8 => "string",
            ColumnType::Binary => "binary",
            ColumnType::Timestamp => "timestamp(ns, UTC)",
            ColumnType::StringMap => "map<string, string>",
            ColumnType::StringList => "list<string>",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    pub doc: &'static str,
}

const fn col(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column { name, ty, nullable: false, doc }
}

const fn opt(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column { name, ty, nullable: true, doc }
}

/// A table of a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Table name; the Parquet file is `<name>.parquet`.
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    /// The Arrow schema, with the schema version in its metadata.
    pub fn arrow_schema(&self) -> Schema {
        let fields: Vec<Field> =
            self.columns.iter().map(|c| Field::new(c.name, c.ty.arrow_type(), c.nullable)).collect();
        let meta = [
            ("trawl.table".to_string(), self.name.to_string()),
            ("trawl.schema_version".to_string(), SCHEMA_VERSION.to_string()),
        ];
        Schema::new(fields).with_metadata(meta.into_iter().collect())
    }

    /// The position of a column, by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The Parquet file name of this table inside a snapshot.
    pub fn file_name(&self) -> String {
        format!("{}.parquet", self.name)
    }
}

use ColumnType::*;

/// The Kubernetes context of one side of a flow or call.
macro_rules! side_columns {
    ($s:literal, $who:literal) => {
        [
            opt(
                concat!($s, "_pod_name"),
                Utf8,
                concat!("Pod of the ", $who, " address at that time (by pod IP; a hostNetwork pod by node IP and its port)."),
            ),
            opt(concat!($s, "_pod_namespace"), Utf8, "Namespace of that pod."),
            opt(
                concat!($s, "_service_name"),
                Utf8,
                concat!("Service of the ", $who, ": its ClusterIP, else the service whose endpoint slice (or selector) holds the pod."),
            ),
            opt(concat!($s, "_service_namespace"), Utf8, "Namespace of that service."),
            opt(
                concat!($s, "_workload"),
                Utf8,
                "Owning workload of the pod, `Kind/name`: Deployment (through its ReplicaSet), StatefulSet, DaemonSet, Job or CronJob; a pod without owner has none.",
            ),
            opt(concat!($s, "_node_name"), Utf8, concat!("Node of the ", $who, ": the pod's node, or the node owning the address.")),
            col(concat!($s, "_labels"), StringMap, "Labels of the pod (empty if none or unresolved)."),
            col(concat!($s, "_annotations"), StringMap, "Annotations of the pod, without `kubectl.kubernetes.io/last-applied-configuration`."),
            col(
                concat!($s, "_namespace"),
                Utf8,
                "Namespace of the pod, else of the service; an address outside the cluster's metadata is `internal` (private, loopback, link-local, CGNAT, ULA) or `public`.",
            ),
            opt(
                concat!($s, "_dns"),
                Utf8,
                "The name a DNS answer seen earlier in the capture gave for the address (the question asked; the latest answer before the flow began).",
            ),
            col(
                concat!($s, "_resolution"),
                Utf8,
                "How the address was named: `pod`, `service`, `node`; or why not: `not_found` (metadata covers the time, not the address), `not_at_time` (the address belonged to something at other times only), `no_metadata` (no sidecar).",
            ),
        ]
    };
}

const SRC_COLUMNS: [Column; 11] = side_columns!("src", "source");
const DST_COLUMNS: [Column; 11] = side_columns!("dst", "destination");
const CAPTURE_NODE_COLUMNS: [Column; 2] = [
    opt("node_name", Utf8, "Node the packets were captured on (the archive's node folder of the input file)."),
    opt("node_ip", Utf8, "An address of that node, from the Node objects of the sidecars."),
];
const DNS_NAME_COLUMNS: [Column; 1] = [col(
    "dns_resolutions",
    StringList,
    "Every name DNS answers seen earlier in the capture gave either address (questions and CNAME targets).",
)];

/// The Kubernetes and DNS context columns, the same on flows and
/// api_calls (docs/kubernetes.md).
pub const KUBE_COLUMNS: [Column; 25] = join(&[&CAPTURE_NODE_COLUMNS, &SRC_COLUMNS, &DST_COLUMNS, &DNS_NAME_COLUMNS]);

/// Concatenates column lists at compile time.
const fn join<const N: usize>(parts: &[&[Column]]) -> [Column; N] {
    let mut out = [col("", Bool, ""); N];
    let (mut i, mut n) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[n] = parts[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(n == N, "column count mismatch");
    out
}

const FLOW_COLUMNS: [Column; FLOW_OWN.len() + KUBE_COLUMNS.len()] = join(&[FLOW_OWN, &KUBE_COLUMNS]);
const CALL_COLUMNS: [Column;
    CALL_COMMON.len()
        + GRPC_COLUMNS.len()
        + GRAPHQL_COLUMNS.len()
        + WEBSOCKET_COLUMNS.len()
        + DNS_COLUMNS.len()
        + TLS_COLUMNS.len()
        + REDIS_COLUMNS.len()
        + DB_COLUMNS.len()
        + KAFKA_COLUMNS.len()
        + AMQP_COLUMNS.len()
        + CALL_POSITION.len()
        + KUBE_COLUMNS.len()] = join(&[
    CALL_COMMON,
    &GRPC_COLUMNS,
    &GRAPHQL_COLUMNS,
    &WEBSOCKET_COLUMNS,
    &DNS_COLUMNS,
    &TLS_COLUMNS,
    &REDIS_COLUMNS,
    &DB_COLUMNS,
    &KAFKA_COLUMNS,
    &AMQP_COLUMNS,
    CALL_POSITION,
    &KUBE_COLUMNS,
]);

/// One row per TCP connection, UDP flow or ICMP flow.
pub const FLOWS: Table = Table { name: "flows", doc: FLOWS_DOC, columns: &FLOW_COLUMNS };

/// One row per L7 request/response exchange.
pub const API_CALLS: Table = Table { name: "api_calls", doc: CALLS_DOC, columns: &CALL_COLUMNS };

const FLOWS_DOC: &str = "One row per TCP connection (a new SYN on a closed 5-tuple starts a new one) or per UDP/ICMP flow bounded by an idle timeout in capture time. `src` is the client (the side that sent the SYN, else decided by port heuristics), `dst` the server.";

const FLOW_OWN: &[Column] = &[
    col(
        "flow_id",
        UInt64,
        "Flow identifier: the 1-based number of the flow's first packet across all inputs in merged time order. Unique within a snapshot; `api_calls.flow_id` refers to it.",
    ),
    col(
        "community_id",
        Utf8,
        "Community ID v1 (seed 0) of the 5-tuple, for joins with Zeek, Suricata and Arkime output.",
    ),
    col("protocol", Utf8, "Transport: `tcp`, `udp`, `icmp`, `icmpv6`, or `ip-<number>`."),
    col("ip_version", UInt8, "4 or 6."),
    col("src_ip", Utf8, "Client address."),
    col("src_port", UInt16, "Client port (ICMP: the type)."),
    col("dst_ip", Utf8, "Server address."),
    col("dst_port", UInt16, "Server port (ICMP: the code)."),
    col(
        "orientation",
        Utf8,
        "How client and server were decided: `syn`, `synack`, `port` (well-known or lower port is the server) or `first_packet`.",
    ),
    col("timestamp", Timestamp, "Capture time of the first packet."),
    col("end_timestamp", Timestamp, "Capture time of the last packet."),
    col("duration_us", Int64, "end_timestamp - timestamp, in microseconds."),
    col(
        "conn_state",
        Utf8,
        "`closed` (FIN from both sides or RST), `in_progress` (handshake not completed) or `open` (still open when the flow ended: idle timeout or end of capture).",
    ),
    col(
        "zeek_state",
        Utf8,
        "Zeek-style connection state: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR or OTH.",
    ),
    col(
        "history",
        Utf8,
        "Zeek-style history: S syn, H syn-ack, A ack, D data, F fin, R rst, T retransmission, W zero window, G gap; upper case from the client, lower case from the server; each letter once per side.",
    ),
    col(
        "end_reason",
        Utf8,
        "Why the row was closed: `fin`, `rst`, `idle_timeout`, `port_reuse`, `capture_end`, or `evicted` (the flow-state budget was full: trawl stopped following the flow, never-answered flows first; `--flow-memory`).",
    ),
    col("client_packets", UInt64, "Packets sent by the client."),
    col("client_bytes", UInt64, "Bytes sent by the client, as frame lengths on the wire."),
    col("client_payload_bytes", UInt64, "TCP/UDP payload bytes sent by the client, retransmissions included."),
    col("client_stream_bytes", UInt64, "TCP: bytes of the client's reassembled stream (each byte once)."),
    col("client_gap_bytes", UInt64, "TCP: bytes missing from the client's stream (not captured)."),
    col(
        "client_tcp_flags",
        UInt8,
        "OR of the TCP flags the client sent (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128).",
    ),
    opt("client_first_timestamp", Timestamp, "First packet from the client."),
    opt("client_last_timestamp", Timestamp, "Last packet from the client."),
    col("server_packets", UInt64, "Packets sent by the server."),
    col("server_bytes", UInt64, "Bytes sent by the server, as frame lengths on the wire."),
    col("server_payload_bytes", UInt64, "TCP/UDP payload bytes sent by the server, retransmissions included."),
    col("server_stream_bytes", UInt64, "TCP: bytes of the server's reassembled stream (each byte once)."),
    col("server_gap_bytes", UInt64, "TCP: bytes missing from the server's stream (not captured)."),
    col("server_tcp_flags", UInt8, "OR of the TCP flags the server sent."),
    opt("server_first_timestamp", Timestamp, "First packet from the server."),
    opt("server_last_timestamp", Timestamp, "Last packet from the server."),
    opt(
        "handshake_rtt_us",
        Int64,
        "TCP: time from the (last) SYN to the first packet with ACK and without SYN or RST, in either direction (the ACK that completed the handshake; also where the SYN-ACK was not captured), in microseconds: tshark's tcp.analysis.initial_rtt and Kubeshark's handshake_time_us.",
    ),
    opt(
        "initial_rtt_us",
        Int64,
        "TCP: time from the (last) SYN to the SYN-ACK, in microseconds: the round trip from the capture point to the server.",
    ),
    opt(
        "connection_time_us",
        Int64,
        "TCP: time from the SYN to the first payload byte of either side, in microseconds.",
    ),
    opt(
        "time_to_first_byte_us",
        Int64,
        "TCP: time from the client's first payload byte to the server's first payload byte, in microseconds.",
    ),
    opt(
        "rtt_min_us",
        Int64,
        "TCP: smallest data-to-ACK round trip, both directions (tshark's tcp.analysis.ack_rtt; retransmitted segments give no sample: Karn).",
    ),
    opt("rtt_max_us", Int64, "TCP: largest data-to-ACK round trip."),
    opt("rtt_avg_us", Int64, "TCP: mean data-to-ACK round trip."),
    opt("rtt_samples", UInt32, "TCP: number of data-to-ACK round trips measured."),
    opt("jitter_us", Int64, "TCP: standard deviation of the data-to-ACK round trips."),
    opt(
        "retransmissions",
        UInt32,
        "TCP: packets flagged as retransmissions, fast and spurious ones included (tshark's tcp.analysis.retransmission).",
    ),
    opt("client_retransmissions", UInt32, "TCP: retransmissions the client sent (its data or requests were lost)."),
    opt("server_retransmissions", UInt32, "TCP: retransmissions the server sent (its responses were lost)."),
    opt(
        "resent_segments",
        UInt32,
        "TCP: segments whose every byte the capture had already seen, whatever their timing: the sender's loss recovery, where tshark 4.0 calls a resend soon after newer data out-of-order.",
    ),
    opt(
        "fast_retransmissions",
        UInt32,
        "TCP: retransmissions within 20 ms of the second duplicate ACK asking for them (tcp.analysis.fast_retransmission).",
    ),
    opt(
        "spurious_retransmissions",
        UInt32,
        "TCP: retransmissions of data the receiver had already acknowledged (tcp.analysis.spurious_retransmission).",
    ),
    opt(
        "retransmission_rate",
        Float64,
        "TCP: retransmissions / packets that carry data, SYN or FIN (0.0-1.0). Kubeshark's bands: under 1% healthy, 1-5% degraded, over 5% severe.",
    ),
    opt(
        "out_of_order",
        UInt32,
        "TCP: segments that filled an earlier hole soon after it opened (tcp.analysis.out_of_order).",
    ),
    opt("dup_acks", UInt32, "TCP: duplicate ACKs (tcp.analysis.duplicate_ack)."),
    opt(
        "missing_segments",
        UInt32,
        "TCP: packets preceded by a gap in their direction: \"previous segment not captured\" (tcp.analysis.lost_segment).",
    ),
    opt("acked_unseen", UInt32, "TCP: ACKs for data the capture never saw (tcp.analysis.ack_lost_segment)."),
    opt(
        "zero_window_events",
        UInt32,
        "TCP: packets advertising a zero receive window (tcp.analysis.zero_window): the receiving application is not reading.",
    ),
    opt("zero_window_probes", UInt32, "TCP: one-byte probes of a zero window (tcp.analysis.zero_window_probe)."),
    opt(
        "window_full_events",
        UInt32,
        "TCP: data segments that filled the peer's advertised window (tcp.analysis.window_full).",
    ),
    opt(
        "client_window_scale",
        UInt8,
        "TCP: window scale shift the client's SYN announced, when both sides agreed to scaling.",
    ),
    opt(
        "server_window_scale",
        UInt8,
        "TCP: window scale shift the server's SYN-ACK announced, when both sides agreed to scaling.",
    ),
    opt("client_avg_receive_window", UInt64, "TCP: mean receive window the client advertised, in bytes (scaled)."),
    opt("server_avg_receive_window", UInt64, "TCP: mean receive window the server advertised, in bytes (scaled)."),
    opt("rst_count", UInt32, "TCP: packets with RST."),
    opt("fin_count", UInt32, "TCP: packets with FIN (2 for a normal close; 1 is a half-close)."),
    opt("keepalive_count", UInt32, "TCP: keep-alive probes (tcp.analysis.keep_alive)."),
    opt(
        "connection_completeness",
        UInt8,
        "TCP: tshark's tcp.completeness bitmask: 1 SYN, 2 SYN-ACK, 4 ACK, 8 data, 16 FIN, 32 RST. 31 full lifecycle, 47 data then RST, 7 handshake only, 8 mid-stream, 33 refused.",
    ),
    opt(
        "goodput_bytes",
        UInt64,
        "TCP: application bytes sent, both directions, each byte once: the sequence space covered (retransmissions excluded; bytes a snaplen cut from the capture included).",
    ),
    col(
        "l7_protocols",
        StringList,
        "Application protocols detected on the flow: `HTTP`, `HTTP2` (with `HTTP`), `WebSocket` (with `HTTP`), `gRPC`, `GraphQL`, `DNS`, `TLS`, `Redis`, `PostgreSQL`, `MySQL`, `MongoDB`, `Kafka`, `AMQP`; e.g. [\"HTTP\", \"HTTP2\", \"gRPC\"].",
    ),
    opt("vlan_id", UInt16, "Outer 802.1Q VLAN id of the first packet, if tagged."),
    col("file_index", UInt32, "Index into the manifest's `inputs` of the file holding the flow's first packet."),
    col(
        "frame_number",
        UInt64,
        "1-based number of the flow's first packet within that file (Wireshark's frame.number).",
    ),
];

const CALLS_DOC: &str = "One row per application-level exchange: an HTTP/1 request and its response, an HTTP/2 stream (gRPC calls and GraphQL operations included), or a WebSocket message. A request that never got a response, or a response whose request was not captured, is still a row, with `error` saying so. `src` is the requester (the client), `dst` the responder.";

/// The columns every call has: identity, timing, the two sides, and
/// the HTTP vocabulary (method, URL, status, headers, bodies) that the
/// other protocols fill where they have the same notions.
const CALL_COMMON: &[Column] = &[
    col("id", UInt64, "1-based row number; stable for a given set of inputs."),
    col("flow_id", UInt64, "The flow (`flows.flow_id`) that carried the exchange."),
    col("index", UInt32, "0-based position of the exchange within its flow."),
    col(
        "protocol",
        Utf8,
        "Application protocol: `http`, `grpc`, `graphql` (both over HTTP/1 or HTTP/2), `websocket`, `dns` (DNS, mDNS and LLMNR over UDP or TCP), `tls` (a TLS handshake), `redis`, `postgresql`, `mysql`, `mongodb`, `kafka` or `amqp`.",
    ),
    col(
        "timestamp",
        Timestamp,
        "Capture time of the first byte of the request (of the response if there was no request).",
    ),
    opt("response_timestamp", Timestamp, "Capture time of the first byte of the response."),
    opt("end_timestamp", Timestamp, "Capture time of the last byte of the exchange."),
    opt(
        "elapsed_time_us",
        Int64,
        "Latency: from the first byte of the request to the last byte of the response, in microseconds.",
    ),
    col("src_ip", Utf8, "Requester address."),
    col("src_port", UInt16, "Requester port."),
    col("dst_ip", Utf8, "Responder address."),
    col("dst_port", UInt16, "Responder port."),
    opt("method", Utf8, "Request method (GET, POST, ...), as sent."),
    opt(
        "url",
        Utf8,
        "Request target as sent: path and query (or the absolute form sent to proxies, or host:port for CONNECT).",
    ),
    opt("path", Utf8, "Path of the request target, without the query."),
    col("query_string", StringMap, "Query parameters of the request target (percent-decoded names and values)."),
    opt("host", Utf8, "Host header of the request."),
    opt(
        "http_version",
        Utf8,
        "HTTP/1.0, HTTP/1.1 (the request's, else the response's) or HTTP/2. Null for WebSocket messages.",
    ),
    opt("status_code", Int32, "Final response status code; null without a response."),
    opt("status_text", Utf8, "Reason phrase of the final response."),
    col(
        "request_headers",
        StringMap,
        "Request headers; names lower-cased, repeated headers joined with \", \". HTTP/2 pseudo-headers (`:method`, `:path`, `:authority`, ...) are kept; trailers are appended. A name HPACK could not recover (connection joined mid-way) is `?`.",
    ),
    col(
        "response_headers",
        StringMap,
        "Final response headers, as for requests; HTTP/2 and gRPC trailers (`grpc-status`, ...) are appended.",
    ),
    col(
        "request_headers_size",
        Int64,
        "Bytes of the request line and headers (HTTP/2: of the HPACK-compressed HEADERS and CONTINUATION payloads; WebSocket: of the frame headers).",
    ),
    col(
        "request_body_size",
        Int64,
        "Bytes of the request body on the wire (after de-chunking, before content decoding).",
    ),
    col("response_headers_size", Int64, "Bytes of the status line and headers (final response)."),
    col(
        "response_body_size",
        Int64,
        "Bytes of the response body on the wire (after de-chunking, before content decoding).",
    ),
    opt("request_body", Binary, "Request body as stored: content-decoded (gzip, deflate, br) and cut at the body cap."),
    col("request_body_truncated", Bool, "The stored request body is incomplete (cap reached, gap, or capture ended)."),
    opt(
        "response_body",
        Binary,
        "Response body as stored: content-decoded (gzip, deflate, br) and cut at the body cap.",
    ),
    col(
        "response_body_truncated",
        Bool,
        "The stored response body is incomplete (cap reached, gap, or capture ended).",
    ),
    opt(
        "upgrade",
        Utf8,
        "Set when the connection leaves HTTP/1 after this exchange: the Upgrade protocol (websocket, h2c, ...) on a 101, or `connect` for an accepted CONNECT tunnel.",
    ),
    opt(
        "error",
        Utf8,
        "Why the exchange is incomplete: `no_response`, `no_request`, `gap`, `capture_end`, `evicted` (its connection was, see `flows.end_reason`), `parse_error: ...`; HTTP/2 `rst_stream: CODE`, `goaway: CODE`, `headers_incomplete` (HPACK state unknown), `too_many_streams`.",
    ),
    opt("stream_id", UInt32, "HTTP/2 stream identifier; null for HTTP/1 and WebSocket."),
];

/// The columns of gRPC calls; null on other rows.
const GRPC_COLUMNS: [Column; 9] = [
    opt("grpc_service", Utf8, "gRPC: the fully qualified service, e.g. `helloworld.Greeter`."),
    opt("grpc_method", Utf8, "gRPC: the method, e.g. `SayHello` (the last segment of the path)."),
    opt(
        "grpc_status",
        Int32,
        "gRPC: `grpc-status` of the trailers (or of a headers-only response); 0 is OK. Null when the call did not finish.",
    ),
    opt("grpc_message", Utf8, "gRPC: `grpc-message`, percent-decoded."),
    opt("grpc_request_messages", UInt32, "gRPC: length-prefixed messages the client sent."),
    opt("grpc_response_messages", UInt32, "gRPC: length-prefixed messages the server sent."),
    opt("grpc_compressed_messages", UInt32, "gRPC: messages (both directions) with the compressed flag set."),
    opt(
        "request_decoded",
        Utf8,
        "gRPC: the client's messages as a JSON array; protobuf decoded by field number, or with field names given `--proto-descriptors`. Capped like bodies.",
    ),
    opt("response_decoded", Utf8, "gRPC: the server's messages as a JSON array, as for `request_decoded`."),
];

/// The columns of GraphQL operations; null on other rows.
const GRAPHQL_COLUMNS: [Column; 4] = [
    opt("gql_operation", Utf8, "GraphQL: the operation type, `query`, `mutation` or `subscription`."),
    opt("gql_operation_name", Utf8, "GraphQL: the operation name, when it has one."),
    opt(
        "gql_errors",
        UInt32,
        "GraphQL: entries of the response's `errors` array (0 when absent); null without a JSON response.",
    ),
    opt("gql_error_message", Utf8, "GraphQL: `message` of the first error."),
];

/// The columns of WebSocket messages; null on other rows.
const WEBSOCKET_COLUMNS: [Column; 4] = [
    opt(
        "ws_opcode",
        Utf8,
        "WebSocket: `text`, `binary`, `close`, `ping` or `pong`. The payload is `request_body` for a client's message, `response_body` for a server's.",
    ),
    opt("ws_from_client", Bool, "WebSocket: the message was sent by the client."),
    opt("ws_close_code", UInt16, "WebSocket: the status code of a close message."),
    opt("ws_fragments", UInt32, "WebSocket: frames the message was sent in."),
];

/// The columns of DNS exchanges; null on other rows.
const DNS_COLUMNS: [Column; 4] = [
    opt(
        "dns_questions",
        StringList,
        "DNS: the question names (lower case, no trailing dot). `method` is the opcode (`QUERY`, ...), `url` the first question, `status_code`/`status_text` the response code (0 `NOERROR`, 3 `NXDOMAIN`, ...), the bodies the raw messages.",
    ),
    opt("dns_question_types", StringList, "DNS: the question types (`A`, `AAAA`, `PTR`, `SRV`, ... or `TYPE<n>`)."),
    opt(
        "dns_answers",
        StringList,
        "DNS: the data of the response's answers (addresses, names, `MX`/`SRV` fields, text).",
    ),
    opt("dns_id", UInt16, "DNS: the transaction id that paired query and response."),
];

/// The columns of TLS handshakes; null on other rows.
const TLS_COLUMNS: [Column; 13] = [
    opt(
        "tls_version",
        Utf8,
        "TLS: the negotiated version (`TLS 1.3`, ...; the client's highest without a ServerHello). The ClientHello is the request, the ServerHello the response; bodies are not kept.",
    ),
    opt("tls_version_code", UInt16, "TLS: the same version as its code (0x0304 is TLS 1.3)."),
    opt("tls_sni", Utf8, "TLS: the server name the client asked for (SNI), lower case."),
    opt("tls_alpn", StringList, "TLS: the application protocols the client offered (ALPN), in order."),
    opt("tls_alpn_selected", Utf8, "TLS: the application protocol the server chose."),
    opt("tls_cipher_suites", StringList, "TLS: the cipher suites the client offered (`0x1301` form, GREASE left out)."),
    opt("tls_cipher_suite", UInt16, "TLS: the cipher suite the server chose."),
    opt("tls_ja3", Utf8, "TLS: JA3 fingerprint of the ClientHello (MD5, hex)."),
    opt("tls_ja3s", Utf8, "TLS: JA3S fingerprint of the ServerHello."),
    opt(
        "tls_ja4",
        Utf8,
        "TLS: JA4 fingerprint of the ClientHello (FoxIO), e.g. `t13d1516h2_8daaf6152771_02713d6af862`.",
    ),
    opt(
        "tls_cert_subject",
        Utf8,
        "TLS: subject of the server's certificate (`CN=..., O=...`); TLS 1.2 and older only (1.3 encrypts it).",
    ),
    opt("tls_cert_issuer", Utf8, "TLS: issuer of the server's certificate."),
    opt(
        "tls_weak",
        StringList,
        "TLS: what is weak about the handshake: an old version (`SSL 3.0`, `TLS 1.0`, `TLS 1.1`) or the chosen suite's protection (`NULL`, `EXPORT`, `RC4`, `DES`, `anon`).",
    ),
];

/// The columns of Redis commands; null on other rows.
const REDIS_COLUMNS: [Column; 5] = [
    opt(
        "redis_command",
        Utf8,
        "Redis: the command, upper-cased (`GET`, `SET`, ...; a pub/sub delivery: `message`). `method` and `url` repeat the command and its key; body sizes are the RESP bytes.",
    ),
    opt("redis_line", Utf8, "Redis: the command and its first arguments, each cut at 64 bytes."),
    opt("redis_key", Utf8, "Redis: the first argument (the key, for most commands), cut at 64 bytes."),
    opt(
        "redis_reply_type",
        Utf8,
        "Redis: the reply's RESP type: `simple`, `error`, `integer`, `bulk`, `array`, `null`, `map`, `set`, `push`, ...",
    ),
    opt("redis_error", Utf8, "Redis: the text of an error reply (`ERR ...`, `WRONGTYPE ...`)."),
];

/// The columns of PostgreSQL, MySQL and MongoDB requests; null on other rows.
const DB_COLUMNS: [Column; 12] = [
    opt(
        "db_command",
        Utf8,
        "PostgreSQL, MySQL, MongoDB: the request. PostgreSQL: the exchange's first message (`Query`, `Parse`, `Bind`, `StartupMessage`, `SSLRequest`, `Terminate`, ...); MySQL: the command (`COM_QUERY`, `COM_STMT_EXECUTE`, ..., or `Handshake`); MongoDB: the command (`find`, `insert`, ...). `method` repeats it; body sizes are the protocol's bytes.",
    ),
    opt(
        "db_query",
        Utf8,
        "The SQL text (cut at 4 KiB; a prepared statement's, when its preparation was seen); MongoDB: the command document as JSON-like text.",
    ),
    opt(
        "db_database",
        Utf8,
        "The database: from the startup or handshake (PostgreSQL defaults it to the user), `COM_INIT_DB`, or MongoDB's `$db`.",
    ),
    opt("db_user", Utf8, "The user the connection logged in as (PostgreSQL, MySQL)."),
    opt("db_collection", Utf8, "MongoDB: the collection the command names."),
    opt("db_statement", Utf8, "A prepared statement: PostgreSQL's name, MySQL's id."),
    opt(
        "db_result",
        Utf8,
        "What the server said it did: PostgreSQL's command tag (`INSERT 0 1`, `SELECT 3`), MySQL's `OK`/`EOF`/`result set`, MongoDB's `ok`/`error`; `accepted`/`refused` for an SSLRequest.",
    ),
    opt("db_rows", UInt64, "Rows (documents) the server returned."),
    opt(
        "db_success",
        Bool,
        "The server answered without an error (true for a request that expects no answer, like `Terminate`); null when an expected answer was not captured.",
    ),
    opt(
        "db_error_code",
        Utf8,
        "PostgreSQL's SQLSTATE (`23505`), MySQL's error number (`1146`), MongoDB's code (`11000`).",
    ),
    opt("db_error_name", Utf8, "MySQL's SQLSTATE (`42S02`), MongoDB's code name (`DuplicateKey`)."),
    opt("db_error_message", Utf8, "The server's error message."),
];

/// The columns of Kafka requests; null on other rows.
const KAFKA_COLUMNS: [Column; 7] = [
    opt(
        "kafka_api_key",
        Int32,
        "Kafka: the request's API key (0 Produce, 1 Fetch, 3 Metadata, 18 ApiVersions, ...); -1 for a response whose request was not seen.",
    ),
    opt(
        "kafka_api_name",
        Utf8,
        "Kafka: the API key's name (`Produce`, `Fetch`, ...). `method` repeats it; `url` holds the topics.",
    ),
    opt("kafka_api_version", Int32, "Kafka: the request's API version."),
    opt("kafka_correlation_id", Int32, "Kafka: the correlation id that pairs the request and the response."),
    opt("kafka_client_id", Utf8, "Kafka: the client id of the request header."),
    opt(
        "kafka_topics",
        StringList,
        "Kafka: the topics a Produce or Fetch request names (Fetch v13+: topic ids in hex).",
    ),
    opt(
        "kafka_error_code",
        Int32,
        "Kafka: the response's error code (top-level, else the first non-zero partition's for Produce and Fetch); 0 is success.",
    ),
];

/// The columns of AMQP methods; null on other rows.
const AMQP_COLUMNS: [Column; 12] = [
    opt(
        "amqp_method",
        Utf8,
        "AMQP 0-9-1: the method that opened the exchange (`basic.publish`, `queue.declare`, `connection.start`, ...), sent by either side (`amqp_from_server`). `src` is always the AMQP client.",
    ),
    opt(
        "amqp_reply_method",
        Utf8,
        "AMQP: the reply to a synchronous method (`queue.declare-ok`, `basic.get-empty`, ...).",
    ),
    opt(
        "amqp_from_server",
        Bool,
        "AMQP: the method came from the broker (`connection.start`, `basic.deliver`, a `channel.close` it sent).",
    ),
    opt("amqp_channel", UInt16, "AMQP: the channel."),
    opt(
        "amqp_exchange",
        Utf8,
        "AMQP: the exchange named (publish, deliver, return, get-ok, exchange and queue.bind methods).",
    ),
    opt("amqp_routing_key", Utf8, "AMQP: the routing key named."),
    opt("amqp_queue", Utf8, "AMQP: the queue named (declare, bind, consume, get, purge, delete)."),
    opt(
        "amqp_reply_code",
        UInt16,
        "AMQP: the reply code of `connection.close`, `channel.close` or `basic.return` (200 is a normal close; 404 NOT_FOUND, 406 PRECONDITION_FAILED, ...).",
    ),
    opt("amqp_reply_text", Utf8, "AMQP: the reply text that goes with the code."),
    opt("amqp_content_type", Utf8, "AMQP: the content type of the message that followed the method."),
    opt("amqp_body_size", UInt64, "AMQP: bytes of that message's body."),
    col(
        "amqp_properties",
        StringMap,
        "AMQP: the message's properties by their AMQP names (`content-type`, `delivery-mode`, `correlation-id`, `reply-to`, `message-id`, `timestamp`, ...; `headers` as its size); empty for other rows.",
    ),
];

/// Where the call's first byte lies in the inputs.
const CALL_POSITION: &[Column] = &[
    col("file_index", UInt32, "Index into the manifest's `inputs` of the file holding the exchange's first packet."),
    col(
        "frame_number",
        UInt64,
        "1-based number, within that file, of the packet that carried the exchange's first byte.",
    ),
];

/// A protocol's own columns of `api_calls`, filled on that protocol's
/// rows only (null, or empty for maps, on the others).
#[derive(Debug, Clone, Copy)]
pub struct ColumnGroup {
    /// The group's name, as the protocol's detail is named.
    pub name: &'static str,
    pub columns: &'static [Column],
}

/// The protocol column groups of `api_calls`, in table order (after the
/// common columns, before the position and Kubernetes ones).
pub const CALL_GROUPS: [ColumnGroup; 9] = [
    ColumnGroup { name: "grpc", columns: &GRPC_COLUMNS },
    ColumnGroup { name: "graphql", columns: &GRAPHQL_COLUMNS },
    ColumnGroup { name: "websocket", columns: &WEBSOCKET_COLUMNS },
    ColumnGroup { name: "dns", columns: &DNS_COLUMNS },
    ColumnGroup { name: "tls", columns: &TLS_COLUMNS },
    ColumnGroup { name: "redis", columns: &REDIS_COLUMNS },
    ColumnGroup { name: "db", columns: &DB_COLUMNS },
    ColumnGroup { name: "kafka", columns: &KAFKA_COLUMNS },
    ColumnGroup { name: "amqp", columns: &AMQP_COLUMNS },
];

/// One row per problem found in the traffic.
pub const PARSE_ISSUES: Table = Table {
    name: "parse_issues",
    doc: "Malformed or unexpected traffic, recorded as data: truncated headers, unknown link types, reassembly overflows, HTTP parse errors, undecodable bodies, damaged capture files.",
    columns: &[
        opt("flow_id", UInt64, "The flow concerned, if any."),
        col("file_index", UInt32, "Index into the manifest's `inputs` of the file concerned."),
        opt("frame_number", UInt64, "1-based number of the packet concerned within that file, if any."),
        opt("timestamp", Timestamp, "Capture time of that packet, if any."),
        col("layer", Utf8, "Where it was found: `capture`, `link`, `ip`, `tcp`, `udp`, `http`."),
        col(
            "kind",
            Utf8,
            "A stable, short identifier of the problem, e.g. `truncated_packet`, `ooo_buffer_full`, `bad_request_line`.",
        ),
        col("detail", Utf8, "A human-readable explanation."),
    ],
};

/// One row per captured frame: the packet index that `trawl export-pcap`
/// reads packets through, without rescanning the captures.
pub const PACKETS: Table = Table {
    name: "packets",
    doc: "The packet index: one row per frame of the inputs, in the merged time order, with where its bytes lie in its capture file and the flow it belongs to. `trawl export-pcap` reads packets through it instead of rescanning the captures.",
    columns: &[
        col(
            "ordinal",
            UInt64,
            "1-based position of the frame in the merged time order of all inputs (the frame number `mergecap` would give it).",
        ),
        col("timestamp", Timestamp, "Capture time."),
        col("file_index", UInt32, "Index into the manifest's `inputs` of the file holding the frame."),
        col("frame_number", UInt64, "1-based number of the frame within that file (tshark's `frame.number`)."),
        col(
            "offset",
            UInt64,
            "Byte offset of the frame's captured bytes in that file (in the decompressed stream for a `.gz` input).",
        ),
        col("caplen", UInt32, "Captured length in bytes."),
        col("wire_len", UInt32, "Length on the wire in bytes."),
        col("link_type", UInt32, "Link-layer type of the frame (tcpdump `LINKTYPE_` value)."),
        opt(
            "flow_id",
            UInt64,
            "The flow (`flows.flow_id`) the packet was given to; null for frames outside any flow (not IP, malformed), and for the fragments of an IP datagram but the one completing it (see `datagram`).",
        ),
        opt(
            "datagram",
            UInt64,
            "For an IP fragment: its datagram, named by the ordinal of the datagram's first fragment. The fragment completing the datagram carries the flow id; `export-pcap` uses this column to bring along every fragment of a flow's datagrams.",
        ),
        opt(
            "tcp_expert",
            StringList,
            "TCP expert flags of the frame under tshark's names (`retransmission`, `fast_retransmission`, `spurious_retransmission`, `out_of_order`, `lost_segment`, `ack_lost_segment`, `duplicate_ack`, `zero_window`, `zero_window_probe`, `zero_window_probe_ack`, `keep_alive`, `keep_alive_ack`, `window_update`, `window_full`); null when none. When each problem happened: docs/tcp-insights.md.",
        ),
    ],
};

/// Every table of a snapshot, in documentation order.
pub const TABLES: &[Table] = &[FLOWS, API_CALLS, PARSE_ISSUES, PACKETS];

/// Renders `docs/schema.md` from the table definitions.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# Snapshot schema\n\n");
    out.push_str("<!-- Generated from schemas/src/lib.rs by `trawl schema --markdown`. Do not edit: a test checks it is current. -->\n\n");
    out.push_str(&format!(
        "Schema version {SCHEMA_VERSION}. A snapshot is a directory holding `manifest.json` and one Parquet file per table. \
Timestamps are `timestamp(ns, UTC)` taken from the capture. Column names follow Kubeshark's KFL2 variables.\n\n"
    ));
    for t in TABLES {
        out.push_str(&format!("## `{}`\n\n{}\n\n", t.file_name(), t.doc));
        out.push_str("| column | type | null | description |\n|---|---|---|---|\n");
        for c in t.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.ty.doc_name(),
                if c.nullable { "yes" } else { "" },
                c.doc.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique_and_snake_case() {
        for t in TABLES {
            let mut seen = std::collections::HashSet::new();
            for c in t.columns {
                assert!(seen.insert(c.name), "{}.{} is defined twice", t.name, c.name);
                assert!(
                    c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{}.{} is not snake_case",
                    t.name,
                    c.name
                );
                assert!(!c.doc.is_empty(), "{}.{} has no doc", t.name, c.name);
            }
        }
    }

    #[test]
    fn kfl_variables_map_to_columns() {
        for name in [
            "src_ip",
            "dst_ip",
            "src_port",
            "dst_port",
            "method",
            "url",
            "path",
            "status_code",
            "elapsed_time_us",
            "request_headers",
            "response_headers",
            "query_string",
            "http_version",
            "request_body_size",
            "response_body_size",
            "timestamp",
            "flow_id",
        ] {
            assert!(API_CALLS.index_of(name).is_some(), "api_calls lacks {name}");
        }
        assert_eq!(FLOWS.index_of("flow_id"), Some(0));
    }

    #[test]
    fn schema_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.md");
        // A file that cannot be read says why, rather than reading as stale.
        let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(on_disk == markdown(), "docs/schema.md is stale: run `trawl schema > docs/schema.md`");
    }

    #[test]
    fn arrow_schema_carries_version() {
        let s = API_CALLS.arrow_schema();
        assert_eq!(s.metadata()["trawl.schema_version"], SCHEMA_VERSION.to_string());
        assert_eq!(s.fields().len(), API_CALLS.columns.len());
    }
}
