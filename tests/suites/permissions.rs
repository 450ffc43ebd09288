//! Subject permissions (reference §3.2–§3.6) over raw TCP with exact bytes:
//! publish and subscribe allow/deny lists (deny wins, `*` and `>`), the
//! `Permissions Violation` errors (no delivery, no `+OK`, the connection stays
//! usable), queue-group entries, delivery-time deny filtering, tenet's subset
//! check for wildcard subscriptions, `default_permissions`, variables, reserved
//! reply prefixes and `allow_responses`.

use std::thread;
use std::time::Duration;

use tenet_tests::wire::{msg, msg_reply, publish, request};
use tenet_tests::{skip_on_reference, RawClient, TestServer};

/// A server with the user `u`, whose permissions map holds `permissions`, and the
/// unrestricted user `admin`; both have the password `p`.
fn server_with(permissions: &str) -> TestServer {
    TestServer::with_config(
        &format!(
            "authorization {{ users = [\n  \
             {{user: u, password: p, permissions: {{ {permissions} }}}}\n  \
             {{user: admin, password: p}}\n] }}\n"
        ),
        &[],
    )
}

/// `user` (password `p`) logged in with verbose off; PING/PONG done.
fn login(server: &TestServer, user: &str) -> RawClient {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"user\":\"{user}\",\"pass\":\"p\"}}\r\n"
    ));
    c.ping();
    c
}

/// `user` (password `p`) logged in with verbose on; `+OK` and PING/PONG done.
fn login_verbose(server: &TestServer, user: &str) -> RawClient {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":true,\"pedantic\":false,\"protocol\":1,\"user\":\"{user}\",\"pass\":\"p\"}}\r\n"
    ));
    c.expect(b"+OK\r\n");
    c.ping();
    c
}

fn pub_denied(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n")
}

fn sub_denied(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\"'\r\n")
}

fn queue_denied(subject: &str, queue: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\" using queue \"{queue}\"'\r\n")
}

fn reply_denied(reply: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish with Reply of \"{reply}\"'\r\n")
}

/// Publishes each subject (payload = the subject) from `c`, which subscribes to
/// everything as sid 1, and expects exactly, in order, the delivery of each
/// allowed subject or the publish violation of each denied one.
fn check_publishes(c: &mut RawClient, cases: &[(&str, bool)]) {
    c.send(b"SUB > 1\r\n");
    let mut sent = String::new();
    let mut want = String::new();
    for &(subject, allowed) in cases {
        sent.push_str(&publish(subject, subject));
        want.push_str(&if allowed {
            msg(subject, 1, subject)
        } else {
            pub_denied(subject)
        });
    }
    sent.push_str("PING\r\n");
    want.push_str("PONG\r\n");
    c.send(sent);
    c.expect(want);
}

/// Sends `SUB <subject> <sid>` for each case from a verbose client and expects
/// `+OK` for the allowed ones and the subscription violation for the others.
fn check_subscribes(c: &mut RawClient, cases: &[(&str, bool)]) {
    for (sid, &(subject, allowed)) in cases.iter().enumerate() {
        c.send(format!("SUB {subject} {}\r\n", sid + 1));
        if allowed {
            c.expect(b"+OK\r\n");
        } else {
            c.expect(sub_denied(subject));
        }
    }
    c.ping();
}

// ----- publish ----------------------------------------------------------------

