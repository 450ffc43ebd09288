//! How consumers' messages leave and their answers come back: pull
//! requests (`CONSUMER.MSG.NEXT`) waiting for messages, push consumers
//! delivering while their deliver subject has interest (with flow control,
//! idle heartbeats, rate limit and original replay), acknowledgements and
//! flow-control answers, and consumers deleted after `inactive_threshold`
//! unused. Everything sent goes to the account's outbox.

use std::collections::VecDeque;
use std::ops::Bound;
use std::time::Duration;

use serde::Deserialize;

use super::advisory::{event_id, Advisory, MessageRef};
use super::api::{AccountJetStream, StoreWrite};
use super::config::Retention;
use super::consumer::{parse_ack_subject, write_ack_subject, Ack};
use super::outbox::Outgoing;
use crate::config::duration::format_duration;

/// Deliveries per turn, all consumers of an account together; the rest
/// go on the next turn, so one big backlog never holds the event loop.
const SERVE_BUDGET: usize = 1024;

/// Whether a subject (with a queue group, for push consumers that have
/// one) has subscribers: the engine's answer.
pub type Interest<'a> = dyn FnMut(&str, Option<&str>) -> bool + 'a;

/// A pull request still waiting for messages.
#[derive(Clone, Debug)]
pub(super) struct Waiting {
    inbox: String,
    /// Messages still to send.
    left: u64,
    /// What `max_bytes` still allows, if the request set it.
    bytes_left: Option<u64>,
    /// When it ends (Unix nanoseconds), if it does.
    expires: Option<u64>,
    /// Ends once anything was sent and nothing more is there.
    no_wait: bool,
    /// The heartbeat interval and when the next one is due.
    heartbeat: Option<(u64, u64)>,
    sent_any: bool,
}

impl Waiting {
    fn end(&self, status: &str) -> Outgoing {
        Outgoing::with_pending(&self.inbox, status, self.left, self.bytes_left.unwrap_or(0))
    }
}

/// A pull request's body.
#[derive(Default, Deserialize)]
#[serde(default)]
struct PullRequest {
    batch: i64,
    expires: i64,
    no_wait: bool,
    max_bytes: i64,
    idle_heartbeat: i64,
}

impl PullRequest {
    /// Empty: one message; a bare number: that many; JSON: the request;
    /// anything else: one message (as nats-server).
    fn parse(body: &[u8]) -> Result<PullRequest, String> {
        let body = body.trim_ascii();
        let one = PullRequest {
            batch: 1,
            ..PullRequest::default()
        };
        if body.starts_with(b"{") {
            let req: PullRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            if req.idle_heartbeat > 0 && req.idle_heartbeat.saturating_mul(2) > req.expires {
                return Err("heartbeat value too large".into());
            }
            return Ok(req);
        }
        Ok(std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(one, |batch| PullRequest {
                batch,
                ..PullRequest::default()
            }))
    }
}

/// What became of a consumer's next delivery.
enum Next {
    Sent(Outgoing, u64),
    /// Held back (pacing) or not taken.
    Declined,
    /// The consumer has nothing to deliver.
    Nothing,
}

/// What an acknowledgement did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckOutcome {
    /// Whether an ack-sync reply gets its empty confirmation (`+NXT` gets none).
    pub confirm: bool,
}

type Key = (String, String);

impl AccountJetStream {
    /// Sends an advisory at `now`.
    pub(super) fn advise(&mut self, advisory: Advisory<'_>, now: u64) {
        self.events += 1;
        let id = event_id(now, self.events);
        self.outbox.push(advisory.to_outgoing(&id, now));
    }

    /// `$JS.API.CONSUMER.MSG.NEXT.<s>.<c>` with reply `inbox`: a request
    /// that waits for [`AccountJetStream::serve`], or its refusal.
    pub fn pull(&mut self, api: &str, body: &[u8], inbox: &str, now: u64) {
        let Some(rest) = api.strip_prefix("CONSUMER.MSG.NEXT.") else {
            return;
        };
        let Some((stream, name)) = rest.split_once('.') else {
            return;
        };
        self.add_pull_request(&(stream.to_string(), name.to_string()), body, inbox, now);
    }

