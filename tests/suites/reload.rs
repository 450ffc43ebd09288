//! Configuration reload from the outside: the `-c` file is rewritten and the
//! server told to re-read it (`SIGHUP`, or `--signal reload=<pid or pid file>`).
//! What changes live (users, passwords, permissions, default permissions,
//! `allow_responses`, accounts with their exports, imports and limits,
//! `max_connections`, `max_payload`, tracing), what happens to the clients
//! connected at the time, and the options whose change fails the whole reload
//! with the old configuration left in force. Raw TCP for exact bytes; async-nats
//! for the private-inbox scenario and the steady stream across reloads.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, Message, ServerError};
use futures::StreamExt;
use tenet_tests::{
    free_port, is_reference_server, run_binary, skip_on_reference, write_config_file, RawClient,
    TestServer, TIMEOUT,
};
use tokio::sync::mpsc;

/// How long a raw client listens to be sure nothing (more) arrives.
const QUIET: Duration = Duration::from_millis(300);
/// How long async-nats waits for what must arrive.
const WAIT: Duration = Duration::from_secs(5);
/// The log line of a reload that was applied (both servers).
const RELOADED: &str = "Reloaded server configuration";

/// How the server logs a reload that failed, before the reason (both servers).
fn failed_prefix() -> &'static str {
    "Failed to reload server configuration: "
}

/// The name a non-reloadable option has in the failure message: tenet's
/// configuration name, or nats-server's Go field name.
fn field(tenet: &'static str, reference: &'static str) -> &'static str {
    if is_reference_server() {
        reference
    } else {
        tenet
    }
}

// ----- a server whose configuration file the test rewrites ---------------------

/// A configuration file, removed when dropped.
struct ConfigFile(PathBuf);

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A server started with `-c <file>`; the file is removed with it.
struct Reloadable {
    server: TestServer,
    config: ConfigFile,
}

impl Deref for Reloadable {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl DerefMut for Reloadable {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.server
    }
}

/// True if the server answering on `server`'s port is that process: the
/// `server_id` of its INFO is in the process's log. (A server that loses the
/// race for a free port to another test's server can see its readiness probe
/// answered by that other server before it exits with "address in use".)
fn answers_on_its_port(server: &mut TestServer) -> bool {
    let probe = server.client();
    let id = probe.info()["server_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    !id.is_empty() && server.wait_for_log(&format!("ID:       {id}"), Duration::from_secs(2))
}

impl Reloadable {
    /// `-a 127.0.0.1 -p <free port> -c <file holding config>`.
    fn start(config: &str) -> Reloadable {
        Self::start_with(config, &[])
    }

    /// [`Reloadable::start`] with extra flags after `-c <file>`.
    fn start_with(config: &str, args: &[&str]) -> Reloadable {
        let config = ConfigFile(write_config_file(config));
        let path_text = config.0.to_string_lossy().into_owned();
        let mut full = vec!["-c", path_text.as_str()];
        full.extend_from_slice(args);
        for _ in 0..3 {
            let mut server = TestServer::start_with_args(&full);
            if answers_on_its_port(&mut server) {
                return Reloadable { server, config };
            }
        }
        panic!("another server kept answering on the chosen ports");
    }

    /// Only `-c <file>`: the server listens where the file says (for tests of
    /// `host`, `port` and `listen`, which the usual flags would override).
    fn start_as_configured(config: &str) -> Reloadable {
        let config = ConfigFile(write_config_file(config));
        let path_text = config.0.to_string_lossy().into_owned();
        let server = TestServer::start_with_exact_args(&["-c", path_text.as_str()]);
        Reloadable { server, config }
    }

    fn config_path(&self) -> String {
        self.config.0.to_string_lossy().into_owned()
    }

    /// Every reload outcome logged so far (applied or failed), in order.
    fn outcomes(&mut self) -> Vec<String> {
        let prefix = failed_prefix();
        self.logs()
            .lines()
            .filter(|l| l.contains(RELOADED) || l.contains(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Waits (bounded) for the outcome logged after the first `before` ones.
    fn next_outcome(&mut self, before: usize) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let outcomes = self.outcomes();
            if let Some(line) = outcomes.get(before) {
                return line.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "no reload outcome logged within {TIMEOUT:?}:\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Rewrites the file, sends SIGHUP and returns the outcome line.
    fn reload_outcome(&mut self, config: &str) -> String {
        std::fs::write(&self.config.0, config).expect("rewrite the config file");
        let before = self.outcomes().len();
        self.signal(libc::SIGHUP);
        self.next_outcome(before)
    }

    /// A reload with `config` that must be applied.
    fn reload(&mut self, config: &str) {
        let outcome = self.reload_outcome(config);
        assert!(
            outcome.contains(RELOADED),
            "the reload was not applied: {outcome}\n{}",
            self.logs()
        );
    }

    /// A reload with `config` that must fail; returns the failure line.
    fn reload_fails(&mut self, config: &str) -> String {
        let outcome = self.reload_outcome(config);
        assert!(
            outcome.contains(failed_prefix()),
            "the reload did not fail: {outcome}\n{}",
            self.logs()
        );
        if !is_reference_server() {
            assert!(outcome.contains("[ERR]"), "{outcome}");
        }
        outcome
    }
}

// ----- raw protocol helpers ----------------------------------------------------

/// Logs `user` in with `pass` and completes a PING/PONG; on tenet, the INFO
/// after the first PONG is read and must name `account`.
///
/// The CONNECT spells `"protocol": 1` with a space so that the harness leaves
/// that INFO to this function, which knows the account to expect.
fn login(server: &TestServer, user: &str, pass: &str, account: &str) -> RawClient {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\": 1,\
         \"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    ));
    c.expect(b"PONG\r\n");
    if is_reference_server() {
        // nats-server 2.9.10 follows the first PONG with an INFO when the
        // account lowers max_payload: a second round trip reads past it.
        c.send("PING\r\n");
        let mut line = c.read_line();
        if line.starts_with(b"INFO ") {
            line = c.read_line();
        }
        assert_eq!(
            line,
            b"PONG\r\n",
            "{user}: {}",
            String::from_utf8_lossy(&line)
        );
    } else {
        let info = c.read_info();
        assert_eq!(info["connect_info"], true, "{user}: {info}");
        assert_eq!(info["remote_account"], account, "{user}: {info}");
    }
    c
}

/// A login the server refuses with `Authorization Violation`.
fn login_refused(server: &TestServer, user: &str, pass: &str) {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\
         \"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    ));
    c.expect(b"-ERR 'Authorization Violation'\r\n");
    c.expect_closed();
}

/// `PUB <subject> <len>\r\n<payload>\r\n`.
fn publish(subject: &str, payload: &str) -> String {
    format!("PUB {subject} {}\r\n{payload}\r\n", payload.len())
}

/// `MSG <subject> <sid> <len>\r\n<payload>\r\n`.
fn msg(subject: &str, sid: u32, payload: &str) -> String {
    format!("MSG {subject} {sid} {}\r\n{payload}\r\n", payload.len())
}

fn pub_denied(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n")
}

fn sub_denied(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\"'\r\n")
}

/// The error of a subscription a reload removed.
fn sub_revoked(subject: &str, sid: u32) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\" (sid \"{sid}\")'\r\n")
}

/// The next line other than the server's PINGs (each answered): for a raw
/// client idle long enough to get the server's first PING (about 2 s in).
fn next_line_answering_pings(c: &mut RawClient) -> String {
    loop {
        let line = String::from_utf8(c.read_line()).expect("UTF-8 line");
        if line != "PING\r\n" {
            return line;
        }
        c.send("PONG\r\n");
    }
}

/// Expects `-ERR '<what>'` and then the close.
fn expect_err_then_close(c: &mut RawClient, what: &str) {
    c.expect(format!("-ERR '{what}'\r\n"));
    c.expect_closed();
}

// ----- async-nats helpers ------------------------------------------------------

/// A connected async-nats client and the server errors its connection received.
struct User {
    client: Client,
    errors: mpsc::UnboundedReceiver<String>,
}

async fn connect(server: &TestServer, user: &str, pass: &str, opts: ConnectOptions) -> User {
    let (tx, errors) = mpsc::unbounded_channel();
    let opts = opts
        .user_and_password(user.into(), pass.into())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(err) = event {
                    let text = match err {
                        ServerError::Other(text) => text,
                        other => other.to_string(),
                    };
                    let _ = tx.send(text);
                }
            }
        });
    let client = tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
    User { client, errors }
}

