//! A stream's messages, in blocks of records, with nats-server's limits
//! (messages, bytes, per subject, age; discard old or new) and its byte
//! accounting.
//!
//! One mechanism for both storages: a memory stream keeps every block
//! loaded; a file stream hands each block's new records to the host to
//! write ([`Store::take_writes`]), keeps only the block being written and a
//! few recently used ones loaded, and reads the others back through its
//! [`BlockReader`] when a message in them is needed. What stays in memory
//! per message is one bit at most (its block's gone set), so a file
//! stream's memory follows its subjects and blocks, not its messages.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::Arc;

use super::block::Block;
use super::log_format::{self, RecordRef};
use crate::subject::subject_matches;

pub use super::log_format::MsgRef;

/// A block is closed once its records reach this many bytes.
pub const BLOCK_BYTES: usize = 1 << 20;
/// Blocks a file stream keeps loaded besides the one being written.
const LOADED_BLOCKS: usize = 1;
/// A jump in sequence larger than this starts a new block (a block's gone
/// set spans its whole range).
const MAX_GAP: u64 = 1024;
/// A summaries file takes new summaries until it holds this many bytes
/// (or four times a rewrite of all of them); then the next generation
/// starts with every block's current summary.
const INDEX_FULL: u64 = 256 * 1024;
/// How many removals a store remembers for its consumers' counts.
const RECENT_REMOVALS: usize = 4096;

/// Where a file stream's blocks are read back from (the host's files).
pub trait BlockReader: Send + Sync {
    /// The bytes of block `block` of `account`'s stream `stream`.
    fn read_block(&self, account: &str, stream: &str, block: u64) -> io::Result<Vec<u8>>;
}

/// A file stream's way back to its blocks.
#[derive(Clone)]
pub struct BlockFiles {
    pub reader: Arc<dyn BlockReader>,
    pub account: Arc<str>,
    pub stream: Arc<str>,
}

impl fmt::Debug for BlockFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockFiles({} > {})", self.account, self.stream)
    }
}

/// A change a file stream's store needs made on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockWrite {
    /// Append these records to block `block`'s file (created if new).
    Append { block: u64, bytes: Vec<u8> },
    /// Remove block `block`'s file: nothing in it is live.
    Drop { block: u64 },
    /// Append these block summaries (records of [`super::log_format`]) to
    /// the stream's summaries file of generation `generation`: what a
    /// restart reads instead of a block while the block's file is as long
    /// as its latest summary says. A generation's first write starts its
    /// file (with every block's summary); once written, the older go.
    Summaries { generation: u64, bytes: Vec<u8> },
}

/// How a store counts a message's bytes (nats-server's two formulas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// subject + header + payload + 16.
    Memory,
    /// 22 + subject + payload + 8, plus 4 + header when there is one
    /// (the record on disk).
    File,
}

impl Accounting {
    pub fn size(self, subject: &[u8], hdr: &[u8], data: &[u8]) -> u64 {
        let (s, h, d) = (subject.len() as u64, hdr.len() as u64, data.len() as u64);
        match self {
            Accounting::Memory => s + h + d + 16,
            Accounting::File if h > 0 => 22 + s + d + 8 + 4 + h,
            Accounting::File => 22 + s + d + 8,
        }
    }
}

/// What to do when a limit is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Discard {
    /// Drop the oldest messages to make room.
    #[default]
    Old,
    /// Refuse the new message.
    New,
}

/// A stream's limits; `None` is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_msgs: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_msgs_per_subject: Option<u64>,
    /// In nanoseconds.
    pub max_age: Option<u64>,
    pub discard: Discard,
    /// With `Discard::New`: a subject at `max_msgs_per_subject` refuses
    /// new messages instead of dropping its oldest.
    pub discard_new_per_subject: bool,
}

/// Why a message was not stored (nats-server's texts, error 10077).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    MaxMsgs,
    MaxBytes,
    MaxMsgsPerSubject,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::MaxMsgs => "maximum messages exceeded",
            StoreError::MaxBytes => "maximum bytes exceeded",
            StoreError::MaxMsgsPerSubject => "maximum messages per subject exceeded",
        })
    }
}

/// Why a message could not be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveError {
    /// Beyond the last sequence: nats-server's `stream store EOF`.
    Eof,
    /// Never stored, or removed already: `sequence N not found`.
    NotFound,
}

/// The numbers of a stream's `state` in STREAM.INFO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub messages: u64,
    pub bytes: u64,
    /// 0 for a stream that never stored anything; after everything is
    /// removed, the sequence after the last.
    pub first_seq: u64,
    /// 0 when there is no first message.
    pub first_time: u64,
    pub last_seq: u64,
    pub last_time: u64,
    pub num_subjects: u64,
    /// Sequences between first and last that are gone.
    pub num_deleted: u64,
}

/// Which messages a purge removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purge<'a> {
    /// Only messages on subjects matching this (wildcards allowed).
    pub filter: Option<&'a [u8]>,
    /// Only messages below this sequence.
    pub below: Option<u64>,
    /// Keep this many of the newest (matching) messages.
    pub keep: Option<u64>,
}

/// What the store knows of one subject.
#[derive(Debug)]
struct SubjectInfo {
    name: Box<[u8]>,
    /// Live messages (0: the id is free).
    count: u64,
    /// Its first and last live sequences; 0 until looked for (after the
    /// one it was went, or after a restore from block summaries).
    first: u64,
    last: u64,
}

/// The disk side of a file stream's store.
#[derive(Debug, Default)]
struct OnDisk {
    /// Blocks to remove, once the appends before them are made.
    drops: Vec<u64>,
    /// Blocks whose summary is to be written (closed, or let go of).
    summaries: Vec<u64>,
    /// The summaries file: its generation and the bytes written to it.
    index: (u64, u64),
    /// Whether a removal was recorded in a block since the last take.
    removals: bool,
    /// How to read evicted blocks back (none: nothing is evicted).
    files: Option<BlockFiles>,
}

/// A stream's messages, with its limits applied as they arrive.
#[derive(Debug)]
pub struct Store {
    accounting: Accounting,
    limits: Limits,
    /// In sequence order; the last is the one written to.
    blocks: VecDeque<Block>,
    next_block: u64,
    block_bytes: usize,
    subject_ids: HashMap<Box<[u8]>, u32>,
    subjects: Vec<SubjectInfo>,
    free_ids: Vec<u32>,
    msgs: u64,
    bytes: u64,
    /// The first sequence still (or next to be) stored; 0 before any.
    first_seq: u64,
    /// The first message's time (0 without one).
    first_time: u64,
    last_seq: u64,
    last_time: u64,
    /// Set for a file stream.
    disk: Option<OnDisk>,
    /// The latest removals (sequence, subject), for consumers keeping
    /// count of what they have left without recounting (bounded).
    recent_removals: VecDeque<(u64, Box<[u8]>)>,
    /// Every removal ever, counted.
    removed_total: u64,
    /// Counts uses of blocks, to evict the least recently used.
    uses: u64,
    /// What went wrong reading blocks back, for the log.
    problems: Vec<String>,
}

impl Store {
    /// A memory stream's store.
    pub fn new(accounting: Accounting, limits: Limits) -> Store {
        Store {
            accounting,
            limits,
            blocks: VecDeque::new(),
            next_block: 1,
            block_bytes: BLOCK_BYTES,
            subject_ids: HashMap::new(),
            subjects: Vec::new(),
            free_ids: Vec::new(),
            msgs: 0,
            bytes: 0,
            first_seq: 0,
            first_time: 0,
            last_seq: 0,
            last_time: 0,
            disk: None,
            recent_removals: VecDeque::new(),
            removed_total: 0,
            uses: 0,
            problems: Vec::new(),
        }
    }

    /// A file stream's store: its changes are written as blocks, and with
    /// `files` it keeps only a few blocks loaded and reads the rest back.
    pub fn on_disk(accounting: Accounting, limits: Limits, files: Option<BlockFiles>) -> Store {
        Store {
            disk: Some(OnDisk {
                drops: Vec::new(),
                summaries: Vec::new(),
                index: (0, INDEX_FULL),
                removals: false,
                files,
            }),
            ..Store::new(accounting, limits)
        }
    }

    /// Closes blocks at `bytes` instead of [`BLOCK_BYTES`] (tests).
    pub fn set_block_bytes(&mut self, bytes: usize) {
        self.block_bytes = bytes.max(1);
    }

    /// New limits (a stream update): applied at once, dropping the oldest
    /// messages as needed.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.enforce_subject_limits();
        self.enforce_limits();
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn subject_id(&self, subject: &[u8]) -> Option<u32> {
        self.subject_ids.get(subject).copied()
    }

