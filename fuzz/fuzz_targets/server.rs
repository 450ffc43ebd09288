//! Drives the whole engine (accounts, imports, permissions, timers, back-pressure) through a fake runtime and checks isolation invariants after every step.
//!
//! The configuration is fixed (see `USERS`, `EXPORTS`, `IMPORTS`; the text is
//! generated from these tables): `$G`, and accounts A, B, C with users that
//! have allow and deny lists and `allow_responses`, stream imports (plain,
//! `prefix`, `to`; A and B import from each other), service imports
//! (singleton and `stream` responses, and a chain: C imports from B what B
//! imports from A), and account limits. Up to 8 connections are driven by a
//! fuzzer-chosen sequence of steps.
//!
//! Input: byte 0 flags (bit 0: no sublist cache; bit 1: debug and trace logs;
//! bits 2-3: `max_pending` 4 KiB, 16 KiB, 64 KiB, 64 KiB; bits 4-7: seed),
//! then steps until the input runs out. A step is an op byte (mod 13), a slot
//! byte (mod 8), and operands:
//!
//! - 0, 1 PUB/HPUB: subject, reply byte (mod 4: none, none, `inbox.<slot>`, a
//!   subject follows), size byte (payload ~ 12 * size bytes), flag byte (bit 0:
//!   HPUB);
//! - 2, 12 SUB: subject, queue byte (mod 8: none x5, q1, q2, `_sys_`), sid byte;
//! - 3 UNSUB: sid byte, max byte (0: none, else 1 + n mod 3);
//! - 4 CONNECT (a new connection, or again on an open one): user byte (mod
//!   users + 2: a wrong password, no credentials), flag byte (bit 0: echo off,
//!   1 verbose, 2 pedantic, 3 headers, 4 no_responders, 5 protocol 0);
//! - 5 answer: pick byte (one of the last reply subjects the slot received);
//! - 6 raw bytes: length byte, split byte, bytes (byte 0x01 is replaced);
//! - 7 advance the clock: byte (mod 8) picks 1 ms .. 3 min;
//! - 8 close (slot byte 255: shut the server down);
//! - 9 toggle "stuck" (outbound not written until unstuck);
//! - 10 partial write: byte, n * 37 bytes are written;
//! - 11 PING (flag byte bit 0: PONG instead).
//!
//! A subject is a length byte: with bit 7 set, one of `PRESETS`; else 1-4
//! tokens, one byte each, from `TOKENS` (which include wildcards, reserved
//! prefixes and the empty token).
//!
//! The harness tracks each connection: its identity (user and account) as long
//! as only CONNECTs it generated could have authenticated it, its
//! subscriptions as long as only ops it generated reached its parser (a raw
//! step makes the connection "untracked"). Payloads of tracked publishes carry
//! a tag (byte 0x01, `#n#`) that raw bytes cannot contain, so every MSG can be
//! attributed. Checked after every step:
//!
//! - no panic, and the server's output is well-formed protocol;
//! - a tagged MSG is delivered only in an account and on a subject the publish
//!   could legitimately reach (same account, one hop through a declared stream
//!   import, along a chain of service imports, or back along the chain as the
//!   answer to a request), with the right reply subject (`_R_` replies across
//!   service imports), and a singleton service answers at most once;
//! - the receiver's permissions allow the subject (any identity the connection
//!   had since its subscriptions were made), and for tracked connections the
//!   sid is one of its subscriptions whose subject matches;
//! - a publish that must be refused (permissions without an `allow_responses`
//!   way out, reserved subjects or replies, pedantic subjects, payload limits,
//!   HPUB without headers, no CONNECT) is never delivered anywhere;
//! - permission violations reported to tracked clients are justified;
//! - the bytes queued for a client stay within `max_pending` plus one message
//!   (PONGs, `-ERR`s and `+OK`s count too: an earlier version of the engine
//!   let a client that never reads grow them without limit).
//!
//! At the end the server is shut down: no client, subscription or awaited
//! service response may remain.
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IoSlice;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tenet_core::config::options::read_config;
use tenet_core::config::{parse, MapResolver};
use tenet_core::{
    Accounts, Auth, ClientId, CloseReason, Event, Options, Peer, Server, Time, Users,
};

// ----- the configuration -----------------------------------------------------------

const ACCOUNTS: [&str; 4] = ["$G", "A", "B", "C"];
const G: usize = 0;
const A: usize = 1;
const B: usize = 2;
const C: usize = 3;

struct UserDef {
    name: &'static str,
    account: usize,
    pub_allow: &'static [&'static str],
    pub_deny: &'static [&'static str],
    sub_allow: &'static [&'static str],
    sub_deny: &'static [&'static str],
    /// `allow_responses`, as configuration text.
    responses: Option<&'static str>,
}

const fn user(name: &'static str, account: usize) -> UserDef {
    UserDef {
        name,
        account,
        pub_allow: &[],
        pub_deny: &[],
        sub_allow: &[],
        sub_deny: &[],
        responses: None,
    }
}

const USERS: [UserDef; 7] = [
    user("g", G),
    user("a", A),
    UserDef {
        pub_allow: &["a.>"],
        pub_deny: &["a.secret.>"],
        sub_allow: &["a.>", "svc.>"],
        sub_deny: &["a.hidden", "a.*.hidden"],
        responses: Some("{max: 1, expires: \"1s\"}"),
        ..user("a_resp", A)
    },
    user("b", B),
    UserDef {
        pub_deny: &["b.deny.>", "asvc.deny"],
        sub_deny: &["a.pub.deny", "fromA.>"],
        ..user("b_deny", B)
    },
    UserDef {
        pub_allow: &["c.>", "cb.*", "asvc.>"],
        sub_allow: &[">"],
        sub_deny: &["bs.b.secret", "a.c.hidden"],
        responses: Some("true"),
        ..user("c", C)
    },
    user("c2", C),
];

struct ExportDef {
    account: usize,
    service: bool,
    subject: &'static str,
    accounts: &'static [usize],
    /// `response_type, response_threshold`, as configuration text.
    response: Option<&'static str>,
}

