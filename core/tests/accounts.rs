//! Accounts in the engine, with a fake clock: isolation, stream and service
//! imports, response types and their expiry, limits, account-level defaults.

mod support;

use std::time::Duration;

use support::{login, server_from_config, Sim};
use tenet_core::CloseReason;

/// Two tenants, a service provider and a stream publisher, wired together.
const TENANTS: &str = r#"
accounts {
  A: {
    users: [{user: a, password: p}, {user: a2, password: p}]
    exports: [
      {stream: "pub.>"}
      {service: "svc.>"}
      {service: "feed.>", response: stream, threshold: "1s"}
      {service: "chunks", response: chunked}
      {stream: "priv.>", accounts: [C]}
    ]
  }
  B: {
    users: [{user: b, password: p}]
    imports: [
      {stream: {account: A, subject: "pub.>"}, prefix: "froma"}
      {stream: {account: A, subject: "pub.x"}, prefix: "froma"}
      {service: {account: A, subject: "svc.>"}, to: "asvc.>"}
      {service: {account: A, subject: "feed.>"}}
      {service: {account: A, subject: "chunks"}}
    ]
    exports: [{stream: "froma.>"}, {stream: "own.>"}]
  }
  C: {
    users: [{user: c, password: p}]
    imports: [
      {stream: {account: A, subject: "pub.>"}, to: "in.>"}
      {stream: {account: A, subject: "priv.>"}}
      {stream: {account: B, subject: "froma.>"}}
    ]
  }
}
authorization { users: [{user: g, password: p}] }
"#;

fn tenants() -> Sim {
    Sim::with_server(server_from_config(TENANTS))
}

#[test]
fn the_same_subject_in_two_accounts_is_two_subjects() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    let g = sim.connect(&login("g"));
    for (id, sub) in [(a, "SUB foo 1\r\n"), (b, "SUB > 1\r\n"), (g, "SUB > 1\r\n")] {
        sim.send(id, sub.as_bytes());
    }
    sim.send(a, b"PUB foo _INBOX.a 2\r\nhi\r\n");
    assert_eq!(sim.take_str(a), "MSG foo 1 _INBOX.a 2\r\nhi\r\n");
    assert_eq!(sim.take_str(b), "");
    assert_eq!(sim.take_str(g), "");
    sim.send(g, b"PUB foo 2\r\nhi\r\n");
    assert_eq!(sim.take_str(a), "");
    assert_eq!(sim.take_str(g), "MSG foo 1 2\r\nhi\r\n");
    // Counters are kept per account.
    let stats = |name| sim.server.account_stats(name).expect(name);
    let (a_stats, b_stats, g_stats) = (stats("A"), stats("B"), stats("$G"));
    assert_eq!(
        (
            a_stats.connections,
            a_stats.subscriptions,
            a_stats.in_msgs,
            a_stats.out_msgs
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (b_stats.connections, b_stats.in_msgs, b_stats.out_msgs),
        (1, 0, 0)
    );
    assert_eq!(
        (g_stats.in_msgs, g_stats.out_msgs, g_stats.out_bytes),
        (1, 1, 2)
    );
    assert_eq!(stats("$SYS"), Default::default());
    assert!(sim.server.account_stats("nope").is_none());
}

#[test]
fn stream_imports_deliver_under_the_importers_subject() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    let c = sim.connect(&login("c"));
    sim.send(b, b"SUB froma.> 1\r\nSUB pub.> 2\r\n");
    sim.send(c, b"SUB in.> 1\r\nSUB froma.> 2\r\n");
    // Two of B's imports cover pub.x: B gets it twice, as from nats-server.
    sim.send(a, b"PUB pub.x rep 2\r\nhi\r\n");
    assert_eq!(
        sim.take_str(b),
        "MSG froma.pub.x 1 rep 2\r\nhi\r\nMSG froma.pub.x 1 rep 2\r\nhi\r\n"
    );
    // C maps with `to`; what B imported is not passed on to C.
    assert_eq!(sim.take_str(c), "MSG in.x 1 rep 2\r\nhi\r\n");
    sim.send(a, b"PUB pub.y 2\r\nhi\r\n");
    assert_eq!(sim.take_str(b), "MSG froma.pub.y 1 2\r\nhi\r\n");
    sim.take(c);
    // Nothing flows back from importer to exporter.
    sim.send(a, b"SUB pub.> 1\r\n");
    sim.send(b, b"PUB pub.y 2\r\nhi\r\n");
    assert_eq!(sim.take_str(a), "");
    assert_eq!(sim.take_str(b), "MSG pub.y 2 2\r\nhi\r\n");
}

