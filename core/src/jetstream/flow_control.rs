//! A push consumer's flow control: the bytes delivered since the client
//! last answered, a window that starts at 2 MiB and doubles with each
//! answer up to 32 MiB, a request sent past half the window, and delivery
//! stopped once the window is full (nats-server 2.9.10's rules).

/// The largest window.
const MAX_WINDOW: u64 = 32 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct FlowControl {
    window: u64,
    /// Bytes delivered and not yet covered by an answer.
    pending: u64,
    /// The latest request's reply subject and the bytes its answer covers.
    request: Option<(String, u64)>,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            window: MAX_WINDOW / 16,
            pending: 0,
            request: None,
        }
    }
}

impl FlowControl {
    /// Whether delivery must wait for an answer.
    pub fn blocked(&self) -> bool {
        self.pending > self.window
    }

    /// Counts a delivery of `size` bytes; returns whether to send a request now.
    pub fn delivered(&mut self, size: u64) -> bool {
        self.pending += size;
        match &mut self.request {
            None => self.pending > self.window / 2,
            Some((_, covered)) => {
                // Far past the outstanding request: its answer covers more.
                if self.pending - *covered >= self.window {
                    *covered += size;
                }
                false
            }
        }
    }

    /// A request went out, to be answered on `reply`.
    pub fn requested(&mut self, reply: String) {
        self.request = Some((reply, self.pending));
    }

    /// An answer on `subject`: only the latest request's counts. Returns
    /// whether it did.
    pub fn answered(&mut self, subject: &str) -> bool {
        let Some((reply, covered)) = &self.request else {
            return false;
        };
        if reply != subject {
            return false;
        }
        self.pending = self.pending.saturating_sub(*covered);
        self.request = None;
        self.window = (self.window * 2).min(MAX_WINDOW);
        true
    }

    /// The unanswered request's reply subject.
    pub fn outstanding(&self) -> Option<&str> {
        self.request.as_ref().map(|(reply, _)| reply.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_past_half_the_window_and_a_stop_when_it_is_full() {
        let mut fc = FlowControl::default();
        let message = 100_000;
        // 2 MiB window: past 1 MiB after the 11th message, as nats-server.
        let sent: Vec<bool> = (0..11).map(|_| fc.delivered(message)).collect();
        assert_eq!(sent.iter().filter(|&&s| s).count(), 1);
        assert!(sent[10]);
        fc.requested("$JS.FC.S.C.abcd".into());
        let mut delivered = 11;
        while !fc.blocked() {
            assert!(!fc.delivered(message), "one request at a time");
            delivered += 1;
        }
        assert_eq!(delivered, 21, "stalls at 21 until answered");
        assert!(!fc.answered("$JS.FC.S.C.old1"), "only the latest counts");
        assert!(fc.answered("$JS.FC.S.C.abcd"));
        assert!(!fc.blocked());
        assert_eq!(fc.outstanding(), None);
        assert_eq!(fc.window, 4 * 1024 * 1024, "the window doubled");
    }
}
