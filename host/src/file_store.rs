//! JetStream's file streams on disk: each stream's metadata and blocks under
//! `<store_dir>/jetstream/<account>/streams/<stream>/`, written as the
//! engine asks (before any client write of the same turn), read back at
//! start-up, and read again when the engine needs a block it let go of.
//! The record format, the blocks and their recovery are the core's
//! (`tenet_core::jetstream::{log_format, store}`); this module only moves
//! bytes.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tenet_core::jetstream::api::StoreWrite;
use tenet_core::jetstream::store::BlockReader;
use tenet_core::options::StoreSync;
use tenet_core::Level;
use tenet_core::Server;

use crate::store_sync::{Notify, StoreSyncer};
use crate::Logger;

const META: &str = "meta.json";
/// The one log of a stream written before blocks: read as block 0.
const LEGACY_LOG: &str = "msgs.log";
const BLOCK_EXT: &str = "blk";

/// The file streams of every account, under one root directory.
pub struct FileStore {
    /// `<store_dir>/jetstream`.
    root: PathBuf,
    /// The block each stream last appended to, open, by (account, stream).
    tails: HashMap<(String, String), (u64, File)>,
    /// Streams' summaries files, open, by (account, stream): the
    /// generation and the file.
    indexes: HashMap<(String, String), (u64, File)>,
    /// Durable consumers' state files, open, by (account, stream,
    /// consumer): the generation and the file.
    states: HashMap<(String, String, String), (u64, File)>,
    /// Files and directories changed since they were last handed to the syncer.
    changed: BTreeSet<PathBuf>,
    /// Dropped blocks, renamed aside, to remove once what changed before
    /// them is synced (`sync_interval: always`; otherwise they go at once).
    removals: Vec<PathBuf>,
    sync: StoreSync,
    /// The thread that puts them on the disk (none until started).
    syncer: Option<StoreSyncer>,
}

