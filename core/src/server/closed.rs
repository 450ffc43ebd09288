//! Closed client connections, kept for `/connz?state=closed` as nats-server keeps them.
//!
//! nats-server 2.9.10 remembers the last 10,000 closed client connections in a
//! ring buffer (`max_closed_clients` exists in its options but no
//! configuration key sets it). Each record is what `/connz` showed of the
//! connection at the moment it closed, plus when and why it closed, the user
//! it named, its account and its subscriptions. tenet does the same: the
//! record is made when the connection is closed (not when the runtime reports
//! the socket gone), from the client's counters and strings.
//!
//! A record is two allocations whatever the connection had: its strings in
//! one buffer, its subscriptions encoded in another. Small records cost
//! little memory, and forgetting the oldest (at every close once the ring is
//! full) frees two blocks, not one per string and subscription.

use std::collections::VecDeque;
use std::time::Duration;

use crate::account::GLOBAL_ACCOUNT;
use crate::errors::CloseReason;
use crate::time::Time;

use super::{Server, Subscription};

/// Closed connections remembered, as nats-server's default (its
/// `MaxClosedClients`); the oldest is forgotten first.
///
/// What that costs: a [`ClosedClient`] is 152 bytes in place, plus one heap
/// block for its strings (the IP address, the client's name, language and
/// version, the user and account names, the TLS version and cipher suite:
/// typically 30 to 80 bytes, a 48 to 96-byte block; 30 more with TLS), so
/// a full ring of connections without subscriptions
/// holds about 2 MB. A subscription kept with its connection adds 20 bytes
/// plus its sid, subject and queue (nats-server keeps every subscription of
/// a closed connection too): 10,000 closed connections with 10 short
/// subscriptions each (35 bytes apiece) hold about 3.5 MB more.
pub(super) const MAX_CLOSED_CLIENTS: usize = 10_000;

/// One closed client connection: no parser, no buffers, no subscription
/// state, only what `/connz` shows of it.
pub(super) struct ClosedClient {
    pub(super) cid: u64,
    pub(super) start: Time,
    pub(super) last_activity: Time,
    /// When it was closed.
    pub(super) stop: Time,
    /// The last measured round trip, in nanoseconds.
    rtt_nanos: u64,
    pub(super) in_msgs: u64,
    pub(super) out_msgs: u64,
    pub(super) in_bytes: u64,
    pub(super) out_bytes: u64,
    /// Bytes still queued for it when it was closed (an `-ERR`, usually).
    pub(super) pending_bytes: usize,
    pub(super) port: u16,
    pub(super) reason: CloseReason,
    /// The strings of [`Text`], one after the other.
    text: Box<str>,
    /// Where each string of [`Text`] ends in `text`.
    ends: [u32; Text::COUNT],
    /// How many subscriptions `subs` holds.
    num_subs: u32,
    /// Its subscriptions when it closed, as [`SubsWriter`] encodes them.
    subs: Box<[u8]>,
}

/// The strings a [`ClosedClient`] keeps, in the order stored.
#[derive(Clone, Copy)]
enum Text {
    Ip,
    /// The CONNECT's `name`.
    Name,
    /// The CONNECT's `lang`.
    Lang,
    /// The CONNECT's `version`.
    Version,
    /// The user name as nats-server keeps it for a closed connection: the
    /// one the CONNECT gave (even when the login failed, or when no
    /// authentication is configured), or the `no_auth_user` a client without
    /// credentials was logged in as. Never an nkey or a token.
    User,
    /// The account the client was in, empty for `$G` (which nats-server
    /// never stores for a closed connection, so `acc=$G` finds none).
    Account,
    /// The TLS version and cipher suite, empty without TLS.
    TlsVersion,
    TlsCipher,
}

impl Text {
    const COUNT: usize = 8;
}

