//! tenet-load: the connection and subscription load behind `tests/bench/compare.sh`.
//!
//! It talks the raw NATS protocol to any server (tenet or nats-server) and reads
//! the server's resident memory from `/proc/<pid>/status`, so both servers are
//! measured by the same client:
//!
//! ```text
//! tenet-load idle --addr 127.0.0.1:14222 --pid PID [--conns 10000] [--tls-ca CA.pem]
//! tenet-load subs --addr 127.0.0.1:14222 --pid PID [--subjects 100000] [--subs 1000000]
//!                 [--conns 10] [--publishes 200000]
//! tenet-load stream-wait --addr 127.0.0.1:14240 --pid PID --stream JSBENCH --messages 1000000
//!                 --since EPOCH_SECS [--timeout 600]
//! ```
//!
//! `stream-wait` times a restart: it polls (connect, then `$JS.API.STREAM.INFO.<stream>`
//! requests) from its own start until the stream's state shows `--messages` messages
//! (sequences 1 to `--messages`), and reports the seconds since `--since` (the wall-clock
//! time, in seconds since the epoch, at which the caller started the server) and the
//! server's resident memory at that moment.
//!
//! Each command prints one line of `key=value` figures.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the server gets to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// The longest any phase may take before the run is declared failed.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n";
/// A client that gets a 503 status at once for a request nobody answers yet.
const CONNECT_NO_RESPONDERS: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\nPING\r\n";
/// stream-wait: the pause between two polls.
const POLL: Duration = Duration::from_millis(5);
/// stream-wait: how long one STREAM.INFO request may go unanswered before the
/// connection is dropped and a new one tried.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: tenet-load idle|subs|stream-wait --addr HOST:PORT --pid PID [options]");
        return ExitCode::from(2);
    };
    let flags = match parse_flags(rest) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("tenet-load: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "idle" => idle(&flags),
        "subs" => subs(&flags),
        "stream-wait" => stream_wait(&flags),
        other => Err(format!(
            "unknown command {other:?} (idle, subs or stream-wait)"
        )),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tenet-load {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Flags {
    addr: String,
    pid: u32,
    values: HashMap<String, u64>,
    stream: Option<String>,
    since: Option<f64>,
    /// idle: connect over TLS, trusting this CA (PEM).
    tls_ca: Option<String>,
}

impl Flags {
    fn number(&self, name: &str, default: u64) -> u64 {
        self.values.get(name).copied().unwrap_or(default)
    }
}

fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut addr = None;
    let mut pid = None;
    let mut values = HashMap::new();
    let mut stream = None;
    let mut since = None;
    let mut tls_ca = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("expected a --flag, got {flag:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        match name {
            "addr" => addr = Some(value.clone()),
            "pid" => pid = Some(value.parse().map_err(|_| format!("bad pid {value:?}"))?),
            "stream" => stream = Some(value.clone()),
            "tls-ca" => tls_ca = Some(value.clone()),
            "since" => {
                since = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--since: not a number: {value:?}"))?,
                )
            }
            "conns" | "subjects" | "subs" | "publishes" | "messages" | "timeout" => {
                let n = value
                    .parse()
                    .map_err(|_| format!("--{name}: not a number: {value:?}"))?;
                values.insert(name.to_string(), n);
            }
            _ => return Err(format!("unknown flag --{name}")),
        }
    }
    Ok(Flags {
        addr: addr.ok_or("--addr is required")?,
        pid: pid.ok_or("--pid is required")?,
        values,
        stream,
        since,
        tls_ca,
    })
}

