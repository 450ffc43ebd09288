//! Differential conformance: the scripted raw-protocol exchanges of
//! `tests/differential/*.exchanges`, run against tenet and compared with what
//! nats-server 2.9.10 answered (`tests/differential/recorded/<file>.json`).
//!
//! Each exchange starts its own server (with a configuration file from
//! `tests/differential/configs/` if it names one), opens clients, sends their
//! bytes step by step and, after every step, waits until no byte has arrived on
//! any client for [`QUIET`] (and every PING sent has its PONG, or the connection
//! closed). The answer of an exchange is, per client, the bytes it received
//! (normalized: only what must differ between two servers or two runs) and
//! whether the server closed the connection.
//!
//! - Normal runs compare tenet with the recording; when nats-server is installed
//!   it is also run live and must still give the recorded answers.
//! - `TENET_DIFF_RECORD=1` re-records every answer from nats-server (each
//!   exchange runs twice and must answer the same both times).
//! - `TENET_DIFF_RECORD=tenet` re-records tenet's own answers to the
//!   intentional differences (`differences.exchanges`), after review.
//! - With `TENET_TEST_BINARY` naming nats-server (the black-box suites against
//!   the reference), only the live nats-server check runs.
//!
//! The corpus format is described in `tests/differential/README.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{Map, Value};
use tenet_tests::{free_port, is_reference_server, server_binary};

/// A step is over once no byte has arrived on any client for this long.
const QUIET: Duration = Duration::from_millis(40);
/// The longest a step waits for the server to go quiet (and answer its PINGs).
const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Exchanges run in parallel, one server each.
const THREADS: usize = 8;
/// The pause between the bytes of a trickled send (`name~> bytes`).
const TRICKLE_GAP: Duration = Duration::from_millis(1);

/// INFO members whose values differ between servers, runs or connections; they
/// are compared by presence only.
const VOLATILE_INFO: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "go",
    "nonce",
    "client_id",
    "client_ip",
    "port",
    "host",
];

/// The wire-visible rows of the README's "Differences from nats-server" table
/// (and the `max_connections: 0` note of its configuration table): the names
/// `difference:` lines may use, with the row each stands for. Every one needs
/// an exchange. Not here: INFO `version` and `go` (normalized away, checked by
/// `protocol.rs`), the unknown flag and SIGTERM (no wire exchange, `cli.rs`).
const DIFFERENCES: &[(&str, &str)] = &[
    ("malformed-pull-request-text", "a malformed pull request"),
    (
        "wildcard-subscription-vs-allow-list",
        "wildcard subscription vs an allow list",
    ),
    (
        "authorization-settings-nats-server-ignores",
        "authorization settings nats-server ignores",
    ),
    (
        "default-permissions-and-the-single-user",
        "`default_permissions` and the single `user`/`token` of the block",
    ),
    (
        "no-auth-user-with-partial-credentials",
        "`no_auth_user` when a client sends only a password or token",
    ),
    (
        "queue-permissions-wildcard-groups-and-denies",
        "queue denies: a group name with wildcards, and deny `foo` + `foo v2`",
    ),
    (
        "auth-timeout-as-a-duration-string",
        "`authorization { timeout: \"500ms\" }`",
    ),
    (
        "pedantic-invalid-publish-subject",
        "pedantic mode, invalid publish subject (`PUB foo.* 1`)",
    ),
    ("info-after-the-first-ping", "INFO after the first PING"),
    (
        "nats-request-info-header",
        "a request through a service import",
    ),
    (
        "second-connect-as-another-user",
        "a second CONNECT on a connection, as another user",
    ),
    ("sys-server-events", "`$SYS` server events"),
    (
        "max-connections-zero",
        "`max_connections: 0` refuses every client (configuration table)",
    ),
];

// ----- the corpus ------------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("differential")
}

/// One step of an exchange.
#[derive(Debug, Clone)]
enum Step {
    /// Connect and read the INFO.
    Open(String),
    /// Send bytes (all at once, or one byte per write when `trickle`).
    Send {
        client: String,
        bytes: Vec<u8>,
        trickle: bool,
    },
    /// Send a CONNECT with an nkey and the signature of the client's nonce.
    SignNonce { client: String, sign: SignNonce },
    /// Keep reading for this long.
    Sleep(Duration),
    /// Half-close: the client sends no more (the server reads EOF) but reads on.
    Close(String),
    /// Close the socket; nothing more is read from it.
    Drop(String),
}

#[derive(Debug, Clone, Default)]
struct SignNonce {
    /// The key that signs.
    seed: String,
    /// The key whose public key the CONNECT claims (default: the signer's).
    claim: Option<String>,
    /// Standard base64 with padding instead of unpadded base64url.
    standard: bool,
    /// Sign this text instead of the nonce from the INFO.
    nonce: Option<String>,
    /// Leave `sig` out.
    no_sig: bool,
    /// JSON members appended to the CONNECT object.
    extra: String,
}

#[derive(Debug, Clone)]
struct Exchange {
    /// The corpus file's stem (`protocol` for `protocol.exchanges`).
    file: String,
    name: String,
    line: usize,
    config: Option<String>,
    /// `jetstream: on`: the server runs JetStream (`-js`) over a fresh store directory.
    jetstream: bool,
    difference: Option<String>,
    known_bug: Option<String>,
    steps: Vec<Step>,
}

impl Exchange {
    fn place(&self) -> String {
        format!("{}.exchanges:{}", self.file, self.line)
    }
}

/// Decodes the escapes of a client line: `\r \n \t \\ \xNN`, and `\{N:text}`
/// for `text` repeated N times.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&kind) = bytes.get(i + 1) else {
            return Err("a lone backslash at the end".into());
        };
        i += 2;
        match kind {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = text
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape at byte {i}"))?;
                out.push(hex);
                i += 2;
            }
            b'{' => {
                let end = text[i..]
                    .find('}')
                    .ok_or("unterminated \\{N:text} repetition")?;
                let inner = &text[i..i + end];
                let (count, unit) = inner.split_once(':').ok_or("a repetition is \\{N:text}")?;
                let count: usize = count
                    .parse()
                    .map_err(|_| format!("bad repetition count {count:?}"))?;
                out.extend(unit.as_bytes().repeat(count));
                i += end + 1;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    Ok(out)
}