#[test]
fn a_restricted_export_reaches_only_the_listed_account() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let c = sim.connect(&login("c"));
    sim.send(c, b"SUB priv.> 1\r\n");
    sim.send(a, b"PUB priv.k 1\r\nx\r\n");
    assert_eq!(sim.take_str(c), "MSG priv.k 1 1\r\nx\r\n");
}

/// The `_R_` reply subject of the last request `responder` received.
fn reply_of(delivery: &str) -> String {
    let line = delivery.lines().next().expect("a delivery");
    let reply = line.split(' ').nth(3).expect("a reply subject").to_string();
    assert!(reply.starts_with("_R_.") && reply.len() == 17, "{reply}");
    reply
}

#[test]
fn service_requests_get_a_private_reply_that_routes_one_answer_back() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB svc.> 1\r\n");
    sim.send(b, b"SUB _INBOX.> 1\r\n");
    sim.send(b, b"PUB asvc.q _INBOX.1 3\r\nreq\r\n");
    let got = sim.take_str(a);
    let reply = reply_of(&got);
    assert_eq!(got, format!("MSG svc.q 1 {reply} 3\r\nreq\r\n"));
    assert_eq!(sim.server.pending_responses(), 1);
    sim.send(
        a,
        format!("PUB {reply} 2\r\nr1\r\nPUB {reply} 2\r\nr2\r\n").as_bytes(),
    );
    assert_eq!(sim.take_str(b), "MSG _INBOX.1 1 2\r\nr1\r\n");
    assert_eq!(sim.server.pending_responses(), 0);
    // Each request gets its own reply subject.
    sim.send(b, b"PUB asvc.q _INBOX.2 3\r\nreq\r\n");
    assert_ne!(reply_of(&sim.take_str(a)), reply);
}

#[test]
fn streamed_answers_flow_until_an_empty_message_or_the_threshold() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB feed.> 1\r\nSUB chunks 2\r\n");
    sim.send(b, b"SUB _INBOX.> 1\r\n");
    sim.send(b, b"PUB feed.x _INBOX.1 0\r\n\r\n");
    let reply = reply_of(&sim.take_str(a));
    sim.send(
        a,
        format!("PUB {reply} 2\r\nr1\r\nPUB {reply} 2\r\nr2\r\n").as_bytes(),
    );
    assert_eq!(
        sim.take_str(b),
        "MSG _INBOX.1 1 2\r\nr1\r\nMSG _INBOX.1 1 2\r\nr2\r\n"
    );
    // Each answer re-arms the 1 s threshold; silence past it ends the stream.
    sim.advance(Duration::from_millis(900));
    sim.send(a, format!("PUB {reply} 2\r\nr3\r\n").as_bytes());
    sim.advance(Duration::from_millis(900));
    assert_eq!(sim.server.pending_responses(), 1);
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.server.pending_responses(), 0);
    sim.send(a, format!("PUB {reply} 2\r\nr4\r\n").as_bytes());
    assert_eq!(sim.take_str(b), "MSG _INBOX.1 1 2\r\nr3\r\n");

    // Chunked: the empty message is delivered and ends it.
    sim.send(b, b"PUB chunks _INBOX.2 0\r\n\r\n");
    let reply = reply_of(&sim.take_str(a));
    sim.send(
        a,
        format!("PUB {reply} 1\r\n1\r\nPUB {reply} 0\r\n\r\nPUB {reply} 1\r\n2\r\n").as_bytes(),
    );
    assert_eq!(
        sim.take_str(b),
        "MSG _INBOX.2 1 1\r\n1\r\nMSG _INBOX.2 1 0\r\n\r\n"
    );
    assert_eq!(sim.server.pending_responses(), 0);
}

