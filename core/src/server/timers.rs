//! Timers: their kinds, firing them, PING scheduling and the first PING's jitter.

use std::cmp::Reverse;
use std::time::Duration;

use crate::errors::ClientError;
use crate::time::Time;

use super::{ClientId, Level, Server};

/// The first server PING goes out this soon after CONNECT, to measure the RTT.
pub(super) const FIRST_PING_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    Ping,
    StallEnd,
    AuthTimeout,
    /// Drop expired `allow_responses` entries.
    ReplyPrune,
    /// Drop service responses no longer awaited (server-wide).
    ResponsePrune,
    /// A client's socket may have taken no bytes for `write_deadline`.
    WriteDeadline,
    /// The next step of lame duck mode (server-wide).
    LameDuck,
    /// The next slice of closed clients' subscriptions to remove (server-wide).
    Teardown,
    /// The client's next turn with input it could not finish in the last.
    Continue,
    /// Messages of streams with `max_age` are due to expire (server-wide).
    StreamExpiry,
    /// A client's TLS handshake must have finished.
    TlsHandshake,
}

/// The timer id of server-wide timers (no client has generation 0).
pub(super) const SERVER_TIMER: u64 = 0;

impl Server {
    /// Time passed: fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.input_time = now;
        while let Some(&Reverse((due, raw, kind))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            if kind == Timer::ResponsePrune as u8 {
                self.prune_responses(due, now);
                continue;
            }
            if kind == Timer::LameDuck as u8 {
                self.lame_duck_timer(due, now);
                continue;
            }
            if kind == Timer::Teardown as u8 {
                self.teardown_timer(now);
                continue;
            }
            if kind == Timer::StreamExpiry as u8 {
                self.expiry_timer(due, now);
                continue;
            }
            let id = ClientId(raw);
            let Some(index) = self.open_index(id) else {
                continue;
            };
            if kind == Timer::Ping as u8 {
                if self.client_ref(index).ping_due == due {
                    self.ping_timer(index, now);
                }
            } else if kind == Timer::ReplyPrune as u8 {
                self.prune_replies(index, due, now);
            } else if kind == Timer::AuthTimeout as u8 {
                let client = self.client_ref(index);
                if !client.authenticated && client.auth_due == Some(due) {
                    self.log_client(index, Level::Error, "Authentication Timeout");
                    self.close_with_error(index, ClientError::AuthenticationTimeout);
                }
            } else if kind == Timer::TlsHandshake as u8 {
                self.tls_timer(index, due);
            } else if kind == Timer::Continue as u8 {
                self.continue_input(index, now);
            } else if kind == Timer::WriteDeadline as u8 {
                if self.client_ref(index).write_deadline_due == Some(due) {
                    self.write_deadline_timer(index, now);
                }
            } else if self.client_ref(index).paused_until == Some(due) {
                self.resume(id);
            }
        }
    }

    pub(super) fn schedule_ping(&mut self, index: usize, due: Time) {
        let client = self.client_mut(index);
        client.ping_due = due;
        let id = client.id;
        self.timers.push(Reverse((due, id.0, Timer::Ping as u8)));
    }

    fn ping_timer(&mut self, index: usize, now: Time) {
        let interval = self.opts.ping_interval;
        let ping_max = self.opts.ping_max;
        let client = self.client_ref(index);
        let need_rtt = client.connected && !client.rtt_measured;
        let active = now.saturating_since(client.last_activity) < interval;
        if need_rtt || !active {
            if client.pings_out + 1 > ping_max {
                self.stats.stale_connections += 1;
                self.log_client(index, Level::Debug, "Stale Client Connection - Closing");
                self.close_with_error(index, ClientError::StaleConnection);
                return;
            }
            let client = self.client_mut(index);
            client.pings_out += 1;
            client.ping_sent = now;
            self.send(index, b"PING\r\n");
        }
        self.schedule_ping(index, now + interval);
    }

    /// Closes the client if its socket has taken no bytes for
    /// `write_deadline` while some were queued; otherwise waits for the
    /// deadline counted from the last progress.
    fn write_deadline_timer(&mut self, index: usize, now: Time) {
        let deadline = self.opts.write_deadline;
        let client = self.client_mut(index);
        client.write_deadline_due = None;
        let Some(since) = client.write_blocked_since else {
            return;
        };
        if client.pending_len() == 0 {
            return;
        }
        if since + deadline > now {
            let due = since + deadline;
            client.write_deadline_due = Some(due);
            let raw = client.id.0;
            self.timers
                .push(Reverse((due, raw, Timer::WriteDeadline as u8)));
            return;
        }
        self.write_deadline_exceeded(index);
    }

    pub(super) fn first_ping_jitter(&mut self) -> Duration {
        let first = self.opts.ping_interval.min(FIRST_PING_INTERVAL);
        let max_jitter = (first / 5).as_micros() as usize;
        Duration::from_micros(self.rng.below(max_jitter.max(1)) as u64)
    }
}
