//! Checks `perms::Permissions`: `can_publish` equals a naive allow/deny model, `PublishCache` never changes a decision, and SUBs decided `Allowed` (or `AllowedFiltered`, with `delivery_denied`) deliver exactly what a per-subject model permits.
//!
//! Input: four count bytes (publish allow/deny, subscribe allow/deny; each mod
//! 5), then the entries, then probes until the input runs out. An entry is a
//! pattern (length byte: 1 + n mod 3 tokens, then one byte per token over
//! a, b, *, > and, rarely, an empty token that makes it invalid) and, for
//! subscribe entries, a queue byte (none, or a queue pattern over x, y, *, >).
//! A probe byte's low bit picks a publish probe (a literal subject over a, b,
//! c, *, >, and the empty token) or a SUB probe (a valid pattern and queue name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenet_core::config::options::{Permissions as Config, SubjectPermission};
use tenet_core::perms::{Permissions, PublishCache, SubscribeDecision};
use tenet_core::subject::{is_valid_subject, subject_matches};

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// A pattern of 1..=3 tokens over a, b, `*`, `>` (`>` moved to the end);
/// token byte 255 gives an empty token (an invalid entry).
fn pattern(b: &mut Bytes) -> Option<String> {
    let n = 1 + b.next()? as usize % 3;
    let mut toks = Vec::with_capacity(n);
    for i in 0..n {
        let x = b.next()?;
        let t = if x == 255 {
            ""
        } else {
            ["a", "b", "*", ">"][x as usize % 4]
        };
        toks.push(if t == ">" && i + 1 < n { "*" } else { t });
    }
    let p = toks.join(".");
    // An empty subject would vanish from the "subject queue" entry text: use
    // another invalid one.
    Some(if p.is_empty() { ".".into() } else { p })
}

/// A queue pattern (for entries) of 1..=2 tokens over x, y, `*`, `>` (`>` last).
fn queue_pattern(x: u8) -> Option<String> {
    match x % 8 {
        0..=3 => None,
        4 => Some("x".into()),
        5 => Some("*".into()),
        6 => Some(">".into()),
        _ => Some(["x.y", "x.*", "y.>", "*.x"][(x as usize >> 3) % 4].into()),
    }
}

/// A literal subject of 1..=4 tokens over a, b, c, plus (taken literally) `*`,
/// `>` and the empty token.
fn literal(b: &mut Bytes) -> Option<String> {
    let n = 1 + b.next()? as usize % 4;
    let mut toks = Vec::with_capacity(n);
    for _ in 0..n {
        let x = b.next()?;
        toks.push(match x % 16 {
            13 => "*",
            14 => ">",
            15 => "",
            v => ["a", "b", "c"][v as usize % 3],
        });
    }
    Some(toks.join("."))
}

/// Every subject of 1..=4 tokens over {a, b, c}: patterns use a and b only and
/// have at most 3 tokens, so c stands for any other token and 4 tokens for any
/// longer subject.
fn universe() -> Vec<String> {
    let mut all = Vec::new();
    let mut level = vec![String::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for p in &level {
            for t in ["a", "b", "c"] {
                next.push(if p.is_empty() {
                    t.to_string()
                } else {
                    format!("{p}.{t}")
                });
            }
        }
        all.extend(next.iter().cloned());
        level = next;
    }
    all
}