#[test]
fn unanswered_requests_are_forgotten_after_the_default_two_minutes() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB svc.> 1\r\n");
    for i in 0..20 {
        sim.send(b, format!("PUB asvc.q _INBOX.{i} 0\r\n\r\n").as_bytes());
    }
    assert_eq!(sim.server.pending_responses(), 20);
    sim.advance(Duration::from_secs(119));
    assert_eq!(sim.server.pending_responses(), 20);
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.server.pending_responses(), 0);
}

#[test]
fn a_service_import_counts_as_a_responder() {
    let mut sim = tenants();
    let b = sim.connect(r#"{"verbose":false,"pedantic":false,"protocol":1,"user":"b","pass":"p","headers":true,"no_responders":true}"#);
    sim.send(b, b"SUB _INBOX.> 1\r\n");
    // Nobody serves svc.q in A, but the import took the request: no 503.
    sim.send(b, b"PUB asvc.q _INBOX.1 0\r\n\r\nPING\r\n");
    let got = sim.take_str(b);
    assert!(
        got.starts_with("PONG\r\nINFO {") && !got.contains("HMSG"),
        "{got}"
    );
    // Without an import there is nobody: 503.
    sim.send(b, b"PUB nothing _INBOX.2 0\r\n\r\n");
    assert_eq!(
        sim.take_str(b),
        "HMSG _INBOX.2 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
}

#[test]
fn allow_responses_covers_answers_across_accounts() {
    let mut sim = Sim::with_server(server_from_config(
        r#"accounts {
             A: { users: [{user: svc, password: p, permissions: {subscribe: "svc.>", allow_responses: true}}]
                  exports: [{service: "svc.>"}] }
             B: { users: [{user: b, password: p}], imports: [{service: {account: A, subject: "svc.>"}}] }
           }"#,
    ));
    let svc = sim.connect(&login("svc"));
    let b = sim.connect(&login("b"));
    sim.send(svc, b"SUB svc.> 1\r\n");
    sim.send(b, b"SUB _INBOX.> 1\r\nPUB svc.q _INBOX.1 0\r\n\r\n");
    let reply = reply_of(&sim.take_str(svc));
    sim.send(
        svc,
        format!("PUB {reply} 2\r\nok\r\nPUB {reply} 2\r\nno\r\n").as_bytes(),
    );
    assert_eq!(
        sim.take_str(svc),
        format!("-ERR 'Permissions Violation for Publish to \"{reply}\"'\r\n")
    );
    assert_eq!(sim.take_str(b), "MSG _INBOX.1 1 2\r\nok\r\n");
}

#[test]
fn account_connection_limit_counts_live_connections() {
    let mut sim = Sim::with_server(server_from_config(
        "accounts { A: { users: [{user: a, password: p}], limits: {max_connections: 2} }
         B: { users: [{user: b, password: p}] } }",
    ));
    let a1 = sim.connect(&login("a"));
    let _a2 = sim.connect(&login("a"));
    let a3 = sim.connect(&login("a"));
    assert_eq!(
        sim.take_str(a3),
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        sim.closed.get(&a3),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
    // Other accounts are not affected; a closed connection frees its place.
    let b = sim.connect(&login("b"));
    sim.send(b, b"PING\r\n");
    assert!(sim.take_str(b).starts_with("PONG\r\n"));
    sim.disconnect(a1);
    let a4 = sim.connect(&login("a"));
    sim.send(a4, b"PING\r\n");
    assert!(sim.take_str(a4).starts_with("PONG\r\n"));
}

#[test]
fn account_subscription_and_payload_limits_apply_per_connection() {
    let mut sim = Sim::with_server(server_from_config(
        "max_subs: 10\naccounts { A: { users: [{user: a, password: p}], limits: {max_subs: 2, max_payload: 100} } }",
    ));
    let a = sim.connect(&login("a"));
    sim.send(a, b"SUB x 1\r\nSUB y 2\r\nSUB z 3\r\nPING\r\n");
    let got = sim.take_str(a);
    assert!(
        got.starts_with("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\nINFO {"),
        "{got}"
    );
    assert!(got.contains("\"max_payload\":100,"), "{got}");
    assert!(got.contains("\"remote_account\":\"A\""), "{got}");
    let other = sim.connect(&login("a"));
    sim.send(other, b"SUB x 1\r\nSUB y 2\r\nPING\r\n");
    assert!(sim.take_str(other).starts_with("PONG\r\n"));
    sim.send(
        a,
        format!("PUB x 101\r\n{}\r\n", "x".repeat(101)).as_bytes(),
    );
    assert_eq!(sim.take_str(a), "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(sim.closed.get(&a), Some(&CloseReason::MaxPayloadExceeded));
}

#[test]
fn account_default_permissions_reach_only_that_accounts_users() {
    let mut sim = Sim::with_server(server_from_config(
        r#"authorization { default_permissions: {publish: "auth.>"}, users: [{user: g, password: p}] }
           accounts {
             A: { users: [{user: a, password: p}, {user: own, password: p, permissions: {publish: "own"}}]
                  default_permissions: {publish: "a.>"} }
             B: { users: [{user: b, password: p}] }
           }"#,
    ));
    let denied =
        |subject: &str| format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n");
    for (user, allowed, refused) in [
        ("g", "auth.x", "a.x"),
        ("a", "a.x", "auth.x"),
        ("own", "own", "a.x"),
        ("b", "anything", "_GR_.x"),
    ] {
        let c = sim.connect(&login(user));
        sim.send(
            c,
            format!("PUB {allowed} 0\r\n\r\nPUB {refused} 0\r\n\r\n").as_bytes(),
        );
        assert_eq!(sim.take_str(c), denied(refused), "{user}");
    }
}

#[test]
fn logging_in_again_as_another_tenant_drops_the_old_subscriptions() {
    let mut sim = tenants();
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB foo 1\r\n");
    sim.send(a, format!("CONNECT {}\r\n", login("b")).as_bytes());
    sim.send(b, b"PUB foo 0\r\n\r\n");
    sim.send(a, b"PING\r\n");
    let got = sim.take_str(a);
    assert!(got.starts_with("PONG\r\nINFO {"), "{got}");
    assert!(got.contains("\"remote_account\":\"B\""), "{got}");
    assert_eq!(sim.server.num_subscriptions(), 0);
}

#[test]
fn chained_service_imports_route_the_request_and_the_answer_both_ways() {
    let mut sim = Sim::with_server(server_from_config(
        r#"accounts {
             C: { users: [{user: c, password: p}], exports: [{service: "svc.>", response: stream}] }
             A: { users: [{user: a, password: p}], exports: [{service: "svc.>"}]
                  imports: [{service: {account: C, subject: "svc.>"}}] }
             B: { users: [{user: b, password: p}], imports: [{service: {account: A, subject: "svc.>"}, to: "ask.>"}] }
           }"#,
    ));
    let c = sim.connect(&login("c"));
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(c, b"SUB svc.> 1\r\n");
    sim.send(a, b"SUB svc.> 1\r\n");
    sim.send(b, b"SUB _INBOX.b 1\r\nPUB ask.q _INBOX.b 3\r\nreq\r\n");
    // A's own subscriber sees the request with A's reply, C with its own.
    let in_a = reply_of(&sim.take_str(a));
    let in_c = reply_of(&sim.take_str(c));
    assert_ne!(in_a, in_c);
    assert_eq!(sim.server.pending_responses(), 2);
    // C answers: the answer goes back through A to B (once: A's export is a
    // singleton, so the chain ends there even though C's is a stream).
    sim.send(
        c,
        format!("PUB {in_c} 3\r\nans\r\nPUB {in_c} 4\r\nmore\r\n").as_bytes(),
    );
    assert_eq!(sim.take_str(b), "MSG _INBOX.b 1 3\r\nans\r\n");
    assert_eq!(sim.server.pending_responses(), 1);
}

#[test]
fn import_cycles_are_refused_at_load() {
    let config = r#"accounts {
        A: { exports: [{stream: "x.>"}], imports: [{stream: {account: B, subject: "x.>"}}] }
        B: { exports: [{stream: "x.>"}], imports: [{stream: {account: A, subject: "x.>"}}] }
    }"#;
    let resolver = tenet_core::config::MapResolver(Default::default());
    let parsed = tenet_core::config::parse("t.conf", config, &resolver, &|_| None).unwrap();
    let (config, errors) = tenet_core::config::options::read_config(&parsed);
    assert!(errors.is_empty());
    let err = tenet_core::Accounts::from_config(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.conf:3:52: Error adding stream import \"x.>\": import forms a cycle"
    );
}

