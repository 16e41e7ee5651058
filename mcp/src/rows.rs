//! Arrow rows as JSON for a model's context.
//!
//! Every column of a table becomes a field, so columns later issues add
//! (Kubernetes names, TCP metrics, protocol fields) reach the agent
//! without changes here. Timestamps become RFC 3339 UTC text; stored
//! bodies become UTF-8 text (invalid bytes replaced) cut to a preview
//! length; maps become objects and lists arrays.

use serde_json::{Map, Value, json};
use trawl_query::datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use trawl_query::datafusion::arrow::datatypes::*;
use trawl_query::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// A row: column name to value.
pub type Row = Map<String, Value>;

/// Every row of `batches`; binary cells are cut to `binary_max` bytes
/// (and marked with a trailing `…`).
pub fn rows(batches: &[RecordBatch], binary_max: usize) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut row = Map::with_capacity(b.num_columns());
            for (f, c) in schema.fields().iter().zip(b.columns()) {
                row.insert(f.name().clone(), cell(c, i, binary_max));
            }
            out.push(row);
        }
    }
    out
}

/// A binary cell's bytes, whichever binary layout the engine chose
/// (`Binary`, `LargeBinary` or `BinaryView`); None when null or not binary.
pub fn bytes(a: &ArrayRef, i: usize) -> Option<&[u8]> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Binary => Some(a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value(i)),
        DataType::BinaryView => Some(a.as_binary_view().value(i)),
        _ => None,
    }
}

