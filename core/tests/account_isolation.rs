//! Account isolation: the engine's deliveries checked against a naive model of
//! accounts, stream and service imports, and permissions.
//!
//! The property test draws configurations of 2-4 accounts (1-2 users each,
//! some with publish/subscribe permissions; stream and service exports and
//! imports over the subjects `a`, `b`, `c`, `x` and the wildcards `*`, `>`),
//! then drives the engine with random SUB, UNSUB, PUB, answers to received
//! requests, second CONNECTs and reconnects. Every publish carries a unique
//! payload, so each MSG can be attributed to the publish that caused it.
//! After every step the clients' output must be exactly what the model
//! predicts:
//!
//! - (a) every MSG is allowed by the model: same account, or through a
//!   declared import, to a subscription that matches the delivered subject and
//!   that the receiver's permissions let it have;
//! - (b) nothing the model says must be delivered is lost (each matching plain
//!   subscription gets one copy, each matching queue group one copy).
//!
//! The routing rules modelled are those `tenet_core::account` documents (as
//! nats-server): a stream import delivers one hop, once per matching import
//! (two overlapping imports deliver twice); a request follows the first
//! matching service import from account to account, with a fresh `_R_` reply
//! at each hop, and answers go back along the same hops (a singleton hop
//! passes one answer). Imports must be authorized by an export; the engine
//! may also refuse an import as a cycle (the model only checks that a loop of
//! imports exists at the account level).
//!
//! The model shares no code with the engine: its own token matcher, a subset
//! test by enumerating subjects, its own wildcard mapping, and plain loops
//! over lists of accounts, imports and subscriptions.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use tenet_core::config::options::{
    read_config, AccountConfig, Export, Import, Permissions, SubjectPermission, User,
};
use tenet_core::config::{parse, MapResolver};
use tenet_core::{Accounts, Auth, ClientId, Options, Peer, Server, Users};

mod support;

// ----- the fake runtime ---------------------------------------------------------

/// The shared fake runtime, which here must never see the engine close a client.
struct Sim {
    base: support::Sim,
}

impl Sim {
    fn new(auth: Auth) -> Sim {
        Sim {
            base: support::Sim::with_server(Server::with_auth(Options::default(), auth, 7)),
        }
    }

    /// Accepts a connection, checks its INFO, sends CONNECT and PING, and checks
    /// that it was admitted into `account` (PONG, then INFO naming it).
    fn connect(&mut self, user: &str, echo: bool, account: &str) -> ClientId {
        let peer = Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        };
        let id = self.base.server.accept(peer, self.base.now);
        self.base.pump();
        let frames = self.frames(id);
        assert!(
            matches!(frames.as_slice(), [Frame::Info(_)]),
            "on accept: {frames:?}"
        );
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"echo\":{echo},\
             \"user\":\"{user}\",\"pass\":\"pw\"}}\r\nPING\r\n"
        );
        self.send(id, connect.as_bytes());
        let frames = self.frames(id);
        let want = format!("\"remote_account\":\"{account}\"");
        match frames.as_slice() {
            [Frame::Pong, Frame::Info(info)] if info.contains(&want) => {}
            _ => panic!("{user} did not get into {account}: {frames:?}"),
        }
        id
    }

    fn send(&mut self, id: ClientId, bytes: &[u8]) {
        self.base.send(id, bytes);
        assert!(
            self.base.closed.is_empty(),
            "the engine closed {:?}",
            self.base.closed
        );
    }

    /// The peer went away.
    fn close(&mut self, id: ClientId) {
        self.base.disconnect(id);
        self.base.take(id);
    }

    /// Everything the client received since the last call, as frames.
    fn frames(&mut self, id: ClientId) -> Vec<Frame> {
        parse_frames(&self.base.take(id))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Frame {
    Info(String),
    Msg(Msg),
    Err(String),
    Ping,
    Pong,
    Ok,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    subject: String,
    sid: String,
    reply: Option<String>,
    payload: String,
}

/// Splits what a client received into frames; every byte must belong to one.
fn parse_frames(mut rest: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a complete line");
        let line = std::str::from_utf8(&rest[..end]).expect("UTF-8 line");
        rest = &rest[end + 2..];
        if let Some(args) = line.strip_prefix("MSG ") {
            let parts: Vec<&str> = args.split(' ').collect();
            let (subject, sid, reply, size) = match parts.as_slice() {
                [s, i, n] => (s, i, None, n),
                [s, i, r, n] => (s, i, Some(r.to_string()), n),
                _ => panic!("bad MSG line {line:?}"),
            };
            let n: usize = size.parse().expect("MSG size");
            assert_eq!(&rest[n..n + 2], b"\r\n", "payload not followed by CRLF");
            let payload = String::from_utf8(rest[..n].to_vec()).expect("UTF-8 payload");
            rest = &rest[n + 2..];
            frames.push(Frame::Msg(Msg {
                subject: subject.to_string(),
                sid: sid.to_string(),
                reply,
                payload,
            }));
        } else if let Some(text) = line.strip_prefix("-ERR '") {
            frames.push(Frame::Err(text.strip_suffix('\'').expect("quoted").into()));
        } else if line.starts_with("INFO {") {
            frames.push(Frame::Info(line.to_string()));
        } else {
            frames.push(match line {
                "PING" => Frame::Ping,
                "PONG" => Frame::Pong,
                "+OK" => Frame::Ok,
                _ => panic!("unexpected line {line:?}"),
            });
        }
    }
    frames
}

// ----- the naive model ------------------------------------------------------------

/// Whether `pattern` matches `subject`, whose tokens are all taken literally.
fn matches(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    if s.iter().any(|t| t.is_empty()) {
        return false;
    }
    for (i, pt) in p.iter().enumerate() {
        if *pt == ">" {
            return s.len() > i;
        }
        if i >= s.len() || (*pt != "*" && *pt != s[i]) {
            return false;
        }
    }
    p.len() == s.len()
}

/// Whether every subject `inner` matches is also matched by `outer`, decided
/// by trying every subject over the patterns' own tokens plus one other (`~`),
/// one token longer than the longer pattern: if the patterns differ anywhere,
/// they differ on one of these.
fn subset(inner: &str, outer: &str) -> bool {
    let mut alphabet = vec!["~"];
    for t in inner.split('.').chain(outer.split('.')) {
        if t != "*" && t != ">" && !alphabet.contains(&t) {
            alphabet.push(t);
        }
    }
    let longest = inner.split('.').count().max(outer.split('.').count()) + 1;
    let mut level = vec![String::new()];
    for _ in 0..longest {
        let mut next = Vec::new();
        for prefix in &level {
            for t in &alphabet {
                let s = if prefix.is_empty() {
                    t.to_string()
                } else {
                    format!("{prefix}.{t}")
                };
                if matches(inner, &s) && !matches(outer, &s) {
                    return false;
                }
                next.push(s);
            }
        }
        level = next;
    }
    true
}

fn is_literal(pattern: &str) -> bool {
    pattern.split('.').all(|t| t != "*" && t != ">")
}

