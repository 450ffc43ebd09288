//! The engine's side of TLS client connections: a session started behind
//! the plaintext INFO, reads decrypted before the parser sees them, what
//! goes out sealed before the runtime writes it, and the handshake's time
//! limit.

use std::cmp::Reverse;
use std::io::IoSlice;

use super::timers::Timer;
use super::Server;
use crate::errors::CloseReason;
use crate::server::Event;
use crate::time::Time;
use crate::tls::{TlsRead, HANDSHAKE_RECORD};
use crate::Level;

/// How far ahead of the socket a TLS client's bytes are sealed.
const SEAL_AHEAD: usize = 64 * 1024;

impl Server {
    /// A new client's TLS session, when the server has TLS: what the client
    /// was sent so far (its INFO) goes out in plaintext, and the handshake
    /// must finish within the timeout. Authentication waits for it.
    pub(super) fn start_tls(&mut self, index: usize, now: Time) {
        let acceptor = match &self.tls {
            None => return,
            Some(Ok(acceptor)) => acceptor.clone(),
            Some(Err(error)) => {
                let line = format!("TLS is not set up, refusing the connection: {error}");
                self.log_client(index, Level::Error, &line);
                self.shut_client(index, CloseReason::TlsHandshakeError, true);
                return;
            }
        };
        let mut info = Vec::new();
        let client = self.slots[index].client.as_mut().expect("live client");
        drain(&mut client.out, &mut self.pool, &mut info);
        match acceptor.session(info) {
            Ok(session) => client.tls = Some(Box::new(session)),
            Err(error) => {
                let line = format!("TLS handshake error: {error}");
                self.log_client(index, Level::Error, &line);
                self.shut_client(index, CloseReason::TlsHandshakeError, true);
                return;
            }
        }
        let due = now + acceptor.timeout();
        client.tls_due = Some(due);
        // Counted from the end of the handshake, as in nats-server.
        client.auth_due = None;
        let raw = client.id.0;
        self.timers
            .push(Reverse((due, raw, Timer::TlsHandshake as u8)));
        self.log_client(
            index,
            Level::Debug,
            "Starting TLS client connection handshake",
        );
    }

    /// Bytes read from a TLS client's socket.
    pub(super) fn read_tls(&mut self, index: usize, data: &[u8], now: Time) {
        let allow_plaintext = self.opts.allow_non_tls;
        let client = self.slots[index].client.as_mut().expect("live client");
        let session = client.tls.as_mut().expect("a TLS client");
        if allow_plaintext
            && !session.started()
            && data.first().is_some_and(|&b| b != HANDSHAKE_RECORD)
        {
            // allow_non_tls: the first byte says the client stays in
            // plaintext. What the session had not sent yet goes as it is.
            let session = client.tls.take().expect("checked");
            client.out.push(&mut self.pool, session.wire());
            client.tls_due = None;
            self.start_auth_timer(index, now);
            return self.read_plain(index, data, now);
        }
        let mut plaintext = std::mem::take(&mut self.tls_plaintext);
        plaintext.clear();
        let outcome = session.read(data, &mut plaintext);
        let handshaken = session.handshaken();
        if !session.wire().is_empty() {
            self.queue_flush(index);
        }
        match outcome {
            TlsRead::Ok | TlsRead::Closed => {}
            TlsRead::Handshaken => {
                let pinned = match (&self.tls, &self.client_ref(index).tls) {
                    (Some(Ok(acceptor)), Some(session)) => acceptor.pinned(session),
                    _ => true,
                };
                if !pinned {
                    self.log_client(
                        index,
                        Level::Error,
                        "TLS handshake error: certificate not pinned",
                    );
                    self.shut_client(index, CloseReason::TlsHandshakeError, true);
                    self.tls_plaintext = plaintext;
                    return;
                }
                let map = matches!(&self.tls, Some(Ok(t)) if t.map());
                let client = self.client_mut(index);
                client.tls_due = None;
                if map {
                    client.cert_identity = client
                        .tls
                        .as_ref()
                        .and_then(|t| t.peer_identity())
                        .map(Box::new);
                }
                self.log_client(index, Level::Debug, "TLS handshake complete");
                self.start_auth_timer(index, now);
            }
            TlsRead::Failed(error) => {
                if handshaken {
                    let line = format!("TLS read error: {error}");
                    self.log_client(index, Level::Debug, &line);
                    self.shut_client(index, CloseReason::ReadError, true);
                } else {
                    let line = format!("TLS handshake error: {error}");
                    self.log_client(index, Level::Error, &line);
                    self.shut_client(index, CloseReason::TlsHandshakeError, true);
                }
                self.tls_plaintext = plaintext;
                return;
            }
        }
        if !plaintext.is_empty() {
            self.read_plain(index, &plaintext, now);
        }
        self.tls_plaintext = plaintext;
        if outcome == TlsRead::Closed && self.open_index(self.client_ref(index).id).is_some() {
            self.shut_client(index, CloseReason::ClientClosed, true);
        }
    }

