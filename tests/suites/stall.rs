//! No client stalls the others: while a trigger runs (expensive logins, ...),
//! a probe client measures its PING round trips. The figures are printed (the
//! README quotes them side by side with nats-server's); a test fails only on
//! a gross stall (a round trip over 1 s), since timings on a shared machine
//! are not for asserting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tenet_tests::{RawClient, TestServer};

/// A gross stall: the event loop held by one client's input.
const GROSS: Duration = Duration::from_secs(1);

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
