//! tenet-async-std: drives the tenet engine from async-std tasks.
//!
//! The [`Server`] sits behind one lock. Each connection has a reader task and
//! a writer task: the reader hands what it read to the engine itself (it
//! takes the lock, processes the bytes, and writes what that queued for
//! other clients straight to their sockets), as nats-server's read loop
//! does, so a message crosses no channel and wakes no other task on its
//! way. Only what a socket does not take at once goes to that connection's
//! writer, through a small `Link` (one short lock, no channel: an idle
//! connection costs little), and the writer reports what it wrote the same
//! way. A reader whose client the engine pauses (back-pressure, a job, a
//! used-up turn) waits on its link until the engine resumes it. Bytes handed
//! to a writer stay counted in the engine's outbound queue until the writer
//! reports them written, so slow consumers are detected exactly as in the
//! mio runtime. One more task owns the engine's timers and what comes from
//! outside (accepted sockets, signals, monitoring requests, finished jobs)
//! over a channel.
//!
//! A reader's buffer is sized as nats-server sizes its own: 512 bytes at
//! first, twice as large after each read that fills it (up to 64 KiB), half
//! as large again after reads that fill less than half of it (down to 64
//! bytes), so an idle connection holds little and a busy publisher reads in
//! 64 KiB chunks.
//!
//! When the engine closes a client, it marks the link closed: the writer
//! writes what the socket takes at once (the `-ERR` that explains the close),
//! then shuts the socket down, which also ends a read the reader is waiting
//! in, so the socket and every buffer are freed at once even when the peer
//! reads nothing.
//!
//! Monitoring (`http_port`) runs in its own tasks: one accepts connections,
//! and each connection's task reads the request (with `httparse`), asks the
//! engine task for the answer over the input channel with a one-shot reply
//! channel, writes it and closes.
//!
//! The code sticks to the `futures` I/O traits (through `futures-lite`), so a
//! move to smol, which async-std's authors recommend, would be small.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_std::channel::{bounded, unbounded, Receiver, Sender};
use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use futures_lite::{future, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tenet_core::Auth;
use tenet_core::{
    ClientId, CloseReason, Event, JobDone, Level, MonitorResponse, Options, Peer, Server, Time,
};
use tenet_host::http;
use tenet_host::{self as host, AcceptBackoff, AcceptFailure, Control, FileStore, Logger, Runtime};

/// A reader's first buffer (an INFO/CONNECT exchange fits).
const READ_BUFFER_START: usize = 512;
/// The smallest a reader's buffer shrinks to.
const READ_BUFFER_MIN: usize = 64;
/// The largest a reader's buffer grows to.
const READ_BUFFER_MAX: usize = 64 * 1024;
/// Reads in a row that fill less than half the buffer before it shrinks.
const SHORT_READS_TO_SHRINK: u32 = 2;
/// Inputs handled before the engine's events are drained (batches writes).
const BATCH: usize = 64;
/// How long a shutdown waits for writers to deliver what they hold.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The shortest sleep of the engine task between two turns.
const MIN_ENGINE_SLEEP: Duration = Duration::from_micros(100);
/// Slices gathered from the engine per flush.
const MAX_SLICES: usize = 64;

/// What the connection tasks and the outside world tell the engine task.
enum Input {
    /// A job the engine asked for, done on a blocking-task thread.
    JobDone(JobDone),
    /// The store's sync thread put writes on the disk (`sync_interval: always`).
    StoreSynced,
    Accepted(TcpStream, SocketAddr),
    /// A timer is due earlier than the engine task's sleep ends.
    Wake,
    /// A request of the process (stop, reload, lame duck mode).
    Control(Control),
    /// A line for the log, from a task that has no logger (the acceptors).
    Log(Level, String),
    /// A monitoring request ([`Server::monitor`]): path, query, and where the
    /// answer goes.
    Monitor {
        path: String,
        query: String,
        reply: Sender<MonitorResponse>,
    },
    /// A new monitoring connection asks for its TLS session (HTTPS).
    MonitorTls(Sender<Option<tenet_core::tls::TlsSession>>),
}

/// What the engine task shares with one connection's reader and writer.
#[derive(Default)]
struct Link {
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// Bytes for the writer, not yet taken by it.
    out: Vec<u8>,
    /// The engine resumed the client: its reader may read again.
    resumed: bool,
    /// The engine dropped the connection: the writer writes only what the
    /// socket takes at once and closes it; the reader stops.
    closed: bool,
    writer: Option<Waker>,
    reader: Option<Waker>,
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the writer `slices`, skipping their first `skip` bytes.
    fn send(&self, slices: &[IoSlice<'_>], mut skip: usize) {
        let mut state = self.lock();
        for slice in slices {
            if skip >= slice.len() {
                skip -= slice.len();
                continue;
            }
            state.out.extend_from_slice(&slice[skip..]);
            skip = 0;
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// Lets a paused reader read again.
    fn resume(&self) {
        let mut state = self.lock();
        state.resumed = true;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// The engine is done with the connection.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for waker in [state.writer.take(), state.reader.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    /// Waits until the engine resumes the client; false once the
    /// connection is closed.
    async fn resumed(&self) -> bool {
        future::poll_fn(|cx| {
            let mut state = self.lock();
            if state.closed {
                return Poll::Ready(false);
            }
            if std::mem::take(&mut state.resumed) {
                return Poll::Ready(true);
            }
            state.reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The bytes to write next, and whether the connection is closed; no
    /// bytes once it is closed and nothing is left.
    async fn next_bytes(&self) -> (Vec<u8>, bool) {
        future::poll_fn(|cx| {
            let mut state = self.lock();
            if !state.out.is_empty() || state.closed {
                return Poll::Ready((std::mem::take(&mut state.out), state.closed));
            }
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Writes some of `bytes`, waiting for the socket only while the
    /// connection is open; None if it is closed and the socket takes nothing
    /// at once.
    async fn write(&self, stream: &mut TcpStream, bytes: &[u8]) -> Option<io::Result<usize>> {
        future::poll_fn(|cx| match Pin::new(&mut *stream).poll_write(cx, bytes) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending => {
                let mut state = self.lock();
                if state.closed {
                    return Poll::Ready(None);
                }
                state.writer = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// The engine task's view of one connection; dropping it closes the link.
struct Conn {
    /// The socket, for writes the engine task makes itself while the
    /// writer holds nothing.
    stream: TcpStream,
    /// Bytes to the writer, and resuming the reader.
    link: Arc<Link>,
    /// Its reader waits for the engine to resume the client.
    paused: bool,
    /// Bytes handed to the writer but not yet reported written.
    in_flight: usize,
    /// Reading ended, and how.
    read_closed: Option<CloseReason>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.link.close();
    }
}

/// A bound server, ready to run on async-std.
pub struct AsyncStdRuntime {
    server: Server,
    listener: StdListener,
    local_addr: SocketAddr,
    http: Option<(StdListener, SocketAddr)>,
    inputs: (Sender<Input>, Receiver<Input>),
    log: Logger,
    store: Option<FileStore>,
}

impl Runtime for AsyncStdRuntime {
    fn bind(opts: Options, auth: Auth, mut log: Logger) -> io::Result<Self> {
        let mut bound = host::bind_engine(opts, auth)?;
        let store = host::open_store(&mut bound.server, &mut log)?;
        let http = match bound.http {
            Some(listener) => {
                let addr = listener.local_addr()?;
                Some((listener, addr))
            }
            None => None,
        };
        let inputs: (Sender<Input>, Receiver<Input>) = unbounded();
        if let Some(store) = &store {
            let tx = inputs.0.clone();
            store.set_sync_notify(Box::new(move || {
                let _ = tx.try_send(Input::StoreSynced);
            }));
        }
        Ok(AsyncStdRuntime {
            server: bound.server,
            listener: bound.listener,
            local_addr: bound.local_addr,
            http,
            inputs,
            log,
            store,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(_, addr)| *addr)
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn controller(&self) -> Box<dyn Fn(Control) + Send> {
        let inputs = self.inputs.0.clone();
        Box::new(move |control| {
            let _ = inputs.try_send(Input::Control(control));
        })
    }

    fn run(self) -> io::Result<()> {
        task::block_on(self.serve())
    }
}

impl AsyncStdRuntime {
    async fn serve(self) -> io::Result<()> {
        let AsyncStdRuntime {
            server,
            listener,
            http,
            inputs: (tx, rx),
            log,
            store,
            ..
        } = self;
        let backoff = AcceptBackoff::client(listener.local_addr()?);
        let listener = TcpListener::from(listener);
        let acceptor = task::spawn(accept_loop(listener, backoff, tx.clone()));
        let monitor = http.map(|(listener, addr)| {
            // bind_engine made it non-blocking, as async-std wants it.
            let listener = TcpListener::from(listener);
            let backoff = AcceptBackoff::monitoring(addr);
            task::spawn(http_accept_loop(listener, backoff, tx.clone()))
        });
        let live_writers = Arc::new(AtomicUsize::new(0));
        let mut engine = Engine {
            server,
            acceptor: Some(acceptor),
            exit: false,
            conns: HashMap::new(),
            live_writers: live_writers.clone(),
            tx,
            wakes_at: None,
            origin: Instant::now(),
            usage: http::ProcessUsage::new(),
            log,
            store,
        };
        let now = engine.now();
        engine.server.set_wall_clock(host::unix_nanos(), now);
        let shared = Arc::new(Mutex::new(engine));
        let result = run_engine(shared.clone(), rx).await;
        let acceptor = lock(&shared).acceptor.take();
        if let Some(acceptor) = acceptor {
            acceptor.cancel().await;
        }
        if let Some(monitor) = monitor {
            monitor.cancel().await;
        }
        // Let writers deliver what they hold (the -ERRs of a shutdown, for instance).
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while live_writers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            task::sleep(Duration::from_millis(5)).await;
        }
        result
    }
}

async fn accept_loop(listener: TcpListener, mut backoff: AcceptBackoff, tx: Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                backoff.accepted();
                let _ = stream.set_nodelay(true);
                if tx.send(Input::Accepted(stream, addr)).await.is_err() {
                    return;
                }
            }
            // Out of file descriptors and the like: pause, then try again.
            Err(e) => pause_after(&mut backoff, &e, &tx).await,
        }
    }
}

async fn http_accept_loop(listener: TcpListener, mut backoff: AcceptBackoff, tx: Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff.accepted();
                task::spawn(serve_http(stream, tx.clone()));
            }
            Err(e) => pause_after(&mut backoff, &e, &tx).await,
        }
    }
}

/// After a failed accept: logs it (through the engine) and pauses as
/// nats-server does.
async fn pause_after(backoff: &mut AcceptBackoff, error: &io::Error, tx: &Sender<Input>) {
    if let AcceptFailure::Pause { pause, line } = backoff.failed(error) {
        let _ = tx.send(Input::Log(Level::Error, line)).await;
        task::sleep(pause).await;
    }
}

/// Writes what `exchange` has for the socket; false if the socket failed.
async fn write_out(stream: &mut TcpStream, exchange: &mut http::HttpExchange) -> bool {
    while !exchange.output().is_empty() {
        match stream.write(exchange.output()).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => exchange.written(n),
        }
    }
    true
}

/// One monitoring connection: read the request (through TLS with HTTPS),
/// ask the engine, answer, close.
async fn serve_http(mut stream: TcpStream, tx: Sender<Input>) {
    let (reply, session) = bounded(1);
    if tx.send(Input::MonitorTls(reply)).await.is_err() {
        return;
    }
    let Ok(session) = session.recv().await else {
        return;
    };
    let mut exchange = http::HttpExchange::new(session);
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            match exchange.input(&buf[..n]) {
                http::Step::More => {}
                http::Step::Close => return None,
                http::Step::Request(request) => return Some(request),
            }
            // The TLS handshake's answer.
            if !write_out(&mut stream, &mut exchange).await {
                return None;
            }
        }
    };
    let Ok(Some(request)) = async_std::future::timeout(http::REQUEST_TIMEOUT, read).await else {
        return;
    };
    let (answer, head) = match request {
        http::Request::Get { path, query, head } => {
            let (reply, answer) = bounded(1);
            let asked = tx.send(Input::Monitor { path, query, reply }).await;
            match (asked, answer.recv().await) {
                (Ok(()), Ok(answer)) => (answer, head),
                // The engine is gone (shutting down).
                _ => return,
            }
        }
        http::Request::Refused(answer) => (answer, false),
        http::Request::Partial => return,
    };
    exchange.answer(http::response_bytes(&answer, head));
    let write = async {
        let _ = write_out(&mut stream, &mut exchange).await;
        let _ = stream.flush().await;
    };
    let _ = async_std::future::timeout(http::REQUEST_TIMEOUT, write).await;
    let _ = stream.shutdown(Shutdown::Write);
}

/// How much a reader reads at once (see the crate's documentation).
struct ReadSize {
    size: usize,
    /// Reads in a row that filled less than half the buffer.
    short_reads: u32,
}

impl ReadSize {
    fn new() -> ReadSize {
        ReadSize {
            size: READ_BUFFER_START,
            short_reads: 0,
        }
    }

    /// Sizes the next read after one of `n` bytes.
    fn after_read(&mut self, n: usize) {
        if n >= self.size {
            self.short_reads = 0;
            self.size = (self.size * 2).min(READ_BUFFER_MAX);
        } else {
            if n < self.size / 2 {
                self.short_reads += 1;
            }
            if self.short_reads > SHORT_READS_TO_SHRINK {
                self.size = (self.size / 2).max(READ_BUFFER_MIN);
            }
        }
    }

    /// Makes `buf` the size of the next read, giving memory back when the
    /// size shrank. (What it holds was handed to the engine already; only
    /// the bytes past it are filled.)
    fn fit(&self, buf: &mut Vec<u8>) {
        buf.truncate(self.size);
        if buf.capacity() > self.size {
            buf.shrink_to(self.size);
        }
        buf.resize(self.size, 0);
    }
}

/// The engine, shared by the engine task and every connection's tasks.
type Shared = Arc<Mutex<Engine>>;

fn lock(engine: &Shared) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads and hands each read to the engine itself; while the engine pauses
/// the client, waits to be resumed.
async fn reader(id: ClientId, mut stream: TcpStream, link: Arc<Link>, engine: Shared) {
    let mut how = CloseReason::ClientClosed;
    let mut size = ReadSize::new();
    let mut buf = Vec::new();
    loop {
        size.fit(&mut buf);
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Err(_) => {
                how = CloseReason::ReadError;
                break;
            }
            Ok(n) => {
                size.after_read(n);
                let readable = lock(&engine).read(id, &buf[..n]);
                if !readable && !link.resumed().await {
                    return;
                }
                // A read that succeeds at once does not yield: without this,
                // a client that keeps its socket full would keep the thread
                // (and the engine) to itself.
                task::yield_now().await;
            }
        }
    }
    lock(&engine).read_closed(id, how);
}

/// Writes what the engine hands it, reporting each write back to it, until
/// the engine closes the link: then it writes only what the socket takes at
/// once, and closes the socket. `live` counts running writers (a shutdown
/// waits for them).
async fn writer(
    id: ClientId,
    mut stream: TcpStream,
    link: Arc<Link>,
    engine: Shared,
    live: Arc<AtomicUsize>,
) {
    loop {
        let (bytes, closed) = link.next_bytes().await;
        if bytes.is_empty() && closed {
            break;
        }
        // Each write is reported as it happens, so the engine sees progress
        // on a slow socket (`write_deadline`).
        let mut written = 0;
        while written < bytes.len() {
            match link.write(&mut stream, &bytes[written..]).await {
                Some(Ok(n)) if n > 0 => {
                    written += n;
                    lock(&engine).written(id, n);
                }
                Some(_) => {
                    lock(&engine).write_failed(id);
                    return finish(stream, live).await;
                }
                // Closed by the engine, and the socket takes no more.
                None => return finish(stream, live).await,
            }
        }
    }
    finish(stream, live).await;
}

/// Closes a writer's socket (which ends the reader's read too) and counts the
/// writer out.
async fn finish(mut stream: TcpStream, live: Arc<AtomicUsize>) {
    let _ = stream.flush().await;
    let _ = stream.shutdown(Shutdown::Both);
    live.fetch_sub(1, Ordering::SeqCst);
}

struct Engine {
    server: Server,
    /// The task accepting clients; cancelled (closing the listener) in lame duck mode.
    acceptor: Option<task::JoinHandle<()>>,
    /// Lame duck mode has closed every client: return from `run`.
    exit: bool,
    conns: HashMap<ClientId, Conn>,
    live_writers: Arc<AtomicUsize>,
    tx: Sender<Input>,
    /// When the engine task's sleep ends (None: it waits for an input only).
    wakes_at: Option<Time>,
    origin: Instant,
    usage: http::ProcessUsage,
    log: Logger,
    /// JetStream's file streams, when the server runs JetStream.
    store: Option<FileStore>,
}

/// The engine task: the engine's timers, and what comes from outside the
/// connections (accepted sockets, signals, monitoring, finished jobs).
async fn run_engine(shared: Shared, rx: Receiver<Input>) -> io::Result<()> {
    loop {
        let wait = {
            let mut engine = lock(&shared);
            let due = engine.server.poll_timeout();
            engine.wakes_at = due;
            // Even with a timer due at once (the next slice of some big
            // work), the task sleeps a moment: a task that is always ready
            // keeps its thread from the readers and the reactor.
            due.map(|due| due.saturating_since(engine.now()).max(MIN_ENGINE_SLEEP))
        };
        let first = match wait {
            Some(wait) => match async_std::future::timeout(wait, rx.recv()).await {
                Ok(received) => {
                    Some(received.map_err(|_| io::Error::other("input channel closed"))?)
                }
                Err(_) => None,
            },
            None => Some(
                rx.recv()
                    .await
                    .map_err(|_| io::Error::other("input channel closed"))?,
            ),
        };
        let mut engine = lock(&shared);
        let mut stop = false;
        if let Some(input) = first {
            stop |= engine.handle(input, &shared);
            for _ in 1..BATCH {
                match rx.try_recv() {
                    Ok(input) => stop |= engine.handle(input, &shared),
                    Err(_) => break,
                }
            }
        }
        let now = engine.now();
        engine.server.handle_timeout(now);
        engine.drain_events();
        if stop {
            let now = engine.now();
            engine.server.shutdown(now);
            engine.drain_events();
            return Ok(());
        }
        if engine.exit {
            return Ok(());
        }
    }
}

impl Engine {
    fn now(&self) -> Time {
        Time::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    /// Bytes a reader read: processed at once; returns whether the reader
    /// may read again now (else it waits to be resumed).
    fn read(&mut self, id: ClientId, data: &[u8]) -> bool {
        let now = self.now();
        self.server.handle_read(id, data, now);
        self.settle();
        let readable = self.server.can_read(id);
        if let (false, Some(conn)) = (readable, self.conns.get_mut(&id)) {
            conn.paused = true;
        }
        readable
    }

    /// The peer closed its side ([`CloseReason::ClientClosed`]) or reading
    /// failed ([`CloseReason::ReadError`]).
    fn read_closed(&mut self, id: ClientId, how: CloseReason) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.read_closed = Some(how);
        }
        self.close_if_done(id);
        self.settle();
    }

    /// A writer wrote `n` of the bytes it was handed.
    fn written(&mut self, id: ClientId, n: usize) {
        let now = self.now();
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.in_flight -= n.min(conn.in_flight);
            // With more queued than one flush handed over, the engine
            // asks again (an Event::Flush).
            self.server.handle_written(id, n, now);
        }
        self.close_if_done(id);
        self.settle();
    }

    /// Writing to the client's socket failed.
    fn write_failed(&mut self, id: ClientId) {
        self.drop_conn(id, CloseReason::WriteError);
        self.settle();
    }

    /// After input processed outside the engine task: acts on the engine's
    /// events, and wakes the engine task if a timer it set (the next turn of
    /// a client, a teardown slice, a write deadline) is due before that
    /// task's sleep ends.
    fn settle(&mut self) {
        self.drain_events();
        let due = self.server.poll_timeout();
        if due.is_some() && (self.wakes_at.is_none() || due < self.wakes_at) {
            self.wakes_at = due;
            let _ = self.tx.try_send(Input::Wake);
        }
    }

    /// Feeds one input to the engine; true for a stop request.
    fn handle(&mut self, input: Input, shared: &Shared) -> bool {
        let now = self.now();
        match input {
            Input::Accepted(stream, addr) => {
                let id = self.server.accept(
                    Peer {
                        ip: addr.ip().to_string(),
                        port: addr.port(),
                    },
                    now,
                );
                let link = Arc::new(Link::default());
                task::spawn(reader(id, stream.clone(), link.clone(), shared.clone()));
                self.live_writers.fetch_add(1, Ordering::SeqCst);
                task::spawn(writer(
                    id,
                    stream.clone(),
                    link.clone(),
                    shared.clone(),
                    self.live_writers.clone(),
                ));
                self.conns.insert(
                    id,
                    Conn {
                        stream,
                        link,
                        paused: false,
                        in_flight: 0,
                        read_closed: None,
                    },
                );
            }
            Input::Wake => {}
            Input::Control(Control::Reload(config)) => {
                let (opts, auth, applied) = *config;
                // The engine logs the outcome.
                if self.server.reload(opts, auth, now).is_ok() {
                    applied();
                }
            }
            Input::Control(Control::LameDuck) => self.server.enter_lame_duck(now),
            Input::Log(level, line) => (self.log)(level, &line),
            Input::Monitor { path, query, reply } => {
                let host = self.usage.sample();
                let answer = self.server.monitor(&path, &query, now, &host);
                let _ = reply.try_send(answer);
            }
            Input::MonitorTls(reply) => {
                let _ = reply.try_send(self.server.monitor_tls());
            }
            Input::Control(Control::Stop) => return true,
            Input::JobDone(done) => self.server.handle_job_done(done, now),
            Input::StoreSynced => {
                if let Some(store) = &self.store {
                    self.server.handle_store_synced(store.synced(), now);
                }
            }
        }
        false
    }

    fn drain_events(&mut self) {
        // Store writes first: a PubAck never leaves before its message is written.
        if let Some(store) = self.store.as_mut() {
            store.write_pending(&mut self.server, &mut self.log);
        }
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Flush(id) => self.flush(id),
                Event::Close(id, reason) => {
                    self.flush(id);
                    self.drop_conn(id, reason);
                }
                Event::Resume(id) => {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        if std::mem::take(&mut conn.paused) {
                            conn.link.resume();
                        }
                    }
                }
                Event::Log(level, line) => (self.log)(level, &line),
                Event::StopAccepting => {
                    if let Some(acceptor) = self.acceptor.take() {
                        task::spawn(acceptor.cancel());
                    }
                }
                Event::Exit => self.exit = true,
                Event::Job(job) => {
                    let tx = self.tx.clone();
                    task::spawn(async move {
                        let done = task::spawn_blocking(move || job.run()).await;
                        let _ = tx.send(Input::JobDone(done)).await;
                    });
                }
            }
        }
    }

    /// Sends what the engine has queued for the client: while its writer
    /// holds nothing, written here at once as far as the socket takes it
    /// (no task to wake, nothing to report back); the rest, beyond what the
    /// writer already holds, is handed to the writer, which waits for the
    /// socket.
    fn flush(&mut self, id: ClientId) {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        // The writer holds nothing, so no write of its can be overtaken.
        if conn.in_flight == 0 {
            loop {
                let result = {
                    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                    let n = self.server.outbound(id, &mut slices);
                    if n == 0 {
                        return;
                    }
                    // Polled once with a waker that does nothing: a full socket
                    // is the writer's to wait for, and it is not waiting on it now.
                    let mut cx = Context::from_waker(Waker::noop());
                    Pin::new(&mut &conn.stream).poll_write_vectored(&mut cx, &slices[..n])
                };
                match result {
                    Poll::Ready(Ok(0)) => return self.drop_conn(id, CloseReason::WriteError),
                    Poll::Ready(Ok(written)) => self.server.handle_written(id, written, now),
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(_)) => return self.drop_conn(id, CloseReason::WriteError),
                    Poll::Pending => break,
                }
            }
        }
        if self.server.outbound_len(id) <= conn.in_flight {
            // Everything queued is already with the writer.
            return;
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = self.server.outbound(id, &mut slices);
        let queued: usize = slices[..n].iter().map(|s| s.len()).sum();
        let new = queued.saturating_sub(conn.in_flight);
        if new > 0 {
            conn.link.send(&slices[..n], conn.in_flight);
            conn.in_flight += new;
            // Until the writer reports that the socket took some, the bytes
            // count as blocked (`write_deadline`).
            self.server.handle_written(id, 0, now);
        }
        // Beyond MAX_SLICES chunks, the rest goes when these are reported written.
    }

    /// A peer that closed its side gets its queued replies before the close.
    fn close_if_done(&mut self, id: ClientId) {
        let done = self
            .conns
            .get(&id)
            .is_some_and(|c| c.read_closed.is_some() && c.in_flight == 0);
        if done && self.server.outbound_len(id) == 0 {
            self.drop_conn(id, CloseReason::ClientClosed);
        } else if done {
            self.flush(id);
        }
    }

    /// Drops the connection (its writer writes what the socket takes at
    /// once, then closes it, ending the reader too), and tells the engine
    /// that the client is gone, and why: once reading ended, how it ended is
    /// the reason whatever failed after (as nats-server, which closes then).
    fn drop_conn(&mut self, id: ClientId, mut reason: CloseReason) {
        // Dropping the Conn closes its link.
        if let Some(conn) = self.conns.remove(&id) {
            reason = conn.read_closed.unwrap_or(reason);
        }
        let now = self.now();
        self.server.handle_closed(id, reason, now);
    }
}