/// The server's resident set size in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Raises this process's open-file limit to its hard limit (one socket per connection).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A connected, logged-in client: INFO read, CONNECT + PING sent, PONG seen.
/// A connection's stream, plain or TLS.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A TLS client configuration trusting the CA in `ca_file`.
fn tls_config(ca_file: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca_file).map_err(|e| format!("{ca_file}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(tenet_core::tls::crypto_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client over TLS: the INFO read in plaintext, then the handshake, then
/// CONNECT and PING through the session.
fn connect_tls(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(PHASE_LIMIT))
        .map_err(|e| e.to_string())?;
    // The INFO, byte by byte: nothing of the handshake may be read with it.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).map_err(|e| e.to_string())?;
        line.push(byte[0]);
    }
    if !line.starts_with(b"INFO ") {
        return Err(format!(
            "expected INFO, got {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    tls.write_all(CONNECT).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    wait_for_pong(&mut BufReader::new(&mut tls))?;
    Ok(tls)
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    connect_with(addr, CONNECT)
}

fn connect_with(addr: &str, connect: &[u8]) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(PHASE_LIMIT))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with("INFO ") {
        return Err(format!("expected INFO, got {line:?}"));
    }
    (&stream).write_all(connect).map_err(|e| e.to_string())?;
    wait_for_pong(&mut reader)?;
    Ok(stream)
}

/// Reads lines until PONG; anything but PING/PONG/INFO/+OK is an error.
fn wait_for_pong(reader: &mut impl BufRead) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("server closed the connection".into());
        }
        match line.trim_end() {
            "PONG" => return Ok(()),
            "PING" | "+OK" => {}
            l if l.starts_with("INFO ") => {}
            l => return Err(format!("unexpected {l:?} before PONG")),
        }
    }
}

/// Opens `--conns` idle clients and reports the server's memory before and after.
fn idle(flags: &Flags) -> Result<String, String> {
    raise_fd_limit();
    let conns = flags.number("conns", 10_000) as usize;
    let tls = flags.tls_ca.as_deref().map(tls_config).transpose()?;
    let before = rss_kib(flags.pid)?;
    let start = Instant::now();
    let mut open: Vec<Box<dyn ReadWrite>> = Vec::with_capacity(conns);
    for i in 0..conns {
        let stream: Result<Box<dyn ReadWrite>, String> = match &tls {
            Some(config) => connect_tls(&flags.addr, config).map(|s| Box::new(s) as _),
            None => connect(&flags.addr).map(|s| Box::new(s) as _),
        };
        let stream = stream.map_err(|e| format!("connection {i}: {e}"))?;
        open.push(stream);
    }
    let connect_secs = start.elapsed().as_secs_f64();
    thread::sleep(SETTLE);
    let after = rss_kib(flags.pid)?;
    // Every connection is still alive: one more round trip on each of a sample.
    for stream in open.iter_mut().step_by((conns / 100).max(1)) {
        stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        stream.flush().map_err(|e| e.to_string())?;
        wait_for_pong(&mut BufReader::new(stream))?;
    }
    Ok(format!(
        "conns={conns} connect_secs={connect_secs:.3} rss_before_kib={before} rss_after_kib={after} \
         per_conn_bytes={}",
        (after.saturating_sub(before) * 1024) / conns.max(1) as u64
    ))
}