const EXPORTS: [ExportDef; 7] = [
    ExportDef {
        account: A,
        service: false,
        subject: "a.pub.>",
        accounts: &[],
        response: None,
    },
    ExportDef {
        account: A,
        service: false,
        subject: "a.c.*",
        accounts: &[C],
        response: None,
    },
    // Before `svc.>`: an import takes the first export that covers it.
    ExportDef {
        account: A,
        service: true,
        subject: "svc.stream.*",
        accounts: &[],
        response: Some("response_type: stream, response_threshold: \"2s\""),
    },
    ExportDef {
        account: A,
        service: true,
        subject: "svc.>",
        accounts: &[],
        response: None,
    },
    ExportDef {
        account: B,
        service: false,
        subject: "b.>",
        accounts: &[],
        response: None,
    },
    ExportDef {
        account: B,
        service: true,
        subject: "bsvc.*",
        accounts: &[C],
        response: None,
    },
    // B passes on the service it imports from A: C's requests go C, B, A.
    ExportDef {
        account: B,
        service: true,
        subject: "asvc.>",
        accounts: &[C],
        response: None,
    },
];

struct ImportDef {
    importer: usize,
    exporter: usize,
    service: bool,
    subject: &'static str,
    to: Option<&'static str>,
    prefix: Option<&'static str>,
    /// A service that answers once.
    singleton: bool,
}

const fn import(
    importer: usize,
    exporter: usize,
    service: bool,
    subject: &'static str,
) -> ImportDef {
    ImportDef {
        importer,
        exporter,
        service,
        subject,
        to: None,
        prefix: None,
        singleton: true,
    }
}

const IMPORTS: [ImportDef; 9] = [
    ImportDef {
        to: Some("a.fromb.*"),
        ..import(A, B, false, "b.x.*")
    },
    import(B, A, false, "a.pub.>"),
    ImportDef {
        prefix: Some("fromA"),
        ..import(B, A, false, "a.pub.*")
    },
    ImportDef {
        to: Some("asvc.>"),
        ..import(B, A, true, "svc.>")
    },
    ImportDef {
        singleton: false,
        ..import(B, A, true, "svc.stream.*")
    },
    import(C, A, false, "a.c.*"),
    ImportDef {
        prefix: Some("bs"),
        ..import(C, B, false, "b.>")
    },
    ImportDef {
        to: Some("cb.*"),
        ..import(C, B, true, "bsvc.*")
    },
    import(C, B, true, "asvc.>"),
];

/// `(account, limits)`, as configuration text.
const LIMITS: [(usize, &str); 2] = [
    (A, "max_connections: 4"),
    (C, "max_payload: 512, max_subscriptions: 6"),
];
const MAX_PAYLOAD: usize = 2048;
const C_MAX_PAYLOAD: usize = 512;

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn user_text(u: &UserDef) -> String {
    let mut perms = Vec::new();
    for (key, allow, deny) in [
        ("publish", u.pub_allow, u.pub_deny),
        ("subscribe", u.sub_allow, u.sub_deny),
    ] {
        if !allow.is_empty() || !deny.is_empty() {
            perms.push(format!(
                "{key}: {{allow: {}, deny: {}}}",
                list(allow),
                list(deny)
            ));
        }
    }
    if let Some(r) = u.responses {
        perms.push(format!("allow_responses: {r}"));
    }
    let perms = if perms.is_empty() {
        String::new()
    } else {
        format!(", permissions: {{{}}}", perms.join(", "))
    };
    format!("{{user: {}, password: pw{perms}}}", u.name)
}

fn config_text() -> String {
    let mut t = String::from("authorization {\n  users: [\n");
    for u in USERS.iter().filter(|u| u.account == G) {
        t += &format!("    {}\n", user_text(u));
    }
    t += "  ]\n}\naccounts {\n";
    for (a, name) in ACCOUNTS.iter().enumerate().skip(1) {
        t += &format!("  {name}: {{\n    users: [\n");
        for u in USERS.iter().filter(|u| u.account == a) {
            t += &format!("      {}\n", user_text(u));
        }
        t += "    ]\n    exports: [\n";
        for e in EXPORTS.iter().filter(|e| e.account == a) {
            let kind = if e.service { "service" } else { "stream" };
            let mut entry = format!("{kind}: \"{}\"", e.subject);
            if !e.accounts.is_empty() {
                let names: Vec<&str> = e.accounts.iter().map(|&i| ACCOUNTS[i]).collect();
                entry += &format!(", accounts: [{}]", names.join(", "));
            }
            if let Some(r) = e.response {
                entry += &format!(", {r}");
            }
            t += &format!("      {{{entry}}}\n");
        }
        t += "    ]\n    imports: [\n";
        for i in IMPORTS.iter().filter(|i| i.importer == a) {
            let kind = if i.service { "service" } else { "stream" };
            let mut entry = format!(
                "{kind}: {{account: {}, subject: \"{}\"}}",
                ACCOUNTS[i.exporter], i.subject
            );
            if let Some(to) = i.to {
                entry += &format!(", to: \"{to}\"");
            }
            if let Some(p) = i.prefix {
                entry += &format!(", prefix: \"{p}\"");
            }
            t += &format!("      {{{entry}}}\n");
        }
        t += "    ]\n";
        for (_, limits) in LIMITS.iter().filter(|(l, _)| *l == a) {
            t += &format!("    limits: {{{limits}}}\n");
        }
        t += "  }\n";
    }
    t + "}\n"
}

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let text = config_text();
        let resolver = MapResolver(HashMap::new());
        let parsed = parse("server.conf", &text, &resolver, &|_| None).expect("config syntax");
        let (config, errors) = read_config(&parsed);
        assert!(errors.is_empty(), "{errors:?} in\n{text}");
        let users = Users::new(
            config.authorization.as_ref(),
            &config.accounts,
            None,
            None,
            None,
            None,
        )
        .expect("users");
        let accounts = Accounts::from_config(&config).expect("accounts");
        Auth { users, accounts }
    })
}

// ----- the naive model -------------------------------------------------------------

fn toks(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| b == b'.').collect()
}

/// Whether `pattern` matches `subject`, whose tokens are all taken literally.
fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let p = toks(pattern);
    let s = toks(subject);
    if s.iter().any(|t| t.is_empty()) {
        return false;
    }
    for (i, pt) in p.iter().enumerate() {
        if *pt == b">" {
            return s.len() > i;
        }
        if i >= s.len() || (*pt != b"*" && *pt != s[i]) {
            return false;
        }
    }
    p.len() == s.len()
}

/// Whether every subject `inner` matches is matched by `outer` (both valid).
fn subset(inner: &[u8], outer: &[u8]) -> bool {
    fn go(i: &[&[u8]], o: &[&[u8]]) -> bool {
        match (i.split_first(), o.split_first()) {
            (None, None) => true,
            (Some(_), Some((&b">", _))) => true,
            (Some((&b">", _)), _) => false,
            (Some((&b"*", ir)), Some((&b"*", or))) => go(ir, or),
            (Some((&b"*", _)), Some(_)) => false,
            (Some((it, ir)), Some((ot, or))) => (*ot == b"*" || it == ot) && go(ir, or),
            _ => false,
        }
    }
    go(&toks(inner), &toks(outer))
}

