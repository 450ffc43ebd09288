//! Worker threads for the engine's jobs ([`tenet_core::Job`]): bcrypt
//! checks now, fsync and store reads later, run off the event loop.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use tenet_core::{Job, JobDone};

/// A fixed set of threads running jobs in the order they come.
pub struct Workers {
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts the threads: as many as there are cores less one (at least
    /// one), so the event loop keeps a core. Each result goes to `done`
    /// (which typically queues it for the loop and wakes it).
    pub fn start(done: impl Fn(JobDone) + Send + Sync + 'static) -> std::io::Result<Workers> {
        let threads =
            thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let done = Arc::new(done);
        for i in 0..threads {
            let (queue, done) = (queue.clone(), done.clone());
            thread::Builder::new()
                .name(format!("tenet-worker-{i}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => done(job.run()),
                        // The pool was dropped: the server is stopping.
                        Err(_) => return,
                    }
                })?;
        }
        Ok(Workers { jobs })
    }

    /// Queues a job.
    pub fn run(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}
