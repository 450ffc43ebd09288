//! Jobs: work too slow for the event loop (bcrypt today; fsync and store
//! reads later) that the engine hands to the runtime's worker threads, and
//! their results coming back. The client waiting on one is paused; everyone
//! else is served meanwhile.

use crate::auth::BcryptCheck;
use crate::time::Time;

use super::{ClientId, Event, Server};

/// Names a job, so its result finds its way back (a stale one is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobId(u64);

/// Work for a worker thread ([`Event::Job`]): call [`Job::run`] anywhere off
/// the event loop, then hand the result to [`Server::handle_job_done`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    id: JobId,
    client: ClientId,
    work: Work,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Work {
    /// A CONNECT's password or token against a bcrypt hash.
    Bcrypt(BcryptCheck),
}

/// What a [`Job`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct JobDone {
    id: JobId,
    client: ClientId,
    outcome: Outcome,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The identity the credentials stand for and the hash they matched,
    /// or `None`: refused.
    LoggedIn(Option<(usize, Box<str>)>),
}

impl Job {
    /// Does the work: pure computation, no I/O, safe on any thread.
    pub fn run(self) -> JobDone {
        let outcome = match self.work {
            Work::Bcrypt(check) => Outcome::LoggedIn(
                check
                    .verify()
                    .then(|| (check.identity, check.hash().into())),
            ),
        };
        JobDone {
            id: self.id,
            client: self.client,
            outcome,
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }
}

impl Server {
    /// Pauses the client and asks the runtime to verify its credentials off
    /// the event loop.
    pub(super) fn start_job(&mut self, index: usize, check: BcryptCheck) {
        let id = JobId(self.next_job);
        self.next_job += 1;
        let client = self.client_mut(index);
        client.waiting_job = Some(id);
        // The CONNECT arrived in time: as nats-server, the authentication
        // timeout does not run while its credentials are being checked.
        client.auth_due = None;
        let job = Job {
            id,
            client: client.id,
            work: Work::Bcrypt(check),
        };
        self.events.push_back(Event::Job(job));
    }

    /// A job the runtime ran ([`Event::Job`]) is done: the client waiting on
    /// it goes on (its CONNECT is accepted or refused, then the input that
    /// followed it is processed) and may be read again. A result for a client
    /// gone meanwhile is dropped.
    pub fn handle_job_done(&mut self, done: JobDone, now: Time) {
        self.input_time = now;
        self.work = 0;
        let Some(index) = self.open_index(done.client) else {
            return;
        };
        let client = self.client_mut(index);
        if client.waiting_job != Some(done.id) {
            return;
        }
        client.waiting_job = None;
        let held = std::mem::take(&mut client.held_input);
        match done.outcome {
            Outcome::LoggedIn(Some((identity, hash))) => {
                // A reload keeps it logged in without verifying it again.
                self.client_mut(index).proven_hash = Some(hash);
                self.finish_connect(index, Some(identity), now);
            }
            Outcome::LoggedIn(None) => self.finish_connect(index, None, now),
        }
        if self.client_ref(index).closing {
            return;
        }
        if !held.is_empty() {
            self.feed(index, &held, now);
        }
        if self.can_read(done.client) {
            self.events.push_back(Event::Resume(done.client));
        }
    }
}
