//! Putting the file store's writes on the disk off the event loop: a thread
//! that fsyncs the files the store changed, many writes to one sync (group
//! commit). With `sync_interval: always` it syncs as soon as it is asked and
//! says how far it got, so the engine can let the waiting acknowledgements
//! go; otherwise it syncs in the background every `sync_interval`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tenet_core::options::StoreSync;

/// Called on the sync thread after a sync the engine waits for.
pub type Notify = Box<dyn Fn() + Send>;

enum Job {
    /// Files (and directories) changed since the last job.
    Changed(BTreeSet<PathBuf>),
    /// Files to remove once what changed before them is on the disk (a
    /// dropped block, renamed aside, whose removal must not reach the disk
    /// before the records that replace it).
    Remove(Vec<PathBuf>),
    /// Sync everything changed so far, then report `taken` (the engine's
    /// count of store writes made before this job).
    Sync(u64),
}

/// The handle of the sync thread (it ends when this is dropped).
pub struct StoreSyncer {
    jobs: mpsc::Sender<Job>,
    /// The store writes known to be on the disk, by the engine's count.
    synced: Arc<AtomicU64>,
    /// The runtime's wake-up, set once it has one.
    notify: Arc<Mutex<Option<Notify>>>,
    /// Failures the thread met, for the runtime to log.
    errors: Arc<Mutex<Vec<String>>>,
    /// Changed files for the next background sync (`sync_interval` a
    /// duration): handed over without waking the thread.
    pending: Arc<Mutex<BTreeSet<PathBuf>>>,
    policy: StoreSync,
}

impl StoreSyncer {
    pub fn start(policy: StoreSync) -> io::Result<StoreSyncer> {
        let (jobs, rx) = mpsc::channel();
        let synced = Arc::new(AtomicU64::new(0));
        let notify: Arc<Mutex<Option<Notify>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let pending: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
        let worker = Worker {
            rx,
            synced: synced.clone(),
            notify: notify.clone(),
            errors: errors.clone(),
            pending: pending.clone(),
            changed: BTreeSet::new(),
            removals: Vec::new(),
        };
        thread::Builder::new()
            .name("store-sync".into())
            .spawn(move || worker.run(policy))?;
        Ok(StoreSyncer {
            jobs,
            synced,
            notify,
            errors,
            pending,
            policy,
        })
    }

    /// How the runtime is woken after a sync it waits for.
    pub fn set_notify(&self, notify: Notify) {
        *self.notify.lock().unwrap_or_else(|e| e.into_inner()) = Some(notify);
    }

    /// The files just changed; with `always`, asks for a sync reported as
    /// `taken`.
    pub fn changed(&self, files: BTreeSet<PathBuf>, removals: Vec<PathBuf>, taken: u64) {
        if self.policy != StoreSync::Always {
            // Synced in the background: no need to wake the thread.
            lock(&self.pending).extend(files);
            for path in removals {
                let _ = std::fs::remove_file(path);
            }
            return;
        }
        if !files.is_empty() {
            let _ = self.jobs.send(Job::Changed(files));
        }
        if !removals.is_empty() {
            let _ = self.jobs.send(Job::Remove(removals));
        }
        if self.policy == StoreSync::Always {
            let _ = self.jobs.send(Job::Sync(taken));
        }
    }

    /// The engine's count of store writes known to be on the disk.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// What went wrong on the sync thread since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Worker {
    rx: mpsc::Receiver<Job>,
    synced: Arc<AtomicU64>,
    notify: Arc<Mutex<Option<Notify>>>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Changed files handed over for the next background sync.
    pending: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// Changed since the last sync.
    changed: BTreeSet<PathBuf>,
    /// Removals waiting for the sync of what changed before them.
    removals: Vec<PathBuf>,
}

