//! Each worker's builders of the three row tables, and what they hand
//! the writer for one tick.

use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::Error;
use crate::kube::Context;
use crate::kube::peers::PeerNames;
use crate::records::{Keyed, Record, SortKey};

use super::columns::TableBuilder;
use super::rows::Names;

/// One value per row table of a snapshot.
#[derive(Debug, Default)]
pub struct Tables<T> {
    pub flows: T,
    pub api_calls: T,
    pub parse_issues: T,
}

/// One table's rows of a tick: their sort keys and the batch.
pub type Sorted = (Vec<SortKey>, RecordBatch);

/// The rows a worker produced for one tick, sorted by key and built into
/// one batch per table.
pub struct TickBatches {
    pub tables: Tables<Sorted>,
}

/// Per-worker builders of the three tables.
pub struct Builders {
    tables: Tables<TableBuilder>,
    keys: Tables<Vec<SortKey>>,
    ctx: Arc<Context>,
    /// Sides each sidecar file named, counted here and added to the
    /// shared counters once ([`Builders::flush_matches`]).
    matches: Vec<u64>,
}

impl Builders {
    pub fn new(ctx: Arc<Context>) -> Builders {
        Builders {
            tables: Tables {
                flows: TableBuilder::new(&trawl_schemas::FLOWS),
                api_calls: TableBuilder::with_groups(&trawl_schemas::API_CALLS, &trawl_schemas::CALL_GROUPS),
                parse_issues: TableBuilder::new(&trawl_schemas::PARSE_ISSUES),
            },
            keys: Tables::default(),
            matches: vec![0; ctx.cluster.file_count()],
            ctx,
        }
    }

    /// Adds this worker's counts of named sides to the sidecar reports.
    pub fn flush_matches(&self) {
        self.ctx.cluster.add_matches(&self.matches);
    }

    /// Names the sides of later rows from `ctx` (the sidecars changed).
    pub fn set_context(&mut self, ctx: Arc<Context>) {
        self.flush_matches();
        self.matches = vec![0; ctx.cluster.file_count()];
        self.ctx = ctx;
    }

    /// Appends rows (already in key order). Call ids are left 0; the
    /// writer numbers them once the order across workers is known.
    pub fn append(&mut self, rows: &[Keyed], peers: &PeerNames) -> Result<(), Error> {
        let (mut n, mut req, mut resp) = (0, 0, 0);
        let (mut flows, mut issues) = (0, 0);
        for r in rows {
            match &r.record {
                Record::Call(c) => {
                    n += 1;
                    req += c.exchange.request.as_ref().map_or(0, |m| m.body.len());
                    resp += c.exchange.response.as_ref().map_or(0, |m| m.body.len());
                }
                Record::Flow(_) => flows += 1,
                Record::Issue(_) => issues += 1,
            }
        }
        self.tables.flows.presize(flows);
        self.tables.parse_issues.presize(issues);
        let calls = &mut self.tables.api_calls;
        if calls.rows() == 0 {
            calls.presize(n);
            calls.reserve_binary("request_body", n, req);
            calls.reserve_binary("response_body", n, resp);
        }
        let mut names = Names { ctx: &self.ctx, peers, matches: &mut self.matches };
        for r in rows {
            match &r.record {
                Record::Flow(f) => {
                    self.tables.flows.flow(f, &mut names)?;
                    self.keys.flows.push(r.key);
                }
                Record::Call(c) => {
                    self.tables.api_calls.call(0, c, &mut names)?;
                    self.keys.api_calls.push(r.key);
                }
                Record::Issue(i) => {
                    self.tables.parse_issues.issue(i)?;
                    self.keys.parse_issues.push(r.key);
                }
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<TickBatches, Error> {
        let (t, k) = (&mut self.tables, &mut self.keys);
        Ok(TickBatches {
            tables: Tables {
                flows: (std::mem::take(&mut k.flows), t.flows.finish()?),
                api_calls: (std::mem::take(&mut k.api_calls), t.api_calls.finish()?),
                parse_issues: (std::mem::take(&mut k.parse_issues), t.parse_issues.finish()?),
            },
        })
    }
}
