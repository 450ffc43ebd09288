//! Warnings about a configuration's permissions: replies others can read, rules that never take effect, and risky settings.
//!
//! A warning never changes what the server does; each names where the rule
//! was written and how to fix it.

use std::collections::BTreeMap;

use crate::account::GLOBAL_ACCOUNT;
use crate::auth::Login;
use crate::config::options::SubjectPermission;
use crate::config::Pos;
use crate::perms::SubscribeDecision;
use crate::subject::{is_subset, subjects_collide};

use super::Audit;

/// What a warning is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// A user may subscribe to another user's reply subjects.
    ReadsOthersReplies,
    /// An allow entry that a deny entry of the same list entirely covers.
    AllowNeverApplies,
    /// A deny entry outside every allow entry of its list.
    DenyNeverApplies,
    /// The same entry twice in one list.
    DuplicateEntry,
    /// An allow entry that covers other entries of its list.
    WiderThanItsNeighbours,
    /// Passwords stored in plain text.
    PlaintextPassword,
    /// A user without permissions among restricted users of its account.
    UnrestrictedUser,
    /// A service export any account may import, from an account that
    /// receives other tenants' data.
    PublicServiceExport,
    /// `allow_responses` for a user who may publish everywhere anyway.
    ResponsesWithoutEffect,
}

impl WarningKind {
    /// A stable name for JSON and filters: `reads_others_replies`, ...
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::ReadsOthersReplies => "reads_others_replies",
            WarningKind::AllowNeverApplies => "allow_never_applies",
            WarningKind::DenyNeverApplies => "deny_never_applies",
            WarningKind::DuplicateEntry => "duplicate_entry",
            WarningKind::WiderThanItsNeighbours => "wider_than_its_neighbours",
            WarningKind::PlaintextPassword => "plaintext_password",
            WarningKind::UnrestrictedUser => "unrestricted_user",
            WarningKind::PublicServiceExport => "public_service_export",
            WarningKind::ResponsesWithoutEffect => "responses_without_effect",
        }
    }
}

/// One warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// Where the rule to change was written.
    pub at: Option<Pos>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl Warning {
    /// The line a running server logs: nats-server's own for plaintext
    /// passwords, else the position, the message and the fix.
    pub fn log_line(&self) -> String {
        match (&self.kind, &self.at) {
            (WarningKind::PlaintextPassword, _) => self.message.clone(),
            (_, Some(at)) => format!("{at}: {} (fix: {})", self.message, self.fix),
            (_, None) => format!("{} (fix: {})", self.message, self.fix),
        }
    }
}

/// Every warning about `audit`'s configuration, in file order.
pub(super) fn find(audit: &Audit<'_>) -> Vec<Warning> {
    let mut found = Vec::new();
    replies_others_read(audit, &mut found);
    for index in audit.auth.users.identities().map(|u| u.index) {
        let Some(config) = audit.config_of(index) else {
            continue;
        };
        let user = audit.display_name(index);
        if audit.auth.users.origin(index).is_some_and(|o| o.defaulted) {
            // Default permissions are checked once, as the first user
            // that has them (their positions are the block's).
            let first = audit
                .auth
                .users
                .identities()
                .find(|u| u.permissions.map(|p| p as *const _) == Some(config as *const _));
            if first.is_some_and(|u| u.index != index) {
                continue;
            }
        }
        for (kind, list) in [
            ("publish", &config.publish),
            ("subscribe", &config.subscribe),
        ] {
            if let Some(list) = list {
                list_warnings(&user, kind, list, &mut found);
            }
        }
        if let (Some(_), Some(list)) = (config.allow_responses, &config.publish) {
            if let Some(i) = list.allow.iter().position(|e| e == ">") {
                if list.deny.is_empty() {
                    found.push(Warning {
                        kind: WarningKind::ResponsesWithoutEffect,
                        at: config.allow_responses_at.clone().or(list.allow_at.get(i).cloned()),
                        message: format!(
                            "allow_responses has no effect for {user}: its publish allow \">\" lets it publish to every subject, replies included"
                        ),
                        fix: "narrow its publish allow list to the subjects it must publish to, and keep allow_responses for its replies".into(),
                    });
                }
            }
        }
    }
    plaintext_passwords(audit, &mut found);
    unrestricted_users(audit, &mut found);
    public_service_exports(audit, &mut found);
    found.sort_by(|a, b| a.at.cmp(&b.at));
    found.dedup();
    found
}