#[test]
fn logging_in_again_as_another_user_drops_what_the_new_user_may_not_read() {
    let mut sim = Sim::with_server(server_from_config(
        r#"accounts {
             A: { users: [
                    {user: a, password: p}
                    {user: r, password: p, permissions: {subscribe: {allow: ">", deny: "a.hidden"}}}
                    {user: n, password: p, permissions: {subscribe: "public.>"}}
                  ] }
           }"#,
    ));
    let c = sim.connect(&login("a"));
    let p = sim.connect(&login("a"));
    sim.send(c, b"SUB > 1\r\nSUB a.hidden 2\r\nSUB public.x 3\r\n");
    sim.send(c, format!("CONNECT {}\r\n", login("r")).as_bytes());
    assert_eq!(
        sim.take_str(c),
        "-ERR 'Permissions Violation for Subscription to \"a.hidden\" (sid \"2\")'\r\n"
    );
    // `>` stays, filtered: it no longer delivers a.hidden.
    sim.send(p, b"PUB a.hidden 1\r\nx\r\nPUB public.x 1\r\ny\r\n");
    assert_eq!(
        sim.take_str(c),
        "MSG public.x 1 1\r\ny\r\nMSG public.x 3 1\r\ny\r\n"
    );
    sim.send(c, format!("CONNECT {}\r\n", login("n")).as_bytes());
    assert_eq!(
        sim.take_str(c),
        "-ERR 'Permissions Violation for Subscription to \">\" (sid \"1\")'\r\n"
    );
    assert_eq!(sim.server.num_subscriptions(), 1);
}

