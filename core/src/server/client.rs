//! A client connection: its state, lifecycle and protocol ops (CONNECT, authentication,
//! permissions, accounts, PING, SUB, UNSUB), closing, sending, logging and tracing.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use crate::bytes_map::BytesMap;

use crate::auth::{encode_nonce, Verdict};
use crate::errors::{subscription_violation, ClientError, CloseReason};
use crate::memo::PublishMemo;
use crate::outbound::Outbound;
use crate::perms::{Permissions, PublishCache, ReplyTracker, SubscribeDecision, RESERVED_QUEUE};
use crate::proto::encode::Info;
use crate::proto::{ConnectOptions, Op, ParseError, Parser};
use crate::subject::is_valid_subject;
use crate::sublist::SubKey;
use crate::time::Time;

use super::jobs::JobId;
use super::timers::{Timer, FIRST_PING_INTERVAL};
use super::turns::{OP_COST, SUB_COST};
use super::{ClientId, Event, Level, Peer, Server, Slot, Subscription, PROTOCOL_VERSION};

/// Permission violations logged per client and second, at most.
const VIOLATION_LOGS_PER_SECOND: u32 = 10;

pub(super) struct Client {
    pub(super) id: ClientId,
    /// nats-server's `cid`: a connection number that is never reused.
    pub(super) cid: u64,
    pub(super) peer: Peer,
    /// When it connected.
    pub(super) start: Time,
    parser: Parser,
    pub(super) opts: ConnectOptions,
    /// A CONNECT was accepted.
    pub(super) connected: bool,
    /// The core closed it and waits for the runtime's `handle_closed`.
    pub(super) closing: bool,
    /// Client asked for headers (and the server supports them).
    pub(super) headers: bool,
    pub(super) subs: BytesMap<SubKey>,
    pub(super) out: Outbound,
    /// The TLS session of a client of a server with `tls` (the plaintext
    /// of `out` is sealed into it when the runtime asks what to write).
    pub(super) tls: Option<Box<crate::tls::TlsSession>>,
    /// When its TLS handshake must have finished.
    pub(super) tls_due: Option<Time>,
    /// With `verify_and_map`: the names its certificate carries.
    pub(super) cert_identity: Option<Box<crate::tls_map::CertIdentity>>,
    pub(super) flush_queued: bool,
    pub(super) last_activity: Time,
    pub(super) ping_due: Time,
    pub(super) pings_out: u32,
    pub(super) rtt_measured: bool,
    /// When the last server PING went out.
    pub(super) ping_sent: Time,
    /// The round trip of the last answered server PING.
    pub(super) rtt: Duration,
    sent_connect_info: bool,
    /// Since when the socket has taken no bytes while some were queued.
    pub(super) write_blocked_since: Option<Time>,
    /// When the pending `write_deadline` timer fires, if one is pending.
    pub(super) write_deadline_due: Option<Time>,
    /// The job its CONNECT waits for (a bcrypt check); reading is paused.
    pub(super) waiting_job: Option<JobId>,
    /// The bcrypt hash its secret matched at login: a reload that keeps the
    /// hash keeps the client without another bcrypt run.
    pub(super) proven_hash: Option<Box<str>>,
    /// Bytes read but not processed yet: they came after a CONNECT waiting
    /// for its job, or after the client used its turn (`continue_due`).
    pub(super) held_input: Vec<u8>,
    /// The client used its turn's share of work with input left: a
    /// `Continue` timer goes on with it; reading is paused meanwhile.
    pub(super) continue_due: bool,
    /// Reading is paused until this time, or until the receiver drains.
    pub(super) paused_until: Option<Time>,
    /// Publishers paused because this client's outbound queue is too long.
    pub(super) stalled_publishers: Vec<ClientId>,
    /// The nonce sent in INFO (nkey users sign it).
    pub(super) nonce: Option<String>,
    /// Authenticated (always true when no authentication is configured).
    pub(super) authenticated: bool,
    /// Until when the client may take to authenticate.
    pub(super) auth_due: Option<Time>,
    /// The authenticated user's name, for logs.
    pub(super) user: Option<String>,
    /// The user's permissions; `None` is unrestricted.
    pub(super) perms: Option<Arc<Permissions>>,
    /// Recent publish decisions (only used with publish restrictions).
    pub(super) publish_cache: PublishCache,
    /// The last subject published and what it resolved to.
    pub(super) last_publish: PublishMemo,
    /// Replies this client may send under `allow_responses`.
    pub(super) replies: Option<ReplyTracker>,
    /// When the reply tracker is next pruned (one timer per client at most).
    pub(super) prune_due: Option<Time>,
    /// Start of the current second of permission-violation logging.
    violations_since: Time,
    /// Violations logged in that second.
    violations_logged: u32,
    /// Violations not logged since the last one that was.
    violations_suppressed: u64,
    /// The account the client authenticated into (`$G` until then).
    pub(super) account: usize,
    /// Counted in its account's connections.
    pub(super) counted: bool,
    /// Subscriptions allowed (0 = unlimited): the server's and the account's limit.
    max_subs: u32,
    /// Largest payload: the server's and the account's limit.
    max_payload: u32,
    /// Headers or limits changed: the parser must be told.
    parser_stale: bool,
    pub(super) in_msgs: u64,
    pub(super) in_bytes: u64,
    pub(super) out_msgs: u64,
    pub(super) out_bytes: u64,
}

