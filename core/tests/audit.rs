//! The permission audit against the live engine: for random configurations
//! (users with allow/deny lists, queue entries, `allow_responses`, default
//! permissions, two accounts), every decision `--explain` reports is the one
//! the engine makes when that user sends the PUB or SUB; `--who` lists exactly
//! the users the engine lets through; and the audit's named rules and
//! warnings hold on hand-written examples.

use proptest::prelude::*;
use tenet_core::audit::{Audit, Operation, Verdict, WarningKind};
use tenet_core::{ClientId, Server};

mod support;

use support::{config, login, Sim};

/// A permission entry over a small subject universe: 1-3 tokens of `a`, `b`,
/// `*`, with `>` possible last.
fn pattern() -> impl Strategy<Value = String> {
    let token = prop_oneof![Just("a"), Just("b"), Just("*")];
    (prop::collection::vec(token, 1..=3), any::<bool>()).prop_map(|(tokens, fwc)| {
        let mut text = tokens.join(".");
        if fwc {
            text.push_str(".>");
        }
        text
    })
}

fn literal() -> impl Strategy<Value = String> {
    let token = prop_oneof![Just("a"), Just("b"), Just("c")];
    prop::collection::vec(token, 1..=4).prop_map(|t| t.join("."))
}

/// A subscribe entry, sometimes with a queue pattern.
fn sub_entry() -> impl Strategy<Value = String> {
    (
        pattern(),
        prop_oneof![3 => Just(None), 1 => Just(Some("q")), 1 => Just(Some("*"))],
    )
        .prop_map(|(p, q)| match q {
            Some(q) => format!("{p} {q}"),
            None => p,
        })
}

