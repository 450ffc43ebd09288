//! User permissions: allow/deny lists compiled into tries, the publish decision cache, `allow_responses` reply tracking.
//!
//! Semantics are nats-server's (reference §3.2, §3.3, §3.6), quirks included,
//! with one deliberate difference (reference Q1): a SUB is admitted only if every
//! subject it can match is allowed, i.e. its pattern is a subset of one allow
//! entry. nats-server instead matches the SUB subject against the allow list as
//! if it were a literal, so allow `foo.*` admits SUB `foo.>`.

use std::time::Duration;

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

use crate::config::options::{
    Permissions as PermissionsConfig, ResponsePermission, SubjectPermission,
};
use crate::subject::{is_valid_subject, split_first_token, tokens, FWC, PWC};
use crate::time::Time;

/// The queue group nats-server keeps for itself: no client may join it.
pub const RESERVED_QUEUE: &[u8] = b"_sys_";

/// Subjects no client may publish to, whatever its permissions (gateway replies).
const RESERVED_PUBLISH_PREFIXES: [&[u8]; 1] = [b"_GR_."];

/// Whether `subject` is one no client may publish to, whatever its permissions.
pub fn is_reserved_publish(subject: &[u8]) -> bool {
    RESERVED_PUBLISH_PREFIXES
        .iter()
        .any(|p| subject.starts_with(p))
}

/// Compiled permissions of one user; immutable, shared by its connections (Arc).
#[derive(Debug)]
pub struct Permissions {
    /// `None`: publishing is not restricted by an allow list. An empty trie
    /// (allow_responses without an allow list) allows nothing.
    publish_allow: Option<PatternTrie>,
    publish_deny: Option<PatternTrie>,
    subscribe_allow: Option<EntrySet>,
    subscribe_deny: Option<EntrySet>,
    responses: Option<ResponsePermission>,
}

/// The outcome of a SUB permission check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Every subject the subscription can match may be delivered to it.
    Allowed,
    /// Accepted, but some of its subjects are denied: filter each delivery
    /// with [`Permissions::delivery_denied`].
    AllowedFiltered,
    /// Refused: `Permissions Violation for Subscription to ...`.
    Denied,
}

impl Permissions {
    /// Compiles a user's configured permissions. Entries were validated when
    /// the configuration was read; one that is not a valid subject anyway is
    /// treated so that it cannot widen access: an allow entry grants nothing,
    /// a deny entry denies everything.
    pub fn compile(cfg: &PermissionsConfig) -> Permissions {
        let (pub_allow, pub_deny) = lists(cfg.publish.as_ref());
        let (sub_allow, sub_deny) = lists(cfg.subscribe.as_ref());
        // nats-server: allow_responses without a publish allow list installs an
        // empty one, so only tracked replies may be published.
        let publish_allow = (!pub_allow.is_empty() || cfg.allow_responses.is_some())
            .then(|| publish_trie(pub_allow, false));
        Permissions {
            publish_allow,
            publish_deny: (!pub_deny.is_empty()).then(|| publish_trie(pub_deny, true)),
            subscribe_allow: (!sub_allow.is_empty()).then(|| EntrySet::new(sub_allow, false)),
            subscribe_deny: (!sub_deny.is_empty()).then(|| EntrySet::new(sub_deny, true)),
            responses: cfg.allow_responses,
        }
    }

    /// Allow/deny decision for publishing to a literal subject (no reply tracking). Deny wins.
    ///
    /// Tokens are taken literally (a non-pedantic PUB to `foo.*` is allowed by
    /// an entry `foo.*` or `foo.>`, not by `foo.bar`), and a subject with an
    /// empty token matches no entry, as in [`crate::subject::subject_matches`].
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        self.publish_decision(subject).0
    }

    /// [`Self::can_publish`], and how much of `subject` decided it:
    /// `Some(n)` when the decision is the same for every well-formed subject
    /// that starts with `subject[..n]` (which ends with a `.`) and has more
    /// tokens; `None` when it took the whole subject.
    pub fn publish_decision(&self, subject: &[u8]) -> (bool, Option<usize>) {
        if !well_formed(subject) {
            return (self.publish_allow.is_none(), None);
        }
        let mut reach = Reach::default();
        if let Some(allow) = &self.publish_allow {
            if !allow.visit_matches(subject, &mut reach, |_| true) {
                return (false, reach.prefix());
            }
        }
        let denied = self
            .publish_deny
            .as_ref()
            .is_some_and(|deny| deny.visit_matches(subject, &mut reach, |_| true));
        (!denied, reach.prefix())
    }

    /// Whether publishing is restricted at all (false => skip all checks; the fast path).
    pub fn restricts_publish(&self) -> bool {
        self.publish_allow.is_some() || self.publish_deny.is_some()
    }

    /// Decides a SUB to the pattern `subject` (already validated), optionally in
    /// queue group `queue`.
    ///
    /// Allow side: the entries whose subject pattern covers `subject` (a
    /// superset of it) count. A plain SUB needs a covering entry without a
    /// queue. For a queue SUB, if any covering entry names a queue, one of
    /// those must match the group; otherwise a covering plain entry admits any
    /// group. Deny side: an entry applies if it has no queue, or the SUB's group
    /// matches it; one that covers `subject` denies the SUB, one that merely
    /// overlaps it makes the SUB filtered.
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> SubscribeDecision {
        let mut filtered = false;
        if let Some(allow) = &self.subscribe_allow {
            let (mut plain, mut grouped, mut group_ok) = (false, false, false);
            allow.trie.visit_related(subject, Relation::Covers, |e| {
                match allow.queue(e) {
                    None => plain = true,
                    Some(pattern) => {
                        grouped = true;
                        group_ok |= queue.is_some_and(|q| queue_matches(pattern, q));
                    }
                }
                // Stop once the answer cannot change.
                group_ok || (queue.is_none() && plain)
            });
            let allowed = match queue {
                None => plain,
                Some(_) if grouped => group_ok,
                Some(_) => plain,
            };
            if !allowed {
                return SubscribeDecision::Denied;
            }
            // Admitted through a plain entry: queue entries that only partly
            // overlap the SUB may reserve some of its subjects for other groups.
            if let Some(q) = queue.filter(|_| !grouped && allow.has_queues) {
                filtered = allow.trie.visit_related(subject, Relation::Overlaps, |e| {
                    allow.queue(e).is_some_and(|p| !queue_matches(p, q))
                });
            }
        }
        if let Some(deny) = &self.subscribe_deny {
            let applies = |e| deny.applies(e, queue);
            if deny.trie.visit_related(subject, Relation::Covers, applies) {
                return SubscribeDecision::Denied;
            }
            filtered = filtered
                || deny
                    .trie
                    .visit_related(subject, Relation::Overlaps, applies);
        }
        if filtered {
            SubscribeDecision::AllowedFiltered
        } else {
            SubscribeDecision::Allowed
        }
    }

    /// For subscriptions accepted with `SubscribeDecision::AllowedFiltered`: whether a message on `subject` must not be delivered to it.
    ///
    /// `subject` is one the subscription's pattern matched, so the allow list
    /// only needs consulting for queue subscriptions (queue entries may reserve
    /// a subject for other groups).
    pub fn delivery_denied(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !well_formed(subject) {
            // Matches no entry; the sublist delivers no such subject anyway.
            return false;
        }
        if let Some(deny) = &self.subscribe_deny {
            if deny
                .trie
                .visit_matches(subject, &mut Reach::default(), |e| deny.applies(e, queue))
            {
                return true;
            }
        }
        match (queue, &self.subscribe_allow) {
            (Some(q), Some(allow)) if allow.has_queues => {
                let mut grouped = false;
                let ok = allow
                    .trie
                    .visit_matches(subject, &mut Reach::default(), |e| match allow.queue(e) {
                        Some(p) => {
                            grouped = true;
                            queue_matches(p, q)
                        }
                        None => false,
                    });
                grouped && !ok
            }
            _ => false,
        }
    }

    /// The entries a publish decision on `subject` rests on: every allow and
    /// every deny entry that matches it (see [`Self::publish_decision`] for the
    /// decision itself).
    pub fn publish_grounds(&self, subject: &[u8]) -> Grounds {
        let mut grounds = Grounds::default();
        if !well_formed(subject) {
            return grounds;
        }
        let mut reach = Reach::default();
        if let Some(allow) = &self.publish_allow {
            allow.visit_matches(subject, &mut reach, |e| {
                grounds.allow.push(e);
                false
            });
        }
        if let Some(deny) = &self.publish_deny {
            deny.visit_matches(subject, &mut reach, |e| {
                grounds.deny.push(e);
                false
            });
        }
        grounds
    }

    /// The entries a SUB decision on `subject` in `queue` rests on (see
    /// [`Self::can_subscribe`] for the decision itself): allow entries that
    /// cover the pattern and admit the group, deny entries that cover it, and
    /// deny entries that only overlap it (which filter deliveries).
    pub fn subscribe_grounds(&self, subject: &[u8], queue: Option<&[u8]>) -> Grounds {
        let mut grounds = Grounds::default();
        if let Some(allow) = &self.subscribe_allow {
            allow.trie.visit_related(subject, Relation::Covers, |e| {
                let admits = match (allow.queue(e), queue) {
                    (None, _) => true,
                    (Some(pattern), Some(q)) => queue_matches(pattern, q),
                    (Some(_), None) => false,
                };
                if admits {
                    grounds.allow.push(e);
                }
                false
            });
        }
        if let Some(deny) = &self.subscribe_deny {
            deny.trie.visit_related(subject, Relation::Overlaps, |e| {
                if deny.applies(e, queue) {
                    grounds.filtered_by.push(e);
                }
                false
            });
            deny.trie.visit_related(subject, Relation::Covers, |e| {
                if deny.applies(e, queue) {
                    grounds.deny.push(e);
                }
                false
            });
            grounds.filtered_by.retain(|e| !grounds.deny.contains(e));
        }
        grounds
    }

    /// The `allow_responses` rule, if any (build a [`ReplyTracker`] from it).
    pub fn responses(&self) -> Option<ResponsePermission> {
        self.responses
    }
}

