//! Configuration files on the real binary: `-c`, `-t`, flags over the file,
//! `-P` with `--signal`, `-l` and `-T`, `syslog`/`-s` and `remote_syslog`/`-r`.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tenet_tests::{
    free_port, run_binary, runtime_binary_name, server_binary, skip_on_reference, RawClient,
    TestServer, TIMEOUT,
};

/// A scratch directory for this test's files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tenet-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn test_flag_accepts_a_good_file() {
    if skip_on_reference("tenet's -t wording") {
        return;
    }
    let dir = Scratch::new();
    let inc = dir.file("limits.conf", "max_payload: 512KB\n");
    let conf = dir.file("good.conf", &format!("port: 4333\ninclude \"{inc}\"\n"));
    let (status, out) = run_binary(&["-t", "-c", &conf]);
    assert!(status.success(), "{}", out);
    assert_eq!(
        out,
        format!(
            "{}: configuration file {conf} is valid\n",
            runtime_binary_name()
        )
    );
}

/// Files that parse but describe users or accounts the server cannot run
/// with, and the error (after `<file>:`) that both `-t` and start-up give.
const REFUSED_AT_START: [(&str, &str); 6] = [
    (
        "authorization { users = [ {user: a, password: x}, {user: a, password: y} ] }\n",
        "1:50: Duplicate user \"a\" detected",
    ),
    (
        "authorization { password: secret }\n",
        "1:0: authorization: a password needs a user",
    ),
    (
        "authorization { users = [ {user: a, password: \"$2a$10$tooshort\"} ] }\n",
        "1:26: password of user \"a\" looks like a bcrypt hash but is not a valid one",
    ),
    (
        "authorization { users = [ {user: a, password: x} ] }\nno_auth_user: bob\n",
        "2:1: no_auth_user: \"bob\" not present as user or nkey in authorization block",
    ),
    (
        "accounts {\n  A { exports: [{stream: \"a.>\", accounts: [C]}] }\n  \
         B { imports: [{stream: {account: A, subject: \"a.>\"}}] }\n  C {}\n}\n",
        "3:17: Error adding stream import \"a.>\": stream import not authorized",
    ),
    (
        "accounts { B { imports: [{stream: {account: Z, subject: \"a.>\"}}] } }\n",
        "1:25: \"Z\" account not defined for stream import",
    ),
];

#[test]
fn test_flag_runs_every_check_start_up_runs() {
    if skip_on_reference("nats-server's -t passes some files its start then refuses") {
        return;
    }
    let dir = Scratch::new();
    for (i, (text, error)) in REFUSED_AT_START.iter().enumerate() {
        let conf = dir.file(&format!("refused{i}.conf"), text);
        let want = format!("{}: {conf}:{error}\n", runtime_binary_name());
        let (status, out) = run_binary(&["-t", "-c", &conf]);
        assert!(!status.success(), "-t passed {text}");
        assert_eq!(out, want, "-t on {text}");
        let (status, out) = run_binary(&["-a", "127.0.0.1", "-p", "-1", "-c", &conf]);
        assert!(!status.success(), "started with {text}");
        assert_eq!(out, want, "start-up on {text}");
    }
}

#[test]
fn test_flag_reports_a_syntax_error_with_its_position() {
    if skip_on_reference("tenet's error wording") {
        return;
    }
    let dir = Scratch::new();
    let conf = dir.file(
        "bad.conf",
        "port: 4333\nauthorization {\n  user: a\n  password: b foo\n}\n",
    );
    let (status, out) = run_binary(&["-t", "-c", &conf]);
    assert_eq!(status.code(), Some(1), "{}", out);
    let report = out;
    assert!(
        report.starts_with(&format!("{}: {conf}:4:", runtime_binary_name())),
        "{report}"
    );
}

