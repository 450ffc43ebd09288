//! Consumers through the engine on the fake clock: push flow control and
//! idle heartbeats, pull heartbeats and expiry, rate limit and original
//! replay, inactivity deletion with its advisory, and a property over
//! publishes, acks, naks and restarts.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use support::Sim;
use tenet_core::jetstream::api::StoreWrite;
use tenet_core::jetstream::log_format::last_state;
use tenet_core::options::JetStreamOptions;
use tenet_core::{ClientId, Options, Server};

const CLIENT: &str = r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true}"#;

fn js_server() -> Sim {
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    Sim::with_server(Server::new(opts, 1))
}

/// One MSG or HMSG a client received.
#[derive(Clone, Debug)]
struct Msg {
    subject: String,
    sid: String,
    reply: Option<String>,
    hdr: String,
    payload: Vec<u8>,
}

/// Splits what a client received into its messages (PONGs and the like skipped).
fn messages(bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 2..];
        let tokens: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
        let (hdr_len, total, reply) = match tokens.first() {
            Some(&"MSG") => {
                let total: usize = tokens.last().unwrap().parse().unwrap();
                (0, total, (tokens.len() == 5).then(|| tokens[3].to_string()))
            }
            Some(&"HMSG") => {
                let n = tokens.len();
                let hdr: usize = tokens[n - 2].parse().unwrap();
                let total: usize = tokens[n - 1].parse().unwrap();
                (hdr, total, (n == 6).then(|| tokens[3].to_string()))
            }
            _ => continue,
        };
        let hdr = String::from_utf8_lossy(&rest[..hdr_len]).into_owned();
        let payload = rest[hdr_len..total].to_vec();
        rest = &rest[total + 2..];
        out.push(Msg {
            subject: tokens[1].to_string(),
            sid: tokens[2].to_string(),
            reply,
            hdr,
            payload,
        });
    }
    out
}

fn publish(sim: &mut Sim, id: ClientId, subject: &str, reply: Option<&str>, body: &[u8]) {
    let mut line = match reply {
        Some(reply) => format!("PUB {subject} {reply} {}\r\n", body.len()).into_bytes(),
        None => format!("PUB {subject} {}\r\n", body.len()).into_bytes(),
    };
    line.extend_from_slice(body);
    line.extend_from_slice(b"\r\n");
    sim.send(id, &line);
}

/// An API request whose answer (on `_INBOX.api`, sid 99) is returned.
fn api(sim: &mut Sim, id: ClientId, subject: &str, body: &str) -> String {
    sim.send(id, b"SUB _INBOX.api 99\r\n");
    publish(sim, id, subject, Some("_INBOX.api"), body.as_bytes());
    let got = sim.take(id);
    sim.send(id, b"UNSUB 99\r\n");
    let answer = messages(&got)
        .into_iter()
        .find(|m| m.sid == "99")
        .unwrap_or_else(|| panic!("no answer to {subject}: {}", String::from_utf8_lossy(&got)));
    String::from_utf8(answer.payload).unwrap()
}

