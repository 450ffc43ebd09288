//! nats-server's HTTP monitoring endpoints, rendered from the engine's own state: `/varz`, `/connz`, `/subsz`, `/accountz`, `/healthz` and the `/` index.
//!
//! The runtime serves HTTP; for each GET it calls [`Server::monitor`] with the
//! path, the query, the engine's time and what it knows of the process (the
//! wall-clock time, memory, CPU), and writes back the answer. The JSON has
//! nats-server 2.9.10's field names, order and shapes (pretty-printed the
//! same way), so nats-top, the Prometheus exporter and scripts written for
//! nats-server read it unchanged. Only counters the engine keeps anyway are
//! read: monitoring adds no work per message.
//!
//! `/connz?state=closed` (and `state=all`) lists the last 10,000 closed
//! connections as nats-server does, from the records `closed` keeps.
//!
//! Not produced, because tenet does not have the feature: routes, gateways,
//! leaf nodes, JetStream, MQTT, websockets and TLS (their `/varz` sections and
//! endpoints), the system account's internal subscriptions and imports, and
//! Go runtime figures (`gomaxprocs`).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::closed::ClosedClient;
use super::{Client, Server, Subscription, PROTOCOL_VERSION, VERSION};
use crate::account::{Account, ResponseType, Target};
use crate::config::duration::format_duration as go_duration;
use crate::errors::CloseReason;
use crate::subject::{is_valid_literal_subject, subject_matches};
use crate::sublist::Sublist;
use crate::time::{rfc3339, Time};

/// What the runtime knows and the engine does not, for one monitoring request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MonitorHost {
    /// The wall-clock time of the request, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// The process's resident memory in bytes (`mem`; 0 if unknown).
    pub mem: u64,
    /// The process's CPU use in percent of one core (`cpu`).
    pub cpu: f64,
    /// CPU cores available to the process (`cores`).
    pub cores: u32,
}

/// The answer to one monitoring request, for the runtime to send as HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorResponse {
    /// HTTP status: 200, 400 (a bad query option) or 404 (an unknown path).
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body (JSON, HTML or an error text).
    pub body: String,
}

const JSON: &str = "application/json";
const JAVASCRIPT: &str = "application/javascript";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
/// Entries per page of `/connz` and `/subsz` unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 1024;

impl Server {
    /// A new monitoring connection's TLS session, when the monitoring port
    /// speaks HTTPS (`https_port`); the runtime passes its bytes through it
    /// ([`crate::tls::TlsSession`]).
    pub fn monitor_tls(&self) -> Option<crate::tls::TlsSession> {
        match (&self.tls, self.opts.https()) {
            (Some(Ok(acceptor)), true) => acceptor.https_session(),
            _ => None,
        }
    }

