//! Lame duck mode: stop accepting, tell the clients, close them gradually over
//! `lame_duck_duration`, then exit, so that clients reconnect elsewhere
//! without a storm.

use std::cmp::Reverse;
use std::time::Duration;

use crate::errors::CloseReason;
use crate::time::Time;

use super::timers::{Timer, SERVER_TIMER};
use super::{ClientId, Event, Level, Server};

/// Lame duck mode in progress.
pub(super) struct LameDuck {
    /// The clients open when it started, closed in this order.
    to_close: Vec<ClientId>,
    /// How many are closed.
    closed: usize,
    /// Closes happen this many at a time (more than one only when there are
    /// more clients than nanoseconds to spread them over).
    batch: usize,
    /// The longest pause between two batches; each pause is a random time
    /// between half of it and all of it.
    interval: Duration,
    /// The grace period is over and closing has begun.
    closing: bool,
    /// When the next step is due.
    due: Time,
}

impl Server {
    /// Enters lame duck mode (nats-server's `--signal ldm`): the runtime is
    /// told to stop accepting ([`Event::StopAccepting`]), clients get an INFO
    /// with `"ldm":true`, and after `lame_duck_grace_period` they are closed one
    /// by one over the rest of `lame_duck_duration` (at most a second apart).
    /// When the last is closed the engine asks the runtime to exit
    /// ([`Event::Exit`]). A second call changes nothing.
    pub fn enter_lame_duck(&mut self, now: Time) {
        if self.lame_duck.is_some() {
            return;
        }
        self.input_time = now;
        self.log(
            Level::Info,
            "Entering lame duck mode, stop accepting new clients",
        );
        self.events.push_back(Event::StopAccepting);
        let to_close: Vec<ClientId> = self
            .slots
            .iter()
            .filter_map(|slot| slot.client.as_ref())
            .filter(|client| !client.closing)
            .map(|client| client.id)
            .collect();
        let grace = self.opts.lame_duck_grace_period;
        let spread = self
            .opts
            .lame_duck_duration
            .checked_sub(grace)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let clients = to_close.len().max(1) as u128;
        let (interval, batch) = match spread.as_nanos() / clients {
            0 => (
                Duration::from_nanos(1),
                (clients / spread.as_nanos().max(1)) as usize,
            ),
            nanos => (Duration::from_nanos(nanos.min(1_000_000_000) as u64), 1),
        };
        for id in &to_close {
            if let Some(index) = self.open_index(*id) {
                self.send_lame_duck_info(index);
            }
        }
        let due = now + grace;
        self.lame_duck = Some(LameDuck {
            to_close,
            closed: 0,
            batch,
            interval,
            closing: false,
            due,
        });
        if self
            .lame_duck
            .as_ref()
            .is_some_and(|ld| ld.to_close.is_empty())
        {
            self.finish_lame_duck(now);
            return;
        }
        self.timers
            .push(Reverse((due, SERVER_TIMER, Timer::LameDuck as u8)));
    }

    /// Whether lame duck mode has started.
    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck.is_some()
    }

    /// The lame duck timer: the end of the grace period, or the next close.
    pub(super) fn lame_duck_timer(&mut self, due: Time, now: Time) {
        let Some(ld) = self.lame_duck.as_mut() else {
            return;
        };
        if ld.due != due {
            return;
        }
        if !ld.closing {
            ld.closing = true;
            self.log(Level::Info, "Closing existing clients");
        }
        loop {
            let Some(ld) = self.lame_duck.as_mut() else {
                return;
            };
            let Some(&id) = ld.to_close.get(ld.closed) else {
                self.finish_lame_duck(now);
                return;
            };
            ld.closed += 1;
            let (closed, total, batch) = (ld.closed, ld.to_close.len(), ld.batch);
            if let Some(index) = self.open_index(id) {
                self.shut_client(index, CloseReason::ServerShutdown, true);
            }
            if closed == total {
                self.finish_lame_duck(now);
                return;
            }
            if batch <= 1 || (closed - 1) % batch == 0 {
                break;
            }
        }
        let interval = self
            .lame_duck
            .as_ref()
            .map_or(Duration::ZERO, |ld| ld.interval);
        let nanos = interval.as_nanos() as usize;
        let pause = Duration::from_nanos(self.rng.below(nanos.max(1)).max(nanos / 2) as u64);
        let due = now + pause;
        if let Some(ld) = self.lame_duck.as_mut() {
            ld.due = due;
        }
        self.timers
            .push(Reverse((due, SERVER_TIMER, Timer::LameDuck as u8)));
    }

    /// Every client is closed: close any that slipped in, then ask the
    /// runtime to exit.
    fn finish_lame_duck(&mut self, now: Time) {
        self.shutdown(now);
        self.events.push_back(Event::Exit);
    }
}
