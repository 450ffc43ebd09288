//! Per-client limits and the graceful way out, on the real binary:
//! `max_sub_tokens`, `no_header_support`, `write_deadline`, lame duck mode
//! (`lame_duck_duration`, `lame_duck_grace_period`, SIGUSR2 and `--signal ldm`).
//! Every test here also passes against nats-server 2.9.10.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tenet_tests::{is_reference_server, run_binary, RawClient, TestServer, CONNECT_HEADERS};

#[test]
fn a_subscription_over_max_sub_tokens_is_refused_and_the_connection_stays() {
    let server = TestServer::with_config("max_sub_tokens: 3\n", &[]);
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB a.b.c 1\r\nSUB a.b.c.d 2\r\nPING\r\n");
    c.expect(b"-ERR 'Permissions Violation for Subscription to \"a.b.c.d\", too many tokens'\r\nPONG\r\n");
    c.send(b"PUB a.b.c.d 1\r\nx\r\nPUB a.b.c 1\r\ny\r\nPING\r\n");
    c.expect(b"MSG a.b.c 1 1\r\ny\r\nPONG\r\n");
}

#[test]
fn a_refused_subscription_is_logged_with_its_sid() {
    let mut server = TestServer::with_config("max_sub_tokens: 1\n", &[]);
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB a.b 7\r\nPING\r\n");
    c.expect(
        b"-ERR 'Permissions Violation for Subscription to \"a.b\", too many tokens'\r\nPONG\r\n",
    );
    // tenet adds the account after the user, as in its other violation lines.
    let line = if is_reference_server() {
        "Subscription Violation Too Many Tokens - User \"N/A\", Subject \"a.b\", SID 7"
    } else {
        "Subscription Violation Too Many Tokens - User \"N/A\", Account \"$G\", Subject \"a.b\", SID 7"
    };
    assert!(
        server.wait_for_log(line, Duration::from_secs(5)),
        "{}",
        server.logs()
    );
}

#[test]
fn without_header_support_info_says_so_and_header_clients_are_turned_away() {
    let server = TestServer::with_config("no_header_support: true\n", &[]);
    let c = server.client();
    assert_eq!(c.info()["headers"], false);
    // A client that asks for headers does not get them: HPUB is a protocol violation.
    let mut c = server.client();
    c.send(CONNECT_HEADERS);
    c.send(b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    c.expect_closed();
    // No responders needs headers: what async-nats and nats.go send is refused.
    let mut c = server.client();
    c.send(
        b"CONNECT {\"verbose\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n",
    );
    c.expect(b"-ERR 'no responders requires headers support'\r\n");
    c.expect_closed();
    // Plain clients are served as always.
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n");
    c.expect(b"MSG a 1 2\r\nhi\r\nPONG\r\n");
}

#[test]
fn with_headers_on_by_default_info_says_so() {
    let server = TestServer::start();
    assert_eq!(server.client().info()["headers"], true);
}

#[test]
fn a_subscriber_whose_socket_takes_nothing_is_closed_at_the_write_deadline() {
    let mut server = TestServer::with_config("write_deadline: \"1s\"\n", &[]);
    let mut sub = server.client();
    sub.handshake();
    sub.send(b"SUB flood 1\r\nPING\r\n");
    sub.expect_pong();
    // The subscriber never reads again: fill its socket, and the server's
    // send buffer, well below max_pending (64 MiB).
    let mut publisher = server.client();
    publisher.handshake();
    let payload = vec![b'x'; 32 * 1024];
    let message = [b"PUB flood 32768\r\n".as_slice(), &payload, b"\r\n"].concat();
    let started = Instant::now();
    let detected = "Slow Consumer Detected: WriteDeadline of 1s exceeded with ";
    while !server.wait_for_log(detected, Duration::from_millis(1)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no write deadline within 20 s:\n{}",
            server.logs()
        );
        if publisher.try_send(&message).is_err() {
            break;
        }
        // Once both sockets' buffers are surely full (well under 64 MiB), give
        // the deadline time without queueing much more.
        if started.elapsed() > Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        server.wait_for_log(detected, Duration::from_secs(10)),
        "{}",
        server.logs()
    );
    // The subscriber's connection is gone; the publisher's is not.
    sub.read_until_closed();
    publisher.ping_past_server_pings();
}

/// Two clients that take asynchronous INFOs (protocol 1, first PONG read).
fn two_clients(server: &TestServer) -> Vec<RawClient> {
    (0..2)
        .map(|_| {
            let mut c = server.client();
            c.handshake();
            c
        })
        .collect()
}

/// Checks what lame duck mode does, once entered: INFO with `ldm`, no new
/// connections, the clients closed after the grace period, then the exit.
fn lame_duck_runs_its_course(
    mut server: TestServer,
    mut clients: Vec<RawClient>,
    signalled: Instant,
) {
    for c in &mut clients {
        let line = String::from_utf8(c.read_line()).unwrap();
        assert!(
            line.starts_with("INFO {") && line.contains("\"ldm\":true"),
            "{line}"
        );
    }
    assert!(server.wait_for_log(
        "Entering lame duck mode, stop accepting new clients",
        Duration::from_secs(5)
    ));
    let addr = server.addr();
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in &mut clients {
        c.read_until_closed();
    }
    let closed = signalled.elapsed();
    assert!(
        closed >= Duration::from_millis(950),
        "closed {closed:?} after the signal, within the 1 s grace period"
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("still running after lame duck mode");
    assert!(status.success(), "{status}");
    assert!(server.logs().contains("Closing existing clients"));
}

const LAME_DUCK: &str = "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n";

#[test]
fn sigusr2_enters_lame_duck_mode() {
    let mut server = TestServer::with_config(LAME_DUCK, &[]);
    let clients = two_clients(&server);
    let signalled = Instant::now();
    server.signal(libc::SIGUSR2);
    lame_duck_runs_its_course(server, clients, signalled);
}

#[test]
fn signal_ldm_enters_lame_duck_mode() {
    let mut server = TestServer::with_config(LAME_DUCK, &[]);
    let clients = two_clients(&server);
    let pid = server.pid().to_string();
    let signalled = Instant::now();
    let (status, out) = run_binary(&["--signal", &format!("ldm={pid}")]);
    assert!(status.success(), "{out}");
    lame_duck_runs_its_course(server, clients, signalled);
}

#[test]
fn sigterm_does_not_cut_lame_duck_mode_short() {
    let mut server = TestServer::with_config(
        "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"3s\"\n",
        &[],
    );
    let mut clients = two_clients(&server);
    server.signal(libc::SIGUSR2);
    for c in &mut clients {
        assert!(String::from_utf8(c.read_line())
            .unwrap()
            .contains("\"ldm\":true"));
    }
    server.signal(libc::SIGTERM);
    // Still in the grace period: the clients stay connected.
    clients[0].expect_nothing(Duration::from_millis(500));
    assert!(server.wait_exit(Duration::from_millis(10)).is_none());
    for c in &mut clients {
        c.read_until_closed();
    }
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
}
