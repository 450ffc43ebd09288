//! Accounts (multi-tenancy): isolation of each account's subject space, the
//! account named in the INFO after the first PONG, stream and service exports
//! and imports (prefixes, `_R_` replies, response types, no 503 through an
//! import, `allow_responses` across accounts), restricted exports and the
//! imports that refuse a configuration, account limits, account
//! `default_permissions` and `no_auth_user` in an account. Raw TCP for exact
//! bytes; async-nats for the three tenancy patterns of `tests/data/tenancy/`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Message, RequestErrorKind, Subscriber};
use futures::{FutureExt, StreamExt};
use tenet_tests::wire::{msg, msg_reply, publish, request};
use tenet_tests::{
    free_port, is_reference_server, run_binary, skip_on_reference, RawClient, TestServer, TIMEOUT,
};

/// How long a raw client listens to be sure nothing arrives.
const QUIET: Duration = Duration::from_millis(300);
/// How long async-nats waits for what must arrive.
const WAIT: Duration = Duration::from_secs(5);

// ----- raw helpers ------------------------------------------------------------

/// Logs `user` in with `pass` (`extra` appended to the CONNECT JSON) and sends
/// the first PING; returns once `PONG` is read. Whatever follows the PONG (an
/// INFO on tenet) is left unread.
///
/// The CONNECT says `"protocol": 1` with a space: the harness only spots the
/// compact spelling, and would then check that the INFO after the first PONG
/// names `$G`; here the callers check it themselves, against their account.
fn connect_raw(server: &TestServer, user: &str, pass: &str, extra: &str) -> RawClient {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\": 1,\
         \"user\":\"{user}\",\"pass\":\"{pass}\"{extra}}}\r\nPING\r\n"
    ));
    c.expect(b"PONG\r\n");
    c
}

/// `user` logged in (password `p`, no headers); on tenet, the INFO after the
/// first PONG is read and must name `account`.
fn login(server: &TestServer, user: &str, account: &str) -> RawClient {
    login_with(server, user, "p", account, "")
}

/// [`login`] with a password and extra CONNECT members.
fn login_with(
    server: &TestServer,
    user: &str,
    pass: &str,
    account: &str,
    extra: &str,
) -> RawClient {
    let mut c = connect_raw(server, user, pass, extra);
    if !is_reference_server() {
        let info = c.read_info();
        assert_eq!(info["connect_info"], true, "{user}: {info}");
        assert_eq!(info["remote_account"], account, "{user}: {info}");
    }
    c
}

fn pub_denied(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n")
}

