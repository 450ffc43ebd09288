//! TLS for client connections: rustls's sans-IO server side, between the
//! bytes a client's socket carries and the protocol bytes the engine reads
//! and writes.
//!
//! NATS starts in plaintext: the server's INFO goes out as it is (with
//! `tls_required`), then the client starts the handshake. So a TLS client's
//! session begins with that INFO already waiting in its [`TlsSession`]'s
//! outgoing bytes, and everything after is encrypted. The engine drives the
//! session (it owns the timers, the logs and the close reasons); runtimes
//! only move bytes, so one implementation serves both and any embedder.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, ServerConnection, WebPkiClientVerifier};
use rustls::RootCertStore;

use crate::config::parse::Resolver;

/// A client certificate as `/connz` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerCert {
    /// The subject as Go prints it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// Hex SHA-256 of its SubjectPublicKeyInfo.
    pub spki_sha256: String,
    /// Hex SHA-256 of the whole certificate.
    pub cert_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cryptography under rustls: *ring*, which builds with nothing but a C
/// compiler (aws-lc-rs needs cmake). rustls 0.23.48 deprecates it for its
/// lack of post-quantum key exchange, which nats-server 2.9.10 (Go 1.19)
/// does not offer either.
#[allow(deprecated)]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The cipher suite Go calls `name`: `None` for a TLS 1.3 suite (always
/// on), an error for a name Go does not know or a suite rustls does not
/// offer (RC4, 3DES, CBC, RSA key exchange).
pub fn cipher_suite(name: &str) -> Result<Option<rustls::SupportedCipherSuite>, String> {
    use rustls::crypto::ring::cipher_suite as suite;
    Ok(Some(match name {
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Ok(None)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_RSA_WITH_RC4_128_SHA"
        | "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
        | "TLS_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_RSA_WITH_AES_128_CBC_SHA256"
        | "TLS_RSA_WITH_AES_256_CBC_SHA"
        | "TLS_RSA_WITH_AES_256_GCM_SHA384"
        | "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_RC4_128_SHA"
        | "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
        | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
        | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" => {
            return Err(format!(
                "cipher suite {name} is not supported by tenet (rustls offers only ECDHE with AES-GCM or ChaCha20-Poly1305)"
            ))
        }
        _ => return Err(format!("unrecognized cipher {name}")),
    }))
}

/// The key exchange group Go calls `name` (`curve_preferences`).
pub fn curve(name: &str) -> Result<&'static dyn rustls::crypto::SupportedKxGroup, String> {
    use rustls::crypto::ring::kx_group;
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        "CurveP521" => Err(
            "curve preference CurveP521 is not supported by tenet (rustls with ring has no P-521)"
                .to_string(),
        ),
        _ => Err(format!("unrecognized curve preference {name}")),
    }
}

/// A handshake error as nats-server 2.9.10 (Go 1.19) words it where the
/// cause is the same (a client certificate missing, of an unknown
/// authority, or out of its validity); rustls's words otherwise.
fn go_error_text(error: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let at = |t: &rustls::pki_types::UnixTime| crate::time::rfc3339(t.as_secs() * 1_000_000_000);
    let verify = "tls: failed to verify client certificate: x509:";
    match error {
        rustls::Error::NoCertificatesPresented => {
            "tls: client didn't provide a certificate".to_string()
        }
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer => format!("{verify} certificate signed by unknown authority"),
            Cert::ExpiredContext { time, not_after } => format!(
                "{verify} certificate has expired or is not yet valid: current time {} is after {}",
                at(time),
                at(not_after)
            ),
            Cert::NotValidYetContext { time, not_before } => format!(
                "{verify} certificate has expired or is not yet valid: current time {} is before {}",
                at(time),
                at(not_before)
            ),
            Cert::Expired | Cert::NotValidYet => {
                format!("{verify} certificate has expired or is not yet valid")
            }
            _ => error.to_string(),
        },
        _ => error.to_string(),
    }
}

