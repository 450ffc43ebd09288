//! Log output: nats-server's log lines to stderr or a file, or nats-server's
//! syslog messages to the local syslog or a syslog server.
//!
//! A [`LogOutput`] is where the process's lines go; every [`Logger`] made from
//! it writes there, and a reload can switch it to another target
//! ([`LogOutput::prepare`], then [`Switch::apply`]).
//!
//! Syslog messages are written as nats-server 2.9.10 (Go's `log/syslog`)
//! writes them on Unix, byte for byte:
//!
//! - to a syslog server (`udp://`, `tcp://`):
//!   `<5>2026-11-23T14:32:19+01:00 myhost tenet-mio[4551]: Server is ready\n`,
//!   the local time in RFC 3339 and the host name;
//! - to the local syslog (`syslog: true`, `/dev/log`) and to `unix://` sockets:
//!   `<29>Nov 23 14:32:19 tenet-mio[4551]: Server is ready\n`.
//!
//! The tag is the program name as started (argv\[0\] without its directory);
//! the text has no `[INF]` prefix, no pid and no time of its own. The priority
//! is the facility times 8 plus the severity: the facility is `daemon` (3)
//! for the local syslog and `kern` (0) for `remote_syslog` (nats-server dials
//! it with the bare `LOG_DEBUG` priority); info lines and protocol traces are
//! `notice` (5), warnings `warning` (4), errors `err` (3), fatal start-up
//! errors `crit` (2), debug lines `debug` (7). Debug and trace lines are sent only with `-D`/`-V`, as to a file. A
//! failed write reconnects once and tries again, then the line is dropped.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tenet_core::config::options::{Config, SyslogAddress};
use tenet_core::Level;

/// Where log lines go.
pub type Logger = Box<dyn FnMut(Level, &str) + Send>;

/// Log lines to stderr, with timestamps.
pub fn stderr_logger() -> Logger {
    logger(None, true).expect("stderr needs no opening")
}

/// Where log lines go: stderr or a file, with or without timestamps.
pub fn logger(file: Option<&str>, with_time: bool) -> io::Result<Logger> {
    let target = match file {
        Some(path) => LogTarget::File {
            path: path.to_string(),
            time: with_time,
        },
        None => LogTarget::Stderr { time: with_time },
    };
    Ok(LogOutput::open(target)?.logger())
}

/// The sockets nats-server (Go's `log/syslog`) tries, in order, for the local syslog.
pub const LOCAL_SYSLOG_SOCKETS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];

/// How long one write to a syslog socket, or one connection to a syslog
/// server, may block the thread that logs (the event loop's).
const SYSLOG_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the log goes, as nats-server chooses it: a log file first, else a
/// syslog server, else the local syslog, else stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// stderr, with or without timestamps.
    Stderr {
        /// Timestamps (`logtime`).
        time: bool,
    },
    /// A file, appended to.
    File {
        /// The file (`log_file`, `-l`).
        path: String,
        /// Timestamps (`logtime`).
        time: bool,
    },
    /// A syslog server (`remote_syslog`, `-r`).
    RemoteSyslog(SyslogAddress),
    /// The local syslog (`syslog: true`, `-s`).
    LocalSyslog,
}

impl LogTarget {
    /// The target a configuration (with the flags applied) asks for.
    pub fn of(config: &Config) -> Result<LogTarget, String> {
        let time = config.log_time.unwrap_or(true);
        Ok(match (&config.log_file, &config.remote_syslog) {
            (Some(path), _) => LogTarget::File {
                path: path.clone(),
                time,
            },
            (None, Some(address)) => LogTarget::RemoteSyslog(SyslogAddress::parse(address)?),
            (None, None) if config.syslog => LogTarget::LocalSyslog,
            (None, None) => LogTarget::Stderr { time },
        })
    }
}

/// The process's log output: one sink, shared by every [`Logger`] made from
/// it, that a reload can switch to another target.
#[derive(Clone)]
pub struct LogOutput {
    shared: Arc<Mutex<Output>>,
}

