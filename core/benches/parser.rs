//! Parser throughput (bytes/s): buffers of PUB/HPUB ops through `proto::parser::Parser`, and through `Server::handle_read` with no subscribers.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tenet_core::proto::{Op, Parser};
use tenet_core::Time;

/// Ops per buffer (about 30-150 KiB of input, a few socket reads' worth).
const OPS: usize = 1000;

/// The header block of the HPUB variants (26 bytes).
const HEADERS: &[u8] = b"NATS/1.0\r\nTrace-Id: 1234\r\n\r\n";

/// `OPS` PUBs (or HPUBs) with `payload_len`-byte payloads; every other one
/// carries a reply subject, and the subjects rotate over a few names.
fn buffer(payload_len: usize, headers: bool) -> Vec<u8> {
    const SUBJECTS: [&str; 4] = [
        "orders.eu.created",
        "metrics.host42.cpu",
        "svc.billing.invoice.req",
        "audit.login",
    ];
    let payload = vec![b'x'; payload_len];
    let mut out = Vec::new();
    for i in 0..OPS {
        let subject = SUBJECTS[i % SUBJECTS.len()];
        let reply = if i % 2 == 0 { " _INBOX.abcdef.1" } else { "" };
        let line = if headers {
            let total = HEADERS.len() + payload_len;
            format!("HPUB {subject}{reply} {} {total}\r\n", HEADERS.len())
        } else {
            format!("PUB {subject}{reply} {payload_len}\r\n")
        };
        out.extend_from_slice(line.as_bytes());
        if headers {
            out.extend_from_slice(HEADERS);
        }
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses all of `data`; returns the number of PUB/HPUB ops seen.
fn parse_all(parser: &mut Parser, data: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while let Some(op) = parser.next(data, &mut pos).expect("valid input") {
        if let Op::Pub(p) = op {
            black_box(&p);
            n += 1;
        }
    }
    n
}

const CASES: [(&str, usize, bool); 4] = [
    ("pub/16", 16, false),
    ("pub/128", 128, false),
    ("hpub/16", 16, true),
    ("hpub/128", 128, true),
];

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parser");
    for (name, payload_len, headers) in CASES {
        let data = buffer(payload_len, headers);
        let mut parser = Parser::new(4096, 1024 * 1024);
        parser.set_headers(true);
        assert_eq!(parse_all(&mut parser, &data), OPS);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_all(&mut parser, black_box(&data)))
        });
    }
    group.finish();
}

/// The whole engine: parse, account stats, sublist match (cached, empty).
fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_read_no_subs");
    for (name, payload_len, headers) in CASES {
        let data = buffer(payload_len, headers);
        let mut server = support::server();
        let client = support::connect(&mut server, 50000, b"");
        server.handle_read(client, &data, Time::ZERO);
        assert_eq!(support::pump(&mut server), 0, "nothing should be sent");
        assert_eq!(server.stats().in_msgs, OPS as u64);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                server.handle_read(client, black_box(&data), Time::ZERO);
                support::pump(&mut server)
            })
        });
        assert!(server.can_read(client));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config();
    targets = parser, engine
}
criterion_main!(benches);
