//! Harness for tenet's black-box suites: starts a server on 127.0.0.1 (the real
//! `tenet-mio` binary, tenet in-process, or the reference nats-server named by
//! `TENET_TEST_BINARY`) and talks the raw NATS protocol to it with exact-byte checks.

// README.md as documentation, so that its ```rust blocks are doctests
// (`cargo test -p tenet-tests --doc`): compiled, and run unless marked `no_run`
// (those need a server: tests/suites/readme.rs runs the same lines against one).
// rustdoc names a failing one `ReadmeDoctests (line N)`: its block starts on
// README.md's line N - 9.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any single expectation waits for the server.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The CONNECT a well-behaved raw client sends (real clients turn verbose and pedantic off).
pub const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n";
/// The CONNECT of a raw client that also wants headers.
pub const CONNECT_HEADERS: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\n";

/// True when the suites run against the reference nats-server
/// (`TENET_TEST_BINARY` names a `nats-server` executable).
pub fn is_reference_server() -> bool {
    std::env::var_os("TENET_TEST_BINARY").is_some_and(|p| {
        Path::new(&p)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("nats-server"))
    })
}

/// For tests of tenet-only behaviour: returns true (and prints why) when the
/// target is the reference server, so the test returns early.
pub fn skip_on_reference(why: &str) -> bool {
    if is_reference_server() {
        println!("note: skipped against nats-server: {why}");
        true
    } else {
        false
    }
}

/// The tenet binary a test executable exercises. Every suite in `tests/suites/`
/// is compiled into two test targets: `<suite>_async_std` runs `tenet-async-std`,
/// `<suite>` runs `tenet-mio`.
pub fn runtime_binary_name() -> &'static str {
    let exe = std::env::current_exe().expect("current_exe");
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("_async_std") {
        "tenet-async-std"
    } else {
        "tenet-mio"
    }
}

/// The server executable under test: `TENET_TEST_BINARY`, or the runtime's binary
/// built once per test process into the same target directory and profile as the test.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| match std::env::var_os("TENET_TEST_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_binary(runtime_binary_name()),
    })
}

fn build_binary(name: &str) -> PathBuf {
    // current_exe() is <target>/<profile>/deps/<test executable>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", name, "--bin", name])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let binary = profile_dir.join(name);
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

/// A port nobody listens on right now, for tests that must write a port into a
/// configuration (the kernel picks it; another process may take it before it
/// is used). `TestServer` itself lets the server pick its port (`-p -1`).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Log lines captured from a server process, with a condition variable to wait on.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    changed: Condvar,
    /// Output streams read to their end.
    ended: AtomicUsize,
}

impl Log {
    fn append_lines_from(self: Arc<Self>, reader: impl Read + Send + 'static) {
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let mut text = self.text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                self.changed.notify_all();
            }
            let _text = self.text.lock().unwrap();
            self.ended.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_all();
        });
    }

    /// Waits (bounded) until both output streams of an exited process are read
    /// to their end, so the log holds everything it printed.
    fn wait_for_end(&self, timeout: Duration) {
        self.wait_for(timeout, |_| {
            (self.ended.load(Ordering::SeqCst) >= 2).then_some(())
        });
    }

    fn snapshot(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until `found` accepts the log text; returns its answer or None on timeout.
    fn wait_for<T>(&self, timeout: Duration, found: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut text = self.text.lock().unwrap();
        loop {
            if let Some(v) = found(&text) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            text = self.changed.wait_timeout(text, deadline - now).unwrap().0;
        }
    }
}

/// The server process and what belongs to it.
struct Running {
    child: Child,
    log: Arc<Log>,
    /// A configuration file written for this server, removed with it.
    config: Option<PathBuf>,
}

/// A server under test; killed (or shut down) when dropped.
pub struct TestServer {
    port: u16,
    running: Running,
}

impl TestServer {
    /// The server binary with default options.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    /// The server binary with `-a 127.0.0.1 -p <free port>` plus `args`.
    pub fn start_with_args(args: &[&str]) -> TestServer {
        Self::start_binary(args, None)
    }