struct Output {
    target: LogTarget,
    sink: Sink,
}

enum Sink {
    /// nats-server's `[pid] date time [LVL] text` lines.
    Lines {
        out: Box<dyn Write + Send>,
        time: bool,
    },
    Syslog(Syslog),
}

impl Sink {
    fn open(target: &LogTarget) -> io::Result<Sink> {
        Ok(match target {
            LogTarget::Stderr { time } => Sink::Lines {
                out: Box::new(io::stderr()),
                time: *time,
            },
            LogTarget::File { path, time } => {
                let file = OpenOptions::new().create(true).append(true).open(path);
                let file = file
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot open log file: {e}")))?;
                Sink::Lines {
                    out: Box::new(file),
                    time: *time,
                }
            }
            LogTarget::RemoteSyslog(address) => Sink::Syslog(Syslog::remote(address)?),
            LogTarget::LocalSyslog => Sink::Syslog(Syslog::local(&LOCAL_SYSLOG_SOCKETS)?),
        })
    }

    fn write(&mut self, pid: u32, level: Level, text: &str) {
        match self {
            Sink::Lines { out, time } => {
                let micros = time.then(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros() as u64)
                });
                let line = tenet_core::log::format_line(pid, micros, level, text);
                let _ = writeln!(out, "{line}");
            }
            Sink::Syslog(syslog) => syslog.send(level, text),
        }
    }
}

impl LogOutput {
    /// Opens `target`: creates or appends to the file, or connects to the
    /// syslog. The error says what could not be opened (`cannot open log
    /// file: ...`, `error connecting to syslog: ...`).
    pub fn open(target: LogTarget) -> io::Result<LogOutput> {
        let sink = Sink::open(&target)?;
        Ok(LogOutput {
            shared: Arc::new(Mutex::new(Output { target, sink })),
        })
    }

    /// A logger writing to this output, whatever its target is at the time.
    pub fn logger(&self) -> Logger {
        let shared = self.shared.clone();
        let pid = std::process::id();
        Box::new(move |level: Level, text: &str| {
            let mut output = shared.lock().unwrap_or_else(|e| e.into_inner());
            output.sink.write(pid, level, text);
        })
    }

    /// The current target.
    pub fn target(&self) -> LogTarget {
        self.lock().target.clone()
    }

