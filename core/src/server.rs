//! The engine: clients, subscriptions, routing, timers and back-pressure, driven by the runtime.
//!
//! See the crate documentation for the driving loop. Everything here is
//! single-threaded and deterministic given the inputs, the seed and the times
//! passed in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;

use crate::account::{
    Account, AccountStats, Accounts, PendingResponse, ResponseType, Target, SERVICE_REPLY_PREFIX,
};
use crate::auth::{encode_nonce, Auth, Users};
use crate::errors::{
    publish_violation, removed_subscription_violation, reply_violation, subscription_violation,
    ClientError, CloseReason,
};
use crate::memo::PublishMemo;
use crate::options::Options;
use crate::outbound::{ChunkPool, Outbound};
use crate::perms::{Permissions, PublishCache, ReplyTracker, SubscribeDecision};
use crate::proto::encode::{decimal, Info};
use crate::proto::{ConnectOptions, Op, ParseError, Parser, Publish};
use crate::rng::Rng;
use crate::subject::{
    is_literal, is_valid_literal_subject, is_valid_subject, map_subject, subject_matches,
};
use crate::sublist::{Matches, SubKey};
use crate::time::Time;

#[path = "monitor.rs"]
mod monitor;
pub use monitor::{MonitorHost, MonitorResponse};

/// The nats-server version whose client protocol tenet speaks, reported in INFO
/// (clients gate features on it).
pub const PROTOCOL_VERSION: &str = "2.9.10";
/// tenet's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The first server PING goes out this soon after CONNECT, to measure the RTT.
const FIRST_PING_INTERVAL: Duration = Duration::from_secs(2);
/// Above this many queued bytes for a receiver, publishers feeding it are paused.
const STALL_HIGH_WATER: u64 = 1024 * 1024;
/// Longest a publisher stays paused by one stall before it is read again anyway
/// (a receiver that never drains then runs into `max_pending` and is dropped).
const STALL_MAX: Duration = Duration::from_millis(10);
/// Permission violations logged per client and second, at most.
const VIOLATION_LOGS_PER_SECOND: u32 = 10;
/// The queue group name nats-server reserves for itself.
const RESERVED_QUEUE: &[u8] = b"_sys_";
/// Subjects clients may not publish to (gateway replies).
const RESERVED_PUBLISH_PREFIXES: [&[u8]; 1] = [b"_GR_."];
/// Reply prefixes clients may not use: service-import, JetStream-ack and gateway replies.
const RESERVED_REPLY_PREFIXES: [&[u8]; 3] = [b"_R_.", b"$JS.ACK.", b"_GR_."];

/// A connection, as named by the runtime. Ids are never reused while the runtime
/// might still hold one: a stale id is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

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
        }
    }
}

/// Something the runtime must act on; drain with [`Server::poll_event`] after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The client has outbound bytes: write them ([`Server::outbound`], [`Server::handle_written`]).
    Flush(ClientId),
    /// Write what is still queued if possible, close the socket, then call
    /// [`Server::handle_closed`].
    Close(ClientId, CloseReason),
    /// Reading from this client was paused ([`Server::can_read`]) and may resume.
    Resume(ClientId),
    /// A line for the log (already filtered by the debug/trace options).
    Log(Level, String),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Ping,
    StallEnd,
    AuthTimeout,
    /// Drop expired `allow_responses` entries.
    ReplyPrune,
    /// Drop service responses no longer awaited (server-wide).
    ResponsePrune,
}

struct Client {
    id: ClientId,
    /// nats-server's `cid`: a connection number that is never reused.
    cid: u64,
    peer: Peer,
    /// When it connected.
    start: Time,
    parser: Parser,
    opts: ConnectOptions,
    /// A CONNECT was accepted.
    connected: bool,
    /// The core closed it and waits for the runtime's `handle_closed`.
    closing: bool,
    /// Client asked for headers (and the server supports them).
    headers: bool,
    subs: HashMap<Box<[u8]>, SubKey>,
    out: Outbound,
    flush_queued: bool,
    last_activity: Time,
    ping_due: Time,
    pings_out: u32,
    rtt_measured: bool,
    /// When the last server PING went out.
    ping_sent: Time,
    /// The round trip of the last answered server PING.
    rtt: Duration,
    sent_connect_info: bool,
    /// Reading is paused until this time, or until the receiver drains.
    paused_until: Option<Time>,
    /// Publishers paused because this client's outbound queue is too long.
    stalled_publishers: Vec<ClientId>,
    /// The nonce sent in INFO (nkey users sign it).
    nonce: Option<String>,
    /// Authenticated (always true when no authentication is configured).
    authenticated: bool,
    /// Until when the client may take to authenticate.
    auth_due: Option<Time>,
    /// The authenticated user's name, for logs.
    user: Option<String>,
    /// The user's permissions; `None` is unrestricted.
    perms: Option<Arc<Permissions>>,
    /// Recent publish decisions (only used with publish restrictions).
    publish_cache: PublishCache,
    /// The last subject published and what it resolved to.
    last_publish: PublishMemo,
    /// Replies this client may send under `allow_responses`.
    replies: Option<ReplyTracker>,
    /// When the reply tracker is next pruned (one timer per client at most).
    prune_due: Option<Time>,
    /// Start of the current second of permission-violation logging.
    violations_since: Time,
    /// Violations logged in that second.
    violations_logged: u32,
    /// Violations not logged since the last one that was.
    violations_suppressed: u64,
    /// The account the client authenticated into (`$G` until then).
    account: usize,
    /// Counted in its account's connections.
    counted: bool,
    /// Subscriptions allowed (0 = unlimited): the server's and the account's limit.
    max_subs: u32,
    /// Largest payload: the server's and the account's limit.
    max_payload: u32,
    /// Headers or limits changed: the parser must be told.
    parser_stale: bool,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
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
}