/// Subscribes `--subs` subscriptions over `--subjects` subjects from `--conns`
/// clients (timing it and reading the memory), then publishes `--publishes`
/// messages to random subscribed subjects and times their delivery.
fn subs(flags: &Flags) -> Result<String, String> {
    raise_fd_limit();
    let subjects = flags.number("subjects", 100_000).max(1);
    let total_subs = flags.number("subs", 1_000_000);
    let conns = flags.number("conns", 10).max(1) as usize;
    let publishes = flags.number("publishes", 200_000);

    // Subscription i is on subject i % subjects, held by client (i / subjects) % conns:
    // each subject's subscriptions are spread over the clients.
    let mut sub_lines = vec![Vec::new(); conns];
    let mut per_subject = vec![0u64; subjects as usize];
    for i in 0..total_subs {
        let subject = i % subjects;
        let client = ((i / subjects) % conns as u64) as usize;
        per_subject[subject as usize] += 1;
        write!(
            sub_lines[client],
            "SUB {} {}\r\n",
            subject_name(subject),
            i + 1
        )
        .unwrap();
    }
    for lines in &mut sub_lines {
        lines.extend_from_slice(b"PING\r\n");
    }
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(connect(&flags.addr)?);
    }
    let rss_before = rss_kib(flags.pid)?;

    let start = Instant::now();
    let handles: Vec<_> = clients
        .iter()
        .zip(sub_lines)
        .map(|(stream, lines)| {
            let stream = stream.try_clone().map_err(|e| e.to_string())?;
            Ok(thread::spawn(move || -> Result<(), String> {
                let writer = stream.try_clone().map_err(|e| e.to_string())?;
                let sender = thread::spawn(move || (&writer).write_all(&lines));
                let result = wait_for_pong(&mut BufReader::new(stream));
                sender
                    .join()
                    .map_err(|_| "writer panicked")?
                    .map_err(|e| e.to_string())?;
                result
            }))
        })
        .collect::<Result<_, String>>()?;
    for handle in handles {
        handle.join().map_err(|_| "subscriber panicked")??;
    }
    let subscribe_secs = start.elapsed().as_secs_f64();
    thread::sleep(SETTLE);
    let rss_after = rss_kib(flags.pid)?;

    // Publishes to pseudo-random subjects (xorshift, fixed seed: both servers get the same load).
    let payload = [b'x'; 16];
    let mut publish_bytes = Vec::with_capacity(publishes as usize * 40);
    let mut expected = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..publishes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let subject = state % subjects;
        expected += per_subject[subject as usize];
        write!(publish_bytes, "PUB {} 16\r\n", subject_name(subject)).unwrap();
        publish_bytes.extend_from_slice(&payload);
        publish_bytes.extend_from_slice(b"\r\n");
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = clients
        .iter()
        .map(|stream| {
            let mut stream = stream.try_clone().map_err(|e| e.to_string())?;
            let delivered = delivered.clone();
            Ok(thread::spawn(move || {
                count_deliveries(&mut stream, &delivered, expected)
            }))
        })
        .collect::<Result<_, String>>()?;
    let publisher = connect(&flags.addr)?;
    let start = Instant::now();
    (&publisher)
        .write_all(&publish_bytes)
        .map_err(|e| e.to_string())?;
    for reader in readers {
        reader.join().map_err(|_| "reader panicked")?.map_err(|e| {
            format!(
                "{e} after {} of {expected} deliveries",
                delivered.load(Ordering::Relaxed)
            )
        })?;
    }
    let match_secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "subs={total_subs} subjects={subjects} conns={conns} subscribe_secs={subscribe_secs:.3} \
         rss_before_kib={rss_before} rss_after_kib={rss_after} publishes={publishes} \
         deliveries={expected} deliver_secs={match_secs:.3} publishes_per_sec={:.0} \
         deliveries_per_sec={:.0}",
        publishes as f64 / match_secs,
        expected as f64 / match_secs
    ))
}

/// Subject number `n`: two numeric tokens, so the trie has 1,000 nodes of 100 leaves each.
fn subject_name(n: u64) -> String {
    format!("load.{}.{}", n / 100, n % 100)
}

