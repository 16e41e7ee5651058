//! The packet-index rows of chosen flows, time window and nodes, in
//! capture order, as the dataset export takes them
//! (`trawl_dataset::export::PacketRef`).

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimestampNanosecondType, UInt32Type, UInt64Type};
use datafusion::logical_expr::{Expr, SortExpr, col, lit};
use datafusion::scalar::ScalarValue;

use trawl_dataset::export::PacketRef;
use trawl_snapshot::export::Sel;

use crate::catalog::Catalog;
use crate::error::QueryError;

fn ts(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())))
}

impl Catalog {
    /// The packet rows of `flows` (all when `None`) in `window` (start
    /// inclusive, end exclusive) on `nodes` (all when empty), in capture
    /// order. With flows, the scan is narrowed to their time range first,
    /// so a dataset reads only the files that overlap it.
    pub async fn packet_rows(
        &self,
        flows: Option<&HashSet<u64>>,
        window: Option<(i64, i64)>,
        nodes: &[String],
    ) -> Result<Vec<PacketRef>, QueryError> {
        let ctx = self.context();
        let mut df = ctx.table("packets").await?;
        if let Some(ids) = flows {
            let ids: Vec<Expr> = ids.iter().map(|i| lit(*i)).collect();
            let range = ctx
                .table("flows")
                .await?
                .filter(col("flow_id").in_list(ids.clone(), false))?
                .aggregate(
                    vec![],
                    vec![
                        datafusion::functions_aggregate::expr_fn::min(col("timestamp")),
                        datafusion::functions_aggregate::expr_fn::max(col("end_timestamp")),
                    ],
                )?
                .collect()
                .await?;
            let bound = |c: usize| {
                range
                    .first()
                    .and_then(|b| b.column(c).as_primitive_opt::<TimestampNanosecondType>().cloned())
                    .filter(|a| a.is_valid(0))
                    .map(|a| a.value(0))
            };
            if let (Some(lo), Some(hi)) = (bound(0), bound(1)) {
                df = df.filter(col("timestamp").between(ts(lo), ts(hi)))?;
            }
            df = df.filter(col("flow_id").in_list(ids, false))?;
        }
        if let Some((start, end)) = window {
            df = df.filter(col("timestamp").gt_eq(ts(start)).and(col("timestamp").lt(ts(end))))?;
        }
        if !nodes.is_empty() {
            df = df.filter(col("snapshot").in_list(nodes.iter().map(|n| lit(n.clone())).collect(), false))?;
        }
        let cols =
            ["snapshot", "timestamp", "file_index", "offset", "caplen", "wire_len", "link_type", "flow_id", "datagram"];
        let df = df.select(cols.iter().map(|c| col(format!("\"{c}\""))).collect::<Vec<_>>())?.sort(vec![
            SortExpr::new(col("timestamp"), true, false),
            SortExpr::new(col("snapshot"), true, false),
            SortExpr::new(col("\"offset\""), true, false),
        ])?;
        let mut out = Vec::new();
        for b in df.collect().await? {
            let node = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
            let node = node.as_string::<i32>();
            let tsc = b.column(1).as_primitive::<TimestampNanosecondType>();
            let u32c = |i: usize| b.column(i).as_primitive::<UInt32Type>();
            let u64c = |i: usize| b.column(i).as_primitive::<UInt64Type>();
            let (file, off, cap, wire, link, flow, dgram) =
                (u32c(2), u64c(3), u32c(4), u32c(5), u32c(6), u64c(7), u64c(8));
            for i in 0..b.num_rows() {
                out.push(PacketRef {
                    node: node.value(i).to_string(),
                    sel: Sel {
                        ts: tsc.value(i),
                        file: file.value(i),
                        offset: off.value(i),
                        caplen: cap.value(i),
                        wire_len: wire.value(i),
                        link: link.value(i),
                        flow_id: flow.is_valid(i).then(|| flow.value(i)),
                        datagram: dgram.is_valid(i).then(|| dgram.value(i)),
                    },
                });
            }
        }
        Ok(out)
    }
}