/// A subscription of a closed connection, read from its record.
pub(super) struct ClosedSub<'a> {
    pub(super) sid: &'a [u8],
    pub(super) subject: &'a [u8],
    pub(super) queue: Option<&'a [u8]>,
    /// Messages delivered to it.
    pub(super) msgs: u64,
}

impl ClosedClient {
    /// The record with its subscriptions.
    pub(super) fn with_subs(self, subs: SubsWriter) -> ClosedClient {
        ClosedClient {
            num_subs: subs.count,
            subs: subs.buf.into_boxed_slice(),
            ..self
        }
    }

    fn text(&self, which: Text) -> &str {
        let i = which as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub(super) fn ip(&self) -> &str {
        self.text(Text::Ip)
    }

    /// The CONNECT's `name`, `lang` and `version` (empty when not given).
    pub(super) fn name(&self) -> &str {
        self.text(Text::Name)
    }

    pub(super) fn lang(&self) -> &str {
        self.text(Text::Lang)
    }

    pub(super) fn version(&self) -> &str {
        self.text(Text::Version)
    }

    /// The user name kept for it (see [`Text::User`]).
    pub(super) fn user(&self) -> Option<&str> {
        Some(self.text(Text::User)).filter(|u| !u.is_empty())
    }

    /// Its account unless it is `$G`.
    pub(super) fn account(&self) -> Option<&str> {
        Some(self.text(Text::Account)).filter(|a| !a.is_empty())
    }

    /// The TLS version and cipher suite it used (empty without TLS).
    pub(super) fn tls(&self) -> (&str, &str) {
        (self.text(Text::TlsVersion), self.text(Text::TlsCipher))
    }

    /// The account name its subscriptions are listed with (`$G` included).
    pub(super) fn account_name(&self) -> &str {
        self.account().unwrap_or(GLOBAL_ACCOUNT)
    }

    pub(super) fn rtt(&self) -> Duration {
        Duration::from_nanos(self.rtt_nanos)
    }

    pub(super) fn num_subs(&self) -> usize {
        self.num_subs as usize
    }

    /// Its subscriptions, in the order they were recorded.
    pub(super) fn subs(&self) -> impl Iterator<Item = ClosedSub<'_>> {
        let mut rest: &[u8] = &self.subs;
        std::iter::from_fn(move || {
            let (head, tail) = rest.split_first_chunk::<{ SubsWriter::HEAD }>()?;
            let word = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap());
            let msgs = u64::from_le_bytes(head[..8].try_into().unwrap());
            let (sid, subject, queue) = (word(8) as usize, word(12) as usize, word(16));
            let (sid, tail) = tail.split_at(sid);
            let (subject, tail) = tail.split_at(subject);
            let (queue, tail) = match queue {
                SubsWriter::NO_QUEUE => (None, tail),
                len => {
                    let (queue, tail) = tail.split_at(len as usize);
                    (Some(queue), tail)
                }
            };
            rest = tail;
            Some(ClosedSub {
                sid,
                subject,
                queue,
                msgs,
            })
        })
    }
}

/// Encodes a closed connection's subscriptions into one buffer: per
/// subscription its delivered count (8 bytes), the lengths of its sid,
/// subject and queue (4 bytes each; no queue is `u32::MAX`), then those bytes.
pub(super) struct SubsWriter {
    buf: Vec<u8>,
    count: u32,
}

impl SubsWriter {
    const HEAD: usize = 20;
    const NO_QUEUE: u32 = u32::MAX;

    /// An empty writer; its buffer grows as subscriptions are added (they
    /// are added a slice at a time, as the teardown takes them out).
    pub(super) fn new() -> SubsWriter {
        SubsWriter {
            buf: Vec::new(),
            count: 0,
        }
    }

    /// Subscriptions written.
    pub(super) fn count(&self) -> usize {
        self.count as usize
    }

