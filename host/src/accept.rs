//! Listening sockets, and what a runtime does when `accept` fails: the same
//! for every runtime, and as nats-server 2.9.10 does it.
//!
//! - The listen backlog is the kernel's maximum (`net.core.somaxconn`), as Go's
//!   `net.Listen` asks for, instead of the 128 of `std::net::TcpListener`.
//! - A failed accept pauses accepting, 10 ms at first and twice as long after
//!   each failure in a row, up to 1 s (nats-server's `ACCEPT_MIN_SLEEP` and
//!   `ACCEPT_MAX_SLEEP`), and is logged with nats-server's line. Clients that
//!   wait in the backlog meanwhile are accepted once descriptors free up,
//!   whether or not another client connects.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// The first pause after a failed accept (nats-server's `ACCEPT_MIN_SLEEP`).
pub const ACCEPT_MIN_SLEEP: Duration = Duration::from_millis(10);
/// The longest pause (nats-server's `ACCEPT_MAX_SLEEP`).
pub const ACCEPT_MAX_SLEEP: Duration = Duration::from_secs(1);
/// The first pause of the monitoring listener (Go's `http.Server`).
const HTTP_ACCEPT_MIN_SLEEP: Duration = Duration::from_millis(5);
/// The backlog asked for where `net.core.somaxconn` cannot be read.
const DEFAULT_BACKLOG: i32 = 4096;

/// Binds a TCP listener on `host:port` (each address `host` resolves to in
/// turn, as `std::net::TcpListener::bind` does) with the largest backlog the
/// kernel allows.
pub fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and Go do: a restarted server binds again at once.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(listen_backlog())?;
    Ok(socket.into())
}

/// The kernel's maximum backlog, `net.core.somaxconn` (4096 by default since
/// Linux 5.4), as Go's `net.Listen` (so nats-server) reads it; the kernel
/// would cap a larger request there anyway.
pub fn listen_backlog() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|&n| n > 0)
        .map_or(DEFAULT_BACKLOG, |n| n.min(i64::from(i32::MAX)) as i32)
}

/// Which listener failed: its log line is nats-server's for that listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Client,
    Monitoring,
}

/// Paces accepting after failures, and words the log line of each.
///
/// A runtime calls [`AcceptBackoff::failed`] when `accept` fails with
/// anything but `WouldBlock`, logs the line it returns at error level, and
/// does not accept on that listener again before the pause is over (even if
/// the listener reports readiness); [`AcceptBackoff::accepted`] after each
/// accepted connection.
#[derive(Debug)]
pub struct AcceptBackoff {
    kind: Kind,
    addr: SocketAddr,
    /// The pause after the next failure; `None` before the first one.
    delay: Option<Duration>,
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Try again at once, saying nothing (interrupted, or a connection that
    /// was reset while it waited in the backlog, as Go retries it).
    Retry,
    /// Log `line` at error level and accept again after `pause`.
    Pause { pause: Duration, line: String },
}

impl AcceptBackoff {
    /// For the client listener bound to `addr`: nats-server's
    /// `Temporary Client Accept Error(...), sleeping 10ms`.
    pub fn client(addr: SocketAddr) -> AcceptBackoff {
        AcceptBackoff {
            kind: Kind::Client,
            addr,
            delay: None,
        }
    }

    /// For the monitoring listener bound to `addr`: nats-server's
    /// `monitoring: Accept error: ...; retrying in 5ms` (Go's HTTP server).
    pub fn monitoring(addr: SocketAddr) -> AcceptBackoff {
        AcceptBackoff {
            kind: Kind::Monitoring,
            addr,
            delay: None,
        }
    }

    /// A connection was accepted: the next failure pauses the shortest time.
    pub fn accepted(&mut self) {
        self.delay = None;
    }

