//! A dataset (`trawl-dataset`: Delta Lake tables written by `trawl
//! index`) as DataFusion tables.
//!
//! Each trawl table is a [`DatasetTable`] over the data files the Delta
//! logs hold (as `trawl_dataset::read` lists them): its columns are the
//! stored (Delta) types plus the `node` partition. [`crate::Catalog`]
//! casts them back to the snapshot types, so every query reads a dataset
//! as it reads a snapshot. Files are pruned before a scan by the
//! capture-time range of their Delta statistics and by `node`, so a query
//! of the last minutes reads only the last files.
//!
//! A table's data files are read through the object store registered
//! under [`store_url`] of the dataset's location: the URL names the
//! location itself, so a process that did not open the dataset (a
//! cluster's scheduler or executor) finds the store with
//! [`DatasetStores`], and a table travels to it whole as
//! [`DatasetTable::encode`]'s bytes.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::object_store::ObjectStore;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;
use trawl_dataset::read::DataFile;

/// The scheme of the object-store URLs datasets are read through.
const STORE_SCHEME: &str = "trawl-dataset";

/// The object-store URL a dataset's files are read through:
/// `trawl-dataset://HEX/`, HEX being the location as `trawl index --to`
/// takes it (a local directory or `s3://bucket/prefix`), hex-encoded.
pub fn store_url(location: &str) -> String {
    let mut url = format!("{STORE_SCHEME}://");
    for b in location.bytes() {
        url.push_str(&format!("{b:02x}"));
    }
    url.push('/');
    url
}

/// The location a [`store_url`] names, if it is one.
fn location_of(url: &url::Url) -> Option<String> {
    if url.scheme() != STORE_SCHEME {
        return None;
    }
    let hex = url.host_str()?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        hex.chunks(2).map(|p| std::str::from_utf8(p).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// An object-store registry that opens a dataset's store the first time a
/// plan reads through its [`store_url`] (other URLs as DataFusion's
/// default registry does). A cluster's processes read datasets with it:
/// S3 is configured from the environment, as for `trawl index`.
#[derive(Debug, Default)]
pub struct DatasetStores {
    inner: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for DatasetStores {
    fn register_store(&self, url: &url::Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &url::Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &url::Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        let Some(location) = location_of(url) else { return self.inner.get_store(url) };
        let loc =
            trawl_dataset::Location::parse(&location, false).map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.inner.register_store(url, loc.store.clone());
        Ok(loc.store)
    }
}

/// One trawl table of a dataset.
#[derive(Debug)]
pub struct DatasetTable {
    table: &'static trawl_schemas::Table,
    /// The dataset's location (for [`store_url`]).
    location: String,
    files: Vec<DataFile>,
    file_schema: SchemaRef,
    schema: SchemaRef,
}

impl DatasetTable {
    /// `table`'s files of the dataset at `location` (as [`store_url`] takes it).
    pub fn new(table: &'static trawl_schemas::Table, location: &str, files: Vec<DataFile>) -> DatasetTable {
        let file_schema = trawl_dataset::layout::file_schema(table);
        let mut fields: Vec<Field> = file_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(trawl_dataset::layout::NODE, DataType::Utf8, false));
        DatasetTable {
            table,
            location: location.to_string(),
            files,
            file_schema,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// The table as bytes (JSON: table, location, files), for a plan sent
    /// to another process.
    pub fn encode(&self) -> Vec<u8> {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path, "size": f.size, "rows": f.rows, "node": f.node, "hour": f.hour,
                    "seq": f.seq, "min_ns": f.min_ns, "max_ns": f.max_ns,
                })
            })
            .collect();
        let v = serde_json::json!({ "table": self.table.name, "location": self.location, "files": files });
        v.to_string().into_bytes()
    }

    /// A table from [`DatasetTable::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<DatasetTable> {
        let bad = |what: &str| DataFusionError::Internal(format!("a dataset table's encoding: {what}"));
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let name = v["table"].as_str().ok_or_else(|| bad("no table name"))?;
        let table = trawl_schemas::TABLES
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| bad(&format!("{name} is not a trawl table")))?;
        let location = v["location"].as_str().ok_or_else(|| bad("no location"))?;
        let mut files = Vec::new();
        for f in v["files"].as_array().ok_or_else(|| bad("no files"))? {
            let text = |k: &str| f[k].as_str().map(str::to_string).ok_or_else(|| bad(&format!("a file without {k}")));
            files.push(DataFile {
                table: table.name,
                path: text("path")?,
                size: f["size"].as_u64().ok_or_else(|| bad("a file without size"))?,
                rows: f["rows"].as_u64(),
                node: text("node")?,
                hour: text("hour")?,
                seq: f["seq"].as_u64().and_then(|s| u32::try_from(s).ok()),
                min_ns: f["min_ns"].as_i64(),
                max_ns: f["max_ns"].as_i64(),
            });
        }
        Ok(DatasetTable::new(table, location, files))
    }
}

