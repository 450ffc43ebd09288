//! Checks `proto::Parser`: no panic, bounded carry-over buffer, and the same ops/errors however the input is split.
//!
//! Input layout: byte 0 flags (bit 0: headers allowed), bytes 1-2 max control
//! line (LE, 1..=4096), bytes 3-4 max payload (LE, 0..=65535), byte 5 number of
//! split points n (mod 17), then n little-endian u16 split offsets, then the
//! protocol bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenet_core::proto::{Op, ParseError, Parser};

/// Slack allowed over `max_control_line + max_payload` in the carry-over buffer
/// (keyword, separators, CRLFs).
const SLACK: usize = 32;

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Connect(Vec<u8>),
    Info(Vec<u8>),
    Pub {
        subject: Vec<u8>,
        reply: Option<Vec<u8>>,
        header_size_token: Option<Vec<u8>>,
        size_token: Vec<u8>,
        header_len: usize,
        payload: Vec<u8>,
    },
    Sub {
        subject: Vec<u8>,
        queue: Option<Vec<u8>>,
        sid: Vec<u8>,
    },
    Unsub {
        sid: Vec<u8>,
        max: Option<u64>,
    },
    Ping,
    Pong,
    Ok,
    Err(Vec<u8>),
    Error(ParseError),
}

fn own(op: Op<'_>) -> Owned {
    match op {
        Op::Connect(j) => Owned::Connect(j.to_vec()),
        Op::Info(j) => Owned::Info(j.to_vec()),
        Op::Pub(p) => Owned::Pub {
            subject: p.subject.to_vec(),
            reply: p.reply.map(<[u8]>::to_vec),
            header_size_token: p.header_size_token.map(<[u8]>::to_vec),
            size_token: p.size_token.to_vec(),
            header_len: p.header_len,
            payload: p.payload.to_vec(),
        },
        Op::Sub {
            subject,
            queue,
            sid,
        } => Owned::Sub {
            subject: subject.to_vec(),
            queue: queue.map(<[u8]>::to_vec),
            sid: sid.to_vec(),
        },
        Op::Unsub { sid, max } => Owned::Unsub {
            sid: sid.to_vec(),
            max,
        },
        Op::Ping => Owned::Ping,
        Op::Pong => Owned::Pong,
        Op::Ok => Owned::Ok,
        Op::Err(m) => Owned::Err(m.to_vec()),
    }
}

/// Feeds `chunks` in order; returns the ops and the error that ended parsing, if any.
fn run(parser: &mut Parser, chunks: &[&[u8]], bound: usize) -> Vec<Owned> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut pos = 0;
        loop {
            let before = pos;
            let res = parser.next(chunk, &mut pos).map(|o| o.map(own));
            assert!(pos >= before && pos <= chunk.len(), "pos out of range");
            // After an error the connection is closed and the buffer dropped,
            // so the bound applies to successful calls only.
            if res.is_ok() {
                assert!(
                    parser.buffered() <= bound,
                    "buffered {} > bound {bound}",
                    parser.buffered()
                );
            }
            match res {
                Ok(Some(op)) => out.push(op),
                Ok(None) => {
                    assert_eq!(pos, chunk.len(), "Ok(None) before the data was used up");
                    break;
                }
                Err(e) => {
                    out.push(Owned::Error(e));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let headers = data[0] & 1 == 1;
    let max_control_line = u16::from_le_bytes([data[1], data[2]]) as u32 % 4096 + 1;
    let max_payload = u16::from_le_bytes([data[3], data[4]]) as u32;
    let n = data[5] as usize % 17;
    let rest = &data[6..];
    if rest.len() < 2 * n {
        return;
    }
    let (split_bytes, input) = rest.split_at(2 * n);
    let mut splits: Vec<usize> = split_bytes
        .chunks(2)
        .map(|c| {
            let v = u16::from_le_bytes([c[0], c[1]]) as usize;
            if input.is_empty() {
                0
            } else {
                v % (input.len() + 1)
            }
        })
        .collect();
    splits.sort_unstable();
    let mut chunks: Vec<&[u8]> = Vec::with_capacity(n + 1);
    let mut last = 0;
    for s in splits {
        chunks.push(&input[last..s]);
        last = s;
    }
    chunks.push(&input[last..]);

    // Whitespace between a PUB keyword and its arguments arriving in one read is
    // carried with the line until the payload is complete: bounded by the read,
    // not by the limits, so it is allowed for.
    let mut run_len = 0;
    let mut longest_ws = 0;
    for &b in input {
        run_len = if b == b' ' || b == b'\t' {
            run_len + 1
        } else {
            0
        };
        longest_ws = longest_ws.max(run_len);
    }
    let bound = max_control_line as usize + max_payload as usize + SLACK + longest_ws;
    let mut whole = Parser::new(max_control_line, max_payload);
    whole.set_headers(headers);
    let expected = run(&mut whole, &[input], bound);
    let mut split = Parser::new(max_control_line, max_payload);
    split.set_headers(headers);
    let got = run(&mut split, &chunks, bound);
    assert_eq!(expected, got, "split at {chunks:?}");
});