    /// Answers a monitoring request: `path` as requested (`/connz`), `query`
    /// the text after `?` (may be empty). `now` is the engine's time and
    /// `host.unix_nanos` the wall-clock time of the same instant; times in
    /// the answers are wall-clock times derived from the two (the engine's
    /// start is [`Time::ZERO`]). With an `http_base_path`, every endpoint is
    /// under it (`<base>/varz`, the index at `<base>` itself) and nothing
    /// else answers, as in nats-server. Unknown paths get a 404, bad query
    /// options a 400 with nats-server's message.
    pub fn monitor(
        &mut self,
        path: &str,
        query: &str,
        now: Time,
        host: &MonitorHost,
    ) -> MonitorResponse {
        let base = base_path(&self.opts.http_base_path);
        let path = if base == "/" {
            path
        } else {
            match path.strip_prefix(base.as_str()) {
                Some("") => "/",
                // `<base>/` is not the index: nats-server's mux matches `<base>` exactly.
                Some(rest) if rest.starts_with('/') && rest != "/" => rest,
                _ => "",
            }
        };
        let endpoint = match path {
            "/" => "/",
            "/varz" => "/varz",
            "/connz" => "/connz",
            "/subsz" => "/subsz",
            "/subscriptionsz" => "/subscriptionsz",
            "/accountz" => "/accountz",
            "/healthz" => "/healthz",
            "/jsz" => "/jsz",
            _ => return response(404, TEXT, "404 page not found".to_string()),
        };
        self.input_time = now;
        *self.http_requests.entry(endpoint).or_default() += 1;
        let origin = *self
            .wall_origin
            .get_or_insert_with(|| host.unix_nanos.saturating_sub(now.as_nanos()));
        let clock = Clock {
            now,
            unix_nanos: host.unix_nanos,
            origin,
        };
        let query = Query::parse(query);
        let answer = match endpoint {
            "/" => Ok(response(200, HTML, index(&base))),
            "/varz" => Ok(json(&self.varz(&clock, host))),
            "/connz" => self.connz(&query, &clock).map(|c| json(&c)),
            "/subsz" | "/subscriptionsz" => self.subsz(&query, &clock),
            "/accountz" => self.accountz(&query, &clock).map(|a| json(&a)),
            "/jsz" => self.jsz(&query, &clock).map(|j| json(&j)),
            _ => Ok(response(200, JSON, r#"{"status":"ok"}"#.to_string())),
        };
        let mut answer = answer.unwrap_or_else(|error| error);
        // JSONP, as nats-server answers `?callback=fn`: `fn(<json>)` as
        // JavaScript, for every JSON answer (not for errors).
        if let Some(callback) = query.get("callback").filter(|c| !c.is_empty()) {
            if answer.status == 200 && answer.content_type == JSON {
                answer.body = format!("{callback}({})", answer.body);
                answer.content_type = JAVASCRIPT;
            }
        }
        answer
    }

    /// Server-wide JetStream numbers, as `/jsz` and `/varz` carry them.
    fn js_totals(&self) -> JsTotals {
        let mut t = JsTotals::default();
        for js in self.accounts.iter().filter_map(|a| a.jetstream.as_ref()) {
            let (memory, storage) = js.usage();
            t.memory += memory;
            t.storage += storage;
            t.accounts += 1;
            let (total, errors) = js.api_counts();
            t.api.total += total;
            t.api.errors += errors;
            for stream in js.streams() {
                let state = stream.store().state();
                t.streams += 1;
                t.messages += state.messages;
                t.bytes += state.bytes;
            }
        }
        t
    }

    fn js_config(&self) -> JsConfig {
        let js = self.opts.jetstream.clone().unwrap_or_default();
        JsConfig {
            max_memory: js.max_memory.unwrap_or(0),
            max_storage: js.max_store.unwrap_or(0),
            store_dir: js.store_dir,
        }
    }

    fn jsz(&self, query: &Query, clock: &Clock) -> Result<Jsz<'_>, MonitorResponse> {
        let accounts = query.bool("accounts")?;
        let streams = query.bool("streams")?;
        let t = self.js_totals();
        let account_details = if accounts || streams {
            self.accounts
                .iter()
                .filter_map(|a| Some((a, a.jetstream.as_ref()?)))
                .map(|(a, js)| {
                    let (memory, storage) = js.usage();
                    let (total, errors) = js.api_counts();
                    let stream_detail = streams.then(|| {
                        js.streams()
                            .map(|s| StreamDetail {
                                name: s.config().name.clone(),
                                created: crate::time::rfc3339(s.created()),
                                state: JsState::of(&s.store().state()),
                            })
                            .collect()
                    });
                    AccountDetail {
                        name: &a.name,
                        id: &a.name,
                        memory,
                        storage,
                        // nats-server 2.9.10 prints -1 as an unsigned number here.
                        reserved_memory: u64::MAX,
                        reserved_storage: u64::MAX,
                        accounts: 0,
                        ha_assets: 0,
                        api: JsApi { total, errors },
                        stream_detail,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Jsz {
            server_id: &self.server_id,
            now: clock.text(clock.now),
            disabled: self.opts.jetstream.is_none(),
            config: self.js_config(),
            memory: t.memory,
            storage: t.storage,
            reserved_memory: 0,
            reserved_storage: 0,
            accounts: t.accounts,
            ha_assets: 0,
            api: t.api,
            streams: t.streams,
            consumers: 0,
            messages: t.messages,
            bytes: t.bytes,
            account_details,
        })
    }

    fn varz<'a>(&'a self, clock: &Clock, host: &MonitorHost) -> Varz<'a> {
        let opts = &self.opts;
        let stats = self.stats;
        let http_port = match self.http_port {
            0 => opts.monitor().ok().flatten().map_or(0, |(port, _)| port),
            bound => bound,
        };
        Varz {
            server_id: &self.server_id,
            server_name: &self.server_name,
            version: PROTOCOL_VERSION,
            proto: 1,
            go: concat!("tenet ", env!("CARGO_PKG_VERSION")),
            host: &opts.host,
            port: self.port,
            auth_required: self.users.auth_required(),
            tls_required: self.tls.is_some() && !opts.allow_non_tls,
            tls_verify: matches!(&self.tls, Some(Ok(t)) if t.verify()),
            max_connections: opts.max_connections,
            ping_interval: duration_nanos(opts.ping_interval),
            ping_max: opts.ping_max,
            http_host: opts.http_host(),
            http_port: if opts.https() { 0 } else { http_port },
            http_base_path: &opts.http_base_path,
            https_port: if opts.https() { http_port } else { 0 },
            auth_timeout: self.users.timeout().as_secs_f64(),
            max_control_line: opts.max_control_line,
            max_payload: opts.max_payload,
            max_pending: opts.max_pending,
            tls_timeout: opts
                .tls
                .as_ref()
                .map_or(crate::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout())
                .as_secs_f64(),
            write_deadline: duration_nanos(opts.write_deadline),
            start: clock.text(Time::ZERO),
            now: clock.text(clock.now),
            uptime: uptime(clock.since(Time::ZERO)),
            mem: host.mem,
            cores: host.cores,
            cpu: host.cpu,
            connections: self.open_clients,
            total_connections: stats.total_connections,
            routes: 0,
            remotes: 0,
            leafnodes: 0,
            in_msgs: stats.in_msgs,
            out_msgs: stats.out_msgs,
            in_bytes: stats.in_bytes,
            out_bytes: stats.out_bytes,
            slow_consumers: stats.slow_consumers,
            subscriptions: self.num_subscriptions(),
            http_req_stats: &self.http_requests,
            config_load_time: clock.text(self.config_loaded),
            system_account: self.system_account.as_deref(),
            jetstream: self.opts.jetstream.as_ref().map(|_| {
                let t = self.js_totals();
                VarzJetStream {
                    config: self.js_config(),
                    stats: JsStats {
                        memory: t.memory,
                        storage: t.storage,
                        reserved_memory: 0,
                        reserved_storage: 0,
                        accounts: t.accounts,
                        ha_assets: 0,
                        api: t.api,
                    },
                }
            }),
        }
    }

    fn connz<'a>(&'a self, query: &Query, clock: &Clock) -> Result<Connz<'a>, MonitorResponse> {
        // The options in the order nats-server decodes them (the first bad
        // one is the answer).
        let auth = query.bool("auth")?;
        let detail = query
            .get("subs")
            .is_some_and(|s| s.eq_ignore_ascii_case("detail"));
        let subs = detail || query.bool("subs")?;
        let (offset, limit) = query.paging()?;
        let cid = query.uint("cid")?.filter(|&cid| cid > 0);
        let state = match query.get("state") {
            None => State::Open,
            Some(text) => match text.to_ascii_lowercase().as_str() {
                "open" => State::Open,
                "closed" => State::Closed,
                "any" | "all" => State::All,
                _ => return Err(bad_request(format!("Error decoding state for {text}"))),
            },
        };
        let sort = query.get("sort").unwrap_or("cid");
        if !matches!(
            sort,
            "cid"
                | "start"
                | "subs"
                | "pending"
                | "msgs_to"
                | "msgs_from"
                | "bytes_to"
                | "bytes_from"
                | "last"
                | "idle"
                | "uptime"
                | "stop"
                | "reason"
        ) {
            return Err(bad_request(format!("invalid sorting option: {sort}")));
        }
        if matches!(sort, "stop" | "reason") && state != State::Closed {
            return Err(bad_request(format!(
                "sort by {sort} only valid on closed connections"
            )));
        }
        // Asking for one connection asks for a page of one.
        let limit = if cid.is_some() { 1 } else { limit };
        let account = query.get("acc");
        let user = query.get("user");
        let now = clock.now;
        let mut answer = Connz {
            server_id: &self.server_id,
            now: clock.text(now),
            num_connections: 0,
            total: 0,
            offset,
            limit,
            connections: Vec::new(),
        };
        if account.is_some_and(|a| !self.account_index.contains_key(a)) {
            return Ok(answer);
        }

        // Open connections by cid, then closed ones in the order they closed.
        let mut open: Vec<&Client> = Vec::new();
        if state != State::Closed {
            open = self
                .slots
                .iter()
                .filter_map(|slot| slot.client.as_ref())
                .filter(|c| !c.closing)
                .filter(|c| account.is_none_or(|a| self.account_of(c).is_some_and(|n| n == a)))
                .collect();
            open.sort_by_key(|c| c.cid);
        }
        let mut closed: Vec<&ClosedClient> = Vec::new();
        if state != State::Open {
            closed = self
                .closed
                .iter()
                .filter(|c| account.is_none_or(|a| c.account() == Some(a)))
                .collect();
        }
        // As nats-server: the total counts the connections in the state (and
        // account) asked for; the cid and user filters do not lower it.
        answer.total = open.len() + closed.len();
        if let Some(cid) = cid {
            // An open connection first, else a closed one (as nats-server
            // 2.10+; 2.9.10 looks only at closed ones when both are asked for).
            open.retain(|c| c.cid == cid);
            if open.is_empty() {
                closed.retain(|c| c.cid == cid);
                closed.truncate(1);
            } else {
                closed.clear();
            }
        } else if let Some(user) = user {
            open.retain(|c| c.user.as_deref() == Some(user));
            closed.retain(|c| c.user() == Some(user));
        }
        let mut conns: Vec<Conn<'a>> = open
            .into_iter()
            .map(Conn::Open)
            .chain(closed.into_iter().map(Conn::Closed))
            .collect();
        // Stable sorts: equal keys keep the order above.
        match sort {
            "cid" | "start" => conns.sort_by_key(|c| c.cid()),
            "subs" => conns.sort_by_key(|c| Reverse(c.num_subs())),
            "pending" => conns.sort_by_key(|c| Reverse(c.pending())),
            "msgs_to" => conns.sort_by_key(|c| Reverse(c.counters().out_msgs)),
            "msgs_from" => conns.sort_by_key(|c| Reverse(c.counters().in_msgs)),
            "bytes_to" => conns.sort_by_key(|c| Reverse(c.counters().out_bytes)),
            "bytes_from" => conns.sort_by_key(|c| Reverse(c.counters().in_bytes)),
            "last" => conns.sort_by_key(|c| Reverse(c.last_activity())),
            // The longest idle first: time since the last activity, as
            // nats-server 2.10+ (2.9.10 sorted by last activity minus start).
            "idle" => conns.sort_by_key(|c| Reverse(now.saturating_since(c.last_activity()))),
            // The shortest uptime first; a closed connection's ended at its stop.
            "uptime" => conns.sort_by_key(|c| c.end(now).saturating_since(c.start())),
            // The most recently closed first.
            "stop" => conns.sort_by_key(|c| Reverse(c.end(now))),
            "reason" => conns.sort_by_key(|c| c.reason().map(CloseReason::as_str)),
            _ => unreachable!("sort options are checked above"),
        }
        answer.connections = page(&conns, offset, limit)
            .iter()
            .map(|conn| match *conn {
                Conn::Open(c) => self.conn_info(c, clock, subs, detail, auth),
                Conn::Closed(c) => closed_info(c, clock, subs, detail, auth),
            })
            .collect();
        answer.num_connections = answer.connections.len();
        Ok(answer)
    }

