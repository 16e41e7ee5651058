//! The rows of `api_calls`: the columns every call has, then the column
//! group of the call's protocol, written by that protocol's writer below
//! (each pushes exactly its group's columns of
//! `trawl_schemas::CALL_GROUPS`, in schema order).

use trawl_proto::detail::{
    AmqpInfo, DbInfo, Detail, DnsInfo, GraphqlOperation, GrpcCall, KafkaInfo, RedisInfo, TlsInfo, WebSocketInfo,
};
use trawl_proto::exchange::StartLine;

use crate::Error;
use crate::records::{CallRow, untag};

use super::columns::TableBuilder;
use super::rows::Names;

impl TableBuilder {
    pub(super) fn call(&mut self, id: u64, r: &CallRow, names: &mut Names) -> Result<(), Error> {
        let ex = &r.exchange;
        let req = ex.request.as_ref();
        let resp = ex.response.as_ref();
        let first = req.or(resp);
        self.u64(id);
        self.u64(r.flow_id);
        self.u32(ex.index);
        self.str(r.protocol);
        self.ts(first.map_or(0, |m| m.at.ts_ns));
        self.opt_ts(resp.map(|m| m.at.ts_ns));
        let end = req.map(|m| m.end.ts_ns).max(resp.map(|m| m.end.ts_ns));
        self.opt_ts(end);
        self.opt_i64(match (req, resp) {
            (Some(q), Some(p)) => Some((p.end.ts_ns - q.at.ts_ns) / 1000),
            _ => None,
        });
        self.ip(&r.src_ip);
        self.u16(r.src_port);
        self.ip(&r.dst_ip);
        self.u16(r.dst_port);
        let (method, target) = match req.map(|m| &m.start) {
            Some(StartLine::Request { method, target }) => (Some(method.as_str()), Some(target.as_str())),
            _ => (None, None),
        };
        let ws = ex.detail.websocket();
        let target = target.or(ws.and_then(|w| w.target.as_deref()));
        self.opt_str(method);
        self.opt_str(target);
        let (path, query) = target.map(split_target).unwrap_or(("", None));
        self.opt_str(target.map(|_| path));
        // Borrowed from the target unless a name or value is escaped.
        let params: Vec<(std::borrow::Cow<str>, std::borrow::Cow<str>)> =
            query.map(|q| form_urlencoded::parse(q.as_bytes()).collect()).unwrap_or_default();
        self.map(params.iter().map(|(k, v)| (&**k, &**v)));
        self.opt_str(req.and_then(|m| m.header("host").or(m.header(":authority"))));
        let version = req.and_then(|m| m.version).or(resp.and_then(|m| m.version));
        let version = match (ex.stream_id, version) {
            (Some(_), _) => Some("HTTP/2"),
            (None, Some(0)) => Some("HTTP/1.0"),
            (None, Some(_)) => Some("HTTP/1.1"),
            (None, None) => None,
        };
        self.opt_str(version);
        let (status, reason) = match resp.map(|m| &m.start) {
            Some(StartLine::Response { status, reason }) => (Some(*status as i32), Some(reason.as_str())),
            _ => (None, None),
        };
        self.opt_i32(status);
        self.opt_str(reason);
        self.headers(req);
        self.headers(resp);
        self.i64(req.map_or(0, |m| m.head_size as i64));
        self.i64(req.map_or(0, |m| m.body_size as i64));
        self.i64(resp.map_or(0, |m| m.head_size as i64));
        self.i64(resp.map_or(0, |m| m.body_size as i64));
        self.opt_bin(req.map(|m| m.body.as_slice()));
        self.bool(req.is_some_and(|m| m.body_truncated));
        self.opt_bin(resp.map(|m| m.body.as_slice()));
        self.bool(resp.is_some_and(|m| m.body_truncated));
        self.opt_str(ex.upgrade.as_deref());
        let error =
            ex.error.as_deref().or(req.and_then(|m| m.error.as_deref())).or(resp.and_then(|m| m.error.as_deref()));
        self.opt_str(error);
        self.opt_u32(ex.stream_id);
        write_detail(self, &ex.detail);
        let (file_index, frame) = untag(first.map_or(0, |m| m.at.tag));
        self.u32(file_index);
        self.u64(frame);
        self.context(
            names,
            first.map_or(0, |m| m.at.ts_ns),
            r.flow_id,
            file_index,
            (r.src_ip, r.src_port),
            (r.dst_ip, r.dst_port),
        );
        self.end_row()
    }
}