fn valid_subject(s: &[u8]) -> bool {
    let t = toks(s);
    !s.is_empty()
        && t.iter()
            .all(|t| !t.is_empty() && !t.iter().any(u8::is_ascii_whitespace))
        && t[..t.len() - 1].iter().all(|t| *t != b">")
}

fn valid_literal(s: &[u8]) -> bool {
    valid_subject(s) && toks(s).iter().all(|t| *t != b"*" && *t != b">")
}

/// `subject` (matched by `from`) rewritten onto `to`, wildcard by wildcard.
fn map(from: &[u8], to: &[u8], subject: &[u8]) -> Vec<u8> {
    let f = toks(from);
    let s = toks(subject);
    let mut captures = Vec::new();
    for (i, t) in f.iter().enumerate() {
        if *t == b"*" {
            captures.push(s[i].to_vec());
        }
        if *t == b">" {
            captures.push(s[i..].join(&b'.'));
        }
    }
    let mut captures = captures.into_iter();
    let out: Vec<Vec<u8>> = toks(to)
        .into_iter()
        .map(|t| {
            if t == b"*" || t == b">" {
                captures.next().expect("same wildcards")
            } else {
                t.to_vec()
            }
        })
        .collect();
    out.join(&b'.')
}

fn can_publish(u: &UserDef, s: &[u8]) -> bool {
    (u.pub_allow.is_empty() || u.pub_allow.iter().any(|e| matches(e.as_bytes(), s)))
        && !u.pub_deny.iter().any(|e| matches(e.as_bytes(), s))
}

fn can_subscribe(u: &UserDef, p: &[u8]) -> bool {
    (u.sub_allow.is_empty() || u.sub_allow.iter().any(|e| subset(p, e.as_bytes())))
        && !u.sub_deny.iter().any(|e| subset(p, e.as_bytes()))
}

fn may_receive(u: &UserDef, s: &[u8]) -> bool {
    (u.sub_allow.is_empty() || u.sub_allow.iter().any(|e| matches(e.as_bytes(), s)))
        && !u.sub_deny.iter().any(|e| matches(e.as_bytes(), s))
}

