//! Raw-protocol conformance: every client op, MSG/HMSG framing, INFO, verbose and
//! pedantic modes and split writes, checked byte for byte (nats-server §1.1–§1.9, §2.1).

use std::time::Duration;

use serde_json::Value;
use tenet_tests::{show, skip_on_reference, RawClient, TestServer};

/// Long enough for a misrouted message to arrive on loopback; used only where no
/// PING barrier can prove an absence.
const QUIET: Duration = Duration::from_millis(100);

/// Sends PING and returns everything received before the PONG.
fn collect_until_pong(c: &mut RawClient) -> Vec<u8> {
    c.send(b"PING\r\n");
    let mut got = Vec::new();
    for _ in 0..100_000 {
        if got.ends_with(b"PONG\r\n") {
            got.truncate(got.len() - 6);
            return got;
        }
        got.extend(c.read_line());
    }
    panic!("no PONG; received {}", show(&got));
}

#[test]
fn info_has_the_documented_fields_and_a_trailing_space() {
    let server = TestServer::start();
    let mut c = RawClient::connect_tcp(server.port());
    let line = c.read_line();
    assert!(line.starts_with(b"INFO {"), "{}", show(&line));
    // nats-server joins "INFO", the JSON and CRLF with spaces: "} \r\n".
    assert!(
        line.ends_with(b"} \r\n"),
        "no trailing space: {}",
        show(&line)
    );
    let info: Value = serde_json::from_slice(&line[5..]).expect("INFO JSON");

    let id = info["server_id"].as_str().expect("server_id");
    assert_eq!(id.len(), 56, "server_id {id}");
    assert!(id.starts_with('N'), "server_id {id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "server_id {id}"
    );
    assert_eq!(
        info["server_name"].as_str(),
        Some(id),
        "server_name defaults to the id"
    );
    assert!(!info["version"].as_str().expect("version").is_empty());
    assert!(info["go"].is_string(), "go: {info}");
    assert_eq!(info["proto"], 1);
    assert_eq!(info["host"], "127.0.0.1");
    assert_eq!(info["port"], server.port());
    assert_eq!(info["headers"], true);
    assert_eq!(info["max_payload"], 1_048_576);
    assert!(
        info["client_id"].as_u64().is_some_and(|id| id > 0),
        "client_id: {info}"
    );
    assert_eq!(info["client_ip"], "127.0.0.1");
    // Nothing about auth or TLS is advertised by a server without them.
    for absent in ["auth_required", "tls_required", "nonce", "connect_info"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }
}

#[test]
fn info_reports_the_protocol_version_tenet_speaks() {
    if skip_on_reference("nats-server reports its own version and Go version") {
        return;
    }
    let server = TestServer::start();
    let c = server.client();
    // Clients gate features on `version`, so tenet reports the nats-server
    // version whose protocol it implements; `go` names the implementation.
    assert_eq!(c.info()["version"], "2.9.10");
    let go = c.info()["go"].as_str().expect("go").to_string();
    assert!(go.starts_with("tenet "), "go: {go}");
}

#[test]
fn client_ids_differ_between_connections() {
    let server = TestServer::start();
    let a = server.client();
    let b = server.client();
    assert_ne!(a.info()["client_id"], b.info()["client_id"]);
    assert_eq!(a.info()["server_id"], b.info()["server_id"]);
}

#[test]
fn second_info_follows_the_first_pong_of_a_protocol_1_client() {
    if skip_on_reference("nats-server 2.9.10 sends no INFO after the first PONG") {
        return;
    }
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    let line = c.read_line();
    assert!(
        line.starts_with(b"INFO {") && line.ends_with(b"} \r\n"),
        "{}",
        show(&line)
    );
    let info: Value = serde_json::from_slice(&line[5..]).expect("INFO JSON");
    assert_eq!(info["connect_info"], true);
    assert_eq!(info["remote_account"], "$G");
    assert_eq!(info["server_id"], c.info()["server_id"]);
    assert_eq!(info["client_id"], c.info()["client_id"]);
    // Only the first PING gets it.
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
    c.expect_nothing(QUIET);
}

