//! tenet-core: the sans-IO protocol engine of tenet, a multi-tenant NATS server.
//!
//! The engine never touches a socket, a thread, a clock or a file. A runtime owns
//! the sockets and the clock, feeds the engine what happened, and carries out what
//! the engine asks for. The two runtimes in this workspace (mio, async-std) are
//! thin loops around [`Server`]; any other event loop can drive it the same way.
//!
//! # The driving loop
//!
//! ```
//! use std::io::IoSlice;
//! use tenet_core::{Event, Options, Peer, Server, Time};
//!
//! let mut server = Server::new(Options::default(), 42);
//! let now = Time::from_millis(0);
//!
//! // A connection arrives: the engine queues its INFO.
//! let client = server.accept(Peer { ip: "127.0.0.1".into(), port: 50000 }, now);
//!
//! // Bytes arrive from the socket.
//! server.handle_read(client, b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\n", now);
//!
//! // After every input, drain the events until none are left.
//! let mut written = Vec::new();
//! while let Some(event) = server.poll_event() {
//!     match event {
//!         Event::Flush(id) => {
//!             // Write the queued bytes (ideally one writev), then report how
//!             // many went out: 0 if the socket took nothing. A Flush comes
//!             // again while bytes remain after a write that took some; after
//!             // one that took nothing, write again when the socket is writable.
//!             let mut slices = [IoSlice::new(&[]); 64];
//!             let n = server.outbound(id, &mut slices);
//!             let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
//!             server.handle_written(id, bytes.len(), now);
//!             written.extend(bytes);
//!         }
//!         Event::Close(id, reason) => {
//!             // Write what is still queued if the socket takes it, close, then:
//!             server.handle_closed(id, reason, now);
//!         }
//!         Event::Resume(_id) => { /* read from this client again */ }
//!         Event::Log(level, line) => eprintln!("{} {line}", level.tag()),
//!         // Lame duck mode (`Server::enter_lame_duck`): close the listener,
//!         // and later leave the loop.
//!         Event::StopAccepting => {}
//!         Event::Exit => break,
//!         // Slow work (a bcrypt check): run `job.run()` on a worker thread,
//!         // then `server.handle_job_done(done, now)` on this one.
//!         Event::Job(job) => server.handle_job_done(job.run(), now),
//!     }
//! }
//! assert!(written.ends_with(b"MSG foo 1 2\r\nhi\r\n"));
//!
//! // Timers: sleep until `poll_timeout()`, then call `handle_timeout(now)`.
//! if let Some(deadline) = server.poll_timeout() {
//!     server.handle_timeout(deadline);
//! }
//! ```
//!
//! Rules for runtimes:
//!
//! - Read only while [`Server::can_read`] says so; a paused client gets an
//!   [`Event::Resume`] when it may be read again (edge-triggered runtimes must then
//!   read it without waiting for readiness).
//! - Report peer closes and I/O errors with [`Server::handle_closed`] (an
//!   orderly close is [`CloseReason::ClientClosed`], a failed read or write
//!   [`CloseReason::ReadError`] or [`CloseReason::WriteError`]: `/connz` shows
//!   it), and call it after carrying out an [`Event::Close`].
//! - Time is whatever monotonic [`Time`] the runtime passes in; the engine never
//!   reads a clock.

pub mod account;
pub mod audit;
pub mod auth;
pub mod bytes_map;
pub mod config;
pub mod errors;
pub mod jetstream;
pub mod log;
pub mod memo;
pub mod options;
pub mod outbound;
pub mod perms;
pub mod proto;
pub mod rng;
pub mod server;
pub mod subject;
pub mod sublist;
pub mod time;
pub mod tls;
pub mod tls_map;

pub use account::{AccountStats, Accounts};
pub use auth::{Auth, Users};
pub use errors::{ClientError, CloseReason};
pub use options::Options;
pub use server::{
    ClientId, Event, Job, JobDone, JobId, Level, MonitorHost, MonitorResponse, Peer, Server, Stats,
    PROTOCOL_VERSION, VERSION,
};
pub use time::Time;

#[cfg(test)]
mod send_check {
    /// Runtimes move the engine onto their event-loop thread, and a sharded
    /// runtime may later run several: the engine must stay `Send`.
    #[test]
    fn server_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<crate::Server>();
    }
}
