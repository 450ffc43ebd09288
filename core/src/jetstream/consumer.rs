//! A consumer's delivery state: which stored message it hands out next,
//! what is delivered but not acknowledged, acknowledgements (ack, nak with
//! a delay, in progress, term, ack all), redelivery after `ack_wait` or
//! `backoff`, `max_deliver` and `max_ack_pending`. Pure: the store is
//! read, times are passed in (Unix nanoseconds).

use std::collections::{BTreeMap, BTreeSet};

use super::consumer_config::{AckPolicy, ConsumerConfig, DeliverPolicy};
use super::store::Store;
use crate::proto::encode::push_decimal;
use crate::subject::subject_matches;

/// A message delivered but not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    /// The consumer sequence of its latest delivery.
    consumer_seq: u64,
    /// How many times it was delivered.
    deliveries: u64,
    /// When it is redelivered unless acknowledged first.
    deadline: u64,
}

/// A delivery found but not made yet.
#[derive(Clone, Copy, Debug)]
enum Planned {
    /// Of a pending message whose ack wait ended (by stream sequence).
    Redelivery(u64),
    /// Of a message not delivered before.
    New(u64),
}

/// One delivery for the engine to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub stream_seq: u64,
    pub consumer_seq: u64,
    /// 1 for the first delivery.
    pub deliveries: u64,
    /// The consumer's pending count after this message (the last ack token).
    pub pending: u64,
}

/// An acknowledgement's body (reference §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    Ack,
    /// Redeliver after this many nanoseconds (0: now).
    Nak(u64),
    InProgress,
    /// Acknowledged without success: never redelivered.
    Term,
    /// Acknowledged, and the rest is a pull request for more (`+NXT`).
    Next(Vec<u8>),
}

impl Ack {
    /// Reads an ack body.
    pub fn parse(body: &[u8]) -> Option<Ack> {
        let body = body.trim_ascii();
        if let Some(request) = body.strip_prefix(b"+NXT") {
            return Some(Ack::Next(request.trim_ascii().to_vec()));
        }
        if body.is_empty() || body == b"+ACK" || body == b"+OK" {
            return Some(Ack::Ack);
        }
        if body == b"+WPI" {
            return Some(Ack::InProgress);
        }
        if body.starts_with(b"+TERM") {
            return Some(Ack::Term);
        }
        if let Some(rest) = body.strip_prefix(b"-NAK") {
            #[derive(serde::Deserialize)]
            struct Delay {
                delay: u64,
            }
            let delay = serde_json::from_slice::<Delay>(rest.trim_ascii()).map_or(0, |d| d.delay);
            return Some(Ack::Nak(delay));
        }
        None
    }
}

/// What a durable consumer keeps on disk: enough to go on where it was
/// after a restart (nothing acknowledged comes again, everything pending does).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub config: ConsumerConfig,
    pub created: u64,
    next_seq: u64,
    consumer_seq: u64,
    delivered_stream_seq: u64,
    ack_floor: (u64, u64),
    /// (stream seq, consumer seq, deliveries) of each pending message.
    pending: Vec<(u64, u64, u64)>,
    redelivered: u64,
    #[serde(default)]
    catch_up: Vec<u64>,
}

/// How many messages matching the filter wait at or after `next_seq`,
/// kept current from the store's appends and removals so a delivery does
/// not recount the stream.
#[derive(Clone, Debug, Default)]
struct PendingCount {
    count: u64,
    /// The store's last sequence when last brought up to date.
    through_seq: u64,
    /// The store's removal total then (None: count afresh).
    removals: Option<u64>,
}

/// The state of one consumer.
#[derive(Clone, Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    /// The next stream sequence not yet looked at.
    next_seq: u64,
    /// The last consumer sequence handed out.
    consumer_seq: u64,
    /// The highest stream sequence delivered (or skipped as not matching).
    delivered_stream_seq: u64,
    /// Everything at or below is acknowledged: (consumer seq, stream seq).
    ack_floor: (u64, u64),
    /// By stream sequence.
    pending: BTreeMap<u64, Pending>,
    /// Stream sequences due for redelivery, in order (redelivered first).
    redeliver: BTreeMap<u64, ()>,
    /// Pending deliveries not yet due, by when their ack wait ends:
    /// (deadline, stream sequence). Disjoint from `redeliver`.
    deadlines: BTreeSet<(u64, u64)>,
    /// Messages delivered more than once that are still tracked.
    redelivered: u64,
    /// `last_per_subject`: the last message of each subject, by stream
    /// sequence, delivered before anything from `next_seq` on.
    catch_up: BTreeSet<u64>,
    /// When something was last delivered, and last acknowledged (Unix ns; 0: never).
    last_delivered: u64,
    last_acked: u64,
    num_pending: PendingCount,
    /// Whether what [`Snapshot`] keeps changed since [`Consumer::take_changed`].
    changed: bool,
}