#[test]
fn a_second_connect_refused_for_its_options_changes_no_subscription() {
    // Found by the `server` fuzz target: the permissions of a second login
    // were applied (and subscriptions re-checked) before the CONNECT's own
    // options were refused.
    let mut sim = Sim::with_server(server_from_config(
        r#"accounts { B: { users: [
             {user: b, password: p}
             {user: b_deny, password: p, permissions: {subscribe: {deny: "a.pub.deny"}}}
           ] } }"#,
    ));
    let c = sim.connect(&login("b"));
    sim.send(c, b"SUB a.pub.deny 1\r\n");
    let refused =
        r#"{"verbose":false,"pedantic":false,"user":"b_deny","pass":"p","no_responders":true}"#;
    sim.send(c, format!("CONNECT {refused}\r\n").as_bytes());
    assert_eq!(
        sim.take_str(c),
        "-ERR 'no responders requires headers support'\r\n"
    );
    assert_eq!(
        sim.closed.get(&c),
        Some(&CloseReason::NoRespondersRequiresHeaders)
    );
}

#[test]
fn permission_violations_are_logged_with_user_account_and_subject_without_flooding() {
    let mut sim = Sim::with_server(server_from_config(
        r#"accounts { A: { users: [{user: a, password: p, permissions: {publish: "ok", subscribe: "ok"}}] } }"#,
    ));
    let a = sim.connect(&login("a"));
    sim.send(a, b"SUB secret 1\r\n");
    for _ in 0..25 {
        sim.send(a, b"PUB secret 0\r\n\r\n");
    }
    let violations = |sim: &Sim| {
        sim.logs
            .iter()
            .filter(|l| l.contains("Violation - "))
            .cloned()
            .collect::<Vec<_>>()
    };
    let logged = violations(&sim);
    assert_eq!(logged.len(), 10, "{logged:?}");
    assert!(logged[0].ends_with(
        "Subscription Violation - User \"a\", Account \"A\", Subject \"secret\", SID 1"
    ));
    assert!(
        logged[1].ends_with("Publish Violation - User \"a\", Account \"A\", Subject \"secret\"")
    );
    sim.advance(Duration::from_secs(1));
    sim.send(a, b"PUB secret 0\r\n\r\n");
    let logged = violations(&sim);
    assert_eq!(logged.len(), 11);
    assert!(logged[10].ends_with("Subject \"secret\" (16 more violations not logged)"));
}
