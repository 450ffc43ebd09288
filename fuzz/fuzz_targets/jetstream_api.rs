//! Sends fuzzer-chosen JetStream API requests (built or arbitrary JSON bodies, with or without header blocks) to every `$JS.API` subject in two accounts, and checks that each is answered exactly as the engine promises and that each account's usage is the sum of its streams.
//!
//! One server (JetStream on, server-wide limits of `SERVER_MEMORY` and
//! `SERVER_STORAGE` bytes) with two accounts: A (JetStream without limits)
//! and B (JetStream with small memory, storage, stream and consumer limits).
//! Client 0 logs in to A, client 1 to B; both have headers and no_responders
//! on and subscribe to `_R.>` (API answers and PubAcks: every request gets a
//! fresh inbox `_R.<n>`), `_P.>` (pull requests), `d.>` (push deliveries) and
//! `$JS.EVENT.>` (advisories).
//!
//! Input: steps until the input runs out (at most `MAX_STEPS`). A step is an
//! op byte and its operands. The op byte: bits 0-3 the op, bit 4 the account
//! (client), bits 5-7 the request's header block and reply: 0, 1 no header
//! block, 2 a valid `NATS/1.0` block of fuzzer-chosen lines ([`headers`]),
//! 3 arbitrary bytes as the header block, 7 no reply subject. Requests that
//! take a body read a body byte first ([`Input::body`]): built JSON, raw
//! bytes or nothing. Names ([`Input::stream`], [`Input::consumer`]) come from
//! a fixed list or are fuzzer-chosen characters (valid and invalid names).
//!
//! - 0 `STREAM.CREATE.<s>`, 1 `STREAM.UPDATE.<s>`: a built configuration of
//!   four bytes ([`stream_config`]);
//! - 2 `STREAM.INFO.<s>` or `STREAM.DELETE.<s>`;
//! - 3 `STREAM.PURGE.<s>`;
//! - 4 `STREAM.NAMES` or `STREAM.LIST`;
//! - 5 `STREAM.MSG.GET.<s>` or `STREAM.MSG.DELETE.<s>`;
//! - 6 `DIRECT.GET.<s>` (a JSON body) or `DIRECT.GET.<s>.<subject>`;
//! - 7 a consumer create: `CONSUMER.CREATE.<s>`, `.<s>.<c>`,
//!   `.<s>.<c>.<filter>` or `CONSUMER.DURABLE.CREATE.<s>.<c>`, with a built
//!   configuration of four bytes ([`consumer_config`]);
//! - 8 `CONSUMER.INFO`, `NAMES`, `LIST` or `DELETE`;
//! - 9 `CONSUMER.MSG.NEXT.<s>.<c>` (a pull request, on a `_P.<n>` inbox);
//! - 10 an unknown or malformed `$JS.API` subject (and a few near misses);
//! - 11, 12 a publish on a stream subject: subject, size;
//! - 13 an ack or a flow-control answer of a delivery seen;
//! - 14 advance the clock (1 ms to 10 min), running every timer due;
//! - 15 `$JS.API.INFO` (account info).
//!
//! Checked: no panic; the output is well-formed protocol, never `-ERR`, and
//! no client is closed. Every request with a reply subject is answered, on
//! its own inbox only and in the requester's account only, before the next
//! step, as the engine's dispatch promises: a `$JS.API` request the API
//! knows gets exactly one plain MSG whose payload is a JSON object with the
//! right `type` (`io.nats.jetstream.api.v1.<request>_response`) and, if it
//! is an error, an `error` object with a `code` and a `description`; an
//! unknown `$JS.API` subject gets nothing; a subject outside `$JS.API.` gets
//! the no-responders status; a direct get gets one HMSG (the message with its
//! `Nats-Stream` and `Nats-Sequence` headers, or a 404/408 status) if the
//! stream exists and allows direct gets, else nothing; a pull request (not
//! counted: messages or statuses come now or later) gets only messages with
//! well-formed `$JS.ACK` reply subjects or status messages, and nothing at
//! all for a stream the account does not have. A publish on a stream subject
//! gets the no-responders status if no stream of the account captures it,
//! else at most one PubAck, naming that stream. Accounts are kept apart: each
//! account's STREAM.LIST is exactly the streams it created and did not
//! delete (a model kept from the API answers), a NAMES or LIST answer names
//! none other, and no request naming a stream the account does not have
//! succeeds. Usage: after every
//! step, in the account it acted in (in both after a clock advance, and at
//! the end), account INFO's `memory` and `storage` are the sums of
//! `state.bytes` over STREAM.LIST's memory and file streams, and its
//! `streams` the list's length (asked INFO, LIST, INFO: only when both INFOs
//! agree, as consumers may take messages away meanwhile). Advisories are
//! JSON objects with a `type`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::IoSlice;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tenet_core::config::options::read_config;
use tenet_core::config::{parse, MapResolver};
use tenet_core::options::JetStreamOptions;
use tenet_core::{Accounts, Auth, ClientId, Event, Options, Peer, Server, Time, Users};

const MAX_STEPS: usize = 48;
/// Server-wide JetStream limits, in bytes.
const SERVER_MEMORY: i64 = 16_000;
const SERVER_STORAGE: i64 = 64_000;
/// The wall clock at `Time::ZERO` (Unix nanoseconds, November 2023).
const ORIGIN: u64 = 1_700_000_000_000_000_000;
const ACCOUNTS: [&str; 2] = ["A", "B"];
const CONFIG: &str = r#"
accounts {
  A: { jetstream: enabled, users: [{user: a, password: pa}] }
  B: {
    jetstream: {max_memory: 3000, max_store: 6000, max_streams: 3, max_consumers: 4}
    users: [{user: b, password: pb}]
  }
}
"#;
const CONNECT: [&str; 2] = [
    r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"user":"a","pass":"pa"}"#,
    r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"user":"b","pass":"pb"}"#,
];
/// Every client's subscriptions: sid, subject.
const SUBS: [(&str, &str); 4] = [
    (SID_ANSWERS, "_R.>"),
    (SID_PULLS, "_P.>"),
    (SID_PUSH, "d.>"),
    (SID_EVENTS, "$JS.EVENT.>"),
];
const SID_ANSWERS: &str = "1";
const SID_PULLS: &str = "2";
const SID_PUSH: &str = "3";
const SID_EVENTS: &str = "4";