/// `subject` (matched by `from`) rewritten onto `to`: the n-th wildcard of
/// `to` becomes what the n-th wildcard of `from` matched.
fn map(from: &str, to: &str, subject: &str) -> String {
    let f: Vec<&str> = from.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    let mut captures = Vec::new();
    for (i, t) in f.iter().enumerate() {
        if *t == "*" {
            captures.push(s[i].to_string());
        }
        if *t == ">" {
            captures.push(s[i..].join("."));
        }
    }
    let mut captures = captures.into_iter();
    to.split('.')
        .map(|t| {
            if t == "*" || t == ">" {
                captures.next().expect("as many wildcards")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Clone, Debug, Default)]
struct PermSpec {
    pub_allow: Vec<String>,
    pub_deny: Vec<String>,
    sub_allow: Vec<String>,
    sub_deny: Vec<String>,
}

impl PermSpec {
    fn can_publish(&self, subject: &str) -> bool {
        (self.pub_allow.is_empty() || self.pub_allow.iter().any(|e| matches(e, subject)))
            && !self.pub_deny.iter().any(|e| matches(e, subject))
    }

    /// A SUB is created if an allow entry covers all of it and no deny entry does.
    fn can_subscribe(&self, pattern: &str) -> bool {
        (self.sub_allow.is_empty() || self.sub_allow.iter().any(|e| subset(pattern, e)))
            && !self.sub_deny.iter().any(|e| subset(pattern, e))
    }

    /// A subscription that was created may not be given a denied subject.
    fn may_receive(&self, subject: &str) -> bool {
        !self.sub_deny.iter().any(|e| matches(e, subject))
    }

    fn config(&self) -> Permissions {
        let list = |allow: &[String], deny: &[String]| {
            (!allow.is_empty() || !deny.is_empty()).then(|| SubjectPermission {
                allow: allow.to_vec(),
                deny: deny.to_vec(),
                ..Default::default()
            })
        };
        Permissions {
            publish: list(&self.pub_allow, &self.pub_deny),
            subscribe: list(&self.sub_allow, &self.sub_deny),
            allow_responses: None,
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug)]
struct ExportSpec {
    service: bool,
    subject: String,
    /// Accounts allowed to import (indices); `None` = all.
    accounts: Option<Vec<usize>>,
    /// Service `response_type`: `None` (singleton), "stream" or "chunked".
    response: Option<&'static str>,
}

/// An import as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ImportM {
    service: bool,
    from: usize,
    subject: String,
    to: Option<String>,
    prefix: Option<String>,
    /// A service answers once (the export's response type is singleton).
    singleton: bool,
}

impl ImportM {
    /// A stream import: where a message on `subject` in the exporter lands.
    fn stream_target(&self, subject: &str) -> String {
        match (&self.prefix, &self.to) {
            (Some(p), _) => format!("{p}.{subject}"),
            (None, Some(to)) => map(&self.subject, to, subject),
            (None, None) => subject.to_string(),
        }
    }

    /// A service import: the subject requests are published on in the importer.
    fn local(&self) -> &str {
        self.to.as_deref().unwrap_or(&self.subject)
    }

    /// A service import: where a request on `subject` lands in the exporter.
    fn remote(&self, subject: &str) -> String {
        if is_literal(&self.subject) {
            self.subject.clone()
        } else {
            map(self.local(), &self.subject, subject)
        }
    }
}

struct UserM {
    account: usize,
    name: String,
    perms: Option<PermSpec>,
}

/// A checked configuration: only the imports the model authorizes.
struct World {
    /// Imports the engine refused as cycles (the model cannot tell which).
    refused_cycles: usize,
    names: Vec<String>,
    users: Vec<UserM>,
    exports: Vec<Vec<ExportSpec>>,
    imports: Vec<Vec<ImportM>>,
}

impl World {
    /// Whether adding an import of this kind from `importer` to `exporter`
    /// leaves some loop of imports (at the account level) reachable from
    /// `importer`. nats-server's check, which the engine follows, walks from
    /// the exporter and refuses the import on meeting any account twice.
    fn loop_reachable(&self, importer: usize, exporter: usize, service: bool) -> bool {
        let next = |a: usize| -> Vec<usize> {
            let mut n: Vec<usize> = self.imports[a]
                .iter()
                .filter(|i| i.service == service)
                .map(|i| i.from)
                .collect();
            if a == importer {
                n.push(exporter);
            }
            n
        };
        // A depth-first walk with the path on a stack: meeting an account on
        // the path is a loop.
        fn walk(a: usize, path: &mut Vec<usize>, next: &dyn Fn(usize) -> Vec<usize>) -> bool {
            if path.contains(&a) {
                return true;
            }
            path.push(a);
            let found = next(a).into_iter().any(|b| walk(b, path, next));
            path.pop();
            found
        }
        walk(importer, &mut Vec::new(), &next)
    }

    /// The first export that authorizes the import, if any.
    fn authorized(&self, importer: usize, import: &ImportM) -> Option<&ExportSpec> {
        self.exports[import.from].iter().find(|e| {
            e.service == import.service
                && subset(&import.subject, &e.subject)
                && e.accounts.as_ref().is_none_or(|l| l.contains(&importer))
        })
    }

    fn account_configs(&self, imports: &[Vec<ImportM>]) -> Vec<AccountConfig> {
        (0..self.names.len())
            .map(|a| AccountConfig {
                name: self.names[a].clone(),
                users: self
                    .users
                    .iter()
                    .filter(|u| u.account == a)
                    .map(|u| User {
                        name: Some(u.name.clone()),
                        password: Some("pw".into()),
                        permissions: u.perms.as_ref().map(PermSpec::config),
                        ..User::default()
                    })
                    .collect(),
                exports: self.exports[a]
                    .iter()
                    .map(|e| Export {
                        service: e.service,
                        subject: e.subject.clone(),
                        accounts: e
                            .accounts
                            .as_ref()
                            .map(|l| l.iter().map(|&i| self.names[i].clone()).collect()),
                        response_type: e.response.map(String::from),
                        response_threshold: None,
                        pos: None,
                    })
                    .collect(),
                imports: imports[a]
                    .iter()
                    .map(|i| Import {
                        service: i.service,
                        account: self.names[i.from].clone(),
                        subject: i.subject.clone(),
                        to: i.to.clone(),
                        prefix: i.prefix.clone(),
                        pos: None,
                    })
                    .collect(),
                ..AccountConfig::default()
            })
            .collect()
    }
}

/// One live connection as the model sees it.
struct Conn {
    id: ClientId,
    user: usize,
    account: usize,
    echo: bool,
    subs: Vec<SubM>,
    next_sid: u32,
    /// Reply subjects of the messages it received, to answer.
    replies: Vec<String>,
}

#[derive(Clone, Debug)]
struct SubM {
    sid: String,
    subject: String,
    queue: Option<String>,
}

/// A request with a reply that went through service imports: where each
/// hop delivered it, under which `_R_` reply (learned from the deliveries).
struct Request {
    origin: usize,
    reply: String,
    hops: Vec<Hop>,
}

struct Hop {
    /// The service's account at this hop.
    account: usize,
    /// The export answers once.
    singleton: bool,
    /// The `_R_` reply the request carried at this hop, once seen.
    token: Option<String>,
    /// The answer is still awaited here.
    open: bool,
}

/// How the reply subject of a delivery must look.
#[derive(Clone, Debug)]
enum ReplyM {
    /// As published.
    Same(Option<String>),
    /// A request at hop `hop` of a chain of service imports: an `_R_` reply
    /// (if the request had a reply) of request `req`.
    Service { req: Option<usize>, hop: usize },
}

/// A delivery's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SubjectM {
    Known(String),
    /// The `_R_` reply request `req` carried at hop `hop` (an answer going
    /// back through that hop's account), not seen yet.
    Token {
        req: usize,
        hop: usize,
    },
}

/// The message, delivered in `account` on `subject`.
#[derive(Clone, Debug)]
struct Delivery {
    account: usize,
    subject: SubjectM,
    reply: ReplyM,
}

/// What every unseen `_R_` subject looks like to the model's patterns, whose
/// literal tokens are single letters.
const SOME_TOKEN: &str = "_R_.~~~~~~.~~~~~~";

impl Delivery {
    fn subject<'a>(&'a self, requests: &'a [Request]) -> &'a str {
        match &self.subject {
            SubjectM::Known(s) => s,
            SubjectM::Token { req, hop } => requests[*req].hops[*hop]
                .token
                .as_deref()
                .unwrap_or(SOME_TOKEN),
        }
    }
}

/// What a run exercised, to check that the generator stays useful.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    imports: usize,
    msgs: usize,
    cross_account: usize,
    service_requests: usize,
    answers: usize,
    chained_requests: usize,
    refused_cycles: usize,
    refused_pubs: usize,
    refused_subs: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.imports += o.imports;
        self.msgs += o.msgs;
        self.cross_account += o.cross_account;
        self.service_requests += o.service_requests;
        self.answers += o.answers;
        self.chained_requests += o.chained_requests;
        self.refused_cycles += o.refused_cycles;
        self.refused_pubs += o.refused_pubs;
        self.refused_subs += o.refused_subs;
    }
}