    fn add_pull_request(&mut self, key: &Key, body: &[u8], inbox: &str, now: u64) {
        let Some(stream) = self.streams.get_mut(&key.0) else {
            return;
        };
        // A request for a missing consumer gets no answer.
        let Some(entry) = self.consumers.get_mut(key) else {
            return;
        };
        let refuse = |status: String| Outgoing::status(inbox, &status, "");
        let config = entry.consumer.config();
        if config.is_push() {
            self.outbox
                .push(refuse("409 Consumer is push based".into()));
            return;
        }
        let req = match PullRequest::parse(body) {
            Ok(req) => req,
            Err(e) => {
                self.outbox.push(refuse(format!("400 Bad Request - {e}")));
                return;
            }
        };
        let refusal = if config.max_batch > 0 && req.batch > config.max_batch {
            Some(format!(
                "409 Exceeded MaxRequestBatch of {}",
                config.max_batch
            ))
        } else if req.expires > 0 && config.max_expires > 0 && req.expires > config.max_expires {
            let max = format_duration(Duration::from_nanos(config.max_expires as u64));
            Some(format!("409 Exceeded MaxRequestExpires of {max}"))
        } else if req.max_bytes > 0 && config.max_bytes > 0 && req.max_bytes > config.max_bytes {
            Some(format!(
                "409 Exceeded MaxRequestMaxBytes of {}",
                config.max_bytes
            ))
        } else {
            None
        };
        if let Some(status) = refusal {
            self.outbox.push(refuse(status));
            return;
        }
        let max_waiting = config.max_waiting.max(0) as usize;
        entry.consumer.count_pending(stream.store_mut());
        let expires = (req.expires > 0).then(|| now.saturating_add(req.expires as u64));
        if req.no_wait {
            let available = entry.consumer.num_pending() + entry.consumer.num_redeliveries_due();
            if available == 0 && expires.is_none() {
                self.outbox.push(refuse("404 No Messages".into()));
                return;
            }
            let wanted: u64 = entry.waiting.iter().map(|w| w.left).sum();
            if available > 0 && available < wanted {
                self.outbox.push(refuse("408 Requests Pending".into()));
                return;
            }
        }
        if entry.waiting.len() >= max_waiting {
            // Room made by requests that ended already.
            let (ended, kept): (VecDeque<Waiting>, VecDeque<Waiting>) =
                std::mem::take(&mut entry.waiting)
                    .into_iter()
                    .partition(|w| w.expires.is_some_and(|e| e <= now));
            entry.waiting = kept;
            let full = entry.waiting.len() >= max_waiting;
            self.outbox
                .extend(ended.iter().map(|w| w.end("408 Request Timeout")));
            if full {
                self.outbox.push(refuse("409 Exceeded MaxWaiting".into()));
                return;
            }
        }
        let entry = self.consumers.get_mut(key).expect("present");
        let heartbeat = (req.idle_heartbeat > 0).then(|| {
            let every = req.idle_heartbeat as u64;
            (every, now.saturating_add(every))
        });
        entry.waiting.push_back(Waiting {
            inbox: inbox.to_string(),
            left: req.batch.max(1) as u64,
            bytes_left: (req.max_bytes > 0).then_some(req.max_bytes as u64),
            expires,
            no_wait: req.no_wait,
            heartbeat,
            sent_any: false,
        });
        entry.idle_since = None;
    }

