//! TLS client connections on the real binary: async-nats over `tls://`,
//! client certificates with `verify`, and raw sockets for what goes over
//! the wire before and instead of a handshake. Certificates are made by
//! each test (rcgen), never kept in the repository.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

use tenet_tests::{write_config_file, TestServer};

const WAIT: Duration = Duration::from_secs(5);

/// A certificate authority in a directory of its own, and what it signs.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("tenet-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let ca_key = KeyPair::generate().expect("a key");
        let ca = params.self_signed(&ca_key).expect("a CA certificate");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        Pki { dir, ca, ca_key }
    }

    /// Writes a certificate for `names` and its key as `<file>.pem` and
    /// `<file>.key`; returns their paths.
    fn issue(&self, file: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, file);
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        self.sign(file, params)
    }

    /// Writes the certificate of `params` and its key as `<file>.pem` and
    /// `<file>.key`; returns their paths.
    fn sign(&self, file: &str, params: CertificateParams) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("a certificate");
        let (cert_path, key_path) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        (cert_path, key_path)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A server with `tls {}` from `pki`'s certificate for 127.0.0.1, plus `extra`
/// keys inside the block and `outside` after it.
fn tls_server(pki: &Pki, extra: &str, outside: &str) -> TestServer {
    let (cert, key) = pki.issue("server", &["localhost", "127.0.0.1"], false);
    let config = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  {extra}\n}}\n{outside}\n",
        path(&cert),
        path(&key)
    );
    TestServer::with_config(&config, &[])
}

fn options(pki: &Pki) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.ca_file())
}