    /// Bytes written.
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Makes room for `bytes` more.
    pub(super) fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    pub(super) fn push(&mut self, sub: &Subscription) {
        let len = |b: &[u8]| u32::try_from(b.len()).expect("a subject under 4 GB");
        self.buf.extend_from_slice(&sub.delivered.to_le_bytes());
        self.buf.extend_from_slice(&len(&sub.sid).to_le_bytes());
        self.buf.extend_from_slice(&len(&sub.subject).to_le_bytes());
        let queue = sub.queue.as_deref().map_or(Self::NO_QUEUE, len);
        self.buf.extend_from_slice(&queue.to_le_bytes());
        self.buf.extend_from_slice(&sub.sid);
        self.buf.extend_from_slice(&sub.subject);
        if let Some(queue) = &sub.queue {
            self.buf.extend_from_slice(queue);
        }
        self.count += 1;
    }
}

/// The last [`MAX_CLOSED_CLIENTS`] closed connections, oldest first.
#[derive(Default)]
pub(super) struct ClosedRing {
    conns: VecDeque<ClosedClient>,
}

impl ClosedRing {
    /// Keeps `conn`, forgetting the oldest when full. The buffer grows by
    /// doubling but never past the cap, so a full ring holds exactly
    /// [`MAX_CLOSED_CLIENTS`] records and no spare room.
    pub(super) fn push(&mut self, conn: ClosedClient) {
        let len = self.conns.len();
        if len >= MAX_CLOSED_CLIENTS {
            self.conns.pop_front();
        } else if len == self.conns.capacity() {
            self.conns
                .reserve_exact(len.max(16).min(MAX_CLOSED_CLIENTS - len));
        }
        self.conns.push_back(conn);
    }

    /// The records, oldest first (the order connections closed in).
    pub(super) fn iter(&self) -> impl Iterator<Item = &ClosedClient> {
        self.conns.iter()
    }

    /// Records kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.conns.len()
    }

    /// Room reserved, in records.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.conns.capacity()
    }
}

