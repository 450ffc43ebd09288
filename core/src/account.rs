//! Accounts: each tenant's own subject space, the streams and services it shares, and its limits.
//!
//! [`Accounts`] is compiled once from the `accounts` block: it checks every
//! import against the exporter's exports (nats-server's "stream import not
//! authorized") and turns each pair into a route. The engine keeps one
//! `Account` per entry, with its sublist and the routes that leave it:
//!
//! - a *stream route* lives in the exporting account: a message published there
//!   on a subject the importer takes is delivered again in the importer, on the
//!   same subject, under a `prefix`, or remapped with `to`;
//! - a *service route* lives in the importing account: a request published
//!   there on the import's local subject is delivered in the exporter, with its
//!   reply subject replaced by a fresh `_R_.<prefix>.<id>`; the exporter's
//!   answer to that subject is routed back to the original reply
//!   (a `PendingResponse`).
//!
//! As in nats-server, a stream is delivered one hop: what reached an account
//! through a stream import is not exported again from there. A request follows
//! service imports from account to account (the service may itself be
//! imported), and its answer follows the `_R_` replies back. Import cycles are
//! refused at load ("import forms a cycle"), so nothing can loop.

use crate::jetstream::api::{AccountJetStream, AccountLimits as JsLimits};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;

use crate::config::options::{AccountConfig, AccountLimits, Config, Export, Import};
use crate::config::parse::ConfigError;
use crate::config::value::Pos;
use crate::subject::{
    is_literal, is_subset, is_valid_literal_subject, is_valid_subject, map_subject,
    subjects_collide, tokens, wildcard_signature,
};
use crate::sublist::{Matches, SubKey, Sublist};
use crate::time::Time;

/// The account of users not assigned to any configured account.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The system account created when the configuration names none.
pub const SYSTEM_ACCOUNT: &str = "$SYS";
/// How long a service's answer is awaited when the export sets no `threshold`.
const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);
/// Reply subjects of requests that crossed into another account start with this.
pub const SERVICE_REPLY_PREFIX: &[u8] = b"_R_.";

/// How many messages a service sends back for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// One response (the default).
    Singleton,
    /// Any number, until the response threshold passes without one.
    Stream,
    /// Any number, until an empty message ends them or the threshold passes.
    Chunked,
}

impl ResponseType {
    fn parse(text: Option<&str>) -> Result<ResponseType, String> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("single" | "singleton") => Ok(ResponseType::Singleton),
            Some("stream") => Ok(ResponseType::Stream),
            Some("chunk" | "chunked") => Ok(ResponseType::Chunked),
            Some(other) => Err(format!(
                "unknown response type {other:?} (expected singleton, stream or chunked)"
            )),
        }
    }
}

/// The accounts of a configuration, checked: `$G` first, then the configured
/// ones in order, then `$SYS` unless the configuration names a system account.
#[derive(Clone, Debug)]
pub struct Accounts {
    specs: Vec<AccountSpec>,
    /// An `accounts` block was configured (else `$G` gets JetStream when the
    /// server has it).
    configured: bool,
    /// `None` with `no_system_account`.
    system: Option<usize>,
}

#[derive(Clone, Debug)]
struct AccountSpec {
    name: String,
    limits: AccountLimits,
    /// Its JetStream limits, when its configuration enables JetStream.
    jetstream: Option<JsLimits>,
    /// Subjects of its stream exports (for the cycle check).
    stream_exports: Vec<Vec<u8>>,
    stream_routes: Vec<StreamRoute>,
    service_routes: Vec<ServiceRoute>,
    /// Its exports as configured (for monitoring).
    exports: Vec<ExportInfo>,
}

/// An export as configured, for `/accountz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExportInfo {
    pub service: bool,
    pub subject: String,
    /// Accounts allowed to import it; `None` = public.
    pub accounts: Option<Vec<String>>,
    pub response: ResponseType,
    /// Where the export was written.
    pub pos: Option<Pos>,
}

/// Where a stream import puts the exporter's subject in the importer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// On the same subject.
    Same,
    /// Under `<prefix>.`.
    Prefix(Box<[u8]>),
    /// Mapped onto this pattern (wildcards positionally).
    Map(Box<[u8]>),
}

/// Messages published in the exporter on `source` go to `importer`.
#[derive(Clone, Debug)]
pub(crate) struct StreamRoute {
    pub importer: usize,
    pub source: Box<[u8]>,
    pub target: Target,
    /// Where the import was written.
    pub pos: Option<Pos>,
}

/// Requests published in the importer on `local` go to `exporter` on `remote`.
#[derive(Clone, Debug)]
pub(crate) struct ServiceRoute {
    pub exporter: usize,
    pub local: Box<[u8]>,
    pub remote: Box<[u8]>,
    pub response: ResponseType,
    pub threshold: Duration,
    /// Where the import was written.
    pub pos: Option<Pos>,
}