fn max_payload(account: usize) -> usize {
    if account == C {
        C_MAX_PAYLOAD
    } else {
        MAX_PAYLOAD
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    /// In the publisher's account, or a stream import: the reply as published.
    Plain,
    /// A request at hop `hop` of a chain of service imports: an `_R_` reply.
    Service { hop: usize },
    /// The answer to the request that went out under this `_R_` subject.
    Answer(Vec<u8>),
}

/// Where a publish may be delivered.
#[derive(Clone, Debug)]
struct Legit {
    account: usize,
    /// `None`: a subject the harness cannot know (an `_R_` reply it did not
    /// see, or the reply of a request it did not see).
    subject: Option<Vec<u8>>,
    route: Route,
}

/// A request that reached a service under an `_R_` reply.
struct Token {
    /// The service's account, where the answer is published.
    exporter: usize,
    /// Where answers go back, hop by hop: account and subject (`None` if
    /// that hop's `_R_` reply was not seen), the requester last.
    back: Vec<(usize, Option<Vec<u8>>)>,
    singleton: bool,
    /// The tag of the answer delivered (a singleton service answers once).
    answered: Option<u64>,
}

/// A tracked publish, by tag.
#[derive(Debug)]
struct Record {
    account: usize,
    subject: Vec<u8>,
    reply: Option<Vec<u8>>,
    /// Must not be delivered anywhere.
    refused: bool,
    legit: Vec<Legit>,
    /// A request's path through service imports: account, singleton, and
    /// the `_R_` reply seen at each hop.
    hops: Vec<(usize, bool, Option<Vec<u8>>)>,
}

/// Whether `from` reaches `to` by following service imports (importer to exporter).
fn serves(from: usize, to: usize) -> bool {
    let mut seen = vec![from];
    let mut i = 0;
    while i < seen.len() {
        let at = seen[i];
        for imp in IMPORTS
            .iter()
            .filter(|imp| imp.service && imp.importer == at)
        {
            if !seen.contains(&imp.exporter) {
                seen.push(imp.exporter);
            }
        }
        i += 1;
    }
    seen.contains(&to)
}

/// Every place a publish in `acc` on `subject` may legitimately reach, and
/// the path of the request through service imports.
#[allow(clippy::type_complexity)]
fn routes(
    acc: usize,
    subject: &[u8],
    tokens: &HashMap<Vec<u8>, Token>,
) -> (Vec<Legit>, Vec<(usize, bool, Option<Vec<u8>>)>) {
    let mut out = vec![Legit {
        account: acc,
        subject: Some(subject.to_vec()),
        route: Route::Plain,
    }];
    // Streams: each import, one hop.
    for i in IMPORTS.iter() {
        if i.service || i.exporter != acc || !matches(i.subject.as_bytes(), subject) {
            continue;
        }
        let target = match (i.prefix, i.to) {
            (Some(p), _) => [p.as_bytes(), b".", subject].concat(),
            (None, Some(to)) => map(i.subject.as_bytes(), to.as_bytes(), subject),
            (None, None) => subject.to_vec(),
        };
        out.push(Legit {
            account: i.importer,
            subject: Some(target),
            route: Route::Plain,
        });
    }
    // Services: the first import taking the request, from account to account.
    let mut hops = Vec::new();
    let (mut at, mut on) = (acc, subject.to_vec());
    while let Some(i) = IMPORTS.iter().find(|i| {
        i.service && i.importer == at && matches(i.to.unwrap_or(i.subject).as_bytes(), &on)
    }) {
        assert!(hops.len() < 8, "the configuration's service imports loop");
        on = if toks(i.subject.as_bytes())
            .iter()
            .all(|t| *t != b"*" && *t != b">")
        {
            i.subject.as_bytes().to_vec()
        } else {
            map(
                i.to.unwrap_or(i.subject).as_bytes(),
                i.subject.as_bytes(),
                &on,
            )
        };
        out.push(Legit {
            account: i.exporter,
            subject: Some(on.clone()),
            route: Route::Service { hop: hops.len() },
        });
        hops.push((i.exporter, i.singleton, None));
        at = i.exporter;
    }
    // Answers go back along the request's path.
    match tokens.get(subject) {
        Some(t) if t.exporter == acc => {
            for (account, on) in &t.back {
                out.push(Legit {
                    account: *account,
                    subject: on.clone(),
                    route: Route::Answer(subject.to_vec()),
                });
            }
        }
        Some(_) => {}
        // The answer to a request the harness did not see (an untracked
        // client's): in an account on a chain of imports to here.
        None if subject.starts_with(b"_R_.") => {
            for a in (0..ACCOUNTS.len()).filter(|&a| a != acc && serves(a, acc)) {
                out.push(Legit {
                    account: a,
                    subject: None,
                    route: Route::Plain,
                });
            }
        }
        None => {}
    }
    (out, hops)
}

// ----- input decoding --------------------------------------------------------------

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

const TOKENS: [&str; 25] = [
    "a", "b", "c", "x", "q", "pub", "secret", "hidden", "deny", "svc", "asvc", "stream", "fromA",
    "fromb", "bs", "cb", "bsvc", "inbox", "_R_", "_GR_", "$JS", "ACK", "*", ">", "",
];

const PRESETS: [&str; 25] = [
    "a.pub.x",
    "a.pub.>",
    "a.pub.deny",
    "a.c.q",
    "a.c.hidden",
    "a.fromb.*",
    "b.x.y",
    "b.secret",
    "b.deny.x",
    "svc.q",
    "asvc.q",
    "asvc.deny",
    "svc.stream.q",
    "bsvc.q",
    "cb.q",
    "fromA.a.pub",
    "bs.b.x",
    "bs.b.secret",
    "a.secret.x",
    "a.hidden",
    ">",
    "inbox.*",
    "_R_.>",
    "c.x",
    "asvc.stream.q",
];

fn gen_subject(b: &mut Bytes) -> Option<Vec<u8>> {
    let n = b.next()?;
    if n & 0x80 != 0 {
        return Some(
            PRESETS[(n & 0x7f) as usize % PRESETS.len()]
                .as_bytes()
                .to_vec(),
        );
    }
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..1 + n % 4 {
        out.push(TOKENS[b.next()? as usize % TOKENS.len()]);
    }
    let s = out.join(".");
    // An empty subject would change the shape of the control line.
    Some(if s.is_empty() {
        b"a".to_vec()
    } else {
        s.into_bytes()
    })
}

// ----- the fake runtime and the checks ---------------------------------------------

const SLOTS: usize = 8;
/// Marks a tracked payload; raw bytes never contain it.
const MARKER: u8 = 0x01;
/// Room for one message (control line up to the default 4096 bytes, payload, headers).
const ONE_MESSAGE: usize = 4096 * 2 + MAX_PAYLOAD + 256;
const HEADERS: &[u8] = b"NATS/1.0\r\nK: v\r\n\r\n";
const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ident {
    /// No CONNECT was accepted yet (and none could have been).
    None,
    Known(usize),
    Unknown,
}

#[derive(Debug)]
enum Action {
    /// Nothing to track (raw bytes, or ops on an untracked connection).
    Untracked {
        may_connect: bool,
    },
    Connect {
        user: Option<usize>,
        pedantic: bool,
        headers: bool,
    },
    Sub {
        sid: Vec<u8>,
        subject: Vec<u8>,
        queue: Option<&'static str>,
    },
    Unsub {
        sid: Vec<u8>,
        max: bool,
    },
    Pub {
        tag: u64,
        subject: Vec<u8>,
        reply: Option<Vec<u8>>,
        size: usize,
        hpub: bool,
    },
    Ping,
}

struct Conn {
    id: ClientId,
    /// Ops not yet handed to the engine can still be tracked (no raw bytes
    /// queued before them).
    tracked: bool,
    /// The identity will not be known once the queued input is read.
    ident_lost: bool,
    /// What the engine has read so far: identity and subscriptions.
    ident: Ident,
    subs_known: bool,
    headers: bool,
    pedantic: bool,
    /// Users authenticated since the account was last changed.
    session_users: Vec<usize>,
    /// Accounts and users whose deliveries may still be queued or unparsed.
    drain_accounts: Vec<usize>,
    drain_users: Vec<usize>,
    /// Subscriptions by sid (each sid with the subjects it may have).
    subs: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Removed since the last complete drain.
    retired: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Reply subjects of messages received since the last CONNECT.
    seen_replies: HashSet<Vec<u8>>,
    recent_replies: VecDeque<Vec<u8>>,
    stuck: bool,
    /// Written by the engine, not yet parsed (an incomplete frame).
    rx: Vec<u8>,
    /// Input the engine may not read yet (the connection is paused).
    inbox: VecDeque<(Vec<u8>, Action)>,
    /// The last bytes of untracked input, to spot a CONNECT split across reads.
    tail: Vec<u8>,
}

impl Conn {
    fn new(id: ClientId) -> Conn {
        Conn {
            id,
            tracked: true,
            ident_lost: false,
            ident: Ident::None,
            subs_known: true,
            headers: false,
            pedantic: true,
            session_users: Vec::new(),
            drain_accounts: Vec::new(),
            drain_users: Vec::new(),
            subs: HashMap::new(),
            retired: HashMap::new(),
            seen_replies: HashSet::new(),
            recent_replies: VecDeque::new(),
            stuck: false,
            rx: Vec::new(),
            inbox: VecDeque::new(),
            tail: Vec::new(),
        }
    }

    /// Whether `bytes`, read after what came before, may contain a CONNECT.
    fn may_connect(&mut self, bytes: &[u8]) -> bool {
        let mut all = std::mem::take(&mut self.tail);
        all.extend_from_slice(bytes);
        let found = all.windows(7).any(|w| w.eq_ignore_ascii_case(b"connect"));
        let keep = all.len().saturating_sub(6);
        self.tail = all[keep..].to_vec();
        found
    }
}

struct Harness {
    server: Server,
    now: Time,
    max_pending: usize,
    slots: Vec<Option<Conn>>,
    records: Vec<Option<Record>>,
    tokens: HashMap<Vec<u8>, Token>,
}

#[derive(Debug)]
enum Frame {
    Msg {
        subject: Vec<u8>,
        sid: Vec<u8>,
        reply: Option<Vec<u8>>,
        payload: Vec<u8>,
    },
    Err(Vec<u8>),
    Other,
}

/// The next complete frame of server output and its length, `None` if the
/// bytes end inside one. Panics on anything that is not valid output.
fn next_frame(rx: &[u8]) -> Option<(Frame, usize)> {
    let end = match rx.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            assert!(lf > 0 && rx[lf - 1] == b'\r', "a line not ended by CRLF");
            lf - 1
        }
        None => {
            assert!(
                rx.len() < 16 * 1024,
                "no line end in {} bytes of output",
                rx.len()
            );
            return None;
        }
    };
    let line = &rx[..end];
    let rest = &rx[end + 2..];
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let frame = match words[0] {
        b"MSG" | b"HMSG" => {
            let hmsg = words[0] == b"HMSG";
            let args = &words[1..];
            assert!(
                args.iter().all(|a| !a.is_empty()),
                "bad line {:?}",
                String::from_utf8_lossy(line)
            );
            let sizes = if hmsg { 2 } else { 1 };
            assert!(
                args.len() == 2 + sizes || args.len() == 3 + sizes,
                "bad line {:?}",
                String::from_utf8_lossy(line)
            );
            let number = |t: &[u8]| -> usize {
                assert!(
                    t.iter().all(u8::is_ascii_digit),
                    "bad size in {:?}",
                    String::from_utf8_lossy(line)
                );
                std::str::from_utf8(t).unwrap().parse().expect("size")
            };
            let total = number(args[args.len() - 1]);
            if rest.len() < total + 2 {
                return None;
            }
            assert_eq!(
                &rest[total..total + 2],
                b"\r\n",
                "payload not followed by CRLF"
            );
            let payload = rest[..total].to_vec();
            if hmsg {
                let hdr = number(args[args.len() - 2]);
                assert!(
                    hdr <= total && payload.starts_with(b"NATS/1.0"),
                    "bad HMSG headers"
                );
            }
            let reply = (args.len() == 3 + sizes).then(|| args[2].to_vec());
            let n = end + 2 + total + 2;
            return Some((
                Frame::Msg {
                    subject: args[0].to_vec(),
                    sid: args[1].to_vec(),
                    reply,
                    payload,
                },
                n,
            ));
        }
        b"-ERR" => {
            let text = &line[5..];
            assert!(
                text.len() >= 2 && text[0] == b'\'' && text[text.len() - 1] == b'\'',
                "bad -ERR {:?}",
                String::from_utf8_lossy(line)
            );
            Frame::Err(text[1..text.len() - 1].to_vec())
        }
        b"INFO" => {
            assert!(
                line.starts_with(b"INFO {") && line.ends_with(b"} "),
                "bad INFO"
            );
            Frame::Other
        }
        b"PING" | b"PONG" | b"+OK" if words.len() == 1 => Frame::Other,
        _ => panic!(
            "malformed server output {:?}",
            String::from_utf8_lossy(line)
        ),
    };
    Some((frame, end + 2))
}

