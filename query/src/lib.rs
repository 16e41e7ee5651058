//! Queries over trawl snapshots: a DataFusion catalog of a snapshot (or a
//! folder of them) with analyst views and functions ([`catalog`], [`udf`]),
//! the KFL2 filter compiler ([`kfl`]), and text output ([`format`]).
//!
//! Nothing here parses packets: this crate reads the Parquet that
//! `trawl-analyze` writes.

pub mod catalog;
pub mod dataset;
mod error;
pub mod failure;
pub mod format;
pub mod kfl;
pub mod packet_rows;
pub mod peers;
pub mod stats;
pub mod udf;

pub use catalog::{Catalog, Engine, KflQuery, KflRows, Order, TableDesc, block_on};
pub use datafusion;
pub use error::QueryError;
pub use format::Format;
pub use kfl::{KflError, Table};
