//! Per-account subject trie mapping subjects to subscription keys, with a match cache.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::bytes_map::BytesMap;
use crate::subject::{self, split_first_token, FWC, PWC};

/// Opaque handle of a subscription; the sublist never looks inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubKey(pub u32);

/// The subscriptions a literal subject reaches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matches {
    /// Plain (non-queue) subscriptions, each once, in ascending order.
    pub plain: Vec<SubKey>,
    /// One entry per queue group name, ordered by name; members from every
    /// matching trie node with that queue name are merged into one group
    /// (nats-server 2.9 behaviour: a group `q` on `foo.*` and a group `q` on
    /// `foo.bar` are one group for a message on `foo.bar`). Each message is
    /// later delivered to one member per group.
    pub queues: Vec<QueueGroup>,
}

impl Matches {
    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

/// The members of one queue group reached by a subject, in ascending order.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueGroup {
    pub name: Box<[u8]>,
    pub members: Vec<SubKey>,
}

/// Counters for monitoring (`/subsz`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SublistStats {
    pub num_subscriptions: usize,
    pub num_cache: usize,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hits: u64,
}

/// Largest number of cached results.
const CACHE_MAX: usize = 1024;
/// Size the cache is cut down to when it is full, so sweeps are rare.
const CACHE_SWEEP_TO: usize = 256;
/// Slots of the filter of recently missed subjects (see [`RecentMisses`]).
const RECENT_MISSES: usize = 128;

/// The cache's admission rule: a subject enters the cache the second time
/// it misses, so subjects used once (a request's unique reply inbox, a
/// JetStream ack subject with its sequence numbers) never push out the
/// subjects that repeat. A direct-mapped table of hashes of recent misses;
/// a collision only makes a subject wait for one more sighting.
#[derive(Debug)]
struct RecentMisses {
    hashes: Box<[u64; RECENT_MISSES]>,
}

impl RecentMisses {
    fn new() -> Self {
        RecentMisses {
            hashes: Box::new([0; RECENT_MISSES]),
        }
    }

    /// Whether `hash` missed recently; remembers it if not.
    fn missed_before(&mut self, hash: u64) -> bool {
        let slot = &mut self.hashes[(hash % RECENT_MISSES as u64) as usize];
        if *slot == hash {
            return true;
        }
        *slot = hash;
        false
    }
}

/// Queue subscriptions of one node sharing a queue name; `members` sorted.
#[derive(Debug)]
struct QueueSubs {
    name: Box<[u8]>,
    members: Vec<SubKey>,
}

/// A trie node: the subscriptions whose subject ends here, and the level of
/// longer subjects. Key vectors are kept sorted so that membership tests are
/// binary searches and results come out ordered.
#[derive(Debug, Default)]
struct Node {
    plain: Vec<SubKey>,
    queues: Vec<QueueSubs>,
    /// `None` rather than an empty level, so leaves stay small and pruning
    /// can tell a dead end from a branch.
    next: Option<Box<Level>>,
}

impl Node {
    fn has_subs(&self) -> bool {
        !self.plain.is_empty() || !self.queues.is_empty()
    }

    fn insert(&mut self, queue: Option<&[u8]>, key: SubKey) -> bool {
        let keys = match queue {
            None => &mut self.plain,
            Some(q) => match self.queues.iter().position(|g| &*g.name == q) {
                Some(i) => &mut self.queues[i].members,
                None => {
                    self.queues.push(QueueSubs {
                        name: q.into(),
                        members: vec![key],
                    });
                    return true;
                }
            },
        };
        match keys.binary_search(&key) {
            Ok(_) => false,
            Err(i) => {
                keys.insert(i, key);
                true
            }
        }
    }

    fn remove(&mut self, queue: Option<&[u8]>, key: SubKey) -> bool {
        match queue {
            None => remove_sorted(&mut self.plain, key),
            Some(q) => {
                let Some(gi) = self.queues.iter().position(|g| &*g.name == q) else {
                    return false;
                };
                if !remove_sorted(&mut self.queues[gi].members, key) {
                    return false;
                }
                if self.queues[gi].members.is_empty() {
                    self.queues.swap_remove(gi);
                    shrink_if_sparse(&mut self.queues);
                }
                true
            }
        }
    }
}

