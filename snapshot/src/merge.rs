//! Frames of several capture files merged by capture time, as `mergecap`
//! does (ties go to the earlier file), read chunk by chunk without copying.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::Arc;

use trawl_analyze::input::{CaptureReader, Chunk, Frame, ReadProgress};

use crate::Error;

struct Cursor {
    reader: CaptureReader,
    chunk: Option<Arc<Vec<u8>>>,
    frames: Vec<Frame>,
    pos: usize,
}

impl Cursor {
    fn peek(&mut self) -> Option<i64> {
        while self.pos >= self.frames.len() {
            let Chunk { data, frames } = self.reader.next_chunk()?;
            self.chunk = Some(data);
            self.frames = frames;
            self.pos = 0;
        }
        Some(self.frames[self.pos].ts_ns)
    }
}

/// Several captures, read as one sequence in time order.
pub struct Merge {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Merge {
    /// Opens the files; bytes read are counted in `progress`.
    pub fn open(paths: &[PathBuf], progress: Arc<ReadProgress>) -> Result<Merge, Error> {
        let mut cursors = Vec::new();
        for p in paths {
            cursors.push(Cursor {
                reader: CaptureReader::open(p, progress.clone(), 1 << 20)?,
                chunk: None,
                frames: Vec::new(),
                pos: 0,
            });
        }
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(ts) = c.peek() {
                heap.push(Reverse((ts, i)));
            }
        }
        Ok(Merge { cursors, heap })
    }

    /// Calls `each(file index, frame, captured bytes)` for every frame, in
    /// time order.
    pub fn for_each(&mut self, mut each: impl FnMut(usize, &Frame, &[u8]) -> Result<(), Error>) -> Result<(), Error> {
        while let Some(Reverse((_, i))) = self.heap.pop() {
            let c = &mut self.cursors[i];
            let f = c.frames[c.pos];
            c.pos += 1;
            let chunk = c.chunk.clone();
            if let Some(next) = c.peek() {
                self.heap.push(Reverse((next, i)));
            }
            if let Some(chunk) = chunk {
                each(i, &f, &chunk[f.start as usize..(f.start + f.len) as usize])?;
            }
        }
        Ok(())
    }

    /// For each file, whether it ended in damage (read up to it).
    pub fn finish(self) -> Vec<bool> {
        self.cursors.into_iter().map(|c| c.reader.finish().damage.is_some()).collect()
    }
}
