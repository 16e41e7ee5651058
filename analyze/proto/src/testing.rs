//! What every parser's tests share: feeding a conversation in every way
//! its bytes can arrive ([`every_chunking`]). A parser's rows must not
//! depend on where TCP segments cut the stream.

use crate::exchange::{CloseReason, Exchange, Output};
use crate::parser::Parser;
use crate::{At, Side};

/// One event of a conversation, in capture order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Data(Side, &'a [u8]),
    /// Bytes of one side that were not captured.
    Gap(Side, u64),
}

/// How the data of the steps is cut.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Whole,
    /// Every data step in pieces of this many bytes.
    Pieces(usize),
    /// Data step `step` split once, after `at` bytes.
    Once {
        step: usize,
        at: usize,
    },
}

fn feed(parser: &mut dyn Parser, steps: &[Step<'_>], cut: Cut) -> Output {
    let mut ts = 0i64;
    let mut next = || {
        ts += 1;
        At { tag: ts as u64, ts_ns: ts }
    };
    for (i, s) in steps.iter().enumerate() {
        match *s {
            Step::Gap(side, len) => parser.on_gap(side, next(), len),
            Step::Data(side, bytes) => {
                let pieces: Vec<&[u8]> = match cut {
                    Cut::Whole => vec![bytes],
                    Cut::Pieces(n) => bytes.chunks(n).collect(),
                    Cut::Once { step, at } if step == i => vec![&bytes[..at], &bytes[at..]],
                    Cut::Once { .. } => vec![bytes],
                };
                for p in pieces {
                    parser.on_data(side, next(), p);
                }
            }
        }
    }
    parser.on_close(next(), CloseReason::CaptureEnd);
    parser.drain()
}

/// A row with its capture times left out (they follow the cut).
fn timeless(mut e: Exchange) -> Exchange {
    for m in [&mut e.request, &mut e.response].into_iter().flatten() {
        m.at = At::default();
        m.end = At::default();
    }
    e
}

/// Feeds a conversation to fresh parsers (`make`): whole, in pieces of
/// 1, 2, 3, 7 and 64 bytes, and split once at every byte boundary of
/// every data step; checks that each feeding gives the same rows (times
/// aside) and the same kinds of issues. Gaps stay where the steps put
/// them. Returns the whole feeding's output.
pub(crate) fn every_chunking(make: impl Fn() -> Box<dyn Parser>, steps: &[Step<'_>]) -> Output {
    let whole = feed(make().as_mut(), steps, Cut::Whole);
    let rows: Vec<Exchange> = whole.exchanges.iter().cloned().map(timeless).collect();
    let kinds: Vec<&str> = whole.issues.iter().map(|i| i.kind).collect();
    let mut cuts: Vec<Cut> = [1, 2, 3, 7, 64].into_iter().map(Cut::Pieces).collect();
    for (i, s) in steps.iter().enumerate() {
        if let Step::Data(_, b) = s {
            cuts.extend((1..b.len()).map(|at| Cut::Once { step: i, at }));
        }
    }
    for cut in cuts {
        let out = feed(make().as_mut(), steps, cut);
        let got: Vec<Exchange> = out.exchanges.into_iter().map(timeless).collect();
        assert_eq!(got, rows, "rows differ when cut {cut:?}");
        let got_kinds: Vec<&str> = out.issues.iter().map(|i| i.kind).collect();
        assert_eq!(got_kinds, kinds, "issues differ when cut {cut:?}");
    }
    whole
}