/// A name as a directory name: bytes that could mean something to a file
/// system are written `%XX`.
fn dir_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name a directory name stands for.
fn from_dir_name(dir: &str) -> Option<String> {
    let bytes = dir.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = dir.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl FileStore {
    /// The store under `store_dir` (created if missing).
    pub fn open(store_dir: &Path) -> io::Result<FileStore> {
        let root = store_dir.join("jetstream");
        fs::create_dir_all(&root)?;
        Ok(FileStore {
            root,
            tails: HashMap::new(),
            states: HashMap::new(),
            indexes: HashMap::new(),
            removals: Vec::new(),
            sync: StoreSync::default(),
            changed: BTreeSet::new(),
            syncer: None,
        })
    }

    /// Starts syncing what the store writes, as `sync_interval` says.
    pub fn start_syncer(&mut self, policy: StoreSync) -> io::Result<()> {
        self.syncer = Some(StoreSyncer::start(policy)?);
        self.sync = policy;
        Ok(())
    }

    /// How the runtime is woken when writes it waits for are synced; it
    /// then tells the engine [`FileStore::synced`].
    pub fn set_sync_notify(&self, notify: Notify) {
        if let Some(syncer) = &self.syncer {
            syncer.set_notify(notify);
        }
    }

    /// The engine's count of store writes known to be on the disk.
    pub fn synced(&self) -> u64 {
        self.syncer.as_ref().map_or(0, StoreSyncer::synced)
    }

    /// The directory of JetStream's data.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn stream_dir(&self, account: &str, stream: &str) -> PathBuf {
        stream_dir(&self.root, account, stream)
    }

    /// How the engine reads blocks back from this store's files.
    pub fn reader(&self) -> Arc<dyn BlockReader> {
        Arc::new(BlockFiles {
            root: self.root.clone(),
        })
    }

    /// Makes one write the engine asked for.
    pub fn apply(&mut self, account: &str, write: &StoreWrite) -> io::Result<()> {
        match write {
            StoreWrite::Meta { stream, json } => {
                let dir = self.stream_dir(account, stream);
                fs::create_dir_all(&dir)?;
                // Whole or not at all: written aside, then renamed.
                let tmp = dir.join(format!("{META}.tmp"));
                fs::write(&tmp, json)?;
                fs::rename(&tmp, dir.join(META))?;
                self.changed.insert(dir.join(META));
                self.changed.insert(dir);
                Ok(())
            }
            StoreWrite::Append {
                stream,
                block,
                bytes,
            } => {
                let key = (account.to_string(), stream.clone());
                let dir = self.stream_dir(account, stream);
                let path = block_path(&dir, *block);
                let open = self.tails.get(&key).is_some_and(|(b, _)| b == block);
                if !open {
                    // Most appends go to the newest block; an older one
                    // (a removal recorded in it) is opened again.
                    fs::create_dir_all(&dir)?;
                    if !path.exists() {
                        self.changed.insert(dir.clone());
                    }
                    let file = OpenOptions::new().create(true).append(true).open(&path)?;
                    self.tails.insert(key.clone(), (*block, file));
                }
                let (_, file) = self.tails.get_mut(&key).expect("opened");
                file.write_all(bytes)?;
                self.changed.insert(path);
                Ok(())
            }
            StoreWrite::BlockSummaries {
                stream,
                generation,
                bytes,
            } => {
                // A torn summary fails its checksum and the block is read
                // instead: plain appends do.
                let dir = self.stream_dir(account, stream);
                let key = (account.to_string(), stream.clone());
                let path = dir.join(summaries_file_name(*generation));
                let open = self.indexes.get(&key).is_some_and(|(g, _)| g == generation);
                if !open {
                    fs::create_dir_all(&dir)?;
                    let file = OpenOptions::new().create(true).append(true).open(&path)?;
                    self.indexes.insert(key.clone(), (*generation, file));
                    self.changed.insert(dir.clone());
                    // The new file holds every block's: the older go.
                    for (_, old) in summaries_files(&dir)? {
                        if old != path {
                            self.retire(old)?;
                        }
                    }
                }
                let (_, file) = self.indexes.get_mut(&key).expect("opened");
                file.write_all(bytes)?;
                self.changed.insert(path);
                Ok(())
            }
            StoreWrite::DropBlock { stream, block } => {
                let key = (account.to_string(), stream.clone());
                if self.tails.get(&key).is_some_and(|(b, _)| b == block) {
                    self.tails.remove(&key);
                }
                let dir = self.stream_dir(account, stream);
                let path = block_path(&dir, *block);
                if self.sync == StoreSync::Always && self.syncer.is_some() {
                    // A power loss could keep the removal and lose the
                    // records written after it (the next block's first,
                    // which says where the sequence is): renamed aside, it
                    // still says it at a restart, until the sync.
                    let aside = dropped_path(&path);
                    match fs::rename(&path, &aside) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                        Ok(()) => self.removals.push(aside),
                    }
                    self.changed.insert(dir);
                    return Ok(());
                }
                self.changed.remove(&path);
                self.changed.insert(dir);
                match fs::remove_file(path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            }
            StoreWrite::Consumer {
                stream,
                consumer,
                generation,
                bytes,
            } => {
                let dir = self.stream_dir(account, stream).join("consumers");
                let key = (account.to_string(), stream.clone(), consumer.clone());
                let path = dir.join(state_file_name(consumer, *generation));
                let open = self.states.get(&key).is_some_and(|(g, _)| g == generation);
                if !open {
                    fs::create_dir_all(&dir)?;
                    let file = OpenOptions::new().create(true).append(true).open(&path)?;
                    self.states.insert(key.clone(), (*generation, file));
                    self.changed.insert(dir.clone());
                    // The older states go once this one is written.
                    for (_, old) in state_files(&dir, consumer)? {
                        if old != path {
                            self.retire(old)?;
                        }
                    }
                }
                let (_, file) = self.states.get_mut(&key).expect("opened");
                file.write_all(bytes)?;
                self.changed.insert(path);
                Ok(())
            }
            StoreWrite::DeleteConsumer { stream, consumer } => {
                let key = (account.to_string(), stream.clone(), consumer.clone());
                self.states.remove(&key);
                let dir = self.stream_dir(account, stream).join("consumers");
                self.changed.insert(dir.clone());
                for (_, path) in state_files(&dir, consumer)? {
                    match fs::remove_file(path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
                Ok(())
            }
            StoreWrite::Delete { stream } => {
                self.tails.remove(&(account.to_string(), stream.clone()));
                self.states
                    .retain(|(a, s, _), _| (a.as_str(), s) != (account, stream));
                self.indexes.remove(&(account.to_string(), stream.clone()));
                let dir = self.stream_dir(account, stream);
                if let Some(streams) = dir.parent() {
                    self.changed.insert(streams.to_path_buf());
                }
                match fs::remove_dir_all(dir) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            }
        }
    }

    /// Makes every write the engine has queued; a failed one is logged
    /// (the message stays in memory, its PubAck already queued).
    ///
    /// The files they changed go to the syncer; with `sync_interval:
    /// always` it syncs them at once and the engine's waiting answers go
    /// when it reports back.
    pub fn write_pending(&mut self, server: &mut Server, log: &mut Logger) {
        let mut wrote = false;
        while let Some((account, write)) = server.poll_store_write() {
            wrote = true;
            if let Err(e) = self.apply(&account, &write) {
                let line = format!("JetStream store write failed for account '{account}': {e}");
                log(Level::Error, &line);
            }
        }
        if self.sync != StoreSync::Always || self.syncer.is_none() {
            // Without a sync to wait for, written is enough.
            for path in std::mem::take(&mut self.removals) {
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        log(
                            Level::Warn,
                            &format!("Could not remove {}: {e}", path.display()),
                        );
                    }
                }
            }
        }
        if let Some(syncer) = &self.syncer {
            if wrote || !self.removals.is_empty() {
                syncer.changed(
                    std::mem::take(&mut self.changed),
                    std::mem::take(&mut self.removals),
                    server.store_writes_taken(),
                );
            }
            for line in syncer.take_errors() {
                log(Level::Error, &line);
            }
        }
    }

    /// Gives the engine back every stream found on disk, block by block,
    /// logging each (and cutting a torn or corrupt end off a block file,
    /// once read, after keeping a copy of the file as it was).
    pub fn restore(&mut self, server: &mut Server, log: &mut Logger) -> io::Result<()> {
        for account_dir in sorted_dirs(&self.root)? {
            let Some(account) = account_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(from_dir_name)
            else {
                continue;
            };
            for stream_dir in sorted_dirs(&account_dir.join("streams"))? {
                let meta = match fs::read(stream_dir.join(META)) {
                    Ok(meta) => meta,
                    Err(e) => {
                        let line = format!(
                            "Could not read stream metadata in {}: {e}",
                            stream_dir.display()
                        );
                        log(Level::Error, &line);
                        continue;
                    }
                };
                let name = stream_dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(from_dir_name)
                    .unwrap_or_default();
                let line = format!("  Starting restore for stream '{account} > {name}'");
                log(Level::Info, &line);
                let name = match server.restore_stream(&account, &meta) {
                    Ok(name) => name,
                    Err(why) => {
                        let line = format!(
                            "Could not restore the stream in {}: {why}",
                            stream_dir.display()
                        );
                        log(Level::Error, &line);
                        continue;
                    }
                };
                let summaries = read_summaries(&stream_dir)?;
                for (block, dropped, path) in block_files(&stream_dir)? {
                    if let (false, Some((generation, summary))) = (dropped, summaries.get(&block)) {
                        let len = fs::metadata(&path)?.len();
                        let (summary, generation) = (&summary[..], *generation);
                        if server
                            .restore_block_summary(&account, &name, block, summary, len, generation)
                        {
                            continue;
                        }
                    }
                    let bytes = fs::read(&path)?;
                    if dropped {
                        // Only where the sequence was counts; it goes once
                        // the restored stream has written that down anew.
                        server.restore_dropped_block(&account, &name, &bytes);
                        self.removals.push(path);
                        continue;
                    }
                    let len = bytes.len();
                    let (valid_len, problem) = server.restore_block(&account, &name, block, bytes);
                    if valid_len < len {
                        self.cut_block(&path, valid_len, log)?;
                    }
                    if let Some(line) = problem {
                        log(Level::Warn, &format!("  {line}"));
                    }
                }
                if let Some(line) = server.finish_restore(&account, &name) {
                    log(Level::Info, &format!("  {line}"));
                }
                self.restore_consumers(server, log, &account, &name, &stream_dir)?;
            }
        }
        Ok(())
    }
}

