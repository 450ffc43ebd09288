//! Publishing and delivery: permission and reserved-name checks on PUB, routing within
//! and across accounts, encoding deliveries, no-responders, and back-pressure (stalling
//! publishers, resuming them, dropping slow consumers).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use crate::account::SERVICE_REPLY_PREFIX;
use crate::config::duration::format_duration;
use crate::errors::{publish_violation, reply_violation, ClientError, CloseReason};
use crate::perms::is_reserved_publish;
use crate::proto::encode::decimal;
use crate::proto::Publish;
use crate::subject::{is_valid_literal_subject, subject_matches};
use crate::sublist::{Matches, SubKey};
use crate::time::Time;

use super::client::{outbound_trace, Violation};
use super::timers::Timer;
use super::turns::DELIVERY_KIB_SHIFT;
use super::{ClientId, Event, Level, Server};

/// Above this many queued bytes for a receiver, publishers feeding it are paused.
pub(super) const STALL_HIGH_WATER: u64 = 1024 * 1024;

/// Longest a publisher stays paused by one stall before it is read again anyway
/// (a receiver that never drains then runs into `max_pending` and is dropped).
const STALL_MAX: Duration = Duration::from_millis(10);

/// Reply prefixes clients may not use: service-import, JetStream-ack and gateway replies.
const RESERVED_REPLY_PREFIXES: [&[u8]; 3] = [b"_R_.", b"$JS.ACK.", b"_GR_."];

impl Server {
    pub(super) fn process_pub(&mut self, index: usize, publish: &Publish<'_>, now: Time) {
        let client = self.client_mut(index);
        client.last_publish.start(publish.subject);
        client.in_msgs += 1;
        client.in_bytes += publish.payload.len() as u64;
        self.stats.in_msgs += 1;
        self.stats.in_bytes += publish.payload.len() as u64;
        let account = self.client_ref(index).account;
        let account = &mut self.accounts[account].stats;
        account.in_msgs += 1;
        account.in_bytes += publish.payload.len() as u64;
        let client = self.client_ref(index);
        if client.opts.pedantic && !is_valid_literal_subject(publish.subject) {
            // tenet drops the message; nats-server routes it anyway.
            self.send_error(index, ClientError::InvalidPublishSubject);
            return;
        }
        // The subject's permission first, then reserved names, as nats-server orders them.
        if !self.publish_allowed(index, publish.subject, now)
            || is_reserved_publish(publish.subject)
        {
            let text = publish_violation(publish.subject);
            self.send_error_text(index, &text);
            let violation = Violation::publish("Subject", publish.subject);
            self.log_violation(index, &violation, now);
            return;
        }
        if let Some(reply) = publish
            .reply
            .filter(|r| RESERVED_REPLY_PREFIXES.iter().any(|p| r.starts_with(p)))
        {
            let text = reply_violation(reply);
            self.send_error_text(index, &text);
            self.log_violation(index, &Violation::publish("Reply", reply), now);
            return;
        }
        if self.client_ref(index).opts.verbose {
            self.send(index, b"+OK\r\n");
        }
        let stored = self.jetstream_publish(index, publish, now);
        if !self.route(index, publish, now) && !stored {
            if let Some(reply) = publish.reply {
                if self.client_ref(index).opts.no_responders {
                    self.send_no_responders(index, reply);
                }
            }
        }
    }

    /// Delivers a client's message in its account, then along the account's
    /// routes: streams other accounts import, services it imports, answers
    /// owed to requesters elsewhere. Returns whether the message went anywhere
    /// (a request handed to a service import counts, as in nats-server).
    fn route(&mut self, publisher: usize, publish: &Publish<'_>, now: Time) -> bool {
        let client = self.slots[publisher].client.as_mut().expect("live client");
        let acc = client.account;
        let generation = self.accounts[acc].sublist.generation();
        let sublist = &mut self.accounts[acc].sublist;
        let matches = match client.last_publish.take_matches(acc, generation) {
            Some(matches) => matches,
            None => sublist.matches(publish.subject),
        };
        let mut delivered = self.deliver_all(publisher, &matches, publish, now);
        if let Some(client) = self.slots[publisher].client.as_mut() {
            client.last_publish.keep_matches(acc, generation, matches);
        }
        let account = &self.accounts[acc];
        let (streams, services) = (
            !account.streams_out.is_empty(),
            !account.services_in.is_empty(),
        );
        let answers = !account.responses.is_empty();
        if streams {
            delivered |= self.export_stream(acc, publisher, publish, now);
        }
        if services {
            delivered |= self.import_service(acc, publisher, publish, now);
        }
        if answers && publish.subject.starts_with(SERVICE_REPLY_PREFIX) {
            delivered |= self.answer_service(acc, publisher, publish, now);
        }
        delivered
    }