/// A way messages cross from one account into another: what the permission
/// audit follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    /// The account the message is published in.
    pub from: usize,
    /// Its subject there (a pattern when any subject it matches crosses).
    pub from_subject: String,
    /// The account it is delivered in.
    pub to: usize,
    /// Its subject there.
    pub to_subject: String,
    /// A service import (a request), else a stream import.
    pub service: bool,
    /// Where the import was written.
    pub pos: Option<Pos>,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::global()
    }
}

impl Accounts {
    /// No `accounts` block: everyone is in `$G`, and `$SYS` exists.
    pub fn global() -> Accounts {
        Accounts::new(&[], None, false).expect("no accounts is a valid configuration")
    }

    /// The accounts a configuration file declares.
    pub fn from_config(config: &Config) -> Result<Accounts, ConfigError> {
        Accounts::new(
            &config.accounts,
            config.system_account.as_deref(),
            config.no_system_account,
        )
    }

    /// Checks the `accounts` block and `system_account` (`no_system` skips
    /// creating `$SYS`). Errors carry the position of the account, import or
    /// export at fault.
    pub fn new(
        configs: &[AccountConfig],
        system_account: Option<&str>,
        no_system: bool,
    ) -> Result<Accounts, ConfigError> {
        let mut specs = vec![AccountSpec::new(GLOBAL_ACCOUNT, AccountLimits::default())];
        for config in configs {
            if specs.iter().any(|s| s.name == config.name) {
                return Err(error(
                    &config.pos,
                    format!("duplicate account {:?}", config.name),
                ));
            }
            if config.name == GLOBAL_ACCOUNT {
                return Err(error(
                    &config.pos,
                    format!("{GLOBAL_ACCOUNT:?} is a reserved account name"),
                ));
            }
            let mut spec = AccountSpec::new(&config.name, config.limits);
            spec.jetstream = config.jetstream.clone();
            specs.push(spec);
        }
        let system =
            match system_account {
                Some(name) => Some(specs.iter().position(|s| s.name == name).ok_or_else(|| {
                    error(&None, format!("system account {name:?} is not defined"))
                })?),
                None => match specs.iter().position(|s| s.name == SYSTEM_ACCOUNT) {
                    Some(i) => Some(i),
                    None if no_system => None,
                    None => {
                        specs.push(AccountSpec::new(SYSTEM_ACCOUNT, AccountLimits::default()));
                        Some(specs.len() - 1)
                    }
                },
            };
        if let Some(spec) = system.map(|i| &specs[i]).filter(|s| s.jetstream.is_some()) {
            let pos = configs
                .iter()
                .find(|c| c.name == spec.name)
                .and_then(|c| c.pos.clone());
            return Err(error(
                &pos,
                "Not allowed to enable JetStream on the system account".to_string(),
            ));
        }
        let mut accounts = Accounts {
            specs,
            system,
            configured: !configs.is_empty(),
        };
        for (i, config) in configs.iter().enumerate() {
            for export in &config.exports {
                check_export(&config.name, export).map_err(|m| error(&export.pos, m))?;
                accounts.specs[i + 1].exports.push(ExportInfo {
                    service: export.service,
                    subject: export.subject.clone(),
                    accounts: export.accounts.clone(),
                    response: ResponseType::parse(export.response_type.as_deref())
                        .unwrap_or(ResponseType::Singleton),
                    pos: export.pos.clone(),
                });
                if !export.service {
                    let subject = export.subject.as_bytes().to_vec();
                    accounts.specs[i + 1].stream_exports.push(subject);
                }
            }
        }
        for (i, config) in configs.iter().enumerate() {
            for import in &config.imports {
                let kind = if import.service { "service" } else { "stream" };
                let fail = |why: String| {
                    let message = format!("Error adding {kind} import {:?}: {why}", import.subject);
                    error(&import.pos, message)
                };
                let route = accounts.add_import(i + 1, import, configs);
                let (exporter, local) = route.map_err(|m| error(&import.pos, m))?;
                if accounts.forms_cycle(i + 1, exporter, &local, import.service) {
                    return Err(fail("import forms a cycle".to_string()));
                }
            }
        }
        Ok(accounts)
    }

    /// Whether the import just added to `importer` from `exporter`, on
    /// `local` (its subject in the importer), closes a loop of imports of the
    /// same kind. Like nats-server, imports are checked in the order they are
    /// written, each against those before it: from the exporter, follow every
    /// import whose subject overlaps the one followed (depth first); meeting
    /// an account already on the path is a cycle.
    fn forms_cycle(&self, importer: usize, exporter: usize, local: &[u8], service: bool) -> bool {
        let edges = self.edges(service);
        let mut on_path = vec![importer];
        self.cycle_from(&edges, exporter, local, service, &mut on_path)
    }