#[test]
fn test_flag_refuses_what_tenet_does_not_implement_naming_file_line_and_key() {
    if skip_on_reference("nats-server implements clustering") {
        return;
    }
    let dir = Scratch::new();
    let conf = dir.file("cluster.conf", "port: 4333\n\ncluster {\n  port: 6222\n}\n");
    let (status, out) = run_binary(&["-t", "-c", &conf]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        out,
        format!(
            "{}: {conf}:3:1: \"cluster\" is not supported by tenet yet (it arrives with clustering)\n",
            runtime_binary_name()
        )
    );
    // The server refuses to start on it too.
    let (status, out) = run_binary(&["-c", &conf]);
    assert_eq!(status.code(), Some(1), "{}", out);
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    let dir = Scratch::new();
    let conf = dir.file("typo.conf", "port: 4333\nmax_payloads: 10\n");
    let (status, out) = run_binary(&["-t", "-c", &conf]);
    assert_ne!(status.code(), Some(0));
    assert!(out.contains("unknown field \"max_payloads\""), "{}", out);
    let (status, out) = run_binary(&["-t", "-c", &dir.path("missing.conf")]);
    assert_ne!(status.code(), Some(0));
    assert!(out.contains("missing.conf"), "{}", out);
}

#[test]
fn the_file_configures_the_server_and_flags_override_it() {
    let dir = Scratch::new();
    let file_port = free_port();
    let conf = dir.file(
        "server.conf",
        &format!("listen: 127.0.0.1:{file_port}\nserver_name: from_file\nmax_payload: 100\n"),
    );
    let server = TestServer::start_with_exact_args(&["-c", &conf]);
    assert_eq!(server.port(), file_port);
    let c = server.client();
    assert_eq!(c.info()["server_name"], "from_file");
    assert_eq!(c.info()["max_payload"], 100);
    let mut c = server.client();
    c.handshake();
    c.send("PUB foo 101\r\n");
    c.expect("-ERR 'Maximum Payload Violation'\r\n");
    c.expect_closed();
    drop(server);

    // -p and -n win over the file.
    let flag_port = free_port().to_string();
    let server = TestServer::start_with_exact_args(&[
        "-c",
        &conf,
        "-a",
        "127.0.0.1",
        "-p",
        &flag_port,
        "-n",
        "from_flag",
    ]);
    assert_eq!(server.port().to_string(), flag_port);
    assert_eq!(server.client().info()["server_name"], "from_flag");
}

#[test]
fn pid_file_and_signal_quit_stop_the_server() {
    if skip_on_reference("tenet's --signal") {
        return;
    }
    let dir = Scratch::new();
    let pid_file = dir.path("tenet.pid");
    let mut server = TestServer::start_with_args(&["-P", &pid_file]);
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert_eq!(pid, server.pid());
    let (status, out) = run_binary(&["--signal", &format!("quit={pid_file}")]);
    assert!(status.success(), "{}", out);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the server exits on quit");
    assert!(status.success());
    assert!(
        !std::path::Path::new(&pid_file).exists(),
        "the pid file is removed on exit"
    );

    let (status, out) = run_binary(&["--signal", "reload=999999999"]);
    assert_eq!(status.code(), Some(1), "{}", out);
    let (status, out) = run_binary(&["--signal", &format!("quit={}", dir.path("nope.pid"))]);
    assert_eq!(status.code(), Some(1), "{}", out);
    assert!(out.contains("could not read pid file"), "{}", out);
}

