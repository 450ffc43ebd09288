//! Per-client limits and the server's way out, on a fake clock: `max_sub_tokens`,
//! `no_header_support`, `write_deadline` and lame duck mode.

mod support;

use std::time::Duration;

use support::Sim;
use tenet_core::{CloseReason, Options, Peer};

const QUIET: &str = r#"{"verbose":false,"pedantic":false,"protocol":1}"#;
const HEADERS: &str =
    r#"{"verbose":false,"pedantic":false,"protocol":1,"headers":true,"no_responders":true}"#;

/// A connected client past its first PONG (and the INFO with `connect_info` that follows it).
fn ready(sim: &mut Sim, connect_json: &str) -> tenet_core::ClientId {
    let c = sim.connect(connect_json);
    sim.send(c, b"PING\r\n");
    assert!(sim.take_str(c).starts_with("PONG\r\n"));
    c
}

#[test]
fn a_subscription_with_more_tokens_than_max_sub_tokens_is_refused_and_the_client_stays() {
    let mut sim = Sim::new(Options {
        max_sub_tokens: 3,
        ..Options::default()
    });
    let c = ready(&mut sim, QUIET);
    sim.send(
        c,
        b"SUB a.b.c 1\r\nSUB a.b.c.d 2\r\nSUB a.*.> 3\r\nPING\r\n",
    );
    assert_eq!(
        sim.take_str(c),
        "-ERR 'Permissions Violation for Subscription to \"a.b.c.d\", too many tokens'\r\nPONG\r\n"
    );
    assert!(sim.logs.iter().any(|l| l.ends_with(
        "Subscription Violation Too Many Tokens - User \"N/A\", Account \"$G\", Subject \"a.b.c.d\", SID 2"
    )));
    // The allowed ones were made; the refused one was not.
    let p = ready(&mut sim, QUIET);
    sim.send(p, b"PUB a.b.c 1\r\nx\r\nPUB a.b.c.d 1\r\ny\r\nPING\r\n");
    sim.send(c, b"PING\r\n");
    assert_eq!(
        sim.take_str(c),
        "MSG a.b.c 1 1\r\nx\r\nMSG a.b.c 3 1\r\nx\r\nMSG a.b.c.d 3 1\r\ny\r\nPONG\r\n"
    );
    assert_eq!(sim.server.num_subscriptions(), 2);
}

#[test]
fn without_header_support_info_says_so_hpub_closes_and_no_responders_is_refused() {
    let opts = Options {
        no_header_support: true,
        ..Options::default()
    };
    let mut sim = Sim::new(opts);
    let id = sim.server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        sim.now,
    );
    sim.pump();
    assert!(sim.take_str(id).contains("\"headers\":false"));
    // A client asking for headers does not get them: HPUB is a protocol violation.
    let c = sim.connect(r#"{"verbose":false,"pedantic":false,"protocol":1,"headers":true}"#);
    sim.send(c, b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(sim.closed.get(&c), Some(&CloseReason::ProtocolViolation));
    // No responders needs headers (async-nats and nats.go ask for both).
    let n = sim.connect(HEADERS);
    assert_eq!(
        sim.take_str(n),
        "-ERR 'no responders requires headers support'\r\n"
    );
    assert_eq!(
        sim.closed.get(&n),
        Some(&CloseReason::NoRespondersRequiresHeaders)
    );
}

#[test]
fn with_header_support_the_same_clients_are_served() {
    let mut sim = Sim::new(Options::default());
    let c = ready(&mut sim, HEADERS);
    sim.send(
        c,
        b"SUB a 1\r\nHPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
    );
    assert_eq!(
        sim.take_str(c),
        "HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n"
    );
    assert!(sim.closed.is_empty());
}

/// A subscriber whose socket takes nothing, with bytes queued for it.
fn blocked_receiver(sim: &mut Sim) -> tenet_core::ClientId {
    let sub = sim.connect(QUIET);
    sim.send(sub, b"SUB s 1\r\nPING\r\n");
    sim.take(sub);
    sim.stuck.push(sub);
    let publisher = sim.connect(QUIET);
    sim.send(publisher, b"PUB s 5\r\nhello\r\n");
    assert!(sim.server.outbound_len(sub) > 0);
    sub
}

#[test]
fn a_socket_that_takes_nothing_for_write_deadline_is_closed_as_a_slow_consumer() {
    let mut sim = Sim::new(Options {
        write_deadline: Duration::from_millis(500),
        ..Options::default()
    });
    let sub = blocked_receiver(&mut sim);
    sim.advance(Duration::from_millis(499));
    assert!(sim.closed.is_empty(), "closed before the deadline");
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.closed.get(&sub),
        Some(&CloseReason::SlowConsumerWriteDeadline)
    );
    assert_eq!(
        CloseReason::SlowConsumerWriteDeadline.as_str(),
        "Slow Consumer (Write Deadline)"
    );
    assert_eq!(sim.server.stats().slow_consumers, 1);
    assert!(
        sim.logs.iter().any(|l| l.ends_with(
            "Slow Consumer Detected: WriteDeadline of 500ms exceeded with 1 chunks of 18 total bytes."
        )),
        "{:#?}",
        sim.logs
    );
    assert_eq!(sim.take(sub), b"", "nothing more is written to it");
}

