//! Writing rows: Arrow column builders laid out from the table
//! definitions in `trawl-schemas`, Parquet files, and the snapshot
//! directory (written under a temporary name, renamed when complete).

use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
    UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use trawl_proto::exchange::{Message, StartLine};
use trawl_schemas::{ColumnType, Table};

use crate::Error;
use crate::kube::Context;
use crate::kube::peers::PeerNames;
use crate::records::{CallRow, FlowRow, IssueRow, Keyed, Record, SortKey, VSHARDS, untag};

enum Col {
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Ts(TimestampNanosecondBuilder),
    Map(MapBuilder<StringBuilder, StringBuilder>),
    List(ListBuilder<StringBuilder>),
}

impl Col {
    fn new(ty: ColumnType) -> Col {
        match ty {
            ColumnType::UInt8 => Col::U8(UInt8Builder::new()),
            ColumnType::UInt16 => Col::U16(UInt16Builder::new()),
            ColumnType::UInt32 => Col::U32(UInt32Builder::new()),
            ColumnType::UInt64 => Col::U64(UInt64Builder::new()),
            ColumnType::Int32 => Col::I32(Int32Builder::new()),
            ColumnType::Int64 => Col::I64(Int64Builder::new()),
            ColumnType::Float64 => Col::F64(Float64Builder::new()),
            ColumnType::Bool => Col::Bool(BooleanBuilder::new()),
            ColumnType::Utf8 => Col::Str(StringBuilder::new()),
            ColumnType::Binary => Col::Bin(BinaryBuilder::new()),
            ColumnType::Timestamp => Col::Ts(TimestampNanosecondBuilder::new().with_timezone("UTC")),
            ColumnType::StringMap => Col::Map(MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())),
            ColumnType::StringList => Col::List(ListBuilder::new(StringBuilder::new())),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::U8(b) => Arc::new(b.finish()),
            Col::U16(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::U64(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
            Col::Bin(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Map(b) => Arc::new(b.finish()),
            Col::List(b) => Arc::new(b.finish()),
        }
    }
}

/// Rows of one table, built into Arrow arrays column by column. Values are
/// pushed in schema order; a push of the wrong type is a bug in trawl and
/// is reported as [`Error::Internal`].
pub struct TableBuilder {
    table: &'static Table,
    schema: SchemaRef,
    cols: Vec<Col>,
    cursor: usize,
    rows: usize,
    bug: Option<String>,
}

impl TableBuilder {
    pub fn new(table: &'static Table) -> TableBuilder {
        TableBuilder {
            table,
            schema: Arc::new(table.arrow_schema()),
            cols: table.columns.iter().map(|c| Col::new(c.ty)).collect(),
            cursor: 0,
            rows: 0,
            bug: None,
        }
    }

    /// Rows appended since the last [`TableBuilder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Sizes a binary column for `items` values of `bytes` in all, so
    /// that it is not regrown (and recopied) while a batch is built.
    fn reserve_binary(&mut self, name: &str, items: usize, bytes: usize) {
        if let Some(i) = self.table.index_of(name)
            && let Some(col @ Col::Bin(_)) = self.cols.get_mut(i)
        {
            *col = Col::Bin(BinaryBuilder::with_capacity(items, bytes));
        }
    }

    /// The rows appended so far, as a batch.
    pub fn finish(&mut self) -> Result<RecordBatch, Error> {
        if let Some(bug) = &self.bug {
            return Err(Error::Internal(bug.clone()));
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| Error::Internal(format!("{}: {e}", self.table.name)))
    }
}

const ROW_GROUP_BYTES: usize = 128 << 20;

/// One Parquet file being written.
pub struct ParquetTable {
    writer: Option<ArrowWriter<File>>,
    path: PathBuf,
    rows: u64,
}

impl ParquetTable {
    pub fn create(dir: &Path, table: &'static Table) -> Result<ParquetTable, Error> {
        let path = dir.join(table.file_name());
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let schema: SchemaRef = Arc::new(table.arrow_schema());
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            .set_max_row_group_row_count(Some(128 * 1024))
            // Row-group statistics prune as well for trawl's queries and
            // cost a fraction of page-level ones.
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk);
        // Dictionary encoding pays only for repetitive columns; bodies,
        // URLs and free text would just fill and abandon a dictionary.
        // Header and query values (dates, etags, lengths, ids) are too.
        use parquet::schema::types::ColumnPath;
        for c in table.columns {
            if matches!(c.name, "request_body" | "response_body" | "url" | "path" | "detail" | "community_id" | "history") {
                props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
            }
            // Bodies: Snappy costs a fraction of zstd's CPU (and measured
            // less than LZ4 here), and much of what crosses networks
            // (media, archives, TLS) does not compress anyway.
            if c.ty == ColumnType::Binary {
                props = props.set_column_compression(ColumnPath::from(c.name), Compression::SNAPPY);
                // Min/max of bodies prune nothing and cost comparisons.
                props = props.set_column_statistics_enabled(ColumnPath::from(c.name), parquet::file::properties::EnabledStatistics::None);
            }
            // The packet index's positions and times grow row by row:
            // delta encoding stores them in a few bits each.
            if table.name == trawl_schemas::PACKETS.name && matches!(c.name, "ordinal" | "timestamp" | "frame_number" | "offset") {
                props = props
                    .set_column_dictionary_enabled(ColumnPath::from(c.name), false)
                    .set_column_encoding(ColumnPath::from(c.name), parquet::basic::Encoding::DELTA_BINARY_PACKED);
            }
            // Flow ids are as many as flows: a dictionary would only grow.
            if table.name == trawl_schemas::PACKETS.name && c.name == "flow_id" {
                props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
            }
            if c.ty == ColumnType::StringMap {
                props = props.set_column_dictionary_enabled(ColumnPath::new(vec![c.name.into(), "entries".into(), "values".into()]), false);
            }
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::Output { path: path.clone(), detail: e.to_string() })?;
        Ok(ParquetTable { writer: Some(writer), path, rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let out = |e: String| Error::Output { path: self.path.clone(), detail: e };
        let w = self.writer.as_mut().ok_or_else(|| out("writer already closed".into()))?;
        w.write(batch).map_err(|e| out(e.to_string()))?;
        if w.in_progress_size() >= ROW_GROUP_BYTES {
            w.flush().map_err(|e| out(e.to_string()))?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the file; returns the row count.
    pub fn finish(mut self) -> Result<u64, Error> {
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| Error::Output { path: self.path.clone(), detail: e.to_string() })?;
        }
        Ok(self.rows)
    }
}

impl TableBuilder {
    fn next_col(&mut self) -> Option<&mut Col> {
        let i = self.cursor;
        self.cursor += 1;
        self.cols.get_mut(i)
    }

    fn mismatch(&mut self, what: &str) {
        if self.bug.is_none() {
            let col = self.table.columns.get(self.cursor.wrapping_sub(1)).map_or("?", |c| c.name);
            self.bug = Some(format!("{}.{col}: pushed a {what}", self.table.name));
        }
    }

    fn u8(&mut self, v: u8) {
        if let Some(Col::U8(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u8") }
    }
    fn u16(&mut self, v: u16) {
        if let Some(Col::U16(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u16") }
    }
    fn opt_u16(&mut self, v: Option<u16>) {
        if let Some(Col::U16(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("u16") }
    }
    fn u32(&mut self, v: u32) {
        if let Some(Col::U32(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u32") }
    }
    fn u64(&mut self, v: u64) {
        if let Some(Col::U64(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u64") }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        if let Some(Col::U64(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("u64") }
    }
    fn opt_i32(&mut self, v: Option<i32>) {
        if let Some(Col::I32(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("i32") }
    }
    fn i64(&mut self, v: i64) {
        if let Some(Col::I64(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("i64") }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        if let Some(Col::I64(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("i64") }
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        if let Some(Col::F64(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("f64") }
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        if let Some(Col::U32(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("u32") }
    }
    fn opt_u8(&mut self, v: Option<u8>) {
        if let Some(Col::U8(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("u8") }
    }
    fn opt_bool(&mut self, v: Option<bool>) {
        if let Some(Col::Bool(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("bool") }
    }
    fn bool(&mut self, v: bool) {
        if let Some(Col::Bool(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("bool") }
    }
    fn str(&mut self, v: &str) {
        if let Some(Col::Str(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("string") }
    }
    fn opt_str(&mut self, v: Option<&str>) {
        if let Some(Col::Str(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("string") }
    }
    fn ip(&mut self, v: &IpAddr) {
        self.str(&v.to_string())
    }
    fn opt_bin(&mut self, v: Option<&[u8]>) {
        if let Some(Col::Bin(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("binary") }
    }
    fn ts(&mut self, v: i64) {
        if let Some(Col::Ts(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("timestamp") }
    }
    fn opt_ts(&mut self, v: Option<i64>) {
        if let Some(Col::Ts(b)) = self.next_col() { b.append_option(v) } else { self.mismatch("timestamp") }
    }
    fn map<'a>(&mut self, entries: impl Iterator<Item = (&'a str, &'a str)>) {
        if let Some(Col::Map(b)) = self.next_col() {
            for (k, v) in entries {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
            if b.append(true).is_err() {
                self.mismatch("map with unequal keys and values");
            }
        } else {
            self.mismatch("map");
        }
    }
    /// A header map: repeated names joined by ", ", in first-seen order.
    fn headers(&mut self, m: Option<&Message>) {
        let h: Vec<(&str, &str)> = m.map(|m| m.headers.iter().collect()).unwrap_or_default();
        if let Some(Col::Map(b)) = self.next_col() {
            for (i, (k, v)) in h.iter().enumerate() {
                if h[..i].iter().any(|(pk, _)| pk == k) {
                    continue;
                }
                b.keys().append_value(k);
                if h[i + 1..].iter().any(|(nk, _)| nk == k) {
                    let joined: Vec<&str> = h[i..].iter().filter(|(nk, _)| nk == k).map(|(_, v)| *v).collect();
                    b.values().append_value(joined.join(", "));
                } else {
                    b.values().append_value(v);
                }
            }
            if b.append(true).is_err() {
                self.mismatch("map with unequal keys and values");
            }
        } else {
            self.mismatch("map");
        }
    }

    fn opt_list(&mut self, items: Option<&[&str]>) {
        match items {
            Some(items) => self.list(items),
            None => {
                if let Some(Col::List(b)) = self.next_col() {
                    b.append(false);
                } else {
                    self.mismatch("list");
                }
            }
        }
    }

    fn list(&mut self, items: &[&str]) {
        if let Some(Col::List(b)) = self.next_col() {
            for i in items {
                b.values().append_value(i);
            }
            b.append(true);
        } else {
            self.mismatch("list");
        }
    }

    fn end_row(&mut self) -> Result<(), Error> {
        if self.cursor != self.cols.len() && self.bug.is_none() {
            self.bug = Some(format!("{}: a row pushed {} of {} columns", self.table.name, self.cursor, self.cols.len()));
        }
        if let Some(bug) = &self.bug {
            return Err(Error::Internal(bug.clone()));
        }
        self.cursor = 0;
        self.rows += 1;
        Ok(())
    }

    fn flow(&mut self, r: &FlowRow, names: &mut Names) -> Result<(), Error> {
        self.u64(r.flow_id);
        self.str(&r.community_id);
        self.str(&r.protocol);
        self.u8(r.ip_version);
        self.ip(&r.src_ip);
        self.u16(r.src_port);
        self.ip(&r.dst_ip);
        self.u16(r.dst_port);
        self.str(r.orientation);
        self.ts(r.ts);
        self.ts(r.end_ts);
        self.i64((r.end_ts - r.ts) / 1000);
        self.str(r.conn_state);
        self.str(r.zeek_state);
        self.str(&r.history);
        self.str(r.end_reason);
        for d in &r.dirs {
            self.u64(d.packets);
            self.u64(d.bytes);
            self.u64(d.payload_bytes);
            self.u64(d.stream_bytes);
            self.u64(d.gap_bytes);
            self.u8(d.tcp_flags);
            self.opt_ts(d.first_ts);
            self.opt_ts(d.last_ts);
        }
        self.opt_i64(r.handshake_rtt_ns.map(|n| n / 1000));
        self.tcp_metrics(r);
        self.list(&r.l7_protocols);
        self.opt_u16(r.vlan);
        self.u32(r.file_index);
        self.u64(r.frame_number);
        self.context(names, r.ts, r.flow_id, r.file_index, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port));
        self.end_row()
    }

    /// The TCP expert columns, from `initial_rtt_us` to `goodput_bytes`
    /// (null for UDP and ICMP flows).
    fn tcp_metrics(&mut self, r: &FlowRow) {
        let m = r.tcp.as_deref();
        let us = |v: Option<i64>| v.map(|n| n / 1000);
        let rtt = m.map(|m| m.rtt).filter(|r| r.samples > 0);
        self.opt_i64(us(m.and_then(|m| m.initial_rtt_ns)));
        self.opt_i64(us(m.and_then(|m| m.connection_time_ns)));
        self.opt_i64(us(m.and_then(|m| m.ttfb_ns)));
        self.opt_i64(us(rtt.map(|r| r.min_ns)));
        self.opt_i64(us(rtt.map(|r| r.max_ns)));
        self.opt_i64(rtt.and_then(|r| r.mean_us()).map(|v| v.round() as i64));
        self.opt_u32(m.map(|m| m.rtt.samples));
        self.opt_i64(rtt.and_then(|r| r.std_dev_us()).map(|v| v.round() as i64));
        self.opt_u32(m.map(|m| m.retransmissions()));
        self.opt_u32(m.map(|m| m.retransmissions_by[0]));
        self.opt_u32(m.map(|m| m.retransmissions_by[1]));
        self.opt_u32(m.map(|m| m.resent_segments));
        self.opt_u32(m.map(|m| m.fast_retransmissions));
        self.opt_u32(m.map(|m| m.spurious_retransmissions));
        self.opt_f64(m.map(|m| m.retransmission_rate()));
        self.opt_u32(m.map(|m| m.out_of_order));
        self.opt_u32(m.map(|m| m.dup_acks));
        self.opt_u32(m.map(|m| m.missing_segments));
        self.opt_u32(m.map(|m| m.acked_unseen));
        self.opt_u32(m.map(|m| m.zero_windows));
        self.opt_u32(m.map(|m| m.zero_window_probes));
        self.opt_u32(m.map(|m| m.window_full));
        self.opt_u8(m.and_then(|m| m.window_scale[0]));
        self.opt_u8(m.and_then(|m| m.window_scale[1]));
        self.opt_u64(m.and_then(|m| m.avg_window(0)));
        self.opt_u64(m.and_then(|m| m.avg_window(1)));
        self.opt_u32(m.map(|m| m.rst_packets));
        self.opt_u32(m.map(|m| m.fin_packets));
        self.opt_u32(m.map(|m| m.keep_alives));
        self.opt_u8(m.map(|m| m.completeness));
        self.opt_u64(m.map(|m| m.goodput_bytes));
    }

    /// The Kubernetes and DNS columns (`trawl_schemas::KUBE_COLUMNS`): each
    /// side named at `ts`, from DNS answers seen before packet `flow_id`.
    fn context(&mut self, names: &mut Names, ts: i64, flow_id: u64, file_index: u32, src: (IpAddr, u16), dst: (IpAddr, u16)) {
        let ctx = names.ctx;
        let node = ctx.input_nodes.get(file_index as usize).map(String::as_str).filter(|n| !n.is_empty());
        self.opt_str(node);
        let node_ip = node.and_then(|n| ctx.cluster.node_ip(n, ts)).map(|ip| ip.to_string());
        self.opt_str(node_ip.as_deref());
        let mut all: Vec<std::sync::Arc<str>> = Vec::new();
        for (ip, port) in [src, dst] {
            let side = ctx.cluster.resolve(ip, port, ts);
            if let Some(n) = side.file.and_then(|f| names.matches.get_mut(f)) {
                *n += 1;
            }
            let peer = names.peers.lookup(ip, flow_id);
            let pod = side.pod();
            self.opt_str(pod.map(|p| &*p.name));
            self.opt_str(pod.map(|p| &*p.namespace));
            self.opt_str(side.service.map(|s| s.1));
            self.opt_str(side.service.map(|s| s.0));
            self.opt_str(pod.and_then(|p| p.workload.as_deref()));
            self.opt_str(side.node);
            let empty = std::collections::BTreeMap::new();
            self.map(pod.map_or(&empty, |p| &p.labels).iter().map(|(k, v)| (k.as_str(), v.as_str())));
            self.map(pod.map_or(&empty, |p| &p.annotations).iter().map(|(k, v)| (k.as_str(), v.as_str())));
            self.str(side.namespace());
            self.opt_str(peer.dns.as_deref());
            self.str(side.resolution);
            for n in peer.names {
                if !all.contains(&n) {
                    all.push(n);
                }
            }
        }
        let all: Vec<&str> = all.iter().map(|n| &**n).collect();
        self.list(&all);
    }

    fn call(&mut self, id: u64, r: &CallRow, names: &mut Names) -> Result<(), Error> {
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
        let params: Vec<(String, String)> = query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        self.map(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
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
        let error = ex.error.as_deref().or(req.and_then(|m| m.error.as_deref())).or(resp.and_then(|m| m.error.as_deref()));
        self.opt_str(error);
        self.opt_u32(ex.stream_id);
        let g = ex.detail.grpc();
        self.opt_str(g.map(|g| g.service.as_str()));
        self.opt_str(g.map(|g| g.method.as_str()));
        self.opt_i32(g.and_then(|g| g.status));
        self.opt_str(g.and_then(|g| g.message.as_deref()));
        self.opt_u32(g.map(|g| g.messages[0]));
        self.opt_u32(g.map(|g| g.messages[1]));
        self.opt_u32(g.map(|g| g.compressed));
        self.opt_str(g.and_then(|g| g.decoded[0].as_deref()));
        self.opt_str(g.and_then(|g| g.decoded[1].as_deref()));
        let q = ex.detail.graphql();
        self.opt_str(q.map(|q| q.kind));
        self.opt_str(q.and_then(|q| q.name.as_deref()));
        self.opt_u32(q.and_then(|q| q.errors));
        self.opt_str(q.and_then(|q| q.error_message.as_deref()));
        self.opt_str(ws.map(|w| w.opcode));
        self.opt_bool(ws.map(|w| w.from_client));
        self.opt_u16(ws.and_then(|w| w.close_code));
        self.opt_u32(ws.map(|w| w.fragments));
        let dns = ex.detail.dns();
        fn strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        self.opt_list(dns.map(|d| strs(&d.questions)).as_deref());
        self.opt_list(dns.map(|d| strs(&d.question_types)).as_deref());
        self.opt_list(dns.map(|d| strs(&d.answers)).as_deref());
        self.opt_u16(dns.map(|d| d.id));
        let tls = ex.detail.tls();
        let version = tls.and_then(|t| t.version);
        self.opt_str(version.map(trawl_proto::tls::version_name).as_deref());
        self.opt_u16(version);
        self.opt_str(tls.and_then(|t| t.sni.as_deref()));
        self.opt_list(tls.map(|t| strs(&t.alpn)).as_deref());
        self.opt_str(tls.and_then(|t| t.alpn_selected.as_deref()));
        self.opt_list(tls.map(|t| strs(&t.cipher_suites)).as_deref());
        self.opt_u16(tls.and_then(|t| t.cipher_suite));
        self.opt_str(tls.and_then(|t| t.ja3.as_deref()));
        self.opt_str(tls.and_then(|t| t.ja3s.as_deref()));
        self.opt_str(tls.and_then(|t| t.ja4.as_deref()));
        self.opt_str(tls.and_then(|t| t.cert_subject.as_deref()));
        self.opt_str(tls.and_then(|t| t.cert_issuer.as_deref()));
        self.opt_list(tls.map(|t| strs(&t.weak)).as_deref());
        let redis = ex.detail.redis();
        self.opt_str(redis.and_then(|r| r.command.as_deref()));
        self.opt_str(redis.and_then(|r| r.line.as_deref()));
        self.opt_str(redis.and_then(|r| r.key.as_deref()));
        self.opt_str(redis.and_then(|r| r.reply));
        self.opt_str(redis.and_then(|r| r.error.as_deref()));
        let db = ex.detail.db();
        self.opt_str(db.map(|d| d.command.as_str()));
        self.opt_str(db.and_then(|d| d.query.as_deref()));
        self.opt_str(db.and_then(|d| d.database.as_deref()));
        self.opt_str(db.and_then(|d| d.user.as_deref()));
        self.opt_str(db.and_then(|d| d.collection.as_deref()));
        self.opt_str(db.and_then(|d| d.statement.as_deref()));
        self.opt_str(db.and_then(|d| d.result.as_deref()));
        self.opt_u64(db.and_then(|d| d.rows));
        self.opt_bool(db.and_then(|d| d.success));
        self.opt_str(db.and_then(|d| d.error_code.as_deref()));
        self.opt_str(db.and_then(|d| d.error_name.as_deref()));
        self.opt_str(db.and_then(|d| d.error_message.as_deref()));
        let kafka = ex.detail.kafka();
        self.opt_i32(kafka.map(|k| k.api_key.into()));
        self.opt_str(kafka.map(|k| trawl_proto::kafka::api_name(k.api_key)));
        self.opt_i32(kafka.map(|k| k.api_version.into()));
        self.opt_i32(kafka.map(|k| k.correlation_id));
        self.opt_str(kafka.and_then(|k| k.client_id.as_deref()));
        self.opt_list(kafka.map(|k| strs(&k.topics)).as_deref());
        self.opt_i32(kafka.and_then(|k| k.error_code).map(i32::from));
        let amqp = ex.detail.amqp();
        self.opt_str(amqp.map(|a| a.method.as_str()));
        self.opt_str(amqp.and_then(|a| a.reply_method.as_deref()));
        self.opt_bool(amqp.map(|a| a.from_server));
        self.opt_u16(amqp.map(|a| a.channel));
        self.opt_str(amqp.and_then(|a| a.exchange.as_deref()));
        self.opt_str(amqp.and_then(|a| a.routing_key.as_deref()));
        self.opt_str(amqp.and_then(|a| a.queue.as_deref()));
        self.opt_u16(amqp.and_then(|a| a.reply_code));
        self.opt_str(amqp.and_then(|a| a.reply_text.as_deref()));
        self.opt_str(amqp.and_then(|a| a.content_type.as_deref()));
        self.opt_u64(amqp.and_then(|a| a.body_size));
        self.map(amqp.map_or(&[][..], |a| &a.properties[..]).iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (file_index, frame) = untag(first.map_or(0, |m| m.at.tag));
        self.u32(file_index);
        self.u64(frame);
        self.context(names, first.map_or(0, |m| m.at.ts_ns), r.flow_id, file_index, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port));
        self.end_row()
    }

    fn issue(&mut self, r: &IssueRow) -> Result<(), Error> {
        self.opt_u64(r.flow_id);
        self.u32(r.file_index);
        self.opt_u64(r.frame_number);
        self.opt_ts(r.ts);
        self.str(r.layer);
        self.str(r.kind);
        self.str(&r.detail);
        self.end_row()
    }
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

/// The rows a worker produced for one tick, sorted by key and built into
/// one batch per table.
pub struct TickBatches {
    /// [flows, api_calls, parse_issues]: sort keys and the batch.
    pub tables: [(Vec<SortKey>, RecordBatch); 3],
}

/// What names the sides of a row: the shared Kubernetes context, the
/// worker's DNS names, and its counts of sides each sidecar named.
pub struct Names<'a> {
    ctx: &'a Context,
    peers: &'a PeerNames,
    matches: &'a mut [u64],
}

/// Per-worker builders of the three tables.
pub struct Builders {
    tables: [TableBuilder; 3],
    keys: [Vec<SortKey>; 3],
    ctx: Arc<Context>,
    /// Sides each sidecar file named, counted here and added to the
    /// shared counters once ([`Builders::flush_matches`]).
    matches: Vec<u64>,
}

impl Builders {
    pub fn new(ctx: Arc<Context>) -> Builders {
        Builders {
            tables: [TableBuilder::new(&trawl_schemas::FLOWS), TableBuilder::new(&trawl_schemas::API_CALLS), TableBuilder::new(&trawl_schemas::PARSE_ISSUES)],
            keys: Default::default(),
            matches: vec![0; ctx.cluster.file_count()],
            ctx,
        }
    }

    /// Adds this worker's counts of named sides to the sidecar reports.
    pub fn flush_matches(&self) {
        self.ctx.cluster.add_matches(&self.matches);
    }

    /// Appends rows (already in key order). Call ids are left 0; the
    /// writer numbers them once the order across workers is known.
    pub fn append(&mut self, rows: &[Keyed], peers: &PeerNames) -> Result<(), Error> {
        let (mut n, mut req, mut resp) = (0, 0, 0);
        for r in rows {
            if let Record::Call(c) = &r.record {
                n += 1;
                req += c.exchange.request.as_ref().map_or(0, |m| m.body.len());
                resp += c.exchange.response.as_ref().map_or(0, |m| m.body.len());
            }
        }
        if self.tables[1].rows() == 0 {
            self.tables[1].reserve_binary("request_body", n, req);
            self.tables[1].reserve_binary("response_body", n, resp);
        }
        let mut names = Names { ctx: &self.ctx, peers, matches: &mut self.matches };
        for r in rows {
            let t = match &r.record {
                Record::Flow(f) => {
                    self.tables[0].flow(f, &mut names)?;
                    0
                }
                Record::Call(c) => {
                    self.tables[1].call(0, c, &mut names)?;
                    1
                }
                Record::Issue(i) => {
                    self.tables[2].issue(i)?;
                    2
                }
            };
            self.keys[t].push(r.key);
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<TickBatches, Error> {
        let [f, c, i] = &mut self.tables;
        let [kf, kc, ki] = &mut self.keys;
        Ok(TickBatches { tables: [(std::mem::take(kf), f.finish()?), (std::mem::take(kc), c.finish()?), (std::mem::take(ki), i.finish()?)] })
    }
}

/// Where rows go, in their final order.
pub trait Sink {
    /// True when the sink takes Arrow batches built by the workers
    /// ([`Sink::write_batches`]) rather than rows ([`Sink::write_rows`]).
    fn wants_batches(&self) -> bool;
    fn write_rows(&mut self, rows: &[Keyed]) -> Result<(), Error>;
    /// One tick: each worker's batches.
    fn write_batches(&mut self, ticks: Vec<TickBatches>) -> Result<(), Error>;
    /// One tick's frames, for the packet index.
    fn write_packets(&mut self, _index: &crate::pipeline::PacketIndex) -> Result<(), Error> {
        Ok(())
    }
}

/// Keeps rows in memory (tests, `trawl debug streams`).
#[derive(Default)]
pub struct MemorySink {
    pub rows: Vec<Keyed>,
}

impl Sink for MemorySink {
    fn wants_batches(&self) -> bool {
        false
    }
    fn write_rows(&mut self, rows: &[Keyed]) -> Result<(), Error> {
        self.rows.extend_from_slice(rows);
        Ok(())
    }
    fn write_batches(&mut self, _: Vec<TickBatches>) -> Result<(), Error> {
        Err(Error::Internal("MemorySink takes rows".into()))
    }
}

/// Writes the tables of a snapshot into a directory.
pub struct ParquetSink {
    tables: [ParquetTable; 3],
    packets: ParquetTable,
    next_call_id: u64,
}

impl ParquetSink {
    pub fn create(dir: &Path) -> Result<ParquetSink, Error> {
        Ok(ParquetSink {
            tables: [
                ParquetTable::create(dir, &trawl_schemas::FLOWS)?,
                ParquetTable::create(dir, &trawl_schemas::API_CALLS)?,
                ParquetTable::create(dir, &trawl_schemas::PARSE_ISSUES)?,
            ],
            packets: ParquetTable::create(dir, &trawl_schemas::PACKETS)?,
            next_call_id: 1,
        })
    }

    /// Closes the files; returns (table name, rows) for each.
    pub fn finish(self) -> Result<Vec<(&'static str, u64)>, Error> {
        let names = [trawl_schemas::FLOWS.name, trawl_schemas::API_CALLS.name, trawl_schemas::PARSE_ISSUES.name];
        let mut out = Vec::new();
        for (t, name) in self.tables.into_iter().zip(names) {
            out.push((name, t.finish()?));
        }
        out.push((trawl_schemas::PACKETS.name, self.packets.finish()?));
        Ok(out)
    }
}

/// The `tcp_expert` column of the packet index: each frame's flags by
/// name, null for a frame without any.
fn expert_lists(flags: &[u16]) -> arrow_array::ListArray {
    let mut b = ListBuilder::new(StringBuilder::new());
    for &fl in flags {
        if fl == 0 {
            b.append(false);
        } else {
            for n in crate::tcp_analysis::flag_names(fl) {
                b.values().append_value(n);
            }
            b.append(true);
        }
    }
    b.finish()
}

impl Sink for ParquetSink {
    fn wants_batches(&self) -> bool {
        true
    }

    fn write_rows(&mut self, _: &[Keyed]) -> Result<(), Error> {
        Err(Error::Internal("ParquetSink takes batches".into()))
    }

    fn write_packets(&mut self, index: &crate::pipeline::PacketIndex) -> Result<(), Error> {
        use arrow_array::{TimestampNanosecondArray, UInt32Array, UInt64Array};
        if index.frames.is_empty() {
            return Ok(());
        }
        let f = &index.frames;
        let n = f.len() as u64;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(index.first_ordinal..index.first_ordinal + n)),
            Arc::new(TimestampNanosecondArray::from_iter_values(f.iter().map(|x| x.ts)).with_timezone("UTC")),
            Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.file_index))),
            Arc::new(UInt64Array::from_iter_values(f.iter().map(|x| x.frame_number))),
            Arc::new(UInt64Array::from_iter_values(f.iter().map(|x| x.offset))),
            Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.caplen))),
            Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.wire_len))),
            Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.link))),
            Arc::new(UInt64Array::from_iter(index.flow_ids.iter().copied())),
            Arc::new(UInt64Array::from_iter(f.iter().map(|x| x.datagram))),
            Arc::new(expert_lists(&index.tcp_expert)),
        ];
        let schema: SchemaRef = Arc::new(trawl_schemas::PACKETS.arrow_schema());
        let batch = RecordBatch::try_new(schema, cols).map_err(|e| Error::Internal(format!("packets: {e}")))?;
        self.packets.write(&batch)
    }

    fn write_batches(&mut self, ticks: Vec<TickBatches>) -> Result<(), Error> {
        let n = ticks.len();
        for t in 0..3 {
            // Each worker's rows are sorted by key, virtual shard first, and
            // a virtual shard belongs to one worker: the tick's order is its
            // virtual shards in turn, each a zero-copy slice of one batch.
            let mut ranges = vec![(0usize, 0usize); VSHARDS as usize];
            for (w, tb) in ticks.iter().enumerate() {
                let keys = &tb.tables[t].0;
                let mut i = 0;
                while i < keys.len() {
                    let vs = keys[i].0;
                    let start = i;
                    while i < keys.len() && keys[i].0 == vs {
                        i += 1;
                    }
                    if vs as usize % n != w {
                        return Err(Error::Internal(format!("virtual shard {vs} came from worker {w}")));
                    }
                    ranges[vs as usize] = (start, i - start);
                }
            }
            for (vs, &(start, len)) in ranges.iter().enumerate() {
                if len == 0 {
                    continue;
                }
                let mut batch = ticks[vs % n].tables[t].1.slice(start, len);
                if t == 1 {
                    // api_calls.id: 1-based row number in the final order.
                    let ids = arrow_array::UInt64Array::from_iter_values(self.next_call_id..self.next_call_id + len as u64);
                    self.next_call_id += len as u64;
                    let mut cols = batch.columns().to_vec();
                    cols[0] = Arc::new(ids);
                    batch = RecordBatch::try_new(batch.schema(), cols).map_err(|e| Error::Internal(e.to_string()))?;
                }
                self.tables[t].write(&batch)?;
            }
        }
        Ok(())
    }
}

/// A snapshot directory being written: everything goes to a temporary
/// sibling directory that is renamed into place by [`Snapshot::commit`].
pub struct Snapshot {
    pub tmp: PathBuf,
    pub dest: PathBuf,
    force: bool,
}

impl Snapshot {
    /// The temporary directory a snapshot for `dest` is written in by
    /// this process (so that an interrupted run can remove it).
    pub fn tmp_path(dest: &Path) -> PathBuf {
        let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "snapshot".into());
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.join(format!(".{name}.tmp-{}", std::process::id()))
    }

    pub fn begin(dest: &Path, force: bool) -> Result<Snapshot, Error> {
        if dest.exists() && !force {
            return Err(Error::Config(format!("{}: output already exists (use --force to replace it)", dest.display())));
        }
        let tmp = Snapshot::tmp_path(dest);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Snapshot { tmp, dest: dest.to_path_buf(), force })
    }

    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let p = self.tmp.join(name);
        fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    }

    /// Moves the finished snapshot into place.
    pub fn commit(self) -> Result<PathBuf, Error> {
        if self.dest.exists() && self.force {
            let old = self.tmp.with_extension("old");
            fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
            fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        }
        Ok(self.dest.clone())
    }

    /// Removes the temporary directory after a failure.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_target_forms() {
        assert_eq!(split_target("/a/b?x=1&y"), ("/a/b", Some("x=1&y")));
        assert_eq!(split_target("http://h:8/p?q"), ("/p", Some("q")));
        assert_eq!(split_target("http://h"), ("/", None));
        assert_eq!(split_target("*"), ("*", None));
    }
}