#[test]
fn no_second_info_for_protocol_0_or_telnet_clients() {
    let server = TestServer::start();
    let mut zero = server.client();
    zero.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":0}\r\nPING\r\n");
    zero.expect(b"PONG\r\n");
    let mut telnet = server.client();
    telnet.send(b"PING\r\n");
    telnet.expect(b"PONG\r\n");
    zero.expect_nothing(QUIET);
    telnet.expect_nothing(Duration::ZERO);
}

#[test]
fn pub_sub_msg_framing_with_and_without_reply() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 5\r\nhello\r\nPUB foo reply.to 5\r\nworld\r\nPUB foo 0\r\n\r\nPING\r\n");
    c.expect(
        b"MSG foo 1 5\r\nhello\r\nMSG foo 1 reply.to 5\r\nworld\r\nMSG foo 1 0\r\n\r\nPONG\r\n",
    );
}

#[test]
fn messages_reach_other_connections() {
    let server = TestServer::start();
    let mut sub = server.client();
    sub.handshake();
    sub.send(b"SUB greet.* 42\r\n");
    sub.ping();
    let mut publisher = server.client();
    publisher.handshake();
    publisher.send(b"PUB greet.joe inbox.1 2\r\nhi\r\n");
    publisher.ping();
    sub.expect(b"MSG greet.joe 42 inbox.1 2\r\nhi\r\n");
    // The publisher has no subscription and got nothing but its PONG.
    publisher.expect_nothing(Duration::ZERO);
}

#[test]
fn payload_may_contain_crlf_and_binary() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB bin 1\r\nPUB bin 6\r\n\r\n\x00\xff\r\n\r\nPING\r\n");
    c.expect(b"MSG bin 1 6\r\n\r\n\x00\xff\r\n\r\nPONG\r\n");
}

#[test]
fn size_token_is_echoed_as_written() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 005\r\nhello\r\nPUB foo r 0003\r\nabc\r\nPING\r\n");
    c.expect(b"MSG foo 1 005\r\nhello\r\nMSG foo 1 r 0003\r\nabc\r\nPONG\r\n");
}

#[test]
fn wildcards_match_as_documented() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo 3\r\nSUB *.bar.* 4\r\nSUB > 5\r\nPING\r\n");
    c.expect_pong();
    // One message at a time, so the order of the MSG lines for one publish does not matter.
    let cases: [(&str, &[&str]); 5] = [
        ("foo", &["3", "5"]),
        ("foo.bar", &["1", "2", "5"]),
        ("foo.bar.baz", &["2", "4", "5"]),
        ("x.bar.y", &["4", "5"]),
        ("foobar", &["5"]),
    ];
    for (subject, sids) in cases {
        c.send(format!("PUB {subject} 1\r\nx\r\n"));
        let got = collect_until_pong(&mut c);
        let mut want: Vec<Vec<u8>> = sids
            .iter()
            .map(|sid| format!("MSG {subject} {sid} 1\r\nx\r\n").into_bytes())
            .collect();
        let mut frames: Vec<Vec<u8>> = got
            .split_inclusive(|&b| b == b'\n')
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| pair.concat())
            .collect();
        want.sort();
        frames.sort();
        assert_eq!(
            frames,
            want,
            "publish to {subject}: received {}",
            show(&got)
        );
    }
}

#[test]
fn wildcard_characters_inside_tokens_are_literal() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    // "foo*" and "a>b" are ordinary tokens, not wildcards.
    c.send(b"SUB foo* 1\r\nSUB a>b.c 2\r\nPUB foox 1\r\nx\r\nPUB foo* 1\r\ny\r\nPUB a>b.c 1\r\nz\r\nPING\r\n");
    c.expect(b"MSG foo* 1 1\r\ny\r\nMSG a>b.c 2 1\r\nz\r\nPONG\r\n");
}

#[test]
fn non_pedantic_publish_to_a_wildcard_subject_is_routed_literally() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    // §2.1: the published "*" is a literal token that wildcard subscriptions match.
    c.send(b"SUB foo.bar 1\r\nSUB foo.* 2\r\nPUB foo.* 1\r\nx\r\nPING\r\n");
    c.expect(b"MSG foo.* 2 1\r\nx\r\nPONG\r\n");
}

