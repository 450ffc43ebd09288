//! Protocol errors: every `-ERR` of nats-server §1.5 that applies without
//! authentication (exact bytes, and whether the connection then closes), the
//! silent closes, and the slow-consumer disconnect.

use std::time::Duration;

use tenet_core::Options;
use tenet_tests::{show, skip_on_reference, RawClient, TestServer, CONNECT};

/// Expects `-ERR '<text>'` and then the close, with nothing else in between.
fn expect_err_then_close(c: &mut RawClient, text: &str) {
    c.expect(format!("-ERR '{text}'\r\n"));
    c.expect_closed();
}

/// A connected client (standard CONNECT, PING/PONG done).
fn connected(server: &TestServer) -> RawClient {
    let mut c = server.client();
    c.handshake();
    c
}

/// Sends `bad` after a handshake and expects `-ERR '<text>'` then the close.
fn assert_fatal(bad: &[u8], text: &str) {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(bad);
    expect_err_then_close(&mut c, text);
}

/// Sends `bad` after a handshake and expects the connection to close with no bytes.
fn assert_silent_close(connect: &[u8], bad: &[u8]) {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(connect);
    c.send(b"PING\r\n");
    c.expect_pong();
    c.send(bad);
    c.expect_closed();
}

// ----- Unknown Protocol Operation ---------------------------------------------

#[test]
fn unknown_op_closes() {
    assert_fatal(b"FOO bar\r\n", "Unknown Protocol Operation");
}

#[test]
fn misspelled_ops_close() {
    for bad in [&b"SUBX foo 1\r\n"[..], b"P\r\n", b"PUBLISH foo 1\r\n"] {
        let server = TestServer::start();
        let mut c = connected(&server);
        c.send(bad);
        c.expect(b"-ERR 'Unknown Protocol Operation'\r\n");
        c.expect_closed();
    }
}

#[test]
fn blank_line_closes() {
    assert_fatal(b"\r\n", "Unknown Protocol Operation");
}

#[test]
fn blank_line_after_a_good_op_closes() {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(b"PING\r\n\r\n");
    c.expect(b"PONG\r\n-ERR 'Unknown Protocol Operation'\r\n");
    c.expect_closed();
}

#[test]
fn payload_not_followed_by_crlf_closes() {
    for bad in [
        &b"PUB foo 2\r\nhixx\r\n"[..],
        b"PUB foo 1\r\nab\r\n",
        b"PUB foo 1\r\na\n",
    ] {
        let server = TestServer::start();
        let mut c = connected(&server);
        c.send(b"SUB foo 1\r\n");
        c.send(bad);
        // The message is not delivered: the -ERR is all that comes back.
        expect_err_then_close(&mut c, "Unknown Protocol Operation");
    }
}

#[test]
fn client_sent_msg_and_hmsg_close() {
    assert_fatal(b"MSG foo 1 2\r\nhi\r\n", "Unknown Protocol Operation");
    assert_fatal(
        b"HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n",
        "Unknown Protocol Operation",
    );
}

#[test]
fn bare_unsub_closes_with_unknown_op() {
    // As nats-server 2.9.10 (§13).
    assert_fatal(b"UNSUB\r\n", "Unknown Protocol Operation");
}

// ----- maximum control line exceeded ------------------------------------------

#[test]
fn control_line_over_default_limit_closes() {
    let server = TestServer::start();
    let mut c = connected(&server);
    let subject = "a".repeat(5000);
    c.send(format!("SUB {subject} 1\r\n"));
    expect_err_then_close(&mut c, "maximum control line exceeded");
}

#[test]
fn control_line_limit_boundary_on_complete_lines() {
    // The arguments after the op name may be max_control_line bytes, not one more.
    let server = TestServer::with_options(Options {
        max_control_line: 64,
        ..Options::default()
    });
    let mut c = connected(&server);
    let at_limit = format!("{} 1", "a".repeat(62));
    c.send(format!("SUB {at_limit}\r\nPUB {at_limit}\r\nx\r\nPING\r\n"));
    c.expect(format!("MSG {} 1 1\r\nx\r\nPONG\r\n", "a".repeat(62)));
    c.send(format!("PUB {} 1\r\n", "a".repeat(63)));
    expect_err_then_close(&mut c, "maximum control line exceeded");
}