const STREAMS: [&str; 5] = ["S", "T", "U", "ORDERS", "KV_x"];
const CONSUMERS: [&str; 3] = ["c0", "c1", "dur"];
/// Characters of fuzzer-made names: valid ones and each kind of invalid one.
const NAME_CHARS: [&str; 20] = [
    "S", "T", "a", "b", "x", "0", "9", "_", "-", ".", "*", ">", "/", "\\", "\"", "$", "é", "~",
    "{", "%",
];
/// Subject sets of built stream configurations (`None`: the name).
const SUBJECT_SETS: [Option<&[&str]>; 8] = [
    None,
    Some(&["s.>"]),
    Some(&["s.a", "s.b"]),
    Some(&["t.*"]),
    Some(&["t.>", "u"]),
    Some(&["s.*", "s.>"]),
    Some(&["orders.>"]),
    Some(&["s.a"]),
];
/// Subjects published on.
const PUBLISH_SUBJECTS: [&str; 12] = [
    "s.a", "s.b", "s.c.d", "t.x", "t.y.z", "u", "S", "T", "U", "ORDERS", "orders.1", "v",
];
const FILTERS: [&str; 8] = ["", "s.a", "s.>", "t.*", "s.*", "orders.>", "u", "x.y"];
const DELIVER: [&str; 3] = ["d.1", "d.2", "d.3"];
const HEADER_KEYS: [&str; 9] = [
    "Nats-Msg-Id",
    "Nats-Expected-Last-Sequence",
    "Nats-Expected-Last-Subject-Sequence",
    "Nats-Expected-Stream",
    "Nats-Expected-Last-Msg-Id",
    "Nats-Rollup",
    "Nats-Msg-Size",
    "K",
    "Nats-Expected-Last-Sequence",
];
const HEADER_VALUES: [&str; 12] = [
    "0", "1", "2", "3", "5", "S", "T", "sub", "all", "m1", "m2", "",
];
/// `$JS.API` subjects the API does not know, and near misses of the prefix.
const UNKNOWN: [&str; 16] = [
    "$JS.API.",
    "$JS.API.STREAM",
    "$JS.API.STREAM.CREATE",
    "$JS.API.STREAM.FOO.S",
    "$JS.API.STREAM.NAMES.S",
    "$JS.API.STREAM.MSG.GET",
    "$JS.API.CONSUMER.CREATE",
    "$JS.API.CONSUMER.DURABLE.CREATE.S",
    "$JS.API.CONSUMER.INFO.S",
    "$JS.API.CONSUMER.MSG.NEXT.S",
    "$JS.API.DIRECT.GET",
    "$JS.API.INFO.x",
    "$JS.API.ACCOUNT.INFO",
    "$JS.API.STREAM.SNAPSHOT.S",
    "$JS.API",
    "$JS.APIX.INFO",
];

/// With `JETSTREAM_API_FUZZ_TRACE` set, what each client sends and
/// receives is printed (to read a crash's story).
fn trace(c: usize, dir: &str, bytes: &[u8]) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("JETSTREAM_API_FUZZ_TRACE").is_some()) {
        eprintln!("{c} {dir} {}", String::from_utf8_lossy(bytes).trim_end());
    }
}

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let resolver = MapResolver(HashMap::new());
        let parsed = parse("api.conf", CONFIG, &resolver, &|_| None).expect("config syntax");
        let (config, errors) = read_config(&parsed);
        assert!(errors.is_empty(), "{errors:?}");
        let users = Users::new(
            config.authorization.as_ref(),
            &config.accounts,
            None,
            None,
            None,
            None,
        )
        .expect("users");
        let accounts = Accounts::from_config(&config).expect("accounts");
        Auth { users, accounts }
    })
}

// ----- input decoding --------------------------------------------------------------

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        Some(from[self.next()? as usize % from.len()])
    }

    /// A length byte (mod `max`), then that many bytes.
    fn raw(&mut self, max: usize) -> Option<Vec<u8>> {
        let n = (self.next()? as usize % max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head.to_vec())
    }

    /// A name: mostly one of `fixed`, else up to 15 characters of `NAME_CHARS`.
    fn name(&mut self, fixed: &[&str]) -> Option<String> {
        let v = self.next()?;
        if v < 0xe0 {
            return Some(fixed[v as usize % fixed.len()].to_string());
        }
        let mut name = String::new();
        for _ in 0..v & 0x0f {
            name.push_str(self.pick(&NAME_CHARS)?);
        }
        Some(name)
    }

    fn stream(&mut self) -> Option<String> {
        self.name(&STREAMS)
    }

    /// A consumer name: a fixed one, one learnt from a create, or made up.
    fn consumer(&mut self, learnt: &[String]) -> Option<String> {
        let mut fixed: Vec<&str> = CONSUMERS.to_vec();
        fixed.extend(learnt.iter().map(String::as_str));
        self.name(&fixed)
    }

    /// A request body: a byte, then either what `built` makes of the next
    /// bytes (half the time), raw bytes, or nothing.
    fn body(&mut self, built: impl FnOnce(&mut Self) -> Option<String>) -> Option<Vec<u8>> {
        Some(match self.next()? % 4 {
            0 | 1 => built(self)?.into_bytes(),
            2 => self.raw(128)?,
            _ => Vec::new(),
        })
    }
}

/// A JSON string.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Nanoseconds of `ms` milliseconds.
fn ms(ms: i64) -> i64 {
    ms * 1_000_000
}

