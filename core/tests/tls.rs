//! TLS client connections through the engine on the fake clock: a rustls
//! client in memory, certificates made by each test.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use support::Sim;
use tenet_core::config::MapResolver;
use tenet_core::{ClientId, CloseReason, Peer, Server};

/// A certificate authority and what it signs.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A certificate for `names` (DNS names), as (PEM chain, PEM key).
    fn issue(&self, names: &[&str], expired: bool) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "tenet test");
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        self.sign(params)
    }

    /// A certificate of `params`, as (PEM chain, PEM key).
    fn sign(&self, params: CertificateParams) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A server configured by `block` (a `tls {}` block and more), with the
/// files it names held in memory.
fn server(conf: &str, files: &[(&str, &str)]) -> Server {
    let (mut opts, auth) = support::config(conf);
    let resolver = MapResolver(
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    );
    opts.tls
        .as_mut()
        .expect("a tls block")
        .load_files(&resolver)
        .expect("the TLS files work");
    Server::with_auth(opts, auth, 1)
}

const TLS_CONF: &str = r#"tls { cert_file: "server.pem", key_file: "server.key" }"#;

/// A server with TLS from CA `ca`'s certificate for localhost.
fn tls_server(ca: &Ca, extra: &str) -> Sim {
    let (cert, key) = ca.issue(&["localhost"], false);
    let conf = format!("{TLS_CONF}\n{extra}");
    Sim::with_server(server(
        &conf,
        &[("server.pem", &cert), ("server.key", &key)],
    ))
}

/// A rustls client trusting `ca`, with an optional client certificate.
fn tls_client(ca: &Ca, identity: Option<(String, String)>) -> ClientConnection {
    tls_client_with(ca, identity, tenet_core::tls::crypto_provider(), false)
}

/// [`tls_client`] with its cryptography (and only TLS 1.2 if `tls12`).
fn tls_client_with(
    ca: &Ca,
    identity: Option<(String, String)>,
    provider: rustls::crypto::CryptoProvider,
    tls12: bool,
) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider));
    let builder = if tls12 {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("localhost").unwrap();
    ClientConnection::new(Arc::new(config), name).unwrap()
}

/// Fails unless a log line ends with `ending`.
fn assert_logged(sim: &Sim, ending: &str) {
    assert!(
        sim.logs.iter().any(|l| l.ends_with(ending)),
        "no log line ends with {ending:?}: {:?}",
        sim.logs
    );
}

/// Accepts a connection and returns it with the plaintext INFO it got.
fn accept(sim: &mut Sim) -> (ClientId, String) {
    let id = sim.server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        sim.now,
    );
    sim.pump();
    (id, sim.take_str(id))
}

/// Runs the handshake, each flight of the client's bytes cut into pieces
/// at `cuts` (offsets, wrapped to the flight's length).
fn handshake(sim: &mut Sim, id: ClientId, client: &mut ClientConnection, cuts: &[usize]) {
    for _ in 0..10 {
        let mut flight = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut flight).unwrap();
        }
        // The client's last flight (its Finished) ends the server's side.
        send_cut(sim, id, &flight, cuts);
        if !client.is_handshaking() {
            return;
        }
        let answer = sim.take(id);
        client.read_tls(&mut &answer[..]).unwrap();
        client.process_new_packets().unwrap();
    }
    panic!("the handshake did not finish");
}

fn send_cut(sim: &mut Sim, id: ClientId, bytes: &[u8], cuts: &[usize]) {
    let mut at = 0;
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() })
        .collect();
    points.sort_unstable();
    for point in points.into_iter().chain([bytes.len()]) {
        if point > at {
            sim.send(id, &bytes[at..point]);
            at = point;
        }
    }
}

/// Sends `text` through the session and returns what came back, decrypted.
fn exchange(sim: &mut Sim, id: ClientId, client: &mut ClientConnection, text: &str) -> String {
    client.writer().write_all(text.as_bytes()).unwrap();
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    sim.send(id, &wire);
    let answer = sim.take(id);
    let mut input = &answer[..];
    while !input.is_empty() {
        client.read_tls(&mut input).unwrap();
        client.process_new_packets().unwrap();
    }
    let mut plain = Vec::new();
    let _ = client.reader().read_to_end(&mut plain);
    String::from_utf8(plain).unwrap()
}

#[test]
fn info_goes_out_in_plaintext_then_the_protocol_runs_over_tls() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "");
    let (id, info) = accept(&mut sim);
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains(r#""tls_required":true"#), "{info}");
    assert!(!info.contains("tls_verify") && !info.contains("tls_available"));
    let mut client = tls_client(&ca, None);
    handshake(&mut sim, id, &mut client, &[]);
    let got = exchange(
        &mut sim,
        id,
        &mut client,
        "CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 5\r\nhello\r\nPING\r\n",
    );
    assert_eq!(got, "MSG a 1 5\r\nhello\r\nPONG\r\n");
    assert!(sim.closed.is_empty());
}