#[test]
fn partial_control_line_over_limit_closes_before_its_end() {
    let server = TestServer::with_options(Options {
        max_control_line: 64,
        ..Options::default()
    });
    let mut c = connected(&server);
    // No line end: the server must not wait for one.
    c.send(format!("SUB {}", "a".repeat(65)));
    expect_err_then_close(&mut c, "maximum control line exceeded");
}

#[test]
fn partial_control_line_at_limit_is_kept() {
    let server = TestServer::with_options(Options {
        max_control_line: 64,
        ..Options::default()
    });
    let mut c = connected(&server);
    c.send(format!("SUB {} 1", "b".repeat(62)));
    c.expect_nothing(Duration::from_millis(50));
    c.send(b"\r\nPING\r\n");
    c.expect(b"PONG\r\n");
}

#[test]
fn huge_connect_is_a_control_line_too() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(5000)));
    expect_err_then_close(&mut c, "maximum control line exceeded");
}

// ----- Maximum Payload Violation ----------------------------------------------

#[test]
fn payload_over_default_max_closes_before_the_payload() {
    assert_fatal(b"PUB foo 1048577\r\n", "Maximum Payload Violation");
}

#[test]
fn payload_limit_boundary_pub_and_hpub() {
    let server = TestServer::with_options(Options {
        max_payload: 100,
        ..Options::default()
    });
    let mut c = server.client();
    assert_eq!(c.info()["max_payload"], 100);
    c.handshake_headers();
    let body = "p".repeat(100);
    c.send(format!("SUB foo 1\r\nPUB foo 100\r\n{body}\r\nPING\r\n"));
    c.expect(format!("MSG foo 1 100\r\n{body}\r\nPONG\r\n"));
    // The header size counts towards the limit.
    c.send(b"HPUB foo 12 101\r\n");
    expect_err_then_close(&mut c, "Maximum Payload Violation");

    let mut c = server.client();
    c.handshake();
    c.send(b"PUB foo reply 101\r\n");
    expect_err_then_close(&mut c, "Maximum Payload Violation");
}

// ----- CONNECT errors ---------------------------------------------------------

#[test]
fn connect_with_account_is_an_authorization_violation() {
    for connect in [
        &b"CONNECT {\"verbose\":false,\"account\":\"acme\"}\r\n"[..],
        b"CONNECT {\"verbose\":false,\"new_account\":true}\r\n",
    ] {
        let server = TestServer::start();
        let mut c = server.client();
        c.send(connect);
        expect_err_then_close(&mut c, "Authorization Violation");
    }
}

#[test]
fn invalid_client_protocol_closes() {
    for proto in ["2", "-1"] {
        let server = TestServer::start();
        let mut c = server.client();
        c.send(format!(
            "CONNECT {{\"verbose\":false,\"protocol\":{proto}}}\r\n"
        ));
        expect_err_then_close(&mut c, "invalid client protocol");
    }
}

#[test]
fn no_responders_without_headers_closes() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"no_responders\":true}\r\n");
    expect_err_then_close(&mut c, "no responders requires headers support");
}

#[test]
fn protocol_is_checked_before_no_responders() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"no_responders\":true,\"protocol\":2}\r\n");
    expect_err_then_close(&mut c, "invalid client protocol");
}

#[test]
fn second_connect_is_checked_too() {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(b"CONNECT {\"verbose\":false,\"protocol\":5}\r\n");
    expect_err_then_close(&mut c, "invalid client protocol");
}

// ----- Stale Connection -------------------------------------------------------