    /// Opens `target` for a switch, without switching yet: `None` when it
    /// is the current target, an error when it cannot be opened (then the
    /// output stays as it is).
    pub fn prepare(&self, target: LogTarget) -> io::Result<Option<Switch>> {
        if self.lock().target == target {
            return Ok(None);
        }
        let sink = Sink::open(&target)?;
        Ok(Some(Switch {
            shared: self.shared.clone(),
            target,
            sink,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An opened target a [`LogOutput`] switches to with [`Switch::apply`];
/// dropping it closes the target and leaves the output as it was.
pub struct Switch {
    shared: Arc<Mutex<Output>>,
    target: LogTarget,
    sink: Sink,
}

impl Switch {
    /// Makes every logger of the output write to the new target from now on.
    pub fn apply(self) {
        let mut output = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        output.target = self.target;
        output.sink = self.sink;
    }
}

// ----- syslog -------------------------------------------------------------------

/// A connection to a syslog, and how its messages are written.
struct Syslog {
    conn: Option<Conn>,
    /// How to connect again after a failed write.
    dial: Dial,
    /// `daemon` (3) for the local syslog, `kern` (0) for `remote_syslog`.
    facility: u8,
    /// The local format (no host name, `Jan _2 15:04:05`) or the network one.
    local_format: bool,
    hostname: String,
    tag: String,
    pid: u32,
}

#[derive(Clone, Debug)]
enum Dial {
    Remote(SyslogAddress),
    Local(Vec<String>),
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Stream(UnixStream),
    Datagram(UnixDatagram),
}

impl Conn {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(message).map(drop),
            Conn::Datagram(s) => s.send(message).map(drop),
            Conn::Tcp(s) => s.write_all(message),
            Conn::Stream(s) => s.write_all(message),
        }
    }
}

impl Dial {
    fn connect(&self) -> io::Result<Conn> {
        match self {
            Dial::Remote(address) => connect_remote(address),
            Dial::Local(paths) => connect_local(paths),
        }
    }
}

fn connect_remote(address: &SyslogAddress) -> io::Result<Conn> {
    let conn = match address {
        SyslogAddress::Udp(host_port) => {
            let mut last = None;
            let mut conn = None;
            for addr in host_port.to_socket_addrs()? {
                let local: std::net::SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s)) {
                    Ok(s) => {
                        conn = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            Conn::Udp(conn.ok_or_else(|| no_address(last))?)
        }
        SyslogAddress::Tcp(host_port) => {
            let mut last = None;
            let mut conn = None;
            for addr in host_port.to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, SYSLOG_TIMEOUT) {
                    Ok(s) => {
                        conn = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let stream = conn.ok_or_else(|| no_address(last))?;
            stream.set_write_timeout(Some(SYSLOG_TIMEOUT))?;
            Conn::Tcp(stream)
        }
        SyslogAddress::Unix(path) => {
            let stream = UnixStream::connect(path)?;
            stream.set_write_timeout(Some(SYSLOG_TIMEOUT))?;
            Conn::Stream(stream)
        }
    };
    Ok(conn)
}

fn no_address(last: Option<io::Error>) -> io::Error {
    last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address found"))
}

/// The first of `paths` that takes a datagram, else a stream connection, as
/// Go's `log/syslog` looks for the local syslog.
fn connect_local(paths: &[String]) -> io::Result<Conn> {
    for path in paths {
        if let Ok(socket) = UnixDatagram::unbound().and_then(|s| s.connect(path).map(|()| s)) {
            socket.set_write_timeout(Some(SYSLOG_TIMEOUT))?;
            return Ok(Conn::Datagram(socket));
        }
        if let Ok(stream) = UnixStream::connect(path) {
            stream.set_write_timeout(Some(SYSLOG_TIMEOUT))?;
            return Ok(Conn::Stream(stream));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no syslog socket at {}", paths.join(", ")),
    ))
}

impl Syslog {
    /// Connects to a syslog server, as nats-server's `remote_syslog` does.
    fn remote(address: &SyslogAddress) -> io::Result<Syslog> {
        let dial = Dial::Remote(address.clone());
        let conn = dial
            .connect()
            .map_err(|e| connect_error(&address.to_string(), e))?;
        Ok(Syslog::with(
            conn,
            dial,
            0,
            matches!(address, SyslogAddress::Unix(_)),
        ))
    }

    /// Connects to the local syslog at the first of `paths` that answers, as
    /// nats-server's `syslog: true` does.
    fn local(paths: &[&str]) -> io::Result<Syslog> {
        let dial = Dial::Local(paths.iter().map(|p| p.to_string()).collect());
        let conn = dial
            .connect()
            .map_err(|e| connect_error("the local syslog", e))?;
        Ok(Syslog::with(conn, dial, 3, true))
    }

    fn with(conn: Conn, dial: Dial, facility: u8, local_format: bool) -> Syslog {
        Syslog {
            conn: Some(conn),
            dial,
            facility,
            local_format,
            hostname: hostname(),
            tag: program_name(),
            pid: std::process::id(),
        }
    }

    fn send(&mut self, level: Level, text: &str) {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let message = syslog_message(
            self.facility * 8 + severity(level),
            self.local_format,
            &local_time(unix_secs),
            &self.hostname,
            &self.tag,
            self.pid,
            text,
        );
        let sent = self
            .conn
            .as_mut()
            .is_some_and(|c| c.send(message.as_bytes()).is_ok());
        if !sent {
            // As Go's log/syslog: connect again and retry once.
            self.conn = self.dial.connect().ok();
            if let Some(conn) = &mut self.conn {
                let _ = conn.send(message.as_bytes());
            }
        }
    }
}

fn connect_error(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("error connecting to syslog: {what}: {e}"))
}

/// The syslog severity of a level, as nats-server's syslog logger maps them.
fn severity(level: Level) -> u8 {
    match level {
        Level::Fatal => 2,
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info | Level::Trace => 5,
        Level::Debug => 7,
    }
}

/// A wall-clock time in the local time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LocalTime {
    year: i32,
    /// 1 to 12.
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// Seconds east of UTC.
    offset: i32,
}

/// The local time of a Unix time (the `TZ` environment variable, else
/// `/etc/localtime`, as Go's local zone).
fn local_time(unix_secs: i64) -> LocalTime {
    let t = unix_secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the calls; the _r forms are
    // thread-safe. Without a local zone, UTC (gmtime_r sets tm_gmtoff to 0).
    unsafe {
        if libc::localtime_r(&t, &mut tm).is_null() {
            libc::gmtime_r(&t, &mut tm);
        }
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset: tm.tm_gmtoff as i32,
    }
}

/// One syslog message as Go's `log/syslog` writes it: the local format
/// (`<pri>Jan _2 15:04:05 tag[pid]: text\n`) or the network one
/// (`<pri>2006-01-02T15:04:05-07:00 host tag[pid]: text\n`).
fn syslog_message(
    priority: u8,
    local_format: bool,
    t: &LocalTime,
    hostname: &str,
    tag: &str,
    pid: u32,
    text: &str,
) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let clock = format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second);
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    if local_format {
        let month = MONTHS[(t.month.clamp(1, 12) - 1) as usize];
        return format!(
            "<{priority}>{month} {:>2} {clock} {tag}[{pid}]: {text}{newline}",
            t.day
        );
    }
    let zone = match t.offset {
        0 => "Z".to_string(),
        offset => format!(
            "{}{:02}:{:02}",
            if offset < 0 { '-' } else { '+' },
            offset.unsigned_abs() / 3600,
            offset.unsigned_abs() % 3600 / 60
        ),
    };
    format!(
        "<{priority}>{:04}-{:02}-{:02}T{clock}{zone} {hostname} {tag}[{pid}]: {text}{newline}",
        t.year, t.month, t.day
    )
}

/// The machine's host name, as Go's `os.Hostname` ("localhost" if unknown).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// The syslog tag: the program name as started, without its directory (a
/// link's name if started through one), as nats-server's.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "tenet".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIME: LocalTime = LocalTime {
        year: 2026,
        month: 11,
        day: 3,
        hour: 14,
        minute: 2,
        second: 9,
        offset: 0,
    };

    #[test]
    fn messages_are_written_as_go_log_syslog_writes_them() {
        assert_eq!(
            syslog_message(5, false, &TIME, "vm", "tenet-mio", 42, "Server is ready"),
            "<5>2026-11-03T14:02:09Z vm tenet-mio[42]: Server is ready\n"
        );
        let east = LocalTime {
            offset: 5 * 3600 + 30 * 60,
            ..TIME
        };
        let west = LocalTime {
            offset: -3600,
            ..TIME
        };
        assert!(syslog_message(3, false, &east, "h", "t", 1, "x")
            .starts_with("<3>2026-11-03T14:02:09+05:30 h t[1]: "));
        assert!(syslog_message(3, false, &west, "h", "t", 1, "x")
            .starts_with("<3>2026-11-03T14:02:09-01:00 h t[1]: "));
        // The local format: no host name, the day padded with a space.
        assert_eq!(
            syslog_message(29, true, &TIME, "vm", "tenet-mio", 42, "Server is ready"),
            "<29>Nov  3 14:02:09 tenet-mio[42]: Server is ready\n"
        );
        let later = LocalTime { day: 23, ..TIME };
        assert_eq!(
            syslog_message(31, true, &later, "vm", "t", 7, "ends\n"),
            "<31>Nov 23 14:02:09 t[7]: ends\n"
        );
        assert_eq!(
            [
                Level::Fatal,
                Level::Error,
                Level::Warn,
                Level::Info,
                Level::Trace,
                Level::Debug
            ]
            .map(severity),
            [2, 3, 4, 5, 5, 7]
        );
    }

    #[test]
    fn local_time_is_a_calendar_time() {
        // Whatever the zone, the offset is whole minutes and the date is sane.
        let t = local_time(1_795_444_339);
        assert_eq!(t.offset % 60, 0);
        assert!((2026..=2026).contains(&t.year) && (1..=12).contains(&t.month));
        assert!(t.hour < 24 && t.minute < 60 && t.second < 61);
    }

    /// A scratch socket path, removed on drop.
    struct SocketPath(std::path::PathBuf);

    impl SocketPath {
        fn new(name: &str) -> SocketPath {
            let path =
                std::env::temp_dir().join(format!("tenet-log-{}-{name}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            SocketPath(path)
        }

        fn text(&self) -> String {
            self.0.to_string_lossy().into_owned()
        }
    }

    impl Drop for SocketPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn the_local_syslog_is_the_first_socket_that_answers_in_the_daemon_facility() {
        let missing = SocketPath::new("missing");
        let socket = SocketPath::new("devlog");
        let server = UnixDatagram::bind(&socket.0).expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let paths = [missing.text(), socket.text()];
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let mut syslog = Syslog::local(&paths).expect("connects to the second path");
        syslog.send(Level::Warn, "Plaintext passwords detected");
        let mut buf = [0u8; 1024];
        let n = server.recv(&mut buf).expect("a datagram");
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        let tail = format!(
            " {}[{}]: Plaintext passwords detected\n",
            program_name(),
            std::process::id()
        );
        // <28> is daemon (3 * 8) + warning (4); "Jan _2 15:04:05" is 15 bytes.
        assert!(got.starts_with("<28>"), "{got}");
        assert_eq!(got.len(), 4 + 15 + tail.len(), "{got}");
        assert!(got.ends_with(&tail), "{got}");

        let err = Syslog::local(&[missing.text().as_str()])
            .err()
            .expect("no syslog");
        assert!(
            err.to_string()
                .starts_with("error connecting to syslog: the local syslog: no syslog socket at "),
            "{err}"
        );
    }

    #[test]
    fn an_output_switches_only_when_applied() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let address = SyslogAddress::Udp(udp.local_addr().unwrap().to_string());
        let output = LogOutput::open(LogTarget::Stderr { time: false }).unwrap();
        let mut log = output.logger();
        assert!(output
            .prepare(LogTarget::Stderr { time: false })
            .unwrap()
            .is_none());
        let target = LogTarget::RemoteSyslog(address);
        // Prepared and dropped: nothing changes.
        drop(output.prepare(target.clone()).unwrap());
        assert_eq!(output.target(), LogTarget::Stderr { time: false });
        output.prepare(target.clone()).unwrap().unwrap().apply();
        assert_eq!(output.target(), target);
        log(Level::Info, "now to syslog");
        let mut buf = [0u8; 1024];
        let n = udp.recv(&mut buf).expect("a datagram");
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<5>"), "{got}");
        assert!(
            got.ends_with(&format!(
                " {} {}[{}]: now to syslog\n",
                hostname(),
                program_name(),
                std::process::id()
            )),
            "{got}"
        );
        // A server that refuses connections: the switch is refused, the output stays.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let refused = output.prepare(LogTarget::RemoteSyslog(SyslogAddress::Tcp(
            closed.to_string(),
        )));
        let err = refused.err().expect("nothing listens there any more");
        assert!(
            err.to_string()
                .starts_with(&format!("error connecting to syslog: tcp://{closed}: ")),
            "{err}"
        );
        assert_eq!(output.target(), target);
    }
}
