//! Configuration files on the real binary: `-c`, `-t`, flags over the file,
//! `-P` with `--signal`, `-l` and `-T`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tenet_tests::{
    free_port, run_binary, runtime_binary_name, skip_on_reference, RawClient, TestServer,
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
