//! Subject match time of `sublist::Sublist::matches` over ~10,000 subscriptions: literal and wildcard hits, cache on (repeated subject) and off, and a cache-defeating rotation.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tenet_core::sublist::{SubKey, Sublist};

/// Two subject families, 10,290 subscriptions in all:
///
/// - `svc.r<0-9>.s<0-99>.op<0-8>`: 9,000 literal subscriptions, no wildcards
///   above them, so a `svc.` subject reaches exactly one plain subscription;
/// - `evt.r<0-9>.s<0-99>.op<0-8>`: 1,000 literal subscriptions (`op0` only)
///   under 290 wildcard ones: `evt.r<r>.*.op<o>` (90), `evt.*.s<s>.op0` (100),
///   `evt.r<r>.s<0-9>.>` (100).
fn realistic(cache: bool) -> Sublist {
    let mut list = Sublist::with_cache(cache);
    let mut key = 0u32;
    let mut add = |list: &mut Sublist, subject: String| {
        list.insert(subject.as_bytes(), None, SubKey(key));
        key += 1;
    };
    for r in 0..10 {
        for s in 0..100 {
            for o in 0..9 {
                add(&mut list, format!("svc.r{r}.s{s}.op{o}"));
            }
            add(&mut list, format!("evt.r{r}.s{s}.op0"));
        }
        for o in 0..9 {
            add(&mut list, format!("evt.r{r}.*.op{o}"));
        }
        for s in 0..10 {
            add(&mut list, format!("evt.r{r}.s{s}.>"));
        }
    }
    for s in 0..100 {
        add(&mut list, format!("evt.*.s{s}.op0"));
    }
    list
}

/// Subject reaching one literal subscription.
const LITERAL: &[u8] = b"svc.r3.s17.op5";
/// Subject reaching a literal, two `*` and one `>` subscription.
const WILDCARD: &[u8] = b"evt.r3.s5.op0";

fn sublist(c: &mut Criterion) {
    let mut group = c.benchmark_group("sublist_match");
    group.throughput(Throughput::Elements(1));

    let mut probe = realistic(false);
    assert_eq!(probe.len(), 10_290);
    assert_eq!(probe.matches(LITERAL).plain.len(), 1);
    assert_eq!(probe.matches(WILDCARD).plain.len(), 4);

    for (name, subject) in [("literal", LITERAL), ("wildcard", WILDCARD)] {
        let mut cached = realistic(true);
        group.bench_function(format!("{name}/cached"), |b| {
            b.iter(|| cached.matches(black_box(subject)))
        });
        let mut uncached = realistic(false);
        group.bench_function(format!("{name}/uncached"), |b| {
            b.iter(|| uncached.matches(black_box(subject)))
        });
    }

    // 4,096 distinct subjects, four times the cache's capacity: with the
    // cache on, most lookups miss, walk the trie and insert (with sweeps).
    let rotation: Vec<Vec<u8>> = (0..4096)
        .map(|i| {
            let family = if i % 2 == 0 { "svc" } else { "evt" };
            let (r, s, o) = (i % 10, (i / 10) % 100, (i / 1000) % 9);
            format!("{family}.r{r}.s{s}.op{o}").into_bytes()
        })
        .collect();
    for (name, cache) in [
        ("rotate4096/cache_on", true),
        ("rotate4096/cache_off", false),
    ] {
        let mut list = realistic(cache);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % rotation.len();
                list.matches(black_box(&rotation[i]))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config();
    targets = sublist
}
criterion_main!(benches);