    fn conn_info<'a>(
        &'a self,
        c: &'a Client,
        clock: &Clock,
        subs: bool,
        detail: bool,
        auth: bool,
    ) -> ConnInfo<'a> {
        let mut list: Vec<&Subscription> = c
            .subs
            .values()
            .filter_map(|key| self.subs[key.0 as usize].as_ref())
            .collect();
        list.sort_by(|a, b| sid_order(&a.sid, &b.sid));
        let (subscriptions_list, subscriptions_list_detail) = match (subs, detail) {
            (false, _) => (Vec::new(), Vec::new()),
            (true, false) => (list.iter().map(|s| lossy(&s.subject)).collect(), Vec::new()),
            (true, true) => (
                Vec::new(),
                list.iter()
                    .map(|s| SubDetail {
                        account: None,
                        subject: lossy(&s.subject),
                        qgroup: s.queue.as_deref().map(lossy),
                        sid: lossy(&s.sid),
                        msgs: s.delivered,
                        max: s.max,
                        cid: c.cid,
                    })
                    .collect(),
            ),
        };
        let account = self
            .account_of(c)
            .filter(|a| *a != crate::account::GLOBAL_ACCOUNT);
        let tls = c.tls.as_ref().and_then(|t| t.description());
        ConnInfo {
            cid: c.cid,
            kind: "Client",
            conn_type: "nats",
            ip: &c.peer.ip,
            port: c.peer.port,
            start: clock.text(c.start),
            last_activity: clock.text(c.last_activity),
            stop: None,
            reason: None,
            rtt: go_duration(c.rtt),
            uptime: uptime(clock.since(c.start)),
            idle: uptime(clock.since(c.last_activity)),
            pending_bytes: c.pending_len(),
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: c.subs.len(),
            name: c.opts.name.as_deref().unwrap_or_default(),
            lang: c.opts.lang.as_deref().unwrap_or_default(),
            version: c.opts.version.as_deref().unwrap_or_default(),
            tls_version: tls.as_ref().map_or("", |t| t.0),
            tls_cipher_suite: tls.map(|t| t.1.into()).unwrap_or_default(),
            // As nats-server: with `auth=1`, for open connections.
            tls_peer_certs: match (&c.tls, auth) {
                (Some(session), true) => session.peer_certs(),
                _ => Vec::new(),
            },
            authorized_user: if auth { c.user.as_deref() } else { None },
            account: if auth { account } else { None },
            subscriptions_list,
            subscriptions_list_detail,
        }
    }

    /// The account a client logged in to (`None` before it logged in).
    fn account_of(&self, c: &Client) -> Option<&str> {
        c.counted.then(|| self.accounts[c.account].name.as_str())
    }

    fn subsz(&self, query: &Query, clock: &Clock) -> Result<MonitorResponse, MonitorResponse> {
        let subs = query.bool("subs")?;
        let (offset, limit) = query.paging()?;
        let test = query.get("test");
        if let Some(test) = test.filter(|t| !is_valid_literal_subject(t.as_bytes())) {
            return Err(bad_request(format!(
                "Invalid test subject, must be valid publish subject: {test}"
            )));
        }
        let account = match query.get("acc") {
            Some(name) => match self.account_index.get(name) {
                Some(&i) => Some(i),
                None => return Err(bad_request(format!("Account {name} does not exist"))),
            },
            None => None,
        };
        let sublists: Vec<&Sublist> = match account {
            Some(i) => vec![&self.accounts[i].sublist],
            None => self.accounts.iter().map(|a| &a.sublist).collect(),
        };
        let stats = SublistStatsJson::of(&sublists);
        if !subs {
            return Ok(json(&stats));
        }
        let matching: Vec<&Subscription> = self
            .subs
            .iter()
            .flatten()
            .filter(|s| account.is_none_or(|a| s.account as usize == a))
            .filter(|s| test.is_none_or(|t| subject_matches(&s.subject, t.as_bytes())))
            .collect();
        let list = page(&matching, offset, limit)
            .iter()
            .map(|s| {
                let cid = self.slots[s.client.index()]
                    .client
                    .as_ref()
                    .map_or(0, |c| c.cid);
                SubDetail {
                    account: Some(self.accounts[s.account as usize].name.as_str()),
                    subject: lossy(&s.subject),
                    qgroup: s.queue.as_deref().map(lossy),
                    sid: lossy(&s.sid),
                    msgs: s.delivered,
                    max: s.max,
                    cid,
                }
            })
            .collect();
        Ok(json(&Subsz {
            server_id: &self.server_id,
            now: clock.text(clock.now),
            stats,
            total: matching.len(),
            offset,
            limit,
            subscriptions_list: list,
        }))
    }

    fn accountz<'a>(
        &'a self,
        query: &Query,
        clock: &Clock,
    ) -> Result<Accountz<'a>, MonitorResponse> {
        let mut answer = Accountz {
            server_id: &self.server_id,
            now: clock.text(clock.now),
            system_account: self.system_account.as_deref(),
            accounts: Vec::new(),
            account_detail: None,
        };
        match query.get("acc") {
            None => answer.accounts = self.accounts.iter().map(|a| a.name.as_str()).collect(),
            Some(name) => {
                let Some(&index) = self.account_index.get(name) else {
                    return Err(bad_request(format!("Account {name} does not exist")));
                };
                answer.account_detail = Some(self.account_info(index, clock));
            }
        }
        Ok(answer)
    }

    fn account_info(&self, index: usize, clock: &Clock) -> AccountInfo<'_> {
        let account: &Account = &self.accounts[index];
        let exports = account
            .exports
            .iter()
            .map(|e| ExportJson {
                subject: &e.subject,
                kind: if e.service { "service" } else { "stream" },
                response_type: e.service.then_some(match e.response {
                    ResponseType::Singleton => "Singleton",
                    ResponseType::Stream => "Streamed",
                    ResponseType::Chunked => "Chunked",
                }),
                approved_accounts: e.accounts.as_deref().unwrap_or_default(),
            })
            .collect();
        // Stream imports are kept by the exporter, service imports by the importer.
        let mut imports: Vec<ImportJson<'_>> = Vec::new();
        for exporter in &self.accounts {
            for route in exporter.streams_out.iter().filter(|r| r.importer == index) {
                imports.push(ImportJson {
                    subject: lossy(&route.source),
                    account: &exporter.name,
                    to: None,
                    local_subject: Some(match &route.target {
                        Target::Same => lossy(&route.source),
                        _ => String::from_utf8_lossy(&route.local_pattern()).into_owned(),
                    }),
                    kind: "stream",
                    invalid: false,
                    share: false,
                    tracking: false,
                });
            }
        }
        for route in account.services_in.iter() {
            imports.push(ImportJson {
                subject: lossy(&route.local),
                account: &self.accounts[route.exporter].name,
                to: Some(lossy(&route.remote)),
                local_subject: None,
                kind: "service",
                invalid: false,
                share: false,
                tracking: false,
            });
        }
        AccountInfo {
            account_name: &account.name,
            update_time: clock.text(self.config_loaded),
            is_system: self.system_account.as_deref() == Some(account.name.as_str()),
            expired: false,
            complete: true,
            jetstream_enabled: account.jetstream.is_some(),
            leafnode_connections: 0,
            client_connections: account.stats.connections,
            subscriptions: account.sublist.len(),
            exports,
            imports,
            sublist_stats: SublistStatsJson::of(&[&account.sublist]),
        }
    }
}