#[test]
fn log_file_and_logtime() {
    if skip_on_reference("tenet's log line for -T=false") {
        return;
    }
    let dir = Scratch::new();
    let log = dir.path("server.log");
    let server = TestServer::start_with_args(&["-l", &log, "-T=false"]);
    let mut c = RawClient::connect(server.port());
    c.handshake();
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut written = String::new();
    while Instant::now() < deadline && !written.contains("Server is ready") {
        written = std::fs::read_to_string(&log).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = written
        .lines()
        .find(|l| l.contains("Server is ready"))
        .expect("ready line in the log file");
    // Without timestamps: "[pid] [INF] Server is ready".
    let (pid, rest) = ready.split_once(' ').expect("a pid first");
    assert!(
        pid.starts_with('[') && pid.ends_with(']') && pid[1..pid.len() - 1].parse::<u32>().is_ok(),
        "{ready}"
    );
    assert_eq!(rest, "[INF] Server is ready");
}

// ----- syslog ---------------------------------------------------------------------

/// A server process that logs elsewhere than stderr; killed when dropped.
struct Spawned(Child);

impl Spawned {
    fn start(args: &[&str]) -> Spawned {
        let child = Command::new(server_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the server binary");
        Spawned(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Stops the process and returns what it wrote to stdout and stderr.
    fn output(mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut text = String::new();
        if let Some(mut out) = self.0.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        if let Some(mut err) = self.0.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The syslog tag: the binary's file name, as nats-server's.
fn tag() -> String {
    server_binary()
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0, "gethostname");
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Newline-separated messages read from a stream until one contains `needle`.
fn stream_until(stream: impl Read, needle: &str) -> Vec<String> {
    let mut got = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line =
            line.unwrap_or_else(|e| panic!("no message with {needle:?} ({e}); got {got:#?}"));
        let done = line.contains(needle);
        got.push(format!("{line}\n"));
        if done {
            return got;
        }
    }
    panic!("the stream ended before {needle:?}; got {got:#?}");
}

/// Checks a message in the network format nats-server sends to a syslog
/// server, `<pri>2006-01-02T15:04:05Z07:00 host tag[pid]: text\n`; returns the text.
fn network_format(message: &str, priority: u8, pid: u32) -> String {
    let rest = message
        .strip_prefix(&format!("<{priority}>"))
        .unwrap_or_else(|| panic!("priority {priority}: {message:?}"));
    let (time, rest) = rest.split_once(' ').expect("a time");
    let b = time.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (time[19..] == *"Z"
            || (time.len() == 25 && matches!(b[19], b'+' | b'-') && b[22] == b':'));
    assert!(shape, "an RFC 3339 time without fraction: {message:?}");
    let header = format!("{} {}[{pid}]: ", hostname(), tag());
    let text = rest
        .strip_prefix(&header)
        .unwrap_or_else(|| panic!("{header:?} first: {message:?}"));
    text.strip_suffix('\n')
        .unwrap_or_else(|| panic!("a newline at the end: {message:?}"))
        .to_string()
}

/// Checks a message in the local format (the local syslog, `unix://`),
/// `<pri>Jan _2 15:04:05 tag[pid]: text\n`; returns the text.
fn local_format(message: &str, priority: u8, pid: u32) -> String {
    let rest = message
        .strip_prefix(&format!("<{priority}>"))
        .unwrap_or_else(|| panic!("priority {priority}: {message:?}"));
    let (stamp, rest) = rest.split_at(15);
    let b = stamp.as_bytes();
    let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    let shape = months.contains(&stamp[..3])
        && b[3] == b' '
        && (b[4] == b' ' || b[4].is_ascii_digit())
        && b[5].is_ascii_digit()
        && b[6] == b' '
        && b[9] == b':'
        && b[12] == b':';
    assert!(shape, "a time like \"Jan _2 15:04:05\": {message:?}");
    let header = format!(" {}[{pid}]: ", tag());
    let text = rest
        .strip_prefix(&header)
        .unwrap_or_else(|| panic!("{header:?} after the time: {message:?}"));
    text.strip_suffix('\n')
        .unwrap_or_else(|| panic!("a newline at the end: {message:?}"))
        .to_string()
}

/// The client port from a `Listening for client connections on <host>:<port>` text.
fn listening_port(texts: &[String]) -> u16 {
    let line = texts
        .iter()
        .find_map(|t| t.split("Listening for client connections on ").nth(1))
        .expect("a listening line");
    let addr = line.split_whitespace().next().expect("an address");
    addr.rsplit(':').next().unwrap().parse().expect("a port")
}

/// A server logging to the UDP syslog `udp` (through `config`, or the
/// flags): every line reaches it in the network format, info lines as
/// notice (5) in the kern facility, without `[INF]`, and no debug line
/// without -D; nothing goes to stderr; the server serves.
fn logs_to_udp_syslog(udp: &UdpSocket, args: &[&str]) {
    let server = Spawned::start(args);
    let pid = server.pid();
    let got = tenet_tests::datagrams_until(udp, "Server is ready");
    let ready = got.last().unwrap();
    assert_eq!(network_format(ready, 5, pid), "Server is ready");
    let texts: Vec<String> = got
        .iter()
        .map(|m| {
            let priority = m[1..m.find('>').expect("<pri>")].parse::<u8>().unwrap();
            assert_ne!(priority, 7, "a debug line without -D: {m:?}");
            network_format(m, priority, pid)
        })
        .collect();
    assert!(texts.iter().all(|t| !t.contains("[INF]")), "{texts:#?}");
    let mut c = RawClient::connect(listening_port(&texts));
    c.handshake();
    let rest = server.output();
    assert!(
        !rest.contains("Server is ready"),
        "logged to stderr too: {rest}"
    );
}

#[test]
fn remote_syslog_over_udp_from_the_file() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let addr = udp.local_addr().unwrap();
    let dir = Scratch::new();
    let conf = dir.file(
        "syslog.conf",
        &format!("listen: 127.0.0.1:-1\nremote_syslog: \"udp://{addr}\"\n"),
    );
    logs_to_udp_syslog(&udp, &["-c", &conf]);
}

#[test]
fn remote_syslog_over_udp_from_the_r_flag() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let url = format!("udp://{}", udp.local_addr().unwrap());
    logs_to_udp_syslog(&udp, &["-a", "127.0.0.1", "-p", "-1", "-r", &url]);
    // The long form, and over a file that says otherwise.
    let dir = Scratch::new();
    let conf = dir.file("other.conf", "remote_syslog: \"udp://127.0.0.1:9\"\n");
    logs_to_udp_syslog(
        &udp,
        &[
            "-c",
            &conf,
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "--remote_syslog",
            &url,
        ],
    );
}

#[test]
fn remote_syslog_over_tcp_and_unix_sockets() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let url = format!("tcp://{}", tcp.local_addr().unwrap());
    let server = Spawned::start(&["-a", "127.0.0.1", "-p", "-1", "-r", &url]);
    let (stream, _) = tcp.accept().expect("the server connects");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let got = stream_until(stream, "Server is ready");
    assert_eq!(
        network_format(got.last().unwrap(), 5, server.pid()),
        "Server is ready"
    );
    drop(server);

    // unix:// is a stream socket, written in the local format (kern facility).
    let dir = Scratch::new();
    let path = dir.path("syslog.sock");
    let unix = UnixListener::bind(&path).expect("bind unix");
    let url = format!("unix://{path}");
    let server = Spawned::start(&["-a", "127.0.0.1", "-p", "-1", "-r", &url]);
    let (stream, _) = unix.accept().expect("the server connects");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let got = stream_until(stream, "Server is ready");
    assert_eq!(
        local_format(got.last().unwrap(), 5, server.pid()),
        "Server is ready"
    );
}

#[test]
fn an_unreachable_syslog_stops_the_start() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let url = format!("tcp://{closed}");
    let (status, out) = run_binary(&["-a", "127.0.0.1", "-p", "-1", "-r", &url]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("error connecting to syslog"), "{out}");
    assert!(!out.contains("Server is ready"), "{out}");

    // Not a syslog address at all.
    let (status, out) = run_binary(&["-a", "127.0.0.1", "-p", "-1", "-r", "localhost:514"]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("invalid network type") && out.contains("localhost"),
        "{out}"
    );

    // -s with no local syslog to reach.
    let local = ["/dev/log", "/var/run/syslog", "/var/run/log"];
    if local.iter().all(|p| !std::path::Path::new(p).exists()) {
        let (status, out) = run_binary(&["-a", "127.0.0.1", "-p", "-1", "-s"]);
        assert_eq!(status.code(), Some(1), "{out}");
        assert!(out.contains("error connecting to syslog"), "{out}");
    } else {
        println!("note: a local syslog exists here; -s without one is not checked");
    }
}

#[test]
fn test_flag_checks_the_syslog_keys() {
    if skip_on_reference("nats-server -t does not check the remote_syslog address") {
        return;
    }
    let dir = Scratch::new();
    let good = dir.file(
        "good.conf",
        "syslog: true\nremote_syslog: \"udp://127.0.0.1:514\"\n",
    );
    let (status, out) = run_binary(&["-t", "-c", &good]);
    assert!(status.success(), "{out}");
    let bad = dir.file("bad.conf", "syslog: 1\nremote_syslog: \"localhost:514\"\n");
    let (status, out) = run_binary(&["-t", "-c", &bad]);
    assert_eq!(status.code(), Some(1), "{out}");
    let binary = runtime_binary_name();
    assert_eq!(
        out,
        format!(
            "{binary}: {bad}:1:8: syslog: expected a boolean, got integer\n\
             {binary}: {bad}:2:17: remote_syslog \"localhost:514\": invalid network type \"localhost\" \
             (use udp://host:port, tcp://host:port or unix:///path)\n"
        )
    );
}
