//! Permission audit: why a user may or may not publish or subscribe, who can reach a subject, and rules that leak or never take effect.
//!
//! Every decision here is the engine's own: a user's permissions are compiled
//! by [`Permissions::compile`] and decided by the calls a live PUB or SUB
//! makes ([`Permissions::publish_decision`], [`Permissions::can_subscribe`],
//! the reserved names), and messages cross accounts along the routes the
//! engine follows ([`crate::Accounts::crossings_from`]). The audit adds only *why*:
//! which configured entry decided, and where it was written.

mod report;
mod warnings;

pub use warnings::{Warning, WarningKind};

use crate::auth::{Auth, Login};
use crate::config::options::{Permissions as PermissionsConfig, SubjectPermission};
use crate::config::Pos;
use crate::jetstream::api::ApiCall;
use crate::perms::{is_reserved_publish, Permissions, SubscribeDecision, RESERVED_QUEUE};
use crate::subject::{is_literal, is_valid_subject, tokens};

/// Publishing or subscribing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// PUB (and HPUB).
    Publish,
    /// SUB.
    Subscribe,
}

impl Operation {
    /// `pub`/`publish` or `sub`/`subscribe`.
    pub fn parse(text: &str) -> Option<Operation> {
        match text {
            "pub" | "publish" => Some(Operation::Publish),
            "sub" | "subscribe" => Some(Operation::Subscribe),
            _ => None,
        }
    }

    /// "publish" or "subscribe".
    pub fn word(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Subscribe => "subscribe",
        }
    }
}

/// What the engine decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allowed,
    /// A wildcard SUB accepted, with the subjects of some deny entries (or
    /// queue entries reserved for other groups) not delivered to it.
    AllowedFiltered,
    /// Denied, except as a reply to a request the user received
    /// (`allow_responses`).
    RepliesOnly,
    /// Denied: `-ERR 'Permissions Violation ...'`.
    Denied,
}

impl Verdict {
    /// The verdict as a word: `allowed`, `allowed_filtered`, `replies_only`, `denied`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::AllowedFiltered => "allowed_filtered",
            Verdict::RepliesOnly => "replies_only",
            Verdict::Denied => "denied",
        }
    }
}

/// One step of an explanation, with where the rule behind it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// What it says.
    pub text: String,
    /// The file position of the rule, if it came from a file.
    pub at: Option<Pos>,
}

impl Reason {
    fn new(text: impl Into<String>, at: Option<&Pos>) -> Reason {
        Reason {
            text: text.into(),
            at: at.cloned(),
        }
    }
}

/// The answer of `--explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The user as named on the command line.
    pub user: String,
    /// Its account.
    pub account: String,
    /// What it does.
    pub operation: Operation,
    /// On which subject.
    pub subject: String,
    /// In which queue group (subscribe).
    pub queue: Option<String>,
    /// The engine's decision.
    pub verdict: Verdict,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
    /// Other accounts the message reaches (publish), or where messages on
    /// the subject come from (subscribe), through imports and exports.
    pub crossings: Vec<Reason>,
    /// What a `$JS.API` or `$JS.ACK` subject does, and in which account.
    pub jetstream: Option<String>,
}

/// One user who may publish to or receive a subject, for `--who`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// The user (nkey for nkey users, `(token)` or `(anonymous)` for those).
    pub user: String,
    /// Its account.
    pub account: String,
    /// The subject in that account (another than the one asked about when
    /// an import carries it).
    pub subject: String,
    /// Allowed, filtered or only as replies.
    pub verdict: Verdict,
    /// The rule that allows it, and the import or export that carries it.
    pub reasons: Vec<Reason>,
}

/// The answer of `--who`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoAnswer {
    /// Publish to, or receive.
    pub operation: Operation,
    /// The subject asked about.
    pub subject: String,
    /// The account asked about (`None`: every account).
    pub account: Option<String>,
    /// What the subject is to JetStream, if anything.
    pub jetstream: Option<String>,
    /// Everyone who can, in configuration order.
    pub reaches: Vec<Reach>,
}