fn text_of_bytes(b: &[u8], max: usize) -> Value {
    let cut = &b[..b.len().min(max)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < b.len() {
        s.push('…');
    }
    Value::String(s)
}

/// One cell as JSON.
pub fn cell(a: &ArrayRef, i: usize, binary_max: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int8 => json!(a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => json!(a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => json!(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => json!(a.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => json!(a.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => json!(a.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => json!(a.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => float(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => json!(a.as_string::<i64>().value(i)),
        DataType::Utf8View => json!(a.as_string_view().value(i)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            text_of_bytes(bytes(a, i).unwrap_or_default(), binary_max)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            json!(trawl_schemas::time::rfc3339(a.as_primitive::<TimestampNanosecondType>().value(i)))
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            Value::Array((0..l.len()).map(|j| cell(&l, j, binary_max)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>().value(i);
            Value::Array((0..l.len()).map(|j| cell(&l, j, binary_max)).collect())
        }
        DataType::Map(_, _) => {
            let m = a.as_map();
            let entries = m.value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut o = Map::new();
            for j in 0..entries.len() {
                let k = match cell(keys, j, binary_max) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                o.insert(k, cell(values, j, binary_max));
            }
            Value::Object(o)
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            Value::Object(
                fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), cell(c, i, binary_max))).collect(),
            )
        }
        _ => match ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()) {
            Ok(f) => Value::String(f.value(i).to_string()),
            Err(_) => Value::Null,
        },
    }
}

fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Nanoseconds since the epoch as Unix milliseconds (floored).
pub fn unix_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Time of an RFC 3339 field of a row, as Unix milliseconds.
pub fn ms_of(row: &Row, field: &str) -> Value {
    row.get(field)
        .and_then(Value::as_str)
        .and_then(trawl_schemas::time::parse_rfc3339)
        .map_or(Value::Null, |ns| json!(unix_ms(ns)))
}

/// Kubeshark's short endpoint keys for the Kubernetes columns
/// (`{ip, port, pod, ns, svc, node}`), and the columns compact rows leave
/// out (the full row has them).
const ENDPOINT_KEYS: &[(&str, Option<&str>)] = &[
    ("pod_name", Some("pod")),
    ("namespace", Some("ns")),
    ("service_name", Some("svc")),
    ("node_name", Some("node")),
    ("pod_namespace", None),
    ("service_namespace", None),
    ("labels", None),
    ("annotations", None),
    ("resolution", None),
    ("name", None),
];

/// Moves the `{prefix}_*` fields of a row into one object (`src_ip`,
/// `src_port`, `src_pod_name` → `src: {ip, port, pod}`), with Kubeshark's
/// short keys; null fields are left out.
pub fn endpoint(row: &mut Row, prefix: &str) -> Value {
    let p = format!("{prefix}_");
    let keys: Vec<String> = row.keys().filter(|k| k.starts_with(&p)).cloned().collect();
    let mut o = Map::new();
    for k in keys {
        if let Some(v) = row.remove(&k)
            && !v.is_null()
        {
            let name = &k[p.len()..];
            match ENDPOINT_KEYS.iter().find(|(c, _)| *c == name) {
                Some((_, Some(short))) => o.insert(short.to_string(), v),
                Some((_, None)) => None,
                None => o.insert(name.to_string(), v),
            };
        }
    }
    Value::Object(o)
}

/// The Kubernetes keys of an endpoint object that a page's legend carries.
const NAME_KEYS: &[&str] = &["pod", "ns", "svc", "node", "workload"];

/// Moves the Kubernetes names out of a page's endpoint objects (`sides`:
/// `src`/`dst`, `client`/`server`) into one legend, so that a pod seen on
/// forty rows is named once: each endpoint keeps its `ip` and `port` and
/// gets `names: "k1"`, and the legend maps `k1` to `{pod, ns, svc, node,
/// workload}`. None when no row has names.
pub fn legend(rows: &mut [Value], sides: &[&str]) -> Option<Value> {
    let mut ids: Vec<(Map<String, Value>, String)> = Vec::new();
    for row in rows.iter_mut() {
        for side in sides {
            let Some(end) = row.get_mut(*side).and_then(Value::as_object_mut) else { continue };
            let names: Map<String, Value> =
                NAME_KEYS.iter().filter_map(|k| end.remove(*k).map(|v| (k.to_string(), v))).collect();
            if names.is_empty() {
                continue;
            }
            let id = match ids.iter().find(|(n, _)| *n == names) {
                Some((_, id)) => id.clone(),
                None => {
                    let id = format!("k{}", ids.len() + 1);
                    ids.push((names, id.clone()));
                    id
                }
            };
            end.insert("names".into(), json!(id));
        }
    }
    (!ids.is_empty()).then(|| Value::Object(ids.into_iter().map(|(n, id)| (id, Value::Object(n))).collect()))
}

/// Sets `id` to the reference tools take back, from the row's `snapshot`
/// and `number_column`: `snapshot/NUMBER` for a call (`id`), and
/// `snapshot/flow-NUMBER` for a flow (`flow_id`), so that one is never
/// taken for the other.
pub fn set_ref_id(row: &mut Row, number_column: &str) {
    let snap = row.get("snapshot").and_then(Value::as_str).unwrap_or_default().to_string();
    let prefix = if number_column == "flow_id" { FLOW_REF } else { "" };
    if let Some(n) = row.get(number_column).cloned() {
        row.insert("id".into(), json!(format!("{snap}/{prefix}{n}")));
    }
}

/// What starts the number of a flow's reference (`snapshot/flow-17`).
pub const FLOW_REF: &str = "flow-";

/// Refuses a flow reference given where a call id is expected, saying
/// where call ids come from and how to list that connection's calls.
pub fn refuse_flow_id(param: &str, given: &str) -> crate::error::ToolResult<()> {
    let last = given.rsplit_once('/').map_or(given, |(_, n)| n);
    let Some(n) = last.strip_prefix(FLOW_REF) else { return Ok(()) };
    Err(crate::error::ToolError::new(format!(
        "{param}: `{given}` is a flow id (from list_l4_flows), not a call id; call ids come from list_api_calls, and the calls of that connection are list_api_calls with kfl `flow_id == {n}`"
    )))
}

/// A compact row's times: `ts` (Unix ms) and `time` (RFC 3339), from the
/// full row's `timestamp`.
pub fn move_times(from: &mut Row, to: &mut Row) {
    to.insert("ts".into(), ms_of(from, "timestamp"));
    to.insert("time".into(), from.remove("timestamp").unwrap_or(Value::Null));
}

/// Drops null fields (compact rows leave out what is unknown).
pub fn drop_nulls(row: &mut Row) {
    row.retain(|_, v| !v.is_null());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use trawl_query::datafusion::arrow::array::{BinaryArray, StringArray, TimestampNanosecondArray, UInt16Array};

    #[test]
    fn cells_and_endpoints() {
        let batch = RecordBatch::try_from_iter(vec![
            ("src_ip", Arc::new(StringArray::from(vec![Some("10.0.0.1")])) as ArrayRef),
            ("src_port", Arc::new(UInt16Array::from(vec![Some(443)])) as ArrayRef),
            ("src_pod_name", Arc::new(StringArray::from(vec![Some("checkout-1")])) as ArrayRef),
            ("src_namespace", Arc::new(StringArray::from(vec![Some("shop")])) as ArrayRef),
            ("src_service_name", Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef),
            ("src_resolution", Arc::new(StringArray::from(vec![Some("pod")])) as ArrayRef),
            ("body", Arc::new(BinaryArray::from(vec![Some(&b"hello \xff world"[..])])) as ArrayRef),
            (
                "timestamp",
                Arc::new(TimestampNanosecondArray::from(vec![Some(1_763_777_640_123_000_000)]).with_timezone("UTC"))
                    as ArrayRef,
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let mut r = rows(&[batch], 7).remove(0);
        assert_eq!(r["body"], json!("hello �…"));
        assert_eq!(r["timestamp"], json!("2025-11-22T02:14:00.123000000Z"));
        assert_eq!(ms_of(&r, "timestamp"), json!(1_763_777_640_123_i64));
        assert_eq!(endpoint(&mut r, "src"), json!({"ip": "10.0.0.1", "port": 443, "pod": "checkout-1", "ns": "shop"}));
        assert!(!r.contains_key("src_ip"));
    }
}