/// nats-server's TLS handshake timeout when `timeout` is not set.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `tls {}` block of a configuration (or the `--tls*` flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// The server's certificate chain, PEM (`cert_file`).
    pub cert_file: String,
    /// Its private key, PEM (`key_file`).
    pub key_file: String,
    /// The certificate authorities client certificates must chain to
    /// (`ca_file`), PEM.
    pub ca_file: Option<String>,
    /// A client certificate signed by `ca_file` is required (`verify`).
    pub verify: bool,
    /// The certificate names the user (`verify_and_map`; implies `verify`).
    pub verify_and_map: bool,
    /// The handshake's time limit (`timeout`; 2 s by default).
    pub timeout: Option<Duration>,
    /// TLS 1.2 cipher suites, by Go's names (`cipher_suites`; TLS 1.3's
    /// are always on, as in Go).
    pub cipher_suites: Option<Vec<String>>,
    /// Key exchange groups, by Go's names, in order (`curve_preferences`).
    pub curve_preferences: Option<Vec<String>>,
    /// Hex SHA-256 digests of the client certificates' public keys
    /// (`pinned_certs`): only those may connect.
    pub pinned_certs: Option<Vec<String>>,
    /// The files' contents: the core reads no files, the host fills these
    /// in (and reads them again on a reload).
    pub files: TlsFiles,
    /// Where the block was written, for error messages.
    pub pos: Option<crate::config::value::Pos>,
}

/// What the files of [`TlsOptions`] held when they were read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub ca: Option<Vec<u8>>,
}

impl TlsOptions {
    /// The handshake's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TLS_TIMEOUT)
    }

    /// Reads the certificate, key and CA files through `resolver` (paths
    /// relative to the working directory, as nats-server takes them) and
    /// checks they make a working configuration.
    pub fn load_files(&mut self, resolver: &dyn Resolver) -> Result<(), String> {
        let read = |path: &str| {
            resolver
                .read(path, "")
                .map(|(_, text)| text.into_bytes())
                .map_err(|e| format!("open {path}: {e}"))
        };
        let pair_error = |e| format!("error parsing X509 certificate/key pair: {e}");
        self.files.cert = read(&self.cert_file).map_err(pair_error)?;
        self.files.key = read(&self.key_file).map_err(pair_error)?;
        self.files.ca = self.ca_file.as_deref().map(read).transpose()?;
        TlsAcceptor::new(self).map(drop)
    }
}

/// A server's TLS settings made ready for connections: the rustls
/// configuration built once from [`TlsOptions`] and shared by every session.
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    /// The same certificate for monitoring over HTTPS (no client
    /// certificates asked for).
    https_config: Option<Arc<ServerConfig>>,
    verify: bool,
    map: bool,
    timeout: Duration,
    pinned: Option<Vec<String>>,
}