#[test]
fn hpub_is_delivered_as_hmsg_with_and_without_reply() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake_headers();
    c.send(b"SUB foo 1\r\nHPUB foo 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
    c.send(b"HPUB foo rep 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n");
    c.expect(b"HMSG foo 1 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
    c.expect(b"HMSG foo 1 rep 12 12\r\nNATS/1.0\r\n\r\n\r\nPONG\r\n");
}

#[test]
fn headers_are_stripped_for_subscribers_without_header_support() {
    let server = TestServer::start();
    let mut plain = server.client();
    plain.handshake();
    plain.send(b"SUB foo 1\r\n");
    plain.ping();
    let mut publisher = server.client();
    publisher.handshake_headers();
    publisher.send(b"HPUB foo 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n");
    publisher.send(b"HPUB foo rep 018 0023\r\nNATS/1.0\r\nA: B\r\n\r\nworld\r\n");
    publisher.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
    publisher.ping();
    // Only the payload is forwarded, with the size recomputed.
    plain.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 rep 5\r\nworld\r\nMSG foo 1 0\r\n\r\n");
    plain.ping();
}

#[test]
fn plain_pub_to_a_header_subscriber_is_a_msg() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake_headers();
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n");
    c.expect(b"MSG foo 1 2\r\nhi\r\nPONG\r\n");
}

#[test]
fn queue_group_members_share_messages() {
    let server = TestServer::start();
    let mut members: Vec<RawClient> = (0..2).map(|_| server.client()).collect();
    for m in &mut members {
        m.handshake();
        m.send(b"SUB work g1 7\r\n");
        m.ping();
    }
    let mut watcher = server.client();
    watcher.handshake();
    watcher.send(b"SUB work 9\r\n");
    watcher.ping();
    let mut publisher = server.client();
    publisher.handshake();
    publisher.send(b"PUB work 1\r\nx\r\n".repeat(100));
    publisher.ping();

    let mut counts = Vec::new();
    for m in &mut members {
        let got = collect_until_pong(m);
        let frame = b"MSG work 7 1\r\nx\r\n";
        assert_eq!(got, frame.repeat(got.len() / frame.len()), "{}", show(&got));
        counts.push(got.len() / frame.len());
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        100,
        "each message to exactly one member: {counts:?}"
    );
    // §1.8: selection is random; nats-server's own test wants each of two members ≥35 of 100.
    assert!(counts.iter().all(|&n| n >= 20), "uneven spread: {counts:?}");
    // The plain subscriber gets every message.
    watcher.expect(b"MSG work 9 1\r\nx\r\n".repeat(100));
}

#[test]
fn queue_subscriptions_on_one_connection_get_one_copy() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB q grp 1\r\nSUB q grp 2\r\nPUB q 1\r\nx\r\n");
    let got = collect_until_pong(&mut c);
    assert!(
        got == b"MSG q 1 1\r\nx\r\n" || got == b"MSG q 2 1\r\nx\r\n",
        "{}",
        show(&got)
    );
}

#[test]
fn unsub_stops_delivery_and_unknown_sid_is_fine() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nUNSUB 99\r\nPING\r\n");
    c.expect(b"MSG foo 1 1\r\na\r\nPONG\r\n");
}

#[test]
fn unsub_with_max_delivers_exactly_max() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nUNSUB 1 2\r\n");
    c.send(b"PUB foo 1\r\nx\r\n".repeat(10));
    c.send(b"PING\r\n");
    c.expect(b"MSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\nPONG\r\n");
}

#[test]
fn unsub_max_at_or_below_delivered_removes_at_once() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\n");
    c.send(b"SUB bar 2\r\nPUB bar 1\r\nd\r\nUNSUB 2 3\r\nPUB bar 1\r\ne\r\nPUB bar 1\r\nf\r\nPUB bar 1\r\ng\r\nPING\r\n");
    c.expect(b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n");
    c.expect(b"MSG bar 2 1\r\nd\r\nMSG bar 2 1\r\ne\r\nMSG bar 2 1\r\nf\r\nPONG\r\n");
}