    /// One step of [`Accounts::forms_cycle`]: the imports of `at` that
    /// `subject` overlaps, each followed in turn. The path only grows, so the
    /// walk ends within as many steps as there are accounts.
    fn cycle_from(
        &self,
        edges: &[Edge],
        at: usize,
        subject: &[u8],
        service: bool,
        on_path: &mut Vec<usize>,
    ) -> bool {
        // A stream is only followed through an account that exports it.
        if !service && !self.exports_stream(at, subject) {
            return false;
        }
        for edge in edges.iter().filter(|e| e.importer == at) {
            let overlapping = if service { &edge.remote } else { &edge.local };
            if !subjects_collide(subject, overlapping) {
                continue;
            }
            if on_path.contains(&edge.exporter) {
                return true;
            }
            let next = if is_subset(&edge.local, subject) {
                &edge.local[..]
            } else {
                subject
            };
            on_path.push(at);
            let found = self.cycle_from(edges, edge.exporter, next, service, on_path);
            on_path.pop();
            if found {
                return true;
            }
        }
        false
    }

    fn exports_stream(&self, account: usize, subject: &[u8]) -> bool {
        self.specs[account]
            .stream_exports
            .iter()
            .any(|e| is_subset(subject, e))
    }

    /// Every import of one kind as (importer, exporter, local subject pattern,
    /// subject pattern in the exporter).
    fn edges(&self, service: bool) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            if service {
                for r in &spec.service_routes {
                    edges.push(Edge {
                        importer: i,
                        exporter: r.exporter,
                        local: r.local.to_vec(),
                        remote: r.remote.to_vec(),
                    });
                }
            } else {
                for r in &spec.stream_routes {
                    edges.push(Edge {
                        importer: r.importer,
                        exporter: i,
                        local: r.local_pattern(),
                        remote: r.source.to_vec(),
                    });
                }
            }
        }
        edges
    }

    /// Number of accounts, `$G` and the system account included.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Never true: `$G` always exists.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The account names, in index order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.iter().map(|s| s.name.as_str())
    }

    /// The system account's name (`None` with `no_system_account`).
    pub fn system_account(&self) -> Option<&str> {
        self.system.map(|i| self.specs[i].name.as_str())
    }

    /// Adds the route for one import; returns the exporter and the import's
    /// subject pattern in the importer.
    fn add_import(
        &mut self,
        importer: usize,
        import: &Import,
        configs: &[AccountConfig],
    ) -> Result<(usize, Vec<u8>), String> {
        let kind = if import.service { "service" } else { "stream" };
        let subject = &import.subject;
        let Some(exporter) = self.specs.iter().position(|s| s.name == import.account) else {
            return Err(format!(
                "{:?} account not defined for {kind} import",
                import.account
            ));
        };
        if exporter == importer {
            return Err(format!(
                "account {:?} can not import from itself",
                import.account
            ));
        }
        let importer_name = self.specs[importer].name.clone();
        let fail = |why: &str| Err(format!("Error adding {kind} import {subject:?}: {why}"));
        if !is_valid_subject(subject.as_bytes()) {
            return fail("not a valid subject");
        }
        let exports = configs
            .iter()
            .find(|c| c.name == import.account)
            .map_or(&[][..], |c| &c.exports[..]);
        let export = exports.iter().find(|e| {
            e.service == import.service
                && is_subset(subject.as_bytes(), e.subject.as_bytes())
                && e.accounts
                    .as_ref()
                    .is_none_or(|list| list.contains(&importer_name))
        });
        let Some(export) = export else {
            return fail(&format!("{kind} import not authorized"));
        };
        if import.service {
            if import.prefix.is_some() {
                return fail("a service import takes \"to\", not \"prefix\"");
            }
            let local = import.to.as_deref().unwrap_or(subject);
            if !is_valid_subject(local.as_bytes()) {
                return fail(&format!("\"to\" {local:?} is not a valid subject"));
            }
            if !is_literal(subject.as_bytes()) && !same_wildcards(local, subject) {
                return fail(&format!(
                    "\"to\" {local:?} must have the same wildcards as the imported subject"
                ));
            }
            let response = ResponseType::parse(export.response_type.as_deref())
                .map_err(|why| format!("Error adding {kind} import {subject:?}: {why}"))?;
            let local_pattern = local.as_bytes().to_vec();
            self.specs[importer].service_routes.push(ServiceRoute {
                exporter,
                local: local.as_bytes().into(),
                remote: subject.as_bytes().into(),
                response,
                threshold: export
                    .response_threshold
                    .unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
                pos: import.pos.clone(),
            });
            Ok((exporter, local_pattern))
        } else {
            let target = match (&import.prefix, &import.to) {
                (Some(prefix), None) => {
                    if !is_literal(prefix.as_bytes()) {
                        return fail("stream import prefix can not contain wildcard tokens");
                    }
                    let prefix = prefix.trim_end_matches('.');
                    if !is_valid_literal_subject(prefix.as_bytes()) {
                        return fail(&format!("prefix {prefix:?} is not a valid subject"));
                    }
                    Target::Prefix(prefix.as_bytes().into())
                }
                (None, Some(to)) => {
                    if !is_valid_subject(to.as_bytes())
                        || !(is_literal(to.as_bytes()) || same_wildcards(to, subject))
                    {
                        return fail(&format!(
                            "\"to\" {to:?} must be a valid subject with the imported subject's wildcards"
                        ));
                    }
                    Target::Map(to.as_bytes().into())
                }
                (None, None) => Target::Same,
                (Some(_), Some(_)) => return fail("can not have both \"prefix\" and \"to\""),
            };
            let route = StreamRoute {
                importer,
                source: subject.as_bytes().into(),
                target,
                pos: import.pos.clone(),
            };
            let local = route.local_pattern();
            self.specs[exporter].stream_routes.push(route);
            Ok((exporter, local))
        }
    }

    /// The engine's live accounts for this configuration. `reply_prefix`
    /// draws the random middle token of each account's `_R_` reply subjects.
    pub(crate) fn instantiate(
        &self,
        cache: bool,
        jetstream: bool,
        mut reply_prefix: impl FnMut() -> [u8; 6],
    ) -> Vec<Account> {
        self.specs
            .iter()
            .enumerate()
            .map(|(index, spec)| Account {
                jetstream: match &spec.jetstream {
                    _ if !jetstream || !self.has_jetstream(index) => None,
                    Some(limits) => Some(AccountJetStream::new(limits.clone())),
                    None => Some(AccountJetStream::default()),
                },
                name: spec.name.clone(),
                sublist: Sublist::with_cache(cache),
                limits: spec.limits,
                stats: AccountStats::default(),
                streams_out: Routes::new(spec.stream_routes.clone(), |r| &r.source),
                services_in: Routes::new(spec.service_routes.clone(), |r| &r.local),
                responses: HashMap::new(),
                reply_prefix: reply_prefix(),
                exports: spec.exports.clone(),
            })
            .collect()
    }
}