impl TlsAcceptor {
    /// Checks the certificate, key and certificate authorities and builds
    /// the configuration; the error names what is wrong (as nats-server
    /// reports it at start-up).
    pub fn new(opts: &TlsOptions) -> Result<TlsAcceptor, String> {
        let mut provider = crypto_provider();
        if let Some(names) = &opts.cipher_suites {
            let tls12 = names
                .iter()
                .map(|n| cipher_suite(n))
                .collect::<Result<Vec<_>, _>>()?;
            provider.cipher_suites.retain(|s| s.tls13().is_some());
            provider.cipher_suites.extend(tls12.into_iter().flatten());
        }
        if let Some(names) = &opts.curve_preferences {
            provider.kx_groups = names.iter().map(|n| curve(n)).collect::<Result<_, _>>()?;
        }
        let provider = Arc::new(provider);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&opts.files.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "error parsing X509 certificate/key pair: {}: {e}",
                    opts.cert_file
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "error parsing X509 certificate/key pair: tls: failed to find any PEM data in certificate input ({})",
                opts.cert_file
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&opts.files.key).map_err(|e| {
            format!(
                "error parsing X509 certificate/key pair: {}: {e}",
                opts.key_file
            )
        })?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("error setting up TLS: {e}"))?;
        let builder = match (&opts.files.ca, opts.verify) {
            (Some(ca), true) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| {
                        format!(
                            "failed to parse root ca certificate: {}: {e}",
                            opts.ca_file.as_deref().unwrap_or_default()
                        )
                    })?;
                    roots.add(cert).map_err(|e| {
                        format!(
                            "failed to parse root ca certificate: {}: {e}",
                            opts.ca_file.as_deref().unwrap_or_default()
                        )
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| format!("error setting up TLS client verification: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            (None, true) => {
                return Err(
                    "tls verify without a ca_file (client certificates checked against the system's certificate authorities) is not supported by tenet"
                        .to_string(),
                )
            }
            _ => builder.with_no_client_auth(),
        };
        // Monitoring over HTTPS asks no client for a certificate.
        let https_config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("error setting up TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .ok();
        let config = builder.with_single_cert(chain, key).map_err(|e| match e {
            // Go takes keys ring refuses (RSA under 2048 bits, P-521).
            rustls::Error::General(_) => format!(
                "the private key {} is not supported by tenet (rustls with ring takes RSA keys of 2048 bits or more, ECDSA P-256 and P-384, and Ed25519): {e}",
                opts.key_file
            ),
            _ => format!(
                "error parsing X509 certificate/key pair: {} and {}: {e}",
                opts.cert_file, opts.key_file
            ),
        })?;
        Ok(TlsAcceptor {
            config: Arc::new(config),
            https_config: https_config.map(Arc::new),
            verify: opts.verify,
            map: opts.verify_and_map,
            timeout: opts.timeout(),
            pinned: opts.pinned_certs.clone(),
        })
    }

    /// Whether clients must present a certificate (`tls_verify` in INFO).
    pub fn verify(&self) -> bool {
        self.verify
    }

    /// Whether the certificate names the user (`verify_and_map`).
    pub fn map(&self) -> bool {
        self.map
    }

    /// Whether a finished handshake's client certificate may connect
    /// (`pinned_certs`; any, without pins).
    pub(crate) fn pinned(&self, session: &TlsSession) -> bool {
        let Some(pins) = &self.pinned else {
            return true;
        };
        let Some(key) = session.peer_public_key_digest() else {
            return false;
        };
        pins.contains(&key)
    }

    /// The handshake's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A session for a monitoring connection over HTTPS.
    pub fn https_session(&self) -> Option<TlsSession> {
        let config = self.https_config.as_ref()?;
        let conn = ServerConnection::new(Arc::clone(config)).ok()?;
        Some(TlsSession::with(conn, Vec::new()))
    }

    /// A new connection's session, with `plaintext` (the INFO) to go out
    /// before the handshake.
    pub(crate) fn session(&self, plaintext: Vec<u8>) -> Result<TlsSession, String> {
        let conn = ServerConnection::new(Arc::clone(&self.config)).map_err(|e| e.to_string())?;
        Ok(TlsSession::with(conn, plaintext))
    }
}

/// What reading a client's bytes through its session gave.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsRead {
    /// Fine (plaintext, if any, was appended).
    Ok,
    /// The handshake finished with these bytes.
    Handshaken,
    /// The client ended the session (`close_notify`).
    Closed,
    /// The bytes broke the protocol (the error); rustls's alert, if it
    /// made one, waits on the wire.
    Failed(String),
}

/// One connection's TLS: the rustls session and the bytes waiting for the
/// socket (ciphertext, after a NATS client's plaintext INFO). Monitoring
/// over HTTPS uses it too ([`TlsAcceptor::https_session`]).
pub struct TlsSession {
    conn: ServerConnection,
    /// Bytes for the socket; `wire_sent` of them were written.
    wire: Vec<u8>,
    wire_sent: usize,
    /// A first byte that starts a handshake record came.
    started: bool,
    handshaken: bool,
    close_notified: bool,
}

/// The first byte of a TLS handshake record (content type 22).
pub const HANDSHAKE_RECORD: u8 = 0x16;

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaken", &self.handshaken)
            .field("wire", &(self.wire.len() - self.wire_sent))
            .finish()
    }
}

/// Room kept for the wire buffer once empty; more is given back.
const WIRE_KEEP: usize = 64 * 1024;

impl TlsSession {
    fn with(conn: ServerConnection, plaintext: Vec<u8>) -> TlsSession {
        TlsSession {
            conn,
            wire: plaintext,
            wire_sent: 0,
            started: false,
            handshaken: false,
            close_notified: false,
        }
    }

    /// Whether the handshake is done.
    pub fn handshaken(&self) -> bool {
        self.handshaken
    }

