//! Work the engine hands to worker threads (bcrypt checks), on a fake clock
//! with the test as the worker: the client waiting on a job is paused and its
//! later input held, everyone else is served meanwhile.

mod support;

use support::{server_from_config, Sim};
use tenet_core::CloseReason;

/// Joe's password `s3cret` as a bcrypt hash (cost 4: fast in tests).
fn joe_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("s3cret", 4).expect("hash"))
}

/// A server whose user `joe` has a bcrypt password.
fn bcrypt_server() -> Sim {
    let hash = joe_hash();
    let text = format!(
        "authorization {{ users = [ {{user: joe, password: \"{hash}\"}}, {{user: plain, password: p}} ] }}\n"
    );
    let mut sim = Sim::with_server(server_from_config(&text));
    sim.hold_jobs = true;
    sim
}

fn login(user: &str, pass: &str) -> String {
    format!(r#"{{"verbose":false,"pedantic":false,"user":"{user}","pass":"{pass}"}}"#)
}

#[test]
fn a_bcrypt_login_waits_for_its_job_while_others_are_served() {
    let mut sim = bcrypt_server();
    let joe = sim.connect(&login("joe", "s3cret"));
    sim.send(joe, b"SUB news 1\r\nPING\r\n");
    assert_eq!(sim.jobs.len(), 1, "the bcrypt check is a job");
    assert_eq!(
        sim.take_str(joe),
        "",
        "nothing is answered before the check"
    );
    assert!(!sim.server.can_read(joe), "reading is paused meanwhile");
    // Another client is served at once (a plain-text password needs no job).
    let other = sim.connect(&login("plain", "p"));
    sim.send(other, b"PING\r\n");
    assert_eq!(sim.take_str(other), "PONG\r\n");
    // Input that arrives while waiting is held, then processed in order.
    sim.send(joe, b"PING\r\n");
    sim.run_jobs();
    assert_eq!(sim.take_str(joe), "PONG\r\nPONG\r\n");
    assert!(sim.server.can_read(joe));
    assert!(
        sim.resumed.contains(&joe),
        "the runtime is told to read again"
    );
    sim.send(other, b"PUB news 2\r\nhi\r\n");
    assert_eq!(
        sim.take_str(joe),
        "MSG news 1 2\r\nhi\r\n",
        "its SUB was made"
    );
}

#[test]
fn a_wrong_bcrypt_password_is_refused_when_its_job_is_done() {
    let mut sim = bcrypt_server();
    let joe = sim.connect(&login("joe", "wrong"));
    sim.send(joe, b"PING\r\n");
    assert!(sim.closed.is_empty());
    sim.run_jobs();
    assert_eq!(sim.take_str(joe), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(
        sim.closed.get(&joe),
        Some(&CloseReason::AuthenticationViolation)
    );
}

#[test]
fn a_result_for_a_client_gone_meanwhile_is_dropped() {
    let mut sim = bcrypt_server();
    let joe = sim.connect(&login("joe", "s3cret"));
    sim.server
        .handle_closed(joe, CloseReason::ClientClosed, sim.now);
    sim.run_jobs();
    assert_eq!(sim.take_str(joe), "");
    assert_eq!(sim.server.num_clients(), 0);
}

#[test]
fn plain_text_credentials_need_no_job() {
    let mut sim = bcrypt_server();
    let c = sim.connect(&login("plain", "p"));
    sim.send(c, b"PING\r\n");
    assert!(sim.jobs.is_empty());
    assert_eq!(sim.take_str(c), "PONG\r\n");
}

#[test]
fn a_reload_keeps_a_bcrypt_client_without_a_job_and_checks_a_changed_hash() {
    let mut sim = bcrypt_server();
    let joe = sim.connect(&login("joe", "s3cret"));
    sim.run_jobs();
    sim.send(joe, b"PING\r\n");
    assert_eq!(sim.take_str(joe), "PONG\r\n");
    // New permissions, same hash: joe stays and is restricted at once.
    let same = joe_hash();
    let (opts, auth) = support::config(&format!(
        "authorization {{ users = [ {{user: joe, password: \"{same}\", permissions: {{publish: allowed}} }}, {{user: plain, password: p}} ] }}\n"
    ));
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    assert!(sim.jobs.is_empty(), "no job for a reload");
    sim.send(joe, b"PUB other 0\r\n\r\nPING\r\n");
    assert_eq!(
        sim.take_str(joe),
        "-ERR 'Permissions Violation for Publish to \"other\"'\r\nPONG\r\n"
    );
    // A new hash for another password: joe's secret no longer matches.
    let changed = bcrypt::hash("new", 4).expect("hash");
    let (opts, auth) = support::config(&format!(
        "authorization {{ users = [ {{user: joe, password: \"{changed}\"}}, {{user: plain, password: p}} ] }}\n"
    ));
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    assert_eq!(sim.take_str(joe), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(
        sim.closed.get(&joe),
        Some(&CloseReason::AuthenticationViolation)
    );
}