#[test]
fn stale_connection_after_unanswered_pings() {
    for ping_max in [2u32, 3] {
        let server = TestServer::with_options(Options {
            ping_interval: Duration::from_millis(100),
            ping_max,
            ..Options::default()
        });
        let mut c = server.client();
        // CONNECT, then silence: no PONG ever.
        c.send(CONNECT);
        let got = c.read_until_closed();
        let want = [
            b"PING\r\n".repeat(ping_max as usize),
            b"-ERR 'Stale Connection'\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(got, want, "ping_max {ping_max}: received {}", show(&got));
    }
}

#[test]
fn answered_pings_keep_the_connection() {
    let server = TestServer::with_options(Options {
        ping_interval: Duration::from_millis(50),
        ping_max: 1,
        ..Options::default()
    });
    let mut c = server.client();
    c.send(CONNECT);
    // Answer five server PINGs (≈ 5 intervals; with ping_max 1 an unanswered
    // one would be fatal at the next tick).
    for _ in 0..5 {
        c.expect(b"PING\r\n");
        c.send(b"PONG\r\n");
    }
}

// ----- maximum connections exceeded -------------------------------------------

/// Connects and completes a handshake. A just-closed connection (or the reference
/// server's start-up probe) can still count for a moment, so a connection refused
/// within the limit is retried.
fn connect_within_limit(server: &TestServer) -> RawClient {
    for _ in 0..100 {
        let mut c = server.client();
        let answer = c
            .try_send([CONNECT, b"PING\r\n"].concat())
            .map_err(|e| e.to_string())
            .and_then(|()| c.try_read_line());
        match answer {
            Ok(line) if line == b"PONG\r\n" => {
                c.expect_connect_info_if_due();
                return c;
            }
            Ok(line) => assert_eq!(
                line,
                b"-ERR 'maximum connections exceeded'\r\n",
                "{}",
                show(&line)
            ),
            // Refused and already reset before the -ERR could be read.
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("could not connect within the connection limit");
}

#[test]
fn connections_over_the_limit_get_info_then_err_then_close() {
    let server = TestServer::with_options(Options {
        max_connections: 2,
        ..Options::default()
    });
    let mut a = connect_within_limit(&server);
    let _b = connect_within_limit(&server);
    let mut c = RawClient::connect_tcp(server.port());
    let info = c.read_info();
    assert_eq!(info["max_payload"], 1_048_576);
    expect_err_then_close(&mut c, "maximum connections exceeded");
    a.ping();
    // A slot frees when a client leaves (the server notices asynchronously).
    drop(a);
    let _c = connect_within_limit(&server);
}

#[test]
fn max_connections_zero_refuses_everyone() {
    if skip_on_reference("nats-server 2.9.10 treats max_connections 0 as the default; 2.15 and tenet refuse everyone") {
        return;
    }
    let server = TestServer::with_options(Options {
        max_connections: 0,
        ..Options::default()
    });
    let mut c = RawClient::connect_tcp(server.port());
    c.read_info();
    expect_err_then_close(&mut c, "maximum connections exceeded");
}

// ----- errors that keep the connection open -----------------------------------

#[test]
fn subscriptions_over_the_limit_are_refused_but_the_connection_stays() {
    let server = TestServer::with_options(Options {
        max_subscriptions: 2,
        ..Options::default()
    });
    let mut c = connected(&server);
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB c 1\r\nx\r\nPUB a 1\r\ny\r\nPING\r\n");
    c.expect(b"-ERR 'maximum subscriptions exceeded'\r\nMSG a 1 1\r\ny\r\nPONG\r\n");
    // Unsubscribing frees room for another.
    c.send(b"UNSUB 1\r\nSUB c 3\r\nPUB c 1\r\nz\r\nPING\r\n");
    c.expect(b"MSG c 3 1\r\nz\r\nPONG\r\n");
}

#[test]
fn verbose_gets_no_ok_for_a_subscription_over_the_limit() {
    let server = TestServer::with_options(Options {
        max_subscriptions: 1,
        ..Options::default()
    });
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\nSUB a 1\r\nSUB b 2\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\n-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
}

#[test]
fn invalid_subjects_are_refused_but_the_connection_stays() {
    let server = TestServer::start();
    let mut c = connected(&server);
    for subject in ["foo..bar", "foo.>.bar", ".foo", "foo.", ">.foo"] {
        c.send(format!("SUB {subject} 1\r\n"));
        c.expect(b"-ERR 'Invalid Subject'\r\n");
    }
    // None was created, so sid 1 is still free.
    c.send(b"SUB ok 1\r\nPUB ok 1\r\nx\r\nPING\r\n");
    c.expect(b"MSG ok 1 1\r\nx\r\nPONG\r\n");
}

#[test]
fn invalid_queue_subject_is_refused() {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(b"SUB foo..bar q 1\r\nPING\r\n");
    c.expect(b"-ERR 'Invalid Subject'\r\nPONG\r\n");
}

#[test]
fn invalid_publish_subject_in_pedantic_mode_stays_open() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":true,\"headers\":true}\r\n");
    c.send(b"PUB foo.> 1\r\nx\r\nHPUB a.*.b 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n");
    c.expect(b"-ERR 'Invalid Publish Subject'\r\n-ERR 'Invalid Publish Subject'\r\nPONG\r\n");
}

#[test]
fn reserved_queue_name_is_a_permissions_violation() {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(b"SUB foo _sys_ 1\r\nPUB foo 1\r\nx\r\nPING\r\n");
    c.expect(b"-ERR 'Permissions Violation for Subscription to \"foo\" using queue \"_sys_\"'\r\nPONG\r\n");
    // The refused sid is free for a real subscription.
    c.send(b"SUB foo 1\r\nPUB foo 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG foo 1 1\r\ny\r\nPONG\r\n");
}

#[test]
fn verbose_gets_no_ok_for_refused_subscriptions() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\n");
    c.expect(b"+OK\r\n");
    c.send(b"SUB foo..bar 1\r\nSUB foo _sys_ 2\r\nPING\r\n");
    c.expect(b"-ERR 'Invalid Subject'\r\n");
    c.expect(b"-ERR 'Permissions Violation for Subscription to \"foo\" using queue \"_sys_\"'\r\n");
    c.expect(b"PONG\r\n");
}