    /// The handshake's time limit passed.
    pub(super) fn tls_timer(&mut self, index: usize, due: Time) {
        let client = self.client_ref(index);
        if client.tls_due != Some(due) {
            return;
        }
        // nats-server also queues `-ERR 'Secure Connection - TLS Required'`,
        // but through the unfinished session: nothing reaches the client.
        self.log_client(index, Level::Error, "TLS handshake timeout");
        self.shut_client(index, CloseReason::TlsHandshakeError, true);
    }

    /// Seals what is queued for a TLS client and returns the bytes for its
    /// socket; a closing client's session ends with a `close_notify`.
    pub(super) fn tls_outbound<'a>(&'a mut self, index: usize, out: &mut [IoSlice<'a>]) -> usize {
        let client = self.slots[index].client.as_mut().expect("live client");
        let session = client.tls.as_mut().expect("a TLS client");
        if session.handshaken() {
            // Sealed ahead of the socket by at most SEAL_AHEAD: the wire
            // buffer stays small and reused (sealing megabytes at once
            // grew it past the allocator's mmap threshold and paid page
            // faults on every burst).
            while session.wire().len() < SEAL_AHEAD {
                let mut slices = [IoSlice::new(&[]); 16];
                let n = client.out.slices(&mut slices);
                if n == 0 {
                    break;
                }
                let mut taken = 0;
                for slice in &slices[..n] {
                    let room = SEAL_AHEAD.saturating_sub(session.wire().len());
                    let sealed = session.seal(&slice[..slice.len().min(room)]);
                    taken += sealed;
                    if sealed < slice.len() {
                        break;
                    }
                }
                client.out.consume(&mut self.pool, taken);
                if taken == 0 {
                    break;
                }
            }
            if client.closing && client.out.is_empty() {
                session.close_notify();
            }
        }
        let wire = session.wire();
        if wire.is_empty() || out.is_empty() {
            return 0;
        }
        out[0] = IoSlice::new(wire);
        1
    }

    /// Queues a flush of client `index` unless one is queued.
    fn queue_flush(&mut self, index: usize) {
        let client = self.client_mut(index);
        if !client.flush_queued {
            client.flush_queued = true;
            let id = client.id;
            self.events.push_back(Event::Flush(id));
        }
    }

    /// Starts the authentication timeout from `now`, when authentication is
    /// required and the client has not logged in.
    fn start_auth_timer(&mut self, index: usize, now: Time) {
        if !self.users.enabled() {
            return;
        }
        let due = now + self.users.timeout();
        let client = self.client_mut(index);
        if client.authenticated {
            return;
        }
        client.auth_due = Some(due);
        let raw = client.id.0;
        self.timers
            .push(Reverse((due, raw, Timer::AuthTimeout as u8)));
    }
}

/// Moves everything queued in `out` to `into`.
fn drain(
    out: &mut crate::outbound::Outbound,
    pool: &mut crate::outbound::ChunkPool,
    into: &mut Vec<u8>,
) {
    loop {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = out.slices(&mut slices);
        if n == 0 {
            return;
        }
        let len: usize = slices[..n].iter().map(|s| s.len()).sum();
        for slice in &slices[..n] {
            into.extend_from_slice(slice);
        }
        out.consume(pool, len);
    }
}
