//! Server options with nats-server's defaults.

use std::time::Duration;

/// nats-server's default client port.
pub const DEFAULT_PORT: u16 = 4222;
/// nats-server's default `connect_error_reports`: a failed first connection
/// to a remote is logged on the first attempt and every 3600th (about once an
/// hour at one attempt a second).
pub const DEFAULT_CONNECT_ERROR_REPORTS: u64 = 3600;
/// nats-server's default `reconnect_error_reports`: every failed reconnect is logged.
pub const DEFAULT_RECONNECT_ERROR_REPORTS: u64 = 1;

/// Everything the engine needs to know about its configuration.
///
/// `Options::default()` is nats-server's defaults; the command line (and later the
/// configuration file) override fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Interface to listen on (`-a`, `listen`/`host`).
    pub host: String,
    /// Port to listen on; `None` asks the runtime to bind any free port
    /// (`-p -1`), which it then reports with [`crate::Server::set_listen_port`].
    pub port: Option<u16>,
    /// `server_name` in INFO; defaults to the server id.
    pub server_name: Option<String>,
    /// Largest PUB/HPUB payload accepted, in bytes.
    pub max_payload: u32,
    /// Longest control line accepted, in bytes.
    pub max_control_line: u32,
    /// Most client connections at once; `0` refuses every client (as
    /// nats-server 2.10+ does; 2.9.10 reads a `0` as its default, 65536).
    pub max_connections: u32,
    /// Most subscriptions per connection; `0` means unlimited.
    pub max_subscriptions: u32,
    /// Most outbound bytes queued for one client before it is closed as a slow consumer.
    pub max_pending: u64,
    /// Time between server PINGs to an idle client.
    pub ping_interval: Duration,
    /// Unanswered PINGs tolerated before `Stale Connection`.
    pub ping_max: u32,
    /// Log debug lines (`-D`).
    pub debug: bool,
    /// Log protocol traces (`-V`).
    pub trace: bool,
    /// Payload bytes shown in a protocol trace (0 = all).
    pub max_traced_msg_len: usize,
    /// Disable the subject match cache (`disable_sublist_cache`).
    pub disable_sublist_cache: bool,
    /// Interface of the HTTP monitoring port (the host part of `http`);
    /// `None` is `host`, as in nats-server.
    pub http_host: Option<String>,
    /// HTTP monitoring port (`http_port`, `monitor_port`, `http`, `-m`):
    /// `None` serves no monitoring (nats-server's `0`), `Some(0)` any free
    /// port (nats-server's `-1`).
    pub http_port: Option<u16>,
    /// HTTPS monitoring port (`https_port`, `https`), with the `tls`
    /// block's certificate; as `http_port`. nats-server refuses to start
    /// with both ports set, or this one without `tls` ([`Options::monitor`]).
    pub https_port: Option<u16>,
    /// Most tokens a SUB subject may have (`max_sub_tokens`); `0` means unlimited.
    pub max_sub_tokens: u8,
    /// Turn header support off (`no_header_support`): INFO says `headers: false`,
    /// so HPUB is refused and a client asking for no-responders is closed.
    pub no_header_support: bool,
    /// JetStream (`jetstream`, `-js`); `None` is off.
    pub jetstream: Option<JetStreamOptions>,
    /// TLS for client connections (`tls {}`, `--tls*`); `None` is plaintext.
    pub tls: Option<crate::tls::TlsOptions>,
    /// With `tls`, plaintext clients are accepted too (`allow_non_tls`).
    pub allow_non_tls: bool,
    /// How long a client's socket may accept no bytes while some are queued
    /// for it (`write_deadline`) before it is closed as a slow consumer.
    pub write_deadline: Duration,
    /// Lame duck mode (`--signal ldm`) closes the clients over this long
    /// (`lame_duck_duration`).
    pub lame_duck_duration: Duration,
    /// Lame duck mode waits this long before closing the first client
    /// (`lame_duck_grace_period`).
    pub lame_duck_grace_period: Duration,
    /// `connect_error_reports`, used by leaf nodes and routes: log every Nth
    /// failed attempt to connect to a remote never reached before (the first
    /// attempt is always logged). Never 0: a `0` in a file is the default.
    pub connect_error_reports: u64,
    /// `reconnect_error_reports`, used by leaf nodes and routes: log every Nth
    /// failed attempt to reconnect to a remote that was connected before (the
    /// first attempt is always logged). Never 0: a `0` in a file is the default.
    pub reconnect_error_reports: u64,
    /// `http_base_path`, as written (`/varz` reports it so): every monitoring
    /// path is served under it, normalised as nats-server does (a leading `/`
    /// added, `.`, `..`, repeated and trailing slashes removed); empty serves
    /// them at the root.
    pub http_base_path: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "0.0.0.0".to_string(),
            port: Some(DEFAULT_PORT),
            server_name: None,
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            max_pending: 64 * 1024 * 1024,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            debug: false,
            trace: false,
            max_traced_msg_len: 0,
            disable_sublist_cache: false,
            http_host: None,
            http_port: None,
            https_port: None,
            max_sub_tokens: 0,
            no_header_support: false,
            jetstream: None,
            tls: None,
            allow_non_tls: false,
            write_deadline: Duration::from_secs(10),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            connect_error_reports: DEFAULT_CONNECT_ERROR_REPORTS,
            reconnect_error_reports: DEFAULT_RECONNECT_ERROR_REPORTS,
            http_base_path: String::new(),
        }
    }
}

