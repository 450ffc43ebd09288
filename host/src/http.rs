//! The HTTP side of monitoring, shared by every runtime: reading one request
//! with `httparse`, writing the engine's answer as an HTTP/1.1 response
//! (`Connection: close`), and the process figures `/varz` reports.
//!
//! The engine renders the answers ([`tenet_core::Server::monitor`]); a
//! runtime only accepts connections on the monitoring port, reads until a
//! request's header is complete, asks the engine, writes, and closes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tenet_core::tls::{TlsRead, TlsSession};
use tenet_core::{MonitorHost, MonitorResponse};

/// The largest request header read; a longer one is refused (431).
pub const MAX_REQUEST: usize = 16 * 1024;
/// How long a monitoring client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One monitoring connection, sans-IO: the request read (decrypted first
/// over HTTPS) and the answer queued for the socket (sealed over HTTPS).
/// A runtime feeds it what it reads, answers the request it yields, and
/// writes [`HttpExchange::output`] until [`HttpExchange::done`].
pub struct HttpExchange {
    tls: Option<TlsSession>,
    request: Vec<u8>,
    /// The answer over plain HTTP; `sent` of it written.
    out: Vec<u8>,
    sent: usize,
    answered: bool,
}

/// What a read gave an [`HttpExchange`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read more.
    More,
    /// The request is complete (or refused): answer it with
    /// [`HttpExchange::answer`].
    Request(Request),
    /// The peer closed or broke TLS: close the connection.
    Close,
}

impl HttpExchange {
    /// A connection, over HTTPS when `tls` is a session
    /// ([`tenet_core::Server::monitor_tls`]).
    pub fn new(tls: Option<TlsSession>) -> HttpExchange {
        HttpExchange {
            tls,
            request: Vec::new(),
            out: Vec::new(),
            sent: 0,
            answered: false,
        }
    }

    /// Bytes read from the socket; an empty slice means it was closed.
    pub fn input(&mut self, bytes: &[u8]) -> Step {
        if bytes.is_empty() || self.answered {
            return if self.answered {
                Step::More
            } else {
                Step::Close
            };
        }
        match &mut self.tls {
            Some(tls) => match tls.read(bytes, &mut self.request) {
                TlsRead::Failed(_) | TlsRead::Closed => return Step::Close,
                TlsRead::Ok | TlsRead::Handshaken => {}
            },
            None => self.request.extend_from_slice(bytes),
        }
        match parse_request(&self.request) {
            Request::Partial => Step::More,
            request => Step::Request(request),
        }
    }

    /// The answer, as [`response_bytes`] made it.
    pub fn answer(&mut self, bytes: Vec<u8>) {
        self.answered = true;
        match &mut self.tls {
            Some(tls) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = tls.seal(rest);
                    if n == 0 {
                        break;
                    }
                    rest = &rest[n..];
                }
                tls.close_notify();
            }
            None => self.out = bytes,
        }
    }

    /// Whether the request was answered (nothing more needs reading).
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Bytes to write to the socket now (the TLS handshake's, or the answer).
    pub fn output(&self) -> &[u8] {
        match &self.tls {
            Some(tls) => tls.wire(),
            None => &self.out[self.sent..],
        }
    }

    /// `n` bytes of [`HttpExchange::output`] were written.
    pub fn written(&mut self, n: usize) {
        match &mut self.tls {
            Some(tls) => tls.written(n),
            None => self.sent = (self.sent + n).min(self.out.len()),
        }
    }

    /// Answered and all written: shut the socket.
    pub fn done(&self) -> bool {
        self.answered && self.output().is_empty()
    }
}

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// The header is not complete yet: read more.
    Partial,
    /// A request for `path` with `query` (the text after `?`, may be empty).
    /// `head` asks for the header only.
    Get {
        /// The path, e.g. `/connz`.
        path: String,
        /// The query, e.g. `subs=1&acc=A`.
        query: String,
        /// A `HEAD` request: no body in the answer.
        head: bool,
    },
    /// Not a request this server can answer: send this response and close.
    Refused(MonitorResponse),
}