/// The configured entries a decision rests on, as indices into the allow and
/// deny lists it was taken on (publish or subscribe).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grounds {
    /// Allow entries that admit the subject.
    pub allow: Vec<usize>,
    /// Deny entries that refuse it.
    pub deny: Vec<usize>,
    /// Deny entries that only overlap a wildcard SUB: it is accepted, and
    /// what they match is not delivered to it.
    pub filtered_by: Vec<usize>,
}

/// Whether `subject` has no empty token; one that has matches no entry.
fn well_formed(subject: &[u8]) -> bool {
    crate::subject::has_no_empty_token(subject)
}

/// How far into a subject a trie walk looked (see
/// [`Permissions::publish_decision`]).
#[derive(Debug, Default)]
struct Reach {
    /// Bytes of the subject the walk depended on: whole tokens with the
    /// separator after them.
    bytes: usize,
    /// The walk depended on where the subject ends.
    end: bool,
}

impl Reach {
    /// The walk looked at `token`, starting at byte `at`, followed by more
    /// tokens (`more`) or not.
    fn token(&mut self, at: usize, token: &[u8], more: bool) {
        if more {
            self.bytes = self.bytes.max(at + token.len() + 1);
        } else {
            self.end = true;
        }
    }

    /// The walk depended on the tokens before byte `at` and on there being
    /// more from `at` on.
    fn before(&mut self, at: usize) {
        self.bytes = self.bytes.max(at);
    }

    fn prefix(&self) -> Option<usize> {
        (!self.end).then_some(self.bytes)
    }
}

/// The allow and deny lists of an optional permission.
fn lists(perm: Option<&SubjectPermission>) -> (&[String], &[String]) {
    perm.map_or((&[], &[]), |p| (&p.allow[..], &p.deny[..]))
}

/// Splits a configured entry into its subject and optional queue, as the
/// configuration reader does (`"subject queue"`, extra spaces ignored).
/// `None` if the entry is malformed.
fn parse_entry(text: &str) -> Option<(&[u8], Option<&[u8]>)> {
    let mut parts = text.split(' ').filter(|p| !p.is_empty());
    let subject = parts.next()?.as_bytes();
    let queue = parts.next().map(str::as_bytes);
    (is_valid_subject(subject) && parts.next().is_none()).then_some((subject, queue))
}

fn publish_trie(list: &[String], fail_closed: bool) -> PatternTrie {
    let mut trie = PatternTrie::new();
    for (i, text) in list.iter().enumerate() {
        match parse_entry(text) {
            Some((subject, None)) => trie.insert(subject, i),
            _ if fail_closed => trie.insert(b">", i),
            _ => {}
        }
    }
    trie
}

/// Subscribe entries: subject patterns in a trie, each with an optional queue pattern.
#[derive(Debug)]
struct EntrySet {
    trie: PatternTrie,
    /// Queue pattern of each entry, by entry index.
    queues: Vec<Option<Box<[u8]>>>,
    has_queues: bool,
}

impl EntrySet {
    fn new(list: &[String], fail_closed: bool) -> EntrySet {
        let mut set = EntrySet {
            trie: PatternTrie::new(),
            queues: Vec::with_capacity(list.len()),
            has_queues: false,
        };
        for (i, text) in list.iter().enumerate() {
            let queue = match parse_entry(text) {
                Some((subject, queue)) => {
                    set.trie.insert(subject, i);
                    queue
                }
                None => {
                    if fail_closed {
                        set.trie.insert(b">", i);
                    }
                    None
                }
            };
            set.has_queues |= queue.is_some();
            set.queues.push(queue.map(Into::into));
        }
        set
    }

    fn queue(&self, entry: usize) -> Option<&[u8]> {
        self.queues.get(entry).and_then(Option::as_deref)
    }

    /// Whether deny entry `entry` concerns a SUB in group `queue` (plain entries concern all).
    fn applies(&self, entry: usize, queue: Option<&[u8]>) -> bool {
        self.queue(entry)
            .is_none_or(|p| queue.is_some_and(|q| queue_may_match(p, q)))
    }
}

/// Whether queue `name` matches the queue `pattern` of an allow entry,
/// token by token like a subject (`*` one token, `>` one or more), as
/// nats-server decides it: the name equals the pattern, or every name the
/// name could stand for is one the pattern admits. So a `*` admits any one
/// token but a `>` (group `v1.>` is refused under `v1.*`), and empty tokens
/// are tokens like any other.
fn queue_matches(pattern: &[u8], name: &[u8]) -> bool {
    queue_tokens_match(pattern, name, false)
}

/// Whether a deny entry's queue `pattern` concerns group `name`, erring on
/// the side of denying: the name's tokens are taken literally, so a `*` of
/// the pattern also matches a name's `>` (a deny of `*.prod` covers group
/// `>.prod`, which nats-server lets through; and group `.prod`).
fn queue_may_match(pattern: &[u8], name: &[u8]) -> bool {
    queue_tokens_match(pattern, name, true)
}

/// The walk of both: `literal_fwc` lets a pattern's `*` take a name's `>`.
fn queue_tokens_match(pattern: &[u8], name: &[u8], literal_fwc: bool) -> bool {
    let mut pats = tokens(pattern);
    let mut names = tokens(name);
    loop {
        match (pats.next(), names.next()) {
            (None, None) => return true,
            (Some([FWC]), Some(_)) => return true,
            (Some([PWC]), Some(n)) if literal_fwc || n != [FWC] => {}
            (Some(p), Some(n)) if p == n => {}
            _ => return false,
        }
    }
}

const ROOT: usize = 0;

/// A trie of subject patterns; each pattern carries an entry index that walks
/// report to a visitor. Nodes live in one vector and refer to each other by index.
#[derive(Debug)]
struct PatternTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    literals: HashMap<Box<[u8]>, usize>,
    pwc: Option<usize>,
    /// Entries whose pattern ends at this node.
    ends: Vec<usize>,
    /// Entries whose pattern is this node's path followed by `>`.
    fwc: Vec<usize>,
}

impl TrieNode {
    /// Whether any entry is longer than this node's path.
    fn leads_deeper(&self) -> bool {
        !self.fwc.is_empty() || self.pwc.is_some() || !self.literals.is_empty()
    }
}

/// How a SUB pattern relates to an entry pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    /// Every subject the SUB matches, the entry matches.
    Covers,
    /// Some subject matches both.
    Overlaps,
}

impl PatternTrie {
    fn new() -> PatternTrie {
        PatternTrie {
            nodes: vec![TrieNode::default()],
        }
    }

    fn new_node(&mut self) -> usize {
        self.nodes.push(TrieNode::default());
        self.nodes.len() - 1
    }

    /// Adds a valid pattern (anything after a `>` token would be ignored).
    fn insert(&mut self, pattern: &[u8], entry: usize) {
        let mut id = ROOT;
        for tok in tokens(pattern) {
            id = match tok {
                [FWC] => {
                    self.nodes[id].fwc.push(entry);
                    return;
                }
                [PWC] => match self.nodes[id].pwc {
                    Some(child) => child,
                    None => {
                        let child = self.new_node();
                        self.nodes[id].pwc = Some(child);
                        child
                    }
                },
                _ => match self.nodes[id].literals.get(tok) {
                    Some(&child) => child,
                    None => {
                        let child = self.new_node();
                        self.nodes[id].literals.insert(tok.into(), child);
                        child
                    }
                },
            };
        }
        self.nodes[id].ends.push(entry);
    }

