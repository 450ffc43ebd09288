//! Checks `sublist::Sublist` against a naive Vec model (built on `subject_matches`) after every insert/remove/match step.
//!
//! Input: a byte-coded op sequence. Each op is `kind` (mod 3: insert, remove,
//! match), then for insert/remove a `key` byte (bits 0-2 key, bits 3.. queue
//! choice mod 3), then a length byte (1 + n mod 4 tokens) and one byte per token.
//! Insert subjects are made valid; remove and match subjects may be anything over
//! the alphabet (match also uses empty tokens).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use tenet_core::subject::{is_valid_subject, subject_matches};
use tenet_core::sublist::{SubKey, Sublist};

const TOKENS: [&[u8]; 6] = [b"a", b"b", b"c", b"*", b">", b""];
const QUEUES: [Option<&[u8]>; 3] = [None, Some(b"q1"), Some(b"q2")];

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// A subject of 1..=4 tokens; `alphabet` tokens of TOKENS are usable.
fn subject(bytes: &mut Bytes, alphabet: usize, valid: bool) -> Option<Vec<u8>> {
    let n = 1 + bytes.next()? as usize % 4;
    let mut toks: Vec<&[u8]> = Vec::with_capacity(n);
    for i in 0..n {
        let mut t = TOKENS[bytes.next()? as usize % alphabet];
        if valid && t == b">" && i + 1 < n {
            t = b"*";
        }
        toks.push(t);
    }
    Some(toks.join(&b'.'))
}

type Entry = (Vec<u8>, Option<Vec<u8>>, SubKey);

fn step(list: &mut Sublist, model: &mut Vec<Entry>, bytes: &mut Bytes) -> Option<()> {
    let kind = bytes.next()? % 3;
    if kind == 2 {
        let s = subject(bytes, 6, false)?;
        let got = list.matches(&s);
        let mut plain = BTreeSet::new();
        let mut queues: BTreeMap<Vec<u8>, BTreeSet<SubKey>> = BTreeMap::new();
        for (pattern, queue, key) in model.iter() {
            if subject_matches(pattern, &s) {
                match queue {
                    None => {
                        plain.insert(*key);
                    }
                    Some(q) => {
                        queues.entry(q.clone()).or_default().insert(*key);
                    }
                }
            }
        }
        let got_plain: BTreeSet<SubKey> = got.plain.iter().copied().collect();
        assert_eq!(
            got_plain,
            plain,
            "plain matches of {:?}",
            String::from_utf8_lossy(&s)
        );
        assert_eq!(got_plain.len(), got.plain.len(), "duplicate plain keys");
        let got_queues: BTreeMap<Vec<u8>, BTreeSet<SubKey>> = got
            .queues
            .iter()
            .map(|g| (g.name.to_vec(), g.members.iter().copied().collect()))
            .collect();
        assert_eq!(got_queues.len(), got.queues.len(), "duplicate queue groups");
        assert!(
            got.queues.iter().all(|g| !g.members.is_empty()),
            "empty queue group"
        );
        assert_eq!(
            got_queues,
            queues,
            "queue matches of {:?}",
            String::from_utf8_lossy(&s)
        );
        return Some(());
    }
    let k = bytes.next()?;
    let key = SubKey(u32::from(k & 7));
    let queue = QUEUES[(k >> 3) as usize % 3];
    let entry = |s: Vec<u8>| (s, queue.map(<[u8]>::to_vec), key);
    if kind == 0 {
        let s = subject(bytes, 5, true)?;
        assert!(is_valid_subject(&s));
        list.insert(&s, queue, key);
        let e = entry(s);
        if !model.contains(&e) {
            model.push(e);
        }
    } else {
        let s = subject(bytes, 6, false)?;
        let removed = list.remove(&s, queue, key);
        let e = entry(s);
        let before = model.len();
        model.retain(|x| x != &e);
        assert_eq!(removed, model.len() < before, "remove result of {e:?}");
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    // First byte picks whether the match cache is on.
    let Some((&flags, ops)) = data.split_first() else {
        return;
    };
    let mut list = Sublist::with_cache(flags & 1 == 0);
    let mut model: Vec<Entry> = Vec::new();
    let mut bytes = Bytes(ops);
    while step(&mut list, &mut model, &mut bytes).is_some() {
        assert_eq!(list.len(), model.len(), "subscription count");
        assert_eq!(list.is_empty(), model.is_empty());
    }
});