impl Client {
    /// Bytes queued for its socket: protocol bytes not yet sealed, and a
    /// TLS client's sealed bytes not yet written.
    pub(super) fn pending_len(&self) -> usize {
        self.out.len() + self.tls.as_ref().map_or(0, |t| t.wire().len())
    }
}

impl Server {
    // ----- inputs -------------------------------------------------------------

    /// A new connection. Its INFO is queued at once; if the server is full it is
    /// followed by `-ERR 'maximum connections exceeded'` and a `Close` event.
    pub fn accept(&mut self, peer: Peer, now: Time) -> ClientId {
        self.input_time = now;
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    client: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let id = ClientId::new(index, slot.generation);
        let cid = self.next_cid;
        self.next_cid += 1;
        self.stats.total_connections += 1;
        let ping_due = now + self.opts.ping_interval;
        let nonce = self.users.needs_nonce().then(|| {
            let mut random = [0u8; 11];
            for chunk in random.chunks_mut(8) {
                let bytes = self.rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            encode_nonce(random)
        });
        let auth_due = self.users.enabled().then(|| now + self.users.timeout());
        let client = Client {
            id,
            cid,
            peer,
            start: now,
            parser: Parser::new(self.opts.max_control_line, self.opts.max_payload),
            opts: ConnectOptions::default(),
            connected: false,
            closing: false,
            headers: false,
            subs: BytesMap::new(),
            out: Outbound::default(),
            tls: None,
            tls_due: None,
            cert_identity: None,
            flush_queued: false,
            last_activity: now,
            ping_due,
            pings_out: 0,
            rtt_measured: false,
            ping_sent: now,
            rtt: Duration::ZERO,
            sent_connect_info: false,
            write_blocked_since: None,
            waiting_job: None,
            proven_hash: None,
            held_input: Vec::new(),
            continue_due: false,
            write_deadline_due: None,
            paused_until: None,
            stalled_publishers: Vec::new(),
            nonce,
            authenticated: auth_due.is_none(),
            auth_due,
            user: None,
            perms: None,
            publish_cache: PublishCache::new(),
            last_publish: PublishMemo::default(),
            replies: None,
            prune_due: None,
            violations_since: now,
            violations_logged: 0,
            violations_suppressed: 0,
            account: 0,
            counted: false,
            max_subs: match self.opts.max_subscriptions {
                0 => u32::MAX,
                n => n,
            },
            max_payload: self.opts.max_payload,
            parser_stale: false,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        };
        self.slots[index as usize].client = Some(client);
        self.open_clients += 1;
        let info = self.info_line(index as usize, InfoKind::Initial);
        self.send(index as usize, &info);
        if self.lame_duck.is_some() {
            // Accepted before the runtime closed its listener.
            self.shut_client(index as usize, CloseReason::ServerShutdown, true);
        } else if self.open_clients > self.opts.max_connections as usize {
            self.log_client(index as usize, Level::Error, "maximum connections exceeded");
            self.close_with_error(index as usize, ClientError::MaxConnectionsExceeded);
        } else {
            self.log_client(index as usize, Level::Debug, "Client connection created");
            self.timers
                .push(Reverse((ping_due, id.0, Timer::Ping as u8)));
            if let Some(due) = auth_due {
                self.timers
                    .push(Reverse((due, id.0, Timer::AuthTimeout as u8)));
            }
            self.start_tls(index as usize, now);
        }
        id
    }

    /// Bytes read from a client's socket.
    pub fn handle_read(&mut self, id: ClientId, data: &[u8], now: Time) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        self.input_time = now;
        self.work = 0;
        if self.client_ref(index).tls.is_some() {
            return self.read_tls(index, data, now);
        }
        self.read_plain(index, data, now);
    }

    /// Protocol bytes from client `index` (decrypted first for a TLS client).
    pub(super) fn read_plain(&mut self, index: usize, data: &[u8], now: Time) {
        let client = self.client_mut(index);
        client.last_activity = now;
        if client.waiting_job.is_some() || client.continue_due {
            // Its CONNECT is being checked off the loop, or it has input
            // waiting for its next turn: keep what follows.
            client.held_input.extend_from_slice(data);
            return;
        }
        // With authentication required, anything but a CONNECT as the very
        // first op is an Authorization Violation, decided on its first byte
        // as nats-server does (before the op is even parsed).
        if !client.authenticated
            && !client.connected
            && client.parser.buffered() == 0
            && self.users.auth_required()
            && data.first().is_some_and(|b| !matches!(b, b'C' | b'c'))
        {
            self.log_client(
                index,
                Level::Error,
                "authentication error - first op is not CONNECT",
            );
            self.close_with_error(index, ClientError::AuthorizationViolation);
            return;
        }
        self.feed(index, data, now);
    }