fn remove_sorted(keys: &mut Vec<SubKey>, key: SubKey) -> bool {
    match keys.binary_search(&key) {
        Ok(i) => {
            keys.remove(i);
            shrink_if_sparse(keys);
            true
        }
        Err(_) => false,
    }
}

/// Gives memory back after a burst of subscriptions has gone away.
fn shrink_if_sparse<T>(v: &mut Vec<T>) {
    if v.capacity() > 16 && v.len() * 4 < v.capacity() {
        v.shrink_to(v.len() * 2);
    }
}

/// One token position of the trie. Wildcard tokens get their own slots, so a
/// literal lookup never meets them and a publish token `*` or `>` (which is
/// literal) can only reach wildcard subscriptions.
#[derive(Debug, Default)]
struct Level {
    literals: BytesMap<Node>,
    pwc: Option<Box<Node>>,
    fwc: Option<Box<Node>>,
}

impl Level {
    fn child_mut(&mut self, tok: &[u8]) -> Option<&mut Node> {
        match tok {
            [PWC] => self.pwc.as_deref_mut(),
            [FWC] => self.fwc.as_deref_mut(),
            _ => self.literals.get_mut(tok),
        }
    }

    fn child_or_insert(&mut self, tok: &[u8]) -> &mut Node {
        match tok {
            [PWC] => self.pwc.get_or_insert_with(Default::default),
            [FWC] => self.fwc.get_or_insert_with(Default::default),
            _ => {
                // Only a new child allocates its key.
                self.literals.get_or_insert_with(tok, Node::default)
            }
        }
    }

    fn remove_child(&mut self, tok: &[u8]) {
        match tok {
            [PWC] => self.pwc = None,
            [FWC] => self.fwc = None,
            _ => {
                self.literals.remove(tok);
            }
        }
    }

    fn child_count(&self) -> usize {
        self.literals.len() + usize::from(self.pwc.is_some()) + usize::from(self.fwc.is_some())
    }

    fn is_empty(&self) -> bool {
        self.child_count() == 0
    }

    /// Moves the levels below this one's children onto `stack`.
    fn detach_into(&mut self, stack: &mut Vec<Level>) {
        let wild = self
            .pwc
            .iter_mut()
            .chain(self.fwc.iter_mut())
            .map(|n| &mut **n);
        for node in self.literals.values_mut().chain(wild) {
            if let Some(level) = node.next.take() {
                stack.push(*level);
            }
        }
    }
}

impl Drop for Level {
    /// Tears the trie down iteratively: a long subject makes a deep chain of
    /// boxes, and the default recursive drop could overflow the stack.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.detach_into(&mut stack);
        while let Some(mut level) = stack.pop() {
            level.detach_into(&mut stack);
        }
    }
}

/// Gathers what the nodes reached by a publish subject hold.
struct Collector<'a> {
    plain: Vec<SubKey>,
    /// How many nodes contributed plain keys; with more than one, the keys
    /// need sorting and de-duplicating.
    plain_sources: usize,
    queues: Vec<(&'a [u8], &'a [SubKey])>,
    /// Where the merged queue groups go.
    room: Vec<QueueGroup>,
}

impl<'a> Collector<'a> {
    fn add(&mut self, node: &'a Node) {
        if !node.plain.is_empty() {
            self.plain.extend_from_slice(&node.plain);
            self.plain_sources += 1;
        }
        self.queues
            .extend(node.queues.iter().map(|g| (&*g.name, &*g.members)));
    }

    fn finish(mut self) -> Matches {
        if self.plain_sources > 1 {
            // Concatenated sorted runs: the stable sort merges them cheaply.
            self.plain.sort();
            self.plain.dedup();
        }
        self.queues.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut queues = self.room;
        let mut merged = 0;
        for (name, members) in self.queues {
            match queues.last_mut() {
                Some(last) if &*last.name == name => {
                    last.members.extend_from_slice(members);
                    merged += 1;
                }
                _ => queues.push(QueueGroup {
                    name: name.into(),
                    members: members.to_vec(),
                }),
            }
        }
        if merged > 0 {
            for g in &mut queues {
                g.members.sort();
                g.members.dedup();
            }
        }
        Matches {
            plain: self.plain,
            queues,
        }
    }
}