#[test]
fn a_handshake_that_does_not_finish_in_time_is_closed_with_nothing_sent() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "");
    let (id, _) = accept(&mut sim);
    // The client starts, then goes quiet.
    let mut client = tls_client(&ca, None);
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    sim.send(id, &hello[..10]);
    sim.advance(Duration::from_millis(1_999));
    assert!(sim.closed.is_empty());
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
    assert!(sim.take(id).is_empty(), "nothing after the INFO");
    assert_logged(&sim, "TLS handshake timeout");
}

#[test]
fn the_timeout_is_configurable() {
    let ca = Ca::new("test CA");
    let (cert, key) = ca.issue(&["localhost"], false);
    let conf = r#"tls { cert_file: "server.pem", key_file: "server.key", timeout: 0.5 }"#;
    let mut sim = Sim::with_server(server(conf, &[("server.pem", &cert), ("server.key", &key)]));
    let (id, _) = accept(&mut sim);
    sim.advance(Duration::from_millis(500));
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
}

#[test]
fn the_login_may_take_the_handshake_timeout_and_a_second_more_after_the_handshake() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "authorization { user: u, password: p }");
    let (id, _) = accept(&mut sim);
    sim.advance(Duration::from_millis(1_500));
    let mut client = tls_client(&ca, None);
    handshake(&mut sim, id, &mut client, &[]);
    sim.advance(Duration::from_millis(2_999));
    assert!(
        sim.closed.is_empty(),
        "2 s + 1 s from the handshake: {:?} {:?}",
        sim.closed,
        sim.logs
    );
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::AuthenticationTimeout)
    );
}

#[test]
fn a_plaintext_client_on_a_tls_port_is_closed_without_an_answer() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "");
    let (id, _) = accept(&mut sim);
    sim.send(id, b"CONNECT {}\r\nPING\r\n");
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
    assert!(sim.take(id).is_empty());
    assert_logged(
        &sim,
        "TLS handshake error: tls: first record does not look like a TLS handshake",
    );
}