/// True for `_R_.<6 alphanumerics>.<6 alphanumerics>`.
fn is_service_reply(reply: &str) -> bool {
    let tokens: Vec<&str> = reply.split('.').collect();
    tokens.len() == 3
        && tokens[0] == "_R_"
        && tokens[1..]
            .iter()
            .all(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Reads a request delivered to a service as `MSG <subject> <sid> <reply> <len>`
/// with `payload`; checks the reply is an `_R_` subject and returns it.
fn read_service_request(c: &mut RawClient, subject: &str, sid: u32, payload: &str) -> String {
    let line = String::from_utf8(c.read_line()).expect("UTF-8 MSG line");
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    let len = payload.len().to_string();
    assert!(
        fields.len() == 5
            && fields[0] == "MSG"
            && fields[1] == subject
            && fields[2] == sid.to_string()
            && fields[4] == len,
        "expected MSG {subject} {sid} _R_.xxxxxx.yyyyyy {len}, got {line:?}"
    );
    assert!(is_service_reply(fields[3]), "reply of {line:?}");
    c.expect(format!("{payload}\r\n"));
    fields[3].to_string()
}

// ----- configurations -----------------------------------------------------------

/// Two accounts (users `a` and `a2` in A, `b` in B; password `p`) sharing nothing.
const TWO_ACCOUNTS: &str = "accounts {
  A: { users: [{user: a, password: p}, {user: a2, password: p}] }
  B: { users: [{user: b, password: p}] }
}
";

/// A (users `a` and the responder `r`) exports the stream `pub.>` and the
/// service `svc.>`; B (user `b`) imports both, the service as `asvc.>`. The
/// extras are appended to the stream import and to the service export.
fn exports_config(stream_import_extra: &str, service_export_extra: &str) -> String {
    format!(
        "accounts {{
  A: {{
    users: [{{user: a, password: p}}, {{user: r, password: p}}]
    exports: [
      {{stream: \"pub.>\"}}
      {{service: \"svc.>\"{service_export_extra}}}
    ]
  }}
  B: {{
    users: [{{user: b, password: p}}]
    imports: [
      {{stream: {{account: A, subject: \"pub.>\"}}{stream_import_extra}}}
      {{service: {{account: A, subject: \"svc.>\"}}, to: \"asvc.>\"}}
    ]
  }}
}}
"
    )
}

fn exports_server() -> TestServer {
    TestServer::with_config(&exports_config("", ""), &[])
}

/// The service responder `r` of [`exports_config`] (no headers, so both servers
/// deliver requests as plain MSG), subscribed to `svc.>` as sid 1.
fn responder(server: &TestServer) -> RawClient {
    let mut r = login(server, "r", "A");
    r.send("SUB svc.> 1\r\n");
    r.ping();
    r
}

/// The requester `b` of [`exports_config`], subscribed to its inbox `_INBOX.b` as sid 1.
fn requester(server: &TestServer) -> RawClient {
    let mut b = login(server, "b", "B");
    b.send("SUB _INBOX.b 1\r\n");
    b.ping();
    b
}

// ----- isolation ----------------------------------------------------------------

#[test]
fn the_same_subject_in_two_accounts_is_two_subjects() {
    let server = TestServer::with_config(TWO_ACCOUNTS, &[]);
    let mut a = login(&server, "a", "A");
    let mut a2 = login(&server, "a2", "A");
    let mut b = login(&server, "b", "B");
    a2.send("SUB foo 1\r\n");
    a2.ping();
    b.send("SUB foo 1\r\n");
    b.ping();

    a.send(publish("foo", "from-a"));
    a.ping();
    a2.expect(msg("foo", 1, "from-a"));
    b.send(publish("foo", "from-b"));
    b.expect(msg("foo", 1, "from-b"));
    b.ping();
    a2.ping();
    a2.expect_nothing(QUIET);
    b.expect_nothing(QUIET);
}

#[test]
fn a_full_wildcard_subscriber_sees_nothing_of_another_account() {
    let server = TestServer::with_config(TWO_ACCOUNTS, &[]);
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    a.send("SUB > 1\r\n");
    a.ping();
    b.send("SUB > 1\r\n");
    b.ping();
    a.send(format!(
        "{}{}{}PING\r\n",
        publish("foo", "1"),
        publish("_INBOX.x.y", "2"),
        publish("bar.baz", "3")
    ));
    a.expect(format!(
        "{}{}{}PONG\r\n",
        msg("foo", 1, "1"),
        msg("_INBOX.x.y", 1, "2"),
        msg("bar.baz", 1, "3")
    ));
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn request_reply_inboxes_do_not_cross_accounts() {
    let server = TestServer::with_config(TWO_ACCOUNTS, &[]);
    let mut service = login(&server, "a2", "A");
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    service.send("SUB svc 1\r\n");
    service.ping();
    b.send("SUB _INBOX.> 1\r\nSUB svc 2\r\n");
    b.ping();
    a.send(format!(
        "SUB _INBOX.a 1\r\n{}",
        request("svc", "_INBOX.a", "q")
    ));
    a.ping();
    service.expect(msg_reply("svc", 1, "_INBOX.a", "q"));
    service.send(publish("_INBOX.a", "answer"));
    service.ping();
    a.expect(msg("_INBOX.a", 1, "answer"));
    // B saw neither the request nor the answer, and B's request does not reach A's service.
    b.send(request("svc", "_INBOX.b", "q"));
    b.expect(msg_reply("svc", 2, "_INBOX.b", "q"));
    b.ping();
    b.expect_nothing(QUIET);
    service.expect_nothing(QUIET);
}

/// `authorization` users next to `accounts`: they live in `$G`.
const GLOBAL_AND_ACCOUNT: &str = "authorization {
  users: [{user: g, password: p}]
}
accounts {
  A: { users: [{user: a, password: p}] }
}
";

#[test]
fn users_outside_accounts_live_in_the_global_account() {
    let server = TestServer::with_config(GLOBAL_AND_ACCOUNT, &[]);
    let mut g = login(&server, "g", "$G");
    let mut a = login(&server, "a", "A");
    g.send("SUB > 1\r\n");
    g.ping();
    a.send("SUB > 1\r\n");
    a.ping();
    a.send(publish("foo", "a"));
    a.expect(msg("foo", 1, "a"));
    a.ping();
    g.send(publish("foo", "g"));
    g.expect(msg("foo", 1, "g"));
    g.ping();
    g.expect_nothing(QUIET);
    a.expect_nothing(QUIET);
}

#[test]
fn the_info_after_the_first_pong_names_the_account() {
    if skip_on_reference("nats-server 2.9.10 sends no INFO after the first PONG") {
        return;
    }
    let server = TestServer::with_config(GLOBAL_AND_ACCOUNT, &[]);
    for (user, account) in [("a", "A"), ("g", "$G")] {
        let mut c = connect_raw(&server, user, "p", "");
        let info = c.read_info();
        assert_eq!(info["connect_info"], true, "{info}");
        assert_eq!(info["remote_account"], account, "{info}");
        assert_eq!(info["client_id"], c.info()["client_id"], "{info}");
        // Only once.
        c.ping();
        c.expect_nothing(QUIET);
    }
}

// ----- stream exports and imports ---------------------------------------------

#[test]
fn a_stream_import_delivers_the_exporters_messages() {
    let server = exports_server();
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    let mut b_all = login(&server, "b", "B");
    b.send("SUB pub.x 1\r\nSUB other 2\r\nSUB pub 3\r\n");
    b.ping();
    b_all.send("SUB > 1\r\n");
    b_all.ping();
    a.send(format!(
        "{}{}{}",
        publish("pub.x", "hi"),
        publish("other", "no"),
        publish("pub", "no")
    ));
    a.ping();
    b.expect(msg("pub.x", 1, "hi"));
    b_all.expect(msg("pub.x", 1, "hi"));
    // A's publishes were all processed: a PONG alone proves nothing else came.
    b.ping();
    b_all.ping();
}

#[test]
fn a_stream_import_with_a_prefix_keeps_the_reply_subject() {
    let server = TestServer::with_config(&exports_config(", prefix: \"froma\"", ""), &[]);
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    b.send("SUB froma.pub.x 1\r\nSUB pub.x 2\r\n");
    b.ping();
    a.send(request("pub.x", "rep", "hi"));
    a.ping();
    b.expect(b"MSG froma.pub.x 1 rep 2\r\nhi\r\n");
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn a_stream_import_is_one_way() {
    let server = exports_server();
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    a.send("SUB pub.> 1\r\n");
    a.ping();
    b.send(format!("SUB pub.> 1\r\n{}", publish("pub.x", "from-b")));
    b.expect(msg("pub.x", 1, "from-b"));
    b.ping();
    a.expect_nothing(QUIET);
}

#[test]
fn a_subscriber_behind_a_stream_import_counts_as_a_responder() {
    let server = exports_server();
    let mut a = login_with(
        &server,
        "a",
        "p",
        "A",
        ",\"headers\":true,\"no_responders\":true",
    );
    let mut b = login(&server, "b", "B");
    a.send(format!(
        "SUB _INBOX.a 1\r\n{}PING\r\n",
        request("pub.x", "_INBOX.a", "q")
    ));
    a.expect(b"HMSG _INBOX.a 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n");
    b.send("SUB pub.x 1\r\n");
    b.ping();
    a.send(format!("{}PING\r\n", request("pub.x", "_INBOX.a", "q")));
    a.expect(b"PONG\r\n");
    b.expect(msg_reply("pub.x", 1, "_INBOX.a", "q"));
}

#[test]
fn stream_imports_are_not_transitive() {
    let server = TestServer::with_config(
        "accounts {
  A: { users: [{user: a, password: p}], exports: [{stream: \"pub.>\"}] }
  B: {
    users: [{user: b, password: p}]
    exports: [{stream: \"pub.>\"}]
    imports: [{stream: {account: A, subject: \"pub.>\"}}]
  }
  C: {
    users: [{user: c, password: p}]
    imports: [{stream: {account: B, subject: \"pub.>\"}}]
  }
}
",
        &[],
    );
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    let mut c = login(&server, "c", "C");
    b.send("SUB pub.> 1\r\n");
    b.ping();
    c.send("SUB pub.> 1\r\n");
    c.ping();
    a.send(publish("pub.x", "from-a"));
    a.ping();
    b.expect(msg("pub.x", 1, "from-a"));
    c.ping();
    c.expect_nothing(QUIET);
    // B's own messages do reach C.
    b.send(publish("pub.y", "from-b"));
    b.expect(msg("pub.y", 1, "from-b"));
    c.expect(msg("pub.y", 1, "from-b"));
}

// ----- service exports and imports --------------------------------------------

#[test]
fn a_service_import_routes_the_request_and_its_answer() {
    let server = exports_server();
    let mut r = responder(&server);
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let reply = read_service_request(&mut r, "svc.q", 1, "req");
    r.send(publish(&reply, "ans"));
    r.ping();
    b.expect(msg("_INBOX.b", 1, "ans"));
    b.ping();
    b.expect_nothing(QUIET);
}

/// A deliberate difference, checked both ways: nats-server 2.9.10 adds a
/// `Nats-Request-Info` header to a request that crossed a service import (so a
/// responder that speaks headers gets an HMSG); tenet forwards the request as
/// it was sent.
#[test]
fn a_request_through_a_service_import_is_forwarded_as_sent() {
    let server = exports_server();
    let mut r = login_with(&server, "r", "p", "A", ",\"headers\":true");
    r.send("SUB svc.> 1\r\n");
    r.ping();
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let line = String::from_utf8(r.read_line()).expect("UTF-8");
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    if is_reference_server() {
        assert_eq!(fields[0], "HMSG", "{line}");
        let header = String::from_utf8(r.read_line()).expect("UTF-8");
        assert_eq!(header, "NATS/1.0\r\n");
        let info = String::from_utf8(r.read_line()).expect("UTF-8");
        assert!(
            info.starts_with("Nats-Request-Info: {\"acc\":\"B\""),
            "{info}"
        );
    } else {
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!((fields[0], fields[1], fields[4]), ("MSG", "svc.q", "3"));
        assert!(is_service_reply(fields[3]), "{line}");
        r.expect("req\r\n");
    }
}

#[test]
fn each_request_gets_its_own_service_reply() {
    let server = exports_server();
    let mut r = responder(&server);
    let mut b = requester(&server);
    b.send(format!(
        "{}{}",
        request("asvc.one", "_INBOX.b", "1"),
        request("asvc.two", "_INBOX.b", "2")
    ));
    b.ping();
    let first = read_service_request(&mut r, "svc.one", 1, "1");
    let second = read_service_request(&mut r, "svc.two", 1, "2");
    assert_ne!(first, second);
    // Answered in the other order, each reaches the requester.
    r.send(format!(
        "{}{}",
        publish(&second, "b2"),
        publish(&first, "b1")
    ));
    r.ping();
    b.expect(format!(
        "{}{}",
        msg("_INBOX.b", 1, "b2"),
        msg("_INBOX.b", 1, "b1")
    ));
}

#[test]
fn a_service_is_reached_only_through_the_imports_local_name() {
    let server = exports_server();
    let mut r = responder(&server);
    let mut b = requester(&server);
    // svc.q is B's own subject: the import maps asvc.> only.
    b.send(format!(
        "SUB svc.> 2\r\n{}",
        request("svc.q", "_INBOX.b", "local")
    ));
    b.expect(msg_reply("svc.q", 2, "_INBOX.b", "local"));
    b.ping();
    r.expect_nothing(QUIET);
    // A's own publish on asvc.q goes nowhere near B.
    r.send(request("asvc.q", "_INBOX.r", "x"));
    r.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn a_service_import_also_delivers_locally_and_passes_requests_without_a_reply() {
    let server = exports_server();
    let mut r = responder(&server);
    let mut b = login(&server, "b", "B");
    b.send(format!("SUB asvc.q 1\r\n{}", publish("asvc.q", "note")));
    b.expect(msg("asvc.q", 1, "note"));
    b.ping();
    r.expect(msg("svc.q", 1, "note"));
    r.ping();
}

#[test]
fn a_queue_group_service_gets_each_request_once() {
    let server = exports_server();
    let mut members: Vec<RawClient> = (0..2)
        .map(|_| {
            let mut r = login(&server, "r", "A");
            r.send("SUB svc.> workers 1\r\n");
            r.ping();
            r
        })
        .collect();
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let got: Vec<Vec<u8>> = members.iter_mut().map(|r| r.read_for(QUIET)).collect();
    let requests: Vec<String> = got
        .iter()
        .flat_map(|bytes| {
            String::from_utf8_lossy(bytes)
                .into_owned()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|line| line.starts_with("MSG svc.q 1 _R_."))
        .collect();
    assert_eq!(requests.len(), 1, "{got:?}");
}

/// C exports a service that A imports and exports again; B imports it from A.
const CHAINED_SERVICE: &str = "accounts {
  C: { users: [{user: c, password: p}], exports: [{service: \"svc.>\"}] }
  A: {
    users: [{user: a, password: p}]
    exports: [{service: \"svc.>\"}]
    imports: [{service: {account: C, subject: \"svc.>\"}}]
  }
  B: {
    users: [{user: b, password: p}]
    imports: [{service: {account: A, subject: \"svc.>\"}, to: \"asvc.>\"}]
  }
}
";

#[test]
fn chained_service_imports_reach_the_last_service() {
    let server = TestServer::with_config(CHAINED_SERVICE, &[]);
    let mut c = login(&server, "c", "C");
    c.send("SUB svc.> 1\r\n");
    c.ping();
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    // B's request was routed before B's PONG: it is queued before C's PONG.
    c.send("PING\r\n");
    let reply = read_service_request(&mut c, "svc.q", 1, "req");
    c.expect(b"PONG\r\n");
    c.send(publish(&reply, "ans"));
    c.ping();
    b.expect(msg("_INBOX.b", 1, "ans"));
}

#[test]
fn a_singleton_service_delivers_only_the_first_answer() {
    let server = exports_server();
    let mut r = responder(&server);
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let reply = read_service_request(&mut r, "svc.q", 1, "req");
    r.send(format!(
        "{}{}",
        publish(&reply, "one"),
        publish(&reply, "two")
    ));
    r.ping();
    b.expect(msg("_INBOX.b", 1, "one"));
    b.ping();
    b.expect_nothing(QUIET);
}

/// Answers `one`, `two`, an empty message and `late` to one request through a
/// service exported with `response: <kind>`; all but `late` arrive.
fn check_empty_message_ends_the_response(kind: &str) {
    let server = TestServer::with_config(&exports_config("", &format!(", response: {kind}")), &[]);
    let mut r = responder(&server);
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let reply = read_service_request(&mut r, "svc.q", 1, "req");
    r.send(format!(
        "{}{}{}",
        publish(&reply, "one"),
        publish(&reply, "two"),
        publish(&reply, "")
    ));
    r.ping();
    b.expect(format!(
        "{}{}{}",
        msg("_INBOX.b", 1, "one"),
        msg("_INBOX.b", 1, "two"),
        "MSG _INBOX.b 1 0\r\n\r\n"
    ));
    r.send(publish(&reply, "late"));
    r.ping();
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn a_streamed_response_delivers_every_answer_until_an_empty_message() {
    check_empty_message_ends_the_response("stream");
}

#[test]
fn a_chunked_response_ends_with_an_empty_message() {
    check_empty_message_ends_the_response("chunked");
}

#[test]
fn a_request_through_an_import_without_a_responder_gets_no_503() {
    let server = exports_server();
    let mut b = login_with(
        &server,
        "b",
        "p",
        "B",
        ",\"headers\":true,\"no_responders\":true",
    );
    b.send("SUB _INBOX.b 1\r\n");
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    b.expect_nothing(QUIET);
    // A subject with no subscriber and no import does get the 503.
    b.send(request("nobody", "_INBOX.b", "req"));
    b.expect(b"HMSG _INBOX.b 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
}

#[test]
fn allow_responses_answers_one_request_from_another_account() {
    let server = TestServer::with_config(
        "accounts {
  A: {
    users: [{user: r, password: p, permissions: {subscribe: \"svc.>\", allow_responses: true}}]
    exports: [{service: \"svc.>\"}]
  }
  B: {
    users: [{user: b, password: p}]
    imports: [{service: {account: A, subject: \"svc.>\"}, to: \"asvc.>\"}]
  }
}
",
        &[],
    );
    let mut r = responder(&server);
    let mut b = requester(&server);
    b.send(request("asvc.q", "_INBOX.b", "req"));
    b.ping();
    let reply = read_service_request(&mut r, "svc.q", 1, "req");
    r.send(format!(
        "{}{}{}PING\r\n",
        publish(&reply, "one"),
        publish(&reply, "two"),
        publish("elsewhere", "x")
    ));
    r.expect(format!(
        "{}{}PONG\r\n",
        pub_denied(&reply),
        pub_denied("elsewhere")
    ));
    b.expect(msg("_INBOX.b", 1, "one"));
    b.ping();
    b.expect_nothing(QUIET);
}

// ----- restricted exports and refused imports ---------------------------------

/// A configuration file removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tenet-accounts-test-{}-{}.conf",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).expect("write config file");
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the server on `config`; it must refuse to start, saying `why`.
fn assert_refused(config: &str, why: &str) {
    let file = ConfigFile::new(config);
    let port = free_port().to_string();
    let path = file.0.to_string_lossy().into_owned();
    let (status, out) = run_binary(&["-a", "127.0.0.1", "-p", &port, "-c", &path]);
    assert!(
        !status.success(),
        "started on {config}\nexited {status}: {out}"
    );
    assert!(out.contains(why), "expected {why:?} in:\n{out}");
}

/// A exports the stream `priv` to C only.
const RESTRICTED_EXPORT: &str =
    "  A: { users: [{user: a, password: p}], exports: [{stream: \"priv\", accounts: [C]}] }\n";

#[test]
fn a_restricted_export_refuses_an_account_it_does_not_name() {
    let config = format!(
        "accounts {{
{RESTRICTED_EXPORT}  B: {{ users: [{{user: b, password: p}}], imports: [{{stream: {{account: A, subject: \"priv\"}}}}] }}
  C: {{ users: [{{user: c, password: p}}] }}
}}
"
    );
    let why = if is_reference_server() {
        "Error adding stream import \"priv\": stream import not authorized"
    } else {
        "stream import not authorized"
    };
    assert_refused(&config, why);
}

#[test]
fn a_restricted_export_serves_the_account_it_names() {
    let server = TestServer::with_config(
        &format!(
            "accounts {{
{RESTRICTED_EXPORT}  B: {{ users: [{{user: b, password: p}}] }}
  C: {{ users: [{{user: c, password: p}}], imports: [{{stream: {{account: A, subject: \"priv\"}}}}] }}
}}
"
        ),
        &[],
    );
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    let mut c = login(&server, "c", "C");
    b.send("SUB priv 1\r\n");
    b.ping();
    c.send("SUB priv 1\r\n");
    c.ping();
    a.send(publish("priv", "secret"));
    a.ping();
    c.expect(msg("priv", 1, "secret"));
    b.ping();
    b.expect_nothing(QUIET);
}

#[test]
fn an_import_wider_than_the_export_is_refused() {
    let why = if is_reference_server() {
        "Error adding stream import \"pub.>\": stream import not authorized"
    } else {
        "stream import not authorized"
    };
    assert_refused(
        "accounts {
  A: { users: [{user: a, password: p}], exports: [{stream: \"pub.x\"}] }
  B: {
    users: [{user: b, password: p}]
    imports: [{stream: {account: A, subject: \"pub.>\"}}]
  }
}
",
        why,
    );
}

#[test]
fn a_service_import_of_a_stream_export_is_refused() {
    assert_refused(
        "accounts {
  A: { users: [{user: a, password: p}], exports: [{stream: \"pub.>\"}] }
  B: {
    users: [{user: b, password: p}]
    imports: [{service: {account: A, subject: \"pub.x\"}}]
  }
}
",
        "service import not authorized",
    );
}

#[test]
fn an_import_from_an_undefined_account_is_refused() {
    assert_refused(
        "accounts {
  A: { users: [{user: a, password: p}], exports: [{stream: \"pub.>\"}] }
  B: {
    users: [{user: b, password: p}]
    imports: [{stream: {account: Z, subject: \"pub.>\"}}]
  }
}
",
        "\"Z\" account not defined for stream import",
    );
}

// ----- account limits -----------------------------------------------------------

#[test]
fn account_max_connections_refuses_the_third_until_one_leaves() {
    let server = TestServer::with_config(
        "accounts {
  A: { users: [{user: a, password: p}], limits: {max_connections: 2} }
  B: { users: [{user: b, password: p}] }
}
",
        &[],
    );
    let first = login(&server, "a", "A");
    let mut second = login(&server, "a", "A");
    let mut third = server.client();
    third.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"p\"}\r\n");
    third.expect(b"-ERR 'maximum account active connections exceeded'\r\n");
    third.expect_closed();
    // Other accounts are not counted.
    let _b = login(&server, "b", "B");
    second.ping();

    drop(first);
    login_when_a_slot_frees(&server);
}

/// Logs `a` in once the server has noticed that a connection of its full account
/// went away (asynchronously: retried briefly).
fn login_when_a_slot_frees(server: &TestServer) -> RawClient {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = server.client();
        c.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"p\"}\r\nPING\r\n");
        let line = c.read_line();
        if line == b"PONG\r\n" {
            return c;
        }
        assert_eq!(
            line,
            b"-ERR 'maximum account active connections exceeded'\r\n"
        );
        assert!(Instant::now() < deadline, "no connection slot came free");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_connect_refused_after_login_frees_its_account_slot() {
    let server = TestServer::with_config(
        "accounts { A: { users: [{user: a, password: p}], limits: {max_connections: 1} } }\n",
        &[],
    );
    for (extra, error) in [
        (",\"protocol\":5", "invalid client protocol"),
        (
            ",\"no_responders\":true",
            "no responders requires headers support",
        ),
    ] {
        let mut c = server.client();
        c.send(format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"p\"{extra}}}\r\n"
        ));
        c.expect(format!("-ERR '{error}'\r\n"));
        c.expect_closed();
    }
    let mut only = login_when_a_slot_frees(&server);
    let mut extra = server.client();
    extra.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"p\"}\r\n");
    extra.expect(b"-ERR 'maximum account active connections exceeded'\r\n");
    extra.expect_closed();
    only.ping();
}

#[test]
fn account_max_subs_refuses_the_third_subscription_and_keeps_the_connection() {
    let server = TestServer::with_config(
        "accounts { A: { users: [{user: a, password: p}], limits: {max_subs: 2} } }\n",
        &[],
    );
    let mut a = login(&server, "a", "A");
    a.send("SUB foo 1\r\nSUB bar 2\r\nSUB baz 3\r\nPING\r\n");
    a.expect(b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    a.send(format!(
        "{}{}PING\r\n",
        publish("foo", "1"),
        publish("baz", "2")
    ));
    a.expect(format!("{}PONG\r\n", msg("foo", 1, "1")));
    // The limit is per connection.
    let mut other = login(&server, "a", "A");
    other.send("SUB foo 1\r\nSUB bar 2\r\nPING\r\n");
    other.expect(b"PONG\r\n");
}

#[test]
fn account_max_payload_is_announced_and_enforced() {
    let server = TestServer::with_config(
        "accounts { A: { users: [{user: a, password: p}], limits: {max_payload: 100} } }\n",
        &[],
    );
    let mut a = connect_raw(&server, "a", "p", "");
    // The first INFO is the server's; the one after the first PONG is the account's
    // (tenet's connect-info INFO; nats-server 2.9.10 sends one for the new limit).
    assert_eq!(a.info()["max_payload"], 1_048_576, "{}", a.info());
    let info = a.read_info();
    assert_eq!(info["max_payload"], 100, "{info}");
    if !is_reference_server() {
        assert_eq!(info["remote_account"], "A", "{info}");
    }
    let hundred = "x".repeat(100);
    a.send(format!("SUB foo 1\r\n{}PING\r\n", publish("foo", &hundred)));
    a.expect(format!("{}PONG\r\n", msg("foo", 1, &hundred)));
    let _ = a.try_send(publish("foo", &"y".repeat(200)));
    a.expect(b"-ERR 'Maximum Payload Violation'\r\n");
    a.expect_closed();
}

// ----- permissions and no_auth_user ---------------------------------------------

#[test]
fn account_default_permissions_apply_to_its_users() {
    let server = TestServer::with_config(
        "accounts {
  A: {
    users: [
      {user: a, password: p}
      {user: own, password: p, permissions: {publish: \"x\"}}
    ]
    default_permissions: {publish: \"a.>\"}
  }
}
",
        &[],
    );
    let mut a = login(&server, "a", "A");
    a.send(format!(
        "SUB > 1\r\n{}{}PING\r\n",
        publish("a.x", "1"),
        publish("b.x", "2")
    ));
    a.expect(format!(
        "{}{}PONG\r\n",
        msg("a.x", 1, "1"),
        pub_denied("b.x")
    ));
    // A user with permissions of its own does not get the defaults.
    let mut own = login(&server, "own", "A");
    own.send(format!(
        "SUB > 1\r\n{}{}PING\r\n",
        publish("x", "1"),
        publish("a.x", "2")
    ));
    own.expect(format!("{}{}PONG\r\n", msg("x", 1, "1"), pub_denied("a.x")));
}

#[test]
fn authorization_default_permissions_do_not_reach_account_users() {
    let server = TestServer::with_config(
        "authorization {
  default_permissions: {publish: \"g.>\"}
  users: [{user: g, password: p}]
}
accounts {
  A: { users: [{user: a, password: p}] }
}
",
        &[],
    );
    let mut g = login(&server, "g", "$G");
    g.send(format!(
        "SUB > 1\r\n{}{}PING\r\n",
        publish("g.x", "1"),
        publish("b.x", "2")
    ));
    g.expect(format!(
        "{}{}PONG\r\n",
        msg("g.x", 1, "1"),
        pub_denied("b.x")
    ));
    let mut a = login(&server, "a", "A");
    a.send(format!("SUB > 1\r\n{}PING\r\n", publish("b.x", "2")));
    a.expect(format!("{}PONG\r\n", msg("b.x", 1, "2")));
}

#[test]
fn no_auth_user_in_an_account_puts_anonymous_clients_there() {
    let server = TestServer::with_config(
        "accounts {
  A: { users: [{user: a, password: p}] }
  B: { users: [{user: b, password: p}] }
}
no_auth_user: a
",
        &[],
    );
    let mut anonymous = server.client();
    anonymous.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\": 1}\r\nPING\r\n");
    anonymous.expect(b"PONG\r\n");
    if !is_reference_server() {
        let info = anonymous.read_info();
        assert_eq!(info["remote_account"], "A", "{info}");
    }
    anonymous.send("SUB foo 1\r\n");
    anonymous.ping();
    let mut a = login(&server, "a", "A");
    let mut b = login(&server, "b", "B");
    b.send(publish("foo", "from-b"));
    b.ping();
    a.send(format!("SUB foo 1\r\n{}", publish("foo", "from-a")));
    a.expect(msg("foo", 1, "from-a"));
    anonymous.expect(msg("foo", 1, "from-a"));
    anonymous.send(publish("foo", "anon"));
    anonymous.expect(msg("foo", 1, "anon"));
    a.expect(msg("foo", 1, "anon"));
    anonymous.ping();
    anonymous.expect_nothing(QUIET);
}

// ----- async-nats helpers -------------------------------------------------------
//
// async-nats' `flush` only writes the socket; it does not wait for the server.
// The round trips below do: a client publishes a marker on a fresh subject and
// waits for it to come back. The server handles each connection's messages in
// order and queues deliveries in order, so when the marker is back, the server
// has processed everything the client sent before (its subscriptions are in
// place, its publishes delivered), and every message queued for this client
// before is already in its subscriptions' channels: [`drained`] sees them
// without waiting.

/// Markers are `sync.<n>`, unique in the test process.
fn marker() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("sync.{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A round trip on `client` through a fresh subscription (see above). Only for
/// clients whose account has no `>` subscriber, which would receive the marker.
async fn sync(client: &Client) {
    let subject = marker();
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.publish(subject, "".into()).await.unwrap();
    next(&mut sub).await;
}

/// A round trip on `client` through its `>` subscription `spy`: returns
/// `subject payload` of each message `spy` received before the marker.
async fn sync_spy(client: &Client, spy: &mut Subscriber) -> Vec<String> {
    let subject = marker();
    client.publish(subject.clone(), "".into()).await.unwrap();
    let mut before = Vec::new();
    loop {
        let m = next(spy).await;
        if m.subject.as_str() == subject {
            return before;
        }
        before.push(text(&m));
    }
}

async fn connect(server: &TestServer, user: &str, pass: &str) -> Client {
    let opts = ConnectOptions::with_user_and_password(user.into(), pass.into());
    tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

/// A subscription the server has in place.
async fn subscribe(client: &Client, subject: &str) -> Subscriber {
    let sub = client.subscribe(subject.to_string()).await.unwrap();
    sync(client).await;
    sub
}

/// A `>` subscription the server has in place, which has received nothing yet.
async fn spy(client: &Client) -> Subscriber {
    let mut all = client.subscribe(">").await.unwrap();
    assert_eq!(sync_spy(client, &mut all).await, Vec::<String>::new());
    all
}

async fn send(client: &Client, subject: &str, payload: &str) {
    client
        .publish(subject.to_string(), payload.to_string().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

async fn ask(client: &Client, subject: &str, payload: &str) -> Message {
    tokio::time::timeout(
        WAIT,
        client.request(subject.to_string(), payload.to_string().into()),
    )
    .await
    .expect("request timed out")
    .unwrap_or_else(|e| panic!("request on {subject}: {e}"))
}

/// Expects the request to fail with no responders.
async fn ask_nobody(client: &Client, subject: &str) {
    let err = tokio::time::timeout(WAIT, client.request(subject.to_string(), "x".into()))
        .await
        .expect("request timed out")
        .expect_err("a request without a responder");
    assert_eq!(
        err.kind(),
        RequestErrorKind::NoResponders,
        "{subject}: {err}"
    );
}

/// The next message, failing after a timeout or if the subscription ended.
async fn next(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within the timeout")
        .expect("subscription ended")
}

/// `subject payload` of a message.
fn text(m: &Message) -> String {
    format!("{} {}", m.subject, String::from_utf8_lossy(&m.payload))
}

/// `subject payload` of each message already in the subscription's channel.
fn drained(sub: &mut Subscriber) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(Some(m)) = tokio::task::unconstrained(sub.next()).now_or_never() {
        got.push(text(&m));
    }
    got
}

/// Answers every request on `subject` with `<prefix><payload>` until the client goes.
async fn serve(client: &Client, subject: &str, prefix: &'static str) {
    let mut requests = subscribe(client, subject).await;
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            let Some(reply) = req.reply else { continue };
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&req.payload);
            if client.publish(reply, answer.into()).await.is_err() {
                break;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_request_through_a_service_import() {
    let server = exports_server();
    let r = connect(&server, "r", "p").await;
    serve(&r, "svc.>", "from A: ").await;
    let b = connect(&server, "b", "p").await;
    let answer = ask(&b, "asvc.q", "hello").await;
    assert_eq!(&answer.payload[..], b"from A: hello");
    // B's own svc.q is not the service.
    ask_nobody(&b, "svc.q").await;
}

// ----- the tenancy patterns of tests/data/tenancy/ ------------------------------

const ONE_ACCOUNT_PER_TENANT: &str = include_str!("../data/tenancy/one-account-per-tenant.conf");
const SHARED_ACCOUNT: &str = include_str!("../data/tenancy/shared-account.conf");
const RUNTIME_ACCOUNT: &str = include_str!("../data/tenancy/runtime-account.conf");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_per_tenant_gives_each_tenant_its_own_subjects() {
    let server = TestServer::with_config(ONE_ACCOUNT_PER_TENANT, &[]);
    let acme_app = connect(&server, "acme_app", "acme_secret").await;
    let acme_ops = connect(&server, "acme_ops", "acme_secret").await;
    let globex = connect(&server, "globex_app", "globex_secret").await;
    let mut ops_orders = subscribe(&acme_ops, "orders.new").await;
    let mut globex_orders = subscribe(&globex, "orders.new").await;
    let mut globex_all = spy(&globex).await;

    // Users of one tenant share its subjects and services.
    send(&acme_app, "orders.new", "acme order").await;
    assert_eq!(text(&next(&mut ops_orders).await), "orders.new acme order");
    serve(&acme_ops, "billing.quote", "quote: ").await;
    let quote = ask(&acme_app, "billing.quote", "42").await;
    assert_eq!(&quote.payload[..], b"quote: 42");
    // The other tenant saw none of it (the answer came back, so all of it was routed).
    assert_eq!(
        sync_spy(&globex, &mut globex_all).await,
        Vec::<String>::new()
    );
    assert_eq!(drained(&mut globex_orders), Vec::<String>::new());

    // The same subject in GLOBEX is GLOBEX's own.
    send(&globex, "orders.new", "globex order").await;
    assert_eq!(
        text(&next(&mut globex_orders).await),
        "orders.new globex order"
    );
    sync(&acme_ops).await;
    assert_eq!(drained(&mut ops_orders), Vec::<String>::new());
    // ACME's service is not in GLOBEX (once GLOBEX's own `>` subscriber is gone).
    globex_all.unsubscribe().await.unwrap();
    ask_nobody(&globex, "billing.quote").await;

    // Wrong tenant, wrong password.
    let result = tokio::time::timeout(
        WAIT,
        ConnectOptions::with_user_and_password("globex_app".into(), "acme_secret".into())
            .connect(server.url()),
    )
    .await
    .expect("connect timed out");
    assert!(result.is_err(), "globex_app logged in with acme's password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_account_takes_writes_and_feeds_every_tenant() {
    let server = TestServer::with_config(SHARED_ACCOUNT, &[]);
    let board = connect(&server, "board", "board_secret").await;
    let acme = connect(&server, "acme_app", "acme_secret").await;
    let globex = connect(&server, "globex_app", "globex_secret").await;

    // The board republishes each post to the feed, and acknowledges requests.
    let mut posts = subscribe(&board, "shared.post.>").await;
    let republisher = board.clone();
    tokio::spawn(async move {
        while let Some(post) = posts.next().await {
            let topic = post.subject.trim_start_matches("shared.post.");
            let feed = format!("shared.feed.{topic}");
            if republisher
                .publish(feed, post.payload.clone())
                .await
                .is_err()
            {
                break;
            }
            if let Some(reply) = post.reply {
                let _ = republisher.publish(reply, "accepted".into()).await;
            }
        }
    });
    let mut board_posts = subscribe(&board, "shared.post.>").await;
    let mut board_feed = subscribe(&board, "shared.feed.>").await;
    let mut acme_feed = subscribe(&acme, "shared.feed.>").await;
    let mut globex_feed = subscribe(&globex, "shared.feed.>").await;
    let mut globex_posts = subscribe(&globex, "shared.post.>").await;
    let mut globex_all = spy(&globex).await;

    // ACME writes: the post arrives in SHARED, and every tenant reads it on the feed.
    send(&acme, "shared.post.news", "hello from acme").await;
    assert_eq!(
        text(&next(&mut board_posts).await),
        "shared.post.news hello from acme"
    );
    for feed in [&mut board_feed, &mut acme_feed, &mut globex_feed] {
        assert_eq!(text(&next(feed).await), "shared.feed.news hello from acme");
    }
    // GLOBEX got the feed, never ACME's post itself.
    assert_eq!(
        sync_spy(&globex, &mut globex_all).await,
        ["shared.feed.news hello from acme"]
    );
    assert_eq!(drained(&mut globex_posts), Vec::<String>::new());

    // A write as a request is acknowledged by the board.
    let ack = ask(&acme, "shared.post.jobs", "hiring").await;
    assert_eq!(&ack.payload[..], b"accepted");
    assert_eq!(
        text(&next(&mut board_posts).await),
        "shared.post.jobs hiring"
    );
    for feed in [&mut board_feed, &mut acme_feed, &mut globex_feed] {
        assert_eq!(text(&next(feed).await), "shared.feed.jobs hiring");
    }
    assert_eq!(
        sync_spy(&globex, &mut globex_all).await,
        ["shared.feed.jobs hiring"]
    );
    assert_eq!(drained(&mut globex_posts), Vec::<String>::new());

    // A tenant's own shared.feed subject is its own: neither SHARED nor GLOBEX sees it.
    send(&acme, "shared.feed.fake", "forged").await;
    assert_eq!(text(&next(&mut acme_feed).await), "shared.feed.fake forged");
    assert_eq!(
        sync_spy(&globex, &mut globex_all).await,
        Vec::<String>::new()
    );
    assert_eq!(drained(&mut globex_feed), Vec::<String>::new());
    sync(&board).await;
    assert_eq!(drained(&mut board_feed), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_account_serves_every_tenant_privately() {
    let server = TestServer::with_config(RUNTIME_ACCOUNT, &[]);
    let runtime = connect(&server, "runtime", "runtime_secret").await;
    serve(&runtime, "runtime.time", "12:00 for ").await;
    // runtime.kv.> answers with a stream: two values, then an empty message.
    let mut kv = subscribe(&runtime, "runtime.kv.>").await;
    let kv_client = runtime.clone();
    tokio::spawn(async move {
        while let Some(req) = kv.next().await {
            let Some(reply) = req.reply else { continue };
            for part in ["v1", "v2", ""] {
                if kv_client.publish(reply.clone(), part.into()).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut seen = subscribe(&runtime, "runtime.>").await;

    let acme = connect(&server, "acme_app", "acme_secret").await;
    let globex = connect(&server, "globex_app", "globex_secret").await;
    let mut globex_all = spy(&globex).await;

    // ACME calls the services, one under its own local name.
    let answer = ask(&acme, "time", "acme").await;
    assert_eq!(&answer.payload[..], b"12:00 for acme");
    let inbox = acme.new_inbox();
    let mut replies = subscribe(&acme, &inbox).await;
    acme.publish_with_reply("runtime.kv.color", inbox.clone(), "".into())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(String::from_utf8_lossy(&next(&mut replies).await.payload).into_owned());
    }
    assert_eq!(got, ["v1", "v2", ""]);
    // GLOBEX saw none of ACME's requests or answers.
    assert_eq!(
        sync_spy(&globex, &mut globex_all).await,
        Vec::<String>::new()
    );

    // RUNTIME sees the requests with `_R_` replies, never a tenant's inbox.
    for subject in ["runtime.time", "runtime.kv.color"] {
        let req = next(&mut seen).await;
        assert_eq!(req.subject.as_str(), subject);
        let reply = req.reply.expect("a reply subject");
        assert!(is_service_reply(&reply), "{reply}");
    }

    // GLOBEX calls the same service under the same local name.
    let answer = ask(&globex, "time", "globex").await;
    assert_eq!(&answer.payload[..], b"12:00 for globex");
    assert_eq!(next(&mut seen).await.subject.as_str(), "runtime.time");

    // The exported name itself leads nowhere from a tenant.
    ask_nobody(&acme, "runtime.time").await;
    sync(&runtime).await;
    assert_eq!(drained(&mut seen), Vec::<String>::new());
}