    /// Parses `data` and processes its ops, until the data is used up, the
    /// client is closed, or an op leaves it waiting for a job (then the rest
    /// of `data` is held until the job is done).
    pub(super) fn feed(&mut self, index: usize, data: &[u8], now: Time) {
        let client = self.client_mut(index);
        let mut parser = std::mem::replace(&mut client.parser, Parser::new(0, 0));
        if client.parser_stale {
            // Limits changed since the last read (a reload).
            client.parser_stale = false;
            parser.set_headers(client.headers);
            parser.set_max_payload(client.max_payload);
        }
        let mut pos = 0;
        while pos < data.len() || parser.buffered() > 0 {
            match parser.next(data, &mut pos) {
                Ok(Some(op)) => {
                    self.process_op(index, op, now);
                    let client = self.client_mut(index);
                    if client.closing {
                        break;
                    }
                    if client.waiting_job.is_some() {
                        client.held_input.extend_from_slice(&data[pos..]);
                        break;
                    }
                    if client.parser_stale {
                        client.parser_stale = false;
                        parser.set_headers(client.headers);
                        parser.set_max_payload(client.max_payload);
                    }
                    if self.turn_used() && (pos < data.len() || parser.buffered() > 0) {
                        self.hold_for_next_turn(index, &data[pos..]);
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    self.parse_error(index, error);
                    break;
                }
            }
        }
        if let Some(client) = self.slots[index].client.as_mut() {
            client.parser = parser;
        }
    }

    /// The client's socket is gone at `now`: closed by the peer (`reason`
    /// [`CloseReason::ClientClosed`]), by a failed read or write
    /// ([`CloseReason::ReadError`], [`CloseReason::WriteError`]), or by the
    /// runtime after a `Close` event (the engine closed it already: `reason`
    /// is then ignored). Frees everything the client held; the closed
    /// connection is kept for monitoring with the reason and the time.
    pub fn handle_closed(&mut self, id: ClientId, reason: CloseReason, now: Time) {
        let Some(index) = self.live_index(id) else {
            return;
        };
        if !self.client_ref(index).closing {
            self.input_time = now;
            self.shut_client(index, reason, false);
        }
        let mut client = self.slots[index].client.take().expect("live");
        client.out.clear(&mut self.pool);
        self.free_slots.push(index as u32);
    }

    // ----- protocol -----------------------------------------------------------

    fn process_op(&mut self, index: usize, op: Op<'_>, now: Time) {
        self.work += OP_COST;
        if self.opts.trace {
            self.trace_op(index, &op);
        }
        // With authentication on, the first op must be a CONNECT, unless
        // `no_auth_user` lets a client without credentials in.
        if !self.client_ref(index).authenticated && !matches!(op, Op::Connect(_)) {
            // No credentials to check (the first-byte rule refused anything
            // else): the anonymous identity or nothing, checked at once.
            let client = self.client_ref(index);
            let identity = self
                .users
                .authenticate(
                    &client.opts,
                    client.nonce.as_deref(),
                    client.cert_identity.as_deref(),
                )
                .map(|user| user.index);
            if self.authenticate(index, identity).is_none() {
                return;
            }
        }
        match op {
            Op::Connect(json) => self.process_connect(index, json, now),
            Op::Info(json) => {
                // nats-server reads it into its INFO structure: only an object will do.
                let object =
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(json);
                if object.is_err() {
                    self.close_silently(index, "invalid INFO from client");
                }
            }
            Op::Pub(publish) => self.process_pub(index, &publish, now),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.process_sub(index, subject, queue, sid, now),
            Op::Unsub { sid, max } => self.process_unsub(index, sid, max),
            Op::Ping => self.process_ping(index),
            Op::Pong => {
                let client = self.client_mut(index);
                if client.pings_out > 0 {
                    client.rtt = now.saturating_since(client.ping_sent);
                }
                client.pings_out = 0;
                client.rtt_measured = true;
            }
            Op::Ok => {}
            Op::Err(text) => {
                let text = String::from_utf8_lossy(text).into_owned();
                self.log_client(index, Level::Error, &format!("Client Error {text}"));
                // nats-server's reason for a client's -ERR.
                self.shut_client(index, CloseReason::ParseError, true);
            }
        }
    }

    fn process_connect(&mut self, index: usize, json: &[u8], now: Time) {
        let client = self.client_mut(index);
        if !client.connected && !client.rtt_measured {
            // A first estimate, as nats-server makes one: from the INFO sent
            // on accept to this CONNECT (at least 1ns); the first PONG refines it.
            client.rtt = now
                .saturating_since(client.start)
                .max(Duration::from_nanos(1));
        }
        if let Err(e) = client.opts.apply(json) {
            self.close_silently(index, &format!("invalid CONNECT: {e}"));
            return;
        }
        let opts = &self.client_ref(index).opts;
        if opts.account.as_deref().is_some_and(|a| !a.is_empty()) || opts.new_account == Some(true)
        {
            // The legacy account fields are refused when they ask for
            // something, as nats-server does.
            self.close_with_error(index, ClientError::AuthorizationViolation);
            return;
        }
        let client = self.client_ref(index);
        match self.users.check(
            &client.opts,
            client.nonce.as_deref(),
            client.cert_identity.as_deref(),
        ) {
            Verdict::Done(identity) => self.finish_connect(index, identity, now),
            Verdict::Bcrypt(check) => self.start_job(index, check),
        }
    }

    /// The rest of a CONNECT once its credentials are checked: `identity` is
    /// who they stand for (`None`: refused).
    pub(super) fn finish_connect(&mut self, index: usize, identity: Option<usize>, now: Time) {
        let Some(perms_changed) = self.authenticate(index, identity) else {
            return;
        };
        let opts = &self.client_ref(index).opts;
        // Headers need both sides: the client's CONNECT and the server's support.
        let headers = opts.headers && !self.opts.no_header_support;
        let error = if !(0..=1).contains(&opts.protocol) {
            Some(ClientError::InvalidClientProtocol)
        } else if opts.no_responders && !headers {
            Some(ClientError::NoRespondersRequiresHeaders)
        } else {
            None
        };
        if let Some(error) = error {
            self.close_with_error(index, error);
            return;
        }
        if perms_changed {
            self.recheck_subscriptions(index);
        }
        let first_connect = !self.client_ref(index).connected;
        let jitter = self.first_ping_jitter();
        let client = self.client_mut(index);
        client.headers = headers;
        client.parser_stale = true;
        client.connected = true;
        let verbose = client.opts.verbose;
        if first_connect {
            // An early PING measures the round trip, as nats-server does.
            let first = self.opts.ping_interval.min(FIRST_PING_INTERVAL);
            self.schedule_ping(index, now + first + jitter);
        }
        if verbose {
            self.send(index, b"+OK\r\n");
        }
    }

    /// Logs the client in as `identity` (what its CONNECT's credentials stand
    /// for, `None` if they were refused) and installs its permissions; returns whether they
    /// changed while the client had subscriptions (the caller re-checks them
    /// once the CONNECT is accepted). On failure sends `Authorization
    /// Violation`, closes, and returns `None`.
    fn authenticate(&mut self, index: usize, identity: Option<usize>) -> Option<bool> {
        let Some(user) = identity.and_then(|i| self.users.identity(i)) else {
            self.auth_violation(index);
            return None;
        };
        let user_index = user.index;
        let Some(&account) = self.account_index.get(user.account) else {
            let text = format!(
                "user {:?} names unknown account {:?}",
                user.name, user.account
            );
            self.log_client(index, Level::Error, &text);
            self.close_with_error(index, ClientError::AuthorizationViolation);
            return None;
        };
        if !self.join_account(index, account) {
            return None;
        }
        Some(self.install_permissions(index, user_index))
    }

    /// Gives the client the permissions of identity `user_index` (compiled
    /// once per identity and shared); its publish cache and `allow_responses`
    /// tracking start afresh. Returns whether the permissions changed while
    /// it had subscriptions (which then need a re-check).
    pub(super) fn install_permissions(&mut self, index: usize, user_index: usize) -> bool {
        let user = self
            .users
            .identity(user_index)
            .expect("an authenticated identity exists");
        let compiled = &mut self.compiled_perms;
        let perms = user.permissions.map(|cfg| {
            Arc::clone(
                compiled
                    .entry(user.index)
                    .or_insert_with(|| Arc::new(Permissions::compile(cfg))),
            )
        });
        let name = (!user.name.is_empty()).then(|| user.name.to_string());
        let client = self.slots[index].client.as_mut().expect("live client");
        client.authenticated = true;
        client.auth_due = None;
        client.user = name;
        client.replies = perms
            .as_ref()
            .and_then(|p| p.responses())
            .map(ReplyTracker::new);
        client.prune_due = None;
        client.publish_cache.clear();
        client.last_publish.forget_permission();
        let changed = match (&client.perms, &perms) {
            (Some(old), Some(new)) => !Arc::ptr_eq(old, new),
            (None, None) => false,
            _ => true,
        };
        client.perms = perms;
        changed && !client.subs.is_empty()
    }

    /// Moves the client into `account` (it starts in `$G`), within the
    /// account's connection limit, and applies the account's per-connection
    /// limits. Subscriptions made in another account are dropped: they belong
    /// to another tenant's subject space. False if the client was closed.
    pub(super) fn join_account(&mut self, index: usize, account: usize) -> bool {
        let client = self.client_ref(index);
        let (old, counted) = (client.account, client.counted);
        if counted && old == account {
            return true;
        }
        let acc = &self.accounts[account];
        if acc
            .limits
            .max_connections
            .is_some_and(|max| acc.stats.connections >= max)
        {
            // As nats-server, the client leaves its old account and names the
            // one that refused it (its closed record shows that account).
            if counted {
                self.accounts[old].stats.connections -= 1;
            }
            let client = self.client_mut(index);
            client.account = account;
            client.counted = false;
            self.log_client(
                index,
                Level::Error,
                "maximum account active connections exceeded",
            );
            self.close_with_error(index, ClientError::MaxAccountConnectionsExceeded);
            return false;
        }
        if counted {
            self.accounts[old].stats.connections -= 1;
            let keys: Vec<SubKey> = self.client_ref(index).subs.values().copied().collect();
            for key in keys {
                self.remove_sub(key);
            }
        }
        let limits = self.accounts[account].limits;
        self.accounts[account].stats.connections += 1;
        let (server_subs, server_payload) = (self.opts.max_subscriptions, self.opts.max_payload);
        let client = self.client_mut(index);
        client.account = account;
        client.counted = true;
        // The server's 0 is unlimited; an account's 0 allows none, as in nats-server.
        let server_subs = if server_subs == 0 {
            u32::MAX
        } else {
            server_subs
        };
        client.max_subs = limits
            .max_subscriptions
            .map_or(server_subs, |n| n.min(server_subs));
        client.max_payload = limits
            .max_payload
            .map_or(server_payload, |n| n.min(server_payload));
        client.parser_stale = true;
        true
    }

    fn process_ping(&mut self, index: usize) {
        self.send(index, b"PONG\r\n");
        let client = self.client_ref(index);
        if client.connected && client.opts.protocol >= 1 && !client.sent_connect_info {
            let info = self.info_line(index, InfoKind::ConnectInfo);
            self.client_mut(index).sent_connect_info = true;
            self.send(index, &info);
        }
    }

    fn process_sub(
        &mut self,
        index: usize,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
        now: Time,
    ) {
        if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue(q)) {
            self.send_error(index, ClientError::InvalidSubject);
            return;
        }
        let decision = self
            .client_ref(index)
            .perms
            .as_ref()
            .map(|p| p.can_subscribe(subject, queue));
        if queue == Some(RESERVED_QUEUE) || decision == Some(SubscribeDecision::Denied) {
            let text = subscription_violation(subject, queue);
            self.send_error_text(index, &text);
            let violation = Violation::subscription("Subscription Violation", subject, queue, sid);
            self.log_violation(index, &violation, now);
            return;
        }
        self.work += SUB_COST;
        let filtered = decision == Some(SubscribeDecision::AllowedFiltered);
        let max_tokens = usize::from(self.opts.max_sub_tokens);
        if max_tokens > 0 && memchr::memchr_iter(b'.', subject).count() + 1 > max_tokens {
            let mut text = subscription_violation(subject, None);
            text.push_str(", too many tokens");
            self.send_error_text(index, &text);
            let what = "Subscription Violation Too Many Tokens";
            let violation = Violation::subscription(what, subject, None, sid);
            self.log_violation(index, &violation, now);
            return;
        }
        let client = self.client_ref(index);
        let max_subs = client.max_subs as usize;
        // The limit first, as nats-server: at the limit even a duplicate sid
        // gets the error.
        if client.subs.len() >= max_subs {
            self.log_client(index, Level::Error, "maximum subscriptions exceeded");
            self.send_error(index, ClientError::MaxSubscriptionsExceeded);
            return;
        }
        if client.subs.contains_key(sid) {
            // nats-server ignores a duplicate sid (and still acknowledges it).
            if client.opts.verbose {
                self.send(index, b"+OK\r\n");
            }
            return;
        }
        let (id, account) = (client.id, client.account);
        let key = self.alloc_sub(Subscription {
            client: id,
            account: account as u32,
            sid: sid.into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            max: 0,
            delivered: 0,
            filtered,
        });
        self.accounts[account].sublist.insert(subject, queue, key);
        let client = self.client_mut(index);
        client.subs.insert(sid.into(), key);
        if client.opts.verbose {
            self.send(index, b"+OK\r\n");
        }
        // A push consumer starts delivering once its deliver subject has interest.
        if self.accounts[account]
            .jetstream
            .as_ref()
            .is_some_and(|js| js.has_push_consumers())
        {
            let unix = self.wall_origin.unwrap_or(0).saturating_add(now.as_nanos());
            self.serve_consumers(account, unix, now);
        }
    }