fn is_client_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_sign_nonce(words: &str) -> Result<SignNonce, String> {
    let (words, extra) = match words.split_once(" json ") {
        Some((w, e)) => (w, e.trim().to_string()),
        None => (words, String::new()),
    };
    let mut it = words.split_whitespace();
    let mut sign = SignNonce {
        seed: it.next().ok_or("sign-nonce needs a key name")?.to_string(),
        extra,
        ..SignNonce::default()
    };
    while let Some(word) = it.next() {
        match word {
            "as" => sign.claim = Some(it.next().ok_or("`as` needs a key name")?.into()),
            "std" => sign.standard = true,
            "nosig" => sign.no_sig = true,
            "nonce" => sign.nonce = Some(it.next().ok_or("`nonce` needs a text")?.into()),
            other => return Err(format!("unknown sign-nonce option {other:?}")),
        }
    }
    Ok(sign)
}

fn parse_step(line: &str) -> Result<Step, String> {
    if let Some(ms) = line.strip_prefix("sleep ") {
        let ms: u64 = ms.trim().parse().map_err(|_| "sleep <ms>".to_string())?;
        return Ok(Step::Sleep(Duration::from_millis(ms)));
    }
    for (word, make) in [
        ("open ", Step::Open as fn(String) -> Step),
        ("close ", Step::Close),
        ("drop ", Step::Drop),
    ] {
        if let Some(name) = line.strip_prefix(word) {
            let name = name.trim();
            if !is_client_name(name) {
                return Err(format!("bad client name {name:?}"));
            }
            return Ok(make(name.to_string()));
        }
    }
    if let Some((client, rest)) = line.split_once(" sign-nonce ") {
        if is_client_name(client) {
            return Ok(Step::SignNonce {
                client: client.to_string(),
                sign: parse_sign_nonce(rest)?,
            });
        }
    }
    if let Some(at) = line.find('>') {
        let (head, rest) = (&line[..at], &line[at + 1..]);
        let (client, trickle) = match head.strip_suffix('~') {
            Some(c) => (c, true),
            None => (head, false),
        };
        if is_client_name(client) {
            let text = rest
                .strip_prefix(' ')
                .ok_or("a client line is `name> bytes`")?;
            let bytes = unescape(text)?;
            if bytes.is_empty() {
                return Err("nothing to send".into());
            }
            return Ok(Step::Send {
                client: client.to_string(),
                bytes,
                trickle,
            });
        }
    }
    Err(format!("not a step: {line:?}"))
}

/// Parses one `.exchanges` file.
fn parse_corpus(file: &str, text: &str) -> Result<Vec<Exchange>, String> {
    let mut exchanges: Vec<Exchange> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fail = |why: String| format!("{file}.exchanges:{line_no}: {why}");
        if let Some(name) = line.strip_prefix("=== ") {
            let name = name.trim();
            if !is_client_name(name) {
                return Err(fail(format!("bad exchange name {name:?}")));
            }
            exchanges.push(Exchange {
                file: file.to_string(),
                name: name.to_string(),
                line: line_no,
                config: None,
                jetstream: false,
                difference: None,
                known_bug: None,
                steps: Vec::new(),
            });
            continue;
        }
        let Some(ex) = exchanges.last_mut() else {
            return Err(fail("a step before the first `=== name`".into()));
        };
        let header = |key: &str| line.strip_prefix(key).map(|v| v.trim().to_string());
        if let Some(v) = header("config:") {
            ex.config = Some(v);
        } else if let Some(v) = header("jetstream:") {
            ex.jetstream = v == "on";
        } else if let Some(v) = header("difference:") {
            ex.difference = Some(v);
        } else if let Some(v) = header("known-bug:") {
            ex.known_bug = Some(v);
        } else {
            ex.steps.push(parse_step(line).map_err(fail)?);
        }
    }
    for ex in &exchanges {
        if ex.steps.is_empty() {
            return Err(format!("{}: exchange {} has no steps", ex.place(), ex.name));
        }
    }
    Ok(exchanges)
}

/// Every exchange of every corpus file, in file-name order.
fn load_corpus() -> Vec<Exchange> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "exchanges"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read corpus file");
        all.extend(parse_corpus(&stem, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    let mut seen: HashMap<&str, String> = HashMap::new();
    for ex in &all {
        if let Some(first) = seen.insert(&ex.name, ex.place()) {
            panic!(
                "exchange {} is defined twice: {first} and {}",
                ex.name,
                ex.place()
            );
        }
        if let Some(config) = &ex.config {
            let path = dir.join("configs").join(config);
            assert!(
                path.is_file(),
                "{}: no config {}",
                ex.place(),
                path.display()
            );
        }
        match (&ex.difference, ex.file == "differences") {
            (Some(d), true) => assert!(
                DIFFERENCES.iter().any(|(name, _)| name == d),
                "{}: difference {d:?} is not in the runner's table",
                ex.place()
            ),
            (None, true) => panic!("{}: {} has no `difference:` line", ex.place(), ex.name),
            (Some(_), false) => panic!(
                "{}: `difference:` belongs in differences.exchanges",
                ex.place()
            ),
            (None, false) => {}
        }
    }
    all
}

/// The named nkeys of `tests/differential/nkeys` (`name: <seed>` lines).
fn load_nkeys() -> HashMap<String, String> {
    let text = std::fs::read_to_string(corpus_dir().join("nkeys")).expect("read nkeys");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, seed) = l.split_once(':').expect("`name: seed`");
            (name.trim().to_string(), seed.trim().to_string())
        })
        .collect()
}

// ----- servers ---------------------------------------------------------------

/// The nats-server executable: `TENET_DIFF_NATS_SERVER` (`none`: do without),
/// the PATH, or /usr/sbin.
fn find_nats_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TENET_DIFF_NATS_SERVER") {
        return (p != "none").then(|| PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    /// The process exited (a configuration it refuses).
    Exited,
    /// It could not be run, or did not get ready in time.
    Other(String),
}