impl Options {
    /// The interface monitoring listens on: `http_host`, else `host`.
    pub fn http_host(&self) -> &str {
        self.http_host.as_deref().unwrap_or(&self.host)
    }

    /// The monitoring port to bind and whether it speaks HTTPS (`None`: no
    /// monitoring), or why monitoring cannot start, in nats-server's words.
    pub fn monitor(&self) -> Result<Option<(u16, bool)>, String> {
        let shown = |p: u16| if p == 0 { -1 } else { i32::from(p) };
        match (self.http_port, self.https_port) {
            (Some(http), Some(https)) => Err(format!(
                "can't specify both HTTP ({}) and HTTPs ({}) ports",
                shown(http),
                shown(https)
            )),
            (Some(http), None) => Ok(Some((http, false))),
            (None, Some(_)) if self.tls.is_none() => {
                Err("TLS cert and key required for HTTPS".to_string())
            }
            (None, Some(https)) => Ok(Some((https, true))),
            (None, None) => Ok(None),
        }
    }

    /// Whether the monitoring port speaks HTTPS.
    pub fn https(&self) -> bool {
        matches!(self.monitor(), Ok(Some((_, true))))
    }
}

/// The server's JetStream settings (the `jetstream` block).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// `store_dir`: where file streams live (under `<store_dir>/jetstream`).
    pub store_dir: Option<String>,
    /// `max_memory_store`, bytes; `None` is nats-server's default.
    pub max_memory: Option<i64>,
    /// `max_file_store`, bytes.
    pub max_store: Option<i64>,
    /// `sync_interval`: when file streams' writes are flushed to the disk.
    pub sync: StoreSync,
}

/// When the file store asks the operating system to put its writes on the
/// disk (fsync). Either way a write reaches the operating system before
/// the PubAck (or answer) that depends on it leaves, so a killed server
/// loses nothing acknowledged; only a power loss can take what is not
/// synced yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreSync {
    /// In the background, this often (nats-server's default: 2 minutes).
    Every(std::time::Duration),
    /// `always`: before the acknowledgement leaves (writes of the same
    /// moment share one sync, made off the event loop).
    Always,
}

impl Default for StoreSync {
    fn default() -> Self {
        StoreSync::Every(std::time::Duration::from_secs(120))
    }
}