/// The subscriptions of one account, indexed by subject, with a cache of
/// match results per publish subject.
#[derive(Debug)]
pub struct Sublist {
    root: Level,
    count: usize,
    generation: u64,
    cache_enabled: bool,
    cache: HashMap<Box<[u8]>, Arc<Matches>>,
    recent_misses: RecentMisses,
    /// Shared answer for subjects that can match nothing, so rejecting them
    /// does not allocate.
    empty: Arc<Matches>,
    /// The result of the last match that was not cached, refilled in place
    /// by the next one once its users have let it go.
    spare: Arc<Matches>,
    inserts: u64,
    removes: u64,
    match_calls: u64,
    cache_hits: u64,
}

impl Default for Sublist {
    fn default() -> Self {
        Self::new()
    }
}

impl Sublist {
    /// An empty sublist with the match cache enabled.
    pub fn new() -> Self {
        Self::with_cache(true)
    }

    /// An empty sublist; `enabled = false` turns the match cache off
    /// (`disable_sublist_cache`).
    pub fn with_cache(enabled: bool) -> Self {
        Sublist {
            root: Level::default(),
            count: 0,
            generation: 0,
            cache_enabled: enabled,
            cache: HashMap::new(),
            recent_misses: RecentMisses::new(),
            empty: Arc::new(Matches::default()),
            spare: Arc::new(Matches::default()),
            inserts: 0,
            removes: 0,
            match_calls: 0,
            cache_hits: 0,
        }
    }

