//! One stream: its configuration, its messages, and what a publish into it
//! goes through (nats-server's headers, limits and PubAck).

use std::collections::{HashMap, VecDeque};

use super::api_error::ApiError;
use super::config::{DiscardPolicy, Retention, Storage, StreamConfig};
use super::json::Obj;
use super::store::{Accounting, BlockFiles, Discard, Limits, Purge, State, Store};
use crate::proto::encode::decimal;
use crate::time::rfc3339;

/// Go's zero time, for a time that is not set.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Largest header block a stream takes.
const MAX_HEADER: usize = 65_535;

/// What became of a message published into a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored under this sequence.
    Stored(u64),
    /// Its `Nats-Msg-Id` was seen within the duplicate window: not stored,
    /// the original's sequence.
    Duplicate(u64),
    /// Refused, with the error its PubAck carries.
    Refused(ApiError),
    /// Dropped without any answer (an unknown `Nats-Rollup` value).
    Dropped,
}

/// A stream of one account.
#[derive(Debug)]
pub struct Stream {
    config: StreamConfig,
    /// When it was created, Unix nanoseconds.
    created: u64,
    store: Store,
    /// Message ids within the duplicate window: id → sequence, and the ids
    /// in the order they expire (time stored, id).
    ids: HashMap<Box<[u8]>, u64>,
    id_times: VecDeque<(u64, Box<[u8]>)>,
    /// The `Nats-Msg-Id` of the last stored message (empty: none).
    last_msg_id: Box<[u8]>,
    /// The name as a JSON string, for PubAcks.
    name_json: Box<str>,
}

/// The store limits a configuration asks for.
fn limits_of(config: &StreamConfig) -> Limits {
    let positive = |n: i64| u64::try_from(n).ok().filter(|&n| n > 0);
    Limits {
        max_msgs: positive(config.max_msgs),
        max_bytes: positive(config.max_bytes),
        max_msgs_per_subject: positive(config.max_msgs_per_subject),
        max_age: positive(config.max_age),
        discard: match config.discard {
            DiscardPolicy::Old => Discard::Old,
            DiscardPolicy::New => Discard::New,
        },
        discard_new_per_subject: config.discard_new_per_subject,
    }
}

/// The value of header `name` in a raw `NATS/1.0` header block.
pub fn header<'a>(hdr: &'a [u8], name: &str) -> Option<&'a [u8]> {
    hdr.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        (&line[..colon] == name.as_bytes()).then(|| line[colon + 1..].trim_ascii())
    })
}