/// The tag of a tracked payload.
fn tag_of(payload: &[u8]) -> Option<u64> {
    let at = payload.iter().position(|&b| b == MARKER)?;
    let rest = payload[at + 1..].strip_prefix(b"#")?;
    let end = rest.iter().position(|&b| b == b'#')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The text of a quoted subject in a permission violation (`"..."`), if plain.
fn quoted(text: &[u8], prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = text.strip_prefix(prefix)?.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some((rest[..end].to_vec(), rest[end + 1..].to_vec()))
}

const KNOWN_ERRORS: [&str; 13] = [
    "Unknown Protocol Operation",
    "maximum control line exceeded",
    "Maximum Payload Violation",
    "Authorization Violation",
    "Authentication Timeout",
    "Stale Connection",
    "maximum connections exceeded",
    "maximum account active connections exceeded",
    "maximum subscriptions exceeded",
    "invalid client protocol",
    "no responders requires headers support",
    "Invalid Subject",
    "Invalid Publish Subject",
];

impl Harness {
    fn slot_of(&self, id: ClientId) -> Option<usize> {
        self.slots
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == id))
    }

    fn conn(&mut self, s: usize) -> &mut Conn {
        self.slots[s].as_mut().expect("open slot")
    }

    /// Opens a connection in slot `s` if there is none; false if the server
    /// refused it.
    fn accept(&mut self, s: usize) -> bool {
        if self.slots[s].is_some() {
            return true;
        }
        let peer = Peer {
            ip: "10.0.0.1".into(),
            port: 40000 + s as u16,
        };
        let id = self.server.accept(peer, self.now);
        self.slots[s] = Some(Conn::new(id));
        self.pump();
        self.slots[s].is_some()
    }

    fn send(&mut self, s: usize, bytes: Vec<u8>, action: Action) {
        self.conn(s).inbox.push_back((bytes, action));
        self.feed();
    }

    /// Hands queued input to the engine wherever it may be read.
    fn feed(&mut self) {
        loop {
            let mut progressed = false;
            for s in 0..SLOTS {
                while let Some(conn) = self.slots[s].as_mut() {
                    if conn.inbox.is_empty() || !self.server.can_read(conn.id) {
                        break;
                    }
                    let (bytes, action) = conn.inbox.pop_front().expect("not empty");
                    let id = conn.id;
                    self.before_read(s, action, &bytes);
                    self.server.handle_read(id, &bytes, self.now);
                    self.pump();
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// The model's view of what the engine is about to read.
    fn before_read(&mut self, s: usize, action: Action, bytes: &[u8]) {
        self.settle(s);
        let all_seen = {
            let conn = self.slots[s].as_ref().expect("open");
            self.server.outbound_len(conn.id) == 0 && conn.rx.is_empty()
        };
        let now_tokens = &self.tokens;
        let conn = self.slots[s].as_mut().expect("open");
        match action {
            Action::Untracked { may_connect } => {
                conn.subs_known = false;
                if may_connect {
                    conn.ident = Ident::Unknown;
                }
            }
            Action::Connect {
                user,
                pedantic,
                headers,
            } => {
                conn.pedantic = pedantic;
                conn.headers = headers;
                conn.seen_replies.clear();
                let Some(u) = user else {
                    // Refused: the connection is closed.
                    return;
                };
                let account = USERS[u].account;
                let same = matches!(conn.ident, Ident::Known(old) if USERS[old].account == account);
                if !same {
                    let subs = std::mem::take(&mut conn.subs);
                    for (sid, mut subjects) in subs {
                        conn.retired.entry(sid).or_default().append(&mut subjects);
                    }
                    conn.session_users.clear();
                }
                conn.ident = Ident::Known(u);
                conn.session_users.push(u);
                conn.drain_users.push(u);
                conn.drain_accounts.push(account);
            }
            Action::Sub {
                sid,
                subject,
                queue,
            } => {
                if let Ident::Known(u) = conn.ident {
                    if valid_subject(&subject)
                        && queue != Some("_sys_")
                        && can_subscribe(&USERS[u], &subject)
                    {
                        conn.subs.entry(sid).or_default().push(subject);
                    }
                }
            }
            Action::Unsub { sid, max } => {
                if !max {
                    if let Some(mut subjects) = conn.subs.remove(&sid) {
                        conn.retired.entry(sid).or_default().append(&mut subjects);
                    }
                }
            }
            Action::Pub {
                tag,
                subject,
                reply,
                size,
                hpub,
            } => {
                let (account, refused) = match conn.ident {
                    Ident::Known(u) => {
                        let user = &USERS[u];
                        let total = size + if hpub { HEADERS.len() } else { 0 };
                        let reserved_reply = reply.as_ref().is_some_and(|r| {
                            [&b"_R_."[..], b"$JS.ACK.", b"_GR_."]
                                .iter()
                                .any(|p| r.starts_with(p))
                        });
                        let permitted = can_publish(user, &subject)
                            || (user.responses.is_some()
                                && (!all_seen || conn.seen_replies.contains(&subject)));
                        let refused = total > max_payload(user.account)
                            || (hpub && !conn.headers)
                            || (conn.pedantic && !valid_literal(&subject))
                            || !permitted
                            || subject.starts_with(b"_GR_.")
                            || reserved_reply;
                        (user.account, refused)
                    }
                    // Anything but CONNECT first is refused.
                    Ident::None => (G, true),
                    Ident::Unknown => unreachable!("tagged publish of an unknown identity"),
                };
                let (legit, hops) = if refused {
                    (Vec::new(), Vec::new())
                } else {
                    routes(account, &subject, now_tokens)
                };
                let record = Record {
                    account,
                    subject,
                    reply,
                    refused,
                    legit,
                    hops,
                };
                let tag = tag as usize;
                if self.records.len() <= tag {
                    self.records.resize_with(tag + 1, || None);
                }
                self.records[tag] = Some(record);
            }
            Action::Ping => {}
        }
        let _ = bytes;
    }

    fn pump(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Flush(id) => {
                    if let Some(s) = self.slot_of(id) {
                        if !self.conn(s).stuck {
                            self.write(s, usize::MAX);
                        } else {
                            // A full socket: the runtime tried and wrote nothing
                            // (`write_deadline` runs).
                            self.server.handle_written(id, 0, self.now);
                        }
                    }
                }
                Event::Close(id, _reason) => {
                    let s = self.slot_of(id).expect("a Close for a known client");
                    if !self.conn(s).stuck {
                        self.write(s, usize::MAX);
                    }
                    self.close(s);
                }
                // Input waiting for it is read by `feed` (the event may be
                // stale by then: `can_read` decides).
                Event::Resume(_) => {}
                Event::Log(_, line) => assert!(!line.is_empty(), "empty log line"),
                Event::StopAccepting | Event::Exit => panic!("lame duck mode was never asked for"),
                // A worker thread's job, done at once.
                Event::Job(job) => self.server.handle_job_done(job.run(), self.now),
            }
        }
    }

    fn close(&mut self, s: usize) {
        let conn = self.slots[s].take().expect("open");
        self.server
            .handle_closed(conn.id, CloseReason::ClientClosed, self.now);
        assert_eq!(
            self.server.outbound_len(conn.id),
            0,
            "a closed client has output"
        );
        assert!(
            !self.server.can_read(conn.id),
            "a closed client is readable"
        );
    }

    /// Writes up to `limit` queued bytes of slot `s` and checks what they say.
    fn write(&mut self, s: usize, limit: usize) {
        let id = self.conn(s).id;
        let mut left = limit;
        while left > 0 {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = self.server.outbound(id, &mut slices);
            if n == 0 {
                break;
            }
            let mut bytes = Vec::new();
            for slice in &slices[..n] {
                bytes.extend_from_slice(slice);
            }
            bytes.truncate(left);
            left -= bytes.len();
            self.server.handle_written(id, bytes.len(), self.now);
            self.conn(s).rx.extend_from_slice(&bytes);
        }
        self.parse(s);
    }

    fn parse(&mut self, s: usize) {
        let mut rx = std::mem::take(&mut self.conn(s).rx);
        let mut at = 0;
        while let Some((frame, n)) = next_frame(&rx[at..]) {
            at += n;
            match frame {
                Frame::Msg {
                    subject,
                    sid,
                    reply,
                    payload,
                } => self.check_msg(s, &subject, &sid, reply, &payload),
                Frame::Err(text) => self.check_err(s, &text),
                Frame::Other => {}
            }
        }
        rx.drain(..at);
        self.conn(s).rx = rx;
        self.settle(s);
    }

    /// Once everything delivered to slot `s` was seen, forgets the
    /// subscriptions and identities it had before.
    fn settle(&mut self, s: usize) {
        let Some(conn) = self.slots[s].as_mut() else {
            return;
        };
        if conn.rx.is_empty() && self.server.outbound_len(conn.id) == 0 {
            conn.retired.clear();
            conn.drain_users = conn.session_users.clone();
            conn.drain_accounts = match conn.ident {
                Ident::Known(u) => vec![USERS[u].account],
                _ => Vec::new(),
            };
        }
    }

    fn check_msg(
        &mut self,
        s: usize,
        subject: &[u8],
        sid: &[u8],
        reply: Option<Vec<u8>>,
        payload: &[u8],
    ) {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let conn = self.slots[s].as_mut().expect("open");
        if let Some(r) = &reply {
            conn.seen_replies.insert(r.clone());
            if conn.recent_replies.len() == 8 {
                conn.recent_replies.pop_front();
            }
            conn.recent_replies.push_back(r.clone());
        }
        let ident = conn.ident;
        assert!(
            ident != Ident::None,
            "MSG to a connection that never logged in"
        );
        // The sid is a subscription whose subject matches.
        if conn.subs_known {
            let ok = conn
                .subs
                .get(sid)
                .into_iter()
                .chain(conn.retired.get(sid))
                .flatten()
                .any(|p| matches(p, subject));
            assert!(
                ok,
                "MSG {} on sid {} that no subscription of slot {s} matches",
                show(subject),
                show(sid)
            );
        }
        // The receiver may see the subject.
        let status = payload == NO_RESPONDERS;
        if ident != Ident::Unknown && !status {
            let ok = conn
                .drain_users
                .iter()
                .any(|&u| may_receive(&USERS[u], subject));
            assert!(
                ok,
                "slot {s} ({:?}) received {} against its subscribe permissions",
                conn.drain_users
                    .iter()
                    .map(|&u| USERS[u].name)
                    .collect::<Vec<_>>(),
                show(subject)
            );
        }
        let Some(tag) = tag_of(payload) else { return };
        let accounts = match ident {
            Ident::Known(_) => conn.drain_accounts.clone(),
            _ => (0..ACCOUNTS.len()).collect(),
        };
        let record = self.records[tag as usize]
            .as_ref()
            .expect("a tag that was sent");
        assert!(
            !record.refused,
            "refused PUB {} (tag {tag}) from account {} delivered to slot {s} on {}",
            show(&record.subject),
            ACCOUNTS[record.account],
            show(subject)
        );
        let fits = |l: &&Legit| {
            accounts.contains(&l.account)
                && l.subject.as_ref().is_none_or(|x| x == subject)
                && match (&l.route, &record.reply, &reply) {
                    (Route::Service { .. }, Some(_), Some(r)) => r.starts_with(b"_R_."),
                    (Route::Service { .. }, None, None) => true,
                    (Route::Service { .. }, _, _) => false,
                    (_, want, got) => want == got,
                }
        };
        let Some(legit) = record.legit.iter().find(fits) else {
            panic!(
                "LEAK: PUB {} (tag {tag}, reply {:?}) in {} reached slot {s} (accounts {:?}) as {} reply {:?}; legit: {:?}",
                show(&record.subject),
                record.reply.as_deref().map(show),
                ACCOUNTS[record.account],
                accounts.iter().map(|&a| ACCOUNTS[a]).collect::<Vec<_>>(),
                show(subject),
                reply.as_deref().map(show),
                record.legit
            );
        };
        let (route, exporter) = (legit.route.clone(), legit.account);
        match route {
            Route::Service { hop } => {
                let Some(token) = reply else { return };
                let record = self.records[tag as usize].as_mut().expect("sent");
                let Some(original) = record.reply.clone() else {
                    return;
                };
                record.hops[hop].2.get_or_insert_with(|| token.clone());
                let mut back: Vec<(usize, Option<Vec<u8>>)> = record.hops[..hop]
                    .iter()
                    .rev()
                    .map(|(a, _, t)| (*a, t.clone()))
                    .collect();
                back.push((record.account, Some(original)));
                let singleton = record.hops[hop].1;
                let entry = self.tokens.entry(token).or_insert_with(|| Token {
                    exporter,
                    back: back.clone(),
                    singleton,
                    answered: None,
                });
                assert!(
                    entry.exporter == exporter && entry.back.last() == back.last(),
                    "one `_R_` reply for two requests"
                );
            }
            Route::Answer(token) => {
                let t = self
                    .tokens
                    .get_mut(&token)
                    .expect("answers follow a known request");
                if t.singleton {
                    assert!(
                        t.answered.is_none_or(|a| a == tag),
                        "a singleton service answered twice on {}",
                        show(&token)
                    );
                    t.answered = Some(tag);
                }
            }
            Route::Plain => {}
        }
    }

    fn check_err(&mut self, s: usize, text: &[u8]) {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let known = KNOWN_ERRORS.iter().any(|e| e.as_bytes() == text)
            || text.starts_with(b"Permissions Violation for ");
        assert!(known, "unknown -ERR {}", show(text));
        let conn = self.slots[s].as_ref().expect("open");
        if !conn.subs_known || !matches!(conn.ident, Ident::Known(_)) {
            return;
        }
        let users = &conn.drain_users;
        if let Some((subject, _)) = quoted(text, b"Permissions Violation for Publish to ") {
            let ok = subject.starts_with(b"_GR_.")
                || users.iter().any(|&u| !can_publish(&USERS[u], &subject));
            assert!(
                ok,
                "slot {s} refused a publish to {} it may make",
                show(&subject)
            );
        }
        if let Some((subject, rest)) = quoted(text, b"Permissions Violation for Subscription to ") {
            let ok = rest == b" using queue \"_sys_\""
                || users.iter().any(|&u| !can_subscribe(&USERS[u], &subject));
            assert!(
                ok,
                "slot {s} refused a subscription to {} it may make",
                show(&subject)
            );
        }
    }

    /// The bytes queued for each client stay within `max_pending` plus one
    /// message: past it the engine drops the client as a slow consumer.
    fn check_pending(&mut self) {
        let bound = self.max_pending + ONE_MESSAGE;
        for conn in self.slots.iter().flatten() {
            let queued = self.server.outbound_len(conn.id);
            assert!(
                queued <= bound,
                "{queued} bytes queued (max_pending {})",
                self.max_pending
            );
        }
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(t) = self.server.poll_timeout().filter(|&t| t <= until) {
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.pump();
            self.feed();
        }
        self.now = until;
        self.feed();
    }

    /// A tag for a publish by slot `s`, if its outcome can be tracked.
    fn next_tag(&mut self, s: usize) -> Option<u64> {
        let conn = self.conn(s);
        if !conn.tracked || conn.ident_lost {
            return None;
        }
        let tag = self.records.len() as u64;
        self.records.push(None);
        Some(tag)
    }

    /// Sends `bytes` as a tracked op if the connection is still tracked.
    fn op(&mut self, s: usize, bytes: Vec<u8>, action: Action) {
        if !self.accept(s) {
            return;
        }
        let conn = self.conn(s);
        let action = if conn.tracked {
            action
        } else {
            let may_connect = conn.may_connect(&bytes);
            conn.ident_lost |= may_connect;
            Action::Untracked { may_connect }
        };
        self.send(s, bytes, action);
    }

    fn step(&mut self, b: &mut Bytes) -> Option<()> {
        let op = b.next()? % 13;
        let slot = b.next()?;
        let s = slot as usize % SLOTS;
        match op {
            0 | 1 => {
                let subject = gen_subject(b)?;
                let reply = match b.next()? % 4 {
                    0 | 1 => None,
                    2 => Some(format!("inbox.{s}").into_bytes()),
                    _ => Some(gen_subject(b)?),
                };
                let size = b.next()? as usize * 12;
                let hpub = b.next()? & 1 == 1;
                self.publish(s, subject, reply, size, hpub);
            }
            2 | 12 => {
                let subject = gen_subject(b)?;
                let queue = match b.next()? % 8 {
                    5 => Some("q1"),
                    6 => Some("q2"),
                    7 => Some("_sys_"),
                    _ => None,
                };
                let sid = (1 + b.next()? % 12).to_string().into_bytes();
                let mut line = b"SUB ".to_vec();
                line.extend_from_slice(&subject);
                if let Some(q) = queue {
                    line.push(b' ');
                    line.extend_from_slice(q.as_bytes());
                }
                line.push(b' ');
                line.extend_from_slice(&sid);
                line.extend_from_slice(b"\r\n");
                self.op(
                    s,
                    line,
                    Action::Sub {
                        sid,
                        subject,
                        queue,
                    },
                );
            }
            3 => {
                let sid = (1 + b.next()? % 12).to_string().into_bytes();
                let max = b.next()?;
                let mut line = b"UNSUB ".to_vec();
                line.extend_from_slice(&sid);
                if max != 0 {
                    line.extend_from_slice(format!(" {}", 1 + max % 3).as_bytes());
                }
                line.extend_from_slice(b"\r\n");
                self.op(s, line, Action::Unsub { sid, max: max != 0 });
            }
            4 => {
                let pick = b.next()? as usize % (USERS.len() + 2);
                let flags = b.next()?;
                let (echo, verbose, pedantic) = (flags & 1 == 0, flags & 2 != 0, flags & 4 != 0);
                let (headers, no_responders) = (flags & 8 != 0, flags & 16 != 0);
                let protocol = if flags & 32 != 0 { 0 } else { 1 };
                let creds = match pick {
                    p if p < USERS.len() => {
                        format!(",\"user\":\"{}\",\"pass\":\"pw\"", USERS[p].name)
                    }
                    p if p == USERS.len() => ",\"user\":\"a\",\"pass\":\"wrong\"".to_string(),
                    _ => String::new(),
                };
                let line = format!(
                    "CONNECT {{\"verbose\":{verbose},\"pedantic\":{pedantic},\"echo\":{echo},\
                     \"headers\":{headers},\"no_responders\":{no_responders},\"protocol\":{protocol}{creds}}}\r\n"
                );
                let accepted = pick < USERS.len() && (headers || !no_responders);
                let action = Action::Connect {
                    user: accepted.then_some(pick),
                    pedantic,
                    headers,
                };
                self.op(s, line.into_bytes(), action);
            }
            5 => {
                let pick = b.next()? as usize;
                let replies = self.slots[s].as_ref().map(|c| &c.recent_replies);
                let subject = replies
                    .filter(|r| !r.is_empty())
                    .map(|r| r[pick % r.len()].clone());
                if let Some(subject) = subject {
                    self.publish(s, subject, None, 16, false);
                }
            }
            6 => {
                let len = b.next()? as usize;
                let split = b.next()? as usize;
                let raw: Vec<u8> = b
                    .take(len)
                    .iter()
                    .map(|&x| if x == MARKER { 0x02 } else { x })
                    .collect();
                if !self.accept(s) {
                    return Some(());
                }
                self.conn(s).tracked = false;
                let split = split % (raw.len() + 1);
                for part in [&raw[..split], &raw[split..]] {
                    let conn = self.conn(s);
                    let may_connect = conn.may_connect(part);
                    conn.ident_lost |= may_connect;
                    self.send(s, part.to_vec(), Action::Untracked { may_connect });
                    if self.slots[s].is_none() {
                        break;
                    }
                }
            }
            7 => {
                const STEPS: [u64; 8] = [1, 10, 100, 1_000, 2_500, 10_000, 121_000, 180_000];
                self.advance(Duration::from_millis(STEPS[slot as usize % 8]));
            }
            8 => {
                if slot == 255 {
                    self.server.shutdown(self.now);
                    self.pump();
                } else if self.slots[s].is_some() {
                    self.close(s);
                }
            }
            9 => {
                if let Some(conn) = self.slots[s].as_mut() {
                    conn.stuck = !conn.stuck;
                    if !conn.stuck {
                        self.write(s, usize::MAX);
                        self.feed();
                    }
                }
            }
            10 => {
                let n = b.next()? as usize * 37;
                if self.slots[s].is_some() {
                    self.write(s, n);
                    self.feed();
                }
            }
            _ => {
                let pong = b.next()? & 1 == 1;
                let line = if pong { b"PONG\r\n" } else { b"PING\r\n" };
                self.op(s, line.to_vec(), Action::Ping);
            }
        }
        Some(())
    }

    fn publish(
        &mut self,
        s: usize,
        subject: Vec<u8>,
        reply: Option<Vec<u8>>,
        size: usize,
        hpub: bool,
    ) {
        if !self.accept(s) {
            return;
        }
        let tag = self.next_tag(s);
        let mut payload = Vec::with_capacity(size);
        if let Some(tag) = tag {
            payload.push(MARKER);
            payload.extend_from_slice(format!("#{tag}#").as_bytes());
        }
        payload.resize(size.max(payload.len()), b'x');
        let mut line = if hpub {
            b"HPUB ".to_vec()
        } else {
            b"PUB ".to_vec()
        };
        line.extend_from_slice(&subject);
        if let Some(r) = &reply {
            line.push(b' ');
            line.extend_from_slice(r);
        }
        if hpub {
            let total = HEADERS.len() + payload.len();
            line.extend_from_slice(format!(" {} {total}\r\n", HEADERS.len()).as_bytes());
            line.extend_from_slice(HEADERS);
        } else {
            line.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
        }
        line.extend_from_slice(&payload);
        line.extend_from_slice(b"\r\n");
        let action = match tag {
            Some(tag) => Action::Pub {
                tag,
                subject,
                reply,
                size: payload.len(),
                hpub,
            },
            None => Action::Ping,
        };
        self.op(s, line, action);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let Some(flags) = b.next() else { return };
    let max_pending = [4096, 16 * 1024, 64 * 1024, 64 * 1024][(flags >> 2 & 3) as usize];
    let opts = Options {
        max_payload: MAX_PAYLOAD as u32,
        max_pending: max_pending as u64,
        max_connections: 6,
        ping_interval: Duration::from_secs(5),
        ping_max: 2,
        debug: flags & 2 != 0,
        trace: flags & 2 != 0,
        disable_sublist_cache: flags & 1 != 0,
        ..Options::default()
    };
    let server = Server::with_auth(opts, auth().clone(), u64::from(flags >> 4));
    let mut h = Harness {
        server,
        now: Time::from_millis(1_000),
        max_pending,
        slots: (0..SLOTS).map(|_| None).collect(),
        records: Vec::new(),
        tokens: HashMap::new(),
    };
    while h.step(&mut b).is_some() {
        h.check_pending();
    }
    h.check_pending();
    // Shut down: nothing may be left behind.
    h.server.shutdown(h.now);
    h.pump();
    for s in 0..SLOTS {
        assert!(h.slots[s].is_none(), "slot {s} still open after shutdown");
    }
    h.advance(Duration::from_secs(600));
    assert_eq!(h.server.num_clients(), 0);
    assert_eq!(h.server.num_subscriptions(), 0);
    assert_eq!(h.server.pending_responses(), 0);
});