    /// Reports each entry matching the literal, [`well_formed`] `subject` to
    /// `visit` until it returns true; returns whether it did. Allocates nothing
    /// unless more than a handful of `*` branches are pending at once.
    /// `reach` records how much of the subject the walk looked at.
    fn visit_matches(
        &self,
        subject: &[u8],
        reach: &mut Reach,
        mut visit: impl FnMut(usize) -> bool,
    ) -> bool {
        let mut pending = Pending::new();
        let mut next = Some((ROOT, subject));
        while let Some((mut id, mut rest)) = next.take().or_else(|| pending.pop()) {
            // Follow the literal path here; `*` branches wait on `pending`.
            loop {
                let at = subject.len() - rest.len();
                let node = &self.nodes[id];
                if node.fwc.iter().any(|&e| visit(e)) {
                    reach.before(at);
                    return true;
                }
                let (tok, tail) = split_first_token(rest);
                reach.token(at, tok, tail.is_some());
                if let Some(pwc) = node.pwc {
                    let child = &self.nodes[pwc];
                    match tail {
                        None if child.ends.iter().any(|&e| visit(e)) => return true,
                        Some(t) if child.leads_deeper() => pending.push((pwc, t)),
                        _ => {}
                    }
                }
                // Subject tokens `*` and `>` are literal and never literal children.
                let Some(&child) = node.literals.get(tok) else {
                    break;
                };
                match tail {
                    None => {
                        if self.nodes[child].ends.iter().any(|&e| visit(e)) {
                            return true;
                        }
                        break;
                    }
                    Some(t) => (id, rest) = (child, t),
                }
            }
        }
        false
    }

    /// Reports each entry standing in `relation` to the SUB pattern `pattern`
    /// to `visit` until it returns true; returns whether it did. Runs per SUB,
    /// not per message, so it uses a plain work stack.
    fn visit_related(
        &self,
        pattern: &[u8],
        relation: Relation,
        mut visit: impl FnMut(usize) -> bool,
    ) -> bool {
        let overlap = relation == Relation::Overlaps;
        // (node, rest of the pattern); `None` once the pattern is used up at the node.
        let mut stack: Vec<(usize, Option<&[u8]>)> = vec![(ROOT, Some(pattern))];
        while let Some((id, rest)) = stack.pop() {
            let node = &self.nodes[id];
            let Some(rest) = rest else {
                if node.ends.iter().any(|&e| visit(e)) {
                    return true;
                }
                continue;
            };
            // `prefix.>` covers (so overlaps) anything with at least one more token.
            if node.fwc.iter().any(|&e| visit(e)) {
                return true;
            }
            let (tok, tail) = split_first_token(rest);
            match tok {
                // Only an entry `>` covers a SUB `>`; every longer entry overlaps it.
                [FWC] => {
                    if overlap && self.visit_below(node, &mut visit) {
                        return true;
                    }
                }
                // An entry `*` covers a SUB `*`; entry literals only overlap it.
                [PWC] => {
                    stack.extend(node.pwc.map(|c| (c, tail)));
                    if overlap {
                        stack.extend(node.literals.values().map(|&c| (c, tail)));
                    }
                }
                _ => {
                    stack.extend(node.pwc.map(|c| (c, tail)));
                    stack.extend(node.literals.get(tok).map(|&c| (c, tail)));
                }
            }
        }
        false
    }

    /// Reports every entry longer than `node`'s path (its subtree, `node` itself excluded).
    fn visit_below(&self, node: &TrieNode, visit: &mut impl FnMut(usize) -> bool) -> bool {
        let mut stack: Vec<usize> = node.pwc.into_iter().collect();
        stack.extend(node.literals.values().copied());
        while let Some(id) = stack.pop() {
            let n = &self.nodes[id];
            if n.ends.iter().chain(&n.fwc).any(|&e| visit(e)) {
                return true;
            }
            stack.extend(n.pwc);
            stack.extend(n.literals.values().copied());
        }
        false
    }
}