async fn connect(
    server: &TestServer,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, String> {
    let url = format!("tls://127.0.0.1:{}", server.port());
    match tokio::time::timeout(WAIT, options.connect(url)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_publishes_subscribes_and_requests_over_tls() {
    let pki = Pki::new("basic");
    let server = tls_server(&pki, "", "");
    let client = connect(&server, options(&pki))
        .await
        .expect("connects over TLS");
    let mut sub = client.subscribe("tls.>").await.unwrap();
    let mut service = client.subscribe("svc").await.unwrap();
    client.flush().await.unwrap();
    // More than one TLS record's worth, to cross record boundaries.
    let big = vec![b'x'; 100_000];
    client.publish("tls.a", big.clone().into()).await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload.len(), big.len());
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(request) = service.next().await {
            if let Some(reply) = request.reply {
                responder.publish(reply, "pong".into()).await.unwrap();
            }
        }
    });
    let answer = tokio::time::timeout(WAIT, client.request("svc", "ping".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer.payload[..], b"pong");
}

#[test]
fn info_is_plaintext_and_a_client_that_does_not_upgrade_is_closed_without_an_answer() {
    let pki = Pki::new("plain");
    let server = tls_server(&pki, "", "");
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    let mut info = Vec::new();
    let mut byte = [0u8; 1];
    while !info.ends_with(b"\r\n") {
        raw.read_exact(&mut byte).unwrap();
        info.push(byte[0]);
    }
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.starts_with("INFO {") && info.contains(r#""tls_required":true"#),
        "{info}"
    );
    use std::io::Write;
    raw.write_all(b"CONNECT {}\r\nPING\r\n").unwrap();
    let mut rest = Vec::new();
    let read = raw.read_to_end(&mut rest);
    assert!(read.is_ok() || rest.is_empty(), "{read:?}");
    assert!(rest.is_empty(), "nothing but the close: {rest:?}");
}

#[test]
fn a_handshake_that_never_comes_is_closed_at_the_timeout() {
    let pki = Pki::new("timeout");
    let mut server = tls_server(&pki, "timeout: 0.5", "");
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    let start = Instant::now();
    let mut all = Vec::new();
    let _ = raw.read_to_end(&mut all);
    let waited = start.elapsed();
    assert!(String::from_utf8_lossy(&all).starts_with("INFO {"));
    assert!(
        !String::from_utf8_lossy(&all).contains("-ERR"),
        "nothing but the INFO"
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(
        server.wait_for_log("TLS handshake timeout", WAIT),
        "{}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_takes_certificates_of_the_ca_and_refuses_the_others() {
    let pki = Pki::new("verify");
    let other = Pki::new("verify-other");
    let ca = pki.ca_file();
    let mut server = tls_server(
        &pki,
        &format!("ca_file: \"{}\"\n  verify: true", path(&ca)),
        "",
    );
    let (cert, key) = pki.issue("alice", &["alice"], false);
    let client = connect(&server, options(&pki).add_client_certificate(cert, key))
        .await
        .expect("a certificate of the CA is taken");
    client.publish("x", "y".into()).await.unwrap();
    client.flush().await.unwrap();

    // Refused, with the log lines nats-server 2.9.10 writes.
    let mallory = other.issue("mallory", &["mallory"], false);
    let old = pki.issue("old", &["old"], true);
    let expired = "TLS handshake error: tls: failed to verify client certificate: x509: certificate has expired or is not yet valid: current time ";
    for (identity, logs) in [
        (None, vec!["TLS handshake error: tls: client didn't provide a certificate"]),
        (
            Some(mallory),
            vec!["TLS handshake error: tls: failed to verify client certificate: x509: certificate signed by unknown authority"],
        ),
        (Some(old), vec![expired, " is after 2001-01-01T00:00:00Z"]),
    ] {
        let options = match identity {
            Some((cert, key)) => options(&pki).add_client_certificate(cert, key),
            None => options(&pki),
        };
        assert!(connect(&server, options).await.is_err(), "{logs:?}");
        for log in logs {
            assert!(server.wait_for_log(log, WAIT), "{log}\n{}", server.logs());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_map_makes_the_certificate_the_user() {
    let pki = Pki::new("map");
    let ca = pki.ca_file();
    let server = tls_server(
        &pki,
        &format!("ca_file: \"{}\"\n  verify_and_map: true", path(&ca)),
        r#"authorization {
  users = [
    { user: "alice@example.com", permissions: { publish: "alice.>", subscribe: "_INBOX.>" } }
    { user: "CN=bob,O=acme", permissions: { publish: "bob.>", subscribe: "_INBOX.>" } }
  ]
}"#,
    );
    let alice = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![SanType::Rfc822Name("alice@example.com".try_into().unwrap())];
        pki.sign("alice", p)
    };
    let bob = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::OrganizationName, "acme");
        p.distinguished_name.push(DnType::CommonName, "bob");
        pki.sign("bob", p)
    };
    for ((cert, key), mine, theirs) in [(alice, "alice.x", "bob.x"), (bob, "bob.x", "alice.x")] {
        let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
        let client = connect(
            &server,
            options(&pki)
                .add_client_certificate(cert, key)
                .event_callback(move |event| {
                    let errors_tx = errors_tx.clone();
                    async move {
                        if let async_nats::Event::ServerError(e) = event {
                            let _ = errors_tx.send(e.to_string());
                        }
                    }
                }),
        )
        .await
        .expect("the certificate's user logs in");
        client.publish(mine, "ok".into()).await.unwrap();
        client.publish(theirs, "no".into()).await.unwrap();
        client.flush().await.unwrap();
        let error = tokio::time::timeout(WAIT, errors.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(error.contains(theirs), "{mine}: {error}");
    }
    let (cert, key) = pki.issue("nobody", &["nobody.example.com"], false);
    assert!(
        connect(&server, options(&pki).add_client_certificate(cert, key))
            .await
            .is_err(),
        "a certificate that names no user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_non_tls_takes_plaintext_and_tls_clients() {
    let pki = Pki::new("mixed");
    let server = tls_server(&pki, "", "allow_non_tls: true");
    let secure = connect(&server, options(&pki)).await.expect("TLS");
    let plain = tokio::time::timeout(WAIT, async_nats::connect(server.url()))
        .await
        .unwrap()
        .expect("plaintext");
    let mut sub = plain.subscribe("m").await.unwrap();
    plain.flush().await.unwrap();
    secure.publish("m", "across".into()).await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"across");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_flags_set_up_tls_without_a_file() {
    let pki = Pki::new("flags");
    let (cert, key) = pki.issue("server", &["127.0.0.1"], false);
    let server = TestServer::start_with_args(&["--tlscert", path(&cert), "--tlskey", path(&key)]);
    connect(&server, options(&pki))
        .await
        .expect("TLS from the flags");
}

#[test]
fn a_missing_certificate_file_stops_the_start_naming_it() {
    let config = write_config_file(
        "tls { cert_file: \"/nonexistent/server.pem\", key_file: \"/nonexistent/server.key\" }\n",
    );
    let out = std::process::Command::new(tenet_tests::server_binary())
        .args(["-t", "-c", path(&config)])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("/nonexistent/server.pem"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_gives_new_connections_the_new_certificate_and_keeps_the_old_ones() {
    let old = Pki::new("reload-old");
    let new = Pki::new("reload-new");
    let config = |pki: &Pki| {
        let (cert, key) = pki.issue("server", &["127.0.0.1"], false);
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            path(&cert),
            path(&key)
        )
    };
    let file = write_config_file(&config(&old));
    let mut server = TestServer::start_with_args(&["-c", path(&file)]);
    let before = connect(&server, options(&old))
        .await
        .expect("the old certificate");
    let mut sub = before.subscribe("still").await.unwrap();
    before.flush().await.unwrap();

    std::fs::write(&file, config(&new)).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_for_log("Reloaded server configuration", WAIT),
        "{}",
        server.logs()
    );
    let after = connect(&server, options(&new))
        .await
        .expect("the new certificate");
    assert!(
        connect(&server, options(&old)).await.is_err(),
        "a client trusting only the old CA"
    );
    after.publish("still", "up".into()).await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"up", "the old connection stays");
}

/// nats-py over TLS: a subscription, a publish and a request.
const NATS_PY_TLS: &str = r#"
import asyncio, ssl, sys
import nats

async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    nc = await nats.connect(sys.argv[1], tls=ctx, connect_timeout=5)
    got = asyncio.get_running_loop().create_future()
    async def on_msg(msg):
        if not got.done():
            got.set_result(msg.data)
    await nc.subscribe("py.tls", cb=on_msg)
    async def on_request(msg):
        await msg.respond(b"pong")
    await nc.subscribe("py.svc", cb=on_request)
    await nc.flush()
    await nc.publish("py.tls", b"secret")
    print("got", (await asyncio.wait_for(got, 5)).decode())
    answer = await nc.request("py.svc", b"ping", timeout=5)
    print("answer", answer.data.decode())
    await nc.close()

asyncio.run(main())
"#;

#[test]
fn nats_py_talks_over_tls() {
    let pki = Pki::new("py");
    let server = tls_server(&pki, "", "");
    let url = format!("tls://127.0.0.1:{}", server.port());
    let out = tenet_tests::nats_py(NATS_PY_TLS, &[&url, path(&pki.ca_file())]);
    assert_eq!(out, "got secret\nanswer pong\n");
}

/// A GET over HTTPS to `127.0.0.1:port`, trusting `pki`; the response.
fn https_get(pki: &Pki, port: u16, target: &str) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::Write;
    let pem = std::fs::read(pki.ca_file()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        tenet_core::tls::crypto_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // The server ends with close_notify (or a plain close, as Go's may).
    let _ = tls.read_to_end(&mut response);
    String::from_utf8(response).map_err(|e| e.to_string())
}

#[test]
fn monitoring_is_served_over_https() {
    let pki = Pki::new("https");
    let port = tenet_tests::free_port();
    let server = tls_server(&pki, "", &format!("https: \"127.0.0.1:{port}\""));
    let mut response = Err(String::new());
    for _ in 0..50 {
        response = https_get(&pki, port, "/varz");
        if response.as_ref().is_ok_and(|r| !r.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let response = response.expect("an answer over HTTPS");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let body = &response[response.find("\r\n\r\n").expect("a header") + 4..];
    let varz: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(varz["https_port"], port);
    assert_eq!(varz["http_port"], 0);
    assert_eq!(varz["tls_required"], true);
    assert_eq!(varz["port"], server.port());
    // Plain HTTP on the HTTPS port gets no monitoring answer.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    use std::io::Write;
    raw.write_all(b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("server_id"));
}

#[test]
fn https_needs_the_tls_block_and_no_http_port() {
    // `-t` calls both files valid; the start refuses them, as nats-server.
    for (config, why) in [
        ("https_port: 8443\n", "TLS cert and key required for HTTPS"),
        (
            "http_port: 8222\nhttps_port: 8443\n",
            "can't specify both HTTP (8222) and HTTPs (8443) ports",
        ),
    ] {
        let file = write_config_file(config);
        let (status, text) = tenet_tests::run_binary(&["-t", "-c", path(&file)]);
        assert!(status.success(), "{text}");
        let (status, text) = tenet_tests::run_binary(&["-c", path(&file)]);
        assert!(!status.success(), "{text}");
        assert!(
            text.contains(&format!("Can't start monitoring: {why}")),
            "{text}"
        );
    }
}