struct Model {
    stats: Stats,
    world: World,
    sim: Sim,
    conns: Vec<Conn>,
    /// Requests that went through service imports with a reply.
    requests: Vec<Request>,
    /// `(request, hop)` by the `_R_` reply seen at that hop.
    tokens: HashMap<String, (usize, usize)>,
    /// The middle token of `_R_` replies, per requesting account.
    reply_prefixes: HashMap<usize, String>,
    next_payload: u64,
}

fn new_conn(sim: &mut Sim, world: &World, user: usize, echo: bool) -> Conn {
    let u = &world.users[user];
    let id = sim.connect(&u.name, echo, &world.names[u.account]);
    Conn {
        id,
        user,
        account: u.account,
        echo,
        subs: Vec::new(),
        next_sid: 1,
        replies: Vec::new(),
    }
}

impl Model {
    /// Patterns that matter to account `acc`: what it exports, where its
    /// imports deliver or take requests, and what others import from it.
    fn related(&self, acc: usize) -> Vec<String> {
        let w = &self.world;
        let mut out = vec![">".to_string()];
        out.extend(w.exports[acc].iter().map(|e| e.subject.clone()));
        for i in &w.imports[acc] {
            out.push(match (i.service, &i.prefix, &i.to) {
                (true, _, _) => i.local().to_string(),
                (false, Some(p), _) => format!("{p}.{}", i.subject),
                (false, None, Some(to)) => to.clone(),
                (false, None, None) => i.subject.clone(),
            });
        }
        for imports in &w.imports {
            out.extend(
                imports
                    .iter()
                    .filter(|i| i.from == acc)
                    .map(|i| i.subject.clone()),
            );
        }
        out
    }

    /// A SUB pattern (`literal` false) or a PUB subject for client `c`.
    fn resolve(&self, c: usize, choice: &SubjectChoice, literal: bool) -> String {
        match choice {
            SubjectChoice::Random(s) => s.clone(),
            SubjectChoice::Related(pick, choices) => {
                let related = self.related(self.conns[c].account);
                let pattern = &related[pick % related.len()];
                match choices.first().map_or(0, |c| c % 4) {
                    _ if literal => instantiate(pattern, &choices[1..]),
                    0 | 1 => pattern.clone(),
                    2 => narrow(pattern, &choices[1..]),
                    _ => instantiate(pattern, &choices[1..]),
                }
            }
        }
    }

    fn perms(&self, conn: usize) -> PermSpec {
        let user = &self.world.users[self.conns[conn].user];
        user.perms.clone().unwrap_or_default()
    }

    /// Where a message published by `conn` must be delivered, by account and
    /// subject (the answer bookkeeping is updated here).
    fn deliveries(
        &mut self,
        conn: usize,
        subject: &str,
        reply: Option<&str>,
    ) -> Result<Vec<Delivery>, TestCaseError> {
        let acc = self.conns[conn].account;
        let same = ReplyM::Same(reply.map(String::from));
        let mut out = vec![Delivery {
            account: acc,
            subject: SubjectM::Known(subject.to_string()),
            reply: same.clone(),
        }];
        // Streams other accounts import from this one: once per import, even
        // when two imports give the same subject (one hop only).
        for (importer, imports) in self.world.imports.iter().enumerate() {
            for i in imports {
                if !i.service && i.from == acc && matches(&i.subject, subject) {
                    out.push(Delivery {
                        account: importer,
                        subject: SubjectM::Known(i.stream_target(subject)),
                        reply: same.clone(),
                    });
                }
            }
        }
        // A request follows the first service import taking it, from account
        // to account (it may come back to one it passed, on another
        // subject), each hop with its own `_R_` reply.
        let req = reply.map(|_| self.requests.len());
        let mut hops = Vec::new();
        let (mut at, mut on) = (acc, subject.to_string());
        let mut seen = vec![(at, on.clone())];
        while let Some(i) = self.world.imports[at]
            .iter()
            .find(|i| i.service && matches(i.local(), &on))
        {
            on = i.remote(&on);
            prop_assert!(
                !seen.contains(&(i.from, on.clone())),
                "service imports loop: {} comes back to {} on {}",
                subject,
                self.world.names[i.from],
                on
            );
            seen.push((i.from, on.clone()));
            out.push(Delivery {
                account: i.from,
                subject: SubjectM::Known(on.clone()),
                reply: ReplyM::Service {
                    req,
                    hop: hops.len(),
                },
            });
            hops.push(Hop {
                account: i.from,
                singleton: i.singleton,
                token: None,
                open: true,
            });
            at = i.from;
        }
        if let (Some(reply), false) = (reply, hops.is_empty()) {
            self.requests.push(Request {
                origin: acc,
                reply: reply.to_string(),
                hops,
            });
        }
        // An answer goes back along the request's hops, each still awaiting it.
        if let Some(&(req, hop)) = self.tokens.get(subject) {
            let r = &mut self.requests[req];
            if r.hops[hop].account == acc {
                let mut k = hop;
                while r.hops[k].open {
                    if r.hops[k].singleton {
                        r.hops[k].open = false;
                    }
                    let (account, subject) = match k {
                        0 => (r.origin, SubjectM::Known(r.reply.clone())),
                        _ => (r.hops[k - 1].account, SubjectM::Token { req, hop: k - 1 }),
                    };
                    out.push(Delivery {
                        account,
                        subject,
                        reply: same.clone(),
                    });
                    if k == 0 {
                        break;
                    }
                    k -= 1;
                }
            }
        }
        Ok(out)
    }

    /// Who must receive a delivery: each matching plain subscription, and one
    /// member of each matching queue group.
    #[allow(clippy::type_complexity)]
    fn targets(
        &self,
        publisher: usize,
        d: &Delivery,
    ) -> (Vec<(usize, String)>, BTreeMap<String, Vec<(usize, String)>>) {
        let mut plain = Vec::new();
        let mut groups: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for (c, conn) in self.conns.iter().enumerate() {
            if conn.account != d.account || (c == publisher && !conn.echo) {
                continue;
            }
            let subject = d.subject(&self.requests);
            if !self.perms(c).may_receive(subject) {
                continue;
            }
            for sub in &conn.subs {
                if !matches(&sub.subject, subject) {
                    continue;
                }
                match &sub.queue {
                    None => plain.push((c, sub.sid.clone())),
                    Some(q) => groups
                        .entry(q.clone())
                        .or_default()
                        .push((c, sub.sid.clone())),
                }
            }
        }
        (plain, groups)
    }