impl User {
    async fn request(&self, subject: &str, payload: &str) -> Message {
        tokio::time::timeout(
            WAIT,
            self.client
                .request(subject.to_string(), payload.to_string().into()),
        )
        .await
        .expect("request timed out")
        .expect("request")
    }

    /// A round trip through the server for a user who may not publish to
    /// `barrier.<n>`: once that refusal arrives, the server has processed
    /// everything this user sent before (async-nats's flush only writes).
    /// Returns the server errors that came before it.
    async fn barrier(&mut self) -> Vec<String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let subject = format!("barrier.{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        self.client
            .publish(subject.clone(), "".into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        let marker = format!("Permissions Violation for Publish to \"{subject}\"");
        let mut before = Vec::new();
        loop {
            let err = self.next_error().await;
            if err == marker {
                return before;
            }
            before.push(err);
        }
    }

    /// The next server error (bounded wait).
    async fn next_error(&mut self) -> String {
        tokio::time::timeout(WAIT, self.errors.recv())
            .await
            .expect("no server error within the timeout")
            .expect("the event channel closed")
    }
}

/// Answers every request on `subject` with `<prefix><payload>` until the
/// client goes; returns once the server has the subscription.
async fn serve(user: &mut User, subject: &str, prefix: &'static str) {
    let mut requests = user.client.subscribe(subject.to_string()).await.unwrap();
    assert_eq!(user.barrier().await, Vec::<String>::new());
    let client = user.client.clone();
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            let Some(reply) = req.reply else { continue };
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&req.payload);
            if client.publish(reply, answer.into()).await.is_err() {
                break;
            }
            let _ = client.flush().await;
        }
    });
}

// ----- 1. Private inboxes switched on by a reload ------------------------------