/// The connections `/connz` lists (`state=`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    All,
}

/// An open or a closed connection, as `/connz` sorts and lists them.
#[derive(Clone, Copy)]
enum Conn<'a> {
    Open(&'a Client),
    Closed(&'a ClosedClient),
}

/// The message and byte counters of a connection.
struct Counters {
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
}

impl Conn<'_> {
    fn cid(&self) -> u64 {
        match self {
            Conn::Open(c) => c.cid,
            Conn::Closed(c) => c.cid,
        }
    }

    fn num_subs(&self) -> usize {
        match self {
            Conn::Open(c) => c.subs.len(),
            Conn::Closed(c) => c.num_subs(),
        }
    }

    fn pending(&self) -> usize {
        match self {
            Conn::Open(c) => c.pending_len(),
            Conn::Closed(c) => c.pending_bytes,
        }
    }

    fn counters(&self) -> Counters {
        match self {
            Conn::Open(c) => Counters {
                in_msgs: c.in_msgs,
                out_msgs: c.out_msgs,
                in_bytes: c.in_bytes,
                out_bytes: c.out_bytes,
            },
            Conn::Closed(c) => Counters {
                in_msgs: c.in_msgs,
                out_msgs: c.out_msgs,
                in_bytes: c.in_bytes,
                out_bytes: c.out_bytes,
            },
        }
    }

    fn start(&self) -> Time {
        match self {
            Conn::Open(c) => c.start,
            Conn::Closed(c) => c.start,
        }
    }

    fn last_activity(&self) -> Time {
        match self {
            Conn::Open(c) => c.last_activity,
            Conn::Closed(c) => c.last_activity,
        }
    }

    /// When it closed, or `now` if it is open.
    fn end(&self, now: Time) -> Time {
        match self {
            Conn::Open(_) => now,
            Conn::Closed(c) => c.stop,
        }
    }

    fn reason(&self) -> Option<CloseReason> {
        match self {
            Conn::Open(_) => None,
            Conn::Closed(c) => Some(c.reason),
        }
    }
}

