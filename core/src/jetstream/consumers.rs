//! An account's consumers: the `$JS.API.CONSUMER` requests, pull requests
//! (`CONSUMER.MSG.NEXT`) waiting for messages, and acknowledgements on
//! `$JS.ACK` subjects. What they send is returned as [`Outgoing`] messages
//! for the engine to deliver.

use std::collections::VecDeque;

use serde::Deserialize;

use super::api::{
    error_answer, is_empty_request, page_answer, request, response_type, AccountJetStream, Answer,
    NamesRequest, StoreWrite,
};
use super::api_error::ApiError;
use super::config::Retention;
use super::consumer::{ack_subject, parse_ack_subject, Ack, Consumer};
use super::consumer_config::{check_name, AckPolicy, CreateRequest};
use super::json::{array, Obj};
use crate::time::rfc3339;

const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// Ephemeral consumers go after this long without activity: 5 s.
const EPHEMERAL_INACTIVE: i64 = 5_000_000_000;

/// A message of the server's own: a delivery (the stored message's own
/// subject, sent to `inbox`'s subscribers with its ack subject as reply) or
/// a status.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// `408 Request Timeout` with what the request still wanted.
    fn timeout(inbox: &str, left: u64) -> Outgoing {
        let extra = format!("Nats-Pending-Messages: {left}\r\nNats-Pending-Bytes: 0\r\n");
        Outgoing::status(inbox, "408 Request Timeout", &extra)
    }

    fn status(inbox: &str, status: &str, extra: &str) -> Outgoing {
        Outgoing {
            inbox: inbox.to_string(),
            subject: inbox.as_bytes().to_vec(),
            reply: None,
            hdr: format!("NATS/1.0 {status}\r\n{extra}\r\n").into_bytes(),
            data: Vec::new(),
        }
    }
}

/// A pull request still waiting for messages.
#[derive(Clone, Debug)]
struct Waiting {
    inbox: String,
    /// Messages still to send.
    left: u64,
    /// When it ends (Unix nanoseconds), if it does.
    expires: Option<u64>,
    /// With `no_wait` and `expires`: ends once anything was sent.
    no_wait: bool,
}

/// One consumer with its creation time and waiting pull requests.
#[derive(Clone, Debug)]
pub struct ConsumerEntry {
    consumer: Consumer,
    created: u64,
    waiting: VecDeque<Waiting>,
    /// Changed since its state was last written.
    pub(super) dirty: bool,
}

/// A pull request's body.
#[derive(Default, Deserialize)]
#[serde(default)]
struct PullRequest {
    batch: i64,
    expires: i64,
    no_wait: bool,
}