/// Input the audit cannot answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// No user of that name or nkey.
    UnknownUser { name: String, known: Vec<String> },
    /// No account of that name.
    UnknownAccount { name: String, known: Vec<String> },
    /// Not a subject the operation takes.
    InvalidSubject(String),
    /// Not a queue group name.
    InvalidQueue(String),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::UnknownUser { name, known } if known.is_empty() => {
                write!(f, "no user {name:?}: the configuration defines no users")
            }
            AuditError::UnknownUser { name, known } => {
                write!(f, "no user {name:?} (users: {})", known.join(", "))
            }
            AuditError::UnknownAccount { name, known } => {
                write!(f, "no account {name:?} (accounts: {})", known.join(", "))
            }
            AuditError::InvalidSubject(s) => write!(f, "{s:?} is not a valid subject"),
            AuditError::InvalidQueue(q) => write!(f, "{q:?} is not a valid queue group name"),
        }
    }
}

impl std::error::Error for AuditError {}

/// The audit of one configuration's users and accounts.
pub struct Audit<'a> {
    auth: &'a Auth,
    /// The server runs JetStream.
    jetstream: bool,
    /// Each identity's compiled permissions, by identity index.
    compiled: Vec<Option<Permissions>>,
}

impl<'a> Audit<'a> {
    /// Audits what a configuration loaded into (`Auth::from_config`);
    /// `jetstream` is whether the server runs JetStream.
    pub fn new(auth: &'a Auth, jetstream: bool) -> Audit<'a> {
        let compiled = auth
            .users
            .identities()
            .map(|u| u.permissions.map(Permissions::compile))
            .collect();
        Audit {
            auth,
            jetstream,
            compiled,
        }
    }

    /// Why `user` may or may not do `operation` on `subject` (in `queue`).
    /// With authentication off, every name is the anonymous user of `$G`.
    pub fn explain(
        &self,
        user: &str,
        operation: Operation,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Explanation, AuditError> {
        let index = self.find_user(user)?;
        check_input(operation, subject, queue)?;
        let identity = self.auth.users.identity(index).expect("found");
        let acc = self.account_index(identity.account);
        let (verdict, mut reasons) = self.decide(index, operation, subject, queue);
        reasons.extend(self.origin_reasons(index));
        let crossings = if verdict == Verdict::Denied {
            Vec::new()
        } else {
            self.crossing_reasons(acc, operation, subject)
        };
        Ok(Explanation {
            user: user.to_string(),
            account: identity.account.to_string(),
            operation,
            subject: subject.to_string(),
            queue: queue.map(str::to_string),
            verdict,
            reasons,
            crossings,
            jetstream: self.jetstream_note(acc, subject),
        })
    }

    /// Every user who may publish to `subject` in `account` (or, for
    /// subscribe, receive what is published there), also through stream and
    /// service imports and `allow_responses`; every account when `None`.
    pub fn who(
        &self,
        operation: Operation,
        subject: &str,
        account: Option<&str>,
    ) -> Result<WhoAnswer, AuditError> {
        check_input(operation, subject, None)?;
        let accounts = self.auth.accounts.len();
        let targets: Vec<usize> = match account {
            Some(name) => vec![self.auth.accounts.index_of(name).ok_or_else(|| {
                AuditError::UnknownAccount {
                    name: name.to_string(),
                    known: self.auth.accounts.names().map(str::to_string).collect(),
                }
            })?],
            None => (0..accounts).collect(),
        };
        let mut reaches = Vec::new();
        for &target in &targets {
            // The target account's own users, then those an import carries.
            let mut sources = vec![(target, subject.to_string(), None)];
            let crossings = match operation {
                Operation::Publish => self
                    .auth
                    .accounts
                    .crossings_into(target, subject.as_bytes()),
                Operation::Subscribe => self
                    .auth
                    .accounts
                    .crossings_from(target, subject.as_bytes()),
            };
            for c in crossings {
                let note = self.crossing_reason(&c, operation);
                let (acc, subject) = match operation {
                    Operation::Publish => (c.from, c.from_subject),
                    Operation::Subscribe => (c.to, c.to_subject),
                };
                sources.push((acc, subject, Some(note)));
            }
            for (acc, subject, note) in sources {
                for index in self.users_of(acc) {
                    if let Some(mut reach) = self.reach(index, operation, &subject) {
                        reach.reasons.extend(note.clone());
                        reaches.push(reach);
                    }
                }
            }
        }
        let jetstream = targets
            .first()
            .and_then(|&acc| self.jetstream_note(acc, subject));
        Ok(WhoAnswer {
            operation,
            subject: subject.to_string(),
            account: account.map(str::to_string),
            jetstream: if targets.len() == 1 { jetstream } else { None },
            reaches,
        })
    }

    /// Every warning about the configuration, in file order.
    pub fn warnings(&self) -> Vec<Warning> {
        warnings::find(self)
    }

    /// Whether identity `index` can reach `subject` (publish, or receive),
    /// with why; `None` if it cannot at all.
    fn reach(&self, index: usize, operation: Operation, subject: &str) -> Option<Reach> {
        let identity = self.auth.users.identity(index)?;
        let (mut verdict, mut reasons) = self.decide(index, operation, subject, None);
        if verdict == Verdict::Denied && operation == Operation::Subscribe {
            // Perhaps only as a member of a queue group its entries name.
            let queue = self.queue_admitting(index, subject)?;
            (verdict, reasons) = self.decide(index, operation, subject, Some(&queue));
            if verdict == Verdict::Denied {
                return None;
            }
            reasons.push(Reason::new(
                format!("only as a member of queue group {queue:?}"),
                None,
            ));
        }
        if verdict == Verdict::Denied {
            return None;
        }
        Some(Reach {
            user: self.display_name(index),
            account: identity.account.to_string(),
            subject: subject.to_string(),
            verdict,
            reasons,
        })
    }

    /// A queue group that one of the user's subscribe allow entries with a
    /// queue names, for a subject it covers (wildcards in the group's
    /// pattern stand for any name).
    fn queue_admitting(&self, index: usize, subject: &str) -> Option<String> {
        let list = self.config_of(index)?.subscribe.as_ref()?;
        list.allow.iter().find_map(|entry| {
            let (pattern, queue) = entry.split_once(' ')?;
            crate::subject::is_subset(subject.as_bytes(), pattern.trim().as_bytes())
                .then(|| sample_name(queue.trim()))
        })
    }

    /// The engine's decision for identity `index`, and the rules behind it.
    fn decide(
        &self,
        index: usize,
        operation: Operation,
        subject: &str,
        queue: Option<&str>,
    ) -> (Verdict, Vec<Reason>) {
        match operation {
            Operation::Publish => self.decide_publish(index, subject),
            Operation::Subscribe => self.decide_subscribe(index, subject, queue),
        }
    }

    fn decide_publish(&self, index: usize, subject: &str) -> (Verdict, Vec<Reason>) {
        let bytes = subject.as_bytes();
        let config = self.config_of(index);
        let list = config.and_then(|c| c.publish.as_ref());
        // As `Server::publish_allowed`: unrestricted publishers skip the check.
        let perms = self.compiled[index]
            .as_ref()
            .filter(|p| p.restricts_publish());
        let mut reasons = Vec::new();
        let allowed = match perms {
            None => {
                reasons.push(Reason::new(
                    "no publish permissions restrict this user",
                    config.and_then(|c| c.written_at.as_ref()),
                ));
                true
            }
            Some(p) => {
                let (allowed, _) = p.publish_decision(bytes);
                let grounds = p.publish_grounds(bytes);
                if allowed {
                    match list.filter(|l| !l.allow.is_empty()) {
                        Some(list) => reasons.extend(
                            grounds
                                .allow
                                .iter()
                                .map(|&e| entry_reason("allowed by publish allow", list, e, true)),
                        ),
                        None => reasons.push(Reason::new(
                            "no publish allow list, and no publish deny entry matches",
                            config.and_then(|c| c.written_at.as_ref()),
                        )),
                    }
                } else if let (Some(list), false) = (list, grounds.deny.is_empty()) {
                    reasons.extend(
                        grounds
                            .deny
                            .iter()
                            .map(|&e| entry_reason("denied by publish deny", list, e, false)),
                    );
                    if !grounds.allow.is_empty() {
                        reasons.push(Reason::new(
                            "deny wins over the allow entries that match",
                            None,
                        ));
                    }
                } else {
                    reasons.push(no_allow_reason(
                        "publish",
                        subject,
                        None,
                        list,
                        config.and_then(|c| c.written_at.as_ref()),
                    ));
                }
                allowed
            }
        };
        if is_reserved_publish(bytes) {
            return (
                Verdict::Denied,
                vec![Reason::new(
                    "subjects starting with \"_GR_.\" are reserved for gateway replies",
                    None,
                )],
            );
        }
        if allowed {
            return (Verdict::Allowed, reasons);
        }
        match self.compiled[index].as_ref().and_then(|p| p.responses()) {
            Some(rule) => {
                let max = match rule.max {
                    Some(1) => "one reply".to_string(),
                    Some(n) => format!("up to {n} replies"),
                    None => "any number of replies".to_string(),
                };
                let within = match rule.expires {
                    Some(d) => format!(" within {}", crate::config::duration::format_duration(d)),
                    None => String::new(),
                };
                reasons.push(Reason::new(
                    format!(
                        "allow_responses: allowed only as a reply to a request this user received ({max} per request{within})"
                    ),
                    config.and_then(|c| c.allow_responses_at.as_ref()),
                ));
                (Verdict::RepliesOnly, reasons)
            }
            None => (Verdict::Denied, reasons),
        }
    }

    fn decide_subscribe(
        &self,
        index: usize,
        subject: &str,
        queue: Option<&str>,
    ) -> (Verdict, Vec<Reason>) {
        let (bytes, queue_bytes) = (subject.as_bytes(), queue.map(str::as_bytes));
        let config = self.config_of(index);
        let list = config.and_then(|c| c.subscribe.as_ref());
        let decision = self.compiled[index].as_ref().map(|p| {
            (
                p.can_subscribe(bytes, queue_bytes),
                p.subscribe_grounds(bytes, queue_bytes),
            )
        });
        if queue_bytes == Some(RESERVED_QUEUE) {
            let text = "queue group \"_sys_\" is reserved for the server";
            return (Verdict::Denied, vec![Reason::new(text, None)]);
        }
        let Some((decision, grounds)) = decision else {
            let text = "no subscribe permissions restrict this user";
            return (Verdict::Allowed, vec![Reason::new(text, None)]);
        };
        let mut reasons = Vec::new();
        let written_at = config.and_then(|c| c.written_at.as_ref());
        match (decision, list) {
            (SubscribeDecision::Denied, Some(list)) if !grounds.deny.is_empty() => {
                reasons.extend(
                    grounds
                        .deny
                        .iter()
                        .map(|&e| entry_reason("denied by subscribe deny", list, e, false)),
                );
            }
            (SubscribeDecision::Denied, list) => {
                reasons.push(no_allow_reason(
                    "subscribe",
                    subject,
                    queue,
                    list,
                    written_at,
                ));
                if let Some(list) = list {
                    reasons.extend(partial_allow_reasons(list, subject, queue));
                }
            }
            (_, list) => {
                match list.filter(|l| !l.allow.is_empty()) {
                    Some(list) => reasons.extend(
                        grounds
                            .allow
                            .iter()
                            .map(|&e| entry_reason("allowed by subscribe allow", list, e, true)),
                    ),
                    None => reasons.push(Reason::new(
                        "no subscribe allow list, and no subscribe deny entry covers it",
                        written_at,
                    )),
                }
                if let Some(list) = list {
                    reasons.extend(grounds.filtered_by.iter().map(|&e| {
                        entry_reason(
                            "accepted, but subjects it shares with subscribe deny",
                            list,
                            e,
                            false,
                        )
                        .with_suffix(" are not delivered")
                    }));
                }
                if decision == SubscribeDecision::AllowedFiltered && grounds.filtered_by.is_empty()
                {
                    reasons.push(Reason::new(
                        "accepted, but subjects that allow entries reserve for other queue groups are not delivered",
                        written_at,
                    ));
                }
            }
        }
        let verdict = match decision {
            SubscribeDecision::Allowed => Verdict::Allowed,
            SubscribeDecision::AllowedFiltered => Verdict::AllowedFiltered,
            SubscribeDecision::Denied => Verdict::Denied,
        };
        (verdict, reasons)
    }

    /// Where the user's permissions come from.
    fn origin_reasons(&self, index: usize) -> Vec<Reason> {
        let users = &self.auth.users;
        let identity = users.identity(index).expect("exists");
        let origin = users.origin(index).expect("exists");
        let mut reasons = Vec::new();
        if origin.login == Login::Anonymous {
            reasons.push(Reason::new(
                "authentication is off: every client is the anonymous user of account $G",
                None,
            ));
        }
        if users.no_auth_user() == Some(identity.name) {
            reasons.push(Reason::new(
                "clients that present no credentials log in as this user (no_auth_user)",
                None,
            ));
        }
        if origin.defaulted {
            let block = if identity.account == crate::account::GLOBAL_ACCOUNT {
                "the authorization block's".to_string()
            } else {
                format!("account {}'s", identity.account)
            };
            reasons.push(Reason::new(
                format!(
                    "this user has no permissions of its own: {block} default_permissions apply"
                ),
                identity.permissions.and_then(|p| p.written_at.as_ref()),
            ));
        }
        if identity.account != crate::account::GLOBAL_ACCOUNT {
            reasons.push(Reason::new(
                format!(
                    "in account {}: only its own subjects, and what its imports and exports carry",
                    identity.account
                ),
                origin.pos,
            ));
        }
        reasons
    }

    /// Where a message on `subject` in account `acc` also goes (publish),
    /// or where messages on it come from (subscribe).
    fn crossing_reasons(&self, acc: usize, operation: Operation, subject: &str) -> Vec<Reason> {
        let accounts = &self.auth.accounts;
        let crossings = match operation {
            Operation::Publish => accounts.crossings_from(acc, subject.as_bytes()),
            Operation::Subscribe => accounts.crossings_into(acc, subject.as_bytes()),
        };
        crossings
            .iter()
            .map(|c| self.crossing_reason(c, operation))
            .collect()
    }

    fn crossing_reason(&self, c: &crate::account::Crossing, operation: Operation) -> Reason {
        let (from, to) = (
            self.auth.accounts.name(c.from),
            self.auth.accounts.name(c.to),
        );
        let kind = if c.service { "service" } else { "stream" };
        let text = match operation {
            Operation::Publish => format!(
                "published in account {from} on {:?}, delivered in account {to} on {:?} ({kind} import of account {})",
                c.from_subject,
                c.to_subject,
                if c.service { from } else { to },
            ),
            Operation::Subscribe => format!(
                "messages published in account {from} on {:?} are delivered in account {to} on {:?} ({kind} import of account {})",
                c.from_subject,
                c.to_subject,
                if c.service { from } else { to },
            ),
        };
        Reason::new(text, c.pos.as_ref())
    }

    /// What a JetStream subject does in account `acc`.
    fn jetstream_note(&self, acc: usize, subject: &str) -> Option<String> {
        let account = self.auth.accounts.name(acc);
        let what = if let Some(api) = subject.strip_prefix("$JS.API.") {
            match ApiCall::parse(api) {
                Some(call) => format!("JetStream API: {} in account {account}", call.describe()),
                None if !is_literal(subject.as_bytes()) => {
                    format!("JetStream API requests of account {account}")
                }
                None => format!("not a JetStream API request tenet answers (account {account})"),
            }
        } else if let Some(ack) = subject.strip_prefix("$JS.ACK.") {
            let mut parts = ack.split('.');
            match (parts.next(), parts.next()) {
                (Some(stream), Some(consumer)) => format!(
                    "JetStream acknowledgement for consumer {consumer} of stream {stream} in account {account}"
                ),
                _ => format!("JetStream acknowledgements in account {account}"),
            }
        } else {
            return None;
        };
        let state = if !self.jetstream {
            "; this server does not run JetStream"
        } else if !self.auth.accounts.has_jetstream(acc) {
            "; this account has no JetStream (requests get error 10039)"
        } else {
            ""
        };
        Some(format!("{what}{state}"))
    }

    fn find_user(&self, name: &str) -> Result<usize, AuditError> {
        let users = &self.auth.users;
        if !users.enabled() {
            return Ok(0);
        }
        users
            .identities()
            .find(|u| !u.name.is_empty() && u.name == name)
            .map(|u| u.index)
            .ok_or_else(|| AuditError::UnknownUser {
                name: name.to_string(),
                known: users
                    .identities()
                    .map(|u| self.display_name(u.index))
                    .collect(),
            })
    }

    /// Identities that log in to account `acc`.
    fn users_of(&self, acc: usize) -> impl Iterator<Item = usize> + '_ {
        let name = self.auth.accounts.name(acc);
        self.auth
            .users
            .identities()
            .filter(move |u| u.account == name)
            .map(|u| u.index)
    }

    fn account_index(&self, name: &str) -> usize {
        self.auth.accounts.index_of(name).unwrap_or(0)
    }

    /// The configured permissions of identity `index` (own or default).
    fn config_of(&self, index: usize) -> Option<&'a PermissionsConfig> {
        self.auth.users.identity(index)?.permissions
    }