impl AccountSpec {
    fn new(name: &str, limits: AccountLimits) -> AccountSpec {
        AccountSpec {
            name: name.to_string(),
            limits,
            jetstream: None,
            stream_exports: Vec::new(),
            stream_routes: Vec::new(),
            service_routes: Vec::new(),
            exports: Vec::new(),
        }
    }
}

impl StreamRoute {
    /// The subjects this import produces in the importer.
    pub(crate) fn local_pattern(&self) -> Vec<u8> {
        match &self.target {
            Target::Same => self.source.to_vec(),
            Target::Prefix(p) => [&p[..], b".", &self.source].concat(),
            Target::Map(to) => to.to_vec(),
        }
    }

    /// Appends the importer's subject for a message published on `subject`
    /// (which `source` matches).
    pub(crate) fn map_into(&self, subject: &[u8], out: &mut Vec<u8>) {
        match &self.target {
            Target::Same => out.extend_from_slice(subject),
            Target::Prefix(prefix) => {
                out.extend_from_slice(prefix);
                out.push(b'.');
                out.extend_from_slice(subject);
            }
            Target::Map(to) => map_subject(&self.source, to, subject, out),
        }
    }

    /// The exporter's subject a message delivered on `local` (which
    /// [`Self::local_pattern`] matches) was published on; the source pattern
    /// when every subject it matches maps there.
    fn source_of(&self, local: &[u8]) -> Vec<u8> {
        match &self.target {
            Target::Same => local.to_vec(),
            Target::Prefix(prefix) => local[prefix.len() + 1..].to_vec(),
            Target::Map(to) if is_literal(to) => self.source.to_vec(),
            Target::Map(to) => {
                let mut out = Vec::new();
                map_subject(to, &self.source, local, &mut out);
                out
            }
        }
    }
}

impl ServiceRoute {
    /// Appends the exporter's subject for a request published on `subject`
    /// (which `local` matches).
    pub(crate) fn map_into(&self, subject: &[u8], out: &mut Vec<u8>) {
        if is_literal(&self.remote) {
            out.extend_from_slice(&self.remote);
        } else {
            map_subject(&self.local, &self.remote, subject, out);
        }
    }

