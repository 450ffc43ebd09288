//! What JetStream sends of its own (deliveries to consumers, pull-request
//! statuses, heartbeats, flow-control requests, advisories), queued per
//! account for the engine to deliver.

/// One message of the server's own: sent to the subscribers of `inbox`,
/// with `subject` on the MSG line (a stored message keeps its own subject).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// Whose subscribers receive it.
    pub inbox: String,
    /// The subject on the MSG line.
    pub subject: Vec<u8>,
    pub reply: Option<String>,
    /// A whole header block, or empty.
    pub hdr: Vec<u8>,
    pub data: Vec<u8>,
}

impl Outgoing {
    /// Empties it for another message, keeping the room of its buffers
    /// (a reply subject's buffer is handed to `replies`).
    pub(super) fn recycle(&mut self, replies: &mut Vec<String>) {
        self.inbox.clear();
        self.subject.clear();
        self.hdr.clear();
        self.data.clear();
        if let Some(reply) = self.reply.take() {
            replies.push(reply);
        }
    }

    /// A status message (`NATS/1.0 <status>`, then `extra` header lines).
    pub(super) fn status(inbox: &str, status: &str, extra: &str) -> Outgoing {
        Outgoing {
            inbox: inbox.to_string(),
            subject: inbox.as_bytes().to_vec(),
            reply: None,
            hdr: format!("NATS/1.0 {status}\r\n{extra}\r\n").into_bytes(),
            data: Vec::new(),
        }
    }

    /// A status ending a pull request, with what it still wanted.
    pub(super) fn with_pending(inbox: &str, status: &str, messages: u64, bytes: u64) -> Outgoing {
        let extra = format!("Nats-Pending-Messages: {messages}\r\nNats-Pending-Bytes: {bytes}\r\n");
        Outgoing::status(inbox, status, &extra)
    }

    /// `100 Idle Heartbeat` with the last consumer and stream sequences,
    /// and the flow-control request it waits for, if any.
    pub(super) fn heartbeat(
        inbox: &str,
        (consumer_seq, stream_seq): (u64, u64),
        stalled_on: Option<&str>,
    ) -> Outgoing {
        let mut extra =
            format!("Nats-Last-Consumer: {consumer_seq}\r\nNats-Last-Stream: {stream_seq}\r\n");
        if let Some(reply) = stalled_on {
            extra.push_str(&format!("Nats-Consumer-Stalled: {reply}\r\n"));
        }
        Outgoing::status(inbox, "100 Idle Heartbeat", &extra)
    }

    /// `100 FlowControl Request`, to be answered on `reply`.
    pub(super) fn flow_control_request(deliver: &str, reply: String) -> Outgoing {
        Outgoing {
            reply: Some(reply),
            ..Outgoing::status(deliver, "100 FlowControl Request", "")
        }
    }

    /// A JSON event on `subject` (an advisory).
    pub(super) fn event(subject: String, json: String) -> Outgoing {
        Outgoing {
            inbox: subject.clone(),
            subject: subject.into_bytes(),
            reply: None,
            hdr: Vec::new(),
            data: json.into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_blocks_as_nats_server_writes_them() {
        let timeout = Outgoing::with_pending("ib.1", "408 Request Timeout", 3, 0);
        assert_eq!(
            timeout.hdr,
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
        );
        let hb = Outgoing::heartbeat("d", (3, 3), Some("$JS.FC.S.C.a1b2"));
        assert_eq!(
            hb.hdr,
            b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nNats-Last-Stream: 3\r\nNats-Consumer-Stalled: $JS.FC.S.C.a1b2\r\n\r\n"
        );
        let fc = Outgoing::flow_control_request("d", "$JS.FC.S.C.a1b2".into());
        assert_eq!(fc.hdr, b"NATS/1.0 100 FlowControl Request\r\n\r\n");
        assert_eq!(fc.reply.as_deref(), Some("$JS.FC.S.C.a1b2"));
        assert!(fc.data.is_empty());
    }
}