impl Server {
    /// What is kept of the closing client `index`, its subscriptions aside
    /// (added with [`ClosedClient::with_subs`]).
    pub(super) fn closed_record(&self, index: usize, reason: CloseReason) -> ClosedClient {
        let client = self.client_ref(index);
        let opts = &client.opts;
        let user = match opts.user.as_deref().filter(|u| !u.is_empty()) {
            Some(user) => user,
            // Without credentials, a logged-in client is the `no_auth_user`.
            None if opts.nkey.is_none() && opts.auth_token.is_none() => {
                client.user.as_deref().unwrap_or_default()
            }
            None => "",
        };
        let account = match self.accounts[client.account].name.as_str() {
            GLOBAL_ACCOUNT => "",
            name => name,
        };
        let (tls_version, tls_cipher) = client
            .tls
            .as_ref()
            .and_then(|t| t.description())
            .unwrap_or_default();
        let strings: [&str; Text::COUNT] = [
            &client.peer.ip,
            opts.name.as_deref().unwrap_or_default(),
            opts.lang.as_deref().unwrap_or_default(),
            opts.version.as_deref().unwrap_or_default(),
            user,
            account,
            tls_version,
            &tls_cipher,
        ];
        let mut text = String::with_capacity(strings.iter().map(|s| s.len()).sum());
        let mut ends = [0u32; Text::COUNT];
        for (end, s) in ends.iter_mut().zip(strings) {
            text.push_str(s);
            *end = u32::try_from(text.len()).expect("client strings under 4 GB");
        }
        ClosedClient {
            cid: client.cid,
            start: client.start,
            last_activity: client.last_activity,
            stop: self.input_time,
            rtt_nanos: u64::try_from(client.rtt.as_nanos()).unwrap_or(u64::MAX),
            in_msgs: client.in_msgs,
            out_msgs: client.out_msgs,
            in_bytes: client.in_bytes,
            out_bytes: client.out_bytes,
            pending_bytes: client.pending_len(),
            port: client.peer.port,
            reason,
            text: text.into_boxed_str(),
            ends,
            num_subs: 0,
            subs: Box::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ClientId;

    fn record(cid: u64) -> ClosedClient {
        ClosedClient {
            cid,
            start: Time::ZERO,
            last_activity: Time::ZERO,
            stop: Time::ZERO,
            rtt_nanos: 0,
            in_msgs: 0,
            out_msgs: 0,
            in_bytes: 0,
            out_bytes: 0,
            pending_bytes: 0,
            port: 1,
            reason: CloseReason::ClientClosed,
            text: Box::from(""),
            ends: [0; Text::COUNT],
            num_subs: 0,
            subs: Box::new([]),
        }
    }

    #[test]
    fn a_closed_connection_record_stays_small() {
        // The figure the cost estimate of MAX_CLOSED_CLIENTS rests on.
        assert_eq!(std::mem::size_of::<ClosedClient>(), 152);
    }

    #[test]
    fn the_ring_keeps_the_newest_and_no_spare_room() {
        let mut ring = ClosedRing::default();
        for cid in 1..=MAX_CLOSED_CLIENTS as u64 + 5 {
            ring.push(record(cid));
            assert!(ring.capacity() <= MAX_CLOSED_CLIENTS);
        }
        assert_eq!(ring.len(), MAX_CLOSED_CLIENTS);
        assert_eq!(ring.capacity(), MAX_CLOSED_CLIENTS);
        let cids: Vec<u64> = ring.iter().map(|c| c.cid).collect();
        assert_eq!(cids.first(), Some(&6));
        assert_eq!(cids.last(), Some(&(MAX_CLOSED_CLIENTS as u64 + 5)));
        assert!(cids.windows(2).all(|w| w[0] + 1 == w[1]));
    }

    #[test]
    fn subscriptions_read_back_as_written() {
        let sub = |sid: &str, subject: &str, queue: Option<&str>, delivered: u64| Subscription {
            client: ClientId::from_u64(0),
            account: 0,
            sid: sid.as_bytes().into(),
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
            max: 7,
            delivered,
            filtered: false,
        };
        let subs = [
            sub("1", "foo.bar", None, 3),
            sub("22", "a.>", Some("workers"), u64::MAX),
            sub("x", "", Some(""), 0),
        ];
        let mut writer = SubsWriter::new();
        for s in &subs {
            writer.push(s);
        }
        assert_eq!(
            writer.buf.len(),
            3 * SubsWriter::HEAD + 1 + 7 + 2 + 3 + 7 + 1
        );
        let closed = record(1).with_subs(writer);
        let read: Vec<_> = closed
            .subs()
            .map(|s| (s.sid, s.subject, s.queue, s.msgs))
            .collect();
        assert_eq!(
            read,
            [
                (&b"1"[..], &b"foo.bar"[..], None, 3),
                (b"22", b"a.>", Some(&b"workers"[..]), u64::MAX),
                (b"x", b"", Some(b""), 0),
            ]
        );
        assert_eq!(closed.num_subs(), 3);
    }

    #[test]
    fn strings_read_back_by_field() {
        let mut closed = record(1);
        closed.text = Box::from("10.0.0.1appgo1.2anonA1.3TLS_X");
        closed.ends = [8, 11, 13, 16, 20, 21, 24, 29];
        assert_eq!(
            (closed.ip(), closed.name(), closed.lang(), closed.version()),
            ("10.0.0.1", "app", "go", "1.2")
        );
        assert_eq!((closed.user(), closed.account()), (Some("anon"), Some("A")));
        assert_eq!(closed.tls(), ("1.3", "TLS_X"));
        closed.ends = [8, 8, 8, 8, 8, 8, 8, 8];
        assert_eq!(
            (closed.name(), closed.user(), closed.account()),
            ("", None, None)
        );
        assert_eq!(closed.account_name(), "$G");
    }
}