/// Starts `binary` on 127.0.0.1 and a free port, and waits for `Server is ready`
/// in its log (no probe connection, so connection limits start at zero).
fn start_server(
    binary: &Path,
    config: Option<&Path>,
    extra_args: &[String],
) -> Result<Server, StartError> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(config) = config {
            cmd.arg("-c").arg(config);
        }
        cmd.args(extra_args);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| StartError::Other(format!("cannot run {}: {e}", binary.display())))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<()>();
        let readers: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for reader in readers {
            let (log, tx) = (log.clone(), tx.clone());
            thread::spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    let ready = line.contains("Server is ready");
                    let mut text = log.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                    drop(text);
                    if ready {
                        let _ = tx.send(());
                    }
                }
            });
        }
        drop(tx);
        let started = Instant::now();
        let ready = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(()) => break true,
                Err(mpsc::RecvTimeoutError::Disconnected) => break false,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if started.elapsed() > START_TIMEOUT
                        || child.try_wait().ok().flatten().is_some()
                    {
                        break false;
                    }
                }
            }
        };
        if ready {
            return Ok(Server { child, port, log });
        }
        let exited = exits_within(&mut child, 500);
        let _ = child.kill();
        let _ = child.wait();
        // Let the log readers finish.
        thread::sleep(Duration::from_millis(20));
        last = log.lock().unwrap().clone();
        if last.to_lowercase().contains("in use") {
            continue;
        }
        return Err(if exited {
            StartError::Exited
        } else {
            StartError::Other(last)
        });
    }
    Err(StartError::Other(last))
}

/// Whether `child` exits within `ms` milliseconds.
fn exits_within(child: &mut Child, ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

// ----- clients -----------------------------------------------------------------

/// Follows what a client sent, to count its complete PING lines (payloads skipped).
#[derive(Default)]
struct SentTracker {
    line: Vec<u8>,
    payload_left: usize,
    pings: usize,
}

impl SentTracker {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.payload_left > 0 {
                self.payload_left -= 1;
                continue;
            }
            if b != b'\n' {
                if self.line.len() < 64 * 1024 {
                    self.line.push(b);
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            let op: Vec<u8> = line
                .iter()
                .take_while(|b| !b.is_ascii_whitespace())
                .map(u8::to_ascii_uppercase)
                .collect();
            match &op[..] {
                b"PING" => self.pings += 1,
                b"PUB" | b"HPUB" => {
                    let size = line
                        .split(|b| b.is_ascii_whitespace())
                        .rfind(|t| !t.is_empty())
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| t.parse::<usize>().ok());
                    if let Some(size) = size {
                        self.payload_left = size + 2;
                    }
                }
                _ => {}
            }
        }
    }
}

struct Client {
    name: String,
    stream: TcpStream,
    received: Vec<u8>,
    /// The server closed (EOF or reset).
    closed: bool,
    /// The client dropped its socket: no more reading.
    dropped: bool,
    sent: SentTracker,
}

impl Client {
    fn connect(name: &str, port: u16) -> Result<Client, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)
            .map_err(|e| format!("{name}: connect: {e}"))?;
        stream.set_nodelay(true).ok();
        stream.set_nonblocking(true).expect("nonblocking");
        Ok(Client {
            name: name.to_string(),
            stream,
            received: Vec::new(),
            closed: false,
            dropped: false,
            sent: SentTracker::default(),
        })
    }

    fn active(&self) -> bool {
        !self.closed && !self.dropped
    }

    /// Reads what is there; true if anything (bytes or the close) happened.
    fn read_available(&mut self) -> bool {
        let mut any = false;
        let mut buf = [0u8; 64 * 1024];
        while self.active() {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    any = true;
                }
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    any = true;
                }
            }
        }
        any
    }

    fn pongs(&self) -> usize {
        frames(&self.received)
            .iter()
            .filter(|f| **f == b"PONG\r\n")
            .count()
    }

    /// Whether the server answered every PING this client sent (or closed).
    fn answered(&self) -> bool {
        !self.active() || self.pongs() >= self.sent.pings
    }
}

/// Waits up to `timeout` for readable data on the active clients, reads it;
/// true if anything happened.
fn poll_and_read(clients: &mut [Client], timeout: Duration) -> bool {
    let mut fds: Vec<libc::pollfd> = clients
        .iter()
        .filter(|c| c.active())
        .map(|c| libc::pollfd {
            fd: c.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    if fds.is_empty() {
        thread::sleep(timeout);
        return false;
    }
    // SAFETY: poll(2) on a live array of pollfd structures of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return false;
    }
    let mut any = false;
    for c in clients.iter_mut().filter(|c| c.active()) {
        any |= c.read_available();
    }
    any
}

// ----- running an exchange -------------------------------------------------------

/// What a server answered to an exchange: per client, or why it did not start.
type Answer = Value;

struct Run<'a> {
    server: Server,
    clients: Vec<Client>,
    /// `_R_.xxxxxx.yyyyyy` subjects in order of first appearance.
    replies: Vec<Vec<u8>>,
    nkeys: &'a HashMap<String, String>,
}

