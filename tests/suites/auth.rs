//! Authentication (reference §1.1, §1.5, §3.1): user/password (plain and bcrypt),
//! tokens, users lists, the `--user`/`--pass`/`--auth` flags, nkey users and the
//! INFO `nonce`, `no_auth_user`, the auth timeout, and the exact `-ERR` and close
//! of every failure. Raw TCP for the bytes, async-nats for what users see.

use std::time::{Duration, Instant};

use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use futures::StreamExt;
use nkeys::KeyPair;
use serde_json::Value;
use tenet_tests::{is_reference_server, RawClient, TestServer};

const WAIT: Duration = Duration::from_secs(5);
const AUTH_VIOLATION: &[u8] = b"-ERR 'Authorization Violation'\r\n";
const AUTH_TIMEOUT: &[u8] = b"-ERR 'Authentication Timeout'\r\n";
/// One user with a plain password.
const SINGLE_USER: &str = "authorization { user: derek, password: s3cr3t }";

/// A CONNECT as real clients send it (verbose and pedantic off, protocol 1) with
/// `extra` JSON members appended, e.g. `"user":"a","pass":"b"`.
fn connect_line(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1{sep}{extra}}}\r\n")
}

/// A client whose CONNECT with `extra` is accepted (PING/PONG completes).
fn accepted(server: &TestServer, extra: &str) -> RawClient {
    let mut c = server.client();
    c.send(connect_line(extra));
    c.ping();
    c
}

/// A CONNECT with `extra` gets exactly `-ERR 'Authorization Violation'`, then the close.
fn refused(server: &TestServer, extra: &str) {
    let mut c = server.client();
    c.send(connect_line(extra));
    c.expect(AUTH_VIOLATION);
    c.expect_closed();
}

/// The authenticated connection can subscribe and publish to itself.
fn round_trip(c: &mut RawClient) {
    c.send(b"SUB auth.check 1\r\nPUB auth.check 2\r\nhi\r\nPING\r\n");
    c.expect(b"MSG auth.check 1 2\r\nhi\r\nPONG\r\n");
}

fn is_true(info: &Value, key: &str) -> bool {
    info.get(key).and_then(Value::as_bool) == Some(true)
}

/// Connects with async-nats, bounded by a timeout.
async fn try_connect(
    server: &TestServer,
    opts: ConnectOptions,
) -> Result<Client, ConnectErrorKind> {
    tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .map_err(|e| e.kind())
}

/// async-nats connects, and a message goes through the server and back.
async fn assert_async_round_trip(server: &TestServer, opts: ConnectOptions) {
    let client = try_connect(server, opts).await.expect("connect");
    let mut sub = client.subscribe("auth.async").await.unwrap();
    client.publish("auth.async", "hi".into()).await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within the timeout")
        .expect("subscription ended");
    assert_eq!(&msg.payload[..], b"hi");
}

/// async-nats' connect fails with the authorization-violation error.
async fn assert_async_refused(server: &TestServer, opts: ConnectOptions) {
    match try_connect(server, opts).await {
        Ok(_) => panic!("the connection was accepted"),
        Err(kind) => assert_eq!(kind, ConnectErrorKind::AuthorizationViolation),
    }
}

// ----- INFO -------------------------------------------------------------------

#[test]
fn info_says_auth_required_and_has_no_nonce_without_nkeys() {
    for config in [
        SINGLE_USER,
        "authorization { token: t0k3n }",
        "authorization { users = [ {user: a, password: b} ] }",
    ] {
        let server = TestServer::with_config(config, &[]);
        let c = server.client();
        assert!(is_true(c.info(), "auth_required"), "{config}: {}", c.info());
        assert!(c.info().get("nonce").is_none(), "{config}: {}", c.info());
    }
}

#[test]
fn info_without_authorization_does_not_require_auth() {
    let server = TestServer::start();
    let c = server.client();
    assert!(!is_true(c.info(), "auth_required"), "{}", c.info());
    assert!(c.info().get("nonce").is_none(), "{}", c.info());
}