#[test]
fn allow_non_tls_takes_both_kinds_of_client() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "allow_non_tls: true");
    let (plain, info) = accept(&mut sim);
    assert!(info.contains(r#""tls_available":true"#), "{info}");
    assert!(!info.contains("tls_required"), "{info}");
    sim.send(plain, b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(sim.take_str(plain), "PONG\r\n");

    let (secure, _) = accept(&mut sim);
    let mut client = tls_client(&ca, None);
    handshake(&mut sim, secure, &mut client, &[]);
    let got = exchange(&mut sim, secure, &mut client, "CONNECT {}\r\nPING\r\n");
    assert_eq!(got, "+OK\r\nPONG\r\n");
}

#[test]
fn verify_requires_a_certificate_of_the_ca() {
    let ca = Ca::new("test CA");
    let other = Ca::new("another CA");
    let (cert, key) = ca.issue(&["localhost"], false);
    let conf = r#"tls { cert_file: "server.pem", key_file: "server.key", ca_file: "ca.pem", verify: true }"#;
    let ca_pem = ca.pem();
    let files = [
        ("server.pem", &*cert),
        ("server.key", &*key),
        ("ca.pem", &*ca_pem),
    ];
    let mut sim = Sim::with_server(server(conf, &files));

    let (id, info) = accept(&mut sim);
    assert!(info.contains(r#""tls_verify":true"#), "{info}");
    let alice = ca.issue(&["alice"], false);
    let alice_der = CertificateDer::from_pem_slice(alice.0.as_bytes()).unwrap();
    let mut client = tls_client(&ca, Some(alice));
    handshake(&mut sim, id, &mut client, &[]);
    assert_eq!(
        exchange(&mut sim, id, &mut client, "CONNECT {}\r\nPING\r\n"),
        "+OK\r\nPONG\r\n"
    );
    // `/connz?auth=1` lists the client's certificate as nats-server does.
    let host = tenet_core::MonitorHost {
        unix_nanos: 1_700_000_000_000_000_000,
        mem: 0,
        cpu: 0.0,
        cores: 1,
    };
    let connz = |sim: &mut Sim, query: &str| -> serde_json::Value {
        serde_json::from_str(&sim.server.monitor("/connz", query, sim.now, &host).body).unwrap()
    };
    let listed = connz(&mut sim, "auth=1");
    let certs = &listed["connections"][0]["tls_peer_certs"];
    let hex = |bytes: &[u8]| -> String {
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(certs[0]["subject"], "CN=tenet test", "{listed}");
    assert_eq!(certs[0]["cert_sha256"], hex(&alice_der), "{listed}");
    assert_eq!(certs[0]["spki_sha256"].as_str().unwrap().len(), 64);
    assert!(connz(&mut sim, "")
        .to_string()
        .find("tls_peer_certs")
        .is_none());

    for (identity, log) in [
        (None, "TLS handshake error: tls: client didn't provide a certificate"),
        (
            Some(other.issue(&["mallory"], false)),
            "TLS handshake error: tls: failed to verify client certificate: x509: certificate signed by unknown authority",
        ),
        (Some(ca.issue(&["old"], true)), " is after 2001-01-01T00:00:00Z"),
    ] {
        let (id, _) = accept(&mut sim);
        let mut client = tls_client(&ca, identity);
        assert!(!try_handshake(&mut sim, id, &mut client), "{log}");
        assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
        assert_logged(&sim, log);
    }
}

#[test]
fn verify_and_map_logs_the_certificate_in_as_the_user_it_names() {
    let ca = Ca::new("test CA");
    let (cert, key) = ca.issue(&["localhost"], false);
    let conf = r#"
        tls { cert_file: "server.pem", key_file: "server.key", ca_file: "ca.pem", verify_and_map: true }
        authorization {
            users = [
                { user: "alice@example.com", permissions: { publish: "alice.>" } }
                { user: "CN=bob,O=acme", permissions: { publish: "bob.>" } }
                { user: "carol.example.com", password: "not used" }
            ]
        }
    "#;
    let ca_pem = ca.pem();
    let files = [
        ("server.pem", &*cert),
        ("server.key", &*key),
        ("ca.pem", &*ca_pem),
    ];
    let mut sim = Sim::with_server(server(conf, &files));

    let email = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![SanType::Rfc822Name("alice@example.com".try_into().unwrap())];
        p.distinguished_name.push(DnType::CommonName, "whoever");
        ca.sign(p)
    };
    // The subject is compared as a distinguished name.
    let dn = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::OrganizationName, "acme");
        p.distinguished_name.push(DnType::CommonName, "bob");
        ca.sign(p)
    };
    let dns = ca.issue(&["carol.example.com"], false);
    let nobody = ca.issue(&["nobody.example.com"], false);

    // Whatever the CONNECT says, the certificate decides.
    let connect =
        "CONNECT {\"verbose\":false,\"user\":\"carol.example.com\",\"pass\":\"not used\"}\r\n";
    for (identity, allowed, denied) in [(email, "alice.x", "bob.x"), (dn, "bob.x", "alice.x")] {
        let (id, _) = accept(&mut sim);
        let mut client = tls_client(&ca, Some(identity));
        handshake(&mut sim, id, &mut client, &[]);
        let got = exchange(
            &mut sim,
            id,
            &mut client,
            &format!("{connect}PUB {allowed} 0\r\n\r\nPUB {denied} 0\r\n\r\nPING\r\n"),
        );
        assert_eq!(
            got,
            format!("-ERR 'Permissions Violation for Publish to \"{denied}\"'\r\nPONG\r\n")
        );
    }
    let (id, _) = accept(&mut sim);
    let mut client = tls_client(&ca, Some(dns));
    handshake(&mut sim, id, &mut client, &[]);
    assert_eq!(
        exchange(&mut sim, id, &mut client, &format!("{connect}PING\r\n")),
        "PONG\r\n"
    );

    let (id, _) = accept(&mut sim);
    let mut client = tls_client(&ca, Some(nobody));
    handshake(&mut sim, id, &mut client, &[]);
    assert_eq!(
        exchange(&mut sim, id, &mut client, &format!("{connect}PING\r\n")),
        "-ERR 'Authorization Violation'\r\n"
    );
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::AuthenticationViolation)
    );
}

#[test]
fn monitoring_shows_the_tls_settings_and_each_connections_version_and_suite() {
    let ca = Ca::new("test CA");
    let mut sim = tls_server(&ca, "");
    let get = |sim: &mut Sim, path: &str, query: &str| -> serde_json::Value {
        let host = tenet_core::MonitorHost {
            unix_nanos: 1_700_000_000_000_000_000,
            mem: 0,
            cpu: 0.0,
            cores: 1,
        };
        let r = sim.server.monitor(path, query, sim.now, &host);
        serde_json::from_str(&r.body).unwrap()
    };
    let varz = get(&mut sim, "/varz", "");
    assert_eq!(varz["tls_required"], true);
    assert_eq!(varz["tls_timeout"], 2.0);
    assert!(varz.get("tls_verify").is_none());
    let (id, _) = accept(&mut sim);
    let mut client = tls_client(&ca, None);
    handshake(&mut sim, id, &mut client, &[]);
    exchange(&mut sim, id, &mut client, "CONNECT {}\r\nPING\r\n");
    let connz = get(&mut sim, "/connz", "");
    let conn = &connz["connections"][0];
    assert_eq!(conn["tls_version"], "1.3");
    assert!(
        conn["tls_cipher_suite"]
            .as_str()
            .unwrap()
            .starts_with("TLS_"),
        "{conn}"
    );
    sim.disconnect(id);
    let closed = get(&mut sim, "/connz", "state=closed");
    let conn = &closed["connections"][0];
    assert_eq!(conn["tls_version"], "1.3", "{closed}");
    assert_eq!(
        conn["tls_cipher_suite"],
        connz["connections"][0]["tls_cipher_suite"]
    );
}