    /// Adds a subscription. `subject` should already satisfy
    /// [`subject::is_valid_subject`]; anything else is stored harmlessly but
    /// cannot be reached by a publish. A (subject, queue, key) triple
    /// inserted twice is stored once.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, key: SubKey) {
        let mut level = &mut self.root;
        let mut rest = subject;
        let node = loop {
            let (tok, tail) = split_first_token(rest);
            let node = level.child_or_insert(tok);
            match tail {
                None => break node,
                Some(t) => {
                    rest = t;
                    level = node.next.get_or_insert_with(Default::default);
                }
            }
        };
        if node.insert(queue, key) {
            self.count += 1;
            self.inserts += 1;
            self.generation += 1;
            self.invalidate(subject);
        }
    }

    /// Removes a subscription; returns false if it was not there. Trie nodes
    /// left without subscriptions or children are pruned.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, key: SubKey) -> bool {
        // Pass 1: remove the key and find the shallowest token position from
        // which the path holds nothing else (every node on it has no
        // subscriptions and only the next node of the path as child).
        let mut level = &mut self.root;
        let mut rest = subject;
        let mut depth = 0usize;
        let mut prune_from: Option<usize> = None;
        loop {
            let (tok, tail) = split_first_token(rest);
            let Some(node) = level.child_mut(tok) else {
                return false;
            };
            match tail {
                Some(t) => {
                    let chain_only = !node.has_subs()
                        && node.next.as_ref().is_some_and(|l| l.child_count() == 1);
                    if !chain_only {
                        prune_from = None;
                    } else if prune_from.is_none() {
                        prune_from = Some(depth);
                    }
                    let Some(next) = node.next.as_deref_mut() else {
                        return false;
                    };
                    level = next;
                    rest = t;
                    depth += 1;
                }
                None => {
                    if !node.remove(queue, key) {
                        return false;
                    }
                    if node.has_subs() || node.next.is_some() {
                        prune_from = None;
                    } else if prune_from.is_none() {
                        prune_from = Some(depth);
                    }
                    break;
                }
            }
        }
        // Pass 2: cut the dead chain off where it hangs from a live part.
        if let Some(cut) = prune_from {
            self.prune(subject, cut);
        }
        self.count -= 1;
        self.removes += 1;
        self.generation += 1;
        self.invalidate(subject);
        true
    }

    /// Removes the child for token number `cut` of `subject` from its level,
    /// and that level from its owner if it becomes empty.
    fn prune(&mut self, subject: &[u8], cut: usize) -> Option<()> {
        let mut toks = subject::tokens(subject);
        if cut == 0 {
            self.root.remove_child(toks.next()?);
            return Some(());
        }
        let mut level = &mut self.root;
        for _ in 1..cut {
            level = level.child_mut(toks.next()?)?.next.as_deref_mut()?;
        }
        let owner = level.child_mut(toks.next()?)?;
        let below = owner.next.as_deref_mut()?;
        below.remove_child(toks.next()?);
        if below.is_empty() {
            owner.next = None;
        }
        Some(())
    }

    /// Drops cached results that a change to `subject`'s subscriptions affects.
    fn invalidate(&mut self, subject: &[u8]) {
        if self.cache.is_empty() {
            return;
        }
        if subject::is_literal(subject) {
            self.cache.remove(subject);
        } else {
            self.cache
                .retain(|cached, _| !subject::subject_matches(subject, cached));
        }
    }

    /// The subscriptions a message published on `subject` reaches. A subject
    /// that is empty or has an empty token reaches nothing. A subject is
    /// cached on its second miss (see `RecentMisses`); until then its result
    /// is built in a reused buffer and allocates nothing once warm.
    pub fn matches(&mut self, subject: &[u8]) -> Arc<Matches> {
        self.match_calls += 1;
        if let Some(hit) = self.cache.get(subject) {
            self.cache_hits += 1;
            return Arc::clone(hit);
        }
        if !subject::has_no_empty_token(subject) {
            return Arc::clone(&self.empty);
        }
        let admit = self.cache_enabled && {
            let hash = self.cache.hasher().hash_one(subject);
            self.recent_misses.missed_before(hash)
        };
        if !admit {
            return self.matches_uncached(subject);
        }
        let result = Arc::new(self.collect(subject, Matches::default()));
        {
            if self.cache.len() >= CACHE_MAX {
                // Keep an arbitrary few; the subject being added makes up the rest.
                let mut keep = CACHE_SWEEP_TO - 1;
                self.cache.retain(|_, _| {
                    let k = keep > 0;
                    keep = keep.saturating_sub(1);
                    k
                });
            }
            self.cache.insert(subject.into(), Arc::clone(&result));
        }
        result
    }

    /// A well-formed subject's result without the cache, built in
    /// [`Sublist::spare`] when nobody else holds it.
    fn matches_uncached(&mut self, subject: &[u8]) -> Arc<Matches> {
        let reused = Arc::get_mut(&mut self.spare).map(std::mem::take);
        let result = self.collect(subject, reused.unwrap_or_default());
        let empty = result.is_empty();
        match Arc::get_mut(&mut self.spare) {
            Some(spare) => *spare = result,
            None if empty => return Arc::clone(&self.empty),
            None => self.spare = Arc::new(result),
        }
        if empty {
            return Arc::clone(&self.empty);
        }
        Arc::clone(&self.spare)
    }

    /// Walks the trie for a publish subject. Iterative, with the `*`
    /// branches kept on an explicit stack, so deep subjects cannot overflow
    /// the call stack; each trie node is visited at most once.
    /// The result goes into `room`'s vectors (emptied first).
    fn collect(&self, subject: &[u8], room: Matches) -> Matches {
        let Matches {
            mut plain,
            mut queues,
        } = room;
        plain.clear();
        queues.clear();
        let mut out = Collector {
            plain,
            plain_sources: 0,
            queues: Vec::new(),
            room: queues,
        };
        let mut pending: Vec<(&Level, &[u8])> = Vec::new();
        let mut next = Some((&self.root, subject));
        while let Some((mut level, mut rest)) = next.take().or_else(|| pending.pop()) {
            loop {
                let (tok, tail) = split_first_token(rest);
                if let Some(fwc) = level.fwc.as_deref() {
                    out.add(fwc);
                }
                if let Some(pwc) = level.pwc.as_deref() {
                    match tail {
                        None => out.add(pwc),
                        Some(t) => {
                            if let Some(below) = pwc.next.as_deref() {
                                pending.push((below, t));
                            }
                        }
                    }
                }
                // Publish tokens `*` and `>` are literal: only wildcard slots
                // (handled above) can match them.
                let lit = match tok {
                    [PWC] | [FWC] => None,
                    _ => level.literals.get(tok),
                };
                let Some(node) = lit else { break };
                match (tail, node.next.as_deref()) {
                    (None, _) => {
                        out.add(node);
                        break;
                    }
                    (Some(t), Some(below)) => {
                        level = below;
                        rest = t;
                    }
                    (Some(_), None) => break,
                }
            }
        }
        out.finish()
    }

    /// Number of stored subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no subscriptions are stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bumped on every successful insert or remove.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of cached match results.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> SublistStats {
        SublistStats {
            num_subscriptions: self.count,
            num_cache: self.cache.len(),
            num_inserts: self.inserts,
            num_removes: self.removes,
            num_matches: self.match_calls,
            cache_hits: self.cache_hits,
        }
    }

    /// The largest and the total fan-out (plain subscribers plus queue
    /// groups) of the cached results, as nats-server reports them in
    /// `max_fanout` and `avg_fanout`.
    pub fn cache_fanout(&self) -> (usize, usize) {
        self.cache.values().fold((0, 0), |(max, total), m| {
            let n = m.plain.len() + m.queues.len();
            (max.max(n), total + n)
        })
    }

    /// Number of trie nodes, for checking that pruning works.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![&self.root];
        while let Some(level) = stack.pop() {
            let wild = level.pwc.iter().chain(level.fwc.iter()).map(|b| &**b);
            for node in level.literals.values().chain(wild) {
                n += 1;
                if let Some(below) = node.next.as_deref() {
                    assert!(!below.is_empty(), "empty level kept");
                    stack.push(below);
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::subject_matches;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn k(n: u32) -> SubKey {
        SubKey(n)
    }

    fn plain(m: &Matches) -> Vec<u32> {
        m.plain.iter().map(|k| k.0).collect()
    }

    fn groups(m: &Matches) -> Vec<(String, Vec<u32>)> {
        m.queues
            .iter()
            .map(|g| {
                let name = String::from_utf8_lossy(&g.name).into_owned();
                (name, g.members.iter().map(|k| k.0).collect())
            })
            .collect()
    }

    #[test]
    fn literal_and_wildcard_matching() {
        for cache in [true, false] {
            let mut sl = Sublist::with_cache(cache);
            sl.insert(b"foo", None, k(1));
            sl.insert(b"foo.bar", None, k(2));
            sl.insert(b"foo.*", None, k(3));
            sl.insert(b"foo.>", None, k(4));
            sl.insert(b">", None, k(5));
            sl.insert(b"*.bar", None, k(6));
            assert_eq!(plain(&sl.matches(b"foo.bar")), [2, 3, 4, 5, 6]);
            assert_eq!(plain(&sl.matches(b"foo")), [1, 5]);
            assert_eq!(plain(&sl.matches(b"foo.baz")), [3, 4, 5]);
            assert_eq!(plain(&sl.matches(b"foo.bar.baz")), [4, 5]);
            assert_eq!(plain(&sl.matches(b"x")), [5]);
            // A `*` publish token is literal: wildcard subs only.
            assert_eq!(plain(&sl.matches(b"foo.*")), [3, 4, 5]);
            assert_eq!(plain(&sl.matches(b"foo.>")), [3, 4, 5]);
            assert!(sl.matches(b"").is_empty());
            assert!(sl.matches(b"foo.").is_empty());
            assert!(sl.matches(b"foo..bar").is_empty());
            assert!(sl.matches(b".foo").is_empty());
        }
    }

    #[test]
    fn wildcard_characters_inside_tokens_are_literal() {
        let mut sl = Sublist::new();
        sl.insert(b"foo*", None, k(1));
        sl.insert(b"a>b.c", None, k(2));
        assert_eq!(plain(&sl.matches(b"foo*")), [1]);
        assert!(sl.matches(b"foox").is_empty());
        assert_eq!(plain(&sl.matches(b"a>b.c")), [2]);
        assert!(sl.matches(b"a.c").is_empty());
    }

    #[test]
    fn queue_groups_merge_by_name() {
        let mut sl = Sublist::new();
        sl.insert(b"foo.*", Some(b"q"), k(1));
        sl.insert(b"foo.bar", Some(b"q"), k(2));
        sl.insert(b"foo.bar", Some(b"q"), k(3));
        sl.insert(b"foo.>", Some(b"r"), k(4));
        sl.insert(b"foo.bar", None, k(5));
        let m = sl.matches(b"foo.bar");
        assert_eq!(plain(&m), [5]);
        assert_eq!(
            groups(&m),
            [("q".to_string(), vec![1, 2, 3]), ("r".to_string(), vec![4])]
        );
        let m = sl.matches(b"foo.baz");
        assert!(m.plain.is_empty());
        assert_eq!(
            groups(&m),
            [("q".to_string(), vec![1]), ("r".to_string(), vec![4])]
        );
    }

    #[test]
    fn duplicates_and_absent_removes() {
        let mut sl = Sublist::new();
        sl.insert(b"foo", None, k(1));
        sl.insert(b"foo", None, k(1));
        sl.insert(b"foo", Some(b"q"), k(1));
        sl.insert(b"foo", Some(b"q"), k(1));
        assert_eq!(sl.len(), 2);
        assert_eq!(sl.generation(), 2);
        assert!(!sl.remove(b"foo", None, k(2)));
        assert!(!sl.remove(b"bar", None, k(1)));
        assert!(!sl.remove(b"foo.bar", None, k(1)));
        assert!(!sl.remove(b"foo", Some(b"r"), k(1)));
        assert_eq!(sl.generation(), 2);
        assert!(sl.remove(b"foo", None, k(1)));
        assert!(!sl.remove(b"foo", None, k(1)));
        assert!(sl.remove(b"foo", Some(b"q"), k(1)));
        assert!(sl.is_empty());
        assert_eq!(sl.generation(), 4);
        let st = sl.stats();
        assert_eq!(
            (st.num_inserts, st.num_removes, st.num_subscriptions),
            (2, 2, 0)
        );
    }

    #[test]
    fn pruning_leaves_an_empty_trie() {
        let subjects: &[&[u8]] = &[
            b"foo",
            b"foo.bar",
            b"foo.bar.baz",
            b"foo.*",
            b"foo.*.baz",
            b"foo.>",
            b">",
            b"*",
            b"*.*.*.>",
            b"a.b.c.d.e",
            b"a.b.x",
            b"a.*.c",
        ];
        let mut sl = Sublist::new();
        for (i, s) in subjects.iter().enumerate() {
            sl.insert(s, None, k(i as u32));
            sl.insert(s, Some(b"q"), k(i as u32));
        }
        assert!(sl.node_count() > subjects.len());
        // Remove in a different order from insertion to exercise mid-chain cuts.
        for (i, s) in subjects.iter().enumerate().rev() {
            assert!(sl.remove(s, None, k(i as u32)));
        }
        for (i, s) in subjects.iter().enumerate() {
            assert!(sl.remove(s, Some(b"q"), k(i as u32)));
            sl.node_count(); // asserts no empty level is kept along the way
        }
        assert_eq!(sl.node_count(), 0);
        assert!(sl.is_empty());
        assert!(sl.matches(b"foo.bar").is_empty());
    }

    #[test]
    fn pruning_keeps_live_branches() {
        let mut sl = Sublist::new();
        sl.insert(b"a.b.c", None, k(1));
        sl.insert(b"a", None, k(2));
        sl.insert(b"a.b.c.d.e", None, k(3));
        assert_eq!(sl.node_count(), 5);
        assert!(sl.remove(b"a.b.c.d.e", None, k(3)));
        assert_eq!(sl.node_count(), 3);
        assert!(sl.remove(b"a.b.c", None, k(1)));
        assert_eq!(sl.node_count(), 1);
        assert_eq!(plain(&sl.matches(b"a")), [2]);
        assert!(sl.remove(b"a", None, k(2)));
        assert_eq!(sl.node_count(), 0);
    }

    #[test]
    fn churn_does_not_grow_the_trie() {
        let mut sl = Sublist::new();
        sl.insert(b"keep.me", None, k(0));
        for i in 0..2000u32 {
            let s = format!("churn.{}.x.{}", i % 7, i);
            sl.insert(s.as_bytes(), Some(b"q"), k(i));
            sl.matches(s.as_bytes());
            assert!(sl.remove(s.as_bytes(), Some(b"q"), k(i)));
        }
        assert_eq!(sl.node_count(), 2);
        assert_eq!(sl.len(), 1);
    }

    #[test]
    fn subjects_used_once_stay_out_of_the_cache() {
        let mut sl = Sublist::new();
        sl.insert(b"_INBOX.abc.*", None, k(1));
        sl.insert(b"_INBOX.abc.*", Some(b"q"), k(2));
        sl.insert(b"hot", None, k(3));
        sl.matches(b"hot");
        sl.matches(b"hot");
        let held = sl.matches(b"_INBOX.abc.0");
        for i in 1..3000u32 {
            let s = format!("_INBOX.abc.{i}");
            let m = sl.matches(s.as_bytes());
            assert_eq!(plain(&m), [1]);
            assert_eq!(&*m.queues[0].members, [k(2)]);
            assert_eq!(plain(&sl.matches(b"hot")), [3]);
        }
        assert_eq!(sl.cache_len(), 1, "only the repeated subject is cached");
        // A result someone still holds is never refilled for another subject.
        assert_eq!(plain(&held), [1]);
        sl.insert(b"_INBOX.abc.0", None, k(4));
        sl.matches(b"_INBOX.abc.5");
        assert_eq!(plain(&held), [1]);
        assert!(sl.matches(b"nothing.here").is_empty());
    }

    #[test]
    fn cache_is_coherent_and_bounded() {
        let mut sl = Sublist::new();
        sl.insert(b"foo.bar", None, k(1));
        // A subject is cached on its second miss.
        assert_eq!(plain(&sl.matches(b"foo.bar")), [1]);
        assert_eq!(sl.cache_len(), 0);
        let first = sl.matches(b"foo.bar");
        assert_eq!(sl.cache_len(), 1);
        let again = sl.matches(b"foo.bar");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(sl.stats().cache_hits, 1);

        sl.insert(b"foo.*", None, k(2));
        assert_eq!(plain(&sl.matches(b"foo.bar")), [1, 2]);
        sl.insert(b"foo.bar", None, k(3));
        assert_eq!(plain(&sl.matches(b"foo.bar")), [1, 2, 3]);
        assert!(sl.remove(b"foo.*", None, k(2)));
        assert_eq!(plain(&sl.matches(b"foo.bar")), [1, 3]);
        // Unrelated changes keep the entry.
        let before = sl.matches(b"foo.bar");
        sl.insert(b"other", None, k(9));
        sl.insert(b"x.*", None, k(9));
        assert!(Arc::ptr_eq(&before, &sl.matches(b"foo.bar")));

        sl.insert(b"many.>", None, k(4));
        for i in 0..5000u32 {
            let s = format!("many.{i}");
            assert_eq!(plain(&sl.matches(s.as_bytes())), [4]);
            assert_eq!(plain(&sl.matches(s.as_bytes())), [4]);
            assert!(sl.cache_len() <= CACHE_MAX);
        }
        assert!(sl.cache_len() >= CACHE_SWEEP_TO);
        // Invalid subjects are not cached.
        let n = sl.cache_len();
        sl.matches(b"many..x");
        assert_eq!(sl.cache_len(), n);

        let mut off = Sublist::with_cache(false);
        off.insert(b"a", None, k(1));
        assert_eq!(plain(&off.matches(b"a")), [1]);
        assert_eq!(off.cache_len(), 0);
        assert_eq!(off.stats().num_matches, 1);
    }

    #[test]
    fn deep_subjects_do_not_overflow() {
        let deep = vec!["a"; 200_000].join(".");
        let wild = vec!["*"; 200_000].join(".");
        let mut sl = Sublist::new();
        sl.insert(deep.as_bytes(), None, k(1));
        sl.insert(wild.as_bytes(), None, k(2));
        assert_eq!(plain(&sl.matches(deep.as_bytes())), [1, 2]);
        assert!(sl.remove(deep.as_bytes(), None, k(1)));
        assert_eq!(plain(&sl.matches(deep.as_bytes())), [2]);
        drop(sl); // the wildcard chain is torn down by Drop
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let mut sl = Sublist::new();
        for s in [&b""[..], b".", b"a..b", b"a.>.b", b">.>", b" "] {
            sl.insert(s, Some(b""), k(1));
            sl.matches(s);
            assert!(sl.remove(s, Some(b""), k(1)));
        }
        assert_eq!(sl.node_count(), 0);
    }

    // ---- model-based property test ----

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, Option<&'static str>, u32),
        Remove(String, Option<&'static str>, u32),
        RemoveExisting(usize),
        Match(String),
    }

    fn sub_subject() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*"]), 0..3),
            prop::sample::select(vec!["a", "b", "c", "*", ">"]),
        )
            .prop_map(|(mut t, last)| {
                t.push(last);
                t.join(".")
            })
    }

    fn pub_subject() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*", ">"]), 1..5)
                .prop_map(|t| t.join(".")),
            1 => prop::collection::vec(prop::sample::select(vec!["a", "", "*"]), 0..4)
                .prop_map(|t| t.join(".")),
        ]
    }

    fn queue() -> impl Strategy<Value = Option<&'static str>> {
        prop::sample::select(vec![None, Some("q1"), Some("q2")])
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (sub_subject(), queue(), 0..6u32).prop_map(|(s, q, k)| Op::Insert(s, q, k)),
            1 => (sub_subject(), queue(), 0..6u32).prop_map(|(s, q, k)| Op::Remove(s, q, k)),
            2 => any::<usize>().prop_map(Op::RemoveExisting),
            4 => pub_subject().prop_map(Op::Match),
        ]
    }

    type Model = BTreeSet<(String, Option<&'static str>, u32)>;

    fn expected(model: &Model, subject: &str) -> (Vec<u32>, BTreeMap<String, Vec<u32>>) {
        let mut plain = BTreeSet::new();
        let mut queues: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for (s, q, key) in model {
            if subject_matches(s.as_bytes(), subject.as_bytes()) {
                match q {
                    None => {
                        plain.insert(*key);
                    }
                    Some(q) => {
                        queues.entry(q.to_string()).or_default().insert(*key);
                    }
                }
            }
        }
        let queues = queues
            .into_iter()
            .map(|(n, m)| (n, m.into_iter().collect()))
            .collect();
        (plain.into_iter().collect(), queues)
    }

    fn actual(m: &Matches) -> (Vec<u32>, BTreeMap<String, Vec<u32>>) {
        let mut p = plain(m);
        p.sort_unstable();
        let n = p.len();
        p.dedup();
        assert_eq!(n, p.len(), "duplicate plain key");
        let mut queues = BTreeMap::new();
        for (name, mut members) in groups(m) {
            members.sort_unstable();
            assert!(!members.is_empty(), "empty group");
            assert!(queues.insert(name, members).is_none(), "group listed twice");
        }
        (p, queues)
    }

    fn run_model(ops: &[Op], cache: bool) -> Result<(), TestCaseError> {
        let mut sl = Sublist::with_cache(cache);
        let mut model = Model::new();
        let mut generation = 0;
        for op in ops {
            match op {
                Op::Insert(s, q, key) => {
                    let new = model.insert((s.clone(), *q, *key));
                    sl.insert(s.as_bytes(), q.map(str::as_bytes), SubKey(*key));
                    generation += u64::from(new);
                }
                Op::Remove(s, q, key) => {
                    let had = model.remove(&(s.clone(), *q, *key));
                    let removed = sl.remove(s.as_bytes(), q.map(str::as_bytes), SubKey(*key));
                    prop_assert_eq!(had, removed);
                    generation += u64::from(had);
                }
                Op::RemoveExisting(i) => {
                    if model.is_empty() {
                        continue;
                    }
                    let (s, q, key) = model.iter().nth(i % model.len()).cloned().unwrap();
                    model.remove(&(s.clone(), q, key));
                    prop_assert!(sl.remove(s.as_bytes(), q.map(str::as_bytes), SubKey(key)));
                    generation += 1;
                }
                Op::Match(s) => {
                    let m = sl.matches(s.as_bytes());
                    prop_assert_eq!(actual(&m), expected(&model, s), "subject {:?}", s);
                }
            }
            prop_assert_eq!(sl.len(), model.len());
            prop_assert_eq!(sl.generation(), generation);
            if !cache {
                prop_assert_eq!(sl.cache_len(), 0);
            }
        }
        // Removing everything must leave no trie nodes behind.
        for (s, q, key) in std::mem::take(&mut model) {
            prop_assert!(sl.remove(s.as_bytes(), q.map(str::as_bytes), SubKey(key)));
        }
        prop_assert_eq!(sl.node_count(), 0);
        prop_assert!(sl.is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn sublist_agrees_with_model_cached(ops in prop::collection::vec(op(), 0..80)) {
            run_model(&ops, true)?;
        }

        #[test]
        fn sublist_agrees_with_model_uncached(ops in prop::collection::vec(op(), 0..80)) {
            run_model(&ops, false)?;
        }
    }
}
