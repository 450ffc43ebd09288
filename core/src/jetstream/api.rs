//! The `$JS.API` requests of one account: stream management and message
//! access, answered with nats-server 2.9.10's JSON and errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use data_encoding::BASE64;
use serde::Deserialize;

use super::advisory::{Action, Advisory};
use super::api_error::ApiError;
use super::config::{Storage, StreamConfig};
use super::delivery::Interest;
use super::json::{array, Obj};
use super::log_format::Scan;
use super::outbox::Outgoing;
use super::store::{BlockFiles, BlockReader, BlockWrite, MsgRef, Purge, RemoveError};
use super::stream::{Stored, Stream};
use crate::subject::{is_valid_subject, subjects_collide};

/// Page sizes of NAMES and LIST answers.
const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// Page size of the subjects in a STREAM.INFO answer.
const SUBJECTS_LIMIT: usize = 100_000;

/// An account's JetStream limits (`-1`: unlimited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
        }
    }
}

/// The server-wide side of a request: the server's limits (`-1`:
/// unlimited) and what the other accounts use and reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerShare {
    pub max_memory: i64,
    pub max_storage: i64,
    /// Bytes the other accounts' streams hold: memory, storage.
    pub others_used: (u64, u64),
    /// Bytes the other accounts' streams reserve with `max_bytes`.
    pub others_reserved: (i64, i64),
    /// The server's `duplicate_window` limit (0: none).
    pub duplicate_window: i64,
}

impl Default for ServerShare {
    fn default() -> Self {
        ServerShare {
            max_memory: -1,
            max_storage: -1,
            others_used: (0, 0),
            others_reserved: (0, 0),
            duplicate_window: 0,
        }
    }
}

/// One account's streams and API counters.
#[derive(Debug, Default)]
pub struct AccountJetStream {
    pub limits: AccountLimits,
    pub(super) streams: BTreeMap<String, Stream>,
    /// By (stream, consumer name).
    pub(super) consumers: BTreeMap<(String, String), super::consumers::ConsumerEntry>,
    api_total: u64,
    api_errors: u64,
    /// What file streams need written, oldest first.
    writes: Vec<StoreWrite>,
    /// How file streams read their blocks back (none: they keep them loaded).
    block_files: Option<BlockFiles>,
    /// Messages of JetStream's own for the engine to send, oldest first.
    pub(super) outbox: Vec<Outgoing>,
    /// Messages sent, emptied for reuse, and reply subjects' buffers: a
    /// delivery fills one instead of allocating its own.
    pub(super) spare: Vec<Outgoing>,
    pub(super) spare_replies: Vec<String>,
    /// The key of the consumer being served, and its deliver subject
    /// (buffers reused from one turn to the next).
    pub(super) serving: (String, String),
    pub(super) serving_deliver: String,
    /// The key of the consumer an ack is for (a buffer reused).
    pub(super) ack_key: (String, String),
    /// The sequences an ack acknowledged (a buffer reused).
    pub(super) acked: Vec<u64>,
    /// Events made (advisory ids, flow-control subjects).
    pub(super) events: u64,
}

/// A write a file stream needs, for the host to make before the PubAcks
/// and answers of the same input go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreWrite {
    /// Create or replace the stream's metadata (configuration and creation time).
    Meta { stream: String, json: String },
    /// Append these records ([`super::log_format`]) to block `block` of
    /// the stream (its file created if new).
    Append {
        stream: String,
        block: u64,
        bytes: Vec<u8>,
    },
    /// Remove block `block` of the stream (and its summary): nothing in
    /// it is live.
    DropBlock { stream: String, block: u64 },
    /// Append block summaries to the stream's summaries file of
    /// generation `generation` ([`super::store::BlockWrite::Summaries`]):
    /// a new generation's file holds every block's, and once it is
    /// written (and with `sync_interval: always` synced) the older go.
    BlockSummaries {
        stream: String,
        generation: u64,
        bytes: Vec<u8>,
    },
    /// Remove the stream and everything stored for it.
    Delete { stream: String },
    /// Append a durable consumer's state (a record of
    /// [`super::log_format`] holding its [`super::consumer::Snapshot`]) to
    /// its state file of generation `generation`. A generation's first
    /// write starts its file; once that is written (and, with
    /// `sync_interval: always`, synced) the older generations go. A
    /// restart reads the newest generation's last intact state.
    Consumer {
        stream: String,
        consumer: String,
        generation: u64,
        bytes: Vec<u8>,
    },
    /// Remove a consumer's state.
    DeleteConsumer { stream: String, consumer: String },
}

pub(super) fn response_type(name: &str) -> String {
    format!("io.nats.jetstream.api.v1.{name}_response")
}

/// An error answer: the type, the error, then the fields its response
/// type writes even when empty (`extra`, raw JSON pieces in order).
pub(super) fn error_answer(name: &str, error: &ApiError, extra: &[(&str, &str)]) -> Answer {
    let mut obj = Obj::new()
        .str("type", &response_type(name))
        .raw("error", &error.to_json());
    for (key, json) in extra {
        obj = obj.raw(key, json);
    }
    Err(obj.done())
}

/// An API answer: `Err` for an error answer (counted in `api.errors`).
pub(super) type Answer = Result<String, String>;

/// A page of a NAMES or LIST answer: the type, the paging numbers, and
/// the items (already JSON) under `field`.
pub(super) fn page_answer(
    name: &str,
    total: usize,
    offset: usize,
    limit: usize,
    field: &str,
    items: &str,
) -> Answer {
    Ok(Obj::new()
        .str("type", &response_type(name))
        .num("total", total as u64)
        .num("offset", offset as u64)
        .num("limit", limit as u64)
        .raw(field, items)
        .done())
}

/// "Empty request": no bytes, or a JSON object without keys.
pub(super) fn is_empty_request(body: &[u8]) -> bool {
    body.trim_ascii().is_empty()
        || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .is_ok_and(|m| m.is_empty())
}