impl FileStore {
    /// Cuts a block file to its intact records; the file as it was is
    /// kept beside it (`.corrupt`) for a look at what was lost.
    fn cut_block(&mut self, path: &Path, valid_len: usize, log: &mut Logger) -> io::Result<()> {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".corrupt");
        let aside = PathBuf::from(aside);
        if fs::copy(path, &aside).is_ok() {
            let line = format!("  The block as it was is kept in {}", aside.display());
            log(Level::Warn, &line);
        }
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(valid_len as u64)?;
        // The cut reaches the disk with the first sync.
        self.changed.insert(path.to_path_buf());
        Ok(())
    }

    /// Lets go of an older state file of a consumer: removed once what
    /// replaces it is written, or with `sync_interval: always` renamed
    /// aside at once (a restart still reads it if the newer one did not
    /// reach the disk) and removed after the next sync.
    fn retire(&mut self, path: PathBuf) -> io::Result<()> {
        if self.sync != StoreSync::Always || self.syncer.is_none() || is_retired(&path) {
            self.removals.push(path);
            return Ok(());
        }
        let aside = dropped_path(&path);
        match fs::rename(&path, &aside) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(()) => {
                self.removals.push(aside);
                Ok(())
            }
        }
    }

    /// Gives the engine back the durable consumers of a restored stream:
    /// each from the newest of its state files that holds an intact state.
    fn restore_consumers(
        &self,
        server: &mut Server,
        log: &mut Logger,
        account: &str,
        stream: &str,
        stream_dir: &Path,
    ) -> io::Result<()> {
        let dir = stream_dir.join("consumers");
        let mut by_consumer: std::collections::BTreeMap<String, Vec<(u64, PathBuf)>> =
            std::collections::BTreeMap::new();
        for (name, generation, path) in all_state_files(&dir)? {
            by_consumer
                .entry(name)
                .or_default()
                .push((generation, path));
        }
        let now = tenet_core::Time::from_nanos(0);
        for (_, mut files) in by_consumer {
            // Newest first; a file renamed aside after one of its generation.
            files.sort_by_key(|(generation, path)| {
                (std::cmp::Reverse(*generation), is_retired(path))
            });
            for (generation, path) in files {
                let bytes = fs::read(&path)?;
                let state = if generation == 0 {
                    // The state file of an earlier tenet: the JSON itself.
                    Some(&bytes[..])
                } else {
                    tenet_core::jetstream::log_format::last_state(&bytes)
                };
                let Some(state) = state else {
                    let line = format!(
                        "No intact consumer state in {}: an older one is used",
                        path.display()
                    );
                    log(Level::Warn, &line);
                    continue;
                };
                match server.restore_consumer(account, stream, state, generation, now) {
                    Ok(line) => {
                        log(Level::Info, &format!("  {line}"));
                        break;
                    }
                    Err(why) => {
                        let line = format!(
                            "Could not restore the consumer in {}: {why}",
                            path.display()
                        );
                        log(Level::Error, &line);
                    }
                }
            }
        }
        Ok(())
    }
}

