//! The engine driven through its public API with a fake clock and no sockets:
//! timers, stale connections, slow consumers, back-pressure, delivery rules.

mod support;

use std::time::Duration;

use support::Sim;
use tenet_core::{ClientId, CloseReason, Options, Peer, Server};

const QUIET: &str = r#"{"verbose":false,"pedantic":false,"protocol":1}"#;

fn opts_with_pings(interval_ms: u64, max: u32) -> Options {
    Options {
        ping_interval: Duration::from_millis(interval_ms),
        ping_max: max,
        ..Options::default()
    }
}

#[test]
fn silent_client_goes_stale_after_ping_max_unanswered_pings() {
    let mut sim = Sim::new(opts_with_pings(1_000, 2));
    let c = sim.connect(QUIET);
    // First PING ~1s (+ up to 20% jitter) after CONNECT, to measure the RTT.
    sim.advance(Duration::from_millis(999));
    assert_eq!(sim.take_str(c), "");
    sim.advance(Duration::from_millis(201));
    assert_eq!(sim.take_str(c), "PING\r\n");
    sim.advance(Duration::from_millis(1_000));
    assert_eq!(sim.take_str(c), "PING\r\n");
    assert!(sim.closed.is_empty());
    sim.advance(Duration::from_millis(1_000));
    assert_eq!(sim.take_str(c), "-ERR 'Stale Connection'\r\n");
    assert_eq!(sim.closed.get(&c), Some(&CloseReason::StaleConnection));
    assert_eq!(sim.server.stats().stale_connections, 1);
}

#[test]
fn answering_pings_keeps_the_connection() {
    let mut sim = Sim::new(opts_with_pings(1_000, 2));
    let c = sim.connect(QUIET);
    let mut pings = 0;
    for _ in 0..20 {
        sim.advance(Duration::from_millis(500));
        let got = sim.take_str(c);
        if got == "PING\r\n" {
            pings += 1;
            sim.send(c, b"PONG\r\n");
        } else {
            assert_eq!(got, "");
        }
    }
    assert!(sim.closed.is_empty());
    // PONGs are client activity too, so PINGs go out about every other interval.
    assert!((4..=10).contains(&pings), "{pings} pings in 10s");
}

#[test]
fn client_activity_suppresses_pings_once_the_rtt_is_known() {
    let mut sim = Sim::new(opts_with_pings(1_000, 2));
    let c = sim.connect(QUIET);
    sim.advance(Duration::from_millis(1_200));
    assert_eq!(sim.take_str(c), "PING\r\n");
    sim.send(c, b"PONG\r\n");
    for _ in 0..20 {
        sim.advance(Duration::from_millis(400));
        sim.send(c, b"PUB nobody 0\r\n\r\n");
    }
    assert_eq!(sim.take_str(c), "", "an active client is not pinged");
    assert!(sim.closed.is_empty());
}

#[test]
fn slow_consumer_is_closed_without_an_error_and_the_publisher_carries_on() {
    let opts = Options {
        max_pending: 64 * 1024,
        ..Options::default()
    };
    let mut sim = Sim::new(opts);
    let sub = sim.connect(QUIET);
    let publisher = sim.connect(QUIET);
    sim.send(sub, b"SUB big 1\r\n");
    sim.stuck.push(sub);
    let msg = [
        b"PUB big 1000\r\n".to_vec(),
        vec![b'x'; 1000],
        b"\r\n".to_vec(),
    ]
    .concat();
    for _ in 0..100 {
        sim.send(publisher, &msg);
        if sim.closed.contains_key(&sub) {
            break;
        }
        // Stalls end by themselves after a short while even if the receiver never drains.
        sim.advance(Duration::from_millis(20));
    }
    assert_eq!(
        sim.closed.get(&sub),
        Some(&CloseReason::SlowConsumerPendingBytes)
    );
    assert_eq!(
        sim.take(sub),
        b"",
        "no -ERR and no queued messages are written to a slow consumer"
    );
    assert_eq!(sim.server.stats().slow_consumers, 1);
    sim.advance(Duration::from_millis(20));
    sim.send(publisher, b"PING\r\n");
    assert!(sim.take_str(publisher).starts_with("PONG\r\n"));
    assert!(sim.server.can_read(publisher));
}