    /// Lets every consumer send what it can at `now`: ack waits run out,
    /// waiting pull requests are served, expire or get their heartbeats,
    /// push consumers deliver while their subject has interest, and unused
    /// consumers past their `inactive_threshold` go. Returns whether more
    /// is ready than one turn sends (serve again at once).
    pub fn serve(&mut self, now: u64, interest: &mut Interest<'_>) -> bool {
        let mut budget = SERVE_BUDGET;
        // Each consumer in key order, the key copied into a buffer kept
        // from one turn to the next (serving may add or delete consumers).
        let mut key = std::mem::take(&mut self.serving);
        let mut first = true;
        loop {
            let next = if first {
                self.consumers.keys().next()
            } else {
                self.consumers
                    .range::<Key, _>((Bound::Excluded(&key), Bound::Unbounded))
                    .next()
                    .map(|(k, _)| k)
            };
            let Some(next) = next else {
                break;
            };
            first = false;
            key.0.clear();
            key.0.push_str(&next.0);
            key.1.clear();
            key.1.push_str(&next.1);
            if let Some(entry) = self.consumers.get_mut(&key) {
                entry.consumer.expire(now);
            }
            let push = self
                .consumers
                .get(&key)
                .is_some_and(|e| e.consumer.config().is_push());
            if push {
                self.serve_push(&key, now, interest, &mut budget);
            } else {
                self.serve_pull(&key, now, interest, &mut budget);
            }
        }
        self.serving = key;
        self.delete_idle(now);
        budget == 0
    }

    /// Offers consumer `key`'s next delivery, as the message that would
    /// go to `inbox` and its size, to `accept`; pacing may hold it back
    /// first. What neither takes stays the consumer's next. Messages
    /// dropped at `max_deliver` on the way are advised.
    fn deliver_next(
        &mut self,
        key: &Key,
        inbox: &str,
        now: u64,
        mut accept: impl FnMut(&Outgoing, u64) -> bool,
    ) -> Next {
        // Filled in the buffers of a message sent before.
        let mut out = self.spare.pop().unwrap_or_default();
        let mut reply = self.spare_replies.pop().unwrap_or_default();
        let (Some(stream), Some(entry)) =
            (self.streams.get_mut(&key.0), self.consumers.get_mut(key))
        else {
            self.spare.push(out);
            self.spare_replies.push(reply);
            return Next::Nothing;
        };
        let store = stream.store_mut();
        let headers_only = entry.consumer.config().headers_only;
        let (pacing, hold_until) = (&mut entry.pacing, &mut entry.hold_until);
        let mut offered = false;
        let mut sent = None;
        let (_, dropped) = entry.consumer.next_if(store, now, |d, store| {
            offered = true;
            let Some(msg) = store.get(d.stream_seq) else {
                return false;
            };
            out.hdr.clear();
            out.data.clear();
            if headers_only {
                out.hdr = headers_only_block(msg.hdr, msg.data.len());
            } else {
                out.hdr.extend_from_slice(msg.hdr);
                out.data.extend_from_slice(msg.data);
            }
            write_ack_subject(&mut reply, &key.0, &key.1, d, msg.time);
            let size = (msg.subject.len() + reply.len() + out.hdr.len() + out.data.len()) as u64;
            let ready = pacing.ready_at(d.stream_seq, size, msg.time, now);
            if ready > now {
                *hold_until = ready;
                return false;
            }
            out.inbox.clear();
            out.inbox.push_str(inbox);
            out.subject.clear();
            out.subject.extend_from_slice(msg.subject);
            out.reply = Some(std::mem::take(&mut reply));
            if !accept(&out, size) {
                reply = out.reply.take().unwrap_or_default();
                return false;
            }
            pacing.sent(size, msg.time, now);
            *hold_until = 0;
            sent = Some(size);
            true
        });
        let deliveries = entry.consumer.config().max_deliver.max(0) as u64;
        for stream_seq in dropped {
            self.advise(
                Advisory::MaxDeliveries {
                    stream: &key.0,
                    consumer: &key.1,
                    stream_seq,
                    deliveries,
                },
                now,
            );
        }
        let Some(size) = sent else {
            self.spare.push(out);
            self.spare_replies.push(reply);
            return if offered {
                Next::Declined
            } else {
                Next::Nothing
            };
        };
        Next::Sent(out, size)
    }

