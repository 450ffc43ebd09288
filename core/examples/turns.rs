//! Times the engine's longest single call (one turn's share of a client)
//! for floods that are processed over several turns: PINGs from a client
//! that never reads, a burst of SUBs, a publish to 1,000 subscribers.
//! `cargo run --release -p tenet-core --example turns`

use std::time::{Duration, Instant};

use tenet_core::{ClientId, Options, Peer, Server, Time};

fn connect(server: &mut Server) -> ClientId {
    let peer = Peer {
        ip: "127.0.0.1".into(),
        port: 1,
    };
    let id = server.accept(peer, Time::ZERO);
    server.handle_read(id, b"CONNECT {\"verbose\":false}\r\n", Time::ZERO);
    id
}

/// Feeds `input` in 64 KiB reads as a runtime would (reading only while
/// the engine lets it, running the due timers between reads); returns the
/// longest call, the number of calls and the total time.
fn run(server: &mut Server, id: ClientId, input: &[u8]) -> (Duration, usize, Duration) {
    let mut now = Time::ZERO;
    let (mut worst, mut calls) = (Duration::ZERO, 0);
    let started = Instant::now();
    let mut chunks = input.chunks(64 * 1024);
    loop {
        let t = Instant::now();
        if server.can_read(id) {
            let Some(chunk) = chunks.next() else { break };
            server.handle_read(id, chunk, now);
        } else {
            now = server.poll_timeout().expect("a next turn is due").max(now);
            server.handle_timeout(now);
        }
        worst = worst.max(t.elapsed());
        calls += 1;
        // Discard what the clients were sent, as a runtime writing them would.
        while server.poll_event().is_some() {}
    }
    (worst, calls, started.elapsed())
}

fn report(what: &str, (worst, calls, total): (Duration, usize, Duration)) {
    println!("{what}: {calls} calls in {total:?}, longest {worst:?}");
}

fn main() {
    let mut server = Server::new(Options::default(), 1);
    let flood = connect(&mut server);
    report(
        "1,200,000 PINGs, PONGs never read",
        run(&mut server, flood, &b"PING\r\n".repeat(1_200_000)),
    );

    let mut server = Server::new(Options::default(), 1);
    let heavy = connect(&mut server);
    let subs: Vec<u8> = (0..1_000_000)
        .flat_map(|i| format!("SUB s.{i} {i}\r\n").into_bytes())
        .collect();
    report("1,000,000 SUBs", run(&mut server, heavy, &subs));

    let mut server = Server::new(Options::default(), 1);
    let receiver = connect(&mut server);
    let subs: Vec<u8> = (0..1_000)
        .flat_map(|i| format!("SUB fan.> {i}\r\n").into_bytes())
        .collect();
    run(&mut server, receiver, &subs);
    let publisher = connect(&mut server);
    let pubs: Vec<u8> = (0..300)
        .flat_map(|i| format!("PUB fan.{i} 1\r\nx\r\n").into_bytes())
        .collect();
    report(
        "300 publishes to 1,000 subscribers",
        run(&mut server, publisher, &pubs),
    );
}