    fn start_binary(args: &[&str], config: Option<PathBuf>) -> TestServer {
        // `-p -1`: the server binds a port of its own choosing and logs it, so
        // two tests can never race for one port.
        let mut full = vec!["-a", "127.0.0.1", "-p", "-1"];
        full.extend_from_slice(args);
        let config_arg;
        if let Some(path) = &config {
            config_arg = path.to_string_lossy().into_owned();
            full.extend_from_slice(&["-c", &config_arg]);
        }
        let (mut child, log) = spawn_process(&full);
        let log_file = args
            .windows(2)
            .find(|pair| matches!(pair[0], "-l" | "--log" | "-log"))
            .map(|pair| pair[1]);
        match wait_until_ready(&mut child, &log, log_file) {
            Ok(port) => TestServer {
                port,
                running: Running { child, log, config },
            },
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                log.wait_for_end(Duration::from_secs(2));
                if let Some(path) = config {
                    let _ = std::fs::remove_file(path);
                }
                panic!(
                    "{} did not start: {why}\n{}",
                    server_binary().display(),
                    log.snapshot()
                );
            }
        }
    }

    /// The server binary with exactly `args` (no `-a`/`-p` added); the port is read
    /// from the `Listening for client connections on <host>:<port>` log line.
    pub fn start_with_exact_args(args: &[&str]) -> TestServer {
        let (mut child, log) = spawn_process(args);
        let port = log.wait_for(START_TIMEOUT, |text| {
            let rest = text.split("Listening for client connections on ").nth(1)?;
            let addr = rest.split_whitespace().next()?;
            addr.rsplit(':').next()?.parse::<u16>().ok()
        });
        match port {
            Some(port) => TestServer {
                port,
                running: Running {
                    child,
                    log,
                    config: None,
                },
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no listening line in the log:\n{}", log.snapshot());
            }
        }
    }

    /// A server with limits that have no command-line flag: the real binary with
    /// an equivalent configuration file (the same file works for nats-server).
    pub fn with_options(opts: tenet_core::Options) -> TestServer {
        let (path, args) = write_reference_config(&opts);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_binary(&args, Some(path))
    }

    /// The server binary with `-c <file>` (plus `args`), the file holding `config`;
    /// the file is removed with the server. The same text works for nats-server.
    pub fn with_config(config: &str, args: &[&str]) -> TestServer {
        Self::start_binary(args, Some(write_config_file(config)))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `nats://127.0.0.1:<port>`, for real clients.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A raw client that has read the server's INFO.
    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port)
    }

    fn process(&mut self) -> (&mut Child, &Arc<Log>) {
        (&mut self.running.child, &self.running.log)
    }

    /// Everything the server process has logged so far.
    pub fn logs(&mut self) -> String {
        self.process().1.snapshot()
    }

    /// Waits (bounded) for a log line containing `needle`; true if it appeared.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        self.process()
            .1
            .wait_for(timeout, |t| t.contains(needle).then_some(()))
            .is_some()
    }

    /// The server process id.
    pub fn pid(&mut self) -> u32 {
        self.process().0.id()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&mut self, signal: i32) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits (bounded) for the process to exit; None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.process().0;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let Running { child, config, .. } = &mut self.running;
        let _ = child.kill();
        let _ = child.wait();
        if let Some(path) = config {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn spawn_process(args: &[&str]) -> (Child, Arc<Log>) {
    let mut child = Command::new(server_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", server_binary().display()));
    let log = Arc::new(Log::default());
    log.clone()
        .append_lines_from(child.stderr.take().expect("stderr"));
    log.clone()
        .append_lines_from(child.stdout.take().expect("stdout"));
    (child, log)
}

/// The value after `label` in a log text, up to the end of its word.
fn logged_after<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.split(label).nth(1)?.split_whitespace().next()
}

/// Waits until the server we started is ready and returns its port: its log
/// names the port it listens on and its server id (`  ID:       N...`, as
/// nats-server and tenet both print it), and a connection to that port gets
/// an INFO with that same id, so a test never talks to a server it did not
/// start. With `-l FILE` the log is read from that file.
fn wait_until_ready(child: &mut Child, log: &Log, log_file: Option<&str>) -> Result<u16, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen_other = None;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("server exited early with {status}"));
        }
        let mut text = log.snapshot();
        if let Some(file) = log_file {
            text.push_str(&std::fs::read_to_string(file).unwrap_or_default());
        }
        let port = logged_after(&text, "Listening for client connections on ")
            .and_then(|addr| addr.rsplit(':').next()?.parse::<u16>().ok());
        let id = logged_after(&text, "  ID:       ");
        if let (Some(port), Some(id)) = (port, id) {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                // Read the INFO so the probe is a complete, cleanly closed connection.
                stream.set_read_timeout(Some(TIMEOUT)).ok();
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() {
                    let answered = line
                        .strip_prefix("INFO ")
                        .and_then(|json| serde_json::from_str::<Value>(json).ok())
                        .and_then(|info| Some(info.get("server_id")?.as_str()?.to_string()));
                    match answered {
                        Some(answered) if answered == id => return Ok(port),
                        Some(answered) => seen_other = Some(answered),
                        None => {}
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(match seen_other {
                Some(other) => format!("its port is served by another server ({other})"),
                None => format!("not ready after {START_TIMEOUT:?}"),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a nats-server config file equivalent to `opts`; returns it and extra flags.
fn write_reference_config(opts: &tenet_core::Options) -> (PathBuf, Vec<String>) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut conf = format!(
        "max_payload: {}\nmax_control_line: {}\nmax_connections: {}\n\
         max_subscriptions: {}\nmax_pending: {}\nping_interval: \"{}ms\"\nping_max: {}\n",
        opts.max_payload,
        opts.max_control_line,
        opts.max_connections,
        opts.max_subscriptions,
        opts.max_pending,
        opts.ping_interval.as_millis(),
        opts.ping_max,
    );
    if let Some(name) = &opts.server_name {
        conf.push_str(&format!("server_name: \"{name}\"\n"));
    }
    let path = std::env::temp_dir().join(format!(
        "tenet-tests-{}-{}.conf",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, conf).expect("write config file");
    let mut args = Vec::new();
    if opts.debug {
        args.push("-D".to_string());
    }
    if opts.trace {
        args.push("-V".to_string());
    }
    (path, args)
}

/// Writes `config` to a new file in the temporary directory and returns its path
/// (the caller removes it; [`TestServer::with_config`] does that itself).
pub fn write_config_file(config: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "tenet-tests-{}-cfg{}.conf",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, config).expect("write config file");
    path
}

/// Printable form of protocol bytes for failure messages (long runs are elided).
pub fn show(bytes: &[u8]) -> String {
    let escaped = |b: &[u8]| b.escape_ascii().to_string();
    if bytes.len() <= 600 {
        format!("\"{}\" ({} bytes)", escaped(bytes), bytes.len())
    } else {
        format!(
            "\"{}\" ... \"{}\" ({} bytes)",
            escaped(&bytes[..300]),
            escaped(&bytes[bytes.len() - 300..]),
            bytes.len()
        )
    }
}

enum Fill {
    Data,
    Eof,
    Timeout,
    Error(io::Error),
}

/// A TCP client that speaks raw protocol bytes and checks the server's bytes exactly.
pub struct RawClient {
    stream: TcpStream,
    /// Bytes received but not yet consumed by an expectation.
    pending: Vec<u8>,
    info: Value,
    /// A CONNECT with `"protocol":1` was sent and no PONG has been read since:
    /// tenet follows that first PONG with an INFO carrying `connect_info`.
    connect_info_due: bool,
    /// The control line being sent, to spot a CONNECT even when sent byte by byte.
    sent_line: Vec<u8>,
}

impl RawClient {
    /// Connects and reads the server's INFO line.
    pub fn connect(port: u16) -> RawClient {
        let mut client = Self::connect_tcp(port);
        client.info = client.read_info();
        client
    }

    /// Connects without reading anything.
    pub fn connect_tcp(port: u16) -> RawClient {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        // Writes are bounded too: a server that stops reading must not hang a test.
        stream
            .set_write_timeout(Some(TIMEOUT))
            .expect("write timeout");
        RawClient {
            stream,
            pending: Vec::new(),
            info: Value::Null,
            connect_info_due: false,
            sent_line: Vec::new(),
        }
    }

    /// The INFO read at connect time.
    pub fn info(&self) -> &Value {
        &self.info
    }

    /// The local port of this connection (the server's view of `client_port`).
    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local_addr").port()
    }

    /// Shuts down the sending side (the server reads EOF; it can still write).
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown(Write)");
    }

    /// Closes the connection with a TCP reset (SO_LINGER 0) instead of a FIN.
    pub fn abort(self) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a pointer to a live linger.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
        drop(self.stream);
    }

    /// Shrinks the kernel receive buffer (SO_RCVBUF), so a client that stops
    /// reading backs data up into the server quickly.
    pub fn set_recv_buffer(&self, bytes: usize) {
        use std::os::fd::AsRawFd;
        let size = libc::c_int::try_from(bytes).expect("buffer size");
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt(SO_RCVBUF)");
    }

    fn fill(&mut self, deadline: Instant) -> Fill {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Fill::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait)).expect("timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => return Fill::Eof,
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Fill::Data;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Fill::Error(e),
            }
        }
    }

    /// Reads one line (through `\r\n`) and returns it with the terminator.
    pub fn read_line(&mut self) -> Vec<u8> {
        match self.try_read_line() {
            Ok(line) => line,
            Err(why) => panic!("{why} while reading a line; got {}", show(&self.pending)),
        }
    }

    /// Like [`RawClient::read_line`], but a close, reset or timeout is an `Err`.
    pub fn try_read_line(&mut self) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.pending.drain(..i + 2).collect());
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Eof => return Err("the connection was closed".into()),
                Fill::Timeout => return Err(format!("no complete line within {TIMEOUT:?}")),
                Fill::Error(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Reads an `INFO <json> \r\n` line and returns the JSON.
    pub fn read_info(&mut self) -> Value {
        let line = self.read_line();
        let json = line
            .strip_prefix(b"INFO ")
            .unwrap_or_else(|| panic!("expected an INFO line, got {}", show(&line)));
        serde_json::from_slice(json)
            .unwrap_or_else(|e| panic!("INFO JSON does not parse ({e}): {}", show(&line)))
    }

    /// Writes all of `bytes`, panicking on an error.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if let Err(e) = self.try_send(bytes) {
            panic!("sending {} failed: {e}", show(bytes));
        }
    }

    /// Writes all of `bytes`, returning any error (for peers expected to close).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        let bytes = bytes.as_ref();
        self.note_connect(bytes);
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    fn note_connect(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b != b'\n' {
                if self.sent_line.len() < 64 * 1024 {
                    self.sent_line.push(b);
                }
                continue;
            }
            let line = std::mem::take(&mut self.sent_line);
            if line.len() > 8 && line[..8].eq_ignore_ascii_case(b"CONNECT ") {
                self.connect_info_due = line.windows(12).any(|w| w == b"\"protocol\":1");
            }
        }
    }

    /// Reads exactly `want.len()` bytes and fails with a readable diff unless they
    /// are `want`. Fails as soon as a received byte differs.
    pub fn expect(&mut self, want: impl AsRef<[u8]>) {
        let want = want.as_ref();
        let deadline = Instant::now() + TIMEOUT;
        // Bytes already compared: each read only checks what it added.
        let mut checked = 0;
        loop {
            let n = self.pending.len().min(want.len());
            if self.pending[checked..n] != want[checked..n] {
                // Read a little more so the failure shows what the server was saying.
                let _ = self.fill(Instant::now() + Duration::from_millis(100));
                let at = self
                    .pending
                    .iter()
                    .zip(want)
                    .take_while(|(a, b)| a == b)
                    .count();
                panic!(
                    "unexpected bytes from the server (first difference at byte {at})\n  \
                     expected: {}\n  received: {}",
                    show(want),
                    show(&self.pending)
                );
            }
            if self.pending.len() >= want.len() {
                self.pending.drain(..want.len());
                return;
            }
            checked = n;
            let why = match self.fill(deadline) {
                Fill::Data => continue,
                Fill::Eof => "the connection was closed".to_string(),
                Fill::Timeout => format!("timed out after {TIMEOUT:?}"),
                Fill::Error(e) => format!("read error: {e}"),
            };
            panic!(
                "{why}\n  expected: {}\n  received: {}",
                show(want),
                show(&self.pending)
            );
        }
    }

    /// Sends `PING` and expects `PONG` (a barrier: the server has processed
    /// everything sent before). The first PONG after a protocol-1 CONNECT is
    /// followed, on tenet only, by an INFO with `connect_info`, which is checked here.
    pub fn ping(&mut self) {
        self.send(b"PING\r\n");
        self.expect_pong();
    }

    /// Expects `PONG\r\n` (plus tenet's connect-info INFO when due, see [`RawClient::ping`]).
    pub fn expect_pong(&mut self) {
        self.expect(b"PONG\r\n");
        self.expect_connect_info_if_due();
    }

    /// After a PONG read by other means: on tenet, reads and checks the INFO with
    /// `connect_info` that follows the first PONG after a protocol-1 CONNECT.
    pub fn expect_connect_info_if_due(&mut self) {
        if std::mem::take(&mut self.connect_info_due) && !is_reference_server() {
            let info = self.read_info();
            assert_eq!(info["connect_info"], true, "second INFO: {info}");
            assert_eq!(info["remote_account"], "$G", "second INFO: {info}");
        }
    }

    /// Sends a PING and reads lines until its PONG, letting the server's own
    /// PINGs (the first one measures the round trip) go by; fails if the
    /// connection is gone or anything else arrives.
    pub fn ping_past_server_pings(&mut self) {
        self.send(b"PING\r\n");
        loop {
            let line = self.try_read_line().expect("the client is still served");
            if line == b"PONG\r\n" {
                return;
            }
            assert!(line == b"PING\r\n", "expected a PONG, got {}", show(&line));
        }
    }

    /// Reads until `count` MSG lines have arrived (skipping their payloads,
    /// which must not contain line breaks, and the server's PINGs) and
    /// returns how many did; fails on anything else or a timeout.
    pub fn read_msgs(&mut self, count: usize) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = 0;
        let mut expect_payload = false;
        while seen < count {
            let mut used = 0;
            while let Some(i) = self.pending[used..].windows(2).position(|w| w == b"\r\n") {
                let line = &self.pending[used..used + i];
                if expect_payload {
                    expect_payload = false;
                } else if line.starts_with(b"MSG ") {
                    seen += 1;
                    expect_payload = true;
                } else {
                    assert!(line == b"PING", "expected a MSG, got {}", show(line));
                }
                used += i + 2;
            }
            self.pending.drain(..used);
            if seen >= count {
                break;
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Eof => panic!("closed after {seen} of {count} messages"),
                Fill::Timeout => panic!("{seen} of {count} messages within {TIMEOUT:?}"),
                Fill::Error(e) => panic!("read error after {seen} of {count} messages: {e}"),
            }
        }
        seen
    }

    /// Sends the standard CONNECT and completes a PING/PONG round trip.
    pub fn handshake(&mut self) {
        self.send(CONNECT);
        self.ping();
    }

    /// Sends the header-enabled CONNECT and completes a PING/PONG round trip.
    pub fn handshake_headers(&mut self) {
        self.send(CONNECT_HEADERS);
        self.ping();
    }

    /// Everything received within `duration` (stops early on close).
    pub fn read_for(&mut self, duration: Duration) -> Vec<u8> {
        let deadline = Instant::now() + duration;
        while let Fill::Data = self.fill(deadline) {}
        std::mem::take(&mut self.pending)
    }

    /// Fails if anything arrives, or the connection closes, within `duration`.
    pub fn expect_nothing(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        loop {
            if !self.pending.is_empty() {
                panic!("expected nothing, received {}", show(&self.pending));
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Timeout => return,
                Fill::Eof => panic!("expected nothing, but the connection was closed"),
                Fill::Error(e) => panic!("expected nothing, but got a read error: {e}"),
            }
        }
    }

    /// Reads until the server closes (EOF or reset) and returns what arrived
    /// before; fails if the connection is still open after the timeout.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Eof | Fill::Error(_) => return std::mem::take(&mut self.pending),
                Fill::Timeout => panic!(
                    "connection still open after {TIMEOUT:?}; received {}",
                    show(&self.pending)
                ),
            }
        }
    }

    /// Expects the server to close the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        let rest = self.read_until_closed();
        assert!(
            rest.is_empty(),
            "expected a close with nothing more, received {}",
            show(&rest)
        );
    }
}

