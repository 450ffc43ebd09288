//! The engine: clients, subscriptions, routing, timers and back-pressure, driven by the runtime.
//!
//! See the crate documentation for the driving loop. Everything here is
//! single-threaded and deterministic given the inputs, the seed and the times
//! passed in.
//!
//! This file holds the [`Server`] state, the public types and the API the
//! runtime drives; the rest of the engine lives by concept:
//!
//! - `client`: a connection's lifecycle and protocol ops (CONNECT,
//!   authentication, permissions, accounts, PING, SUB, UNSUB), closing,
//!   sending and tracing.
//! - `routing`: publishing and delivery, no-responders and back-pressure.
//! - `services`: stream exports, service imports and their answers, and
//!   `allow_responses` reply tracking.
//! - `reload`: applying a new configuration to the running server.
//! - `timers`: the timers, firing them, and PING scheduling.
//! - `monitor`: the HTTP monitoring endpoints.
//! - `closed`: the records of closed connections that `/connz?state=closed` lists.

use crate::jetstream::api::StoreWrite;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::IoSlice;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::account::{Account, AccountStats, Accounts};
use crate::auth::{Auth, Users};
use crate::errors::CloseReason;
use crate::options::Options;
use crate::outbound::ChunkPool;
use crate::perms::Permissions;
use crate::rng::Rng;
use crate::sublist::SubKey;
use crate::time::Time;

use client::Client;
use closed::ClosedRing;
use routing::STALL_HIGH_WATER;
use timers::Timer;

mod client;
mod closed;
mod jetstream;
mod jobs;
mod lame_duck;
mod monitor;
mod reload;
mod routing;
mod services;
mod teardown;
mod timers;
mod tls;
mod turns;

pub use jobs::{Job, JobDone, JobId};
pub use monitor::{MonitorHost, MonitorResponse};

/// The nats-server version whose client protocol tenet speaks, reported in INFO
/// (clients gate features on it).
pub const PROTOCOL_VERSION: &str = "2.9.10";
/// tenet's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A connection, as named by the runtime. Ids are never reused while the runtime
/// might still hold one: a stale id is ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

impl std::fmt::Debug for ClientId {
    /// `ClientId { slot: 3, generation: 2 }`: the engine's slot and how many
    /// connections have used it (what tells a stale id from a live one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientId")
            .field("slot", &self.index())
            .field("generation", &self.generation())
            .finish()
    }
}

impl ClientId {
    fn new(index: u32, generation: u32) -> ClientId {
        ClientId((u64::from(generation) << 32) | u64::from(index))
    }
    fn index(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }
    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// A number for the runtime's own tables (unique among live connections).
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// The id back from [`ClientId::as_u64`].
    pub fn from_u64(raw: u64) -> ClientId {
        ClientId(raw)
    }
}

/// Log severity, as nats-server prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `[TRC]`, protocol traces (`-V`).
    Trace,
    /// `[DBG]` (`-D`).
    Debug,
    /// `[INF]`.
    Info,
    /// `[WRN]`.
    Warn,
    /// `[ERR]`.
    Error,
    /// `[FTL]`: the process cannot go on (a start-up failure); the engine
    /// never logs it, the host does before it exits.
    Fatal,
}

impl Level {
    /// The tag nats-server prints, e.g. `[INF]`.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Trace => "[TRC]",
            Level::Debug => "[DBG]",
            Level::Info => "[INF]",
            Level::Warn => "[WRN]",
            Level::Error => "[ERR]",
            Level::Fatal => "[FTL]",
        }
    }
}

/// Something the runtime must act on; drain with [`Server::poll_event`] after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The client has outbound bytes: write them ([`Server::outbound`]) and
    /// report how many went out ([`Server::handle_written`], 0 included). It
    /// comes again while bytes remain after a write that made progress; after
    /// a write the socket refused, write again when the socket is writable.
    Flush(ClientId),
    /// Write what is still queued if possible, close the socket, then call
    /// [`Server::handle_closed`].
    Close(ClientId, CloseReason),
    /// Reading from this client was paused ([`Server::can_read`]) and may resume.
    Resume(ClientId),
    /// A line for the log (already filtered by the debug/trace options).
    Log(Level, String),
    /// Lame duck mode began: stop accepting connections (close the listener).
    StopAccepting,
    /// Lame duck mode closed every client: stop serving and exit.
    Exit,
    /// Run this on a worker thread ([`Job::run`]), off the event loop, and
    /// hand back the result with [`Server::handle_job_done`].
    Job(Job),
}

