//! tenet-mio: drives the tenet engine from one mio event loop thread.
//!
//! The loop owns the [`Server`], so the hot path takes no lock. Each pass: wait
//! for readiness or the engine's next deadline, accept, read every readable
//! client until `WouldBlock` (or until the engine pauses it), fire timers, then
//! drain the engine's events, writing each dirty client once with a vectored
//! write. Everything protocol-related lives in `tenet-core`.
//!
//! Monitoring (`http_port`) is a second listener in the same loop: a
//! monitoring connection is read until its request header is complete, the
//! loop asks the engine it owns for the answer and writes it, then closes.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tenet_core::Auth;
use tenet_core::{ClientId, CloseReason, Event, JobDone, Level, Options, Peer, Server, Time};
use tenet_host::http;
use tenet_host::{self as host, AcceptBackoff, AcceptFailure, Control, Logger, Workers};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const HTTP_LISTENER: Token = Token(usize::MAX - 3);
/// Monitoring connections get tokens below this; client tokens are
/// `ClientId`s, whose generation (the upper 32 bits) is never 0.
const HTTP_TOKENS: usize = 1 << 32;
/// Bytes read from one client per pass before others get their turn.
const READ_BUDGET: usize = 64 * 1024;
const READ_BUFFER: usize = 64 * 1024;
/// Slices handed to one `writev`.
const MAX_IOVECS: usize = 64;

use tenet_host::stderr_logger;
use tenet_host::FileStore;

/// Asks a running event loop, from any thread, to stop, to take a new
/// configuration or to enter lame duck mode.
#[derive(Clone)]
pub struct LoopHandle {
    stop: Arc<AtomicBool>,
    controls: Arc<Mutex<Vec<Control>>>,
    waker: Arc<Waker>,
}

impl LoopHandle {
    /// Makes the loop close every client and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Hands the loop a request; it acts on it at once.
    pub fn control(&self, control: Control) {
        if let Control::Stop = control {
            return self.stop();
        }
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(control);
        let _ = self.waker.wake();
    }
}

/// A client socket.
struct Conn {
    stream: TcpStream,
    /// The peer closed its side: close ours once the queued bytes are written
    /// (so `printf 'PING\r\n' | nc -N host 4222` still gets its PONG).
    read_closed: bool,
}

/// A listener's pause after failed accepts: until it is over, the listener
/// is not accepted from, and then it is, readiness or not (mio is
/// edge-triggered: clients already waiting in the backlog make no new event).
struct Pacing {
    backoff: AcceptBackoff,
    paused_until: Option<Instant>,
}

impl Pacing {
    fn new(backoff: AcceptBackoff) -> Pacing {
        Pacing {
            backoff,
            paused_until: None,
        }
    }

    fn paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// Ends a pause that is over; true if one did.
    fn resume_if_due(&mut self, now: Instant) -> bool {
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
            return true;
        }
        false
    }

    /// After a failed accept: true to try again at once; otherwise the pause
    /// has begun and `log` has the line.
    fn failed(&mut self, error: &io::Error, log: &mut Logger) -> bool {
        match self.backoff.failed(error) {
            AcceptFailure::Retry => true,
            AcceptFailure::Pause { pause, line } => {
                log(Level::Error, &line);
                self.paused_until = Some(Instant::now() + pause);
                false
            }
        }
    }
}

/// A monitoring connection: its request so far, then its response.
struct HttpConn {
    stream: TcpStream,
    exchange: http::HttpExchange,
    /// Closed if the request is not complete by then.
    deadline: Instant,
}

/// A bound server, ready to run.
pub struct EventLoop {
    server: Server,
    poll: Poll,
    /// The client listener; closed in lame duck mode.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    accepting: Pacing,
    http_listener: Option<(TcpListener, SocketAddr)>,
    http_accepting: Pacing,
    http_conns: HashMap<usize, HttpConn>,
    next_http_token: usize,
    usage: http::ProcessUsage,
    conns: HashMap<u64, Conn>,
    /// Clients to read again without waiting for readiness (budget used up, or resumed).
    read_again: Vec<ClientId>,
    stop: Arc<AtomicBool>,
    controls: Arc<Mutex<Vec<Control>>>,
    /// Lame duck mode has closed every client: return from `run`.
    exit: bool,
    /// Threads for the engine's jobs, and their results waiting for the loop.
    workers: Workers,
    jobs_done: Arc<Mutex<Vec<JobDone>>>,
    waker: Arc<Waker>,
    origin: Instant,
    log: Logger,
    /// JetStream's file streams, when the server runs JetStream.
    store: Option<FileStore>,
}

