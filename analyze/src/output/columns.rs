//! Arrow column builders laid out from a table definition in
//! `trawl-schemas`, filled row by row in schema order. A table's
//! protocol column groups (`trawl_schemas::CALL_GROUPS`) are filled by
//! their own writers on their protocol's rows only; on the other rows
//! their columns are owed a null, and owed nulls are appended as one run
//! when the group is next filled or the batch ends.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use trawl_proto::exchange::Message;
use trawl_schemas::{ColumnGroup, ColumnType, Table};

use crate::Error;

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
        Col::with_capacity(ty, 0, 0)
    }

    /// An empty builder with room for `rows` values (and `bytes` of text
    /// or binary data) before it first grows. Maps and lists start empty.
    fn with_capacity(ty: ColumnType, rows: usize, bytes: usize) -> Col {
        match ty {
            ColumnType::UInt8 => Col::U8(UInt8Builder::with_capacity(rows)),
            ColumnType::UInt16 => Col::U16(UInt16Builder::with_capacity(rows)),
            ColumnType::UInt32 => Col::U32(UInt32Builder::with_capacity(rows)),
            ColumnType::UInt64 => Col::U64(UInt64Builder::with_capacity(rows)),
            ColumnType::Int32 => Col::I32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => Col::I64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Col::F64(Float64Builder::with_capacity(rows)),
            ColumnType::Bool => Col::Bool(BooleanBuilder::with_capacity(rows)),
            ColumnType::Utf8 => Col::Str(StringBuilder::with_capacity(rows, bytes)),
            ColumnType::Binary => Col::Bin(BinaryBuilder::with_capacity(rows, bytes)),
            ColumnType::Timestamp => Col::Ts(TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC")),
            ColumnType::StringMap => Col::Map(MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())),
            ColumnType::StringList => Col::List(ListBuilder::new(StringBuilder::new())),
        }
    }

    /// Bytes of text or binary data appended so far (0 for other columns).
    fn data_bytes(&self) -> usize {
        match self {
            Col::Str(b) => b.values_slice().len(),
            Col::Bin(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    /// `n` rows without a value: nulls, or empty maps (map columns are
    /// never null).
    fn append_empty(&mut self, n: usize) {
        match self {
            Col::U8(b) => b.append_nulls(n),
            Col::U16(b) => b.append_nulls(n),
            Col::U32(b) => b.append_nulls(n),
            Col::U64(b) => b.append_nulls(n),
            Col::I32(b) => b.append_nulls(n),
            Col::I64(b) => b.append_nulls(n),
            Col::F64(b) => b.append_nulls(n),
            Col::Bool(b) => b.append_nulls(n),
            Col::Str(b) => b.append_nulls(n),
            Col::Bin(b) => b.append_nulls(n),
            Col::Ts(b) => b.append_nulls(n),
            Col::Map(b) => {
                for _ in 0..n {
                    // An empty entry list: keys and values stay equal.
                    let _ = b.append(true);
                }
            }
            Col::List(b) => b.append_nulls(n),
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

/// The most text a column is sized for ahead of a batch: the traffic
/// sets how long a text value is, so one batch's long values must not
/// make the next batch reserve them for every row. Past it, a column
/// grows as it fills.
const PRESIZE_TEXT_BYTES: usize = 1 << 20;

/// Writes `octets` as `a.b.c.d` into `out`, returning its length.
fn dotted_quad(octets: [u8; 4], out: &mut [u8; 15]) -> usize {
    let mut n = 0;
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            out[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            out[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        out[n] = b'0' + o % 10;
        n += 1;
    }
    n
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
    groups: Vec<Group>,
    /// Per column, the text bytes a row held in the last batch: what
    /// [`TableBuilder::presize`] reserves.
    bytes_per_row: Vec<usize>,
    /// Per column, nulls not appended yet ([`TableBuilder::null`]).
    nulls: Vec<usize>,
    bug: Option<String>,
}

/// A column group of the table: its columns, and the rows it is owed
/// (rows of other protocols since it was last filled).
struct Group {
    name: &'static str,
    start: usize,
    end: usize,
    owed: usize,
}

impl TableBuilder {
    pub fn new(table: &'static Table) -> TableBuilder {
        TableBuilder {
            table,
            schema: Arc::new(table.arrow_schema()),
            cols: table.columns.iter().map(|c| Col::new(c.ty)).collect(),
            cursor: 0,
            rows: 0,
            groups: Vec::new(),
            bytes_per_row: vec![0; table.columns.len()],
            nulls: vec![0; table.columns.len()],
            bug: None,
        }
    }

    /// A builder whose `groups` are filled by their own writers
    /// ([`TableBuilder::fill_group`]).
    pub fn with_groups(table: &'static Table, groups: &[ColumnGroup]) -> TableBuilder {
        let mut b = TableBuilder::new(table);
        for g in groups {
            let start = g.columns.first().and_then(|c| table.index_of(c.name)).unwrap_or(0);
            b.groups.push(Group { name: g.name, start, end: start + g.columns.len(), owed: 0 });
        }
        b
    }

    /// Fills the columns of group `name` (None: of no group) with
    /// `write`, which must push exactly them; every other group is owed
    /// this row. The cursor ends after the last group.
    pub(super) fn fill_group(&mut self, name: Option<&str>, write: impl FnOnce(&mut TableBuilder)) {
        let mut filled = None;
        for (i, g) in self.groups.iter_mut().enumerate() {
            if Some(g.name) == name {
                filled = Some(i);
            } else {
                g.owed += 1;
            }
        }
        let after = self.groups.last().map_or(self.cursor, |g| g.end);
        if let Some(i) = filled {
            self.pay_owed(i);
            let (start, end) = (self.groups[i].start, self.groups[i].end);
            self.cursor = start;
            write(self);
            if self.cursor != end && self.bug.is_none() {
                self.bug = Some(format!(
                    "{}: the {} writer pushed {} of its {} columns",
                    self.table.name,
                    self.groups[i].name,
                    self.cursor - start,
                    end - start
                ));
            }
        } else if name.is_some() && self.bug.is_none() {
            self.bug = Some(format!("{}: no column group {name:?}", self.table.name));
        }
        self.cursor = after;
    }

    /// What went wrong building, if anything (a bug in trawl), for tests.
    #[cfg(test)]
    pub(super) fn problem(&self) -> Option<&str> {
        self.bug.as_deref()
    }

    /// The groups filled since the builder began (owed nothing while
    /// others are owed a row), for tests.
    #[cfg(test)]
    pub(super) fn filled_groups(&self) -> Vec<&'static str> {
        let most = self.groups.iter().map(|g| g.owed).max().unwrap_or(0);
        self.groups.iter().filter(|g| g.owed < most).map(|g| g.name).collect()
    }

    /// Appends the rows group `i` is owed, as one run per column.
    fn pay_owed(&mut self, i: usize) {
        let g = &mut self.groups[i];
        if g.owed > 0 {
            for c in &mut self.cols[g.start..g.end] {
                c.append_empty(g.owed);
            }
            g.owed = 0;
        }
    }

    /// Rows appended since the last [`TableBuilder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Sizes every column of an empty builder for the `rows` rows about
    /// to be appended (text columns by the last batch's bytes per row),
    /// so that a batch is not regrown from nothing and copied at every
    /// doubling. Binary columns are sized by [`TableBuilder::reserve_binary`].
    pub(super) fn presize(&mut self, rows: usize) {
        if self.rows != 0 || rows == 0 {
            return;
        }
        for ((col, c), per_row) in self.cols.iter_mut().zip(self.table.columns).zip(&self.bytes_per_row) {
            if c.ty != ColumnType::Binary {
                *col = Col::with_capacity(c.ty, rows, (per_row * rows).min(PRESIZE_TEXT_BYTES));
            }
        }
    }

    /// Sizes a binary column for `items` values of `bytes` in all, so
    /// that it is not regrown (and recopied) while a batch is built.
    pub(super) fn reserve_binary(&mut self, name: &str, items: usize, bytes: usize) {
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
        self.append_deferred_nulls();
        for i in 0..self.groups.len() {
            self.pay_owed(i);
        }
        if self.rows > 0 {
            for (per_row, col) in self.bytes_per_row.iter_mut().zip(&self.cols) {
                *per_row = col.data_bytes().div_ceil(self.rows);
            }
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::Internal(format!("{}: {e}", self.table.name)))
    }
}

impl TableBuilder {
    /// The column at the cursor (the cursor moves on), its deferred
    /// nulls appended first.
    fn next_col(&mut self) -> Option<&mut Col> {
        let i = self.cursor;
        self.cursor += 1;
        let col = self.cols.get_mut(i)?;
        if let Some(n) = self.nulls.get_mut(i)
            && *n > 0
        {
            col.append_empty(*n);
            *n = 0;
        }
        Some(col)
    }

    /// A null in the column at the cursor, which must be of type `ty`:
    /// counted, and appended with the column's next value or at the end
    /// of the batch, as one run (a flood's rows are mostly nulls, and
    /// a builder appends a run of them for the cost of one).
    fn null(&mut self, ty: ColumnType, what: &str) {
        let i = self.cursor;
        self.cursor += 1;
        match (self.table.columns.get(i), self.nulls.get_mut(i)) {
            (Some(c), Some(n)) if c.ty == ty => *n += 1,
            _ => self.mismatch(what),
        }
    }

    /// Appends every column's deferred nulls.
    fn append_deferred_nulls(&mut self) {
        for (col, n) in self.cols.iter_mut().zip(&mut self.nulls) {
            if *n > 0 {
                col.append_empty(*n);
                *n = 0;
            }
        }
    }

    fn mismatch(&mut self, what: &str) {
        if self.bug.is_none() {
            let col = self.table.columns.get(self.cursor.wrapping_sub(1)).map_or("?", |c| c.name);
            self.bug = Some(format!("{}.{col}: pushed a {what}", self.table.name));
        }
    }

    pub(super) fn u8(&mut self, v: u8) {
        if let Some(Col::U8(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u8") }
    }
    pub(super) fn u16(&mut self, v: u16) {
        if let Some(Col::U16(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u16") }
    }
    pub(super) fn opt_u16(&mut self, v: Option<u16>) {
        match v {
            Some(v) => self.u16(v),
            None => self.null(ColumnType::UInt16, "u16"),
        }
    }
    pub(super) fn u32(&mut self, v: u32) {
        if let Some(Col::U32(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u32") }
    }
    pub(super) fn u64(&mut self, v: u64) {
        if let Some(Col::U64(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u64") }
    }
    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.u64(v),
            None => self.null(ColumnType::UInt64, "u64"),
        }
    }
    pub(super) fn i32(&mut self, v: i32) {
        if let Some(Col::I32(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("i32") }
    }
    pub(super) fn opt_i32(&mut self, v: Option<i32>) {
        match v {
            Some(v) => self.i32(v),
            None => self.null(ColumnType::Int32, "i32"),
        }
    }
    pub(super) fn i64(&mut self, v: i64) {
        if let Some(Col::I64(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("i64") }
    }
    pub(super) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.i64(v),
            None => self.null(ColumnType::Int64, "i64"),
        }
    }
    pub(super) fn opt_f64(&mut self, v: Option<f64>) {
        let Some(v) = v else { return self.null(ColumnType::Float64, "f64") };
        if let Some(Col::F64(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("f64") }
    }
    pub(super) fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => self.u32(v),
            None => self.null(ColumnType::UInt32, "u32"),
        }
    }
    pub(super) fn opt_u8(&mut self, v: Option<u8>) {
        let Some(v) = v else { return self.null(ColumnType::UInt8, "u8") };
        if let Some(Col::U8(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("u8") }
    }
    pub(super) fn opt_bool(&mut self, v: Option<bool>) {
        match v {
            Some(v) => self.bool(v),
            None => self.null(ColumnType::Bool, "bool"),
        }
    }
    pub(super) fn bool(&mut self, v: bool) {
        if let Some(Col::Bool(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("bool") }
    }
    pub(super) fn str(&mut self, v: &str) {
        if let Some(Col::Str(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("string") }
    }
    pub(super) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.str(v),
            None => self.null(ColumnType::Utf8, "string"),
        }
    }
    /// An address in its text form, formatted straight into the column.
    pub(super) fn ip(&mut self, v: &IpAddr) {
        if let Some(Col::Str(b)) = self.next_col() {
            match v {
                // Dotted quads by hand: a flood's rows are mostly addresses,
                // and `Display` pays for padding support on each.
                IpAddr::V4(a) => {
                    let mut buf = [0u8; 15];
                    let n = dotted_quad(a.octets(), &mut buf);
                    // Digits and dots only.
                    b.append_value(std::str::from_utf8(&buf[..n]).unwrap_or_default());
                }
                IpAddr::V6(_) => {
                    // Writing to a builder cannot fail.
                    let _ = write!(b, "{v}");
                    b.append_value("");
                }
            }
        } else {
            self.mismatch("string")
        }
    }
    pub(super) fn opt_bin(&mut self, v: Option<&[u8]>) {
        let Some(v) = v else { return self.null(ColumnType::Binary, "binary") };
        if let Some(Col::Bin(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("binary") }
    }
    pub(super) fn ts(&mut self, v: i64) {
        if let Some(Col::Ts(b)) = self.next_col() { b.append_value(v) } else { self.mismatch("timestamp") }
    }
    pub(super) fn opt_ts(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.ts(v),
            None => self.null(ColumnType::Timestamp, "timestamp"),
        }
    }
    pub(super) fn map<'a>(&mut self, entries: impl Iterator<Item = (&'a str, &'a str)>) {
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
    /// Written straight from the message's header buffer (no list of
    /// pairs, no joined copies).
    pub(super) fn headers(&mut self, m: Option<&Message>) {
        if let Some(Col::Map(b)) = self.next_col() {
            if let Some(m) = m {
                let h = &m.headers;
                for (i, (k, v)) in h.iter().enumerate() {
                    if h.iter().take(i).any(|(pk, _)| pk == k) {
                        continue;
                    }
                    b.keys().append_value(k);
                    let values = b.values();
                    let _ = values.write_str(v);
                    for (_, later) in h.iter().skip(i + 1).filter(|(nk, _)| *nk == k) {
                        let _ = values.write_str(", ");
                        let _ = values.write_str(later);
                    }
                    values.append_value("");
                }
            }
            if b.append(true).is_err() {
                self.mismatch("map with unequal keys and values");
            }
        } else {
            self.mismatch("map");
        }
    }

    pub(super) fn list(&mut self, items: &[&str]) {
        if let Some(Col::List(b)) = self.next_col() {
            for i in items {
                b.values().append_value(i);
            }
            b.append(true);
        } else {
            self.mismatch("list");
        }
    }

    pub(super) fn end_row(&mut self) -> Result<(), Error> {
        if self.cursor != self.cols.len() && self.bug.is_none() {
            self.bug =
                Some(format!("{}: a row pushed {} of {} columns", self.table.name, self.cursor, self.cols.len()));
        }
        if let Some(bug) = &self.bug {
            return Err(Error::Internal(bug.clone()));
        }
        self.cursor = 0;
        self.rows += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_read_as_display_writes_them() {
        for octets in [[0, 0, 0, 0], [255, 255, 255, 255], [10, 0, 9, 100], [1, 99, 199, 200], [127, 0, 0, 1]] {
            let mut buf = [0u8; 15];
            let n = dotted_quad(octets, &mut buf);
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), std::net::Ipv4Addr::from(octets).to_string());
        }
    }

    #[test]
    fn a_batch_is_sized_for_its_rows_before_they_are_appended() {
        let mut b = TableBuilder::new(&trawl_schemas::PARSE_ISSUES);
        let row = |b: &mut TableBuilder, i: u64| {
            b.opt_u64(Some(i));
            b.u32(0);
            b.opt_u64(None);
            b.opt_ts(None);
            b.str("tcp");
            b.str("gap");
            b.str("a detail of twenty-six by");
            b.end_row().unwrap();
        };
        for i in 0..10 {
            row(&mut b, i);
        }
        assert_eq!(b.finish().unwrap().num_rows(), 10);
        assert_eq!(b.bytes_per_row[6], 25);
        b.presize(100);
        assert!(matches!(&b.cols[0], Col::U64(c) if c.capacity() >= 100));
        assert!(matches!(&b.cols[6], Col::Str(c) if c.values_capacity() >= 2500));
        for i in 0..100 {
            row(&mut b, i);
        }
        // Sized right, nothing was regrown.
        assert!(matches!(&b.cols[6], Col::Str(c) if c.values_capacity() < 5000));
        // One long value does not size every row of the next batch.
        let _ = b.finish().unwrap();
        b.opt_u64(None);
        b.u32(0);
        b.opt_u64(None);
        b.opt_ts(None);
        b.str("tcp");
        b.str("gap");
        b.str(&"x".repeat(60_000));
        b.end_row().unwrap();
        let _ = b.finish().unwrap();
        b.presize(8192);
        assert!(matches!(&b.cols[6], Col::Str(c) if c.values_capacity() <= PRESIZE_TEXT_BYTES + 64));
        for i in 0..100 {
            row(&mut b, i);
        }
        // A builder part-filled is not resized (its rows would be lost).
        b.presize(1000);
        assert_eq!(b.finish().unwrap().num_rows(), 100);
    }

    #[test]
    fn deferred_nulls_land_in_their_rows() {
        use arrow_array::Array;
        let mut b = TableBuilder::new(&trawl_schemas::PARSE_ISSUES);
        let flow_ids = [None, None, Some(7), None, Some(9), None];
        for (i, id) in flow_ids.into_iter().enumerate() {
            b.opt_u64(id);
            b.u32(i as u32);
            b.opt_u64(None);
            b.opt_ts(if i == 5 { Some(42) } else { None });
            b.str("tcp");
            b.str("gap");
            b.str("d");
            b.end_row().unwrap();
        }
        let batch = b.finish().unwrap();
        let ids = batch.column(0).as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), flow_ids);
        assert_eq!(batch.column(2).null_count(), 6, "a column null in every row");
        let ts = batch.column(3).as_any().downcast_ref::<arrow_array::TimestampNanosecondArray>().unwrap();
        assert_eq!(ts.iter().collect::<Vec<_>>(), [None, None, None, None, None, Some(42)]);
        // A null of the wrong type is a bug, reported as one.
        b.opt_str(None);
        assert!(b.problem().unwrap().contains("flow_id: pushed a string"), "{:?}", b.problem());
    }
}
