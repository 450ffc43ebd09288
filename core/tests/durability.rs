//! File streams through a simulated disk that keeps only what was synced
//! when the power goes: with `sync_interval: always` nothing acknowledged
//! is lost, whatever the crash point, a torn last write or flipped bits in
//! what was not synced; what comes back is a prefix of what was written.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use support::Sim;
use tenet_core::jetstream::api::StoreWrite;
use tenet_core::options::{JetStreamOptions, StoreSync};
use tenet_core::{ClientId, Options, Server};

const CLIENT: &str = r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true}"#;

fn server(sync: StoreSync) -> Sim {
    let opts = Options {
        jetstream: Some(JetStreamOptions {
            sync,
            ..JetStreamOptions::default()
        }),
        ..Options::default()
    };
    Sim::with_server(Server::new(opts, 1))
}

/// One file: what the operating system holds, and how much of it is on
/// the disk (synced).
#[derive(Clone, Debug, Default)]
struct File {
    bytes: Vec<u8>,
    synced: usize,
}

/// A disk under the simulated host: store writes land in the operating
/// system's cache and reach the disk on a sync.
#[derive(Clone, Debug, Default)]
struct Disk {
    /// Stream metadata: (written, synced).
    meta: BTreeMap<String, (Option<String>, Option<String>)>,
    /// By (stream, block).
    blocks: BTreeMap<(String, u64), File>,
    /// Blocks dropped, removed once what was written before is synced
    /// (as the host does under `sync_interval: always`).
    drops: Vec<(String, u64)>,
    /// Writes taken from the server so far.
    taken: u64,
}

impl Disk {
    fn take_writes(&mut self, server: &mut Server) {
        while let Some((_, write)) = server.poll_store_write() {
            match write {
                StoreWrite::Meta { stream, json } => {
                    self.meta.entry(stream).or_default().0 = Some(json);
                }
                StoreWrite::Append {
                    stream,
                    block,
                    bytes,
                } => self
                    .blocks
                    .entry((stream, block))
                    .or_default()
                    .bytes
                    .extend(bytes),
                StoreWrite::DropBlock { stream, block } => self.drops.push((stream, block)),
                StoreWrite::Delete { stream } => {
                    self.meta.remove(&stream);
                    self.blocks.retain(|(s, _), _| *s != stream);
                    self.drops.retain(|(s, _)| *s != stream);
                }
                StoreWrite::Consumer { .. }
                | StoreWrite::DeleteConsumer { .. }
                | StoreWrite::BlockSummaries { .. } => {}
            }
        }
        self.taken = server.store_writes_taken();
    }

    /// Everything written so far reaches the disk.
    fn sync(&mut self) {
        for (written, synced) in self.meta.values_mut() {
            synced.clone_from(written);
        }
        for file in self.blocks.values_mut() {
            file.synced = file.bytes.len();
        }
        for block in std::mem::take(&mut self.drops) {
            self.blocks.remove(&block);
        }
    }

    /// The power goes: each file keeps what was synced, plus `keep` of the
    /// rest (a torn write), with one bit flipped there if `flip`.
    fn power_loss(&mut self, keep: f64, flip: Option<usize>) {
        for (written, synced) in self.meta.values_mut() {
            *written = synced.clone();
        }
        self.meta.retain(|_, (written, _)| written.is_some());
        // Dropped blocks not removed yet stay (a restart reads them again).
        self.drops.clear();
        for file in self.blocks.values_mut() {
            let unsynced = file.bytes.len() - file.synced;
            let kept = file.synced + (unsynced as f64 * keep) as usize;
            file.bytes.truncate(kept);
            if let (Some(bit), true) = (flip, kept > file.synced) {
                let at = file.synced + bit / 8 % (kept - file.synced);
                file.bytes[at] ^= 1 << (bit % 8);
            }
            file.synced = file.bytes.len();
        }
    }

