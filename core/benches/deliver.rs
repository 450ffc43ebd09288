//! Per-message delivery cost through the engine: a PUB (HPUB) read from a publisher, matched, encoded as MSG (HMSG) into one subscriber's outbound queue, and flushed.
//!
//! The MSG/HMSG encoding is private to `Server`, so it is measured end to end:
//! `handle_read` of the publisher's bytes, then the events drained with
//! `outbound` + `handle_written` as a runtime would.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tenet_core::Time;

/// The header block of the HPUB variants (26 bytes).
const HEADERS: &[u8] = b"NATS/1.0\r\nTrace-Id: 1234\r\n\r\n";

/// Messages per read in the batched variants.
const BATCH: usize = 64;

fn publish(payload_len: usize, headers: bool) -> Vec<u8> {
    let mut out = if headers {
        let total = HEADERS.len() + payload_len;
        format!("HPUB orders.eu.created {} {total}\r\n", HEADERS.len()).into_bytes()
    } else {
        format!("PUB orders.eu.created {payload_len}\r\n").into_bytes()
    };
    if headers {
        out.extend_from_slice(HEADERS);
    }
    out.extend(std::iter::repeat_n(b'x', payload_len));
    out.extend_from_slice(b"\r\n");
    out
}

fn deliver(c: &mut Criterion) {
    let mut group = c.benchmark_group("deliver");
    for (kind, headers) in [("msg", false), ("hmsg", true)] {
        for payload_len in [16, 128] {
            let one = publish(payload_len, headers);
            for (mode, count) in [("single", 1), ("batch64", BATCH)] {
                let data = one.repeat(count);
                let mut server = support::server();
                let _sub = support::connect(&mut server, 50001, b"SUB orders.eu.created 1\r\n");
                let publisher = support::connect(&mut server, 50000, b"");
                // Check once that each PUB becomes one MSG/HMSG of the expected size.
                let header_part = if headers { HEADERS.len() } else { 0 };
                let line = if headers {
                    format!(
                        "HMSG orders.eu.created 1 {header_part} {}\r\n",
                        header_part + payload_len
                    )
                } else {
                    format!("MSG orders.eu.created 1 {payload_len}\r\n")
                };
                server.handle_read(publisher, &data, Time::ZERO);
                let written = support::pump(&mut server);
                assert_eq!(
                    written,
                    count * (line.len() + header_part + payload_len + 2)
                );
                assert_eq!(server.stats().out_msgs, count as u64);

                group.throughput(Throughput::Elements(count as u64));
                group.bench_function(format!("{kind}/{payload_len}/{mode}"), |b| {
                    b.iter(|| {
                        server.handle_read(publisher, std::hint::black_box(&data), Time::ZERO);
                        support::pump(&mut server)
                    })
                });
                assert!(server.can_read(publisher));
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config();
    targets = deliver
}
criterion_main!(benches);