#[test]
fn duplicate_sid_is_ignored() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    // The second SUB with sid 1 is ignored: sid 1 stays on "foo" and is not doubled.
    c.send(b"SUB foo 1\r\nSUB bar 1\r\nSUB foo 1\r\nPUB bar 1\r\nb\r\nPUB foo 1\r\nf\r\nPING\r\n");
    c.expect(b"MSG foo 1 1\r\nf\r\nPONG\r\n");
}

#[test]
fn ping_pong_and_ignored_ops() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    // +OK and a client INFO are ignored; text after PING is ignored.
    c.send(b"+OK\r\nINFO {\"server_id\":\"x\"}\r\nPING extra\r\nPONG\r\nPING\r\n");
    c.expect(b"PONG\r\nPONG\r\n");
    c.expect_nothing(QUIET);
}

#[test]
fn ops_are_case_insensitive() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"connect {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\nping\r\n");
    c.expect_pong();
    c.send(b"sub foo 1\r\nSuB bar 2\r\npub foo 1\r\na\r\nPuB bar 1\r\nb\r\n");
    c.send(b"hpub foo 12 13\r\nNATS/1.0\r\n\r\nc\r\nunsub 2\r\npub bar 1\r\nd\r\nPiNg\r\n");
    c.expect(b"MSG foo 1 1\r\na\r\nMSG bar 2 1\r\nb\r\nHMSG foo 1 12 13\r\nNATS/1.0\r\n\r\nc\r\nPONG\r\n");
}

#[test]
fn tabs_and_repeated_spaces_separate_arguments() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB\tfoo\t1\r\nSUB  bar \t g \t 2\r\nPUB\tfoo\t\trep\t1\r\na\r\nPUB   bar    1\r\nb\r\nPING\r\n");
    c.expect(b"MSG foo 1 rep 1\r\na\r\nMSG bar 2 1\r\nb\r\nPONG\r\n");
}

#[test]
fn bare_newline_ends_control_lines() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n");
    c.expect(b"MSG foo 1 2\r\nhi\r\nPONG\r\n");
}

#[test]
fn verbose_mode_acknowledges_ops() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false,\"protocol\":1}\r\n");
    c.expect(b"+OK\r\n");
    c.ping();
    // §1.6: +OK for SUB (also a duplicate sid), PUB (before its MSG), UNSUB (also an
    // unknown sid); never for PING.
    c.send(b"SUB foo 1\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nUNSUB 5\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\n+OK\r\nPONG\r\n");
}

#[test]
fn verbose_hpub_is_acknowledged() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"headers\":true,\"pedantic\":false}\r\n");
    c.expect(b"+OK\r\n");
    c.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n");
    c.expect(b"+OK\r\nPONG\r\n");
}

#[test]
fn telnet_mode_before_connect_is_verbose() {
    let server = TestServer::start();
    let mut c = server.client();
    // No CONNECT: per-connection defaults are verbose and pedantic (§1.1.4).
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\nUNSUB 1\r\n");
    c.expect(b"+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n+OK\r\n");
}

#[test]
fn connect_omitting_verbose_keeps_it_on() {
    let server = TestServer::start();
    let mut c = server.client();
    // §1.1.5: CONNECT is applied on top of verbose=true.
    c.send(b"CONNECT {\"protocol\":0}\r\nSUB foo 1\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\nPONG\r\n");
}

#[test]
fn pedantic_invalid_publish_subject_errors_and_stays_open() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":true,\"protocol\":1}\r\n");
    c.ping();
    for subject in ["foo.*", "foo.>", "foo..bar", "*"] {
        c.send(format!("PUB {subject} 1\r\nx\r\n"));
        c.expect(b"-ERR 'Invalid Publish Subject'\r\n");
    }
    c.send(b"SUB ok 1\r\nPUB ok 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG ok 1 1\r\ny\r\nPONG\r\n");
}

