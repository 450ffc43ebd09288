//! The engine's side of JetStream: `$JS.API` requests answered in the
//! requester's account, and published messages stored by the stream that
//! covers their subject, each answered on its reply subject.

use std::cmp::Reverse;
use std::time::Duration;

use crate::jetstream::api::{not_enabled_answer, ServerShare, StoreWrite};
use crate::jetstream::config::Storage;
use crate::jetstream::log_format::Scan;
use crate::jetstream::outbox::Outgoing;
use crate::jetstream::store::BlockReader;
use crate::options::StoreSync;
use crate::proto::encode::decimal;
use crate::proto::Publish;
use crate::sublist::Sublist;
use crate::time::Time;
use crate::Level;

use super::timers::{Timer, SERVER_TIMER};
use super::Server;

/// Publishes on these subjects are JetStream API requests.
const API_PREFIX: &[u8] = b"$JS.API.";

/// A publisher index no client has: the server's own messages.
const NO_PUBLISHER: usize = usize::MAX;

impl Server {
    /// The wall-clock time of `now`, in Unix nanoseconds (stored messages
    /// and streams carry it).
    fn unix_time(&self, now: Time) -> u64 {
        self.wall_origin.unwrap_or(0).saturating_add(now.as_nanos())
    }

    /// JetStream's part of a client's publish (after its permission
    /// checks); returns whether JetStream took it, which counts as interest
    /// (no no-responders status).
    pub(super) fn jetstream_publish(
        &mut self,
        index: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        if self.opts.jetstream.is_none() {
            return false;
        }
        let acc = self.client_ref(index).account;
        let (hdr, data) = publish.payload.split_at(publish.header_len);
        let unix = self.unix_time(now);
        if let Some(api) = publish.subject.strip_prefix(API_PREFIX) {
            let api = String::from_utf8_lossy(api);
            if api.starts_with("CONSUMER.MSG.NEXT.") {
                // A pull request: answered by the consumer with messages.
                let (Some(reply), Some(js)) =
                    (publish.reply, self.accounts[acc].jetstream.as_mut())
                else {
                    return true;
                };
                let inbox = String::from_utf8_lossy(reply).into_owned();
                js.pull(&api, data, &inbox, unix);
                self.serve_consumers(acc, unix, now);
                return true;
            }
            if api.starts_with("DIRECT.GET.") {
                // Served by the stream itself, not counted as an API call.
                let answer = self.accounts[acc]
                    .jetstream
                    .as_mut()
                    .and_then(|js| js.direct_get(&api, data));
                if let (Some(answer), Some(reply)) = (answer, publish.reply) {
                    self.publish_internal_with_headers(acc, reply, &answer.hdr, &answer.data, now);
                }
                return true;
            }
            let share = self.server_share(acc, true);
            let before = self.account_usage(acc);
            let account = &mut self.accounts[acc];
            let sublist = &mut account.sublist;
            let answer = match account.jetstream.as_mut() {
                Some(js) => js.request(&api, data, unix, &share, &mut |subject, group| {
                    has_interest(sublist, subject, group)
                }),
                None => not_enabled_answer(&api),
            };
            self.update_usage(acc, before);
            self.writes_due(acc);
            if let (Some(answer), Some(reply)) = (answer, publish.reply) {
                self.durable_reply(acc, reply, answer.as_bytes(), now);
            }
            // A consumer just made may have messages to push; a stream
            // made or changed may have messages to expire.
            self.serve_consumers(acc, unix, now);
            return true;
        }
        if self.accounts[acc].jetstream.is_none() {
            return false;
        }
        if publish.subject.starts_with(b"$JS.ACK.") {
            return self.jetstream_ack(acc, publish, unix, now);
        }
        if publish.subject.starts_with(b"$JS.FC.") {
            let subject = String::from_utf8_lossy(publish.subject);
            let js = self.accounts[acc].jetstream.as_mut().expect("checked");
            if !js.flow_control_answer(&subject) {
                return false;
            }
            self.serve_consumers(acc, unix, now);
            return true;
        }
        // Most publishes go to no stream: find that out before anything
        // walks the account's usage.
        let captured = self.accounts[acc]
            .jetstream
            .as_ref()
            .is_some_and(|js| js.streams().any(|s| s.captures(publish.subject)));
        if !captured {
            return false;
        }
        let share = self.server_share(acc, false);
        let before = self.account_usage(acc);
        let js = self.accounts[acc].jetstream.as_mut().expect("checked");
        let mut ack = std::mem::take(&mut self.pub_ack);
        let Some((_, acked)) = js.capture(publish.subject, hdr, data, unix, &share, &mut ack)
        else {
            self.pub_ack = ack;
            return false;
        };
        self.update_usage(acc, before);
        // Written before the PubAck can go out (the runtime makes store
        // writes before client writes).
        self.writes_due(acc);
        if let (true, Some(reply)) = (acked, publish.reply) {
            self.durable_reply(acc, reply, &ack, now);
        }
        self.pub_ack = ack;
        self.serve_consumers(acc, unix, now);
        true
    }