    fn serve_pull(&mut self, key: &Key, now: u64, interest: &mut Interest<'_>, budget: &mut usize) {
        let Some(entry) = self.consumers.get_mut(key) else {
            return;
        };
        let last = entry.consumer.delivered();
        let mut waiting = std::mem::take(&mut entry.waiting);
        let outbox = &mut self.outbox;
        waiting.retain_mut(|w| {
            if w.expires.is_some_and(|e| e <= now) {
                outbox.push(w.end("408 Request Timeout"));
                return false;
            }
            // A request whose inbox lost interest is dropped silently.
            if !interest(&w.inbox, None) {
                return false;
            }
            if let Some((every, due)) = &mut w.heartbeat {
                if *due <= now {
                    outbox.push(Outgoing::heartbeat(&w.inbox, last, None));
                    *due = now.saturating_add(*every);
                }
            }
            true
        });
        let mut exhausted = false;
        while *budget > 0 && !waiting.is_empty() {
            let mut ended = Vec::new();
            // The first request with room takes it; those it is too big for end.
            let next = self.deliver_next(key, "", now, |_, size| {
                while let Some(w) = waiting.front() {
                    match w.bytes_left {
                        Some(bytes) if size > bytes => {
                            ended.push(w.end("409 Message Size Exceeds MaxBytes"));
                            waiting.pop_front();
                        }
                        _ => return true,
                    }
                }
                false
            });
            self.outbox.append(&mut ended);
            let (mut out, size) = match next {
                Next::Sent(out, size) => (out, size),
                Next::Declined => break,
                Next::Nothing => {
                    exhausted = true;
                    break;
                }
            };
            let w = waiting.front_mut().expect("a request took it");
            if let Some(bytes) = &mut w.bytes_left {
                *bytes -= size;
                if *bytes == 0 {
                    w.left = 1;
                }
            }
            out.inbox.clone_from(&w.inbox);
            self.outbox.push(out);
            *budget -= 1;
            w.left -= 1;
            w.sent_any = true;
            if let Some((every, due)) = &mut w.heartbeat {
                *due = now.saturating_add(*every);
            }
            if w.left == 0 {
                waiting.pop_front();
            }
        }
        if exhausted {
            // One-shot requests that got something end when nothing is left.
            waiting.retain(|w| {
                let ends = w.no_wait && w.sent_any;
                if ends {
                    self.outbox.push(w.end("408 Request Timeout"));
                }
                !ends
            });
        }
        let entry = self.consumers.get_mut(key).expect("present");
        if waiting.is_empty() {
            entry.idle_since.get_or_insert(now);
        } else {
            entry.idle_since = None;
        }
        entry.waiting = waiting;
    }

    fn serve_push(&mut self, key: &Key, now: u64, interest: &mut Interest<'_>, budget: &mut usize) {
        let Some(entry) = self.consumers.get_mut(key) else {
            return;
        };
        entry.look_for_interest(now, interest);
        if !entry.bound {
            return;
        }
        let config = entry.consumer.config();
        let mut deliver = std::mem::take(&mut self.serving_deliver);
        deliver.clear();
        deliver.push_str(&config.deliver_subject);
        let heartbeat = config.idle_heartbeat.max(0) as u64;
        while *budget > 0 {
            let entry = &self.consumers[key];
            if entry.flow.as_ref().is_some_and(|f| f.blocked()) {
                break;
            }
            let (out, size) = match self.deliver_next(key, &deliver, now, |_, _| true) {
                Next::Sent(out, size) => (out, size),
                Next::Declined | Next::Nothing => break,
            };
            self.outbox.push(out);
            *budget -= 1;
            let entry = self.consumers.get_mut(key).expect("present");
            entry.last_sent = now;
            if let Some(flow) = &mut entry.flow {
                if flow.delivered(size) {
                    self.events += 1;
                    let random = event_id(now, self.events);
                    let reply = format!("$JS.FC.{}.{}.{}", key.0, key.1, &random[..4]);
                    flow.requested(reply.clone());
                    self.outbox
                        .push(Outgoing::flow_control_request(&deliver, reply));
                }
            }
        }
        let entry = self.consumers.get_mut(key).expect("present");
        if heartbeat > 0 && now >= entry.last_sent.saturating_add(heartbeat) {
            let stalled = entry.flow.as_ref().and_then(|f| f.outstanding());
            let hb = Outgoing::heartbeat(&deliver, entry.consumer.delivered(), stalled);
            entry.last_sent = now;
            self.outbox.push(hb);
        }
        self.serving_deliver = deliver;
    }