    /// `accept` failed with `error` (not `WouldBlock`): how long to pause and
    /// what to log.
    pub fn failed(&mut self, error: &io::Error) -> AcceptFailure {
        if matches!(
            error.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
        ) {
            return AcceptFailure::Retry;
        }
        let text = format!(
            "accept tcp {}: {}: {}",
            self.addr,
            ACCEPT_CALL,
            go_errno(error)
        );
        match self.kind {
            Kind::Client => {
                let pause = self.delay.unwrap_or(ACCEPT_MIN_SLEEP);
                self.delay = Some((pause * 2).min(ACCEPT_MAX_SLEEP));
                let line = if is_temporary(error) {
                    format!(
                        "Temporary Client Accept Error({text}), sleeping {}ms",
                        pause.as_millis()
                    )
                } else {
                    // nats-server retries these at once; a pause keeps an
                    // error that stays from flooding the log.
                    format!("Client Accept error: {text}")
                };
                AcceptFailure::Pause { pause, line }
            }
            Kind::Monitoring => {
                let pause = self
                    .delay
                    .map_or(HTTP_ACCEPT_MIN_SLEEP, |d| (d * 2).min(ACCEPT_MAX_SLEEP));
                self.delay = Some(pause);
                let line = format!(
                    "monitoring: Accept error: {text}; retrying in {}",
                    go_duration(pause)
                );
                AcceptFailure::Pause { pause, line }
            }
        }
    }
}

/// The system call Go names in an accept error.
const ACCEPT_CALL: &str = if cfg!(any(target_os = "linux", target_os = "android")) {
    "accept4"
} else {
    "accept"
};

/// What Go's `net.Error.Temporary` says of an accept error: out of
/// descriptors, or a connection reset or timed out in the backlog.
fn is_temporary(error: &io::Error) -> bool {
    let Some(code) = error.raw_os_error() else {
        return false;
    };
    #[cfg(unix)]
    {
        [
            libc::EMFILE,
            libc::ENFILE,
            libc::ECONNRESET,
            libc::ETIMEDOUT,
        ]
        .contains(&code)
    }
    #[cfg(not(unix))]
    {
        let _ = code;
        false
    }
}

/// An OS error as Go prints it: `too many open files` rather than
/// `Too many open files (os error 24)`.
fn go_errno(error: &io::Error) -> String {
    let Some(code) = error.raw_os_error() else {
        return error.to_string();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// A pause as Go's `time.Duration` prints it (`5ms`, `1s`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:4222".parse().unwrap()
    }

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(libc::EMFILE)
    }

    fn pause_and_line(failure: AcceptFailure) -> (Duration, String) {
        match failure {
            AcceptFailure::Pause { pause, line } => (pause, line),
            AcceptFailure::Retry => panic!("expected a pause"),
        }
    }

    #[test]
    fn client_pauses_double_from_10ms_to_1s_and_restart_after_an_accept() {
        let mut backoff = AcceptBackoff::client(addr());
        let pauses: Vec<u128> = (0..9)
            .map(|_| pause_and_line(backoff.failed(&emfile())).0.as_millis())
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.accepted();
        assert_eq!(
            pause_and_line(backoff.failed(&emfile())).0,
            ACCEPT_MIN_SLEEP
        );
    }

    #[test]
    fn client_lines_are_nats_servers() {
        let mut backoff = AcceptBackoff::client(addr());
        let (_, line) = pause_and_line(backoff.failed(&emfile()));
        assert_eq!(
            line,
            "Temporary Client Accept Error(accept tcp 127.0.0.1:4222: accept4: \
             too many open files), sleeping 10ms"
        );
        let (_, line) = pause_and_line(backoff.failed(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert_eq!(
            line,
            "Temporary Client Accept Error(accept tcp 127.0.0.1:4222: accept4: \
             too many open files in system), sleeping 20ms"
        );
        let (pause, line) =
            pause_and_line(backoff.failed(&io::Error::from_raw_os_error(libc::ENOBUFS)));
        assert_eq!(
            line,
            "Client Accept error: accept tcp 127.0.0.1:4222: accept4: no buffer space available"
        );
        assert_eq!(pause, Duration::from_millis(40));
    }

    #[test]
    fn monitoring_lines_and_pauses_are_gos_http_servers() {
        let mut backoff = AcceptBackoff::monitoring(addr());
        let lines: Vec<String> = (0..9)
            .map(|_| pause_and_line(backoff.failed(&emfile())).1)
            .collect();
        assert_eq!(
            lines[0],
            "monitoring: Accept error: accept tcp 127.0.0.1:4222: accept4: \
             too many open files; retrying in 5ms"
        );
        assert!(lines[1].ends_with("retrying in 10ms"), "{}", lines[1]);
        assert!(lines[8].ends_with("retrying in 1s"), "{}", lines[8]);
    }

    #[test]
    fn interrupted_and_aborted_accepts_are_retried_silently() {
        let mut backoff = AcceptBackoff::client(addr());
        for kind in [io::ErrorKind::Interrupted, io::ErrorKind::ConnectionAborted] {
            assert_eq!(backoff.failed(&io::Error::from(kind)), AcceptFailure::Retry);
        }
        // ... and do not lengthen the next pause.
        assert_eq!(
            pause_and_line(backoff.failed(&emfile())).0,
            ACCEPT_MIN_SLEEP
        );
    }

    #[test]
    fn listeners_get_the_kernels_largest_backlog() {
        let listener = listen("127.0.0.1", 0).expect("listen");
        assert!(listener.local_addr().unwrap().port() > 0);
        assert!(listen_backlog() >= 128);
        if let Ok(text) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
            assert_eq!(listen_backlog().to_string(), text.trim());
        }
    }
}