impl Consumer {
    /// A new consumer on `store` at `now`: where it starts follows its deliver policy.
    pub fn new(config: ConsumerConfig, store: &mut Store, start_time: Option<u64>) -> Consumer {
        let state = store.state();
        let filter = config.filter_subject.clone();
        let mut first = |from: u64| -> u64 {
            if filter.is_empty() {
                from.max(state.first_seq)
            } else {
                store
                    .next_seq_by_subject(filter.as_bytes(), from)
                    .unwrap_or(state.last_seq + 1)
            }
        };
        let mut catch_up = BTreeSet::new();
        let start = match config.deliver_policy {
            DeliverPolicy::All => first(0),
            DeliverPolicy::LastPerSubject => {
                let filter: &[u8] = if filter.is_empty() {
                    b">"
                } else {
                    filter.as_bytes()
                };
                let subjects: Vec<Vec<u8>> = store
                    .subject_counts(filter)
                    .into_iter()
                    .map(|(subject, _)| subject.to_vec())
                    .collect();
                catch_up = subjects
                    .iter()
                    .filter_map(|subject| store.last_seq_by_subject(subject))
                    .collect();
                state.last_seq + 1
            }
            DeliverPolicy::Last => {
                let last = if filter.is_empty() {
                    store.contains(state.last_seq).then_some(state.last_seq)
                } else {
                    store.last_seq_by_subject(filter.as_bytes())
                };
                last.unwrap_or(state.last_seq + 1)
            }
            DeliverPolicy::New => state.last_seq + 1,
            DeliverPolicy::ByStartSequence => first(config.opt_start_seq.max(0) as u64),
            DeliverPolicy::ByStartTime => {
                let from = start_time.unwrap_or(0);
                let mut seq = store.next_seq(0);
                while let Some(s) = seq {
                    if store.get(s).is_some_and(|m| m.time >= from) {
                        break;
                    }
                    seq = store.next_seq(s + 1);
                }
                seq.unwrap_or(state.last_seq + 1)
            }
        };
        let start = start.max(1);
        // Where it starts, as info shows it: before the first catch-up message.
        let before = catch_up.first().map_or(start, |&first| first) - 1;
        Consumer {
            config,
            next_seq: start,
            consumer_seq: 0,
            delivered_stream_seq: before,
            // As nats-server's consumer store: nothing acknowledged yet.
            ack_floor: (0, 0),
            pending: BTreeMap::new(),
            redeliver: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            redelivered: 0,
            catch_up,
            last_delivered: 0,
            last_acked: 0,
            num_pending: PendingCount::default(),
            changed: true,
        }
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Its state for the disk.
    pub fn snapshot(&self, created: u64) -> Snapshot {
        Snapshot {
            config: self.config.clone(),
            created,
            next_seq: self.next_seq,
            consumer_seq: self.consumer_seq,
            delivered_stream_seq: self.delivered_stream_seq,
            ack_floor: self.ack_floor,
            pending: self
                .pending
                .iter()
                .map(|(&s, p)| (s, p.consumer_seq, p.deliveries))
                .collect(),
            redelivered: self.redelivered,
            catch_up: self.catch_up.iter().copied().collect(),
        }
    }

    /// Back from the disk at `now`: what was pending is redelivered once
    /// its ack wait, counted from now, is over.
    pub fn from_snapshot(snapshot: Snapshot, now: u64) -> Consumer {
        let mut consumer = Consumer {
            config: snapshot.config,
            next_seq: snapshot.next_seq,
            consumer_seq: snapshot.consumer_seq,
            delivered_stream_seq: snapshot.delivered_stream_seq,
            ack_floor: snapshot.ack_floor,
            pending: BTreeMap::new(),
            redeliver: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            redelivered: snapshot.redelivered,
            catch_up: snapshot.catch_up.into_iter().collect(),
            last_delivered: 0,
            last_acked: 0,
            num_pending: PendingCount::default(),
            changed: false,
        };
        for (seq, consumer_seq, deliveries) in snapshot.pending {
            let deadline = now.saturating_add(consumer.ack_wait(deliveries));
            consumer.track(
                seq,
                Pending {
                    consumer_seq,
                    deliveries,
                    deadline,
                },
            );
        }
        consumer
    }

    /// A new configuration for the same consumer (an allowed update).
    pub fn update_config(&mut self, config: ConsumerConfig) {
        if config.filter_subject != self.config.filter_subject {
            // What is pending is counted again under the new filter.
            self.num_pending = PendingCount::default();
        }
        self.config = config;
        self.changed = true;
    }

    /// Whether its state on disk needs writing again (and from now on not).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn acks(&self) -> bool {
        self.config.ack_policy != AckPolicy::None
    }