#[test]
fn publish_allow_list_with_wildcards() {
    let server = server_with(r#"publish: ["foo.*", "bar.>", "baz"]"#);
    let mut c = login(&server, "u");
    check_publishes(
        &mut c,
        &[
            ("foo.a", true),
            ("foo.a.b", false),
            ("foo", false),
            ("bar", false),
            ("bar.x", true),
            ("bar.x.y.z", true),
            ("baz", true),
            ("baz.q", false),
            ("qux", false),
        ],
    );
}

#[test]
fn publish_single_subject_string() {
    let server = server_with(r#"publish: "only.this""#);
    let mut c = login(&server, "u");
    check_publishes(
        &mut c,
        &[("only.this", true), ("only.that", false), ("only", false)],
    );
}

#[test]
fn publish_deny_wins_over_allow() {
    let server =
        server_with(r#"publish: {allow: ["foo.>"], deny: ["foo.secret", "foo.*.private"]}"#);
    let mut c = login(&server, "u");
    check_publishes(
        &mut c,
        &[
            ("foo.a", true),
            ("foo.secret", false),
            ("foo.secret.x", true),
            ("foo.x.private", false),
            ("foo.x.public", true),
            ("foo.x.y.private", true),
            ("bar", false),
        ],
    );
}

#[test]
fn publish_deny_list_alone_allows_everything_else() {
    let server = server_with(r#"publish: {deny: ["secret.>", "*.admin"]}"#);
    let mut c = login(&server, "u");
    check_publishes(
        &mut c,
        &[
            ("foo", true),
            ("secret", true),
            ("secret.x", false),
            ("secret.x.y", false),
            ("x.admin", false),
            ("x.y.admin", true),
            ("admin", true),
        ],
    );
}

#[test]
fn publish_deny_everything() {
    let server = server_with(r#"publish: {deny: ">"}"#);
    let mut c = login(&server, "u");
    check_publishes(
        &mut c,
        &[("a", false), ("a.b.c", false), ("_INBOX.x", false)],
    );
}

#[test]
fn denied_publish_gets_no_ok_and_is_not_delivered() {
    let server = server_with(r#"publish: "allowed""#);
    let mut admin = login(&server, "admin");
    admin.send(b"SUB > 1\r\n");
    admin.ping();
    let mut c = login_verbose(&server, "u");
    c.send(publish("allowed", "yes"));
    c.expect(b"+OK\r\n");
    c.send(publish("denied", "no"));
    c.expect(pub_denied("denied"));
    c.send(publish("allowed", "again"));
    c.expect(b"+OK\r\n");
    // Still usable after the violations.
    c.send(format!("{}{}", publish("denied.too", "no"), "PING\r\n"));
    c.expect(format!("{}PONG\r\n", pub_denied("denied.too")));
    admin.send(b"PING\r\n");
    admin.expect(format!(
        "{}{}PONG\r\n",
        msg("allowed", 1, "yes"),
        msg("allowed", 1, "again")
    ));
}

// ----- subscribe --------------------------------------------------------------

#[test]
fn subscribe_allow_and_deny() {
    let server = server_with(r#"subscribe: {allow: ["foo.>", "bar"], deny: ["foo.secret"]}"#);
    let mut c = login_verbose(&server, "u");
    check_subscribes(
        &mut c,
        &[
            ("bar", true),
            ("baz", false),
            ("foo.secret", false),
            ("foo.x", true),
            ("bar.x", false),
        ],
    );
    // The refused subscriptions do not exist: nothing is delivered on them.
    let mut admin = login(&server, "admin");
    admin.send(format!(
        "{}{}{}{}{}PING\r\n",
        publish("baz", "1"),
        publish("foo.secret", "2"),
        publish("bar", "3"),
        publish("foo.x", "4"),
        publish("bar.x", "5"),
    ));
    admin.expect(b"PONG\r\n");
    c.send(b"PING\r\n");
    c.expect(format!(
        "{}{}PONG\r\n",
        msg("bar", 1, "3"),
        msg("foo.x", 4, "4")
    ));
}

#[test]
fn subscribe_denied_without_verbose_and_connection_stays_usable() {
    let server = server_with(r#"subscribe: "mine.>", publish: "mine.>""#);
    let mut c = login(&server, "u");
    c.send(format!(
        "SUB yours 1\r\nSUB mine.a 2\r\nSUB > 3\r\n{}PING\r\n",
        publish("mine.a", "hi")
    ));
    c.expect(format!(
        "{}{}{}PONG\r\n",
        sub_denied("yours"),
        sub_denied(">"),
        msg("mine.a", 2, "hi")
    ));
}

#[test]
fn wildcard_subscriptions_against_allow_entries() {
    // Matches nats-server as well as a subset check (the cases where they agree).
    let server = server_with(r#"subscribe: ["foo.>", "bar.baz", "*.qux"]"#);
    let mut c = login_verbose(&server, "u");
    check_subscribes(
        &mut c,
        &[
            ("foo.*", true),
            ("foo.>", true),
            ("foo.bar", true),
            ("foo.*.>", true),
            ("foo", false),
            ("bar.baz", true),
            ("bar.*", false),
            ("bar.>", false),
            (">", false),
            ("*", false),
            ("*.qux", true),
            ("x.qux", true),
            ("*.>", false),
            ("*.*", false),
        ],
    );
}

#[test]
fn wildcard_subscription_wider_than_the_allow_entry_is_refused() {
    if skip_on_reference(
        "nats-server admits SUB foo.> under allow foo.* (reference §3.2, Q1); \
         tenet allows a wildcard SUB only if every subject it matches is allowed",
    ) {
        return;
    }
    let server = server_with(r#"subscribe: ["foo.*", "_INBOX.*", "a.*.c"]"#);
    let mut c = login_verbose(&server, "u");
    check_subscribes(
        &mut c,
        &[
            ("foo.>", false),
            ("_INBOX.>", false),
            ("a.*.>", false),
            ("a.>", false),
            ("a.*.*", false),
            ("foo.*", true),
            ("_INBOX.*", true),
            ("a.*.c", true),
            ("a.b.c", true),
        ],
    );
    // Nothing deeper than the allowed level reaches the client.
    let mut admin = login(&server, "admin");
    admin.send(format!(
        "{}{}{}PING\r\n",
        publish("foo.a.b", "deep"),
        publish("_INBOX.x.y", "deep"),
        publish("foo.a", "ok")
    ));
    admin.expect(b"PONG\r\n");
    c.send(b"PING\r\n");
    c.expect(format!("{}PONG\r\n", msg("foo.a", 6, "ok")));
}

#[test]
fn wildcard_subscription_overlapping_a_deny_is_filtered_at_delivery() {
    let server = server_with(r#"subscribe: {allow: ["foo.*"], deny: ["foo.baz"]}"#);
    let mut c = login_verbose(&server, "u");
    check_subscribes(&mut c, &[("foo.*", true), ("foo.baz", false)]);
    let mut admin = login(&server, "admin");
    admin.send(format!(
        "{}{}{}PING\r\n",
        publish("foo.bar", "1"),
        publish("foo.baz", "2"),
        publish("foo.qux", "3")
    ));
    admin.expect(b"PONG\r\n");
    c.send(b"PING\r\n");
    c.expect(format!(
        "{}{}PONG\r\n",
        msg("foo.bar", 1, "1"),
        msg("foo.qux", 1, "3")
    ));
}

#[test]
fn full_wildcard_subscription_with_a_deny_list_alone() {
    let server = server_with(r#"subscribe: {deny: ["secret.>"]}"#);
    let mut c = login_verbose(&server, "u");
    check_subscribes(&mut c, &[(">", true), ("secret.x", false)]);
    let mut admin = login(&server, "admin");
    admin.send(format!(
        "{}{}{}PING\r\n",
        publish("public.x", "1"),
        publish("secret.a", "2"),
        publish("secret", "3")
    ));
    admin.expect(b"PONG\r\n");
    c.send(b"PING\r\n");
    c.expect(format!(
        "{}{}PONG\r\n",
        msg("public.x", 1, "1"),
        msg("secret", 1, "3")
    ));
}

#[test]
fn queue_member_filtered_by_a_deny_is_skipped_for_another_member() {
    let server = server_with(r#"subscribe: {allow: ["w.*"], deny: ["w.baz"]}"#);
    let mut c = login(&server, "u");
    c.send(b"SUB w.* q 1\r\n");
    c.ping();
    let mut admin = login(&server, "admin");
    admin.send(b"SUB w.* q 1\r\n");
    admin.ping();
    let mut batch = String::new();
    let mut want = String::new();
    for i in 0..20 {
        batch.push_str(&publish("w.baz", &i.to_string()));
        want.push_str(&msg("w.baz", 1, &i.to_string()));
    }
    admin.send(format!("{batch}PING\r\n"));
    want.push_str("PONG\r\n");
    admin.expect(want);
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
}

#[test]
fn queue_group_entries() {
    let server = server_with(
        r#"subscribe: {allow: ["foo v1", "bar", "baz", "baz v1", "qux v1.*"], deny: ["> *.prod"]}"#,
    );
    let mut c = login_verbose(&server, "u");
    let cases: &[(&str, Option<&str>, bool)] = &[
        // Only the queue entry: a plain subscription is refused.
        ("foo", None, false),
        ("foo", Some("v1"), true),
        ("foo", Some("v2"), false),
        // A plain entry admits any group.
        ("bar", None, true),
        ("bar", Some("anyq"), true),
        // Plain plus queue entry: plain allowed, groups only v1.
        ("baz", None, true),
        ("baz", Some("v1"), true),
        ("baz", Some("v2"), false),
        // Wildcard queue names in entries.
        ("qux", Some("v1.a"), true),
        ("qux", Some("v2"), false),
        // A group name with wildcards: `v1.*` is the entry's own name, but
        // `v1.>` stands for more than `v1.*` admits (nats-server refuses it).
        ("qux", Some("v1.*"), true),
        ("qux", Some("v1.>"), false),
        // deny `> *.prod`: any subject, groups matching *.prod.
        ("bar", Some("east.prod"), false),
        ("bar", Some("east.dev"), true),
        ("baz", Some("x.prod"), false),
    ];
    for (sid, &(subject, queue, allowed)) in cases.iter().enumerate() {
        let sid = sid + 1;
        match queue {
            None => c.send(format!("SUB {subject} {sid}\r\n")),
            Some(q) => c.send(format!("SUB {subject} {q} {sid}\r\n")),
        }
        match (allowed, queue) {
            (true, _) => c.expect(b"+OK\r\n"),
            (false, None) => c.expect(sub_denied(subject)),
            (false, Some(q)) => c.expect(queue_denied(subject, q)),
        }
    }
    c.ping();
}

// ----- default permissions and variables --------------------------------------

#[test]
fn default_permissions_apply_to_users_without_their_own() {
    let server = TestServer::with_config(
        "authorization {\n  \
         default_permissions: { publish: \"pub.>\", subscribe: \"sub.>\" }\n  \
         users = [\n    \
         {user: plain, password: p}\n    \
         {user: own, password: p, permissions: {publish: \"own.>\"}}\n  \
         ]\n}\n",
        &[],
    );
    let mut plain = login_verbose(&server, "plain");
    check_subscribes(
        &mut plain,
        &[("sub.x", true), ("other", false), ("pub.x", false)],
    );
    plain.send(format!(
        "{}{}PING\r\n",
        publish("pub.a", "1"),
        publish("own.a", "2")
    ));
    plain.expect(format!("+OK\r\n{}PONG\r\n", pub_denied("own.a")));

    // `own` has publish rights only: no default for subscribe either.
    let mut own = login(&server, "own");
    check_publishes(
        &mut own,
        &[("own.a", true), ("pub.a", false), ("sub.a", false)],
    );
}

#[test]
fn permissions_from_variables() {
    let server = TestServer::with_config(
        "READONLY = { publish = { deny = \">\" } }\n\
         authorization {\n  \
         ADMIN = { publish = \">\", subscribe = \">\" }\n  \
         LIMITED = { publish = [\"lim.*\"], subscribe = { deny = \"secret.>\" } }\n  \
         users = [\n    \
         {user: root, password: p, permissions: $ADMIN}\n    \
         {user: u, password: p, permissions: $LIMITED}\n    \
         {user: ro, password: p, permissions: $READONLY}\n  \
         ]\n}\n",
        &[],
    );
    let mut root = login(&server, "root");
    check_publishes(
        &mut root,
        &[("lim.a", true), ("secret.a", true), ("x", true)],
    );
    let mut u = login(&server, "u");
    check_publishes(&mut u, &[("lim.a", true), ("lim.a.b", false), ("x", false)]);
    let mut u = login_verbose(&server, "u");
    check_subscribes(&mut u, &[("secret.a", false), ("public", true)]);
    let mut ro = login(&server, "ro");
    check_publishes(&mut ro, &[("lim.a", false), ("x", false)]);
}

// ----- reserved reply subjects ------------------------------------------------

#[test]
fn reserved_reply_prefixes_are_refused_for_authorized_users() {
    let server = TestServer::with_config(
        "authorization { users = [\n  \
         {user: full, password: p, permissions: {publish: \">\", subscribe: \">\"}}\n  \
         {user: admin, password: p}\n  \
         {user: u, password: p, permissions: {publish: \"foo.>\"}}\n] }\n",
        &[],
    );
    for user in ["full", "admin"] {
        let mut c = login(&server, user);
        c.send(format!(
            "SUB > 1\r\n{}{}{}{}{}PING\r\n",
            request("foo", "_R_.x", "1"),
            request("foo", "_GR_.x", "2"),
            request("foo", "$JS.ACK.x.y", "3"),
            // Only the dotted prefixes are reserved.
            request("foo", "_R_", "4"),
            request("foo", "my_R_.x", "5"),
        ));
        c.expect(format!(
            "{}{}{}{}{}PONG\r\n",
            reply_denied("_R_.x"),
            reply_denied("_GR_.x"),
            reply_denied("$JS.ACK.x.y"),
            msg_reply("foo", 1, "_R_", "4"),
            msg_reply("foo", 1, "my_R_.x", "5"),
        ));
    }
    // The subject is checked first: one error, about the subject.
    let mut c = login(&server, "u");
    c.send(format!(
        "{}{}PING\r\n",
        request("bar", "_R_.x", "1"),
        request("foo.a", "_R_.x", "2")
    ));
    c.expect(format!(
        "{}{}PONG\r\n",
        pub_denied("bar"),
        reply_denied("_R_.x")
    ));
}

// ----- allow_responses --------------------------------------------------------

/// A server with the responder `svc` (subscribe `req.>` plus `extra`) and `admin`.
fn responder_server(extra: &str) -> TestServer {
    server_with_svc(&format!("subscribe: \"req.>\", {extra}"))
}

fn server_with_svc(permissions: &str) -> TestServer {
    TestServer::with_config(
        &format!(
            "authorization {{ users = [\n  \
             {{user: svc, password: p, permissions: {{ {permissions} }}}}\n  \
             {{user: admin, password: p}}\n] }}\n"
        ),
        &[],
    )
}

/// The responder (subscribed to `req.>` as sid 1) and the requester (subscribed
/// to `_INBOX.>` as sid 1 and `other.>` as sid 2).
fn responder_and_requester(server: &TestServer) -> (RawClient, RawClient) {
    let mut svc = login(server, "svc");
    svc.send(b"SUB req.> 1\r\n");
    svc.ping();
    let mut admin = login(server, "admin");
    admin.send(b"SUB _INBOX.> 1\r\nSUB other.> 2\r\n");
    admin.ping();
    (svc, admin)
}

/// The requester sends a request with `reply`; the responder receives it.
fn deliver_request(svc: &mut RawClient, admin: &mut RawClient, subject: &str, reply: &str) {
    admin.send(format!("{}PING\r\n", request(subject, reply, "q")));
    admin.expect_pong();
    svc.expect(msg_reply(subject, 1, reply, "q"));
}

#[test]
fn allow_responses_true_allows_one_reply() {
    let server = responder_server("allow_responses: true");
    let (mut svc, mut admin) = responder_and_requester(&server);
    deliver_request(&mut svc, &mut admin, "req.one", "_INBOX.a");
    svc.send(format!(
        "{}{}{}{}{}PING\r\n",
        publish("_INBOX.a", "r1"),
        publish("_INBOX.a", "r2"),
        publish("_INBOX.b", "unrelated"),
        publish("other.x", "anything"),
        publish("req.one", "anything"),
    ));
    // No publish list: everything but the one reply is denied.
    svc.expect(format!(
        "{}{}{}{}PONG\r\n",
        pub_denied("_INBOX.a"),
        pub_denied("_INBOX.b"),
        pub_denied("other.x"),
        pub_denied("req.one"),
    ));
    admin.send(b"PING\r\n");
    admin.expect(format!("{}PONG\r\n", msg("_INBOX.a", 1, "r1")));
}

#[test]
fn allow_responses_adds_to_an_explicit_publish_list() {
    let server = responder_server("publish: \"other.>\", allow_responses: true");
    let (mut svc, mut admin) = responder_and_requester(&server);
    deliver_request(&mut svc, &mut admin, "req.one", "_INBOX.a");
    svc.send(format!(
        "{}{}{}{}PING\r\n",
        publish("other.x", "1"),
        publish("_INBOX.a", "r1"),
        publish("_INBOX.a", "r2"),
        publish("other.y", "2"),
    ));
    svc.expect(format!("{}PONG\r\n", pub_denied("_INBOX.a")));
    admin.send(b"PING\r\n");
    admin.expect(format!(
        "{}{}{}PONG\r\n",
        msg("other.x", 2, "1"),
        msg("_INBOX.a", 1, "r1"),
        msg("other.y", 2, "2")
    ));
}

#[test]
fn allow_responses_max_and_expiry() {
    let server = responder_server(r#"allow_responses: {max: 2, expires: "500ms"}"#);
    let (mut svc, mut admin) = responder_and_requester(&server);

    // Two replies allowed, the third refused.
    deliver_request(&mut svc, &mut admin, "req.one", "_INBOX.a");
    svc.send(format!(
        "{}{}{}PING\r\n",
        publish("_INBOX.a", "r1"),
        publish("_INBOX.a", "r2"),
        publish("_INBOX.a", "r3"),
    ));
    svc.expect(format!("{}PONG\r\n", pub_denied("_INBOX.a")));
    admin.send(b"PING\r\n");
    admin.expect(format!(
        "{}{}PONG\r\n",
        msg("_INBOX.a", 1, "r1"),
        msg("_INBOX.a", 1, "r2")
    ));

    // A reply 600 ms after the request is refused.
    deliver_request(&mut svc, &mut admin, "req.two", "_INBOX.a");
    thread::sleep(Duration::from_millis(600));
    svc.send(format!("{}PING\r\n", publish("_INBOX.a", "late")));
    svc.expect(format!("{}PONG\r\n", pub_denied("_INBOX.a")));

    // A new request re-arms the reply subject.
    deliver_request(&mut svc, &mut admin, "req.three", "_INBOX.a");
    svc.send(format!("{}PING\r\n", publish("_INBOX.a", "again")));
    svc.expect(b"PONG\r\n");
    admin.send(b"PING\r\n");
    admin.expect(format!("{}PONG\r\n", msg("_INBOX.a", 1, "again")));
}

#[test]
fn reply_is_allowed_even_when_it_matches_a_publish_deny() {
    // nats-server consults the reply tracking after the deny check (reference
    // §3.6, Q3); tenet matches it.
    let server = responder_server(
        r#"publish: {allow: ["other.>"], deny: ["other.secret", "_INBOX.>"]}, allow_responses: true"#,
    );
    let (mut svc, mut admin) = responder_and_requester(&server);
    deliver_request(&mut svc, &mut admin, "req.one", "_INBOX.a");
    deliver_request(&mut svc, &mut admin, "req.two", "other.secret");
    svc.send(format!(
        "{}{}{}{}{}PING\r\n",
        publish("_INBOX.a", "r1"),
        publish("other.secret", "r2"),
        publish("_INBOX.a", "again"),
        publish("other.secret", "again"),
        publish("_INBOX.b", "unrelated"),
    ));
    svc.expect(format!(
        "{}{}{}PONG\r\n",
        pub_denied("_INBOX.a"),
        pub_denied("other.secret"),
        pub_denied("_INBOX.b"),
    ));
    admin.send(b"PING\r\n");
    admin.expect(format!(
        "{}{}PONG\r\n",
        msg("_INBOX.a", 1, "r1"),
        msg("other.secret", 2, "r2")
    ));
}

#[test]
fn reply_deny_list_alone_with_allow_responses() {
    // A deny list without an allow list: allow_responses still installs the
    // implicit "deny all but replies".
    let server = responder_server(r#"publish: {deny: "other.>"}, allow_responses: true"#);
    let (mut svc, mut admin) = responder_and_requester(&server);
    deliver_request(&mut svc, &mut admin, "req.one", "other.r");
    svc.send(format!(
        "{}{}{}PING\r\n",
        publish("other.r", "r1"),
        publish("free", "x"),
        publish("other.r", "r2"),
    ));
    svc.expect(format!(
        "{}{}PONG\r\n",
        pub_denied("free"),
        pub_denied("other.r")
    ));
    admin.send(b"PING\r\n");
    admin.expect(format!("{}PONG\r\n", msg("other.r", 2, "r1")));
}
