//! trawl's dataset: every node's captures, indexed as they rotate, in one
//! set of Delta Lake tables on local disk or object storage
//! (docs/dataset.md).
//!
//! - [`location`]: a local path or `s3://bucket/prefix`, and its store.
//! - [`layout`]: the tables, their partitions (`node`, `hour`) and types.
//! - [`records`]: node numbers and the per-file records under `_trawl/`.
//! - [`tables`]: the Delta tables and what each node committed to them.
//! - [`data_files`]: a partition's rows as Parquet, and its Delta `add`.
//! - [`compaction`]: a node's finished hours rewritten as one file.
//! - [`retention`]: `--retain`, old hours dropped and vacuumed.
//! - [`indexer`]: `trawl index`, a node's archive into the dataset, with
//!   a [`sink`] that commits once per capture file, exactly once.
//! - [`export`]: PCAP export from the captures behind a dataset's rows.
//! - [`read`]: what a reader sees: the committed files of every table.
//! - [`test_server`]: a real S3-compatible server for tests and benchmarks.

pub mod compaction;
pub mod data_files;
mod error;
pub mod export;
pub mod feed;
pub mod indexer;
pub mod layout;
pub mod location;
pub mod read;
pub mod records;
pub mod retention;
mod sink;
pub mod tables;
pub mod test_server;

pub use error::Error;
pub use indexer::{IndexOptions, IndexReport, index};
pub use location::{Location, is_url};