    /// All frames every client received in this step: the MSGs (by receiver)
    /// and the other frames (checked against `errors`).
    fn collect(&mut self, errors: &[(usize, String)]) -> Result<Vec<(usize, Msg)>, TestCaseError> {
        let mut msgs = Vec::new();
        for c in 0..self.conns.len() {
            let mut other = Vec::new();
            for frame in self.sim.frames(self.conns[c].id) {
                match frame {
                    Frame::Msg(m) => msgs.push((c, m)),
                    f => other.push(f),
                }
            }
            let want: Vec<Frame> = errors
                .iter()
                .filter(|(e, _)| *e == c)
                .map(|(_, text)| Frame::Err(text.clone()))
                .collect();
            prop_assert_eq!(other, want, "non-MSG output of client {}", c);
        }
        Ok(msgs)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.conns.len();
        match op {
            Op::Sub {
                client,
                subject,
                queue,
            } => {
                let c = client % n;
                let subject = &self.resolve(c, subject, false);
                let conn = &mut self.conns[c];
                let sid = conn.next_sid.to_string();
                conn.next_sid += 1;
                let line = match queue {
                    Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
                    None => format!("SUB {subject} {sid}\r\n"),
                };
                let id = conn.id;
                let mut errors = Vec::new();
                if self.perms(c).can_subscribe(subject) {
                    self.conns[c].subs.push(SubM {
                        sid,
                        subject: subject.clone(),
                        queue: queue.map(String::from),
                    });
                } else {
                    let mut text =
                        format!("Permissions Violation for Subscription to \"{subject}\"");
                    if let Some(q) = queue {
                        text.push_str(&format!(" using queue \"{q}\""));
                    }
                    errors.push((c, text));
                    self.stats.refused_subs += 1;
                }
                self.sim.send(id, line.as_bytes());
                let msgs = self.collect(&errors)?;
                prop_assert!(msgs.is_empty(), "MSG after a SUB: {:?}", msgs);
            }
            Op::Unsub { client, pick } => {
                let conn = &mut self.conns[client % n];
                let sid = if conn.subs.is_empty() {
                    "999".to_string()
                } else {
                    conn.subs.remove(pick % conn.subs.len()).sid
                };
                let id = conn.id;
                self.sim.send(id, format!("UNSUB {sid}\r\n").as_bytes());
                let msgs = self.collect(&[])?;
                prop_assert!(msgs.is_empty(), "MSG after an UNSUB: {:?}", msgs);
            }
            Op::Pub {
                client,
                subject,
                reply,
            } => {
                let c = client % n;
                let subject = self.resolve(c, subject, true);
                let subs = &self.conns[c].subs;
                let reply = match reply {
                    ReplyChoice::None => None,
                    ReplyChoice::Random(r) => Some(r.clone()),
                    ReplyChoice::Own(_, _) if subs.is_empty() => None,
                    ReplyChoice::Own(pick, choices) => {
                        Some(instantiate(&subs[pick % subs.len()].subject, choices))
                    }
                };
                self.publish(c, &subject, reply.as_deref())?;
            }
            Op::Respond { pick } => {
                // One of the last three messages with a reply some client received.
                let mut recent = Vec::new();
                for (c, conn) in self.conns.iter().enumerate() {
                    let from = conn.replies.len().saturating_sub(3);
                    recent.extend(conn.replies[from..].iter().map(|r| (c, r.clone())));
                }
                if !recent.is_empty() {
                    let (c, subject) = recent.swap_remove(pick % recent.len());
                    self.publish(c, &subject, None)?;
                }
            }
            Op::Reconnect { client, echo } => {
                let c = client % n;
                self.sim.close(self.conns[c].id);
                let user = self.conns[c].user;
                self.conns[c] = new_conn(&mut self.sim, &self.world, user, *echo);
                let msgs = self.collect(&[])?;
                prop_assert!(msgs.is_empty(), "MSG after a reconnect: {:?}", msgs);
            }
            Op::Relogin { client, user, echo } => {
                // Another CONNECT on the same connection, as any user. In
                // another account the subscriptions are dropped (they belong
                // to the old account's subject space); in the same account
                // those the new user may not have are removed, each with an
                // error naming its sid.
                let c = client % n;
                let id = self.conns[c].id;
                let u = user % self.world.users.len();
                let name = &self.world.users[u].name;
                let connect = format!(
                    "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"echo\":{echo},\
                     \"user\":\"{name}\",\"pass\":\"pw\"}}\r\nPING\r\n"
                );
                self.sim.send(id, connect.as_bytes());
                let account = self.world.users[u].account;
                let same_account = account == self.conns[c].account;
                (
                    self.conns[c].user,
                    self.conns[c].account,
                    self.conns[c].echo,
                ) = (u, account, *echo);
                let perms = self.perms(c);
                let conn = &mut self.conns[c];
                let mut want = Vec::new();
                if same_account {
                    conn.subs.retain(|sub| {
                        let keep = perms.can_subscribe(&sub.subject);
                        if !keep {
                            want.push(Frame::Err(format!(
                                "Permissions Violation for Subscription to \"{}\" (sid \"{}\")",
                                sub.subject, sub.sid
                            )));
                        }
                        keep
                    });
                } else {
                    conn.subs.clear();
                }
                let mut frames = self.sim.frames(id);
                prop_assert_eq!(frames.pop(), Some(Frame::Pong), "after a second CONNECT");
                // The engine checks subscriptions in no particular order.
                let key = |f: &Frame| format!("{f:?}");
                frames.sort_by_key(key);
                want.sort_by_key(key);
                prop_assert_eq!(frames, want, "after a second CONNECT");
            }
        }
        let subs: usize = self.conns.iter().map(|c| c.subs.len()).sum();
        prop_assert_eq!(self.sim.base.server.num_subscriptions(), subs);
        Ok(())
    }