#[test]
fn pedantic_invalid_publish_subject_is_dropped_without_ok() {
    if skip_on_reference("nats-server delivers the message and sends +OK after the -ERR") {
        return;
    }
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":true,\"protocol\":1,\"headers\":true}\r\n");
    c.expect(b"+OK\r\n");
    c.send(b"SUB foo.> 1\r\n");
    c.expect(b"+OK\r\n");
    c.send(b"PUB foo.* 1\r\nx\r\nHPUB foo.> 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n");
    c.expect(b"-ERR 'Invalid Publish Subject'\r\n-ERR 'Invalid Publish Subject'\r\n");
    c.expect_pong();
}

#[test]
fn pedantic_valid_publish_is_delivered() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":true}\r\nSUB foo.* 1\r\nPUB foo.bar 1\r\nx\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\n+OK\r\nMSG foo.bar 1 1\r\nx\r\nPONG\r\n");
}

#[test]
fn no_responders_gets_a_503_hmsg() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n");
    c.ping();
    c.send(b"SUB _INBOX.abc.* 7\r\nPUB nobody.home _INBOX.abc.1 2\r\nhi\r\nPING\r\n");
    // As nats-server 2.9.10: no Nats-Subject header.
    c.expect(b"HMSG _INBOX.abc.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
}

#[test]
fn no_503_without_no_responders_or_with_a_responder() {
    let server = TestServer::start();
    let mut quiet = server.client();
    quiet.handshake_headers();
    quiet.send(b"SUB inbox.1 1\r\nPUB nobody inbox.1 0\r\n\r\nPING\r\n");
    quiet.expect(b"PONG\r\n");

    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n");
    c.send(b"SUB inbox.2 1\r\nSUB svc 2\r\nPUB svc inbox.2 1\r\nq\r\nPING\r\n");
    c.expect(b"MSG svc 2 inbox.2 1\r\nq\r\nPONG\r\n");
    quiet.expect_nothing(Duration::ZERO);
}

#[test]
fn echo_false_suppresses_own_messages() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    let mut other = server.client();
    other.handshake();
    other.send(b"PUB foo 1\r\ny\r\n");
    other.ping();
    c.expect(b"MSG foo 1 1\r\ny\r\n");
}

/// One exchange used by the split-write tests: every op, with its exact response.
const EXCHANGE: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\n\
SUB foo 1\r\nSUB bar grp 2\r\nPUB foo rep 5\r\nhello\r\n\
HPUB bar 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nworld\r\nUNSUB 1\r\nPUB foo 2\r\nno\r\n\
sub baz 3\r\nUNSUB 3 1\r\npub baz 3\r\none\r\npub baz 3\r\ntwo\r\n+OK\r\nPONG\r\nPING\r\n";
const EXCHANGE_REPLY: &[u8] = b"MSG foo 1 rep 5\r\nhello\r\n\
HMSG bar 2 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nworld\r\nMSG baz 3 3\r\none\r\n";

#[test]
fn exchange_sent_at_once() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(EXCHANGE);
    c.expect(EXCHANGE_REPLY);
    c.expect_pong();
}

#[test]
fn exchange_sent_one_byte_at_a_time_gives_the_same_bytes() {
    let server = TestServer::start();
    let mut c = server.client();
    for byte in EXCHANGE {
        c.send([*byte]);
    }
    c.expect(EXCHANGE_REPLY);
    c.expect_pong();
}

#[test]
fn payload_arriving_in_pieces() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\n");
    c.ping();
    // Pause between pieces so the server sees each one separately.
    for piece in [
        &b"PUB foo 1"[..],
        b"1\r\nhel",
        b"lo wor",
        b"ld",
        b"\r",
        b"\nPING\r\n",
    ] {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(20));
    }
    c.expect(b"MSG foo 1 11\r\nhello world\r\nPONG\r\n");
}

