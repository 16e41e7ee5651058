//! Request/response bookkeeping, written once for every parser:
//!
//! - [`Rows`]: the rows and issues a connection produced, each row
//!   numbered (`Exchange::index`) in the order it is emitted. Every
//!   parser emits through it.
//! - [`Pairing`]: requests waiting for their answers, capped at
//!   [`crate::Limits::max_pending`] (a full queue gives up its oldest
//!   request, emitted as `no_response` and counted), answered by
//!   whatever pairs them (order, a transaction id, a correlation id),
//!   and flushed when the connection ends with the error the end
//!   deserves ([`crate::exchange::CloseReason::unanswered`]). DNS,
//!   Redis, PostgreSQL, MongoDB, Kafka and AMQP pair through it.
//!
//! HTTP/1 keeps its own queue (pipelined responses attach by sequence
//! number and a 1xx answer does not consume its request), HTTP/2 pairs
//! by stream, MySQL and TLS have one request in flight at most: they
//! number their rows with [`Rows`].

use get_size2::GetSize;
use std::collections::VecDeque;

use crate::detail::Detail;
use crate::exchange::{CloseReason, Exchange, Message, Output};
use crate::parser::Counts;
use crate::{At, Issue};

/// The rows and issues of one connection, rows numbered as emitted.
#[derive(Debug, Default, GetSize)]
pub(crate) struct Rows {
    next_index: u32,
    out: Output,
}

impl Rows {
    /// Rows numbered from `next_index` (a parser that takes a connection
    /// over from another continues its numbering).
    pub fn starting_at(next_index: u32) -> Rows {
        Rows { next_index, out: Output::default() }
    }

    /// The index the next row gets.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Emits a row, giving it the next index.
    pub fn emit(&mut self, mut ex: Exchange) {
        ex.index = self.next_index;
        self.next_index += 1;
        self.out.exchanges.push(ex);
    }

    /// Emits a row of a request and its response, either of which may be
    /// missing (`error` says why).
    pub fn row(
        &mut self,
        request: Option<Message>,
        response: Option<Message>,
        detail: impl Into<Detail>,
        error: Option<&str>,
    ) {
        self.emit(Exchange {
            request,
            response,
            error: error.map(str::to_string),
            detail: detail.into(),
            ..Exchange::default()
        });
    }

    /// Records a problem found in the traffic.
    pub fn issue(&mut self, at: At, kind: &'static str, detail: String) {
        self.out.issues.push(Issue { at, kind, detail });
    }

    /// Where the rows and issues go, for code that pushes them itself.
    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// Takes what was produced so far.
    pub fn drain(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }
}

/// The bookkeeping of one connection, whichever its kind: rows only
/// ([`Rows`]), or rows and requests waiting for answers ([`Pairing`]).
/// A parser hands it out and gets its close and counts from it.
pub(crate) trait Book {
    fn rows(&mut self) -> &mut Rows;
    /// The connection ended: whatever waits is emitted.
    fn close(&mut self, reason: CloseReason);
    /// What it counted: requests a full queue gave up.
    fn counts(&self) -> Counts;
}

impl Book for Rows {
    fn rows(&mut self) -> &mut Rows {
        self
    }
    fn close(&mut self, _reason: CloseReason) {}
    fn counts(&self) -> Counts {
        Counts::default()
    }
}

/// Why a waiting request is emitted without its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub(crate) enum Flush {
    /// The queue was full and gave it up.
    GivenUp,
    /// The connection ended.
    Closed(CloseReason),
}

impl Flush {
    /// The row's error: `no_response`, or `capture_end` when the capture
    /// ended first (the answer may exist).
    pub fn error(self) -> &'static str {
        match self {
            Flush::GivenUp => "no_response",
            Flush::Closed(reason) => reason.unanswered(),
        }
    }
}

/// A request waiting for its answer.
pub(crate) trait Waiting {
    /// The row it becomes when flushed without its answer (most set the
    /// row's error to `why.error()`; a protocol may know the request
    /// expected no answer, or keep a more specific error).
    fn unanswered(self, why: Flush) -> Exchange;
}

/// The usual waiting request: its message, the detail its row will
/// carry, and what pairs it with its answer (a transaction or
/// correlation id; 0 where order alone pairs).
#[derive(Debug, GetSize)]
pub(crate) struct Asked<I> {
    pub key: i64,
    pub request: Message,
    pub info: I,
}