    fn process_unsub(&mut self, index: usize, sid: &[u8], max: Option<u64>) {
        self.work += SUB_COST;
        let client = self.client_ref(index);
        let verbose = client.opts.verbose;
        if let Some(&key) = client.subs.get(sid) {
            let sub = self.subs[key.0 as usize]
                .as_mut()
                .expect("client subs are live");
            match max {
                Some(max) if max > sub.delivered => sub.max = max,
                _ => self.remove_sub(key),
            }
        }
        if verbose {
            self.send(index, b"+OK\r\n");
        }
    }

    // ----- closing ------------------------------------------------------------

    fn parse_error(&mut self, index: usize, error: ParseError) {
        match error {
            ParseError::Err(e) => {
                self.log_client(
                    index,
                    Level::Error,
                    &format!("Client parser ERROR: {}", e.text()),
                );
                self.close_with_error(index, e);
            }
            ParseError::Silent => self.close_silently(index, "malformed protocol arguments"),
        }
    }

    fn close_silently(&mut self, index: usize, why: &str) {
        self.log_client(index, Level::Error, &format!("Protocol Violation: {why}"));
        self.shut_client(index, CloseReason::ProtocolViolation, true);
    }

    pub(super) fn close_with_error(&mut self, index: usize, error: ClientError) {
        self.send_error(index, error);
        self.shut_client(index, error.close_reason(), true);
    }

