//! An account's consumers: the `$JS.API.CONSUMER` requests that make,
//! inspect, list and delete them, and their restoring at start-up. How
//! their messages go out is [`super::delivery`].

use std::collections::VecDeque;

use super::advisory::{Action, Advisory};
use super::api::{
    error_answer, is_empty_request, page_answer, request, response_type, AccountJetStream, Answer,
    NamesRequest,
};
use super::api_error::ApiError;
use super::config::Retention;
use super::consumer::Consumer;
use super::consumer_config::{check_name, AckPolicy, CreateRequest};
use super::delivery::{Interest, Waiting};
use super::flow_control::FlowControl;
use super::json::{array, Obj};
use super::pacing::Pacing;
use crate::time::{parse_rfc3339, rfc3339};

const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// Ephemeral consumers go after this long without activity: 5 s.
const EPHEMERAL_INACTIVE: i64 = 5_000_000_000;

/// One consumer with what its deliveries need besides its state.
#[derive(Clone, Debug)]
pub struct ConsumerEntry {
    pub(super) consumer: Consumer,
    pub(super) created: u64,
    /// Pull requests waiting for messages, oldest first.
    pub(super) waiting: VecDeque<Waiting>,
    /// When the delivery pacing held back may go (0: none held).
    pub(super) hold_until: u64,
    pub(super) pacing: Pacing,
    /// Push consumers with `flow_control`.
    pub(super) flow: Option<FlowControl>,
    /// Push: whether the deliver subject had interest when last looked at.
    pub(super) bound: bool,
    /// Push: when the deliver subject was last sent something.
    pub(super) last_sent: u64,
    /// Since when nothing uses the consumer (no interest, no pull
    /// request); None while something does.
    pub(super) idle_since: Option<u64>,
    /// A durable consumer of a file stream: the generation of its state
    /// file and the bytes written to it (a full one starts the next).
    pub(super) state_file: (u64, u64),
}

