//! JetStream through the engine on the fake clock: API requests answered in
//! the requester's account, PubAcks, core subscribers still served, and
//! accounts that each have a stream of the same name.

mod support;

use support::{server_from_config, Sim};
use tenet_core::options::JetStreamOptions;
use tenet_core::{Options, Server};

const CLIENT: &str = r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true}"#;

fn login(user: &str) -> String {
    format!(r#"{{"verbose":false,"headers":true,"no_responders":true,"user":"{user}","pass":"p"}}"#)
}

fn js_server() -> Sim {
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    Sim::with_server(Server::new(opts, 1))
}

/// Sends a request and returns the answer's payload (the inbox sid is 99).
fn request(sim: &mut Sim, id: tenet_core::ClientId, subject: &str, body: &str) -> String {
    sim.send(id, b"SUB _INBOX.r 99\r\n");
    sim.take(id);
    let line = format!("PUB {subject} _INBOX.r {}\r\n{body}\r\n", body.len());
    sim.send(id, line.as_bytes());
    let got = sim.take_str(id);
    sim.send(id, b"UNSUB 99\r\n");
    let (head, payload) = got
        .split_once("\r\n")
        .unwrap_or_else(|| panic!("no answer: {got:?}"));
    assert!(head.starts_with("MSG _INBOX.r 99 "), "{got}");
    payload.trim_end_matches("\r\n").to_string()
}

#[test]
fn info_says_jetstream_only_when_it_is_on() {
    let mut sim = js_server();
    let id = sim.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        sim.now,
    );
    sim.pump();
    assert!(sim
        .take_str(id)
        .contains(r#""max_payload":1048576,"jetstream":true"#));
    let mut plain = Sim::new(Options::default());
    let id = plain.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        plain.now,
    );
    plain.pump();
    assert!(!plain.take_str(id).contains("jetstream"));
}

#[test]
fn create_a_stream_publish_with_acks_and_read_back() {
    let mut sim = js_server();
    let c = sim.connect(CLIENT);
    let created = request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.student",
        r#"{"name":"student","subjects":["student.>"]}"#,
    );
    assert!(created.contains(r#""did_create":true"#), "{created}");
    // A core subscriber of the subject still gets the message.
    let watcher = sim.connect(CLIENT);
    sim.send(watcher, b"SUB student.* 1\r\n");
    let ack = request(&mut sim, c, "student.Created", "hello");
    assert_eq!(ack, r#"{"stream":"student", "seq":1}"#);
    assert_eq!(
        sim.take_str(watcher),
        "MSG student.Created 1 _INBOX.r 5\r\nhello\r\n"
    );
    // Without a reply subject: stored silently.
    sim.send(c, b"PUB student.Updated 2\r\nhi\r\n");
    assert_eq!(sim.take_str(c), "");
    let got = request(
        &mut sim,
        c,
        "$JS.API.STREAM.MSG.GET.student",
        r#"{"seq":2}"#,
    );
    assert!(
        got.contains(r#""subject":"student.Updated","seq":2,"data":"aGk=""#),
        "{got}"
    );
    let info = request(&mut sim, c, "$JS.API.STREAM.INFO.student", "");
    assert!(info.contains(r#""messages":2"#), "{info}");
    // An API subject without a handler gets no answer, and no 503 either.
    sim.send(
        c,
        b"SUB _INBOX.x 7\r\nPUB $JS.API.STREAM.CREATE.a.b _INBOX.x 2\r\n{}\r\n",
    );
    assert_eq!(sim.take_str(c), "");
}

#[test]
fn each_account_has_its_own_streams() {
    let text = "accounts {\n\
        A: { jetstream: enabled, users: [{user: a, password: p}] }\n\
        B: { jetstream: enabled, users: [{user: b, password: p}] }\n\
        C: { users: [{user: c, password: p}] }\n\
    }\njetstream: enabled\n";
    let mut sim = Sim::with_server(server_from_config(text));
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    let c = sim.connect(&login("c"));
    let body = r#"{"name":"student","subjects":["student.>"]}"#;
    for id in [a, b] {
        let created = request(&mut sim, id, "$JS.API.STREAM.CREATE.student", body);
        assert!(created.contains(r#""did_create":true"#), "{created}");
    }
    assert_eq!(
        request(&mut sim, a, "student.x", "1"),
        r#"{"stream":"student", "seq":1}"#
    );
    assert_eq!(
        request(&mut sim, a, "student.x", "2"),
        r#"{"stream":"student", "seq":2}"#
    );
    // B's stream of the same name saw none of A's messages.
    assert_eq!(
        request(&mut sim, b, "student.x", "1"),
        r#"{"stream":"student", "seq":1}"#
    );
    // C has no JetStream: the error in the API's own response type.
    let info = request(&mut sim, c, "$JS.API.INFO", "");
    assert_eq!(
        info,
        r#"{"type":"io.nats.jetstream.api.v1.account_info_response","error":{"code":503,"err_code":10039,"description":"JetStream not enabled for account"}}"#
    );
    let names = request(&mut sim, c, "$JS.API.STREAM.NAMES", "");
    assert!(
        names.ends_with(r#""total":0,"offset":0,"limit":0,"streams":null}"#),
        "{names}"
    );
}

#[test]
fn api_requests_pass_the_publish_permissions() {
    let text = "jetstream: enabled\nauthorization { users = [\n\
        {user: admin, password: p}\n\
        {user: bob, password: p, permissions: { publish: [\"$JS.API.INFO\", \"_INBOX.>\"], subscribe: \"_INBOX.>\" }}\n\
    ] }\n";
    let mut sim = Sim::with_server(server_from_config(text));
    let bob = sim.connect(&login("bob"));
    sim.send(bob, b"SUB _INBOX.r 99\r\n");
    let body = r#"{"name":"S"}"#;
    let line = format!(
        "PUB $JS.API.STREAM.CREATE.S _INBOX.r {}\r\n{body}\r\n",
        body.len()
    );
    sim.send(bob, line.as_bytes());
    assert_eq!(
        sim.take_str(bob),
        "-ERR 'Permissions Violation for Publish to \"$JS.API.STREAM.CREATE.S\"'\r\n"
    );
    let admin = sim.connect(&login("admin"));
    let names = request(&mut sim, admin, "$JS.API.STREAM.NAMES", "");
    assert!(
        names.ends_with(r#""streams":null}"#),
        "no stream was made: {names}"
    );
    let info = request(&mut sim, bob, "$JS.API.INFO", "");
    assert!(info.contains(r#""streams":0"#), "{info}");
}

#[test]
fn messages_older_than_max_age_expire_on_the_engines_timer() {
    let mut sim = js_server();
    let c = sim.connect(CLIENT);
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.S",
        r#"{"name":"S","max_age":1000000000}"#,
    );
    request(&mut sim, c, "S", "old");
    sim.advance(std::time::Duration::from_millis(600));
    request(&mut sim, c, "S", "new");
    let info = request(&mut sim, c, "$JS.API.STREAM.INFO.S", "");
    assert!(info.contains(r#""messages":2"#), "{info}");
    sim.advance(std::time::Duration::from_millis(500));
    let info = request(&mut sim, c, "$JS.API.STREAM.INFO.S", "");
    assert!(
        info.contains(r#""messages":1,"#) && info.contains(r#""first_seq":2"#),
        "{info}"
    );
    sim.advance(std::time::Duration::from_millis(700));
    let info = request(&mut sim, c, "$JS.API.STREAM.INFO.S", "");
    assert!(
        info.contains(r#""messages":0,"#) && info.contains(r#""first_seq":3"#),
        "{info}"
    );
}

/// The store writes a server asks for, applied to an in-memory "disk":
/// metadata replaced, blocks appended and dropped, streams removed.
#[derive(Default)]
struct Disk {
    meta: std::collections::BTreeMap<(String, String), String>,
    /// By (account, stream, block).
    blocks: std::collections::BTreeMap<(String, String, u64), Vec<u8>>,
}

impl Disk {
    fn take_writes(&mut self, server: &mut Server) {
        use tenet_core::jetstream::api::StoreWrite;
        while let Some((account, write)) = server.poll_store_write() {
            match write {
                StoreWrite::Meta { stream, json } => {
                    self.meta.insert((account, stream), json);
                }
                StoreWrite::Append {
                    stream,
                    block,
                    bytes,
                } => self
                    .blocks
                    .entry((account, stream, block))
                    .or_default()
                    .extend(bytes),
                StoreWrite::DropBlock { stream, block } => {
                    self.blocks.remove(&(account, stream, block));
                }
                StoreWrite::Delete { stream } => {
                    self.meta.remove(&(account.clone(), stream.clone()));
                    self.blocks
                        .retain(|(a, s, _), _| (a, s) != (&account, &stream));
                }
                // Consumers' state is not part of these tests.
                StoreWrite::Consumer { .. }
                | StoreWrite::DeleteConsumer { .. }
                | StoreWrite::BlockSummaries { .. } => {}
            }
        }
    }
}

#[test]
fn file_streams_come_back_from_their_writes_and_a_torn_tail_is_cut() {
    let mut sim = js_server();
    let mut disk = Disk::default();
    let c = sim.connect(CLIENT);
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.F",
        r#"{"name":"F","max_msgs":3}"#,
    );
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.M",
        r#"{"name":"M","storage":"memory"}"#,
    );
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.GONE",
        r#"{"name":"GONE"}"#,
    );
    for n in 1..=5 {
        request(&mut sim, c, "F", &format!("m{n}"));
    }
    request(&mut sim, c, "M", "memory only");
    request(&mut sim, c, "$JS.API.STREAM.DELETE.GONE", "");
    disk.take_writes(&mut sim.server);
    assert_eq!(
        disk.meta.len(),
        1,
        "only the file stream is kept: {:?}",
        disk.meta.keys()
    );

    // A new server over the same "disk".
    let mut again = js_server();
    let blocks: Vec<(u64, Vec<u8>)> = disk
        .blocks
        .iter()
        .filter(|((_, s, _), _)| s == "F")
        .map(|((_, _, b), bytes)| (*b, bytes.clone()))
        .collect();
    for ((account, _), meta) in &disk.meta {
        let name = again
            .server
            .restore_stream(account, meta.as_bytes())
            .unwrap();
        for (block, bytes) in &blocks {
            let (valid, problem) =
                again
                    .server
                    .restore_block(account, &name, *block, bytes.clone());
            assert_eq!((valid, problem), (bytes.len(), None));
        }
        let line = again.server.finish_restore(account, &name).unwrap();
        assert_eq!(line, "Restored 3 messages for stream '$G > F'");
        // A write torn half-way is cut off; everything before it stays.
        let (last, bytes) = blocks.last().unwrap();
        let mut torn = bytes.clone();
        torn.extend_from_slice(&bytes[..7]);
        let mut third = js_server();
        let name = third
            .server
            .restore_stream(account, meta.as_bytes())
            .unwrap();
        for (block, bytes) in &blocks[..blocks.len() - 1] {
            third
                .server
                .restore_block(account, &name, *block, bytes.clone());
        }
        let (valid, problem) = third.server.restore_block(account, &name, *last, torn);
        let problem = problem.expect("the torn write is reported");
        assert!(
            problem.contains(&format!("block {last} ends in a torn record"))
                && problem.ends_with("after sequence 5: the 7 bytes after it were left out"),
            "{problem}"
        );
        assert_eq!(valid, bytes.len());
        let line = third.server.finish_restore(account, &name).unwrap();
        assert_eq!(line, "Restored 3 messages for stream '$G > F'");
    }
    let c = again.connect(CLIENT);
    let info = request(&mut again, c, "$JS.API.STREAM.INFO.F", "");
    assert!(info.contains(r#""messages":3,"bytes":"#), "{info}");
    assert!(
        info.contains(r#""first_seq":3,"#) && info.contains(r#""last_seq":5,"#),
        "{info}"
    );
    assert_eq!(
        request(&mut again, c, "F", "m6"),
        r#"{"stream":"F", "seq":6}"#
    );
    let names = request(&mut again, c, "$JS.API.STREAM.NAMES", "");
    assert!(names.contains(r#""streams":["F"]"#), "{names}");
}

#[test]
fn direct_gets_answer_with_the_message_itself() {
    let mut sim = js_server();
    let c = sim.connect(CLIENT);
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.DG",
        r#"{"name":"DG","subjects":["dg.*"],"allow_direct":true}"#,
    );
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.NO",
        r#"{"name":"NO","subjects":["no.*"]}"#,
    );
    request(&mut sim, c, "dg.a", "one");
    let hdr = "NATS/1.0\r\nX: 1\r\n\r\n";
    let line = format!("HPUB dg.b {} {}\r\n{hdr}two\r\n", hdr.len(), hdr.len() + 3);
    sim.send(c, line.as_bytes());
    sim.send(c, b"SUB _INBOX.d 5\r\n");
    sim.take(c);
    let ask = |sim: &mut Sim, subject: &str, body: &str| -> String {
        let line = format!("PUB {subject} _INBOX.d {}\r\n{body}\r\n", body.len());
        sim.send(c, line.as_bytes());
        sim.take_str(c)
    };
    let got = ask(&mut sim, "$JS.API.DIRECT.GET.DG", r#"{"seq":2}"#);
    assert!(got.starts_with("HMSG _INBOX.d 5 "), "{got}");
    assert!(
        got.contains("NATS/1.0\r\nX: 1\r\nNats-Stream: DG\r\nNats-Subject: dg.b\r\nNats-Sequence: 2\r\nNats-Time-Stamp: "),
        "{got}"
    );
    assert!(got.ends_with("\r\n\r\ntwo\r\n"), "{got}");
    let last = ask(&mut sim, "$JS.API.DIRECT.GET.DG.dg.a", "");
    assert!(
        last.contains("Nats-Sequence: 1\r\n") && last.ends_with("one\r\n"),
        "{last}"
    );
    let missing = ask(&mut sim, "$JS.API.DIRECT.GET.DG", r#"{"seq":9}"#);
    assert_eq!(
        missing,
        "HMSG _INBOX.d 5 34 34\r\nNATS/1.0 404 Message Not Found\r\n\r\n\r\n"
    );
    let empty = ask(&mut sim, "$JS.API.DIRECT.GET.DG", "");
    assert!(empty.contains("NATS/1.0 408 Empty Request"), "{empty}");
    let bad = ask(&mut sim, "$JS.API.DIRECT.GET.DG", "{");
    assert!(bad.contains("NATS/1.0 408 Malformed Request"), "{bad}");
    // Without allow_direct, or without the stream: no answer at all.
    assert_eq!(ask(&mut sim, "$JS.API.DIRECT.GET.NO", r#"{"seq":1}"#), "");
    assert_eq!(ask(&mut sim, "$JS.API.DIRECT.GET.NONE", r#"{"seq":1}"#), "");
}

#[test]
fn a_durable_pull_consumer_delivers_acks_and_redelivers() {
    let mut sim = js_server();
    let c = sim.connect(CLIENT);
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.S",
        r#"{"name":"S","subjects":["s.*"]}"#,
    );
    for n in 1..=3 {
        request(&mut sim, c, "s.a", &format!("m{n}"));
    }
    let created = request(
        &mut sim,
        c,
        "$JS.API.CONSUMER.CREATE.S.tom",
        r#"{"stream_name":"S","config":{"durable_name":"tom","ack_policy":"explicit","ack_wait":1000000000}}"#,
    );
    assert!(
        created.contains(r#""name":"tom""#) && created.contains(r#""num_pending":3"#),
        "{created}"
    );
    // A pull for two: the stored messages, on their own subject, with ack subjects.
    sim.send(c, b"SUB _INBOX.p 7\r\n");
    let pull = r#"{"batch":2}"#;
    sim.send(
        c,
        format!(
            "PUB $JS.API.CONSUMER.MSG.NEXT.S.tom _INBOX.p {}\r\n{pull}\r\n",
            pull.len()
        )
        .as_bytes(),
    );
    let got = sim.take_str(c);
    let lines: Vec<&str> = got.lines().collect();
    assert!(
        lines[0].starts_with("MSG s.a 7 $JS.ACK.S.tom.1.1.1."),
        "{got}"
    );
    assert_eq!(lines[1], "m1");
    assert!(
        lines[2].starts_with("MSG s.a 7 $JS.ACK.S.tom.1.2.2."),
        "{got}"
    );
    // Ack the first (with a reply: confirmed by an empty message).
    let ack_subject = lines[0].split(' ').nth(3).unwrap().to_string();
    sim.send(c, b"SUB _INBOX.s 8\r\n");
    sim.send(
        c,
        format!("PUB {ack_subject} _INBOX.s 0\r\n\r\n").as_bytes(),
    );
    assert_eq!(sim.take_str(c), "MSG _INBOX.s 8 0\r\n\r\n");
    let info = request(&mut sim, c, "$JS.API.CONSUMER.INFO.S.tom", "");
    assert!(
        info.contains(r#""num_ack_pending":1"#)
            && info.contains(r#""ack_floor":{"consumer_seq":1,"stream_seq":1,"last_active":"#),
        "{info}"
    );
    // The unacked second comes back after ack_wait, before the third.
    sim.advance(std::time::Duration::from_millis(1_100));
    sim.send(
        c,
        format!(
            "PUB $JS.API.CONSUMER.MSG.NEXT.S.tom _INBOX.p {}\r\n{pull}\r\n",
            pull.len()
        )
        .as_bytes(),
    );
    let again = sim.take_str(c);
    assert!(
        again.contains("$JS.ACK.S.tom.2.2.3."),
        "second delivery of 2: {again}"
    );
    assert!(again.contains("$JS.ACK.S.tom.1.3.4."), "then 3: {again}");
    // no_wait with nothing left: 404.
    let nw = r#"{"batch":1,"no_wait":true}"#;
    sim.send(
        c,
        format!(
            "PUB $JS.API.CONSUMER.MSG.NEXT.S.tom _INBOX.p {}\r\n{nw}\r\n",
            nw.len()
        )
        .as_bytes(),
    );
    assert!(sim.take_str(c).contains("NATS/1.0 404 No Messages"));
    // A waiting request is served by the next message.
    sim.send(
        c,
        format!(
            "PUB $JS.API.CONSUMER.MSG.NEXT.S.tom _INBOX.p {}\r\n{pull}\r\n",
            pull.len()
        )
        .as_bytes(),
    );
    assert_eq!(sim.take_str(c), "");
    sim.send(c, b"PUB s.b 2\r\nm4\r\n");
    assert!(sim.take_str(c).contains("MSG s.b 7 $JS.ACK.S.tom.1.4.5."));
    let names = request(&mut sim, c, "$JS.API.CONSUMER.NAMES.S", "");
    assert!(names.contains(r#""consumers":["tom"]"#), "{names}");
    assert!(request(&mut sim, c, "$JS.API.CONSUMER.DELETE.S.tom", "").contains(r#""success":true"#));
}

#[test]
fn interest_and_work_queue_streams_let_acknowledged_messages_go() {
    let mut sim = js_server();
    let c = sim.connect(CLIENT);
    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.I",
        r#"{"name":"I","subjects":["i.*"],"retention":"interest"}"#,
    );
    for name in ["one", "two"] {
        let body = format!(
            r#"{{"stream_name":"I","config":{{"durable_name":"{name}","ack_policy":"explicit"}}}}"#
        );
        request(
            &mut sim,
            c,
            &format!("$JS.API.CONSUMER.CREATE.I.{name}"),
            &body,
        );
    }
    request(&mut sim, c, "i.a", "x");
    sim.send(c, b"SUB _INBOX.p 7\r\n");
    let mut acks = Vec::new();
    for name in ["one", "two"] {
        sim.send(
            c,
            format!("PUB $JS.API.CONSUMER.MSG.NEXT.I.{name} _INBOX.p 1\r\n1\r\n").as_bytes(),
        );
        let got = sim.take_str(c);
        acks.push(got.split(' ').nth(3).unwrap().to_string());
    }
    let messages = |sim: &mut Sim| {
        let info = request(sim, c, "$JS.API.STREAM.INFO.I", "");
        info.split(r#""messages":"#).nth(1).unwrap()[..1].to_string()
    };
    sim.send(c, format!("PUB {} 0\r\n\r\n", acks[0]).as_bytes());
    assert_eq!(messages(&mut sim), "1", "one consumer still needs it");
    sim.send(c, format!("PUB {} 0\r\n\r\n", acks[1]).as_bytes());
    assert_eq!(messages(&mut sim), "0", "both acknowledged: gone");

    request(
        &mut sim,
        c,
        "$JS.API.STREAM.CREATE.W",
        r#"{"name":"W","subjects":["w.*"],"retention":"workqueue"}"#,
    );
    let body = r#"{"stream_name":"W","config":{"durable_name":"w","ack_policy":"explicit"}}"#;
    request(&mut sim, c, "$JS.API.CONSUMER.CREATE.W.w", body);
    let second = r#"{"stream_name":"W","config":{"durable_name":"w2","ack_policy":"explicit"}}"#;
    let refused = request(&mut sim, c, "$JS.API.CONSUMER.CREATE.W.w2", second);
    assert!(refused.contains(r#""err_code":10099"#), "{refused}");
    request(&mut sim, c, "w.a", "job");
    sim.send(c, b"PUB $JS.API.CONSUMER.MSG.NEXT.W.w _INBOX.p 1\r\n1\r\n");
    let got = sim.take_str(c);
    let ack = got.split(' ').nth(3).unwrap().to_string();
    sim.send(c, format!("PUB {ack} 0\r\n\r\n").as_bytes());
    let info = request(&mut sim, c, "$JS.API.STREAM.INFO.W", "");
    assert!(info.contains(r#""messages":0,"#), "{info}");
}
