//! Configuration reload in the engine, with a fake clock: what changes live,
//! what is refused, and what happens to the clients.

mod support;

use support::{config, login, server_from_config, Sim};
use tenet_core::CloseReason;

const BEFORE: &str = r#"
authorization {
  users: [
    {user: joe, password: p}
    {user: pam, password: p}
    {user: svc, password: p, permissions: {subscribe: "services.>", allow_responses: true}}
    {user: gone, password: p}
    {user: rotated, password: p}
  ]
}
"#;

/// The private-inbox switch of the reload issue, plus a removed user and a
/// changed password.
const AFTER: &str = r#"
authorization {
  users: [
    {user: joe, password: p, permissions: {publish: "services.*", subscribe: "_INBOX_joe.>"}}
    {user: pam, password: p, permissions: {publish: "services.*", subscribe: "_INBOX_pam.>"}}
    {user: svc, password: p, permissions: {subscribe: "services.>", allow_responses: true}}
    {user: rotated, password: new}
  ]
}
"#;

#[test]
fn a_reload_applies_new_permissions_and_removes_what_they_forbid() {
    let mut sim = Sim::with_server(server_from_config(BEFORE));
    let joe = sim.connect(&login("joe"));
    let pam = sim.connect(&login("pam"));
    let svc = sim.connect(&login("svc"));
    let gone = sim.connect(&login("gone"));
    let rotated = sim.connect(&login("rotated"));
    sim.send(pam, b"SUB _INBOX.> 1\r\nSUB _INBOX_pam.> 2\r\n");
    sim.send(joe, b"SUB _INBOX_joe.> 1\r\n");
    sim.send(svc, b"SUB services.greet 1\r\n");
    let (opts, auth) = config(AFTER);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    assert_eq!(
        sim.take_str(pam),
        "-ERR 'Permissions Violation for Subscription to \"_INBOX.>\" (sid \"1\")'\r\n"
    );
    // A removed user is closed without an error; a changed password is an
    // Authorization Violation.
    assert_eq!(sim.take_str(gone), "");
    assert_eq!(sim.closed.get(&gone), Some(&CloseReason::ClientClosed));
    assert_eq!(sim.take_str(rotated), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(
        sim.closed.get(&rotated),
        Some(&CloseReason::AuthenticationViolation)
    );
    // From now on joe's replies reach only joe, and the service still answers.
    sim.send(joe, b"PUB services.greet _INBOX_joe.1 2\r\nhi\r\n");
    let got = sim.take_str(svc);
    assert_eq!(got, "MSG services.greet 1 _INBOX_joe.1 2\r\nhi\r\n");
    sim.send(svc, b"PUB _INBOX_joe.1 5\r\nhello\r\n");
    assert_eq!(sim.take_str(joe), "MSG _INBOX_joe.1 1 5\r\nhello\r\n");
    assert_eq!(sim.take_str(pam), "");
    // New permissions are enforced on publishes too.
    sim.send(joe, b"PUB other 0\r\n\r\n");
    assert_eq!(
        sim.take_str(joe),
        "-ERR 'Permissions Violation for Publish to \"other\"'\r\n"
    );
    assert_eq!(sim.server.num_clients(), 3);
}

#[test]
fn options_that_cannot_change_live_fail_the_whole_reload() {
    let mut sim = Sim::with_server(server_from_config(BEFORE));
    let joe = sim.connect(&login("joe"));
    sim.send(joe, b"SUB x 1\r\n");
    let (opts, auth) = config(&format!("host: 127.0.0.9\n{AFTER}"));
    let err = sim.server.reload(opts, auth, sim.now).unwrap_err();
    assert_eq!(
        err,
        "config reload not supported for host: old=0.0.0.0, new=127.0.0.9"
    );
    let (opts, auth) = config(&format!("max_subs: 5\n{AFTER}"));
    assert!(sim
        .server
        .reload(opts, auth, sim.now)
        .unwrap_err()
        .contains("max_subscriptions"));
    sim.pump();
    // Nothing was applied: joe keeps his rights.
    sim.send(joe, b"PUB x 0\r\n\r\n");
    assert_eq!(sim.take_str(joe), "MSG x 1 0\r\n\r\n");
}

#[test]
fn accounts_reload_moves_users_and_keeps_everyone_elses_subscriptions() {
    let before = r#"accounts {
        A: { users: [{user: a, password: p}, {user: mover, password: p}], exports: [{stream: "feed.>"}] }
        B: { users: [{user: b, password: p}], imports: [{stream: {account: A, subject: "feed.>"}}] }
    }"#;
    let after = r#"accounts {
        A: { users: [{user: a, password: p}], exports: [{stream: "feed.>"}], limits: {max_payload: 10} }
        B: { users: [{user: b, password: p}, {user: mover, password: p}] }
    }"#;
    let mut sim = Sim::with_server(server_from_config(before));
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    let mover = sim.connect(&login("mover"));
    sim.send(a, b"SUB feed.x 1\r\n");
    sim.send(b, b"SUB feed.x 1\r\n");
    sim.send(a, b"PUB feed.x 1\r\n1\r\n");
    assert_eq!(sim.take_str(b), "MSG feed.x 1 1\r\n1\r\n");
    let (opts, auth) = config(after);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    // Moved to another account: closed without an error.
    assert_eq!(sim.take_str(mover), "");
    assert_eq!(sim.closed.get(&mover), Some(&CloseReason::ClientClosed));
    // a's subscription carried over; B no longer imports the feed.
    sim.take(a);
    sim.send(a, b"PUB feed.x 1\r\n2\r\n");
    assert_eq!(sim.take_str(a), "MSG feed.x 1 1\r\n2\r\n");
    assert_eq!(sim.take_str(b), "");
    // A's new payload limit applies to the live connection.
    sim.send(a, b"PUB feed.x 11\r\n01234567890\r\n");
    assert_eq!(sim.take_str(a), "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(sim.server.account_stats("A").unwrap().in_msgs, 2);
}