/// The capture-time range the filters allow, in ns (inclusive bounds
/// wide enough: pruning only ever keeps too much).
fn time_range(filters: &[Expr]) -> (Option<i64>, Option<i64>) {
    let (mut lo, mut hi) = (None::<i64>, None::<i64>);
    for f in filters {
        for (op, ns) in time_bounds(f) {
            match op {
                Operator::Gt | Operator::GtEq => lo = Some(lo.map_or(ns, |l| l.max(ns))),
                Operator::Lt | Operator::LtEq => hi = Some(hi.map_or(ns, |h| h.min(ns))),
                Operator::Eq => {
                    lo = Some(lo.map_or(ns, |l| l.max(ns)));
                    hi = Some(hi.map_or(ns, |h| h.min(ns)));
                }
                _ => {}
            }
        }
    }
    (lo, hi)
}

/// `timestamp OP literal` comparisons in a filter (through casts and ANDs).
fn time_bounds(e: &Expr) -> Vec<(Operator, i64)> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            let mut v = time_bounds(left);
            v.extend(time_bounds(right));
            v
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            match (column_name(left), literal_ns(right), column_name(right), literal_ns(left)) {
                (Some("timestamp"), Some(ns), _, _) => vec![(*op, ns)],
                (_, _, Some("timestamp"), Some(ns)) => op.swap().map(|o| vec![(o, ns)]).unwrap_or_default(),
                _ => Vec::new(),
            }
        }
        Expr::Between(b) if !b.negated && column_name(&b.expr) == Some("timestamp") => {
            let mut v = Vec::new();
            if let Some(l) = literal_ns(&b.low) {
                v.push((Operator::GtEq, l));
            }
            if let Some(h) = literal_ns(&b.high) {
                v.push((Operator::LtEq, h));
            }
            v
        }
        _ => Vec::new(),
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        Expr::TryCast(c) => column_name(&c.expr),
        _ => None,
    }
}

fn literal_ns(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(n), _) => Some(*n),
            ScalarValue::TimestampMicrosecond(Some(n), _) => n.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(n), _) => n.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(n), _) => n.checked_mul(1_000_000_000),
            _ => None,
        },
        Expr::Cast(c) => literal_ns(&c.expr),
        _ => None,
    }
}