/// A subscriber whose socket never drains and a publisher that sends `size`-byte
/// messages to it until the engine pauses the publisher; returns how many it sent.
fn back_up(sim: &mut Sim, size: usize) -> (ClientId, ClientId, usize) {
    let sub = sim.connect(QUIET);
    let publisher = sim.connect(QUIET);
    sim.send(sub, b"SUB s 1\r\n");
    sim.stuck.push(sub);
    let msg = [
        format!("PUB s {size}\r\n").into_bytes(),
        vec![b'x'; size],
        b"\r\n".to_vec(),
    ]
    .concat();
    let mut sent = 0;
    while sim.server.can_read(publisher) {
        sim.send(publisher, &msg);
        sent += 1;
        assert!(sent < 1000, "the publisher was never paused");
    }
    (sub, publisher, sent)
}

#[test]
fn a_backed_up_receiver_pauses_its_publisher_until_it_drains() {
    let mut sim = Sim::new(Options::default());
    let (sub, publisher, sent) = back_up(&mut sim, 10_000);
    assert!(sim.server.outbound_len(sub) > 1024 * 1024);
    // The receiver drains: the publisher is resumed.
    sim.stuck.clear();
    sim.drain(sub);
    sim.pump();
    assert_eq!(sim.resumed, vec![publisher]);
    assert!(sim.server.can_read(publisher));
    assert_eq!(
        sim.take(sub).len(),
        sent * (b"MSG s 1 10000\r\n".len() + 10_002)
    );
}

#[test]
fn a_pause_ends_by_itself_after_a_short_time() {
    let mut sim = Sim::new(Options::default());
    let (_sub, publisher, _) = back_up(&mut sim, 100_000);
    sim.advance(Duration::from_millis(9));
    assert!(sim.resumed.is_empty() && !sim.server.can_read(publisher));
    sim.advance(Duration::from_millis(2));
    assert_eq!(sim.resumed, vec![publisher]);
    assert!(sim.server.can_read(publisher));
}

#[test]
fn max_connections_sends_info_then_the_error_and_closes() {
    let mut sim = Sim::new(Options {
        max_connections: 1,
        ..Options::default()
    });
    let first = sim.connect(QUIET);
    let second = sim.server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port: 2,
        },
        sim.now,
    );
    sim.pump();
    let got = sim.take_str(second);
    assert!(got.starts_with("INFO {"), "{got}");
    assert!(
        got.ends_with("} \r\n-ERR 'maximum connections exceeded'\r\n"),
        "{got}"
    );
    assert_eq!(
        sim.closed.get(&second),
        Some(&CloseReason::MaxConnectionsExceeded)
    );
    assert!(!sim.closed.contains_key(&first));
    // The refused connection frees its place: a later one is admitted once the first leaves.
    sim.disconnect(first);
    let third = sim.connect(QUIET);
    assert!(!sim.closed.contains_key(&third));
}

#[test]
fn stale_ids_are_ignored_after_close() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    sim.disconnect(a);
    let b = sim.connect(QUIET);
    assert_ne!(a, b);
    sim.send(a, b"SUB x 1\r\n");
    sim.send(b, b"PUB x 1\r\nz\r\nPING\r\n");
    assert!(
        sim.take_str(b).starts_with("PONG\r\n"),
        "the stale id's SUB must not exist"
    );
    assert_eq!(sim.server.num_subscriptions(), 0);
}

#[test]
fn queue_groups_deliver_each_message_once_and_spread_it() {
    let mut sim = Sim::new(Options::default());
    let members: Vec<ClientId> = (0..3).map(|_| sim.connect(QUIET)).collect();
    for &m in &members {
        sim.send(m, b"SUB work q 1\r\n");
    }
    let plain = sim.connect(QUIET);
    sim.send(plain, b"SUB work 9\r\n");
    let publisher = sim.connect(QUIET);
    for _ in 0..300 {
        sim.send(publisher, b"PUB work 1\r\nx\r\n");
    }
    let counts: Vec<usize> = members
        .iter()
        .map(|&m| sim.take(m).len() / b"MSG work 1 1\r\nx\r\n".len())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 300);
    assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    assert_eq!(sim.take(plain).len(), 300 * b"MSG work 9 1\r\nx\r\n".len());
}