fn list(entries: &[String]) -> String {
    let quoted: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[derive(Clone, Debug)]
struct UserSpec {
    pub_allow: Vec<String>,
    pub_deny: Vec<String>,
    sub_allow: Vec<String>,
    sub_deny: Vec<String>,
    responses: bool,
    /// No permissions of its own (gets the block's defaults, if any).
    bare: bool,
}

fn user_spec() -> impl Strategy<Value = UserSpec> {
    (
        prop::collection::vec(pattern(), 0..3),
        prop::collection::vec(pattern(), 0..2),
        prop::collection::vec(sub_entry(), 0..3),
        prop::collection::vec(sub_entry(), 0..2),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(pub_allow, pub_deny, sub_allow, sub_deny, responses, bare)| UserSpec {
                pub_allow,
                pub_deny,
                sub_allow,
                sub_deny,
                responses,
                bare,
            },
        )
}

impl UserSpec {
    fn permissions(&self) -> String {
        let mut parts = vec![
            format!(
                "publish: {{allow: {}, deny: {}}}",
                list(&self.pub_allow),
                list(&self.pub_deny)
            ),
            format!(
                "subscribe: {{allow: {}, deny: {}}}",
                list(&self.sub_allow),
                list(&self.sub_deny)
            ),
        ];
        if self.responses {
            parts.push("allow_responses: true".into());
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Two accounts of up to three users each, the second with default permissions.
fn configuration() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (
        prop::collection::vec(user_spec(), 1..=3),
        prop::collection::vec(user_spec(), 1..=3),
        user_spec(),
    )
        .prop_map(|(first, second, defaults)| {
            let mut users = Vec::new();
            let mut text = String::from("accounts {\n");
            for (account, specs) in [("A", &first), ("B", &second)] {
                text.push_str(&format!("  {account}: {{\n    users: [\n"));
                for (i, spec) in specs.iter().enumerate() {
                    let name = format!("{}{i}", account.to_lowercase());
                    let perms = if spec.bare {
                        String::new()
                    } else {
                        format!(", permissions: {}", spec.permissions())
                    };
                    text.push_str(&format!("      {{user: {name}, password: p{perms}}}\n"));
                    users.push((name, account.to_string()));
                }
                text.push_str("    ]\n");
                if account == "B" {
                    text.push_str(&format!(
                        "    default_permissions: {}\n",
                        defaults.permissions()
                    ));
                }
                text.push_str("  }\n");
            }
            text.push_str("}\n");
            (text, users)
        })
}

/// Whether the engine answered the last command with a permissions violation.
fn violated(sim: &mut Sim, id: ClientId, command: &str) -> bool {
    sim.send(id, format!("{command}PING\r\n").as_bytes());
    let out = sim.take_str(id);
    // (After the first PING, an INFO follows the PONG.)
    assert!(out.contains("PONG\r\n"), "{command:?}: {out:?}");
    out.contains("-ERR 'Permissions Violation")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn explain_decides_as_the_live_engine(
        (text, users) in configuration(),
        publishes in prop::collection::vec(literal(), 1..6),
        subscribes in prop::collection::vec(
            (pattern(), prop_oneof![Just(None), Just(Some("q")), Just(Some("r"))]),
            1..6,
        ),
    ) {
        let (_, audited) = config(&text);
        let audit = Audit::new(&audited, false);
        let (opts, auth) = config(&text);
        let mut sim = Sim::with_server(Server::with_auth(opts, auth, 3));
        for (user, account) in &users {
            let id = sim.connect(&login(user));
            prop_assert!(!violated(&mut sim, id, ""), "{user} did not log in");
            for subject in &publishes {
                let explained = audit.explain(user, Operation::Publish, subject, None).unwrap();
                prop_assert_eq!(&explained.account, account);
                let live = violated(&mut sim, id, &format!("PUB {subject} 0\r\n\r\n"));
                // No request was received, so a replies-only publish is refused too.
                let audit_denies = matches!(explained.verdict, Verdict::Denied | Verdict::RepliesOnly);
                prop_assert_eq!(audit_denies, live, "{} pub {}\n{}\n{}", user, subject, text, explained.to_text());
                prop_assert!(!explained.reasons.is_empty());
            }
            for (n, (subject, queue)) in subscribes.iter().enumerate() {
                let explained = audit.explain(user, Operation::Subscribe, subject, *queue).unwrap();
                let command = match queue {
                    Some(q) => format!("SUB {subject} {q} {n}\r\n"),
                    None => format!("SUB {subject} {n}\r\n"),
                };
                let live = violated(&mut sim, id, &command);
                prop_assert_eq!(explained.verdict == Verdict::Denied, live, "{} sub {} {:?}\n{}\n{}", user, subject, queue, text, explained.to_text());
                prop_assert!(!explained.reasons.is_empty());
            }
        }
        // --who lists exactly the users --explain lets through, in each account.
        for subject in &publishes {
            for operation in [Operation::Publish, Operation::Subscribe] {
                for account in ["A", "B"] {
                    let who = audit.who(operation, subject, Some(account)).unwrap();
                    let listed: Vec<&str> = who.reaches.iter().map(|r| r.user.as_str()).collect();
                    let admitted: Vec<&str> = users
                        .iter()
                        .filter(|(_, a)| a == account)
                        .filter(|(u, _)| {
                            let e = audit.explain(u, operation, subject, None).unwrap();
                            // A receiver in a queue group only still receives.
                            e.verdict != Verdict::Denied
                                || operation == Operation::Subscribe
                                    && ["q", "any"].iter().any(|q| {
                                        audit.explain(u, operation, subject, Some(q)).unwrap().verdict
                                            != Verdict::Denied
                                    })
                        })
                        .map(|(u, _)| u.as_str())
                        .collect();
                    prop_assert_eq!(listed, admitted, "{} {:?} {}\n{}", account, operation, subject, text);
                }
            }
        }
    }
}

const PRIVATE_INBOX_SHARED: &str = r#"
authorization {
  REQUESTER = { publish: "services.*", subscribe: "_INBOX.>" }
  users = [
    {user: greeter, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186"}
    {user: joe, password: j, permissions: $REQUESTER}
    {user: pam, password: p, permissions: $REQUESTER}
  ]
}
"#;

#[test]
fn every_user_reading_the_shared_inbox_space_is_warned_at_the_rule() {
    let (_, auth) = config(PRIVATE_INBOX_SHARED);
    let warnings = Audit::new(&auth, false).warnings();
    let replies: Vec<_> = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::ReadsOthersReplies)
        .collect();
    let messages: Vec<&str> = replies.iter().map(|w| w.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("pam can read the replies of greeter, joe:")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("joe can read the replies of greeter, pam:")),
        "{messages:?}"
    );
    // greeter has no permissions (it reads everything): it is warned too.
    assert!(
        messages
            .iter()
            .any(|m| m
                .starts_with("greeter can read the replies of joe, pam: no subscribe allow list")),
        "{messages:?}"
    );
    for w in &replies {
        assert!(w.fix.contains("_INBOX_"), "{w:?}");
    }
    // joe's and pam's warnings point at the `_INBOX.>` entry of $REQUESTER.
    let at = replies[0].at.as_ref().expect("a position");
    assert_eq!((at.line, at.column), (3, 52), "{replies:?}");
    assert!(warnings
        .iter()
        .any(|w| w.kind == WarningKind::PlaintextPassword
            && w.log_line() == "Plaintext passwords detected, use nkeys or bcrypt"));
    assert!(warnings
        .iter()
        .any(|w| w.kind == WarningKind::UnrestrictedUser
            && w.message.starts_with("greeter has no permissions")));
}

#[test]
fn private_inbox_prefixes_are_clean() {
    let text = r#"
authorization {
  users = [
    {user: greeter, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186", permissions: {subscribe: "services.greet", allow_responses: true}}
    {user: joe, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186", permissions: {publish: "services.*", subscribe: "_INBOX_joe.>"}}
    {user: pam, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186", permissions: {publish: "services.*", subscribe: "_INBOX_pam.>"}}
  ]
}
"#;
    let (_, auth) = config(text);
    assert_eq!(Audit::new(&auth, false).warnings(), vec![]);
}

#[test]
fn rules_that_never_apply_are_named_where_written() {
    let text = r#"
authorization {
  users = [
    {user: u, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186", permissions: {
      publish: {allow: ["foo.bar", "x.>", "x.y", "foo.bar"], deny: ["foo.>", "zzz"]}
      subscribe: {allow: ["a.b"], deny: ["c.d"]}
    }}
    {user: v, password: "$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186", permissions: {publish: ">", allow_responses: true, subscribe: "_INBOX_v.>"}}
  ]
}
"#;
    let (_, auth) = config(text);
    let warnings = Audit::new(&auth, false).warnings();
    let find = |kind: WarningKind, needle: &str| {
        warnings
            .iter()
            .find(|w| w.kind == kind && w.message.contains(needle))
            .unwrap_or_else(|| panic!("no {kind:?} with {needle:?} in {warnings:#?}"))
    };
    let allow = find(WarningKind::AllowNeverApplies, "\"foo.bar\"");
    assert_eq!(allow.at.as_ref().map(|p| p.line), Some(5));
    find(WarningKind::DuplicateEntry, "\"foo.bar\" is written twice");
    find(WarningKind::WiderThanItsNeighbours, "\"x.>\"");
    find(WarningKind::DenyNeverApplies, "publish deny \"zzz\"");
    find(WarningKind::DenyNeverApplies, "subscribe deny \"c.d\"");
    let responses = find(WarningKind::ResponsesWithoutEffect, "v:");
    assert_eq!(responses.at.as_ref().map(|p| p.line), Some(8));
}

#[test]
fn explain_names_the_deciding_entry_and_the_import_that_carries_it() {
    let text = r#"
accounts {
  SHARED: {
    users: [{user: board, password: p}]
    exports: [{stream: "feed.>"}, {service: "post.*"}]
  }
  ACME: {
    users: [{user: app, password: p, permissions: {publish: {allow: "post.*", deny: "post.secret"}, subscribe: "feed.>"}}]
    imports: [
      {stream: {account: SHARED, subject: "feed.>"}, prefix: "shared"}
      {service: {account: SHARED, subject: "post.*"}}
    ]
  }
}
"#;
    let (_, auth) = config(text);
    let audit = Audit::new(&auth, false);
    let allowed = audit
        .explain("app", Operation::Publish, "post.hello", None)
        .unwrap();
    assert_eq!(allowed.verdict, Verdict::Allowed);
    assert!(
        allowed.reasons[0].text.contains("\"post.*\""),
        "{allowed:?}"
    );
    assert_eq!(allowed.reasons[0].at.as_ref().map(|p| p.line), Some(8));
    assert!(
        allowed.crossings.iter().any(|c| c
            .text
            .contains("delivered in account SHARED on \"post.hello\"")
            && c.at.as_ref().map(|p| p.line) == Some(11)),
        "{allowed:#?}"
    );
    let denied = audit
        .explain("app", Operation::Publish, "post.secret", None)
        .unwrap();
    assert_eq!(denied.verdict, Verdict::Denied);
    assert!(
        denied.reasons[0].text.contains("deny \"post.secret\""),
        "{denied:?}"
    );
    assert!(denied.crossings.is_empty());
    // Receivers of SHARED's feed: board itself, and app through the prefixed import.
    let who = audit
        .who(Operation::Subscribe, "feed.news", Some("SHARED"))
        .unwrap();
    let found: Vec<(&str, &str)> = who
        .reaches
        .iter()
        .map(|r| (r.user.as_str(), r.subject.as_str()))
        .collect();
    assert_eq!(found, vec![("board", "feed.news")]);
    // app may only subscribe to feed.>, not shared.feed.>: nobody in ACME receives it.
    let who = audit
        .who(Operation::Subscribe, "feed.>", Some("SHARED"))
        .unwrap();
    assert!(
        who.reaches.iter().all(|r| r.account == "SHARED"),
        "{who:#?}"
    );
    // Publishers into SHARED's post.x: board, and app through the service import.
    let who = audit
        .who(Operation::Publish, "post.x", Some("SHARED"))
        .unwrap();
    let found: Vec<(&str, &str)> = who
        .reaches
        .iter()
        .map(|r| (r.user.as_str(), r.account.as_str()))
        .collect();
    assert_eq!(found, vec![("board", "SHARED"), ("app", "ACME")]);
}

#[test]
fn jetstream_subjects_are_named_with_their_account() {
    let text = r#"
jetstream { store_dir: "/nonexistent" }
accounts {
  T: { jetstream: enabled, users: [{user: t, password: p, permissions: {publish: "$JS.API.>"}}] }
  U: { users: [{user: u, password: p}] }
}
"#;
    let (_, auth) = config(text);
    let audit = Audit::new(&auth, true);
    let e = audit
        .explain(
            "t",
            Operation::Publish,
            "$JS.API.STREAM.CREATE.student",
            None,
        )
        .unwrap();
    assert_eq!(
        e.jetstream.as_deref(),
        Some("JetStream API: create stream student in account T")
    );
    let e = audit
        .explain(
            "u",
            Operation::Publish,
            "$JS.API.CONSUMER.DURABLE.CREATE.s.d",
            None,
        )
        .unwrap();
    assert_eq!(
        e.jetstream.as_deref(),
        Some("JetStream API: create durable consumer d on stream s in account U; this account has no JetStream (requests get error 10039)")
    );
    let e = audit
        .explain(
            "t",
            Operation::Publish,
            "$JS.ACK.orders.worker.1.2.3.4.0",
            None,
        )
        .unwrap();
    assert!(e
        .jetstream
        .unwrap()
        .starts_with("JetStream acknowledgement for consumer worker of stream orders"));
}

#[test]
fn a_reply_warning_names_five_users_and_counts_the_rest() {
    let users: String = (0..8)
        .map(|i| format!("    {{user: u{i}, password: \"$2b$04$gTq2e0umeQ/YnpKzdPV2menebp8ZL9ZDJ0HJy01pMfoyJlLDT5186\", permissions: $R}}\n"))
        .collect();
    let text = format!(
        "authorization {{\n  R = {{publish: \"svc.*\", subscribe: \"_INBOX.>\"}}\n  users = [\n{users}  ]\n}}\n"
    );
    let (_, auth) = config(&text);
    let warnings = Audit::new(&auth, false).warnings();
    assert_eq!(warnings.len(), 8, "{warnings:#?}");
    assert_eq!(
        warnings[0].message,
        "u0 can read the replies of u1, u2, u3, u4, u5 and 2 others: it may subscribe to \"_INBOX.>\""
    );
}
