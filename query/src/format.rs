//! Query results as text: an aligned table, JSON, NDJSON or CSV.
//!
//! Nested values (maps, lists) become JSON text in CSV and in the table;
//! stored bodies (bytes) become UTF-8 text with invalid bytes replaced.
//! Timestamps are RFC 3339 in UTC.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Ndjson,
    Csv,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(format!("unknown format {other:?}: expected table, json, ndjson or csv")),
        }
    }
}

/// Longest cell of the table format, in characters.
pub const TABLE_CELL_MAX: usize = 60;

fn io(e: std::io::Error) -> QueryError {
    QueryError::Io { path: "output".into(), source: e }
}

/// Writes `batches` to `out` in `format`.
pub fn write(batches: &[RecordBatch], schema: &Schema, format: Format, out: &mut dyn Write) -> Result<(), QueryError> {
    let batches: Vec<RecordBatch> = batches.iter().map(|b| flatten(b, format)).collect::<Result<_, _>>()?;
    match format {
        Format::Table => write_table(&batches, schema, out),
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            out.write_all(b"\n").map_err(io)
        }
        Format::Ndjson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            Ok(())
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                drop(w);
                return writeln!(out, "{}", names.join(",")).map_err(io);
            }
            for b in &batches {
                w.write(b)?;
            }
            Ok(())
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for QueryError {
    fn from(e: datafusion::arrow::error::ArrowError) -> QueryError {
        QueryError::DataFusion(e.into())
    }
}

/// Converts the columns a format cannot hold into strings.
fn flatten(b: &RecordBatch, format: Format) -> Result<RecordBatch, QueryError> {
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        let nested = matches!(
            c.data_type(),
            DataType::Map(..) | DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_)
        );
        let binary = matches!(c.data_type(), DataType::Binary | DataType::LargeBinary | DataType::BinaryView);
        if binary {
            let text = match c.data_type() {
                DataType::Binary => c
                    .as_binary::<i32>()
                    .iter()
                    .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
                    .collect::<StringArray>(),
                _ => datafusion::arrow::compute::cast(c, &DataType::Binary)?
                    .as_binary::<i32>()
                    .iter()
                    .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
                    .collect::<StringArray>(),
            };
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            cols.push(Arc::new(text));
        } else if nested && matches!(format, Format::Csv | Format::Table) {
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            cols.push(Arc::new(nested_as_json(c)?));
        } else {
            fields.push(f.as_ref().clone());
            cols.push(c.clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Each value of a nested column as JSON text.
fn nested_as_json(c: &ArrayRef) -> Result<StringArray, QueryError> {
    let schema = Arc::new(Schema::new(vec![Field::new("v", c.data_type().clone(), true)]));
    let batch = RecordBatch::try_new(schema, vec![c.clone()])?;
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(&batch)?;
        w.finish()?;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut out = Vec::with_capacity(c.len());
    for (i, line) in text.lines().enumerate() {
        if c.is_null(i) {
            out.push(None);
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| QueryError::Invalid(e.to_string()))?;
        out.push(v.get("v").map(|x| x.to_string()));
    }
    Ok(StringArray::from(out))
}

fn write_table(batches: &[RecordBatch], schema: &Schema, out: &mut dyn Write) -> Result<(), QueryError> {
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let opts = FormatOptions::default().with_null("").with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ"));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in batches {
        let fmts =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| clip(&f.value(r).to_string())).collect());
        }
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut text = line(&headers);
    text.push_str(&line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    for r in &rows {
        text.push_str(&line(r));
    }
    out.write_all(text.as_bytes()).map_err(io)
}

/// One line, at most [`TABLE_CELL_MAX`] characters.
fn clip(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= TABLE_CELL_MAX {
        return one_line;
    }
    let mut t: String = one_line.chars().take(TABLE_CELL_MAX - 1).collect();
    t.push('…');
    t
}
