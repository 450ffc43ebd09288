//! Hammers the engine's JetStream streams and consumers with fuzzer-chosen API requests, publishes, pulls, acks, clock jumps and restarts, and checks the output and what a restart brings back.
//!
//! One server (JetStream on, defaults) and two clients (headers and
//! no_responders on) that subscribe to the inboxes in `SUBS`; client 0 also
//! takes API answers on `_INBOX.api`. Stream `S` takes `s.>`.
//!
//! Input: steps until the input runs out (at most `MAX_STEPS`). A step is an
//! op byte (mod 16) and its operands:
//!
//! - 0 create stream `S`: the config bytes of [`stream_config`];
//! - 1, 2 publish on `s.a`, `s.b` or `s.c.x`: subject, reply, headers, size;
//! - 3 create a consumer: naming byte and the config bytes of [`consumer`];
//! - 4 create a consumer with raw bytes as its JSON body;
//! - 5, 6 pull (`CONSUMER.MSG.NEXT`), with a built body or raw bytes;
//! - 7, 8 ack a delivery seen: pick byte, body byte (`+ACK`, `-NAK`, `+WPI`,
//!   `+NXT`, `+TERM`... or raw bytes), reply byte;
//! - 9 answer a flow-control request seen;
//! - 10 consumer INFO, NAMES, LIST or DELETE;
//! - 11 stream UPDATE, PURGE, DELETE or MSG.DELETE;
//! - 12 UNSUB or SUB again one of `SUBS`;
//! - 13 advance the clock (1 ms to 65 s), running every timer due;
//! - 14 restart: a new server from the store writes of the old one;
//! - 15 stream INFO, account INFO, MSG.GET or DIRECT.GET.
//!
//! Checked throughout: no panic; everything a client receives is well-formed
//! protocol (INFO, PING, PONG, +OK, MSG, HMSG with right sizes, header blocks
//! starting `NATS/1.0`) and never `-ERR` (every op is well-formed); no
//! client is closed; every `$JS.ACK.` reply subject has 9 tokens, the last
//! five numbers (delivery count, stream and consumer sequences at least 1).
//! On a restart: every stream and consumer state written restores; a file
//! stream comes back with the same messages, bytes and sequences, and with
//! exactly its durable consumers, each with the same configuration,
//! delivered and acknowledged positions and pending counts.
#![no_main]

use std::collections::{BTreeMap, VecDeque};
use std::io::IoSlice;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tenet_core::jetstream::api::StoreWrite;
use tenet_core::jetstream::log_format::last_state;
use tenet_core::options::JetStreamOptions;
use tenet_core::{ClientId, Event, Options, Peer, Server, Time};

const MAX_STEPS: usize = 64;
const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n";
/// The wall clock at `Time::ZERO` (Unix nanoseconds, November 2023).
const ORIGIN: u64 = 1_700_000_000_000_000_000;
/// The inbox of API answers (client 0, sid 9).
const API_INBOX: &str = "_INBOX.api";
const API_SID: &[u8] = b"9";

/// Subscriptions the fuzzer toggles: client, sid, subject, queue group.
const SUBS: [(usize, &str, &str, Option<&str>); 6] = [
    (0, "1", "ib", None),
    (0, "2", "d", None),
    (1, "3", "d", Some("grp")),
    (1, "4", "$JS.EVENT.ADVISORY.>", None),
    (1, "5", "ib2", None),
    (0, "6", "d2", None),
];
/// Names of consumers the fuzzer creates (ephemerals' names are learnt).
const NAMES: [&str; 4] = ["c0", "c1", "c2", "c3"];
const FILTERS: [&str; 5] = ["", "s.a", "s.b", "s.>", "s.*"];
const INBOXES: [&str; 4] = ["ib", "ib2", "nobody", "d"];

/// With `JETSTREAM_FUZZ_TRACE` set, what each client sends and receives is
/// printed (to read a crash's story).
fn trace(c: usize, dir: &str, bytes: &[u8]) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("JETSTREAM_FUZZ_TRACE").is_some()) {
        eprintln!("{c} {dir} {}", String::from_utf8_lossy(bytes).trim_end());
    }
}

