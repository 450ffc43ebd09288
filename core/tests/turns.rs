//! One client's input costs others at most a turn's share of the loop: a
//! flood of PINGs, a burst of SUBs or a publish reaching many subscribers is
//! processed over several turns (each a timer due at once), with everyone
//! else served in between, and nothing lost or reordered.

mod support;

use support::Sim;
use tenet_core::Options;

const QUIET: &str = r#"{"verbose":false,"pedantic":false}"#;

/// Runs the one timer due next (one turn of the loop); false if none is due soon.
fn one_turn(sim: &mut Sim) -> bool {
    match sim.server.poll_timeout() {
        Some(due) if due <= sim.now + std::time::Duration::from_micros(1) => {
            sim.now = sim.now.max(due);
            sim.server.handle_timeout(sim.now);
            sim.pump();
            true
        }
        _ => false,
    }
}

/// Hands bytes to the engine as a runtime read would, without turning the loop.
fn read(sim: &mut Sim, id: tenet_core::ClientId, bytes: &[u8]) {
    sim.server.handle_read(id, bytes, sim.now);
    sim.pump();
}

#[test]
fn a_ping_flood_is_answered_over_several_turns_with_others_served_between() {
    let mut sim = Sim::new(Options::default());
    let flood = sim.connect(QUIET);
    let other = sim.connect(QUIET);
    read(&mut sim, flood, &b"PING\r\n".repeat(100_000));
    let first = sim.take(flood).len() / 6;
    assert!(
        first > 0 && first < 100_000,
        "{first} PONGs in the first turn"
    );
    assert!(!sim.server.can_read(flood), "not read while input is held");
    // More input meanwhile is kept behind what is held.
    read(&mut sim, flood, b"SUB late 1\r\nPUB late 3\r\nend\r\n");
    // Another client is answered before the flood's next turn.
    read(&mut sim, other, b"PING\r\n");
    assert_eq!(sim.take_str(other), "PONG\r\n");
    let mut turns = 1;
    while one_turn(&mut sim) {
        turns += 1;
        read(&mut sim, other, b"PING\r\n");
        assert_eq!(sim.take_str(other), "PONG\r\n", "served between turns");
    }
    assert!(turns > 2, "{turns} turns");
    let got = sim.take_str(flood);
    assert_eq!(
        got.matches("PONG").count() + first,
        100_000,
        "every PING answered"
    );
    assert!(got.ends_with("PONG\r\nMSG late 1 3\r\nend\r\n"), "in order");
    assert!(sim.server.can_read(flood));
    assert!(
        sim.resumed.contains(&flood),
        "the runtime is told to read again"
    );
}

#[test]
fn a_burst_of_subscriptions_is_made_over_several_turns() {
    let mut sim = Sim::new(Options::default());
    let heavy = sim.connect(QUIET);
    let subs: String = (0..20_000).map(|i| format!("SUB s.{i} {i}\r\n")).collect();
    read(&mut sim, heavy, subs.as_bytes());
    let first = sim.server.num_subscriptions();
    assert!(
        first > 0 && first < 20_000,
        "{first} made in the first turn"
    );
    while one_turn(&mut sim) {}
    assert_eq!(sim.server.num_subscriptions(), 20_000);
    // All of them work.
    let publisher = sim.connect(QUIET);
    sim.send(publisher, b"PUB s.19999 1\r\nx\r\nPUB s.0 1\r\ny\r\n");
    assert_eq!(
        sim.take_str(heavy),
        "MSG s.19999 19999 1\r\nx\r\nMSG s.0 0 1\r\ny\r\n"
    );
}

#[test]
fn a_huge_fan_out_is_delivered_over_several_turns_in_order() {
    let mut sim = Sim::new(Options::default());
    let receiver = sim.connect(QUIET);
    let subs: String = (0..1_000).map(|i| format!("SUB fan.> {i}\r\n")).collect();
    sim.send(receiver, subs.as_bytes());
    let publisher = sim.connect(QUIET);
    let pubs: String = (0..100)
        .map(|i| format!("PUB fan.{i} 1\r\nx\r\n"))
        .collect();
    read(&mut sim, publisher, pubs.as_bytes());
    let mut turns = 1;
    while one_turn(&mut sim) {
        turns += 1;
    }
    assert!(turns > 2, "{turns} turns for 100,000 deliveries");
    let got = sim.take_str(receiver);
    let msgs: Vec<&str> = got.lines().filter(|l| l.starts_with("MSG ")).collect();
    assert_eq!(msgs.len(), 100_000);
    // Publish order is kept: every message of fan.N before any of fan.N+1.
    let subjects: Vec<usize> = msgs
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap()[4..].parse().unwrap())
        .collect();
    assert!(subjects.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn ordinary_traffic_never_waits_for_a_next_turn() {
    // A 64 KiB read of small publishes, each reaching one subscriber.
    let mut sim = Sim::new(Options::default());
    let receiver = sim.connect(QUIET);
    sim.send(receiver, b"SUB bench 1\r\n");
    let publisher = sim.connect(QUIET);
    let one = b"PUB bench 16\r\n0123456789abcdef\r\n";
    let pubs = one.repeat(64 * 1024 / one.len());
    read(&mut sim, publisher, &pubs);
    assert!(sim.server.can_read(publisher));
    assert_eq!(
        sim.server
            .poll_timeout()
            .filter(|&t| t <= sim.now + std::time::Duration::from_micros(1)),
        None
    );
    assert_eq!(
        sim.take(receiver).len(),
        pubs.len() / one.len() * b"MSG bench 1 16\r\n0123456789abcdef\r\n".len()
    );
}

#[test]
fn a_closed_client_with_held_input_is_simply_gone() {
    let mut sim = Sim::new(Options::default());
    let flood = sim.connect(QUIET);
    read(&mut sim, flood, &b"PING\r\n".repeat(100_000));
    assert!(!sim.take(flood).is_empty());
    sim.disconnect(flood);
    while one_turn(&mut sim) {}
    assert_eq!(sim.server.num_clients(), 0);
    assert!(
        sim.take(flood).is_empty(),
        "nothing more for a closed client"
    );
    assert!(!sim.resumed.contains(&flood));
}
