//! JetStream advisories: the events published into an account on
//! `$JS.EVENT.ADVISORY.…` when its streams and consumers are made and
//! deleted (and a stream changed), and when a consumer gives up on a message (`max_deliver`,
//! `+TERM`) or is told to redeliver one (`-NAK`), with nats-server
//! 2.9.10's subjects and JSON.

use super::json::Obj;
use super::outbox::Outgoing;
use crate::time::rfc3339;

const TYPE_PREFIX: &str = "io.nats.jetstream.advisory.v1.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Delete,
    /// A stream's configuration changed.
    Modify,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Modify => "modify",
        }
    }

    fn subject_word(self) -> &'static str {
        match self {
            Action::Create => "CREATED",
            Action::Delete => "DELETED",
            Action::Modify => "UPDATED",
        }
    }
}

/// A delivered message an advisory is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub consumer_seq: u64,
    pub stream_seq: u64,
    pub deliveries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advisory<'a> {
    Stream {
        stream: &'a str,
        action: Action,
    },
    Consumer {
        stream: &'a str,
        consumer: &'a str,
        action: Action,
    },
    /// A message dropped for reaching `max_deliver`.
    MaxDeliveries {
        stream: &'a str,
        consumer: &'a str,
        stream_seq: u64,
        deliveries: u64,
    },
    Nak {
        stream: &'a str,
        consumer: &'a str,
        message: MessageRef,
    },
    Terminated {
        stream: &'a str,
        consumer: &'a str,
        message: MessageRef,
    },
}

impl Advisory<'_> {
    /// The advisory as a message, with event id `id` at `now` (Unix ns).
    pub fn to_outgoing(&self, id: &str, now: u64) -> Outgoing {
        let head = |kind: &str| {
            Obj::new()
                .str("type", &format!("{TYPE_PREFIX}{kind}"))
                .str("id", id)
                .str("timestamp", &rfc3339(now))
        };
        let message = |obj: Obj, m: &MessageRef| {
            obj.num("consumer_seq", m.consumer_seq)
                .num("stream_seq", m.stream_seq)
                .num("deliveries", m.deliveries)
                .done()
        };
        let (subject, json) = match self {
            Advisory::Stream { stream, action } => (
                format!(
                    "$JS.EVENT.ADVISORY.STREAM.{}.{stream}",
                    action.subject_word()
                ),
                head("stream_action")
                    .str("stream", stream)
                    .str("action", action.word())
                    .done(),
            ),
            Advisory::Consumer {
                stream,
                consumer,
                action,
            } => (
                format!(
                    "$JS.EVENT.ADVISORY.CONSUMER.{}.{stream}.{consumer}",
                    action.subject_word()
                ),
                head("consumer_action")
                    .str("stream", stream)
                    .str("consumer", consumer)
                    .str("action", action.word())
                    .done(),
            ),
            Advisory::MaxDeliveries {
                stream,
                consumer,
                stream_seq,
                deliveries,
            } => (
                format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"),
                head("max_deliver")
                    .str("stream", stream)
                    .str("consumer", consumer)
                    .num("stream_seq", *stream_seq)
                    .num("deliveries", *deliveries)
                    .done(),
            ),
            Advisory::Nak {
                stream,
                consumer,
                message: m,
            } => (
                format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.{stream}.{consumer}"),
                message(
                    head("nak").str("stream", stream).str("consumer", consumer),
                    m,
                ),
            ),
            Advisory::Terminated {
                stream,
                consumer,
                message: m,
            } => (
                format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{stream}.{consumer}"),
                message(
                    head("terminated")
                        .str("stream", stream)
                        .str("consumer", consumer),
                    m,
                ),
            ),
        };
        Outgoing::event(subject, json)
    }
}

/// Unique 22-character event ids (the length of nats-server's), from the
/// time and a counter.
pub fn event_id(now: u64, counter: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = now ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..22)
        .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_json_as_nats_server_sends_them() {
        let now = 1_796_613_139_215_944_397;
        let created = Advisory::Consumer {
            stream: "A",
            consumer: "K",
            action: Action::Create,
        }
        .to_outgoing("1AmReXEsduSyYp0wk4XkfF", now);
        assert_eq!(created.inbox, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.A.K");
        assert_eq!(
            String::from_utf8(created.data).unwrap(),
            format!(
                r#"{{"type":"io.nats.jetstream.advisory.v1.consumer_action","id":"1AmReXEsduSyYp0wk4XkfF","timestamp":"{}","stream":"A","consumer":"K","action":"create"}}"#,
                rfc3339(now)
            )
        );
        let max = Advisory::MaxDeliveries {
            stream: "A",
            consumer: "K",
            stream_seq: 3,
            deliveries: 2,
        }
        .to_outgoing("x", now);
        assert_eq!(max.inbox, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.A.K");
        assert!(String::from_utf8(max.data)
            .unwrap()
            .ends_with(r#""stream":"A","consumer":"K","stream_seq":3,"deliveries":2}"#));
        let deleted = Advisory::Stream {
            stream: "A",
            action: Action::Delete,
        }
        .to_outgoing("x", now);
        assert_eq!(deleted.inbox, "$JS.EVENT.ADVISORY.STREAM.DELETED.A");
    }

    #[test]
    fn event_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|i| event_id(7, i)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 22));
    }
}