    fn matches(&self, subject: &[u8]) -> bool {
        self.config.filter_subject.is_empty()
            || subject_matches(self.config.filter_subject.as_bytes(), subject)
    }

    /// How long a delivery waits for its ack, by its delivery count.
    fn ack_wait(&self, deliveries: u64) -> u64 {
        let backoff = &self.config.backoff;
        let wait = if backoff.is_empty() {
            self.config.ack_wait
        } else {
            let i = (deliveries as usize)
                .saturating_sub(1)
                .min(backoff.len() - 1);
            backoff[i]
        };
        wait.max(0) as u64
    }

    /// Messages matching the filter not yet delivered (as of the last
    /// [`Consumer::count_pending`]).
    pub fn num_pending(&self) -> u64 {
        self.num_pending.count
    }

    /// Brings the count of messages not yet delivered up to date with the
    /// store: new messages are looked at once, removals are taken from the
    /// store's recent ones, and only when those were forgotten is the
    /// rest of the stream counted again.
    pub fn count_pending(&mut self, store: &mut Store) {
        let removed_total = store.removed_total();
        let mut np = std::mem::take(&mut self.num_pending);
        let up_to_date = match np.removals {
            Some(seen) if seen == removed_total => true,
            Some(seen) => match store.removals_since(seen) {
                Some(removals) => {
                    for (seq, subject) in removals {
                        let counted = (seq >= self.next_seq
                            && seq <= np.through_seq
                            && self.matches(subject))
                            || self.catch_up.contains(&seq);
                        if counted {
                            np.count = np.count.saturating_sub(1);
                        }
                    }
                    true
                }
                None => false,
            },
            None => false,
        };
        let from = if up_to_date {
            np.through_seq + 1
        } else {
            np.count = self
                .catch_up
                .iter()
                .filter(|&&seq| store.contains(seq))
                .count() as u64;
            self.next_seq
        };
        np.count += store.count_matching(
            from.max(self.next_seq),
            self.config.filter_subject.as_bytes(),
        );
        np.through_seq = store.last_seq();
        np.removals = Some(removed_total);
        self.num_pending = np;
    }

    /// Deliveries whose ack wait ended, waiting to go again.
    pub fn num_redeliveries_due(&self) -> u64 {
        self.redeliver.len() as u64
    }

    /// The latest delivery of stream sequence `seq` if it is not
    /// acknowledged: (consumer sequence, deliveries).
    pub fn pending_delivery(&self, seq: u64) -> Option<(u64, u64)> {
        self.pending
            .get(&seq)
            .map(|p| (p.consumer_seq, p.deliveries))
    }

    /// Delivered, not acknowledged.
    pub fn num_ack_pending(&self) -> u64 {
        self.pending.len() as u64
    }

    pub fn num_redelivered(&self) -> u64 {
        self.redelivered
    }

    /// Whether the consumer is done with stream sequence `seq`: delivered
    /// and acknowledged (what an interest stream waits for).
    pub fn done_with(&self, seq: u64) -> bool {
        seq <= self.delivered_stream_seq && !self.pending.contains_key(&seq)
    }

    /// When something was last delivered and last acknowledged (0: never).
    pub fn last_active(&self) -> (u64, u64) {
        (self.last_delivered, self.last_acked)
    }

    /// `delivered`: (consumer seq, stream seq).
    pub fn delivered(&self) -> (u64, u64) {
        (self.consumer_seq, self.delivered_stream_seq)
    }

    pub fn ack_floor(&self) -> (u64, u64) {
        self.ack_floor
    }

    /// Tracks a delivery of `seq` (replacing an earlier one), due at its deadline.
    fn track(&mut self, seq: u64, pending: Pending) {
        self.changed = true;
        self.redeliver.remove(&seq);
        self.deadlines.insert((pending.deadline, seq));
        if let Some(old) = self.pending.insert(seq, pending) {
            if old.deadline != self.pending[&seq].deadline {
                self.deadlines.remove(&(old.deadline, seq));
            }
        }
    }

    /// Stops tracking `seq` (acknowledged, or given up on).
    fn untrack(&mut self, seq: u64) -> Option<Pending> {
        let p = self.pending.remove(&seq)?;
        self.changed = true;
        self.deadlines.remove(&(p.deadline, seq));
        self.redeliver.remove(&seq);
        Some(p)
    }

