//! No client stalls the others: while a trigger runs (expensive logins, ...),
//! a probe client measures its PING round trips. The figures are printed (the
//! README quotes them side by side with nats-server's, from a release build:
//! `cargo test --release -p tenet-tests --test stall -- --nocapture`); a test
//! fails only on a gross stall (a round trip over 1 s, 3 s in a debug build),
//! since timings on a shared machine are not for asserting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tenet_tests::{RawClient, TestServer};

/// A gross stall: the event loop held by one client's input. A debug build
/// (what `cargo test` makes) does the same work several times slower.
const GROSS: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(3)
} else {
    Duration::from_secs(1)
};

/// One trigger at a time: each measures how long others wait, which a
/// second trigger on the same machine would distort.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client that sends PINGs one after another, and their round trips.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<Duration>>,
}

impl Probe {
    fn start(server: &TestServer, connect: &[u8]) -> Probe {
        let mut c = server.client();
        c.send(connect);
        c.send(b"PING\r\n");
        c.expect_pong();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut rtts = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let sent = Instant::now();
                c.ping_past_server_pings();
                rtts.push(sent.elapsed());
                thread::sleep(Duration::from_millis(5));
            }
            rtts
        });
        Probe { stop, thread }
    }

    /// Stops and returns (worst, median) round trip.
    fn finish(self) -> (Duration, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let mut rtts = self.thread.join().expect("probe");
        rtts.sort();
        assert!(!rtts.is_empty(), "the probe measured nothing");
        (rtts[rtts.len() - 1], rtts[rtts.len() / 2])
    }
}

#[test]
fn wrong_bcrypt_passwords_do_not_stall_others() {
    let _serial = one_at_a_time();
    // Cost 10, as `nats server passwd` makes them: tens of ms each.
    let hash = bcrypt::hash("right", 10).expect("hash");
    let config = format!(
        "authorization {{ users = [ {{user: joe, password: \"{hash}\"}}, {{user: probe, password: p}} ] }}\n"
    );
    let server = TestServer::with_config(&config, &[]);
    let probe = Probe::start(
        &server,
        b"CONNECT {\"verbose\":false,\"user\":\"probe\",\"pass\":\"p\"}\r\n",
    );
    let started = Instant::now();
    let port = server.port();
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..5 {
                    let mut c = RawClient::connect(port);
                    c.send(b"CONNECT {\"verbose\":false,\"user\":\"joe\",\"pass\":\"wrong\"}\r\n");
                    c.expect(b"-ERR 'Authorization Violation'\r\n");
                }
            })
        })
        .collect();
    for attacker in attackers {
        attacker.join().expect("attacker");
    }
    let took = started.elapsed();
    let (worst, median) = probe.finish();
    println!(
        "40 wrong bcrypt logins from 8 connections took {took:?}; probe round trip worst {worst:?}, median {median:?}"
    );
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

/// `count` SUB lines `SUB s.<n> <n>`, one after another.
fn subscriptions(count: usize) -> Vec<u8> {
    let mut lines = Vec::with_capacity(count * 24);
    for n in 0..count {
        lines.extend_from_slice(format!("SUB s.{n} {n}\r\n").as_bytes());
    }
    lines
}

const MILLION: usize = 1_000_000;

#[test]
fn creating_a_million_subscriptions_does_not_stall_others() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    let mut heavy = server.client();
    heavy.handshake();
    let lines = subscriptions(MILLION);
    let started = Instant::now();
    heavy.send(&lines);
    heavy.ping_past_server_pings();
    let took = started.elapsed();
    let (worst, median) = probe.finish();
    println!(
        "creating {MILLION} subscriptions took {took:?}; probe round trip worst {worst:?}, median {median:?}"
    );
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

#[test]
fn closing_a_million_subscriptions_does_not_stall_others() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let mut heavy = server.client();
    heavy.handshake();
    heavy.send(subscriptions(MILLION));
    heavy.ping_past_server_pings();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    thread::sleep(Duration::from_millis(100));
    heavy.abort();
    // The teardown has no end visible on the wire: watch long enough for
    // it to finish on either server (nats-server: ~0.2 s, tenet: ~1 s).
    thread::sleep(Duration::from_secs(3));
    let (worst, median) = probe.finish();
    println!(
        "closing {MILLION} subscriptions: probe round trip worst {worst:?}, median {median:?}"
    );
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

