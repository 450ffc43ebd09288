//! Taking a closed client's subscriptions out of the subject trie a slice at
//! a time, so that closing a client with a million subscriptions does not
//! hold every other client for seconds.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Duration;

use crate::bytes_map::BytesMap;

use crate::errors::CloseReason;
use crate::sublist::SubKey;
use crate::time::Time;

use super::closed::{ClosedClient, SubsWriter};
use super::timers::{Timer, SERVER_TIMER};
use super::Server;

/// Subscriptions removed per slice: a few milliseconds of work.
pub(super) const TEARDOWN_SLICE: usize = 2_000;

/// A closed client's subscriptions still in the trie, and its closed-
/// connection record, kept once the last one is out.
pub(super) struct Teardown {
    /// The client's own map of its subscriptions (by sid), consumed as they
    /// are removed: nothing is copied or walked ahead of time.
    subs: crate::bytes_map::IntoIter<SubKey>,
    kept: SubsWriter,
    record: ClosedClient,
}

/// The teardowns in progress, oldest first.
#[derive(Default)]
pub(super) struct Teardowns {
    queue: VecDeque<Teardown>,
    /// Subscriptions still to remove, in all.
    pending: usize,
}

impl Teardowns {
    /// Subscriptions of closed clients still in the trie.
    pub(super) fn pending(&self) -> usize {
        self.pending
    }
}

impl Server {
    /// Removes the closing client's subscriptions `keys` and keeps its
    /// closed-connection record: at once when they are few, else the first
    /// slice now and the rest on the next turns of the loop (they match no
    /// delivery meanwhile: their client is gone).
    pub(super) fn tear_down(&mut self, index: usize, reason: CloseReason, subs: BytesMap<SubKey>) {
        self.teardowns.pending += subs.len();
        let teardown = Teardown {
            subs: subs.into_iter(),
            kept: SubsWriter::new(),
            record: self.closed_record(index, reason),
        };
        let first = self.teardowns.queue.is_empty();
        self.teardowns.queue.push_back(teardown);
        if first {
            self.teardown_slice();
            if !self.teardowns.queue.is_empty() {
                self.schedule_teardown(self.input_time);
            }
        }
    }

    /// The teardown timer: one more slice, and the next turn if work is left.
    pub(super) fn teardown_timer(&mut self, now: Time) {
        self.teardown_slice();
        if !self.teardowns.queue.is_empty() {
            self.schedule_teardown(now);
        }
    }

    /// Finishes every teardown now (before a reload rebuilds the accounts).
    pub(super) fn finish_teardowns(&mut self) {
        while !self.teardowns.queue.is_empty() {
            self.teardown_slice();
        }
    }

    /// Removes up to [`TEARDOWN_SLICE`] subscriptions of the oldest teardown;
    /// keeps its record when it is complete.
    fn teardown_slice(&mut self) {
        let Some(mut teardown) = self.teardowns.queue.pop_front() else {
            return;
        };
        let mut removed = 0;
        for (_, key) in teardown.subs.by_ref().take(TEARDOWN_SLICE) {
            removed += 1;
            if let Some(sub) = self.unlink_sub(key) {
                teardown.kept.push(&sub);
            }
        }
        self.teardowns.pending -= removed;
        let left = teardown.subs.len();
        if left > 0 && teardown.kept.count() == removed {
            // After the first slice: room for the rest at the same average
            // size (plus a tenth), so the record's buffer is not copied as it
            // doubles, tens of megabytes at a time for a million.
            let per_sub = teardown.kept.len() / removed.max(1) + 1;
            teardown.kept.reserve(left * per_sub + left * per_sub / 10);
        }
        if left == 0 {
            self.closed.push(teardown.record.with_subs(teardown.kept));
        } else {
            self.teardowns.queue.push_front(teardown);
        }
    }

    /// The next slice runs just after `now`: after the runtime has served
    /// whatever is ready, not within the same timer call.
    fn schedule_teardown(&mut self, now: Time) {
        let due = now + Duration::from_nanos(1);
        self.timers
            .push(Reverse((due, SERVER_TIMER, Timer::Teardown as u8)));
    }
}