/// The greeter service, and joe and pam who may call services and subscribe
/// to `joe_inbox` and `pam_inbox`.
fn inbox_config(joe_inbox: &str, pam_inbox: &str) -> String {
    format!(
        "authorization {{ users = [
  {{user: greeter, password: g, permissions: {{subscribe: \"services.greet\", allow_responses: true}}}}
  {{user: joe, password: j, permissions: {{publish: \"services.*\", subscribe: \"{joe_inbox}\"}}}}
  {{user: pam, password: p, permissions: {{publish: \"services.*\", subscribe: \"{pam_inbox}\"}}}}
] }}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_inboxes_take_effect_on_reload() {
    let mut server = Reloadable::start(&inbox_config("_INBOX.>", "_INBOX.>"));
    let mut greeter = connect(&server, "greeter", "g", ConnectOptions::new()).await;
    serve(&mut greeter, "services.greet", "hello, ").await;

    // pam listens to every inbox.
    let mut pam = login(&server, "pam", "p", "$G");
    pam.send("SUB _INBOX.> 1\r\n");
    pam.ping();

    // Before the reload the shared inbox leaks joe's reply to pam.
    let mut old_joe = connect(&server, "joe", "j", ConnectOptions::new()).await;
    let reply = old_joe.request("services.greet", "joe").await;
    assert_eq!(&reply.payload[..], b"hello, joe");
    pam.expect(msg(reply.subject.as_str(), 1, "hello, joe"));
    pam.ping();

    server.reload(&inbox_config("_INBOX_joe.>", "_INBOX_pam.>"));

    // pam's subscription is removed, with the error, and her connection stays.
    pam.expect(sub_revoked("_INBOX.>", 1));
    pam.ping();
    // So is the response subscription (`_INBOX.<id>.*`) of joe's old connection.
    let err = old_joe.next_error().await;
    assert!(
        err.starts_with("Permissions Violation for Subscription to \"_INBOX.")
            && err.contains(".*\" (sid \""),
        "{err}"
    );

    // joe, with his private prefix, gets the greeter's answer...
    let joe = connect(
        &server,
        "joe",
        "j",
        ConnectOptions::new().custom_inbox_prefix("_INBOX_joe"),
    )
    .await;
    for round in ["joe", "joe again"] {
        let reply = joe.request("services.greet", round).await;
        assert_eq!(&reply.payload[..], format!("hello, {round}").as_bytes());
        assert!(
            reply.subject.starts_with("_INBOX_joe."),
            "{}",
            reply.subject
        );
    }
    // ...pam sees nothing of it, and may not listen to joe's inbox.
    pam.send("SUB _INBOX_joe.> 2\r\n");
    pam.expect(sub_denied("_INBOX_joe.>"));
    pam.ping();
    let again = joe.request("services.greet", "joe").await;
    assert_eq!(&again.payload[..], b"hello, joe");
    pam.ping();

    // pam uses her own inbox now.
    pam.send("SUB _INBOX_pam.> 3\r\nPUB services.greet _INBOX_pam.1 3\r\npam\r\n");
    pam.expect(msg("_INBOX_pam.1", 3, "hello, pam"));
    pam.ping();
    pam.expect_nothing(QUIET);
    // The greeter answered everyone without a single refusal.
    assert_eq!(greeter.barrier().await, Vec::<String>::new());
}

// ----- 2. A steady stream across reloads ---------------------------------------

/// `producer` and `consumer` keep their rights; `other`'s subscribe right changes.
fn load_config(other_subscribe: &str) -> String {
    format!(
        "authorization {{ users = [
  {{user: producer, password: p, permissions: {{publish: \"load.>\", subscribe: \"nothing\"}}}}
  {{user: consumer, password: p, permissions: {{publish: \"nothing\", subscribe: \"load.>\"}}}}
  {{user: other, password: p, permissions: {{subscribe: \"{other_subscribe}\"}}}}
] }}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_survives_reloads_intact() {
    const TOTAL: usize = 20_000;
    const BATCH: usize = 200;
    const RELOADS: usize = 6;
    // The producer does not go past this until every reload is done, so each
    // one happens while messages are flowing.
    const GATE: usize = TOTAL * (RELOADS + 1) / (RELOADS + 2);

    let mut server = Reloadable::start(&load_config("other.>"));
    let mut other = login(&server, "other", "p", "$G");
    other.send("SUB other.> 1\r\n");
    other.ping();

    let mut consumer = connect(&server, "consumer", "p", ConnectOptions::new()).await;
    let producer = connect(&server, "producer", "p", ConnectOptions::new()).await;
    let mut sub = consumer.client.subscribe("load.data").await.unwrap();
    assert_eq!(consumer.barrier().await, Vec::<String>::new());

    let received = Arc::new(AtomicUsize::new(0));
    let reloads_done = Arc::new(AtomicUsize::new(0));

    let counter = received.clone();
    let consuming = tokio::spawn(async move {
        for expected in 0..TOTAL {
            let m = tokio::time::timeout(WAIT, sub.next())
                .await
                .unwrap_or_else(|_| panic!("message {expected} did not arrive"))
                .expect("the subscription ended");
            let text = String::from_utf8_lossy(&m.payload);
            assert_eq!(text, expected.to_string(), "message {expected}");
            counter.store(expected + 1, Ordering::Release);
        }
        let last = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("the end marker did not arrive")
            .expect("the subscription ended");
        assert_eq!(&last.payload[..], b"end");
    });

    let done = reloads_done.clone();
    let client = producer.client.clone();
    let producing = tokio::spawn(async move {
        for i in 0..TOTAL {
            client
                .publish("load.data", i.to_string().into())
                .await
                .unwrap();
            if (i + 1) % BATCH == 0 {
                client.flush().await.unwrap();
                let deadline = Instant::now() + Duration::from_secs(30);
                while i + 1 >= GATE && done.load(Ordering::Acquire) < RELOADS {
                    assert!(Instant::now() < deadline, "the reloads did not finish");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        client.publish("load.data", "end".into()).await.unwrap();
        client.flush().await.unwrap();
    });

    let progress = received.clone();
    let reloading = tokio::task::spawn_blocking(move || {
        let mut at_reload = Vec::new();
        for k in 0..RELOADS {
            let due = (k + 1) * TOTAL / (RELOADS + 2);
            let deadline = Instant::now() + Duration::from_secs(30);
            while progress.load(Ordering::Acquire) < due {
                assert!(Instant::now() < deadline, "the stream stalled before {due}");
                thread::sleep(Duration::from_millis(1));
            }
            let subject = if k % 2 == 0 { "elsewhere.>" } else { "other.>" };
            server.reload(&load_config(subject));
            at_reload.push(progress.load(Ordering::Acquire));
            reloads_done.fetch_add(1, Ordering::Release);
        }
        (server, at_reload)
    });

    let (server, at_reload) = reloading.await.expect("reloader");
    producing.await.expect("producer");
    consuming.await.expect("consumer");
    // Every reload happened with messages still to come.
    assert!(
        at_reload.iter().all(|&n| n < TOTAL),
        "received count at each reload: {at_reload:?}"
    );
    // The reloads did change other's rights: its subscription went at the first.
    assert_eq!(
        next_line_answering_pings(&mut other),
        sub_revoked("other.>", 1)
    );
    other.send("PING\r\n");
    assert_eq!(next_line_answering_pings(&mut other), "PONG\r\n");
    drop(server);
}

// ----- 3. Who a reload disconnects ---------------------------------------------

#[test]
fn removed_user_is_closed_silently_and_changed_password_is_a_violation() {
    let mut server = Reloadable::start(
        "authorization { users = [
  {user: stay, password: p}
  {user: gone, password: p}
  {user: rotated, password: old}
] }
",
    );
    let mut stay = login(&server, "stay", "p", "$G");
    stay.send("SUB news 1\r\n");
    stay.ping();
    let mut gone = login(&server, "gone", "p", "$G");
    gone.send("SUB news 1\r\n");
    gone.ping();
    let mut rotated = login(&server, "rotated", "old", "$G");
    rotated.send("SUB news 1\r\n");
    rotated.ping();

    server.reload(
        "authorization { users = [
  {user: stay, password: p}
  {user: rotated, password: new}
] }
",
    );
    gone.expect_closed();
    expect_err_then_close(&mut rotated, "Authorization Violation");

    // The user who stays keeps its subscription.
    stay.send(publish("news", "still here"));
    stay.expect(msg("news", 1, "still here"));
    stay.ping();

    login_refused(&server, "gone", "p");
    login_refused(&server, "rotated", "old");
    let mut rotated = login(&server, "rotated", "new", "$G");
    rotated.send(publish("news", "rotated"));
    rotated.ping();
    stay.expect(msg("news", 1, "rotated"));
    stay.ping();
}

#[test]
fn user_moved_to_another_account_or_whose_account_went_is_closed_silently() {
    let mut server = Reloadable::start(
        "accounts {
  A: { users: [{user: a, password: p}, {user: m, password: p}] }
  B: { users: [{user: b, password: p}] }
  C: { users: [{user: c, password: p}] }
}
",
    );
    let mut a = login(&server, "a", "p", "A");
    let mut b = login(&server, "b", "p", "B");
    let mut m = login(&server, "m", "p", "A");
    let mut c = login(&server, "c", "p", "C");
    for client in [&mut a, &mut b, &mut m, &mut c] {
        client.send("SUB foo 1\r\n");
        client.ping();
    }

    server.reload(
        "accounts {
  A: { users: [{user: a, password: p}] }
  B: { users: [{user: b, password: p}, {user: m, password: p}] }
}
",
    );
    m.expect_closed();
    c.expect_closed();
    a.ping();
    b.ping();

    // m is now in B: it shares B's subjects, not A's.
    let mut m = login(&server, "m", "p", "B");
    m.send(publish("foo", "from m"));
    m.ping();
    b.expect(msg("foo", 1, "from m"));
    b.ping();
    a.send(publish("foo", "from a"));
    a.expect(msg("foo", 1, "from a"));
    a.ping();
    b.ping();
    m.ping();
    a.expect_nothing(QUIET);
    login_refused(&server, "c", "p");
}

#[test]
fn enabling_auth_closes_clients_without_credentials() {
    let mut server = Reloadable::start("ping_max: 3\n");
    let mut anonymous = server.client();
    anonymous.handshake();
    anonymous.send("SUB foo 1\r\n");
    anonymous.ping();
    // A client that sent the credentials of the user-to-be passes the recheck.
    let mut prepared = login(&server, "u", "p", "$G");
    prepared.send("SUB foo 1\r\n");
    prepared.ping();

    server.reload("ping_max: 3\nauthorization { users = [ {user: u, password: p} ] }\n");
    expect_err_then_close(&mut anonymous, "Authorization Violation");
    prepared.send(publish("foo", "x"));
    prepared.expect(msg("foo", 1, "x"));
    prepared.ping();

    // New clients need credentials now.
    let mut c = server.client();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n");
    expect_err_then_close(&mut c, "Authorization Violation");
}

// ----- 4. Reloads that fail leave the old configuration in force ---------------

/// User `u` in account A may publish and subscribe to `<rights>.>`; `extra`
/// goes before the accounts (system account SYS is declared but not named).
fn guarded(rights: &str, extra: &str) -> String {
    format!(
        "{extra}
accounts {{
  A: {{ users: [ {{user: u, password: p, permissions: {{publish: \"{rights}.>\", subscribe: \"{rights}.>\"}}}} ] }}
  SYS: {{ users: [ {{user: admin, password: p}} ] }}
}}
"
    )
}

/// `c` (subscribed to `old.>` as sid 1) still has exactly the old rights.
fn has_old_rights(c: &mut RawClient, sid: u32) {
    c.send(publish("old.x", "still"));
    c.expect(msg("old.x", sid, "still"));
    c.send(publish("new.x", "no"));
    c.expect(pub_denied("new.x"));
    c.send("SUB new.> 99\r\n");
    c.expect(sub_denied("new.>"));
    c.ping();
}

/// Starts with `guarded("old", start_extra)`, reloads `guarded("new",
/// bad_extra)` which must fail (the failure line containing `expected`), and
/// checks that the old rights are still in force, for the connected client and
/// a new one. Then a reload of `guarded("new", start_extra)` is applied.
fn refused_reload(server: &mut Reloadable, start_extra: &str, bad_extra: &str, expected: &str) {
    let mut u = login(server, "u", "p", "A");
    u.send("SUB old.> 1\r\n");
    u.ping();

    let outcome = server.reload_fails(&guarded("new", bad_extra));
    assert!(
        outcome.contains(expected),
        "expected {expected:?} in the failure: {outcome}"
    );
    has_old_rights(&mut u, 1);
    let mut fresh = login(server, "u", "p", "A");
    fresh.send("SUB old.> 7\r\n");
    fresh.ping();
    has_old_rights(&mut fresh, 7);
    u.expect(msg("old.x", 1, "still"));
    u.ping();
    assert_eq!(
        server.outcomes().len(),
        1,
        "one reload, one outcome:\n{}",
        server.logs()
    );

    // The server still reloads: the same change without the bad part applies.
    server.reload(&guarded("new", start_extra));
    u.expect(sub_revoked("old.>", 1));
    u.send(format!("SUB new.> 2\r\n{}", publish("new.x", "granted")));
    u.expect(msg("new.x", 2, "granted"));
    u.ping();
    fresh.expect(sub_revoked("old.>", 7));
    fresh.ping();
}

fn not_supported(tenet: &'static str, reference: &'static str) -> String {
    format!(
        "{}config reload not supported for {}: old=",
        failed_prefix(),
        field(tenet, reference)
    )
}

#[test]
fn changing_host_fails_the_reload() {
    let port = free_port();
    let start = format!("host: 127.0.0.1\nport: {port}\n");
    let mut server = Reloadable::start_as_configured(&guarded("old", &start));
    let bad = format!("host: 0.0.0.0\nport: {port}\n");
    refused_reload(
        &mut server,
        &start,
        &bad,
        &format!(
            "config reload not supported for {}: old=127.0.0.1, new=0.0.0.0",
            field("host", "Host")
        ),
    );
}

#[test]
fn changing_port_fails_the_reload() {
    let (port, other) = (free_port(), free_port());
    let start = format!("host: 127.0.0.1\nport: {port}\n");
    let mut server = Reloadable::start_as_configured(&guarded("old", &start));
    let bad = format!("host: 127.0.0.1\nport: {other}\n");
    refused_reload(&mut server, &start, &bad, &not_supported("port", "Port"));
}

#[test]
fn changing_the_listen_port_fails_the_reload() {
    let (port, other) = (free_port(), free_port());
    let start = format!("listen: 127.0.0.1:{port}\n");
    let mut server = Reloadable::start_as_configured(&guarded("old", &start));
    let bad = format!("listen: 127.0.0.1:{other}\n");
    refused_reload(&mut server, &start, &bad, &not_supported("port", "Port"));
}

#[test]
fn changing_max_subscriptions_fails_the_reload() {
    let start = "max_subscriptions: 100\n";
    let mut server = Reloadable::start(&guarded("old", start));
    refused_reload(
        &mut server,
        start,
        "max_subscriptions: 50\n",
        &not_supported("max_subscriptions", "MaxSubs"),
    );
}

#[test]
fn changing_server_name_fails_the_reload() {
    let start = "server_name: first\n";
    let mut server = Reloadable::start(&guarded("old", start));
    refused_reload(
        &mut server,
        start,
        "server_name: second\n",
        &not_supported("server_name", "ServerName"),
    );
}

#[test]
fn adding_no_auth_user_fails_the_reload() {
    let mut server = Reloadable::start(&guarded("old", ""));
    refused_reload(
        &mut server,
        "",
        "no_auth_user: u\n",
        &not_supported("no_auth_user", "NoAuthUser"),
    );
}

#[test]
fn changing_system_account_fails_the_reload() {
    let mut server = Reloadable::start(&guarded("old", ""));
    refused_reload(
        &mut server,
        "",
        "system_account: SYS\n",
        &not_supported("system_account", "SystemAccount"),
    );
}

#[test]
fn changing_http_base_path_fails_the_reload() {
    let start = "http_base_path: /nats\n";
    let mut server = Reloadable::start(&guarded("old", start));
    refused_reload(
        &mut server,
        start,
        "http_base_path: /monitor\n",
        &format!(
            "config reload not supported for {}: old=/nats, new=/monitor",
            field("http_base_path", "HTTPBasePath")
        ),
    );
}

#[test]
fn a_syntax_error_fails_the_reload_with_its_position() {
    let start = "ping_max: 3\n";
    let mut server = Reloadable::start(&guarded("old", start));
    // Line 2 of the file: `broken: {a: 1 ]` (the `]` is column 15).
    let bad = "ping_max: 3\nbroken: {a: 1 ]\n";
    let expected = if is_reference_server() {
        "Parse error on line 2: 'Expected a map value terminator".to_string()
    } else {
        format!(
            "{}:2:15: expected a map value terminator",
            server.config_path()
        )
    };
    refused_reload(&mut server, start, bad, &expected);
}

/// A path in the temporary directory that does not exist yet.
fn fresh_path(what: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "tenet-reload-{}-{}.{what}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn tenet_does_not_reload_log_file() {
    if skip_on_reference("nats-server reopens a changed log_file; tenet cannot change it live") {
        return;
    }
    let log = fresh_path("log");
    let mut server = Reloadable::start(&guarded("old", ""));
    refused_reload(
        &mut server,
        "",
        &format!("log_file: \"{}\"\n", log.display()),
        // The values as nats-server prints them: nothing for none.
        &format!(
            "config reload not supported for log_file: old=, new={}",
            log.display()
        ),
    );
    assert!(!log.exists(), "{} was created", log.display());
}

#[test]
fn tenet_does_not_reload_logtime() {
    if skip_on_reference("nats-server changes logtime live; tenet cannot") {
        return;
    }
    let mut server = Reloadable::start(&guarded("old", ""));
    refused_reload(
        &mut server,
        "",
        "logtime: false\n",
        "config reload not supported for logtime: old=true, new=false",
    );
}

#[test]
fn tenet_does_not_reload_pid_file() {
    if skip_on_reference("nats-server accepts a changed pid_file on reload; tenet refuses it") {
        return;
    }
    let (first, second) = (fresh_path("pid"), fresh_path("pid"));
    let start = format!("pid_file: \"{}\"\n", first.display());
    let mut server = Reloadable::start(&guarded("old", &start));
    assert!(first.exists(), "{} was not written", first.display());
    refused_reload(
        &mut server,
        &start,
        &format!("pid_file: \"{}\"\n", second.display()),
        &format!(
            "config reload not supported for pid_file: old={}, new={}",
            first.display(),
            second.display()
        ),
    );
    assert!(!second.exists(), "{} was created", second.display());
    drop(server);
    let _ = std::fs::remove_file(first);
}

// ----- 5. Accounts change live -------------------------------------------------

/// A exports the stream `pub.>`; B imports it when `import` is true, and A
/// has the per-connection payload limit `a_max_payload`.
fn accounts_config(export: bool, import: bool, a_max_payload: u32) -> String {
    let exports = if export {
        "exports: [{stream: \"pub.>\"}]"
    } else {
        ""
    };
    let imports = if import {
        "imports: [{stream: {account: A, subject: \"pub.>\"}}]"
    } else {
        ""
    };
    format!(
        "accounts {{
  A: {{
    users: [{{user: a, password: p}}]
    {exports}
    limits: {{max_payload: {a_max_payload}}}
  }}
  B: {{
    users: [{{user: b, password: p}}]
    {imports}
  }}
}}
"
    )
}

#[test]
fn a_new_stream_import_delivers_after_reload() {
    let mut server = Reloadable::start(&accounts_config(true, false, 1000));
    let mut a = login(&server, "a", "p", "A");
    let mut b = login(&server, "b", "p", "B");
    b.send("SUB pub.> 1\r\n");
    b.ping();
    a.send(publish("pub.x", "before"));
    a.ping();
    b.ping();

    server.reload(&accounts_config(true, true, 1000));
    a.ping();
    b.ping();
    // The subscription made before the reload receives the import...
    a.send(publish("pub.x", "after"));
    a.ping();
    b.expect(msg("pub.x", 1, "after"));
    b.ping();
    // ...and so does a new one.
    b.send("SUB pub.y 2\r\n");
    b.ping();
    a.send(publish("pub.y", "new"));
    a.ping();
    // One copy per subscription, in either order.
    let mut both: Vec<String> = (0..2)
        .map(|_| {
            let line = String::from_utf8(b.read_line()).unwrap();
            b.expect("new\r\n");
            line
        })
        .collect();
    both.sort();
    assert_eq!(both, ["MSG pub.y 1 3\r\n", "MSG pub.y 2 3\r\n"]);
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn a_removed_export_stops_deliveries() {
    let mut server = Reloadable::start(&accounts_config(true, true, 1000));
    let mut a = login(&server, "a", "p", "A");
    let mut b = login(&server, "b", "p", "B");
    b.send("SUB pub.> 1\r\n");
    b.ping();
    a.send(publish("pub.x", "before"));
    a.ping();
    b.expect(msg("pub.x", 1, "before"));
    b.ping();

    // An import of an export that is gone would not load: both go.
    server.reload(&accounts_config(false, false, 1000));
    a.ping();
    b.ping();
    a.send(publish("pub.x", "after"));
    a.ping();
    b.ping();
    // b keeps its connection and its own subjects.
    b.send(publish("pub.own", "mine"));
    b.expect(msg("pub.own", 1, "mine"));
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn a_lowered_account_max_payload_applies_to_connected_clients() {
    let mut server = Reloadable::start(&accounts_config(true, true, 1000));
    let mut a = login(&server, "a", "p", "A");
    let mut b = login(&server, "b", "p", "B");
    b.send("SUB big 1\r\n");
    b.ping();
    let body = "x".repeat(200);
    a.send(publish("pub.big", &body));
    a.ping();

    server.reload(&accounts_config(true, true, 100));
    // B has no limit of its own.
    b.send(publish("big", &body));
    b.expect(msg("big", 1, &body));
    b.ping();
    a.send(publish("pub.small", &"y".repeat(100)));
    a.ping();
    a.send(publish("pub.big", &body));
    expect_err_then_close(&mut a, "Maximum Payload Violation");
}

// ----- 6. Telling the server to reload -----------------------------------------

/// Before: `u` may subscribe to `old.>`; after: to `new.>`.
fn rights_config(rights: &str) -> String {
    format!(
        "authorization {{ users = [ {{user: u, password: p, permissions: {{subscribe: \"{rights}.>\"}}}} ] }}\n"
    )
}

#[test]
fn signal_reload_with_a_pid_file_and_with_a_pid() {
    let pid_file = fresh_path("pid");
    let pid_text = pid_file.to_string_lossy().into_owned();
    let mut server = Reloadable::start_with(&rights_config("old"), &["-P", &pid_text]);
    let pid = server.pid();
    let written = std::fs::read_to_string(&pid_file).expect("the pid file");
    assert_eq!(written.trim(), pid.to_string());
    let mut u = login(&server, "u", "p", "$G");
    u.send("SUB old.> 1\r\n");
    u.ping();

    std::fs::write(&server.config.0, rights_config("new")).unwrap();
    let before = server.outcomes().len();
    let (status, out) = run_binary(&["--signal", &format!("reload={pid_text}")]);
    assert!(
        status.success(),
        "--signal reload={pid_text}: {status}: {out}"
    );
    let outcome = server.next_outcome(before);
    assert!(outcome.contains(RELOADED), "{outcome}");
    u.expect(sub_revoked("old.>", 1));
    u.send("SUB new.> 2\r\n");
    u.ping();
    if !is_reference_server() {
        assert!(server.logs().contains("[INF] Trapped \"hangup\" signal"));
    }

    // A plain pid works too.
    std::fs::write(&server.config.0, rights_config("old")).unwrap();
    let before = server.outcomes().len();
    let (status, out) = run_binary(&["--signal", &format!("reload={pid}")]);
    assert!(status.success(), "--signal reload={pid}: {status}: {out}");
    let outcome = server.next_outcome(before);
    assert!(outcome.contains(RELOADED), "{outcome}");
    u.expect(sub_revoked("new.>", 2));
    u.ping();
    drop(server);
    let _ = std::fs::remove_file(pid_file);
}

#[test]
fn reload_without_a_config_file_fails_and_changes_nothing() {
    if skip_on_reference("tenet logs why a reload without -c fails; nats-server's message differs")
    {
        return;
    }
    let mut server = TestServer::start();
    let mut c = server.client();
    c.handshake();
    c.send("SUB foo 1\r\n");
    c.ping();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_for_log(
            "[ERR] Failed to reload server configuration: no configuration file (-c) to reload",
            TIMEOUT
        ),
        "{}",
        server.logs()
    );
    c.send(publish("foo", "x"));
    c.expect(msg("foo", 1, "x"));
    c.ping();
    assert!(!server.logs().contains(RELOADED), "{}", server.logs());
}

// ----- 7. Server limits and default permissions ---------------------------------

#[test]
fn lowered_max_connections_closes_the_excess() {
    let mut server = Reloadable::start("max_connections: 10\n");
    let mut clients: Vec<RawClient> = (0..5)
        .map(|_| {
            let mut c = server.client();
            c.handshake();
            c
        })
        .collect();

    server.reload("max_connections: 3\n");
    // Read every client at once: the excess ones get the error and a close.
    let results: Vec<(RawClient, Vec<u8>)> = thread::scope(|scope| {
        let readers: Vec<_> = clients
            .drain(..)
            .map(|mut c| {
                scope.spawn(move || {
                    let got = c.read_for(QUIET);
                    (c, got)
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut closed = 0;
    for (mut c, got) in results {
        if got.is_empty() {
            c.ping();
            clients.push(c);
        } else {
            assert_eq!(
                got,
                b"-ERR 'maximum connections exceeded'\r\n",
                "{}",
                String::from_utf8_lossy(&got)
            );
            c.expect_closed();
            closed += 1;
        }
    }
    assert_eq!((closed, clients.len()), (2, 3));

    // The limit holds for new clients too.
    let mut extra = RawClient::connect(server.port());
    expect_err_then_close(&mut extra, "maximum connections exceeded");
    for c in &mut clients {
        c.ping();
    }
}

#[test]
fn lowered_max_payload_applies_to_connected_clients() {
    let mut server = Reloadable::start("max_payload: 1000\n");
    let mut c = server.client();
    c.handshake();
    assert_eq!(c.info()["max_payload"], 1000);
    let body = "x".repeat(200);
    c.send(format!("SUB foo 1\r\n{}", publish("foo", &body)));
    c.expect(msg("foo", 1, &body));
    c.ping();

    server.reload("max_payload: 100\n");
    let fresh = server.client();
    assert_eq!(fresh.info()["max_payload"], 100);
    let small = "y".repeat(100);
    c.send(publish("foo", &small));
    c.expect(msg("foo", 1, &small));
    c.ping();
    c.send(publish("foo", &body));
    expect_err_then_close(&mut c, "Maximum Payload Violation");
}

fn default_permissions_config(rights: &str) -> String {
    format!(
        "authorization {{
  default_permissions: {{ publish: \"{rights}.>\", subscribe: \"{rights}.>\" }}
  users = [ {{user: d, password: p}}, {{user: admin, password: p, permissions: {{publish: \">\", subscribe: \">\"}}}} ]
}}
"
    )
}

#[test]
fn changed_default_permissions_apply_to_connected_clients() {
    let mut server = Reloadable::start(&default_permissions_config("a"));
    let mut admin = login(&server, "admin", "p", "$G");
    admin.send("SUB a.> 1\r\nSUB b.> 2\r\n");
    admin.ping();
    let mut d = login(&server, "d", "p", "$G");
    d.send("SUB a.plain 1\r\nSUB a.q workers 2\r\n");
    d.send(publish("a.x", "1"));
    d.ping();
    admin.expect(msg("a.x", 1, "1"));
    admin.ping();

    server.reload(&default_permissions_config("b"));
    // Both subscriptions go (in no particular order); the queue one without
    // a `using queue` part.
    let mut errors: Vec<String> = (0..2)
        .map(|_| String::from_utf8(d.read_line()).unwrap())
        .collect();
    errors.sort();
    assert_eq!(errors, [sub_revoked("a.plain", 1), sub_revoked("a.q", 2)]);
    d.ping();
    d.send(publish("a.x", "2"));
    d.expect(pub_denied("a.x"));
    d.send(format!("SUB b.q workers 3\r\n{}", publish("b.q", "3")));
    d.expect(msg("b.q", 3, "3"));
    d.ping();
    admin.expect(msg("b.q", 2, "3"));
    admin.send(publish("a.plain", "4"));
    admin.expect(msg("a.plain", 1, "4"));
    admin.ping();
    d.expect_nothing(QUIET);
}

// ----- more of what changes live -------------------------------------------------

/// `svc` answers with `allow_responses`; `other`'s rights are what the reload changes.
fn responses_config(other: &str) -> String {
    format!(
        "authorization {{ users = [
  {{user: svc, password: p, permissions: {{subscribe: \"svc.>\", allow_responses: true}}}}
  {{user: app, password: p}}
  {{user: other, password: p, permissions: {{subscribe: \"{other}\"}}}}
] }}
"
    )
}

#[test]
fn allow_responses_tracking_is_reset_by_a_reload() {
    let mut server = Reloadable::start(&responses_config("x"));
    let mut svc = login(&server, "svc", "p", "$G");
    svc.send("SUB svc.echo 1\r\n");
    svc.ping();
    let mut app = login(&server, "app", "p", "$G");
    app.send("SUB _INBOX.app 1\r\nPUB svc.echo _INBOX.app 2\r\nq1\r\n");
    app.ping();
    svc.expect("MSG svc.echo 1 _INBOX.app 2\r\nq1\r\n");
    svc.ping();

    server.reload(&responses_config("y"));
    // The pending reply right went with the reload.
    svc.send(publish("_INBOX.app", "a1"));
    svc.expect(pub_denied("_INBOX.app"));
    svc.ping();
    // A new request grants it again.
    app.send("PUB svc.echo _INBOX.app 2\r\nq2\r\n");
    app.ping();
    svc.expect("MSG svc.echo 1 _INBOX.app 2\r\nq2\r\n");
    svc.send(publish("_INBOX.app", "a2"));
    svc.ping();
    app.expect(msg("_INBOX.app", 1, "a2"));
    app.ping();
    app.expect_nothing(QUIET);
}

#[test]
fn tracing_is_turned_on_by_a_reload() {
    let mut server = Reloadable::start("ping_max: 3\n");
    let mut c = server.client();
    c.handshake();
    c.send("SUB before.trace 1\r\n");
    c.ping();
    server.reload("ping_max: 3\ndebug: true\ntrace: true\n");
    c.send("SUB after.trace 2\r\n");
    c.ping();
    assert!(
        server.wait_for_log("<<- [SUB after.trace 2]", TIMEOUT),
        "{}",
        server.logs()
    );
    assert!(!server.logs().contains("before.trace"), "{}", server.logs());
}

#[test]
fn error_report_intervals_change_live() {
    // Accepted at start and changed by a reload, as nats-server does (they
    // take effect once leaf nodes and routes exist).
    let start = "connect_error_reports: 10\nreconnect_error_reports: 2\n";
    let mut server = Reloadable::start(&guarded("old", start));
    let mut u = login(&server, "u", "p", "A");
    u.send("SUB old.> 1\r\n");
    u.ping();
    server.reload(&guarded(
        "new",
        "connect_error_reports: 60\nreconnect_error_reports: 0\n",
    ));
    // The rest of the same reload applied too.
    u.expect(sub_revoked("old.>", 1));
    u.send(format!("SUB new.> 2\r\n{}", publish("new.x", "granted")));
    u.expect(msg("new.x", 2, "granted"));
}

#[test]
fn remote_syslog_switches_live() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let syslog = format!("remote_syslog: \"udp://{}\"\n", udp.local_addr().unwrap());
    let mut server = Reloadable::start(&guarded("old", ""));
    let mut u = login(&server, "u", "p", "A");
    u.send("SUB old.> 1\r\n");
    u.ping();

    // To the syslog server: the reload's own outcome already goes there.
    std::fs::write(&server.config.0, guarded("new", &syslog)).expect("rewrite");
    server.signal(libc::SIGHUP);
    let got = tenet_tests::datagrams_until(&udp, RELOADED);
    let reloaded = got.last().unwrap();
    assert!(reloaded.starts_with("<5>"), "{reloaded}");
    // nats-server's line for the option goes out before the switch, to stderr.
    let line = format!(
        "[INF] Reloaded: remote_syslog = udp://{}",
        udp.local_addr().unwrap()
    );
    assert!(server.wait_for_log(&line, TIMEOUT), "{}", server.logs());
    assert!(
        reloaded.ends_with(&format!("[{}]: {RELOADED}\n", server.pid())),
        "{reloaded}"
    );
    u.expect(sub_revoked("old.>", 1));
    // What the server logs now goes to syslog, not stderr.
    u.send("SUB old.x 2\r\n");
    let got = tenet_tests::datagrams_until(&udp, "Subscription Violation");
    assert!(got.last().unwrap().starts_with("<3>"), "{got:#?}");
    assert!(!server.logs().contains("Subscription Violation"));

    // And back to stderr.
    let before = server.outcomes().len();
    server.reload(&guarded("new", ""));
    assert_eq!(server.outcomes().len(), before + 1);
    u.send("SUB old.y 3\r\n");
    assert!(server.wait_for_log("Subscription Violation", TIMEOUT));
}

#[test]
fn an_unreachable_syslog_fails_the_reload() {
    if skip_on_reference("nats-server exits when the new syslog cannot be reached") {
        return;
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let mut server = Reloadable::start(&guarded("old", ""));
    refused_reload(
        &mut server,
        "",
        &format!("remote_syslog: \"tcp://{closed}\"\n"),
        &format!(
            "{}error connecting to syslog: tcp://{closed}: ",
            failed_prefix()
        ),
    );
}

#[test]
fn a_refused_reload_keeps_the_log_where_it_was() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let syslog = format!("remote_syslog: \"udp://{}\"\n", udp.local_addr().unwrap());
    let start = "server_name: first\n";
    let mut server = Reloadable::start(&guarded("old", start));
    // The syslog change comes with one that cannot change live: nothing applies.
    refused_reload(
        &mut server,
        start,
        &format!("server_name: second\n{syslog}"),
        &not_supported("server_name", "ServerName"),
    );
    let mut u = login(&server, "u", "p", "A");
    u.send("SUB old.x 1\r\n");
    assert!(server.wait_for_log("Subscription Violation", TIMEOUT));
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    assert!(udp.recv(&mut buf).is_err(), "a line went to syslog");
}

#[test]
fn the_r_flag_stays_over_the_file_on_reload() {
    if skip_on_reference("nats-server 2.9.10 drops -r on reload when the file has no remote_syslog")
    {
        return;
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let url = format!("udp://{}", udp.local_addr().unwrap());
    let config = ConfigFile(write_config_file(&guarded("old", "")));
    let path = config.0.to_string_lossy().into_owned();
    let server = Spawned::start(&["-a", "127.0.0.1", "-p", "-1", "-c", &path, "-r", &url]);
    tenet_tests::datagrams_until(&udp, "Server is ready");
    std::fs::write(&config.0, guarded("new", "")).expect("rewrite");
    server.hangup();
    let got = tenet_tests::datagrams_until(&udp, "Reloaded server configuration");
    assert!(got.last().unwrap().starts_with("<5>"), "{got:#?}");
}

/// A server process whose log goes elsewhere than stderr; killed when dropped.
struct Spawned(std::process::Child);

impl Spawned {
    fn start(args: &[&str]) -> Spawned {
        let child = std::process::Command::new(tenet_tests::server_binary())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the server binary");
        Spawned(child)
    }

    fn hangup(&self) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ----- 8. What a reload logs -----------------------------------------------------

#[test]
fn a_reload_logs_what_it_changed_removed_and_refused() {
    let mut server = Reloadable::start(
        "authorization { users = [
  {user: pam, password: p, permissions: {subscribe: [\"_INBOX.>\", \"foo\"]}}
  {user: rotated, password: old}
] }
",
    );
    let mut pam = login(&server, "pam", "p", "$G");
    pam.send("SUB _INBOX.> 1\r\nSUB foo 2\r\n");
    pam.ping();
    let mut rotated = login(&server, "rotated", "old", "$G");
    rotated.ping();
    server.reload(
        "max_payload: 65536
authorization { users = [
  {user: pam, password: p, permissions: {subscribe: \"foo\"}}
  {user: rotated, password: new}
] }
",
    );
    pam.expect(sub_revoked("_INBOX.>", 1));
    expect_err_then_close(&mut rotated, "Authorization Violation");
    let logs = server.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter(|l| {
            l.starts_with("Reloaded")
                || l.starts_with("Removed sub")
                || l.contains("authentication error")
        })
        .collect();
    // nats-server's lines in its order: the options, then what they did to
    // the clients, then the outcome.
    let rotated_error = lines
        .iter()
        .find(|l| l.contains("authentication error"))
        .expect("the rotated user's error");
    assert!(
        rotated_error.ends_with(" - authentication error - User \"rotated\""),
        "{logs}"
    );
    let mut without_client = lines.clone();
    without_client.retain(|l| !l.contains("authentication error"));
    assert_eq!(
        without_client,
        [
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: max_payload = 65536",
            r#"Removed sub "_INBOX.>" (sid "1") for User "pam" - not authorized"#,
            "Reloaded server configuration",
        ],
        "{logs}"
    );
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert!(position("max_payload") < position("authentication error"));
    assert!(position("authentication error") < position(RELOADED));
}