impl<I: Into<Detail>> Waiting for Asked<I> {
    fn unanswered(self, why: Flush) -> Exchange {
        Exchange {
            request: Some(self.request),
            error: Some(why.error().into()),
            detail: self.info.into(),
            ..Exchange::default()
        }
    }
}

/// Requests waiting for their answers on one connection, and its rows.
#[derive(Debug, GetSize)]
pub(crate) struct Pairing<P> {
    /// Oldest first; protocols that complete an answer in place (over
    /// several messages) work on it directly.
    pub waiting: VecDeque<P>,
    max: usize,
    /// Requests the full queue gave up.
    given_up: u64,
    pub rows: Rows,
}

impl<P: Waiting> Pairing<P> {
    pub fn new(max_pending: usize) -> Pairing<P> {
        Pairing { waiting: VecDeque::new(), max: max_pending.max(1), given_up: 0, rows: Rows::default() }
    }

    /// Queues a request. With the queue full, its oldest request is
    /// emitted first without an answer.
    pub fn wait(&mut self, p: P) {
        if self.waiting.len() >= self.max
            && let Some(old) = self.waiting.pop_front()
        {
            self.given_up += 1;
            self.rows.emit(old.unanswered(Flush::GivenUp));
        }
        // Room for one at first: most connections (and every DNS flow)
        // have one request waiting at a time, and a queue's first growth
        // would make room for four.
        if self.waiting.capacity() == 0 {
            self.waiting.reserve_exact(1);
        }
        self.waiting.push_back(p);
    }

    /// Takes the oldest waiting request that `pairs` with an answer.
    pub fn answer(&mut self, pairs: impl FnMut(&P) -> bool) -> Option<P> {
        let i = self.waiting.iter().position(pairs)?;
        self.waiting.remove(i)
    }
}

impl<P: Waiting> Book for Pairing<P> {
    fn rows(&mut self) -> &mut Rows {
        &mut self.rows
    }

    /// Every waiting request is emitted, oldest first.
    fn close(&mut self, reason: CloseReason) {
        while let Some(p) = self.waiting.pop_front() {
            self.rows.emit(p.unanswered(Flush::Closed(reason)));
        }
    }

    fn counts(&self) -> Counts {
        Counts { given_up: self.given_up, ..Counts::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detail::RedisInfo;
    use crate::exchange::StartLine;

    fn asked(n: i64) -> Asked<RedisInfo> {
        let at = At { tag: n as u64, ts_ns: n };
        Asked { key: n, request: Message::wire(at, at, StartLine::Unknown, 1), info: RedisInfo::default() }
    }

    fn rows(p: &mut Pairing<Asked<RedisInfo>>) -> Vec<(u32, i64, Option<String>)> {
        p.rows.drain().exchanges.into_iter().map(|e| (e.index, e.request.map_or(-1, |m| m.at.ts_ns), e.error)).collect()
    }

    #[test]
    fn a_full_queue_gives_up_its_oldest_and_counts_it() {
        let mut p = Pairing::new(2);
        for n in 1..=3 {
            p.wait(asked(n));
        }
        assert_eq!(rows(&mut p), [(0, 1, Some("no_response".into()))]);
        assert_eq!(p.counts().given_up, 1);
        // Answered by key, not by order.
        let a = p.answer(|q| q.key == 3).map(|q| q.key);
        assert_eq!(a, Some(3));
        p.rows.row(None, None, RedisInfo::default(), None);
        p.close(CloseReason::CaptureEnd);
        assert_eq!(rows(&mut p), [(1, -1, None), (2, 2, Some("capture_end".into()))]);
    }

    #[test]
    fn a_connection_that_ended_leaves_its_requests_without_response() {
        let mut p = Pairing::new(8);
        p.wait(asked(1));
        p.close(CloseReason::Reset);
        assert_eq!(rows(&mut p), [(0, 1, Some("no_response".into()))]);
        assert_eq!(p.counts().given_up, 0);
    }

    #[test]
    fn rows_continue_the_numbering_they_are_given() {
        let mut r = Rows::starting_at(5);
        r.row(None, None, RedisInfo::default(), Some("no_request"));
        assert_eq!(r.next_index(), 6);
        assert_eq!(r.drain().exchanges[0].index, 5);
    }
}