impl Run<'_> {
    fn client_index(&mut self, name: &str) -> Result<usize, String> {
        if let Some(i) = self.clients.iter().position(|c| c.name == name) {
            return Ok(i);
        }
        self.open(name)
    }

    fn open(&mut self, name: &str) -> Result<usize, String> {
        if self.clients.iter().any(|c| c.name == name) {
            return Err(format!("{name} is already open"));
        }
        self.clients.push(Client::connect(name, self.server.port)?);
        let i = self.clients.len() - 1;
        // The INFO first (or the close).
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self.clients[i].active()
            && !self.clients[i].received.contains(&b'\n')
            && Instant::now() < deadline
        {
            poll_and_read(&mut self.clients, Duration::from_millis(10));
        }
        Ok(i)
    }

    /// Writes `bytes` to client `i`, reading meanwhile so neither side blocks.
    fn write(&mut self, i: usize, bytes: &[u8], trickle: bool) {
        self.clients[i].sent.feed(bytes);
        let chunk = if trickle { 1 } else { bytes.len().max(1) };
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut at = 0;
        while at < bytes.len() && self.clients[i].active() && Instant::now() < deadline {
            let end = (at + chunk).min(bytes.len());
            match self.clients[i].stream.write(&bytes[at..end]) {
                Ok(n) => {
                    at += n;
                    if trickle {
                        thread::sleep(TRICKLE_GAP);
                        for c in self.clients.iter_mut() {
                            c.read_available();
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll_and_read(&mut self.clients, Duration::from_millis(1));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The server is gone; the reads will tell.
                Err(_) => break,
            }
        }
    }

    /// Replaces `_R_.<n>` in bytes to send with the n-th service reply seen.
    fn substitute_replies(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"_R_.<") {
                if let Some(end) = bytes[i + 5..].iter().position(|&b| b == b'>') {
                    let n: usize = std::str::from_utf8(&bytes[i + 5..i + 5 + end])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or("bad _R_.<n> reference")?;
                    let reply = self
                        .replies
                        .get(n.wrapping_sub(1))
                        .ok_or_else(|| format!("_R_.<{n}> was not received (yet)"))?;
                    out.extend_from_slice(reply);
                    i += 5 + end + 1;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        Ok(out)
    }

    fn sign_nonce(&mut self, i: usize, sign: &SignNonce) -> Result<Vec<u8>, String> {
        let key = |name: &str| -> Result<KeyPair, String> {
            let seed = self
                .nkeys
                .get(name)
                .ok_or_else(|| format!("no nkey named {name:?}"))?;
            KeyPair::from_seed(seed).map_err(|e| format!("nkey {name}: {e}"))
        };
        let signer = key(&sign.seed)?;
        let public = key(sign.claim.as_deref().unwrap_or(&sign.seed))?.public_key();
        let nonce = match &sign.nonce {
            Some(text) => text.clone(),
            None => {
                let received = &self.clients[i].received;
                let line = received.split(|&b| b == b'\n').next().unwrap_or_default();
                let info: Value = line
                    .strip_prefix(b"INFO ")
                    .and_then(|j| serde_json::from_slice(j).ok())
                    .ok_or("no INFO to take the nonce from")?;
                info["nonce"].as_str().unwrap_or_default().to_string()
            }
        };
        let raw = signer.sign(nonce.as_bytes()).map_err(|e| e.to_string())?;
        let sig = if sign.standard {
            STANDARD.encode(raw)
        } else {
            URL_SAFE_NO_PAD.encode(raw)
        };
        let mut connect =
            format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"nkey\":\"{public}\"");
        if !sign.no_sig {
            write!(connect, ",\"sig\":\"{sig}\"").unwrap();
        }
        if !sign.extra.is_empty() {
            write!(connect, ",{}", sign.extra).unwrap();
        }
        connect.push_str("}\r\n");
        Ok(connect.into_bytes())
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Open(name) => {
                self.open(name)?;
            }
            Step::Send {
                client,
                bytes,
                trickle,
            } => {
                let i = self.client_index(client)?;
                let bytes = self.substitute_replies(bytes)?;
                self.write(i, &bytes, *trickle);
            }
            Step::SignNonce { client, sign } => {
                let i = self.client_index(client)?;
                let bytes = self.sign_nonce(i, sign)?;
                self.write(i, &bytes, false);
            }
            Step::Sleep(d) => {
                let deadline = Instant::now() + *d;
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    if left.is_zero() {
                        break;
                    }
                    poll_and_read(&mut self.clients, left);
                }
            }
            Step::Close(name) => {
                let i = self.client_index(name)?;
                let _ = self.clients[i].stream.shutdown(std::net::Shutdown::Write);
            }
            Step::Drop(name) => {
                let i = self.client_index(name)?;
                self.clients[i].read_available();
                let _ = self.clients[i].stream.shutdown(std::net::Shutdown::Both);
                self.clients[i].dropped = true;
            }
        }
        self.settle();
        self.note_replies();
        Ok(())
    }

    /// Waits until nothing has arrived for [`QUIET`] and every PING is answered
    /// (bounded by [`STEP_TIMEOUT`]).
    fn settle(&mut self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut last = Instant::now();
        loop {
            let now = Instant::now();
            let quiet_left = QUIET.saturating_sub(now - last);
            let answered = self.clients.iter().all(Client::answered);
            if (quiet_left.is_zero() && answered) || now >= deadline {
                return;
            }
            let wait = if quiet_left.is_zero() {
                Duration::from_millis(5)
            } else {
                quiet_left
            };
            if poll_and_read(&mut self.clients, wait.min(deadline - now)) {
                last = Instant::now();
            }
        }
    }

    fn note_replies(&mut self) {
        for c in &self.clients {
            for reply in service_replies(&c.received) {
                if !self.replies.iter().any(|r| r == reply) {
                    self.replies.push(reply.to_vec());
                }
            }
        }
    }

    fn answer(&self) -> Answer {
        let mut clients = Map::new();
        for c in &self.clients {
            let normalized = normalize(&c.received, &self.replies);
            let mut entry = Map::new();
            entry.insert("closed".into(), Value::Bool(c.closed));
            entry.insert(
                "received".into(),
                Value::Array(normalized.into_iter().map(Value::String).collect()),
            );
            clients.insert(c.name.clone(), Value::Object(entry));
        }
        Value::Object(clients)
    }
}