/// Datagrams received on `udp` until one contains `needle` (bounded).
pub fn datagrams_until(udp: &std::net::UdpSocket, needle: &str) -> Vec<String> {
    udp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !got.last().is_some_and(|m: &String| m.contains(needle)) {
        match udp.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("no syslog message with {needle:?} ({e}); got {got:#?}"),
        }
    }
    got
}

/// Protocol lines as a client sends or receives them, with their sizes
/// counted.
pub mod wire {
    /// `PUB <subject> <len>\r\n<payload>\r\n`.
    pub fn publish(subject: &str, payload: &str) -> String {
        format!("PUB {subject} {}\r\n{payload}\r\n", payload.len())
    }

    /// `PUB <subject> <reply> <len>\r\n<payload>\r\n`.
    pub fn request(subject: &str, reply: &str, payload: &str) -> String {
        format!("PUB {subject} {reply} {}\r\n{payload}\r\n", payload.len())
    }

    /// `MSG <subject> <sid> <len>\r\n<payload>\r\n`.
    pub fn msg(subject: &str, sid: u32, payload: &str) -> String {
        format!("MSG {subject} {sid} {}\r\n{payload}\r\n", payload.len())
    }

    /// `MSG <subject> <sid> <reply> <len>\r\n<payload>\r\n`.
    pub fn msg_reply(subject: &str, sid: u32, reply: &str, payload: &str) -> String {
        format!(
            "MSG {subject} {sid} {reply} {}\r\n{payload}\r\n",
            payload.len()
        )
    }
}

/// Runs the server binary to completion (bounded); returns its status and stdout+stderr.
pub fn run_binary(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(server_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the server binary");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("`{}` did not exit within 10 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// Runs a nats-py (Python) script with `args` (CI installs nats-py); fails
/// the test with everything it printed unless it succeeds. Returns what it
/// printed on standard output.
pub fn nats_py(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (CI installs it with nats-py)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the nats-py script failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