/// The timer id of server-wide timers (no client has generation 0).
const SERVER_TIMER: u64 = 0;

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
        let accounts = accounts.instantiate(!opts.disable_sublist_cache, || random_token(&mut rng));
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
            route_buf: Vec::new(),
            route_spans: Vec::new(),
            service_imports,
            system_account,
            http_port: 0,
            wall_origin: None,
            config_loaded: Time::ZERO,
            http_requests: Default::default(),
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
        self.accounts.iter().map(|a| a.sublist.len()).sum()
    }

    // ----- inputs -------------------------------------------------------------

    /// A new connection. Its INFO is queued at once; if the server is full it is
    /// followed by `-ERR 'maximum connections exceeded'` and a `Close` event.
    pub fn accept(&mut self, peer: Peer, now: Time) -> ClientId {
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
            subs: HashMap::new(),
            out: Outbound::default(),
            flush_queued: false,
            last_activity: now,
            ping_due,
            pings_out: 0,
            rtt_measured: false,
            ping_sent: now,
            rtt: Duration::ZERO,
            sent_connect_info: false,
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
        let info = self.info_line(index as usize, false);
        self.send(index as usize, &info);
        if self.open_clients > self.opts.max_connections as usize {
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
        }
        id
    }

    /// Bytes read from a client's socket.
    pub fn handle_read(&mut self, id: ClientId, data: &[u8], now: Time) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        let client = self.client_mut(index);
        client.last_activity = now;
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
                    if client.parser_stale {
                        client.parser_stale = false;
                        parser.set_headers(client.headers);
                        parser.set_max_payload(client.max_payload);
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

    /// The client's socket is gone (closed by the peer, an I/O error, or after a
    /// `Close` event). Frees everything the client held.
    pub fn handle_closed(&mut self, id: ClientId) {
        let Some(index) = self.live_index(id) else {
            return;
        };
        if !self.client_ref(index).closing {
            self.shut_client(index, CloseReason::ClientClosed, false);
        }
        let mut client = self.slots[index].client.take().expect("live");
        client.out.clear(&mut self.pool);
        self.free_slots.push(index as u32);
    }

    /// `n` bytes of the client's outbound queue were written.
    pub fn handle_written(&mut self, id: ClientId, n: usize) {
        let Some(index) = self.live_index(id) else {
            return;
        };
        let low_water = self.stall_high_water / 2;
        let client = self.slots[index].client.as_mut().expect("live");
        client.out.consume(&mut self.pool, n);
        if client.out.len() <= low_water && !client.stalled_publishers.is_empty() {
            let stalled = std::mem::take(&mut client.stalled_publishers);
            for publisher in stalled {
                self.resume(publisher);
            }
        }
    }

    /// Time passed: fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(&Reverse((due, raw, kind))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            if kind == Timer::ResponsePrune as u8 {
                self.prune_responses(due, now);
                continue;
            }
            let id = ClientId(raw);
            let Some(index) = self.open_index(id) else {
                continue;
            };
            if kind == Timer::Ping as u8 {
                if self.client_ref(index).ping_due == due {
                    self.ping_timer(index, now);
                }
            } else if kind == Timer::ReplyPrune as u8 {
                self.prune_replies(index, due, now);
            } else if kind == Timer::AuthTimeout as u8 {
                let client = self.client_ref(index);
                if !client.authenticated && client.auth_due == Some(due) {
                    self.log_client(index, Level::Error, "Authentication Timeout");
                    self.close_with_error(index, ClientError::AuthenticationTimeout);
                }
            } else if self.client_ref(index).paused_until == Some(due) {
                self.resume(id);
            }
        }
    }

    /// Applies a new configuration to the running server, as nats-server's
    /// reload does: every changed option must be one that can change live,
    /// else nothing is applied and the error says which (`config reload not
    /// supported for <field>: old=..., new=...`). Then each client is checked
    /// against the new users and accounts: one whose user is gone or now
    /// belongs to another account is closed (without an error, as
    /// nats-server); one that no longer authenticates gets `Authorization
    /// Violation` and is closed; the others get their new permissions and
    /// limits, their `allow_responses` tracking starts afresh, and each
    /// subscription no longer allowed is removed with `Permissions Violation
    /// for Subscription to "<subject>" (sid "<sid>")`. Subscriptions,
    /// counters and awaited service answers carry over into the accounts of
    /// the same name. If `max_connections` was lowered, the newest clients
    /// over it are closed. `now` becomes the `config_load_time` monitoring
    /// reports.
    pub fn reload(&mut self, opts: Options, auth: Auth, now: Time) -> Result<(), String> {
        self.reload_config(opts, auth)?;
        self.config_loaded = now;
        Ok(())
    }

    fn reload_config(&mut self, opts: Options, auth: Auth) -> Result<(), String> {
        let old_system = self.system_account.clone();
        let new_system = auth.accounts.system_account().map(str::to_string);
        let port = |p: Option<u16>| p.map_or("-1".to_string(), |p| p.to_string());
        let unchanged = [
            ("host", self.opts.host.clone(), opts.host.clone()),
            ("port", port(self.opts.port), port(opts.port)),
            (
                "max_subscriptions",
                self.opts.max_subscriptions.to_string(),
                opts.max_subscriptions.to_string(),
            ),
            (
                "server_name",
                format!("{:?}", self.opts.server_name),
                format!("{:?}", opts.server_name),
            ),
            (
                "no_auth_user",
                format!("{:?}", self.users.no_auth_user()),
                format!("{:?}", auth.users.no_auth_user()),
            ),
            (
                "system_account",
                format!("{old_system:?}"),
                format!("{new_system:?}"),
            ),
            (
                "http_host",
                self.opts.http_host().to_string(),
                opts.http_host().to_string(),
            ),
            (
                "http_port",
                config_http_port(self.opts.http_port),
                config_http_port(opts.http_port),
            ),
        ];
        for (field, old, new) in unchanged {
            if old != new {
                let error =
                    format!("config reload not supported for {field}: old={old}, new={new}");
                self.log(
                    Level::Error,
                    &format!("Failed to reload server configuration: {error}"),
                );
                return Err(error);
            }
        }
        let Auth { users, accounts } = auth;
        let mut new_accounts =
            accounts.instantiate(!opts.disable_sublist_cache, || random_token(&mut self.rng));
        let new_index: HashMap<String, usize> = new_accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        self.opts = opts;
        self.users = users;
        self.compiled_perms.clear();
        self.stall_high_water = (self.opts.max_pending / 4 * 3).min(STALL_HIGH_WATER) as usize;

        // Who stays, and where.
        for index in 0..self.slots.len() {
            let Some(client) = self.slots[index].client.as_ref() else {
                continue;
            };
            if client.closing || !client.authenticated || !client.counted {
                continue;
            }
            let old_account = self.accounts[client.account].name.clone();
            let name = client.user.clone().unwrap_or_default();
            let identity = self
                .users
                .authenticate(&client.opts, client.nonce.as_deref())
                .map(|u| u.account.to_string());
            match identity {
                Some(account) if account == old_account && new_index.contains_key(&account) => {}
                Some(_) => self.shut_client(index, CloseReason::ClientClosed, true),
                None if !name.is_empty() && !self.users.has_user(&name) => {
                    self.shut_client(index, CloseReason::ClientClosed, true)
                }
                None => {
                    self.log_client(index, Level::Error, "authentication error after reload");
                    self.close_with_error(index, ClientError::AuthorizationViolation);
                }
            }
        }

        // Move subscriptions, counters and awaited answers into the new accounts.
        let old_accounts = std::mem::take(&mut self.accounts);
        let remap: Vec<Option<usize>> = old_accounts
            .iter()
            .map(|a| new_index.get(&a.name).copied())
            .collect();
        for (old, account) in old_accounts.into_iter().enumerate() {
            let Some(new) = remap[old] else { continue };
            let target = &mut new_accounts[new];
            target.stats = AccountStats {
                connections: 0,
                ..account.stats
            };
            for (token, mut pending) in account.responses {
                if let Some(requester) = remap[pending.account] {
                    pending.account = requester;
                    target.responses.insert(token, pending);
                }
            }
        }
        // Every subscription left belongs to a client that stays, in an
        // account that exists under the same name.
        for (key, sub) in self.subs.iter_mut().enumerate() {
            if let Some(sub) = sub {
                let new = remap[sub.account as usize].expect("the client's account stays");
                sub.account = new as u32;
                let queue = sub.queue.as_deref();
                new_accounts[new]
                    .sublist
                    .insert(&sub.subject, queue, SubKey(key as u32));
            }
        }
        self.service_imports = new_accounts.iter().map(|a| a.services_in.len()).sum();
        self.accounts = new_accounts;
        self.account_index = new_index;
        self.system_account = new_system;
        for client in self.slots.iter_mut().filter_map(|s| s.client.as_mut()) {
            client.last_publish.forget_matches();
            match remap[client.account] {
                Some(new) => client.account = new,
                None => (client.account, client.counted) = (0, false),
            }
        }

        // The survivors: new permissions and limits.
        for index in 0..self.slots.len() {
            let live = self.slots[index]
                .client
                .as_ref()
                .is_some_and(|c| !c.closing && c.authenticated && c.counted);
            if !live {
                continue;
            }
            // Counted again, within the account's (possibly new) limits.
            let client = self.client_mut(index);
            client.counted = false;
            let account = client.account;
            if !self.join_account(index, account) {
                continue;
            }
            let user_index = {
                let client = self.client_ref(index);
                self.users
                    .authenticate(&client.opts, client.nonce.as_deref())
                    .map(|u| u.index)
            };
            let Some(user_index) = user_index else {
                continue;
            };
            self.install_permissions(index, user_index);
            self.recheck_subscriptions(index);
        }

        // A lowered max_connections closes the newest clients over it.
        let max = self.opts.max_connections as usize;
        if self.open_clients > max {
            let mut open: Vec<(u64, usize)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.client.as_ref().filter(|c| !c.closing).map(|c| (c.cid, i)))
                .collect();
            open.sort_unstable_by(|a, b| b.cmp(a));
            for (_, index) in open.into_iter().take(self.open_clients - max) {
                self.close_with_error(index, ClientError::MaxConnectionsExceeded);
            }
        }
        self.log(Level::Info, "Reloaded server configuration");
        Ok(())
    }

    /// Logs a denied publish or subscription with the user, account and
    /// subject: at most [`VIOLATION_LOGS_PER_SECOND`] lines per client and
    /// second, so a misbehaving client cannot flood the log; the next line
    /// logged says how many were left out.
    fn log_violation(&mut self, index: usize, what: &str, subject: &[u8], now: Time) {
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
        let user = client.user.clone().unwrap_or_default();
        let account = client.account;
        let account = self.accounts[account].name.clone();
        let mut line = format!("{what} Violation - User {user:?}, Account {account:?}, Subject ");
        crate::proto::encode::go_quote(subject, &mut line);
        if suppressed > 0 {
            line.push_str(&format!(" ({suppressed} more violations not logged)"));
        }
        self.log_client(index, Level::Error, &line);
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

    /// Closes every client (the runtime then sees a `Close` event for each).
    pub fn shutdown(&mut self) {
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
    /// write; returns how many slices were filled.
    pub fn outbound<'a>(&'a self, id: ClientId, out: &mut [IoSlice<'a>]) -> usize {
        match self.live_index(id) {
            Some(index) => self.client_ref(index).out.slices(out),
            None => 0,
        }
    }

    /// Bytes queued for the client.
    pub fn outbound_len(&self, id: ClientId) -> usize {
        self.live_index(id)
            .map_or(0, |i| self.client_ref(i).out.len())
    }

    /// Whether the runtime should read from this client now. False once it is
    /// closing, and while it is paused because a receiver it feeds is backed up
    /// (a `Resume` event says when to read again).
    pub fn can_read(&self, id: ClientId) -> bool {
        self.open_index(id)
            .is_some_and(|i| self.client_ref(i).paused_until.is_none())
    }

    // ----- protocol -----------------------------------------------------------

    fn process_op(&mut self, index: usize, op: Op<'_>, now: Time) {
        if self.opts.trace {
            self.trace_op(index, &op);
        }
        // With authentication on, the first op must be a CONNECT, unless
        // `no_auth_user` lets a client without credentials in.
        if !self.client_ref(index).authenticated
            && !matches!(op, Op::Connect(_))
            && self.authenticate(index).is_none()
        {
            return;
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
                self.shut_client(index, CloseReason::ProtocolViolation, true);
            }
        }
    }

    fn process_connect(&mut self, index: usize, json: &[u8], now: Time) {
        let client = self.client_mut(index);
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
        let Some(perms_changed) = self.authenticate(index) else {
            return;
        };
        let opts = &self.client_ref(index).opts;
        let error = if !(0..=1).contains(&opts.protocol) {
            Some(ClientError::InvalidClientProtocol)
        } else if opts.no_responders && !opts.headers {
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
        client.headers = client.opts.headers;
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

    /// Authenticates the client with what its CONNECT said (or, without one, as
    /// `no_auth_user`) and installs its permissions; returns whether they
    /// changed while the client had subscriptions (the caller re-checks them
    /// once the CONNECT is accepted). On failure sends `Authorization
    /// Violation`, closes, and returns `None`.
    fn authenticate(&mut self, index: usize) -> Option<bool> {
        let client = self.slots[index].client.as_ref().expect("live client");
        let Some(user) = self
            .users
            .authenticate(&client.opts, client.nonce.as_deref())
        else {
            let who = client
                .opts
                .user
                .clone()
                .or_else(|| client.opts.nkey.clone())
                .unwrap_or_default();
            self.log_client(
                index,
                Level::Error,
                &format!("authentication error - User {who:?}"),
            );
            self.close_with_error(index, ClientError::AuthorizationViolation);
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
    fn install_permissions(&mut self, index: usize, user_index: usize) -> bool {
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

    /// Checks the client's subscriptions against its current permissions
    /// (they changed: another login on the same connection): one no longer
    /// allowed is removed with `-ERR 'Permissions Violation for Subscription
    /// to "<subject>" (sid "<sid>")'`, as nats-server reports subscriptions a
    /// reload takes away; the others are re-marked for delivery filtering.
    fn recheck_subscriptions(&mut self, index: usize) {
        let client = self.client_ref(index);
        let perms = client.perms.clone();
        let keys: Vec<SubKey> = client.subs.values().copied().collect();
        for key in keys {
            let sub = self.subs[key.0 as usize]
                .as_mut()
                .expect("client subs are live");
            let decision = perms.as_ref().map_or(SubscribeDecision::Allowed, |p| {
                p.can_subscribe(&sub.subject, sub.queue.as_deref())
            });
            sub.filtered = decision == SubscribeDecision::AllowedFiltered;
            if decision == SubscribeDecision::Denied {
                let text = removed_subscription_violation(&sub.subject, &sub.sid);
                self.remove_sub(key);
                self.send_error_text(index, &text);
            }
        }
    }

    /// Moves the client into `account` (it starts in `$G`), within the
    /// account's connection limit, and applies the account's per-connection
    /// limits. Subscriptions made in another account are dropped: they belong
    /// to another tenant's subject space. False if the client was closed.
    fn join_account(&mut self, index: usize, account: usize) -> bool {
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

    /// Expires `allow_responses` entries on the engine's clock, and schedules the
    /// next pruning while entries remain.
    fn prune_replies(&mut self, index: usize, due: Time, now: Time) {
        let client = self.slots[index].client.as_mut().expect("live client");
        if client.prune_due != Some(due) {
            return;
        }
        client.prune_due = None;
        let Some(tracker) = client.replies.as_mut() else {
            return;
        };
        tracker.prune(now);
        if let Some(next) = tracker.next_expiry() {
            client.prune_due = Some(next);
            self.timers
                .push(Reverse((next, client.id.0, Timer::ReplyPrune as u8)));
        }
    }

    /// Replies a client may still send under `allow_responses` (for monitoring).
    pub fn tracked_replies(&self, id: ClientId) -> usize {
        self.live_index(id)
            .and_then(|i| self.client_ref(i).replies.as_ref().map(|r| r.len()))
            .unwrap_or(0)
    }

    /// Whether this client may publish to `subject`: its allow/deny lists
    /// (cached), then a reply owed under `allow_responses`.
    fn publish_allowed(&mut self, index: usize, subject: &[u8], now: Time) -> bool {
        let client = self.slots[index].client.as_mut().expect("live client");
        let Some(perms) = client.perms.as_ref().filter(|p| p.restricts_publish()) else {
            return true;
        };
        let allowed = match client.last_publish.allowed() {
            Some(allowed) => allowed,
            None => {
                let allowed = client
                    .publish_cache
                    .decide(subject, || perms.can_publish(subject));
                client.last_publish.set_allowed(allowed);
                allowed
            }
        };
        // Replies allowed by tracking are not cached: each uses up an allowance.
        allowed
            || client
                .replies
                .as_mut()
                .is_some_and(|r| r.allow_reply(subject, now))
    }

    fn first_ping_jitter(&mut self) -> Duration {
        let first = self.opts.ping_interval.min(FIRST_PING_INTERVAL);
        let max_jitter = (first / 5).as_micros() as usize;
        Duration::from_micros(self.rng.below(max_jitter.max(1)) as u64)
    }

    fn process_ping(&mut self, index: usize) {
        self.send(index, b"PONG\r\n");
        let client = self.client_ref(index);
        if client.connected && client.opts.protocol >= 1 && !client.sent_connect_info {
            let info = self.info_line(index, true);
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
        if queue == Some(RESERVED_QUEUE) {
            let text = subscription_violation(subject, queue);
            self.send_error_text(index, &text);
            return;
        }
        let decision = self
            .client_ref(index)
            .perms
            .as_ref()
            .map(|p| p.can_subscribe(subject, queue));
        if decision == Some(SubscribeDecision::Denied) {
            let text = subscription_violation(subject, queue);
            self.log_violation(index, "Subscription", subject, now);
            self.send_error_text(index, &text);
            return;
        }
        let filtered = decision == Some(SubscribeDecision::AllowedFiltered);
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
    }

    fn process_unsub(&mut self, index: usize, sid: &[u8], max: Option<u64>) {
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

    fn process_pub(&mut self, index: usize, publish: &Publish<'_>, now: Time) {
        let client = self.client_mut(index);
        client.last_publish.start(publish.subject);
        client.in_msgs += 1;
        client.in_bytes += publish.payload.len() as u64;
        self.stats.in_msgs += 1;
        self.stats.in_bytes += publish.payload.len() as u64;
        let account = self.client_ref(index).account;
        let account = &mut self.accounts[account].stats;
        account.in_msgs += 1;
        account.in_bytes += publish.payload.len() as u64;
        let client = self.client_ref(index);
        if client.opts.pedantic && !is_valid_literal_subject(publish.subject) {
            // tenet drops the message; nats-server routes it anyway.
            self.send_error(index, ClientError::InvalidPublishSubject);
            return;
        }
        // The subject's permission first, then reserved names, as nats-server orders them.
        if !self.publish_allowed(index, publish.subject, now) {
            let text = publish_violation(publish.subject);
            self.log_violation(index, "Publish", publish.subject, now);
            self.send_error_text(index, &text);
            return;
        }
        if RESERVED_PUBLISH_PREFIXES
            .iter()
            .any(|p| publish.subject.starts_with(p))
        {
            let text = publish_violation(publish.subject);
            self.send_error_text(index, &text);
            return;
        }
        if let Some(reply) = publish
            .reply
            .filter(|r| RESERVED_REPLY_PREFIXES.iter().any(|p| r.starts_with(p)))
        {
            let text = reply_violation(reply);
            self.send_error_text(index, &text);
            return;
        }
        if self.client_ref(index).opts.verbose {
            self.send(index, b"+OK\r\n");
        }
        if !self.route(index, publish, now) {
            if let Some(reply) = publish.reply {
                if self.client_ref(index).opts.no_responders {
                    self.send_no_responders(index, reply);
                }
            }
        }
    }

    /// Delivers a client's message in its account, then along the account's
    /// routes: streams other accounts import, services it imports, answers
    /// owed to requesters elsewhere. Returns whether the message went anywhere
    /// (a request handed to a service import counts, as in nats-server).
    fn route(&mut self, publisher: usize, publish: &Publish<'_>, now: Time) -> bool {
        let client = self.slots[publisher].client.as_mut().expect("live client");
        let acc = client.account;
        let generation = self.accounts[acc].sublist.generation();
        let matches = match client.last_publish.take_matches(acc, generation) {
            Some(matches) => matches,
            None => self.accounts[acc].sublist.matches(publish.subject),
        };
        let mut delivered = self.deliver_all(publisher, &matches, publish, now);
        if let Some(client) = self.slots[publisher].client.as_mut() {
            client.last_publish.keep_matches(acc, generation, matches);
        }
        let account = &self.accounts[acc];
        let (streams, services) = (
            !account.streams_out.is_empty(),
            !account.services_in.is_empty(),
        );
        let answers = !account.responses.is_empty();
        if streams {
            delivered |= self.export_stream(acc, publisher, publish, now);
        }
        if services {
            delivered |= self.import_service(acc, publisher, publish, now);
        }
        if answers && publish.subject.starts_with(SERVICE_REPLY_PREFIX) {
            delivered |= self.answer_service(acc, publisher, publish, now);
        }
        delivered
    }

    /// Delivers a message published in `acc` to the accounts importing it as
    /// a stream, each on its own subject for it: once per matching import, so
    /// two overlapping imports deliver twice, as in nats-server.
    fn export_stream(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let routes = self.accounts[acc].streams_out.matching(publish.subject);
        if routes.plain.is_empty() {
            return false;
        }
        let mut buf = std::mem::take(&mut self.route_buf);
        let mut spans = std::mem::take(&mut self.route_spans);
        for &key in &routes.plain {
            let route = self.accounts[acc].streams_out.get(key);
            let start = buf.len();
            match &route.target {
                Target::Same => buf.extend_from_slice(publish.subject),
                Target::Prefix(prefix) => {
                    buf.extend_from_slice(prefix);
                    buf.push(b'.');
                    buf.extend_from_slice(publish.subject);
                }
                Target::Map(to) => map_subject(&route.source, to, publish.subject, &mut buf),
            }
            spans.push((route.importer, start, buf.len()));
        }
        let mut delivered = false;
        for &(importer, start, end) in &spans {
            let imported = Publish {
                subject: &buf[start..end],
                ..*publish
            };
            let matches = self.accounts[importer].sublist.matches(imported.subject);
            delivered |= self.deliver_all(publisher, &matches, &imported, now);
        }
        buf.clear();
        spans.clear();
        self.route_buf = buf;
        self.route_spans = spans;
        delivered
    }

    /// Hands a request published in `acc` to the service it imports on that
    /// subject (the first such import), with a reply subject that routes the
    /// service's answer back; and on, if that account imports the service in
    /// turn. Returns whether an import took the request.
    fn import_service(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        if self.accounts[acc]
            .services_in
            .matching(publish.subject)
            .plain
            .is_empty()
        {
            return false;
        }
        let mut at = acc;
        let mut subject: Vec<u8> = publish.subject.to_vec();
        let mut reply: Option<Vec<u8>> = publish.reply.map(<[u8]>::to_vec);
        // A chain longer than the number of service imports repeats one: a
        // cycle. Those are refused at load; the bound keeps any the load-time
        // check lets through finite.
        for _ in 0..self.service_imports {
            let routes = self.accounts[at].services_in.matching(&subject);
            let Some(&key) = routes.plain.first() else {
                break;
            };
            let route = self.accounts[at].services_in.get(key);
            let (exporter, response, threshold) = (route.exporter, route.response, route.threshold);
            let mut remote = Vec::with_capacity(route.remote.len());
            if is_literal(&route.remote) {
                remote.extend_from_slice(&route.remote);
            } else {
                map_subject(&route.local, &route.remote, &subject, &mut remote);
            }
            let service_reply = reply.take().map(|reply| {
                let expires = now + threshold;
                let pending = PendingResponse {
                    account: at,
                    reply: reply.into(),
                    response,
                    threshold,
                    expires,
                };
                let token = self.new_service_reply(at, exporter, pending);
                self.schedule_response_prune(expires);
                token
            });
            let request = Publish {
                subject: &remote,
                reply: service_reply.as_deref(),
                ..*publish
            };
            let matches = self.accounts[exporter].sublist.matches(&remote);
            self.deliver_all(publisher, &matches, &request, now);
            (at, subject, reply) = (exporter, remote, service_reply);
        }
        true
    }

    /// Registers an answer owed through `exporter` to `pending.account`, under
    /// a fresh `_R_.<requester's prefix>.<random>` subject, which it returns.
    fn new_service_reply(
        &mut self,
        requester: usize,
        exporter: usize,
        pending: PendingResponse,
    ) -> Vec<u8> {
        let prefix = self.accounts[requester].reply_prefix;
        let mut token = Vec::with_capacity(SERVICE_REPLY_PREFIX.len() + 13);
        loop {
            token.clear();
            token.extend_from_slice(SERVICE_REPLY_PREFIX);
            token.extend_from_slice(&prefix);
            token.push(b'.');
            token.extend_from_slice(&random_token(&mut self.rng));
            if !self.accounts[exporter].responses.contains_key(&token[..]) {
                break;
            }
        }
        self.accounts[exporter]
            .responses
            .insert(token.as_slice().into(), pending);
        token
    }

    /// Routes a service's answer (published in `acc` on an `_R_` subject) to
    /// the requester's own reply subject in the requester's account, back
    /// along every service import the request went through.
    fn answer_service(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let mut delivered = false;
        let mut at = acc;
        let mut subject: Box<[u8]> = publish.subject.into();
        // Answers retrace the request's hops.
        for _ in 0..self.service_imports {
            let responses = &mut self.accounts[at].responses;
            let Some(pending) = responses.get_mut(&subject[..]) else {
                break;
            };
            // An empty message ends a streamed or chunked answer.
            let last = pending.response == ResponseType::Singleton || publish.payload.is_empty();
            let target = pending.account;
            let reply = if last {
                responses.remove(&subject[..]).expect("present").reply
            } else {
                pending.expires = now + pending.threshold;
                let (reply, expires) = (pending.reply.clone(), pending.expires);
                self.schedule_response_prune(expires);
                reply
            };
            let answer = Publish {
                subject: &reply,
                ..*publish
            };
            let matches = self.accounts[target].sublist.matches(&reply);
            delivered |= self.deliver_all(publisher, &matches, &answer, now);
            (at, subject) = (target, reply);
        }
        delivered
    }

    fn schedule_response_prune(&mut self, due: Time) {
        if self.response_prune_due.is_none_or(|d| due < d) {
            self.response_prune_due = Some(due);
            self.timers
                .push(Reverse((due, SERVER_TIMER, Timer::ResponsePrune as u8)));
        }
    }

    /// Forgets service answers no longer awaited, and schedules the next pruning.
    fn prune_responses(&mut self, due: Time, now: Time) {
        if self.response_prune_due != Some(due) {
            return;
        }
        self.response_prune_due = None;
        let mut next: Option<Time> = None;
        for account in &mut self.accounts {
            account.responses.retain(|_, p| p.expires > now);
            for p in account.responses.values() {
                next = Some(next.map_or(p.expires, |n| n.min(p.expires)));
            }
        }
        if let Some(next) = next {
            self.schedule_response_prune(next);
        }
    }

    /// The live numbers of the account with this name.
    pub fn account_stats(&self, name: &str) -> Option<AccountStats> {
        let account = &self.accounts[*self.account_index.get(name)?];
        Some(AccountStats {
            subscriptions: account.sublist.len(),
            ..account.stats
        })
    }

    /// Service answers awaited by requesters in other accounts (for monitoring and tests).
    pub fn pending_responses(&self) -> usize {
        self.accounts.iter().map(|a| a.responses.len()).sum()
    }

    /// Delivers to every plain subscriber and one member of each queue group;
    /// returns whether anyone received the message.
    fn deliver_all(
        &mut self,
        publisher: usize,
        matches: &Arc<Matches>,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let mut delivered = false;
        for &key in &matches.plain {
            delivered |= self.deliver(key, publisher, publish, now);
        }
        for group in &matches.queues {
            let n = group.members.len();
            let start = self.rng.below(n);
            for i in 0..n {
                if self.deliver(group.members[(start + i) % n], publisher, publish, now) {
                    delivered = true;
                    break;
                }
            }
        }
        delivered
    }

    /// Appends the message for one subscription; false if it could not take it.
    fn deliver(&mut self, key: SubKey, publisher: usize, publish: &Publish<'_>, now: Time) -> bool {
        let Some(sub) = self.subs[key.0 as usize].as_mut() else {
            return false;
        };
        let index = sub.client.index();
        let Some(client) = self.slots[index].client.as_mut() else {
            return false;
        };
        if client.closing || (index == publisher && !client.opts.echo) {
            return false;
        }
        // A wildcard subscription that overlaps a subscribe deny entry.
        if sub.filtered
            && client
                .perms
                .as_ref()
                .is_some_and(|p| p.delivery_denied(publish.subject, sub.queue.as_deref()))
        {
            return false;
        }
        // A responder with `allow_responses` may answer this request once it is delivered.
        if let (Some(reply), Some(tracker)) = (publish.reply, client.replies.as_mut()) {
            let may_publish = client
                .perms
                .as_ref()
                .is_none_or(|p| !p.restricts_publish() || p.can_publish(reply));
            if !may_publish {
                tracker.record(reply, now);
                if client.prune_due.is_none() {
                    if let Some(due) = tracker.next_expiry() {
                        client.prune_due = Some(due);
                        self.timers
                            .push(Reverse((due, client.id.0, Timer::ReplyPrune as u8)));
                    }
                }
            }
        }
        sub.delivered += 1;
        let done = sub.max > 0 && sub.delivered >= sub.max;
        let mut size_buf = [0u8; 20];
        let (keyword, payload, header_size) = match publish.header_size_token {
            Some(hdr) if client.headers => (&b"HMSG "[..], publish.payload, Some(hdr)),
            _ => (&b"MSG "[..], &publish.payload[publish.header_len..], None),
        };
        let size: &[u8] = if publish.header_len > 0 && header_size.is_none() {
            decimal(payload.len(), &mut size_buf)
        } else {
            publish.size_token
        };
        let message = Delivery {
            keyword,
            subject: publish.subject,
            sid: &sub.sid,
            reply: publish.reply,
            header_size,
            size,
            payload,
        };
        let trace = self.opts.trace.then(|| {
            let mut bytes = Vec::with_capacity(message.len());
            message.encode(&mut bytes);
            outbound_trace(&[&bytes])
        });
        client
            .out
            .push_with(&mut self.pool, message.len(), |out| message.encode(out));
        client.out_msgs += 1;
        client.out_bytes += payload.len() as u64;
        self.stats.out_msgs += 1;
        self.stats.out_bytes += payload.len() as u64;
        let account = &mut self.accounts[client.account].stats;
        account.out_msgs += 1;
        account.out_bytes += payload.len() as u64;
        let id = client.id;
        if !client.flush_queued {
            client.flush_queued = true;
            self.events.push_back(Event::Flush(id));
        }
        let queued = client.out.len();
        if let Some(line) = trace {
            self.log_client(index, Level::Trace, &line);
        }
        if done {
            self.remove_sub(key);
        }
        if queued as u64 > self.opts.max_pending {
            self.slow_consumer(index);
        } else if queued > self.stall_high_water {
            self.stall(publisher, index, now);
        }
        true
    }

    fn send_no_responders(&mut self, index: usize, reply: &[u8]) {
        let client = self.client_ref(index);
        let sid = client.subs.values().find_map(|&key| {
            let sub = self.subs[key.0 as usize].as_ref()?;
            (sub.queue.is_none() && subject_matches(&sub.subject, reply)).then(|| sub.sid.clone())
        });
        if let Some(sid) = sid {
            let parts: [&[u8]; 5] = [
                b"HMSG ",
                reply,
                b" ",
                &sid,
                b" 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
            ];
            self.send_parts(index, &parts);
        }
    }

    // ----- back-pressure ------------------------------------------------------

    /// Pauses reading from `publisher` because `receiver`'s queue is long.
    fn stall(&mut self, publisher: usize, receiver: usize, now: Time) {
        let until = now + STALL_MAX;
        let pub_client = self.client_mut(publisher);
        if pub_client.paused_until.is_some() {
            return;
        }
        pub_client.paused_until = Some(until);
        let pub_id = pub_client.id;
        self.timers
            .push(Reverse((until, pub_id.0, Timer::StallEnd as u8)));
        let receiver = self.client_mut(receiver);
        if !receiver.stalled_publishers.contains(&pub_id) {
            receiver.stalled_publishers.push(pub_id);
        }
    }

    fn resume(&mut self, id: ClientId) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        if self.client_mut(index).paused_until.take().is_some() {
            self.events.push_back(Event::Resume(id));
        }
    }

    fn slow_consumer(&mut self, index: usize) {
        self.stats.slow_consumers += 1;
        let max = self.opts.max_pending;
        self.log_client(
            index,
            Level::Info,
            &format!("Slow Consumer Detected: MaxPending of {max} exceeded"),
        );
        let client = self.slots[index].client.as_mut().expect("live client");
        client.out.clear(&mut self.pool);
        self.shut_client(index, CloseReason::SlowConsumerPendingBytes, true);
    }

    // ----- timers -------------------------------------------------------------

    fn schedule_ping(&mut self, index: usize, due: Time) {
        let client = self.client_mut(index);
        client.ping_due = due;
        let id = client.id;
        self.timers.push(Reverse((due, id.0, Timer::Ping as u8)));
    }

    fn ping_timer(&mut self, index: usize, now: Time) {
        let interval = self.opts.ping_interval;
        let ping_max = self.opts.ping_max;
        let client = self.client_ref(index);
        let need_rtt = client.connected && !client.rtt_measured;
        let active = now.saturating_since(client.last_activity) < interval;
        if need_rtt || !active {
            if client.pings_out + 1 > ping_max {
                self.stats.stale_connections += 1;
                self.log_client(index, Level::Debug, "Stale Client Connection - Closing");
                self.close_with_error(index, ClientError::StaleConnection);
                return;
            }
            let client = self.client_mut(index);
            client.pings_out += 1;
            client.ping_sent = now;
            self.send(index, b"PING\r\n");
        }
        self.schedule_ping(index, now + interval);
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

    fn close_with_error(&mut self, index: usize, error: ClientError) {
        self.send_error(index, error);
        self.shut_client(index, error.close_reason(), true);
    }

    /// Removes the client's subscriptions and stops reading it. With
    /// `tell_runtime`, asks the runtime to close the socket once the queued bytes
    /// (e.g. an `-ERR`) are written; without, the runtime closed it already.
    fn shut_client(&mut self, index: usize, reason: CloseReason, tell_runtime: bool) {
        let client = self.client_mut(index);
        if client.closing {
            return;
        }
        client.closing = true;
        let id = client.id;
        let keys: Vec<SubKey> = client.subs.values().copied().collect();
        let stalled = std::mem::take(&mut client.stalled_publishers);
        for key in keys {
            self.remove_sub(key);
        }
        for publisher in stalled {
            self.resume(publisher);
        }
        self.open_clients -= 1;
        let client = self.client_ref(index);
        if client.counted {
            let account = client.account;
            self.accounts[account].stats.connections -= 1;
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
        let Some(sub) = self.subs[key.0 as usize].take() else {
            return;
        };
        self.free_subs.push(key.0);
        self.accounts[sub.account as usize]
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), key);
        if let Some(client) = self.slots[sub.client.index()].client.as_mut() {
            client.subs.remove(&sub.sid);
        }
    }

    fn send(&mut self, index: usize, bytes: &[u8]) {
        self.send_parts(index, &[bytes]);
    }

    fn send_parts(&mut self, index: usize, parts: &[&[u8]]) {
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
        if !client.closing && client.out.len() as u64 > self.opts.max_pending {
            self.slow_consumer(index);
        }
    }

    fn send_error(&mut self, index: usize, error: ClientError) {
        self.send_error_text(index, error.text());
    }

    fn send_error_text(&mut self, index: usize, text: &str) {
        self.send_parts(index, &[b"-ERR '", text.as_bytes(), b"'\r\n"]);
    }

    fn info_line(&self, index: usize, connect_info: bool) -> Vec<u8> {
        let client = self.client_ref(index);
        Info {
            server_id: &self.server_id,
            server_name: &self.server_name,
            version: PROTOCOL_VERSION,
            proto: 1,
            go: concat!("tenet ", env!("CARGO_PKG_VERSION")),
            host: &self.opts.host,
            port: self.port,
            headers: true,
            max_payload: client.max_payload,
            auth_required: self.users.auth_required(),
            client_id: Some(client.cid),
            client_ip: Some(&client.peer.ip),
            nonce: client.nonce.as_deref(),
            connect_info,
            remote_account: connect_info.then_some(self.accounts[client.account].name.as_str()),
        }
        .to_line()
    }

    fn log_client(&mut self, index: usize, level: Level, text: &str) {
        let enabled = match level {
            Level::Trace => self.opts.trace,
            Level::Debug => self.opts.debug,
            _ => true,
        };
        if enabled {
            let c = self.client_ref(index);
            let line = format!("{}:{} - cid:{} - {text}", c.peer.ip, c.peer.port, c.cid);
            self.events.push_back(Event::Log(level, line));
        }
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

/// A monitoring port as the configuration writes it (0: none, -1: any).
fn config_http_port(port: Option<u16>) -> String {
    match port {
        None => "0".to_string(),
        Some(0) => "-1".to_string(),
        Some(p) => p.to_string(),
    }
}

/// The trace of what is sent: its first line, e.g. `->> [PONG]`, `->> [MSG foo 1 2]`.
fn outbound_trace(parts: &[&[u8]]) -> String {
    let bytes = parts.concat();
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    format!("->> [{}]", String::from_utf8_lossy(line))
}

/// One delivery as the subscriber receives it:
/// `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`, or `HMSG` with the
/// header size before the total.
struct Delivery<'a> {
    keyword: &'static [u8],
    subject: &'a [u8],
    sid: &'a [u8],
    reply: Option<&'a [u8]>,
    header_size: Option<&'a [u8]>,
    size: &'a [u8],
    payload: &'a [u8],
}

impl Delivery<'_> {
    /// Its length in bytes.
    fn len(&self) -> usize {
        let optional = |token: Option<&[u8]>| token.map_or(0, |t| t.len() + 1);
        self.keyword.len()
            + self.subject.len()
            + 1
            + self.sid.len()
            + 1
            + optional(self.reply)
            + optional(self.header_size)
            + self.size.len()
            + 2
            + self.payload.len()
            + 2
    }

    /// Appends it to `out`, straight into the outbound chunk (no list of
    /// pieces in between, which costs more than the copying).
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword);
        out.extend_from_slice(self.subject);
        out.push(b' ');
        out.extend_from_slice(self.sid);
        out.push(b' ');
        for token in [self.reply, self.header_size].into_iter().flatten() {
            out.extend_from_slice(token);
            out.push(b' ');
        }
        out.extend_from_slice(self.size);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.payload);
        out.extend_from_slice(b"\r\n");
    }
}

/// Queue names are single tokens of any non-whitespace bytes.
fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|b| b.is_ascii_whitespace())
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
