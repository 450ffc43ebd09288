//! The server binary from the outside: flags, exit codes, log lines and signals.

use std::process::ExitStatus;
use std::time::Duration;

use tenet_tests::{
    is_reference_server, run_binary, runtime_binary_name, server_binary, skip_on_reference,
    RawClient, TestServer,
};

/// True if `text` contains something shaped like a version number (`1.2.3`).
fn has_version_number(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 3 && parts.iter().all(|p| !p.is_empty())
        })
}

#[test]
fn help_prints_usage_and_exits_0() {
    for flag in ["-h", "--help"] {
        let (status, text) = run_binary(&[flag]);
        assert_eq!(status.code(), Some(0), "{flag}: {text}");
        assert!(text.contains("Usage:"), "{flag}: {text}");
        assert!(text.contains("-p, --port"), "{flag}: {text}");
        assert!(text.contains("-a, --addr"), "{flag}: {text}");
    }
}

#[test]
fn version_prints_a_version_and_exits_0() {
    for flag in ["-v", "--version"] {
        let (status, text) = run_binary(&[flag]);
        assert_eq!(status.code(), Some(0), "{flag}: {text}");
        assert!(has_version_number(&text), "{flag}: no version in {text:?}");
        assert!(!text.contains("Usage"), "{flag}: {text}");
    }
}

#[test]
fn unknown_flag_is_named_and_fails() {
    let (status, text) = run_binary(&["--bogus"]);
    assert!(
        text.contains("bogus"),
        "the message does not name the flag: {text}"
    );
    assert!(text.contains("flag provided but not defined"), "{text}");
    if is_reference_server() {
        println!(
            "note: nats-server 2.9.10 exits {status} after an unknown flag; tenet must exit 1"
        );
    } else {
        assert_eq!(status.code(), Some(1), "{text}");
    }
}

#[test]
fn bad_port_fails() {
    let (status, text) = run_binary(&["-p", "70000"]);
    assert!(!status.success(), "-p 70000 exited {status}: {text}");
}

#[test]
fn random_port_is_logged_and_served() {
    let mut server = TestServer::start_with_exact_args(&["-a", "127.0.0.1", "-p", "-1"]);
    let port = server.port();
    assert_ne!(port, 4222);
    let logs = server.logs();
    assert!(
        logs.contains(&format!(
            "Listening for client connections on 127.0.0.1:{port}"
        )),
        "{logs}"
    );
    let mut c = RawClient::connect(port);
    assert_eq!(c.info()["port"], port, "INFO reports the bound port");
    c.handshake();
}

#[test]
fn startup_logs_say_ready() {
    let mut server = TestServer::start();
    let port = server.port();
    assert!(server.wait_for_log("[INF] Server is ready", Duration::from_secs(5)));
    let logs = server.logs();
    let listening = logs
        .lines()
        .find(|l| l.contains("Listening for client connections on"))
        .unwrap_or_else(|| panic!("no listening line: {logs}"));
    assert!(listening.contains("[INF]"), "{listening}");
    assert!(
        listening.ends_with(&format!("127.0.0.1:{port}")),
        "{listening}"
    );
    // Without -D/-V there are no debug or trace lines, even with a client.
    let mut c = server.client();
    c.handshake();
    drop(c);
    let logs = server.logs();
    assert!(!logs.contains("[TRC]") && !logs.contains("[DBG]"), "{logs}");
}

#[test]
fn server_name_flag_is_reported_in_info() {
    let server = TestServer::start_with_args(&["-n", "tenet-test-1"]);
    let c = server.client();
    assert_eq!(c.info()["server_name"], "tenet-test-1");
    assert_ne!(c.info()["server_id"], "tenet-test-1");
}

#[test]
fn trace_flag_logs_client_ops() {
    let mut server = TestServer::start_with_args(&["-DV"]);
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n");
    c.expect(b"MSG foo 1 2\r\nhi\r\n");
    c.ping();
    // nats-server's trace format: "<<- [OP args]" for what the client sent.
    for op in [
        "<<- [SUB foo 1]",
        "<<- [PUB foo 2]",
        "<<- [UNSUB 1]",
        "<<- [PING]",
    ] {
        assert!(
            server.wait_for_log(op, Duration::from_secs(5)),
            "no trace of {op}:\n{}",
            server.logs()
        );
    }
    let logs = server.logs();
    let sub = logs
        .lines()
        .find(|l| l.contains("<<- [SUB foo 1]"))
        .unwrap();
    assert!(sub.contains("[TRC]"), "{sub}");
    assert!(logs.contains("[DBG]"), "-D gives debug lines: {logs}");
}