    /// Removes the client's subscriptions, stops reading it and keeps its
    /// record for monitoring (with its subscriptions, as nats-server). With
    /// `tell_runtime`, asks the runtime to close the socket once the queued bytes
    /// (e.g. an `-ERR`) are written; without, the runtime closed it already.
    pub(super) fn shut_client(&mut self, index: usize, reason: CloseReason, tell_runtime: bool) {
        let client = self.client_mut(index);
        if client.closing {
            return;
        }
        client.closing = true;
        let id = client.id;
        let subs = std::mem::take(&mut client.subs);
        let stalled = std::mem::take(&mut client.stalled_publishers);
        self.tear_down(index, reason, subs);
        for publisher in stalled {
            self.resume(publisher);
        }
        self.open_clients -= 1;
        let client = self.client_ref(index);
        if client.counted {
            let account = client.account;
            self.accounts[account].stats.connections -= 1;
        }
        let suppressed = std::mem::take(&mut self.client_mut(index).violations_suppressed);
        if suppressed > 0 {
            // The count the next violation line would have carried.
            let line =
                format!("{suppressed} more violations not logged before the connection closed");
            self.log_client(index, Level::Error, &line);
        }
        self.log_client(
            index,
            Level::Debug,
            &format!("Client connection closed: {reason}"),
        );
        if tell_runtime {
            self.events.push_back(Event::Close(id, reason));
        }
    }

