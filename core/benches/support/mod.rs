//! Helpers shared by the benches: the short criterion settings, and for the engine-level ones a connected client and an event drain like a runtime's.

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::hint::black_box;
use std::io::IoSlice;
use std::time::Duration;

use criterion::Criterion;
use tenet_core::{ClientId, Event, Options, Peer, Server, Time};

/// Short runs: the benches share a small machine with other jobs.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// A server with default options and a fixed seed.
pub fn server() -> Server {
    Server::new(Options::default(), 7)
}

/// Accepts a client and sends CONNECT (headers on) plus `extra` (e.g. SUBs),
/// then drains everything queued so far.
pub fn connect(server: &mut Server, port: u16, extra: &[u8]) -> ClientId {
    let id = server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port,
        },
        Time::ZERO,
    );
    server.handle_read(
        id,
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n",
        Time::ZERO,
    );
    if !extra.is_empty() {
        server.handle_read(id, extra, Time::ZERO);
    }
    pump(server);
    assert!(server.can_read(id), "client was closed during setup");
    id
}

/// Drains events the way a runtime does: every flushed byte counts as written.
/// Returns the number of bytes "written".
pub fn pump(server: &mut Server) -> usize {
    let mut written = 0;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Flush(id) => loop {
                let n = {
                    let mut slices = [IoSlice::new(&[]); 16];
                    let used = server.outbound(id, &mut slices);
                    black_box(&slices[..used]);
                    slices[..used].iter().map(|s| s.len()).sum::<usize>()
                };
                if n == 0 {
                    break;
                }
                server.handle_written(id, n, Time::ZERO);
                written += n;
            },
            Event::Close(id, reason) => panic!("client {id:?} closed: {reason:?}"),
            Event::Resume(_) | Event::Log(..) | Event::StopAccepting | Event::Exit => {}
            Event::Job(job) => server.handle_job_done(job.run(), Time::ZERO),
        }
    }
    written
}