    /// An acknowledgement published on `$JS.ACK.…`; an ack with a reply
    /// subject (ack sync) is confirmed with an empty message.
    fn jetstream_ack(&mut self, acc: usize, publish: &Publish<'_>, unix: u64, now: Time) -> bool {
        // Borrowed from the input (reply subjects are ASCII), not copied.
        let reply = publish.reply.map(String::from_utf8_lossy);
        let body = &publish.payload[publish.header_len..];
        let js = self.accounts[acc].jetstream.as_mut().expect("checked");
        let before = js.usage();
        let Some(outcome) = js.ack(publish.subject, body, reply.as_deref(), unix) else {
            return false;
        };
        self.update_usage(acc, before);
        self.writes_due(acc);
        if let (true, Some(reply)) = (outcome.confirm, publish.reply) {
            self.durable_reply(acc, reply, b"", now);
        }
        self.serve_consumers(acc, unix, now);
        true
    }

    /// Lets account `acc`'s consumers send what they can at `now` (see
    /// [`AccountJetStream::serve`]), each push consumer while its deliver
    /// subject (and group, if it has one) has interest; then sends what
    /// JetStream queued and sets the JetStream timer.
    pub(super) fn serve_consumers(&mut self, acc: usize, unix: u64, now: Time) {
        let account = &mut self.accounts[acc];
        let sublist = &mut account.sublist;
        if let Some(js) = account.jetstream.as_mut() {
            let mut interest =
                |subject: &str, group: Option<&str>| has_interest(sublist, subject, group);
            if js.serve(unix, &mut interest) {
                // More than a turn's share is ready: the rest on the next turn.
                let due = now + Duration::from_nanos(1);
                self.schedule_jetstream_timer(due);
            }
        }
        self.flush_jetstream(acc, now);
        self.schedule_expiry(now);
    }

    /// Queues what account `acc`'s JetStream needs written, then sends
    /// what it queued to send (the runtime makes the writes first).
    fn flush_jetstream(&mut self, acc: usize, now: Time) {
        self.writes_due(acc);
        let out = match self.accounts[acc].jetstream.as_mut() {
            Some(js) => js.take_outbox(),
            None => return,
        };
        let out = self.send_outgoing(acc, out, now);
        if let Some(js) = self.accounts[acc].jetstream.as_mut() {
            js.give_back(out);
        }
    }

