//! Times creating and dropping one client's 1,000,000 subscriptions in the
//! engine (no sockets): `cargo run --release -p tenet-core --example million_subs`.

use std::time::Instant;

use tenet_core::{CloseReason, Event, Options, Peer, Server, Time};

fn main() {
    let mut server = Server::new(Options::default(), 1);
    let peer = Peer {
        ip: "127.0.0.1".into(),
        port: 1,
    };
    let id = server.accept(peer, Time::ZERO);
    server.handle_read(id, b"CONNECT {\"verbose\":false}\r\n", Time::ZERO);
    let mut input = Vec::new();
    for i in 0..1_000_000 {
        input.extend_from_slice(format!("SUB s.{i} {i}\r\n").as_bytes());
    }
    let started = Instant::now();
    let mut worst = std::time::Duration::ZERO;
    for (n, chunk) in input.chunks(64 * 1024).enumerate() {
        let t = Instant::now();
        server.handle_read(id, chunk, Time::ZERO);
        worst = worst.max(t.elapsed());
        if t.elapsed() > std::time::Duration::from_millis(10) {
            println!(
                "read {n} (~{} subscriptions): {:?}",
                n * 64 * 1024 / 24,
                t.elapsed()
            );
        }
    }
    println!(
        "create: {:?} total, worst 64 KiB read {:?}",
        started.elapsed(),
        worst
    );
    while server.poll_event().is_some() {}
    let started = Instant::now();
    server.handle_closed(id, CloseReason::ClientClosed, Time::ZERO);
    println!("close call: {:?}", started.elapsed());
    let mut worst = std::time::Duration::ZERO;
    let mut slices = 0;
    while let Some(due) = server.poll_timeout() {
        let t = Instant::now();
        server.handle_timeout(due);
        worst = worst.max(t.elapsed());
        if t.elapsed() > std::time::Duration::from_millis(10) {
            println!("slice {slices}: {:?}", t.elapsed());
        }
        slices += 1;
        if slices > 10_000 {
            break;
        }
    }
    println!(
        "teardown: {slices} timer calls, worst {worst:?}, total {:?}",
        started.elapsed()
    );
    let mut events = 0;
    while let Some(e) = server.poll_event() {
        if !matches!(e, Event::Log(..)) {
            events += 1;
        }
    }
    println!(
        "{events} events, {} subscriptions left",
        server.num_subscriptions()
    );
}