    /// The importer's subject a request delivered on `remote` (which the
    /// route's remote pattern matches) was published on; the local pattern
    /// when every subject it matches maps there.
    fn local_of(&self, remote: &[u8]) -> Vec<u8> {
        if is_literal(&self.remote) {
            self.local.to_vec()
        } else {
            let mut out = Vec::new();
            map_subject(&self.remote, &self.local, remote, &mut out);
            out
        }
    }
}

impl Accounts {
    /// The index of the account called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// The name of account `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.specs[index].name
    }

    /// Whether account `index` has JetStream on a server with JetStream:
    /// its configuration enables it, or no `accounts` block exists and it is `$G`.
    pub fn has_jetstream(&self, index: usize) -> bool {
        let spec = &self.specs[index];
        spec.jetstream.is_some() || (spec.name == GLOBAL_ACCOUNT && !self.configured)
    }

    /// Stream imports that deliver into account `index`: (exporter, route).
    pub(crate) fn stream_imports_of(
        &self,
        index: usize,
    ) -> impl Iterator<Item = (usize, &StreamRoute)> {
        self.specs
            .iter()
            .enumerate()
            .flat_map(move |(exporter, spec)| {
                spec.stream_routes
                    .iter()
                    .filter(move |r| r.importer == index)
                    .map(move |r| (exporter, r))
            })
    }

    /// Its exports as configured.
    pub(crate) fn exports(&self, index: usize) -> &[ExportInfo] {
        &self.specs[index].exports
    }

    /// Where a message published on `subject` (a pattern: every subject it
    /// matches) in account `acc` is also delivered, as the engine routes it:
    /// once per stream import of a matching subject, and along the first
    /// service import of a matching subject from account to account.
    pub fn crossings_from(&self, acc: usize, subject: &[u8]) -> Vec<Crossing> {
        let mut out = Vec::new();
        for route in &self.specs[acc].stream_routes {
            if let Some(sent) = narrower(subject, &route.source) {
                let mut to = Vec::new();
                route.map_into(&sent, &mut to);
                out.push(Crossing::new(
                    acc,
                    &sent,
                    route.importer,
                    &to,
                    false,
                    &route.pos,
                ));
            }
        }
        let (mut at, mut current) = (acc, subject.to_vec());
        let hops: usize = self.specs.iter().map(|s| s.service_routes.len()).sum();
        for _ in 0..hops {
            let Some((route, sent)) = self.specs[at]
                .service_routes
                .iter()
                .find_map(|r| narrower(&current, &r.local).map(|s| (r, s)))
            else {
                break;
            };
            let mut remote = Vec::new();
            route.map_into(&sent, &mut remote);
            out.push(Crossing::new(
                at,
                &sent,
                route.exporter,
                &remote,
                true,
                &route.pos,
            ));
            (at, current) = (route.exporter, remote);
        }
        out
    }

    /// Where messages delivered on `subject` (a pattern) in account `acc` can
    /// be published in other accounts: the inverse of [`Self::crossings_from`],
    /// following service imports back through every account that requests
    /// through another.
    pub fn crossings_into(&self, acc: usize, subject: &[u8]) -> Vec<Crossing> {
        let mut out = Vec::new();
        for (exporter, spec) in self.specs.iter().enumerate() {
            for route in spec.stream_routes.iter().filter(|r| r.importer == acc) {
                if let Some(delivered) = narrower(subject, &route.local_pattern()) {
                    let source = route.source_of(&delivered);
                    out.push(Crossing::new(
                        exporter, &source, acc, &delivered, false, &route.pos,
                    ));
                }
            }
        }
        let mut pending = vec![(acc, subject.to_vec())];
        let mut budget: usize = self.specs.iter().map(|s| s.service_routes.len()).sum();
        while let Some((at, current)) = pending.pop() {
            for (importer, spec) in self.specs.iter().enumerate() {
                for route in spec.service_routes.iter().filter(|r| r.exporter == at) {
                    let Some(delivered) = narrower(&current, &route.remote) else {
                        continue;
                    };
                    if budget == 0 {
                        return out;
                    }
                    budget -= 1;
                    let local = route.local_of(&delivered);
                    out.push(Crossing::new(
                        importer, &local, at, &delivered, true, &route.pos,
                    ));
                    pending.push((importer, local));
                }
            }
        }
        out
    }
}

impl Crossing {
    fn new(
        from: usize,
        from_subject: &[u8],
        to: usize,
        to_subject: &[u8],
        service: bool,
        pos: &Option<Pos>,
    ) -> Crossing {
        Crossing {
            from,
            from_subject: String::from_utf8_lossy(from_subject).into_owned(),
            to,
            to_subject: String::from_utf8_lossy(to_subject).into_owned(),
            service,
            pos: pos.clone(),
        }
    }
}