    fn publish(
        &mut self,
        c: usize,
        subject: &str,
        reply: Option<&str>,
    ) -> Result<(), TestCaseError> {
        let payload = format!("m{}", self.next_payload);
        self.next_payload += 1;
        let line = match reply {
            Some(r) => format!("PUB {subject} {r} {}\r\n{payload}\r\n", payload.len()),
            None => format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()),
        };
        let allowed = self.perms(c).can_publish(subject);
        self.sim.send(self.conns[c].id, line.as_bytes());
        if !allowed {
            self.stats.refused_pubs += 1;
            let text = format!("Permissions Violation for Publish to \"{subject}\"");
            let msgs = self.collect(&[(c, text)])?;
            prop_assert!(
                msgs.is_empty(),
                "refused PUB {} by client {} was delivered: {:?}",
                subject,
                c,
                msgs
            );
            return Ok(());
        }
        let mut got = self.collect(&[])?;
        for (r, m) in &got {
            prop_assert_eq!(
                &m.payload,
                &payload,
                "MSG to client {} from an earlier step",
                r
            );
            self.check_reachable(c, *r, subject)?;
            if let Some(reply) = &m.reply {
                self.conns[*r].replies.push(reply.clone());
            }
        }
        let deliveries = self.deliveries(c, subject, reply)?;
        let acc = self.conns[c].account;
        self.stats.msgs += got.len();
        self.stats.cross_account += got
            .iter()
            .filter(|(r, _)| self.conns[*r].account != acc)
            .count();
        for d in &deliveries {
            match (&d.reply, &d.subject) {
                (ReplyM::Service { hop, .. }, _) => {
                    self.stats.service_requests += 1;
                    self.stats.chained_requests += usize::from(*hop > 0);
                }
                (_, SubjectM::Token { .. }) => self.stats.answers += 1,
                _ if d.account != acc && subject.starts_with("_R_.") => self.stats.answers += 1,
                _ => {}
            }
        }
        for d in &deliveries {
            let (plain, groups) = self.targets(c, d);
            for target in &plain {
                prop_assert!(
                    self.take(&mut got, d, std::slice::from_ref(target))?,
                    "lost: {:?} of PUB {} {:?} by client {} for client {} sid {}",
                    d,
                    subject,
                    reply,
                    c,
                    target.0,
                    target.1
                );
            }
            for (queue, members) in &groups {
                prop_assert!(
                    self.take(&mut got, d, members)?,
                    "lost: {:?} of PUB {} {:?} by client {} for queue group {} {:?}",
                    d,
                    subject,
                    reply,
                    c,
                    queue,
                    members
                );
            }
        }
        prop_assert!(
            got.is_empty(),
            "unexpected: PUB {} {:?} by client {} (account {}) also reached {:?}; model: {:?}",
            subject,
            reply,
            c,
            self.conns[c].account,
            got.iter()
                .map(|(r, m)| (*r, self.conns[*r].account, m))
                .collect::<Vec<_>>(),
            deliveries
        );
        Ok(())
    }

    /// Finds (and removes) a message in `got` that is delivery `d` to one of
    /// `who` (client, sid); learns the `_R_` subjects it shows.
    fn take(
        &mut self,
        got: &mut Vec<(usize, Msg)>,
        d: &Delivery,
        who: &[(usize, String)],
    ) -> Result<bool, TestCaseError> {
        let requests = &self.requests;
        let token = |req: usize, hop: usize| requests[req].hops[hop].token.as_deref();
        let is_token = |s: &str| s.starts_with("_R_.");
        let subject_fits = |m: &Msg| match &d.subject {
            SubjectM::Known(s) => m.subject == *s,
            SubjectM::Token { req, hop } => match token(*req, *hop) {
                Some(t) => m.subject == t,
                None => is_token(&m.subject),
            },
        };
        let reply_fits = |m: &Msg| match (&d.reply, m.reply.as_deref()) {
            (ReplyM::Same(r), got) => r.as_deref() == got,
            (ReplyM::Service { req: None, .. }, got) => got.is_none(),
            (ReplyM::Service { req: Some(q), hop }, Some(got)) => {
                is_token(got) && token(*q, *hop).is_none_or(|t| t == got)
            }
            (ReplyM::Service { .. }, None) => false,
        };
        let Some(i) = got.iter().position(|(r, m)| {
            who.iter().any(|(c, sid)| c == r && *sid == m.sid) && subject_fits(m) && reply_fits(m)
        }) else {
            return Ok(false);
        };
        let (_, m) = got.remove(i);
        if let SubjectM::Token { req, hop } = d.subject {
            if self.requests[req].hops[hop].token.is_none() {
                self.learn(req, hop, &m.subject)?;
            }
        }
        if let ReplyM::Service {
            req: Some(req),
            hop,
        } = d.reply
        {
            if self.requests[req].hops[hop].token.is_none() {
                self.learn(req, hop, m.reply.as_deref().expect("checked"))?;
            }
        }
        Ok(true)
    }

    /// Request `req` carried the `_R_` reply `token` at hop `hop`.
    fn learn(&mut self, req: usize, hop: usize, token: &str) -> Result<(), TestCaseError> {
        let parts: Vec<&str> = token.split('.').collect();
        let alnum = |t: &str| t.len() == 6 && t.bytes().all(|b| b.is_ascii_alphanumeric());
        prop_assert!(
            parts.len() == 3 && parts[0] == "_R_" && alnum(parts[1]) && alnum(parts[2]),
            "bad service reply {}",
            token
        );
        // The middle token is the requesting account's (at this hop).
        let r = &self.requests[req];
        let requester = if hop == 0 {
            r.origin
        } else {
            r.hops[hop - 1].account
        };
        let prefix = self
            .reply_prefixes
            .entry(requester)
            .or_insert_with(|| parts[1].to_string());
        prop_assert_eq!(
            prefix.as_str(),
            parts[1],
            "reply prefix of account {}",
            requester
        );
        prop_assert!(
            self.tokens.insert(token.to_string(), (req, hop)).is_none(),
            "reply {} reused",
            token
        );
        self.requests[req].hops[hop].token = Some(token.to_string());
        Ok(())
    }

    /// Coarse isolation: a client only hears from its own account, from an
    /// account it imports a stream from, and along chains of service imports
    /// (requests one way, answers the other).
    fn check_reachable(
        &self,
        publisher: usize,
        receiver: usize,
        subject: &str,
    ) -> Result<(), TestCaseError> {
        let (from, to) = (self.conns[publisher].account, self.conns[receiver].account);
        let imports = &self.world.imports;
        // Accounts `a` reaches by following the services it imports.
        let serves = |a: usize, b: usize| {
            let mut seen = vec![a];
            let mut i = 0;
            while i < seen.len() {
                for imp in imports[seen[i]].iter().filter(|imp| imp.service) {
                    if !seen.contains(&imp.from) {
                        seen.push(imp.from);
                    }
                }
                i += 1;
            }
            seen.contains(&b)
        };
        let ok = from == to
            || imports[to].iter().any(|i| !i.service && i.from == from)
            || serves(from, to)
            || (subject.starts_with("_R_.") && serves(to, from));
        prop_assert!(
            ok,
            "LEAK: a message published on {} in {} reached client {} in {}",
            subject,
            self.world.names[from],
            receiver,
            self.world.names[to]
        );
        Ok(())
    }
}

// ----- generated scenarios --------------------------------------------------------

#[derive(Clone, Debug)]
struct Spec {
    accounts: Vec<AccountSpec>,
    /// Connections: (user pick, echo).
    clients: Vec<(usize, bool)>,
    ops: Vec<Op>,
}

#[derive(Clone, Debug)]
struct AccountSpec {
    users: Vec<Option<PermSpec>>,
    exports: Vec<ExportSpec>,
    imports: Vec<ImportSpec>,
}

#[derive(Clone, Debug)]
struct ImportSpec {
    service: bool,
    /// Which other account (an offset from this one).
    from: usize,
    subject: ImportSubject,
    target: TargetChoice,
}

#[derive(Clone, Debug)]
enum ImportSubject {
    /// Within one of the exporter's exports of the right kind.
    Narrow(usize, Vec<u8>),
    /// Anything (usually not authorized).
    Raw(String),
}

#[derive(Clone, Debug)]
enum TargetChoice {
    Same,
    Prefix(usize),
    Map(Vec<u8>),
}

/// A subject chosen relative to the configuration (see [`Model::related`]),
/// so that imports and exports are actually exercised, or at random.
#[derive(Clone, Debug)]
enum SubjectChoice {
    Related(usize, Vec<u8>),
    Random(String),
}

#[derive(Clone, Debug)]
enum ReplyChoice {
    None,
    Random(String),
    /// A subject one of the publisher's own subscriptions matches.
    Own(usize, Vec<u8>),
}

#[derive(Clone, Debug)]
enum Op {
    Sub {
        client: usize,
        subject: SubjectChoice,
        queue: Option<&'static str>,
    },
    Unsub {
        client: usize,
        pick: usize,
    },
    Pub {
        client: usize,
        subject: SubjectChoice,
        reply: ReplyChoice,
    },
    /// Answer a message some client received: publish to its reply subject.
    Respond {
        pick: usize,
    },
    Reconnect {
        client: usize,
        echo: bool,
    },
    /// CONNECT again on the same connection.
    Relogin {
        client: usize,
        user: usize,
        echo: bool,
    },
}

const LITERALS: [&str; 4] = ["a", "b", "c", "x"];

/// A pattern of 1-3 tokens within `export`, chosen by `choices`.
fn narrow(export: &str, choices: &[u8]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (i, t) in export.split('.').enumerate() {
        let c = choices.get(i).copied().unwrap_or(0);
        let lit = LITERALS[(c / 4) as usize % 4];
        match t {
            "*" => out.push(if c % 2 == 0 { "*" } else { lit }),
            ">" => match c % 4 {
                0 => out.push(">"),
                1 => out.push("*"),
                2 => out.push(lit),
                _ if out.len() < 2 => out.extend([lit, ">"]),
                _ => out.push(lit),
            },
            t => out.push(t),
        }
    }
    out.join(".")
}