    /// Deletes the consumers unused for their `inactive_threshold`.
    fn delete_idle(&mut self, now: u64) {
        let idle: Vec<Key> = self
            .consumers
            .iter()
            .filter(|(_, e)| {
                let threshold = e.consumer.config().inactive_threshold;
                threshold > 0
                    && e.idle_since
                        .is_some_and(|t| now.saturating_sub(t) >= threshold as u64)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.remove_consumer(&key, now);
        }
    }

    /// Removes a consumer: its waiting requests are told, its state on
    /// disk goes, and the deletion is advised.
    pub(super) fn remove_consumer(&mut self, key: &Key, now: u64) -> bool {
        let Some(entry) = self.consumers.remove(key) else {
            return false;
        };
        for w in &entry.waiting {
            self.outbox
                .push(Outgoing::status(&w.inbox, "409 Consumer Deleted", ""));
        }
        if entry.durable() {
            self.note_write(StoreWrite::DeleteConsumer {
                stream: key.0.clone(),
                consumer: key.1.clone(),
            });
        }
        self.advise(
            Advisory::Consumer {
                stream: &key.0,
                consumer: &key.1,
                action: super::advisory::Action::Delete,
            },
            now,
        );
        true
    }

    /// The earliest moment a consumer has something due: an ack wait, a
    /// pull request's expiry or heartbeat, a held-back delivery, a push
    /// heartbeat, an inactivity deletion.
    pub fn next_consumer_deadline(&self) -> Option<u64> {
        self.consumers
            .values()
            .flat_map(|e| {
                let config = e.consumer.config();
                let heartbeat = config.idle_heartbeat;
                let push_heartbeat = (e.bound && heartbeat > 0)
                    .then(|| e.last_sent.saturating_add(heartbeat as u64));
                let threshold = config.inactive_threshold;
                let inactivity = e
                    .idle_since
                    .filter(|_| threshold > 0)
                    .map(|t| t.saturating_add(threshold as u64));
                // A held-back delivery matters only with someone to take it.
                let taker = e.bound || !e.waiting.is_empty();
                let held = (e.hold_until > 0 && taker).then_some(e.hold_until);
                e.consumer
                    .next_deadline()
                    .into_iter()
                    .chain(e.waiting.iter().filter_map(|w| w.expires))
                    .chain(e.waiting.iter().filter_map(|w| w.heartbeat.map(|h| h.1)))
                    .chain(push_heartbeat)
                    .chain(inactivity)
                    .chain(held)
            })
            .min()
    }

    /// A publish on `$JS.ACK.<s>.<c>.…` at `now` (with the publisher's
    /// reply subject): acknowledges, removes what work queue and interest
    /// streams no longer need, and for `+NXT` asks for more. None when it
    /// is not an ack of a known consumer.
    pub fn ack(
        &mut self,
        subject: &[u8],
        body: &[u8],
        reply: Option<&str>,
        now: u64,
    ) -> Option<AckOutcome> {
        let (stream, name, seq) = parse_ack_subject(subject)?;
        let ack = Ack::parse(body)?;
        // The key in a buffer kept from one ack to the next.
        let mut key = std::mem::take(&mut self.ack_key);
        key.0.clear();
        key.0.push_str(stream);
        key.1.clear();
        key.1.push_str(name);
        let outcome = self.ack_of(&key, seq, ack, reply, now);
        self.ack_key = key;
        outcome
    }

    /// [`Self::ack`] of consumer `key`'s delivery of `seq`.
    fn ack_of(
        &mut self,
        key: &Key,
        seq: u64,
        ack: Ack,
        reply: Option<&str>,
        now: u64,
    ) -> Option<AckOutcome> {
        let entry = self.consumers.get_mut(key)?;
        let before = entry.consumer.pending_delivery(seq);
        let mut acked = std::mem::take(&mut self.acked);
        entry.consumer.ack(seq, &ack, now, &mut acked);
        if let Some((consumer_seq, deliveries)) = before {
            let message = MessageRef {
                consumer_seq,
                stream_seq: seq,
                deliveries,
            };
            let (stream, consumer) = (&key.0, &key.1);
            match ack {
                Ack::Nak(_) => self.advise(
                    Advisory::Nak {
                        stream,
                        consumer,
                        message,
                    },
                    now,
                ),
                Ack::Term => self.advise(
                    Advisory::Terminated {
                        stream,
                        consumer,
                        message,
                    },
                    now,
                ),
                _ => {}
            }
        }
        self.remove_unneeded(&key.0, &mut acked);
        self.acked = acked;
        if let (Ack::Next(request), Some(reply)) = (&ack, reply) {
            self.add_pull_request(key, request, reply, now);
        }
        Some(AckOutcome {
            confirm: !matches!(ack, Ack::Next(_)),
        })
    }

    /// Removes acknowledged messages a work queue or interest stream no
    /// longer needs.
    /// `acked` (the acknowledged sequences) is used up as scratch.
    fn remove_unneeded(&mut self, stream: &str, acked: &mut Vec<u64>) {
        let retention = self.streams.get(stream).map(|s| s.config().retention);
        match retention {
            // A work queue's message goes with its first ack.
            Some(Retention::WorkQueue) => {}
            // An interest stream's once every consumer that wants it is done.
            Some(Retention::Interest) => {
                let store = self.streams.get_mut(stream).expect("checked").store_mut();
                acked.retain(|&seq| {
                    let Some(msg) = store.get(seq) else {
                        return false;
                    };
                    self.consumers
                        .iter()
                        .filter(|((s, _), e)| s == stream && e.wants(msg.subject))
                        .all(|(_, e)| e.consumer.done_with(seq))
                });
            }
            _ => return,
        }
        if let Some(s) = self.streams.get_mut(stream) {
            for &seq in acked.iter() {
                let _ = s.store_mut().remove(seq);
            }
        }
    }

    /// A publish on `$JS.FC.<s>.<c>.…`: the client's answer to a flow
    /// control request. Returns whether a consumer took it.
    pub fn flow_control_answer(&mut self, subject: &str) -> bool {
        let mut tokens = subject.split('.');
        let (Some("$JS"), Some("FC"), Some(stream), Some(consumer)) =
            (tokens.next(), tokens.next(), tokens.next(), tokens.next())
        else {
            return false;
        };
        self.consumers
            .get_mut(&(stream.to_string(), consumer.to_string()))
            .and_then(|e| e.flow.as_mut())
            .is_some_and(|f| f.answered(subject))
    }
}

/// The stored header block (or a bare `NATS/1.0`) with `Nats-Msg-Size`
/// added: what `headers_only` delivers instead of the message.
fn headers_only_block(hdr: &[u8], size: usize) -> Vec<u8> {
    let mut block = if hdr.is_empty() {
        b"NATS/1.0\r\n".to_vec()
    } else {
        hdr[..hdr.len().saturating_sub(2)].to_vec()
    };
    block.extend_from_slice(format!("Nats-Msg-Size: {size}\r\n\r\n").as_bytes());
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_request_bodies() {
        let batch = |body: &str| PullRequest::parse(body.as_bytes()).map(|r| r.batch.max(1));
        assert_eq!(batch(""), Ok(1));
        assert_eq!(batch("7"), Ok(7));
        assert_eq!(batch("junk"), Ok(1));
        assert_eq!(batch(r#"{"batch":0}"#), Ok(1));
        assert_eq!(
            batch(r#"{"expires":1000,"idle_heartbeat":600}"#),
            Err("heartbeat value too large".into())
        );
        assert!(batch("{nope").is_err());
    }

    #[test]
    fn headers_only_blocks() {
        assert_eq!(
            headers_only_block(b"", 5),
            b"NATS/1.0\r\nNats-Msg-Size: 5\r\n\r\n"
        );
        assert_eq!(
            headers_only_block(b"NATS/1.0\r\nA: b\r\n\r\n", 0),
            b"NATS/1.0\r\nA: b\r\nNats-Msg-Size: 0\r\n\r\n"
        );
    }
}