    /// The subject's id, made when it has none.
    fn intern(&mut self, subject: &[u8]) -> u32 {
        if let Some(id) = self.subject_id(subject) {
            return id;
        }
        let info = SubjectInfo {
            name: subject.into(),
            count: 0,
            first: 0,
            last: 0,
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.subjects[id as usize] = info;
                id
            }
            None => {
                self.subjects.push(info);
                (self.subjects.len() - 1) as u32
            }
        };
        self.subject_ids.insert(subject.into(), id);
        id
    }

    fn held(&self, subject: &[u8]) -> u64 {
        self.subject_id(subject)
            .map_or(0, |id| self.subjects[id as usize].count)
    }

    /// Stores a message at `time` (Unix nanoseconds) and returns its
    /// sequence, or why the limits refuse it (discard new).
    pub fn store(
        &mut self,
        subject: &[u8],
        hdr: &[u8],
        data: &[u8],
        time: u64,
    ) -> Result<u64, StoreError> {
        let size = self.accounting.size(subject, hdr, data);
        let limits = &self.limits;
        if limits.discard == Discard::New {
            if limits.max_msgs.is_some_and(|max| self.msgs >= max) {
                return Err(StoreError::MaxMsgs);
            }
            if limits.max_bytes.is_some_and(|max| self.bytes + size > max) {
                return Err(StoreError::MaxBytes);
            }
            if limits.discard_new_per_subject
                && limits
                    .max_msgs_per_subject
                    .is_some_and(|max| self.held(subject) >= max)
            {
                return Err(StoreError::MaxMsgsPerSubject);
            }
        }
        let seq = self.last_seq + 1;
        let id = self.intern(subject);
        let tail = self.tail_for(seq);
        let msg = MsgRef {
            subject,
            seq,
            time,
            hdr,
            data,
        };
        tail.push(Some(seq), |out| log_format::encode_msg(out, &msg));
        tail.add_live(id, size);
        tail.saw(seq, time);
        let info = &mut self.subjects[id as usize];
        if info.count == 0 {
            info.first = seq;
        }
        info.count += 1;
        info.last = seq;
        if self.msgs == 0 {
            self.first_seq = seq;
            self.first_time = time;
        }
        self.msgs += 1;
        self.bytes += size;
        self.last_seq = seq;
        self.last_time = time;
        if let Some(max) = self.limits.max_msgs_per_subject {
            self.trim_subject(id, max);
        }
        self.enforce_limits();
        Ok(seq)
    }

    /// The block to write `seq`'s record to: the last one, unless it is
    /// full, or `seq` is far past it, or there is none.
    fn tail_for(&mut self, seq: u64) -> &mut Block {
        let full = self.blocks.back().is_none_or(|b| {
            b.len as usize >= self.block_bytes || (!b.is_empty() && seq - b.last > MAX_GAP)
        });
        if full {
            self.new_tail();
        }
        let uses = self.tick();
        let tail = self.blocks.back_mut().expect("a tail");
        tail.used = uses;
        tail
    }

    /// Starts a new block; on disk its first record says where the
    /// sequence is, so the last sequence survives its predecessors.
    fn new_tail(&mut self) {
        // A tail with nothing live goes: the new one's first record says
        // all it did (and only the tail may be without messages).
        self.drop_dead_tail();
        if let (Some(disk), Some(closed)) = (self.disk.as_mut(), self.blocks.back()) {
            disk.summaries.push(closed.id);
        }
        let mut block = Block::new(self.next_block);
        self.next_block += 1;
        // Room for a whole block at once: growing by doubling would leave
        // twice the memory behind (untouched room costs no memory).
        if let Some(loaded) = block.loaded.as_mut() {
            loaded.bytes.reserve_exact(self.block_bytes + 4096);
        }
        if self.disk.is_some() && self.last_seq > 0 {
            let (last, time) = (self.last_seq, self.last_time);
            block.push(None, |out| log_format::encode_skipped(out, last, time));
            block.saw(last, time);
        }
        self.blocks.push_back(block);
        self.evict();
    }

    /// Drops the last block if nothing in it is live.
    fn drop_dead_tail(&mut self) {
        if self.blocks.back().is_some_and(|b| b.live == 0) {
            let block = self.blocks.pop_back().expect("a block");
            if let Some(disk) = self.disk.as_mut() {
                disk.drops.push(block.id);
            }
        }
    }

    /// Whether it can read blocks back (and so let go of them).
    fn reads_back(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| d.files.is_some())
    }

    fn tick(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }

    /// Takes the next sequence without storing anything (a message an
    /// interest stream keeps for nobody); returns it.
    pub fn skip(&mut self, time: u64) -> u64 {
        self.last_seq += 1;
        self.last_time = time;
        if self.msgs == 0 {
            self.first_seq = self.last_seq + 1;
        }
        let last = self.last_seq;
        self.note_last(last, time);
        last
    }

    /// Writes down that the last sequence is now `last` (file streams).
    fn note_last(&mut self, last: u64, time: u64) {
        if self.disk.is_none() {
            return;
        }
        if self
            .blocks
            .back()
            .is_none_or(|b| b.len as usize >= self.block_bytes)
        {
            // A new block starts with the same record.
            self.new_tail();
            return;
        }
        let tail = self.blocks.back_mut().expect("a tail");
        tail.push(None, |out| log_format::encode_skipped(out, last, time));
        tail.saw(last, time);
    }

    /// Drops the oldest messages of subject `id` beyond `max`.
    fn trim_subject(&mut self, id: u32, max: u64) {
        while self.subjects[id as usize].count > max {
            let oldest = self.subject_first(id);
            if !self.remove_stored(oldest) {
                return;
            }
        }
    }

    /// The first live sequence of subject `id` (looked for if not known).
    fn subject_first(&mut self, id: u32) -> u64 {
        if self.subjects[id as usize].first == 0 {
            self.subjects[id as usize].first = self.find_subject(id, 0, true).unwrap_or(0);
        }
        self.subjects[id as usize].first
    }

    /// The last live sequence of subject `id` (looked for if not known).
    fn subject_last(&mut self, id: u32) -> u64 {
        if self.subjects[id as usize].last == 0 {
            self.subjects[id as usize].last = self.find_subject(id, u64::MAX, false).unwrap_or(0);
        }
        self.subjects[id as usize].last
    }

    fn enforce_subject_limits(&mut self) {
        let Some(max) = self.limits.max_msgs_per_subject else {
            return;
        };
        for id in 0..self.subjects.len() as u32 {
            self.trim_subject(id, max);
        }
    }

    /// Drops the oldest messages while over `max_msgs` or `max_bytes`.
    fn enforce_limits(&mut self) {
        while self.msgs > 0 {
            let over_msgs = self.limits.max_msgs.is_some_and(|max| self.msgs > max);
            let over_bytes = self.limits.max_bytes.is_some_and(|max| self.bytes > max);
            if !over_msgs && !over_bytes {
                return;
            }
            if !self.remove_stored(self.first_seq) {
                return;
            }
        }
    }

    /// Removes the messages older than `max_age` at `now` (Unix
    /// nanoseconds); returns how many.
    pub fn expire(&mut self, now: u64) -> u64 {
        let Some(max_age) = self.limits.max_age else {
            return 0;
        };
        let cutoff = now.saturating_sub(max_age);
        let mut removed = 0;
        while self.msgs > 0 && self.first_time <= cutoff {
            if !self.remove_stored(self.first_seq) {
                break;
            }
            removed += 1;
        }
        removed
    }

    /// When the oldest message expires (Unix nanoseconds), for the timer.
    pub fn next_expiry(&self) -> Option<u64> {
        let max_age = self.limits.max_age?;
        (self.msgs > 0).then(|| self.first_time.saturating_add(max_age))
    }

    /// The index of the block whose range holds `seq`.
    fn block_of(&self, seq: u64) -> Option<usize> {
        let after = self
            .blocks
            .partition_point(|b| !b.is_empty() && b.first <= seq);
        let i = after.checked_sub(1)?;
        self.blocks[i].covers(seq).then_some(i)
    }

    /// Makes sure block `i` is loaded, reading it back if it was evicted.
    /// A block that cannot be read loses its messages (reported).
    fn load(&mut self, i: usize) -> bool {
        let uses = self.tick();
        self.blocks[i].used = uses;
        if self.blocks[i].loaded.is_some() {
            return true;
        }
        let files = self
            .disk
            .as_ref()
            .and_then(|d| d.files.clone())
            .expect("only a store that reads blocks back evicts them");
        let id = self.blocks[i].id;
        let read = files.reader.read_block(&files.account, &files.stream, id);
        let problem = match read {
            Ok(bytes) => {
                let block = &mut self.blocks[i];
                block.load(bytes);
                let missing = block.live_seqs().find(|&s| block.record(s).is_none());
                missing.map(|seq| {
                    format!("its block {id} no longer holds sequence {seq} (changed on disk)")
                })
            }
            Err(e) => Some(format!("its block {id} could not be read: {e}")),
        };
        if let Some(why) = problem {
            self.lose_block(i, &why);
            return false;
        }
        self.evict();
        true
    }

    /// Gives up a block that cannot be read: its messages are gone, and
    /// the log says which.
    fn lose_block(&mut self, i: usize, why: &str) {
        let block = self.blocks.remove(i).expect("a block");
        let name = self
            .disk
            .as_ref()
            .and_then(|d| d.files.as_ref())
            .map_or_else(String::new, |f| format!("'{} > {}'", f.account, f.stream));
        self.problems.push(format!(
            "JetStream stream {name}: {why}: {} messages (sequences {} to {}) lost",
            block.live, block.first, block.last
        ));
        self.forget_block(&block);
        if let Some(disk) = self.disk.as_mut() {
            disk.drops.push(block.id);
        }
    }

    /// Takes a dropped block's live messages out of the counts.
    fn forget_block(&mut self, block: &Block) {
        self.msgs -= block.live;
        self.bytes -= block.live_bytes;
        self.removed_total += block.live;
        // Consumers count afresh: these removals are not listed.
        self.recent_removals.clear();
        for (&id, &n) in &block.subjects {
            let info = &mut self.subjects[id as usize];
            info.count -= u64::from(n);
            if info.count == 0 {
                self.subject_ids.remove(&info.name);
                self.free_ids.push(id);
                continue;
            }
            // Looked for again when needed.
            if block.covers(info.first) {
                info.first = 0;
            }
            if block.covers(info.last) {
                info.last = 0;
            }
        }
        self.fix_first();
    }

    /// Unloads the least recently used blocks beyond the budget (only a
    /// store that can read them back; never the one being written, nor
    /// one with records not yet handed over).
    fn evict(&mut self) {
        if !self.reads_back() {
            return;
        }
        loop {
            let tail = self.blocks.len().saturating_sub(1);
            let candidates = self
                .blocks
                .iter()
                .enumerate()
                .filter(|(i, b)| *i != tail && b.loaded.is_some() && b.written == b.len);
            if candidates.clone().count() <= LOADED_BLOCKS {
                return;
            }
            let oldest = candidates.min_by_key(|(_, b)| b.used).map(|(i, _)| i);
            let Some(i) = oldest else {
                return;
            };
            if self.blocks[i].summarised != self.blocks[i].len {
                // Let go of after a change: its summary is written anew.
                if let Some(disk) = self.disk.as_mut() {
                    disk.summaries.push(self.blocks[i].id);
                }
            }
            self.blocks[i].unload();
        }
    }

    /// Removes a live message; false if it is not there (or its block
    /// could not be read).
    fn remove_stored(&mut self, seq: u64) -> bool {
        let Some(i) = self.block_of(seq) else {
            return false;
        };
        if !self.blocks[i].has(seq) || !self.load(i) {
            return false;
        }
        let i = self.block_of(seq).expect("loaded blocks stay");
        let (subject, size) = {
            let Some(msg) = self.blocks[i].record(seq) else {
                return false;
            };
            let size = self.accounting.size(msg.subject, msg.hdr, msg.data);
            (Box::<[u8]>::from(msg.subject), size)
        };
        if let Some(disk) = self.disk.as_mut() {
            // Written first: a block with unwritten records stays loaded.
            disk.removals = true;
            self.blocks[i].push(None, |out| log_format::encode_removed(out, seq));
        }
        self.account_removal(i, seq, &subject, size);
        if self.recent_removals.len() == RECENT_REMOVALS {
            self.recent_removals.pop_front();
        }
        self.recent_removals.push_back((seq, subject));
        self.removed_total += 1;
        // Looked up again: reading other blocks may have lost one.
        if let Some(i) = self.block_of(seq) {
            self.drop_if_empty(i);
        }
        if seq == self.first_seq {
            self.fix_first();
        }
        true
    }

    /// Counts message `seq` of block `i` (on `subject`, of `size`) gone.
    fn account_removal(&mut self, i: usize, seq: u64, subject: &[u8], size: u64) {
        let id = self
            .subject_id(subject)
            .expect("a stored message's subject");
        self.blocks[i].remove_live(seq, id, size);
        self.msgs -= 1;
        self.bytes -= size;
        let info = &mut self.subjects[id as usize];
        info.count -= 1;
        if info.count == 0 {
            self.subject_ids.remove(subject);
            self.free_ids.push(id);
            return;
        }
        // Looked for again when needed.
        if info.first == seq {
            info.first = 0;
        }
        if info.last == seq {
            info.last = 0;
        }
    }

    /// Drops block `i` when nothing in it is live, unless it is the one
    /// being written.
    fn drop_if_empty(&mut self, i: usize) {
        if self.blocks[i].live > 0 || i + 1 == self.blocks.len() {
            return;
        }
        let block = self.blocks.remove(i).expect("a block");
        if let Some(disk) = self.disk.as_mut() {
            disk.drops.push(block.id);
        }
    }

    /// Sets the first sequence and time after the first message went.
    fn fix_first(&mut self) {
        if self.msgs == 0 {
            self.first_seq = if self.last_seq > 0 {
                self.last_seq + 1
            } else {
                0
            };
            self.first_time = 0;
            return;
        }
        loop {
            let Some(i) = self.blocks.iter().position(|b| b.live > 0) else {
                return;
            };
            // Nothing live before the first that went.
            let from = self.first_seq;
            let seq = self.blocks[i].next_live(from).expect("a live message");
            if !self.load(i) {
                continue;
            }
            let time = self.blocks[i].record(seq).map_or(0, |m| m.time);
            self.first_seq = seq;
            self.first_time = time;
            return;
        }
    }

    /// The nearest live message of subject `id` from `from` on (forward)
    /// or back (backward).
    fn find_subject(&mut self, id: u32, from: u64, forward: bool) -> Option<u64> {
        let mut i = if forward {
            self.blocks
                .partition_point(|b| !b.is_empty() && b.last < from)
        } else {
            self.blocks
                .partition_point(|b| !b.is_empty() && b.first <= from)
                .checked_sub(1)?
        };
        while i < self.blocks.len() {
            if self.blocks[i].subjects.contains_key(&id) && self.load(i) {
                let block = &self.blocks[i];
                let name = &self.subjects[id as usize].name;
                let is_it = |s: &u64| block.record(*s).is_some_and(|m| m.subject == &**name);
                let found = if forward {
                    block.live_between(from, u64::MAX).find(is_it)
                } else {
                    block.live_between(0, from).rev().find(is_it)
                };
                if found.is_some() {
                    return found;
                }
            }
            if forward {
                i += 1;
            } else if i == 0 {
                return None;
            } else {
                i -= 1;
            }
        }
        None
    }

    /// Removes message `seq` (MSG.DELETE).
    pub fn remove(&mut self, seq: u64) -> Result<(), RemoveError> {
        if seq > self.last_seq {
            return Err(RemoveError::Eof);
        }
        if !self.contains(seq) || !self.remove_stored(seq) {
            return Err(RemoveError::NotFound);
        }
        Ok(())
    }

    /// Whether some subject of block `i` matches `filter`.
    fn block_matches(&self, i: usize, filter: &[u8]) -> bool {
        self.blocks[i]
            .subjects
            .keys()
            .any(|&id| subject_matches(filter, &self.subjects[id as usize].name))
    }

    /// Removes what `purge` selects; returns how many messages.
    pub fn purge(&mut self, purge: &Purge<'_>) -> u64 {
        let matching_total = match purge.filter {
            None => self.msgs,
            Some(f) => self
                .subjects
                .iter()
                .filter(|s| s.count > 0 && subject_matches(f, &s.name))
                .map(|s| s.count)
                .sum(),
        };
        let budget = purge
            .keep
            .map_or(u64::MAX, |keep| matching_total.saturating_sub(keep));
        let below = purge.below.unwrap_or(u64::MAX);
        let mut removed = 0u64;
        // Whole blocks at the front go at once when all of them is chosen.
        while purge.filter.is_none() {
            let Some(front) = self.blocks.front() else {
                break;
            };
            let whole = !front.is_empty()
                && front.last < below
                && front.live <= budget - removed
                && self.blocks.len() > 1;
            if !whole {
                break;
            }
            let block = self.blocks.pop_front().expect("a block");
            removed += block.live;
            if let Some(disk) = self.disk.as_mut() {
                disk.drops.push(block.id);
            }
            self.forget_block(&block);
        }
        let mut cursor = 0;
        while removed < budget {
            let Some(seq) = self.next_seq(cursor).filter(|&s| s < below) else {
                break;
            };
            cursor = seq + 1;
            if let Some(filter) = purge.filter {
                let i = self.block_of(seq).expect("a live message's block");
                if !self.block_matches(i, filter) {
                    cursor = self.blocks[i].last + 1;
                    continue;
                }
                let subject_matches_filter = self
                    .get(seq)
                    .is_some_and(|m| subject_matches(filter, m.subject));
                if !subject_matches_filter {
                    continue;
                }
            }
            if self.remove_stored(seq) {
                removed += 1;
            }
        }
        if purge.filter.is_none() && purge.keep.is_none() {
            match purge.below {
                // A compaction past the end moves the sequence on, as
                // nats-server: the next message gets `below`.
                Some(below) if below > self.last_seq + 1 => {
                    self.last_seq = below - 1;
                    self.first_seq = below;
                    self.note_last(below - 1, self.last_time);
                }
                _ if self.msgs == 0 && self.last_seq > 0 => {
                    self.first_seq = self.last_seq + 1;
                }
                _ => {}
            }
        }
        if self.disk.is_some() && self.blocks.is_empty() && self.last_seq > 0 {
            // Something on disk must still say where the sequence is.
            self.new_tail();
        }
        removed
    }

    /// The live message at `seq`, read back from disk if need be.
    pub fn get(&mut self, seq: u64) -> Option<MsgRef<'_>> {
        let i = self.block_of(seq)?;
        if !self.blocks[i].has(seq) || !self.load(i) {
            return None;
        }
        let i = self.block_of(seq)?;
        self.blocks[i].message(seq)
    }

    /// Whether a live message has sequence `seq` (nothing is read).
    pub fn contains(&self, seq: u64) -> bool {
        self.block_of(seq).is_some_and(|i| self.blocks[i].has(seq))
    }

    /// The first live sequence at or after `start` (nothing is read).
    pub fn next_seq(&self, start: u64) -> Option<u64> {
        let from = self
            .blocks
            .partition_point(|b| !b.is_empty() && b.last < start);
        self.blocks
            .iter()
            .skip(from)
            .find_map(|b| b.next_live(start))
    }

    /// The last live sequence at or before `at` (nothing is read).
    pub fn prev_seq(&self, at: u64) -> Option<u64> {
        let upto = self
            .blocks
            .partition_point(|b| !b.is_empty() && b.first <= at);
        self.blocks
            .iter()
            .take(upto)
            .rev()
            .find_map(|b| b.prev_live(at))
    }

    /// How many live messages from `start` on are on subjects matching
    /// `filter` (empty: all). Whole blocks are counted from their subject
    /// counts; only the block holding `start` may be read.
    pub fn count_matching(&mut self, start: u64, filter: &[u8]) -> u64 {
        let mut count = 0;
        let from = self
            .blocks
            .partition_point(|b| !b.is_empty() && b.last < start);
        for i in from..self.blocks.len() {
            let block = &self.blocks[i];
            if block.first >= start {
                count += if filter.is_empty() {
                    block.live
                } else {
                    block
                        .subjects
                        .iter()
                        .filter(|(&id, _)| {
                            subject_matches(filter, &self.subjects[id as usize].name)
                        })
                        .map(|(_, &n)| u64::from(n))
                        .sum()
                };
                continue;
            }
            if filter.is_empty() {
                count += block.live_between(start, u64::MAX).count() as u64;
                continue;
            }
            if !self.block_matches(i, filter) || !self.load(i) {
                continue;
            }
            let block = &self.blocks[i];
            count += block
                .live_between(start, u64::MAX)
                .filter(|&s| {
                    block
                        .record(s)
                        .is_some_and(|m| subject_matches(filter, m.subject))
                })
                .count() as u64;
        }
        count
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many messages were ever removed.
    pub fn removed_total(&self) -> u64 {
        self.removed_total
    }

    /// The removals after the first `total` ever made, as (sequence,
    /// subject), or None when the store no longer remembers them all.
    pub fn removals_since(&self, total: u64) -> Option<impl Iterator<Item = (u64, &[u8])>> {
        let missed = self.removed_total.checked_sub(total)?;
        if missed > self.recent_removals.len() as u64 {
            return None;
        }
        let skip = self.recent_removals.len() - missed as usize;
        Some(
            self.recent_removals
                .iter()
                .skip(skip)
                .map(|(seq, subject)| (*seq, &**subject)),
        )
    }

    /// The sequence of the newest message on a subject matching `filter`.
    pub fn last_seq_by_subject(&mut self, filter: &[u8]) -> Option<u64> {
        if !filter.contains(&b'*') && !filter.contains(&b'>') {
            let id = self.subject_id(filter)?;
            return Some(self.subject_last(id));
        }
        let mut i = self.blocks.len();
        while i > 0 {
            i -= 1;
            if !self.block_matches(i, filter) || !self.load(i) {
                continue;
            }
            let block = &self.blocks[i];
            let found = block.live_seqs().rev().find(|&s| {
                block
                    .record(s)
                    .is_some_and(|m| subject_matches(filter, m.subject))
            });
            if found.is_some() {
                return found;
            }
            i = i.min(self.blocks.len());
        }
        None
    }

    /// The newest message on a subject matching `filter`.
    pub fn last_by_subject(&mut self, filter: &[u8]) -> Option<MsgRef<'_>> {
        let seq = self.last_seq_by_subject(filter)?;
        self.get(seq)
    }

    /// The sequence of the first message at or after `start` on a subject
    /// matching `filter`.
    pub fn next_seq_by_subject(&mut self, filter: &[u8], start: u64) -> Option<u64> {
        if !filter.contains(&b'*') && !filter.contains(&b'>') {
            let id = self.subject_id(filter)?;
            let first = self.subject_first(id);
            if start <= first {
                return Some(first);
            }
            if start > self.subject_last(id) {
                return None;
            }
            return self.find_subject(id, start, true);
        }
        let mut i = self
            .blocks
            .partition_point(|b| !b.is_empty() && b.last < start);
        while i < self.blocks.len() {
            if self.block_matches(i, filter) && self.load(i) {
                let block = &self.blocks[i];
                let found = block.live_between(start, u64::MAX).find(|&s| {
                    block
                        .record(s)
                        .is_some_and(|m| subject_matches(filter, m.subject))
                });
                if found.is_some() {
                    return found;
                }
            }
            i += 1;
        }
        None
    }

    /// The first message at or after `start` on a subject matching `filter`.
    pub fn next_by_subject(&mut self, filter: &[u8], start: u64) -> Option<MsgRef<'_>> {
        let seq = self.next_seq_by_subject(filter, start)?;
        self.get(seq)
    }

    /// Each subject matching `filter` with its number of messages, sorted.
    pub fn subject_counts(&self, filter: &[u8]) -> Vec<(&[u8], u64)> {
        let mut counts: Vec<(&[u8], u64)> = self
            .subjects
            .iter()
            .filter(|s| s.count > 0 && subject_matches(filter, &s.name))
            .map(|s| (&*s.name, s.count))
            .collect();
        counts.sort_unstable();
        counts
    }

    /// The sequences between first and last that are gone, ascending.
    pub fn deleted(&self) -> Vec<u64> {
        if self.msgs == 0 {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut expected = self.first_seq;
        for block in self.blocks.iter().filter(|b| b.live > 0) {
            for seq in block.live_seqs() {
                gone.extend(expected..seq);
                expected = seq + 1;
            }
        }
        gone
    }

    pub fn state(&self) -> State {
        let span = if self.msgs == 0 {
            0
        } else {
            self.last_seq - self.first_seq + 1
        };
        State {
            messages: self.msgs,
            bytes: self.bytes,
            first_seq: self.first_seq,
            first_time: if self.msgs == 0 { 0 } else { self.first_time },
            last_seq: self.last_seq,
            last_time: self.last_time,
            num_subjects: self.subject_ids.len() as u64,
            num_deleted: span - self.msgs,
        }
    }

    /// The changes a file stream needs made on disk since the last call:
    /// new records block by block, then the blocks to remove.
    pub fn take_writes(&mut self) -> Vec<BlockWrite> {
        let Some(disk) = self.disk.as_mut() else {
            return Vec::new();
        };
        let drops = std::mem::take(&mut disk.drops);
        disk.removals = false;
        let mut summaries = std::mem::take(&mut disk.summaries);
        summaries.sort_unstable();
        summaries.dedup();
        let mut writes: Vec<BlockWrite> = self
            .blocks
            .iter_mut()
            .filter_map(|b| {
                let bytes = b.take_unwritten()?;
                Some(BlockWrite::Append { block: b.id, bytes })
            })
            .collect();
        let tail = self.blocks.back().map(|b| b.id);
        let closed = |b: &&mut Block| Some(b.id) != tail && !drops.contains(&b.id);
        let subjects = &self.subjects;
        let mut records = Vec::new();
        let mut written = 0u64;
        for block in self.blocks.iter_mut().filter(closed) {
            if summaries.binary_search(&block.id).is_ok() {
                block.summarised = block.len;
                let summary = block.summary(|sid| &subjects[sid as usize].name);
                log_format::encode_summary(&mut records, block.id, &summary);
                written += 1;
            }
        }
        if let Some(per_block) = (records.len() as u64).checked_div(written) {
            let closed_blocks = self.blocks.iter().filter(|b| Some(b.id) != tail).count() as u64;
            let rewrite = per_block * closed_blocks;
            let (generation, held) = &mut disk.index;
            if *held + records.len() as u64 > INDEX_FULL.max(4 * rewrite) {
                // A new file, with every closed block's summary.
                records.clear();
                for block in self.blocks.iter_mut().filter(closed) {
                    block.summarised = block.len;
                    let summary = block.summary(|sid| &subjects[sid as usize].name);
                    log_format::encode_summary(&mut records, block.id, &summary);
                }
                *generation += 1;
                *held = 0;
            }
            *held += records.len() as u64;
            writes.push(BlockWrite::Summaries {
                generation: *generation,
                bytes: records,
            });
        }
        writes.extend(drops.into_iter().map(|block| BlockWrite::Drop { block }));
        self.evict();
        writes
    }

    /// Whether a file stream has changes waiting for [`Store::take_writes`]
    /// (without looking at every block).
    pub fn has_writes(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| {
            d.removals
                || !d.drops.is_empty()
                || !d.summaries.is_empty()
                || self.blocks.back().is_some_and(|b| b.written < b.len)
        })
    }

    /// What went wrong reading blocks back since the last call.
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }

    /// Bytes of records loaded in memory (the memory a stream holds).
    pub fn loaded_bytes(&self) -> usize {
        self.blocks.iter().map(Block::loaded_bytes).sum()
    }

    /// Rebuilds block `id` from its file's bytes at start-up (blocks in
    /// order of their ids): messages as they were stored, removals, and
    /// moves of the last sequence, with no limit applied. Returns how far
    /// the bytes were intact; the rest is left out (and should be cut).
    pub fn restore_block(&mut self, id: u64, mut bytes: Vec<u8>) -> log_format::Scan {
        self.next_block = self.next_block.max(id + 1);
        self.drop_dead_tail();
        self.blocks.push_back(Block::new(id));
        let i = self.blocks.len() - 1;
        let mut removed = Vec::new();
        let floor = self.last_indexed();
        let scan = log_format::scan(&bytes, |record, at| match record {
            RecordRef::Msg(msg) => {
                if msg.seq <= floor || !self.blocks[i].restore_msg(msg.seq, at) {
                    return;
                }
                let size = self.accounting.size(msg.subject, msg.hdr, msg.data);
                let sid = self.intern(msg.subject);
                self.blocks[i].add_live(sid, size);
                self.blocks[i].saw(msg.seq, msg.time);
                let info = &mut self.subjects[sid as usize];
                if info.count == 0 {
                    info.first = msg.seq;
                }
                info.count += 1;
                info.last = msg.seq;
                self.msgs += 1;
                self.bytes += size;
                if msg.seq >= self.last_seq {
                    self.last_seq = msg.seq;
                    self.last_time = msg.time;
                }
            }
            RecordRef::Removed(seq) => removed.push(seq),
            // Not a block's records: nothing to take.
            RecordRef::State(_) | RecordRef::Summary(..) => {}
            RecordRef::Skipped(last, time) => {
                self.blocks[i].saw(last, time);
                if last >= self.last_seq {
                    self.last_seq = last;
                    self.last_time = time;
                }
            }
        });
        bytes.truncate(scan.valid_len);
        let block = &mut self.blocks[i];
        block.len = bytes.len() as u64;
        block.written = block.len;
        block.set_bytes(bytes);
        for seq in removed {
            let Some(i) = self.block_of(seq) else {
                continue;
            };
            let Some(msg) = self.blocks[i].message(seq) else {
                continue;
            };
            let size = self.accounting.size(msg.subject, msg.hdr, msg.data);
            let subject: Box<[u8]> = msg.subject.into();
            self.account_removal(i, seq, &subject, size);
            self.removed_total += 1;
        }
        if let Some(disk) = self.disk.as_mut() {
            // Read whole this time; a summary makes the next restart quick.
            disk.summaries.push(id);
        }
        let last = self.blocks.back().expect("the block restored");
        if last.id == id && last.is_empty() && last.len == 0 {
            // Nothing readable in it: its file goes.
            self.blocks.pop_back();
            if let Some(disk) = self.disk.as_mut() {
                disk.drops.push(id);
            }
        }
        self.evict_restored();
        scan
    }

    /// Restores block `id` from its summary (read from the summaries file
    /// of generation `generation`) instead of its records, when the
    /// summary is intact and its file is `file_len` bytes long (as the
    /// summary says) and the store can read blocks back; false when the
    /// block must be read instead ([`Store::restore_block`]).
    pub fn restore_summary(
        &mut self,
        id: u64,
        summary: &[u8],
        file_len: u64,
        generation: u64,
    ) -> bool {
        if let Some(disk) = self.disk.as_mut() {
            // The next summaries start the generation after it.
            disk.index = (disk.index.0.max(generation), INDEX_FULL);
        }
        if !self.reads_back() {
            return false;
        }
        let Some((mut block, subjects)) = Block::from_summary(id, summary, file_len) else {
            return false;
        };
        if !block.is_empty() && block.first <= self.last_indexed() {
            return false;
        }
        self.next_block = self.next_block.max(id + 1);
        self.drop_dead_tail();
        for (name, count) in subjects {
            let sid = self.intern(&name);
            let info = &mut self.subjects[sid as usize];
            if info.count == 0 {
                info.first = 0;
            }
            info.count += u64::from(count);
            // Somewhere in this block or before: looked for when needed.
            info.last = 0;
            block.subjects.insert(sid, count);
        }
        self.msgs += block.live;
        self.bytes += block.live_bytes;
        if block.top.0 >= self.last_seq {
            (self.last_seq, self.last_time) = block.top;
        }
        self.blocks.push_back(block);
        true
    }

    /// Takes from a block that was dropped (but whose removal may not
    /// have been made) only where the sequence was: its messages are gone.
    pub fn restore_dropped(&mut self, bytes: &[u8]) {
        log_format::scan(bytes, |record, _| {
            let (last, time) = match record {
                RecordRef::Msg(m) => (m.seq, m.time),
                RecordRef::Skipped(last, time) => (last, time),
                RecordRef::Removed(_) | RecordRef::State(_) | RecordRef::Summary(..) => return,
            };
            if last >= self.last_seq {
                self.last_seq = last;
                self.last_time = time;
            }
        });
    }

    /// The last sequence indexed in any block.
    fn last_indexed(&self) -> u64 {
        self.blocks
            .iter()
            .rev()
            .find(|b| !b.is_empty())
            .map_or(0, |b| b.last)
    }

    /// While restoring: keeps only the newest block loaded.
    fn evict_restored(&mut self) {
        if !self.reads_back() {
            return;
        }
        let n = self.blocks.len();
        for b in self.blocks.iter_mut().take(n.saturating_sub(1)) {
            if b.loaded.is_some() && b.written == b.len {
                b.unload();
            }
        }
    }

    /// Ends a restore: blocks with nothing live go (but the last), and
    /// the first sequence is found.
    pub fn finish_restore(&mut self) {
        let mut i = 0;
        while i + 1 < self.blocks.len() {
            if self.blocks[i].live == 0 {
                let block = self.blocks.remove(i).expect("a block");
                if let Some(disk) = self.disk.as_mut() {
                    disk.drops.push(block.id);
                }
            } else {
                i += 1;
            }
        }
        self.recent_removals.clear();
        self.fix_first();
        if self.disk.is_some() && self.last_seq > 0 {
            // Written down anew where the sequence is, so that nothing
            // read in this restore (a dropped block) is needed again.
            self.new_tail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limits: Limits) -> Store {
        Store::new(Accounting::Memory, limits)
    }

    fn seqs(s: &Store) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(seq) = s.next_seq(seqs.last().map_or(0, |l| l + 1)) {
            seqs.push(seq);
        }
        seqs
    }

    #[test]
    fn byte_accounting_matches_nats_server() {
        // The reference's example: subject `g.a`, payload `m1`.
        assert_eq!(Accounting::File.size(b"g.a", b"", b"m1"), 35);
        assert_eq!(Accounting::Memory.size(b"g.a", b"", b"m1"), 21);
        let hdr = b"NATS/1.0\r\nX: 1\r\n\r\n";
        assert_eq!(Accounting::File.size(b"g.a", hdr, b"m1"), 35 + 4 + 18);
        assert_eq!(Accounting::Memory.size(b"g.a", hdr, b"m1"), 21 + 18);
    }

    #[test]
    fn sequences_state_and_a_full_purge() {
        let mut s = store(Limits::default());
        assert_eq!(s.state(), State::default());
        for i in 1..=10u64 {
            assert_eq!(s.store(b"a", b"", b"x", 100 + i), Ok(i));
        }
        let st = s.state();
        assert_eq!((st.messages, st.first_seq, st.last_seq), (10, 1, 10));
        assert_eq!((st.first_time, st.last_time, st.bytes), (101, 110, 10 * 18));
        assert_eq!(s.purge(&Purge::default()), 10);
        // As nats-server: first 11, last 10, first time unset, last kept.
        let st = s.state();
        assert_eq!((st.messages, st.first_seq, st.last_seq), (0, 11, 10));
        assert_eq!((st.first_time, st.last_time, st.bytes), (0, 110, 0));
        assert_eq!(s.store(b"a", b"", b"x", 200), Ok(11));
        assert_eq!(s.state().first_seq, 11);
    }

    #[test]
    fn discard_old_drops_the_oldest_and_discard_new_refuses() {
        let mut s = store(Limits {
            max_msgs: Some(3),
            ..Limits::default()
        });
        for i in 0..5 {
            s.store(b"a", b"", b"x", i).unwrap();
        }
        assert_eq!(seqs(&s), [3, 4, 5]);
        let mut s = store(Limits {
            max_msgs: Some(3),
            discard: Discard::New,
            ..Limits::default()
        });
        for i in 0..3 {
            s.store(b"a", b"", b"x", i).unwrap();
        }
        assert_eq!(s.store(b"a", b"", b"x", 9), Err(StoreError::MaxMsgs));
        assert_eq!(s.state().last_seq, 3, "a refused message takes no sequence");
        let mut s = store(Limits {
            max_bytes: Some(40),
            discard: Discard::New,
            ..Limits::default()
        });
        s.store(b"a", b"", b"x", 0).unwrap();
        s.store(b"a", b"", b"x", 0).unwrap();
        assert_eq!(s.store(b"a", b"", b"x", 0), Err(StoreError::MaxBytes));
        let mut s = store(Limits {
            max_bytes: Some(40),
            ..Limits::default()
        });
        for _ in 0..5 {
            s.store(b"a", b"", b"x", 0).unwrap();
        }
        assert_eq!(seqs(&s), [4, 5]);
    }

    #[test]
    fn per_subject_limit_drops_that_subjects_oldest() {
        let mut s = store(Limits {
            max_msgs_per_subject: Some(2),
            ..Limits::default()
        });
        for subject in [&b"a"[..], b"b", b"a", b"a", b"b", b"a"] {
            s.store(subject, b"", b"x", 0).unwrap();
        }
        // a: 1, 3, 4, 6 (1 and 3 dropped); b: 2, 5.
        assert_eq!(seqs(&s), [2, 4, 5, 6]);
        assert_eq!(s.subject_counts(b">"), [(&b"a"[..], 2), (&b"b"[..], 2)]);
        // The gap left inside is a deleted sequence.
        assert_eq!(s.deleted(), [3]);
        assert_eq!(s.state().num_deleted, 1);
        let mut s = store(Limits {
            max_msgs_per_subject: Some(1),
            discard: Discard::New,
            discard_new_per_subject: true,
            ..Limits::default()
        });
        s.store(b"a", b"", b"x", 0).unwrap();
        assert_eq!(
            s.store(b"a", b"", b"y", 0),
            Err(StoreError::MaxMsgsPerSubject)
        );
        assert_eq!(s.store(b"b", b"", b"y", 0), Ok(2));
    }

    #[test]
    fn removing_and_the_deleted_list() {
        let mut s = store(Limits::default());
        for i in 0..5 {
            s.store(b"a", b"", b"x", i).unwrap();
        }
        assert_eq!(s.remove(3), Ok(()));
        assert_eq!(s.remove(3), Err(RemoveError::NotFound));
        assert_eq!(s.remove(9), Err(RemoveError::Eof));
        assert_eq!(s.deleted(), [3]);
        assert_eq!(s.state().num_deleted, 1);
        assert_eq!(s.remove(1), Ok(()));
        assert_eq!(s.state().first_seq, 2);
        assert_eq!(s.deleted(), [3]);
    }

    #[test]
    fn purge_by_filter_sequence_and_keep() {
        let fill = || {
            let mut s = store(Limits::default());
            for (i, subject) in [&b"a.1"[..], b"b.1", b"a.2", b"b.2", b"a.1"]
                .into_iter()
                .enumerate()
            {
                s.store(subject, b"", b"x", i as u64).unwrap();
            }
            s
        };
        let mut s = fill();
        let a = Some(&b"a.*"[..]);
        assert_eq!(
            s.purge(&Purge {
                filter: a,
                ..Purge::default()
            }),
            3
        );
        assert_eq!(seqs(&s), [2, 4]);
        let mut s = fill();
        assert_eq!(
            s.purge(&Purge {
                below: Some(3),
                ..Purge::default()
            }),
            2
        );
        assert_eq!(seqs(&s), [3, 4, 5]);
        assert_eq!(s.state().first_seq, 3);
        let mut s = fill();
        assert_eq!(
            s.purge(&Purge {
                keep: Some(2),
                ..Purge::default()
            }),
            3
        );
        assert_eq!(seqs(&s), [4, 5]);
        let mut s = fill();
        let keep_one_a = Purge {
            filter: a,
            keep: Some(1),
            ..Purge::default()
        };
        assert_eq!(s.purge(&keep_one_a), 2);
        assert_eq!(seqs(&s), [2, 4, 5]);
        let mut s = fill();
        let a_below_4 = Purge {
            filter: a,
            below: Some(4),
            ..Purge::default()
        };
        assert_eq!(s.purge(&a_below_4), 2);
        assert_eq!(seqs(&s), [2, 4, 5]);
    }

    #[test]
    fn lookups_by_subject() {
        let mut s = store(Limits::default());
        for (i, subject) in [&b"a.1"[..], b"b.1", b"a.2", b"b.2", b"a.1"]
            .into_iter()
            .enumerate()
        {
            s.store(subject, b"", b"x", i as u64).unwrap();
        }
        assert_eq!(s.last_by_subject(b"a.1").map(|m| m.seq), Some(5));
        assert_eq!(s.last_by_subject(b"b.*").map(|m| m.seq), Some(4));
        assert_eq!(s.last_by_subject(b"c"), None);
        assert_eq!(s.next_by_subject(b"b.>", 0).map(|m| m.seq), Some(2));
        assert_eq!(s.next_by_subject(b"b.>", 3).map(|m| m.seq), Some(4));
        assert_eq!(s.next_by_subject(b"b.>", 5), None);
    }

    #[test]
    fn messages_expire_by_age() {
        let mut s = store(Limits {
            max_age: Some(1_000),
            ..Limits::default()
        });
        s.store(b"a", b"", b"x", 10_000).unwrap();
        s.store(b"a", b"", b"x", 10_500).unwrap();
        assert_eq!(s.next_expiry(), Some(11_000));
        assert_eq!(s.expire(10_999), 0);
        assert_eq!(s.expire(11_000), 1);
        assert_eq!(s.next_expiry(), Some(11_500));
        assert_eq!(s.expire(20_000), 1);
        assert_eq!(s.next_expiry(), None);
        assert_eq!(s.state().first_seq, 3);
    }

    mod model {
        //! The store against a naive list of messages.
        use std::collections::BTreeMap;
        use std::sync::Mutex;

        use proptest::prelude::*;

        use super::super::*;
        use super::seqs;

        #[derive(Clone, Debug)]
        enum Op {
            Store(u8, u8),
            Remove(u8),
            Purge(Option<u8>, Option<u8>, Option<u8>),
            Expire(u16),
            Skip,
        }

        const SUBJECTS: [&[u8]; 4] = [b"a.1", b"a.2", b"b.1", b"b.2"];
        const FILTERS: [&[u8]; 4] = [b"a.*", b"b.1", b">", b"*.2"];

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..4u8, 0..8u8).prop_map(|(s, n)| Op::Store(s, n)),
                1 => any::<u8>().prop_map(Op::Remove),
                1 => (prop::option::of(0..4u8), prop::option::of(any::<u8>()), prop::option::of(0..4u8))
                    .prop_map(|(f, b, k)| Op::Purge(f, b, k)),
                1 => any::<u16>().prop_map(Op::Expire),
                1 => Just(Op::Skip),
            ]
        }

        fn limits() -> impl Strategy<Value = Limits> {
            (
                prop::option::of(1..6u64),
                prop::option::of(30..200u64),
                prop::option::of(1..3u64),
                prop::option::of(1..500u64),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(m, b, p, a, new, per)| Limits {
                    max_msgs: m,
                    max_bytes: b,
                    max_msgs_per_subject: p,
                    max_age: a,
                    discard: if new { Discard::New } else { Discard::Old },
                    discard_new_per_subject: new && per && p.is_some(),
                })
        }

        /// (seq, subject index, time, size)
        type Msg = (u64, usize, u64, u64);

        fn model_store(
            msgs: &mut Vec<Msg>,
            last: &mut u64,
            l: &Limits,
            subject: usize,
            size: u64,
            time: u64,
        ) -> bool {
            let total: u64 = msgs.iter().map(|m| m.3).sum();
            let on_subject = msgs.iter().filter(|m| m.1 == subject).count() as u64;
            if l.discard == Discard::New
                && (l.max_msgs.is_some_and(|x| msgs.len() as u64 >= x)
                    || l.max_bytes.is_some_and(|x| total + size > x)
                    || (l.discard_new_per_subject
                        && l.max_msgs_per_subject.is_some_and(|x| on_subject >= x)))
            {
                return false;
            }
            *last += 1;
            msgs.push((*last, subject, time, size));
            if let Some(x) = l.max_msgs_per_subject {
                while msgs.iter().filter(|m| m.1 == subject).count() as u64 > x {
                    let i = msgs.iter().position(|m| m.1 == subject).unwrap();
                    msgs.remove(i);
                }
            }
            loop {
                let total: u64 = msgs.iter().map(|m| m.3).sum();
                let over = l.max_msgs.is_some_and(|x| msgs.len() as u64 > x)
                    || l.max_bytes.is_some_and(|x| total > x);
                if !over || msgs.is_empty() {
                    return true;
                }
                msgs.remove(0);
            }
        }

        /// Block files by id: what the store wrote, read back on demand;
        /// and the summaries files, by generation.
        #[derive(Default)]
        struct Disk(Mutex<BTreeMap<u64, Vec<u8>>>, Mutex<BTreeMap<u64, Vec<u8>>>);

        impl BlockReader for Disk {
            fn read_block(&self, _: &str, _: &str, block: u64) -> io::Result<Vec<u8>> {
                let files = self.0.lock().expect("disk");
                files
                    .get(&block)
                    .cloned()
                    .ok_or_else(|| io::ErrorKind::NotFound.into())
            }
        }

        impl Disk {
            fn apply(&self, writes: Vec<BlockWrite>) {
                let mut files = self.0.lock().expect("disk");
                for write in writes {
                    match write {
                        BlockWrite::Append { block, bytes } => {
                            files.entry(block).or_default().extend_from_slice(&bytes)
                        }
                        BlockWrite::Drop { block } => {
                            files.remove(&block);
                        }
                        // As the host: a new generation replaces the others.
                        BlockWrite::Summaries { generation, bytes } => {
                            let mut index = self.1.lock().expect("disk");
                            index.retain(|&g, _| g == generation);
                            index.entry(generation).or_default().extend(bytes);
                        }
                    }
                }
            }

            /// How a store (of account A's stream S) reads its blocks back from here.
            fn files(self: &Arc<Self>) -> BlockFiles {
                BlockFiles {
                    reader: self.clone(),
                    account: "A".into(),
                    stream: "S".into(),
                }
            }

            /// A store rebuilt from the files, as at start-up: from the
            /// blocks' summaries where they still describe the blocks (and
            /// then reading blocks back from here), else from the blocks.
            fn restore(self: &Arc<Self>, limits: &Limits, summaries: bool) -> Store {
                let files: Vec<(u64, Vec<u8>)> = self
                    .0
                    .lock()
                    .expect("disk")
                    .iter()
                    .map(|(k, v)| (*k, v.clone()))
                    .collect();
                let mut store =
                    Store::on_disk(Accounting::Memory, limits.clone(), Some(self.files()));
                let mut latest = BTreeMap::new();
                for (&generation, bytes) in self.1.lock().expect("disk").iter() {
                    log_format::scan(bytes, |record, _| {
                        if let RecordRef::Summary(block, summary) = record {
                            latest.insert(block, (generation, summary.to_vec()));
                        }
                    });
                }
                for (id, bytes) in files {
                    let len = bytes.len() as u64;
                    if let (true, Some((generation, summary))) = (summaries, latest.get(&id)) {
                        if store.restore_summary(id, summary, len, *generation) {
                            continue;
                        }
                    }
                    let scan = store.restore_block(id, bytes);
                    assert_eq!(scan.problem, None);
                }
                store.finish_restore();
                store
            }
        }

        #[test]
        fn a_restart_reads_summaries_not_blocks() {
            let disk = Arc::new(Disk::default());
            let files = disk.files();
            let mut store = Store::on_disk(Accounting::Memory, Limits::default(), Some(files));
            store.set_block_bytes(200);
            for i in 0..100u64 {
                let subject = SUBJECTS[(i % 4) as usize];
                store.store(subject, b"", b"0123456789", 1_000 + i).unwrap();
            }
            store.remove(50).unwrap();
            disk.apply(store.take_writes());
            let blocks = disk.0.lock().unwrap().len();
            let mut summarised = std::collections::BTreeSet::new();
            for bytes in disk.1.lock().unwrap().values() {
                log_format::scan(bytes, |record, _| {
                    if let RecordRef::Summary(block, _) = record {
                        summarised.insert(block);
                    }
                });
            }
            let summaries = summarised.len();
            assert!(blocks > 10, "{blocks} blocks");
            // Every closed block but the one with a removal since: summarised.
            assert!(
                summaries >= blocks - 2,
                "{summaries} summaries of {blocks} blocks"
            );
            let mut restored = disk.restore(&Limits::default(), true);
            // Only the first block (for the first time) and the last one
            // (read whole) are in memory; the rest waits on disk.
            assert!(
                restored.loaded_bytes() < 3 * 400,
                "{}",
                restored.loaded_bytes()
            );
            assert_eq!(restored.state(), store.state());
            assert_eq!(restored.last_seq_by_subject(b"a.2"), Some(98));
            assert_eq!(restored.next_seq_by_subject(b"b.2", 5), Some(8));
            assert_eq!(restored.get(77).map(|m| m.data), Some(&b"0123456789"[..]));
            assert_eq!(restored.get(50), None);
        }

        #[test]
        fn the_summaries_file_rolls_over_with_every_block_in_the_new_one() {
            let disk = Arc::new(Disk::default());
            let files = disk.files();
            // Old blocks go as new ones come: summaries of gone blocks
            // pile up until a new generation starts.
            let limits = Limits {
                max_msgs: Some(500),
                ..Limits::default()
            };
            let mut store = Store::on_disk(Accounting::Memory, limits.clone(), Some(files));
            store.set_block_bytes(100);
            for i in 0..20_000u64 {
                store
                    .store(SUBJECTS[(i % 4) as usize], b"", b"0123456789", i)
                    .unwrap();
                if i % 100 == 99 {
                    disk.apply(store.take_writes());
                }
            }
            disk.apply(store.take_writes());
            let generations: Vec<u64> = disk.1.lock().unwrap().keys().copied().collect();
            assert_eq!(generations.len(), 1, "the older generations went");
            assert!(generations[0] > 1, "{generations:?}");
            let held = disk.1.lock().unwrap()[&generations[0]].len() as u64;
            assert!(held <= INDEX_FULL + 100_000, "{held} bytes of summaries");
            let mut restored = disk.restore(&limits, true);
            assert!(
                restored.loaded_bytes() < 1_000,
                "{}",
                restored.loaded_bytes()
            );
            assert_eq!(restored.state(), store.state());
            assert_eq!(restored.get(19_900).map(|m| m.seq), Some(19_900));
        }

        #[test]
        fn a_block_found_corrupt_when_read_back_is_reported_and_given_up() {
            let disk = Arc::new(Disk::default());
            let files = disk.files();
            let mut store = Store::on_disk(Accounting::Memory, Limits::default(), Some(files));
            store.set_block_bytes(200);
            for i in 0..40u64 {
                store.store(b"a.1", b"", b"0123456789", 1_000 + i).unwrap();
            }
            disk.apply(store.take_writes());
            // A bit flipped in the second block, behind its summary's back.
            let (id, first, last) = {
                let b = &store.blocks[1];
                (b.id, b.first, b.last)
            };
            disk.0.lock().unwrap().get_mut(&id).unwrap()[30] ^= 1;
            let mut restored = disk.restore(&Limits::default(), true);
            assert_eq!(
                restored.state().messages,
                40,
                "the summary is taken on trust"
            );
            assert_eq!(restored.get(first), None, "the block does not read back");
            let problems = restored.take_problems();
            assert_eq!(problems.len(), 1, "{problems:?}");
            let lost = last - first + 1;
            assert!(
                problems[0].contains("'A > S'")
                    && problems[0]
                        .contains(&format!("block {id} no longer holds sequence {first}"))
                    && problems[0].contains(&format!(
                        "{lost} messages (sequences {first} to {last}) lost"
                    )),
                "{}",
                problems[0]
            );
            let state = restored.state();
            assert_eq!(state.messages, 40 - lost);
            assert_eq!(state.last_seq, 40);
            assert_eq!(restored.get(last + 1).map(|m| m.seq), Some(last + 1));
            // Its file goes with the next writes.
            let writes = restored.take_writes();
            assert!(
                writes.contains(&BlockWrite::Drop { block: id }),
                "{writes:?}"
            );
        }

        fn live(store: &mut Store) -> Vec<(u64, Vec<u8>, usize)> {
            seqs(store)
                .into_iter()
                .map(|seq| {
                    let m = store.get(seq).expect("a live message reads back");
                    assert_eq!(m.seq, seq);
                    (seq, m.subject.to_vec(), m.data.len())
                })
                .collect()
        }

        /// What a store must answer to an op: the model's own answer.
        #[derive(Debug, PartialEq)]
        enum Answer {
            Stored(bool),
            Removed(Result<(), RemoveError>),
            Purged(u64),
            Skipped(u64),
            Expired,
        }

        /// Applies `op` to the model at `now`.
        fn model_step(m: &mut Vec<Msg>, l: &mut u64, limits: &Limits, op: &Op, now: u64) -> Answer {
            match *op {
                Op::Store(s, n) => {
                    let size =
                        Accounting::Memory.size(SUBJECTS[s as usize], b"", &vec![b'x'; n as usize]);
                    Answer::Stored(model_store(m, l, limits, s as usize, size, now))
                }
                Op::Remove(seq) => {
                    let seq = u64::from(seq % 64);
                    Answer::Removed(match m.iter().position(|x| x.0 == seq) {
                        Some(i) => {
                            m.remove(i);
                            Ok(())
                        }
                        None if seq > *l => Err(RemoveError::Eof),
                        None => Err(RemoveError::NotFound),
                    })
                }
                Op::Purge(f, below, keep) => {
                    let filter = f.map(|f| FILTERS[f as usize]);
                    let below = below.map(|b| u64::from(b % 64));
                    let matches =
                        |x: &Msg| filter.is_none_or(|f| subject_matches(f, SUBJECTS[x.1]));
                    let matching = m.iter().filter(|x| matches(x)).count() as u64;
                    let mut chosen: Vec<u64> = m
                        .iter()
                        .filter(|x| matches(x) && below.is_none_or(|b| x.0 < b))
                        .map(|x| x.0)
                        .collect();
                    if let Some(k) = keep {
                        chosen.truncate(matching.saturating_sub(u64::from(k)) as usize);
                    }
                    m.retain(|x| !chosen.contains(&x.0));
                    if let (None, Some(b), None) = (filter, below, keep) {
                        if b > *l + 1 {
                            *l = b - 1;
                        }
                    }
                    Answer::Purged(chosen.len() as u64)
                }
                Op::Skip => {
                    *l += 1;
                    Answer::Skipped(*l)
                }
                Op::Expire(_) => {
                    if let Some(age) = limits.max_age {
                        m.retain(|x| x.2 > now.saturating_sub(age));
                    }
                    Answer::Expired
                }
            }
        }

        /// Applies `op` to a store at `now`.
        fn store_step(store: &mut Store, op: &Op, now: u64) -> Answer {
            match *op {
                Op::Store(s, n) => {
                    let data = vec![b'x'; n as usize];
                    Answer::Stored(store.store(SUBJECTS[s as usize], b"", &data, now).is_ok())
                }
                Op::Remove(seq) => Answer::Removed(store.remove(u64::from(seq % 64))),
                Op::Purge(f, below, keep) => Answer::Purged(store.purge(&Purge {
                    filter: f.map(|f| FILTERS[f as usize]),
                    below: below.map(|b| u64::from(b % 64)),
                    keep: keep.map(u64::from),
                })),
                Op::Skip => Answer::Skipped(store.skip(now)),
                Op::Expire(_) => {
                    store.expire(now);
                    Answer::Expired
                }
            }
        }

        /// The store holds exactly the model's messages, with its numbers.
        fn check(store: &mut Store, m: &[Msg], l: u64) -> Result<(), TestCaseError> {
            let want: Vec<(u64, Vec<u8>, usize)> = m
                .iter()
                .map(|x| {
                    (
                        x.0,
                        SUBJECTS[x.1].to_vec(),
                        x.3 as usize - SUBJECTS[x.1].len() - 16,
                    )
                })
                .collect();
            prop_assert_eq!(live(store), want);
            let state = store.state();
            prop_assert_eq!(state.messages, m.len() as u64);
            prop_assert_eq!(state.bytes, m.iter().map(|x| x.3).sum::<u64>());
            prop_assert_eq!(state.last_seq, l);
            if let Some(first) = m.first() {
                prop_assert_eq!(state.first_seq, first.0);
                prop_assert_eq!(state.first_time, first.2);
                prop_assert_eq!(state.num_deleted, l - first.0 + 1 - m.len() as u64);
                let gaps: Vec<u64> = m.windows(2).flat_map(|w| w[0].0 + 1..w[1].0).collect();
                prop_assert_eq!(store.deleted(), gaps);
            } else if l > 0 {
                prop_assert_eq!(state.first_seq, l + 1);
                prop_assert_eq!(state.num_deleted, 0);
            }
            for (i, subject) in SUBJECTS.iter().enumerate() {
                let on: Vec<u64> = m.iter().filter(|x| x.1 == i).map(|x| x.0).collect();
                prop_assert_eq!(store.last_seq_by_subject(subject), on.last().copied());
                prop_assert_eq!(store.next_seq_by_subject(subject, 0), on.first().copied());
            }
            prop_assert_eq!(store.take_problems(), Vec::<String>::new());
            Ok(())
        }

        proptest! {
            /// A memory store, and a file store with tiny blocks that keeps
            /// only a few loaded (the rest read back from a simulated
            /// disk), agree with a naive list after every step; so does a
            /// store restored from what the file store wrote.
            #[test]
            fn agrees_with_a_list(
                limits in limits(),
                block_bytes in 40..400usize,
                ops in prop::collection::vec(op(), 0..80),
            ) {
                let mut memory = Store::new(Accounting::Memory, limits.clone());
                memory.set_block_bytes(block_bytes);
                let disk = Arc::new(Disk::default());
                let files = disk.files();
                let mut file = Store::on_disk(Accounting::Memory, limits.clone(), Some(files));
                file.set_block_bytes(block_bytes);
                let mut msgs: Vec<Msg> = Vec::new();
                let mut last = 0u64;
                let mut now = 1_000u64;
                for op in ops {
                    now += 7;
                    if let Op::Expire(d) = op {
                        now += u64::from(d);
                    }
                    let want = model_step(&mut msgs, &mut last, &limits, &op, now);
                    for store in [&mut memory, &mut file] {
                        prop_assert_eq!(&store_step(store, &op, now), &want);
                        check(store, &msgs, last)?;
                    }
                    let had = file.has_writes();
                    let writes = file.take_writes();
                    prop_assert_eq!(had, !writes.is_empty(), "has_writes tells");
                    disk.apply(writes);
                    // A few blocks loaded, whatever the stream holds.
                    prop_assert!(file.loaded_bytes() <= (LOADED_BLOCKS + 1) * 2 * (block_bytes + 400) + 4096);
                    for summaries in [false, true] {
                        let mut restored = disk.restore(&limits, summaries);
                        check(&mut restored, &msgs, last)?;
                    }
                }
            }
        }
    }
}