    // ----- sending ------------------------------------------------------------

    pub(super) fn send(&mut self, index: usize, bytes: &[u8]) {
        self.send_parts(index, &[bytes]);
    }

    pub(super) fn send_parts(&mut self, index: usize, parts: &[&[u8]]) {
        if self.opts.trace {
            self.trace_out(index, parts);
        }
        let client = self.slots[index].client.as_mut().expect("live client");
        client.out.push_parts(&mut self.pool, parts);
        if !client.flush_queued {
            client.flush_queued = true;
            self.events.push_back(Event::Flush(client.id));
        }
        // A client that sends but never reads must not queue replies without
        // bound either (PONGs, errors, +OK).
        if !client.closing && client.pending_len() as u64 > self.opts.max_pending {
            self.slow_consumer(index);
        }
    }

    pub(super) fn send_error(&mut self, index: usize, error: ClientError) {
        self.send_error_text(index, error.text());
    }

    pub(super) fn send_error_text(&mut self, index: usize, text: &str) {
        self.send_parts(index, &[b"-ERR '", text.as_bytes(), b"'\r\n"]);
    }

    fn info_line(&self, index: usize, kind: InfoKind) -> Vec<u8> {
        let client = self.client_ref(index);
        let connect_info = kind == InfoKind::ConnectInfo;
        Info {
            server_id: &self.server_id,
            server_name: &self.server_name,
            version: PROTOCOL_VERSION,
            proto: 1,
            go: concat!("tenet ", env!("CARGO_PKG_VERSION")),
            host: &self.opts.host,
            port: self.port,
            headers: !self.opts.no_header_support,
            max_payload: client.max_payload,
            jetstream: self.opts.jetstream.is_some(),
            auth_required: self.users.auth_required(),
            tls_required: self.tls.is_some() && !self.opts.allow_non_tls,
            tls_verify: matches!(&self.tls, Some(Ok(t)) if t.verify()),
            tls_available: self.tls.is_some() && self.opts.allow_non_tls,
            client_id: Some(client.cid),
            client_ip: Some(&client.peer.ip),
            nonce: (kind == InfoKind::Initial)
                .then_some(client.nonce.as_deref())
                .flatten(),
            ldm: kind == InfoKind::LameDuck,
            connect_info,
            remote_account: connect_info.then_some(self.accounts[client.account].name.as_str()),
        }
        .to_line()
    }

