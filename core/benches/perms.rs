//! Publish permission checks: `perms::Permissions::can_publish` on wildcard allow/deny lists, the per-connection memo of the last subject, and the `PublishCache` decision cache.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tenet_core::config::options::{Permissions as PermissionsConfig, SubjectPermission};
use tenet_core::memo::PublishMemo;
use tenet_core::perms::{Permissions, PublishCache};

fn config() -> PermissionsConfig {
    let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    PermissionsConfig {
        publish: Some(SubjectPermission {
            allow: list(&[
                "orders.*.created",
                "metrics.>",
                "svc.*.*.req",
                "audit.*",
                "bench.>",
                "_INBOX.>",
            ]),
            deny: list(&["bench.secret.>"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// (bench name, subject, expected decision).
const SUBJECTS: [(&str, &[u8], bool); 5] = [
    ("allowed_pwc", b"orders.eu.created", true),
    ("allowed_fwc", b"metrics.host42.cpu.user", true),
    ("allowed_pwc2", b"svc.billing.invoice.req", true),
    ("denied_by_deny", b"bench.secret.key", false),
    ("denied_no_allow", b"orders.eu.deleted", false),
];

fn perms(c: &mut Criterion) {
    let cfg = config();
    let perms = Permissions::compile(&cfg);
    for (_, subject, want) in SUBJECTS {
        assert_eq!(perms.can_publish(subject), want);
    }

    let mut group = c.benchmark_group("perms");
    group.throughput(Throughput::Elements(1));
    group.bench_function("compile", |b| {
        b.iter(|| Permissions::compile(black_box(&cfg)))
    });
    for (name, subject, _) in SUBJECTS {
        group.bench_function(format!("can_publish/{name}"), |b| {
            b.iter(|| perms.can_publish(black_box(subject)))
        });
    }

    // A repeated subject: the engine's per-connection memo answers it with one
    // short comparison before the cache is asked.
    let mut memo = PublishMemo::default();
    let subject: &[u8] = b"orders.eu.created";
    memo.start(subject);
    memo.set_allowed(perms.can_publish(subject));
    group.bench_function("publish_memo/repeat", |b| {
        b.iter(|| memo.start(black_box(subject)) && memo.allowed() == Some(true))
    });
    // Alternating subjects: each one is a hash-map hit in the decision cache.
    let mut cache = PublishCache::new();
    let pair: [&[u8]; 2] = [b"orders.eu.created", b"metrics.host42.cpu.user"];
    let mut i = 0;
    group.bench_function("publish_cache/hit", |b| {
        b.iter(|| {
            i ^= 1;
            let subject = pair[i];
            cache.decide(black_box(subject), &perms)
        })
    });
    assert_eq!(cache.len(), 2);
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config();
    targets = perms
}
criterion_main!(benches);