/// A closed connection as nats-server lists it: the figures as they were
/// when it closed (`uptime` and `idle` end at `stop`), the user and account
/// it kept (with `auth`), and its subscriptions, whose details name the
/// account, `$G` included, and never a `max` (nats-server clears it when
/// closing).
fn closed_info<'a>(
    c: &'a ClosedClient,
    clock: &Clock,
    subs: bool,
    detail: bool,
    auth: bool,
) -> ConnInfo<'a> {
    let mut list: Vec<_> = if subs { c.subs().collect() } else { Vec::new() };
    list.sort_by(|a, b| sid_order(a.sid, b.sid));
    let (subscriptions_list, subscriptions_list_detail) = match (subs, detail) {
        (false, _) => (Vec::new(), Vec::new()),
        (true, false) => (list.iter().map(|s| lossy(s.subject)).collect(), Vec::new()),
        (true, true) => (
            Vec::new(),
            list.iter()
                .map(|s| SubDetail {
                    account: Some(c.account_name()),
                    subject: lossy(s.subject),
                    qgroup: s.queue.map(lossy),
                    sid: lossy(s.sid),
                    msgs: s.msgs,
                    max: 0,
                    cid: c.cid,
                })
                .collect(),
        ),
    };
    ConnInfo {
        cid: c.cid,
        kind: "Client",
        conn_type: "nats",
        ip: c.ip(),
        port: c.port,
        start: clock.text(c.start),
        last_activity: clock.text(c.last_activity),
        stop: Some(clock.text(c.stop)),
        reason: Some(c.reason.as_str()),
        rtt: go_duration(c.rtt()),
        uptime: uptime(c.stop.saturating_since(c.start)),
        idle: uptime(c.stop.saturating_since(c.last_activity)),
        pending_bytes: c.pending_bytes,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.num_subs(),
        name: c.name(),
        lang: c.lang(),
        version: c.version(),
        tls_version: c.tls().0,
        tls_cipher_suite: c.tls().1.into(),
        tls_peer_certs: Vec::new(),
        authorized_user: if auth { c.user() } else { None },
        account: if auth { c.account() } else { None },
        subscriptions_list,
        subscriptions_list_detail,
    }
}