// ----- input decoding --------------------------------------------------------------

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
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
}

/// Nanoseconds of `ms` milliseconds.
fn ms(ms: i64) -> i64 {
    ms * 1_000_000
}

/// Stream `S`'s configuration from two bytes.
fn stream_config(b: &mut Bytes) -> Option<String> {
    let f = b.next()?;
    let g = b.next()?;
    let retention = ["limits", "interest", "workqueue"][f as usize % 3];
    let storage = if f & 4 != 0 { "memory" } else { "file" };
    let max_msgs = [-1, 1, 3, 10][(f >> 3 & 3) as usize];
    let max_age = [0, ms(200), ms(1_000), ms(5_000)][(f >> 5 & 3) as usize];
    let discard = if f & 0x80 != 0 { "new" } else { "old" };
    let per_subject = [-1, -1, 1, 2][(g & 3) as usize];
    let max_bytes = [-1, -1, 100, 1_000][(g >> 2 & 3) as usize];
    let window = [0, ms(100), ms(2_000), 0][(g >> 4 & 3) as usize];
    let rollup = g & 0x40 != 0;
    let deny = g & 0x80 != 0;
    Some(format!(
        r#"{{"name":"S","subjects":["s.>"],"retention":"{retention}","storage":"{storage}","max_msgs":{max_msgs},"max_age":{max_age},"discard":"{discard}","max_msgs_per_subject":{per_subject},"max_bytes":{max_bytes},"duplicate_window":{window},"allow_rollup_hdrs":{rollup},"deny_delete":{deny},"allow_direct":true}}"#
    ))
}