/// A literal subject `pattern` matches, chosen by `choices`.
fn instantiate(pattern: &str, choices: &[u8]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (i, t) in pattern.split('.').enumerate() {
        let c = choices.get(i).copied().unwrap_or(0) as usize;
        match t {
            "*" => out.push(LITERALS[c % 4]),
            ">" => {
                out.push(LITERALS[c % 4]);
                if c & 16 != 0 {
                    out.push(LITERALS[(c >> 2) % 4]);
                }
            }
            t => out.push(t),
        }
    }
    out.join(".")
}

/// A `to` for an import of `subject`, with the same wildcards in the same order
/// (or, for a service import of a literal subject, any pattern).
fn derive_to(subject: &str, choices: &[u8], service: bool) -> String {
    let c = |i: usize| choices.get(i).copied().unwrap_or(0) as usize;
    if service && is_literal(subject) && c(0) % 2 == 1 {
        return ["x.*", "x.>", "x.a"][c(1) % 3].to_string();
    }
    let mut toks: Vec<&str> = subject
        .split('.')
        .enumerate()
        .map(|(i, t)| match t {
            "*" | ">" => t,
            _ => LITERALS[c(i + 1) % 4],
        })
        .collect();
    if c(3) % 2 == 1 {
        toks.insert(0, "x");
    }
    toks.join(".")
}

/// The model's world for a spec, with each import checked by the engine as
/// well: it must refuse exactly the imports the model does not authorize.
fn build_world(spec: &Spec) -> Result<World, TestCaseError> {
    let n = spec.accounts.len();
    let names: Vec<String> = ["A", "B", "C", "D"][..n]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut users = Vec::new();
    for (a, account) in spec.accounts.iter().enumerate() {
        for (i, perms) in account.users.iter().enumerate() {
            users.push(UserM {
                account: a,
                name: format!("u{}{i}", names[a]),
                perms: perms.clone(),
            });
        }
    }
    let exports: Vec<Vec<ExportSpec>> = spec
        .accounts
        .iter()
        .map(|a| {
            a.exports
                .iter()
                .map(|e| ExportSpec {
                    service: e.service,
                    subject: e.subject.clone(),
                    accounts: e
                        .accounts
                        .as_ref()
                        .map(|l| l.iter().map(|i| i % n).collect()),
                    response: e.response.filter(|_| e.service),
                })
                .collect()
        })
        .collect();
    let mut world = World {
        refused_cycles: 0,
        names,
        users,
        exports,
        imports: vec![Vec::new(); n],
    };
    for (a, account) in spec.accounts.iter().enumerate() {
        for imp in &account.imports {
            let from = (a + 1 + imp.from % (n - 1)) % n;
            // Narrowed from one of the exporter's exports, taking its kind;
            // otherwise as drawn.
            let exports = &world.exports[from];
            let (service, subject) = match &imp.subject {
                ImportSubject::Narrow(pick, choices) if !exports.is_empty() => {
                    let e = &exports[pick % exports.len()];
                    (e.service, narrow(&e.subject, choices))
                }
                ImportSubject::Narrow(..) => (imp.service, "a".to_string()),
                ImportSubject::Raw(s) => (imp.service, s.clone()),
            };
            let (to, prefix) = match &imp.target {
                TargetChoice::Same => (None, None),
                TargetChoice::Prefix(_) if service => (None, None),
                TargetChoice::Prefix(p) => (None, Some(["x", "x.a"][p % 2].to_string())),
                TargetChoice::Map(choices) => (Some(derive_to(&subject, choices, service)), None),
            };
            let import = ImportM {
                service,
                from,
                subject,
                to,
                prefix,
                singleton: true,
            };
            let authorized = world.authorized(a, &import).map(|e| e.response.is_none());
            let import = ImportM {
                singleton: authorized.unwrap_or(true),
                ..import
            };
            let authorized = authorized.is_some();
            let mut trial = world.imports.clone();
            trial[a].push(import.clone());
            let engine = Accounts::new(&world.account_configs(&trial), None, false);
            match (engine, authorized) {
                (Ok(_), true) => world.imports = trial,
                (Err(e), false) if e.message.contains("not authorized") => {}
                // The engine refuses imports that could form a loop with
                // those before it (the model does not follow its subject
                // overlaps); there must be a loop at the account level.
                (Err(e), true) if e.message.contains("import forms a cycle") => {
                    prop_assert!(
                        world.loop_reachable(a, from, service),
                        "{} importing {:?}: no loop of imports through the accounts, yet {}",
                        world.names[a],
                        import,
                        e
                    );
                    world.refused_cycles += 1;
                }
                (result, _) => prop_assert!(
                    false,
                    "{} importing {:?}: model says authorized {}, engine {:?}",
                    world.names[a],
                    import,
                    authorized,
                    result.err()
                ),
            }
        }
    }
    Ok(world)
}

fn run(spec: &Spec) -> Result<Stats, TestCaseError> {
    let world = build_world(spec)?;
    let configs = world.account_configs(&world.imports);
    let auth = Auth {
        users: Users::new(None, &configs, None, None, None, None).expect("users"),
        accounts: Accounts::new(&configs, None, false).expect("accounts"),
    };
    let mut sim = Sim::new(auth);
    let conns = spec
        .clients
        .iter()
        .map(|&(user, echo)| new_conn(&mut sim, &world, user % world.users.len(), echo))
        .collect();
    let stats = Stats {
        imports: world.imports.iter().map(Vec::len).sum(),
        refused_cycles: world.refused_cycles,
        ..Stats::default()
    };
    let mut model = Model {
        stats,
        world,
        sim,
        conns,
        requests: Vec::new(),
        tokens: HashMap::new(),
        reply_prefixes: HashMap::new(),
        next_payload: 0,
    };
    for op in &spec.ops {
        model.apply(op)?;
    }
    Ok(model.stats)
}

fn token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("a"),
        3 => Just("b"),
        2 => Just("c"),
        2 => Just("x"),
        2 => Just("*"),
        2 => Just(">"),
    ]
}

/// A valid pattern of 1-3 tokens.
fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..=3).prop_map(|mut toks| {
        let last = toks.len() - 1;
        for t in &mut toks[..last] {
            if *t == ">" {
                *t = "*";
            }
        }
        toks.join(".")
    })
}

/// A PUB subject of 1-3 tokens (rarely with a `*` or `>` token, taken literally).
fn literal() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        4 => Just("a"),
        3 => Just("b"),
        2 => Just("c"),
        2 => Just("x"),
        1 => Just("*"),
        1 => Just(">"),
    ];
    prop::collection::vec(tok, 1..=3).prop_map(|t| t.join("."))
}

fn perm_spec() -> impl Strategy<Value = PermSpec> {
    use prop::collection::vec;
    (
        vec(pattern(), 0..=2),
        vec(pattern(), 0..=1),
        vec(pattern(), 0..=2),
        vec(pattern(), 0..=1),
    )
        .prop_map(|(pub_allow, pub_deny, sub_allow, sub_deny)| PermSpec {
            pub_allow,
            pub_deny,
            sub_allow,
            sub_deny,
        })
}