/// Runs a handshake that may fail; true if it finished.
fn try_handshake(sim: &mut Sim, id: ClientId, client: &mut ClientConnection) -> bool {
    for _ in 0..10 {
        let mut flight = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut flight).unwrap();
        }
        sim.send(id, &flight);
        if sim.closed.contains_key(&id) {
            return false;
        }
        if !client.is_handshaking() {
            return true;
        }
        let answer = sim.take(id);
        if client.read_tls(&mut &answer[..]).is_err() || client.process_new_packets().is_err() {
            return false;
        }
    }
    false
}

#[test]
fn pinned_certs_admit_only_the_pinned_public_keys() {
    let ca = Ca::new("test CA");
    let key = KeyPair::generate().unwrap();
    let pinned = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "pinned");
        let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key_der());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let (cert, server_key) = ca.issue(&["localhost"], false);
    let conf = format!(
        r#"tls {{ cert_file: "server.pem", key_file: "server.key", ca_file: "ca.pem", verify: true, pinned_certs: ["{hex}"] }}"#
    );
    let ca_pem = ca.pem();
    let files = [
        ("server.pem", &*cert),
        ("server.key", &*server_key),
        ("ca.pem", &*ca_pem),
    ];
    let mut sim = Sim::with_server(server(&conf, &files));

    let (id, _) = accept(&mut sim);
    let mut client = tls_client(&ca, Some(pinned));
    handshake(&mut sim, id, &mut client, &[]);
    assert_eq!(
        exchange(&mut sim, id, &mut client, "CONNECT {}\r\nPING\r\n"),
        "+OK\r\nPONG\r\n"
    );

    let (id, _) = accept(&mut sim);
    let mut client = tls_client(&ca, Some(ca.issue(&["other"], false)));
    let _ = try_handshake(&mut sim, id, &mut client);
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
    assert_logged(&sim, "TLS handshake error: certificate not pinned");
}

#[test]
fn cipher_suites_and_curve_preferences_limit_what_a_client_may_use() {
    use rustls::crypto::ring::{cipher_suite, kx_group};
    let ca = Ca::new("test CA");
    let (cert, key) = ca.issue(&["localhost"], false);
    let conf = r#"tls { cert_file: "server.pem", key_file: "server.key", cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384], curve_preferences: [CurveP384] }"#;
    let mut sim = Sim::with_server(server(conf, &[("server.pem", &cert), ("server.key", &key)]));
    let client_with =
        |suites: Vec<rustls::SupportedCipherSuite>,
         groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>| {
            let mut provider = tenet_core::tls::crypto_provider();
            provider.cipher_suites = suites;
            provider.kx_groups = groups;
            tls_client_with(&ca, None, provider, true)
        };
    // TLS 1.2 with the listed suite and curve.
    let (id, _) = accept(&mut sim);
    let mut client = client_with(
        vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        vec![kx_group::SECP384R1],
    );
    assert!(try_handshake(&mut sim, id, &mut client));
    // Another suite, or another curve: refused.
    let (id, _) = accept(&mut sim);
    let mut client = client_with(
        vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
        vec![kx_group::SECP384R1],
    );
    assert!(!try_handshake(&mut sim, id, &mut client));
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
    let (id, _) = accept(&mut sim);
    let mut client = client_with(
        vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        vec![kx_group::X25519],
    );
    assert!(!try_handshake(&mut sim, id, &mut client));
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::TlsHandshakeError));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// However the client's bytes are cut into reads, the handshake and the
    /// protocol after it come out the same.
    #[test]
    fn any_split_of_the_handshake_works(cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let ca = Ca::new("test CA");
        let mut sim = tls_server(&ca, "");
        let (id, _) = accept(&mut sim);
        let mut client = tls_client(&ca, None);
        handshake(&mut sim, id, &mut client, &cuts);
        let got = exchange(&mut sim, id, &mut client, "CONNECT {\"verbose\":false}\r\nPING\r\n");
        prop_assert_eq!(got, "PONG\r\n");
    }
}