    /// Delivers JetStream's messages in account `acc`: each to its inbox's
    /// subscribers, on its own subject.
    /// Returns them, sent.
    fn send_outgoing(&mut self, acc: usize, out: Vec<Outgoing>, now: Time) -> Vec<Outgoing> {
        let mut message = std::mem::take(&mut self.js_message);
        for o in &out {
            message.clear();
            message.extend_from_slice(&o.hdr);
            message.extend_from_slice(&o.data);
            let (mut hdr_size, mut size) = ([0u8; 20], [0u8; 20]);
            let publish = Publish {
                subject: &o.subject,
                reply: o.reply.as_deref().map(str::as_bytes),
                header_size_token: (!o.hdr.is_empty())
                    .then(|| decimal(o.hdr.len() as u64, &mut hdr_size)),
                size_token: decimal(message.len() as u64, &mut size),
                header_len: o.hdr.len(),
                payload: &message,
            };
            let matches = self.accounts[acc].sublist.matches(o.inbox.as_bytes());
            self.deliver_all(NO_PUBLISHER, &matches, &publish, now);
        }
        self.js_message = message;
        out
    }

    /// What account `acc`'s streams hold: memory, storage.
    fn account_usage(&self, acc: usize) -> (u64, u64) {
        self.accounts[acc]
            .jetstream
            .as_ref()
            .map_or((0, 0), |js| js.usage())
    }

    /// Keeps the server-wide totals right after account `acc` changed from
    /// holding `before`.
    fn update_usage(&mut self, acc: usize, before: (u64, u64)) {
        let after = self.account_usage(acc);
        self.js_used.0 = self.js_used.0 - before.0 + after.0;
        self.js_used.1 = self.js_used.1 - before.1 + after.1;
    }

    /// The server's limits and what the accounts other than `acc` use (and,
    /// for API requests, reserve: a walk over every account's streams).
    fn server_share(&self, acc: usize, with_reservations: bool) -> ServerShare {
        let js = self.opts.jetstream.as_ref();
        let mine = self.account_usage(acc);
        let mut others_reserved = (0, 0);
        if with_reservations {
            for (i, account) in self.accounts.iter().enumerate() {
                if let (true, Some(js)) = (i != acc, account.jetstream.as_ref()) {
                    others_reserved.0 += js.reserved(Storage::Memory);
                    others_reserved.1 += js.reserved(Storage::File);
                }
            }
        }
        ServerShare {
            max_memory: js.and_then(|j| j.max_memory).unwrap_or(-1),
            max_storage: js.and_then(|j| j.max_store).unwrap_or(-1),
            others_used: (self.js_used.0 - mine.0, self.js_used.1 - mine.1),
            others_reserved,
            duplicate_window: 0,
        }
    }

    /// Notes that account `acc`'s streams and consumers may have changes
    /// to write: they are taken when the runtime next asks for store
    /// writes, once per batch of input (a block's new records in one
    /// write, however many messages).
    fn writes_due(&mut self, acc: usize) {
        let due = self.accounts[acc]
            .jetstream
            .as_ref()
            .is_some_and(|js| js.has_writes() || js.has_consumers());
        if due && !self.writes_due.contains(&acc) {
            self.writes_due.push(acc);
        }
    }

    /// Queues what the accounts noted due need written: streams' changes,
    /// then consumers' states. Answers still waiting for a sync wait for
    /// these writes too (they may confirm what these carry).
    fn collect_due_writes(&mut self) {
        let before = self.store_queued;
        for acc in std::mem::take(&mut self.writes_due) {
            let account = &mut self.accounts[acc];
            let Some(js) = account.jetstream.as_mut() else {
                continue;
            };
            for write in js.take_writes() {
                self.store_writes.push_back((account.name.clone(), write));
                self.store_queued += 1;
            }
            for write in js.take_consumer_writes() {
                self.store_writes.push_back((account.name.clone(), write));
                self.store_queued += 1;
            }
            for problem in js.take_problems() {
                self.log(Level::Error, &problem);
            }
        }
        // Answers held for "the next batch" wait for all of it.
        let queued = self.store_queued;
        for (barrier, ..) in self.held_replies.iter_mut() {
            if *barrier > before {
                *barrier = queued;
            }
        }
        // Nothing to write after all (consumers of memory streams): the
        // answers that waited only for that go now.
        self.release_synced(self.input_time);
    }