fn account_spec() -> impl Strategy<Value = AccountSpec> {
    use prop::collection::vec;
    let response = prop_oneof![
        3 => Just(None),
        1 => Just(Some("stream")),
        1 => Just(Some("chunked")),
    ];
    let export = (
        prop::bool::weighted(0.4),
        pattern(),
        prop::option::weighted(0.25, vec(0..4usize, 1..=2)),
        response,
    )
        .prop_map(|(service, subject, accounts, response)| ExportSpec {
            service,
            subject,
            accounts,
            response,
        });
    let subject = prop_oneof![
        4 => (0..4usize, vec(any::<u8>(), 3)).prop_map(|(p, c)| ImportSubject::Narrow(p, c)),
        1 => pattern().prop_map(ImportSubject::Raw),
    ];
    let target = prop_oneof![
        3 => Just(TargetChoice::Same),
        1 => (0..2usize).prop_map(TargetChoice::Prefix),
        2 => vec(any::<u8>(), 4).prop_map(TargetChoice::Map),
    ];
    let import = (prop::bool::weighted(0.4), 0..3usize, subject, target).prop_map(
        |(service, from, subject, target)| ImportSpec {
            service,
            from,
            subject,
            target,
        },
    );
    (
        vec(prop::option::weighted(0.25, perm_spec()), 1..=2),
        vec(export, 0..=3),
        vec(import, 0..=3),
    )
        .prop_map(|(users, exports, imports)| AccountSpec {
            users,
            exports,
            imports,
        })
}