// ----- the JSON shapes (nats-server's field names and order) -------------------

#[derive(Serialize)]
struct Varz<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'a str,
    proto: u32,
    go: &'a str,
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "is_false")]
    auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_verify: bool,
    max_connections: u32,
    /// Nanoseconds, as Go encodes a duration.
    ping_interval: u64,
    ping_max: u32,
    http_host: &'a str,
    http_port: u16,
    http_base_path: &'a str,
    https_port: u16,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    auth_timeout: f64,
    max_control_line: u32,
    max_payload: u32,
    max_pending: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jetstream: Option<VarzJetStream>,
    /// Seconds (nats-server reports its default without TLS too).
    #[serde(serialize_with = "go_float")]
    tls_timeout: f64,
    /// Nanoseconds.
    write_deadline: u64,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: u32,
    #[serde(serialize_with = "go_float")]
    cpu: f64,
    connections: usize,
    total_connections: u64,
    routes: u32,
    remotes: u32,
    leafnodes: u32,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    slow_consumers: u64,
    subscriptions: usize,
    http_req_stats: &'a BTreeMap<&'static str, u64>,
    config_load_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<&'a str>,
}

#[derive(Default)]
struct JsTotals {
    memory: u64,
    storage: u64,
    accounts: u64,
    api: JsApi,
    streams: u64,
    messages: u64,
    bytes: u64,
}

#[derive(Serialize, Default, Clone, Copy)]
struct JsApi {
    total: u64,
    errors: u64,
}

#[derive(Serialize)]
struct JsConfig {
    max_memory: i64,
    max_storage: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_dir: Option<String>,
}

#[derive(Serialize)]
struct JsStats {
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
}

#[derive(Serialize)]
struct VarzJetStream {
    config: JsConfig,
    stats: JsStats,
}

#[derive(Serialize)]
struct Jsz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "is_false")]
    disabled: bool,
    config: JsConfig,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
    streams: u64,
    consumers: u64,
    messages: u64,
    bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    account_details: Vec<AccountDetail<'a>>,
}

#[derive(Serialize)]
struct AccountDetail<'a> {
    name: &'a str,
    id: &'a str,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_detail: Option<Vec<StreamDetail>>,
}

#[derive(Serialize)]
struct StreamDetail {
    name: String,
    created: String,
    state: JsState,
}

/// A stream's `state`, in nats-server's field order.
#[derive(Serialize)]
struct JsState {
    messages: u64,
    bytes: u64,
    first_seq: u64,
    first_ts: String,
    last_seq: u64,
    last_ts: String,
    #[serde(skip_serializing_if = "is_zero")]
    num_subjects: u64,
    #[serde(skip_serializing_if = "is_zero")]
    num_deleted: u64,
    consumer_count: u64,
}

impl JsState {
    fn of(state: &crate::jetstream::store::State) -> JsState {
        let time = |t: u64| {
            if t == 0 {
                crate::jetstream::stream::ZERO_TIME.to_string()
            } else {
                crate::time::rfc3339(t)
            }
        };
        JsState {
            messages: state.messages,
            bytes: state.bytes,
            first_seq: state.first_seq,
            first_ts: time(state.first_time),
            last_seq: state.last_seq,
            last_ts: time(state.last_time),
            num_subjects: state.num_subjects,
            num_deleted: state.num_deleted,
            consumer_count: 0,
        }
    }
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
    connections: Vec<ConnInfo<'a>>,
}

#[derive(Serialize)]
struct ConnInfo<'a> {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    conn_type: &'static str,
    ip: &'a str,
    port: u16,
    start: String,
    last_activity: String,
    /// When a closed connection closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    /// Why a closed connection closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    lang: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    tls_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    tls_cipher_suite: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_peer_certs: Vec<crate::tls::PeerCert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail<'a>>,
}

#[derive(Serialize)]
struct SubDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<String>,
    sid: String,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    cid: u64,
}