    /// The next write a file stream needs, with its account's name. The
    /// runtime makes every one of them before it writes anything to a
    /// client: a PubAck never leaves before its message is written.
    pub fn poll_store_write(&mut self) -> Option<(String, StoreWrite)> {
        if self.store_writes.is_empty() && !self.writes_due.is_empty() {
            self.collect_due_writes();
        }
        let write = self.store_writes.pop_front()?;
        self.store_taken += 1;
        Some(write)
    }

    /// How many store writes the runtime has taken so far: what it reports
    /// back to [`Server::handle_store_synced`] once they are on the disk.
    pub fn store_writes_taken(&self) -> u64 {
        self.store_taken
    }

    /// The runtime synced the first `taken` store writes (with
    /// `sync_interval: always`): the answers that waited for them go.
    pub fn handle_store_synced(&mut self, taken: u64, now: Time) {
        self.input_time = now;
        self.store_synced = self.store_synced.max(taken);
        self.release_synced(now);
    }

    /// Sends the held answers whose writes are all synced, in order.
    fn release_synced(&mut self, now: Time) {
        while let Some((barrier, ..)) = self.held_replies.front() {
            if *barrier > self.store_synced {
                break;
            }
            let (_, acc, reply, payload) = self.held_replies.pop_front().expect("present");
            self.publish_internal(acc, &reply, &payload, now);
        }
    }

    /// An answer that tells a client something is stored (a PubAck, an API
    /// answer, an ack confirmation). With `sync_interval: always` it waits
    /// until the writes queued before it are synced (and behind any answer
    /// already waiting, so answers keep their order).
    fn durable_reply(&mut self, acc: usize, reply: &[u8], payload: &[u8], now: Time) {
        let always = self
            .opts
            .jetstream
            .as_ref()
            .is_some_and(|js| js.sync == StoreSync::Always);
        // Changes noted due are queued with the next batch of writes.
        let due = u64::from(!self.writes_due.is_empty());
        if always
            && (self.store_queued > self.store_synced || due > 0 || !self.held_replies.is_empty())
        {
            let barrier = self.store_queued + due;
            self.held_replies
                .push_back((barrier, acc, reply.to_vec(), payload.to_vec()));
            return;
        }
        self.publish_internal(acc, reply, payload, now);
    }

    /// Brings back a durable consumer of `account`'s `stream` from its state
    /// on disk (after the stream): the JSON of the last intact state record
    /// ([`crate::jetstream::log_format::last_state`]) of its newest state
    /// file, of generation `generation`. Returns the line to log, or why not.
    pub fn restore_consumer(
        &mut self,
        account: &str,
        stream: &str,
        state: &[u8],
        generation: u64,
        now: Time,
    ) -> Result<String, String> {
        let unix = self.unix_time(now);
        let acc = self
            .account_index
            .get(account)
            .copied()
            .ok_or_else(|| format!("account {account:?} is not configured"))?;
        let js = self.accounts[acc]
            .jetstream
            .as_mut()
            .ok_or_else(|| format!("account {account:?} has no JetStream"))?;
        let name = js.restore_consumer(stream, state, generation, unix)?;
        Ok(format!("Restored consumer '{account} > {stream} > {name}'"))
    }

    /// Brings back a file stream of `account` from its metadata at
    /// start-up, empty; its blocks follow ([`Server::restore_block`]), then
    /// [`Server::finish_restore`]. Returns the stream's name, or why not.
    pub fn restore_stream(&mut self, account: &str, meta: &[u8]) -> Result<String, String> {
        let Some(acc) = self.account_index.get(account).copied() else {
            return Err(format!("account {account:?} is not configured"));
        };
        let Some(js) = self.accounts[acc].jetstream.as_mut() else {
            return Err(format!("account {account:?} has no JetStream"));
        };
        js.restore(meta)
    }

