//! The engine's log lines that nats-server 2.9.10 also writes, compared
//! whole: the client's prefix (with what its CONNECT named), permission
//! violations, authentication errors, and what a reload changed and removed.

mod support;

use support::{config, login, server_from_config, Sim};
use tenet_core::{Options, Server};

/// A CONNECT for `user` (password `p`) naming its client as nats.go does.
fn named_login(user: &str) -> String {
    format!(
        r#"{{"verbose":false,"pedantic":false,"protocol":1,"user":"{user}","pass":"p","name":"myapp","lang":"go","version":"1.2.3"}}"#
    )
}

fn lines_with(sim: &Sim, part: &str) -> Vec<String> {
    sim.logs
        .iter()
        .filter(|l| l.contains(part))
        .cloned()
        .collect()
}

#[test]
fn violation_lines_name_the_client_sid_and_queue_as_nats_server_does() {
    let opts = Options {
        max_sub_tokens: 2,
        ..Options::default()
    };
    let (_, auth) = config(
        r#"accounts { A: { users: [{user: a, password: p, permissions: {publish: {deny: "secret"}, subscribe: "ok.>"}}] } }"#,
    );
    let mut sim = Sim::with_server(Server::with_auth(opts, auth, 1));
    let a = sim.connect(&named_login("a"));
    sim.send(
        a,
        b"SUB secret 1\r\nSUB secret q 2\r\nSUB ok.x _sys_ 3\r\nSUB ok.x.y 4\r\n\
          PUB secret 0\r\n\r\nPUB _GR_.x 0\r\n\r\nPUB ok.x _R_.abc 0\r\n\r\n",
    );
    let prefix = r#"127.0.0.1:1 - cid:1 - "v1.2.3:go:myapp" - "#;
    let who = r#"User "a", Account "A""#;
    let expected = [
        format!(r#"{prefix}Subscription Violation - {who}, Subject "secret", SID 1"#),
        format!(r#"{prefix}Subscription Violation - {who}, Subject "secret", Queue: "q", SID 2"#),
        format!(r#"{prefix}Subscription Violation - {who}, Subject "ok.x", Queue: "_sys_", SID 3"#),
        format!(
            r#"{prefix}Subscription Violation Too Many Tokens - {who}, Subject "ok.x.y", SID 4"#
        ),
        format!(r#"{prefix}Publish Violation - {who}, Subject "secret""#),
        format!(r#"{prefix}Publish Violation - {who}, Subject "_GR_.x""#),
        format!(r#"{prefix}Publish Violation - {who}, Reply "_R_.abc""#),
    ];
    assert_eq!(lines_with(&sim, "Violation"), expected);
}

#[test]
fn the_client_prefix_names_what_the_connect_gave() {
    let (opts, auth) = config("authorization { users: [{user: a, password: p}] }");
    let mut sim = Sim::with_server(Server::with_auth(opts, auth, 1));
    // nats-server joins `v<version>`, `lang` and `name`, those given, with `:`.
    let only_name = r#"{"verbose":false,"user":"a","pass":"bad","name":"svc"}"#;
    let c = sim.connect(only_name);
    let lang_and_name = r#"{"verbose":false,"user":"a","pass":"bad","lang":"rust","name":"x"}"#;
    let d = sim.connect(lang_and_name);
    let nothing = r#"{"verbose":false,"user":"a","pass":"bad"}"#;
    let e = sim.connect(nothing);
    assert!(sim.closed.contains_key(&c) && sim.closed.contains_key(&d));
    assert!(sim.closed.contains_key(&e));
    assert_eq!(
        lines_with(&sim, "authentication error"),
        [
            r#"127.0.0.1:1 - cid:1 - "svc" - authentication error - User "a""#,
            r#"127.0.0.1:1 - cid:2 - "rust:x" - authentication error - User "a""#,
            r#"127.0.0.1:1 - cid:3 - authentication error - User "a""#,
        ]
    );
}

#[test]
fn authentication_errors_name_what_nats_server_names() {
    // A single user: nats-server names nobody.
    let mut sim = Sim::with_server(server_from_config("authorization { user: a, password: p }"));
    sim.connect(&login("x"));
    assert_eq!(
        lines_with(&sim, "authentication error"),
        ["127.0.0.1:1 - cid:1 - authentication error"]
    );
    // With nkey users, the nkey the client presented (even when it sent a user).
    let mut sim = Sim::with_server(server_from_config(
        "authorization { users: [{nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4}, {user: a, password: p}] }",
    ));
    sim.connect(&login("x"));
    assert_eq!(
        lines_with(&sim, "authentication error"),
        [r#"127.0.0.1:1 - cid:1 - authentication error - Nkey """#]
    );
}

#[test]
fn a_client_that_leaves_with_violations_not_logged_logs_their_count() {
    let mut sim = Sim::with_server(server_from_config(
        r#"authorization { users: [{user: a, password: p, permissions: {publish: "ok"}}] }"#,
    ));
    let a = sim.connect(&login("a"));
    for _ in 0..25 {
        sim.send(a, b"PUB secret 0\r\n\r\n");
    }
    assert_eq!(lines_with(&sim, "Violation").len(), 10);
    sim.disconnect(a);
    assert_eq!(
        lines_with(&sim, "more violations"),
        ["127.0.0.1:1 - cid:1 - 15 more violations not logged before the connection closed"]
    );
    // Nothing left out, nothing said.
    let b = sim.connect(&login("a"));
    sim.send(b, b"PUB secret 0\r\n\r\n");
    sim.disconnect(b);
    assert_eq!(lines_with(&sim, "more violations").len(), 1);
}

const USERS_BEFORE: &str = r#"
authorization {
  users: [
    {user: pam, password: p, permissions: {subscribe: ["_INBOX.>", "foo", "bar"]}}
    {user: rotated, password: p}
  ]
}
"#;

const USERS_AFTER: &str = r#"
authorization {
  users: [
    {user: pam, password: p, permissions: {subscribe: "foo"}}
    {user: rotated, password: new}
  ]
}
"#;

#[test]
fn a_reload_logs_each_removed_subscription_and_each_failed_login() {
    let mut sim = Sim::with_server(server_from_config(USERS_BEFORE));
    let pam = sim.connect(&named_login("pam"));
    sim.send(pam, b"SUB _INBOX.> 1\r\nSUB bar q1 2\r\nSUB foo 3\r\n");
    let rotated = sim.connect(&login("rotated"));
    sim.logs.clear();
    let (opts, auth) = config(USERS_AFTER);
    let now = sim.now;
    sim.server.reload(opts, auth, now).expect("reload");
    sim.pump();
    assert!(sim.closed.contains_key(&rotated));
    let mut logs: Vec<String> = sim
        .logs
        .iter()
        .filter(|l| !l.contains("Client connection"))
        .cloned()
        .collect();
    // The subscriptions go in the client's map order: compare them as a set.
    logs[3..5].sort();
    assert_eq!(
        logs,
        [
            "Reloaded: authorization users",
            "Reloaded: accounts",
            r#"127.0.0.1:1 - cid:2 - authentication error - User "rotated""#,
            r#"Removed sub "_INBOX.>" (sid "1") for User "pam" - not authorized"#,
            r#"Removed sub "bar" (sid "2") for User "pam" - not authorized"#,
            "Reloaded server configuration",
        ]
    );
}

/// Reloads `text` and returns the `Reloaded...` and `Closed...` lines it logged.
fn reload_lines(sim: &mut Sim, text: &str) -> Vec<String> {
    sim.logs.clear();
    let (opts, auth) = config(text);
    let now = sim.now;
    sim.server.reload(opts, auth, now).expect("reload");
    sim.pump();
    sim.logs
        .iter()
        .filter(|l| l.starts_with("Reloaded") || l.starts_with("Closed"))
        .cloned()
        .collect()
}

#[test]
fn a_reload_names_each_changed_option_in_nats_server_order() {
    let mut sim = Sim::with_server(server_from_config("port: 4222"));
    let a = sim.connect(&login("x"));
    let b = sim.connect(&login("y"));
    let changed = r#"
      port: 4222
      debug: true
      max_connections: 1
      ping_interval: "30s"
      ping_max: 3
      max_control_line: 2048
      max_payload: 65536
      write_deadline: "3s"
      max_traced_msg_len: 10
      connect_error_reports: 5
      reconnect_error_reports: 3
    "#;
    assert_eq!(
        reload_lines(&mut sim, changed),
        [
            "Reloaded: debug = true",
            "Closed 1 connections to fall within max_connections",
            "Reloaded: max_connections = 1",
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: ping_interval = 30s",
            "Reloaded: ping_max = 3",
            "Reloaded: max_control_line = 2048",
            "Reloaded: max_payload = 65536",
            "Reloaded: write_deadline = 3s",
            "Reloaded: max_traced_msg_len = 10",
            "Reloaded: connect_error_reports = 5",
            "Reloaded: reconnect_error_reports = 3",
            "Reloaded server configuration",
        ]
    );
    assert!(!sim.closed.contains_key(&a) && sim.closed.contains_key(&b));
    assert!(sim
        .logs
        .contains(&"127.0.0.1:1 - cid:2 - maximum connections exceeded".to_string()));
    // Back to the defaults, as nats-server prints them; a single user.
    assert_eq!(
        reload_lines(
            &mut sim,
            "port: 4222\nauthorization { user: a, password: p, timeout: 1.5 }"
        ),
        [
            "Reloaded: debug = false",
            "Reloaded: max_connections = 65536",
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: authorization username",
            "Reloaded: authorization password",
            "Reloaded: ping_interval = 2m0s",
            "Reloaded: ping_max = 2",
            "Reloaded: authorization timeout = 1.5",
            "Reloaded: max_control_line = 4096",
            "Reloaded: max_payload = 1048576",
            "Reloaded: write_deadline = 10s",
            "Reloaded: max_traced_msg_len = 0",
            "Reloaded: connect_error_reports = 3600",
            "Reloaded: reconnect_error_reports = 1",
            "Reloaded server configuration",
        ]
    );
    let nkeys = "authorization { users: [{nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4}] }";
    assert_eq!(
        reload_lines(&mut sim, nkeys),
        [
            "Reloaded: authorization nkey users",
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: authorization username",
            "Reloaded: authorization password",
            "Reloaded: authorization timeout = 2",
            "Reloaded server configuration",
        ]
    );
    // Nothing changed: the users and accounts lines all the same, as nats-server.
    assert_eq!(
        reload_lines(&mut sim, nkeys),
        [
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded server configuration",
        ]
    );
    assert_eq!(
        reload_lines(&mut sim, "authorization { token: xyz }"),
        [
            "Reloaded: authorization nkey users",
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: authorization token",
            "Reloaded server configuration",
        ]
    );
}

#[test]
fn a_refused_reload_prints_values_as_nats_server_does() {
    let mut sim = Sim::with_server(server_from_config("port: 4222"));
    let (opts, auth) = config("port: 4222\nserver_name: edge");
    let now = sim.now;
    let error = sim.server.reload(opts, auth, now).unwrap_err();
    assert_eq!(
        error,
        "config reload not supported for server_name: old=, new=edge"
    );
    sim.pump();
    assert!(!sim.logs.iter().any(|l| l.starts_with("Reloaded")));
}