/// A consumer's configuration from four bytes (and a few more by policy).
fn consumer(b: &mut Bytes) -> Option<Vec<String>> {
    let (f, g, h, k) = (b.next()?, b.next()?, b.next()?, b.next()?);
    let mut fields = Vec::new();
    let ack = ["explicit", "all", "none", "explicit"][(f & 3) as usize];
    fields.push(format!(r#""ack_policy":"{ack}""#));
    let filter = FILTERS[(f >> 2) as usize % FILTERS.len()];
    match f >> 5 {
        0 | 1 => fields.push(r#""deliver_policy":"all""#.into()),
        2 => fields.push(r#""deliver_policy":"last""#.into()),
        3 => fields.push(r#""deliver_policy":"new""#.into()),
        4 | 5 => fields.push(format!(
            r#""deliver_policy":"by_start_sequence","opt_start_seq":{}"#,
            1 + b.next()? % 8
        )),
        6 => fields.push(format!(
            r#""deliver_policy":"by_start_time","opt_start_time":"2023-11-14T22:13:{:02}Z""#,
            20 + b.next()? % 40
        )),
        _ => {
            fields.push(r#""deliver_policy":"last_per_subject""#.into());
            if filter.is_empty() {
                fields.push(r#""filter_subject":"s.>""#.into());
            }
        }
    }
    if !filter.is_empty() {
        fields.push(format!(r#""filter_subject":"{filter}""#));
    }
    if let Some(w) = [None, Some(100), Some(1_000), Some(30_000)][(g & 3) as usize] {
        fields.push(format!(r#""ack_wait":{}"#, ms(w)));
    }
    if let Some(n) = [None, Some(1), Some(3), Some(-1)][(g >> 2 & 3) as usize] {
        fields.push(format!(r#""max_deliver":{n}"#));
    }
    match g >> 4 & 3 {
        1 => fields.push(format!(r#""backoff":[{}]"#, ms(100))),
        2 => fields.push(format!(r#""backoff":[{},{}]"#, ms(100), ms(500))),
        _ => {}
    }
    if let Some(n) = [None, Some(1), Some(2), Some(10)][(g >> 6) as usize] {
        fields.push(format!(r#""max_ack_pending":{n}"#));
    }
    if let Some(t) = [None, Some(200), Some(2_000), None][(k & 3) as usize] {
        fields.push(format!(r#""inactive_threshold":{}"#, ms(t)));
    }
    if h & 1 != 0 {
        // Push.
        let deliver = ["d", "d2", "ib", "d"][(h >> 1 & 3) as usize];
        fields.push(format!(r#""deliver_subject":"{deliver}""#));
        if let Some(group) = [None, Some("grp"), Some("other"), None][(h >> 3 & 3) as usize] {
            fields.push(format!(r#""deliver_group":"{group}""#));
        }
        if let Some(beat) = [None, Some(100), Some(1_000), None][(h >> 5 & 3) as usize] {
            fields.push(format!(r#""idle_heartbeat":{}"#, ms(beat)));
            if h & 0x80 != 0 {
                fields.push(r#""flow_control":true"#.into());
            }
        }
        if k & 4 != 0 {
            fields.push(r#""headers_only":true"#.into());
        }
        if let Some(bps) = [None, Some(800), Some(80_000), None][(k >> 3 & 3) as usize] {
            fields.push(format!(r#""rate_limit_bps":{bps}"#));
        }
        if k & 0x20 != 0 {
            fields.push(r#""replay_policy":"original""#.into());
        }
    } else {
        if let Some(n) = [None, Some(1), Some(2), None][(h >> 1 & 3) as usize] {
            fields.push(format!(r#""max_waiting":{n}"#));
        }
        if let Some(n) = [None, Some(1), Some(3), None][(h >> 3 & 3) as usize] {
            fields.push(format!(r#""max_batch":{n}"#));
        }
        if let Some(n) = [None, Some(20), Some(200), None][(h >> 5 & 3) as usize] {
            fields.push(format!(r#""max_bytes":{n}"#));
        }
        if k & 4 != 0 {
            fields.push(format!(r#""max_expires":{}"#, ms(500)));
        }
    }
    Some(fields)
}

/// A pull request's body from two bytes.
fn pull_body(b: &mut Bytes) -> Option<String> {
    let (f, g) = (b.next()?, b.next()?);
    let batch = [1, 2, 5, 0][(f & 3) as usize];
    let expires = [0, ms(100), ms(1_000), ms(10_000)][(f >> 2 & 3) as usize];
    let max_bytes = [0, 20, 200, 0][(f >> 4 & 3) as usize];
    let beat = [0, ms(50), ms(100), ms(400)][(f >> 6) as usize];
    Some(match g % 4 {
        0 => String::new(),
        1 => batch.to_string(),
        _ => format!(
            r#"{{"batch":{batch},"expires":{expires},"no_wait":{},"max_bytes":{max_bytes},"idle_heartbeat":{beat}}}"#,
            g & 4 != 0
        ),
    })
}

// ----- the store: what a host keeps of the writes ---------------------------------

#[derive(Default)]
struct Disk {
    meta: BTreeMap<String, String>,
    /// By (stream, block).
    blocks: BTreeMap<(String, u64), Vec<u8>>,
    /// By (stream, consumer): the generation of its state file and the file.
    consumers: BTreeMap<(String, String), (u64, Vec<u8>)>,
}

impl Disk {
    fn take_writes(&mut self, server: &mut Server) {
        while let Some((account, write)) = server.poll_store_write() {
            assert_eq!(account, "$G");
            match write {
                StoreWrite::Meta { stream, json } => {
                    self.meta.insert(stream, json);
                }
                StoreWrite::Append {
                    stream,
                    block,
                    bytes,
                } => self
                    .blocks
                    .entry((stream, block))
                    .or_default()
                    .extend(bytes),
                StoreWrite::DropBlock { stream, block } => {
                    assert!(
                        self.blocks.remove(&(stream.clone(), block)).is_some(),
                        "block {block} of {stream} dropped before it was written"
                    );
                }
                // As the host: the stream's directory goes, consumers and all.
                StoreWrite::Delete { stream } => {
                    self.meta.remove(&stream);
                    self.blocks.retain(|(s, _), _| *s != stream);
                    self.consumers.retain(|(s, _), _| *s != stream);
                }
                // As the host: a new generation's file replaces the others.
                StoreWrite::Consumer {
                    stream,
                    consumer,
                    generation,
                    bytes,
                } => {
                    let file = self.consumers.entry((stream, consumer)).or_default();
                    if file.0 != generation {
                        *file = (generation, Vec::new());
                    }
                    file.1.extend(bytes);
                }
                // Without a block reader, a restart reads every block.
                StoreWrite::BlockSummaries { .. } => {}
                StoreWrite::DeleteConsumer { stream, consumer } => {
                    self.consumers.remove(&(stream, consumer));
                }
            }
        }
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
    disk: Disk,
    clients: Vec<Client>,
    subscribed: [bool; SUBS.len()],
    /// Recent `$JS.ACK.` and `$JS.FC.` reply subjects received.
    acks: VecDeque<String>,
    fcs: VecDeque<String>,
    /// Consumer names from create answers.
    names: Vec<String>,
    /// The last answer on the API inbox.
    answer: Option<String>,
}

fn new_server(now: Time) -> Server {
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    let mut server = Server::new(opts, 1);
    server.set_wall_clock(ORIGIN + now.as_nanos(), now);
    server
}

impl Rig {
    fn new() -> Rig {
        let now = Time::from_millis(1_000);
        let mut rig = Rig {
            server: new_server(now),
            now,
            disk: Disk::default(),
            clients: Vec::new(),
            subscribed: [true; SUBS.len()],
            acks: VecDeque::new(),
            fcs: VecDeque::new(),
            names: Vec::new(),
            answer: None,
        };
        rig.connect();
        rig.subscribe();
        rig
    }

    /// Connects both clients (client 0 takes API answers).
    fn connect(&mut self) {
        self.clients.clear();
        for c in 0..2 {
            let peer = Peer {
                ip: "127.0.0.1".into(),
                port: 4000 + c as u16,
            };
            let id = self.server.accept(peer, self.now);
            self.clients.push(Client {
                id,
                rx: Vec::new(),
                inbox: VecDeque::new(),
            });
            self.pump();
            let mut hello = CONNECT.to_vec();
            if c == 0 {
                hello.extend_from_slice(format!("SUB {API_INBOX} 9\r\n").as_bytes());
            }
            self.send(c, hello);
        }
    }

    /// Makes the subscriptions of `SUBS` that are on.
    fn subscribe(&mut self) {
        for (i, (c, sid, subject, queue)) in SUBS.iter().enumerate() {
            if self.subscribed[i] {
                self.send(*c, sub_line(sid, subject, *queue).into_bytes());
            }
        }
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
        // The runtime makes the store writes before it writes to clients.
        self.disk.take_writes(&mut self.server);
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
                Frame::Msg {
                    sid,
                    reply,
                    payload,
                } => self.received(c, &sid, reply, payload),
                Frame::Ping => self.clients[c].inbox.push_back(b"PONG\r\n".to_vec()),
                Frame::Other => {}
            }
        }
        self.clients[c].rx = rx[at..].to_vec();
    }

    fn received(&mut self, c: usize, sid: &[u8], reply: Option<Vec<u8>>, payload: Vec<u8>) {
        if let Some(reply) = reply {
            let reply = String::from_utf8(reply).expect("a UTF-8 reply subject");
            if reply.starts_with("$JS.ACK.") {
                check_ack_subject(&reply);
                remember(&mut self.acks, reply);
            } else if reply.starts_with("$JS.FC.") {
                remember(&mut self.fcs, reply);
            }
        }
        if c == 0 && sid == API_SID {
            let answer = String::from_utf8(payload).expect("API answers are UTF-8");
            if answer.contains("consumer_create_response") && !answer.contains(r#""error""#) {
                if let Some(name) = string_after(&answer, r#""name":""#) {
                    if !self.names.contains(&name) && self.names.len() < 8 {
                        self.names.push(name);
                    }
                }
            }
            self.answer = Some(answer);
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

    /// An API request from client 0; its answer, if there is one.
    fn api(&mut self, subject: &str, body: &[u8]) -> Option<String> {
        self.answer = None;
        self.publish(0, subject, Some(API_INBOX), b"", body);
        self.answer.take()
    }

    /// A consumer name to use: one of the fixed names or one learnt.
    fn name(&mut self, b: &mut Bytes) -> Option<String> {
        let i = b.next()? as usize % (NAMES.len() + self.names.len());
        Some(match NAMES.get(i) {
            Some(n) => n.to_string(),
            None => self.names[i - NAMES.len()].clone(),
        })
    }

    fn step(&mut self, b: &mut Bytes) -> Option<()> {
        match b.next()? % 16 {
            0 => {
                let config = stream_config(b)?;
                self.api("$JS.API.STREAM.CREATE.S", config.as_bytes());
            }
            1 | 2 => {
                let subject = b.pick(&["s.a", "s.b", "s.c.x"])?;
                let reply = b.pick(&[None, Some("ib"), Some("ib2"), None])?;
                let f = b.next()?;
                let hdr = match f & 3 {
                    0 | 1 => String::new(),
                    2 => format!("NATS/1.0\r\nNats-Msg-Id: m{}\r\n\r\n", f >> 2 & 3),
                    _ => format!(
                        "NATS/1.0\r\n{}\r\n\r\n",
                        ["K: v", "Nats-Rollup: sub", "Nats-Expected-Last-Sequence: 2"]
                            [(f >> 2) as usize % 3]
                    ),
                };
                let body = vec![b'x'; (f >> 4) as usize * 3];
                self.publish((f >> 6 & 1) as usize, subject, reply, hdr.as_bytes(), &body);
            }
            3 => {
                let naming = b.next()?;
                let name = NAMES[naming as usize % NAMES.len()];
                let mut fields = consumer(b)?;
                let subject = match naming >> 2 & 3 {
                    0 => "$JS.API.CONSUMER.CREATE.S".to_string(),
                    1 => {
                        fields.push(format!(r#""name":"{name}""#));
                        format!("$JS.API.CONSUMER.CREATE.S.{name}")
                    }
                    2 => {
                        fields.push(format!(r#""durable_name":"{name}""#));
                        format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}")
                    }
                    _ => {
                        fields.push(format!(r#""durable_name":"{name}""#));
                        format!("$JS.API.CONSUMER.CREATE.S.{name}")
                    }
                };
                let body = format!(r#"{{"stream_name":"S","config":{{{}}}}}"#, fields.join(","));
                self.api(&subject, body.as_bytes());
            }
            4 => {
                let name = self.name(b)?;
                let subject = match b.next()? % 4 {
                    0 => "$JS.API.CONSUMER.CREATE.S".to_string(),
                    1 => format!("$JS.API.CONSUMER.CREATE.S.{name}"),
                    2 => format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}"),
                    _ => format!("$JS.API.CONSUMER.CREATE.S.{name}.s.a"),
                };
                let body = b.raw(96)?;
                self.api(&subject, &body);
            }
            5 | 6 => {
                let name = self.name(b)?;
                let f = b.next()?;
                let reply = INBOXES[f as usize % INBOXES.len()];
                let body = if f & 4 == 0 {
                    pull_body(b)?.into_bytes()
                } else {
                    b.raw(48)?
                };
                let subject = format!("$JS.API.CONSUMER.MSG.NEXT.S.{name}");
                let reply = (f & 8 == 0).then_some(reply);
                self.publish((f >> 4 & 1) as usize, &subject, reply, b"", &body);
            }
            7 | 8 => {
                let pick = b.next()? as usize;
                let f = b.next()?;
                let Some(subject) = self.acks.get(pick % self.acks.len().max(1)).cloned() else {
                    return Some(());
                };
                const BODIES: [&str; 9] = [
                    "+ACK",
                    "-NAK",
                    r#"-NAK {"delay":100000000}"#,
                    "+WPI",
                    "+NXT",
                    r#"+NXT {"batch":2}"#,
                    "+TERM",
                    "",
                    "+ACK",
                ];
                let body = match BODIES.get(f as usize % 10) {
                    Some(body) => body.as_bytes().to_vec(),
                    None => b.raw(32)?,
                };
                let reply = (f & 0x10 != 0).then_some(if f & 0x20 != 0 { "ib" } else { "ib2" });
                self.publish((f >> 6 & 1) as usize, &subject, reply, b"", &body);
            }
            9 => {
                let pick = b.next()? as usize;
                if let Some(subject) = self.fcs.get(pick % self.fcs.len().max(1)).cloned() {
                    self.publish(pick >> 7 & 1, &subject, None, b"", b"");
                }
            }
            10 => {
                let f = b.next()?;
                let name = self.name(b)?;
                let (subject, body) = match f % 5 {
                    0 | 1 => (format!("$JS.API.CONSUMER.INFO.S.{name}"), ""),
                    2 => ("$JS.API.CONSUMER.NAMES.S".to_string(), ""),
                    3 => ("$JS.API.CONSUMER.LIST.S".to_string(), r#"{"offset":0}"#),
                    _ => (format!("$JS.API.CONSUMER.DELETE.S.{name}"), ""),
                };
                self.api(&subject, body.as_bytes());
            }
            11 => {
                let f = b.next()?;
                let seq = 1 + (f >> 3) % 16;
                let (subject, body) = match f % 8 {
                    0 | 1 => ("UPDATE", stream_config(b)?),
                    2 => ("PURGE", String::new()),
                    3 => ("PURGE", r#"{"filter":"s.a"}"#.to_string()),
                    4 => ("PURGE", format!(r#"{{"seq":{seq}}}"#)),
                    5 => ("PURGE", format!(r#"{{"keep":{}}}"#, seq % 4)),
                    6 => ("DELETE", String::new()),
                    _ => (
                        "MSG.DELETE",
                        format!(r#"{{"seq":{seq},"no_erase":{}}}"#, f & 4 != 0),
                    ),
                };
                self.api(&format!("$JS.API.STREAM.{subject}.S"), body.as_bytes());
            }
            12 => {
                let i = b.next()? as usize % SUBS.len();
                let (c, sid, subject, queue) = SUBS[i];
                let line = if self.subscribed[i] {
                    format!("UNSUB {sid}\r\n")
                } else {
                    sub_line(sid, subject, queue)
                };
                self.subscribed[i] = !self.subscribed[i];
                self.send(c, line.into_bytes());
            }
            13 => {
                const STEPS: [u64; 8] = [1, 10, 100, 250, 1_000, 5_000, 30_000, 65_000];
                let by = b.pick(&STEPS)?;
                self.advance(Duration::from_millis(by));
            }
            14 => self.restart(),
            _ => {
                let f = b.next()?;
                let seq = 1 + (f >> 2) % 8;
                match f % 4 {
                    0 => self.api("$JS.API.STREAM.INFO.S", b""),
                    1 => self.api("$JS.API.INFO", b""),
                    2 => self.api(
                        "$JS.API.STREAM.MSG.GET.S",
                        format!(r#"{{"seq":{seq}}}"#).as_bytes(),
                    ),
                    _ => {
                        let body = format!(r#"{{"last_by_subj":"s.a","seq":{seq}}}"#);
                        self.api("$JS.API.DIRECT.GET.S", body.as_bytes())
                    }
                };
            }
        }
        Some(())
    }

    /// What a restart must keep of stream `S` if it is a file stream: its
    /// messages and sequences, and each durable consumer's configuration
    /// and positions. None for no such stream.
    fn durable_state(&mut self) -> Option<Vec<String>> {
        if !self.disk.meta.contains_key("S") {
            return None;
        }
        let info = self.api("$JS.API.STREAM.INFO.S", b"")?;
        if info.contains(r#""error""#) || !info.contains(r#""storage":"file""#) {
            return None;
        }
        let state = &info[info.find(r#""state":"#).expect("a state")..];
        let stream = ["messages", "bytes", "first_seq", "last_seq"]
            .iter()
            .map(|k| format!("{k} {:?}", number_after(state, &format!("\"{k}\":"))))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = vec![stream];
        let names = self.api("$JS.API.CONSUMER.NAMES.S", b"")?;
        for name in string_list(&names, r#""consumers":["#) {
            let Some(info) = self.api(&format!("$JS.API.CONSUMER.INFO.S.{name}"), b"") else {
                continue;
            };
            let config = between(&info, r#""config":"#, r#","delivered":"#);
            if !config.contains(r#""durable_name":"#) {
                continue;
            }
            let delivered = &info[info.find(r#""delivered":"#).expect("delivered")..];
            let floor = &info[info.find(r#""ack_floor":"#).expect("ack_floor")..];
            out.push(format!(
                "{name}: {config}; delivered {:?}/{:?}, ack floor {:?}/{:?}, redelivered {:?}, pending {:?}, ack pending {:?}",
                number_after(delivered, r#""consumer_seq":"#),
                number_after(delivered, r#""stream_seq":"#),
                number_after(floor, r#""consumer_seq":"#),
                number_after(floor, r#""stream_seq":"#),
                number_after(&info, r#""num_redelivered":"#),
                number_after(&info, r#""num_pending":"#),
                number_after(&info, r#""num_ack_pending":"#),
            ));
        }
        Some(out)
    }

    /// A new server brought back from the store writes; the clients connect again.
    fn restart(&mut self) {
        trace(0, "..", b"restart");
        self.settle();
        // Only a state that stays put while it is asked for is compared (an
        // API request lets consumers deliver after the answer).
        let before = self.durable_state();
        let again = self.durable_state();
        let expected = if before == again { before } else { None };
        self.disk.take_writes(&mut self.server);
        self.server = new_server(self.now);
        for (stream, meta) in &self.disk.meta {
            let restored = self.server.restore_stream("$G", meta.as_bytes());
            let name = restored.unwrap_or_else(|e| panic!("stream {stream}: {e}\n{meta}"));
            let blocks = self.disk.blocks.iter().filter(|((s, _), _)| s == stream);
            for ((_, block), bytes) in blocks {
                let (valid, problem) =
                    self.server
                        .restore_block("$G", &name, *block, bytes.clone());
                assert_eq!(valid, bytes.len(), "block {block} of {stream}: {problem:?}");
            }
            self.server.finish_restore("$G", &name).expect("restored");
        }
        for ((stream, consumer), (generation, file)) in &self.disk.consumers {
            let state = last_state(file).expect("a state file ends intact");
            let restored = self
                .server
                .restore_consumer("$G", stream, state, *generation, self.now);
            restored.unwrap_or_else(|e| {
                panic!(
                    "consumer {stream} > {consumer}: {e}\n{}",
                    String::from_utf8_lossy(state)
                )
            });
        }
        // Checked before anyone subscribes: nothing is delivered yet.
        self.connect();
        if let Some(expected) = expected {
            let after = self.durable_state().expect("the file stream is back");
            assert_eq!(expected, after, "a restart changed what was stored");
        }
        self.subscribe();
    }
}

fn sub_line(sid: &str, subject: &str, queue: Option<&str>) -> String {
    match queue {
        Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
        None => format!("SUB {subject} {sid}\r\n"),
    }
}

fn remember(list: &mut VecDeque<String>, subject: String) {
    if !list.contains(&subject) {
        if list.len() == 16 {
            list.pop_front();
        }
        list.push_back(subject);
    }
}

/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`.
fn check_ack_subject(subject: &str) {
    let tokens: Vec<&str> = subject.split('.').collect();
    assert_eq!(tokens.len(), 9, "ack subject {subject}");
    assert!(
        tokens[2..4].iter().all(|t| !t.is_empty()),
        "ack subject {subject}"
    );
    let numbers: Vec<u64> = tokens[4..]
        .iter()
        .map(|t| {
            assert!(
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()),
                "ack subject {subject}"
            );
            t.parse()
                .unwrap_or_else(|_| panic!("ack subject {subject}"))
        })
        .collect();
    assert!(
        numbers[..3].iter().all(|&n| n >= 1),
        "ack subject {subject}: delivery count and sequences start at 1"
    );
}

/// The digits right after the first `key` in `json`.
fn number_after(json: &str, key: &str) -> Option<u64> {
    let rest = &json[json.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string right after the first `key` (which ends with its opening quote).
fn string_after(json: &str, key: &str) -> Option<String> {
    let rest = &json[json.find(key)? + key.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The text between `start` and `end` (empty if either is missing).
fn between<'a>(json: &'a str, start: &str, end: &str) -> &'a str {
    let Some(at) = json.find(start) else {
        return "";
    };
    let rest = &json[at + start.len()..];
    rest.find(end).map_or("", |e| &rest[..e])
}

/// The strings of the array after `key` (which ends with its `[`).
fn string_list(json: &str, key: &str) -> Vec<String> {
    let Some(at) = json.find(key) else {
        return Vec::new();
    };
    let rest = &json[at + key.len()..];
    let items = &rest[..rest.find(']').unwrap_or(0)];
    items
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches('"').to_string())
        .collect()
}

// ----- server output ---------------------------------------------------------------

enum Frame {
    Msg {
        sid: Vec<u8>,
        reply: Option<Vec<u8>>,
        payload: Vec<u8>,
    },
    Ping,
    Other,
}

/// The next complete frame of server output and its length, `None` if the
/// bytes end inside one. Panics on anything that is not valid output.
fn next_frame(rx: &[u8]) -> Option<(Frame, usize)> {
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Some(lf) = rx.iter().position(|&b| b == b'\n') else {
        assert!(rx.len() < 8192, "no line end in {} bytes", rx.len());
        return None;
    };
    assert!(lf > 0 && rx[lf - 1] == b'\r', "a line not ended by CRLF");
    let line = &rx[..lf - 1];
    let rest = &rx[lf + 1..];
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let frame = match words[0] {
        b"MSG" | b"HMSG" => {
            let hmsg = words[0] == b"HMSG";
            let args = &words[1..];
            let sizes = if hmsg { 2 } else { 1 };
            assert!(
                (args.len() == 2 + sizes || args.len() == 3 + sizes)
                    && args.iter().all(|a| !a.is_empty()),
                "bad line {:?}",
                show(line)
            );
            let number = |t: &[u8]| -> usize {
                assert!(
                    t.iter().all(u8::is_ascii_digit),
                    "bad size in {:?}",
                    show(line)
                );
                show(t).parse().expect("a size")
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
            let payload = &rest[..total];
            if hmsg {
                let hdr = number(args[args.len() - 2]);
                assert!(
                    hdr <= total,
                    "header size past the total in {:?}",
                    show(line)
                );
                let block = &payload[..hdr];
                assert!(
                    block.starts_with(b"NATS/1.0") && block.ends_with(b"\r\n\r\n"),
                    "bad header block {:?}",
                    show(block)
                );
            }
            let reply = (args.len() == 3 + sizes).then(|| args[2].to_vec());
            let frame = Frame::Msg {
                sid: args[1].to_vec(),
                reply,
                payload: payload[if hmsg {
                    number(args[args.len() - 2])
                } else {
                    0
                }..]
                    .to_vec(),
            };
            return Some((frame, lf + 1 + total + 2));
        }
        b"INFO" => {
            assert!(line.starts_with(b"INFO {"), "bad INFO {:?}", show(line));
            Frame::Other
        }
        b"PING" if words.len() == 1 => Frame::Ping,
        b"PONG" | b"+OK" if words.len() == 1 => Frame::Other,
        _ => panic!("unexpected server output {:?}", show(line)),
    };
    Some((frame, lf + 1))
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut rig = Rig::new();
    for _ in 0..MAX_STEPS {
        if rig.step(&mut b).is_none() {
            break;
        }
    }
    // Whatever happened, a restart brings it back.
    rig.restart();
});