#[test]
fn many_subscriptions_and_a_large_payload() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    for sid in 0..500 {
        c.send(format!("SUB s.{sid} {sid}\r\n"));
    }
    let payload = vec![b'z'; 1_048_576];
    c.send(b"PUB s.499 1048576\r\n");
    c.send(&payload);
    c.send(b"\r\nPUB s.0 1\r\nx\r\nPING\r\n");
    c.expect(b"MSG s.499 499 1048576\r\n");
    c.expect(&payload);
    c.expect(b"\r\nMSG s.0 0 1\r\nx\r\nPONG\r\n");
}

#[test]
fn hpub_with_an_empty_header_block_is_delivered_as_msg() {
    // nats-server only sends HMSG when the header size is > 0.
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake_headers();
    c.send(b"SUB a 1\r\nHPUB a 0 2\r\nhi\r\nHPUB a 0 0\r\n\r\nPING\r\n");
    c.expect(b"MSG a 1 2\r\nhi\r\nMSG a 1 0\r\n\r\nPONG\r\n");
}

#[test]
fn headers_are_stripped_for_queue_subscribers_without_header_support() {
    let server = TestServer::start();
    let mut member = server.client();
    member.handshake();
    member.send(b"SUB q grp 1\r\n");
    member.ping();
    let mut publisher = server.client();
    publisher.handshake_headers();
    publisher.send(b"HPUB q r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    publisher.ping();
    member.expect(b"MSG q 1 r 2\r\nhi\r\n");
    member.ping();
}

#[test]
fn queue_member_with_echo_off_passes_its_own_message_on() {
    let server = TestServer::start();
    let mut quiet = server.client();
    quiet.send(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nSUB q g 1\r\nPING\r\n",
    );
    quiet.expect(b"PONG\r\n");
    let mut other = server.client();
    other.handshake();
    other.send(b"SUB q g 2\r\n");
    other.ping();
    // §1.8: a member that refuses (echo off) is skipped, the message is not lost.
    quiet.send(b"PUB q 1\r\nx\r\n".repeat(20));
    quiet.send(b"PING\r\n");
    quiet.expect(b"PONG\r\n");
    other.expect(b"MSG q 2 1\r\nx\r\n".repeat(20));
    other.ping();
}

#[test]
fn queue_member_past_its_max_passes_messages_on() {
    let server = TestServer::start();
    let mut limited = server.client();
    limited.handshake();
    limited.send(b"SUB q g 1\r\nUNSUB 1 1\r\n");
    limited.ping();
    let mut other = server.client();
    other.handshake();
    other.send(b"SUB q g 2\r\n");
    other.ping();
    let mut publisher = server.client();
    publisher.handshake();
    publisher.send(b"PUB q 1\r\nx\r\n".repeat(10));
    publisher.ping();
    let a = collect_until_pong(&mut limited);
    let b = collect_until_pong(&mut other);
    let frame_a: &[u8] = b"MSG q 1 1\r\nx\r\n";
    let frame_b: &[u8] = b"MSG q 2 1\r\nx\r\n";
    let (na, nb) = (a.len() / frame_a.len(), b.len() / frame_b.len());
    assert_eq!(a, frame_a.repeat(na), "{}", show(&a));
    assert_eq!(b, frame_b.repeat(nb), "{}", show(&b));
    assert!(na <= 1, "auto-unsubscribed member got {na}");
    assert_eq!(na + nb, 10, "every message to one member");
}

#[test]
fn no_responders_needs_a_plain_reply_subscription_of_the_publisher() {
    let server = TestServer::start();
    let mut other = server.client();
    other.handshake();
    other.send(b"SUB in.other 1\r\n");
    other.ping();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n");
    // The reply subscription belongs to another connection: no 503, and the
    // other connection gets nothing either.
    c.send(b"PUB svc in.other 0\r\n\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    // Only plain subscriptions count (nats-server's subForReply skips queue subs).
    c.send(b"SUB in.q grp 5\r\nPUB svc in.q 0\r\n\r\nPING\r\n");
    c.expect(b"PONG\r\n");
    other.expect_nothing(Duration::ZERO);
}

#[test]
fn no_responders_once_the_only_responder_auto_unsubscribed() {
    let server = TestServer::start();
    let mut service = server.client();
    service.handshake();
    service.send(b"SUB svc 1\r\nUNSUB 1 1\r\n");
    service.ping();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n");
    c.send(b"SUB in.1 5\r\nPUB svc in.1 1\r\na\r\nPUB svc in.1 1\r\nb\r\nPING\r\n");
    c.expect(b"HMSG in.1 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
    service.expect(b"MSG svc 1 in.1 1\r\na\r\n");
    service.ping();
}

#[test]
fn verbose_no_responders_acknowledges_before_the_503() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n");
    c.send(b"SUB in.1 5\r\nPUB svc in.1 0\r\n\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\n+OK\r\nHMSG in.1 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
}

#[test]
fn second_connect_changes_options_and_keeps_subscriptions() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\nSUB a 1\r\n");
    c.expect(b"+OK\r\n+OK\r\n");
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB b 2\r\nPUB a 1\r\nx\r\nPUB b 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG a 1 1\r\nx\r\nMSG b 2 1\r\ny\r\nPONG\r\n");
}

#[test]
fn sid_can_be_reused_after_unsub() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB a 1\r\nUNSUB 1\r\nSUB b 1\r\nPUB a 1\r\nx\r\nPUB b 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG b 1 1\r\ny\r\nPONG\r\n");
}

#[test]
fn a_later_unsub_replaces_the_max() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB a 1\r\nUNSUB 1 5\r\nUNSUB 1 2\r\n");
    c.send(b"PUB a 1\r\nx\r\n".repeat(4));
    c.send(b"SUB b 2\r\nUNSUB 2 5\r\nPUB b 1\r\ny\r\nUNSUB 2\r\nPUB b 1\r\nz\r\nPING\r\n");
    c.expect(b"MSG a 1 1\r\nx\r\nMSG a 1 1\r\nx\r\nMSG b 2 1\r\ny\r\nPONG\r\n");
}

