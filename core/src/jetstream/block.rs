//! One block of a stream: a run of log records in sequence order, the unit
//! a file stream writes, loads, evicts and drops, with the little the store
//! keeps of it while its bytes are only on disk.
//!
//! What stays in memory for every block is fixed-size or per subject: its
//! sequence range, live count and bytes, one bit per sequence that is gone
//! (allocated only once one is), and a count per subject. Its records (the
//! bytes exactly as in its file, with an offset per sequence) are there
//! only while it is loaded.

use std::collections::HashMap;

use super::log_format::{self, MsgRef, RecordRef};

/// No record for this sequence in a block.
const NONE: u32 = u32::MAX;

/// A block's records in memory: the bytes of its file and where each
/// sequence's message record starts.
#[derive(Debug, Default)]
pub struct Loaded {
    pub bytes: Vec<u8>,
    /// For sequence `first + i`: its record's offset, or [`NONE`].
    offsets: Vec<u32>,
}

#[derive(Debug)]
pub struct Block {
    pub id: u64,
    /// Sequences of its first and last message records (0 before any).
    pub first: u64,
    pub last: u64,
    /// Messages in it not removed, and their accounted bytes.
    pub live: u64,
    pub live_bytes: u64,
    /// One bit per sequence in `first..=last` that has no live message
    /// (removed, or skipped); empty until there is one.
    gone: Vec<u64>,
    /// Bytes of its records (its file's length once all are written).
    pub len: u64,
    /// Of those, how many were handed to the host to write.
    pub written: u64,
    /// Live messages per subject id.
    pub subjects: HashMap<u32, u32>,
    pub loaded: Option<Loaded>,
    /// When it was last used (the store's counter), to evict the oldest.
    pub used: u64,
    /// The highest sequence its records name (a message's, or where a
    /// record says the sequence moved on to), and that record's time.
    pub top: (u64, u64),
    /// Its length when its summary was last written (or read).
    pub summarised: u64,
}

/// A block's summary as written beside it: what a restart needs of it
/// without reading its records.
///
/// `TNB1` · `u64` length of the block it describes · first · last · live ·
/// live bytes · top sequence · top time · `u32` words of the gone set ·
/// the words · `u32` subjects · each `u16` length, name, `u32` count ·
/// `u32` crc32 of everything before it.
const SUMMARY_MAGIC: &[u8; 4] = b"TNB1";

/// A block read back from its summary: the block (not loaded) and its
/// subjects, by name, with their live counts.
pub type Summarised = (Block, Vec<(Box<[u8]>, u32)>);

impl Block {
    /// An empty block, loaded (a new block is written from memory).
    pub fn new(id: u64) -> Block {
        Block {
            id,
            first: 0,
            last: 0,
            live: 0,
            live_bytes: 0,
            gone: Vec::new(),
            len: 0,
            written: 0,
            subjects: HashMap::new(),
            loaded: Some(Loaded::default()),
            used: 0,
            top: (0, 0),
            summarised: 0,
        }
    }

    /// Notes that a record names sequence `seq` at `time`.
    pub fn saw(&mut self, seq: u64, time: u64) {
        if seq >= self.top.0 {
            self.top = (seq, time);
        }
    }

