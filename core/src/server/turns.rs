//! Bounding what one client's input may cost per turn of the event loop:
//! the work is counted as its ops are processed, and once a turn's share is
//! used the rest of its input waits for the next turn, so a flood of PINGs,
//! a million SUBs or a publish with a huge fan-out delays others by a few
//! milliseconds, not seconds.

use std::cmp::Reverse;
use std::time::Duration;

use crate::time::Time;

use super::timers::Timer;
use super::{Event, Server};

/// One unit of work is roughly a tenth of a microsecond: an op, or one
/// message delivered.
pub(super) const OP_COST: u64 = 1;
/// Adding or removing a subscription (trie and maps): ~1.5 µs.
pub(super) const SUB_COST: u64 = 16;
/// A delivery copies its payload: one more unit per KiB.
pub(super) const DELIVERY_KIB_SHIFT: u32 = 10;
/// The share of one client per turn, ~2 ms; ordinary traffic (a 64 KiB
/// read of small messages costs a few thousand) never reaches it.
pub(super) const WORK_PER_TURN: u64 = 20_000;

impl Server {
    /// Whether the input being processed has used its turn's share.
    pub(super) fn turn_used(&self) -> bool {
        self.work >= WORK_PER_TURN
    }

    /// The client used its turn with input left: `rest` (and whatever its
    /// parser holds) is processed on the next turn, and its socket is not
    /// read meanwhile.
    pub(super) fn hold_for_next_turn(&mut self, index: usize, rest: &[u8]) {
        let due = self.input_time + Duration::from_nanos(1);
        let client = self.client_mut(index);
        client.held_input.extend_from_slice(rest);
        client.continue_due = true;
        let id = client.id.0;
        self.timers.push(Reverse((due, id, Timer::Continue as u8)));
    }

    /// The client's next turn: goes on with its held input, and lets the
    /// runtime read it again once that is done.
    pub(super) fn continue_input(&mut self, index: usize, now: Time) {
        self.work = 0;
        let client = self.client_mut(index);
        if !client.continue_due {
            return;
        }
        client.continue_due = false;
        let held = std::mem::take(&mut client.held_input);
        self.feed(index, &held, now);
        if let Some(client) = self.slots[index].client.as_mut() {
            if client.held_input.is_empty() {
                // Keep the buffer's memory for the next time, if it was small.
                let mut held = held;
                held.clear();
                if held.capacity() <= 64 * 1024 {
                    client.held_input = held;
                }
            }
            let id = client.id;
            if self.can_read(id) {
                self.events.push_back(Event::Resume(id));
            }
        }
    }
}
