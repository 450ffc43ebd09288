//! Per-connection outbound bytes: a queue of pooled chunks the runtime drains with vectored writes.
//!
//! Deliveries copy the MSG line and payload into the tail chunk (copying small
//! messages is cheaper than one iovec each). Chunks come from and return to a
//! server-wide pool, so a steady flow of messages allocates nothing.

use std::collections::VecDeque;
use std::io::IoSlice;

/// Size of a pooled chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Most chunks kept in the pool for reuse (the rest are freed).
const POOL_LIMIT: usize = 256;

/// Spare chunks shared by all connections of one server.
#[derive(Debug, Default)]
pub struct ChunkPool {
    free: Vec<Vec<u8>>,
}

impl ChunkPool {
    fn take(&mut self, at_least: usize) -> Vec<u8> {
        if at_least <= CHUNK_SIZE {
            if let Some(chunk) = self.free.pop() {
                return chunk;
            }
        }
        Vec::with_capacity(at_least.max(CHUNK_SIZE))
    }

    fn give(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() == CHUNK_SIZE && self.free.len() < POOL_LIMIT {
            chunk.clear();
            self.free.push(chunk);
        }
    }
}

/// The bytes waiting to be written to one connection.
#[derive(Debug, Default)]
pub struct Outbound {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    head: usize,
    len: usize,
}

impl Outbound {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many chunks hold the waiting bytes.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the concatenation of `parts` as one contiguous run.
    pub fn push_parts(&mut self, pool: &mut ChunkPool, parts: &[&[u8]]) {
        let total = parts.iter().map(|p| p.len()).sum();
        self.push_with(pool, total, |tail| {
            for part in parts {
                tail.extend_from_slice(part);
            }
        });
    }

    /// Appends the `len` bytes that `write` appends to the vector it is given,
    /// as one contiguous run (so a delivery is encoded straight into its chunk).
    pub fn push_with(
        &mut self,
        pool: &mut ChunkPool,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.capacity() - c.len() >= len);
        if !fits {
            self.chunks.push_back(pool.take(len));
        }
        let tail = self.chunks.back_mut().expect("a chunk was just ensured");
        let before = tail.len();
        write(tail);
        let written = tail.len() - before;
        debug_assert_eq!(written, len, "push_with was told a wrong length");
        self.len += written;
    }

    /// Appends bytes.
    pub fn push(&mut self, pool: &mut ChunkPool, bytes: &[u8]) {
        self.push_parts(pool, &[bytes]);
    }

    /// Fills `out` with the waiting bytes, oldest first; returns how many slices it used.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if n == out.len() {
                break;
            }
            let bytes = if i == 0 {
                &chunk[self.head..]
            } else {
                &chunk[..]
            };
            if !bytes.is_empty() {
                out[n] = IoSlice::new(bytes);
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` bytes (they were written).
    pub fn consume(&mut self, pool: &mut ChunkPool, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let front = self.chunks.front().expect("len counts bytes in chunks");
            let left = front.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            let chunk = self.chunks.pop_front().expect("checked above");
            pool.give(chunk);
        }
        if self.len == 0 {
            self.head = 0;
            while let Some(chunk) = self.chunks.pop_front() {
                pool.give(chunk);
            }
        }
    }

    /// Drops everything.
    pub fn clear(&mut self, pool: &mut ChunkPool) {
        self.consume(pool, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &Outbound) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut pool = ChunkPool::default();
        let mut out = Outbound::default();
        out.push_parts(&mut pool, &[b"MSG a 1 2\r\n", b"hi", b"\r\n"]);
        out.push(&mut pool, &vec![b'x'; CHUNK_SIZE]);
        assert_eq!(out.len(), 15 + CHUNK_SIZE);
        out.consume(&mut pool, 4);
        assert_eq!(&drain(&out)[..11], b"a 1 2\r\nhi\r\n");
        out.consume(&mut pool, 11 + 10);
        assert_eq!(drain(&out).len(), CHUNK_SIZE - 10);
        out.consume(&mut pool, CHUNK_SIZE);
        assert!(out.is_empty());
        assert_eq!(drain(&out), b"");
        // Both chunks went back to the pool and are reused.
        assert_eq!(
            pool.free.len(),
            1 + usize::from(CHUNK_SIZE + 15 > CHUNK_SIZE)
        );
    }
}