/// Reads MSG deliveries (two lines each: the 16-byte payload has no newline)
/// until all clients together have seen `expected`.
fn count_deliveries(
    stream: &mut TcpStream,
    delivered: &AtomicU64,
    expected: u64,
) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut buf = vec![0u8; 256 * 1024];
    let mut newlines = 0u64;
    while delivered.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            return Err("deliveries did not all arrive in time".into());
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("server closed a subscriber".into()),
            Ok(n) => {
                newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                let whole = newlines / 2;
                newlines %= 2;
                delivered.fetch_add(whole, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Whether process `pid` is alive (neither gone nor a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Seconds since the epoch, now.
fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Polls a (re)starting server until `--stream`'s info shows `--messages`
/// messages, sequences 1 to `--messages`; the seconds are counted from `--since`.
fn stream_wait(flags: &Flags) -> Result<String, String> {
    let started = Instant::now();
    let name = flags.stream.as_deref().ok_or("--stream is required")?;
    let expected = flags.number("messages", 0);
    if expected == 0 {
        return Err("--messages is required".into());
    }
    let since = flags.since.ok_or("--since is required")?;
    let limit = Duration::from_secs(flags.number("timeout", 600));
    let mut attempts = 0u64;
    let mut port_secs = None;
    let mut last = String::from("no connection yet");
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        if started.elapsed() > limit {
            return Err(format!(
                "{name} did not show {expected} messages within {}s; last: {last}",
                limit.as_secs()
            ));
        }
        if !running(flags.pid) {
            return Err(format!(
                "the server (pid {}) exited before {name} showed {expected} messages; last: {last}",
                flags.pid
            ));
        }
        if conn.is_none() {
            match open_requester(&flags.addr) {
                Ok(c) => {
                    port_secs.get_or_insert(epoch_secs() - since);
                    conn = Some(c);
                }
                Err(e) => {
                    last = e;
                    thread::sleep(POLL);
                    continue;
                }
            }
        }
        attempts += 1;
        let (writer, reader) = conn.as_mut().expect("connected above");
        match stream_info(writer, reader, name, attempts) {
            Ok(Some(info)) => {
                let state = &info["state"];
                let (messages, first, last_seq) = (
                    state["messages"].as_u64(),
                    state["first_seq"].as_u64(),
                    state["last_seq"].as_u64(),
                );
                if messages == Some(expected) && first == Some(1) && last_seq == Some(expected) {
                    let secs = epoch_secs() - since;
                    let rss = rss_kib(flags.pid)?;
                    return Ok(format!(
                        "stream={name} messages={expected} bytes={} secs={secs:.3} port_secs={:.3} \
                         attempts={attempts} rss_kib={rss}",
                        state["bytes"].as_u64().unwrap_or(0),
                        port_secs.unwrap_or(secs)
                    ));
                }
                last = if info.get("error").is_some() {
                    format!("error {}", info["error"])
                } else {
                    format!("state {state}")
                };
            }
            Ok(None) => last = "no responders (503)".into(),
            Err(e) => {
                last = e;
                conn = None;
            }
        }
        thread::sleep(POLL);
    }
}

/// A client for `$JS.API` requests: connected (with headers, so that a request
/// nobody answers yet gets a 503 at once) and subscribed to its reply subjects.
fn open_requester(addr: &str) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let stream = connect_with(addr, CONNECT_NO_RESPONDERS)?;
    stream
        .set_read_timeout(Some(REQUEST_WAIT))
        .map_err(|e| e.to_string())?;
    (&stream)
        .write_all(b"SUB _INBOX.tenet-load.wait.* 1\r\n")
        .map_err(|e| e.to_string())?;
    let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    Ok((stream, reader))
}

/// One `$JS.API.STREAM.INFO` request: the reply's JSON, or `None` for a 503
/// (no responders). Replies to earlier requests (other reply subjects) are skipped.
fn stream_info(
    writer: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    name: &str,
    attempt: u64,
) -> Result<Option<serde_json::Value>, String> {
    let reply = format!("_INBOX.tenet-load.wait.{attempt}");
    write!(writer, "PUB $JS.API.STREAM.INFO.{name} {reply} 0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("server closed the connection".into());
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let (subject, header_len, total_len) = match words.as_slice() {
            ["PING"] => {
                writer.write_all(b"PONG\r\n").map_err(|e| e.to_string())?;
                continue;
            }
            ["MSG", subject, _sid, size] | ["MSG", subject, _sid, _, size] => (
                *subject,
                0,
                size.parse::<usize>().map_err(|_| format!("bad {line:?}"))?,
            ),
            ["HMSG", subject, _sid, hdr, size] | ["HMSG", subject, _sid, _, hdr, size] => (
                *subject,
                hdr.parse::<usize>().map_err(|_| format!("bad {line:?}"))?,
                size.parse::<usize>().map_err(|_| format!("bad {line:?}"))?,
            ),
            ["-ERR", ..] => return Err(format!("server said {}", line.trim_end())),
            _ => continue, // +OK, PONG, INFO
        };
        if header_len > total_len {
            return Err(format!("bad {line:?}"));
        }
        let mut payload = vec![0u8; total_len + 2];
        reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
        if subject != reply {
            continue;
        }
        let (headers, body) = payload[..total_len].split_at(header_len);
        if headers.starts_with(b"NATS/1.0 503") {
            return Ok(None);
        }
        return serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("stream info reply is not JSON: {e}"));
    }
}