/// The subjects both patterns match, as one pattern: `a` where `route`
/// covers it, `route` where it covers `a`, else none that is exact (the
/// narrower of two overlapping patterns is taken token by token).
fn narrower(a: &[u8], route: &[u8]) -> Option<Vec<u8>> {
    if is_subset(a, route) {
        Some(a.to_vec())
    } else if is_subset(route, a) {
        Some(route.to_vec())
    } else if subjects_collide(a, route) {
        Some(intersection(a, route))
    } else {
        None
    }
}

/// Token by token, the narrower of two colliding patterns (`foo.*.>` and
/// `*.bar.baz` give `foo.bar.baz`).
fn intersection(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (mut x, mut y) = (tokens(a), tokens(b));
    let mut out: Vec<u8> = Vec::new();
    loop {
        let (tx, ty) = (x.next(), y.next());
        let token: &[u8] = match (tx, ty) {
            (None, _) | (_, None) => break,
            (Some(b">"), Some(t)) => {
                push_token(&mut out, t);
                y.clone().for_each(|t| push_token(&mut out, t));
                break;
            }
            (Some(t), Some(b">")) => {
                push_token(&mut out, t);
                x.clone().for_each(|t| push_token(&mut out, t));
                break;
            }
            (Some(b"*"), Some(t)) | (Some(t), Some(b"*")) => t,
            (Some(t), Some(_)) => t,
        };
        push_token(&mut out, token);
    }
    out
}

fn push_token(out: &mut Vec<u8>, token: &[u8]) {
    if !out.is_empty() {
        out.push(b'.');
    }
    out.extend_from_slice(token);
}

/// One import, for cycle detection.
struct Edge {
    importer: usize,
    exporter: usize,
    local: Vec<u8>,
    remote: Vec<u8>,
}

fn error(pos: &Option<Pos>, message: String) -> ConfigError {
    ConfigError {
        pos: pos.clone(),
        message,
    }
}

fn check_export(account: &str, export: &Export) -> Result<(), String> {
    if !is_valid_subject(export.subject.as_bytes()) {
        return Err(format!(
            "account {account:?}: export {:?} is not a valid subject",
            export.subject
        ));
    }
    if !export.service && export.response_type.is_some() {
        return Err(format!(
            "account {account:?}: stream export {:?} can not have a response type",
            export.subject
        ));
    }
    ResponseType::parse(export.response_type.as_deref())
        .map(drop)
        .map_err(|why| format!("account {account:?}: export {:?}: {why}", export.subject))
}

fn same_wildcards(a: &str, b: &str) -> bool {
    wildcard_signature(a.as_bytes()).eq(wildcard_signature(b.as_bytes()))
}

/// An account's live numbers (for monitoring and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountStats {
    /// Connections logged in to the account.
    pub connections: u32,
    /// Subscriptions in the account's subject space.
    pub subscriptions: usize,
    /// Messages published by the account's clients.
    pub in_msgs: u64,
    /// Payload bytes published by the account's clients.
    pub in_bytes: u64,
    /// Messages delivered to the account's clients.
    pub out_msgs: u64,
    /// Payload bytes delivered to the account's clients.
    pub out_bytes: u64,
}

/// One account as the engine runs it.
pub(crate) struct Account {
    pub name: String,
    pub sublist: Sublist,
    pub limits: AccountLimits,
    /// Connections, subscriptions aside, and traffic.
    pub stats: AccountStats,
    /// Streams other accounts import from this one, by source subject.
    pub streams_out: Routes<StreamRoute>,
    /// Services this account imports, by local subject.
    pub services_in: Routes<ServiceRoute>,
    /// Answers owed to requesters in other accounts, by `_R_` subject.
    pub responses: HashMap<Box<[u8]>, PendingResponse>,
    /// The middle token of `_R_` replies for requests this account sends.
    pub reply_prefix: [u8; 6],
    /// Its exports as configured (for monitoring).
    pub exports: Vec<ExportInfo>,
    /// Its streams, when it has JetStream.
    pub jetstream: Option<AccountJetStream>,
}

/// A request that crossed into a service's account and awaits its answer.
pub(crate) struct PendingResponse {
    /// The requester's account.
    pub account: usize,
    /// The requester's own reply subject.
    pub reply: Box<[u8]>,
    pub response: ResponseType,
    pub threshold: Duration,
    /// Forgotten after this time (refreshed by each streamed answer).
    pub expires: Time,
}