// ----- silent closes ----------------------------------------------------------

#[test]
fn wrong_argument_counts_close_silently() {
    for bad in [
        &b"SUB foo\r\n"[..],
        b"SUB a b c d\r\n",
        b"PUB foo\r\n",
        b"PUB a b c 1\r\n",
        b"HPUB foo 1\r\n",
        b"UNSUB 1 2 3\r\n",
    ] {
        println!("sending {}", show(bad));
        assert_silent_close(CONNECT, bad);
    }
}

#[test]
fn bad_sizes_close_silently() {
    for bad in [
        &b"PUB foo abc\r\n"[..],
        b"PUB foo -1\r\n",
        b"PUB foo 1x\r\n",
        b"PUB foo 0000000001\r\n",
        b"PUB foo 9999999999\r\n",
    ] {
        println!("sending {}", show(bad));
        assert_silent_close(CONNECT, bad);
    }
}

#[test]
fn nine_digit_size_is_fine() {
    let server = TestServer::start();
    let mut c = connected(&server);
    c.send(b"SUB foo 1\r\nPUB foo 000000001\r\nx\r\nPING\r\n");
    c.expect(b"MSG foo 1 000000001\r\nx\r\nPONG\r\n");
}

#[test]
fn hpub_header_size_over_total_closes_silently() {
    let headers = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n";
    assert_silent_close(headers, b"HPUB foo 10 5\r\n");
    assert_silent_close(headers, b"HPUB foo x 5\r\n");
}

