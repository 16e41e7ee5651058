//! How trawl's tables travel in a plan: the client encodes each
//! [`DatasetTable`] a query scans, and the scheduler decodes it to plan
//! the scan there. Everything else (Parquet listing tables of snapshots,
//! file formats, Ballista's own nodes) goes through Ballista's codec; the
//! functions of `trawl_query::udf` travel by name and are found in the
//! function registry every trawl process holds.

use std::sync::Arc;

use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use trawl_query::dataset::DatasetTable;

/// Ballista's logical codec, plus trawl's dataset tables.
#[derive(Debug, Default)]
pub struct TrawlLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

/// The first byte of an encoded [`DatasetTable`]; Ballista's encodings of
/// the table providers it knows follow a 0.
const DATASET_TABLE: u8 = 1;
const OTHER_TABLE: u8 = 0;

impl LogicalExtensionCodec for TrawlLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match buf.split_first() {
            Some((&DATASET_TABLE, rest)) => Ok(Arc::new(DatasetTable::decode(rest)?)),
            Some((&OTHER_TABLE, rest)) => self.ballista.try_decode_table_provider(rest, table_ref, schema, ctx),
            _ => Err(DataFusionError::Internal(format!(
                "table {table_ref}: an encoding trawl's codec did not write (is every process of the cluster a trawl of the same version?)"
            ))),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(t) = node.downcast_ref::<DatasetTable>() {
            buf.push(DATASET_TABLE);
            buf.extend_from_slice(&t.encode());
            return Ok(());
        }
        buf.push(OTHER_TABLE);
        self.ballista.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}