fn stream(sim: &mut Sim, id: ClientId, config: &str) {
    let answer = api(sim, id, "$JS.API.STREAM.CREATE.S", config);
    assert!(answer.contains(r#""did_create":true"#), "{answer}");
}

fn consumer(sim: &mut Sim, id: ClientId, name: &str, config: &str) -> String {
    let body = format!(r#"{{"stream_name":"S","config":{config}}}"#);
    let answer = api(sim, id, &format!("$JS.API.CONSUMER.CREATE.S.{name}"), &body);
    assert!(!answer.contains(r#""error""#), "{answer}");
    answer
}

#[test]
fn flow_control_stalls_a_push_consumer_until_the_client_answers() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    let big = vec![b'x'; 100_000];
    for _ in 0..40 {
        publish(&mut sim, a, "s", None, &big);
    }
    sim.send(c, b"SUB d 1\r\n");
    consumer(
        &mut sim,
        a,
        "fc",
        r#"{"durable_name":"fc","deliver_subject":"d","ack_policy":"none","flow_control":true,"idle_heartbeat":1000000000}"#,
    );
    sim.advance(Duration::from_millis(1));
    let got = messages(&sim.take(c));
    // nats-server: a request after 11 messages (past half of 2 MiB), a
    // stall at 21 until it is answered.
    let request = got
        .iter()
        .position(|m| m.hdr.starts_with("NATS/1.0 100 FlowControl Request"))
        .expect("a flow control request");
    assert_eq!(request, 11);
    let fc_subject = got[request].reply.clone().expect("with a reply subject");
    assert!(fc_subject.starts_with("$JS.FC.S.fc."), "{fc_subject}");
    assert_eq!(got.len(), 22, "21 messages and the request");
    // While stalled the heartbeat says on what.
    sim.advance(Duration::from_millis(1_000));
    let beats = messages(&sim.take(c));
    assert_eq!(beats.len(), 1);
    assert_eq!(
        beats[0].hdr,
        format!(
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 21\r\nNats-Last-Stream: 21\r\nNats-Consumer-Stalled: {fc_subject}\r\n\r\n"
        )
    );
    // A stale answer does nothing; the latest lets the rest go.
    publish(&mut sim, c, "$JS.FC.S.fc.zzzz", None, b"");
    sim.advance(Duration::from_millis(1));
    assert!(messages(&sim.take(c)).is_empty());
    publish(&mut sim, c, &fc_subject, None, b"");
    sim.advance(Duration::from_millis(1));
    let rest = messages(&sim.take(c));
    let delivered = rest.iter().filter(|m| m.subject == "s").count();
    assert_eq!(delivered, 19, "the other 19 messages");
}

#[test]
fn a_push_consumer_beats_while_idle_and_only_while_bound() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "hb",
        r#"{"durable_name":"hb","deliver_subject":"d","idle_heartbeat":500000000}"#,
    );
    sim.advance(Duration::from_millis(2_000));
    assert!(
        messages(&sim.take(c)).is_empty(),
        "no subscriber, no heartbeat"
    );
    sim.send(c, b"SUB d 1\r\n");
    sim.advance(Duration::from_millis(499));
    assert!(messages(&sim.take(c)).is_empty());
    sim.advance(Duration::from_millis(2));
    let beat = messages(&sim.take(c));
    assert_eq!(beat.len(), 1);
    assert_eq!(
        beat[0].hdr,
        "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n"
    );
    // A delivery resets the idle time.
    sim.advance(Duration::from_millis(300));
    publish(&mut sim, a, "s", None, b"m");
    assert_eq!(messages(&sim.take(c)).len(), 1);
    sim.advance(Duration::from_millis(400));
    assert!(
        messages(&sim.take(c)).is_empty(),
        "700 ms after the last beat, 400 after the message"
    );
    sim.advance(Duration::from_millis(101));
    let beat = messages(&sim.take(c));
    assert!(beat[0]
        .hdr
        .contains("Nats-Last-Consumer: 1\r\nNats-Last-Stream: 1\r\n"));
}

#[test]
fn a_waiting_pull_request_beats_then_times_out() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(&mut sim, a, "p", r#"{"durable_name":"p"}"#);
    sim.send(c, b"SUB ib 1\r\n");
    let pull = r#"{"batch":3,"expires":1200000000,"idle_heartbeat":400000000}"#;
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        pull.as_bytes(),
    );
    let mut statuses = Vec::new();
    for _ in 0..12 {
        sim.advance(Duration::from_millis(100));
        statuses.extend(messages(&sim.take(c)).into_iter().map(|m| m.hdr));
    }
    assert_eq!(
        statuses,
        [
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n",
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n",
            "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n",
        ]
    );
    // A request whose inbox lost its subscriber is dropped without a word.
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        pull.as_bytes(),
    );
    sim.send(c, b"UNSUB 1\r\nSUB ib 2\r\n");
    sim.advance(Duration::from_millis(100));
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(info.contains(r#""num_waiting":1"#), "{info}");
    sim.send(c, b"UNSUB 2\r\n");
    sim.advance(Duration::from_millis(100));
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(info.contains(r#""num_waiting":0"#), "{info}");
}

#[test]
fn a_rate_limit_spaces_deliveries_past_its_burst() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    let chunk = vec![b'x'; 500_000];
    for _ in 0..4 {
        publish(&mut sim, a, "s", None, &chunk);
    }
    sim.send(c, b"SUB d 1\r\n");
    // 8 Mbit/s: 1 MB per second once the 1 MiB burst is spent.
    consumer(
        &mut sim,
        a,
        "r",
        r#"{"durable_name":"r","deliver_subject":"d","ack_policy":"none","rate_limit_bps":8000000}"#,
    );
    let count = |sim: &mut Sim| messages(&sim.take(c)).len();
    assert_eq!(count(&mut sim), 2, "the burst");
    sim.advance(Duration::from_millis(400));
    assert_eq!(count(&mut sim), 0);
    sim.advance(Duration::from_millis(200));
    assert_eq!(count(&mut sim), 1, "about half a second per 500 kB");
    sim.advance(Duration::from_millis(600));
    assert_eq!(count(&mut sim), 1);
}

#[test]
fn original_replay_keeps_the_gaps_between_stored_messages() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    publish(&mut sim, a, "s", None, b"1");
    sim.advance(Duration::from_millis(2_000));
    publish(&mut sim, a, "s", None, b"2");
    sim.send(c, b"SUB d 1\r\n");
    consumer(
        &mut sim,
        a,
        "o",
        r#"{"durable_name":"o","deliver_subject":"d","replay_policy":"original"}"#,
    );
    assert_eq!(messages(&sim.take(c)).len(), 1, "the first at once");
    sim.advance(Duration::from_millis(1_990));
    assert!(messages(&sim.take(c)).is_empty());
    sim.advance(Duration::from_millis(20));
    assert_eq!(messages(&sim.take(c)).len(), 1, "the second 2 s later");
    // Published after the consumer was made: delivered at once.
    publish(&mut sim, a, "s", None, b"3");
    assert_eq!(messages(&sim.take(c)).len(), 1);
}

#[test]
fn an_unused_ephemeral_goes_after_its_inactive_threshold_with_an_advisory() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    sim.send(c, b"SUB $JS.EVENT.ADVISORY.CONSUMER.> 5\r\nSUB d 1\r\n");
    let created = consumer(&mut sim, a, "e", r#"{"deliver_subject":"d"}"#);
    assert!(
        created.contains(r#""inactive_threshold":5000000000"#),
        "{created}"
    );
    let advisory = messages(&sim.take(c));
    assert_eq!(
        advisory[0].subject,
        "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.e"
    );
    // Bound for 10 s: it stays.
    sim.advance(Duration::from_secs(10));
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.e", "");
    assert!(info.contains(r#""push_bound":true"#), "{info}");
    // Unbound: gone 5 s later.
    sim.send(c, b"UNSUB 1\r\n");
    sim.advance(Duration::from_millis(4_900));
    assert!(messages(&sim.take(c)).is_empty());
    sim.advance(Duration::from_millis(200));
    let deleted = messages(&sim.take(c));
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0].subject,
        "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.e"
    );
    let payload = String::from_utf8(deleted[0].payload.clone()).unwrap();
    assert!(payload.contains(r#""action":"delete""#), "{payload}");
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.e", "");
    assert!(info.contains(r#""err_code":10014"#), "{info}");
    // A durable without a threshold never goes.
    consumer(&mut sim, a, "p", r#"{"durable_name":"p"}"#);
    sim.advance(Duration::from_secs(60));
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(!info.contains("error"), "{info}");
}

/// The store writes of a server, kept as a host would: stream metadata,
/// blocks and consumer states.
#[derive(Default)]
struct Disk {
    meta: BTreeMap<String, String>,
    blocks: BTreeMap<(String, u64), Vec<u8>>,
    /// By (stream, consumer): the generation of its state file and the file.
    consumers: BTreeMap<(String, String), (u64, Vec<u8>)>,
}

impl Disk {
    fn take_writes(&mut self, server: &mut Server) {
        while let Some((_, write)) = server.poll_store_write() {
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
                    self.blocks.remove(&(stream, block));
                }
                StoreWrite::Delete { stream } => {
                    self.meta.remove(&stream);
                    self.blocks.retain(|(s, _), _| *s != stream);
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

    /// A new server brought back from this disk.
    fn restart(&self) -> Sim {
        let mut sim = js_server();
        for (stream, meta) in &self.meta {
            let name = sim.server.restore_stream("$G", meta.as_bytes()).unwrap();
            for ((_, block), bytes) in self.blocks.iter().filter(|((s, _), _)| s == stream) {
                let (_, problem) = sim.server.restore_block("$G", &name, *block, bytes.clone());
                assert_eq!(problem, None);
            }
            sim.server.finish_restore("$G", &name).unwrap();
        }
        for ((stream, _), (generation, file)) in &self.consumers {
            let state = last_state(file).expect("an intact state");
            sim.server
                .restore_consumer("$G", stream, state, *generation, sim.now)
                .unwrap();
        }
        sim
    }
}

#[derive(Clone, Debug)]
enum Op {
    Publish,
    Pull(u8),
    Ack(u8),
    Nak(u8),
    Wait(u16),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Publish),
        3 => (1..4u8).prop_map(Op::Pull),
        3 => any::<u8>().prop_map(Op::Ack),
        1 => any::<u8>().prop_map(Op::Nak),
        1 => (1..1500u16).prop_map(Op::Wait),
        1 => Just(Op::Restart),
    ]
}

/// A client of a file stream with a durable pull consumer (ack wait 1 s).
struct Tenant {
    sim: Sim,
    disk: Disk,
    client: ClientId,
}

impl Tenant {
    fn connect(mut sim: Sim, disk: Disk) -> Tenant {
        let client = sim.connect(CLIENT);
        sim.send(client, b"SUB ib 1\r\nSUB acked 2\r\n");
        Tenant { sim, disk, client }
    }

    fn settle(&mut self) -> Vec<Msg> {
        self.disk.take_writes(&mut self.sim.server);
        messages(&self.sim.take(self.client))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the publishes, pulls, acks, naks, waits and restarts:
    /// nothing acknowledged (and confirmed) is delivered again, and every
    /// stored message is delivered until it is acknowledged.
    #[test]
    fn nothing_acknowledged_comes_again_and_everything_else_does(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = js_server();
        let c = sim.connect(CLIENT);
        stream(&mut sim, c, r#"{"name":"S","subjects":["s"]}"#);
        consumer(&mut sim, c, "d", r#"{"durable_name":"d","ack_policy":"explicit","ack_wait":1000000000}"#);
        sim.disconnect(c);
        let mut t = Tenant::connect(sim, Disk::default());
        t.settle();
        let mut published = 0u64;
        let mut acked = BTreeSet::new();
        // Delivered and not acknowledged: stream seq → ack subject.
        let mut outstanding: BTreeMap<u64, String> = BTreeMap::new();
        let handle = |got: Vec<Msg>, acked: &BTreeSet<u64>, outstanding: &mut BTreeMap<u64, String>| -> Result<(), TestCaseError> {
            for m in got.into_iter().filter(|m| m.sid == "1" && m.subject == "s") {
                let reply = m.reply.expect("an ack subject");
                let seq: u64 = reply.split('.').nth(5).unwrap().parse().unwrap();
                prop_assert!(!acked.contains(&seq), "acknowledged {} came again", seq);
                outstanding.insert(seq, reply);
            }
            Ok(())
        };
        for op in ops {
            match op {
                Op::Publish => {
                    publish(&mut t.sim, t.client, "s", None, b"m");
                    published += 1;
                }
                Op::Pull(batch) => {
                    let body = format!(r#"{{"batch":{batch},"no_wait":true}}"#);
                    publish(&mut t.sim, t.client, "$JS.API.CONSUMER.MSG.NEXT.S.d", Some("ib"), body.as_bytes());
                }
                Op::Ack(i) | Op::Nak(i) if !outstanding.is_empty() => {
                    let seq = *outstanding.keys().nth(i as usize % outstanding.len()).unwrap();
                    let reply = outstanding.remove(&seq).unwrap();
                    let body: &[u8] = if matches!(op, Op::Ack(_)) { b"+ACK" } else { b"-NAK" };
                    publish(&mut t.sim, t.client, &reply, Some("acked"), body);
                    let confirmed = t.settle().iter().any(|m| m.sid == "2");
                    prop_assert!(confirmed, "ack sync is confirmed");
                    if matches!(op, Op::Ack(_)) {
                        acked.insert(seq);
                    }
                }
                Op::Ack(_) | Op::Nak(_) => {}
                Op::Wait(ms) => t.sim.advance(Duration::from_millis(ms.into())),
                Op::Restart => {
                    let got = t.settle();
                    handle(got, &acked, &mut outstanding)?;
                    let disk = std::mem::take(&mut t.disk);
                    let sim = disk.restart();
                    t = Tenant::connect(sim, disk);
                    // Whatever was delivered and not acknowledged comes again.
                    outstanding.clear();
                }
            }
            let got = t.settle();
            handle(got, &acked, &mut outstanding)?;
        }
        // Drain: pull with time passing until everything is acknowledged.
        for _ in 0..(published * 2 + 4) {
            t.sim.advance(Duration::from_millis(1_100));
            outstanding.clear();
            publish(&mut t.sim, t.client, "$JS.API.CONSUMER.MSG.NEXT.S.d", Some("ib"), br#"{"batch":100,"no_wait":true}"#);
            let got = t.settle();
            handle(got, &acked, &mut outstanding)?;
            for (seq, reply) in std::mem::take(&mut outstanding) {
                publish(&mut t.sim, t.client, &reply, None, b"+ACK");
                acked.insert(seq);
            }
            t.settle();
        }
        prop_assert_eq!(acked.len() as u64, published, "every message was delivered and acknowledged");
    }
}

#[test]
fn consumers_and_their_waiting_requests_outlive_a_reload() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(&mut sim, a, "p", r#"{"durable_name":"p"}"#);
    sim.send(c, b"SUB ib 1\r\n");
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        b"1",
    );
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    sim.server
        .reload(opts, tenet_core::Auth::none(), sim.now)
        .expect("reloadable");
    publish(&mut sim, a, "s", None, b"after the reload");
    let got = messages(&sim.take(c));
    assert_eq!(got.len(), 1, "the waiting request is served");
    assert_eq!(got[0].payload, b"after the reload");
}

#[test]
fn backoff_spaces_redeliveries_until_max_deliver_gives_up_with_an_advisory() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    publish(&mut sim, a, "s", None, b"job");
    consumer(
        &mut sim,
        a,
        "b",
        r#"{"durable_name":"b","ack_policy":"explicit","backoff":[100000000,300000000],"max_deliver":3}"#,
    );
    sim.send(
        c,
        b"SUB ib 1\r\nSUB $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.> 2\r\n",
    );
    let pull = r#"{"batch":10,"expires":5000000000}"#;
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.b",
        Some("ib"),
        pull.as_bytes(),
    );
    let mut deliveries = Vec::new();
    let mut advisories = Vec::new();
    for step in 0..=100 {
        if step > 0 {
            sim.advance(Duration::from_millis(10));
        }
        for m in messages(&sim.take(c)) {
            match m.sid.as_str() {
                "1" if m.subject == "s" => deliveries.push((step * 10, m.reply.unwrap())),
                "2" => advisories.push(String::from_utf8(m.payload).unwrap()),
                _ => {}
            }
        }
    }
    let when: Vec<u64> = deliveries.iter().map(|(t, _)| *t).collect();
    // The first at once, the second after 100 ms, the third 300 ms after
    // that (the last backoff step), then no more.
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(
        when[1] - when[0] >= 100 && when[1] - when[0] <= 110,
        "{when:?}"
    );
    assert!(
        when[2] - when[1] >= 300 && when[2] - when[1] <= 310,
        "{when:?}"
    );
    assert!(
        deliveries[2].1.starts_with("$JS.ACK.S.b.3.1.3."),
        "{deliveries:?}"
    );
    assert_eq!(advisories.len(), 1, "{advisories:?}");
    assert!(
        advisories[0].contains(r#""stream_seq":1,"deliveries":3"#),
        "{}",
        advisories[0]
    );
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.b", "");
    assert!(info.contains(r#""num_ack_pending":0"#), "{info}");
}

#[test]
fn an_ack_needs_the_publish_permission_like_any_publish() {
    let text = "jetstream: enabled\nauthorization { users = [\n\
        {user: admin, password: p}\n\
        {user: reader, password: p, permissions: { publish: \"$JS.API.CONSUMER.MSG.NEXT.>\", subscribe: \"ib\" }}\n\
    ] }\n";
    let mut sim = Sim::with_server(support::server_from_config(text));
    let a = sim.connect(&support::login("admin"));
    let r = sim.connect(&support::login("reader"));
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "p",
        r#"{"durable_name":"p","ack_policy":"explicit"}"#,
    );
    publish(&mut sim, a, "s", None, b"m");
    sim.send(r, b"SUB ib 1\r\n");
    publish(
        &mut sim,
        r,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        b"1",
    );
    let got = messages(&sim.take(r));
    let ack = got[0].reply.clone().expect("an ack subject");
    publish(&mut sim, r, &ack, None, b"+ACK");
    assert_eq!(
        sim.take_str(r),
        format!("-ERR 'Permissions Violation for Publish to \"{ack}\"'\r\n")
    );
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(
        info.contains(r#""num_ack_pending":1"#),
        "not acknowledged: {info}"
    );
}

#[test]
fn an_update_without_durable_name_keeps_a_durable_consumer_durable() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "c0",
        r#"{"durable_name":"c0","deliver_subject":"d"}"#,
    );
    let updated = consumer(&mut sim, a, "c0", r#"{"name":"c0","deliver_subject":"d"}"#);
    assert!(updated.contains(r#""durable_name":"c0""#), "{updated}");
    assert!(!updated.contains("inactive_threshold"), "{updated}");
    // Unused for a minute, it is still there.
    sim.advance(Duration::from_secs(60));
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.c0", "");
    assert!(!info.contains("error"), "{info}");
}

#[test]
fn a_redelivery_given_up_for_a_message_gone_is_written_down() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    let mut disk = Disk::default();
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "p",
        r#"{"durable_name":"p","ack_policy":"explicit","ack_wait":100000000}"#,
    );
    publish(&mut sim, a, "s", None, b"m");
    sim.send(c, b"SUB ib 1\r\n");
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        b"1",
    );
    assert_eq!(messages(&sim.take(c)).len(), 1);
    api(&mut sim, a, "$JS.API.STREAM.MSG.DELETE.S", r#"{"seq":1}"#);
    // The ack wait ends; the redelivery finds the message gone.
    sim.advance(Duration::from_millis(200));
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        br#"{"no_wait":true}"#,
    );
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(info.contains(r#""num_ack_pending":0"#), "{info}");
    disk.take_writes(&mut sim.server);
    let mut again = disk.restart();
    let a = again.connect(CLIENT);
    let info = api(&mut again, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(
        info.contains(r#""num_ack_pending":0"#),
        "after a restart: {info}"
    );
}

#[test]
fn a_batch_of_acks_writes_the_consumer_state_once() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "p",
        r#"{"durable_name":"p","ack_policy":"explicit"}"#,
    );
    for _ in 0..100 {
        publish(&mut sim, a, "s", None, b"m");
    }
    sim.send(c, b"SUB ib 1\r\n");
    publish(
        &mut sim,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        b"100",
    );
    let delivered = messages(&sim.take(c));
    assert_eq!(delivered.len(), 100);
    while sim.server.poll_store_write().is_some() {}
    // 100 acks arrive in one read: one state write, however many acks.
    let mut acks = Vec::new();
    for m in &delivered {
        acks.extend_from_slice(format!("PUB {} 0\r\n\r\n", m.reply.as_ref().unwrap()).as_bytes());
    }
    sim.send(c, &acks);
    let mut consumer_writes = 0;
    while let Some((_, write)) = sim.server.poll_store_write() {
        if matches!(write, StoreWrite::Consumer { .. }) {
            consumer_writes += 1;
        }
    }
    assert_eq!(consumer_writes, 1);
    let info = api(&mut sim, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(info.contains(r#""num_ack_pending":0"#), "{info}");
}

#[test]
fn a_consumer_state_file_rolls_over_to_a_new_generation_and_a_restart_reads_the_newest() {
    let mut sim = js_server();
    let a = sim.connect(CLIENT);
    let c = sim.connect(CLIENT);
    let mut disk = Disk::default();
    stream(&mut sim, a, r#"{"name":"S","subjects":["s"]}"#);
    consumer(
        &mut sim,
        a,
        "p",
        r#"{"durable_name":"p","ack_policy":"explicit"}"#,
    );
    sim.send(c, b"SUB ib 1\r\n");
    let mut generations = std::collections::BTreeSet::new();
    // One message, pulled and acked, at a time: a state written for each.
    for n in 0..1500 {
        publish(&mut sim, a, "s", None, format!("m{n}").as_bytes());
        publish(
            &mut sim,
            c,
            "$JS.API.CONSUMER.MSG.NEXT.S.p",
            Some("ib"),
            b"1",
        );
        let got = messages(&sim.take(c));
        let reply = got[0].reply.clone().expect("an ack subject");
        sim.send(c, format!("PUB {reply} 0\r\n\r\n").as_bytes());
        disk.take_writes(&mut sim.server);
        generations.insert(disk.consumers[&("S".to_string(), "p".to_string())].0);
    }
    assert!(
        generations.len() > 1,
        "one file took every state: {generations:?}"
    );
    let (generation, file) = disk.consumers[&("S".to_string(), "p".to_string())].clone();
    assert!(file.len() <= 256 * 1024, "a generation stays bounded");
    let mut again = disk.restart();
    let a = again.connect(CLIENT);
    let info = api(&mut again, a, "$JS.API.CONSUMER.INFO.S.p", "");
    assert!(
        info.contains(r#""ack_floor":{"consumer_seq":1500,"stream_seq":1500"#),
        "{info}"
    );
    // The next state starts the generation after the one read.
    publish(&mut again, a, "s", None, b"after");
    disk.take_writes(&mut again.server);
    let c = again.connect(CLIENT);
    again.send(c, b"SUB ib 1\r\n");
    publish(
        &mut again,
        c,
        "$JS.API.CONSUMER.MSG.NEXT.S.p",
        Some("ib"),
        b"1",
    );
    disk.take_writes(&mut again.server);
    assert_eq!(
        disk.consumers[&("S".to_string(), "p".to_string())].0,
        generation + 1
    );
}