/// Runs one exchange against `binary`; the answer, or an error of the runner.
fn run_exchange(
    ex: &Exchange,
    binary: &Path,
    nkeys: &HashMap<String, String>,
) -> Result<Answer, String> {
    let config = ex
        .config
        .as_ref()
        .map(|c| corpus_dir().join("configs").join(c));
    // JetStream's store: a directory of its own for each run of the exchange.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let store_dir = ex.jetstream.then(|| {
        std::env::temp_dir().join(format!(
            "tenet-diff-js-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ))
    });
    let extra_args: Vec<String> = match &store_dir {
        Some(dir) => vec!["-js".into(), "-sd".into(), dir.display().to_string()],
        None => Vec::new(),
    };
    let _cleanup = store_dir.map(RemoveOnDrop);
    let server = match start_server(binary, config.as_deref(), &extra_args) {
        Ok(server) => server,
        // A server that refuses the configuration is an answer too.
        Err(StartError::Exited) => return Ok(serde_json::json!({ "$server": "did not start" })),
        Err(StartError::Other(log)) => {
            return Err(format!("{} did not start:\n{log}", binary.display()))
        }
    };
    let mut run = Run {
        server,
        clients: Vec::new(),
        replies: Vec::new(),
        nkeys,
    };
    for step in &ex.steps {
        run.step(step).map_err(|e| {
            format!(
                "{}: {e}\nserver log:\n{}",
                ex.place(),
                run.server.log.lock().unwrap()
            )
        })?;
    }
    Ok(run.answer())
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- normalization -------------------------------------------------------------

/// Splits received bytes into lines, keeping each MSG/HMSG payload (with its
/// CRLF) as one frame of its own.
fn frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            out.push(rest);
            break;
        };
        let (line, tail) = rest.split_at(nl + 1);
        out.push(line);
        rest = tail;
        if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
            let size = line
                .trim_ascii_end()
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<usize>().ok());
            if let Some(size) = size {
                let take = (size + 2).min(rest.len());
                out.push(&rest[..take]);
                rest = &rest[take..];
            }
        }
    }
    out
}

/// Where `_R_.xxxxxx.yyyyyy` starts at `at`, its length.
fn service_reply_at(bytes: &[u8], at: usize) -> Option<usize> {
    let s = bytes.get(at..at + 17)?;
    let alnum = |t: &[u8]| t.iter().all(u8::is_ascii_alphanumeric);
    (s.starts_with(b"_R_.") && alnum(&s[4..10]) && s[10] == b'.' && alnum(&s[11..17])).then_some(17)
}

fn service_replies(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = service_reply_at(bytes, i) {
            out.push(&bytes[i..i + len]);
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

fn replace_replies(frame: &[u8], replies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len());
    let mut i = 0;
    while i < frame.len() {
        if let Some(len) = service_reply_at(frame, i) {
            let n = replies
                .iter()
                .position(|r| r[..] == frame[i..i + len])
                .map_or(0, |p| p + 1);
            out.extend_from_slice(format!("_R_.<{n}>").as_bytes());
            i += len;
        } else {
            out.push(frame[i]);
            i += 1;
        }
    }
    out
}

/// `INFO <json> \r\n` with the volatile values replaced and the members sorted.
fn normalize_info(line: &[u8]) -> Option<Vec<u8>> {
    let body = line.strip_prefix(b"INFO ")?.strip_suffix(b"\r\n")?;
    let (json, space) = match body.strip_suffix(b" ") {
        Some(j) => (j, " "),
        None => (body, ""),
    };
    let Value::Object(map) = serde_json::from_slice::<Value>(json).ok()? else {
        return None;
    };
    let sorted: BTreeMap<String, Value> = map
        .into_iter()
        .map(|(k, v)| {
            let v = if VOLATILE_INFO.contains(&k.as_str()) {
                Value::String(format!("<{k}>"))
            } else {
                v
            };
            (k, v)
        })
        .collect();
    let json = serde_json::to_string(&sorted).ok()?;
    Some(format!("INFO {json}{space}\r\n").into_bytes())
}

/// Bytes as text: printable ASCII as is, CR/LF/TAB as themselves (JSON shows
/// them as `\r \n \t`), a backslash doubled, anything else as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\r' | b'\n' | b'\t' | 0x20..=0x7e => s.push(b as char),
            _ => write!(s, "\\x{b:02x}").unwrap(),
        }
    }
    s
}

/// A `$SYS` event carries times and ids: its size and payload are replaced.
fn is_sys_event(frame: &[u8]) -> bool {
    frame.starts_with(b"MSG $SYS.") || frame.starts_with(b"HMSG $SYS.")
}

/// The round-trip time nats-server measures and puts in a request that crossed
/// a service import (`Nats-Request-Info: {"acc":"B","rtt":292378}`).
const REQUEST_INFO: &[u8] = b"Nats-Request-Info: ";