    /// Its summary, with each subject id's name from `name`.
    pub fn summary<'a>(&self, name: impl Fn(u32) -> &'a [u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.gone.len() * 8 + self.subjects.len() * 16);
        out.extend_from_slice(SUMMARY_MAGIC);
        for n in [
            self.len,
            self.first,
            self.last,
            self.live,
            self.live_bytes,
            self.top.0,
            self.top.1,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(self.gone.len() as u32).to_le_bytes());
        for word in &self.gone {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&(self.subjects.len() as u32).to_le_bytes());
        for (&id, &count) in &self.subjects {
            let subject = name(id);
            out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
            out.extend_from_slice(subject);
            out.extend_from_slice(&count.to_le_bytes());
        }
        let crc = log_format::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A block from its summary, if the summary is intact and describes
    /// a file of `file_len` bytes (anything appended since, or a cut, and
    /// the block must be read instead).
    pub fn from_summary(id: u64, summary: &[u8], file_len: u64) -> Option<Summarised> {
        let (body, crc) = summary.split_at_checked(summary.len().checked_sub(4)?)?;
        if log_format::crc32(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body.strip_prefix(SUMMARY_MAGIC)?);
        let [len, first, last, live, live_bytes, top, top_time] = [(); 7].map(|_| r.u64());
        let len = len?;
        if len != file_len {
            return None;
        }
        let words = r.u32()? as usize;
        let gone = (0..words).map(|_| r.u64()).collect::<Option<Vec<u64>>>()?;
        let count = r.u32()? as usize;
        let mut subjects = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let n = usize::from(r.u16()?);
            let name: Box<[u8]> = r.take(n)?.into();
            subjects.push((name, r.u32()?));
        }
        let block = Block {
            id,
            first: first?,
            last: last?,
            live: live?,
            live_bytes: live_bytes?,
            gone,
            len,
            written: len,
            subjects: HashMap::new(),
            loaded: None,
            used: 0,
            top: (top?, top_time?),
            summarised: len,
        };
        let sane = r.0.is_empty()
            && block.first <= block.last
            && (block.first == 0) == (block.last == 0)
            && block.live_seqs().count() as u64 == block.live
            && subjects.iter().map(|(_, n)| u64::from(*n)).sum::<u64>() == block.live;
        sane.then_some((block, subjects))
    }

    pub fn is_empty(&self) -> bool {
        self.first == 0
    }

    pub fn covers(&self, seq: u64) -> bool {
        !self.is_empty() && (self.first..=self.last).contains(&seq)
    }

    /// Whether `seq` (inside the block) has no live message.
    pub fn is_gone(&self, seq: u64) -> bool {
        let i = (seq - self.first) as usize;
        self.gone
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    /// Whether the block holds a live message at `seq`.
    pub fn has(&self, seq: u64) -> bool {
        self.covers(seq) && !self.is_gone(seq)
    }

    fn mark_gone(&mut self, seq: u64) {
        let i = (seq - self.first) as usize;
        if self.gone.len() <= i / 64 {
            let words = ((self.last - self.first) as usize) / 64 + 1;
            self.gone.resize(words.max(i / 64 + 1), 0);
        }
        self.gone[i / 64] |= 1 << (i % 64);
    }

    /// The first live sequence at or after `seq` in this block.
    pub fn next_live(&self, seq: u64) -> Option<u64> {
        if self.live == 0 || seq > self.last {
            return None;
        }
        let mut s = seq.max(self.first);
        while s <= self.last {
            let i = (s - self.first) as usize;
            match self.gone.get(i / 64) {
                // Sixty-four gone at once.
                Some(&word) if i % 64 == 0 && word == u64::MAX => s += 64,
                Some(&word) if word & (1 << (i % 64)) != 0 => s += 1,
                _ => return Some(s),
            }
        }
        None
    }

    /// The last live sequence at or before `seq` in this block.
    pub fn prev_live(&self, seq: u64) -> Option<u64> {
        if self.live == 0 || seq < self.first {
            return None;
        }
        let mut s = seq.min(self.last);
        loop {
            let i = (s - self.first) as usize;
            match self.gone.get(i / 64) {
                Some(&word) if i % 64 == 63 && word == u64::MAX && s >= self.first + 64 => s -= 64,
                Some(&word) if word & (1 << (i % 64)) != 0 => {
                    if s == self.first {
                        return None;
                    }
                    s -= 1;
                }
                _ => return Some(s),
            }
        }
    }

    /// The live sequences, ascending.
    pub fn live_seqs(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.live_between(0, u64::MAX)
    }

    /// The live sequences from `from` to `to` (inclusive), ascending
    /// (reversible); only that part of the block is looked at.
    pub fn live_between(&self, from: u64, to: u64) -> impl DoubleEndedIterator<Item = u64> + '_ {
        let range = if self.is_empty() || from > self.last || to < self.first {
            0..0
        } else {
            from.max(self.first)..to.min(self.last) + 1
        };
        range.filter(|&s| !self.is_gone(s))
    }

    /// Appends a record that `encode` writes (the block is loaded); a
    /// message record for `msg_seq` is indexed, and sequences skipped
    /// before it count as gone.
    pub fn push(&mut self, msg_seq: Option<u64>, encode: impl FnOnce(&mut Vec<u8>)) {
        let loaded = self.loaded.as_mut().expect("appending to a loaded block");
        let at = loaded.bytes.len();
        encode(&mut loaded.bytes);
        self.len += (loaded.bytes.len() - at) as u64;
        if let Some(seq) = msg_seq {
            index(self, seq, at as u32);
        }
    }

    /// The records not yet handed to the host, marked handed.
    pub fn take_unwritten(&mut self) -> Option<Vec<u8>> {
        if self.written == self.len {
            return None;
        }
        let loaded = self.loaded.as_ref().expect("unwritten records are loaded");
        let bytes = loaded.bytes[self.written as usize..].to_vec();
        self.written = self.len;
        Some(bytes)
    }

    /// Counts a message indexed at `seq` as live, with its subject id and size.
    pub fn add_live(&mut self, subject: u32, size: u64) {
        self.live += 1;
        self.live_bytes += size;
        *self.subjects.entry(subject).or_default() += 1;
    }

    /// Counts the live message at `seq` as gone.
    pub fn remove_live(&mut self, seq: u64, subject: u32, size: u64) {
        self.mark_gone(seq);
        self.live -= 1;
        self.live_bytes -= size;
        if let Some(n) = self.subjects.get_mut(&subject) {
            *n -= 1;
            if *n == 0 {
                self.subjects.remove(&subject);
            }
        }
    }

    /// The message record at `seq`, when loaded and present (gone or not).
    pub fn record(&self, seq: u64) -> Option<MsgRef<'_>> {
        let loaded = self.loaded.as_ref()?;
        if !self.covers(seq) {
            return None;
        }
        let at = *loaded.offsets.get((seq - self.first) as usize)?;
        if at == NONE {
            return None;
        }
        // Checked when the block was read back (or written here).
        match log_format::checked_record_at(&loaded.bytes, at as usize) {
            Some(RecordRef::Msg(msg)) => Some(msg),
            _ => None,
        }
    }

    /// The live message at `seq`, when loaded.
    pub fn message(&self, seq: u64) -> Option<MsgRef<'_>> {
        if !self.has(seq) {
            return None;
        }
        self.record(seq)
    }

    /// Takes the bytes read back from its file as its loaded records
    /// (the index is rebuilt; what is gone stays as the store knows it).
    /// Returns how many of them are intact records.
    pub fn load(&mut self, bytes: Vec<u8>) -> usize {
        let (first, last) = (self.first, self.last);
        let mut offsets = Vec::with_capacity(if first == 0 {
            0
        } else {
            (last - first + 1) as usize
        });
        let mut at = 0;
        while let Some((record, len)) = log_format::record_at(&bytes, at) {
            if let RecordRef::Msg(msg) = record {
                if first != 0 && (first..=last).contains(&msg.seq) {
                    let i = (msg.seq - first) as usize;
                    if offsets.len() <= i {
                        offsets.resize(i + 1, NONE);
                    }
                    offsets[i] = at as u32;
                }
            }
            at += len;
        }
        if first != 0 {
            offsets.resize((last - first + 1) as usize, NONE);
        }
        self.loaded = Some(Loaded { bytes, offsets });
        at
    }

    /// Takes its file's bytes as its loaded bytes, indexed already (a restore).
    pub fn set_bytes(&mut self, bytes: Vec<u8>) {
        let span = if self.is_empty() {
            0
        } else {
            (self.last - self.first + 1) as usize
        };
        let loaded = self.loaded.get_or_insert_with(Loaded::default);
        loaded.bytes = bytes;
        loaded.offsets.resize(span, NONE);
    }

    /// Drops its records from memory (they are all on disk).
    pub fn unload(&mut self) {
        debug_assert_eq!(self.written, self.len);
        self.loaded = None;
    }

    /// Bytes of its records (and their index) held in memory.
    pub fn loaded_bytes(&self) -> usize {
        self.loaded
            .as_ref()
            .map_or(0, |l| l.bytes.len() + l.offsets.len() * 4)
    }
}

