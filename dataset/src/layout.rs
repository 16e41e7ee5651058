//! How trawl's tables are stored in a dataset: one Delta Lake table per
//! trawl table (`flows/`, `api_calls/`, `parse_issues/`, `packets/`),
//! partitioned by `node` and `hour`, with the columns of
//! `trawl-schemas` in Delta's types.
//!
//! Delta Lake has no unsigned integers and stores timestamps in
//! microseconds, so the stored types are the nearest signed integer that
//! holds every value and `timestamp` (µs, UTC). `trawl-query` casts them
//! back to the snapshot types when it reads a dataset, so every query
//! surface sees the same schema either way; only sub-microsecond digits
//! of capture times are lost.

use std::sync::{Arc, OnceLock};

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use trawl_schemas::{ColumnType, Table};

/// The trawl tables a dataset holds, in the order each file's rows are
/// committed (the packet index first, calls last).
pub const TABLES: [&Table; 4] =
    [&trawl_schemas::PACKETS, &trawl_schemas::PARSE_ISSUES, &trawl_schemas::FLOWS, &trawl_schemas::API_CALLS];

/// Partition columns of every table.
pub const NODE: &str = "node";
pub const HOUR: &str = "hour";

/// Tag on each data file: the node's file sequence number it was
/// committed with (readers hide the files of a commit until every table
/// has it).
pub const SEQ_TAG: &str = "trawl_seq";

/// Bits of an id (`api_calls.id`, `flow_id`, `ordinal`) below the node
/// number: ids are `node_number << 40 | count`, unique across the dataset.
pub const NODE_SHIFT: u32 = 40;

/// The stored (Delta) type of a column type.
pub fn stored_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::UInt8 => DataType::Int16,
        ColumnType::UInt16 => DataType::Int32,
        ColumnType::UInt32 | ColumnType::UInt64 => DataType::Int64,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        // Delta's names for the parts of maps and lists.
        ColumnType::StringMap => DataType::Map(
            Arc::new(Field::new(
                "key_value",
                DataType::Struct(
                    vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)].into(),
                ),
                false,
            )),
            false,
        ),
        ColumnType::StringList => DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        other => other.arrow_type(),
    }
}

/// The schema of a table's data files (without the partition columns),
/// built once per table: every batch written is checked against it.
pub fn file_schema(table: &Table) -> SchemaRef {
    static SCHEMAS: OnceLock<Vec<(&'static str, SchemaRef)>> = OnceLock::new();
    let build = |t: &Table| -> SchemaRef {
        Arc::new(Schema::new(
            t.columns.iter().map(|c| Field::new(c.name, stored_type(c.ty), c.nullable)).collect::<Vec<_>>(),
        ))
    };
    let schemas = SCHEMAS.get_or_init(|| TABLES.iter().map(|t| (t.name, build(t))).collect());
    match schemas.iter().find(|(name, _)| *name == table.name) {
        Some((_, schema)) => schema.clone(),
        None => build(table),
    }
}

/// The Delta table's schema: the data columns, then `node` and `hour`.
pub fn table_schema(table: &Table) -> Schema {
    let mut fields: Vec<Field> = file_schema(table).fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(NODE, DataType::Utf8, true));
    fields.push(Field::new(HOUR, DataType::Utf8, true));
    Schema::new(fields)
}

/// A batch of `table` (snapshot types) in the stored types. `UInt64`
/// columns are taken as `Int64` without a copy (trawl's ids, counts and
/// offsets stay below 2^63; reading casts them back); the others are
/// converted.
pub fn to_stored(table: &Table, batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let schema = file_schema(table);
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| stored_column(c, f.data_type()))
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema, cols)
}

/// One column in its stored type (`UInt64` as `Int64` without a copy).
fn stored_column(c: &ArrayRef, ty: &DataType) -> Result<ArrayRef, arrow_schema::ArrowError> {
    if c.data_type() == ty {
        return Ok(c.clone());
    }
    match c.as_any().downcast_ref::<arrow_array::UInt64Array>() {
        Some(u) if ty == &DataType::Int64 => Ok(Arc::new(arrow_array::Int64Array::new(
            arrow_buffer::ScalarBuffer::new(u.values().inner().clone(), 0, u.len()),
            u.nulls().cloned(),
        ))),
        _ => arrow_cast::cast(c, ty),
    }
}

/// The `hour` partition of a capture time: `2026-12-07T14` (UTC).
pub fn hour_of(ns: i64) -> String {
    let s = trawl_schemas::time::rfc3339(ns);
    s.get(..13).unwrap_or(&s).to_string()
}

/// Cuts a batch (snapshot types) into runs of rows of one hour, by its
/// `timestamp` column; rows without a time go with `fallback_ns`.
pub fn split_by_hour(batch: &RecordBatch, fallback_ns: i64) -> Vec<(String, RecordBatch)> {
    let Some(ts) =
        batch.column_by_name("timestamp").and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
    else {
        return vec![(hour_of(fallback_ns), batch.clone())];
    };
    const HOUR_NS: i64 = 3_600_000_000_000;
    let hour_at = |i: usize| if ts.is_valid(i) { ts.value(i) } else { fallback_ns }.div_euclid(HOUR_NS);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=batch.num_rows() {
        if i == batch.num_rows() || hour_at(i) != hour_at(start) {
            let run = if start == 0 && i == batch.num_rows() { batch.clone() } else { batch.slice(start, i - start) };
            out.push((hour_of(hour_at(start) * HOUR_NS), run));
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_utc_and_sort_as_text() {
        assert_eq!(hour_of(0), "1970-01-01T00");
        assert_eq!(hour_of(1_765_000_000_000_000_000), "2025-12-06T05");
        assert!(hour_of(9 * 3_600_000_000_000) < hour_of(10 * 3_600_000_000_000));
    }

    #[test]
    fn stored_schema_has_no_unsigned_types() {
        for t in TABLES {
            let s = table_schema(t);
            for f in s.fields() {
                assert!(!f.data_type().is_unsigned_integer(), "{}.{}", t.name, f.name());
                assert!(!matches!(f.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _)), "{}", f.name());
            }
            assert_eq!(s.fields().len(), t.columns.len() + 2);
        }
    }

    #[test]
    fn stored_u64_keeps_its_values_and_nulls() {
        let ids: ArrayRef = Arc::new(arrow_array::UInt64Array::from(vec![Some((1u64 << 40) | 7), None, Some(0)]));
        let s = stored_column(&ids, &DataType::Int64).expect("stored");
        let got = s.as_any().downcast_ref::<arrow_array::Int64Array>().cloned();
        assert_eq!(got, Some(arrow_array::Int64Array::from(vec![Some((1i64 << 40) | 7), None, Some(0)])));
        let sliced = stored_column(&ids.slice(1, 2), &DataType::Int64).expect("stored");
        assert_eq!(sliced.as_any().downcast_ref::<arrow_array::Int64Array>().map(|a| a.value(1)), Some(0));
    }

    #[test]
    fn split_by_hour_cuts_runs() {
        let h = 3_600_000_000_000i64;
        let ts =
            TimestampNanosecondArray::from(vec![Some(h), Some(h + 5), None, Some(2 * h), Some(h)]).with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![Field::new("timestamp", ts.data_type().clone(), true)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(ts)]).expect("batch");
        let parts: Vec<(String, usize)> =
            split_by_hour(&b, h + 1).into_iter().map(|(h, b)| (h, b.num_rows())).collect();
        assert_eq!(parts, vec![("1970-01-01T01".into(), 3), ("1970-01-01T02".into(), 1), ("1970-01-01T01".into(), 1)]);
    }
}