    /// Delivers to every plain subscriber and one member of each queue group;
    /// returns whether anyone received the message.
    pub(super) fn deliver_all(
        &mut self,
        publisher: usize,
        matches: &Arc<Matches>,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let mut delivered = false;
        for &key in &matches.plain {
            delivered |= self.deliver(key, publisher, publish, now);
        }
        for group in &matches.queues {
            let n = group.members.len();
            let start = self.rng.below(n);
            for i in 0..n {
                if self.deliver(group.members[(start + i) % n], publisher, publish, now) {
                    delivered = true;
                    break;
                }
            }
        }
        delivered
    }

    /// Appends the message for one subscription; false if it could not take it.
    fn deliver(&mut self, key: SubKey, publisher: usize, publish: &Publish<'_>, now: Time) -> bool {
        let Some(sub) = self.subs[key.0 as usize].as_mut() else {
            return false;
        };
        let index = sub.client.index();
        let Some(client) = self.slots[index].client.as_mut() else {
            return false;
        };
        // A closed client's subscription still being torn down, perhaps
        // with its slot already reused, gets nothing.
        if client.closing || client.id != sub.client || (index == publisher && !client.opts.echo) {
            return false;
        }
        // A wildcard subscription that overlaps a subscribe deny entry.
        if sub.filtered
            && client
                .perms
                .as_ref()
                .is_some_and(|p| p.delivery_denied(publish.subject, sub.queue.as_deref()))
        {
            return false;
        }
        // A responder with `allow_responses` may answer this request once it is delivered.
        if let (Some(reply), Some(tracker)) = (publish.reply, client.replies.as_mut()) {
            let may_publish = client
                .perms
                .as_ref()
                .is_none_or(|p| !p.restricts_publish() || p.can_publish(reply));
            if !may_publish {
                tracker.record(reply, now);
                if client.prune_due.is_none() {
                    if let Some(due) = tracker.next_expiry() {
                        client.prune_due = Some(due);
                        self.timers
                            .push(Reverse((due, client.id.0, Timer::ReplyPrune as u8)));
                    }
                }
            }
        }
        sub.delivered += 1;
        // A copy of the payload per KiB, on top of the message itself.
        self.work += 1 + (publish.payload.len() >> DELIVERY_KIB_SHIFT) as u64;
        let done = sub.max > 0 && sub.delivered >= sub.max;
        let mut size_buf = [0u8; 20];
        let (keyword, payload, header_size) = match publish.header_size_token {
            Some(hdr) if client.headers => (&b"HMSG "[..], publish.payload, Some(hdr)),
            _ => (&b"MSG "[..], &publish.payload[publish.header_len..], None),
        };
        let size: &[u8] = if publish.header_len > 0 && header_size.is_none() {
            decimal(payload.len() as u64, &mut size_buf)
        } else {
            publish.size_token
        };
        let message = Delivery {
            keyword,
            subject: publish.subject,
            sid: &sub.sid,
            reply: publish.reply,
            header_size,
            size,
            payload,
        };
        let trace = self.opts.trace.then(|| {
            let mut bytes = Vec::with_capacity(message.len());
            message.encode(&mut bytes);
            outbound_trace(&[&bytes])
        });
        client
            .out
            .push_with(&mut self.pool, message.len(), |out| message.encode(out));
        client.out_msgs += 1;
        client.out_bytes += payload.len() as u64;
        self.stats.out_msgs += 1;
        self.stats.out_bytes += payload.len() as u64;
        let account = &mut self.accounts[client.account].stats;
        account.out_msgs += 1;
        account.out_bytes += payload.len() as u64;
        let id = client.id;
        if !client.flush_queued {
            client.flush_queued = true;
            self.events.push_back(Event::Flush(id));
        }
        let queued = client.pending_len();
        if let Some(line) = trace {
            self.log_client(index, Level::Trace, &line);
        }
        if done {
            self.remove_sub(key);
        }
        if queued as u64 > self.opts.max_pending {
            self.slow_consumer(index);
        } else if queued > self.stall_high_water {
            self.stall(publisher, index, now);
        }
        true
    }