impl Worker {
    fn run(mut self, policy: StoreSync) {
        let interval = match policy {
            StoreSync::Every(every) => return self.run_every(every),
            // Asked each time; the timeout only bounds an idle wait.
            StoreSync::Always => Duration::from_secs(3600),
        };
        loop {
            let first = match self.rx.recv_timeout(interval) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The store is gone: what it wrote goes to the disk.
                    self.sync();
                    return;
                }
            };
            // Everything queued meanwhile joins this group.
            let mut report = None;
            for job in std::iter::once(first).chain(self.rx.try_iter()) {
                match job {
                    Job::Changed(files) => self.changed.extend(files),
                    Job::Remove(paths) => self.removals.extend(paths),
                    Job::Sync(taken) => report = Some(report.unwrap_or(0).max(taken)),
                }
            }
            if let Some(taken) = report {
                self.sync();
                self.synced.fetch_max(taken, Ordering::AcqRel);
                if let Some(notify) = &*self.notify.lock().unwrap_or_else(|e| e.into_inner()) {
                    notify();
                }
            }
        }
    }

    /// One fsync per changed file and directory (gone ones are skipped: a
    /// deleted stream has nothing left to keep).
    /// Syncs what was handed over every `every`, however busy the store
    /// is, and once more when the store goes.
    fn run_every(mut self, every: Duration) {
        let mut due = std::time::Instant::now() + every;
        loop {
            let wait = due.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    due += every;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.changed
                        .extend(std::mem::take(&mut *lock(&self.pending)));
                    self.sync();
                    return;
                }
            }
            self.changed
                .extend(std::mem::take(&mut *lock(&self.pending)));
            self.sync();
        }
    }

    /// Syncs what changed, then makes the removals waiting for it and
    /// syncs their directories.
    fn sync(&mut self) {
        for path in std::mem::take(&mut self.changed) {
            self.sync_one(&path);
        }
        let mut dirs = BTreeSet::new();
        for path in std::mem::take(&mut self.removals) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => self.error(format!(
                    "JetStream store removal failed for {}: {e}",
                    path.display()
                )),
                _ => {}
            }
            dirs.extend(path.parent().map(PathBuf::from));
        }
        for dir in dirs {
            self.sync_one(&dir);
        }
    }

    fn sync_one(&self, path: &PathBuf) {
        match File::open(path).and_then(|f| f.sync_all()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => self.error(format!(
                "JetStream store sync failed for {}: {e}",
                path.display()
            )),
            _ => {}
        }
    }

    fn error(&self, line: String) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

/// The lock's data, even if a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn always_reports_each_group_and_wakes_the_runtime() {
        let dir = std::env::temp_dir().join(format!("tenet-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("log");
        std::fs::write(&file, b"x").unwrap();
        let syncer = StoreSyncer::start(StoreSync::Always).unwrap();
        let (woken, wakes) = channel();
        syncer.set_notify(Box::new(move || {
            let _ = woken.send(());
        }));
        syncer.changed([file.clone(), dir.clone()].into(), Vec::new(), 3);
        wakes.recv_timeout(Duration::from_secs(5)).expect("woken");
        assert_eq!(syncer.synced(), 3);
        // A file deleted before its sync is no error.
        syncer.changed([dir.join("gone")].into(), Vec::new(), 5);
        wakes.recv_timeout(Duration::from_secs(5)).expect("woken");
        assert_eq!(syncer.synced(), 5);
        // A removal is made with the sync.
        let dropped = dir.join("1.blk.dropped");
        std::fs::write(&dropped, b"old").unwrap();
        syncer.changed(BTreeSet::new(), vec![dropped.clone()], 6);
        wakes.recv_timeout(Duration::from_secs(5)).expect("woken");
        assert!(!dropped.exists(), "removed with the sync");
        assert!(syncer.take_errors().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn in_the_background_syncs_happen_however_busy_the_store_is() {
        let dir = std::env::temp_dir().join(format!("tenet-sync-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("log");
        std::fs::write(&file, b"x").unwrap();
        // A path that cannot be opened (not a directory): the sync says so.
        let bad = file.join("child");
        let syncer = StoreSyncer::start(StoreSync::Every(Duration::from_millis(20))).unwrap();
        let mut errors = Vec::new();
        for _ in 0..200 {
            syncer.changed([bad.clone()].into(), Vec::new(), 0);
            thread::sleep(Duration::from_millis(1));
            errors.extend(syncer.take_errors());
        }
        assert!(
            !errors.is_empty(),
            "no background sync under a steady stream of writes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn in_the_background_nothing_is_reported() {
        let syncer = StoreSyncer::start(StoreSync::Every(Duration::from_millis(10))).unwrap();
        syncer.changed(BTreeSet::new(), Vec::new(), 7);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(syncer.synced(), 0, "no acknowledgement waits in this mode");
    }
}