#[test]
fn trace_flag_logs_what_the_server_sends() {
    let mut server = TestServer::start_with_args(&["-V"]);
    let mut c = server.client();
    c.handshake();
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
    c.expect(b"MSG foo 1 2\r\nhi\r\n");
    c.ping();
    // nats-server traces outbound protocol as "->> [OP args]" and payloads as MSG_PAYLOAD.
    for line in [
        "->> [PONG]",
        "->> [MSG foo 1 2]",
        "<<- MSG_PAYLOAD: [\"hi\"]",
    ] {
        assert!(
            server.wait_for_log(line, Duration::from_secs(5)),
            "no trace of {line}:\n{}",
            server.logs()
        );
    }
}

/// Sends `signal` to a server with a connected client; it must exit promptly.
fn exits_on(signal: i32) -> ExitStatus {
    let mut server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    server.signal(signal);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("server still running 5 s after the signal");
    // The client's connection went with it.
    c.read_until_closed();
    status
}

#[test]
fn sigterm_exits_cleanly() {
    let status = exits_on(libc::SIGTERM);
    if is_reference_server() {
        println!("note: nats-server 2.9.10 exits {status} on SIGTERM; tenet must exit 0");
    } else {
        assert_eq!(status.code(), Some(0), "SIGTERM: {status}");
    }
}

#[test]
fn sigint_exits_cleanly() {
    let status = exits_on(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "SIGINT: {status}");
}

#[test]
fn each_suite_runs_the_runtime_it_is_named_for() {
    if is_reference_server() {
        return;
    }
    // `<suite>` targets drive tenet-mio and `<suite>_async_std` targets tenet-async-std.
    let (status, out) = run_binary(&["-v"]);
    assert!(status.success());
    assert!(
        out.starts_with(&format!("{}: v", runtime_binary_name())),
        "{out}"
    );
    assert!(server_binary().ends_with(runtime_binary_name()));
}

/// Runs the binary with `args`, which must fail at start-up: exit status 1
/// and one `[FTL]` line starting with `expected`, as nats-server's Fatalf.
fn fails_fatally(args: &[&str], expected: &str) {
    let (status, text) = run_binary(args);
    assert_eq!(status.code(), Some(1), "{text}");
    let fatal: Vec<&str> = text.lines().filter(|l| l.contains("[FTL]")).collect();
    assert_eq!(fatal.len(), 1, "{text}");
    assert!(fatal[0].contains(&format!("[FTL] {expected}")), "{text}");
    assert!(!text.contains("[ERR]"), "{text}");
}

#[test]
fn a_port_in_use_is_fatal() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port().to_string();
    fails_fatally(
        &["-a", "127.0.0.1", "-p", &port],
        &format!("Error listening on port: 127.0.0.1:{port}, "),
    );
    // The monitoring port too.
    fails_fatally(
        &["-a", "127.0.0.1", "-p", "-1", "-m", &port],
        "Can't start monitoring: can't listen to the monitor port: ",
    );
}

#[test]
fn a_pid_file_that_cannot_be_written_is_fatal() {
    fails_fatally(
        &[
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-P",
            "/nonexistent-dir/x.pid",
        ],
        "Could not write pidfile: ",
    );
}

#[test]
fn a_missing_configuration_file_is_named_once() {
    let path = std::env::temp_dir().join(format!("tenet-missing-{}.conf", std::process::id()));
    let path = path.to_string_lossy().into_owned();
    let (status, text) = run_binary(&["-c", &path]);
    assert_eq!(status.code(), Some(1), "{text}");
    assert_eq!(text.matches(path.as_str()).count(), 1, "{text}");
    if !is_reference_server() {
        assert_eq!(
            text,
            format!(
                "{}: cannot read configuration file {path:?}: No such file or directory (os error 2)\n",
                runtime_binary_name()
            )
        );
    }
}

#[test]
fn a_fatal_line_is_critical_in_syslog() {
    // nats-server writes the line as `crit` too, but its syslog logger's
    // Fatalf does not exit: 2.9.10 goes on running without a listener.
    if skip_on_reference("nats-server keeps running after a fatal line sent to syslog") {
        return;
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let syslog = format!("udp://{}", udp.local_addr().unwrap());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, text) = run_binary(&["-a", "127.0.0.1", "-p", &port, "-r", &syslog]);
    assert_eq!(status.code(), Some(1), "{text}");
    let got = tenet_tests::datagrams_until(&udp, "Error listening on port");
    // nats-server's syslog logger writes Fatalf as `crit` (2); `kern` is 0.
    assert!(got.last().unwrap().starts_with("<2>"), "{got:#?}");
}