fn stream_dir(root: &Path, account: &str, stream: &str) -> PathBuf {
    root.join(dir_name(account))
        .join("streams")
        .join(dir_name(stream))
}

/// The file of block `id` in a stream's directory (block 0: the log of
/// a store written before blocks).
fn block_path(dir: &Path, id: u64) -> PathBuf {
    if id == 0 {
        dir.join(LEGACY_LOG)
    } else {
        dir.join(format!("{id}.{BLOCK_EXT}"))
    }
}

/// A consumer's state file of generation `generation`.
fn state_file_name(consumer: &str, generation: u64) -> String {
    format!("{}.{generation}.{STATE_EXT}", dir_name(consumer))
}

const STATE_EXT: &str = "state";

/// Whether a file was renamed aside to be removed.
fn is_retired(path: &Path) -> bool {
    path.as_os_str().to_string_lossy().ends_with(DROPPED)
}

/// The state files in a stream's consumer directory, as (consumer,
/// generation, path): `<consumer>.<generation>.state` (and renamed aside,
/// `.dropped`), and an earlier tenet's `<consumer>.json` as generation 0.
fn all_state_files(dir: &Path) -> io::Result<Vec<(String, u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let file = file.strip_suffix(DROPPED).unwrap_or(file);
        let found = if let Some(name) = file.strip_suffix(".json") {
            Some((name, 0))
        } else if let Some(rest) = file.strip_suffix(&format!(".{STATE_EXT}")) {
            rest.rsplit_once('.')
                .and_then(|(name, generation)| Some((name, generation.parse().ok()?)))
        } else {
            None
        };
        if let Some((name, generation)) = found {
            if let Some(name) = from_dir_name(name) {
                files.push((name, generation, path));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The state files of one consumer, as (generation, path).
fn state_files(dir: &Path, consumer: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    Ok(all_state_files(dir)?
        .into_iter()
        .filter(|(name, _, _)| name == consumer)
        .map(|(_, generation, path)| (generation, path))
        .collect())
}

/// A stream's summaries file of generation `generation`.
fn summaries_file_name(generation: u64) -> String {
    format!("{SUMMARIES}.{generation}")
}

const SUMMARIES: &str = "summaries";

/// A stream's summaries files (and those renamed aside), as (generation,
/// path), oldest first.
fn summaries_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let name = name.strip_suffix(DROPPED).unwrap_or(name);
        let generation = name
            .strip_prefix(SUMMARIES)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|g| g.parse::<u64>().ok());
        if let Some(generation) = generation {
            files.push((generation, path));
        }
    }
    files.sort();
    Ok(files)
}

