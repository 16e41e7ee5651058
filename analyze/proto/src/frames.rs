//! Reading length-prefixed messages out of a byte stream, for the binary
//! protocols (PostgreSQL, MySQL, Kafka, AMQP, MongoDB).
//!
//! A [`Framer`] cuts one direction of a connection into messages without
//! ever holding one whole: it keeps the header and the first bytes of the
//! body (up to its cap) and counts the rest as they stream by. A message
//! is handed over once its last byte has arrived.

use crate::exchange::{CloseReason, Output};
use crate::pairing::Book;
use crate::parser::{Counts, Parser};
use crate::{At, Side};
use get_size2::GetSize;

/// Bytes of SQL (or a MongoDB command) kept for a row.
pub(crate) const QUERY_KEEP: usize = 4096;
/// Bytes of names and messages kept.
pub(crate) const NAME_KEEP: usize = 256;

/// Bytes of a message kept for reading (the rest streams past).
pub(crate) const MESSAGE_KEEP: usize = 64 * 1024;

/// One message read by a [`Framer`].
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// The header, as long as the protocol's header is.
    pub head: &'a [u8],
    /// The first bytes of the body, up to the framer's cap.
    pub body: &'a [u8],
    /// The body's whole length.
    pub body_len: u64,
    /// Where its first and last bytes were seen.
    pub at: At,
    pub end: At,
}

impl Frame<'_> {
    /// Bytes of the message on the wire.
    pub fn size(&self) -> u64 {
        self.head.len() as u64 + self.body_len
    }
}

/// The shape of a protocol's messages.
pub(crate) trait Shape {
    /// Bytes of the header of a message whose first byte is `first`.
    fn head_len(&self, first: u8) -> usize;
    /// The body's length given the header, or why the header is invalid.
    fn body_len(&self, head: &[u8]) -> Result<u64, String>;
}

/// Cuts one direction into messages (see the module docs).
#[derive(Debug, Default, GetSize)]
pub(crate) struct Framer {
    head: Vec<u8>,
    head_want: usize,
    body: Vec<u8>,
    body_len: u64,
    left: u64,
    at: At,
    in_body: bool,
    /// Framing was lost (a gap or an invalid header); nothing more is read.
    pub lost: bool,
}

impl Framer {
    /// Reads `data` (seen at `at`), calling `done` with each complete
    /// message; keeps at most `keep` bytes of a body. An invalid header
    /// loses the framing and returns why.
    pub fn feed(
        &mut self,
        at: At,
        mut data: &[u8],
        shape: &impl Shape,
        keep: usize,
        done: &mut impl FnMut(Frame<'_>),
    ) -> Result<(), String> {
        while !data.is_empty() && !self.lost {
            if !self.in_body {
                if self.head.is_empty() {
                    self.at = at;
                    self.head_want = shape.head_len(data[0]);
                }
                let n = (self.head_want - self.head.len()).min(data.len());
                self.head.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.head.len() < self.head_want {
                    return Ok(());
                }
                match shape.body_len(&self.head) {
                    Ok(len) => {
                        self.body_len = len;
                        self.left = len;
                        self.in_body = true;
                    }
                    Err(e) => {
                        self.lost = true;
                        return Err(e);
                    }
                }
            }
            let n = (self.left.min(data.len() as u64)) as usize;
            let room = keep.saturating_sub(self.body.len()).min(n);
            self.body.extend_from_slice(&data[..room]);
            self.left -= n as u64;
            data = &data[n..];
            if self.left == 0 {
                done(Frame { head: &self.head, body: &self.body, body_len: self.body_len, at: self.at, end: at });
                self.head.clear();
                self.body.clear();
                self.in_body = false;
            }
        }
        Ok(())
    }
}

/// A protocol read by one [`Framer`] per direction: what [`read`] and
/// [`gap`] need of its connection parser.
pub(crate) trait Framed {
    type Shape: Shape;
    /// The protocol's name in parse issues, and the issues' kinds: an
    /// invalid header, a gap.
    const NAME: &'static str;
    const BAD: &'static str;
    const LOST: &'static str;
    fn shape() -> Self::Shape;
    fn framers(&mut self) -> &mut [Framer; 2];
    /// Its rows, and its waiting requests if it pairs them.
    fn book(&mut self) -> &mut dyn Book;
    fn book_ref(&self) -> &dyn Book;
    /// One complete message from direction `i` (0: the requester).
    fn message(&mut self, i: usize, f: &Frame<'_>);
    /// Reading stopped for good (TLS followed).
    fn stopped(&self) -> bool {
        false
    }
    /// Bytes read before the framing gets them (PostgreSQL's one-byte
    /// answer to an SSLRequest); returns the rest.
    fn unframed<'a>(&mut self, _side: Side, _at: At, data: &'a [u8]) -> &'a [u8] {
        data
    }
    /// The connection ended: what still waits is emitted.
    fn close(&mut self, reason: CloseReason) {
        self.book().close(reason)
    }
    /// What it counted.
    fn counts(&self) -> Counts {
        self.book_ref().counts()
    }
}

/// A framed protocol is a [`Parser`] by its framing: bytes go through
/// its `Framer`s to `Framed::message`, a gap loses the framing of
/// its side, and the rest is the protocol's own (`Framed::close`,
/// `Framed::counts`).
impl<T: Framed + std::fmt::Debug + Send + GetSize> Parser for T {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let data = self.unframed(side, at, data);
        read(self, side, at, data)
    }

    fn on_gap(&mut self, side: Side, at: At, _len: u64) {
        gap(self, side, at)
    }

    fn on_close(&mut self, _at: At, reason: CloseReason) {
        self.close(reason)
    }

    fn drain(&mut self) -> Output {
        self.book().rows().drain()
    }

    fn counts(&self) -> Counts {
        Framed::counts(self)
    }
}

/// Reads in-order bytes of one side into messages for `c`.
pub(crate) fn read<T: Framed>(c: &mut T, side: Side, at: At, data: &[u8]) {
    let i = side.index();
    if c.stopped() {
        return;
    }
    let mut framer = std::mem::take(&mut c.framers()[i]);
    let r = framer.feed(at, data, &T::shape(), MESSAGE_KEEP, &mut |f: Frame<'_>| {
        if !c.stopped() {
            c.message(i, &f);
        }
    });
    c.framers()[i] = framer;
    if let Err(e) = r {
        let who = if i == 0 { "client" } else { "server" };
        c.book().rows().issue(at, T::BAD, format!("{} framing of the {who} lost: {e}", T::NAME));
    }
}

/// Bytes of one side were not captured: its framing is lost.
pub(crate) fn gap<T: Framed>(c: &mut T, side: Side, at: At) {
    if c.stopped() {
        return;
    }
    let f = &mut c.framers()[side.index()];
    if !f.lost {
        f.lost = true;
        c.book().rows().issue(at, T::LOST, format!("a gap in a {} stream", T::NAME));
    }
}

/// Big-endian and little-endian readers over a slice that never panic:
/// each returns None past the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, pos: 0 }
    }
    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.u16().map(|v| v as i16)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    pub fn u16_le(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32_le(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i32_le(&mut self) -> Option<i32> {
        self.u32_le().map(|v| v as i32)
    }
    /// A NUL-terminated string (the NUL consumed, not returned).
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let end = memchr::memchr(0, rest)?;
        self.pos += end + 1;
        Some(&rest[..end])
    }
}

/// Text for a row: lossy UTF-8, cut at `max` bytes (a character cut in
/// two becomes U+FFFD).
pub(crate) fn text(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]);
    s.into_owned()
}