#[test]
fn publishing_into_deep_wildcards_does_not_stall_others() {
    let _serial = one_at_a_time();
    // 1,000 subscriptions of 12 tokens: the first ten spell the number in
    // binary (`*` for 1, `a` for 0), so `a.a.a.a.a.a.a.a.a.a.<x>.<y>`
    // reaches every one of them through a different path of the trie.
    let server = TestServer::start();
    let mut subscriber = server.client();
    subscriber.handshake();
    let mut subs = Vec::new();
    for n in 0..1000u32 {
        let tokens: Vec<&str> = (0..10)
            .map(|bit| if n >> bit & 1 == 1 { "*" } else { "a" })
            .collect();
        subs.extend_from_slice(format!("SUB {}.*.* {n}\r\n", tokens.join(".")).as_bytes());
    }
    subscriber.send(&subs);
    subscriber.ping();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    let port = server.port();
    let reader = thread::spawn(move || subscriber.read_msgs(300 * 1000));
    let started = Instant::now();
    let mut publisher = RawClient::connect(port);
    publisher.handshake();
    let mut pubs = Vec::new();
    for n in 0..300 {
        // A subject of its own each time: no cached match helps.
        pubs.extend_from_slice(format!("PUB a.a.a.a.a.a.a.a.a.a.{n}.x 1\r\nx\r\n").as_bytes());
    }
    publisher.send(&pubs);
    publisher.ping_past_server_pings();
    let delivered = reader.join().expect("reader");
    let took = started.elapsed();
    let (worst, median) = probe.finish();
    println!(
        "300 publishes into 1,000 deep wildcards ({delivered} messages) took {took:?}; probe round trip worst {worst:?}, median {median:?}"
    );
    assert_eq!(delivered, 300 * 1000);
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

#[test]
fn a_ping_flood_does_not_stall_others() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    let port = server.port();
    let started = Instant::now();
    let flooders: Vec<_> = (0..50)
        .map(|_| {
            thread::spawn(move || {
                let mut c = RawClient::connect(port);
                c.send(b"CONNECT {\"verbose\":false}\r\n");
                // Written without reading the PONGs: they pile up in the
                // server until it stops reading or cuts the client.
                let _ = c.try_send(b"PING\r\n".repeat(200_000));
            })
        })
        .collect();
    for flooder in flooders {
        flooder.join().expect("flooder");
    }
    let took = started.elapsed();
    let (worst, median) = probe.finish();
    println!(
        "50 connections sending 200,000 PINGs each took {took:?}; probe round trip worst {worst:?}, median {median:?}"
    );
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

#[test]
fn publishers_that_never_pause_do_not_stall_others() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut c = RawClient::connect(port);
                c.send(b"CONNECT {\"verbose\":false}\r\n");
                let chunk = b"PUB flood 16\r\n0123456789abcdef\r\n".repeat(2_000);
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    c.send(&chunk);
                    sent += 2_000;
                }
                sent
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let sent: usize = publishers
        .into_iter()
        .map(|p| p.join().expect("publisher"))
        .sum();
    let (worst, median) = probe.finish();
    println!(
        "2 connections publishing without pause for 2 s ({sent} messages); probe round trip worst {worst:?}, median {median:?}"
    );
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
}

#[test]
fn a_push_consumer_replaying_a_large_stream_does_not_stall_others() {
    let _serial = one_at_a_time();
    let dir = std::env::temp_dir().join(format!("tenet-stall-js-{}", std::process::id()));
    let server = TestServer::start_with_args(&["-js", "-sd", dir.to_str().expect("utf-8")]);
    let mut admin = server.client();
    admin.handshake();
    let stream = r#"{"name":"S","subjects":["s"],"storage":"memory"}"#;
    admin.send(
        format!(
            "PUB $JS.API.STREAM.CREATE.S _INBOX.a {}\r\n{stream}\r\n",
            stream.len()
        )
        .as_bytes(),
    );
    let count = 100_000;
    let payload = "x".repeat(100);
    let mut pubs = Vec::new();
    for _ in 0..count {
        pubs.extend_from_slice(format!("PUB s 100\r\n{payload}\r\n").as_bytes());
    }
    let publishing = Instant::now();
    admin.send(&pubs);
    admin.ping_past_server_pings();
    println!("{count} messages stored in {:?}", publishing.elapsed());
    let mut subscriber = server.client();
    subscriber.handshake();
    subscriber.send(b"SUB d 1\r\n");
    subscriber.ping();
    let probe = Probe::start(&server, b"CONNECT {\"verbose\":false}\r\n");
    let started = Instant::now();
    // The consumer starts with the whole stream to deliver.
    let consumer = r#"{"stream_name":"S","config":{"durable_name":"c","deliver_subject":"d","ack_policy":"none"}}"#;
    admin.send(
        format!(
            "PUB $JS.API.CONSUMER.CREATE.S.c _INBOX.a {}\r\n{consumer}\r\n",
            consumer.len()
        )
        .as_bytes(),
    );
    let delivered = subscriber.read_msgs(count);
    let took = started.elapsed();
    let (worst, median) = probe.finish();
    println!(
        "a push consumer delivering {delivered} stored messages took {took:?}; probe round trip worst {worst:?}, median {median:?}"
    );
    assert_eq!(delivered, count);
    assert!(worst < GROSS, "a probe PING waited {worst:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