/// Each block's latest summary in a stream's summaries files, with the
/// generation of the file it is in (a torn or corrupt end of a file is
/// left out: those blocks are read instead).
fn read_summaries(dir: &Path) -> io::Result<HashMap<u64, (u64, Vec<u8>)>> {
    let mut latest = HashMap::new();
    for (generation, path) in summaries_files(dir)? {
        let bytes = fs::read(&path)?;
        tenet_core::jetstream::log_format::scan(&bytes, |record, _| {
            if let tenet_core::jetstream::log_format::RecordRef::Summary(block, summary) = record {
                latest.insert(block, (generation, summary.to_vec()));
            }
        });
    }
    Ok(latest)
}

/// Where a dropped block waits for its removal (`sync_interval: always`).
fn dropped_path(path: &Path) -> PathBuf {
    let mut aside = path.as_os_str().to_owned();
    aside.push(DROPPED);
    PathBuf::from(aside)
}

const DROPPED: &str = ".dropped";

/// The block files of a stream's directory, in order of their ids, each
/// with whether it was dropped (renamed aside, not removed yet).
fn block_files(dir: &Path) -> io::Result<Vec<(u64, bool, PathBuf)>> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (name, dropped) = match name.strip_suffix(DROPPED) {
            Some(name) => (name, true),
            None => (name, false),
        };
        let id = match name.strip_suffix(&format!(".{BLOCK_EXT}")) {
            Some(id) => id.parse::<u64>().ok().filter(|&id| id > 0),
            None => (name == LEGACY_LOG).then_some(0),
        };
        if let Some(id) = id {
            blocks.push((id, dropped, path));
        }
    }
    blocks.sort();
    Ok(blocks)
}