fn subject_choice(random: BoxedStrategy<String>) -> impl Strategy<Value = SubjectChoice> {
    prop_oneof![
        3 => (any::<usize>(), prop::collection::vec(any::<u8>(), 5))
            .prop_map(|(p, c)| SubjectChoice::Related(p, c)),
        1 => random.prop_map(SubjectChoice::Random),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..8usize;
    let queue = prop::option::weighted(0.3, prop::sample::select(vec!["q1", "q2"]));
    let reply = prop_oneof![
        2 => Just(ReplyChoice::None),
        1 => literal().prop_map(ReplyChoice::Random),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 3))
            .prop_map(|(p, c)| ReplyChoice::Own(p, c)),
    ];
    prop_oneof![
        4 => (client.clone(), subject_choice(pattern().boxed()), queue)
            .prop_map(|(client, subject, queue)| Op::Sub { client, subject, queue }),
        1 => (client.clone(), 0..8usize).prop_map(|(client, pick)| Op::Unsub { client, pick }),
        6 => (client.clone(), subject_choice(literal().boxed()), reply)
            .prop_map(|(client, subject, reply)| Op::Pub { client, subject, reply }),
        3 => any::<usize>().prop_map(|pick| Op::Respond { pick }),
        1 => (client.clone(), any::<bool>()).prop_map(|(client, echo)| Op::Reconnect { client, echo }),
        1 => (client, any::<usize>(), any::<bool>())
            .prop_map(|(client, user, echo)| Op::Relogin { client, user, echo }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    use prop::collection::vec;
    // Some subscriptions first, so that most publishes reach someone.
    let setup =
        (0..8usize, subject_choice(pattern().boxed())).prop_map(|(client, subject)| Op::Sub {
            client,
            subject,
            queue: None,
        });
    (
        vec(account_spec(), 2..=4),
        vec((0..8usize, prop::bool::weighted(0.8)), 2..=8),
        vec(setup, 0..=8),
        vec(op(), 1..60),
    )
        .prop_map(|(accounts, clients, mut setup, ops)| {
            setup.extend(ops);
            Spec {
                accounts,
                clients,
                ops: setup,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Deliveries across accounts are exactly what the naive model says.
    #[test]
    fn deliveries_match_the_account_model(spec in spec()) {
        run(&spec)?;
    }
}

/// The generator must keep producing scenarios that cross accounts: run a
/// fixed sample and check that every kind of route was taken.
#[test]
fn the_generator_exercises_every_route() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut total = Stats::default();
    for _ in 0..128 {
        let spec = spec().new_tree(&mut runner).expect("a spec").current();
        total += run(&spec).expect("the property holds");
    }
    let s = total;
    assert!(
        s.imports > 150 && s.msgs > 700 && s.cross_account > 60 && s.service_requests > 60,
        "{s:?}"
    );
    assert!(
        s.answers >= 2 && s.chained_requests >= 2 && s.refused_pubs > 100 && s.refused_subs > 100,
        "{s:?}"
    );
}

// ----- the model itself -------------------------------------------------------------

#[test]
fn model_helpers() {
    assert!(matches("a.*", "a.b") && matches("a.>", "a.b.c") && matches(">", "a"));
    assert!(!matches("a.>", "a") && !matches("a.*", "a.b.c") && !matches("a", "a."));
    assert!(matches("a.*", "a.*") && !matches("a.b", "a.*"));
    assert!(subset("a.b", "a.*") && subset("a.*", "a.>") && subset("a.>", ">"));
    assert!(!subset("a.>", "a.*") && !subset("*", "a") && !subset(">", "*.>"));
    assert_eq!(map("a.*.>", "x.*.>", "a.b.c.d"), "x.b.c.d");
    assert_eq!(map("x.*", "a.b", "x.q"), "a.b");
    assert_eq!(narrow("a.>", &[0, 3 + 4]), "a.b.>");
    assert_eq!(instantiate("a.*.>", &[0, 1, 2 + 16 + 4]), "a.b.c.b");
    assert_eq!(derive_to("a.*", &[0, 0, 0, 1], false), "x.a.*");
}

// ----- specific cases -------------------------------------------------------------

/// A server from configuration text (plain passwords), as the CLI builds it.
fn sim_from_conf(text: &str) -> Sim {
    let resolver = MapResolver(HashMap::new());
    let parsed = parse("test.conf", text, &resolver, &|_| None).expect("syntax");
    let (config, errors) = read_config(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let auth = Auth {
        users: Users::new(
            config.authorization.as_ref(),
            &config.accounts,
            None,
            None,
            None,
            None,
        )
        .expect("users"),
        accounts: Accounts::from_config(&config).expect("accounts"),
    };
    Sim::new(auth)
}

fn msgs(sim: &mut Sim, id: ClientId) -> Vec<Msg> {
    sim.frames(id)
        .into_iter()
        .map(|f| match f {
            Frame::Msg(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn msg(subject: &str, sid: &str, reply: Option<&str>, payload: &str) -> Msg {
    Msg {
        subject: subject.into(),
        sid: sid.into(),
        reply: reply.map(String::from),
        payload: payload.into(),
    }
}

#[test]
fn accounts_without_imports_share_nothing() {
    let mut sim = sim_from_conf(
        "accounts {\n  A { users: [{user: a, password: pw}], exports: [{stream: \">\"}] }\n  \
         B { users: [{user: b, password: pw}] }\n}\n",
    );
    let a = sim.connect("a", true, "A");
    let b = sim.connect("b", true, "B");
    sim.send(a, b"SUB > 1\r\n");
    sim.send(b, b"SUB > 1\r\nSUB foo 2\r\n");
    sim.send(a, b"PUB foo 2\r\nhi\r\n");
    sim.send(b, b"PUB foo 2\r\nho\r\n");
    // An export nobody imports shares nothing either.
    assert_eq!(msgs(&mut sim, a), [msg("foo", "1", None, "hi")]);
    assert_eq!(
        msgs(&mut sim, b),
        [msg("foo", "1", None, "ho"), msg("foo", "2", None, "ho")]
    );
}

#[test]
fn stream_imports_are_one_hop_and_each_overlapping_import_delivers() {
    let mut sim = sim_from_conf(
        "accounts {\n  A { users: [{user: a, password: pw}], exports: [{stream: \"a.>\"}] }\n  \
         B { users: [{user: b, password: pw}], exports: [{stream: \">\"}],\n    \
         imports: [{stream: {account: A, subject: \"a.>\"}}, {stream: {account: A, subject: \"a.*\"}},\n      \
         {stream: {account: A, subject: \"a.*\"}, prefix: p}] }\n  \
         C { users: [{user: c, password: pw}], imports: [{stream: {account: B, subject: \">\"}}] }\n}\n",
    );
    let a = sim.connect("a", true, "A");
    let b = sim.connect("b", true, "B");
    let c = sim.connect("c", true, "C");
    sim.send(b, b"SUB > 1\r\n");
    sim.send(c, b"SUB > 1\r\n");
    sim.send(a, b"PUB a.x r 1\r\n1\r\n");
    // Each import delivers: two give B `a.x` twice (as nats-server does),
    // the prefixed one gives it `p.a.x`.
    assert_eq!(
        msgs(&mut sim, b),
        [
            msg("a.x", "1", Some("r"), "1"),
            msg("a.x", "1", Some("r"), "1"),
            msg("p.a.x", "1", Some("r"), "1")
        ]
    );
    // What B got from A does not travel on to C.
    assert_eq!(msgs(&mut sim, c), []);
    // B's own messages do.
    sim.send(b, b"PUB a.x 1\r\n2\r\n");
    assert_eq!(msgs(&mut sim, c), [msg("a.x", "1", None, "2")]);
    assert_eq!(msgs(&mut sim, b), [msg("a.x", "1", None, "2")]);
    assert_eq!(msgs(&mut sim, a), []);
}

#[test]
fn service_requests_cross_with_a_private_reply_and_one_answer_comes_back() {
    let mut sim = sim_from_conf(
        "accounts {\n  A { users: [{user: a, password: pw}], exports: [{service: \"svc.>\"}] }\n  \
         B { users: [{user: b, password: pw}], imports: [{service: {account: A, subject: \"svc.>\"}, to: \"asvc.>\"}] }\n  \
         C { users: [{user: c, password: pw}] }\n}\n",
    );
    let a = sim.connect("a", true, "A");
    let b = sim.connect("b", true, "B");
    let c = sim.connect("c", true, "C");
    sim.send(a, b"SUB > 1\r\n");
    sim.send(b, b"SUB > 1\r\n");
    sim.send(c, b"SUB > 1\r\n");
    sim.send(b, b"PUB asvc.q inbox.1 3\r\nreq\r\n");
    // B sees its own request, A sees it on the service subject with a private reply.
    assert_eq!(
        msgs(&mut sim, b),
        [msg("asvc.q", "1", Some("inbox.1"), "req")]
    );
    let got = msgs(&mut sim, a);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].subject.as_str(), got[0].payload.as_str()),
        ("svc.q", "req")
    );
    let reply = got[0].reply.clone().expect("a reply");
    assert!(
        reply.starts_with("_R_.") && reply.len() == 4 + 6 + 1 + 6,
        "{reply}"
    );
    assert_eq!(msgs(&mut sim, c), []);
    // The first answer goes back to B on its own inbox; the second stays in A.
    for answer in ["one", "two"] {
        sim.send(a, format!("PUB {reply} 3\r\n{answer}\r\n").as_bytes());
    }
    assert_eq!(msgs(&mut sim, b), [msg("inbox.1", "1", None, "one")]);
    assert_eq!(
        msgs(&mut sim, a),
        [msg(&reply, "1", None, "one"), msg(&reply, "1", None, "two")]
    );
    // Another account publishing on the same `_R_` subject answers nothing.
    sim.send(c, format!("PUB {reply} 1\r\nx\r\n").as_bytes());
    assert_eq!(msgs(&mut sim, c), [msg(&reply, "1", None, "x")]);
    assert_eq!(msgs(&mut sim, b), []);
    // A request on the service's own subject in B is not a request.
    sim.send(b, b"PUB svc.q 1\r\nz\r\n");
    assert_eq!(msgs(&mut sim, a), []);
}

#[test]
fn chained_service_requests_reach_only_the_accounts_on_the_chain() {
    let mut sim = sim_from_conf(
        "accounts {\n  A { users: [{user: a, password: pw}], exports: [{service: \"svc.>\"}] }\n  \
         B { users: [{user: b, password: pw}], exports: [{service: \"svc.>\"}],\n    \
         imports: [{service: {account: A, subject: \"svc.>\"}}] }\n  \
         C { users: [{user: c, password: pw}], imports: [{service: {account: B, subject: \"svc.>\"}}] }\n  \
         D { users: [{user: d, password: pw}], exports: [{service: \">\"}] }\n}\n",
    );
    let ids: Vec<ClientId> = [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]
        .iter()
        .map(|(user, account)| sim.connect(user, true, account))
        .collect();
    for &id in &ids {
        sim.send(id, b"SUB > 1\r\n");
    }
    let [a, b, c, d] = ids[..] else {
        unreachable!()
    };
    sim.send(c, b"PUB svc.q inbox 3\r\nreq\r\n");
    assert_eq!(msgs(&mut sim, c), [msg("svc.q", "1", Some("inbox"), "req")]);
    // B and A each see it with a reply of their own.
    let (to_b, to_a) = (msgs(&mut sim, b), msgs(&mut sim, a));
    let reply = |m: &[Msg]| {
        assert_eq!((m.len(), m[0].subject.as_str()), (1, "svc.q"), "{m:?}");
        m[0].reply.clone().expect("a reply")
    };
    let (r_b, r_a) = (reply(&to_b), reply(&to_a));
    assert!(r_b.starts_with("_R_.") && r_a.starts_with("_R_.") && r_b != r_a);
    assert_eq!(msgs(&mut sim, d), []);
    // A answers: B sees the answer on its reply, C on its own inbox; D nothing.
    sim.send(a, format!("PUB {r_a} 3\r\nans\r\n").as_bytes());
    assert_eq!(msgs(&mut sim, a), [msg(&r_a, "1", None, "ans")]);
    assert_eq!(msgs(&mut sim, b), [msg(&r_b, "1", None, "ans")]);
    assert_eq!(msgs(&mut sim, c), [msg("inbox", "1", None, "ans")]);
    assert_eq!(msgs(&mut sim, d), []);
}

#[test]
fn exports_limited_to_named_accounts_refuse_others() {
    let conf = |importer: &str| {
        let block = |name: &str| {
            if name == importer {
                format!("  {name} {{ imports: [{{stream: {{account: A, subject: \"a.b\"}}}}] }}\n")
            } else {
                format!("  {name} {{}}\n")
            }
        };
        let text = format!(
            "accounts {{\n  A {{ exports: [{{stream: \"a.>\", accounts: [B]}}] }}\n{}{}}}\n",
            block("B"),
            block("C")
        );
        let resolver = MapResolver(HashMap::new());
        let parsed = parse("t.conf", &text, &resolver, &|_| None).expect("syntax");
        let (config, errors) = read_config(&parsed);
        assert!(errors.is_empty(), "{errors:?}");
        Accounts::from_config(&config).map(drop)
    };
    assert_eq!(conf("B"), Ok(()));
    let err = conf("C").unwrap_err();
    assert!(err.message.contains("not authorized"), "{err}");
}

#[test]
fn a_refused_publish_reaches_no_account() {
    let mut sim = sim_from_conf(
        "accounts {\n  A { users: [{user: a, password: pw, permissions: {publish: {deny: \"a.secret\"}}}],\n    \
         exports: [{stream: \"a.>\"}, {service: \"a.>\"}] }\n  \
         B { users: [{user: b, password: pw, permissions: {publish: {deny: \"a.secret\"}}}],\n    \
         imports: [{stream: {account: A, subject: \"a.>\"}}, {service: {account: A, subject: \"a.>\"}}] }\n}\n",
    );
    let a = sim.connect("a", true, "A");
    let b = sim.connect("b", true, "B");
    sim.send(a, b"SUB > 1\r\n");
    sim.send(b, b"SUB > 1\r\n");
    sim.send(a, b"PUB a.secret 1\r\nx\r\n");
    sim.send(b, b"PUB a.secret 1\r\ny\r\n");
    let refused = Frame::Err("Permissions Violation for Publish to \"a.secret\"".into());
    for id in [a, b] {
        assert_eq!(sim.frames(id), std::slice::from_ref(&refused));
    }
}