#[derive(Serialize)]
struct SublistStatsJson {
    num_subscriptions: usize,
    num_cache: usize,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    #[serde(serialize_with = "go_float")]
    cache_hit_rate: f64,
    max_fanout: usize,
    #[serde(serialize_with = "go_float")]
    avg_fanout: f64,
}

impl SublistStatsJson {
    /// The counters of several subject spaces added up, as nats-server does
    /// for `/subsz`: rates and averages over the totals.
    fn of(sublists: &[&Sublist]) -> SublistStatsJson {
        let mut total = SublistStatsJson {
            num_subscriptions: 0,
            num_cache: 0,
            num_inserts: 0,
            num_removes: 0,
            num_matches: 0,
            cache_hit_rate: 0.0,
            max_fanout: 0,
            avg_fanout: 0.0,
        };
        let (mut hits, mut fanout) = (0u64, 0usize);
        for sublist in sublists {
            let st = sublist.stats();
            let (max, sum) = sublist.cache_fanout();
            total.num_subscriptions += st.num_subscriptions;
            total.num_cache += st.num_cache;
            total.num_inserts += st.num_inserts;
            total.num_removes += st.num_removes;
            total.num_matches += st.num_matches;
            total.max_fanout = total.max_fanout.max(max);
            hits += st.cache_hits;
            fanout += sum;
        }
        if total.num_matches > 0 {
            total.cache_hit_rate = hits as f64 / total.num_matches as f64;
        }
        if total.num_cache > 0 {
            total.avg_fanout = fanout as f64 / total.num_cache as f64;
        }
        total
    }
}

#[derive(Serialize)]
struct Subsz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(flatten)]
    stats: SublistStatsJson,
    total: usize,
    offset: usize,
    limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<SubDetail<'a>>,
}

#[derive(Serialize)]
struct Accountz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    accounts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountInfo<'a>>,
}

#[derive(Serialize)]
struct AccountInfo<'a> {
    account_name: &'a str,
    update_time: String,
    #[serde(skip_serializing_if = "is_false")]
    is_system: bool,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: u32,
    client_connections: u32,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportJson<'a>>,
    sublist_stats: SublistStatsJson,
}

#[derive(Serialize)]
struct ExportJson<'a> {
    subject: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    approved_accounts: &'a [String],
}

#[derive(Serialize)]
struct ImportJson<'a> {
    subject: String,
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_subject: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

/// A float as Go writes it: a whole number without a fraction (`2`, not `2.0`).
fn go_float<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f64(*value)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Numeric sids in numeric order, then the others by their bytes.
fn sid_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let number = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u64>().ok();
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn page<T: Copy>(items: &[T], offset: usize, limit: usize) -> &[T] {
    let start = offset.min(items.len());
    let end = offset.saturating_add(limit).min(items.len());
    &items[start..end]
}

fn json<T: Serialize>(value: &T) -> MonitorResponse {
    let body = serde_json::to_string_pretty(value).expect("monitoring JSON serializes");
    response(200, JSON, body)
}

fn response(status: u16, content_type: &'static str, body: String) -> MonitorResponse {
    MonitorResponse {
        status,
        content_type,
        body,
    }
}