/// Indexes a message record at byte `at` for `seq` (after the block's last).
fn index(block: &mut Block, seq: u64, at: u32) {
    if block.is_empty() {
        block.first = seq;
        block.last = seq;
        let loaded = block.loaded.as_mut().expect("loaded");
        loaded.offsets.clear();
        loaded.offsets.push(at);
        return;
    }
    debug_assert!(seq > block.last);
    let skipped = block.last + 1..seq;
    block.last = seq;
    let loaded = block.loaded.as_mut().expect("loaded");
    loaded.offsets.resize((seq - block.first) as usize, NONE);
    loaded.offsets.push(at);
    for s in skipped {
        block.mark_gone(s);
    }
    if !block.gone.is_empty() {
        let words = ((block.last - block.first) as usize) / 64 + 1;
        block.gone.resize(words, 0);
    }
}

impl Block {
    /// Indexes a message record being restored at `at` of its loaded
    /// bytes; false when its sequence is not after the block's last (a
    /// duplicate, not counted).
    pub fn restore_msg(&mut self, seq: u64, at: usize) -> bool {
        if !self.is_empty() && seq <= self.last {
            return false;
        }
        index(self, seq, at as u32);
        true
    }
}

/// Reads a summary's little-endian fields in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_sequences_are_found_past_long_runs_of_gone_ones() {
        let mut block = Block::new(1);
        for seq in 10..=400u64 {
            block.push(Some(seq), |out| {
                log_format::encode_removed(out, seq);
            });
            block.add_live(0, 1);
        }
        let keep = [10, 75, 200, 201, 400];
        for seq in 10..=400u64 {
            if !keep.contains(&seq) {
                block.remove_live(seq, 0, 1);
            }
        }
        let naive_next = |from: u64| (from.max(10)..=400).find(|s| keep.contains(s));
        let naive_prev = |to: u64| (10..=to.min(400)).rev().find(|s| keep.contains(s));
        for seq in 0..=410 {
            assert_eq!(block.next_live(seq), naive_next(seq), "next from {seq}");
            assert_eq!(block.prev_live(seq), naive_prev(seq), "prev from {seq}");
        }
        assert_eq!(block.live_seqs().collect::<Vec<_>>(), keep);
        assert_eq!(
            block.live_between(11, 300).rev().collect::<Vec<_>>(),
            [201, 200, 75]
        );
    }
}