    /// Gives a stream being restored one of its block files (in order of
    /// their ids); returns how far its bytes were intact (the rest should
    /// be cut off the file) and, if not to the end, a line to log naming
    /// the stream, the block and the last sequence read before it.
    pub fn restore_block(
        &mut self,
        account: &str,
        stream: &str,
        block: u64,
        bytes: Vec<u8>,
    ) -> (usize, Option<String>) {
        let len = bytes.len();
        let js = self
            .account_index
            .get(account)
            .and_then(|&acc| self.accounts[acc].jetstream.as_mut());
        let Some(scan) = js.and_then(|js| js.restore_block(stream, block, bytes)) else {
            return (len, None);
        };
        let Scan { valid_len, problem } = scan;
        let line = problem.map(|problem| {
            let last = self.accounts[self.account_index[account]]
                .jetstream
                .as_ref()
                .and_then(|js| js.streams().find(|s| s.config().name == stream))
                .map_or(0, |s| s.store().last_seq());
            format!(
                "Stream '{account} > {stream}': block {block} ends in {problem} after sequence {last}: the {} bytes after it were left out",
                len - valid_len
            )
        });
        (valid_len, line)
    }

    /// Gives a stream being restored the latest summary of one of its
    /// blocks (a record of its summaries file of generation `generation`)
    /// instead of the block, with the block file's length; false when the
    /// summary does not do (torn, or the file grew since) and the block
    /// must be given instead ([`Server::restore_block`]).
    pub fn restore_block_summary(
        &mut self,
        account: &str,
        stream: &str,
        block: u64,
        summary: &[u8],
        file_len: u64,
        generation: u64,
    ) -> bool {
        self.account_index
            .get(account)
            .and_then(|&acc| self.accounts[acc].jetstream.as_mut())
            .is_some_and(|js| {
                js.restore_block_summary(stream, block, summary, file_len, generation)
            })
    }

    /// Gives a stream being restored a block that was dropped but not yet
    /// removed: only where the sequence was counts.
    pub fn restore_dropped_block(&mut self, account: &str, stream: &str, bytes: &[u8]) {
        let js = self
            .account_index
            .get(account)
            .and_then(|&acc| self.accounts[acc].jetstream.as_mut());
        if let Some(js) = js {
            js.restore_dropped_block(stream, bytes);
        }
    }

    /// Ends a stream's restore; returns the line to log (nats-server's).
    pub fn finish_restore(&mut self, account: &str, stream: &str) -> Option<String> {
        let acc = self.account_index.get(account).copied()?;
        let js = self.accounts[acc].jetstream.as_mut()?;
        let stream = js.finish_restore(stream)?;
        let state = stream.store().state();
        let line = format!(
            "Restored {} messages for stream '{account} > {}'",
            thousands(state.messages),
            stream.config().name
        );
        match stream.config().storage {
            Storage::Memory => self.js_used.0 += state.bytes,
            Storage::File => self.js_used.1 += state.bytes,
        }
        // What the restore changed (blocks dropped, a new block) is
        // written first thing.
        self.writes_due(acc);
        Some(line)
    }

    /// Lets every account's file streams read their blocks back through
    /// `reader` (the host's files), so that they keep only a few blocks in
    /// memory. Set before streams are restored.
    pub fn set_block_reader(&mut self, reader: std::sync::Arc<dyn BlockReader>) {
        for account in &mut self.accounts {
            if let Some(js) = account.jetstream.as_mut() {
                js.set_block_reader(reader.clone(), &account.name);
            }
        }
        self.block_reader = Some(reader);
    }