fn parse_u64(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl Stream {
    /// A new stream with a checked configuration, created at `now` (Unix
    /// nanoseconds). A file stream reads its blocks back through `files`
    /// (without, it keeps them all loaded).
    pub fn new(config: StreamConfig, now: u64, files: Option<BlockFiles>) -> Stream {
        let limits = limits_of(&config);
        let name_json = serde_json::to_string(&config.name)
            .expect("a string serializes")
            .into();
        let store = match config.storage {
            Storage::File => Store::on_disk(Accounting::File, limits, files),
            Storage::Memory => Store::new(Accounting::Memory, limits),
        };
        Stream {
            config,
            created: now,
            store,
            ids: HashMap::new(),
            id_times: VecDeque::new(),
            last_msg_id: Box::default(),
            name_json,
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// When it was created, Unix nanoseconds.
    pub fn created(&self) -> u64 {
        self.created
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// A new configuration (checked, and allowed as an update).
    pub fn update(&mut self, config: StreamConfig) {
        self.store.set_limits(limits_of(&config));
        self.config = config;
    }

    /// Whether this stream stores messages published on `subject`.
    pub fn captures(&self, subject: &[u8]) -> bool {
        self.config
            .subjects
            .iter()
            .any(|s| crate::subject::subject_matches(s.as_bytes(), subject))
    }

    /// Forgets message ids older than the duplicate window.
    fn expire_ids(&mut self, now: u64) {
        let window = u64::try_from(self.config.duplicate_window).unwrap_or(0);
        while let Some((time, _)) = self.id_times.front() {
            if now.saturating_sub(*time) < window {
                break;
            }
            let (_, id) = self.id_times.pop_front().expect("present");
            self.ids.remove(&id);
        }
    }

    /// A message published on `subject` at `now` (Unix nanoseconds):
    /// nats-server's header checks in its order, then the limits.
    pub fn publish(&mut self, subject: &[u8], hdr: &[u8], data: &[u8], now: u64) -> Stored {
        self.publish_for(subject, hdr, data, now, false)
    }

    /// [`Stream::publish`], knowing whether a consumer wants the message
    /// (what an interest stream keeps it for).
    pub fn publish_for(
        &mut self,
        subject: &[u8],
        hdr: &[u8],
        data: &[u8],
        now: u64,
        interested: bool,
    ) -> Stored {
        if self.config.sealed {
            return Stored::Refused(ApiError::sealed());
        }
        if let Some(expected) = header(hdr, "Nats-Expected-Stream") {
            if expected != self.config.name.as_bytes() {
                return Stored::Refused(ApiError::expected_stream_mismatch());
            }
        }
        self.expire_ids(now);
        let msg_id = header(hdr, "Nats-Msg-Id").filter(|id| !id.is_empty());
        if let Some(&seq) = msg_id.and_then(|id| self.ids.get(id)) {
            return Stored::Duplicate(seq);
        }
        let state = self.store.state();
        if let Some(expected) = header(hdr, "Nats-Expected-Last-Subject-Sequence") {
            let last = self.store.last_seq_by_subject(subject).unwrap_or(0);
            if parse_u64(expected) != Some(last) {
                return Stored::Refused(ApiError::wrong_last_sequence(last));
            }
        }
        if let Some(expected) = header(hdr, "Nats-Expected-Last-Sequence") {
            if parse_u64(expected) != Some(state.last_seq) {
                return Stored::Refused(ApiError::wrong_last_sequence(state.last_seq));
            }
        }
        if let Some(expected) = header(hdr, "Nats-Expected-Last-Msg-Id") {
            if expected != &*self.last_msg_id {
                let last = String::from_utf8_lossy(&self.last_msg_id).into_owned();
                return Stored::Refused(ApiError::wrong_last_msg_id(&last));
            }
        }
        let rollup = match header(hdr, "Nats-Rollup").map(<[u8]>::to_ascii_lowercase) {
            None => None,
            Some(v) if v == b"sub" || v == b"all" => {
                if !self.config.allow_rollup_hdrs || self.config.deny_purge {
                    return Stored::Refused(ApiError::rollup_not_permitted());
                }
                Some(v == b"all")
            }
            Some(_) => return Stored::Dropped,
        };
        let max_size = self.config.max_msg_size;
        if max_size > 0 && (hdr.len() + data.len()) as i64 > max_size {
            return Stored::Refused(ApiError::message_too_big());
        }
        if hdr.len() > MAX_HEADER {
            return Stored::Refused(ApiError::header_too_big());
        }
        if self.config.retention == Retention::Interest && !interested {
            // Interest retention keeps a message only for the consumers
            // interested in it; with none it takes a sequence and is
            // acknowledged, as nats-server does, but nothing is stored.
            let seq = self.store.skip(now);
            return Stored::Stored(seq);
        }
        let seq = match self.store.store(subject, hdr, data, now) {
            Ok(seq) => seq,
            Err(e) => return Stored::Refused(ApiError::store_failed(&e.to_string())),
        };
        self.last_msg_id = msg_id.unwrap_or_default().into();
        if let Some(id) = msg_id {
            self.ids.insert(id.into(), seq);
            self.id_times.push_back((now, id.into()));
        }
        if let Some(all) = rollup {
            let filter = (!all).then_some(subject);
            self.store.purge(&Purge {
                filter,
                below: Some(seq),
                keep: None,
            });
        }
        Stored::Stored(seq)
    }

    /// Writes the PubAck for what `publish` returned into `out` (emptied
    /// first; its room is reused from one message to the next); false
    /// when none is sent.
    pub fn pub_ack(&self, stored: &Stored, out: &mut Vec<u8>) -> bool {
        out.clear();
        if self.config.no_ack {
            return false;
        }
        let name = self.name_json.as_bytes();
        let mut digits = [0u8; 20];
        match stored {
            Stored::Stored(seq) | Stored::Duplicate(seq) => {
                out.extend_from_slice(b"{\"stream\":");
                out.extend_from_slice(name);
                out.extend_from_slice(b", \"seq\":");
                out.extend_from_slice(decimal(*seq, &mut digits));
                if let Stored::Duplicate(_) = stored {
                    out.extend_from_slice(b",\"duplicate\": true");
                }
                out.push(b'}');
            }
            Stored::Refused(error) => {
                let json = Obj::new()
                    .raw("error", &error.to_json())
                    .raw("stream", &self.name_json)
                    .num("seq", 0u64)
                    .done();
                out.extend_from_slice(json.as_bytes());
            }
            Stored::Dropped => return false,
        }
        true
    }

    /// `config`, `created` and `state` as stream INFO, CREATE and LIST write them.
    pub fn info_fields(&self, obj: Obj, consumers: u64) -> Obj {
        obj.raw("config", &self.config.to_json())
            .str("created", &rfc3339(self.created))
            .raw("state", &state_json(&self.store.state(), consumers))
    }

    pub fn retention(&self) -> Retention {
        self.config.retention
    }
}

/// A stream's `state` object.
pub fn state_json(state: &State, consumers: u64) -> String {
    let time = |t: u64| {
        if t == 0 {
            ZERO_TIME.to_string()
        } else {
            rfc3339(t)
        }
    };
    let mut obj = Obj::new()
        .num("messages", state.messages)
        .num("bytes", state.bytes)
        .num("first_seq", state.first_seq)
        .str("first_ts", &time(state.first_time))
        .num("last_seq", state.last_seq)
        .str("last_ts", &time(state.last_time));
    if state.num_subjects > 0 {
        obj = obj.num("num_subjects", state.num_subjects);
    }
    if state.num_deleted > 0 {
        obj = obj.num("num_deleted", state.num_deleted);
    }
    obj.num("consumer_count", consumers).done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(json: &str) -> Stream {
        let config = StreamConfig::from_json(json.as_bytes())
            .unwrap()
            .checked(0)
            .unwrap();
        Stream::new(config, 1_000_000_000, None)
    }

    fn hdr(lines: &[&str]) -> Vec<u8> {
        let mut h = b"NATS/1.0\r\n".to_vec();
        for line in lines {
            h.extend_from_slice(line.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"\r\n");
        h
    }

    #[test]
    fn headers_are_found_by_exact_name() {
        let h = hdr(&["Nats-Msg-Id: abc", "X: 1"]);
        assert_eq!(header(&h, "Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(header(&h, "X"), Some(&b"1"[..]));
        assert_eq!(header(&h, "Y"), None);
        assert_eq!(header(b"", "X"), None);
    }

    fn ack(s: &Stream, stored: &Stored) -> Option<String> {
        let mut out = Vec::new();
        s.pub_ack(stored, &mut out)
            .then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn pub_acks_as_nats_server_writes_them() {
        let mut s = stream(r#"{"name":"ORDERS","subjects":["orders.>"]}"#);
        let first = s.publish(b"orders.1", b"", b"x", 1);
        assert_eq!(ack(&s, &first).unwrap(), r#"{"stream":"ORDERS", "seq":1}"#);
        let h = hdr(&["Nats-Msg-Id: m1"]);
        assert_eq!(s.publish(b"orders.1", &h, b"x", 2), Stored::Stored(2));
        let again = s.publish(b"orders.1", &h, b"y", 3);
        assert_eq!(again, Stored::Duplicate(2));
        assert_eq!(
            ack(&s, &again).unwrap(),
            r#"{"stream":"ORDERS", "seq":2,"duplicate": true}"#
        );
        let wrong = s.publish(
            b"orders.1",
            &hdr(&["Nats-Expected-Last-Sequence: 1"]),
            b"x",
            4,
        );
        assert_eq!(
            ack(&s, &wrong).unwrap(),
            r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"},"stream":"ORDERS","seq":0}"#
        );
    }

    #[test]
    fn expectations_in_nats_servers_order() {
        let mut s = stream(r#"{"name":"S","subjects":["s.*"]}"#);
        let stream_mismatch = s.publish(b"s.a", &hdr(&["Nats-Expected-Stream: T"]), b"", 1);
        assert_eq!(
            stream_mismatch,
            Stored::Refused(ApiError::expected_stream_mismatch())
        );
        assert_eq!(
            s.publish(b"s.a", &hdr(&["Nats-Msg-Id: one"]), b"", 1),
            Stored::Stored(1)
        );
        assert_eq!(s.publish(b"s.b", b"", b"", 1), Stored::Stored(2));
        let subject_seq = hdr(&["Nats-Expected-Last-Subject-Sequence: 1"]);
        assert_eq!(s.publish(b"s.a", &subject_seq, b"", 1), Stored::Stored(3));
        assert_eq!(
            s.publish(b"s.a", &subject_seq, b"", 1),
            Stored::Refused(ApiError::wrong_last_sequence(3))
        );
        let new_subject = hdr(&["Nats-Expected-Last-Subject-Sequence: 0"]);
        assert_eq!(s.publish(b"s.c", &new_subject, b"", 1), Stored::Stored(4));
        assert_eq!(
            s.publish(b"s.a", &hdr(&["Nats-Expected-Last-Msg-Id: one"]), b"", 1),
            Stored::Refused(ApiError::wrong_last_msg_id(""))
        );
    }

    #[test]
    fn ids_expire_with_the_duplicate_window() {
        let mut s = stream(r#"{"name":"S","duplicate_window":1000000000}"#);
        let h = hdr(&["Nats-Msg-Id: a"]);
        assert_eq!(s.publish(b"S", &h, b"", 10_000_000_000), Stored::Stored(1));
        assert_eq!(
            s.publish(b"S", &h, b"", 10_900_000_000),
            Stored::Duplicate(1)
        );
        assert_eq!(s.publish(b"S", &h, b"", 11_000_000_000), Stored::Stored(2));
    }

    #[test]
    fn rollups_and_limits() {
        let mut s = stream(r#"{"name":"S","subjects":["s.*"],"allow_rollup_hdrs":true}"#);
        for subject in [&b"s.a"[..], b"s.b", b"s.a"] {
            s.publish(subject, b"", b"", 1);
        }
        assert_eq!(
            s.publish(b"s.a", &hdr(&["Nats-Rollup: sub"]), b"", 1),
            Stored::Stored(4)
        );
        assert_eq!(s.store().state().messages, 2, "s.b and the roll-up");
        assert_eq!(
            s.publish(b"s.b", &hdr(&["Nats-Rollup: ALL"]), b"", 1),
            Stored::Stored(5)
        );
        assert_eq!(s.store().state().messages, 1);
        assert_eq!(
            s.publish(b"s.b", &hdr(&["Nats-Rollup: x"]), b"", 1),
            Stored::Dropped
        );
        let mut plain = stream(r#"{"name":"P"}"#);
        assert_eq!(
            plain.publish(b"P", &hdr(&["Nats-Rollup: all"]), b"", 1),
            Stored::Refused(ApiError::rollup_not_permitted())
        );
        let mut small = stream(r#"{"name":"M","max_msg_size":4,"max_msgs":1,"discard":"new"}"#);
        assert_eq!(
            small.publish(b"M", b"", b"12345", 1),
            Stored::Refused(ApiError::message_too_big())
        );
        assert_eq!(small.publish(b"M", b"", b"1", 1), Stored::Stored(1));
        let full = small.publish(b"M", b"", b"1", 1);
        assert_eq!(
            full,
            Stored::Refused(ApiError::store_failed("maximum messages exceeded"))
        );
        let mut quiet = stream(r#"{"name":"Q","no_ack":true}"#);
        let stored = quiet.publish(b"Q", b"", b"", 1);
        assert_eq!(ack(&quiet, &stored), None);
    }

    #[test]
    fn an_interest_stream_without_consumers_stores_nothing_but_counts() {
        let mut s = stream(r#"{"name":"I","retention":"interest"}"#);
        assert_eq!(s.publish(b"I", b"", b"x", 1), Stored::Stored(1));
        assert_eq!(s.publish(b"I", b"", b"x", 2), Stored::Stored(2));
        let state = s.store().state();
        // nats-server: first_seq = last_seq + 1, nothing held.
        assert_eq!((state.messages, state.first_seq, state.last_seq), (0, 3, 2));
    }

    #[test]
    fn state_json_omits_zero_counts_as_nats_server() {
        let s = stream(r#"{"name":"S"}"#);
        assert_eq!(
            state_json(&s.store().state(), 0),
            r#"{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0}"#
        );
    }
}