/// Parses the request in `buf` (everything read from the connection so far).
pub fn parse_request(buf: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let head = request.method == Some("HEAD");
            Request::Get {
                path: path.to_string(),
                query: query.to_string(),
                head,
            }
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => Request::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            Request::Refused(text(431, "request header too large"))
        }
        Err(e) => Request::Refused(text(400, &format!("malformed HTTP request: {e}"))),
    }
}

fn text(status: u16, body: &str) -> MonitorResponse {
    MonitorResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

/// The whole HTTP/1.1 response for an answer (`head`: without the body).
pub fn response_bytes(answer: &MonitorResponse, head: bool) -> Vec<u8> {
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut bytes = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nAccess-Control-Allow-Origin: *\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head {
        bytes.extend_from_slice(answer.body.as_bytes());
    }
    bytes
}

/// `host:port` as nats-server logs a listening address (`[::1]:8222` for IPv6).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The process figures of `/varz`: the wall-clock time, resident memory, CPU
/// use since the previous sample (or since the start), and cores.
pub struct ProcessUsage {
    started: Instant,
    last: Option<(Instant, f64)>,
    cpu: f64,
}

impl Default for ProcessUsage {
    fn default() -> Self {
        ProcessUsage::new()
    }
}

impl ProcessUsage {
    /// Starts measuring now.
    pub fn new() -> ProcessUsage {
        ProcessUsage {
            started: Instant::now(),
            last: None,
            cpu: 0.0,
        }
    }

    /// What the engine needs for one monitoring request.
    pub fn sample(&mut self) -> MonitorHost {
        let unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let now = Instant::now();
        if let Some(cpu_secs) = cpu_seconds() {
            let (since, before) = self.last.unwrap_or((self.started, 0.0));
            let wall = now.duration_since(since).as_secs_f64();
            // Closer samples than this would only be noise: keep the last figure.
            if wall >= 0.5 || self.last.is_none() {
                if wall > 0.0 {
                    self.cpu = ((cpu_secs - before) / wall * 1000.0).round() / 10.0;
                }
                self.last = Some((now, cpu_secs));
            }
        }
        MonitorHost {
            unix_nanos,
            mem: resident_bytes().unwrap_or(0),
            cpu: self.cpu.max(0.0),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }
}

/// Resident memory from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// User plus system CPU time of the process from `/proc/self/stat`, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_once_their_header_is_complete() {
        assert_eq!(
            parse_request(b"GET /connz?subs=1 HTTP/1.1\r\nHost: x\r\n"),
            Request::Partial
        );
        assert_eq!(
            parse_request(b"GET /connz?subs=1&acc=A HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Get {
                path: "/connz".into(),
                query: "subs=1&acc=A".into(),
                head: false
            }
        );
        assert!(matches!(
            parse_request(b"HEAD /varz HTTP/1.0\r\n\r\n"),
            Request::Get { head: true, .. }
        ));
        assert!(matches!(
            parse_request(b"\x16\x03\x01 TLS hello\r\n\r\n"),
            Request::Refused(MonitorResponse { status: 400, .. })
        ));
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX_REQUEST]].concat();
        assert!(matches!(
            parse_request(&huge),
            Request::Refused(MonitorResponse { status: 431, .. })
        ));
    }

    #[test]
    fn responses_carry_the_monitoring_headers() {
        let answer = MonitorResponse {
            status: 200,
            content_type: "application/json",
            body: "{}".into(),
        };
        assert_eq!(
            String::from_utf8(response_bytes(&answer, false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        assert!(response_bytes(&answer, true).ends_with(b"\r\n\r\n"));
        assert_eq!(host_port("0.0.0.0", 8222), "0.0.0.0:8222");
        assert_eq!(host_port("::", 8222), "[::]:8222");
    }

    #[test]
    fn process_figures_are_read() {
        let host = ProcessUsage::new().sample();
        assert!(host.unix_nanos > 1_700_000_000_000_000_000);
        assert!(host.cores >= 1);
        if cfg!(target_os = "linux") {
            assert!(host.mem > 0);
        }
    }
}