    /// Whether the client's first byte came (and started a handshake).
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Takes `input` (bytes read from the socket) and appends what it
    /// decrypts to `plaintext`.
    pub fn read(&mut self, mut input: &[u8], plaintext: &mut Vec<u8>) -> TlsRead {
        if !self.started {
            let Some(&first) = input.first() else {
                return TlsRead::Ok;
            };
            // Go's TLS (nats-server's) looks at the first byte and answers
            // anything but a handshake record with no alert at all.
            if first != HANDSHAKE_RECORD {
                return TlsRead::Failed(
                    "tls: first record does not look like a TLS handshake".to_string(),
                );
            }
            self.started = true;
        }
        let mut outcome = TlsRead::Ok;
        while !input.is_empty() {
            if let Err(e) = self.conn.read_tls(&mut input) {
                return self.failed(e.to_string());
            }
            if let Err(e) = self.conn.process_new_packets() {
                return self.failed(go_error_text(&e));
            }
            if !self.handshaken && !self.conn.is_handshaking() {
                self.handshaken = true;
                outcome = TlsRead::Handshaken;
            }
            if self.drain_plaintext(plaintext) {
                self.queue_tls();
                return TlsRead::Closed;
            }
        }
        self.queue_tls();
        outcome
    }

    /// Moves decrypted bytes to `plaintext`; true once the peer closed.
    fn drain_plaintext(&mut self, plaintext: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => plaintext.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// The alert rustls prepared for `error` goes out before the close.
    fn failed(&mut self, error: String) -> TlsRead {
        self.queue_tls();
        TlsRead::Failed(error)
    }

    /// Moves what rustls has to send to the wire buffer.
    fn queue_tls(&mut self) {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.wire).is_err() {
                break;
            }
        }
    }

    /// Encrypts `plaintext` (once the handshake is done); returns how many
    /// bytes it took (all of them, unless rustls's buffer is full).
    pub fn seal(&mut self, plaintext: &[u8]) -> usize {
        if !self.handshaken || self.close_notified {
            return 0;
        }
        let taken = self.conn.writer().write(plaintext).unwrap_or(0);
        self.queue_tls();
        taken
    }

    /// The negotiated protocol version and cipher suite, named as
    /// nats-server's `/connz` names them (`1.3`, `TLS_AES_128_GCM_SHA256`).
    pub(crate) fn description(&self) -> Option<(&'static str, String)> {
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "1.3",
            rustls::ProtocolVersion::TLSv1_2 => "1.2",
            _ => "unknown",
        };
        let suite = format!("{:?}", self.conn.negotiated_cipher_suite()?.suite());
        // rustls names TLS 1.3's suites `TLS13_...`, Go `TLS_...`.
        let suite = match suite.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => suite,
        };
        Some((version, suite))
    }

    /// The hex SHA-256 of the client certificate's SubjectPublicKeyInfo.
    fn peer_public_key_digest(&self) -> Option<String> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let der = self.conn.peer_certificates()?.first()?;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(sha256_hex(cert.public_key().raw))
    }

    /// The client's certificates as nats-server lists them in `/connz`
    /// (`tls_peer_certs`).
    pub(crate) fn peer_certs(&self) -> Vec<PeerCert> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let Some(chain) = self.conn.peer_certificates() else {
            return Vec::new();
        };
        chain
            .iter()
            .filter_map(|der| {
                let (_, cert) = X509Certificate::from_der(der).ok()?;
                Some(PeerCert {
                    subject: crate::tls_map::go_name_string(cert.subject()),
                    spki_sha256: sha256_hex(cert.public_key().raw),
                    cert_sha256: sha256_hex(der),
                })
            })
            .collect()
    }

    /// What the client's certificate says about its holder.
    pub(crate) fn peer_identity(&self) -> Option<crate::tls_map::CertIdentity> {
        let cert = self.conn.peer_certificates()?.first()?;
        crate::tls_map::CertIdentity::from_der(cert)
    }

    /// Ends the session with a `close_notify` (as Go's TLS does on close).
    pub fn close_notify(&mut self) {
        if self.handshaken && !self.close_notified {
            self.close_notified = true;
            self.conn.send_close_notify();
            self.queue_tls();
        }
    }

    /// The bytes waiting for the socket.
    pub fn wire(&self) -> &[u8] {
        &self.wire[self.wire_sent..]
    }

    /// `n` bytes of [`Self::wire`] were written.
    pub fn written(&mut self, n: usize) {
        self.wire_sent = (self.wire_sent + n).min(self.wire.len());
        if self.wire_sent == self.wire.len() {
            self.wire.clear();
            self.wire_sent = 0;
            if self.wire.capacity() > WIRE_KEEP {
                self.wire.shrink_to(WIRE_KEEP);
            }
        }
    }
}