fn bad_request(text: String) -> MonitorResponse {
    response(400, TEXT, text)
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Converts engine times to wall-clock times.
struct Clock {
    now: Time,
    /// The wall-clock time of `now`.
    unix_nanos: u64,
    /// The wall-clock time of `Time::ZERO`, fixed once, so that a time (the
    /// start, a connection's start) reads the same in every answer.
    origin: u64,
}

impl Clock {
    fn since(&self, t: Time) -> Duration {
        self.now.saturating_since(t)
    }

    /// `now` as the runtime's clock says, anything else from the fixed origin.
    fn text(&self, t: Time) -> String {
        if t == self.now {
            rfc3339(self.unix_nanos)
        } else {
            rfc3339(self.origin.saturating_add(t.as_nanos()))
        }
    }
}

/// nats-server's uptime form: `1y2d3h4m5s`, leading zero units left out.
fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    if years > 0 {
        format!(
            "{years}y{}d{}h{}m{}s",
            days % 365,
            hours % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hours % 24, mins % 60, secs % 60)
    } else if hours > 0 {
        format!("{hours}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// An `http_base_path` as nats-server normalises it (Go's `path.Clean` of
/// the path with a leading `/`): `""` and `"/"` are `"/"`, `"nats/"` is
/// `"/nats"`, `"/a//b/./c/../"` is `"/a/b"`.
pub(crate) fn base_path(configured: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in configured.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The `/` page (at the base path): links to the endpoints, like
/// nats-server's. The links are relative to the page, so they also work
/// behind a proxy that adds a prefix: the page is at `<base>` (no trailing
/// slash), so a link is `./<last part of base>/varz`, or `./varz` at the
/// root. (nats-server writes `./<whole base>/varz`, which reaches the right
/// place only for a one-part base.)
fn index(base: &str) -> String {
    let dir = match base.rsplit('/').next() {
        Some(last) if !last.is_empty() => format!("./{last}/"),
        _ => "./".to_string(),
    };
    format!(
        r#"<html lang="en">
  <head>
    <title>tenet monitoring</title>
    <style type="text/css">
      body {{ font-family: ui-sans-serif, system-ui, sans-serif; margin-left: 32px }}
      a {{ display: block; margin-left: 7px; padding-bottom: 6px }}
    </style>
  </head>
  <body>
    <h2>tenet v{version}</h2>
    <p>NATS protocol of nats-server {protocol}</p>
    <a href={dir}varz>General</a>
    <a href={dir}connz>Connections</a>
    <a href={dir}accountz>Accounts</a>
    <a href={dir}subsz>Subscriptions</a>
    <a href={dir}healthz>Health Probe</a>
    <a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring>Help</a>
  </body>
</html>
"#,
        version = VERSION,
        protocol = PROTOCOL_VERSION,
    )
}

/// A URL query, decoded as Go's `url.ParseQuery` does (`+` is a space, `%XX`
/// a byte; a pair with a bad escape is dropped).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(text: &str) -> Query {
        let pairs = text
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                Some((unescape(k)?, unescape(v)?))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`; an empty value counts as absent (as in nats-server).
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A boolean the way Go's `strconv.ParseBool` reads it; absent is false.
    fn bool(&self, key: &str) -> Result<bool, MonitorResponse> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(other) => Err(bad_request(format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing {other:?}: invalid syntax"
            ))),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, MonitorResponse> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        text.parse::<i64>().map(Some).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            bad_request(format!(
                "Error decoding int for '{key}': strconv.Atoi: parsing {text:?}: {why}"
            ))
        })
    }

    /// An unsigned number the way Go's `strconv.ParseUint` reads it (no sign).
    fn uint(&self, key: &str) -> Result<Option<u64>, MonitorResponse> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        let digits = text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u64>() {
            Ok(n) if digits => Ok(Some(n)),
            _ => {
                let why = if digits {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                Err(bad_request(format!(
                    "Error decoding uint64 for '{key}': strconv.ParseUint: parsing {text:?}: {why}"
                )))
            }
        }
    }

    /// `offset` (negative is 0) and `limit` (0 or negative is the default, 1024).
    fn paging(&self) -> Result<(usize, usize), MonitorResponse> {
        let offset = self.int("offset")?.unwrap_or(0).max(0);
        let limit = match self.int("limit")?.unwrap_or(0) {
            n if n <= 0 => DEFAULT_LIMIT as i64,
            n => n,
        };
        Ok((
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(limit).unwrap_or(usize::MAX),
        ))
    }
}

fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_are_written_as_go_writes_them() {
        assert_eq!(
            rfc3339(1_795_547_794_697_742_489),
            "2026-11-24T19:16:34.697742489Z"
        );
        assert_eq!(rfc3339(1_795_547_794_000_000_000), "2026-11-24T19:16:34Z");
        assert_eq!(rfc3339(1_795_547_794_500_000_000), "2026-11-24T19:16:34.5Z");
        assert_eq!(uptime(Duration::from_millis(999)), "0s");
        assert_eq!(uptime(Duration::from_secs(61)), "1m1s");
        assert_eq!(uptime(Duration::from_secs(3600 * 25 + 2)), "1d1h0m2s");
        assert_eq!(uptime(Duration::from_secs(86_400 * 366 + 3)), "1y1d0h0m3s");
        let go = |nanos: u64| go_duration(Duration::from_nanos(nanos));
        assert_eq!(go(0), "0s");
        assert_eq!(go(850), "850ns");
        assert_eq!(go(859_000), "859µs");
        assert_eq!(go(1_500), "1.5µs");
        assert_eq!(go(1_234_000), "1.234ms");
        assert_eq!(go(1_000_000_000), "1s");
        assert_eq!(go(123_500_000_000), "2m3.5s");
        assert_eq!(go(3_600_000_000_000), "1h0m0s");
    }

    #[test]
    fn base_paths_are_normalised_like_nats_server() {
        for (configured, normalised) in [
            ("", "/"),
            ("/", "/"),
            ("nats", "/nats"),
            ("/nats/", "/nats"),
            ("nats/mon/", "/nats/mon"),
            ("//a//b/./c/../", "/a/b"),
            ("/../x/..", "/"),
        ] {
            assert_eq!(base_path(configured), normalised, "{configured:?}");
        }
        assert!(index("/").contains("<a href=./varz>General</a>"));
        assert!(index("/nats").contains("<a href=./nats/connz>Connections</a>"));
        // The page is at /a/b: ./b/varz is /a/b/varz.
        assert!(index("/a/b").contains("<a href=./b/subsz>Subscriptions</a>"));
    }

    #[test]
    fn queries_are_decoded_like_go() {
        let q = Query::parse("acc=%24G&subs=1&auth=&x=a+b&bad=%zz&sort=idle&sort=cid");
        assert_eq!(q.get("acc"), Some("$G"));
        assert_eq!(q.get("x"), Some("a b"));
        assert_eq!(q.get("auth"), None);
        assert_eq!(q.get("bad"), None);
        assert_eq!(q.get("sort"), Some("idle"));
        assert_eq!(q.bool("subs"), Ok(true));
        assert_eq!(q.bool("auth"), Ok(false));
        assert_eq!(
            Query::parse("subs=x").bool("subs").unwrap_err().body,
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            Query::parse("offset=x").paging().unwrap_err().body,
            "Error decoding int for 'offset': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            Query::parse("offset=-3&limit=0").paging(),
            Ok((0, DEFAULT_LIMIT))
        );
        assert_eq!(Query::parse("offset=2&limit=5").paging(), Ok((2, 5)));
    }
}