#[test]
fn auto_unsubscribe_delivers_exactly_max() {
    let mut sim = Sim::new(Options::default());
    let c = sim.connect(QUIET);
    sim.send(c, b"SUB foo 1\r\nUNSUB 1 2\r\n");
    for _ in 0..5 {
        sim.send(c, b"PUB foo 1\r\nx\r\n");
    }
    assert_eq!(sim.take_str(c), "MSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\n");
    assert_eq!(sim.server.num_subscriptions(), 0);
}

#[test]
fn echo_off_skips_own_messages_and_no_responders_answers_503() {
    let mut sim = Sim::new(Options::default());
    let c = sim.connect(r#"{"verbose":false,"pedantic":false,"protocol":1,"echo":false,"headers":true,"no_responders":true}"#);
    sim.send(
        c,
        b"SUB _INBOX.a.* 7\r\nSUB req 8\r\nPUB req _INBOX.a.1 2\r\nhi\r\n",
    );
    // Its own SUB on `req` does not count as a responder with echo off.
    assert_eq!(
        sim.take_str(c),
        "HMSG _INBOX.a.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
}

#[test]
fn headers_are_stripped_for_subscribers_without_header_support() {
    let mut sim = Sim::new(Options::default());
    let plain = sim.connect(QUIET);
    let with_headers = sim.connect(r#"{"verbose":false,"pedantic":false,"headers":true}"#);
    sim.send(plain, b"SUB h 1\r\n");
    sim.send(
        with_headers,
        b"SUB h 2\r\nHPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    );
    assert_eq!(sim.take_str(plain), "MSG h 1 r 2\r\nhi\r\n");
    assert_eq!(
        sim.take_str(with_headers),
        "HMSG h 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    );
}

#[test]
fn shutdown_closes_everyone() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    let b = sim.connect(QUIET);
    sim.server.shutdown(sim.now);
    sim.pump();
    assert_eq!(sim.closed.get(&a), Some(&CloseReason::ServerShutdown));
    assert_eq!(sim.closed.get(&b), Some(&CloseReason::ServerShutdown));
    assert_eq!(sim.server.num_clients(), 0);
}

#[test]
fn reserved_subjects_are_refused_and_the_connection_stays_open() {
    let mut sim = Sim::new(Options::default());
    let c = sim.connect(QUIET);
    sim.send(c, b"SUB > 1\r\nPUB _GR_.x 1\r\nx\r\nPUB foo _R_.x 1\r\nx\r\nPUB foo $JS.ACK.x 1\r\nx\r\nPUB foo _GR_.y 1\r\nx\r\nPING\r\n");
    let got = sim.take_str(c);
    assert!(
        got.starts_with(concat!(
            "-ERR 'Permissions Violation for Publish to \"_GR_.x\"'\r\n",
            "-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n",
            "-ERR 'Permissions Violation for Publish with Reply of \"$JS.ACK.x\"'\r\n",
            "-ERR 'Permissions Violation for Publish with Reply of \"_GR_.y\"'\r\n",
            "PONG\r\n"
        )),
        "{got}"
    );
    assert!(sim.closed.is_empty());
}

#[test]
fn allow_responses_entries_expire_on_the_engines_clock() {
    use tenet_core::auth::Users;
    use tenet_core::config::options::{
        Authorization, Permissions, ResponsePermission, SubjectPermission, User,
    };
    let responder = User {
        name: Some("svc".into()),
        password: Some("p".into()),
        permissions: Some(Permissions {
            publish: None,
            subscribe: Some(SubjectPermission {
                allow: vec!["req".into()],
                ..Default::default()
            }),
            allow_responses: Some(ResponsePermission {
                max: Some(1),
                expires: Some(Duration::from_millis(100)),
            }),
            ..Default::default()
        }),
        ..User::default()
    };
    let requester = User {
        name: Some("r".into()),
        password: Some("p".into()),
        ..User::default()
    };
    let auth = Authorization {
        users: vec![responder, requester],
        ..Authorization::default()
    };
    let users = Users::new(Some(&auth), &[], None, None, None, None).unwrap();
    let mut sim = Sim::with_server(Server::with_users(Options::default(), users, 1));
    let svc = sim.connect(r#"{"verbose":false,"pedantic":false,"user":"svc","pass":"p"}"#);
    let req = sim.connect(r#"{"verbose":false,"pedantic":false,"user":"r","pass":"p"}"#);
    sim.send(svc, b"SUB req 1\r\n");
    for i in 0..50 {
        sim.send(req, format!("PUB req _INBOX.{i} 0\r\n\r\n").as_bytes());
    }
    assert_eq!(sim.server.tracked_replies(svc), 50);
    // Within the window a reply goes out; the entries of unanswered requests
    // expire on the engine's timer, with no traffic from the responder.
    sim.send(req, b"SUB _INBOX.> 9\r\n");
    sim.send(svc, b"PUB _INBOX.0 2\r\nhi\r\n");
    assert_eq!(sim.server.tracked_replies(svc), 49);
    sim.advance(Duration::from_millis(150));
    assert_eq!(sim.server.tracked_replies(svc), 0);
    sim.take(svc);
    sim.send(svc, b"PUB _INBOX.1 2\r\nhi\r\nPING\r\n");
    assert_eq!(
        sim.take_str(svc),
        "-ERR 'Permissions Violation for Publish to \"_INBOX.1\"'\r\nPONG\r\n"
    );
    assert!(sim.take_str(req).starts_with("MSG _INBOX.0 9 2\r\nhi\r\n"));
}

#[test]
fn replies_to_a_client_that_never_reads_are_bounded_by_max_pending() {
    // Found by the `server` fuzz target: PONGs and errors count against
    // `max_pending` too, so a client that writes but never reads is dropped.
    let mut sim = Sim::new(Options {
        max_pending: 1024,
        ..Options::default()
    });
    let c = sim.connect(QUIET);
    sim.stuck.push(c);
    for _ in 0..100 {
        if sim.closed.contains_key(&c) {
            break;
        }
        sim.send(c, b"PING\r\nPUB _GR_.x 0\r\n\r\n");
    }
    assert_eq!(
        sim.closed.get(&c),
        Some(&CloseReason::SlowConsumerPendingBytes)
    );
    assert_eq!(sim.server.stats().slow_consumers, 1);
}

#[test]
fn traced_payloads_are_cut_at_max_traced_msg_len() {
    let mut sim = Sim::new(Options {
        trace: true,
        max_traced_msg_len: 4,
        ..Options::default()
    });
    let c = sim.connect(QUIET);
    sim.send(c, b"PUB a 10\r\n0123456789\r\nPUB b 3\r\nxyz\r\n");
    let payloads: Vec<&String> = sim
        .logs
        .iter()
        .filter(|l| l.contains("MSG_PAYLOAD"))
        .collect();
    assert_eq!(payloads.len(), 2);
    assert!(
        payloads[0].ends_with("<<- MSG_PAYLOAD: [\"0123...\"]"),
        "{}",
        payloads[0]
    );
    assert!(
        payloads[1].ends_with("<<- MSG_PAYLOAD: [\"xyz\"]"),
        "{}",
        payloads[1]
    );
}

/// A publisher repeating one subject reuses its last match; every change to
/// the subscriptions (a new one, an unsubscribe, an auto-unsubscribe reached
/// during the delivery itself) must be seen by its very next publish.
#[test]
fn a_repeated_subject_sees_every_subscription_change() {
    let mut sim = Sim::new(Options::default());
    let publisher = sim.connect(QUIET);
    let a = sim.connect(QUIET);
    let b = sim.connect(QUIET);
    let one = b"PUB foo 1\r\nx\r\n";
    sim.send(publisher, one);
    sim.send(a, b"SUB foo 1\r\n");
    sim.send(publisher, one);
    assert_eq!(sim.take_str(a), "MSG foo 1 1\r\nx\r\n");
    sim.send(b, b"SUB f.* 2\r\nSUB foo 3\r\nUNSUB 3 1\r\n");
    sim.send(publisher, one);
    sim.send(publisher, one);
    assert_eq!(sim.take_str(a), "MSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\n");
    assert_eq!(sim.take_str(b), "MSG foo 3 1\r\nx\r\n");
    sim.send(a, b"UNSUB 1\r\n");
    sim.send(b, b"SUB bar 4\r\n");
    sim.send(publisher, one);
    assert_eq!(sim.take_str(a), "");
    assert_eq!(sim.take_str(b), "");
    sim.send(b, b"SUB foo 5\r\n");
    sim.send(
        publisher,
        b"PUB foo 1\r\ny\r\nPUB bar 1\r\nz\r\nPUB foo 1\r\nw\r\n",
    );
    assert_eq!(
        sim.take_str(b),
        "MSG foo 5 1\r\ny\r\nMSG bar 4 1\r\nz\r\nMSG foo 5 1\r\nw\r\n"
    );
}

/// A runtime that writes once per `Flush`, through only 2 slices and at most
/// `per_write` bytes, as the crate documentation's loop does: the engine asks
/// again until everything is out, so nothing is stranded.
#[test]
fn flush_comes_again_until_the_queue_is_written() {
    use std::io::IoSlice;
    use tenet_core::Event;
    let mut server = Server::new(Options::default(), 7);
    let now = tenet_core::Time::from_millis(1);
    let peer = || Peer {
        ip: "127.0.0.1".into(),
        port: 1,
    };
    let sub = server.accept(peer(), now);
    let publisher = server.accept(peer(), now);
    server.handle_read(
        sub,
        format!("CONNECT {QUIET}\r\nSUB big 1\r\n").as_bytes(),
        now,
    );
    server.handle_read(publisher, format!("CONNECT {QUIET}\r\n").as_bytes(), now);
    let payload = vec![b'x'; 60_000];
    let mut expected = Vec::new();
    for _ in 0..10 {
        let mut publish = b"PUB big 60000\r\n".to_vec();
        publish.extend_from_slice(&payload);
        publish.extend_from_slice(b"\r\n");
        server.handle_read(publisher, &publish, now);
        expected.extend_from_slice(b"MSG big 1 60000\r\n");
        expected.extend_from_slice(&payload);
        expected.extend_from_slice(b"\r\n");
    }
    let per_write = 50_000;
    let mut received: std::collections::HashMap<_, Vec<u8>> = Default::default();
    let mut flushes = 0;
    while let Some(event) = server.poll_event() {
        if let Event::Flush(id) = event {
            flushes += 1;
            let mut slices = [IoSlice::new(&[]); 2];
            let n = server.outbound(id, &mut slices);
            let mut bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
            bytes.truncate(per_write);
            server.handle_written(id, bytes.len(), now);
            received.entry(id).or_default().extend(bytes);
        }
    }
    assert_eq!(server.outbound_len(sub), 0, "bytes stranded in the queue");
    let got = &received[&sub];
    assert!(got.ends_with(&expected), "the subscriber's bytes differ");
    assert!(
        flushes > 12,
        "{flushes} flushes for 600 kB at 50 kB a write"
    );
}

#[test]
fn after_a_write_the_socket_refused_no_flush_comes_until_new_bytes() {
    use tenet_core::Event;
    let mut sim = Sim::new(Options::default());
    let c = sim.connect(QUIET);
    sim.stuck.push(c);
    sim.send(c, b"PING\r\n");
    assert!(sim.server.outbound_len(c) > 0);
    // The Sim reported a write of nothing for that Flush: no new one is due.
    assert!(
        !std::iter::from_fn(|| sim.server.poll_event()).any(|e| e == Event::Flush(c)),
        "a Flush for a socket that took nothing would spin the runtime"
    );
    assert_eq!(format!("{c:?}"), "ClientId { slot: 0, generation: 1 }");
}