/// Random consumer names for unnamed ephemerals: 8 characters, derived
/// from the time and a counter (the engine's RNG is not reachable here;
/// names only need to be unique within the stream, which is checked).
fn ephemeral_name(now: u64, attempt: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = now ^ attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

impl ConsumerEntry {
    /// Durable consumers keep their state across restarts.
    pub fn durable(&self) -> bool {
        self.consumer.config().is_durable()
    }

    pub fn snapshot_json(&self) -> String {
        serde_json::to_string(&self.consumer.snapshot(self.created)).expect("a snapshot serializes")
    }

    /// Whether the consumer's filter takes messages on `subject`.
    pub fn wants(&self, subject: &[u8]) -> bool {
        let filter = &self.consumer.config().filter_subject;
        filter.is_empty() || crate::subject::subject_matches(filter.as_bytes(), subject)
    }
}

impl AccountJetStream {
    fn consumer_count(&self, stream: &str) -> u64 {
        self.consumers.keys().filter(|(s, _)| s == stream).count() as u64
    }

    /// `CONSUMER.CREATE.<s>` (no name) and `CONSUMER.CREATE.<s>.<c>[.<filter>]`.
    pub(super) fn consumer_create(
        &mut self,
        stream: &str,
        name: Option<&str>,
        filter: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Answer {
        const NAME: &str = "consumer_create";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let mut req = match CreateRequest::from_json(body) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if req.stream_name != stream {
            return fail(ApiError::stream_name_mismatch());
        }
        match name {
            None => {
                if !req.config.durable_name.is_empty() {
                    return fail(ApiError::consumer(
                        400,
                        10020,
                        "consumer expected to be ephemeral but a durable name was set in request",
                    ));
                }
            }
            Some(name) => {
                if !req.config.durable_name.is_empty() && req.config.durable_name != name {
                    return fail(ApiError::consumer(
                        400,
                        10017,
                        "consumer name in subject does not match durable name in request",
                    ));
                }
                if let Some(filter) = filter.filter(|f| f.contains('.')) {
                    if filter != req.config.filter_subject {
                        return fail(ApiError::consumer(
                            400,
                            10131,
                            "Consumer create request did not match filtered subject from create subject",
                        ));
                    }
                }
                req.config.name = name.to_string();
            }
        }
        self.add_consumer(stream, req, now, name.is_none())
    }

    /// `CONSUMER.DURABLE.CREATE.<s>.<d>` (the legacy durable form).
    pub(super) fn consumer_create_durable(
        &mut self,
        stream: &str,
        durable: &str,
        body: &[u8],
        now: u64,
    ) -> Answer {
        const NAME: &str = "consumer_create";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let req = match CreateRequest::from_json(body) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if req.stream_name != stream {
            return fail(ApiError::stream_name_mismatch());
        }
        if req.config.durable_name.is_empty() {
            return fail(ApiError::consumer(
                400,
                10018,
                "consumer expected to be durable but a durable name was not set",
            ));
        }
        if req.config.durable_name != durable {
            return fail(ApiError::consumer(
                400,
                10017,
                "consumer name in subject does not match durable name in request",
            ));
        }
        self.add_consumer(stream, req, now, false)
    }

    fn add_consumer(
        &mut self,
        stream: &str,
        req: CreateRequest,
        now: u64,
        legacy_ephemeral: bool,
    ) -> Answer {
        const NAME: &str = "consumer_create";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let Some(s) = self.streams.get(stream) else {
            return fail(ApiError::stream_not_found());
        };
        let mut config = req.config.with_defaults();
        if !config.is_durable() && config.inactive_threshold == 0 {
            config.inactive_threshold = EPHEMERAL_INACTIVE;
        }
        if let Err(e) = config.check(s.config()) {
            return fail(e);
        }
        if config.num_replicas > 1 {
            return fail(ApiError::replicas_not_supported());
        }
        let name = match (config.name.as_str(), config.durable_name.as_str()) {
            ("", "") => {
                let mut attempt = 0;
                loop {
                    let candidate = ephemeral_name(now, attempt);
                    if !self
                        .consumers
                        .contains_key(&(stream.to_string(), candidate.clone()))
                    {
                        break candidate;
                    }
                    attempt += 1;
                }
            }
            ("", durable) => durable.to_string(),
            (name, _) => name.to_string(),
        };
        if let Err(e) = check_name(&name) {
            return fail(e);
        }
        if legacy_ephemeral {
            // The legacy form's answer carries no name in the config.
            config.name.clear();
        }
        if s.config().retention == Retention::WorkQueue {
            if config.ack_policy != AckPolicy::Explicit {
                return fail(ApiError::consumer(
                    400,
                    10098,
                    "workqueue stream requires explicit ack",
                ));
            }
            let others: Vec<&String> = self
                .consumers
                .iter()
                .filter(|((st, n), _)| st == stream && *n != name)
                .map(|(_, e)| &e.consumer.config().filter_subject)
                .collect();
            if !others.is_empty()
                && (config.filter_subject.is_empty() || others.iter().any(|f| f.is_empty()))
            {
                return fail(ApiError::consumer(
                    400,
                    10099,
                    "multiple non-filtered consumers not allowed on workqueue stream",
                ));
            }
            let overlaps = others.iter().any(|f| {
                crate::subject::subjects_collide(f.as_bytes(), config.filter_subject.as_bytes())
            });
            if overlaps {
                return fail(ApiError::consumer(
                    400,
                    10100,
                    "filtered consumer not unique on workqueue stream",
                ));
            }
        }
        let key = (stream.to_string(), name.clone());
        if let Some(existing) = self.consumers.get_mut(&key) {
            let old = existing.consumer.config();
            let refusal = if old.deliver_policy != config.deliver_policy {
                Some("deliver policy can not be updated")
            } else if old.opt_start_seq != config.opt_start_seq {
                Some("start sequence can not be updated")
            } else if old.opt_start_time != config.opt_start_time {
                Some("start time can not be updated")
            } else if old.ack_policy != config.ack_policy {
                Some("ack policy can not be updated")
            } else if old.replay_policy != config.replay_policy {
                Some("replay policy can not be updated")
            } else if old.idle_heartbeat != config.idle_heartbeat {
                Some("heart beats can not be updated")
            } else if old.flow_control != config.flow_control {
                Some("flow control can not be updated")
            } else if old.max_waiting != config.max_waiting {
                Some("max waiting can not be updated")
            } else if old.is_push() && !config.is_push() {
                Some("can not update push consumer to pull based")
            } else if !old.is_push() && config.is_push() {
                Some("can not update pull consumer to push based")
            } else {
                None
            };
            if let Some(reason) = refusal {
                return fail(ApiError::consumer(500, 10012, reason));
            }
            existing.consumer.update_config(config);
            existing.dirty = true;
        } else {
            let consumer = Consumer::new(config, self.streams[stream].store(), None);
            self.consumers.insert(
                key.clone(),
                ConsumerEntry {
                    consumer,
                    created: now,
                    waiting: VecDeque::new(),
                    dirty: true,
                },
            );
        }
        Ok(self
            .consumer_info_obj(&key, Obj::new().str("type", &response_type(NAME)))
            .done())
    }

    fn consumer_info_obj(&self, key: &(String, String), obj: Obj) -> Obj {
        let entry = &self.consumers[key];
        let c = &entry.consumer;
        let store = self.streams[&key.0].store();
        let (dc, ds) = c.delivered();
        let (fc, fs) = c.ack_floor();
        let (delivered_at, acked_at) = c.last_active();
        let position = |consumer_seq: u64, stream_seq: u64, at: u64| {
            let obj = Obj::new()
                .num("consumer_seq", consumer_seq)
                .num("stream_seq", stream_seq);
            if at > 0 {
                obj.str("last_active", &rfc3339(at)).done()
            } else {
                obj.done()
            }
        };
        obj.str("stream_name", &key.0)
            .str("name", &key.1)
            .str("created", &rfc3339(entry.created))
            .raw("config", &c.config().to_json())
            .raw("delivered", &position(dc, ds, delivered_at))
            .raw("ack_floor", &position(fc, fs, acked_at))
            .num("num_ack_pending", c.num_ack_pending())
            .num("num_redelivered", c.num_redelivered())
            .num("num_waiting", entry.waiting.len() as u64)
            .num("num_pending", c.num_pending(store))
    }

    pub(super) fn consumer_info(&mut self, stream: &str, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "consumer_info";
        if !is_empty_request(body) {
            return error_answer(NAME, &ApiError::not_empty_request(), &[]);
        }
        if !self.streams.contains_key(stream) {
            return error_answer(NAME, &ApiError::stream_not_found(), &[]);
        }
        let key = (stream.to_string(), name.to_string());
        if !self.consumers.contains_key(&key) {
            return error_answer(
                NAME,
                &ApiError::consumer(404, 10014, "consumer not found"),
                &[],
            );
        }
        Ok(self
            .consumer_info_obj(&key, Obj::new().str("type", &response_type(NAME)))
            .done())
    }

    fn consumer_keys(&self, stream: &str) -> Vec<(String, String)> {
        self.consumers
            .keys()
            .filter(|(s, _)| s == stream)
            .cloned()
            .collect()
    }

    pub(super) fn consumer_names(&mut self, stream: &str, body: &[u8]) -> Answer {
        const NAME: &str = "consumer_names";
        let extra = [
            ("total", "0"),
            ("offset", "0"),
            ("limit", "0"),
            ("consumers", "[]"),
        ];
        let req: NamesRequest = match request(body) {
            Ok(r) => r,
            Err(e) => return error_answer(NAME, &e, &extra),
        };
        if !self.streams.contains_key(stream) {
            return error_answer(NAME, &ApiError::stream_not_found(), &extra);
        }
        let keys = self.consumer_keys(stream);
        let offset = req.offset.min(keys.len());
        let names = keys
            .iter()
            .skip(offset)
            .take(NAMES_LIMIT)
            .map(|(_, n)| serde_json::to_string(n).expect("a string serializes"));
        page_answer(
            NAME,
            keys.len(),
            offset,
            NAMES_LIMIT,
            "consumers",
            &array(names),
        )
    }

    pub(super) fn consumer_list(&mut self, stream: &str, body: &[u8]) -> Answer {
        const NAME: &str = "consumer_list";
        let extra = [
            ("total", "0"),
            ("offset", "0"),
            ("limit", "0"),
            ("consumers", "[]"),
        ];
        let req: NamesRequest = match request(body) {
            Ok(r) => r,
            Err(e) => return error_answer(NAME, &e, &extra),
        };
        if !self.streams.contains_key(stream) {
            return error_answer(NAME, &ApiError::stream_not_found(), &extra);
        }
        let keys = self.consumer_keys(stream);
        let offset = req.offset.min(keys.len());
        let infos = keys
            .iter()
            .skip(offset)
            .take(LIST_LIMIT)
            .map(|k| self.consumer_info_obj(k, Obj::new()).done());
        page_answer(
            NAME,
            keys.len(),
            offset,
            LIST_LIMIT,
            "consumers",
            &array(infos),
        )
    }

    pub(super) fn consumer_delete(&mut self, stream: &str, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "consumer_delete";
        if !is_empty_request(body) {
            return error_answer(NAME, &ApiError::not_empty_request(), &[]);
        }
        if !self.streams.contains_key(stream) {
            return error_answer(NAME, &ApiError::stream_not_found(), &[]);
        }
        match self
            .consumers
            .remove(&(stream.to_string(), name.to_string()))
        {
            None => {
                let error = ApiError::consumer(404, 10014, "consumer not found");
                return error_answer(NAME, &error, &[]);
            }
            Some(entry) if entry.durable() => self.note_write(StoreWrite::DeleteConsumer {
                stream: stream.to_string(),
                consumer: name.to_string(),
            }),
            Some(_) => {}
        }
        Ok(Obj::new()
            .str("type", &response_type(NAME))
            .bool("success", true)
            .done())
    }

    /// The consumers' part of a stream's state: how many there are.
    pub fn consumers_of(&self, stream: &str) -> u64 {
        self.consumer_count(stream)
    }

    /// `$JS.API.CONSUMER.MSG.NEXT.<s>.<c>` with reply `inbox`: what to send
    /// now; the rest of the batch waits (for new messages, acks, expiry).
    pub fn pull(&mut self, api: &str, body: &[u8], inbox: &str, now: u64) -> Vec<Outgoing> {
        let Some(rest) = api.strip_prefix("CONSUMER.MSG.NEXT.") else {
            return Vec::new();
        };
        let Some((stream, name)) = rest.split_once('.') else {
            return Vec::new();
        };
        let key = (stream.to_string(), name.to_string());
        let Some(entry) = self.consumers.get(&key) else {
            // A request for a missing consumer gets no answer.
            return Vec::new();
        };
        if entry.consumer.config().is_push() {
            return vec![Outgoing::status(inbox, "409 Consumer is push based", "")];
        }
        let body = body.trim_ascii();
        let req = if body.is_empty() {
            PullRequest::default()
        } else if let Ok(batch) = std::str::from_utf8(body).unwrap_or("").parse::<i64>() {
            PullRequest {
                batch,
                ..PullRequest::default()
            }
        } else if body.starts_with(b"{") {
            match serde_json::from_slice::<PullRequest>(body) {
                Ok(r) => r,
                Err(e) => {
                    return vec![Outgoing::status(
                        inbox,
                        &format!("400 Bad Request - {e}"),
                        "",
                    )]
                }
            }
        } else {
            PullRequest::default()
        };
        let batch = req.batch.max(1) as u64;
        let expires = (req.expires > 0).then(|| now.saturating_add(req.expires as u64));
        let max_waiting = entry.consumer.config().max_waiting.max(0) as usize;
        let mut waiting = Waiting {
            inbox: inbox.to_string(),
            left: batch,
            expires,
            no_wait: req.no_wait,
        };
        let mut out = self.deliver_to(&key, &mut waiting, now);
        let sent = batch - waiting.left;
        if waiting.left == 0 {
            return out;
        }
        if req.no_wait && sent > 0 {
            // As nats-server: a one-shot request that got part of its batch
            // ends with a timeout saying how much was left.
            out.push(Outgoing::timeout(inbox, waiting.left));
            return out;
        }
        if req.no_wait && expires.is_none() {
            if sent == 0 {
                out.push(Outgoing::status(inbox, "404 No Messages", ""));
            }
            return out;
        }
        let entry = self.consumers.get_mut(&key).expect("present");
        if entry.waiting.len() >= max_waiting {
            out.push(Outgoing::status(inbox, "409 Exceeded MaxWaiting", ""));
            return out;
        }
        entry.waiting.push_back(waiting);
        out
    }

    /// Sends what consumer `key` can give a request, lowering its `left`.
    fn deliver_to(
        &mut self,
        key: &(String, String),
        waiting: &mut Waiting,
        now: u64,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(stream) = self.streams.get(&key.0) else {
            return out;
        };
        let store = stream.store();
        let entry = self.consumers.get_mut(key).expect("present");
        while waiting.left > 0 {
            let (delivery, _dropped) = entry.consumer.next(store, now);
            let Some(d) = delivery else { break };
            let Some(msg) = store.get(d.stream_seq) else {
                continue;
            };
            out.push(Outgoing {
                inbox: waiting.inbox.clone(),
                subject: msg.subject.to_vec(),
                reply: Some(ack_subject(&key.0, &key.1, &d, msg.time)),
                hdr: msg.hdr.to_vec(),
                data: msg.data.to_vec(),
            });
            waiting.left -= 1;
            entry.dirty = true;
        }
        out
    }

    /// Serves the waiting pull requests of `stream`'s consumers (after a
    /// new message or an ack), and ends those expired by `now`.
    pub fn serve_waiting(&mut self, stream: &str, now: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for key in self.consumer_keys(stream) {
            let mut waiting =
                std::mem::take(&mut self.consumers.get_mut(&key).expect("present").waiting);
            let mut kept = VecDeque::new();
            while let Some(mut w) = waiting.pop_front() {
                if w.expires.is_some_and(|e| e <= now) {
                    out.push(Outgoing::timeout(&w.inbox, w.left));
                    continue;
                }
                let before = w.left;
                out.extend(self.deliver_to(&key, &mut w, now));
                if w.left > 0 && w.no_wait && w.left < before {
                    out.push(Outgoing::timeout(&w.inbox, w.left));
                } else if w.left > 0 {
                    kept.push_back(w);
                }
            }
            self.consumers.get_mut(&key).expect("present").waiting = kept;
        }
        out
    }

    /// Brings back a durable consumer of `stream` from its state on disk.
    pub fn restore_consumer(
        &mut self,
        stream: &str,
        json: &[u8],
        now: u64,
    ) -> Result<String, String> {
        let snapshot: super::consumer::Snapshot =
            serde_json::from_slice(json).map_err(|e| format!("consumer state: {e}"))?;
        if !self.streams.contains_key(stream) {
            return Err(format!("stream {stream:?} is not there"));
        }
        let name = snapshot.config.durable_name.clone();
        let created = snapshot.created;
        let consumer = Consumer::from_snapshot(snapshot, now);
        self.consumers.insert(
            (stream.to_string(), name.clone()),
            ConsumerEntry {
                consumer,
                created,
                waiting: VecDeque::new(),
                dirty: false,
            },
        );
        Ok(name)
    }

    /// Whether any consumer of the account is a push consumer.
    pub fn has_push_consumers(&self) -> bool {
        self.consumers
            .values()
            .any(|e| e.consumer.config().is_push())
    }

    /// The push consumers: (stream, name) with their deliver subject and
    /// group, for the engine to check for interest.
    pub fn push_consumers(&self) -> Vec<((String, String), String, String)> {
        self.consumers
            .iter()
            .filter(|(_, e)| e.consumer.config().is_push())
            .map(|(k, e)| {
                let c = e.consumer.config();
                (
                    k.clone(),
                    c.deliver_subject.clone(),
                    c.deliver_group.clone(),
                )
            })
            .collect()
    }

    /// Everything push consumer `key` can send now to its deliver subject
    /// (the engine calls this only while the subject has interest).
    pub fn push(&mut self, key: &(String, String), now: u64) -> Vec<Outgoing> {
        let Some(entry) = self.consumers.get(key) else {
            return Vec::new();
        };
        let mut all = Waiting {
            inbox: entry.consumer.config().deliver_subject.clone(),
            left: u64::MAX,
            expires: None,
            no_wait: false,
        };
        self.deliver_to(key, &mut all, now)
    }

    /// Every stream that has consumers (for the engine's periodic turn over
    /// waiting requests and redeliveries).
    pub fn streams_with_consumers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.consumers.keys().map(|(s, _)| s.clone()).collect();
        names.dedup();
        names
    }

    /// Lets every consumer's ack wait run out at `now`.
    pub fn expire_acks(&mut self, now: u64) {
        for entry in self.consumers.values_mut() {
            entry.consumer.expire(now);
        }
    }

    /// The earliest moment something consumer-related is due (an ack wait,
    /// a pull request's expiry).
    pub fn next_consumer_deadline(&self) -> Option<u64> {
        self.consumers
            .values()
            .flat_map(|e| {
                e.consumer
                    .next_deadline()
                    .into_iter()
                    .chain(e.waiting.iter().filter_map(|w| w.expires))
            })
            .min()
    }

    /// A publish on `$JS.ACK.<s>.<c>.…`: acknowledges, and (work queue)
    /// removes what it acknowledged; returns the stream to serve again, if
    /// the ack was for a known consumer.
    pub fn ack(&mut self, subject: &str, body: &[u8], now: u64) -> Option<String> {
        let (stream, name, seq) = parse_ack_subject(subject)?;
        let key = (stream.to_string(), name.to_string());
        let ack = Ack::parse(body)?;
        let entry = self.consumers.get_mut(&key)?;
        let acked = entry.consumer.ack(seq, &ack, now);
        entry.dirty = true;
        let retention = self.streams.get(stream).map(|s| s.config().retention);
        let gone: Vec<u64> = match retention {
            // A work queue's message goes with its first ack.
            Some(Retention::WorkQueue) => acked,
            // An interest stream's once every consumer that wants it is done.
            Some(Retention::Interest) => {
                let store = self.streams[stream].store();
                acked
                    .into_iter()
                    .filter(|&seq| {
                        let Some(msg) = store.get(seq) else {
                            return false;
                        };
                        self.consumers
                            .iter()
                            .filter(|((s, _), e)| s == stream && e.wants(&msg.subject))
                            .all(|(_, e)| e.consumer.done_with(seq))
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        if let Some(s) = self.streams.get_mut(stream) {
            for seq in gone {
                let _ = s.store_mut().remove(seq);
            }
        }
        Some(stream.to_string())
    }
}