#[test]
fn progress_restarts_the_write_deadline_and_an_empty_queue_stops_it() {
    let mut sim = Sim::new(Options {
        write_deadline: Duration::from_millis(500),
        ..Options::default()
    });
    let sub = blocked_receiver(&mut sim);
    // The socket takes one byte after 400 ms: the clock starts again.
    sim.advance(Duration::from_millis(400));
    sim.server.handle_written(sub, 1, sim.now);
    sim.advance(Duration::from_millis(499));
    assert!(
        sim.closed.is_empty(),
        "closed although the socket took a byte"
    );
    // Then it drains: no deadline at all, however long it stays idle.
    sim.stuck.clear();
    sim.drain(sub);
    sim.advance(Duration::from_secs(60));
    assert!(sim.closed.is_empty());
    assert_eq!(sim.server.stats().slow_consumers, 0);
}

#[test]
fn a_reload_changes_the_write_deadline_of_a_waiting_client() {
    let mut sim = Sim::new(Options {
        write_deadline: Duration::from_secs(10),
        ..Options::default()
    });
    let sub = blocked_receiver(&mut sim);
    let shorter = Options {
        write_deadline: Duration::from_secs(1),
        ..Options::default()
    };
    sim.server
        .reload(shorter, tenet_core::Auth::none(), sim.now)
        .expect("write_deadline changes live");
    // The first check (at the old deadline) uses the new, shorter one.
    sim.advance(Duration::from_secs(10));
    assert_eq!(
        sim.closed.get(&sub),
        Some(&CloseReason::SlowConsumerWriteDeadline)
    );
}

#[test]
fn options_that_cannot_change_live_fail_the_reload() {
    for changed in [
        Options {
            max_sub_tokens: 5,
            ..Options::default()
        },
        Options {
            no_header_support: true,
            ..Options::default()
        },
        Options {
            lame_duck_duration: Duration::from_secs(60),
            ..Options::default()
        },
        Options {
            lame_duck_grace_period: Duration::from_secs(1),
            ..Options::default()
        },
    ] {
        let mut sim = Sim::new(Options::default());
        let error = sim
            .server
            .reload(changed, tenet_core::Auth::none(), sim.now)
            .unwrap_err();
        assert!(
            error.starts_with("config reload not supported for "),
            "{error}"
        );
    }
}

fn lame_duck_options() -> Options {
    Options {
        lame_duck_duration: Duration::from_secs(30),
        lame_duck_grace_period: Duration::from_secs(2),
        ..Options::default()
    }
}

#[test]
fn lame_duck_mode_stops_accepting_tells_clients_and_closes_them_over_the_duration() {
    let mut sim = Sim::new(lame_duck_options());
    let clients: Vec<_> = (0..3).map(|_| sim.connect(QUIET)).collect();
    // The first PONG makes a client one that takes asynchronous INFOs.
    for &c in &clients {
        sim.send(c, b"PING\r\n");
        sim.take(c);
    }
    let silent = sim.connect(r#"{"verbose":false,"pedantic":false}"#);
    sim.server.enter_lame_duck(sim.now);
    sim.pump();
    assert!(sim.stopped_accepting);
    assert!(sim.server.in_lame_duck());
    assert!(sim
        .logs
        .iter()
        .any(|l| l == "Entering lame duck mode, stop accepting new clients"));
    for &c in &clients {
        let info = sim.take_str(c);
        assert!(
            info.starts_with("INFO {") && info.contains(",\"ldm\":true"),
            "{info}"
        );
        assert!(!info.contains("nonce") && !info.contains("connect_info"));
    }
    assert_eq!(sim.take_str(silent), "", "protocol 0 clients get no INFO");
    // Nothing closes during the grace period.
    sim.advance(Duration::from_millis(1_999));
    assert!(sim.closed.is_empty());
    sim.advance(Duration::from_millis(1));
    assert!(sim.logs.iter().any(|l| l == "Closing existing clients"));
    assert_eq!(sim.closed.len(), 1, "the first client closes at once");
    // The other three follow, each within a second (28 s / 4 clients, capped at 1 s).
    let mut closes = vec![sim.now];
    while sim.closed.len() < 4 {
        let before = sim.closed.len();
        sim.advance(Duration::from_millis(10));
        if sim.closed.len() > before {
            closes.push(sim.now);
        }
        assert!(closes.len() < 5 && sim.now.saturating_since(closes[0]) < Duration::from_secs(4));
    }
    for pair in closes.windows(2) {
        let gap = pair[1].saturating_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(490) && gap <= Duration::from_millis(1_010),
            "gap {gap:?}"
        );
    }
    assert!(sim
        .closed
        .values()
        .all(|r| *r == CloseReason::ServerShutdown));
    assert!(sim.exited, "the engine asks the runtime to exit");
    assert_eq!(sim.server.num_clients(), 0);
}

#[test]
fn lame_duck_mode_without_clients_exits_at_once_and_a_second_request_changes_nothing() {
    let mut sim = Sim::new(lame_duck_options());
    sim.server.enter_lame_duck(sim.now);
    sim.pump();
    assert!(sim.stopped_accepting && sim.exited);
    let entered = sim
        .logs
        .iter()
        .filter(|l| l.starts_with("Entering lame duck mode"))
        .count();
    sim.server.enter_lame_duck(sim.now);
    sim.pump();
    assert_eq!(
        sim.logs
            .iter()
            .filter(|l| l.starts_with("Entering lame duck mode"))
            .count(),
        entered
    );
}

#[test]
fn a_connection_accepted_in_lame_duck_mode_is_closed() {
    let mut sim = Sim::new(lame_duck_options());
    let c = sim.connect(QUIET);
    sim.server.enter_lame_duck(sim.now);
    sim.pump();
    let late = sim.server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port: 2,
        },
        sim.now,
    );
    sim.pump();
    assert_eq!(sim.closed.get(&late), Some(&CloseReason::ServerShutdown));
    assert!(!sim.closed.contains_key(&c));
}
