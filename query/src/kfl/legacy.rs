//! KFL v1 and Kubeshark's "compact" field names, rewritten to KFL2.
//!
//! Kubeshark's MCP documentation and older examples still use these
//! (`response.status == 503`, `dst.svc == "payment"`, `src.ns`). Each is
//! rewritten to a KFL2 expression before compilation, and the rewrite is
//! reported as a note, so the user learns the current spelling.

/// (legacy name, KFL2 expression it becomes)
pub const ALIASES: &[(&str, &str)] = &[
    ("response.status", "status_code"),
    ("response.statusCode", "status_code"),
    ("response.statusText", "status_text"),
    ("request.method", "method"),
    ("request.path", "path"),
    ("request.url", "url"),
    ("request.targetUri", "url"),
    ("request.queryString", "query_string"),
    ("request.query", "query_string"),
    ("request.httpVersion", "http_version"),
    ("request.bodySize", "request_body_size"),
    ("response.bodySize", "response_body_size"),
    ("request.headersSize", "request_headers_size"),
    ("response.headersSize", "response_headers_size"),
    ("request.postData.text", "request.body"),
    ("response.content.text", "response.body"),
    // v1 sizes were totals of headers and body.
    ("requestSize", "request_headers_size + request_body_size"),
    ("responseSize", "response_headers_size + response_body_size"),
    // v1's elapsedTime and the compact `latency` are milliseconds; KFL2's elapsed_time is microseconds.
    ("elapsedTime", "elapsed_time / 1000"),
    ("response.latency", "elapsed_time / 1000"),
    ("latency_ms", "elapsed_time / 1000"),
    ("protocol.name", "protocol"),
    ("protocol.abbr", "protocol"),
    ("src.ns", "src.namespace"),
    ("dst.ns", "dst.namespace"),
    ("src.svc", "src.service.name"),
    ("dst.svc", "dst.service.name"),
    ("src.pod", "src.pod.name"),
    ("dst.pod", "dst.pod.name"),
    ("src.service", "src.service.name"),
    ("dst.service", "dst.service.name"),
    ("node.name", "node_name"),
    ("node.ip", "node_ip"),
    ("src.port_number", "src.port"),
    ("dst.port_number", "dst.port"),
];

pub fn alias(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(n, _)| *n == name).map(|(_, to)| *to)
}

/// docs/kfl.md's table of rewrites.
pub fn markdown() -> String {
    let mut s = String::from("| legacy | rewritten to |\n|---|---|\n");
    for (from, to) in ALIASES {
        s.push_str(&format!("| `{from}` | `{to}` |\n"));
    }
    s
}
