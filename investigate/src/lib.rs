//! Investigations over trawl snapshots: evidence for the stories users
//! tell, computed from the `calls` table, deterministically.
//!
//! - [`retries`]: repeated identical requests after failures, their
//!   intervals and whether they back off;
//! - [`parents`]: which inbound request each downstream call served
//!   (by trace id, else timing, with ambiguity said);
//! - [`redundant`]: identical downstream calls inside one inbound
//!   request (N+1 queries), or across requests (a cache that never hits);
//! - [`timeline`]: errors and latency per endpoint over time, and the
//!   first failure of each kind ("what happened at 14:02");
//! - [`map`]: the service map, and the blast radius of one service;
//! - [`trace`]: the chain of calls one inbound request set off;
//! - [`diff`]: a baseline against a new snapshot, per endpoint, with a
//!   verdict that can gate CI.
//!
//! - [`audit`]: missing and forwarded credentials, secrets in bodies,
//!   plaintext across namespaces, external egress, weak TLS.
//!
//! Everything here reads [`calls::Call`]s, loaded once per snapshot by
//! [`calls::load`]; the analyses are plain functions over them.

pub mod audit;
pub mod calls;
pub mod diff;
pub mod map;
pub mod parents;
pub mod redundant;
pub mod retries;
pub mod secrets;
pub mod timeline;
pub mod trace;

/// What can go wrong reading a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Query(#[from] trawl_query::QueryError),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("unexpected column type: {0}")]
    Column(String),
}
