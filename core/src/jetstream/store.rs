//! A stream's messages in memory, with nats-server's limits (messages,
//! bytes, per subject, age; discard old or new) and its byte accounting.
//!
//! The index here (sequence order, each subject's sequences) is what every
//! store needs; a file store keeps the same index and the bytes on disk.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use super::log_format::Record;
use crate::subject::subject_matches;

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMsg {
    pub subject: Box<[u8]>,
    pub seq: u64,
    /// Wall-clock time of storing, in nanoseconds since the Unix epoch.
    pub time: u64,
    /// The raw header block (`NATS/1.0\r\n...\r\n\r\n`), empty when none.
    pub hdr: Box<[u8]>,
    pub data: Box<[u8]>,
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

/// The messages of one subject, in sequence order.
#[derive(Debug, Default)]
struct SubjectSeqs(VecDeque<u64>);

/// A stream's messages in memory, with its limits applied as they arrive.
#[derive(Debug)]
pub struct MemStore {
    accounting: Accounting,
    limits: Limits,
    msgs: BTreeMap<u64, StoredMsg>,
    subjects: HashMap<Box<[u8]>, SubjectSeqs>,
    bytes: u64,
    /// The first sequence still (or next to be) stored; 0 before any.
    first_seq: u64,
    last_seq: u64,
    last_time: u64,
    /// For a store kept on disk: every change since the last
    /// [`MemStore::take_journal`], as the log records that make it.
    journal: Option<Vec<Record>>,
    /// The latest removals (sequence, subject), for consumers keeping
    /// count of what they have left without recounting (bounded).
    recent_removals: VecDeque<(u64, Box<[u8]>)>,
    /// Every removal ever, counted.
    removed_total: u64,
}

/// How many removals a store remembers for its consumers' counts.
const RECENT_REMOVALS: usize = 4096;

impl MemStore {
    pub fn new(accounting: Accounting, limits: Limits) -> MemStore {
        MemStore {
            accounting,
            limits,
            msgs: BTreeMap::new(),
            subjects: HashMap::new(),
            bytes: 0,
            first_seq: 0,
            last_seq: 0,
            last_time: 0,
            journal: None,
            recent_removals: VecDeque::new(),
            removed_total: 0,
        }
    }

    /// Keeps a journal of changes from now on (a file stream's store).
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The changes since the last call (empty without a journal).
    pub fn take_journal(&mut self) -> Vec<Record> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, record: impl FnOnce() -> Record) {
        if let Some(journal) = self.journal.as_mut() {
            journal.push(record());
        }
    }

    /// Rebuilds the store from its log: messages as they were stored,
    /// removals, and moves of the last sequence, with no limit applied.
    pub fn replay(&mut self, records: Vec<Record>) {
        for record in records {
            match record {
                Record::Msg(msg) => {
                    let size = self.accounting.size(&msg.subject, &msg.hdr, &msg.data);
                    if self.msgs.contains_key(&msg.seq) {
                        continue;
                    }
                    self.bytes += size;
                    self.last_seq = self.last_seq.max(msg.seq);
                    self.last_time = msg.time;
                    let seqs = &mut self.subjects.entry(msg.subject.clone()).or_default().0;
                    let at = seqs.partition_point(|&s| s < msg.seq);
                    seqs.insert(at, msg.seq);
                    self.msgs.insert(msg.seq, msg);
                }
                Record::Removed(seq) => self.remove_stored(seq),
                Record::Skipped(last, time) => {
                    if last >= self.last_seq {
                        self.last_seq = last;
                        self.last_time = time;
                    }
                }
            }
        }
        self.first_seq = match self.msgs.keys().next() {
            Some(&first) => first,
            None if self.last_seq > 0 => self.last_seq + 1,
            None => 0,
        };
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
            if limits
                .max_msgs
                .is_some_and(|max| self.msgs.len() as u64 >= max)
            {
                return Err(StoreError::MaxMsgs);
            }
            if limits.max_bytes.is_some_and(|max| self.bytes + size > max) {
                return Err(StoreError::MaxBytes);
            }
            if limits.discard_new_per_subject {
                let held = self.subjects.get(subject).map_or(0, |s| s.0.len() as u64);
                if limits.max_msgs_per_subject.is_some_and(|max| held >= max) {
                    return Err(StoreError::MaxMsgsPerSubject);
                }
            }
        }
        let seq = self.last_seq + 1;
        if self.first_seq == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.last_time = time;
        self.bytes += size;
        self.subjects
            .entry(subject.into())
            .or_default()
            .0
            .push_back(seq);
        let msg = StoredMsg {
            subject: subject.into(),
            seq,
            time,
            hdr: hdr.into(),
            data: data.into(),
        };
        self.note(|| Record::Msg(msg.clone()));
        self.msgs.insert(seq, msg);
        if let Some(max) = self.limits.max_msgs_per_subject {
            self.trim_subject(subject, max);
        }
        self.enforce_limits();
        Ok(seq)
    }

    /// Takes the next sequence without storing anything (a message an
    /// interest stream keeps for nobody); returns it.
    pub fn skip(&mut self, time: u64) -> u64 {
        self.last_seq += 1;
        self.last_time = time;
        if self.msgs.is_empty() {
            self.first_seq = self.last_seq + 1;
        }
        let last = self.last_seq;
        self.note(|| Record::Skipped(last, time));
        last
    }

    /// Drops the oldest messages of `subject` beyond `max`.
    fn trim_subject(&mut self, subject: &[u8], max: u64) {
        loop {
            let oldest = match self.subjects.get(subject) {
                Some(seqs) if seqs.0.len() as u64 > max => seqs.0[0],
                _ => return,
            };
            self.remove_stored(oldest);
        }
    }

    fn enforce_subject_limits(&mut self) {
        let Some(max) = self.limits.max_msgs_per_subject else {
            return;
        };
        let over: Vec<Box<[u8]>> = self
            .subjects
            .iter()
            .filter(|(_, seqs)| seqs.0.len() as u64 > max)
            .map(|(subject, _)| subject.clone())
            .collect();
        for subject in over {
            self.trim_subject(&subject, max);
        }
    }

    /// Drops the oldest messages while over `max_msgs` or `max_bytes`.
    fn enforce_limits(&mut self) {
        while let Some(&first) = self.msgs.keys().next() {
            let over_msgs = self
                .limits
                .max_msgs
                .is_some_and(|max| self.msgs.len() as u64 > max);
            let over_bytes = self.limits.max_bytes.is_some_and(|max| self.bytes > max);
            if !over_msgs && !over_bytes {
                return;
            }
            self.remove_stored(first);
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
        while let Some((&seq, msg)) = self.msgs.iter().next() {
            if msg.time > cutoff {
                break;
            }
            self.remove_stored(seq);
            removed += 1;
        }
        removed
    }

    /// When the oldest message expires (Unix nanoseconds), for the timer.
    pub fn next_expiry(&self) -> Option<u64> {
        let max_age = self.limits.max_age?;
        let (_, first) = self.msgs.iter().next()?;
        Some(first.time.saturating_add(max_age))
    }

    /// Removes a stored message; the caller knows it is there.
    fn remove_stored(&mut self, seq: u64) {
        let Some(msg) = self.msgs.remove(&seq) else {
            return;
        };
        self.note(|| Record::Removed(seq));
        if self.recent_removals.len() == RECENT_REMOVALS {
            self.recent_removals.pop_front();
        }
        self.recent_removals.push_back((seq, msg.subject.clone()));
        self.removed_total += 1;
        self.bytes -= self.accounting.size(&msg.subject, &msg.hdr, &msg.data);
        if let Some(seqs) = self.subjects.get_mut(&msg.subject) {
            match seqs.0.binary_search(&seq) {
                Ok(0) => {
                    seqs.0.pop_front();
                }
                Ok(i) => {
                    seqs.0.remove(i);
                }
                Err(_) => {}
            }
            if seqs.0.is_empty() {
                self.subjects.remove(&msg.subject);
            }
        }
        if seq == self.first_seq {
            self.first_seq = self
                .msgs
                .keys()
                .next()
                .copied()
                .unwrap_or(self.last_seq + 1);
        }
    }

    /// Removes message `seq` (MSG.DELETE).
    pub fn remove(&mut self, seq: u64) -> Result<(), RemoveError> {
        if seq > self.last_seq {
            return Err(RemoveError::Eof);
        }
        if !self.msgs.contains_key(&seq) {
            return Err(RemoveError::NotFound);
        }
        self.remove_stored(seq);
        Ok(())
    }

    /// Removes what `purge` selects; returns how many messages.
    pub fn purge(&mut self, purge: &Purge<'_>) -> u64 {
        let matching = |msg: &StoredMsg| {
            purge
                .filter
                .is_none_or(|f| subject_matches(f, &msg.subject))
        };
        let below = purge.below.unwrap_or(u64::MAX);
        let mut chosen: Vec<u64> = self
            .msgs
            .range(..below)
            .filter(|(_, m)| matching(m))
            .map(|(&seq, _)| seq)
            .collect();
        if let Some(keep) = purge.keep {
            // The newest `keep` matching messages stay.
            let matching_total = self.msgs.values().filter(|m| matching(m)).count() as u64;
            let drop = matching_total.saturating_sub(keep) as usize;
            chosen.truncate(drop.min(chosen.len()));
        }
        for &seq in &chosen {
            self.remove_stored(seq);
        }
        if purge.filter.is_none() && purge.keep.is_none() {
            match purge.below {
                // A compaction past the end moves the sequence on, as
                // nats-server: the next message gets `below`.
                Some(below) if below > self.last_seq + 1 => {
                    self.last_seq = below - 1;
                    self.first_seq = below;
                    let time = self.last_time;
                    self.note(|| Record::Skipped(below - 1, time));
                }
                _ if self.msgs.is_empty() && self.last_seq > 0 => {
                    self.first_seq = self.last_seq + 1;
                }
                _ => {}
            }
        }
        chosen.len() as u64
    }

    pub fn get(&self, seq: u64) -> Option<&StoredMsg> {
        self.msgs.get(&seq)
    }

    /// The messages from sequence `start` on, in order.
    pub fn from_seq(&self, start: u64) -> impl Iterator<Item = &StoredMsg> {
        self.msgs.range(start..).map(|(_, m)| m)
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

    /// The newest message on a subject matching `filter`.
    pub fn last_by_subject(&self, filter: &[u8]) -> Option<&StoredMsg> {
        if !filter.contains(&b'*') && !filter.contains(&b'>') {
            let seq = *self.subjects.get(filter)?.0.back()?;
            return self.msgs.get(&seq);
        }
        self.msgs
            .values()
            .rev()
            .find(|m| subject_matches(filter, &m.subject))
    }

    /// The first message at or after `start` on a subject matching `filter`.
    pub fn next_by_subject(&self, filter: &[u8], start: u64) -> Option<&StoredMsg> {
        self.msgs
            .range(start..)
            .map(|(_, m)| m)
            .find(|m| subject_matches(filter, &m.subject))
    }

    /// Each subject matching `filter` with its number of messages, sorted.
    pub fn subject_counts(&self, filter: &[u8]) -> Vec<(&[u8], u64)> {
        let mut counts: Vec<(&[u8], u64)> = self
            .subjects
            .iter()
            .filter(|(s, _)| subject_matches(filter, s))
            .map(|(s, seqs)| (&**s, seqs.0.len() as u64))
            .collect();
        counts.sort_unstable();
        counts
    }

    /// The sequences between first and last that are gone, ascending.
    pub fn deleted(&self) -> Vec<u64> {
        if self.msgs.is_empty() {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut expected = self.first_seq;
        for &seq in self.msgs.keys() {
            gone.extend(expected..seq);
            expected = seq + 1;
        }
        gone
    }

    pub fn state(&self) -> State {
        let messages = self.msgs.len() as u64;
        let first_time = self.msgs.values().next().map_or(0, |m| m.time);
        let span = if messages == 0 {
            0
        } else {
            self.last_seq - self.first_seq + 1
        };
        State {
            messages,
            bytes: self.bytes,
            first_seq: self.first_seq,
            first_time,
            last_seq: self.last_seq,
            last_time: self.last_time,
            num_subjects: self.subjects.len() as u64,
            num_deleted: span - messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limits: Limits) -> MemStore {
        MemStore::new(Accounting::Memory, limits)
    }

    fn seqs(s: &MemStore) -> Vec<u64> {
        s.msgs.keys().copied().collect()
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
        use proptest::prelude::*;

        use super::super::*;

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

        proptest! {
            #[test]
            fn agrees_with_a_list(limits in limits(), ops in prop::collection::vec(op(), 0..60)) {
                let mut store = MemStore::new(Accounting::Memory, limits.clone());
                store.keep_journal();
                let mut journal = Vec::new();
                let mut msgs: Vec<Msg> = Vec::new();
                let mut last = 0u64;
                let mut now = 1_000u64;
                for op in ops {
                    now += 7;
                    match op {
                        Op::Store(s, n) => {
                            let data = vec![b'x'; n as usize];
                            let size = Accounting::Memory.size(SUBJECTS[s as usize], b"", &data);
                            let stored = model_store(&mut msgs, &mut last, &limits, s as usize, size, now);
                            prop_assert_eq!(store.store(SUBJECTS[s as usize], b"", &data, now).is_ok(), stored);
                        }
                        Op::Remove(seq) => {
                            let seq = u64::from(seq % 64);
                            let present = msgs.iter().position(|m| m.0 == seq);
                            let want = match present {
                                Some(i) => { msgs.remove(i); Ok(()) }
                                None if seq > last => Err(RemoveError::Eof),
                                None => Err(RemoveError::NotFound),
                            };
                            prop_assert_eq!(store.remove(seq), want);
                        }
                        Op::Purge(f, below, keep) => {
                            let filter = f.map(|f| FILTERS[f as usize]);
                            let below = below.map(|b| u64::from(b % 64));
                            let keep = keep.map(u64::from);
                            let matches = |m: &Msg| filter.is_none_or(|f| subject_matches(f, SUBJECTS[m.1]));
                            let matching = msgs.iter().filter(|m| matches(m)).count() as u64;
                            let mut chosen: Vec<u64> = msgs.iter().filter(|m| matches(m) && below.is_none_or(|b| m.0 < b)).map(|m| m.0).collect();
                            if let Some(k) = keep {
                                chosen.truncate(matching.saturating_sub(k) as usize);
                            }
                            msgs.retain(|m| !chosen.contains(&m.0));
                            if let (None, Some(b), None) = (filter, below, keep) {
                                if b > last + 1 {
                                    last = b - 1;
                                }
                            }
                            let purge = Purge { filter, below, keep };
                            prop_assert_eq!(store.purge(&purge), chosen.len() as u64);
                        }
                        Op::Skip => {
                            last += 1;
                            prop_assert_eq!(store.skip(now), last);
                        }
                        Op::Expire(d) => {
                            now += u64::from(d);
                            if let Some(age) = limits.max_age {
                                msgs.retain(|m| m.2 > now.saturating_sub(age));
                            }
                            store.expire(now);
                        }
                    }
                    let got: Vec<u64> = store.msgs.keys().copied().collect();
                    let want: Vec<u64> = msgs.iter().map(|m| m.0).collect();
                    prop_assert_eq!(&got, &want);
                    // The journal so far rebuilds the same store.
                    journal.extend(store.take_journal());
                    let mut replayed = MemStore::new(Accounting::Memory, Limits::default());
                    replayed.replay(journal.clone());
                    prop_assert_eq!(replayed.msgs.keys().copied().collect::<Vec<_>>(), want);
                    prop_assert_eq!(replayed.state(), store.state());
                    let state = store.state();
                    prop_assert_eq!(state.messages, msgs.len() as u64);
                    prop_assert_eq!(state.bytes, msgs.iter().map(|m| m.3).sum::<u64>());
                    prop_assert_eq!(state.last_seq, last);
                    if let Some(first) = msgs.first() {
                        prop_assert_eq!(state.first_seq, first.0);
                        prop_assert_eq!(state.num_deleted, last - first.0 + 1 - msgs.len() as u64);
                    } else if last > 0 {
                        prop_assert_eq!(state.first_seq, last + 1);
                        prop_assert_eq!(state.num_deleted, 0);
                    }
                }
            }
        }
    }
}
