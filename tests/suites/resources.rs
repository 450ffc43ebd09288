//! The server's resources under pressure, on the real binary: running out of
//! file descriptors, the listen backlog, memory per idle connection, and the
//! socket of a client closed as a slow consumer. Every test here but the
//! memory one also passes against nats-server 2.9.10.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use tenet_tests::{skip_on_reference, TestServer, TIMEOUT};

/// Raises this process's open-file limit to its hard limit (servers started
/// after inherit it) and returns it.
fn raise_own_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

/// Sets the open-file limit (soft and hard) of the process `pid`.
fn set_fd_limit(pid: u32, files: u64) {
    let limit = libc::rlimit {
        rlim_cur: files,
        rlim_max: files,
    };
    // SAFETY: prlimit(2) on a child we own, reading only the struct passed in.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit({pid}, RLIMIT_NOFILE, {files})");
}

/// The descriptors the process `pid` has open, each as its link target
/// (`socket:[1234]` for a socket).
fn open_fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect()
}

/// A TCP connection to the server, nothing read yet.
fn connect(port: u16) -> TcpStream {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// True if the server's INFO line arrives within `wait`.
fn info_within(stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO ")
}

#[test]
fn clients_waiting_in_the_backlog_are_accepted_once_descriptors_free_up() {
    let mut server = TestServer::start();
    let pid = server.pid();
    // Room for a few more clients than the server has now.
    let open = open_fds(pid).len() as u64;
    set_fd_limit(pid, open + 6);
    // Connect until accepts fail: the last clients wait in the backlog,
    // connected at TCP level, with no INFO.
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    while waiting.len() < 3 {
        assert!(
            served.len() < 50,
            "{} clients served under a limit of {} files",
            served.len(),
            open + 6
        );
        let client = connect(server.port());
        if info_within(&client, Duration::from_millis(500)) {
            served.push(client);
        } else {
            waiting.push(client);
        }
    }
    assert!(served.len() >= 3, "only {} clients served", served.len());
    // Free descriptors; no client connects any more: the waiting ones are
    // accepted all the same, within the longest pause (1 s).
    served.truncate(served.len() - 3);
    let freed = Instant::now();
    for client in &waiting {
        assert!(
            info_within(client, Duration::from_secs(5)),
            "a client waiting in the backlog got no INFO {:?} after descriptors were freed\n{}",
            freed.elapsed(),
            server.logs()
        );
    }
    println!(
        "the {} waiting clients were served {:?} after descriptors were freed",
        waiting.len(),
        freed.elapsed()
    );
    // Each failed accept was logged as nats-server logs it.
    let line = format!(
        "[ERR] Temporary Client Accept Error(accept tcp 127.0.0.1:{}: accept4: too many open files), sleeping 10ms",
        server.port()
    );
    assert!(
        server.wait_for_log(&line, TIMEOUT),
        "no {line:?} in\n{}",
        server.logs()
    );
}

/// `net.core.somaxconn`, the kernel's cap on a listen backlog.
fn somaxconn() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4096)
}

#[test]
fn the_listen_backlog_holds_as_many_clients_as_the_kernel_allows() {
    let files = raise_own_fd_limit() as usize;
    // min(4096, somaxconn) connections, as nats-server's backlog holds
    // (std's default of 128 would not), within this process's descriptors.
    let want = 4096.min(somaxconn()).min(files.saturating_sub(200));
    let mut server = TestServer::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    // A stopped server accepts nothing: every connection that completes its
    // handshake waits in the listen backlog; past it the kernel drops SYNs.
    server.signal(libc::SIGSTOP);
    let mut clients = Vec::with_capacity(want);
    let mut failed = None;
    for _ in 0..want {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => clients.push(stream),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    server.signal(libc::SIGCONT);
    if let Some(e) = failed {
        panic!(
            "only {} of {want} connections completed while the server was stopped \
             (somaxconn {}): the listen backlog is too small ({e})",
            clients.len(),
            somaxconn()
        );
    }
    // Once it runs again, the server serves them all.
    for client in [&clients[0], &clients[want - 1]] {
        assert!(
            info_within(client, TIMEOUT),
            "no INFO for a client of the backlog"
        );
    }
}

#[test]
fn ten_thousand_idle_connections_cost_under_4_kib_each() {
    if skip_on_reference("nats-server holds about 20 KiB per idle connection") {
        return;
    }
    const CONNS: u64 = 10_000;
    raise_own_fd_limit();
    let mut server = TestServer::start();
    let pid = server.pid();
    // tenet-load: CONNECT + PING answered on each, the memory read after 2 s.
    let out = Command::new(env!("CARGO_BIN_EXE_tenet-load"))
        .args(["idle", "--addr", &server.addr(), "--pid", &pid.to_string()])
        .args(["--conns", &CONNS.to_string()])
        .output()
        .expect("tenet-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tenet-load: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |key: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    let per_conn = figure("per_conn_bytes");
    let after = figure("rss_after_kib");
    println!("{stdout}");
    assert!(
        per_conn < 4096,
        "{per_conn} bytes per idle connection: {stdout}"
    );
    assert!(
        after < 40 * 1024,
        "{after} KiB for {CONNS} idle connections"
    );
}

/// The inode of the server's socket for the client connected from
/// `client_port` to `server_port` (`/proc/net/tcp`), if it is still there.
fn server_socket_inode(server_port: u16, client_port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        let (local, remote, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (port(local)? == server_port && port(remote)? == client_port && *inode != "0")
            .then(|| inode.to_string())
    })
}

#[test]
fn a_slow_consumers_socket_is_closed_at_once_though_it_reads_nothing() {
    // tenet closes it at max_pending; nats-server, which stalls the
    // publisher instead, at the write deadline.
    let config = "max_pending: 1MB\nwrite_deadline: \"2s\"\n";
    let mut server = TestServer::with_config(config, &[]);
    let pid = server.pid();
    let mut sub = server.client();
    sub.handshake();
    sub.send(b"SUB flood 1\r\nPING\r\n");
    sub.expect_pong();
    let inode = server_socket_inode(server.port(), sub.local_port())
        .expect("the server's socket for the subscriber in /proc/net/tcp");
    let socket = format!("socket:[{inode}]");
    assert!(
        open_fds(pid).contains(&socket),
        "{socket} is not the server's"
    );
    // The subscriber never reads again: flood it past max_pending.
    let mut publisher = server.client();
    publisher.handshake();
    let payload = vec![b'x'; 32 * 1024];
    let message = [b"PUB flood 32768\r\n".as_slice(), &payload, b"\r\n"].concat();
    let detected = "Slow Consumer Detected: ";
    let started = Instant::now();
    while !server.wait_for_log(detected, Duration::from_millis(1)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no slow consumer within 20 s:\n{}",
            server.logs()
        );
        publisher.send(&message);
    }
    // Its socket is gone from the server at once (bounded wait), while the
    // subscriber has neither read nor closed.
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_fds(pid).contains(&socket) {
        assert!(
            Instant::now() < deadline,
            "the server still holds the slow consumer's socket 2 s after closing it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The subscriber reads what reached it, then the end.
    sub.read_until_closed();
    // The publisher is still served (the server's own first PING may come first).
    publisher.ping_past_server_pings();
}