/// Users of one account who may subscribe to the reply subjects of another
/// user there who makes requests.
fn replies_others_read(audit: &Audit<'_>, found: &mut Vec<Warning>) {
    let users = &audit.auth.users;
    // Each account's distinct reply spaces, with the requesters whose
    // replies arrive there: readers are checked once per space, not once
    // per requester.
    let mut spaces: BTreeMap<(&str, String), Vec<usize>> = BTreeMap::new();
    for user in users.identities() {
        for space in reply_space(audit, user.index) {
            spaces
                .entry((user.account, space))
                .or_default()
                .push(user.index);
        }
    }
    for reader in users.identities() {
        let allows = subscribe_allows(audit, reader.index);
        let mut victims: Vec<usize> = Vec::new();
        let mut rule: Option<(String, Option<Pos>)> = None;
        for ((account, space), requesters) in &spaces {
            if *account != reader.account || requesters.iter().all(|&r| r == reader.index) {
                continue;
            }
            if let Some(entry) = readable(audit, reader.index, &allows, space) {
                victims.extend(requesters.iter().filter(|&&r| r != reader.index));
                rule.get_or_insert(entry);
            }
        }
        let Some((rule_text, rule_at)) = rule else {
            continue;
        };
        victims.sort_unstable();
        victims.dedup();
        let names: Vec<String> = victims
            .iter()
            .take(NAMED_VICTIMS)
            .map(|&v| audit.display_name(v))
            .collect();
        let reader_name = audit.display_name(reader.index);
        let whose = match names.as_slice() {
            [one] => format!("{one}'s replies"),
            _ if victims.len() > NAMED_VICTIMS => format!(
                "the replies of {} and {} others",
                names.join(", "),
                victims.len() - NAMED_VICTIMS
            ),
            many => format!("the replies of {}", many.join(", ")),
        };
        let what = if rule_text.is_empty() {
            "no subscribe allow list restricts it".to_string()
        } else {
            format!("it may subscribe to {rule_text:?}")
        };
        found.push(Warning {
            kind: WarningKind::ReadsOthersReplies,
            at: rule_at.or_else(|| users.origin(reader.index).and_then(|o| o.pos.cloned())),
            message: format!("{reader_name} can read {whose}: {what}"),
            fix: format!(
                "give each user an inbox prefix of its own: subscribe \"_INBOX_{reader_name}.>\" for {reader_name} (and the client's custom inbox prefix \"_INBOX_{reader_name}\"), as in the README's private-inbox section"
            ),
        });
    }
}

/// How many users a reply warning names before it counts the rest.
const NAMED_VICTIMS: usize = 5;