    /// How reports name identity `index`.
    fn display_name(&self, index: usize) -> String {
        let identity = self.auth.users.identity(index).expect("exists");
        if !identity.name.is_empty() {
            return identity.name.to_string();
        }
        match self.auth.users.origin(index).map(|o| o.login) {
            Some(Login::Token) => "(token)".to_string(),
            _ => "(anonymous)".to_string(),
        }
    }
}

impl Reason {
    fn with_suffix(mut self, suffix: &str) -> Reason {
        self.text.push_str(suffix);
        self
    }
}

/// A reason naming one entry of an allow (`allow`) or deny list.
fn entry_reason(what: &str, list: &SubjectPermission, entry: usize, allow: bool) -> Reason {
    let (texts, at) = if allow {
        (&list.allow, &list.allow_at)
    } else {
        (&list.deny, &list.deny_at)
    };
    let text = texts.get(entry).map_or("?", String::as_str);
    Reason::new(format!("{what} {text:?}"), at.get(entry))
}

/// Why nothing in an allow list admits `subject`.
fn no_allow_reason(
    kind: &str,
    subject: &str,
    queue: Option<&str>,
    list: Option<&SubjectPermission>,
    written_at: Option<&Pos>,
) -> Reason {
    match list.filter(|l| !l.allow.is_empty()) {
        Some(list) => {
            let what = match (kind, queue) {
                ("subscribe", None) => format!("admits {subject:?} without a queue group"),
                ("subscribe", Some(q)) => format!("admits {subject:?} in queue group {q:?}"),
                _ => format!("matches {subject:?}"),
            };
            let entries: Vec<String> = list.allow.iter().map(|e| format!("{e:?}")).collect();
            Reason::new(
                format!(
                    "no {kind} allow entry {what} (the allow list: {})",
                    entries.join(", ")
                ),
                list.allow_at.first(),
            )
        }
        None => Reason::new(
            format!("the {kind} allow list is empty: nothing may be published but replies"),
            written_at,
        ),
    }
}

