//! Writing rows: Arrow column builders laid out from the table
//! definitions in `trawl-schemas` ([`columns`]), the rows of each table
//! ([`rows`]: flows and parse issues; [`calls`]: api_calls, one column
//! group per protocol), each worker's builders ([`builders`]), the
//! sinks rows go to ([`sinks`]: Parquet files or memory), and the
//! snapshot directory ([`snapshot_dir`], written under a temporary name
//! and renamed when complete).

mod builders;
mod calls;
mod columns;
mod rows;
mod sinks;
mod snapshot_dir;

pub use builders::{Builders, Sorted, Tables, TickBatches};
pub use calls::split_target;
pub use columns::TableBuilder;
pub use rows::Names;
pub use sinks::{MemorySink, ParquetSink, ParquetTable, Sink, TableOut, packets_batch, write_tick, writer_properties};
pub use snapshot_dir::Snapshot;
