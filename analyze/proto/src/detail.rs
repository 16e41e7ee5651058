//! What a row says beyond HTTP's request and response: one type per
//! protocol, gathered in [`Detail`], the protocol part of an
//! [`crate::exchange::Exchange`]. These are plain data: the parsers fill
//! them, and analyze writes each into its protocol's column group.
//! Nothing here imports a parser.
use get_size2::GetSize;

/// The protocol-specific part of a row. A row is one protocol's, so this
/// is one variant, not one optional field per protocol: gRPC and GraphQL
/// rows are HTTP exchanges too (their request and response are the HTTP
/// messages), and the variant says which application rode on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub enum Detail {
    /// An HTTP/1 or HTTP/2 exchange with no application protocol found.
    #[default]
    Http,
    /// A gRPC call on an HTTP/2 stream.
    Grpc(Box<GrpcCall>),
    /// A GraphQL operation over HTTP/1 or HTTP/2.
    Graphql(Box<GraphqlOperation>),
    /// A WebSocket message (its payload is the body of the request or the
    /// response, by direction).
    WebSocket(Box<WebSocketInfo>),
    /// The questions and answers of a DNS exchange.
    Dns(Box<DnsInfo>),
    /// What the hellos of a TLS handshake said.
    Tls(Box<TlsInfo>),
    /// A Redis command and its reply.
    Redis(Box<RedisInfo>),
    /// A PostgreSQL, MySQL or MongoDB request and its outcome.
    Db(Box<DbInfo>),
    /// A Kafka request header and what it names.
    Kafka(Box<KafkaInfo>),
    /// An AMQP method and what it names.
    Amqp(Box<AmqpInfo>),
}

/// `detail.NAME()`: the detail as that protocol's type, if it is one;
/// and each type into its variant (`Detail::from(info)`).
macro_rules! accessors {
    ($($name:ident: $variant:ident => $ty:ty),* $(,)?) => {
        impl Detail {
            $(
                #[doc = concat!("The detail as a [`", stringify!($ty), "`], if the row is one.")]
                pub fn $name(&self) -> Option<&$ty> {
                    match self {
                        Detail::$variant(d) => Some(d),
                        _ => None,
                    }
                }
            )*
        }

        $(
            impl From<$ty> for Detail {
                fn from(d: $ty) -> Detail {
                    Detail::$variant(Box::new(d))
                }
            }
        )*
    };
}

accessors!(
    grpc: Grpc => GrpcCall,
    graphql: Graphql => GraphqlOperation,
    websocket: WebSocket => WebSocketInfo,
    dns: Dns => DnsInfo,
    tls: Tls => TlsInfo,
    redis: Redis => RedisInfo,
    db: Db => DbInfo,
    kafka: Kafka => KafkaInfo,
    amqp: Amqp => AmqpInfo,
);

/// A gRPC call, as seen on one HTTP/2 stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct GrpcCall {
    /// Fully qualified service, e.g. `helloworld.Greeter`.
    pub service: String,
    /// Method, e.g. `SayHello`.
    pub method: String,
    /// `grpc-status` of the trailers (or of a headers-only response).
    pub status: Option<i32>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<String>,
    /// Messages sent by the client and by the server.
    pub messages: [u32; 2],
    /// Of those, messages with the compressed flag set.
    pub compressed: u32,
    /// The messages of each direction as a JSON array (the stored ones:
    /// capped like bodies); None when a direction sent none. After a gap
    /// (the row's error says so) the counts are lower bounds.
    pub decoded: [Option<String>; 2],
}

/// A GraphQL operation and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct GraphqlOperation {
    /// `query`, `mutation` or `subscription`.
    pub kind: &'static str,
    /// The operation name, when it has one.
    pub name: Option<String>,
    /// Entries of the response's `errors` array (None without a JSON
    /// response).
    pub errors: Option<u32>,
    /// The first error's `message`.
    pub error_message: Option<String>,
}

/// A WebSocket message, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct WebSocketInfo {
    /// `text`, `binary`, `close`, `ping` or `pong`.
    pub opcode: &'static str,
    /// Sent by the client (the side that sent the Upgrade request).
    pub from_client: bool,
    /// Close frames: the status code (the payload keeps code and reason).
    pub close_code: Option<u16>,
    /// Frames the message was sent in.
    pub fragments: u32,
    /// Request target of the Upgrade request.
    pub target: Option<String>,
}