    /// The INFO that tells a client the server entered lame duck mode, sent
    /// (as nats-server does) only to clients that take asynchronous INFOs and
    /// have had their first PONG.
    pub(super) fn send_lame_duck_info(&mut self, index: usize) {
        let client = self.client_ref(index);
        if client.connected && client.opts.protocol >= 1 && client.sent_connect_info {
            let info = self.info_line(index, InfoKind::LameDuck);
            self.send(index, &info);
        }
    }

    // ----- logging ------------------------------------------------------------

    pub(super) fn log_client(&mut self, index: usize, level: Level, text: &str) {
        let enabled = match level {
            Level::Trace => self.opts.trace,
            Level::Debug => self.opts.debug,
            _ => true,
        };
        if enabled {
            let c = self.client_ref(index);
            let mut line = format!("{}:{} - cid:{}", c.peer.ip, c.peer.port, c.cid);
            if let Some(label) = client_label(&c.opts) {
                // As nats-server, once a CONNECT named the client: ` - "v1.2.3:go:myapp"`.
                line.push_str(" - ");
                crate::proto::encode::go_quote(label.as_bytes(), &mut line);
            }
            line.push_str(" - ");
            line.push_str(text);
            self.events.push_back(Event::Log(level, line));
        }
    }

    /// Logs a refused CONNECT (or one a reload no longer accepts) as
    /// nats-server does, naming what the CONNECT presented: `authentication
    /// error - Nkey "U..."` where nkey users exist, else `- User "name"`
    /// where a users list exists, else nothing more; then sends
    /// `Authorization Violation` and closes.
    pub(super) fn auth_violation(&mut self, index: usize) {
        let opts = &self.client_ref(index).opts;
        let mut line = String::from("authentication error");
        let named = if self.users.has_nkey_users() {
            Some(("Nkey", opts.nkey.as_deref()))
        } else if self.users.has_user_list() {
            Some(("User", opts.user.as_deref()))
        } else {
            None
        };
        if let Some((kind, name)) = named {
            line.push_str(" - ");
            line.push_str(kind);
            line.push(' ');
            crate::proto::encode::go_quote(name.unwrap_or("").as_bytes(), &mut line);
        }
        self.log_client(index, Level::Error, &line);
        self.close_with_error(index, ClientError::AuthorizationViolation);
    }

    /// Logs a denied publish or subscription as nats-server does, with the
    /// account added (`Subscription Violation - User "u", Account "A",
    /// Subject "s", Queue: "q", SID 1`): at most [`VIOLATION_LOGS_PER_SECOND`]
    /// lines per client and second, so a misbehaving client cannot flood the
    /// log; the next line logged (or the client's closing) says how many
    /// were left out.
    pub(super) fn log_violation(&mut self, index: usize, violation: &Violation<'_>, now: Time) {
        let client = self.client_mut(index);
        if now.saturating_since(client.violations_since) >= Duration::from_secs(1) {
            client.violations_since = now;
            client.violations_logged = 0;
        }
        if client.violations_logged >= VIOLATION_LOGS_PER_SECOND {
            client.violations_suppressed += 1;
            return;
        }
        client.violations_logged += 1;
        let suppressed = std::mem::take(&mut client.violations_suppressed);
        let quote = crate::proto::encode::go_quote;
        let mut line = format!(
            "{} - {}, Account ",
            violation.what,
            self.auth_user_label(index)
        );
        let account = &self.accounts[self.client_ref(index).account].name;
        quote(account.as_bytes(), &mut line);
        line.push_str(", ");
        line.push_str(violation.field);
        line.push(' ');
        quote(violation.subject, &mut line);
        if let Some(queue) = violation.queue {
            line.push_str(", Queue: ");
            quote(queue, &mut line);
        }
        if let Some(sid) = violation.sid {
            line.push_str(", SID ");
            line.push_str(&String::from_utf8_lossy(sid));
        }
        if suppressed > 0 {
            line.push_str(&format!(" ({suppressed} more violations not logged)"));
        }
        self.log_client(index, Level::Error, &line);
    }