/// The subjects replies to `index`'s requests arrive on, if it makes
/// requests: the inbox-like entries of its subscribe allow list, else
/// `_INBOX.>` (clients' default) if it may subscribe there.
fn reply_space(audit: &Audit<'_>, index: usize) -> Vec<String> {
    let Some(perms) = audit.compiled[index].as_ref() else {
        return vec!["_INBOX.>".to_string()];
    };
    // Only replies (allow_responses and no publish allow list): it answers
    // requests, it makes none.
    let config = audit.config_of(index);
    let allow_listed = config
        .and_then(|c| c.publish.as_ref())
        .is_some_and(|l| !l.allow.is_empty());
    if !allow_listed && config.is_some_and(|c| c.allow_responses.is_some()) {
        return Vec::new();
    }
    let inboxes: Vec<String> = audit
        .config_of(index)
        .and_then(|c| c.subscribe.as_ref())
        .map(|l| {
            l.allow
                .iter()
                .filter(|e| e.starts_with("_INBOX") && !e.contains(' '))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !inboxes.is_empty() {
        return inboxes;
    }
    if perms.can_subscribe(b"_INBOX.>", None) != SubscribeDecision::Denied {
        return vec!["_INBOX.>".to_string()];
    }
    Vec::new()
}

/// A user's plain subscribe allow entries and where each was written; one
/// entry "" (everything) when no allow list restricts it.
fn subscribe_allows(audit: &Audit<'_>, index: usize) -> Vec<(String, Option<Pos>)> {
    let config = audit.config_of(index);
    match config
        .and_then(|c| c.subscribe.as_ref())
        .filter(|l| !l.allow.is_empty())
    {
        Some(list) => list
            .allow
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.contains(' '))
            .map(|(i, e)| (e.clone(), list.allow_at.get(i).cloned()))
            .collect(),
        None => vec![(String::new(), config.and_then(|c| c.written_at.clone()))],
    }
}

/// Whether `reader`, with these allow entries, may subscribe to some
/// subject in `space`: the entry that lets it ("" when it is unrestricted).
fn readable(
    audit: &Audit<'_>,
    reader: usize,
    allows: &[(String, Option<Pos>)],
    space: &str,
) -> Option<(String, Option<Pos>)> {
    let Some(perms) = audit.compiled[reader].as_ref() else {
        return Some((String::new(), None));
    };
    allows
        .iter()
        .find(|(entry, _)| {
            let e = if entry.is_empty() {
                &b">"[..]
            } else {
                entry.as_bytes()
            };
            let s = space.as_bytes();
            if !subjects_collide(e, s) {
                return false;
            }
            // The part of the reply space the entry reaches, as a SUB.
            let shared = if is_subset(s, e) { s } else { e };
            perms.can_subscribe(shared, None) != SubscribeDecision::Denied
        })
        .cloned()
}

/// Allow entries a deny covers, denies outside every allow, duplicates, and
/// an allow entry that covers its neighbours.
fn list_warnings(user: &str, kind: &str, list: &SubjectPermission, found: &mut Vec<Warning>) {
    let split = |e: &str| -> (String, Option<String>) {
        match e.split_once(' ') {
            Some((s, q)) => (s.trim().to_string(), Some(q.trim().to_string())),
            None => (e.to_string(), None),
        }
    };
    let allow: Vec<(String, Option<String>)> = list.allow.iter().map(|e| split(e)).collect();
    let deny: Vec<(String, Option<String>)> = list.deny.iter().map(|e| split(e)).collect();
    for (i, (a, aq)) in allow.iter().enumerate() {
        let at = list.allow_at.get(i).cloned();
        if let Some(j) = deny
            .iter()
            .position(|(d, dq)| dq.is_none() && is_subset(a.as_bytes(), d.as_bytes()))
        {
            found.push(Warning {
                kind: WarningKind::AllowNeverApplies,
                at: at.clone(),
                message: format!(
                    "{user}'s {kind} allow {:?} never takes effect: deny {:?} covers it (deny wins)",
                    list.allow[i], list.deny[j]
                ),
                fix: format!("remove the allow entry, or narrow the deny entry {:?}", list.deny[j]),
            });
        }
        if let Some(j) = (0..i).find(|&j| allow[j] == allow[i]) {
            found.push(duplicate(
                user,
                kind,
                "allow",
                &list.allow[i],
                list.allow_at.get(j),
                at.clone(),
            ));
        }
        let covered: Vec<&str> = allow
            .iter()
            .enumerate()
            .filter(|&(j, (b, bq))| {
                j != i
                    && aq.is_none()
                    && b != a
                    && is_subset(b.as_bytes(), a.as_bytes())
                    && (bq.is_none() || kind == "subscribe")
            })
            .map(|(j, _)| list.allow[j].as_str())
            .collect();
        if !covered.is_empty() {
            let names: Vec<String> = covered.iter().map(|c| format!("{c:?}")).collect();
            found.push(Warning {
                kind: WarningKind::WiderThanItsNeighbours,
                at,
                message: format!(
                    "{user}'s {kind} allow {a:?} admits more than its other entries suggest: it covers {}, which add nothing",
                    names.join(", ")
                ),
                fix: format!("remove {a:?} if the narrower entries are what {user} needs, else remove them"),
            });
        }
    }
    for (i, (d, _)) in deny.iter().enumerate() {
        let at = list.deny_at.get(i).cloned();
        if let Some(j) = (0..i).find(|&j| deny[j] == deny[i]) {
            found.push(duplicate(
                user,
                kind,
                "deny",
                &list.deny[i],
                list.deny_at.get(j),
                at.clone(),
            ));
            continue;
        }
        if !allow.is_empty()
            && !allow
                .iter()
                .any(|(a, _)| subjects_collide(a.as_bytes(), d.as_bytes()))
        {
            found.push(Warning {
                kind: WarningKind::DenyNeverApplies,
                at,
                message: format!(
                    "{user}'s {kind} deny {:?} never takes effect: no allow entry admits any of its subjects",
                    list.deny[i]
                ),
                fix: "remove the deny entry (only allowed subjects can be denied)".into(),
            });
        }
    }
}

fn duplicate(
    user: &str,
    kind: &str,
    side: &str,
    entry: &str,
    first: Option<&Pos>,
    at: Option<Pos>,
) -> Warning {
    let first = first.map_or(String::new(), |p| format!(" (first at {p})"));
    Warning {
        kind: WarningKind::DuplicateEntry,
        at,
        message: format!("{user}'s {kind} {side} {entry:?} is written twice{first}"),
        fix: "remove the second entry".into(),
    }
}

/// nats-server's warning, when nats-server would give it
/// ([`crate::Users::has_plaintext_passwords`]), at the first user with a
/// plain password.
fn plaintext_passwords(audit: &Audit<'_>, found: &mut Vec<Warning>) {
    let users = &audit.auth.users;
    if !users.has_plaintext_passwords() {
        return;
    }
    let at = users
        .identities()
        .filter_map(|u| users.origin(u.index))
        .find(|o| o.login == Login::PlainPassword)
        .and_then(|o| o.pos.cloned());
    found.push(Warning {
        kind: WarningKind::PlaintextPassword,
        at,
        message: "Plaintext passwords detected, use nkeys or bcrypt".into(),
        fix: "store bcrypt hashes (`nats server passwd` makes one) or give the users nkeys".into(),
    });
}

/// Users without any permissions in an account where others are restricted.
fn unrestricted_users(audit: &Audit<'_>, found: &mut Vec<Warning>) {
    let users = &audit.auth.users;
    for account in audit.auth.accounts.names() {
        let members: Vec<usize> = users
            .identities()
            .filter(|u| u.account == account)
            .map(|u| u.index)
            .collect();
        let restricted = members.iter().any(|&i| audit.compiled[i].is_some());
        if !restricted {
            continue;
        }
        for &i in members.iter().filter(|&&i| audit.compiled[i].is_none()) {
            let origin = users.origin(i).expect("exists");
            if origin.login == Login::Anonymous {
                continue;
            }
            let name = audit.display_name(i);
            let place = if account == GLOBAL_ACCOUNT {
                "in the authorization block".to_string()
            } else {
                format!("in account {account}")
            };
            found.push(Warning {
                kind: WarningKind::UnrestrictedUser,
                at: origin.pos.cloned(),
                message: format!(
                    "{name} has no permissions {place}, where other users are restricted: it may publish and subscribe to everything there"
                ),
                fix: format!("give {name} permissions, or the block default_permissions"),
            });
        }
    }
}

/// Public service exports of accounts that import other tenants' streams.
fn public_service_exports(audit: &Audit<'_>, found: &mut Vec<Warning>) {
    let accounts = &audit.auth.accounts;
    for acc in 0..accounts.len() {
        let Some((exporter, route)) = accounts.stream_imports_of(acc).next() else {
            continue;
        };
        for export in accounts
            .exports(acc)
            .iter()
            .filter(|e| e.service && e.accounts.is_none())
        {
            found.push(Warning {
                kind: WarningKind::PublicServiceExport,
                at: export.pos.clone(),
                message: format!(
                    "account {}'s service export {:?} is public, and {} receives account {}'s stream {:?}: any account can import the service and be answered with that data",
                    accounts.name(acc),
                    export.subject,
                    accounts.name(acc),
                    accounts.name(exporter),
                    String::from_utf8_lossy(&route.source),
                ),
                fix: "list the accounts that may import it: accounts: [...]".into(),
            });
        }
    }
}