// ----- user and password ------------------------------------------------------

#[test]
fn plain_user_and_password() {
    let server = TestServer::with_config(SINGLE_USER, &[]);
    let mut c = accepted(&server, r#""user":"derek","pass":"s3cr3t""#);
    round_trip(&mut c);
    refused(&server, r#""user":"derek","pass":"wrong""#);
    refused(&server, r#""user":"derek","pass":"S3cr3t""#);
    refused(&server, r#""user":"derek","pass":"""#);
    refused(&server, r#""user":"derek""#);
    refused(&server, r#""user":"other","pass":"s3cr3t""#);
    refused(&server, r#""pass":"s3cr3t""#);
    refused(&server, r#""auth_token":"s3cr3t""#);
    refused(&server, "");
}

#[test]
fn bcrypt_password() {
    let hash = bcrypt::hash("s3cr3t", 4).expect("bcrypt");
    let server = TestServer::with_config(
        &format!("authorization {{ user: derek, password: \"{hash}\" }}"),
        &[],
    );
    let mut c = accepted(&server, r#""user":"derek","pass":"s3cr3t""#);
    round_trip(&mut c);
    refused(&server, r#""user":"derek","pass":"wrong""#);
    // The hash itself is not the password.
    refused(&server, &format!(r#""user":"derek","pass":"{hash}""#));
}

#[test]
fn users_list_with_plain_and_bcrypt_passwords() {
    let hash = bcrypt::hash("bob-pass", 4).expect("bcrypt");
    let server = TestServer::with_config(
        &format!(
            "authorization {{ users = [\n  {{user: alice, password: alice-pass}}\n  \
             {{user: bob, password: \"{hash}\"}}\n] }}"
        ),
        &[],
    );
    round_trip(&mut accepted(
        &server,
        r#""user":"alice","pass":"alice-pass""#,
    ));
    round_trip(&mut accepted(&server, r#""user":"bob","pass":"bob-pass""#));
    refused(&server, r#""user":"alice","pass":"bob-pass""#);
    refused(&server, r#""user":"bob","pass":"alice-pass""#);
    refused(&server, &format!(r#""user":"bob","pass":"{hash}""#));
    refused(&server, r#""user":"carol","pass":"alice-pass""#);
    refused(&server, "");
}

#[test]
fn password_variable_inside_authorization_is_not_a_login() {
    // Keys are case-insensitive, so `PASS` (meant as a variable, as in the docs'
    // example) is also the block's `pass`; beside a users list nats-server
    // accepts the file and ignores it: a password alone logs nobody in.
    let server = TestServer::with_config(
        "authorization {\n  PASS: abc123\n  users = [ {user: joe, password: $PASS} ]\n}\n",
        &[],
    );
    round_trip(&mut accepted(&server, r#""user":"joe","pass":"abc123""#));
    refused(&server, r#""pass":"abc123""#);
    refused(&server, r#""user":"","pass":"abc123""#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_with_async_nats() {
    let hash = bcrypt::hash("bob-pass", 4).expect("bcrypt");
    let server = TestServer::with_config(
        &format!(
            "authorization {{ users = [ {{user: alice, password: alice-pass}}, \
             {{user: bob, password: \"{hash}\"}} ] }}"
        ),
        &[],
    );
    let with = |u: &str, p: &str| ConnectOptions::with_user_and_password(u.into(), p.into());
    assert_async_round_trip(&server, with("alice", "alice-pass")).await;
    assert_async_round_trip(&server, with("bob", "bob-pass")).await;
    assert_async_refused(&server, with("alice", "nope")).await;
    assert_async_refused(&server, with("bob", &hash)).await;
    assert_async_refused(&server, ConnectOptions::new()).await;
}

// ----- tokens -----------------------------------------------------------------

#[test]
fn token() {
    let server = TestServer::with_config("authorization { token: \"s3cr3t-t0k3n\" }", &[]);
    let mut c = accepted(&server, r#""auth_token":"s3cr3t-t0k3n""#);
    round_trip(&mut c);
    refused(&server, r#""auth_token":"s3cr3t""#);
    refused(&server, r#""auth_token":"""#);
    refused(&server, r#""user":"s3cr3t-t0k3n""#);
    refused(&server, r#""user":"x","pass":"s3cr3t-t0k3n""#);
    refused(&server, "");
}

#[test]
fn bcrypt_token() {
    let hash = bcrypt::hash("s3cr3t-t0k3n", 4).expect("bcrypt");
    let server = TestServer::with_config(&format!("authorization {{ token: \"{hash}\" }}"), &[]);
    round_trip(&mut accepted(&server, r#""auth_token":"s3cr3t-t0k3n""#));
    refused(&server, r#""auth_token":"wrong""#);
    refused(&server, &format!(r#""auth_token":"{hash}""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_async_nats() {
    let server = TestServer::with_config("authorization { token: \"s3cr3t-t0k3n\" }", &[]);
    assert_async_round_trip(&server, ConnectOptions::with_token("s3cr3t-t0k3n".into())).await;
    assert_async_refused(&server, ConnectOptions::with_token("s3cr3t".into())).await;
    assert_async_refused(&server, ConnectOptions::new()).await;
}

// ----- command-line flags -----------------------------------------------------

#[test]
fn user_and_pass_flags() {
    let server = TestServer::start_with_args(&["--user", "derek", "--pass", "s3cr3t"]);
    let mut c = accepted(&server, r#""user":"derek","pass":"s3cr3t""#);
    assert!(is_true(c.info(), "auth_required"), "{}", c.info());
    round_trip(&mut c);
    refused(&server, r#""user":"derek","pass":"wrong""#);
    refused(&server, "");
}

#[test]
fn auth_token_flag() {
    let server = TestServer::start_with_args(&["--auth", "t0k3n"]);
    let mut c = accepted(&server, r#""auth_token":"t0k3n""#);
    assert!(is_true(c.info(), "auth_required"), "{}", c.info());
    round_trip(&mut c);
    refused(&server, r#""auth_token":"t0k3""#);
    refused(&server, "");
}

// ----- nkeys ------------------------------------------------------------------

/// A server whose only user is the nkey `public`.
fn nkey_server(public: &str) -> TestServer {
    TestServer::with_config(
        &format!("authorization {{ users = [ {{nkey: \"{public}\"}} ] }}"),
        &[],
    )
}

/// The nonce of a fresh connection's INFO.
fn nonce_of(c: &RawClient) -> String {
    let nonce = c.info()["nonce"]
        .as_str()
        .unwrap_or_else(|| panic!("INFO has no nonce: {}", c.info()));
    // 11 random bytes as unpadded base64url (reference §0).
    assert!(
        nonce.len() == 15
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "nonce {nonce:?} is not 15 base64url characters"
    );
    nonce.to_string()
}

#[test]
fn nkey_user_signs_the_nonce() {
    let user = KeyPair::new_user();
    let public = user.public_key();
    let server = nkey_server(&public);

    let mut c = server.client();
    assert!(is_true(c.info(), "auth_required"), "{}", c.info());
    let nonce = nonce_of(&c);
    let sig = URL_SAFE_NO_PAD.encode(user.sign(nonce.as_bytes()).unwrap());
    c.send(connect_line(&format!(r#""nkey":"{public}","sig":"{sig}""#)));
    c.ping();
    round_trip(&mut c);

    // Standard base64 (with padding) is accepted too.
    let mut c = server.client();
    let sig = STANDARD.encode(user.sign(nonce_of(&c).as_bytes()).unwrap());
    c.send(connect_line(&format!(r#""nkey":"{public}","sig":"{sig}""#)));
    c.ping();
}

#[test]
fn nkey_failures_are_authorization_violations() {
    let user = KeyPair::new_user();
    let public = user.public_key();
    let server = nkey_server(&public);

    // Every connection gets its own nonce.
    let first = server.client();
    let second = server.client();
    assert_ne!(nonce_of(&first), nonce_of(&second));

    // A signature of another connection's nonce (a replay).
    let old = URL_SAFE_NO_PAD.encode(user.sign(nonce_of(&first).as_bytes()).unwrap());
    let mut c = server.client();
    c.send(connect_line(&format!(r#""nkey":"{public}","sig":"{old}""#)));
    c.expect(AUTH_VIOLATION);
    c.expect_closed();

    // Signed by another key.
    let other = KeyPair::new_user();
    let mut c = server.client();
    let sig = URL_SAFE_NO_PAD.encode(other.sign(nonce_of(&c).as_bytes()).unwrap());
    c.send(connect_line(&format!(r#""nkey":"{public}","sig":"{sig}""#)));
    c.expect(AUTH_VIOLATION);
    c.expect_closed();

    // An unknown nkey with a correct signature of its own.
    let mut c = server.client();
    let sig = URL_SAFE_NO_PAD.encode(other.sign(nonce_of(&c).as_bytes()).unwrap());
    let unknown = other.public_key();
    c.send(connect_line(&format!(
        r#""nkey":"{unknown}","sig":"{sig}""#
    )));
    c.expect(AUTH_VIOLATION);
    c.expect_closed();

    // No signature, garbage signature, no credentials.
    refused(&server, &format!(r#""nkey":"{public}""#));
    refused(
        &server,
        &format!(r#""nkey":"{public}","sig":"not-a-signature""#),
    );
    refused(&server, "");
}

#[test]
fn nonce_only_when_nkey_users_exist_and_passwords_still_work_beside_them() {
    let user = KeyPair::new_user();
    let public = user.public_key();
    let server = TestServer::with_config(
        &format!(
            "authorization {{ users = [ {{user: alice, password: pw}}, {{nkey: \"{public}\"}} ] }}"
        ),
        &[],
    );
    let mut c = accepted(&server, r#""user":"alice","pass":"pw""#);
    nonce_of(&c);
    round_trip(&mut c);
    refused(&server, r#""user":"alice","pass":"wrong""#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_with_async_nats() {
    let user = KeyPair::new_user();
    let server = nkey_server(&user.public_key());
    let seed = user.seed().unwrap();
    assert_async_round_trip(&server, ConnectOptions::with_nkey(seed)).await;
    let stranger = KeyPair::new_user().seed().unwrap();
    assert_async_refused(&server, ConnectOptions::with_nkey(stranger)).await;
    assert_async_refused(&server, ConnectOptions::new()).await;
}

// ----- no_auth_user -----------------------------------------------------------

const NO_AUTH_USER: &str = "authorization { users = [\n  \
    {user: visitor, password: v, permissions: {publish: \"public.>\", subscribe: \"public.>\"}}\n  \
    {user: admin, password: a}\n] }\nno_auth_user: visitor\n";

#[test]
fn no_auth_user_info_does_not_require_auth() {
    let server = TestServer::with_config(NO_AUTH_USER, &[]);
    let c = server.client();
    // nats-server 2.9.10 leaves the key out; false would mean the same.
    assert!(!is_true(c.info(), "auth_required"), "{}", c.info());
    assert!(c.info().get("nonce").is_none(), "{}", c.info());
}

#[test]
fn no_credentials_get_the_no_auth_users_permissions() {
    let server = TestServer::with_config(NO_AUTH_USER, &[]);
    let mut c = accepted(&server, "");
    c.send(b"SUB public.news 1\r\nSUB private 2\r\nPUB public.news 3\r\nhey\r\nPUB private 3\r\nhey\r\nPING\r\n");
    c.expect(
        b"-ERR 'Permissions Violation for Subscription to \"private\"'\r\n\
          MSG public.news 1 3\r\nhey\r\n\
          -ERR 'Permissions Violation for Publish to \"private\"'\r\n\
          PONG\r\n",
    );
}

#[test]
fn no_auth_user_allows_operations_before_connect() {
    let server = TestServer::with_config(NO_AUTH_USER, &[]);
    let mut c = server.client();
    // No CONNECT: the defaults (verbose on) apply, as the visitor.
    c.send(b"SUB public.a 1\r\nPUB private 1\r\nx\r\nPUB public.a 1\r\ny\r\nPING\r\n");
    c.expect(
        b"+OK\r\n\
          -ERR 'Permissions Violation for Publish to \"private\"'\r\n\
          +OK\r\nMSG public.a 1 1\r\ny\r\n\
          PONG\r\n",
    );
}

#[test]
fn no_auth_user_does_not_cover_wrong_credentials() {
    let server = TestServer::with_config(NO_AUTH_USER, &[]);
    refused(&server, r#""user":"visitor","pass":"wrong""#);
    refused(&server, r#""user":"admin","pass":"v""#);
    refused(&server, r#""user":"nobody","pass":"x""#);
    // The other user, with its own (unrestricted) permissions.
    let mut c = accepted(&server, r#""user":"admin","pass":"a""#);
    c.send(b"SUB private 1\r\nPUB private 2\r\nok\r\nPING\r\n");
    c.expect(b"MSG private 1 2\r\nok\r\nPONG\r\n");
}

// ----- first operation, account field ----------------------------------------

#[test]
fn first_operation_must_be_connect() {
    for first in [
        &b"PING\r\n"[..],
        b"PUB foo 2\r\nhi\r\n",
        b"SUB foo 1\r\n",
        b"UNSUB 1\r\n",
    ] {
        let server = TestServer::with_config(SINGLE_USER, &[]);
        let mut c = server.client();
        c.send(first);
        c.expect(AUTH_VIOLATION);
        c.expect_closed();
    }
}

#[test]
fn connect_with_an_account_field_is_refused() {
    let server = TestServer::with_config(SINGLE_USER, &[]);
    refused(&server, r#""user":"derek","pass":"s3cr3t","account":"$G""#);
    // Also without any authorization configured.
    let server = TestServer::start();
    refused(&server, r#""account":"$G""#);
}

// ----- auth timeout -----------------------------------------------------------

/// Connects, sends `first` (maybe nothing) and measures how long until the
/// `Authentication Timeout` error, which must be followed by the close.
fn time_until_auth_timeout(server: &TestServer, first: &[u8]) -> Duration {
    let started = Instant::now();
    let mut c = server.client();
    if !first.is_empty() {
        c.send(first);
    }
    c.expect(AUTH_TIMEOUT);
    let took = started.elapsed();
    c.expect_closed();
    took
}

fn assert_between(took: Duration, low_ms: u64, high_ms: u64) {
    assert!(
        took >= Duration::from_millis(low_ms) && took < Duration::from_millis(high_ms),
        "timed out after {took:?}, expected {low_ms}..{high_ms} ms"
    );
}

#[test]
fn auth_timeout_in_seconds() {
    let server = TestServer::with_config(
        "authorization { user: derek, password: s3cr3t, timeout: 0.5 }",
        &[],
    );
    assert_between(time_until_auth_timeout(&server, b""), 450, 1500);
    // A CONNECT that never ends does not stop the timer.
    assert_between(
        time_until_auth_timeout(&server, b"CONNECT {\"user\""),
        450,
        1500,
    );
}

#[test]
fn auth_timeout_as_a_duration_string() {
    let server = TestServer::with_config("authorization { token: t0k3n, timeout: \"300ms\" }", &[]);
    let took = time_until_auth_timeout(&server, b"");
    if is_reference_server() {
        // nats-server 2.9.10 reads any string here as 1 second; newer
        // versions (and tenet) read it as a duration.
        assert_between(took, 950, 1800);
    } else {
        assert_between(took, 250, 900);
    }
}

#[test]
fn authenticated_clients_outlive_the_auth_timeout() {
    let server = TestServer::with_config(
        "authorization { user: derek, password: s3cr3t, timeout: 0.3 }",
        &[],
    );
    let mut c = accepted(&server, r#""user":"derek","pass":"s3cr3t""#);
    c.expect_nothing(Duration::from_millis(600));
    round_trip(&mut c);
}
