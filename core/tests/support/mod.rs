//! A simulated runtime for driving the engine in tests: a fake clock, no
//! sockets, and every client's received bytes collected.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::io::IoSlice;
use std::time::Duration;

use tenet_core::{ClientId, CloseReason, Event, Job, Options, Peer, Server, Time};

/// A simulated runtime: collects what each client would receive.
pub struct Sim {
    pub server: Server,
    pub now: Time,
    pub received: HashMap<ClientId, Vec<u8>>,
    pub closed: HashMap<ClientId, CloseReason>,
    pub resumed: Vec<ClientId>,
    /// Clients whose socket is "full": their bytes stay queued in the engine.
    pub stuck: Vec<ClientId>,
    /// Log lines, oldest first.
    pub logs: Vec<String>,
    /// The engine asked the runtime to stop accepting connections (lame duck mode).
    pub stopped_accepting: bool,
    /// The engine asked the runtime to exit (lame duck mode is over).
    pub exited: bool,
    /// When set, jobs wait here until the test runs them ([`Sim::run_jobs`]);
    /// otherwise each runs as soon as the engine asks.
    pub hold_jobs: bool,
    /// Jobs held for the test.
    pub jobs: Vec<Job>,
}

impl Sim {
    pub fn new(opts: Options) -> Sim {
        Sim::with_server(Server::new(opts, 1))
    }

    pub fn with_server(server: Server) -> Sim {
        Sim {
            server,
            now: Time::from_millis(1_000),
            received: HashMap::new(),
            closed: HashMap::new(),
            resumed: Vec::new(),
            stuck: Vec::new(),
            logs: Vec::new(),
            stopped_accepting: false,
            exited: false,
            hold_jobs: false,
            jobs: Vec::new(),
        }
    }

    pub fn connect(&mut self, connect_json: &str) -> ClientId {
        let id = self.server.accept(
            Peer {
                ip: "127.0.0.1".into(),
                port: 1,
            },
            self.now,
        );
        self.pump();
        let info = self.take(id);
        assert!(info.starts_with(b"INFO {") && info.ends_with(b"} \r\n"));
        self.send(id, format!("CONNECT {connect_json}\r\n").as_bytes());
        id
    }

    /// Runs the held jobs (as a worker thread would) and hands back their results.
    pub fn run_jobs(&mut self) {
        for job in std::mem::take(&mut self.jobs) {
            self.server.handle_job_done(job.run(), self.now);
        }
        self.pump();
    }

    /// The client's bytes arrive; the loop then turns until the engine has
    /// processed them (a client with a lot of input is served over several
    /// turns, each a timer due at once, with other due timers in between).
    pub fn send(&mut self, id: ClientId, bytes: &[u8]) {
        self.server.handle_read(id, bytes, self.now);
        self.pump();
        let soon = |sim: &Sim| {
            sim.server
                .poll_timeout()
                .filter(|&t| t <= sim.now + Duration::from_micros(1))
        };
        while !self.server.can_read(id) {
            let Some(t) = soon(self) else { break };
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.pump();
        }
    }

    /// The peer closed the connection.
    pub fn disconnect(&mut self, id: ClientId) {
        self.server
            .handle_closed(id, CloseReason::ClientClosed, self.now);
        self.pump();
    }

    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.server.poll_timeout().filter(|&t| t <= until) {
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    pub fn pump(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Flush(id) if !self.stuck.contains(&id) => self.drain(id),
                Event::Log(_, line) => self.logs.push(line),
                // A full socket: the runtime tried, and nothing went out.
                Event::Flush(id) => self.server.handle_written(id, 0, self.now),
                Event::StopAccepting => self.stopped_accepting = true,
                Event::Exit => self.exited = true,
                Event::Job(job) if self.hold_jobs => self.jobs.push(job),
                Event::Job(job) => self.server.handle_job_done(job.run(), self.now),
                Event::Close(id, reason) => {
                    self.drain(id);
                    self.closed.insert(id, reason);
                    self.server.handle_closed(id, reason, self.now);
                }
                Event::Resume(id) => self.resumed.push(id),
            }
        }
    }

    pub fn drain(&mut self, id: ClientId) {
        loop {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = self.server.outbound(id, &mut slices);
            if n == 0 {
                return;
            }
            let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
            self.server.handle_written(id, bytes.len(), self.now);
            self.received.entry(id).or_default().extend(bytes);
        }
    }

    pub fn take(&mut self, id: ClientId) -> Vec<u8> {
        self.received.remove(&id).unwrap_or_default()
    }

    pub fn take_str(&mut self, id: ClientId) -> String {
        String::from_utf8(self.take(id)).unwrap()
    }
}

/// The options and users/accounts that configuration-file text describes.
pub fn config(text: &str) -> (Options, tenet_core::Auth) {
    use tenet_core::config::options::read_config;
    use tenet_core::config::{parse, MapResolver};
    use tenet_core::Auth;
    let resolver = MapResolver(HashMap::new());
    let parsed = parse("test.conf", text, &resolver, &|_| None).expect("syntax");
    let (config, errors) = read_config(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let auth = Auth::from_config(&config, None, None, None).expect("users and accounts");
    (config.server, auth)
}

/// A server configured by configuration-file text (users, accounts, options).
pub fn server_from_config(text: &str) -> Server {
    let (opts, auth) = config(text);
    Server::with_auth(opts, auth, 1)
}

/// A CONNECT for `user` (password `p`), quiet, protocol 1, headers off.
pub fn login(user: &str) -> String {
    format!(r#"{{"verbose":false,"pedantic":false,"protocol":1,"user":"{user}","pass":"p"}}"#)
}