    /// Schedules the expiry timer for the oldest message any stream must
    /// drop for its `max_age`, unless it is set for that time or sooner.
    fn schedule_expiry(&mut self, now: Time) {
        let origin = self.wall_origin.unwrap_or(0);
        let streams = self
            .accounts
            .iter()
            .filter_map(|a| a.jetstream.as_ref())
            .flat_map(|js| js.streams())
            .filter_map(|s| s.store().next_expiry());
        // Consumers' ack waits and pull requests' expiry share the timer.
        let consumers = self
            .accounts
            .iter()
            .filter_map(|a| a.jetstream.as_ref())
            .filter_map(|js| js.next_consumer_deadline());
        let next = streams.chain(consumers).min();
        let Some(unix) = next else {
            return;
        };
        // Never sooner than a millisecond from now: nothing here needs a
        // finer grain, and a deadline already past is not a busy loop.
        let due = Time::from_nanos(unix.saturating_sub(origin)).max(now + Duration::from_millis(1));
        self.schedule_jetstream_timer(due);
    }

    /// Gives JetStream a turn right after the current input.
    pub(super) fn jetstream_turn_soon(&mut self) {
        self.schedule_jetstream_timer(self.input_time + Duration::from_nanos(1));
    }

    /// Sets the JetStream timer for `due`, unless it is set for then or sooner.
    fn schedule_jetstream_timer(&mut self, due: Time) {
        if self.expiry_due.is_none_or(|d| due < d) {
            self.expiry_due = Some(due);
            self.timers
                .push(Reverse((due, SERVER_TIMER, Timer::StreamExpiry as u8)));
        }
    }

    /// The expiry timer: every stream drops what is older than its
    /// `max_age`, and the timer is set for the next such message.
    pub(super) fn expiry_timer(&mut self, due: Time, now: Time) {
        if self.expiry_due != Some(due) {
            return;
        }
        self.expiry_due = None;
        let unix = self.unix_time(now);
        for acc in 0..self.accounts.len() {
            let before = self.account_usage(acc);
            if let Some(js) = self.accounts[acc].jetstream.as_mut() {
                js.expire(unix);
                self.update_usage(acc, before);
                // Expired messages of file streams are removed on disk too.
                self.serve_consumers(acc, unix, now);
            }
        }
    }

    /// A message of the server's own with headers (`hdr` a whole header block).
    fn publish_internal_with_headers(
        &mut self,
        acc: usize,
        subject: &[u8],
        hdr: &[u8],
        data: &[u8],
        now: Time,
    ) {
        let mut message = Vec::with_capacity(hdr.len() + data.len());
        message.extend_from_slice(hdr);
        message.extend_from_slice(data);
        let (mut hdr_size, mut size) = ([0u8; 20], [0u8; 20]);
        let publish = Publish {
            subject,
            reply: None,
            header_size_token: Some(decimal(hdr.len() as u64, &mut hdr_size)),
            size_token: decimal(message.len() as u64, &mut size),
            header_len: hdr.len(),
            payload: &message,
        };
        let matches = self.accounts[acc].sublist.matches(subject);
        self.deliver_all(NO_PUBLISHER, &matches, &publish, now);
    }

    /// A message of the server's own on `subject` in account `acc`.
    fn publish_internal(&mut self, acc: usize, subject: &[u8], payload: &[u8], now: Time) {
        let mut size = [0u8; 20];
        let publish = Publish {
            subject,
            reply: None,
            header_size_token: None,
            size_token: decimal(payload.len() as u64, &mut size),
            header_len: 0,
            payload,
        };
        let matches = self.accounts[acc].sublist.matches(subject);
        self.deliver_all(NO_PUBLISHER, &matches, &publish, now);
    }
}

/// Whether `subject` has subscribers (of queue `group`, if given).
fn has_interest(sublist: &mut Sublist, subject: &str, group: Option<&str>) -> bool {
    let matches = sublist.matches(subject.as_bytes());
    match group {
        None => !matches.plain.is_empty() || !matches.queues.is_empty(),
        Some(group) => matches.queues.iter().any(|q| &*q.name == group.as_bytes()),
    }
}

/// `1234567` as `1,234,567`, as nats-server logs counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