/// Where a client's address came from, for INFO, logs and monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// IP address as text.
    pub ip: String,
    /// Remote port.
    pub port: u16,
}

struct Subscription {
    client: ClientId,
    /// The account whose sublist holds it.
    account: u32,
    sid: Box<[u8]>,
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries (0 = never).
    max: u64,
    delivered: u64,
    /// The subscription overlaps a subscribe deny entry: each delivery is checked.
    filtered: bool,
}

struct Slot {
    generation: u32,
    client: Option<Client>,
}

/// Server-wide counters (for `/varz` later).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received from clients.
    pub in_msgs: u64,
    /// Payload bytes received from clients.
    pub in_bytes: u64,
    /// Messages delivered to clients.
    pub out_msgs: u64,
    /// Payload bytes delivered to clients.
    pub out_bytes: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Clients closed as slow consumers.
    pub slow_consumers: u64,
    /// Clients closed for not answering PINGs.
    pub stale_connections: u64,
}

/// The protocol engine. See the crate documentation for how to drive it.
pub struct Server {
    opts: Options,
    server_id: String,
    server_name: String,
    /// The port clients connected to (INFO `port`), set by the runtime once bound.
    port: u16,
    rng: Rng,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    open_clients: usize,
    next_cid: u64,
    subs: Vec<Option<Subscription>>,
    free_subs: Vec<u32>,
    accounts: Vec<Account>,
    events: VecDeque<Event>,
    timers: BinaryHeap<Reverse<(Time, u64, u8)>>,
    pool: ChunkPool,
    stats: Stats,
    stall_high_water: usize,
    users: Users,
    /// Compiled permissions per user entry, shared by that user's connections.
    compiled_perms: HashMap<usize, Arc<Permissions>>,
    /// Account indices by name.
    account_index: HashMap<String, usize>,
    /// When service responses are next pruned.
    response_prune_due: Option<Time>,
    /// When the JetStream expiry timer fires next (streams with `max_age`).
    expiry_due: Option<Time>,
    /// Writes file streams need, by account name, for the runtime to make
    /// before it writes to any client ([`Server::poll_store_write`]).
    store_writes: VecDeque<(String, StoreWrite)>,
    /// Store writes queued so far, taken by the runtime so far, and of
    /// those, how many the runtime reports synced (`sync_interval: always`).
    store_queued: u64,
    /// The PubAck being written (its room reused from one to the next).
    pub_ack: Vec<u8>,
    /// A JetStream message being sent: its header block and payload.
    js_message: Vec<u8>,
    /// How file streams read their blocks back (set by the host).
    block_reader: Option<std::sync::Arc<dyn crate::jetstream::store::BlockReader>>,
    store_taken: u64,
    store_synced: u64,
    /// JetStream answers waiting for the writes queued before them to be
    /// synced: (writes queued then, account, reply subject, payload).
    held_replies: VecDeque<(u64, usize, Vec<u8>, Vec<u8>)>,
    /// Accounts whose streams and consumers may have changes to write,
    /// taken when the runtime next asks for store writes (once per batch
    /// of input).
    writes_due: Vec<usize>,
    /// What every account's streams hold: memory, storage (JetStream's
    /// server-wide limits are checked against it).
    js_used: (u64, u64),
    /// Subjects rewritten by imports, reused so routing does not allocate.
    route_buf: Vec<u8>,
    /// `(account, start, end)` of each rewritten subject in `route_buf`.
    route_spans: Vec<(usize, usize, usize)>,
    /// Service imports in all accounts: the longest chain a request can follow.
    service_imports: usize,
    /// The system account's name (a reload may not change it).
    system_account: Option<String>,
    /// The monitoring port, set by the runtime once bound (0: none).
    http_port: u16,
    /// The wall-clock time of `Time::ZERO` in Unix nanoseconds, fixed by the
    /// first monitoring request (so reported times do not jitter).
    wall_origin: Option<u64>,
    /// When the configuration was last loaded (start or reload), for monitoring.
    config_loaded: Time,
    /// Monitoring requests answered, by endpoint.
    http_requests: std::collections::BTreeMap<&'static str, u64>,
    /// Lame duck mode, once entered.
    lame_duck: Option<lame_duck::LameDuck>,
    /// The next job's number.
    next_job: u64,
    /// The time of the input being handled: every input that carries a time
    /// sets it first, so a client closed deep inside one (a slow consumer
    /// found while routing, a failed login) records when it was closed.
    input_time: Time,
    /// The last closed client connections, for `/connz?state=closed`.
    closed: ClosedRing,
    /// Closed clients' subscriptions still being taken out of the tries.
    teardowns: teardown::Teardowns,
    /// Work done for the input being processed, in [`turns`]' units.
    work: u64,
    /// TLS for client connections (`tls`): the settings every new session
    /// starts from, or why they could not be made.
    tls: Option<Result<crate::tls::TlsAcceptor, String>>,
    /// Plaintext decrypted from a TLS client's read (a buffer reused).
    tls_plaintext: Vec<u8>,
}