#[test]
fn hpub_without_header_support_closes_silently_at_the_control_line() {
    // nats-server rejects it on the HPUB line, without waiting for the payload.
    assert_silent_close(CONNECT, b"HPUB foo 12 12\r\n");
}

#[test]
fn hpub_without_header_support_closes_silently_with_its_payload() {
    assert_silent_close(CONNECT, b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n");
}

#[test]
fn malformed_connect_closes_silently() {
    for bad in [
        &b"CONNECT {bad\r\n"[..],
        b"CONNECT\r\n",
        b"CONNECT {\"verbose\":false}extra\r\n",
        b"CONNECT {\"verbose\":\"yes\"}\r\n",
    ] {
        println!("sending {}", show(bad));
        let server = TestServer::start();
        let mut c = server.client();
        c.send(bad);
        c.expect_closed();
    }
}

#[test]
fn malformed_client_info_closes_silently() {
    assert_silent_close(CONNECT, b"INFO {bad\r\n");
}

#[test]
fn client_err_closes_silently() {
    assert_silent_close(CONNECT, b"-ERR 'boom'\r\n");
}

// ----- slow consumer ----------------------------------------------------------

#[test]
fn slow_consumer_is_dropped_without_err_and_the_publisher_is_fine() {
    // Messages half of max_pending: a receiver that stops reading goes over the
    // limit within a few messages (nats-server stalls the publisher ≤100 ms first).
    let server = TestServer::with_options(Options {
        max_pending: 64 * 1024,
        max_payload: 64 * 1024,
        ..Options::default()
    });
    let mut slow = connected(&server);
    slow.set_recv_buffer(4096);
    slow.send(b"SUB flood 1\r\n");
    slow.ping();
    // The slow subscriber reads nothing from here on.
    let mut publisher = connected(&server);
    let payload = vec![b'f'; 32 * 1024];
    let one = [&b"PUB flood 32768\r\n"[..], &payload, b"\r\n"].concat();
    let batch = one.repeat(32); // 1 MiB
    let batches = 8; // far more than the kernel buffers and max_pending hold
    for _ in 0..batches {
        publisher.send(&batch);
    }
    // The publisher is unaffected.
    publisher.ping();

    // The subscriber sees whole MSGs (the last may be cut short), then the close.
    let got = slow.read_until_closed();
    let frame = [&b"MSG flood 1 32768\r\n"[..], &payload, b"\r\n"].concat();
    let whole = got.len() / frame.len();
    assert!(whole < batches * 32, "every message was delivered");
    assert!(
        frame.repeat(whole + 1).starts_with(&got),
        "not a run of MSGs (no -ERR expected): {}",
        show(&got)
    );
    // Still healthy afterwards.
    publisher.send(b"PUB flood 1\r\nx\r\n");
    publisher.ping();
}

// ----- abrupt disconnects -----------------------------------------------------

/// Closes with a TCP reset instead of a FIN (SO_LINGER 0).
fn reset(c: RawClient) {
    c.abort();
}

#[test]
fn resets_in_any_state_free_their_connection_slots() {
    let server = TestServer::with_options(Options {
        max_connections: 2,
        ..Options::default()
    });
    let partials: [&[u8]; 4] = [
        b"SUB foo 1\r\nPUB foo 10\r\nabc",
        b"SUB foo 1\r\nPUB fo",
        b"SUB foo 1\r\nHPUB foo 12",
        b"SUB foo q 1\r\nSUB bar 2\r\n",
    ];
    for partial in partials {
        let mut a = connect_within_limit(&server);
        let mut b = connect_within_limit(&server);
        a.send(partial);
        b.send(partial);
        reset(a);
        reset(b);
    }
    // Both slots are free again (the server notices the resets asynchronously).
    let mut a = connect_within_limit(&server);
    let mut b = connect_within_limit(&server);
    a.send(b"SUB foo 1\r\n");
    a.ping();
    b.send(b"PUB foo 2\r\nok\r\n");
    b.ping();
    a.expect(b"MSG foo 1 2\r\nok\r\n");
}