/// Replaces the number after `"rtt":` with `<rtt>`.
fn normalize_rtt(payload: &[u8]) -> Vec<u8> {
    let key = b"\"rtt\":";
    let Some(at) = payload.windows(key.len()).position(|w| w == key) else {
        return payload.to_vec();
    };
    let start = at + key.len();
    let end = start
        + payload[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    [&payload[..start], b"<rtt>", &payload[end..]].concat()
}

/// A direct get's header with the time the message was stored.
const TIME_STAMP: &[u8] = b"Nats-Time-Stamp: ";

/// JSON keys whose values are times or per-run ids.
const VOLATILE_KEYS: [&str; 9] = [
    "created",
    "id",
    "timestamp",
    "first_ts",
    "last_ts",
    "time",
    "now",
    "server_id",
    "last_active",
];

/// A consumer delivery's ack subject carries the stored message's time
/// (`$JS.ACK.<s>.<c>.<n>.<sseq>.<cseq>.<time>.<pending>`): masked.
fn mask_ack_time(line: &str) -> String {
    line.split(' ')
        .map(|token| {
            let parts: Vec<&str> = token.split('.').collect();
            if parts.len() == 9 && parts[0] == "$JS" && parts[1] == "ACK" {
                let mut parts = parts;
                parts[7] = "<time>";
                parts.join(".")
            } else {
                token.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if VOLATILE_KEYS.contains(&key.as_str()) && v.is_string() {
                    *v = Value::String("<masked>".into());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// A JetStream payload with its volatile parts masked: JSON parsed (so
/// compared as a structure) or a header block's time stamp.
fn normalize_js_payload(payload: &[u8]) -> String {
    let body = payload.strip_suffix(b"\r\n").unwrap_or(payload);
    if let Ok(mut json) = serde_json::from_slice::<Value>(body) {
        mask_json(&mut json);
        return format!("<json> {json}");
    }
    let text = String::from_utf8_lossy(payload);
    let masked: Vec<String> = text
        .split("\r\n")
        .map(|line| match line.strip_prefix("Nats-Time-Stamp: ") {
            Some(_) => "Nats-Time-Stamp: <masked>".to_string(),
            None => line.to_string(),
        })
        .collect();
    escape(masked.join("\r\n").as_bytes())
}

/// The control line with its last `n` tokens replaced by `<size>`.
fn without_sizes(line: &str, n: usize) -> String {
    let mut tokens: Vec<&str> = line.trim_end().split(' ').collect();
    let keep = tokens.len().saturating_sub(n);
    tokens.truncate(keep);
    tokens.extend(std::iter::repeat_n("<size>", n));
    format!("{}\r\n", tokens.join(" "))
}

fn normalize(bytes: &[u8], replies: &[Vec<u8>]) -> Vec<String> {
    let frames = frames(bytes);
    let mut out = Vec::new();
    let mut i = 0;
    while i < frames.len() {
        let frame = frames[i];
        let payload = frames.get(i + 1).copied().unwrap_or_default();
        let has_payload = frame.starts_with(b"MSG ") || frame.starts_with(b"HMSG ");
        if has_payload && is_sys_event(frame) {
            let sizes = if frame.starts_with(b"HMSG ") { 2 } else { 1 };
            out.push(without_sizes(&escape(frame), sizes));
            out.push("<$SYS event payload>".to_string());
            i += 2;
            continue;
        }
        if frame.starts_with(b"HMSG ")
            && payload
                .windows(REQUEST_INFO.len())
                .any(|w| w == REQUEST_INFO)
        {
            let line = escape(&replace_replies(frame, replies));
            out.push(without_sizes(&line, 2));
            out.push(escape(&normalize_rtt(payload)));
            i += 2;
            continue;
        }
        if has_payload
            && (payload.starts_with(b"{")
                || payload.windows(TIME_STAMP.len()).any(|w| w == TIME_STAMP))
        {
            // JetStream's answers: times and the sizes they change are
            // masked, JSON compared as a structure, runs of spaces in the
            // line folded (nats-server's empty reply leaves two).
            let line = escape(&replace_replies(frame, replies))
                .split(' ')
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let sizes = if frame.starts_with(b"HMSG ") { 2 } else { 1 };
            out.push(without_sizes(&line, sizes));
            out.push(normalize_js_payload(payload));
            i += 2;
            continue;
        }
        if let Some(info) = normalize_info(frame) {
            out.push(escape(&info));
        } else if has_payload {
            // nats-server's messages of its own (a direct get's status) leave
            // two spaces for their empty reply.
            let line = escape(&replace_replies(frame, replies));
            let line = line
                .split(' ')
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            out.push(mask_ack_time(&line));
        } else {
            out.push(escape(&replace_replies(frame, replies)));
        }
        i += 1;
    }
    out
}

// ----- recordings ----------------------------------------------------------------

fn recorded_dir() -> PathBuf {
    corpus_dir().join("recorded")
}

/// The answers of a recording file (`exchanges` member), or an empty map.
fn load_recording(path: &Path) -> Map<String, Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Map::new();
    };
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match value.get("exchanges") {
        Some(Value::Object(map)) => map.clone(),
        _ => panic!("{}: no `exchanges` object", path.display()),
    }
}

fn write_recording(path: &Path, recorded_with: &str, answers: Vec<(String, Answer)>) {
    let mut exchanges = Map::new();
    for (name, answer) in answers {
        exchanges.insert(name, answer);
    }
    let mut top = Map::new();
    top.insert("recorded_with".into(), Value::String(recorded_with.into()));
    top.insert("exchanges".into(), Value::Object(exchanges));
    let text = serde_json::to_string_pretty(&Value::Object(top)).unwrap() + "\n";
    std::fs::create_dir_all(path.parent().unwrap()).expect("create recorded/");
    std::fs::write(path, text).expect("write recording");
}

fn version_of(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
                + String::from_utf8_lossy(&o.stderr).trim()
        })
        .unwrap_or_else(|_| binary.display().to_string())
}

// ----- the test ------------------------------------------------------------------

/// Runs `jobs` (exchange index, binary) on [`THREADS`] threads.
fn run_all(
    corpus: &[Exchange],
    jobs: &[(usize, PathBuf)],
    nkeys: &HashMap<String, String>,
) -> Vec<Result<Answer, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Answer, String>>>> = Mutex::new(vec![None; jobs.len()]);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some((index, binary)) = jobs.get(j) else {
                    break;
                };
                let answer = run_exchange(&corpus[*index], binary, nkeys);
                results.lock().unwrap()[j] = Some(answer);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// Both answers, client by client, for a failure message.
fn show_pair(left_label: &str, left: &Value, right_label: &str, right: &Value) -> String {
    let mut s = String::new();
    if left.get("$server").is_some() || right.get("$server").is_some() {
        for (label, v) in [(left_label, left), (right_label, right)] {
            let shown = match v.get("$server") {
                Some(why) => format!("the server {}", why.as_str().unwrap_or_default()),
                None => format!("the server started and answered {v}"),
            };
            writeln!(s, "      {label}: {shown}").unwrap();
        }
        return s;
    }
    let mut names: Vec<&String> = Vec::new();
    for side in [left, right] {
        if let Value::Object(m) = side {
            for k in m.keys() {
                if !names.contains(&k) {
                    names.push(k);
                }
            }
        }
    }
    for name in names {
        let l = left.get(name.as_str()).unwrap_or(&Value::Null);
        let r = right.get(name.as_str()).unwrap_or(&Value::Null);
        let marker = if l == r { "  (same)" } else { "  DIFFERS" };
        writeln!(s, "    client {name}:{marker}").unwrap();
        if l != r {
            for (label, v) in [(left_label, l), (right_label, r)] {
                writeln!(s, "      {label}: {}", show_client(v)).unwrap();
            }
        }
    }
    s
}

fn show_client(v: &Value) -> String {
    match (v.get("received"), v.get("closed")) {
        (Some(Value::Array(lines)), Some(closed)) => {
            let text: String = lines.iter().filter_map(Value::as_str).collect();
            let closed = if closed == &Value::Bool(true) {
                ", then closed"
            } else {
                ", open"
            };
            format!("{:?}{closed}", text)
        }
        _ => v.to_string(),
    }
}

fn by_file(corpus: &[Exchange]) -> BTreeMap<&str, Vec<usize>> {
    let mut files: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, ex) in corpus.iter().enumerate() {
        files.entry(&ex.file).or_default().push(i);
    }
    files
}

#[test]
fn differential() {
    let started = Instant::now();
    let full = load_corpus();
    let mut corpus = full.clone();
    // For work on the corpus: only one file, or the exchanges whose name has this.
    if let Ok(only) = std::env::var("TENET_DIFF_ONLY") {
        corpus.retain(|e| e.file == only || e.name.contains(&only));
        println!("TENET_DIFF_ONLY={only}: {} exchanges", corpus.len());
    }
    let nkeys = load_nkeys();
    let nats = find_nats_server();
    let files = by_file(&corpus);
    let record = std::env::var("TENET_DIFF_RECORD").unwrap_or_default();

    if record == "tenet" {
        record_tenet_differences(&full, &corpus, &nkeys);
        return;
    }
    if !record.is_empty() {
        let nats = nats.expect("TENET_DIFF_RECORD needs nats-server");
        record_reference(&full, &corpus, &nats, &nkeys);
        return;
    }

    let reference_only = is_reference_server();
    let nats = if reference_only {
        Some(server_binary().to_path_buf())
    } else {
        nats
    };
    let tenet = (!reference_only).then(|| server_binary().to_path_buf());
    let tenet_name = tenet
        .as_ref()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .unwrap_or_default();

    let mut recorded: HashMap<String, Value> = HashMap::new();
    for stem in files.keys() {
        for (k, v) in load_recording(&recorded_dir().join(format!("{stem}.json"))) {
            recorded.insert(k, v);
        }
    }
    let tenet_expected = load_recording(&recorded_dir().join("differences_tenet.json"));

    let mut jobs: Vec<(usize, PathBuf)> = Vec::new();
    for i in 0..corpus.len() {
        if let Some(t) = &tenet {
            jobs.push((i, t.clone()));
        }
        if let Some(n) = &nats {
            jobs.push((i, n.clone()));
        }
    }
    let results = run_all(&corpus, &jobs, &nkeys);
    let mut tenet_answers: HashMap<usize, Result<Answer, String>> = HashMap::new();
    let mut nats_answers: HashMap<usize, Result<Answer, String>> = HashMap::new();
    for ((i, binary), result) in jobs.iter().zip(results) {
        if Some(binary) == tenet.as_ref() {
            tenet_answers.insert(*i, result);
        } else {
            nats_answers.insert(*i, result);
        }
    }

    let mut failures: Vec<String> = Vec::new();
    let mut known_bugs: Vec<String> = Vec::new();
    let mut fixed_bugs: Vec<String> = Vec::new();
    let (mut matches, mut differences, mut live_matches) = (0, 0, 0);

    for (i, ex) in corpus.iter().enumerate() {
        let head = format!("{} ({})", ex.name, ex.place());
        let Some(want) = recorded.get(&ex.name) else {
            failures.push(format!(
                "{head}: no recorded nats-server answer (run with TENET_DIFF_RECORD=1)"
            ));
            continue;
        };
        if let Some(mut live) = nats_answers.remove(&i) {
            // nats-server's own timing varies (the order of its advisories
            // under load): an answer unlike the recording is asked again
            // twice before it counts as changed.
            for _ in 0..2 {
                if live.as_ref().is_ok_and(|l| l == want) {
                    break;
                }
                let again = nats.as_ref().expect("a live answer came from it").clone();
                live = run_all(&corpus, &[(i, again)], &nkeys)
                    .pop()
                    .expect("one answer");
            }
            match live {
                Ok(live) if &live == want => live_matches += 1,
                Ok(live) => failures.push(format!(
                    "{head}: nats-server no longer gives its recorded answer (flaky or timing-dependent?)\n{}",
                    show_pair("recorded", want, "live", &live)
                )),
                Err(e) => failures.push(format!("{head}: nats-server run failed: {e}")),
            }
        }
        let Some(got) = tenet_answers.remove(&i) else {
            continue;
        };
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{head}: {tenet_name} run failed: {e}"));
                continue;
            }
        };
        if let Some(difference) = &ex.difference {
            let Some(expected) = tenet_expected.get(&ex.name) else {
                failures.push(format!(
                    "{head}: difference {difference}: no recorded tenet answer \
                     (review, then TENET_DIFF_RECORD=tenet)"
                ));
                continue;
            };
            if expected == want {
                failures.push(format!(
                    "{head}: difference {difference}: tenet's recorded answer equals nats-server's; \
                     the exchange does not show the difference"
                ));
            } else if &got != expected {
                failures.push(format!(
                    "{head}: difference {difference}: {tenet_name} does not give its recorded answer\n{}",
                    show_pair("tenet recorded", expected, tenet_name.as_str(), &got)
                ));
            } else {
                differences += 1;
            }
            continue;
        }
        let pair = || show_pair("nats-server", want, tenet_name.as_str(), &got);
        match (&got == want, &ex.known_bug) {
            (true, None) => matches += 1,
            (true, Some(bug)) => {
                matches += 1;
                fixed_bugs.push(format!("{head}: {bug}"));
            }
            (false, Some(bug)) => known_bugs.push(format!("{head}: {bug}\n{}", pair())),
            (false, None) => failures.push(format!(
                "{head}: {tenet_name} differs from nats-server 2.9.10\n{}",
                pair()
            )),
        }
    }

    // Every wire-visible README row has an exchange (in the whole corpus).
    let whole = corpus.len() == full.len();
    for (name, row) in DIFFERENCES.iter().filter(|_| whole) {
        if !corpus.iter().any(|e| e.difference.as_deref() == Some(name)) {
            failures.push(format!("difference {name} (README: {row}) has no exchange"));
        }
    }

    let per_file: Vec<String> = files
        .iter()
        .map(|(f, v)| format!("{f} {}", v.len()))
        .collect();
    println!(
        "differential: {} exchanges ({})",
        corpus.len(),
        per_file.join(", ")
    );
    if tenet.is_some() {
        let ordinary = corpus.iter().filter(|e| e.difference.is_none()).count();
        println!(
            "  {tenet_name} vs nats-server 2.9.10 (recorded): {matches} of {ordinary} match, \
             {} known bugs",
            known_bugs.len()
        );
        println!(
            "  intentional differences checked both ways: {differences} of {}",
            corpus.len() - ordinary
        );
    } else {
        println!("  TENET_TEST_BINARY is nats-server: only the live reference check runs");
    }
    match &nats {
        Some(n) => println!(
            "  live {} vs its recording: {live_matches} of {} match",
            n.display(),
            corpus.len()
        ),
        None => println!("  nats-server not found: the recording alone is the reference"),
    }
    println!("  took {:.1} s", started.elapsed().as_secs_f64());
    if !known_bugs.is_empty() {
        println!(
            "\n*** {} KNOWN BUGS: {tenet_name} differs from nats-server (engine fix pending) ***",
            known_bugs.len()
        );
        for bug in &known_bugs {
            println!("  - {bug}");
        }
    }
    for fixed in &fixed_bugs {
        println!("\n*** known bug no longer reproduces, remove its `known-bug:` line: {fixed}");
    }
    if !failures.is_empty() {
        panic!(
            "{} differential failures:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// Runs `corpus` twice against `binary`; the answers, which must agree (else
/// the exchange is timing-dependent and must be made deterministic).
fn run_twice(
    corpus: &[Exchange],
    binary: &Path,
    nkeys: &HashMap<String, String>,
) -> HashMap<String, Answer> {
    let jobs: Vec<(usize, PathBuf)> = (0..corpus.len())
        .flat_map(|i| [(i, binary.to_path_buf()), (i, binary.to_path_buf())])
        .collect();
    let results = run_all(corpus, &jobs, nkeys);
    let mut answers = HashMap::new();
    let mut unstable = Vec::new();
    for (ex, chunk) in corpus.iter().zip(results.chunks(2)) {
        match (&chunk[0], &chunk[1]) {
            (Ok(a), Ok(b)) if a == b => {
                answers.insert(ex.name.clone(), a.clone());
            }
            (Ok(a), Ok(b)) => unstable.push(format!(
                "{} ({}): two runs disagree\n{}",
                ex.name,
                ex.place(),
                show_pair("run 1", a, "run 2", b)
            )),
            (Err(e), _) | (_, Err(e)) => unstable.push(format!("{}: {e}", ex.name)),
        }
    }
    assert!(
        unstable.is_empty(),
        "nothing recorded: {} exchanges are not deterministic:\n\n{}",
        unstable.len(),
        unstable.join("\n\n")
    );
    answers
}

/// Writes `fresh` answers into the recording at `path`, keeping the recorded
/// answers of the other exchanges of `names` (in that order) and dropping the rest.
fn update_recording(path: &Path, with: &str, names: &[&str], fresh: &HashMap<String, Answer>) {
    let old = load_recording(path);
    let list = names
        .iter()
        .filter_map(|&n| {
            let answer = fresh.get(n).or_else(|| old.get(n))?;
            Some((n.to_string(), answer.clone()))
        })
        .collect();
    write_recording(path, with, list);
}

/// `TENET_DIFF_RECORD=1`: the exchanges of `corpus` against nats-server.
fn record_reference(
    full: &[Exchange],
    corpus: &[Exchange],
    nats: &Path,
    nkeys: &HashMap<String, String>,
) {
    let fresh = run_twice(corpus, nats, nkeys);
    let with = version_of(nats);
    for (stem, indices) in by_file(full) {
        let names: Vec<&str> = indices.iter().map(|&i| full[i].name.as_str()).collect();
        update_recording(
            &recorded_dir().join(format!("{stem}.json")),
            &with,
            &names,
            &fresh,
        );
    }
    println!(
        "recorded {} exchanges from {with} into {}",
        fresh.len(),
        recorded_dir().display()
    );
}

/// `TENET_DIFF_RECORD=tenet`: tenet's answers to the intentional differences.
fn record_tenet_differences(
    full: &[Exchange],
    corpus: &[Exchange],
    nkeys: &HashMap<String, String>,
) {
    let tenet = server_binary().to_path_buf();
    let chosen: Vec<Exchange> = corpus
        .iter()
        .filter(|e| e.difference.is_some())
        .cloned()
        .collect();
    let fresh = run_twice(&chosen, &tenet, nkeys);
    let names: Vec<&str> = full
        .iter()
        .filter(|e| e.difference.is_some())
        .map(|e| e.name.as_str())
        .collect();
    let name = tenet.file_name().unwrap().to_string_lossy().into_owned();
    update_recording(
        &recorded_dir().join("differences_tenet.json"),
        &format!("{name} (reviewed by hand: tenet's intended answers)"),
        &names,
        &fresh,
    );
    println!("recorded tenet's answers to {} differences", fresh.len());
}

#[test]
fn corpus_escapes_and_normalization() {
    assert_eq!(
        unescape(r"PUB a 2\r\nhi\r\n\t\\\x00\{3:ab}").unwrap(),
        b"PUB a 2\r\nhi\r\n\t\\\x00ababab"
    );
    assert!(unescape(r"\q").is_err());
    let bytes = b"INFO {\"server_id\":\"NX\",\"port\":4222,\"max_payload\":5} \r\n\
MSG a 1 _R_.abcdef.ghijkl 4\r\nPONG\r\nPONG\r\nMSG b 1 _R_.zzzzzz.yyyyyy 0\r\n\r\n";
    let replies: Vec<Vec<u8>> = service_replies(bytes).iter().map(|r| r.to_vec()).collect();
    assert_eq!(replies.len(), 2);
    assert_eq!(
        normalize(bytes, &replies),
        [
            "INFO {\"max_payload\":5,\"port\":\"<port>\",\"server_id\":\"<server_id>\"} \r\n",
            "MSG a 1 _R_.<1> 4\r\n",
            "PONG\r\n",
            "PONG\r\n",
            "MSG b 1 _R_.<2> 0\r\n",
            "\r\n",
        ]
    );
    let mut t = SentTracker::default();
    t.feed(b"PUB a 6\r\nPING\r\n\r\nping\r\nPI");
    t.feed(b"NG\r\n");
    assert_eq!(t.pings, 2);
}