impl Server {
    /// A server with these options and no authentication; `seed` drives every
    /// random choice (server id, nonces, queue member selection, ping jitter).
    pub fn new(opts: Options, seed: u64) -> Server {
        Server::with_users(opts, Users::none(), seed)
    }

    /// A server whose clients authenticate against `users`, all in `$G`.
    pub fn with_users(opts: Options, users: Users, seed: u64) -> Server {
        let accounts = Accounts::global();
        Server::with_auth(opts, Auth { users, accounts }, seed)
    }

    /// A server with users and accounts: each user logs in to the account
    /// [`Users`] names for it (a name missing from the accounts refuses the
    /// user).
    pub fn with_auth(opts: Options, auth: Auth, seed: u64) -> Server {
        let Auth { users, accounts } = auth;
        let system_account = accounts.system_account().map(str::to_string);
        let mut rng = Rng::new(seed);
        let server_id = random_server_id(&mut rng);
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let stall_high_water = (opts.max_pending / 4 * 3).min(STALL_HIGH_WATER) as usize;
        // Checked when the configuration was loaded; an error here still
        // refuses every connection rather than serve them in plaintext.
        let tls = opts.tls.as_ref().map(crate::tls::TlsAcceptor::new);
        let accounts = accounts.instantiate(
            !opts.disable_sublist_cache,
            opts.jetstream.is_some(),
            || random_token(&mut rng),
        );
        let service_imports = accounts.iter().map(|a| a.services_in.len()).sum();
        let account_index = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        Server {
            port: opts.port.unwrap_or(0),
            opts,
            server_id,
            server_name,
            rng,
            slots: Vec::new(),
            free_slots: Vec::new(),
            open_clients: 0,
            next_cid: 1,
            subs: Vec::new(),
            free_subs: Vec::new(),
            accounts,
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
            pool: ChunkPool::default(),
            stats: Stats::default(),
            stall_high_water,
            users,
            compiled_perms: HashMap::new(),
            account_index,
            response_prune_due: None,
            expiry_due: None,
            store_writes: VecDeque::new(),
            store_queued: 0,
            block_reader: None,
            pub_ack: Vec::new(),
            js_message: Vec::new(),
            store_taken: 0,
            store_synced: 0,
            held_replies: VecDeque::new(),
            writes_due: Vec::new(),
            js_used: (0, 0),
            route_buf: Vec::new(),
            route_spans: Vec::new(),
            service_imports,
            system_account,
            http_port: 0,
            wall_origin: None,
            config_loaded: Time::ZERO,
            http_requests: Default::default(),
            lame_duck: None,
            next_job: 1,
            input_time: Time::ZERO,
            closed: ClosedRing::default(),
            teardowns: Default::default(),
            work: 0,
            tls,
            tls_plaintext: Vec::new(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The server id (56 characters starting with `N`, like nats-server's).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The server name (defaults to the id).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Tells the engine which port it listens on (INFO reports it), once the
    /// runtime has bound the socket (useful with a random port).
    pub fn set_listen_port(&mut self, port: u16) {
        self.port = port;
    }

    /// JetStream's limits and directory as the host found them: a limit
    /// the configuration left unset gets the host's default (nats-server:
    /// 75% of the memory, the disk's free space).
    pub fn set_jetstream_defaults(&mut self, max_memory: i64, max_store: i64, store_dir: &str) {
        if let Some(js) = self.opts.jetstream.as_mut() {
            js.max_memory.get_or_insert(max_memory);
            js.max_store.get_or_insert(max_store);
            js.store_dir = Some(store_dir.to_string());
        }
    }

    /// The wall-clock time (Unix nanoseconds) at `now`, told once by the
    /// runtime: JetStream stamps stored messages and streams with it, and
    /// monitoring reports times with it.
    pub fn set_wall_clock(&mut self, unix_nanos: u64, now: Time) {
        self.wall_origin = Some(unix_nanos.saturating_sub(now.as_nanos()));
    }

    /// Tells the engine which port monitoring listens on (`/varz` reports
    /// it), once the runtime has bound it.
    pub fn set_http_port(&mut self, port: u16) {
        self.http_port = port;
    }

    /// Server-wide counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Number of open client connections.
    pub fn num_clients(&self) -> usize {
        self.open_clients
    }

    /// Number of subscriptions across all clients.
    pub fn num_subscriptions(&self) -> usize {
        let in_tries: usize = self.accounts.iter().map(|a| a.sublist.len()).sum();
        in_tries - self.teardowns.pending()
    }

    /// The live numbers of the account with this name.
    pub fn account_stats(&self, name: &str) -> Option<AccountStats> {
        let account = &self.accounts[*self.account_index.get(name)?];
        Some(AccountStats {
            subscriptions: account.sublist.len(),
            ..account.stats
        })
    }

    // ----- inputs -------------------------------------------------------------

    /// `n` bytes of the client's outbound queue were written. Call it after
    /// every write attempt, with `n = 0` when the socket took nothing. If bytes
    /// remain after a write that took some, the engine sends another
    /// [`Event::Flush`]; after a write that took nothing it does not: write
    /// again when the socket is writable. A client whose socket takes no bytes
    /// for `write_deadline` while some are queued is closed as a slow consumer.
    pub fn handle_written(&mut self, id: ClientId, n: usize, now: Time) {
        self.input_time = now;
        let Some(index) = self.live_index(id) else {
            return;
        };
        let low_water = self.stall_high_water / 2;
        let client = self.slots[index].client.as_mut().expect("live");
        match client.tls.as_mut() {
            Some(tls) => tls.written(n),
            None => client.out.consume(&mut self.pool, n),
        }
        let pending = client.pending_len();
        if pending == 0 {
            client.write_blocked_since = None;
        } else if n > 0 && !client.flush_queued {
            // Progress, and more to write (a partial write, or more queued than
            // the slices the runtime passed): ask for another write.
            client.flush_queued = true;
            self.events.push_back(Event::Flush(client.id));
        }
        if pending != 0 && (n > 0 || client.write_blocked_since.is_none()) {
            // The runtime writes until the socket refuses: bytes still queued
            // mean the socket is full. `write_deadline` counts from the last
            // progress.
            client.write_blocked_since = Some(now);
            if client.write_deadline_due.is_none() {
                let due = now + self.opts.write_deadline;
                client.write_deadline_due = Some(due);
                let raw = client.id.0;
                self.timers
                    .push(Reverse((due, raw, Timer::WriteDeadline as u8)));
            }
        }
        let client = self.slots[index].client.as_mut().expect("live");
        if client.pending_len() <= low_water && !client.stalled_publishers.is_empty() {
            let stalled = std::mem::take(&mut client.stalled_publishers);
            for publisher in stalled {
                self.resume(publisher);
            }
        }
    }

    /// Closes every client (the runtime then sees a `Close` event for each);
    /// `now` is when (closed connections are kept with it).
    pub fn shutdown(&mut self, now: Time) {
        self.input_time = now;
        for index in 0..self.slots.len() {
            if self.slots[index]
                .client
                .as_ref()
                .is_some_and(|c| !c.closing)
            {
                self.shut_client(index, CloseReason::ServerShutdown, true);
            }
        }
    }

    // ----- outputs ------------------------------------------------------------

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Flush(id) = event {
            if let Some(index) = self.live_index(id) {
                self.client_mut(index).flush_queued = false;
            }
        }
        Some(event)
    }

    /// When [`Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Fills `out` with the client's queued bytes (oldest first) for a vectored
    /// write; returns how many slices were filled (0: nothing is queued). The
    /// slices may hold less than everything queued ([`Server::outbound_len`]);
    /// report what was written with [`Server::handle_written`] and the engine
    /// asks for the rest with another [`Event::Flush`].
    pub fn outbound<'a>(&'a mut self, id: ClientId, out: &mut [IoSlice<'a>]) -> usize {
        let Some(index) = self.live_index(id) else {
            return 0;
        };
        if self.client_ref(index).tls.is_some() {
            return self.tls_outbound(index, out);
        }
        self.client_ref(index).out.slices(out)
    }

    /// Bytes queued for the client.
    pub fn outbound_len(&self, id: ClientId) -> usize {
        self.live_index(id)
            .map_or(0, |i| self.client_ref(i).pending_len())
    }

    /// Whether the runtime should read from this client now. False once it is
    /// closing, and while it is paused because a receiver it feeds is backed up
    /// (a `Resume` event says when to read again).
    pub fn can_read(&self, id: ClientId) -> bool {
        self.open_index(id).is_some_and(|i| {
            let client = self.client_ref(i);
            client.paused_until.is_none() && client.waiting_job.is_none() && !client.continue_due
        })
    }

    // ----- helpers ------------------------------------------------------------

    fn alloc_sub(&mut self, sub: Subscription) -> SubKey {
        match self.free_subs.pop() {
            Some(i) => {
                self.subs[i as usize] = Some(sub);
                SubKey(i)
            }
            None => {
                self.subs.push(Some(sub));
                SubKey((self.subs.len() - 1) as u32)
            }
        }
    }

    fn remove_sub(&mut self, key: SubKey) {
        let Some(sub) = self.unlink_sub(key) else {
            return;
        };
        if let Some(client) = self.slots[sub.client.index()].client.as_mut() {
            client.subs.remove(&sub.sid);
        }
    }

    /// Takes a subscription out of the table and its subject space (not out
    /// of its client's map) and hands it back.
    fn unlink_sub(&mut self, key: SubKey) -> Option<Subscription> {
        let sub = self.subs[key.0 as usize].take()?;
        self.free_subs.push(key.0);
        let account = &mut self.accounts[sub.account as usize];
        account
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), key);
        // Consumers that deliver to subscribers notice lost interest on
        // their next turn (push consumers stop and may go idle).
        if account
            .jetstream
            .as_ref()
            .is_some_and(|js| js.watches_interest())
        {
            self.jetstream_turn_soon();
        }
        Some(sub)
    }

    /// A server-wide log line (not about one client).
    fn log(&mut self, level: Level, text: &str) {
        let enabled = match level {
            Level::Trace => self.opts.trace,
            Level::Debug => self.opts.debug,
            _ => true,
        };
        if enabled {
            self.events.push_back(Event::Log(level, text.to_string()));
        }
    }

    /// The slot index of a live client (open or closing) with this id.
    fn live_index(&self, id: ClientId) -> Option<usize> {
        let slot = self.slots.get(id.index())?;
        (slot.generation == id.generation() && slot.client.is_some()).then_some(id.index())
    }

    /// The slot index of an open (not closing) client with this id.
    fn open_index(&self, id: ClientId) -> Option<usize> {
        self.live_index(id).filter(|&i| !self.client_ref(i).closing)
    }

    fn client_ref(&self, index: usize) -> &Client {
        self.slots[index].client.as_ref().expect("live client")
    }

    fn client_mut(&mut self, index: usize) -> &mut Client {
        self.slots[index].client.as_mut().expect("live client")
    }
}

/// Six random characters from `[a-zA-Z0-9]`, for `_R_` reply subjects.
fn random_token(rng: &mut Rng) -> [u8; 6] {
    const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut token = [0u8; 6];
    for b in &mut token {
        *b = ALPHABET[rng.below(ALPHABET.len())];
    }
    token
}

/// 56 characters from the base32 alphabet starting with `N`, shaped like the
/// nkey public key nats-server uses as its id.
fn random_server_id(rng: &mut Rng) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(56);
    id.push('N');
    while id.len() < 56 {
        id.push(ALPHABET[rng.below(32)] as char);
    }
    id
}
