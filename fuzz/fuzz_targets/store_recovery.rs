//! Store recovery on arbitrary bytes: a stream's blocks (and metadata, and a consumer's state) read back at start-up never panic, each block is cut at a record boundary, and the store they make is consistent.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tenet_core::jetstream::log_format::scan;
use tenet_core::jetstream::store::{Accounting, Limits, Store};
use tenet_core::options::JetStreamOptions;
use tenet_core::{Options, Server, Time};

/// Stream metadata as the store writes it; the fuzzer picks one, or its own bytes.
const METAS: [&str; 4] = [
    r#"{"config":{"name":"S","subjects":["s.>"]},"created":1}"#,
    r#"{"config":{"name":"S","subjects":["s.>"],"max_msgs":3,"retention":"workqueue"},"created":1}"#,
    r#"{"config":{"name":"S","subjects":["s.>"],"max_msgs_per_subject":1,"retention":"interest"},"created":1}"#,
    r#"{"config":{"name":"S","subjects":["s.>"],"max_age":1000000000,"storage":"file"},"created":1}"#,
];

fn server() -> Server {
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    Server::new(opts, 1)
}

/// The store the blocks make is consistent with itself.
fn check_store(blocks: &[&[u8]]) {
    let mut store = Store::on_disk(Accounting::File, Limits::default(), None);
    for (i, block) in blocks.iter().enumerate() {
        let read = scan(block, |_, _| {});
        assert!(read.valid_len <= block.len());
        assert_eq!(read.problem.is_some(), read.valid_len < block.len());
        // What was kept reads again whole.
        assert!(scan(&block[..read.valid_len], |_, _| {}).problem.is_none());
        let restored = store.restore_block(i as u64 + 1, block.to_vec());
        assert_eq!(restored, read);
    }
    store.finish_restore();
    let state = store.state();
    let mut seqs = Vec::new();
    while let Some(seq) = store.next_seq(seqs.last().map_or(0, |s| s + 1)) {
        seqs.push(seq);
    }
    assert_eq!(state.messages, seqs.len() as u64);
    let mut bytes = 0;
    let mut last_of: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for &seq in &seqs {
        let m = store.get(seq).expect("a live message reads");
        assert_eq!(m.seq, seq);
        bytes += Accounting::File.size(m.subject, m.hdr, m.data);
        last_of.insert(m.subject.to_vec(), seq);
    }
    assert_eq!(state.bytes, bytes);
    let counted: u64 = store.subject_counts(b">").iter().map(|(_, n)| n).sum();
    assert_eq!(counted, state.messages);
    for (subject, last) in last_of {
        assert_eq!(store.last_seq_by_subject(&subject), Some(last));
    }
    if let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) {
        assert_eq!(state.first_seq, first);
        assert!(last <= state.last_seq);
        assert_eq!(
            state.num_deleted,
            state.last_seq - state.first_seq + 1 - state.messages
        );
    } else {
        assert_eq!(state.num_deleted, 0);
    }
    assert!(store.take_problems().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    // `choice` picks the metadata; a chosen 255 takes it from the input
    // (up to the first 0 byte). A second 0 byte starts a consumer's state.
    let (meta, rest): (Vec<u8>, &[u8]) = if choice == 255 {
        match rest.iter().position(|&b| b == 0) {
            Some(end) => (rest[..end].to_vec(), &rest[end + 1..]),
            None => (rest.to_vec(), &[][..]),
        }
    } else {
        (
            METAS[choice as usize % METAS.len()].as_bytes().to_vec(),
            rest,
        )
    };
    let (log, consumer) = match rest.iter().position(|&b| b == 0xFE) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    // Blocks are separated by 0xFD bytes.
    let blocks: Vec<&[u8]> = log.split(|&b| b == 0xFD).collect();
    check_store(&blocks);
    let mut server = server();
    match server.restore_stream("$G", &meta) {
        Ok(name) => {
            for (i, block) in blocks.iter().enumerate() {
                let (valid, problem) =
                    server.restore_block("$G", &name, i as u64 + 1, block.to_vec());
                assert!(valid <= block.len());
                assert_eq!(problem.is_some(), valid < block.len());
            }
            let line = server.finish_restore("$G", &name).expect("restored");
            assert!(line.contains("Restored"), "{line}");
            if let Some(state) = consumer {
                // Whatever the bytes, a consumer restores or says why.
                if let Err(why) = server.restore_consumer("$G", "S", state, 1, Time::ZERO) {
                    assert!(!why.is_empty());
                }
            }
        }
        Err(why) => assert!(!why.is_empty(), "an error says why"),
    }
});