/// A DNS exchange, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct DnsInfo {
    /// Transaction id.
    pub id: u16,
    /// Question names (lower case, no trailing dot).
    pub questions: Vec<String>,
    /// Question types (`A`, `AAAA`, `PTR`, ... or `TYPE<n>`).
    pub question_types: Vec<String>,
    /// Answer data of the response (addresses, names, text).
    pub answers: Vec<String>,
}

/// A TLS handshake, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct TlsInfo {
    /// Negotiated version (the server's), else the client's highest.
    pub version: Option<u16>,
    pub sni: Option<String>,
    /// ALPN protocols the client offered, and the one the server chose.
    pub alpn: Vec<String>,
    pub alpn_selected: Option<String>,
    /// Cipher suites the client offered (`0x1301` form), and the chosen one.
    pub cipher_suites: Vec<String>,
    pub cipher_suite: Option<u16>,
    pub ja3: Option<String>,
    pub ja3s: Option<String>,
    pub ja4: Option<String>,
    /// The server certificate's subject and issuer (TLS 1.2 and older,
    /// where it travels in clear).
    pub cert_subject: Option<String>,
    pub cert_issuer: Option<String>,
    /// What is weak: an old version, or a weak chosen cipher suite.
    pub weak: Vec<String>,
}

/// A Redis exchange, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct RedisInfo {
    /// The command, upper-cased (`GET`, `SET`, ...).
    pub command: Option<String>,
    /// The command line: the command and its first arguments (cut).
    pub line: Option<String>,
    /// The first argument (the key, for most commands), cut at 64 bytes.
    pub key: Option<String>,
    /// The reply's type: `simple`, `error`, `integer`, `bulk`, `array`,
    /// `null`, `map`, `set`, `push`, `double`, `boolean`, `bignum`,
    /// `verbatim`.
    pub reply: Option<&'static str>,
    /// The error text of an error reply.
    pub error: Option<String>,
}

/// A database request and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct DbInfo {
    /// The request: PostgreSQL's first message of the exchange (`Query`,
    /// `Parse`, `Bind`, `StartupMessage`, ...), MySQL's command
    /// (`COM_QUERY`, ...), MongoDB's command (`find`, `insert`, ...).
    pub command: String,
    /// The SQL text (cut at `frames::QUERY_KEEP` (4096) bytes); MongoDB: the command
    /// document as JSON-like text.
    pub query: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// MongoDB: the collection the command names.
    pub collection: Option<String>,
    /// A prepared statement: PostgreSQL's name, MySQL's id.
    pub statement: Option<String>,
    /// What the server said it did: PostgreSQL's command tag (`INSERT 0 1`),
    /// MySQL's `OK`/`result set`, MongoDB's `ok`.
    pub result: Option<String>,
    /// Rows (documents) returned.
    pub rows: Option<u64>,
    /// The server answered without an error (true too for a request that
    /// expects no answer: PostgreSQL's Terminate, MySQL's COM_QUIT, ...).
    /// None when an answer was expected and not captured.
    pub success: Option<bool>,
    /// PostgreSQL's SQLSTATE, MySQL's error number, MongoDB's code.
    pub error_code: Option<String>,
    /// MySQL's SQLSTATE, MongoDB's code name.
    pub error_name: Option<String>,
    pub error_message: Option<String>,
}

/// A Kafka exchange, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct KafkaInfo {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Produce and Fetch: the topics named (Fetch v13 and later name
    /// topics by id: these are shown as the id in hex).
    pub topics: Vec<String>,
    /// The response's error code: the top-level one, else the first
    /// non-zero one of a partition (Produce, Fetch). 0 is success.
    pub error_code: Option<i16>,
}

/// An AMQP exchange of methods, for its row.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct AmqpInfo {
    /// The method that opened the exchange: `basic.publish`, ...
    pub method: String,
    /// Its reply: `queue.declare-ok`, `basic.get-empty`, ...
    pub reply_method: Option<String>,
    /// The method came from the server (`connection.start`,
    /// `basic.deliver`, a broker's `channel.close`).
    pub from_server: bool,
    pub channel: u16,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub queue: Option<String>,
    /// `close` and `basic.return`: the reply code (200 is success).
    pub reply_code: Option<u16>,
    pub reply_text: Option<String>,
    /// The content's type, from its header frame.
    pub content_type: Option<String>,
    /// The content header's other properties, by their AMQP names
    /// (`delivery-mode`, `correlation-id`, `reply-to`, `message-id`, ...;
    /// `headers` as its number of entries).
    pub properties: Vec<(String, String)>,
    /// Bytes of the content (message body).
    pub body_size: Option<u64>,
}
