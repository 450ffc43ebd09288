//! Store recovery on arbitrary bytes: a stream's log (and metadata, and a consumer's state) read back at start-up never panics, cuts the log at a record boundary, and gives a consistent store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenet_core::jetstream::log_format::decode;
use tenet_core::jetstream::store::{Accounting, Limits, MemStore};
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

/// The store the records make is consistent with itself.
fn check_store(log: &[u8]) {
    let decoded = decode(log);
    assert!(decoded.valid_len <= log.len());
    assert_eq!(decoded.problem.is_some(), decoded.valid_len < log.len());
    // What was kept reads again whole, to the same records.
    let again = decode(&log[..decoded.valid_len]);
    assert!(again.problem.is_none(), "the kept part reads whole");
    assert_eq!(again.records.len(), decoded.records.len());
    let mut store = MemStore::new(Accounting::File, Limits::default());
    store.replay(decoded.records);
    let state = store.state();
    let msgs: Vec<_> = store.from_seq(0).collect();
    assert_eq!(state.messages, msgs.len() as u64);
    let bytes: u64 = msgs
        .iter()
        .map(|m| Accounting::File.size(&m.subject, &m.hdr, &m.data))
        .sum();
    assert_eq!(state.bytes, bytes);
    if let (Some(first), Some(last)) = (msgs.first(), msgs.last()) {
        assert_eq!(state.first_seq, first.seq);
        assert!(last.seq <= state.last_seq);
        assert!(msgs.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(
            state.num_deleted,
            state.last_seq - state.first_seq + 1 - state.messages
        );
    } else {
        assert_eq!(state.num_deleted, 0);
    }
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
    check_store(log);
    let mut server = server();
    match server.restore_stream("$G", &meta, log) {
        Ok((line, valid)) => {
            assert!(valid <= log.len());
            assert!(line.contains("Restored"), "{line}");
            if let Some(state) = consumer {
                // Whatever the bytes, a consumer restores or says why.
                if let Err(why) = server.restore_consumer("$G", "S", state, Time::ZERO) {
                    assert!(!why.is_empty());
                }
            }
        }
        Err(why) => assert!(!why.is_empty(), "an error says why"),
    }
});