/// Reads blocks back for the engine (a file stream's evicted blocks).
struct BlockFiles {
    root: PathBuf,
}

impl BlockReader for BlockFiles {
    fn read_block(&self, account: &str, stream: &str, block: u64) -> io::Result<Vec<u8>> {
        fs::read(block_path(&stream_dir(&self.root, account, stream), block))
    }
}

/// The subdirectories of `dir` (none if it does not exist), sorted.
fn sorted_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Opens the file store when the server runs JetStream, gives the engine
/// the streams it holds, and logs JetStream's start as nats-server does.
pub fn open_store(server: &mut Server, log: &mut Logger) -> io::Result<Option<FileStore>> {
    let Some(js) = server.options().jetstream.clone() else {
        return Ok(None);
    };
    let store_dir = js
        .store_dir
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("nats"));
    let mut store = FileStore::open(&store_dir)?;
    store.start_syncer(js.sync)?;
    server.set_block_reader(store.reader());
    let root = store.root().display().to_string();
    server.set_jetstream_defaults(default_max_memory(), free_disk(store.root()), &root);
    let js = server.options().jetstream.clone().expect("on");
    let max_memory = js.max_memory.unwrap_or(-1);
    let max_store = js.max_store.unwrap_or(-1);
    for line in [
        "Starting JetStream".to_string(),
        "---------------- JETSTREAM ----------------".to_string(),
        format!("  Max Memory:      {}", friendly_bytes(max_memory)),
        format!("  Max Storage:     {}", friendly_bytes(max_store)),
        format!("  Store Directory: \"{root}\""),
        "-------------------------------------------".to_string(),
    ] {
        log(Level::Info, &line);
    }
    // Restored consumers time their acks from now: the runtime tells the
    // engine the exact clock later, this is close enough for that.
    server.set_wall_clock(crate::unix_nanos(), tenet_core::Time::from_nanos(0));
    store.restore(server, log)?;
    Ok(Some(store))
}

/// nats-server's default memory limit: three quarters of the machine's.
fn default_max_memory() -> i64 {
    let total_kib = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<i64>().ok()
    });
    match total_kib {
        Some(kib) => kib * 1024 / 4 * 3,
        None => 256 * 1024 * 1024,
    }
}

/// The free space of the file system holding `dir` (nats-server's default
/// storage limit), or 1 TiB when it cannot be told.
fn free_disk(dir: &Path) -> i64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 1 << 40;
    };
    // SAFETY: statvfs only writes the struct passed in; the path is a valid C string.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return 1 << 40;
    }
    (stats.f_bavail as i64).saturating_mul(stats.f_frsize as i64)
}

/// `17.66 GB`, as nats-server prints sizes (powers of 1024).
fn friendly_bytes(bytes: i64) -> String {
    if bytes < 0 {
        return "unlimited".to_string();
    }
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_nats_server_prints_them() {
        assert_eq!(friendly_bytes(18_957_136_896), "17.66 GB");
        assert_eq!(friendly_bytes(512), "512 B");
        assert_eq!(friendly_bytes(1536), "1.50 KB");
    }

    #[test]
    fn names_survive_the_trip_through_a_directory_name() {
        for name in ["$G", "A", "acme.inc", "a/b", "..", "ünï", "x%y"] {
            let dir = dir_name(name);
            assert!(!dir.contains('/') && dir != "." && dir != "..", "{dir}");
            assert_eq!(from_dir_name(&dir).as_deref(), Some(name));
        }
    }
}