    /// A server started on this disk (it counts its writes from 0).
    fn start(&mut self, sync: StoreSync) -> Sim {
        self.taken = 0;
        let mut sim = server(sync);
        for (stream, (meta, _)) in &self.meta {
            let meta = meta.as_deref().expect("kept");
            let name = sim
                .server
                .restore_stream("$G", meta.as_bytes())
                .expect("a stream on disk restores");
            for ((_, block), file) in self.blocks.iter_mut().filter(|((s, _), _)| s == stream) {
                let (valid, _) = sim
                    .server
                    .restore_block("$G", &name, *block, file.bytes.clone());
                // As the host does: a torn or corrupt tail is cut off the file.
                file.bytes.truncate(valid);
                file.synced = valid;
            }
            sim.server.finish_restore("$G", &name).expect("restored");
        }
        // What the restore wrote (dropped empty blocks, a new block saying
        // where the sequence is) is written and synced as the host does.
        self.take_writes(&mut sim.server);
        self.sync();
        sim.server.handle_store_synced(self.taken, sim.now);
        sim
    }
}

/// The PubAcks a client received: stream sequences.
fn acks(got: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(got);
    text.match_indices(r#""seq":"#)
        .map(|(i, _)| {
            let rest = &text[i + 6..];
            rest[..rest.find('}').unwrap()].parse().unwrap()
        })
        .collect()
}

/// Every message of stream `S` as (sequence, base64 data), read back with
/// the API.
fn stream_messages(sim: &mut Sim, c: ClientId) -> Vec<(u64, String)> {
    sim.send(
        c,
        b"SUB _INBOX.g 9\r\nPUB $JS.API.STREAM.INFO.S _INBOX.g 0\r\n\r\n",
    );
    let info = sim.take_str(c);
    let field = |name: &str| -> u64 {
        info.split(&format!(r#""{name}":"#))
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    let (first, last) = (field("first_seq"), field("last_seq"));
    let mut out = Vec::new();
    for seq in first.max(1)..=last {
        let body = format!(r#"{{"seq":{seq}}}"#);
        let line = format!(
            "PUB $JS.API.STREAM.MSG.GET.S _INBOX.g {}\r\n{body}\r\n",
            body.len()
        );
        sim.send(c, line.as_bytes());
        let got = sim.take_str(c);
        let data = got
            .split(r#""data":""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("message {seq}: {got}"));
        out.push((seq, data.to_string()));
    }
    sim.send(c, b"UNSUB 9\r\n");
    out
}

#[derive(Clone, Debug)]
enum Op {
    /// Publish this many messages with replies.
    Publish(u8),
    /// The host's sync thread finishes a group commit.
    Sync,
    /// The power goes (keep part of what was not synced, maybe flip a bit).
    PowerLoss(f64, Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..6u8).prop_map(Op::Publish),
        3 => Just(Op::Sync),
        1 => (0.0..1.0f64, prop::option::of(0..4096usize)).prop_map(|(k, f)| Op::PowerLoss(k, f)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// With `sync_interval: always`, a PubAck leaves only once its message
    /// is synced: after any power loss every acknowledged message is there,
    /// once, at its sequence, and the stream is a prefix of what was
    /// published (nothing made up, nothing out of order).
    #[test]
    fn nothing_acknowledged_is_lost_to_a_power_loss(ops in prop::collection::vec(op(), 1..40)) {
        let sync = StoreSync::Always;
        let mut disk = Disk::default();
        let mut sim = server(sync);
        let mut c = sim.connect(CLIENT);
        sim.send(c, b"SUB _INBOX.p 1\r\n");
        let create = r#"{"name":"S","subjects":["s"]}"#;
        sim.send(c, format!("PUB $JS.API.STREAM.CREATE.S _INBOX.p {}\r\n{create}\r\n", create.len()).as_bytes());
        disk.take_writes(&mut sim.server);
        disk.sync();
        sim.server.handle_store_synced(disk.taken, sim.now);
        sim.pump();
        sim.take(c);
        // Every message published, in order, and the acknowledged ones.
        let mut published: Vec<String> = Vec::new();
        let mut acked: BTreeMap<u64, String> = BTreeMap::new();
        let mut next = 0;
        for op in ops {
            match op {
                Op::Publish(n) => {
                    for _ in 0..n {
                        let body = format!("m{next}");
                        next += 1;
                        sim.send(c, format!("PUB s _INBOX.p {}\r\n{body}\r\n", body.len()).as_bytes());
                        published.push(body);
                    }
                    disk.take_writes(&mut sim.server);
                    let got = sim.take(c);
                    prop_assert!(acks(&got).is_empty(), "a PubAck before its sync");
                }
                Op::Sync => {
                    disk.sync();
                    sim.server.handle_store_synced(disk.taken, sim.now);
                    sim.pump();
                    for seq in acks(&sim.take(c)) {
                        // Sequences are 1-based in publish order (since the last restart).
                        acked.insert(seq, String::new());
                    }
                }
                Op::PowerLoss(keep, flip) => {
                    disk.power_loss(keep, flip);
                    sim = disk.start(sync);
                    c = sim.connect(CLIENT);
                    sim.send(c, b"SUB _INBOX.p 1\r\n");
                    let stored = stream_messages(&mut sim, c);
                    // A prefix of what was published, at sequences 1, 2, ...
                    for (i, (seq, _)) in stored.iter().enumerate() {
                        prop_assert_eq!(*seq, i as u64 + 1);
                    }
                    prop_assert!(stored.len() <= published.len());
                    for (i, (_, data)) in stored.iter().enumerate() {
                        let expected = data_of(&published[i]);
                        prop_assert_eq!(data, &expected, "message {} is what was published", i + 1);
                    }
                    // Every acknowledged message survived.
                    if let Some((&last_acked, _)) = acked.iter().next_back() {
                        prop_assert!(stored.len() as u64 >= last_acked,
                            "acknowledged up to {} but only {} came back", last_acked, stored.len());
                    }
                    // Publishing goes on after what survived.
                    published.truncate(stored.len());
                    acked.retain(|&seq, _| seq <= stored.len() as u64);
                }
            }
        }
    }
}

/// A stored message's data as a message get shows it (base64).
fn data_of(body: &str) -> String {
    // Tiny base64 for short ASCII bodies, so the test needs no crate.
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = body.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn by_default_acknowledgements_do_not_wait_for_a_sync() {
    let mut sim = server(StoreSync::default());
    let c = sim.connect(CLIENT);
    sim.send(c, b"SUB _INBOX.p 1\r\n");
    let create = r#"{"name":"S","subjects":["s"]}"#;
    sim.send(
        c,
        format!(
            "PUB $JS.API.STREAM.CREATE.S _INBOX.p {}\r\n{create}\r\n",
            create.len()
        )
        .as_bytes(),
    );
    sim.take(c);
    sim.send(c, b"PUB s _INBOX.p 1\r\nx\r\n");
    assert_eq!(
        acks(&sim.take(c)),
        [1],
        "written to the operating system is enough"
    );
}

#[test]
fn with_sync_always_acknowledgements_wait_for_the_sync_in_order() {
    let mut sim = server(StoreSync::Always);
    let mut disk = Disk::default();
    let c = sim.connect(CLIENT);
    sim.send(c, b"SUB _INBOX.p 1\r\n");
    let create = r#"{"name":"S","subjects":["s"]}"#;
    sim.send(
        c,
        format!(
            "PUB $JS.API.STREAM.CREATE.S _INBOX.p {}\r\n{create}\r\n",
            create.len()
        )
        .as_bytes(),
    );
    assert_eq!(
        sim.take_str(c),
        "",
        "the create answer waits for its metadata"
    );
    disk.take_writes(&mut sim.server);
    let synced_create = disk.taken;
    sim.send(c, b"PUB s _INBOX.p 1\r\nx\r\nPUB s _INBOX.p 1\r\ny\r\n");
    disk.take_writes(&mut sim.server);
    assert_eq!(sim.take_str(c), "");
    // One group commit covers the first write only: the create answer goes.
    sim.server.handle_store_synced(synced_create, sim.now);
    sim.pump();
    let got = sim.take_str(c);
    assert!(got.contains("stream_create_response"), "{got}");
    assert!(acks(got.as_bytes()).is_empty(), "{got}");
    // The next covers both messages: both PubAcks, in order.
    sim.server.handle_store_synced(disk.taken, sim.now);
    sim.pump();
    assert_eq!(acks(&sim.take(c)), [1, 2]);
}