/// `node = 'x'` (or `node IN (...)`) in the filters: the nodes allowed.
fn nodes_allowed(filters: &[Expr]) -> Option<Vec<String>> {
    for f in filters {
        match f {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                if let (Some("node"), Expr::Literal(ScalarValue::Utf8(Some(n)), _)) =
                    (column_name(left), right.as_ref())
                {
                    return Some(vec![n.clone()]);
                }
            }
            Expr::InList(l) if !l.negated && column_name(&l.expr) == Some("node") => {
                let names: Option<Vec<String>> = l
                    .list
                    .iter()
                    .map(|e| match e {
                        Expr::Literal(ScalarValue::Utf8(Some(n)), _) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                if names.is_some() {
                    return names;
                }
            }
            _ => {}
        }
    }
    None
}

#[async_trait]
impl TableProvider for DatasetTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used to choose files only; DataFusion still applies every filter.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = time_range(filters);
        let nodes = nodes_allowed(filters);
        let keep = |f: &&DataFile| {
            let after = match (lo, f.max_ns) {
                (Some(l), Some(m)) => m >= l,
                _ => true,
            };
            let before = match (hi, f.min_ns) {
                (Some(h), Some(m)) => m <= h,
                _ => true,
            };
            after && before && nodes.as_ref().is_none_or(|n| n.contains(&f.node))
        };
        let kept: Vec<&DataFile> = self.files.iter().filter(keep).collect();
        let parts = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); parts.min(kept.len().max(1))];
        let n = groups.len();
        for (i, f) in kept.iter().enumerate() {
            let mut pf = PartitionedFile::new(f.path.clone(), f.size);
            pf.partition_values = vec![ScalarValue::Utf8(Some(f.node.clone()))];
            groups[i % n].push(pf);
        }
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(vec![Arc::new(Field::new(trawl_dataset::layout::NODE, DataType::Utf8, false))])
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(store_url(&self.location))?, source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())))
    }

    #[test]
    fn time_range_reads_comparisons_through_casts() {
        let f = vec![col("timestamp").gt(ts(100)), ts(500).gt_eq(col("timestamp")), col("status_code").gt(lit(499))];
        assert_eq!(time_range(&f), (Some(100), Some(500)));
        let us = lit(ScalarValue::TimestampMicrosecond(Some(7), None));
        assert_eq!(time_range(&[col("timestamp").lt(us)]), (None, Some(7000)));
        assert_eq!(time_range(&[col("end_timestamp").gt(ts(1))]), (None, None));
    }

    #[test]
    fn a_store_url_names_its_location() {
        for loc in ["/var/lib/trawl/dataset", "s3://bucket/some prefix/ü"] {
            let url = url::Url::parse(&store_url(loc)).unwrap();
            assert_eq!(location_of(&url).as_deref(), Some(loc));
            assert_eq!(ObjectStoreUrl::parse(store_url(loc)).unwrap().as_str(), store_url(loc));
        }
        assert_eq!(location_of(&url::Url::parse("file:///tmp/").unwrap()), None);
        assert_eq!(location_of(&url::Url::parse("trawl-dataset://7/").unwrap()), None);
    }

    #[test]
    fn a_table_decodes_from_its_encoding() {
        let file = DataFile {
            table: "api_calls",
            path: "api_calls/node=node-017/hour=2026-12-07T06/part-00003-6a1f0c2e-9b7d-4c1e-8f3a-2d5b7e9c1a40.parquet"
                .into(),
            size: 4096,
            rows: Some(12),
            node: "a".into(),
            hour: "2026-12-07T06".into(),
            seq: Some(3),
            min_ns: Some(1_000_000),
            max_ns: None,
        };
        let t = DatasetTable::new(&trawl_schemas::API_CALLS, "s3://b/p", vec![file.clone()]);
        let back = DatasetTable::decode(&t.encode()).unwrap();
        assert_eq!(back.files, vec![file]);
        assert_eq!(back.location, "s3://b/p");
        assert_eq!(back.schema, t.schema);
        assert!(DatasetTable::decode(br#"{"table":"nope"}"#).is_err());
        // What a file adds to a plan sent to a cluster (docs/scale.md).
        let one = t.encode().len();
        let two =
            DatasetTable::new(&trawl_schemas::API_CALLS, "s3://b/p", vec![back.files[0].clone(); 2]).encode().len();
        assert!((200..260).contains(&(two - one)), "{} bytes per file", two - one);
    }

    #[test]
    fn nodes_allowed_reads_eq_and_in() {
        assert_eq!(nodes_allowed(&[col("node").eq(lit("a"))]), Some(vec!["a".to_string()]));
        assert_eq!(nodes_allowed(&[col("node").in_list(vec![lit("a"), lit("b")], false)]).map(|v| v.len()), Some(2));
        assert_eq!(nodes_allowed(&[col("node").not_eq(lit("a"))]), None);
    }
}