    fn send_no_responders(&mut self, index: usize, reply: &[u8]) {
        let client = self.client_ref(index);
        let sid = client.subs.values().find_map(|&key| {
            let sub = self.subs[key.0 as usize].as_ref()?;
            (sub.queue.is_none() && subject_matches(&sub.subject, reply)).then(|| sub.sid.clone())
        });
        if let Some(sid) = sid {
            let parts: [&[u8]; 5] = [
                b"HMSG ",
                reply,
                b" ",
                &sid,
                b" 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
            ];
            self.send_parts(index, &parts);
        }
    }

    // ----- back-pressure ------------------------------------------------------

    /// Pauses reading from `publisher` because `receiver`'s queue is long.
    fn stall(&mut self, publisher: usize, receiver: usize, now: Time) {
        let until = now + STALL_MAX;
        // The server's own messages (JetStream answers) have no publisher.
        let Some(pub_client) = self
            .slots
            .get_mut(publisher)
            .and_then(|s| s.client.as_mut())
        else {
            return;
        };
        if pub_client.paused_until.is_some() {
            return;
        }
        pub_client.paused_until = Some(until);
        let pub_id = pub_client.id;
        self.timers
            .push(Reverse((until, pub_id.0, Timer::StallEnd as u8)));
        let receiver = self.client_mut(receiver);
        if !receiver.stalled_publishers.contains(&pub_id) {
            receiver.stalled_publishers.push(pub_id);
        }
    }

    pub(super) fn resume(&mut self, id: ClientId) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        if self.client_mut(index).paused_until.take().is_some() {
            self.events.push_back(Event::Resume(id));
        }
    }

    pub(super) fn slow_consumer(&mut self, index: usize) {
        self.stats.slow_consumers += 1;
        let max = self.opts.max_pending;
        self.log_client(
            index,
            Level::Info,
            &format!("Slow Consumer Detected: MaxPending of {max} exceeded"),
        );
        // Closed first, so that its record shows what was pending.
        self.shut_client(index, CloseReason::SlowConsumerPendingBytes, true);
        let client = self.slots[index].client.as_mut().expect("live client");
        client.out.clear(&mut self.pool);
    }

    /// The socket took no bytes for `write_deadline`: closed as a slow
    /// consumer without writing what is queued, as nats-server does (before
    /// CONNECT without the log line or the count).
    pub(super) fn write_deadline_exceeded(&mut self, index: usize) {
        let client = self.client_ref(index);
        if client.connected {
            let line = format!(
                "Slow Consumer Detected: WriteDeadline of {} exceeded with {} chunks of {} total bytes.",
                format_duration(self.opts.write_deadline),
                client.out.chunks(),
                client.pending_len()
            );
            self.stats.slow_consumers += 1;
            self.log_client(index, Level::Info, &line);
        }
        let client = self.slots[index].client.as_mut().expect("live client");
        client.out.clear(&mut self.pool);
        self.shut_client(index, CloseReason::SlowConsumerWriteDeadline, true);
    }
}

/// One delivery as the subscriber receives it:
/// `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`, or `HMSG` with the
/// header size before the total.
struct Delivery<'a> {
    keyword: &'static [u8],
    subject: &'a [u8],
    sid: &'a [u8],
    reply: Option<&'a [u8]>,
    header_size: Option<&'a [u8]>,
    size: &'a [u8],
    payload: &'a [u8],
}

impl Delivery<'_> {
    /// Its length in bytes.
    fn len(&self) -> usize {
        let optional = |token: Option<&[u8]>| token.map_or(0, |t| t.len() + 1);
        self.keyword.len()
            + self.subject.len()
            + 1
            + self.sid.len()
            + 1
            + optional(self.reply)
            + optional(self.header_size)
            + self.size.len()
            + 2
            + self.payload.len()
            + 2
    }

    /// Appends it to `out`, straight into the outbound chunk (no list of
    /// pieces in between, which costs more than the copying).
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword);
        out.extend_from_slice(self.subject);
        out.push(b' ');
        out.extend_from_slice(self.sid);
        out.push(b' ');
        for token in [self.reply, self.header_size].into_iter().flatten() {
            out.extend_from_slice(token);
            out.push(b' ');
        }
        out.extend_from_slice(self.size);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.payload);
        out.extend_from_slice(b"\r\n");
    }
}