#[test]
fn subjects_are_bytes_not_just_ascii() {
    let server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send("SUB héllo.wörld 1\r\nSUB a\x01b 2\r\nPUB héllo.wörld 1\r\nx\r\nPUB a\x01b 1\r\ny\r\nPING\r\n");
    c.expect("MSG héllo.wörld 1 1\r\nx\r\nMSG a\x01b 2 1\r\ny\r\nPONG\r\n");
}

#[test]
fn pipelined_burst_arrives_complete_and_in_order() {
    let server = TestServer::start();
    let mut sub = server.client();
    sub.handshake();
    sub.send(b"SUB burst 1\r\n");
    sub.ping();
    let mut publisher = server.client();
    publisher.handshake();
    let mut burst = Vec::new();
    let mut want = Vec::new();
    for i in 0..20_000 {
        let payload = format!("m{i}");
        burst.extend(format!("PUB burst {}\r\n{payload}\r\n", payload.len()).into_bytes());
        want.extend(format!("MSG burst 1 {}\r\n{payload}\r\n", payload.len()).into_bytes());
    }
    publisher.send(&burst);
    publisher.ping();
    sub.expect(&want);
    sub.ping();
}

#[test]
fn replies_are_flushed_to_a_client_that_half_closed() {
    // Like `printf 'PING\r\n' | nc -N host port`: the server reads EOF after the
    // ops, and still writes their replies before closing.
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n");
    c.shutdown_write();
    c.expect(b"MSG foo 1 2\r\nhi\r\nPONG\r\n");
    c.expect_closed();
}

#[test]
fn a_burst_of_connections_is_accepted() {
    let server = TestServer::start();
    // All connect before any is served (they wait in the listen backlog).
    let mut clients: Vec<RawClient> = (0..200)
        .map(|_| RawClient::connect_tcp(server.port()))
        .collect();
    for c in &mut clients {
        c.read_info();
        c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB fan 1\r\nPING\r\n");
    }
    for c in &mut clients {
        c.expect(b"PONG\r\n");
    }
    let mut publisher = server.client();
    publisher.handshake();
    publisher.send(b"PUB fan 1\r\nz\r\n");
    publisher.ping();
    for c in &mut clients {
        c.expect(b"MSG fan 1 1\r\nz\r\n");
    }
}