fn naive_queue_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[&str], n: &[&str]) -> bool {
        match (p.split_first(), n.split_first()) {
            (None, None) => true,
            (Some((&">", _)), Some(_)) => true,
            (Some((&"*", pr)), Some((_, nr))) => go(pr, nr),
            (Some((pt, pr)), Some((nt, nr))) => pt == nt && go(pr, nr),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let n: Vec<&str> = name.split('.').collect();
    go(&p, &n)
}

#[derive(Clone, Debug)]
struct Entry {
    subject: String,
    queue: Option<String>,
}

impl Entry {
    fn text(&self) -> String {
        match &self.queue {
            Some(q) => format!("{} {q}", self.subject),
            None => self.subject.clone(),
        }
    }
    fn valid(&self) -> bool {
        is_valid_subject(self.subject.as_bytes())
    }
    /// Documented: an invalid allow entry grants nothing.
    fn allow_matches(&self, s: &str) -> bool {
        self.valid() && subject_matches(self.subject.as_bytes(), s.as_bytes())
    }
    /// Documented: an invalid deny entry denies everything (as a plain `>`).
    fn deny_matches(&self, s: &str) -> bool {
        let p = if self.valid() {
            self.subject.as_str()
        } else {
            ">"
        };
        subject_matches(p.as_bytes(), s.as_bytes())
    }
    fn deny_applies(&self, queue: Option<&str>) -> bool {
        match (&self.queue, queue) {
            _ if !self.valid() => true,
            (None, _) => true,
            (Some(p), Some(q)) => naive_queue_match(p, q),
            (Some(_), None) => false,
        }
    }
    fn queue_ok(&self, queue: Option<&str>) -> bool {
        matches!((&self.queue, queue), (Some(p), Some(q)) if naive_queue_match(p, q))
    }
}

fn model_publish(allow: &[Entry], deny: &[Entry], s: &str) -> bool {
    (allow.is_empty() || allow.iter().any(|e| e.allow_matches(s)))
        && !deny.iter().any(|e| e.deny_matches(s))
}

/// Whether a message on literal `s` may not reach a SUB in group `queue`.
fn forbidden(allow: &[Entry], deny: &[Entry], s: &str, queue: Option<&str>) -> bool {
    let matching: Vec<&Entry> = allow.iter().filter(|e| e.allow_matches(s)).collect();
    let plain_ok = matching.iter().any(|e| e.queue.is_none());
    let allowed = allow.is_empty()
        || match queue {
            None => plain_ok,
            Some(_) => {
                let grouped: Vec<&&Entry> = matching.iter().filter(|e| e.queue.is_some()).collect();
                if grouped.is_empty() {
                    plain_ok
                } else {
                    grouped.iter().any(|e| e.queue_ok(queue))
                }
            }
        };
    let denied = deny
        .iter()
        .any(|e| e.deny_matches(s) && e.deny_applies(queue));
    !allowed || denied
}

fn entries(b: &mut Bytes, n: u8, with_queue: bool) -> Option<Vec<Entry>> {
    (0..n % 5)
        .map(|_| {
            let subject = pattern(b)?;
            let queue = if with_queue {
                queue_pattern(b.next()?)
            } else {
                None
            };
            Some(Entry { subject, queue })
        })
        .collect()
}

fn texts(e: &[Entry]) -> Vec<String> {
    e.iter().map(Entry::text).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let (Some(npa), Some(npd), Some(nsa), Some(nsd)) = (b.next(), b.next(), b.next(), b.next())
    else {
        return;
    };
    let Some(pub_allow) = entries(&mut b, npa, false) else {
        return;
    };
    let Some(pub_deny) = entries(&mut b, npd, false) else {
        return;
    };
    let Some(sub_allow) = entries(&mut b, nsa, true) else {
        return;
    };
    let Some(sub_deny) = entries(&mut b, nsd, true) else {
        return;
    };
    let cfg = Config {
        publish: Some(SubjectPermission {
            allow: texts(&pub_allow),
            deny: texts(&pub_deny),
            ..Default::default()
        }),
        subscribe: Some(SubjectPermission {
            allow: texts(&sub_allow),
            deny: texts(&sub_deny),
            ..Default::default()
        }),
        ..Default::default()
    };
    let perms = Permissions::compile(&cfg);
    assert_eq!(
        perms.restricts_publish(),
        !pub_allow.is_empty() || !pub_deny.is_empty()
    );
    let universe = universe();
    let mut cache = PublishCache::new();
    while let Some(kind) = b.next() {
        if kind & 1 == 0 {
            let Some(s) = literal(&mut b) else { break };
            let want = model_publish(&pub_allow, &pub_deny, &s);
            let got = perms.can_publish(s.as_bytes());
            assert_eq!(got, want, "can_publish({s:?}) with {cfg:?}");
            let cached = cache.decide(s.as_bytes(), &perms);
            assert_eq!(cached, want, "PublishCache::decide({s:?})");
            // Now from the cache (by the subject or a prefix that decided it).
            assert_eq!(cache.decide(s.as_bytes(), &perms), want, "again {s:?}");
        } else {
            let Some(sub) = pattern(&mut b) else { break };
            if !is_valid_subject(sub.as_bytes()) {
                continue;
            }
            let queue = match kind >> 1 & 7 {
                0..=2 => None,
                3 => Some("x"),
                4 => Some("y"),
                5 => Some("z"),
                6 => Some("x.y"),
                _ => Some("*"),
            };
            let decision = perms.can_subscribe(sub.as_bytes(), queue.map(str::as_bytes));
            for u in universe
                .iter()
                .filter(|u| subject_matches(sub.as_bytes(), u.as_bytes()))
            {
                let bad = forbidden(&sub_allow, &sub_deny, u, queue);
                match decision {
                    SubscribeDecision::Allowed => assert!(
                        !bad,
                        "SUB {sub:?} {queue:?} Allowed but {u:?} is forbidden with {cfg:?}"
                    ),
                    SubscribeDecision::AllowedFiltered => assert_eq!(
                        perms.delivery_denied(u.as_bytes(), queue.map(str::as_bytes)),
                        bad,
                        "SUB {sub:?} {queue:?} filtered: delivery of {u:?} with {cfg:?}"
                    ),
                    SubscribeDecision::Denied => {}
                }
            }
        }
    }
});