    /// A new deadline for a pending `seq`: due for redelivery then.
    fn reschedule(&mut self, seq: u64, deadline: u64) {
        if let Some(p) = self.pending.get_mut(&seq) {
            self.deadlines.remove(&(p.deadline, seq));
            self.redeliver.remove(&seq);
            p.deadline = deadline;
            self.deadlines.insert((deadline, seq));
        }
    }

    /// Moves deliveries whose ack wait ended by `now` to the redelivery
    /// queue (those that reached `max_deliver` are dropped when their turn
    /// comes, in [`Consumer::next`]).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(deadline, seq)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            self.redeliver.insert(seq, ());
        }
    }

    /// Whether every pending delivery is either due or waiting for its
    /// deadline, never both (the indexes agree with `pending`).
    #[cfg(test)]
    fn indexes_agree(&self) -> bool {
        let waiting: BTreeSet<u64> = self.deadlines.iter().map(|&(_, seq)| seq).collect();
        let due: BTreeSet<u64> = self.redeliver.keys().copied().collect();
        let pending: BTreeSet<u64> = self.pending.keys().copied().collect();
        waiting.is_disjoint(&due)
            && waiting.union(&due).copied().collect::<BTreeSet<u64>>() == pending
            && self
                .deadlines
                .iter()
                .all(|&(deadline, seq)| self.pending[&seq].deadline == deadline)
    }

    /// When the next delivery's ack wait ends.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The next message to send at `now`, if any (redeliveries first, then
    /// new messages matching the filter), and the stream sequences dropped
    /// on the way for having reached `max_deliver`.
    pub fn next(&mut self, store: &mut Store, now: u64) -> (Option<Delivery>, Vec<u64>) {
        self.next_if(store, now, |_, _| true)
    }

    /// As [`Consumer::next`], but the delivery happens only if `accept`
    /// takes it; declined, the consumer is as it was (the message comes
    /// next again).
    pub fn next_if(
        &mut self,
        store: &mut Store,
        now: u64,
        accept: impl FnOnce(&Delivery, &mut Store) -> bool,
    ) -> (Option<Delivery>, Vec<u64>) {
        let (planned, dropped) = self.plan(store);
        let Some(planned) = planned else {
            return (None, dropped);
        };
        let delivery = self.delivery_of(planned);
        if !accept(&delivery, store) {
            return (None, dropped);
        }
        self.commit(planned, now);
        (Some(delivery), dropped)
    }

    /// Finds the next message to deliver. Only what is final changes:
    /// redeliveries of messages gone from the stream or past
    /// `max_deliver` are dropped, and messages not matching the filter
    /// are passed over.
    fn plan(&mut self, store: &mut Store) -> (Option<Planned>, Vec<u64>) {
        self.count_pending(store);
        let mut dropped = Vec::new();
        while let Some((&seq, _)) = self.redeliver.iter().next() {
            let Some(p) = self.pending.get(&seq) else {
                self.redeliver.remove(&seq);
                continue;
            };
            if !store.contains(seq) {
                // Gone from the stream (purged, expired): dropped silently.
                self.untrack(seq);
                continue;
            }
            let max = self.config.max_deliver;
            if max > 0 && p.deliveries >= max as u64 {
                self.untrack(seq);
                dropped.push(seq);
                continue;
            }
            return (Some(Planned::Redelivery(seq)), dropped);
        }
        if self.acks()
            && self.config.max_ack_pending > 0
            && self.pending.len() as i64 >= self.config.max_ack_pending
        {
            return (None, dropped);
        }
        while let Some(&seq) = self.catch_up.first() {
            if store.contains(seq) {
                return (Some(Planned::New(seq)), dropped);
            }
            // Gone since (its removal was counted).
            self.catch_up.remove(&seq);
            self.changed = true;
        }
        let filter = self.config.filter_subject.as_bytes();
        let found = if filter.is_empty() {
            store.next_seq(self.next_seq)
        } else {
            store.next_seq_by_subject(filter, self.next_seq)
        };
        // Messages passed over for the filter count as delivered.
        let passed = match found {
            Some(seq) => store.prev_seq(seq - 1),
            None => store.prev_seq(store.last_seq()),
        };
        if let Some(seq) = passed.filter(|&s| s >= self.next_seq) {
            self.next_seq = seq + 1;
            self.delivered_stream_seq = seq;
            self.changed = true;
        }
        (found.map(Planned::New), dropped)
    }

    /// What delivering `planned` would send.
    fn delivery_of(&self, planned: Planned) -> Delivery {
        match planned {
            Planned::Redelivery(seq) => Delivery {
                stream_seq: seq,
                consumer_seq: self.consumer_seq + 1,
                deliveries: self.pending[&seq].deliveries + 1,
                pending: self.num_pending.count,
            },
            Planned::New(seq) => Delivery {
                stream_seq: seq,
                consumer_seq: self.consumer_seq + 1,
                deliveries: 1,
                pending: self.num_pending.count.saturating_sub(1),
            },
        }
    }

    /// Delivers `planned` at `now`.
    fn commit(&mut self, planned: Planned, now: u64) {
        self.changed = true;
        self.consumer_seq += 1;
        self.last_delivered = now;
        match planned {
            Planned::Redelivery(seq) => {
                let previous = self.pending[&seq].deliveries;
                if previous == 1 {
                    self.redelivered += 1;
                }
                let deliveries = previous + 1;
                let deadline = now.saturating_add(self.ack_wait(deliveries));
                self.track(
                    seq,
                    Pending {
                        consumer_seq: self.consumer_seq,
                        deliveries,
                        deadline,
                    },
                );
            }
            Planned::New(seq) => {
                // A catch-up message is behind `next_seq`, which stays.
                self.catch_up.remove(&seq);
                self.next_seq = self.next_seq.max(seq + 1);
                self.num_pending.count = self.num_pending.count.saturating_sub(1);
                self.delivered_stream_seq = self.delivered_stream_seq.max(seq);
                if self.acks() {
                    let deadline = now.saturating_add(self.ack_wait(1));
                    self.track(
                        seq,
                        Pending {
                            consumer_seq: self.consumer_seq,
                            deliveries: 1,
                            deadline,
                        },
                    );
                } else {
                    self.ack_floor = (self.consumer_seq, seq);
                }
            }
        }
    }

    /// An acknowledgement of stream sequence `seq` at `now`; puts the stream
    /// sequences it acknowledged in `acked` (emptied first; the engine
    /// removes those of work queue and interest streams).
    pub fn ack(&mut self, seq: u64, ack: &Ack, now: u64, acked: &mut Vec<u64>) {
        acked.clear();
        if !self.acks() {
            return;
        }
        match ack {
            Ack::Ack | Ack::Term | Ack::Next(_) => {
                if self.config.ack_policy == AckPolicy::All {
                    acked.extend(self.pending.range(..=seq).map(|(&s, _)| s));
                } else if self.pending.contains_key(&seq) {
                    acked.push(seq);
                }
                if !acked.is_empty() {
                    self.last_acked = now;
                }
                for &s in acked.iter() {
                    if let Some(p) = self.untrack(s) {
                        if p.deliveries > 1 {
                            self.redelivered = self.redelivered.saturating_sub(1);
                        }
                    }
                }
                self.advance_floor();
            }
            Ack::Nak(delay) => {
                self.reschedule(seq, now.saturating_add(*delay));
                if *delay == 0 {
                    // Due at once, before new messages.
                    self.expire(now);
                }
            }
            Ack::InProgress => {
                if let Some(wait) = self.pending.get(&seq).map(|p| self.ack_wait(p.deliveries)) {
                    self.reschedule(seq, now.saturating_add(wait));
                }
            }
        }
    }

    /// The ack floor: everything delivered below the oldest pending message.
    fn advance_floor(&mut self) {
        self.changed = true;
        match self.pending.iter().next() {
            Some((&seq, p)) => {
                let cseq = p.consumer_seq.saturating_sub(1);
                if seq > 0 && (cseq, seq - 1) > self.ack_floor {
                    self.ack_floor = (cseq.max(self.ack_floor.0), seq - 1);
                }
            }
            None => self.ack_floor = (self.consumer_seq, self.delivered_stream_seq),
        }
    }
}