impl EventLoop {
    /// Binds the listening socket described by `opts`; clients authenticate against `auth`.
    pub fn bind(opts: Options, auth: Auth, mut log: Logger) -> io::Result<EventLoop> {
        let mut bound = host::bind_engine(opts, auth)?;
        let store = host::open_store(&mut bound.server, &mut log)?;
        bound.listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(bound.listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let http_listener = match bound.http {
            Some(std_http) => {
                let addr = std_http.local_addr()?;
                let mut http = TcpListener::from_std(std_http);
                poll.registry()
                    .register(&mut http, HTTP_LISTENER, Interest::READABLE)?;
                Some((http, addr))
            }
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let jobs_done: Arc<Mutex<Vec<JobDone>>> = Arc::default();
        let workers = {
            let (jobs_done, waker) = (jobs_done.clone(), waker.clone());
            Workers::start(move |done| {
                jobs_done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(done);
                let _ = waker.wake();
            })?
        };
        if let Some(store) = &store {
            let waker = waker.clone();
            store.set_sync_notify(Box::new(move || {
                let _ = waker.wake();
            }));
        }
        let http_addr = http_listener.as_ref().map_or(bound.local_addr, |(_, a)| *a);
        let mut runtime = EventLoop {
            server: bound.server,
            poll,
            listener: Some(listener),
            local_addr: bound.local_addr,
            accepting: Pacing::new(AcceptBackoff::client(bound.local_addr)),
            http_listener,
            http_accepting: Pacing::new(AcceptBackoff::monitoring(http_addr)),
            http_conns: HashMap::new(),
            next_http_token: 1,
            usage: http::ProcessUsage::new(),
            conns: HashMap::new(),
            read_again: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            controls: Arc::new(Mutex::new(Vec::new())),
            exit: false,
            workers,
            jobs_done,
            waker,
            origin: Instant::now(),
            log,
            store,
        };
        let now = runtime.now();
        runtime.server.set_wall_clock(tenet_host::unix_nanos(), now);
        Ok(runtime)
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The monitoring address, when monitoring is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// A handle that stops the loop, reloads its configuration or starts lame duck mode.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            stop: self.stop.clone(),
            controls: self.controls.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Logs a line through this loop's logger.
    pub fn log(&mut self, level: Level, text: &str) {
        (self.log)(level, text);
    }

    /// The engine (for the startup banner).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Runs until stopped; then closes every client and returns.
    pub fn run(self) -> io::Result<()> {
        self.serve()
    }

    fn serve(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let timeout = if self.read_again.is_empty() {
                let engine = self
                    .server
                    .poll_timeout()
                    .map(|t| t.saturating_since(self.now()));
                // Monitoring requests' deadlines, and the ends of accept pauses.
                let own = self
                    .http_conns
                    .values()
                    .map(|c| c.deadline)
                    .chain(self.accepting.paused_until)
                    .chain(self.http_accepting.paused_until)
                    .min()
                    .map(|d| d.saturating_duration_since(Instant::now()));
                match (engine, own) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    // A paused listener is accepted from when the pause ends.
                    LISTENER if !self.accepting.paused() => self.accept_all(),
                    HTTP_LISTENER if !self.http_accepting.paused() => self.accept_http(),
                    LISTENER | HTTP_LISTENER => {}
                    WAKER => {
                        let controls = std::mem::take(
                            &mut *self.controls.lock().unwrap_or_else(|e| e.into_inner()),
                        );
                        let now = self.now();
                        let done = std::mem::take(
                            &mut *self.jobs_done.lock().unwrap_or_else(|e| e.into_inner()),
                        );
                        for done in done {
                            self.server.handle_job_done(done, now);
                        }
                        // Store writes the sync thread put on the disk.
                        if let Some(store) = &self.store {
                            self.server.handle_store_synced(store.synced(), now);
                        }
                        for control in controls {
                            match control {
                                // The engine logs the outcome.
                                Control::Reload(config) => {
                                    let (opts, auth, applied) = *config;
                                    if self.server.reload(opts, auth, now).is_ok() {
                                        applied();
                                    }
                                }
                                Control::LameDuck => self.server.enter_lame_duck(now),
                                Control::Stop => self.stop.store(true, Ordering::SeqCst),
                            }
                        }
                    }
                    Token(raw) if raw < HTTP_TOKENS => self.serve_http(raw),
                    Token(raw) => {
                        let id = ClientId::from_u64(raw as u64);
                        if event.is_writable() {
                            let now = self.now();
                            self.flush(id, now);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(id, &mut buf);
                        }
                    }
                }
            }
            for id in std::mem::take(&mut self.read_again) {
                self.read(id, &mut buf);
            }
            let now = Instant::now();
            if self.accepting.resume_if_due(now) {
                self.accept_all();
            }
            if self.http_accepting.resume_if_due(now) {
                self.accept_http();
            }
            self.server.handle_timeout(self.now());
            self.drain_events();
            self.expire_http();
            if self.stop.load(Ordering::SeqCst) {
                self.server.shutdown(self.now());
                self.drain_events();
                return Ok(());
            }
            if self.exit {
                return Ok(());
            }
        }
    }

    fn now(&self) -> Time {
        Time::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, addr)) => {
                    self.accepting.backoff.accepted();
                    let _ = stream.set_nodelay(true);
                    let peer = Peer {
                        ip: addr.ip().to_string(),
                        port: addr.port(),
                    };
                    let id = self.server.accept(peer, self.now());
                    let token = Token(id.as_u64() as usize);
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        (self.log)(Level::Error, &format!("registering a client failed: {e}"));
                        // It could never be read.
                        self.server
                            .handle_closed(id, CloseReason::ReadError, self.now());
                        continue;
                    }
                    self.conns.insert(
                        id.as_u64(),
                        Conn {
                            stream,
                            read_closed: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of file descriptors and the like: pause, then try again.
                Err(e) => {
                    if !self.accepting.failed(&e, &mut self.log) {
                        return;
                    }
                }
            }
        }
    }

    fn accept_http(&mut self) {
        let Some((listener, _)) = self.http_listener.as_ref() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    self.http_accepting.backoff.accepted();
                    // Tokens below HTTP_TOKENS, skipping any still in use.
                    let mut token = self.next_http_token;
                    while self.http_conns.contains_key(&token) {
                        token = token % (HTTP_TOKENS - 1) + 1;
                    }
                    self.next_http_token = token % (HTTP_TOKENS - 1) + 1;
                    let registered = self.poll.registry().register(
                        &mut stream,
                        Token(token),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    if registered.is_ok() {
                        let conn = HttpConn {
                            stream,
                            exchange: http::HttpExchange::new(self.server.monitor_tls()),
                            deadline: Instant::now() + http::REQUEST_TIMEOUT,
                        };
                        self.http_conns.insert(token, conn);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of file descriptors and the like: pause, then try again.
                Err(e) => {
                    if !self.http_accepting.failed(&e, &mut self.log) {
                        return;
                    }
                }
            }
        }
    }

    /// Reads a monitoring request until its header is complete, answers it
    /// from the engine, writes the answer and closes.
    fn serve_http(&mut self, token: usize) {
        let Some(mut conn) = self.http_conns.remove(&token) else {
            return;
        };
        if self.advance_http(&mut conn) {
            self.http_conns.insert(token, conn);
        } else {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// One step of a monitoring connection; false once it is done with.
    fn advance_http(&mut self, conn: &mut HttpConn) -> bool {
        let mut buf = [0u8; 4096];
        while !conn.exchange.answered() {
            let n = match conn.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            match conn.exchange.input(&buf[..n]) {
                http::Step::More => {}
                http::Step::Close => return false,
                http::Step::Request(http::Request::Get { path, query, head }) => {
                    let host = self.usage.sample();
                    let answer = self.server.monitor(&path, &query, self.now(), &host);
                    conn.exchange.answer(http::response_bytes(&answer, head));
                }
                http::Step::Request(http::Request::Refused(answer)) => {
                    conn.exchange.answer(http::response_bytes(&answer, false));
                }
                http::Step::Request(http::Request::Partial) => {}
            }
        }
        // The TLS handshake's bytes, then the answer.
        while !conn.exchange.output().is_empty() {
            match conn.stream.write(conn.exchange.output()) {
                Ok(0) => return false,
                Ok(n) => conn.exchange.written(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if conn.exchange.answered() {
                        // The answer is ready; only a slow reader delays it now.
                        conn.deadline = Instant::now() + http::REQUEST_TIMEOUT;
                    }
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if !conn.exchange.done() {
            return true;
        }
        let _ = conn.stream.shutdown(Shutdown::Write);
        false
    }

    fn close_http(&mut self, token: usize) {
        if let Some(mut conn) = self.http_conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// Closes monitoring connections that took too long.
    fn expire_http(&mut self) {
        if self.http_conns.is_empty() {
            return;
        }
        let now = Instant::now();
        let expired: Vec<usize> = self
            .http_conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for token in expired {
            self.close_http(token);
        }
    }

    /// Reads until `WouldBlock`, the engine pauses the client, or the budget is used.
    fn read(&mut self, id: ClientId, buf: &mut [u8]) {
        let mut budget = READ_BUDGET;
        while self.server.can_read(id) {
            let Some(conn) = self.conns.get_mut(&id.as_u64()) else {
                return;
            };
            if conn.read_closed {
                return;
            }
            match conn.stream.read(buf) {
                Ok(0) => {
                    conn.read_closed = true;
                    if self.server.outbound_len(id) == 0 {
                        self.drop_conn(id, CloseReason::ClientClosed);
                    }
                    return;
                }
                Ok(n) => {
                    let now = self.now();
                    self.server.handle_read(id, &buf[..n], now);
                    self.persist();
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.read_again.push(id);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(id, CloseReason::ReadError),
            }
        }
    }

    /// Writes the client's queued bytes until done or the socket is full
    /// (which the engine is told, for `write_deadline`). Returns false if the
    /// connection is gone.
    fn flush(&mut self, id: ClientId, now: Time) -> bool {
        loop {
            let Some(conn) = self.conns.get_mut(&id.as_u64()) else {
                return false;
            };
            let result = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self.server.outbound(id, &mut slices);
                if n == 0 {
                    if conn.read_closed {
                        self.drop_conn(id, CloseReason::ClientClosed);
                        return false;
                    }
                    return true;
                }
                conn.stream.write_vectored(&slices[..n])
            };
            match result {
                Ok(0) => {
                    self.drop_conn(id, CloseReason::WriteError);
                    return false;
                }
                Ok(n) => self.server.handle_written(id, n, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.server.handle_written(id, 0, now);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_conn(id, CloseReason::WriteError);
                    return false;
                }
            }
        }
    }

    /// Makes the store writes the engine asked for: before any client
    /// write, so a PubAck never leaves before its message is written.
    fn persist(&mut self) {
        if let Some(store) = self.store.as_mut() {
            store.write_pending(&mut self.server, &mut self.log);
        }
    }

    fn drain_events(&mut self) {
        self.persist();
        let now = self.now();
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Flush(id) => {
                    self.flush(id, now);
                }
                Event::Close(id, reason) => {
                    // Best effort: the -ERR that explains the close, if the socket takes it.
                    if self.flush(id, now) {
                        if let Some(conn) = self.conns.get(&id.as_u64()) {
                            let _ = conn.stream.shutdown(Shutdown::Both);
                        }
                        self.drop_conn(id, reason);
                    }
                }
                Event::Resume(id) => self.read_again.push(id),
                Event::Log(level, line) => (self.log)(level, &line),
                Event::StopAccepting => {
                    if let Some(mut listener) = self.listener.take() {
                        let _ = self.poll.registry().deregister(&mut listener);
                    }
                }
                Event::Exit => self.exit = true,
                Event::Job(job) => self.workers.run(job),
            }
        }
    }

    /// Forgets the socket and tells the engine it is gone, and why: once the
    /// peer closed its side, that is the reason whatever failed after (as
    /// nats-server, which closes on the end of input).
    fn drop_conn(&mut self, id: ClientId, mut reason: CloseReason) {
        if let Some(mut conn) = self.conns.remove(&id.as_u64()) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if conn.read_closed {
                reason = CloseReason::ClientClosed;
            }
        }
        self.server.handle_closed(id, reason, self.now());
    }
}

impl host::Runtime for EventLoop {
    fn bind(opts: Options, auth: Auth, log: Logger) -> io::Result<Self> {
        EventLoop::bind(opts, auth, log)
    }
    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    fn http_addr(&self) -> Option<SocketAddr> {
        EventLoop::http_addr(self)
    }
    fn server(&self) -> &Server {
        &self.server
    }
    fn controller(&self) -> Box<dyn Fn(Control) + Send> {
        let handle = self.handle();
        Box::new(move |control| handle.control(control))
    }
    fn run(self) -> io::Result<()> {
        self.serve()
    }
}

/// A server running on a background thread (for tests and embedding).
pub struct ServerHandle {
    addr: SocketAddr,
    stop: LoopHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.stop();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Binds per `opts` and runs the server on a new thread; logs go to stderr.
/// Clients authenticate against `auth` ([`Auth::none`] for an open server).
pub fn spawn(opts: Options, auth: Auth) -> io::Result<ServerHandle> {
    let event_loop = EventLoop::bind(opts, auth, stderr_logger())?;
    let addr = event_loop.local_addr();
    let stop = event_loop.handle();
    let thread = std::thread::Builder::new()
        .name("tenet-mio".into())
        .spawn(move || event_loop.run())?;
    Ok(ServerHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}