/// Allow entries that overlap a denied SUB without covering it, or cover
/// it only for other queue groups: the usual surprises.
fn partial_allow_reasons(
    list: &SubjectPermission,
    subject: &str,
    queue: Option<&str>,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for (i, entry) in list.allow.iter().enumerate() {
        let (pattern, entry_queue) = match entry.split_once(' ') {
            Some((p, q)) => (p.trim(), Some(q.trim())),
            None => (entry.as_str(), None),
        };
        let (p, s) = (pattern.as_bytes(), subject.as_bytes());
        if crate::subject::is_subset(s, p) {
            if let Some(q) = entry_queue {
                let text = match queue {
                    None => format!("allow {entry:?} admits it only in queue group {q:?}"),
                    Some(_) => {
                        format!("allow {entry:?} admits it only in queue groups matching {q:?}")
                    }
                };
                reasons.push(Reason::new(text, list.allow_at.get(i)));
            }
        } else if crate::subject::subjects_collide(s, p) {
            reasons.push(Reason::new(
                format!(
                    "allow {entry:?} matches only some of the subjects {subject:?} matches: a wildcard subscription needs one entry that covers all of them"
                ),
                list.allow_at.get(i),
            ));
        }
    }
    reasons
}

/// A queue name a queue pattern admits (`*` and `>` become `any`).
fn sample_name(pattern: &str) -> String {
    tokens(pattern.as_bytes())
        .map(|t| match t {
            b"*" | b">" => "any".to_string(),
            t => String::from_utf8_lossy(t).into_owned(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn check_input(operation: Operation, subject: &str, queue: Option<&str>) -> Result<(), AuditError> {
    let valid = match operation {
        Operation::Subscribe => is_valid_subject(subject.as_bytes()),
        // A PUB subject is literal; nats-server does not check its tokens.
        Operation::Publish => !subject.is_empty() && !subject.contains(char::is_whitespace),
    };
    if !valid {
        return Err(AuditError::InvalidSubject(subject.to_string()));
    }
    if let Some(q) = queue {
        if operation == Operation::Publish || q.is_empty() || q.contains(char::is_whitespace) {
            return Err(AuditError::InvalidQueue(q.to_string()));
        }
    }
    Ok(())
}
