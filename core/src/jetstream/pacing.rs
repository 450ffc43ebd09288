//! When a consumer's next delivery may go: `rate_limit_bps` (a token
//! bucket holding up to one maximum payload) and `replay_policy: original`
//! (messages already stored when the consumer was made go apart as they
//! were published). Times are Unix nanoseconds.

use super::consumer_config::{ConsumerConfig, ReplayPolicy};

/// The bucket holds this much: nats-server's default maximum payload.
const BURST: f64 = 1024.0 * 1024.0;
/// Gaps this short are not waited for in a replay (as nats-server).
const MIN_REPLAY_GAP: u64 = 1_000_000;

#[derive(Clone, Debug)]
struct Bucket {
    bytes_per_ns: f64,
    tokens: f64,
    at: u64,
}

impl Bucket {
    fn tokens_at(&self, now: u64) -> f64 {
        let refill = now.saturating_sub(self.at) as f64 * self.bytes_per_ns;
        (self.tokens + refill).min(BURST)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Pacing {
    rate: Option<Bucket>,
    /// Replays original timing for stream sequences up to this one.
    replay_through: u64,
    /// The stored time of the last message sent, and when it was sent.
    last: Option<(u64, u64)>,
}

impl Pacing {
    /// For a consumer made at `now` on a stream whose last sequence is `last_seq`.
    pub fn new(config: &ConsumerConfig, last_seq: u64, now: u64) -> Pacing {
        let rate = (config.rate_limit_bps > 0).then(|| Bucket {
            bytes_per_ns: config.rate_limit_bps as f64 / 8.0 / 1e9,
            tokens: BURST,
            at: now,
        });
        let original = config.replay_policy == ReplayPolicy::Original;
        Pacing {
            rate,
            replay_through: if original { last_seq } else { 0 },
            last: None,
        }
    }

    /// When message `stream_seq` of `size` bytes, stored at `stored`, may
    /// go (`now` or later).
    pub fn ready_at(&self, stream_seq: u64, size: u64, stored: u64, now: u64) -> u64 {
        let mut ready = now;
        if let (true, Some((last_stored, last_sent))) =
            (stream_seq <= self.replay_through, self.last)
        {
            let gap = stored.saturating_sub(last_stored);
            if gap > MIN_REPLAY_GAP {
                ready = ready.max(last_sent.saturating_add(gap));
            }
        }
        if let Some(bucket) = &self.rate {
            let need = (size as f64).min(BURST);
            let tokens = bucket.tokens_at(now);
            if tokens < need {
                let wait = ((need - tokens) / bucket.bytes_per_ns).ceil() as u64;
                ready = ready.max(now.saturating_add(wait));
            }
        }
        ready
    }

    /// Counts a message of `size` bytes, stored at `stored`, as sent at `now`.
    pub fn sent(&mut self, size: u64, stored: u64, now: u64) {
        if let Some(bucket) = &mut self.rate {
            bucket.tokens = (bucket.tokens_at(now) - (size as f64).min(BURST)).max(0.0);
            bucket.at = now;
        }
        self.last = Some((stored, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ConsumerConfig {
        serde_json::from_str::<ConsumerConfig>(json)
            .unwrap()
            .with_defaults()
    }

    #[test]
    fn a_rate_limit_spaces_messages_once_the_burst_is_used() {
        // 8 Mbit/s = 1 byte per µs.
        let mut p = Pacing::new(&config(r#"{"rate_limit_bps":8000000}"#), 0, 0);
        assert_eq!(p.ready_at(1, 1024 * 1024, 0, 0), 0, "a full bucket");
        p.sent(1024 * 1024, 0, 0);
        assert_eq!(p.ready_at(2, 1000, 0, 0), 1_000_000, "1000 bytes: 1 ms");
        p.sent(1000, 0, 1_000_000);
        assert_eq!(p.ready_at(3, 1000, 0, 1_000_000), 2_000_000);
        let unlimited = Pacing::new(&config("{}"), 0, 0);
        assert_eq!(unlimited.ready_at(1, u64::MAX, 0, 5), 5);
    }

    #[test]
    fn replay_original_keeps_the_gaps_of_messages_stored_before() {
        let mut p = Pacing::new(&config(r#"{"replay_policy":"original"}"#), 3, 0);
        assert_eq!(p.ready_at(1, 10, 1_000, 50), 50, "the first goes at once");
        p.sent(10, 1_000, 50);
        assert_eq!(p.ready_at(2, 10, 500_001_000, 60), 500_000_050);
        p.sent(10, 500_001_000, 500_000_050);
        assert_eq!(
            p.ready_at(3, 10, 500_001_500, 500_000_060),
            500_000_060,
            "gaps under a millisecond are not kept"
        );
        p.sent(10, 500_001_500, 500_000_060);
        assert_eq!(
            p.ready_at(4, 10, 9_000_000_000, 500_000_070),
            500_000_070,
            "messages stored after the consumer was made go at once"
        );
    }
}