/// A consumer's state file takes new states until it holds this many bytes
/// (or eight states, if more); then the next generation starts, and the
/// host removes the old one.
const STATE_FILE_FULL: u64 = 256 * 1024;

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
    /// A consumer made (or restored) at `now` on a stream whose last
    /// sequence is `last_seq`.
    fn new(consumer: Consumer, created: u64, last_seq: u64, now: u64) -> ConsumerEntry {
        let config = consumer.config();
        ConsumerEntry {
            pacing: Pacing::new(config, last_seq, now),
            flow: config.flow_control.then(FlowControl::default),
            consumer,
            created,
            waiting: VecDeque::new(),
            hold_until: 0,
            bound: false,
            last_sent: now,
            idle_since: Some(now),
            state_file: (0, STATE_FILE_FULL),
        }
    }

    /// Its state as the record to write, and the generation of the state
    /// file it goes to: appended to the current one, or a new one once
    /// that holds enough (a restart also starts a new one).
    pub(super) fn state_record(&mut self) -> (u64, Vec<u8>) {
        let json = self.snapshot_json();
        let mut bytes = Vec::with_capacity(json.len() + 16);
        super::log_format::encode_state(&mut bytes, json.as_bytes());
        let (generation, written) = &mut self.state_file;
        let room = STATE_FILE_FULL.max(bytes.len() as u64 * 8);
        if *written + bytes.len() as u64 > room {
            *generation += 1;
            *written = 0;
        }
        *written += bytes.len() as u64;
        (*generation, bytes)
    }

    /// A push consumer notes whether its deliver subject (and group) has
    /// interest at `now`: delivery pauses without, and it may go idle.
    pub(super) fn look_for_interest(&mut self, now: u64, interest: &mut Interest<'_>) {
        let config = self.consumer.config();
        if !config.is_push() {
            return;
        }
        let group = (!config.deliver_group.is_empty()).then_some(config.deliver_group.as_str());
        let bound = interest(&config.deliver_subject, group);
        if bound != self.bound {
            self.bound = bound;
            self.last_sent = now;
            self.idle_since = if bound { None } else { Some(now) };
        }
    }

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
        interest: &mut Interest<'_>,
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
        self.add_consumer(stream, req, now, name.is_none(), interest)
    }

    /// `CONSUMER.DURABLE.CREATE.<s>.<d>` (the legacy durable form).
    pub(super) fn consumer_create_durable(
        &mut self,
        stream: &str,
        durable: &str,
        body: &[u8],
        now: u64,
        interest: &mut Interest<'_>,
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
        self.add_consumer(stream, req, now, false, interest)
    }

    fn add_consumer(
        &mut self,
        stream: &str,
        req: CreateRequest,
        now: u64,
        legacy_ephemeral: bool,
        interest: &mut Interest<'_>,
    ) -> Answer {
        const NAME: &str = "consumer_create";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let Some(s) = self.streams.get(stream) else {
            return fail(ApiError::stream_not_found());
        };
        let mut config = req.config.with_defaults();
        // A durable consumer stays durable through an update that names it
        // without `durable_name` (its state stays on disk).
        let existing_name = if config.name.is_empty() {
            &config.durable_name
        } else {
            &config.name
        };
        if let Some(existing) = self
            .consumers
            .get(&(stream.to_string(), existing_name.clone()))
            .filter(|e| e.durable() && !config.is_durable())
        {
            config.durable_name = existing.consumer.config().durable_name.clone();
        }
        if !config.is_durable() && config.inactive_threshold == 0 {
            config.inactive_threshold = EPHEMERAL_INACTIVE;
        }
        if let Err(e) = config.check(s.config()) {
            return fail(e);
        }
        if config
            .opt_start_time
            .as_deref()
            .is_some_and(|t| parse_rfc3339(t).is_none())
        {
            return fail(ApiError::invalid_json());
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
        } else {
            let store = self.streams.get_mut(stream).expect("checked").store_mut();
            let start_time = config.opt_start_time.as_deref().and_then(parse_rfc3339);
            let consumer = Consumer::new(config, store, start_time);
            let entry = ConsumerEntry::new(consumer, now, store.last_seq(), now);
            self.consumers.insert(key.clone(), entry);
            self.advise(
                Advisory::Consumer {
                    stream,
                    consumer: &key.1,
                    action: Action::Create,
                },
                now,
            );
        }
        let store = self.streams.get_mut(stream).expect("checked").store_mut();
        let entry = self.consumers.get_mut(&key).expect("present");
        entry.consumer.count_pending(store);
        entry.look_for_interest(now, interest);
        Ok(self
            .consumer_info_obj(&key, Obj::new().str("type", &response_type(NAME)))
            .done())
    }

    /// A consumer's info; its pending count is as of the last
    /// [`AccountJetStream::count_pending`].
    fn consumer_info_obj(&self, key: &(String, String), obj: Obj) -> Obj {
        let entry = &self.consumers[key];
        let c = &entry.consumer;
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
        let obj = obj
            .str("stream_name", &key.0)
            .str("name", &key.1)
            .str("created", &rfc3339(entry.created))
            .raw("config", &c.config().to_json())
            .raw("delivered", &position(dc, ds, delivered_at))
            .raw("ack_floor", &position(fc, fs, acked_at))
            .num("num_ack_pending", c.num_ack_pending())
            .num("num_redelivered", c.num_redelivered())
            .num("num_waiting", entry.waiting.len() as u64)
            .num("num_pending", c.num_pending());
        if entry.bound {
            obj.bool("push_bound", true)
        } else {
            obj
        }
    }

    /// Brings the pending counts of `stream`'s consumers up to date.
    fn count_pending(&mut self, stream: &str) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        for ((_, _), entry) in self
            .consumers
            .iter_mut()
            .filter(|((st, _), _)| st == stream)
        {
            entry.consumer.count_pending(s.store_mut());
        }
    }

    pub(super) fn consumer_info(
        &mut self,
        stream: &str,
        name: &str,
        body: &[u8],
        now: u64,
        interest: &mut Interest<'_>,
    ) -> Answer {
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
        self.count_pending(stream);
        if let Some(entry) = self.consumers.get_mut(&key) {
            entry.look_for_interest(now, interest);
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

    /// The page a NAMES or LIST request of `stream`'s consumers asks for:
    /// its offset, or the error answer (with the empty page's fields).
    fn consumer_page(&self, name: &str, stream: &str, body: &[u8]) -> Result<usize, Answer> {
        let extra = [
            ("total", "0"),
            ("offset", "0"),
            ("limit", "0"),
            ("consumers", "[]"),
        ];
        let req: NamesRequest = request(body).map_err(|e| error_answer(name, &e, &extra))?;
        if !self.streams.contains_key(stream) {
            return Err(error_answer(name, &ApiError::stream_not_found(), &extra));
        }
        Ok(req.offset)
    }

    pub(super) fn consumer_names(&mut self, stream: &str, body: &[u8]) -> Answer {
        const NAME: &str = "consumer_names";
        let offset = match self.consumer_page(NAME, stream, body) {
            Ok(offset) => offset,
            Err(answer) => return answer,
        };
        let keys = self.consumer_keys(stream);
        let offset = offset.min(keys.len());
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

    pub(super) fn consumer_list(
        &mut self,
        stream: &str,
        body: &[u8],
        now: u64,
        interest: &mut Interest<'_>,
    ) -> Answer {
        const NAME: &str = "consumer_list";
        let offset = match self.consumer_page(NAME, stream, body) {
            Ok(offset) => offset,
            Err(answer) => return answer,
        };
        self.count_pending(stream);
        for ((_, _), entry) in self.consumers.iter_mut().filter(|((s, _), _)| s == stream) {
            entry.look_for_interest(now, interest);
        }
        let keys = self.consumer_keys(stream);
        let offset = offset.min(keys.len());
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

    pub(super) fn consumer_delete(
        &mut self,
        stream: &str,
        name: &str,
        body: &[u8],
        now: u64,
    ) -> Answer {
        const NAME: &str = "consumer_delete";
        if !is_empty_request(body) {
            return error_answer(NAME, &ApiError::not_empty_request(), &[]);
        }
        if !self.streams.contains_key(stream) {
            return error_answer(NAME, &ApiError::stream_not_found(), &[]);
        }
        if !self.remove_consumer(&(stream.to_string(), name.to_string()), now) {
            let error = ApiError::consumer(404, 10014, "consumer not found");
            return error_answer(NAME, &error, &[]);
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

    /// Brings back a durable consumer of `stream` from its state on disk
    /// (the JSON of its last state record, from its state file of
    /// generation `generation`; its next state goes to a new generation).
    pub fn restore_consumer(
        &mut self,
        stream: &str,
        json: &[u8],
        generation: u64,
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
        let last_seq = self.streams[stream].store().last_seq();
        let mut entry = ConsumerEntry::new(consumer, created, last_seq, now);
        entry.state_file = (generation, STATE_FILE_FULL);
        self.consumers
            .insert((stream.to_string(), name.clone()), entry);
        Ok(name)
    }

    /// Whether any consumer of the account is a push consumer.
    pub fn has_push_consumers(&self) -> bool {
        self.consumers
            .values()
            .any(|e| e.consumer.config().is_push())
    }

    /// Whether any consumer delivers to subscribers that may go away (a
    /// push consumer, a waiting pull request).
    pub fn watches_interest(&self) -> bool {
        self.consumers
            .values()
            .any(|e| e.consumer.config().is_push() || !e.waiting.is_empty())
    }
}