/// Routes indexed by subject pattern, matched with the same sublist (and
/// cache) as subscriptions.
pub(crate) struct Routes<T> {
    index: Sublist,
    routes: Vec<T>,
}

impl<T> Routes<T> {
    fn new(routes: Vec<T>, pattern: impl Fn(&T) -> &[u8]) -> Routes<T> {
        let mut index = Sublist::with_cache(true);
        for (i, route) in routes.iter().enumerate() {
            index.insert(pattern(route), None, SubKey(i as u32));
        }
        Routes { index, routes }
    }

    /// No routes at all: the common case, checked before matching.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// The routes whose pattern matches `subject`, in configuration order.
    pub fn matching(&mut self, subject: &[u8]) -> Arc<Matches> {
        self.index.matches(subject)
    }

    pub fn get(&self, key: SubKey) -> &T {
        &self.routes[key.0 as usize]
    }

    /// Every route, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, exports: Vec<Export>, imports: Vec<Import>) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            exports,
            imports,
            ..Default::default()
        }
    }

    fn export(service: bool, subject: &str, accounts: Option<&[&str]>) -> Export {
        Export {
            service,
            subject: subject.into(),
            accounts: accounts.map(|a| a.iter().map(|s| s.to_string()).collect()),
            response_type: None,
            response_threshold: None,
            pos: None,
        }
    }

    fn import(service: bool, from: &str, subject: &str) -> Import {
        Import {
            service,
            account: from.into(),
            subject: subject.into(),
            to: None,
            prefix: None,
            pos: None,
        }
    }

    #[test]
    fn global_and_system_accounts_always_exist() {
        let a = Accounts::global();
        assert_eq!(a.names().collect::<Vec<_>>(), ["$G", "$SYS"]);
        assert_eq!(a.system_account(), Some("$SYS"));
        let none = Accounts::new(&[], None, true).unwrap();
        assert_eq!((none.len(), none.system_account()), (1, None));
        let configs = [account("SYS", vec![], vec![]), account("A", vec![], vec![])];
        let a = Accounts::new(&configs, Some("SYS"), false).unwrap();
        assert_eq!(a.names().collect::<Vec<_>>(), ["$G", "SYS", "A"]);
        assert_eq!(a.system_account(), Some("SYS"));
        let err = Accounts::new(&configs, Some("NOPE"), false)
            .unwrap_err()
            .message;
        assert_eq!(err, "system account \"NOPE\" is not defined");
    }

    #[test]
    fn imports_must_be_exported_to_the_importer() {
        let a = account(
            "A",
            vec![
                export(false, "pub.>", None),
                export(true, "svc.>", None),
                export(false, "priv", Some(&["C"])),
            ],
            vec![],
        );
        let check = |imp: Import| {
            let b = account("B", vec![], vec![imp.clone()]);
            let c = account("C", vec![], vec![imp]);
            (
                Accounts::new(&[a.clone(), b, account("C", vec![], vec![])], None, false)
                    .map(drop)
                    .map_err(|e| e.message),
                Accounts::new(&[a.clone(), account("B", vec![], vec![]), c], None, false)
                    .map(drop)
                    .map_err(|e| e.message),
            )
        };
        assert_eq!(check(import(false, "A", "pub.x.>")), (Ok(()), Ok(())));
        assert_eq!(check(import(true, "A", "svc.a")), (Ok(()), Ok(())));
        let (b, c) = check(import(false, "A", "priv"));
        assert_eq!(
            b.unwrap_err(),
            "Error adding stream import \"priv\": stream import not authorized"
        );
        assert_eq!(c, Ok(()));
        let (b, _) = check(import(true, "A", "pub.>"));
        assert_eq!(
            b.unwrap_err(),
            "Error adding service import \"pub.>\": service import not authorized"
        );
        let (b, _) = check(import(false, "A", "nope"));
        assert!(b.unwrap_err().ends_with("stream import not authorized"));
        let (b, _) = check(import(false, "Z", "pub.>"));
        assert_eq!(
            b.unwrap_err(),
            "\"Z\" account not defined for stream import"
        );
        let wildcard_prefix = Import {
            prefix: Some("x.*".into()),
            ..import(false, "A", "pub.>")
        };
        assert_eq!(
            check(wildcard_prefix).0.unwrap_err(),
            "Error adding stream import \"pub.>\": stream import prefix can not contain wildcard tokens"
        );
        let bad_to = Import {
            to: Some("x".into()),
            ..import(true, "A", "svc.>")
        };
        assert!(check(bad_to).0.unwrap_err().contains("same wildcards"));
    }

    #[test]
    fn import_cycles_are_refused_and_chains_are_not() {
        let both = |service| {
            vec![
                account(
                    "A",
                    vec![export(service, "x.>", None)],
                    vec![import(service, "B", "x.>")],
                ),
                account(
                    "B",
                    vec![export(service, "x.>", None)],
                    vec![import(service, "A", "x.>")],
                ),
            ]
        };
        for (service, kind) in [(false, "stream"), (true, "service")] {
            let err = Accounts::new(&both(service), None, false).unwrap_err();
            assert_eq!(
                err.message,
                format!("Error adding {kind} import \"x.>\": import forms a cycle")
            );
        }
        // Disjoint subjects, or a chain that does not come back, are fine.
        let disjoint = vec![
            account(
                "A",
                vec![export(true, "a.>", None)],
                vec![import(true, "B", "b.>")],
            ),
            account(
                "B",
                vec![export(true, "b.>", None)],
                vec![import(true, "A", "a.>")],
            ),
        ];
        assert!(Accounts::new(&disjoint, None, false).is_ok());
        let chain = vec![
            account("C", vec![export(true, "svc.>", None)], vec![]),
            account(
                "A",
                vec![export(true, "svc.>", None)],
                vec![import(true, "C", "svc.>")],
            ),
            account("B", vec![], vec![import(true, "A", "svc.>")]),
        ];
        assert!(Accounts::new(&chain, None, false).is_ok());
        // The loop is behind the second overlapping import of C, not the
        // first: every overlapping import is followed (found by the
        // account-isolation property test).
        let second_branch = vec![
            account("B", vec![export(true, "a.a", None)], vec![]),
            account(
                "C",
                vec![export(true, "*.>", None)],
                vec![import(true, "B", "a.a"), import(true, "D", ">")],
            ),
            account(
                "D",
                vec![export(true, ">", None)],
                vec![import(true, "C", "*.>")],
            ),
        ];
        let err = Accounts::new(&second_branch, None, false).unwrap_err();
        assert_eq!(
            err.message,
            "Error adding service import \"*.>\": import forms a cycle"
        );
        // A prefix moves the stream out of the way of the other import.
        let prefixed = vec![
            account(
                "A",
                vec![export(false, "x.>", None)],
                vec![Import {
                    prefix: Some("b".into()),
                    ..import(false, "B", "x.>")
                }],
            ),
            account(
                "B",
                vec![export(false, "x.>", None)],
                vec![import(false, "A", "x.>")],
            ),
        ];
        assert!(Accounts::new(&prefixed, None, false).is_ok());
        // nats-server accepts these too: the subjects that come back do not
        // overlap the ones that left.
        let renamed = vec![
            account(
                "A",
                vec![export(true, "x.>", None)],
                vec![Import {
                    to: Some("x.>".into()),
                    ..import(true, "B", "y.>")
                }],
            ),
            account(
                "B",
                vec![export(true, "y.>", None)],
                vec![Import {
                    to: Some("z.>".into()),
                    ..import(true, "A", "x.>")
                }],
            ),
        ];
        assert!(Accounts::new(&renamed, None, false).is_ok());
    }

    #[test]
    fn routes_land_in_the_right_account() {
        let a = account(
            "A",
            vec![export(false, "pub.>", None), export(true, "svc.>", None)],
            vec![],
        );
        let b = account(
            "B",
            vec![],
            vec![
                Import {
                    prefix: Some("froma".into()),
                    ..import(false, "A", "pub.>")
                },
                Import {
                    to: Some("asvc.>".into()),
                    ..import(true, "A", "svc.>")
                },
            ],
        );
        let accounts = Accounts::new(&[a, b], None, false).unwrap();
        let mut live = accounts.instantiate(true, false, || *b"abcdef");
        let exporter = &mut live[1];
        let m = exporter.streams_out.matching(b"pub.x");
        let route = exporter.streams_out.get(m.plain[0]);
        assert_eq!(
            (route.importer, &route.target),
            (2, &Target::Prefix(b"froma"[..].into()))
        );
        let importer = &mut live[2];
        let m = importer.services_in.matching(b"asvc.q");
        let route = importer.services_in.get(m.plain[0]);
        assert_eq!((route.exporter, &*route.remote), (1, &b"svc.>"[..]));
        assert_eq!(route.response, ResponseType::Singleton);
        assert!(importer.services_in.matching(b"svc.q").is_empty());
    }

    #[test]
    fn response_types_parse_and_unknown_ones_are_refused() {
        assert_eq!(ResponseType::parse(None), Ok(ResponseType::Singleton));
        assert_eq!(
            ResponseType::parse(Some("Stream")),
            Ok(ResponseType::Stream)
        );
        assert_eq!(
            ResponseType::parse(Some("chunk")),
            Ok(ResponseType::Chunked)
        );
        assert!(ResponseType::parse(Some("many")).is_err());
    }
}
