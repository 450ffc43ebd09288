//! `tenet-load`, the load behind `tests/bench/compare.sh`, against the real
//! tenet-mio: its figures must come from a load that really happened.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use serde_json::Value;
use tenet_tests::{free_port, TestServer, TIMEOUT};

/// Runs tenet-load with `args` and returns its `key=value` figures.
fn run(args: &[&str]) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_tenet-load"))
        .args(args)
        .output()
        .expect("tenet-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tenet-load {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn number(figures: &[(String, String)], key: &str) -> f64 {
    figures
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {figures:?}"))
        .1
        .parse()
        .expect("a number")
}

/// `/varz` of a server started with `-m`.
fn varz(http_port: u16) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", http_port)).expect("monitoring port");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
        .write_all(b"GET /varz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response");
    let (_, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    serde_json::from_str(body).expect("JSON")
}

/// A tenet-mio with monitoring on, and its monitoring port.
fn monitored_server() -> (TestServer, u16) {
    let http_port = free_port();
    let server = TestServer::start_with_args(&["-m", &http_port.to_string()]);
    (server, http_port)
}

#[test]
fn idle_connections_are_opened_and_the_servers_memory_read() {
    let (mut server, http_port) = monitored_server();
    let pid = server.pid().to_string();
    let figures = run(&[
        "idle",
        "--addr",
        &server.addr(),
        "--pid",
        &pid,
        "--conns",
        "200",
    ]);
    assert_eq!(number(&figures, "conns"), 200.0);
    assert!(number(&figures, "rss_before_kib") > 0.0);
    assert!(number(&figures, "rss_after_kib") >= number(&figures, "rss_before_kib"));
    assert!(varz(http_port)["total_connections"].as_u64() >= Some(200));
}

#[test]
fn subscriptions_are_made_and_every_delivery_counted() {
    let (mut server, http_port) = monitored_server();
    let pid = server.pid().to_string();
    let figures = run(&[
        "subs",
        "--addr",
        &server.addr(),
        "--pid",
        &pid,
        "--subs",
        "3000",
        "--subjects",
        "300",
        "--conns",
        "3",
        "--publishes",
        "500",
    ]);
    // Ten subscriptions per subject: each publish is delivered ten times.
    assert_eq!(number(&figures, "deliveries"), 5000.0);
    assert!(number(&figures, "publishes_per_sec") > 0.0);
    // The server saw exactly that traffic.
    let varz = varz(http_port);
    assert_eq!(varz["in_msgs"], 500);
    assert_eq!(varz["out_msgs"], 5000);
}