/// Writes the ack reply subject of a delivery, as nats-server 2.9.10 writes
/// it, into `out` (emptied first; its room reused).
pub fn write_ack_subject(
    out: &mut String,
    stream: &str,
    consumer: &str,
    d: &Delivery,
    stored_time: u64,
) {
    out.clear();
    out.push_str("$JS.ACK.");
    out.push_str(stream);
    out.push('.');
    out.push_str(consumer);
    for n in [
        d.deliveries,
        d.stream_seq,
        d.consumer_seq,
        stored_time,
        d.pending,
    ] {
        out.push('.');
        push_decimal(out, n);
    }
}

/// Reads an ack reply subject: (stream, consumer, stream seq).
pub fn parse_ack_subject(subject: &[u8]) -> Option<(&str, &str, u64)> {
    let rest = subject.strip_prefix(b"$JS.ACK.")?;
    let mut tokens = rest.split(|&b| b == b'.');
    let mut next = || tokens.next();
    let (stream, consumer) = (next()?, next()?);
    let (_deliveries, sseq) = (next()?, next()?);
    let (_cseq, _time, _pending) = (next()?, next()?, next()?);
    if next().is_some() {
        return None;
    }
    let name = |token| std::str::from_utf8(token).ok();
    Some((name(stream)?, name(consumer)?, parse_decimal(sseq)?))
}