    /// Who the client logged in as, as nats-server names it in logs:
    /// `Nkey "U..."`, `User "name"` or `User "N/A"` (what the CONNECT said).
    pub(super) fn auth_user_label(&self, index: usize) -> String {
        let opts = &self.client_ref(index).opts;
        let mut label = String::new();
        match (&opts.nkey, &opts.user) {
            (Some(nkey), _) if !nkey.is_empty() => {
                label.push_str("Nkey ");
                crate::proto::encode::go_quote(nkey.as_bytes(), &mut label);
            }
            (_, Some(user)) if !user.is_empty() => {
                label.push_str("User ");
                crate::proto::encode::go_quote(user.as_bytes(), &mut label);
            }
            _ => label.push_str("User \"N/A\""),
        }
        label
    }

    fn trace_out(&mut self, index: usize, parts: &[&[u8]]) {
        let line = outbound_trace(parts);
        self.log_client(index, Level::Trace, &line);
    }

    fn trace_op(&mut self, index: usize, op: &Op<'_>) {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let line = match op {
            Op::Connect(j) => format!("<<- [CONNECT {}]", s(j)),
            Op::Info(j) => format!("<<- [INFO {}]", s(j)),
            Op::Pub(p) => {
                let reply = p.reply.map(|r| format!(" {}", s(r))).unwrap_or_default();
                match p.header_size_token {
                    Some(h) => format!(
                        "<<- [HPUB {}{reply} {} {}]",
                        s(p.subject),
                        s(h),
                        s(p.size_token)
                    ),
                    None => format!("<<- [PUB {}{reply} {}]", s(p.subject), s(p.size_token)),
                }
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                let queue = queue.map(|q| format!(" {}", s(q))).unwrap_or_default();
                format!("<<- [SUB {}{queue} {}]", s(subject), s(sid))
            }
            Op::Unsub { sid, max } => match max {
                Some(m) => format!("<<- [UNSUB {} {m}]", s(sid)),
                None => format!("<<- [UNSUB {}]", s(sid)),
            },
            Op::Ping => "<<- [PING]".to_string(),
            Op::Pong => "<<- [PONG]".to_string(),
            Op::Ok => "<<- [+OK]".to_string(),
            Op::Err(t) => format!("<<- [-ERR {}]", s(t)),
        };
        self.log_client(index, Level::Trace, &line);
        if let Op::Pub(p) = op {
            let mut payload = String::from("<<- MSG_PAYLOAD: [");
            let max = self.opts.max_traced_msg_len;
            if max > 0 && p.payload.len() > max {
                // As nats-server: the first `max` bytes, then `...` inside the quotes.
                crate::proto::encode::go_quote(&p.payload[..max], &mut payload);
                payload.pop();
                payload.push_str("...\"");
            } else {
                crate::proto::encode::go_quote(p.payload, &mut payload);
            }
            payload.push(']');
            self.log_client(index, Level::Trace, &payload);
        }
    }
}

/// The trace of what is sent: its first line, e.g. `->> [PONG]`, `->> [MSG foo 1 2]`.
pub(super) fn outbound_trace(parts: &[&[u8]]) -> String {
    let bytes = parts.concat();
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    format!("->> [{}]", String::from_utf8_lossy(line))
}

/// Which INFO a client is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InfoKind {
    /// On connect, with the nonce.
    Initial,
    /// After the first PONG, with `connect_info` and the account.
    ConnectInfo,
    /// On entering lame duck mode, with `ldm`.
    LameDuck,
}

/// Queue names are single tokens of any non-whitespace bytes.
fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|b| b.is_ascii_whitespace())
}

/// A denied publish or subscription, for [`Server::log_violation`].
pub(super) struct Violation<'a> {
    /// `Publish Violation`, `Subscription Violation`, ...
    what: &'a str,
    /// `Subject` or `Reply`.
    field: &'a str,
    subject: &'a [u8],
    queue: Option<&'a [u8]>,
    sid: Option<&'a [u8]>,
}

impl<'a> Violation<'a> {
    /// A publish refused for its subject (`field` "Subject") or its reply ("Reply").
    pub(super) fn publish(field: &'a str, subject: &'a [u8]) -> Violation<'a> {
        Violation {
            what: "Publish Violation",
            field,
            subject,
            queue: None,
            sid: None,
        }
    }

    /// A refused SUB; `what` names the kind (`Subscription Violation`, ...).
    fn subscription(
        what: &'a str,
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    ) -> Violation<'a> {
        Violation {
            what,
            field: "Subject",
            subject,
            queue,
            sid: Some(sid),
        }
    }
}

/// How nats-server names a client in its log lines once its CONNECT said
/// something about it: `v<version>`, `lang` and `name`, those given, joined
/// by `:` (`v1.2.3:go:myapp`).
fn client_label(opts: &ConnectOptions) -> Option<String> {
    let version = opts
        .version
        .as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| format!("v{v}"));
    let parts: Vec<&str> = [
        version.as_deref(),
        opts.lang.as_deref(),
        opts.name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect();
    (!parts.is_empty()).then(|| parts.join(":"))
}