/// Reads an optional JSON request body (empty is the default).
pub(super) fn request<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    // Go reads `null` into a struct as nothing at all (async-nats sends it).
    let body = body.trim_ascii();
    if body.is_empty() || body == b"null" {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_json())
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct InfoRequest {
    deleted_details: bool,
    subjects_filter: String,
    offset: usize,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct NamesRequest {
    pub(super) offset: usize,
    subject: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PurgeRequest {
    filter: String,
    seq: u64,
    keep: u64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MsgGetRequest {
    seq: u64,
    last_by_subj: String,
    next_by_subj: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MsgDeleteRequest {
    seq: u64,
    no_erase: bool,
}

impl AccountJetStream {
    pub fn new(limits: AccountLimits) -> AccountJetStream {
        AccountJetStream {
            limits,
            ..AccountJetStream::default()
        }
    }

    /// Takes over the streams and counters of the account's JetStream
    /// before a reload (the limits stay this one's).
    pub fn keep_streams_of(&mut self, old: AccountJetStream) {
        self.streams = old.streams;
        self.consumers = old.consumers;
        self.outbox = old.outbox;
        self.events = old.events;
        self.api_total = old.api_total;
        self.api_errors = old.api_errors;
        self.block_files = old.block_files;
    }

    /// Lets the account's file streams read their blocks back through
    /// `reader` (so they keep only a few in memory); set before any stream
    /// is created or restored.
    pub fn set_block_reader(&mut self, reader: Arc<dyn BlockReader>, account: &str) {
        self.block_files = Some(BlockFiles {
            reader,
            account: account.into(),
            stream: "".into(),
        });
    }

    /// The block access of a new stream `name`.
    fn files_for(&self, name: &str) -> Option<BlockFiles> {
        self.block_files.as_ref().map(|f| BlockFiles {
            stream: name.into(),
            ..f.clone()
        })
    }

    /// What JetStream has to send since the last call, in order; give
    /// it back when sent ([`Self::give_back`]).
    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// Takes back what [`Self::take_outbox`] gave, sent: its messages'
    /// buffers (and the list's) are reused for the next ones.
    pub fn give_back(&mut self, mut sent: Vec<Outgoing>) {
        for mut out in sent.drain(..) {
            if self.spare.len() < 1024 {
                out.recycle(&mut self.spare_replies);
                self.spare.push(out);
            }
        }
        self.spare_replies.truncate(1024);
        if self.outbox.is_empty() {
            self.outbox = sent;
        }
    }

    /// Queues a write for the host.
    pub(super) fn note_write(&mut self, write: StoreWrite) {
        self.writes.push(write);
    }

    /// Notes a file stream's new metadata for the host to write.
    fn note_meta(&mut self, name: &str) {
        let stream = &self.streams[name];
        if stream.config().storage != Storage::File {
            return;
        }
        let json = Obj::new()
            .raw("config", &stream.config().to_json())
            .num("created", stream.created())
            .done();
        self.writes.push(StoreWrite::Meta {
            stream: name.to_string(),
            json,
        });
    }

    /// What the account's file streams need written since the last call:
    /// metadata and removals in order, then each stream's new records and
    /// the blocks it no longer needs. Durable consumers' states are taken
    /// apart ([`Self::take_consumer_writes`]).
    pub fn take_writes(&mut self) -> Vec<StoreWrite> {
        let mut writes = std::mem::take(&mut self.writes);
        for (name, stream) in &mut self.streams {
            for write in stream.store_mut().take_writes() {
                writes.push(match write {
                    BlockWrite::Append { block, bytes } => StoreWrite::Append {
                        stream: name.clone(),
                        block,
                        bytes,
                    },
                    BlockWrite::Drop { block } => StoreWrite::DropBlock {
                        stream: name.clone(),
                        block,
                    },
                    BlockWrite::Summaries { generation, bytes } => StoreWrite::BlockSummaries {
                        stream: name.clone(),
                        generation,
                        bytes,
                    },
                });
            }
        }
        writes
    }

    /// What went wrong reading file streams' blocks back, for the log.
    pub fn take_problems(&mut self) -> Vec<String> {
        self.streams
            .values_mut()
            .flat_map(|s| s.store_mut().take_problems())
            .collect()
    }

    /// The states of the durable consumers of file streams that changed
    /// since the last call: one write each however many acks changed them
    /// (the engine takes these once per batch of input, not per ack).
    pub fn take_consumer_writes(&mut self) -> Vec<StoreWrite> {
        let mut writes = Vec::new();
        for ((stream, name), entry) in &mut self.consumers {
            if !entry.consumer.take_changed() {
                continue;
            }
            let file = self
                .streams
                .get(stream)
                .is_some_and(|s| s.config().storage == Storage::File);
            if file && entry.durable() {
                let (generation, bytes) = entry.state_record();
                writes.push(StoreWrite::Consumer {
                    stream: stream.clone(),
                    consumer: name.clone(),
                    generation,
                    bytes,
                });
            }
        }
        writes
    }

    /// Whether the account's streams have changes to write (or API
    /// writes are queued).
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty() || self.streams.values().any(|s| s.store().has_writes())
    }

    /// Whether the account has consumers (whose state may need writing).
    pub fn has_consumers(&self) -> bool {
        !self.consumers.is_empty()
    }

    /// Brings back a file stream from its metadata (at start-up), without
    /// messages: its blocks follow ([`Self::restore_block`]), then
    /// [`Self::finish_restore`].
    pub fn restore(&mut self, meta: &[u8]) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Meta {
            config: StreamConfig,
            created: u64,
        }
        let meta: Meta = serde_json::from_slice(meta).map_err(|e| format!("metadata: {e}"))?;
        let name = meta.config.name.clone();
        let files = self.files_for(&name);
        let stream = Stream::new(meta.config, meta.created, files);
        self.streams.insert(name.clone(), stream);
        Ok(name)
    }

    /// Gives a restored stream one of its blocks (in order of their ids);
    /// returns how far its bytes were intact.
    pub fn restore_block(&mut self, stream: &str, block: u64, bytes: Vec<u8>) -> Option<Scan> {
        let stream = self.streams.get_mut(stream)?;
        Some(stream.store_mut().restore_block(block, bytes))
    }

    /// Gives a restored stream a block's summary instead of the block;
    /// false when the block must be read instead.
    pub fn restore_block_summary(
        &mut self,
        stream: &str,
        block: u64,
        summary: &[u8],
        file_len: u64,
        generation: u64,
    ) -> bool {
        self.streams.get_mut(stream).is_some_and(|s| {
            s.store_mut()
                .restore_summary(block, summary, file_len, generation)
        })
    }

    /// Gives a restored stream a dropped block: only its sequences count.
    pub fn restore_dropped_block(&mut self, stream: &str, bytes: &[u8]) {
        if let Some(stream) = self.streams.get_mut(stream) {
            stream.store_mut().restore_dropped(bytes);
        }
    }

    /// Ends a stream's restore; returns the stream.
    pub fn finish_restore(&mut self, stream: &str) -> Option<&Stream> {
        let s = self.streams.get_mut(stream)?;
        s.store_mut().finish_restore();
        Some(s)
    }

    /// Drops every stream's messages older than its `max_age` at `now` (Unix nanoseconds).
    pub fn expire(&mut self, now: u64) {
        for stream in self.streams.values_mut() {
            stream.store_mut().expire(now);
        }
    }

    pub fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }

    /// Stores a published message in the stream that covers its subject
    /// and writes its PubAck into `ack` (when one is sent: the bool);
    /// None when no stream covers it.
    pub fn capture(
        &mut self,
        subject: &[u8],
        hdr: &[u8],
        data: &[u8],
        now: u64,
        server: &ServerShare,
        ack: &mut Vec<u8>,
    ) -> Option<(Stored, bool)> {
        let (memory, file) = self.usage();
        let limits = &self.limits;
        let consumers = &self.consumers;
        let (name, stream) = self.streams.iter_mut().find(|(_, s)| s.captures(subject))?;
        let interested = consumers
            .iter()
            .any(|((s, _), e)| s == name && e.wants(subject));
        let bytes_before = stream.store().state().bytes;
        let mut stored = stream.publish_for(subject, hdr, data, now, interested);
        let storage = stream.config().storage;
        if let Stored::Stored(seq) = stored {
            // Over the account's limit once stored: removed again, as nats-server does.
            let grown = stream.store().state().bytes;
            let (used, limit) = match storage {
                Storage::Memory => (memory + grown - bytes_before, limits.max_memory),
                Storage::File => (file + grown - bytes_before, limits.max_storage),
            };
            let (others, server_limit) = match storage {
                Storage::Memory => (server.others_used.0, server.max_memory),
                Storage::File => (server.others_used.1, server.max_storage),
            };
            let refusal = if limit >= 0 && used > limit as u64 {
                Some(ApiError::account_resources_exceeded())
            } else if server_limit >= 0 && used + others > server_limit as u64 {
                Some(ApiError::insufficient_resources())
            } else {
                None
            };
            if let Some(error) = refusal {
                let _ = stream.store_mut().remove(seq);
                stored = Stored::Refused(error);
            }
        }
        let acked = stream.pub_ack(&stored, ack);
        Some((stored, acked))
    }

    /// The bytes streams of `storage` reserve with their `max_bytes`.
    pub fn reserved(&self, storage: Storage) -> i64 {
        self.streams
            .values()
            .filter(|s| s.config().storage == storage && s.config().max_bytes > 0)
            .map(|s| s.config().max_bytes)
            .sum()
    }

    /// API requests answered, and how many of them with an error.
    pub fn api_counts(&self) -> (u64, u64) {
        (self.api_total, self.api_errors)
    }

    /// Memory and storage in use, in nats-server's accounting.
    pub fn usage(&self) -> (u64, u64) {
        let (mut memory, mut storage) = (0, 0);
        for stream in self.streams.values() {
            let bytes = stream.store().state().bytes;
            match stream.config().storage {
                super::config::Storage::Memory => memory += bytes,
                super::config::Storage::File => storage += bytes,
            }
        }
        (memory, storage)
    }

    /// Answers a request on `$JS.API.<api>` (the part after `$JS.API.`);
    /// None when nats-server sends no answer (an unknown API subject).
    pub fn request(
        &mut self,
        api: &str,
        body: &[u8],
        now: u64,
        server: &ServerShare,
        interest: &mut Interest<'_>,
    ) -> Option<String> {
        let answer = match ApiCall::parse(api)? {
            ApiCall::AccountInfo => {
                // Counted after it is answered, as nats-server does.
                let answer = self.account_info();
                self.api_total += 1;
                return Some(answer);
            }
            ApiCall::StreamCreate(name) => self.create(name, body, now, server),
            ApiCall::StreamUpdate(name) => self.update(name, body, server.duplicate_window, now),
            ApiCall::StreamInfo(name) => self.info(name, body),
            ApiCall::StreamNames => self.names(body),
            ApiCall::StreamList => self.list(body),
            ApiCall::StreamDelete(name) => self.delete(name, body, now),
            ApiCall::StreamPurge(name) => self.purge(name, body),
            ApiCall::StreamMsgGet(name) => self.msg_get(name, body),
            ApiCall::StreamMsgDelete(name) => self.msg_delete(name, body),
            ApiCall::ConsumerCreate {
                stream,
                name,
                filter,
            } => self.consumer_create(stream, name, filter, body, now, interest),
            ApiCall::ConsumerDurableCreate { stream, durable } => {
                self.consumer_create_durable(stream, durable, body, now, interest)
            }
            ApiCall::ConsumerInfo { stream, consumer } => {
                self.consumer_info(stream, consumer, body, now, interest)
            }
            ApiCall::ConsumerNames(stream) => self.consumer_names(stream, body),
            ApiCall::ConsumerList(stream) => self.consumer_list(stream, body, now, interest),
            ApiCall::ConsumerDelete { stream, consumer } => {
                self.consumer_delete(stream, consumer, body, now)
            }
            // Served by the engine before a request gets here.
            ApiCall::ConsumerNext { .. } | ApiCall::DirectGet { .. } => return None,
        };
        self.api_total += 1;
        match answer {
            Ok(json) => Some(json),
            Err(json) => {
                self.api_errors += 1;
                Some(json)
            }
        }
    }

    fn account_info(&self) -> String {
        let (memory, storage) = self.usage();
        let l = &self.limits;
        let limits = Obj::new()
            .num("max_memory", l.max_memory)
            .num("max_storage", l.max_storage)
            .num("max_streams", l.max_streams)
            .num("max_consumers", l.max_consumers)
            .num("max_ack_pending", -1i64)
            .num("memory_max_stream_bytes", -1i64)
            .num("storage_max_stream_bytes", -1i64)
            .bool("max_bytes_required", false)
            .done();
        let api = Obj::new()
            .num("total", self.api_total)
            .num("errors", self.api_errors)
            .done();
        Obj::new()
            .str("type", &response_type("account_info"))
            .num("memory", memory)
            .num("storage", storage)
            // Not in nats-server 2.9.10's answer, but newer clients
            // (async-nats 0.51) cannot read an account without them.
            .num("reserved_memory", 0u64)
            .num("reserved_storage", 0u64)
            .num("streams", self.streams.len() as u64)
            .num("consumers", 0u64)
            .raw("limits", &limits)
            .raw("api", &api)
            .done()
    }

    fn create(&mut self, name: &str, body: &[u8], now: u64, server: &ServerShare) -> Answer {
        let server_window = server.duplicate_window;
        const NAME: &str = "stream_create";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let config = match StreamConfig::from_json(body) {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        if config.name != name {
            return fail(ApiError::stream_name_mismatch());
        }
        if name.contains(['/', '\\']) {
            return fail(ApiError::stream_name_has_path_separators());
        }
        if config.sealed {
            return fail(ApiError::invalid_stream_config(
                "stream configuration for create can not be sealed",
            ));
        }
        let config = match config.checked(server_window) {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        if config.num_replicas > 1 {
            return fail(ApiError::replicas_not_supported());
        }
        if let Some(existing) = self.streams.get(name) {
            if *existing.config() != config {
                return fail(ApiError::stream_name_in_use());
            }
        } else {
            if self.limits.max_streams > 0 && self.streams.len() as i64 >= self.limits.max_streams {
                return fail(ApiError::max_streams());
            }
            // A stream with max_bytes reserves them against the account's limit.
            if config.max_bytes > 0 {
                let (limit, error) = match config.storage {
                    Storage::Memory => (self.limits.max_memory, ApiError::insufficient_memory()),
                    Storage::File => (self.limits.max_storage, ApiError::insufficient_storage()),
                };
                if limit >= 0 && self.reserved(config.storage) + config.max_bytes > limit {
                    return fail(error);
                }
                // And against the server's, with every other account's.
                let (server_limit, others) = match config.storage {
                    Storage::Memory => (server.max_memory, server.others_reserved.0),
                    Storage::File => (server.max_storage, server.others_reserved.1),
                };
                let mine = self.reserved(config.storage) + config.max_bytes;
                if server_limit >= 0 && others + mine > server_limit {
                    let error = match config.storage {
                        Storage::Memory => ApiError::insufficient_memory(),
                        Storage::File => ApiError::insufficient_storage(),
                    };
                    return fail(error);
                }
            }
            let overlaps = self.streams.values().any(|s| {
                s.config().subjects.iter().any(|a| {
                    config
                        .subjects
                        .iter()
                        .any(|b| subjects_collide(a.as_bytes(), b.as_bytes()))
                })
            });
            if overlaps {
                return fail(ApiError::subjects_overlap());
            }
            let files = self.files_for(name);
            self.streams
                .insert(name.to_string(), Stream::new(config, now, files));
            self.note_meta(name);
            self.advise(
                Advisory::Stream {
                    stream: name,
                    action: Action::Create,
                },
                now,
            );
        }
        let stream = &self.streams[name];
        Ok(stream
            .info_fields(
                Obj::new().str("type", &response_type(NAME)),
                self.consumers_of(name),
            )
            .bool("did_create", true)
            .done())
    }

    fn update(&mut self, name: &str, body: &[u8], server_window: i64, now: u64) -> Answer {
        const NAME: &str = "stream_update";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        let config = match StreamConfig::from_json(body) {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        if config.name != name {
            return fail(ApiError::stream_name_mismatch());
        }
        let config = match config.checked(server_window) {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        let Some(old) = self.streams.get(name).map(|s| s.config().clone()) else {
            return fail(ApiError::stream_not_found());
        };
        let invalid = ApiError::invalid_stream_config;
        let refusal = if config.storage != old.storage {
            Some("stream configuration update can not change storage type")
        } else if config.retention != old.retention {
            Some("stream configuration update can not change retention policy")
        } else if config.max_consumers != old.max_consumers {
            Some("stream configuration update can not change MaxConsumers")
        } else if old.sealed && !config.sealed {
            Some("stream configuration update can not unseal a sealed stream")
        } else if old.deny_delete && !config.deny_delete {
            Some("stream configuration update can not cancel deny message deletes")
        } else if old.deny_purge && !config.deny_purge {
            Some("stream configuration update can not cancel deny purge")
        } else {
            None
        };
        if let Some(reason) = refusal {
            return fail(invalid(reason));
        }
        let overlaps = self
            .streams
            .iter()
            .filter(|(n, _)| *n != name)
            .any(|(_, s)| {
                s.config().subjects.iter().any(|a| {
                    config
                        .subjects
                        .iter()
                        .any(|b| subjects_collide(a.as_bytes(), b.as_bytes()))
                })
            });
        if overlaps {
            return fail(ApiError::subjects_overlap());
        }
        let mut config = config;
        if config.sealed {
            // As nats-server: a sealed stream keeps everything it has.
            config.max_age = 0;
            config.discard = super::config::DiscardPolicy::New;
            config.deny_delete = true;
            config.deny_purge = true;
            config.allow_rollup_hdrs = false;
        }
        let stream = self.streams.get_mut(name).expect("present");
        stream.update(config);
        self.note_meta(name);
        self.advise(
            Advisory::Stream {
                stream: name,
                action: Action::Modify,
            },
            now,
        );
        let stream = &self.streams[name];
        Ok(stream
            .info_fields(
                Obj::new().str("type", &response_type(NAME)),
                self.consumers_of(name),
            )
            .done())
    }

    fn info(&mut self, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "stream_info";
        let paged = [("total", "0"), ("offset", "0"), ("limit", "0")];
        let request: InfoRequest = match request(body) {
            Ok(r) => r,
            Err(e) => return error_answer(NAME, &e, &paged),
        };
        let Some(stream) = self.streams.get(name) else {
            return error_answer(NAME, &ApiError::stream_not_found(), &paged);
        };
        let mut subjects = None;
        let (mut total, mut offset, mut limit) = (0, 0, 0);
        if !request.subjects_filter.is_empty() {
            let counts = stream
                .store()
                .subject_counts(request.subjects_filter.as_bytes());
            if !counts.is_empty() {
                total = counts.len();
                offset = request.offset.min(total);
                limit = SUBJECTS_LIMIT;
                let mut map = Obj::new();
                for (subject, n) in counts.iter().skip(offset).take(SUBJECTS_LIMIT) {
                    map = map.num(&String::from_utf8_lossy(subject).replace('"', "\\\""), *n);
                }
                subjects = Some(map.done());
            }
        }
        let head = Obj::new()
            .str("type", &response_type(NAME))
            .num("total", total as u64)
            .num("offset", offset as u64)
            .num("limit", limit as u64);
        let mut state = super::stream::state_json(&stream.store().state(), self.consumers_of(name));
        // `subjects` and `deleted` go inside `state`, before `consumer_count`.
        let mut inner = String::new();
        if let Some(subjects) = subjects {
            inner.push_str(&format!(",\"subjects\":{subjects}"));
        }
        if request.deleted_details {
            let deleted = stream.store().deleted();
            if !deleted.is_empty() {
                inner.push_str(&format!(
                    ",\"deleted\":{}",
                    array(deleted.iter().map(u64::to_string))
                ));
            }
        }
        if !inner.is_empty() {
            let at = state
                .rfind(",\"consumer_count\"")
                .expect("state ends with it");
            state.insert_str(at, &inner);
        }
        Ok(head
            .raw("config", &stream.config().to_json())
            .str("created", &crate::time::rfc3339(stream.created()))
            .raw("state", &state)
            .done())
    }

    /// Streams (by name, sorted) whose subjects collide with `subject`,
    /// or all when it is empty.
    fn matching_names(&self, subject: &str) -> Vec<&str> {
        self.streams
            .iter()
            .filter(|(_, s)| {
                subject.is_empty()
                    || s.config()
                        .subjects
                        .iter()
                        .any(|x| subjects_collide(x.as_bytes(), subject.as_bytes()))
            })
            .map(|(n, _)| n.as_str())
            .collect()
    }

    fn names(&mut self, body: &[u8]) -> Answer {
        const NAME: &str = "stream_names";
        let request: NamesRequest = match request(body) {
            Ok(r) => r,
            Err(e) => {
                let extra = [
                    ("total", "0"),
                    ("offset", "0"),
                    ("limit", "0"),
                    ("streams", "null"),
                ];
                return error_answer(NAME, &e, &extra);
            }
        };
        let names = self.matching_names(&request.subject);
        let offset = request.offset.min(names.len());
        let page: Vec<String> = names
            .iter()
            .skip(offset)
            .take(NAMES_LIMIT)
            .map(|n| serde_json::to_string(n).expect("a string serializes"))
            .collect();
        let streams = if page.is_empty() {
            "null".to_string()
        } else {
            array(page)
        };
        page_answer(NAME, names.len(), offset, NAMES_LIMIT, "streams", &streams)
    }

    fn list(&mut self, body: &[u8]) -> Answer {
        const NAME: &str = "stream_list";
        let request: NamesRequest = match request(body) {
            Ok(r) => r,
            Err(e) => {
                let extra = [
                    ("total", "0"),
                    ("offset", "0"),
                    ("limit", "0"),
                    ("streams", "[]"),
                ];
                return error_answer(NAME, &e, &extra);
            }
        };
        let names = self.matching_names(&request.subject);
        let offset = request.offset.min(names.len());
        let infos = names.iter().skip(offset).take(LIST_LIMIT).map(|n| {
            let stream = &self.streams[*n];
            stream.info_fields(Obj::new(), self.consumers_of(n)).done()
        });
        page_answer(
            NAME,
            names.len(),
            offset,
            LIST_LIMIT,
            "streams",
            &array(infos),
        )
    }

    fn delete(&mut self, name: &str, body: &[u8], now: u64) -> Answer {
        const NAME: &str = "stream_delete";
        if !is_empty_request(body) {
            return error_answer(NAME, &ApiError::not_empty_request(), &[]);
        }
        if !self.streams.contains_key(name) {
            return error_answer(NAME, &ApiError::stream_not_found(), &[]);
        }
        // Its consumers go first, each advised, as nats-server.
        let consumers: Vec<(String, String)> = self
            .consumers
            .keys()
            .filter(|(stream, _)| stream == name)
            .cloned()
            .collect();
        for key in consumers {
            self.remove_consumer(&key, now);
        }
        let stream = self.streams.remove(name).expect("checked");
        if stream.config().storage == Storage::File {
            self.writes.push(StoreWrite::Delete {
                stream: name.to_string(),
            });
        }
        self.advise(
            Advisory::Stream {
                stream: name,
                action: Action::Delete,
            },
            now,
        );
        Ok(Obj::new()
            .str("type", &response_type(NAME))
            .bool("success", true)
            .done())
    }

    fn purge(&mut self, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "stream_purge";
        let fail = |e: ApiError| error_answer(NAME, &e, &[("purged", "0")]);
        let request: PurgeRequest = match request(body) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(ApiError::stream_not_found());
        };
        if stream.config().sealed {
            return fail(ApiError::sealed());
        }
        if stream.config().deny_purge {
            return fail(ApiError::purge_failed("stream purge not permitted"));
        }
        if request.seq > 0 && request.keep > 0 {
            return fail(ApiError::bad_request());
        }
        let filter = (!request.filter.is_empty()).then_some(request.filter.as_bytes());
        if filter.is_some_and(|f| !is_valid_subject(f)) {
            return fail(ApiError::bad_request());
        }
        let purged = stream.store_mut().purge(&Purge {
            filter,
            below: (request.seq > 0).then_some(request.seq),
            keep: (request.keep > 0).then_some(request.keep),
        });
        Ok(Obj::new()
            .str("type", &response_type(NAME))
            .bool("success", true)
            .num("purged", purged)
            .done())
    }

    fn msg_get(&mut self, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "stream_msg_get";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        if body.trim_ascii().is_empty() {
            return fail(ApiError::bad_request());
        }
        let request: MsgGetRequest = match request(body) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(ApiError::stream_not_found());
        };
        let store = stream.store_mut();
        let (last, next) = (
            !request.last_by_subj.is_empty(),
            !request.next_by_subj.is_empty(),
        );
        let found = match (request.seq, last, next) {
            (seq, false, false) if seq > 0 => store.get(seq),
            (0, true, false) => store.last_by_subject(request.last_by_subj.as_bytes()),
            (seq, false, true) => store.next_by_subject(request.next_by_subj.as_bytes(), seq),
            _ => return fail(ApiError::bad_request()),
        };
        let Some(msg) = found else {
            return fail(ApiError::no_message_found());
        };
        Ok(Obj::new()
            .str("type", &response_type(NAME))
            .raw("message", &message_json(msg))
            .done())
    }

    fn msg_delete(&mut self, name: &str, body: &[u8]) -> Answer {
        const NAME: &str = "stream_msg_delete";
        let fail = |e: ApiError| error_answer(NAME, &e, &[]);
        if body.trim_ascii().is_empty() {
            return fail(ApiError::bad_request());
        }
        let request: MsgDeleteRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(_) => return fail(ApiError::invalid_json()),
        };
        let _ = request.no_erase;
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(ApiError::stream_not_found());
        };
        if stream.config().sealed {
            return fail(ApiError::sealed());
        }
        if stream.config().deny_delete {
            return fail(ApiError::delete_failed("message delete not permitted"));
        }
        let storage = stream.config().storage;
        match stream.store_mut().remove(request.seq) {
            Ok(()) => Ok(Obj::new()
                .str("type", &response_type(NAME))
                .bool("success", true)
                .done()),
            Err(RemoveError::Eof) => fail(ApiError::delete_failed("stream store EOF")),
            // nats-server's two stores answer a removed message differently.
            Err(RemoveError::NotFound) if storage == Storage::File => {
                fail(ApiError::delete_failed("no message found"))
            }
            Err(RemoveError::NotFound) => fail(ApiError::sequence_not_found(request.seq)),
        }
    }
}

/// A direct get's answer: a message of the server's own with headers.
#[derive(Debug, PartialEq, Eq)]
pub struct DirectAnswer {
    /// The header block (`NATS/1.0 ...\r\n...\r\n\r\n`).
    pub hdr: Vec<u8>,
    pub data: Vec<u8>,
}

impl DirectAnswer {
    fn status(status: &str) -> DirectAnswer {
        DirectAnswer {
            hdr: format!("NATS/1.0 {status}\r\n\r\n").into_bytes(),
            data: Vec::new(),
        }
    }
}

impl AccountJetStream {
    /// Answers `$JS.API.DIRECT.GET.<stream>[.<subject>]` (`api` is what
    /// follows `$JS.API.`): the stored message itself with its stream,
    /// subject, sequence and time as headers, or a status. None (no answer
    /// at all) when the stream is missing or does not allow direct gets.
    pub fn direct_get(&mut self, api: &str, body: &[u8]) -> Option<DirectAnswer> {
        let rest = api.strip_prefix("DIRECT.GET.")?;
        let (name, subject) = match rest.split_once('.') {
            Some((name, subject)) => (name, Some(subject)),
            None => (rest, None),
        };
        let stream = self
            .streams
            .get_mut(name)
            .filter(|s| s.config().allow_direct)?;
        let store = stream.store_mut();
        let body = body.trim_ascii();
        let found = match subject {
            Some(_) if !body.is_empty() => return Some(DirectAnswer::status("408 Bad Request")),
            Some(subject) => store.last_by_subject(subject.as_bytes()),
            None if body.is_empty() => return Some(DirectAnswer::status("408 Empty Request")),
            None => {
                let Ok(request) = serde_json::from_slice::<MsgGetRequest>(body) else {
                    return Some(DirectAnswer::status("408 Malformed Request"));
                };
                let (last, next) = (
                    !request.last_by_subj.is_empty(),
                    !request.next_by_subj.is_empty(),
                );
                match (request.seq, last, next) {
                    (seq, false, false) if seq > 0 => store.get(seq),
                    (0, true, false) => store.last_by_subject(request.last_by_subj.as_bytes()),
                    (seq, false, true) => {
                        store.next_by_subject(request.next_by_subj.as_bytes(), seq)
                    }
                    (0, false, false) => return Some(DirectAnswer::status("408 Empty Request")),
                    _ => return Some(DirectAnswer::status("408 Bad Request")),
                }
            }
        };
        let Some(msg) = found else {
            return Some(DirectAnswer::status("404 Message Not Found"));
        };
        // The stored headers (or a fresh block), then the four of the stream.
        let mut hdr = if msg.hdr.is_empty() {
            b"NATS/1.0\r\n".to_vec()
        } else {
            msg.hdr[..msg.hdr.len().saturating_sub(2)].to_vec()
        };
        hdr.extend_from_slice(
            format!(
                "Nats-Stream: {}\r\nNats-Subject: {}\r\nNats-Sequence: {}\r\nNats-Time-Stamp: {}\r\n\r\n",
                name,
                String::from_utf8_lossy(msg.subject),
                msg.seq,
                crate::time::rfc3339(msg.time)
            )
            .as_bytes(),
        );
        Some(DirectAnswer {
            hdr,
            data: msg.data.to_vec(),
        })
    }
}

/// The answer of an account without JetStream (on a server with it): the
/// request's own response type carrying error 10039; None where nats-server
/// answers nothing.
pub fn not_enabled_answer(api: &str) -> Option<String> {
    let paged = [("total", "0"), ("offset", "0"), ("limit", "0")];
    let (name, extra): (&str, &[(&str, &str)]) = match ApiCall::parse(api)? {
        ApiCall::AccountInfo => ("account_info", &[]),
        ApiCall::StreamCreate(_) => ("stream_create", &[]),
        ApiCall::StreamUpdate(_) => ("stream_update", &[]),
        ApiCall::StreamInfo(_) => ("stream_info", &paged),
        ApiCall::StreamNames => (
            "stream_names",
            &[
                ("total", "0"),
                ("offset", "0"),
                ("limit", "0"),
                ("streams", "null"),
            ],
        ),
        ApiCall::StreamList => (
            "stream_list",
            &[
                ("total", "0"),
                ("offset", "0"),
                ("limit", "0"),
                ("streams", "[]"),
            ],
        ),
        ApiCall::StreamDelete(_) => ("stream_delete", &[]),
        ApiCall::StreamPurge(_) => ("stream_purge", &[("purged", "0")]),
        ApiCall::StreamMsgGet(_) => ("stream_msg_get", &[]),
        ApiCall::StreamMsgDelete(_) => ("stream_msg_delete", &[]),
        _ => return None,
    };
    let answer = error_answer(name, &ApiError::not_enabled_for_account(), extra);
    Some(answer.unwrap_or_else(|json| json))
}

/// A `$JS.API` request by what it asks for: read once from its subject by
/// the engine, which serves it, and by the permission audit, which names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCall<'a> {
    /// `INFO`: the account's JetStream usage and limits.
    AccountInfo,
    /// `STREAM.CREATE.<stream>`.
    StreamCreate(&'a str),
    /// `STREAM.UPDATE.<stream>`.
    StreamUpdate(&'a str),
    /// `STREAM.INFO.<stream>`.
    StreamInfo(&'a str),
    /// `STREAM.NAMES`.
    StreamNames,
    /// `STREAM.LIST`.
    StreamList,
    /// `STREAM.DELETE.<stream>`.
    StreamDelete(&'a str),
    /// `STREAM.PURGE.<stream>`.
    StreamPurge(&'a str),
    /// `STREAM.MSG.GET.<stream>`.
    StreamMsgGet(&'a str),
    /// `STREAM.MSG.DELETE.<stream>`.
    StreamMsgDelete(&'a str),
    /// `CONSUMER.CREATE.<stream>[.<consumer>[.<filter>]]`.
    ConsumerCreate {
        stream: &'a str,
        name: Option<&'a str>,
        filter: Option<&'a str>,
    },
    /// `CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    ConsumerDurableCreate { stream: &'a str, durable: &'a str },
    /// `CONSUMER.INFO.<stream>.<consumer>`.
    ConsumerInfo { stream: &'a str, consumer: &'a str },
    /// `CONSUMER.NAMES.<stream>`.
    ConsumerNames(&'a str),
    /// `CONSUMER.LIST.<stream>`.
    ConsumerList(&'a str),
    /// `CONSUMER.DELETE.<stream>.<consumer>`.
    ConsumerDelete { stream: &'a str, consumer: &'a str },
    /// `CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
    ConsumerNext { stream: &'a str, consumer: &'a str },
    /// `DIRECT.GET.<stream>[.<subject>]`.
    DirectGet {
        stream: &'a str,
        subject: Option<&'a str>,
    },
}

/// What follows the first `n` tokens of `subject`, if anything does.
fn after_tokens(subject: &str, n: usize) -> Option<&str> {
    subject.splitn(n + 1, '.').nth(n)
}

impl<'a> ApiCall<'a> {
    /// Reads the part of a subject after `$JS.API.`; `None` for a subject
    /// the API does not answer.
    pub fn parse(api: &'a str) -> Option<ApiCall<'a>> {
        let mut parts = api.splitn(6, '.');
        let mut next = || parts.next();
        let (a, b, c, d, e, rest) = (next(), next(), next(), next(), next(), next());
        Some(match (a?, b, c, d, e, rest) {
            ("INFO", None, ..) => ApiCall::AccountInfo,
            ("STREAM", Some("NAMES"), None, ..) => ApiCall::StreamNames,
            ("STREAM", Some("LIST"), None, ..) => ApiCall::StreamList,
            ("STREAM", Some("MSG"), Some("GET"), Some(n), None, _) => ApiCall::StreamMsgGet(n),
            ("STREAM", Some("MSG"), Some("DELETE"), Some(n), None, _) => {
                ApiCall::StreamMsgDelete(n)
            }
            ("STREAM", Some(op), Some(n), None, ..) => match op {
                "CREATE" => ApiCall::StreamCreate(n),
                "UPDATE" => ApiCall::StreamUpdate(n),
                "INFO" => ApiCall::StreamInfo(n),
                "DELETE" => ApiCall::StreamDelete(n),
                "PURGE" => ApiCall::StreamPurge(n),
                _ => return None,
            },
            ("CONSUMER", Some("CREATE"), Some(stream), name, ..) => ApiCall::ConsumerCreate {
                stream,
                name,
                // Everything after the consumer's name.
                filter: after_tokens(api, 4),
            },
            ("CONSUMER", Some("DURABLE"), Some("CREATE"), Some(stream), Some(durable), None) => {
                ApiCall::ConsumerDurableCreate { stream, durable }
            }
            ("CONSUMER", Some("MSG"), Some("NEXT"), Some(stream), Some(consumer), None) => {
                ApiCall::ConsumerNext { stream, consumer }
            }
            ("CONSUMER", Some("NAMES"), Some(stream), None, ..) => ApiCall::ConsumerNames(stream),
            ("CONSUMER", Some("LIST"), Some(stream), None, ..) => ApiCall::ConsumerList(stream),
            ("CONSUMER", Some(op), Some(stream), Some(consumer), None, _) => match op {
                "INFO" => ApiCall::ConsumerInfo { stream, consumer },
                "DELETE" => ApiCall::ConsumerDelete { stream, consumer },
                _ => return None,
            },
            ("DIRECT", Some("GET"), Some(stream), ..) => ApiCall::DirectGet {
                stream,
                subject: after_tokens(api, 3),
            },
            _ => return None,
        })
    }

    /// What the request does, in words: "create stream ORDERS".
    pub fn describe(&self) -> String {
        match *self {
            ApiCall::AccountInfo => "read the account's JetStream usage and limits".into(),
            ApiCall::StreamCreate(s) => format!("create stream {s}"),
            ApiCall::StreamUpdate(s) => format!("update stream {s}"),
            ApiCall::StreamInfo(s) => format!("read the configuration and state of stream {s}"),
            ApiCall::StreamNames => "list the names of the account's streams".into(),
            ApiCall::StreamList => "list the account's streams".into(),
            ApiCall::StreamDelete(s) => format!("delete stream {s}"),
            ApiCall::StreamPurge(s) => format!("purge stream {s}"),
            ApiCall::StreamMsgGet(s) => format!("read a message of stream {s}"),
            ApiCall::StreamMsgDelete(s) => format!("delete a message of stream {s}"),
            ApiCall::ConsumerCreate {
                stream,
                name,
                filter,
            } => {
                let mut text = match name {
                    Some(name) => format!("create consumer {name} on stream {stream}"),
                    None => format!("create an ephemeral consumer on stream {stream}"),
                };
                if let Some(filter) = filter {
                    text.push_str(&format!(" filtered by {filter}"));
                }
                text
            }
            ApiCall::ConsumerDurableCreate { stream, durable } => {
                format!("create durable consumer {durable} on stream {stream}")
            }
            ApiCall::ConsumerInfo { stream, consumer } => {
                format!("read consumer {consumer} of stream {stream}")
            }
            ApiCall::ConsumerNames(s) => format!("list the names of stream {s}'s consumers"),
            ApiCall::ConsumerList(s) => format!("list stream {s}'s consumers"),
            ApiCall::ConsumerDelete { stream, consumer } => {
                format!("delete consumer {consumer} of stream {stream}")
            }
            ApiCall::ConsumerNext { stream, consumer } => {
                format!("pull messages from consumer {consumer} of stream {stream}")
            }
            ApiCall::DirectGet { stream, subject } => match subject {
                Some(subject) => format!("read stream {stream}'s last message on {subject}"),
                None => format!("read a message of stream {stream} directly"),
            },
        }
    }
}

/// A stored message as MSG.GET answers it.
fn message_json(msg: MsgRef<'_>) -> String {
    let mut obj = Obj::new()
        .str("subject", &String::from_utf8_lossy(msg.subject))
        .num("seq", msg.seq);
    if !msg.hdr.is_empty() {
        obj = obj.str("hdrs", &BASE64.encode(msg.hdr));
    }
    if !msg.data.is_empty() {
        obj = obj.str("data", &BASE64.encode(msg.data));
    }
    obj.str("time", &crate::time::rfc3339(msg.time)).done()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_765_000_000_000_000_000;

    fn js() -> AccountJetStream {
        AccountJetStream::new(AccountLimits::default())
    }

    fn ask(js: &mut AccountJetStream, api: &str, body: &str) -> serde_json::Value {
        let answer = js
            .request(
                api,
                body.as_bytes(),
                T0,
                &ServerShare::default(),
                &mut |_, _| false,
            )
            .expect("an answer");
        serde_json::from_str(&answer).expect("JSON")
    }

    fn error_code(v: &serde_json::Value) -> u64 {
        v["error"]["err_code"].as_u64().unwrap_or(0)
    }

    #[test]
    fn account_info_counts_api_calls_after_answering() {
        let mut js = js();
        let first = js
            .request("INFO", b"", T0, &ServerShare::default(), &mut |_, _| false)
            .unwrap();
        assert_eq!(
            first,
            r#"{"type":"io.nats.jetstream.api.v1.account_info_response","memory":0,"storage":0,"reserved_memory":0,"reserved_storage":0,"streams":0,"consumers":0,"limits":{"max_memory":-1,"max_storage":-1,"max_streams":-1,"max_consumers":-1,"max_ack_pending":-1,"memory_max_stream_bytes":-1,"storage_max_stream_bytes":-1,"max_bytes_required":false},"api":{"total":0,"errors":0}}"#
        );
        ask(&mut js, "STREAM.INFO.nope", "");
        let info = ask(&mut js, "INFO", "");
        assert_eq!(info["api"]["total"], 2);
        assert_eq!(info["api"]["errors"], 1);
    }

    #[test]
    fn create_store_inspect_and_delete() {
        let mut js = js();
        let created = js
            .request(
                "STREAM.CREATE.ORDERS",
                br#"{"name":"ORDERS","subjects":["orders.>"],"storage":"memory"}"#,
                T0,
                &ServerShare::default(),
                &mut |_, _| false,
            )
            .unwrap();
        assert!(created.starts_with(
            r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{"name":"ORDERS","subjects":["orders.\u003e"]"#
        ), "{created}");
        assert!(
            created.ends_with(r#""consumer_count":0},"did_create":true}"#),
            "{created}"
        );
        // The same create again is answered the same; a different one is refused.
        let again = ask(
            &mut js,
            "STREAM.CREATE.ORDERS",
            r#"{"name":"ORDERS","subjects":["orders.>"],"storage":"memory"}"#,
        );
        assert_eq!(again["did_create"], true);
        let other = ask(
            &mut js,
            "STREAM.CREATE.ORDERS",
            r#"{"name":"ORDERS","subjects":["x"]}"#,
        );
        assert_eq!(error_code(&other), 10058);
        let overlap = ask(
            &mut js,
            "STREAM.CREATE.O2",
            r#"{"name":"O2","subjects":["orders.eu"]}"#,
        );
        assert_eq!(error_code(&overlap), 10065);
        let mismatch = ask(&mut js, "STREAM.CREATE.X", r#"{"name":"Y"}"#);
        assert_eq!(error_code(&mismatch), 10056);
        let empty = ask(&mut js, "STREAM.CREATE.X", "");
        assert_eq!(error_code(&empty), 10025);

        let mut ack = Vec::new();
        let (stored, acked) = js
            .capture(
                b"orders.eu",
                b"",
                b"m1",
                T0 + 1,
                &ServerShare::default(),
                &mut ack,
            )
            .unwrap();
        assert_eq!(stored, Stored::Stored(1));
        assert!(acked);
        assert_eq!(ack, br#"{"stream":"ORDERS", "seq":1}"#);
        js.capture(
            b"orders.us",
            b"",
            b"m2",
            T0 + 2,
            &ServerShare::default(),
            &mut Vec::new(),
        )
        .unwrap();
        assert!(js
            .capture(
                b"elsewhere",
                b"",
                b"",
                T0,
                &ServerShare::default(),
                &mut Vec::new()
            )
            .is_none());

        let info = ask(&mut js, "STREAM.INFO.ORDERS", r#"{"subjects_filter":">"}"#);
        assert_eq!(info["state"]["messages"], 2);
        assert_eq!(info["state"]["bytes"], 2 * (9 + 2 + 16));
        assert_eq!(info["state"]["subjects"]["orders.eu"], 1);
        assert_eq!(info["total"], 2);
        assert_eq!(info["limit"], 100_000);

        let got = ask(
            &mut js,
            "STREAM.MSG.GET.ORDERS",
            r#"{"last_by_subj":"orders.us"}"#,
        );
        assert_eq!(got["message"]["seq"], 2);
        assert_eq!(got["message"]["data"], "bTI=");
        let bad = ask(
            &mut js,
            "STREAM.MSG.GET.ORDERS",
            r#"{"seq":1,"last_by_subj":"orders.us"}"#,
        );
        assert_eq!(error_code(&bad), 10003);
        let none = ask(&mut js, "STREAM.MSG.GET.ORDERS", r#"{"seq":9}"#);
        assert_eq!(error_code(&none), 10037);

        let names = ask(&mut js, "STREAM.NAMES", r#"{"subject":"orders.eu"}"#);
        assert_eq!(names["streams"], serde_json::json!(["ORDERS"]));
        let nobody = js
            .request(
                "STREAM.NAMES",
                br#"{"subject":"zzz"}"#,
                T0,
                &ServerShare::default(),
                &mut |_, _| false,
            )
            .unwrap();
        assert!(
            nobody.ends_with(r#""limit":1024,"streams":null}"#),
            "{nobody}"
        );
        let list = ask(&mut js, "STREAM.LIST", "");
        assert_eq!(list["streams"][0]["config"]["name"], "ORDERS");

        assert_eq!(
            ask(&mut js, "STREAM.MSG.DELETE.ORDERS", r#"{"seq":1}"#)["success"],
            true
        );
        assert_eq!(
            error_code(&ask(&mut js, "STREAM.MSG.DELETE.ORDERS", r#"{"seq":1}"#)),
            10043
        );
        assert_eq!(
            error_code(&ask(&mut js, "STREAM.MSG.DELETE.ORDERS", r#"{"seq":7}"#)),
            10057
        );
        assert_eq!(
            error_code(&ask(&mut js, "STREAM.MSG.DELETE.ORDERS", "7")),
            10025
        );

        let purged = ask(&mut js, "STREAM.PURGE.ORDERS", "");
        assert_eq!(
            (purged["success"].clone(), purged["purged"].clone()),
            (true.into(), 1.into())
        );
        let both = js
            .request(
                "STREAM.PURGE.ORDERS",
                br#"{"seq":2,"keep":1}"#,
                T0,
                &ServerShare::default(),
                &mut |_, _| false,
            )
            .unwrap();
        assert!(
            both.ends_with(r#""description":"bad request"},"purged":0}"#),
            "{both}"
        );

        assert_eq!(
            error_code(&ask(&mut js, "STREAM.DELETE.ORDERS", "{\"x\":1}")),
            10038
        );
        assert_eq!(ask(&mut js, "STREAM.DELETE.ORDERS", "")["success"], true);
        assert_eq!(error_code(&ask(&mut js, "STREAM.DELETE.ORDERS", "")), 10059);
        let missing = js
            .request(
                "STREAM.INFO.ORDERS",
                b"",
                T0,
                &ServerShare::default(),
                &mut |_, _| false,
            )
            .unwrap();
        assert!(
            missing.ends_with(r#""total":0,"offset":0,"limit":0}"#),
            "{missing}"
        );
        assert_eq!(
            js.request(
                "STREAM.CREATE.a.b",
                b"{}",
                T0,
                &ServerShare::default(),
                &mut |_, _| false
            ),
            None,
            "no answer"
        );
    }

    #[test]
    fn a_direct_get_of_a_message_with_a_one_byte_header_block() {
        // HPUB takes any header size up to the total: found by the
        // jetstream_api fuzz target (the block's "last CRLF" was cut from
        // one byte, an overflow).
        let mut js = js();
        ask(
            &mut js,
            "STREAM.CREATE.S",
            r#"{"name":"S","storage":"memory","allow_direct":true}"#,
        );
        js.capture(
            b"S",
            b"Z",
            b"x",
            T0,
            &ServerShare::default(),
            &mut Vec::new(),
        )
        .unwrap();
        let answer = js.direct_get("DIRECT.GET.S.S", b"").expect("an answer");
        let hdr = String::from_utf8(answer.hdr).unwrap();
        assert!(hdr.starts_with("Nats-Stream: S\r\n"), "{hdr:?}");
        assert_eq!(answer.data, b"x");
    }

    #[test]
    fn updates_refused_as_nats_server_refuses_them() {
        let mut js = js();
        ask(
            &mut js,
            "STREAM.CREATE.S",
            r#"{"name":"S","deny_delete":true}"#,
        );
        let storage = ask(
            &mut js,
            "STREAM.UPDATE.S",
            r#"{"name":"S","storage":"memory","deny_delete":true}"#,
        );
        assert_eq!(
            storage["error"]["description"],
            "stream configuration update can not change storage type"
        );
        let undeny = ask(&mut js, "STREAM.UPDATE.S", r#"{"name":"S"}"#);
        assert_eq!(
            undeny["error"]["description"],
            "stream configuration update can not cancel deny message deletes"
        );
        let more = ask(
            &mut js,
            "STREAM.UPDATE.S",
            r#"{"name":"S","deny_delete":true,"max_msgs":5}"#,
        );
        assert_eq!(more["config"]["max_msgs"], 5);
        let sealed = ask(
            &mut js,
            "STREAM.UPDATE.S",
            r#"{"name":"S","deny_delete":true,"sealed":true}"#,
        );
        assert_eq!(sealed["config"]["deny_purge"], true);
        assert_eq!(sealed["config"]["discard"], "new");
        assert_eq!(
            error_code(&ask(&mut js, "STREAM.UPDATE.T", r#"{"name":"T"}"#)),
            10059
        );
    }

    #[test]
    fn account_memory_and_storage_limits() {
        let mut js = AccountJetStream::new(AccountLimits {
            max_memory: 100,
            max_storage: 1000,
            ..AccountLimits::default()
        });
        // max_bytes reserves against the limit at create.
        let big = ask(
            &mut js,
            "STREAM.CREATE.B",
            r#"{"name":"B","storage":"memory","max_bytes":200}"#,
        );
        assert_eq!(error_code(&big), 10028);
        let big = ask(
            &mut js,
            "STREAM.CREATE.B",
            r#"{"name":"B","max_bytes":2000}"#,
        );
        assert_eq!(error_code(&big), 10047);
        ask(
            &mut js,
            "STREAM.CREATE.M",
            r#"{"name":"M","storage":"memory"}"#,
        );
        // 1 + 40 + 16 = 57 bytes each: the second is over 100 and removed again.
        let payload = vec![b'x'; 40];
        let (first, _) = js
            .capture(
                b"M",
                b"",
                &payload,
                T0,
                &ServerShare::default(),
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(first, Stored::Stored(1));
        let mut ack = Vec::new();
        let (second, _) = js
            .capture(b"M", b"", &payload, T0, &ServerShare::default(), &mut ack)
            .unwrap();
        assert_eq!(
            second,
            Stored::Refused(ApiError::account_resources_exceeded())
        );
        assert_eq!(
            String::from_utf8(ack).unwrap(),
            r#"{"error":{"code":400,"err_code":10002,"description":"resource limits exceeded for account"},"stream":"M","seq":0}"#
        );
        let info = ask(&mut js, "STREAM.INFO.M", "");
        assert_eq!(info["state"]["messages"], 1);
    }

    #[test]
    fn server_wide_limits_with_the_other_accounts() {
        let mut js = js();
        let server = ServerShare {
            max_memory: 1000,
            max_storage: 1000,
            others_used: (950, 0),
            others_reserved: (0, 900),
            duplicate_window: 0,
        };
        let reserve = js
            .request(
                "STREAM.CREATE.F",
                br#"{"name":"F","max_bytes":200}"#,
                T0,
                &server,
                &mut |_, _| false,
            )
            .unwrap();
        assert!(reserve.contains(r#""err_code":10047"#), "{reserve}");
        js.request(
            "STREAM.CREATE.M",
            br#"{"name":"M","storage":"memory"}"#,
            T0,
            &server,
            &mut |_, _| false,
        );
        let (stored, _) = js
            .capture(b"M", b"", &[b'x'; 40], T0, &server, &mut Vec::new())
            .unwrap();
        assert_eq!(stored, Stored::Refused(ApiError::insufficient_resources()));
    }

    #[test]
    fn the_account_stream_limit() {
        let mut js = AccountJetStream::new(AccountLimits {
            max_streams: 1,
            ..AccountLimits::default()
        });
        ask(&mut js, "STREAM.CREATE.A", r#"{"name":"A"}"#);
        assert_eq!(
            error_code(&ask(&mut js, "STREAM.CREATE.B", r#"{"name":"B"}"#)),
            10027
        );
    }
}
