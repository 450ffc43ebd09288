//! TLS client connections through the engine: plaintext INFO, then TLS.
//!
//! Input: byte 0 flags (bit 0: `allow_non_tls`; bit 1: a real rustls client
//! finishes the handshake first; bit 2: the client then sends `CONNECT` and
//! `PING` through the session), then chunks: a length byte and that many
//! bytes, each fed to the server as one read from the client's socket.
//!
//! Checked: no panic; the INFO comes first, in plaintext, with
//! `tls_required` (or `tls_available` with `allow_non_tls`); everything the
//! server writes after it is whole TLS records, unless the client's first
//! byte chose plaintext under `allow_non_tls`; a client that broke the
//! protocol is closed (as a TLS handshake failure, or a read error after
//! the handshake), never answered in plaintext on a TLS connection.

#![no_main]

use std::collections::HashMap;
use std::io::{IoSlice, Write};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tenet_core::config::options::read_config;
use tenet_core::config::{parse, MapResolver};
use tenet_core::{Auth, ClientId, CloseReason, Event, Peer, Server, Time};

/// (CA PEM, server certificate PEM, server key PEM), made once.
fn pki() -> &'static (String, String, String) {
    static PKI: OnceLock<(String, String, String)> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    })
}

fn server(allow_non_tls: bool) -> Server {
    let (_, cert, key) = pki();
    let text = format!(
        "tls {{ cert_file: \"s.pem\", key_file: \"s.key\" }}\nallow_non_tls: {allow_non_tls}\n"
    );
    let files = MapResolver(HashMap::from([
        ("s.pem".to_string(), cert.clone()),
        ("s.key".to_string(), key.clone()),
    ]));
    let parsed = parse("fuzz.conf", &text, &files, &|_| None).unwrap();
    let (mut config, errors) = read_config(&parsed);
    assert!(errors.is_empty());
    config
        .server
        .tls
        .as_mut()
        .unwrap()
        .load_files(&files)
        .unwrap();
    let auth = Auth::from_config(&config, None, None, None).unwrap();
    Server::with_auth(config.server, auth, 1)
}

/// What the server wrote to `id` since the last call; whether it closed it.
fn drain(server: &mut Server, id: ClientId, out: &mut Vec<u8>) -> Option<CloseReason> {
    let mut closed = None;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Flush(c) | Event::Close(c, _) if c == id => {
                loop {
                    let mut slices = [IoSlice::new(&[]); 8];
                    let n = server.outbound(id, &mut slices);
                    if n == 0 {
                        break;
                    }
                    let len: usize = slices[..n].iter().map(|s| s.len()).sum();
                    for s in &slices[..n] {
                        out.extend_from_slice(s);
                    }
                    server.handle_written(id, len, Time::ZERO);
                }
                if let Event::Close(_, reason) = event {
                    closed = Some(reason);
                    server.handle_closed(id, reason, Time::ZERO);
                }
            }
            Event::Job(job) => server.handle_job_done(job.run(), Time::ZERO),
            _ => {}
        }
    }
    closed
}

/// Checks `bytes` is whole TLS records.
fn assert_records(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        assert!(bytes.len() >= 5, "a torn record header: {bytes:?}");
        assert!(
            (20..=23).contains(&bytes[0]) && bytes[1] == 3,
            "not a TLS record: {:?}",
            &bytes[..5]
        );
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        assert!(bytes.len() >= 5 + len, "a torn record");
        bytes = &bytes[5 + len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let allow_non_tls = flags & 1 != 0;
    let mut server = server(allow_non_tls);
    let id = server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        Time::ZERO,
    );
    let mut wire = Vec::new();
    let mut closed = drain(&mut server, id, &mut wire);
    let info_end = wire.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let info = String::from_utf8_lossy(&wire[..info_end]).into_owned();
    assert!(info.starts_with("INFO {"));
    if allow_non_tls {
        assert!(info.contains("\"tls_available\":true"), "{info}");
    } else {
        assert!(info.contains("\"tls_required\":true"), "{info}");
    }
    wire.drain(..info_end);
    let mut plaintext_client = false;

    if flags & 2 != 0 {
        let (ca, _, _) = pki();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            tenet_core::tls::crypto_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut client = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut received = 0;
        for _ in 0..8 {
            let mut flight = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut flight).unwrap();
            }
            server.handle_read(id, &flight, Time::ZERO);
            closed = closed.or(drain(&mut server, id, &mut wire));
            if !client.is_handshaking() {
                break;
            }
            let mut answer = &wire[received..];
            received = wire.len();
            while !answer.is_empty() {
                client.read_tls(&mut answer).unwrap();
            }
            client.process_new_packets().unwrap();
        }
        assert!(closed.is_none(), "a real handshake is not refused");
        if flags & 4 != 0 {
            client
                .writer()
                .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
                .unwrap();
            let mut flight = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut flight).unwrap();
            }
            server.handle_read(id, &flight, Time::ZERO);
            closed = closed.or(drain(&mut server, id, &mut wire));
        }
    }

    let mut first = flags & 2 == 0;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        rest = tail;
        if closed.is_some() {
            break;
        }
        if first && !chunk.is_empty() {
            plaintext_client = allow_non_tls && chunk[0] != 0x16;
            first = false;
        }
        server.handle_read(id, chunk, Time::ZERO);
        closed = drain(&mut server, id, &mut wire);
    }
    if !plaintext_client {
        assert_records(&wire);
    }
    if let Some(reason) = closed {
        if !plaintext_client {
            assert!(
                matches!(
                    reason,
                    CloseReason::TlsHandshakeError
                        | CloseReason::ReadError
                        | CloseReason::ClientClosed
                ),
                "{reason:?}"
            );
        }
    }
});