/// A stream configuration for stream `name` from four bytes.
fn stream_config(b: &mut Input, name: &str) -> Option<String> {
    let (f, g, h, k) = (b.next()?, b.next()?, b.next()?, b.next()?);
    let mut fields = Vec::new();
    let named = match g >> 6 {
        0 => Some(name.to_string()),
        1 => Some(name.to_string()),
        2 => Some(if name == "S" { "T" } else { "S" }.to_string()),
        _ => None,
    };
    if let Some(n) = named {
        fields.push(format!(r#""name":{}"#, js(&n)));
    }
    if let Some(subjects) = SUBJECT_SETS[(h & 7) as usize] {
        let list: Vec<String> = subjects.iter().map(|s| js(s)).collect();
        fields.push(format!(r#""subjects":[{}]"#, list.join(",")));
    }
    let storage = if f & 1 != 0 { "memory" } else { "file" };
    fields.push(format!(r#""storage":"{storage}""#));
    let retention = ["limits", "limits", "interest", "workqueue"][(f >> 1 & 3) as usize];
    fields.push(format!(r#""retention":"{retention}""#));
    let max_msgs = [-1, 2, 5, 100][(f >> 3 & 3) as usize];
    fields.push(format!(r#""max_msgs":{max_msgs}"#));
    let max_bytes = [-1, 300, 1_500, 10_000][(f >> 5 & 3) as usize];
    fields.push(format!(r#""max_bytes":{max_bytes}"#));
    if f & 0x80 != 0 {
        fields.push(r#""discard":"new""#.into());
    }
    let max_age = [0, ms(200), ms(2_000), ms(50)][(g & 3) as usize];
    fields.push(format!(r#""max_age":{max_age}"#));
    if let Some(n) = [None, Some(1), Some(3), None][(g >> 2 & 3) as usize] {
        fields.push(format!(r#""max_msgs_per_subject":{n}"#));
    }
    if let Some(w) =
        [None, Some(ms(100)), Some(ms(1_000)), Some(ms(3_600_000))][(g >> 4 & 3) as usize]
    {
        fields.push(format!(r#""duplicate_window":{w}"#));
    }
    if h & 0x08 == 0 {
        fields.push(r#""allow_direct":true"#.into());
    }
    if h & 0x10 != 0 {
        fields.push(r#""allow_rollup_hdrs":true"#.into());
    }
    if h & 0x20 != 0 {
        fields.push(r#""deny_delete":true"#.into());
    }
    if h & 0x40 != 0 {
        fields.push(r#""deny_purge":true"#.into());
    }
    if h & 0x80 != 0 {
        fields.push(r#""max_msg_size":64"#.into());
    }
    match k & 7 {
        1 => fields.push(r#""sealed":true"#.into()),
        2 => fields.push(r#""no_ack":true"#.into()),
        3 => fields.push(r#""num_replicas":3"#.into()),
        4 => fields.push(r#""max_consumers":1"#.into()),
        5 => fields.push(r#""description":"d""#.into()),
        6 => fields.push(r#""discard_new_per_subject":true"#.into()),
        _ => {}
    }
    Some(format!("{{{}}}", fields.join(",")))
}

/// A consumer create request for stream `stream` from four bytes, with
/// `named` fields (a name or durable name) added.
fn consumer_config(
    b: &mut Input,
    stream: &str,
    named: &[String],
    filter: Option<&str>,
) -> Option<String> {
    let (f, g, h, k) = (b.next()?, b.next()?, b.next()?, b.next()?);
    let mut fields = named.to_vec();
    let ack = ["explicit", "all", "none", "explicit"][(f & 3) as usize];
    fields.push(format!(r#""ack_policy":"{ack}""#));
    let filter = filter.unwrap_or(FILTERS[(f >> 2 & 7) as usize]);
    if !filter.is_empty() {
        fields.push(format!(r#""filter_subject":{}"#, js(filter)));
    }
    match f >> 5 {
        0..=2 => {}
        3 => fields.push(r#""deliver_policy":"last""#.into()),
        4 => fields.push(r#""deliver_policy":"new""#.into()),
        5 => fields.push(format!(
            r#""deliver_policy":"by_start_sequence","opt_start_seq":{}"#,
            1 + k % 6
        )),
        6 => fields.push(r#""deliver_policy":"last_per_subject""#.into()),
        _ => fields.push(
            r#""deliver_policy":"by_start_time","opt_start_time":"2023-11-14T22:13:21Z""#.into(),
        ),
    }
    if let Some(w) = [None, Some(100), Some(1_000), None][(g & 3) as usize] {
        fields.push(format!(r#""ack_wait":{}"#, ms(w)));
    }
    if let Some(n) = [None, Some(1), Some(2), Some(-1)][(g >> 2 & 3) as usize] {
        fields.push(format!(r#""max_deliver":{n}"#));
    }
    if let Some(n) = [None, Some(1), Some(5), None][(g >> 4 & 3) as usize] {
        fields.push(format!(r#""max_ack_pending":{n}"#));
    }
    if let Some(t) = [None, Some(300), Some(5_000), None][(g >> 6) as usize] {
        fields.push(format!(r#""inactive_threshold":{}"#, ms(t)));
    }
    if h & 1 != 0 {
        let deliver = DELIVER[(h >> 1) as usize % DELIVER.len()];
        fields.push(format!(r#""deliver_subject":"{deliver}""#));
        if h & 8 != 0 {
            fields.push(r#""deliver_group":"g""#.into());
        }
        if h & 0x10 != 0 {
            fields.push(format!(r#""idle_heartbeat":{}"#, ms(500)));
            if h & 0x20 != 0 {
                fields.push(r#""flow_control":true"#.into());
            }
        }
        if h & 0x40 != 0 {
            fields.push(r#""headers_only":true"#.into());
        }
    } else {
        if let Some(n) = [None, Some(1), Some(3), None][(h >> 1 & 3) as usize] {
            fields.push(format!(r#""max_waiting":{n}"#));
        }
        if let Some(n) = [None, Some(1), Some(2), None][(h >> 3 & 3) as usize] {
            fields.push(format!(r#""max_batch":{n}"#));
        }
        if h & 0x20 != 0 {
            fields.push(r#""max_bytes":100"#.into());
        }
        if h & 0x40 != 0 {
            fields.push(format!(r#""max_expires":{}"#, ms(1_000)));
        }
    }
    if h & 0x80 != 0 {
        fields.push(r#""num_replicas":1,"mem_storage":true"#.into());
    }
    let stream_name = match k >> 6 {
        0 | 1 => js(stream),
        2 => js("nope"),
        _ => return Some(format!(r#"{{"config":{{{}}}}}"#, fields.join(","))),
    };
    Some(format!(
        r#"{{"stream_name":{stream_name},"config":{{{}}}}}"#,
        fields.join(",")
    ))
}

/// A pull request's body from two bytes.
fn pull_body(b: &mut Input) -> Option<String> {
    let (f, g) = (b.next()?, b.next()?);
    let batch = [1, 2, 5, 0][(f & 3) as usize];
    let expires = [0, ms(100), ms(2_000), ms(-1)][(f >> 2 & 3) as usize];
    let max_bytes = [0, 30, 500, 0][(f >> 4 & 3) as usize];
    let beat = [0, ms(50), ms(2_000), 0][(f >> 6) as usize];
    Some(match g % 4 {
        0 => batch.to_string(),
        _ => format!(
            r#"{{"batch":{batch},"expires":{expires},"no_wait":{},"max_bytes":{max_bytes},"idle_heartbeat":{beat}}}"#,
            g & 4 != 0
        ),
    })
}

/// A valid header block: a status line sometimes, then up to three lines
/// of known or made-up keys and values.
fn headers(b: &mut Input) -> Option<Vec<u8>> {
    let f = b.next()?;
    let mut block = match f >> 6 {
        3 => "NATS/1.0 503\r\n".to_string(),
        _ => "NATS/1.0\r\n".to_string(),
    };
    for _ in 0..f & 3 {
        let key = match b.next()? {
            v if v < 0xf0 => HEADER_KEYS[v as usize % HEADER_KEYS.len()].to_string(),
            v => (0..v & 7)
                .map(|i| ["X", "-", "y", "é"][i as usize % 4])
                .collect(),
        };
        let value = match b.next()? {
            v if v < 0xc0 => HEADER_VALUES[v as usize % HEADER_VALUES.len()].to_string(),
            v => (v & 0x3f).to_string(),
        };
        block.push_str(&format!("{key}: {value}\r\n"));
    }
    block.push_str("\r\n");
    Some(block.into_bytes())
}

// ----- what the clients receive ------------------------------------------------------

struct Msg {
    sid: String,
    subject: String,
    reply: Option<String>,
    hdr: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl Msg {
    /// A status message: an HMSG whose header block is `NATS/1.0 <code> ...`.
    fn status(&self) -> Option<u16> {
        let hdr = self.hdr.as_deref()?;
        let line = &hdr[..hdr.iter().position(|&b| b == b'\r').unwrap_or(hdr.len())];
        let rest = line.strip_prefix(b"NATS/1.0 ")?;
        let code = std::str::from_utf8(rest.get(..3)?).ok()?;
        code.parse().ok()
    }

    /// What a consumer delivered, not an answer: a message to acknowledge,
    /// a flow-control request or an idle heartbeat.
    fn is_delivery(&self) -> bool {
        let stream_header = self
            .hdr
            .as_deref()
            .is_some_and(|h| text(h).contains("Nats-Stream: "));
        self.reply.as_deref().is_some_and(|r| r.starts_with("$JS."))
            || (self.status() == Some(100) && !stream_header)
    }

    fn show(&self) -> String {
        format!(
            "{} (reply {:?}) hdr {:?} payload {:?}",
            self.subject,
            self.reply,
            self.hdr.as_deref().map(String::from_utf8_lossy),
            String::from_utf8_lossy(&self.payload)
        )
    }
}

enum Frame {
    Msg(Msg),
    Ping,
    Other,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The next complete frame of server output and its length, `None` if the
/// bytes end inside one. Panics on anything that is not valid output.
fn next_frame(rx: &[u8]) -> Option<(Frame, usize)> {
    let Some(lf) = rx.iter().position(|&b| b == b'\n') else {
        assert!(rx.len() < 8192, "no line end in {} bytes", rx.len());
        return None;
    };
    assert!(lf > 0 && rx[lf - 1] == b'\r', "a line not ended by CRLF");
    let line = &rx[..lf - 1];
    let rest = &rx[lf + 1..];
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let hmsg = match words[0] {
        b"MSG" => false,
        b"HMSG" => true,
        b"INFO" => {
            assert!(line.starts_with(b"INFO {"), "bad INFO {:?}", text(line));
            return Some((Frame::Other, lf + 1));
        }
        b"PING" if words.len() == 1 => return Some((Frame::Ping, lf + 1)),
        b"PONG" | b"+OK" if words.len() == 1 => return Some((Frame::Other, lf + 1)),
        _ => panic!("unexpected server output {:?}", text(line)),
    };
    let args = &words[1..];
    let sizes = 1 + usize::from(hmsg);
    assert!(
        (args.len() == 2 + sizes || args.len() == 3 + sizes) && args.iter().all(|a| !a.is_empty()),
        "bad line {:?}",
        text(line)
    );
    let number = |t: &[u8]| -> usize {
        assert!(
            t.iter().all(u8::is_ascii_digit),
            "bad size in {:?}",
            text(line)
        );
        text(t).parse().expect("a size")
    };
    let total = number(args[args.len() - 1]);
    if rest.len() < total + 2 {
        return None;
    }
    assert_eq!(
        &rest[total..total + 2],
        b"\r\n",
        "payload not followed by CRLF"
    );
    let hdr_len = if hmsg {
        number(args[args.len() - 2])
    } else {
        0
    };
    assert!(
        hdr_len <= total,
        "header size past the total in {:?}",
        text(line)
    );
    let msg = Msg {
        sid: text(args[1]),
        subject: text(args[0]),
        reply: (args.len() == 3 + sizes).then(|| text(args[2])),
        hdr: hmsg.then(|| rest[..hdr_len].to_vec()),
        payload: rest[hdr_len..total].to_vec(),
    };
    Some((Frame::Msg(msg), lf + 1 + total + 2))
}

/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`.
fn check_ack_subject(subject: &str) {
    let tokens: Vec<&str> = subject.split('.').collect();
    assert_eq!(tokens.len(), 9, "ack subject {subject}");
    for t in &tokens[4..] {
        assert!(
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()),
            "ack subject {subject}"
        );
    }
}

/// Whether subject pattern `pattern` matches the literal `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    for (i, t) in p.iter().enumerate() {
        match *t {
            ">" => return s.len() > i,
            _ if i >= s.len() => return false,
            "*" => {}
            t if t != s[i] => return false,
            _ => {}
        }
    }
    p.len() == s.len()
}

// ----- what a request should get ------------------------------------------------------

/// What the engine promises for a request on a subject.
#[derive(Debug)]
enum Expect {
    /// One JSON answer of this response type, about this stream (if one is named).
    Json(&'static str, Option<String>),
    /// A direct get: one HMSG if the stream exists and allows direct gets.
    Direct(String),
    /// A pull request for this stream (answered with messages, statuses, or later).
    Pull(String),
    /// Nothing at all (an unknown API subject).
    Nothing,
    /// Not an API subject: the no-responders status (nobody listens).
    NoResponders,
}

/// What a request on `subject` gets, from the engine's dispatch of `$JS.API.`.
fn expect(subject: &str) -> Expect {
    let Some(api) = subject.strip_prefix("$JS.API.") else {
        return Expect::NoResponders;
    };
    if let Some(rest) = api.strip_prefix("CONSUMER.MSG.NEXT.") {
        return Expect::Pull(rest.split('.').next().unwrap_or("").to_string());
    }
    if let Some(rest) = api.strip_prefix("DIRECT.GET.") {
        return Expect::Direct(rest.split('.').next().unwrap_or("").to_string());
    }
    let tokens: Vec<&str> = api.split('.').collect();
    let (kind, stream) = match tokens.as_slice() {
        ["INFO"] => ("account_info", None),
        ["STREAM", "CREATE", s] => ("stream_create", Some(s)),
        ["STREAM", "UPDATE", s] => ("stream_update", Some(s)),
        ["STREAM", "INFO", s] => ("stream_info", Some(s)),
        ["STREAM", "NAMES"] => ("stream_names", None),
        ["STREAM", "LIST"] => ("stream_list", None),
        ["STREAM", "DELETE", s] => ("stream_delete", Some(s)),
        ["STREAM", "PURGE", s] => ("stream_purge", Some(s)),
        ["STREAM", "MSG", "GET", s] => ("stream_msg_get", Some(s)),
        ["STREAM", "MSG", "DELETE", s] => ("stream_msg_delete", Some(s)),
        ["CONSUMER", "CREATE", s, ..] => ("consumer_create", Some(s)),
        ["CONSUMER", "DURABLE", "CREATE", s, _] => ("consumer_create", Some(s)),
        ["CONSUMER", "INFO", s, _] => ("consumer_info", Some(s)),
        ["CONSUMER", "NAMES", s] => ("consumer_names", Some(s)),
        ["CONSUMER", "LIST", s] => ("consumer_list", Some(s)),
        ["CONSUMER", "DELETE", s, _] => ("consumer_delete", Some(s)),
        _ => return Expect::Nothing,
    };
    Expect::Json(kind, stream.map(|s| s.to_string()))
}

/// What the harness knows of an account's streams.
#[derive(Default)]
struct Model {
    /// The streams created and not deleted, from the API's answers.
    streams: BTreeSet<String>,
    /// From the last STREAM.LIST: each stream's subjects and whether it
    /// allows direct gets.
    listed: BTreeMap<String, (Vec<String>, bool)>,
    /// Consumer names from create answers.
    consumers: Vec<String>,
    /// Recent `$JS.ACK.` and `$JS.FC.` subjects received.
    acks: VecDeque<String>,
}

impl Model {
    /// The stream that captures a publish on `subject`, from the last list.
    fn captures(&self, subject: &str) -> Option<&str> {
        self.listed
            .iter()
            .find(|(_, (subjects, _))| subjects.iter().any(|p| subject_matches(p, subject)))
            .map(|(name, _)| name.as_str())
    }
}

// ----- the fake runtime --------------------------------------------------------------

struct Client {
    id: ClientId,
    /// Received, not yet parsed (an incomplete frame).
    rx: Vec<u8>,
    /// Input the engine may not read yet.
    inbox: VecDeque<Vec<u8>>,
}

struct Rig {
    server: Server,
    now: Time,
    clients: Vec<Client>,
    models: [Model; 2],
    /// Messages on `_R.>` and `_P.>` received since the last request: client, message.
    got: Vec<(usize, Msg)>,
    /// Numbers the next inbox.
    next_inbox: u64,
}

impl Rig {
    fn new() -> Rig {
        let now = Time::from_millis(1_000);
        let opts = Options {
            jetstream: Some(JetStreamOptions {
                max_memory: Some(SERVER_MEMORY),
                max_store: Some(SERVER_STORAGE),
                ..JetStreamOptions::default()
            }),
            ..Options::default()
        };
        let mut server = Server::with_auth(opts, auth().clone(), 1);
        server.set_wall_clock(ORIGIN + now.as_nanos(), now);
        let mut rig = Rig {
            server,
            now,
            clients: Vec::new(),
            models: Default::default(),
            got: Vec::new(),
            next_inbox: 0,
        };
        for (c, connect) in CONNECT.iter().enumerate() {
            let peer = Peer {
                ip: "127.0.0.1".into(),
                port: 4000 + c as u16,
            };
            let id = rig.server.accept(peer, rig.now);
            rig.clients.push(Client {
                id,
                rx: Vec::new(),
                inbox: VecDeque::new(),
            });
            rig.pump();
            let mut hello = format!("CONNECT {connect}\r\n");
            for (sid, subject) in SUBS {
                hello.push_str(&format!("SUB {subject} {sid}\r\n"));
            }
            rig.send(c, hello.into_bytes());
        }
        rig
    }

    fn send(&mut self, c: usize, bytes: Vec<u8>) {
        self.clients[c].inbox.push_back(bytes);
        self.feed();
        self.settle();
    }

    /// Hands queued input to the engine wherever it may be read.
    fn feed(&mut self) {
        loop {
            let mut progressed = false;
            for c in 0..self.clients.len() {
                while !self.clients[c].inbox.is_empty() && self.server.can_read(self.clients[c].id)
                {
                    let bytes = self.clients[c].inbox.pop_front().expect("not empty");
                    trace(c, ">>", &bytes);
                    self.server
                        .handle_read(self.clients[c].id, &bytes, self.now);
                    self.pump();
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Runs the timers due at once (the rest of a turn's work).
    fn settle(&mut self) {
        self.run_timers(self.now + Duration::from_micros(1));
    }

    fn run_timers(&mut self, until: Time) {
        while let Some(t) = self.server.poll_timeout().filter(|&t| t <= until) {
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.pump();
            self.feed();
        }
    }

    fn advance(&mut self, by: Duration) {
        trace(0, "..", format!("{by:?}").as_bytes());
        let until = self.now + by;
        self.run_timers(until);
        self.now = until;
        self.feed();
        self.settle();
    }

    fn pump(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Flush(id) => self.drain(id),
                Event::Close(id, reason) => {
                    self.drain(id);
                    panic!("a client was closed: {reason:?}");
                }
                Event::Resume(_) | Event::Log(..) => {}
                Event::Job(job) => self.server.handle_job_done(job.run(), self.now),
                Event::StopAccepting | Event::Exit => panic!("lame duck mode was never asked for"),
            }
        }
        // The runtime makes the store writes before it writes to clients
        // (here: drops them, nothing restarts).
        while let Some((account, _)) = self.server.poll_store_write() {
            assert!(
                ACCOUNTS.contains(&account.as_str()),
                "a write for {account}"
            );
        }
    }

    fn drain(&mut self, id: ClientId) {
        let c = self
            .clients
            .iter()
            .position(|c| c.id == id)
            .expect("a known client");
        loop {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = self.server.outbound(id, &mut slices);
            if n == 0 {
                break;
            }
            let mut bytes = Vec::new();
            for slice in &slices[..n] {
                bytes.extend_from_slice(slice);
            }
            self.server.handle_written(id, bytes.len(), self.now);
            trace(c, "<<", &bytes);
            self.clients[c].rx.extend_from_slice(&bytes);
        }
        let rx = std::mem::take(&mut self.clients[c].rx);
        let mut at = 0;
        while let Some((frame, n)) = next_frame(&rx[at..]) {
            at += n;
            match frame {
                Frame::Msg(msg) => self.received(c, msg),
                Frame::Ping => self.clients[c].inbox.push_back(b"PONG\r\n".to_vec()),
                Frame::Other => {}
            }
        }
        self.clients[c].rx = rx[at..].to_vec();
    }

    fn received(&mut self, c: usize, msg: Msg) {
        if let Some(reply) = &msg.reply {
            if reply.starts_with("$JS.ACK.") || reply.starts_with("$JS.FC.") {
                if reply.starts_with("$JS.ACK.") {
                    check_ack_subject(reply);
                }
                let acks = &mut self.models[c].acks;
                if !acks.contains(reply) {
                    if acks.len() == 16 {
                        acks.pop_front();
                    }
                    acks.push_back(reply.clone());
                }
            }
        }
        match msg.sid.as_str() {
            SID_ANSWERS => self.got.push((c, msg)),
            SID_PULLS => {
                // Deliveries (to ack) and statuses, nothing else.
                let status = msg.status();
                assert!(
                    msg.reply.as_deref().is_some_and(|r| r.starts_with("$JS."))
                        || (msg.reply.is_none() && status.is_some()),
                    "on a pull inbox: {}",
                    msg.show()
                );
                self.got.push((c, msg));
            }
            SID_PUSH => {}
            SID_EVENTS => {
                let v: Value = serde_json::from_slice(&msg.payload)
                    .unwrap_or_else(|e| panic!("advisory not JSON ({e}): {}", msg.show()));
                assert!(
                    v["type"].is_string(),
                    "advisory without type: {}",
                    msg.show()
                );
            }
            sid => panic!("a message for sid {sid}"),
        }
    }

    fn publish(&mut self, c: usize, subject: &str, reply: Option<&str>, hdr: &[u8], body: &[u8]) {
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        let mut line = if hdr.is_empty() {
            format!("PUB {subject}{reply} {}\r\n", body.len()).into_bytes()
        } else {
            let total = hdr.len() + body.len();
            format!("HPUB {subject}{reply} {} {total}\r\n", hdr.len()).into_bytes()
        };
        line.extend_from_slice(hdr);
        line.extend_from_slice(body);
        line.extend_from_slice(b"\r\n");
        self.send(c, line);
    }

    /// Publishes on `subject` from client `c` with a fresh reply inbox
    /// (`_R.<n>`, or `_P.<n>` for pull requests) unless `reply` is false;
    /// returns what came back on that inbox that a consumer did not deliver.
    fn request(
        &mut self,
        c: usize,
        subject: &str,
        hdr: &[u8],
        body: &[u8],
        reply: bool,
    ) -> Vec<Msg> {
        let prefix = if subject.starts_with("$JS.API.CONSUMER.MSG.NEXT.") {
            "_P"
        } else {
            "_R"
        };
        let inbox = format!("{prefix}.{}", self.next_inbox);
        self.next_inbox += 1;
        self.got.clear();
        self.publish(c, subject, reply.then_some(inbox.as_str()), hdr, body);
        let mut answers = Vec::new();
        for (to, msg) in std::mem::take(&mut self.got) {
            if msg.subject != inbox || (prefix == "_R" && msg.is_delivery()) {
                continue;
            }
            assert_eq!(to, c, "an answer in the other account: {}", msg.show());
            answers.push(msg);
        }
        answers
    }

    /// An API request with the checks of what it must get; the JSON answer
    /// if it got one.
    fn api(
        &mut self,
        c: usize,
        subject: &str,
        hdr: &[u8],
        body: &[u8],
        reply: bool,
    ) -> Option<Value> {
        let answers = self.request(c, subject, hdr, body, reply);
        if !reply {
            // Nothing to read: what a create or delete did is asked.
            if let Expect::Json("stream_create" | "stream_delete", Some(s)) = expect(subject) {
                if self.exists(c, &s) {
                    self.models[c].streams.insert(s);
                } else {
                    self.models[c].streams.remove(&s);
                }
            }
            return None;
        }
        let shown: Vec<String> = answers.iter().map(Msg::show).collect();
        let model = &self.models[c];
        match expect(subject) {
            Expect::Nothing => {
                assert!(
                    answers.is_empty(),
                    "{subject}: unknown, but answered {shown:?}"
                );
                None
            }
            Expect::NoResponders => {
                assert!(
                    answers.len() == 1 && answers[0].status() == Some(503),
                    "{subject}: no responders expected, got {shown:?}"
                );
                None
            }
            Expect::Pull(stream) => {
                if !model.streams.contains(&stream) {
                    assert!(
                        answers.is_empty(),
                        "{subject}: no stream {stream:?}, yet {shown:?}"
                    );
                }
                None
            }
            Expect::Direct(stream) => {
                let allowed = model.listed.get(&stream).is_some_and(|(_, direct)| *direct);
                if !allowed {
                    assert!(
                        answers.is_empty(),
                        "{subject}: {stream:?} is missing or allows no direct get, yet {shown:?}"
                    );
                    return None;
                }
                assert_eq!(answers.len(), 1, "{subject}: one answer, got {shown:?}");
                let answer = &answers[0];
                assert!(answer.reply.is_none(), "{subject}: {shown:?}");
                let hdr = answer
                    .hdr
                    .as_deref()
                    .unwrap_or_else(|| panic!("{subject}: {shown:?}"));
                match answer.status() {
                    Some(404 | 408) => assert!(answer.payload.is_empty(), "{shown:?}"),
                    _ => {
                        // The stored block (arbitrary bytes if it was
                        // published so) comes first: only the stream's own
                        // headers after it are looked for.
                        let hdr = text(hdr);
                        assert!(
                            hdr.contains(&format!("Nats-Stream: {stream}\r\n"))
                                && hdr.contains("\r\nNats-Sequence: ")
                                && hdr.ends_with("\r\n\r\n"),
                            "{subject}: a direct get's headers {shown:?}"
                        );
                    }
                }
                None
            }
            Expect::Json(kind, stream) => {
                assert_eq!(answers.len(), 1, "{subject}: one answer, got {shown:?}");
                let answer = &answers[0];
                assert!(
                    answer.reply.is_none() && answer.hdr.is_none(),
                    "{subject}: {shown:?}"
                );
                let v: Value = serde_json::from_slice(&answer.payload)
                    .unwrap_or_else(|e| panic!("{subject}: not JSON ({e}): {shown:?}"));
                assert!(v.is_object(), "{subject}: {shown:?}");
                let expected = format!("io.nats.jetstream.api.v1.{kind}_response");
                assert_eq!(v["type"], Value::from(expected), "{subject}: {shown:?}");
                if let Some(error) = v.get("error") {
                    assert!(
                        error["code"].is_u64()
                            && error["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{subject}: a bad error {shown:?}"
                    );
                    return Some(v);
                }
                let model = &mut self.models[c];
                match (kind, stream) {
                    ("stream_create", Some(s)) => {
                        assert_eq!(v["config"]["name"], Value::from(s.as_str()), "{shown:?}");
                        model.streams.insert(s);
                    }
                    ("stream_delete", Some(s)) => {
                        assert!(
                            model.streams.remove(&s),
                            "{subject}: deleted {s:?}, not one of {:?}",
                            model.streams
                        );
                    }
                    (_, Some(s)) => assert!(
                        model.streams.contains(&s),
                        "{subject} succeeded for {s:?}, not one of the account's {:?}: {shown:?}",
                        model.streams
                    ),
                    (_, None) => {}
                }
                if kind == "consumer_create" {
                    if let Some(name) = v["name"].as_str() {
                        if !model.consumers.iter().any(|n| n == name) && model.consumers.len() < 8 {
                            model.consumers.push(name.to_string());
                        }
                    }
                }
                if kind == "stream_names" || kind == "stream_list" {
                    let names: Vec<&str> = v["streams"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|s| s.as_str().or(s["config"]["name"].as_str()).unwrap_or(""))
                                .collect()
                        })
                        .unwrap_or_default();
                    for name in names {
                        assert!(
                            model.streams.contains(name),
                            "{subject}: {name:?} listed, not one of the account's {:?}",
                            model.streams
                        );
                    }
                }
                Some(v)
            }
        }
    }

    /// A publish on a stream subject: the no-responders status if no stream
    /// takes it, else at most one PubAck from the stream that does.
    fn publish_to_stream(&mut self, c: usize, subject: &str, hdr: &[u8], body: &[u8], reply: bool) {
        let answers = self.request(c, subject, hdr, body, reply);
        if !reply {
            return;
        }
        let shown: Vec<String> = answers.iter().map(Msg::show).collect();
        let Some(stream) = self.models[c].captures(subject) else {
            assert!(
                answers.len() == 1 && answers[0].status() == Some(503),
                "{subject}: no stream, so no responders, got {shown:?}"
            );
            return;
        };
        assert!(answers.len() <= 1, "{subject}: {shown:?}");
        if let Some(answer) = answers.first() {
            let v: Value = serde_json::from_slice(&answer.payload)
                .unwrap_or_else(|e| panic!("{subject}: a PubAck not JSON ({e}): {shown:?}"));
            assert_eq!(
                v["stream"],
                Value::from(stream),
                "{subject}: a PubAck from another stream {shown:?}"
            );
        }
    }

    /// Whether account `c` has stream `s` (STREAM.INFO succeeds).
    fn exists(&mut self, c: usize, s: &str) -> bool {
        let answers = self.request(c, &format!("$JS.API.STREAM.INFO.{s}"), b"", b"", true);
        assert_eq!(answers.len(), 1, "STREAM.INFO.{s}");
        let v: Value = serde_json::from_slice(&answers[0].payload).expect("JSON");
        v.get("error").is_none()
    }

    /// After a step, in account `c`: the stream list is the model's, and
    /// account INFO's usage is the sum of the streams' bytes.
    fn check_account(&mut self, c: usize) {
        let account = ACCOUNTS[c];
        for _ in 0..4 {
            let before = self.usage(c);
            let streams = self.list(c);
            let after = self.usage(c);
            let names: BTreeSet<String> = streams.iter().map(|s| s.name.clone()).collect();
            assert_eq!(
                names, self.models[c].streams,
                "{account}: the streams listed are not those created"
            );
            self.models[c].listed = streams
                .iter()
                .map(|s| (s.name.clone(), (s.subjects.clone(), s.direct)))
                .collect();
            // Without publishes streams only shrink: the same usage before
            // and after means the list saw it too. Otherwise a consumer
            // took messages away while we asked: again.
            if before != after {
                continue;
            }
            let memory: u64 = streams.iter().filter(|s| s.memory).map(|s| s.bytes).sum();
            let storage: u64 = streams.iter().filter(|s| !s.memory).map(|s| s.bytes).sum();
            assert_eq!(
                (after.0, after.1),
                (memory, storage),
                "{account}: usage (memory, storage) is not the sum of the streams {streams:?}"
            );
            assert_eq!(after.2, streams.len() as u64, "{account}: streams counted");
            return;
        }
    }

    /// Account INFO's memory, storage and stream count.
    fn usage(&mut self, c: usize) -> (u64, u64, u64) {
        let info = self
            .api(c, "$JS.API.INFO", b"", b"", true)
            .expect("account info");
        let number = |key: &str| {
            info[key]
                .as_u64()
                .unwrap_or_else(|| panic!("no {key} in {info}"))
        };
        (number("memory"), number("storage"), number("streams"))
    }

    /// The account's streams from STREAM.LIST.
    fn list(&mut self, c: usize) -> Vec<Listed> {
        let v = self
            .api(c, "$JS.API.STREAM.LIST", b"", b"", true)
            .expect("a stream list");
        assert!(v.get("error").is_none(), "{v}");
        let streams = v["streams"].as_array().expect("streams");
        assert_eq!(v["total"].as_u64(), Some(streams.len() as u64), "{v}");
        streams
            .iter()
            .map(|s| Listed {
                name: s["config"]["name"].as_str().expect("a name").to_string(),
                memory: s["config"]["storage"] == "memory",
                direct: s["config"]["allow_direct"] == true,
                subjects: s["config"]["subjects"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                bytes: s["state"]["bytes"].as_u64().expect("state.bytes"),
            })
            .collect()
    }

    /// Takes a step; returns the account it acted in, or None for both (a
    /// clock advance).
    fn step(&mut self, b: &mut Input) -> Option<Option<usize>> {
        let op = b.next()?;
        let c = (op >> 4 & 1) as usize;
        let reply = op >> 5 != 7;
        let hdr = match op >> 5 & 3 {
            2 => headers(b)?,
            3 => b.raw(24)?,
            _ => Vec::new(),
        };
        match op & 15 {
            kind @ (0 | 1) => {
                let s = b.stream()?;
                let body = b.body(|b| stream_config(b, &s))?;
                let verb = if kind == 0 { "CREATE" } else { "UPDATE" };
                self.api(c, &format!("$JS.API.STREAM.{verb}.{s}"), &hdr, &body, reply);
            }
            2 => {
                let f = b.next()?;
                let s = b.stream()?;
                let (verb, body) = if f & 1 == 0 {
                    let body = b.body(|b| {
                        let g = b.next()?;
                        let filter = ["", ">", "s.a", "s.*"][(g & 3) as usize];
                        Some(format!(
                            r#"{{"subjects_filter":"{filter}","deleted_details":{},"offset":{}}}"#,
                            g & 4 != 0,
                            g >> 4
                        ))
                    })?;
                    ("INFO", body)
                } else {
                    ("DELETE", b.body(|_| Some("{}".into()))?)
                };
                self.api(c, &format!("$JS.API.STREAM.{verb}.{s}"), &hdr, &body, reply);
            }
            3 => {
                let s = b.stream()?;
                let body = b.body(|b| {
                    let g = b.next()?;
                    let filter = ["", "s.a", "s.*", "bad..subject"][(g & 3) as usize];
                    let seq = [0, 1, 3, 0][(g >> 2 & 3) as usize];
                    let keep = [0, 0, 1, 2][(g >> 4 & 3) as usize];
                    Some(format!(
                        r#"{{"filter":"{filter}","seq":{seq},"keep":{keep}}}"#
                    ))
                })?;
                self.api(c, &format!("$JS.API.STREAM.PURGE.{s}"), &hdr, &body, reply);
            }
            4 => {
                let f = b.next()?;
                let verb = if f & 1 == 0 { "NAMES" } else { "LIST" };
                let body = b.body(|b| {
                    let g = b.next()?;
                    let subject = ["", "s.a", ">", "t.*"][(g & 3) as usize];
                    Some(format!(r#"{{"offset":{},"subject":"{subject}"}}"#, g >> 2))
                })?;
                self.api(c, &format!("$JS.API.STREAM.{verb}"), &hdr, &body, reply);
            }
            5 => {
                let f = b.next()?;
                let s = b.stream()?;
                let seq = f >> 2 & 7;
                let (verb, body) = if f & 1 == 0 {
                    let body = b.body(|b| {
                        let g = b.next()?;
                        let subject = b.pick(&PUBLISH_SUBJECTS)?;
                        Some(match g & 3 {
                            0 => format!(r#"{{"seq":{seq}}}"#),
                            1 => format!(r#"{{"last_by_subj":"{subject}"}}"#),
                            2 => format!(r#"{{"seq":{seq},"next_by_subj":"{subject}"}}"#),
                            _ => format!(r#"{{"seq":{seq},"last_by_subj":"{subject}"}}"#),
                        })
                    })?;
                    ("GET", body)
                } else {
                    let body =
                        b.body(|_| Some(format!(r#"{{"seq":{seq},"no_erase":{}}}"#, f & 2 != 0)))?;
                    ("DELETE", body)
                };
                self.api(
                    c,
                    &format!("$JS.API.STREAM.MSG.{verb}.{s}"),
                    &hdr,
                    &body,
                    reply,
                );
            }
            6 => {
                let f = b.next()?;
                let s = b.stream()?;
                let subject = if f & 1 == 0 {
                    format!("$JS.API.DIRECT.GET.{s}")
                } else {
                    let last = match f >> 1 & 3 {
                        0 => "s.*".to_string(),
                        1 => b.name(&["x"])?,
                        _ => b.pick(&PUBLISH_SUBJECTS)?.to_string(),
                    };
                    format!("$JS.API.DIRECT.GET.{s}.{last}")
                };
                let body = b.body(|b| {
                    let g = b.next()?;
                    let subject = b.pick(&PUBLISH_SUBJECTS)?;
                    let seq = g >> 3;
                    Some(match g & 7 {
                        0 | 1 => format!(r#"{{"seq":{seq}}}"#),
                        2 | 3 => format!(r#"{{"last_by_subj":"{subject}"}}"#),
                        4 => format!(r#"{{"seq":{seq},"next_by_subj":"{subject}"}}"#),
                        5 => format!(r#"{{"seq":{seq},"last_by_subj":"{subject}"}}"#),
                        6 => "{}".into(),
                        _ => "[]".into(),
                    })
                })?;
                self.api(c, &subject, &hdr, &body, reply);
            }
            7 => {
                let form = b.next()?;
                let s = b.stream()?;
                let name = b.consumer(&self.models[c].consumers)?;
                let filter = b.pick(&FILTERS[1..])?;
                let mut named = Vec::new();
                let field = if form & 4 == 0 {
                    "name"
                } else {
                    "durable_name"
                };
                if form & 8 == 0 {
                    named.push(format!(r#""{field}":{}"#, js(&name)));
                }
                let (subject, filter) = match form & 3 {
                    0 => (format!("$JS.API.CONSUMER.CREATE.{s}"), None),
                    1 => (format!("$JS.API.CONSUMER.CREATE.{s}.{name}"), None),
                    2 => (
                        format!("$JS.API.CONSUMER.CREATE.{s}.{name}.{filter}"),
                        (form & 0x10 == 0).then_some(filter),
                    ),
                    _ => (format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{name}"), None),
                };
                let body = b.body(|b| consumer_config(b, &s, &named, filter))?;
                self.api(c, &subject, &hdr, &body, reply);
            }
            8 => {
                let f = b.next()?;
                let s = b.stream()?;
                let name = b.consumer(&self.models[c].consumers)?;
                let subject = match f & 3 {
                    0 => format!("$JS.API.CONSUMER.INFO.{s}.{name}"),
                    1 => format!("$JS.API.CONSUMER.NAMES.{s}"),
                    2 => format!("$JS.API.CONSUMER.LIST.{s}"),
                    _ => format!("$JS.API.CONSUMER.DELETE.{s}.{name}"),
                };
                let body = b.body(|b| Some(format!(r#"{{"offset":{}}}"#, b.next()? % 4)))?;
                self.api(c, &subject, &hdr, &body, reply);
            }
            9 => {
                let s = b.stream()?;
                let name = b.consumer(&self.models[c].consumers)?;
                let body = b.body(|b| pull_body(b))?;
                let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{name}");
                self.api(c, &subject, &hdr, &body, reply);
            }
            10 => {
                let f = b.next()?;
                let mut subject = UNKNOWN[f as usize % UNKNOWN.len()].to_string();
                if f & 0x10 != 0 {
                    subject.push('.');
                    subject.push_str(&b.stream()?);
                }
                let body = b.body(|_| Some("{}".into()))?;
                self.api(c, &subject, &hdr, &body, reply);
            }
            11 | 12 => {
                let subject = b.pick(&PUBLISH_SUBJECTS)?;
                let size = b.next()?;
                let body = if size >= 0xf0 {
                    b.raw(64)?
                } else {
                    vec![b'x'; size as usize % 48]
                };
                self.publish_to_stream(c, subject, &hdr, &body, reply);
            }
            13 => {
                let pick = b.next()? as usize;
                let f = b.next()?;
                let acks = &self.models[c].acks;
                let Some(subject) = acks.get(pick % acks.len().max(1)).cloned() else {
                    return Some(Some(c));
                };
                let body = match f % 8 {
                    0 | 1 => b"+ACK".to_vec(),
                    2 => b"-NAK".to_vec(),
                    3 => b"+WPI".to_vec(),
                    4 => b"+NXT".to_vec(),
                    5 => b"+TERM".to_vec(),
                    6 => Vec::new(),
                    _ => b.raw(16)?,
                };
                // Answers to acks (an ack sync's confirmation) are not checked.
                self.request(c, &subject, &hdr, &body, reply);
            }
            14 => {
                const STEPS: [u64; 8] = [1, 60, 150, 400, 1_100, 5_500, 30_000, 600_000];
                let by = b.pick(&STEPS)?;
                self.advance(Duration::from_millis(by));
                return Some(None);
            }
            _ => {
                let body = b.body(|_| Some("{}".into()))?;
                self.api(c, "$JS.API.INFO", &hdr, &body, reply);
            }
        }
        Some(Some(c))
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Listed {
    name: String,
    memory: bool,
    direct: bool,
    subjects: Vec<String>,
    bytes: u64,
}

fuzz_target!(|data: &[u8]| {
    let mut b = Input(data);
    let mut rig = Rig::new();
    for _ in 0..MAX_STEPS {
        let Some(acted) = rig.step(&mut b) else {
            break;
        };
        match acted {
            Some(c) => rig.check_account(c),
            None => (0..2).for_each(|c| rig.check_account(c)),
        }
    }
    for c in 0..2 {
        rig.check_account(c);
    }
});