/// A publisher repeating one subject has its permission decision remembered;
/// new permissions from a reload must decide its very next publish.
#[test]
fn a_reload_decides_a_repeated_subject_afresh() {
    const PERMS_BEFORE: &str = r#"
authorization {
  users: [
    {user: joe, password: p, permissions: {publish: ["a", "b"]}}
    {user: sub, password: p}
  ]
}
"#;
    const PERMS_AFTER: &str = r#"
authorization {
  users: [
    {user: joe, password: p, permissions: {publish: ["b", "c"]}}
    {user: sub, password: p}
  ]
}
"#;
    let mut sim = Sim::with_server(server_from_config(PERMS_BEFORE));
    let joe = sim.connect(&login("joe"));
    let sub = sim.connect(&login("sub"));
    sim.send(sub, b"SUB a 1\r\nSUB c 3\r\n");
    sim.send(joe, b"PUB c 1\r\nx\r\nPUB a 1\r\nx\r\nPUB a 1\r\nx\r\n");
    let violation =
        |subject: &str| format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n");
    assert_eq!(sim.take_str(joe), violation("c"));
    assert_eq!(sim.take_str(sub), "MSG a 1 1\r\nx\r\n".repeat(2));
    let (opts, auth) = config(PERMS_AFTER);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    // `a` was the last subject, allowed until now.
    sim.send(joe, b"PUB a 1\r\ny\r\nPUB c 1\r\ny\r\nPUB c 1\r\ny\r\n");
    assert_eq!(sim.take_str(joe), violation("a"));
    assert_eq!(sim.take_str(sub), "MSG c 3 1\r\ny\r\n".repeat(2));
}

/// A publisher repeating one subject has its match remembered by the subject
/// trie's generation; a reload rebuilds the tries, whose generations start
/// again, so the next publish must be matched afresh.
#[test]
fn a_reload_matches_a_repeated_subject_afresh() {
    const USERS_BEFORE: &str = r#"
authorization {
  users: [
    {user: joe, password: p}
    {user: stays, password: p}
    {user: late, password: p}
    {user: gone, password: p}
  ]
}
"#;
    const USERS_AFTER: &str = r#"
authorization {
  users: [
    {user: joe, password: p}
    {user: stays, password: p}
    {user: late, password: p}
  ]
}
"#;
    let mut sim = Sim::with_server(server_from_config(USERS_BEFORE));
    let joe = sim.connect(&login("joe"));
    let stays = sim.connect(&login("stays"));
    let late = sim.connect(&login("late"));
    let gone = sim.connect(&login("gone"));
    sim.send(stays, b"SUB foo 1\r\nSUB bar 2\r\n");
    sim.send(gone, b"SUB foo 1\r\n");
    // Remembered with three subscriptions in the trie.
    sim.send(joe, b"PUB foo 1\r\nx\r\n");
    assert_eq!(sim.take_str(stays), "MSG foo 1 1\r\nx\r\n");
    assert_eq!(sim.take_str(gone), "MSG foo 1 1\r\nx\r\n");
    // A fourth, then a reload that drops gone's: the rebuilt trie holds three
    // again, a generation number the remembered match also had.
    sim.send(late, b"SUB foo 9\r\n");
    let (opts, auth) = config(USERS_AFTER);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    sim.send(joe, b"PUB foo 1\r\ny\r\n");
    assert_eq!(sim.take_str(stays), "MSG foo 1 1\r\ny\r\n");
    assert_eq!(sim.take_str(late), "MSG foo 9 1\r\ny\r\n");
}

#[test]
fn error_report_intervals_change_live() {
    let mut sim = Sim::with_server(server_from_config(BEFORE));
    let joe = sim.connect(&login("joe"));
    let (opts, auth) = config(&format!(
        "connect_error_reports: 60\nreconnect_error_reports: 10\n{BEFORE}"
    ));
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    let opts = sim.server.options();
    assert_eq!(
        (opts.connect_error_reports, opts.reconnect_error_reports),
        (60, 10)
    );
    assert!(!sim.closed.contains_key(&joe));
}

#[test]
fn the_monitoring_base_path_cannot_change_live() {
    let mut sim = Sim::with_server(server_from_config(&format!(
        "http_base_path: /nats\n{BEFORE}"
    )));
    let (opts, auth) = config(&format!("http_base_path: /mon\n{BEFORE}"));
    assert_eq!(
        sim.server.reload(opts, auth, sim.now).unwrap_err(),
        "config reload not supported for http_base_path: old=/nats, new=/mon"
    );
    assert_eq!(sim.server.options().http_base_path, "/nats");
}