/// Fills the column group of the row's protocol (none for plain HTTP):
/// the match lists every protocol, so a new one cannot be forgotten.
fn write_detail(b: &mut TableBuilder, detail: &Detail) {
    match detail {
        Detail::Http => b.fill_group(None, |_| {}),
        Detail::Grpc(g) => b.fill_group(Some("grpc"), |b| grpc(b, g)),
        Detail::Graphql(q) => b.fill_group(Some("graphql"), |b| graphql(b, q)),
        Detail::WebSocket(w) => b.fill_group(Some("websocket"), |b| websocket(b, w)),
        Detail::Dns(d) => b.fill_group(Some("dns"), |b| dns(b, d)),
        Detail::Tls(t) => b.fill_group(Some("tls"), |b| tls(b, t)),
        Detail::Redis(r) => b.fill_group(Some("redis"), |b| redis(b, r)),
        Detail::Db(d) => b.fill_group(Some("db"), |b| db(b, d)),
        Detail::Kafka(k) => b.fill_group(Some("kafka"), |b| kafka(b, k)),
        Detail::Amqp(a) => b.fill_group(Some("amqp"), |b| amqp(b, a)),
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn grpc(b: &mut TableBuilder, g: &GrpcCall) {
    b.str(&g.service);
    b.str(&g.method);
    b.opt_i32(g.status);
    b.opt_str(g.message.as_deref());
    b.u32(g.messages[0]);
    b.u32(g.messages[1]);
    b.u32(g.compressed);
    b.opt_str(g.decoded[0].as_deref());
    b.opt_str(g.decoded[1].as_deref());
}

fn graphql(b: &mut TableBuilder, q: &GraphqlOperation) {
    b.str(q.kind);
    b.opt_str(q.name.as_deref());
    b.opt_u32(q.errors);
    b.opt_str(q.error_message.as_deref());
}

fn websocket(b: &mut TableBuilder, w: &WebSocketInfo) {
    b.str(w.opcode);
    b.bool(w.from_client);
    b.opt_u16(w.close_code);
    b.u32(w.fragments);
}

fn dns(b: &mut TableBuilder, d: &DnsInfo) {
    b.list(&strs(&d.questions));
    b.list(&strs(&d.question_types));
    b.list(&strs(&d.answers));
    b.u16(d.id);
}

fn tls(b: &mut TableBuilder, t: &TlsInfo) {
    b.opt_str(t.version.map(trawl_proto::tls::version_name).as_deref());
    b.opt_u16(t.version);
    b.opt_str(t.sni.as_deref());
    b.list(&strs(&t.alpn));
    b.opt_str(t.alpn_selected.as_deref());
    b.list(&strs(&t.cipher_suites));
    b.opt_u16(t.cipher_suite);
    b.opt_str(t.ja3.as_deref());
    b.opt_str(t.ja3s.as_deref());
    b.opt_str(t.ja4.as_deref());
    b.opt_str(t.cert_subject.as_deref());
    b.opt_str(t.cert_issuer.as_deref());
    b.list(&strs(&t.weak));
}

fn redis(b: &mut TableBuilder, r: &RedisInfo) {
    b.opt_str(r.command.as_deref());
    b.opt_str(r.line.as_deref());
    b.opt_str(r.key.as_deref());
    b.opt_str(r.reply);
    b.opt_str(r.error.as_deref());
}

fn db(b: &mut TableBuilder, d: &DbInfo) {
    b.str(&d.command);
    b.opt_str(d.query.as_deref());
    b.opt_str(d.database.as_deref());
    b.opt_str(d.user.as_deref());
    b.opt_str(d.collection.as_deref());
    b.opt_str(d.statement.as_deref());
    b.opt_str(d.result.as_deref());
    b.opt_u64(d.rows);
    b.opt_bool(d.success);
    b.opt_str(d.error_code.as_deref());
    b.opt_str(d.error_name.as_deref());
    b.opt_str(d.error_message.as_deref());
}

fn kafka(b: &mut TableBuilder, k: &KafkaInfo) {
    b.i32(k.api_key.into());
    b.str(trawl_proto::kafka::api_name(k.api_key));
    b.i32(k.api_version.into());
    b.i32(k.correlation_id);
    b.opt_str(k.client_id.as_deref());
    b.list(&strs(&k.topics));
    b.opt_i32(k.error_code.map(i32::from));
}

fn amqp(b: &mut TableBuilder, a: &AmqpInfo) {
    b.str(&a.method);
    b.opt_str(a.reply_method.as_deref());
    b.bool(a.from_server);
    b.u16(a.channel);
    b.opt_str(a.exchange.as_deref());
    b.opt_str(a.routing_key.as_deref());
    b.opt_str(a.queue.as_deref());
    b.opt_u16(a.reply_code);
    b.opt_str(a.reply_text.as_deref());
    b.opt_str(a.content_type.as_deref());
    b.opt_u64(a.body_size);
    b.map(a.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// Splits a request target into its path and query. An absolute-form
/// target (`http://host/p?q`) yields its path.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let rest = target.find("://").map_or(target, |i| {
        let after = &target[i + 3..];
        after.find('/').map_or("/", |j| &after[j..])
    });
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every protocol's writer pushes exactly its group's columns, with
    /// the types the schema gives them, and every group has a writer.
    #[test]
    fn each_protocol_writer_fills_exactly_its_column_group() {
        let details = [
            Detail::Grpc(Box::default()),
            Detail::Graphql(Box::default()),
            Detail::WebSocket(Box::default()),
            Detail::Dns(Box::default()),
            Detail::Tls(Box::default()),
            Detail::Redis(Box::default()),
            Detail::Db(Box::default()),
            Detail::Kafka(Box::default()),
            Detail::Amqp(Box::default()),
        ];
        let mut filled = Vec::new();
        for d in &details {
            let mut b = TableBuilder::with_groups(&trawl_schemas::API_CALLS, &trawl_schemas::CALL_GROUPS);
            write_detail(&mut b, d);
            assert_eq!(b.problem(), None, "{d:?}");
            filled.push(b.filled_groups());
        }
        let names: Vec<Vec<&str>> = trawl_schemas::CALL_GROUPS.iter().map(|g| vec![g.name]).collect();
        assert_eq!(filled, names);
        let mut b = TableBuilder::with_groups(&trawl_schemas::API_CALLS, &trawl_schemas::CALL_GROUPS);
        write_detail(&mut b, &Detail::Http);
        assert_eq!((b.problem(), b.filled_groups()), (None, vec![]));
    }

    /// A writer that pushes one column short is caught.
    #[test]
    fn a_writer_short_of_its_group_is_a_bug() {
        let mut b = TableBuilder::with_groups(&trawl_schemas::API_CALLS, &trawl_schemas::CALL_GROUPS);
        b.fill_group(Some("websocket"), |b| {
            b.str("text");
            b.bool(true);
        });
        assert_eq!(b.problem(), Some("api_calls: the websocket writer pushed 2 of its 4 columns"));
    }

    #[test]
    fn split_target_forms() {
        assert_eq!(split_target("/a/b?x=1&y"), ("/a/b", Some("x=1&y")));
        assert_eq!(split_target("http://h:8/p?q"), ("/p", Some("q")));
        assert_eq!(split_target("http://h"), ("/", None));
        assert_eq!(split_target("*"), ("*", None));
    }
}