/// A decimal number of ASCII digits without sign or spaces, as Go's
/// `strconv.ParseUint` reads it; `None` for anything else or an overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::store::{Accounting, Limits};
    use super::*;

    /// [`Consumer::ack`], returning the sequences it acknowledged.
    fn ack(c: &mut Consumer, seq: u64, a: &Ack, now: u64) -> Vec<u64> {
        let mut acked = Vec::new();
        c.ack(seq, a, now, &mut acked);
        acked
    }

    fn store(subjects: &[&str]) -> Store {
        let mut s = Store::new(Accounting::File, Limits::default());
        for (i, subject) in subjects.iter().enumerate() {
            s.store(subject.as_bytes(), b"", b"x", 1_000 + i as u64)
                .unwrap();
        }
        s
    }

    fn consumer(json: &str, store: &mut Store) -> Consumer {
        let config = serde_json::from_str::<ConsumerConfig>(json)
            .unwrap()
            .with_defaults();
        Consumer::new(config, store, None)
    }

    fn seqs(c: &mut Consumer, s: &mut Store, now: u64) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| c.next(s, now).0.map(|d| (d.stream_seq, d.deliveries))).collect()
    }

    #[test]
    fn ack_bodies() {
        assert_eq!(Ack::parse(b""), Some(Ack::Ack));
        assert_eq!(Ack::parse(b"+ACK"), Some(Ack::Ack));
        assert_eq!(Ack::parse(b"-NAK"), Some(Ack::Nak(0)));
        assert_eq!(
            Ack::parse(br#"-NAK {"delay": 1500000000}"#),
            Some(Ack::Nak(1_500_000_000))
        );
        assert_eq!(Ack::parse(b"+WPI"), Some(Ack::InProgress));
        assert_eq!(Ack::parse(b"+TERM"), Some(Ack::Term));
        assert_eq!(Ack::parse(b"bogus"), None);
        assert_eq!(Ack::parse(b"+NXT"), Some(Ack::Next(Vec::new())));
        assert_eq!(
            Ack::parse(br#"+NXT {"batch":2}"#),
            Some(Ack::Next(br#"{"batch":2}"#.to_vec()))
        );
    }

    #[test]
    fn ack_subjects_as_nats_server_writes_them() {
        let d = Delivery {
            stream_seq: 3,
            consumer_seq: 3,
            deliveries: 1,
            pending: 0,
        };
        let mut subject = String::new();
        write_ack_subject(&mut subject, "P", "W", &d, 1_796_613_139_215_944_397);
        assert_eq!(subject, "$JS.ACK.P.W.1.3.3.1796613139215944397.0");
        assert_eq!(parse_ack_subject(subject.as_bytes()), Some(("P", "W", 3)));
        let max = format!("$JS.ACK.P.W.1.{}.3.4.0", u64::MAX);
        assert_eq!(
            parse_ack_subject(max.as_bytes()),
            Some(("P", "W", u64::MAX))
        );
        for bad in [
            "$JS.ACK.P.W.1.3",
            "$JS.ACK.P.W.1.3.3.4.0.9",
            "$JS.ACK.P.W.1.+3.3.4.0",
            "$JS.ACK.P.W.1..3.4.0",
            "$JS.ACK.P.W.1.18446744073709551616.3.4.0",
            "$JS.NAK.P.W.1.3.3.4.0",
        ] {
            assert_eq!(parse_ack_subject(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_ack_subject(b"$JS.ACK.P\xff.W.1.3.3.4.0"), None);
    }

    #[test]
    fn deliver_policies_start_where_nats_server_starts() {
        let mut s = store(&["a", "b", "a", "b", "a"]);
        assert_eq!(consumer(r#"{}"#, &mut s).delivered(), (0, 0));
        assert_eq!(
            consumer(r#"{"deliver_policy":"last"}"#, &mut s).delivered(),
            (0, 4)
        );
        assert_eq!(
            consumer(r#"{"deliver_policy":"new"}"#, &mut s).delivered(),
            (0, 5)
        );
        let by_seq = consumer(
            r#"{"deliver_policy":"by_start_sequence","opt_start_seq":3}"#,
            &mut s,
        );
        assert_eq!(by_seq.delivered(), (0, 2));
        let mut filtered = consumer(r#"{"filter_subject":"b"}"#, &mut s);
        filtered.count_pending(&mut s);
        assert_eq!(filtered.num_pending(), 2);
        assert_eq!(seqs(&mut filtered, &mut s, 0), [(2, 1), (4, 1)]);
        // Stored at 1000 + i: from time 1002 on is sequence 3 on.
        let config = serde_json::from_str::<ConsumerConfig>(
            r#"{"deliver_policy":"by_start_time","opt_start_time":"1970-01-01T00:00:00.000001002Z"}"#,
        )
        .unwrap()
        .with_defaults();
        let mut by_time = Consumer::new(config, &mut s, Some(1_002));
        assert_eq!(by_time.delivered(), (0, 2));
        assert_eq!(seqs(&mut by_time, &mut s, 0), [(3, 1), (4, 1), (5, 1)]);
    }

    #[test]
    fn last_per_subject_delivers_each_subjects_last_then_what_comes() {
        let mut s = store(&["a", "b", "a", "c", "b"]);
        let mut c = consumer(r#"{"deliver_policy":"last_per_subject"}"#, &mut s);
        assert_eq!(c.delivered(), (0, 2), "before the first catch-up message");
        c.count_pending(&mut s);
        assert_eq!(c.num_pending(), 3);
        assert_eq!(
            c.next(&mut s, 0).0.map(|d| (d.stream_seq, d.pending)),
            Some((3, 2))
        );
        s.store(b"a", b"", b"x", 2_000).unwrap();
        // A catch-up message removed before its turn is not delivered.
        s.remove(4).unwrap();
        c.count_pending(&mut s);
        assert_eq!(c.num_pending(), 2, "5 (b) and the new 6 (a)");
        assert_eq!(seqs(&mut c, &mut s, 0), [(5, 1), (6, 1)]);
        let mut filtered = consumer(
            r#"{"deliver_policy":"last_per_subject","filter_subject":"b"}"#,
            &mut s,
        );
        assert_eq!(seqs(&mut filtered, &mut s, 0), [(5, 1)]);
        // The catch-up list survives a restart.
        let mut again = consumer(r#"{"deliver_policy":"last_per_subject"}"#, &mut s);
        assert_eq!(again.next(&mut s, 0).0.map(|d| d.stream_seq), Some(5));
        let mut back = Consumer::from_snapshot(again.snapshot(0), 0);
        assert_eq!(seqs(&mut back, &mut s, 0), [(6, 1)]);
    }

    #[test]
    fn a_new_filter_counts_what_is_pending_again() {
        let mut s = store(&[]);
        let mut c = consumer(r#"{"filter_subject":"a"}"#, &mut s);
        s.store(b"b", b"", b"x", 1).unwrap();
        c.count_pending(&mut s);
        assert_eq!(c.num_pending(), 0);
        let mut wider = c.config().clone();
        wider.filter_subject.clear();
        c.update_config(wider);
        c.count_pending(&mut s);
        assert_eq!(c.num_pending(), 1, "b counts now");
    }

    #[test]
    fn explicit_acks_redelivery_and_the_floor() {
        let mut s = store(&["a", "a", "a"]);
        let mut c = consumer(r#"{"ack_policy":"explicit","ack_wait":1000}"#, &mut s);
        assert_eq!(seqs(&mut c, &mut s, 0), [(1, 1), (2, 1), (3, 1)]);
        assert_eq!(c.num_ack_pending(), 3);
        ack(&mut c, 2, &Ack::Ack, 10);
        assert_eq!(c.ack_floor(), (0, 0), "1 is still pending");
        ack(&mut c, 1, &Ack::Ack, 10);
        assert_eq!(c.ack_floor(), (2, 2));
        // 3 times out and comes back as a second delivery with a new consumer seq.
        c.expire(1_000);
        let (d, _) = c.next(&mut s, 1_000);
        let d = d.unwrap();
        assert_eq!((d.stream_seq, d.deliveries, d.consumer_seq), (3, 2, 4));
        assert_eq!(c.num_redelivered(), 1);
        ack(&mut c, 3, &Ack::Ack, 1_001);
        assert_eq!((c.num_ack_pending(), c.num_redelivered()), (0, 0));
        assert_eq!(c.ack_floor(), (4, 3));
    }

    #[test]
    fn ack_all_nak_with_delay_term_and_max_deliver() {
        let mut s = store(&["a", "a", "a"]);
        let mut all = consumer(r#"{"ack_policy":"all","ack_wait":1000}"#, &mut s);
        seqs(&mut all, &mut s, 0);
        assert_eq!(ack(&mut all, 2, &Ack::Ack, 5), [1, 2]);
        assert_eq!(all.num_ack_pending(), 1);
        let mut c = consumer(
            r#"{"ack_policy":"explicit","ack_wait":1000,"max_deliver":2}"#,
            &mut s,
        );
        seqs(&mut c, &mut s, 0);
        ack(&mut c, 1, &Ack::Nak(500), 10);
        ack(&mut c, 2, &Ack::Term, 10);
        c.expire(100);
        assert_eq!(c.next(&mut s, 100).0, None, "the nak's delay is not over");
        c.expire(510);
        assert_eq!(c.next(&mut s, 510).0.map(|d| d.stream_seq), Some(1));
        // 3 timed out twice: dropped on its third attempt, with an advisory.
        c.expire(1_000);
        assert_eq!(
            c.next(&mut s, 1_000)
                .0
                .map(|d| (d.stream_seq, d.deliveries)),
            Some((3, 2))
        );
        c.expire(2_100);
        let (next, dropped) = c.next(&mut s, 2_100);
        assert_eq!(next.map(|d| d.stream_seq), None);
        assert_eq!(dropped, [1, 3]);
    }

    #[test]
    fn max_ack_pending_holds_new_messages() {
        let mut s = store(&["a", "a", "a"]);
        let mut c = consumer(r#"{"ack_policy":"explicit","max_ack_pending":2}"#, &mut s);
        assert_eq!(seqs(&mut c, &mut s, 0), [(1, 1), (2, 1)]);
        ack(&mut c, 1, &Ack::Ack, 1);
        assert_eq!(seqs(&mut c, &mut s, 1), [(3, 1)]);
    }

    #[test]
    fn backoff_sets_each_redeliverys_wait() {
        let mut s = store(&["a"]);
        let mut c = consumer(
            r#"{"ack_policy":"explicit","backoff":[100,1000],"max_deliver":5}"#,
            &mut s,
        );
        c.next(&mut s, 0);
        assert_eq!(c.next_deadline(), Some(100));
        c.expire(100);
        c.next(&mut s, 100);
        assert_eq!(c.next_deadline(), Some(1_100));
        c.expire(1_100);
        c.next(&mut s, 1_100);
        assert_eq!(c.next_deadline(), Some(2_100), "the last backoff repeats");
    }

    proptest! {
        /// Whatever the acks, naks and timeouts: every message is delivered
        /// until acknowledged, none acknowledged comes again, and the floor
        /// never passes a message still pending.
        #[test]
        fn every_message_is_delivered_until_acknowledged(
            n in 1..20usize,
            ops in prop::collection::vec((0..5u8, 0..25u64, 0..3u64), 0..80),
        ) {
            let subjects: Vec<&str> = (0..n).map(|_| "a").collect();
            let mut s = store(&subjects);
            let mut c = consumer(r#"{"ack_policy":"explicit","ack_wait":100}"#, &mut s);
            let mut acked = std::collections::BTreeSet::new();
            let mut now = 0;
            for (kind, seq, step) in ops {
                now += step * 60;
                c.expire(now);
                match kind {
                    0 | 1 => {
                        if let Some(d) = c.next(&mut s, now).0 {
                            prop_assert!(!acked.contains(&d.stream_seq), "acked {} came again", d.stream_seq);
                        }
                    }
                    2 => {
                        let seq = seq % (n as u64 + 1);
                        if c.pending.contains_key(&seq) {
                            acked.insert(seq);
                        }
                        ack(&mut c, seq, &Ack::Ack, now);
                    }
                    3 => { ack(&mut c, seq % (n as u64 + 1), &Ack::Nak(0), now); }
                    _ => { ack(&mut c, seq % (n as u64 + 1), &Ack::InProgress, now); }
                }
                if let Some((&first, _)) = c.pending.iter().next() {
                    prop_assert!(c.ack_floor().1 < first);
                }
                prop_assert!(c.indexes_agree());
            }
            // Draining with time passing delivers everything not acknowledged.
            for _ in 0..(4 * n) {
                now += 1_000;
                c.expire(now);
                while let Some(d) = c.next(&mut s, now).0 {
                    acked.insert(d.stream_seq);
                    ack(&mut c, d.stream_seq, &Ack::Ack, now);
                }
            }
            prop_assert_eq!(acked.len(), n);
            prop_assert_eq!(c.num_ack_pending(), 0);
        }
    }
}