/// Pending `*` branches of a match walk: a few inline, more spilled to the heap.
struct Pending<'a> {
    inline: [(usize, &'a [u8]); 8],
    len: usize,
    spill: Vec<(usize, &'a [u8])>,
}

impl<'a> Pending<'a> {
    fn new() -> Self {
        Pending {
            inline: [(0, &[]); 8],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, item: (usize, &'a [u8])) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
            }
            None => self.spill.push(item),
        }
    }

    fn pop(&mut self) -> Option<(usize, &'a [u8])> {
        if let Some(item) = self.spill.pop() {
            return Some(item);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get(self.len).copied()
    }
}

/// Most publish decisions a connection caches (nats-server's `maxPermCacheSize`).
const PUBLISH_CACHE_MAX: usize = 128;
/// How many are evicted when the cache is full (nats-server's `pruneSize`).
const PUBLISH_CACHE_EVICT: usize = 32;

/// Decisions settled by a prefix a connection keeps (see [`PublishCache`]).
const PREFIX_SLOTS: usize = 4;

/// Per-connection cache of publish decisions: decisions a subject's prefix
/// settled, then whole subjects (nats-server: 128 entries, evict ~32 when
/// full).
///
/// A decision that depended only on a prefix (`$JS.ACK.` under an allow
/// entry `$JS.ACK.>`) is kept by that prefix, in one of a few slots, and
/// answers every later subject under it: subjects used once (ack subjects
/// with their sequence numbers) then cost neither a trie walk nor a place
/// among the whole subjects.
///
/// Caches only [`Permissions::publish_decision`] results, never
/// reply-tracking ones; clear it when the connection's permissions change.
/// The engine asks it only when the subject differs from the connection's
/// last one ([`crate::memo::PublishMemo`] answers repeats).
#[derive(Debug, Default)]
pub struct PublishCache {
    map: HashMap<Box<[u8]>, bool>,
    /// (prefix ending in `.`, decision); buffers reused when replaced.
    prefixes: Vec<(Vec<u8>, bool)>,
    /// The prefix slot replaced next once all are used.
    next_prefix: usize,
}

impl PublishCache {
    /// An empty cache; allocates nothing until the first insert.
    pub fn new() -> Self {
        Self::default()
    }

    /// `perms`' decision for publishing to `subject`, from the cache when it
    /// has it. Allocates only when a new subject or prefix is cached.
    pub fn decide(&mut self, subject: &[u8], perms: &Permissions) -> bool {
        if let Some(allowed) = self.by_prefix(subject).or_else(|| self.get(subject)) {
            return allowed;
        }
        let (allowed, prefix) = perms.publish_decision(subject);
        match prefix {
            Some(len) => self.insert_prefix(&subject[..len], allowed),
            None => self.insert(subject, allowed),
        }
        allowed
    }

    /// The decision a cached prefix of `subject` settled.
    fn by_prefix(&self, subject: &[u8]) -> Option<bool> {
        self.prefixes.iter().find_map(|(prefix, allowed)| {
            let rest = subject.strip_prefix(&prefix[..])?;
            well_formed(rest).then_some(*allowed)
        })
    }

    fn insert_prefix(&mut self, prefix: &[u8], allowed: bool) {
        if self.prefixes.len() < PREFIX_SLOTS {
            self.prefixes.push((prefix.to_vec(), allowed));
            return;
        }
        let slot = &mut self.prefixes[self.next_prefix];
        slot.0.clear();
        slot.0.extend_from_slice(prefix);
        slot.1 = allowed;
        self.next_prefix = (self.next_prefix + 1) % PREFIX_SLOTS;
    }

    /// The cached decision for `subject`. Never allocates.
    pub fn get(&self, subject: &[u8]) -> Option<bool> {
        self.map.get(subject).copied()
    }

    /// Caches a decision. A full cache first drops 32 entries in hash order,
    /// which stands in for nats-server's random choice.
    pub fn insert(&mut self, subject: &[u8], allowed: bool) {
        if let Some(cached) = self.map.get_mut(subject) {
            *cached = allowed;
            return;
        }
        if self.map.len() >= PUBLISH_CACHE_MAX {
            let mut evict = PUBLISH_CACHE_EVICT;
            self.map.retain(|_, _| {
                let keep = evict == 0;
                evict = evict.saturating_sub(1);
                keep
            });
        }
        self.map.insert(subject.into(), allowed);
    }

    /// Forgets every decision.
    pub fn clear(&mut self) {
        self.map.clear();
        self.prefixes.clear();
        self.next_prefix = 0;
    }

    /// Number of cached decisions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Records between lazy prunes (nats-server's `replyPermLimit`).
const PRUNE_EVERY_RECORDS: u32 = 4096;
/// Time between lazy prunes (nats-server's `replyPruneTime`).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Per-connection `allow_responses` tracking (reference §3.6).
#[derive(Clone, Debug)]
pub struct ReplyTracker {
    rule: ResponsePermission,
    replies: HashMap<Box<[u8]>, Tracked>,
    records_since_prune: u32,
    last_prune: Time,
    /// No later than the oldest tracked delivery time (exact after a prune).
    oldest: Option<Time>,
}

#[derive(Clone, Copy, Debug)]
struct Tracked {
    /// When the request carrying this reply subject was delivered.
    since: Time,
    /// Replies published so far.
    count: u64,
}

impl ReplyTracker {
    /// An empty tracker applying `rule`.
    pub fn new(rule: ResponsePermission) -> Self {
        ReplyTracker {
            rule,
            replies: HashMap::new(),
            records_since_prune: 0,
            last_prune: Time::ZERO,
            oldest: None,
        }
    }

    fn expired(&self, since: Time, now: Time) -> bool {
        self.rule.expires.is_some_and(|ttl| now - since > ttl)
    }

    /// A message with reply subject `reply` was delivered to this connection at `now` (call only when the connection may not already publish to `reply`). Starts tracking unless already tracked.
    ///
    /// An entry that is tracked but expired starts over, as it would had a
    /// prune removed it first.
    pub fn record(&mut self, reply: &[u8], now: Time) {
        self.records_since_prune = self.records_since_prune.saturating_add(1);
        if self.records_since_prune >= PRUNE_EVERY_RECORDS || now - self.last_prune >= PRUNE_EVERY {
            self.prune(now);
        }
        let fresh = Tracked {
            since: now,
            count: 0,
        };
        let rule = self.rule;
        match self.replies.entry_ref(reply) {
            EntryRef::Occupied(mut o) => {
                // A live entry keeps its time and count: a repeated delivery
                // does not renew the allowance (nats-server behaviour).
                if rule.expires.is_some_and(|ttl| now - o.get().since > ttl) {
                    *o.get_mut() = fresh;
                }
            }
            EntryRef::Vacant(v) => {
                v.insert_with_key(reply.into(), fresh);
            }
        }
        self.oldest = Some(self.oldest.map_or(now, |t| t.min(now)));
    }

    /// A publish to `subject` failed the allow/deny check: may it go out as a tracked reply? Uses one of `max`; removes expired or used-up entries.
    pub fn allow_reply(&mut self, subject: &[u8], now: Time) -> bool {
        let Some(entry) = self.replies.get_mut(subject) else {
            return false;
        };
        entry.count = entry.count.saturating_add(1);
        let (since, count) = (entry.since, entry.count);
        let over = self.rule.max.is_some_and(|max| count > max);
        if over || self.expired(since, now) {
            self.remove(subject);
            return false;
        }
        if self.rule.max == Some(count) {
            self.remove(subject);
        }
        true
    }

    fn remove(&mut self, subject: &[u8]) {
        self.replies.remove(subject);
        if self.replies.is_empty() {
            self.oldest = None;
        }
    }

    /// Drops expired entries; `record` calls it lazily (every 4096 records or 1 s since the last prune) so the map cannot grow without bound.
    ///
    /// Without an expiry nothing is dropped: entries then live until used up,
    /// as in nats-server.
    pub fn prune(&mut self, now: Time) {
        self.records_since_prune = 0;
        self.last_prune = now;
        if let Some(ttl) = self.rule.expires {
            self.replies.retain(|_, t| now - t.since <= ttl);
        }
        self.oldest = self.replies.values().map(|t| t.since).min();
        // Give back the memory of a burst once it has drained.
        let capacity = self.replies.capacity();
        if capacity > 64 && self.replies.len() * 4 < capacity {
            self.replies.shrink_to(self.replies.len() * 2);
        }
    }

    /// Number of tracked reply subjects.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    /// Whether no reply subject is tracked.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// When the next entry expires (for the engine's timer), if any.
    ///
    /// Never later than the true next expiry; it may be earlier once entries
    /// have been used up, and a [`prune`](Self::prune) at that time makes it exact again.
    pub fn next_expiry(&self) -> Option<Time> {
        let ttl = self.rule.expires?;
        // An expiry is "more than ttl after delivery": the first instant past it.
        self.oldest
            .map(|t| t + ttl + Duration::from_nanos(1))
            .filter(|_| !self.replies.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::SubscribeDecision::{Allowed, AllowedFiltered, Denied};
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn rule(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: list(allow),
            deny: list(deny),
            ..Default::default()
        })
    }

    fn publish(allow: &[&str], deny: &[&str]) -> Permissions {
        Permissions::compile(&PermissionsConfig {
            publish: rule(allow, deny),
            ..Default::default()
        })
    }

    fn subscribe(allow: &[&str], deny: &[&str]) -> Permissions {
        Permissions::compile(&PermissionsConfig {
            subscribe: rule(allow, deny),
            ..Default::default()
        })
    }

    fn responders(allow: &[&str], deny: &[&str], rp: ResponsePermission) -> Permissions {
        Permissions::compile(&PermissionsConfig {
            publish: rule(allow, deny),
            allow_responses: Some(rp),
            ..Default::default()
        })
    }

    fn sub(p: &Permissions, subject: &str) -> SubscribeDecision {
        p.can_subscribe(subject.as_bytes(), None)
    }

    fn qsub(p: &Permissions, subject: &str, queue: &str) -> SubscribeDecision {
        p.can_subscribe(subject.as_bytes(), Some(queue.as_bytes()))
    }

    fn can_pub(p: &Permissions, subject: &str) -> bool {
        p.can_publish(subject.as_bytes())
    }

    fn ms(n: u64) -> Time {
        Time::from_millis(n)
    }

    // --- publish -------------------------------------------------------------

    #[test]
    fn no_rules_means_unrestricted() {
        let p = Permissions::compile(&PermissionsConfig::default());
        assert!(!p.restricts_publish());
        assert!(can_pub(&p, "anything.at.all"));
        assert_eq!(sub(&p, ">"), Allowed);
        assert_eq!(qsub(&p, "foo", "q"), Allowed);
        assert_eq!(p.responses(), None);
    }

    #[test]
    fn empty_allow_list_means_everything() {
        // `publish: []`, `{allow: []}`, `subscribe: []` (reference Q2).
        let p = Permissions::compile(&PermissionsConfig {
            publish: rule(&[], &[]),
            subscribe: rule(&[], &[]),
            allow_responses: None,
            ..Default::default()
        });
        assert!(!p.restricts_publish());
        assert!(can_pub(&p, "foo.bar"));
        assert_eq!(sub(&p, ">"), Allowed);
        assert_eq!(qsub(&p, "a.b", "q"), Allowed);
    }

    #[test]
    fn publish_allow_list_must_match() {
        let p = publish(&["foo", "bar.*", "baz.>"], &[]);
        assert!(p.restricts_publish());
        for s in ["foo", "bar.x", "baz.x", "baz.x.y.z"] {
            assert!(can_pub(&p, s), "{s}");
        }
        for s in ["foo.x", "bar", "bar.x.y", "baz", "other", "fo"] {
            assert!(!can_pub(&p, s), "{s}");
        }
    }

    #[test]
    fn publish_deny_wins_over_allow() {
        let p = publish(&["a.>"], &["a.secret", "a.*.private"]);
        assert!(can_pub(&p, "a.public"));
        assert!(can_pub(&p, "a.x.public"));
        assert!(!can_pub(&p, "a.secret"));
        assert!(can_pub(&p, "a.secret.more"));
        assert!(!can_pub(&p, "a.x.private"));
        assert!(!can_pub(&p, "b"));
    }

    #[test]
    fn publish_deny_only() {
        let p = publish(&[], &["$SYS.>", "secret"]);
        assert!(p.restricts_publish());
        assert!(can_pub(&p, "foo"));
        assert!(can_pub(&p, "secret.x"));
        assert!(!can_pub(&p, "secret"));
        assert!(!can_pub(&p, "$SYS.REQ.x"));
        // Deny `>` is the way to deny every publish.
        let all = publish(&[], &[">"]);
        assert!(!can_pub(&all, "x"));
        assert!(!can_pub(&all, "x.y.z"));
    }

    #[test]
    fn publish_subject_tokens_are_literal() {
        // A non-pedantic PUB may carry `*`/`>` tokens; they are literal.
        let p = publish(&["foo.bar", "w.*"], &[]);
        assert!(!can_pub(&p, "foo.*"));
        assert!(!can_pub(&p, "foo.>"));
        assert!(can_pub(&p, "w.*"));
        assert!(can_pub(&p, "w.>"));
        // Wildcard characters inside longer tokens are literal too.
        let p = publish(&["a*"], &[]);
        assert!(can_pub(&p, "a*"));
        assert!(!can_pub(&p, "ab"));
        // Subjects with empty tokens match no entry.
        let p = publish(&[">"], &[]);
        for s in ["", "a..b", ".a", "a."] {
            assert!(!can_pub(&p, s), "{s:?}");
        }
    }

    #[test]
    fn allow_responses_without_allow_list_denies_every_publish() {
        // `publish: []` or `{deny: [...]}` plus allow_responses.
        for deny in [&[][..], &["x"][..]] {
            let p = responders(&[], deny, ResponsePermission::default());
            assert!(p.restricts_publish());
            assert!(!can_pub(&p, "foo"));
            assert!(!can_pub(&p, "_INBOX.x"));
            assert_eq!(p.responses(), Some(ResponsePermission::default()));
        }
        // No `publish` key at all, only allow_responses.
        let p = Permissions::compile(&PermissionsConfig {
            allow_responses: Some(ResponsePermission::default()),
            ..Default::default()
        });
        assert!(p.restricts_publish());
        assert!(!can_pub(&p, "anything"));
        // An explicit allow list keeps working; replies come on top of it.
        let p = responders(&["svc.>"], &[], ResponsePermission::default());
        assert!(can_pub(&p, "svc.status"));
        assert!(!can_pub(&p, "other"));
    }

    #[test]
    fn malformed_entries_cannot_widen_access() {
        // An invalid allow entry grants nothing but the list still restricts.
        let p = publish(&["foo..bar"], &[]);
        assert!(p.restricts_publish());
        assert!(!can_pub(&p, "foo"));
        // An invalid deny entry denies everything.
        let p = publish(&[], &["a b c"]);
        assert!(!can_pub(&p, "foo"));
        let p = subscribe(&[], &["x.>.y"]);
        assert_eq!(sub(&p, "foo"), Denied);
        // A publish entry cannot carry a queue.
        let p = publish(&["foo q"], &[]);
        assert!(!can_pub(&p, "foo"));
        // Extra spaces are ignored, as the configuration reader does.
        let p = subscribe(&["  foo   q1 "], &[]);
        assert_eq!(qsub(&p, "foo", "q1"), Allowed);
    }

    #[test]
    fn many_pending_wildcard_branches_spill_and_still_match() {
        // Every level of `a.a.…` has both a literal and a `*` branch, so more
        // `*` branches wait at once than fit inline.
        let n = 12;
        let mut allow = vec![vec!["a"; n].join(".")];
        for k in 0..n {
            let mut toks = vec!["a"; n];
            toks[k] = "*";
            allow.push(toks.join("."));
        }
        let refs: Vec<&str> = allow.iter().map(String::as_str).collect();
        let p = publish(&refs, &[]);
        let subject = vec!["a"; n].join(".");
        assert!(can_pub(&p, &subject));
        let trie = p.publish_allow.as_ref().map(|t| {
            let mut seen = 0;
            t.visit_matches(subject.as_bytes(), &mut Reach::default(), |_| {
                seen += 1;
                false
            });
            seen
        });
        assert_eq!(trie, Some(n + 1));
        let mut other = vec!["a"; n];
        other[3] = "b";
        other[7] = "b";
        assert!(!can_pub(&p, &other.join(".")));
        other[7] = "a";
        assert!(can_pub(&p, &other.join(".")));
    }

    // --- subscribe -----------------------------------------------------------

    #[test]
    fn reference_wildcard_subscribe_examples() {
        let p = subscribe(&["foo.>"], &[]);
        assert_eq!(sub(&p, "foo.*"), Allowed);
        assert_eq!(sub(&p, "foo.>"), Allowed);
        assert_eq!(sub(&p, "foo.bar"), Allowed);
        assert_eq!(sub(&p, "foo.bar.>"), Allowed);
        assert_eq!(sub(&p, ">"), Denied);
        assert_eq!(sub(&p, "foo"), Denied);
        assert_eq!(sub(&p, "*.bar"), Denied);
        let p = subscribe(&["foo.bar"], &[]);
        assert_eq!(sub(&p, "foo.bar"), Allowed);
        assert_eq!(sub(&p, "foo.*"), Denied);
        assert_eq!(sub(&p, "foo.>"), Denied);
        let p = subscribe(&["*.bar"], &[]);
        assert_eq!(sub(&p, "foo.bar"), Allowed);
        assert_eq!(sub(&p, "*.bar"), Allowed);
        assert_eq!(sub(&p, "*.>"), Denied);
    }

    #[test]
    fn wildcard_subscribe_must_be_a_subset_intentional_difference() {
        // nats-server admits these (reference Q1); tenet does not.
        let p = subscribe(&["foo.*", "_INBOX.*"], &[]);
        assert_eq!(sub(&p, "foo.>"), Denied);
        assert_eq!(sub(&p, "_INBOX.>"), Denied);
        assert_eq!(sub(&p, "foo.*"), Allowed);
        assert_eq!(sub(&p, "_INBOX.abc"), Allowed);
        // The SUB must fit inside one entry: together `a.a` and `a.b` do not admit `a.*`.
        let p = subscribe(&["a.a", "a.b"], &[]);
        assert_eq!(sub(&p, "a.*"), Denied);
        // `>` covers one or more tokens of any kind, `*` exactly one non-`>` token.
        let p = subscribe(&["a.>"], &[]);
        assert_eq!(sub(&p, "a.*.>"), Allowed);
        assert_eq!(sub(&p, "a.*.*"), Allowed);
        let p = subscribe(&["a.*.*"], &[]);
        assert_eq!(sub(&p, "a.*.*"), Allowed);
        assert_eq!(sub(&p, "a.*.>"), Denied);
        assert_eq!(sub(&p, "a.*"), Denied);
    }

    #[test]
    fn reference_queue_permission_table() {
        // allow `foo` => plain and any queue.
        let p = subscribe(&["foo"], &[]);
        assert_eq!(sub(&p, "foo"), Allowed);
        assert_eq!(qsub(&p, "foo", "v1"), Allowed);
        assert_eq!(qsub(&p, "foo", "anything"), Allowed);
        // allow `foo v1` only => plain denied, v1 allowed, others denied.
        let p = subscribe(&["foo v1"], &[]);
        assert_eq!(sub(&p, "foo"), Denied);
        assert_eq!(qsub(&p, "foo", "v1"), Allowed);
        assert_eq!(qsub(&p, "foo", "v2"), Denied);
        assert_eq!(qsub(&p, "bar", "v1"), Denied);
        // allow `foo` + `foo v1` => plain allowed, queue only v1.
        let p = subscribe(&["foo", "foo v1"], &[]);
        assert_eq!(sub(&p, "foo"), Allowed);
        assert_eq!(qsub(&p, "foo", "v1"), Allowed);
        assert_eq!(qsub(&p, "foo", "v2"), Denied);
        // Queue patterns are matched token-wise.
        let p = subscribe(&["foo v1.*", "> *.prod"], &[]);
        assert_eq!(qsub(&p, "foo", "v1.a"), Allowed);
        assert_eq!(qsub(&p, "foo", "v1"), Denied);
        assert_eq!(qsub(&p, "foo", "v1.a.b"), Denied);
        assert_eq!(qsub(&p, "foo", "v2.a"), Denied);
        assert_eq!(qsub(&p, "any.thing", "eu.prod"), Allowed);
        assert_eq!(qsub(&p, "any.thing", "eu.dev"), Denied);
        assert_eq!(sub(&p, "any.thing"), Denied);
        // deny `foo` => plain and queue denied.
        let p = subscribe(&[], &["foo"]);
        assert_eq!(sub(&p, "foo"), Denied);
        assert_eq!(qsub(&p, "foo", "v1"), Denied);
        assert_eq!(sub(&p, "bar"), Allowed);
        // deny `> *.prod` => only queue subs in a `*.prod` group, on any subject.
        let p = subscribe(&[], &["> *.prod"]);
        assert_eq!(sub(&p, "foo"), Allowed);
        assert_eq!(sub(&p, ">"), Allowed);
        assert_eq!(qsub(&p, "foo", "eu.prod"), Denied);
        assert_eq!(qsub(&p, "a.b.c", "us.prod"), Denied);
        assert_eq!(qsub(&p, ">", "us.prod"), Denied);
        assert_eq!(qsub(&p, "foo", "dev"), Allowed);
        assert_eq!(qsub(&p, "foo", "prod"), Allowed);
        assert_eq!(qsub(&p, "foo", "a.b.prod"), Allowed);
        // A group name is opaque: its `*`/`>` tokens are literal.
        assert_eq!(qsub(&p, "foo", "*.prod"), Denied);
    }

    #[test]
    fn deny_overlap_filters_deliveries() {
        // Reference: allow `foo.*`, deny `foo.baz`, SUB `foo.*` => accepted, filtered.
        let p = subscribe(&["foo.*"], &["foo.baz"]);
        assert_eq!(sub(&p, "foo.*"), AllowedFiltered);
        assert!(p.delivery_denied(b"foo.baz", None));
        assert!(!p.delivery_denied(b"foo.bar", None));
        assert_eq!(sub(&p, "foo.baz"), Denied);
        assert_eq!(sub(&p, "foo.bar"), Allowed);
        assert_eq!(qsub(&p, "foo.*", "q"), AllowedFiltered);
        assert!(p.delivery_denied(b"foo.baz", Some(b"q")));
        // A deny that the SUB falls inside denies it; a deny it only touches filters.
        let p = subscribe(&[], &["foo.*"]);
        assert_eq!(sub(&p, "foo.bar"), Denied);
        assert_eq!(sub(&p, "foo.*"), Denied);
        assert_eq!(sub(&p, "foo.>"), AllowedFiltered);
        assert!(p.delivery_denied(b"foo.a", None));
        assert!(!p.delivery_denied(b"foo.a.b", None));
        assert_eq!(sub(&p, ">"), AllowedFiltered);
        assert_eq!(sub(&p, "*.*"), AllowedFiltered);
        assert_eq!(sub(&p, "bar.*"), Allowed);
        assert_eq!(sub(&p, "foo"), Allowed);
        let p = subscribe(&[], &["a.>"]);
        assert_eq!(sub(&p, "*.b"), AllowedFiltered);
        assert_eq!(sub(&p, "a.*.>"), Denied);
        assert_eq!(sub(&p, "a"), Allowed);
        assert_eq!(sub(&p, "*"), Allowed);
    }

    #[test]
    fn queue_deny_overlap_filters_only_matching_groups() {
        let p = subscribe(&[], &["foo.bar *.prod"]);
        assert_eq!(qsub(&p, "foo.*", "eu.prod"), AllowedFiltered);
        assert!(p.delivery_denied(b"foo.bar", Some(b"eu.prod")));
        assert!(!p.delivery_denied(b"foo.baz", Some(b"eu.prod")));
        assert_eq!(qsub(&p, "foo.*", "dev"), Allowed);
        assert_eq!(sub(&p, "foo.*"), Allowed);
        assert!(!p.delivery_denied(b"foo.bar", None));
        assert_eq!(qsub(&p, "foo.bar", "eu.prod"), Denied);
    }

    #[test]
    fn plain_and_queue_denies_both_apply() {
        // nats-server lets a matching queue deny entry override a plain one
        // (deny `foo` + `foo v2` admits a `v1` queue SUB); tenet denies.
        let p = subscribe(&[], &["foo", "foo v2"]);
        assert_eq!(qsub(&p, "foo", "v1"), Denied);
        assert_eq!(qsub(&p, "foo", "v2"), Denied);
        assert_eq!(sub(&p, "foo"), Denied);
    }

    #[test]
    fn queue_allow_entries_reserve_subjects_inside_wider_subscriptions() {
        // `foo.bar` is reserved for group v1; a wider `foo.*` queue SUB in
        // another group is admitted through `foo.>` but not fed `foo.bar`.
        let p = subscribe(&["foo.>", "foo.bar v1"], &[]);
        assert_eq!(qsub(&p, "foo.bar", "v2"), Denied);
        assert_eq!(qsub(&p, "foo.bar", "v1"), Allowed);
        assert_eq!(qsub(&p, "foo.*", "v2"), AllowedFiltered);
        assert!(p.delivery_denied(b"foo.bar", Some(b"v2")));
        assert!(!p.delivery_denied(b"foo.baz", Some(b"v2")));
        assert_eq!(qsub(&p, "foo.*", "v1"), Allowed);
        assert_eq!(sub(&p, "foo.*"), Allowed);
        assert_eq!(sub(&p, "foo.bar"), Allowed);
        assert_eq!(qsub(&p, "foo.x.y", "v2"), Allowed);
    }

    // --- publish cache ---------------------------------------------------------

    #[test]
    fn subjects_under_a_deciding_prefix_share_one_decision() {
        let p = Permissions::compile(&PermissionsConfig {
            publish: Some(SubjectPermission {
                allow: vec!["$JS.ACK.>".into(), "bench.*".into()],
                deny: vec!["$JS.ACK.secret.>".into()],
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            p.publish_decision(b"$JS.ACK.S.C.1.2.3.4.0"),
            (true, Some(10))
        );
        assert_eq!(p.publish_decision(b"$JS.ACK.secret.C.1"), (false, Some(15)));
        assert_eq!(p.publish_decision(b"bench.x"), (true, None));
        assert_eq!(p.publish_decision(b"other.x"), (false, Some(6)));
        let mut cache = PublishCache::new();
        for i in 0..1000 {
            let ack = format!("$JS.ACK.S.C.1.{i}.{i}.17.0");
            assert!(cache.decide(ack.as_bytes(), &p));
        }
        assert!(cache.is_empty(), "ack subjects are decided by their prefix");
        // A malformed subject under a known prefix is decided afresh.
        assert!(!cache.decide(b"$JS.ACK.S..1", &p));
        assert!(!cache.decide(b"$JS.ACK.secret.C.2", &p));
        assert!(cache.decide(b"bench.x", &p));
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert_eq!(cache.by_prefix(b"$JS.ACK.S.C.1"), None);
    }

    #[test]
    fn publish_cache_is_bounded_and_evicts_a_batch() {
        let mut cache = PublishCache::new();
        assert!(cache.is_empty());
        for i in 0..PUBLISH_CACHE_MAX {
            cache.insert(format!("s.{i}").as_bytes(), i % 2 == 0);
        }
        assert_eq!(cache.len(), 128);
        assert_eq!(cache.get(b"s.4"), Some(true));
        assert_eq!(cache.get(b"s.5"), Some(false));
        assert_eq!(cache.get(b"other"), None);
        // Re-inserting a cached subject evicts nothing.
        cache.insert(b"s.4", false);
        assert_eq!(cache.len(), 128);
        assert_eq!(cache.get(b"s.4"), Some(false));
        cache.insert(b"new", true);
        assert_eq!(cache.len(), 128 - 32 + 1);
        assert_eq!(cache.get(b"new"), Some(true));
        for i in 0..1000 {
            cache.insert(format!("t.{i}").as_bytes(), true);
            assert!(cache.len() <= 128);
        }
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(b"t.999"), None);
    }

    // --- allow_responses -------------------------------------------------------

    /// What the engine does for a PUB: allow/deny first, then reply tracking.
    fn may_publish(p: &Permissions, t: &mut ReplyTracker, subject: &str, now: Time) -> bool {
        p.can_publish(subject.as_bytes()) || t.allow_reply(subject.as_bytes(), now)
    }

    #[test]
    fn allow_responses_true_allows_one_reply_within_two_minutes() {
        let p = responders(&[], &[], ResponsePermission::default());
        let mut t = ReplyTracker::new(p.responses().unwrap_or_default());
        t.record(b"_INBOX.a", ms(0));
        assert!(!may_publish(&p, &mut t, "_INBOX.other", ms(1)));
        assert!(!may_publish(&p, &mut t, "foo", ms(1)));
        assert!(may_publish(&p, &mut t, "_INBOX.a", ms(10)));
        assert!(!may_publish(&p, &mut t, "_INBOX.a", ms(20)));
        assert!(t.is_empty());
        // Exactly at two minutes still allowed; a nanosecond later not.
        t.record(b"_INBOX.b", ms(1000));
        t.record(b"_INBOX.c", ms(1000));
        assert!(t.allow_reply(b"_INBOX.b", ms(1000 + 120_000)));
        let late = ms(1000 + 120_000) + Duration::from_nanos(1);
        assert!(!t.allow_reply(b"_INBOX.c", late));
        assert!(t.is_empty());
    }

    #[test]
    fn allow_responses_max_and_expiry() {
        // svcb in TestUserAuthorizationAllowResponses: {max: 10, ttl: "50ms"}.
        let rp = ResponsePermission {
            max: Some(10),
            expires: Some(Duration::from_millis(50)),
        };
        let p = responders(&[], &[], rp);
        let mut t = ReplyTracker::new(rp);
        t.record(b"r1", ms(0));
        for i in 0..10 {
            assert!(may_publish(&p, &mut t, "r1", ms(i)), "reply {i}");
        }
        assert!(!may_publish(&p, &mut t, "r1", ms(11)));
        t.record(b"r2", ms(100));
        assert!(!may_publish(&p, &mut t, "r2", ms(200)));
        assert!(t.is_empty());
    }

    #[test]
    fn allow_responses_unlimited_and_never_expiring() {
        let rp = ResponsePermission {
            max: None,
            expires: Some(Duration::from_millis(100)),
        };
        let mut t = ReplyTracker::new(rp);
        t.record(b"r", ms(0));
        for i in 0..1000 {
            assert!(t.allow_reply(b"r", ms(i / 10)));
        }
        assert!(!t.allow_reply(b"r", ms(101)));
        let rp = ResponsePermission {
            max: Some(2),
            expires: None,
        };
        let mut t = ReplyTracker::new(rp);
        t.record(b"r", ms(0));
        let year = ms(365 * 24 * 3600 * 1000);
        assert!(t.allow_reply(b"r", year));
        assert!(t.allow_reply(b"r", year));
        assert!(!t.allow_reply(b"r", year));
        assert_eq!(t.next_expiry(), None);
        let mut t = ReplyTracker::new(ResponsePermission {
            max: None,
            expires: None,
        });
        t.record(b"r", ms(0));
        for _ in 0..100 {
            assert!(t.allow_reply(b"r", year));
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn tracked_reply_overrides_explicit_deny() {
        // Reference Q3, matched: the fallback runs after the deny check.
        let p = responders(&["svc.>"], &["_INBOX.>"], ResponsePermission::default());
        let mut t = ReplyTracker::new(ResponsePermission::default());
        assert!(!may_publish(&p, &mut t, "_INBOX.x", ms(0)));
        t.record(b"_INBOX.x", ms(0));
        assert!(!p.can_publish(b"_INBOX.x"));
        assert!(may_publish(&p, &mut t, "_INBOX.x", ms(1)));
        assert!(!may_publish(&p, &mut t, "_INBOX.x", ms(2)));
        assert!(may_publish(&p, &mut t, "svc.a", ms(2)));
        // Same with only a deny list (implicit empty allow list).
        let p = responders(&[], &[">"], ResponsePermission::default());
        t.record(b"_INBOX.y", ms(3));
        assert!(may_publish(&p, &mut t, "_INBOX.y", ms(4)));
    }

    #[test]
    fn repeated_delivery_does_not_reset_allowance() {
        let rp = ResponsePermission {
            max: Some(2),
            expires: Some(Duration::from_secs(120)),
        };
        let mut t = ReplyTracker::new(rp);
        t.record(b"r", ms(0));
        assert!(t.allow_reply(b"r", ms(1)));
        t.record(b"r", ms(2));
        assert!(t.allow_reply(b"r", ms(3)));
        t.record(b"r", ms(4)); // used up above, so this starts afresh
        assert!(t.allow_reply(b"r", ms(5)));
        t.record(b"r", ms(6));
        assert!(t.allow_reply(b"r", ms(7)));
        assert!(!t.allow_reply(b"r", ms(8)));
        // Nor does it renew the time.
        let mut t = ReplyTracker::new(ResponsePermission::default());
        t.record(b"r", ms(0));
        t.record(b"r", ms(90_000));
        assert!(!t.allow_reply(b"r", ms(130_000)));
        // An expired entry starts over, as if a prune had removed it.
        t.record(b"s", ms(0));
        t.record(b"s", ms(200_000));
        assert!(t.allow_reply(b"s", ms(200_001)));
    }

    #[test]
    fn pruning_bounds_the_map() {
        let rp = ResponsePermission {
            max: Some(1),
            expires: Some(Duration::from_millis(50)),
        };
        let mut t = ReplyTracker::new(rp);
        let mut most = 0;
        for i in 0..100_000u64 {
            t.record(format!("_INBOX.{i}").as_bytes(), ms(i));
            most = most.max(t.len());
        }
        // Pruned at least every second: at most ~1 s of records plus 50 ms.
        assert!(most <= 1000 + 50 + 2, "{most}");
        // Records in a burst are pruned every 4096.
        let mut t = ReplyTracker::new(rp);
        let mut most = 0;
        for i in 0..100_000u64 {
            t.record(
                format!("_INBOX.{i}").as_bytes(),
                Time::from_nanos(i * 100_000),
            );
            most = most.max(t.len());
        }
        assert!(most <= 4096 + 500 + 1, "{most}");
        // Nothing expires before its time; everything after.
        t.prune(Time::from_nanos(100_000 * 100_000));
        assert!(!t.is_empty());
        t.prune(ms(100_000));
        assert!(t.is_empty());
        // The drained burst gave its memory back.
        assert!(t.replies.capacity() < 64, "{}", t.replies.capacity());
    }

    #[test]
    fn record_prunes_lazily() {
        let rp = ResponsePermission {
            max: Some(1),
            expires: Some(Duration::from_millis(10)),
        };
        let mut t = ReplyTracker::new(rp);
        t.record(b"a", ms(1000));
        t.record(b"b", ms(1500)); // less than 1 s since the prune at 1000: `a` stays
        assert_eq!(t.len(), 2);
        t.record(b"c", ms(2001)); // prunes `a` and `b`
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn next_expiry_follows_the_oldest_entry() {
        let rp = ResponsePermission {
            max: Some(1),
            expires: Some(Duration::from_millis(50)),
        };
        let mut t = ReplyTracker::new(rp);
        assert_eq!(t.next_expiry(), None);
        t.record(b"a", ms(10));
        t.record(b"b", ms(20));
        let first = ms(60) + Duration::from_nanos(1);
        assert_eq!(t.next_expiry(), Some(first));
        // Using `a` up may leave the estimate early, never late.
        assert!(t.allow_reply(b"a", ms(30)));
        assert!(t
            .next_expiry()
            .is_some_and(|e| e <= ms(70) + Duration::from_nanos(1)));
        t.prune(ms(30));
        assert_eq!(t.next_expiry(), Some(ms(70) + Duration::from_nanos(1)));
        // At that instant `b` has expired.
        t.prune(ms(70) + Duration::from_nanos(1));
        assert!(t.is_empty());
        assert_eq!(t.next_expiry(), None);
    }
}

/// Properties against naive models defined by enumerating a finite universe
/// of literal subjects.
#[cfg(test)]
mod model_tests {
    use super::*;
    use crate::subject::subject_matches;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Every subject of 1..=`depth` tokens over {a, b, c}. Patterns use only
    /// `a` and `b`, so `c` stands for "any other token", and they have at
    /// most three tokens, so depth 4 separates every pair of them.
    fn universe(depth: usize) -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = Vec::new();
        let mut level: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for prefix in &level {
                for t in [b'a', b'b', b'c'] {
                    let mut s = prefix.clone();
                    if !s.is_empty() {
                        s.push(b'.');
                    }
                    s.push(t);
                    next.push(s);
                }
            }
            all.extend(next.iter().cloned());
            level = next;
        }
        all
    }

    fn covers_enum(sub: &[u8], entry: &[u8], universe: &[Vec<u8>]) -> bool {
        universe
            .iter()
            .all(|u| !subject_matches(sub, u) || subject_matches(entry, u))
    }

    fn overlaps_enum(sub: &[u8], entry: &[u8], universe: &[Vec<u8>]) -> bool {
        universe
            .iter()
            .any(|u| subject_matches(sub, u) && subject_matches(entry, u))
    }

    /// Deny-side queue match, written independently of `queue_may_match`:
    /// the name's tokens are literal, `*` takes any one of them.
    fn naive_queue_may_match(pattern: &str, name: &str) -> bool {
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

    /// Queue pattern match, written independently of `queue_matches`.
    fn naive_queue_match(pattern: &str, name: &str) -> bool {
        fn go(p: &[&str], n: &[&str]) -> bool {
            match (p.split_first(), n.split_first()) {
                (None, None) => true,
                (Some((&">", _)), Some(_)) => true,
                // `*` admits one token, but not a name's `>` (which stands for more).
                (Some((&"*", pr)), Some((nt, nr))) if *nt != ">" => go(pr, nr),
                (Some((pt, pr)), Some((nt, nr))) => pt == nt && go(pr, nr),
                _ => false,
            }
        }
        let p: Vec<&str> = pattern.split('.').collect();
        let n: Vec<&str> = name.split('.').collect();
        go(&p, &n)
    }

    fn pattern_over(lits: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
        let mut last: Vec<&str> = lits.to_vec();
        last.extend(["*", ">"]);
        let mut inner: Vec<&str> = lits.to_vec();
        inner.push("*");
        (
            prop::collection::vec(prop::sample::select(inner), 0..max),
            prop::sample::select(last),
        )
            .prop_map(|(mut toks, last)| {
                toks.push(last);
                toks.join(".")
            })
    }

    fn pattern() -> impl Strategy<Value = String> {
        pattern_over(&["a", "b"], 3)
    }

    fn literal_subject() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=4)
            .prop_map(|t| t.join("."))
    }

    /// A subscribe entry: subject pattern and optional queue pattern.
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
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (
            pattern(),
            prop::option::weighted(0.4, pattern_over(&["x", "y"], 2)),
        )
            .prop_map(|(subject, queue)| Entry { subject, queue })
    }

    fn queue_name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["x", "y", "z", "*", ">"]), 1..=2)
            .prop_map(|t| t.join("."))
    }

    fn texts(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(Entry::text).collect()
    }

    fn compile_subscribe(allow: &[Entry], deny: &[Entry]) -> Permissions {
        Permissions::compile(&PermissionsConfig {
            subscribe: Some(SubjectPermission {
                allow: texts(allow),
                deny: texts(deny),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn queue_ok(e: &Entry, queue: Option<&str>) -> bool {
        match (&e.queue, queue) {
            (Some(p), Some(q)) => naive_queue_match(p, q),
            _ => false,
        }
    }

    /// A deny entry's queue concerns the group (tokens taken literally).
    fn deny_queue_ok(e: &Entry, queue: Option<&str>) -> bool {
        match (&e.queue, queue) {
            (Some(p), Some(q)) => naive_queue_may_match(p, q),
            _ => false,
        }
    }

    /// The SUB decision as specified, with subset and overlap by enumeration.
    fn model_subscribe(
        allow: &[Entry],
        deny: &[Entry],
        sub: &str,
        queue: Option<&str>,
    ) -> SubscribeDecision {
        let u = universe(4);
        let covers = |e: &Entry| covers_enum(sub.as_bytes(), e.subject.as_bytes(), &u);
        let overlaps = |e: &Entry| overlaps_enum(sub.as_bytes(), e.subject.as_bytes(), &u);
        let mut filtered = false;
        if !allow.is_empty() {
            let covering: Vec<&Entry> = allow.iter().filter(|e| covers(e)).collect();
            let plain = covering.iter().any(|e| e.queue.is_none());
            let grouped = covering.iter().any(|e| e.queue.is_some());
            let allowed = match queue {
                None => plain,
                Some(_) if grouped => covering.iter().any(|e| queue_ok(e, queue)),
                Some(_) => plain,
            };
            if !allowed {
                return SubscribeDecision::Denied;
            }
            if queue.is_some() && !grouped {
                filtered = allow
                    .iter()
                    .any(|e| e.queue.is_some() && !queue_ok(e, queue) && overlaps(e));
            }
        }
        let applies = |e: &&Entry| e.queue.is_none() || deny_queue_ok(e, queue);
        if deny.iter().filter(applies).any(covers) {
            return SubscribeDecision::Denied;
        }
        if filtered || deny.iter().filter(applies).any(overlaps) {
            SubscribeDecision::AllowedFiltered
        } else {
            SubscribeDecision::Allowed
        }
    }

    /// Whether a message on the literal `subject` may not reach a
    /// subscription in group `queue`, judged for that subject alone.
    fn forbidden(allow: &[Entry], deny: &[Entry], subject: &str, queue: Option<&str>) -> bool {
        let m = |e: &&Entry| subject_matches(e.subject.as_bytes(), subject.as_bytes());
        let plain_ok = allow.iter().filter(m).any(|e| e.queue.is_none());
        let allowed = allow.is_empty()
            || match queue {
                None => plain_ok,
                Some(_) => {
                    let grouped: Vec<&Entry> = allow
                        .iter()
                        .filter(m)
                        .filter(|e| e.queue.is_some())
                        .collect();
                    if grouped.is_empty() {
                        plain_ok
                    } else {
                        grouped.iter().any(|e| queue_ok(e, queue))
                    }
                }
            };
        let denied = deny
            .iter()
            .filter(m)
            .any(|e| e.queue.is_none() || deny_queue_ok(e, queue));
        !allowed || denied
    }

    fn trie_of(patterns: &[String]) -> PatternTrie {
        let mut trie = PatternTrie::new();
        for (i, p) in patterns.iter().enumerate() {
            trie.insert(p.as_bytes(), i);
        }
        trie
    }

    fn related(trie: &PatternTrie, sub: &str, relation: Relation) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        trie.visit_related(sub.as_bytes(), relation, |e| {
            assert!(seen.insert(e), "entry {e} reported twice");
            false
        });
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn subset_and_overlap_walks_agree_with_enumeration(
            patterns in prop::collection::vec(pattern(), 0..6),
            sub in pattern(),
        ) {
            let trie = trie_of(&patterns);
            let (u4, u5) = (universe(4), universe(5));
            let s = sub.as_bytes();
            let want_covers: BTreeSet<usize> = (0..patterns.len())
                .filter(|&i| covers_enum(s, patterns[i].as_bytes(), &u4))
                .collect();
            let want_overlaps: BTreeSet<usize> = (0..patterns.len())
                .filter(|&i| overlaps_enum(s, patterns[i].as_bytes(), &u4))
                .collect();
            // One more token changes nothing: depth 4 is deep enough for `>`.
            for p in &patterns {
                prop_assert_eq!(covers_enum(s, p.as_bytes(), &u4), covers_enum(s, p.as_bytes(), &u5));
                prop_assert_eq!(overlaps_enum(s, p.as_bytes(), &u4), overlaps_enum(s, p.as_bytes(), &u5));
            }
            prop_assert_eq!(related(&trie, &sub, Relation::Covers), want_covers);
            prop_assert_eq!(related(&trie, &sub, Relation::Overlaps), want_overlaps);
        }

        #[test]
        fn match_walk_agrees_with_subject_matches(
            patterns in prop::collection::vec(pattern(), 0..6),
            subject in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*", ">", ""]), 0..5),
        ) {
            let subject = subject.join(".");
            let trie = trie_of(&patterns);
            let mut seen = BTreeSet::new();
            if well_formed(subject.as_bytes()) {
                trie.visit_matches(subject.as_bytes(), &mut Reach::default(), |e| {
                    assert!(seen.insert(e));
                    false
                });
            }
            let want: BTreeSet<usize> = (0..patterns.len())
                .filter(|&i| subject_matches(patterns[i].as_bytes(), subject.as_bytes()))
                .collect();
            prop_assert_eq!(seen, want);
        }

        /// A decision settled by a prefix holds for every subject under it,
        /// and the connection cache answers as the permissions do.
        #[test]
        fn prefix_decisions_hold_for_every_subject_under_the_prefix(
            allow in prop::collection::vec(pattern(), 0..4),
            deny in prop::collection::vec(pattern(), 0..4),
            subjects in prop::collection::vec((literal_subject(), literal_subject()), 1..20),
        ) {
            let p = Permissions::compile(&PermissionsConfig {
                publish: Some(SubjectPermission { allow, deny, ..Default::default() }),
                ..Default::default()
            });
            let mut cache = PublishCache::new();
            for (s, tail) in &subjects {
                let (allowed, prefix) = p.publish_decision(s.as_bytes());
                prop_assert_eq!(allowed, p.can_publish(s.as_bytes()));
                prop_assert_eq!(cache.decide(s.as_bytes(), &p), allowed, "{}", s);
                if let Some(n) = prefix {
                    prop_assert!(n == 0 || s.as_bytes()[n - 1] == b'.', "{} {}", s, n);
                    let other = format!("{}{tail}", &s[..n]);
                    prop_assert_eq!(p.can_publish(other.as_bytes()), allowed, "{} -> {}", s, other);
                    prop_assert_eq!(cache.decide(other.as_bytes(), &p), allowed, "{}", other);
                }
                prop_assert_eq!(cache.decide(tail.as_bytes(), &p), p.can_publish(tail.as_bytes()));
            }
        }

        #[test]
        fn can_publish_agrees_with_naive_model(
            allow in prop::collection::vec(pattern(), 0..4),
            deny in prop::collection::vec(pattern(), 0..4),
            responses in any::<bool>(),
            subjects in prop::collection::vec(literal_subject(), 1..20),
        ) {
            let p = Permissions::compile(&PermissionsConfig {
                publish: Some(SubjectPermission { allow: allow.clone(), deny: deny.clone(), ..Default::default() }),
                allow_responses: responses.then(ResponsePermission::default),
                ..Default::default()
            });
            let allow_restricts = !allow.is_empty() || responses;
            prop_assert_eq!(p.restricts_publish(), allow_restricts || !deny.is_empty());
            for s in &subjects {
                let m = |pat: &String| subject_matches(pat.as_bytes(), s.as_bytes());
                let want = (!allow_restricts || allow.iter().any(m)) && !deny.iter().any(m);
                prop_assert_eq!(p.can_publish(s.as_bytes()), want, "{}", s);
            }
        }

        #[test]
        fn plain_subscribe_is_allowed_iff_inside_one_allow_entry(
            allow in prop::collection::vec(pattern(), 1..5),
            sub in pattern(),
        ) {
            let p = Permissions::compile(&PermissionsConfig {
                subscribe: Some(SubjectPermission { allow: allow.clone(), deny: Vec::new(), ..Default::default() }),
                ..Default::default()
            });
            let u = universe(4);
            let want = if allow.iter().any(|a| covers_enum(sub.as_bytes(), a.as_bytes(), &u)) {
                SubscribeDecision::Allowed
            } else {
                SubscribeDecision::Denied
            };
            prop_assert_eq!(p.can_subscribe(sub.as_bytes(), None), want);
        }

        #[test]
        fn can_subscribe_agrees_with_model_and_never_leaks(
            allow in prop::collection::vec(entry(), 0..4),
            deny in prop::collection::vec(entry(), 0..3),
            sub in pattern(),
            queue in prop::option::of(queue_name()),
        ) {
            let p = compile_subscribe(&allow, &deny);
            let q = queue.as_deref();
            let got = p.can_subscribe(sub.as_bytes(), q.map(str::as_bytes));
            prop_assert_eq!(got, model_subscribe(&allow, &deny, &sub, q));
            let exact = !allow.iter().any(|e| e.queue.is_some());
            let mut any_forbidden = false;
            for u in universe(4).iter().filter(|u| subject_matches(sub.as_bytes(), u)) {
                let text = String::from_utf8_lossy(u);
                let bad = forbidden(&allow, &deny, &text, q);
                any_forbidden |= bad;
                match got {
                    SubscribeDecision::Allowed => prop_assert!(!bad, "{} leaks", text),
                    SubscribeDecision::AllowedFiltered => {
                        prop_assert_eq!(p.delivery_denied(u, q.map(str::as_bytes)), bad, "{}", text);
                    }
                    SubscribeDecision::Denied => {}
                }
            }
            // Without queue allow entries, a filter is set up only when needed.
            if exact && got == SubscribeDecision::AllowedFiltered {
                prop_assert!(any_forbidden);
            }
        }

        #[test]
        fn publish_cache_never_changes_a_decision(
            allow in prop::collection::vec(pattern(), 0..4),
            deny in prop::collection::vec(pattern(), 0..4),
            picks in prop::collection::vec(0usize..363, 1..600),
        ) {
            let p = Permissions::compile(&PermissionsConfig {
                publish: Some(SubjectPermission { allow, deny, ..Default::default() }),
                ..Default::default()
            });
            let u = universe(5);
            let mut cache = PublishCache::new();
            for i in picks {
                let s = &u[i % u.len()];
                // The engine's path: last decision, then the map, then the rules.
                let decided = cache.decide(s, &p);
                prop_assert_eq!(decided, p.can_publish(s));
                prop_assert!(cache.len() <= 128);
            }
        }

        #[test]
        fn queue_matching_agrees_with_naive(
            pattern in pattern_over(&["x", "y", ""], 3),
            name in prop::collection::vec(prop::sample::select(vec!["x", "y", "*", ">", ""]), 1..4),
        ) {
            let name = name.join(".");
            prop_assert_eq!(
                queue_matches(pattern.as_bytes(), name.as_bytes()),
                naive_queue_match(&pattern, &name)
            );
            prop_assert_eq!(
                queue_may_match(pattern.as_bytes(), name.as_bytes()),
                naive_queue_may_match(&pattern, &name)
            );
        }
    }
}
