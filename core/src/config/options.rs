//! Typed server options read from a configuration value tree.
//!
//! This layer turns what the file says into plain data: server options for the
//! engine, and the authorization and account settings as written (later layers
//! compile those into permission checks). Keys are matched case-insensitively,
//! as nats-server does. A key nats-server knows but tenet does not implement
//! yet is an error naming it: a setting, above all a security setting, is never
//! silently ignored.

use std::collections::HashSet;
use std::time::Duration;

use super::duration::{format_duration, parse_duration};
use super::parse::{ConfigError, Parsed};
use super::value::{Key, Pos, Value, ValueKind};
use crate::jetstream::api::AccountLimits as JsAccountLimits;
use crate::options::{
    JetStreamOptions, Options, StoreSync, DEFAULT_CONNECT_ERROR_REPORTS, DEFAULT_PORT,
    DEFAULT_RECONNECT_ERROR_REPORTS,
};
use crate::subject::is_valid_subject;
use crate::tls::TlsOptions;

/// Everything a configuration file sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Engine options (listen address, limits, pings, debug/trace).
    pub server: Options,
    /// Log file (`log_file`), instead of stderr.
    pub log_file: Option<String>,
    /// Timestamps in log lines (`logtime`, default true).
    pub log_time: Option<bool>,
    /// File to write the process id to (`pid_file`).
    pub pid_file: Option<String>,
    /// The `authorization` block.
    pub authorization: Option<Authorization>,
    /// The `accounts` block.
    pub accounts: Vec<AccountConfig>,
    /// `system_account`.
    pub system_account: Option<String>,
    /// `no_system_account`: do not create `$SYS`.
    pub no_system_account: bool,
    /// `no_auth_user`.
    pub no_auth_user: Option<String>,
    /// Where `no_auth_user` was written, for errors.
    pub no_auth_user_pos: Option<Pos>,
    /// `syslog`: log to the local syslog (unless `log_file` or
    /// `remote_syslog` is set, which win, as in nats-server).
    pub syslog: bool,
    /// `remote_syslog`: log to this syslog server (unless `log_file` is set);
    /// an empty string is none, as in nats-server. Its form is checked when
    /// the file is read ([`SyslogAddress::parse`]).
    pub remote_syslog: Option<String>,
}

/// Where `remote_syslog` sends log lines: nats-server's URL forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogAddress {
    /// `udp://host:port`.
    Udp(String),
    /// `tcp://host:port`.
    Tcp(String),
    /// `unix:///path`: a stream socket.
    Unix(String),
}

impl SyslogAddress {
    /// Reads a `remote_syslog` address as nats-server does (a URL whose
    /// scheme, any case, is the network), refusing what it could never
    /// connect to: another scheme, or no host and port, or no path.
    pub fn parse(text: &str) -> Result<SyslogAddress, String> {
        let uses = "use udp://host:port, tcp://host:port or unix:///path";
        let scheme_len = text
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || "+-.".contains(c))))
            })
            .filter(|&(_, c)| c == ':')
            .map(|(i, _)| i)
            .filter(|&i| i > 0);
        let Some(scheme_len) = scheme_len else {
            return Err(format!("remote_syslog {text:?}: no network type ({uses})"));
        };
        let scheme = text[..scheme_len].to_ascii_lowercase();
        let rest = &text[scheme_len + 1..];
        // `//authority/path`, or only a path.
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => after.split_at(after.find('/').unwrap_or(after.len())),
            None => ("", rest),
        };
        match scheme.as_str() {
            "udp" | "tcp" => {
                let port = authority
                    .rsplit_once(':')
                    .map(|(host, port)| (host, port.parse::<u16>()));
                if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
                    return Err(format!(
                        "remote_syslog {text:?}: {scheme} needs host:port ({uses})"
                    ));
                }
                let address = authority.to_string();
                Ok(if scheme == "udp" {
                    SyslogAddress::Udp(address)
                } else {
                    SyslogAddress::Tcp(address)
                })
            }
            "unix" if !path.is_empty() => Ok(SyslogAddress::Unix(path.to_string())),
            "unix" => Err(format!(
                "remote_syslog {text:?}: unix needs a socket path ({uses})"
            )),
            _ => Err(format!(
                "remote_syslog {text:?}: invalid network type {scheme:?} ({uses})"
            )),
        }
    }
}

impl std::fmt::Display for SyslogAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogAddress::Udp(a) => write!(f, "udp://{a}"),
            SyslogAddress::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogAddress::Unix(p) => write!(f, "unix://{p}"),
        }
    }
}

/// The `authorization` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Authorization {
    /// Single user name (`user`).
    pub user: Option<String>,
    /// Single user password (`password`), plain or bcrypt.
    pub password: Option<String>,
    /// Token (`token`), plain or bcrypt.
    pub token: Option<String>,
    /// Time allowed for CONNECT (`timeout`).
    pub timeout: Option<Duration>,
    /// The `users` list.
    pub users: Vec<User>,
    /// Permissions of users in this block that have none of their own.
    pub default_permissions: Option<Permissions>,
    /// Where the block was written, for errors.
    pub pos: Option<Pos>,
}

/// A user (password or nkey) from a `users` list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    /// User name; `None` for nkey users.
    pub name: Option<String>,
    /// Password, plain or bcrypt.
    pub password: Option<String>,
    /// nkey public key (`U...`).
    pub nkey: Option<String>,
    /// The user's own permissions.
    pub permissions: Option<Permissions>,
    /// Where the user was defined, for error messages.
    pub pos: Option<Pos>,
}

/// Publish and subscribe permissions.
///
/// Equality compares what the permissions allow, not where they were written.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    /// `publish`; `None` = unrestricted.
    pub publish: Option<SubjectPermission>,
    /// `subscribe`; `None` = unrestricted.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses`.
    pub allow_responses: Option<ResponsePermission>,
    /// Where the permissions were given (the map, or the `$VARIABLE` reference).
    pub written_at: Option<Pos>,
    /// Where `allow_responses` was written.
    pub allow_responses_at: Option<Pos>,
}

impl PartialEq for Permissions {
    fn eq(&self, other: &Self) -> bool {
        (&self.publish, &self.subscribe, self.allow_responses)
            == (&other.publish, &other.subscribe, other.allow_responses)
    }
}

impl Eq for Permissions {}

/// Allow and deny lists of subjects (subscribe entries may carry a queue: `"foo q"`).
///
/// Equality compares the entries, not where they were written.
#[derive(Clone, Debug, Default)]
pub struct SubjectPermission {
    /// Subjects allowed; empty means everything (nats-server's rule).
    pub allow: Vec<String>,
    /// Subjects denied; deny wins over allow.
    pub deny: Vec<String>,
    /// Where each `allow` entry was written (same order; empty when the
    /// permission was built in code rather than read from a file).
    pub allow_at: Vec<Pos>,
    /// Where each `deny` entry was written, as `allow_at`.
    pub deny_at: Vec<Pos>,
}

impl PartialEq for SubjectPermission {
    fn eq(&self, other: &Self) -> bool {
        (&self.allow, &self.deny) == (&other.allow, &other.deny)
    }
}

impl Eq for SubjectPermission {}

/// `allow_responses`: replies allowed to requests this user received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Replies allowed per request; `None` = unlimited.
    pub max: Option<u64>,
    /// How long after the request a reply is allowed; `None` = forever.
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    /// `allow_responses: true`: one reply within two minutes.
    fn default() -> Self {
        ResponsePermission {
            max: Some(1),
            expires: Some(Duration::from_secs(120)),
        }
    }
}

/// One account of the `accounts` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountConfig {
    /// Account name.
    pub name: String,
    /// Users that log in to this account.
    pub users: Vec<User>,
    /// Permissions of this account's users that have none of their own.
    pub default_permissions: Option<Permissions>,
    /// Streams and services this account offers.
    pub exports: Vec<Export>,
    /// Streams and services this account takes from others.
    pub imports: Vec<Import>,
    /// `limits`.
    pub limits: AccountLimits,
    /// `jetstream`: its limits when enabled.
    pub jetstream: Option<JsAccountLimits>,
    /// Where the account was defined.
    pub pos: Option<Pos>,
}

/// An export entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// `service` (true) or `stream` (false).
    pub service: bool,
    /// The exported subject.
    pub subject: String,
    /// Accounts allowed to import it; `None` = public.
    pub accounts: Option<Vec<String>>,
    /// Service response type: `singleton` (default), `stream` or `chunked`.
    pub response_type: Option<String>,
    /// Service response threshold.
    pub response_threshold: Option<Duration>,
    /// Where the export was written, for error messages.
    pub pos: Option<Pos>,
}

/// An import entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// `service` (true) or `stream` (false).
    pub service: bool,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// Local subject for a service (`to`) or a remapped stream.
    pub to: Option<String>,
    /// Prefix for an imported stream.
    pub prefix: Option<String>,
    /// Where the import was written, for error messages.
    pub pos: Option<Pos>,
}

/// Account `limits` (None = unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountLimits {
    /// Total connections of the account.
    pub max_connections: Option<u32>,
    /// Subscriptions per connection.
    pub max_subscriptions: Option<u32>,
    /// Payload per message.
    pub max_payload: Option<u32>,
}

/// What a known key becomes once tenet implements it.
const NOT_YET: &[(&str, &str)] = &[
    ("cluster", "clustering"),
    ("gateway", "gateways"),
    ("gateways", "gateways"),
    ("leaf", "leaf nodes"),
    ("leafnodes", "leaf nodes"),
    ("mqtt", "MQTT"),
    ("websocket", "websockets"),
    ("ws", "websockets"),
    ("operator", "operator mode"),
    ("operators", "operator mode"),
    ("root", "operator mode"),
    ("roots", "operator mode"),
    ("trusted_operators", "operator mode"),
    ("trusted", "operator mode"),
    ("trusted_keys", "operator mode"),
    ("resolver", "operator mode"),
    ("account_resolver", "operator mode"),
    ("accounts_resolver", "operator mode"),
    ("resolver_tls", "operator mode"),
    ("resolver_preload", "operator mode"),
    ("resolver_pinned_accounts", "operator mode"),
    ("ocsp", "OCSP stapling"),
    ("ocsp_cache", "OCSP stapling"),
    ("default_js_domain", "JetStream domains"),
    ("mappings", "subject mappings"),
    ("maps", "subject mappings"),
    ("client_advertise", "clustering"),
    ("ports_file_dir", "ports files"),
    ("prof_port", "profiling"),
    ("server_tags", "server tags"),
    ("logfile_size_limit", "log rotation"),
    ("log_size_limit", "log rotation"),
    ("trace_verbose", "verbose tracing"),
    ("logtime_utc", "UTC log times"),
];

/// Reads a parsed file into typed options. The configuration is returned even
/// when there are errors (best effort, so every error can be reported at once);
/// callers must refuse to run when the error list is not empty.
pub fn read_config(parsed: &Parsed) -> (Config, Vec<ConfigError>) {
    let mut r = Reader {
        used_variables: &parsed.used_variables,
        errors: Vec::new(),
    };
    let mut config = Config::default();
    let mut port: Option<(i64, Pos)> = None;
    let mut host: Option<String> = None;
    let mut http_port: Option<(i64, Pos)> = None;
    let mut https_port: Option<(i64, Pos)> = None;
    let mut top_store_dir: Option<(String, Pos)> = None;
    for (key, value) in &parsed.map {
        match key.name.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((h, p)) = r.host_port(value) {
                    host = h.or(host);
                    port = p.map(|p| (p, value.pos.clone())).or(port);
                }
            }
            "port" => port = r.int(&key.name, value).map(|p| (p, value.pos.clone())),
            "http" => match r.host_port(value) {
                Some((h, Some(p))) => {
                    config.server.http_host = h.or(config.server.http_host.take());
                    http_port = Some((p, value.pos.clone()));
                }
                Some((_, None)) => r.error(
                    &value.pos,
                    "http: expected \"host:port\" or a port number".to_string(),
                ),
                None => {}
            },
            "http_port" | "monitor_port" => {
                http_port = r.int(&key.name, value).map(|p| (p, value.pos.clone()))
            }
            "https" => match r.host_port(value) {
                Some((h, Some(p))) => {
                    config.server.http_host = h.or(config.server.http_host.take());
                    https_port = Some((p, value.pos.clone()));
                }
                Some((_, None)) => r.error(
                    &value.pos,
                    "https: expected \"host:port\" or a port number".to_string(),
                ),
                None => {}
            },
            "https_port" => https_port = r.int(&key.name, value).map(|p| (p, value.pos.clone())),
            "host" | "net" => host = r.string(&key.name, value),
            "jetstream" => r.jetstream(value, &mut config.server.jetstream),
            "tls" => config.server.tls = r.tls(value),
            "allow_non_tls" => {
                config.server.allow_non_tls = r.boolean(&key.name, value).unwrap_or(false)
            }
            "store_dir" | "storedir" => {
                if let Some(dir) = r.string(&key.name, value) {
                    top_store_dir = Some((dir, value.pos.clone()));
                }
            }
            "server_name" => config.server.server_name = r.string(&key.name, value),
            "debug" => config.server.debug = r.boolean(&key.name, value).unwrap_or(false),
            "trace" => config.server.trace = r.boolean(&key.name, value).unwrap_or(false),
            "max_traced_msg_len" => {
                config.server.max_traced_msg_len = r
                    .limit(&key.name, value, 0, i64::from(u32::MAX))
                    .unwrap_or(0) as usize
            }
            "logtime" => config.log_time = r.boolean(&key.name, value),
            "logfile" | "log_file" => config.log_file = r.string(&key.name, value),
            "pidfile" | "pid_file" => config.pid_file = r.string(&key.name, value),
            "max_control_line" => {
                config.server.max_control_line = r
                    .limit(&key.name, value, 1, i64::from(i32::MAX))
                    .unwrap_or(4096)
            }
            "max_payload" => {
                config.server.max_payload = r
                    .limit(&key.name, value, 1, i64::from(i32::MAX))
                    .unwrap_or(1 << 20)
            }
            "max_pending" => {
                if let Some(n) = r.limit(&key.name, value, 1, i64::MAX) {
                    config.server.max_pending = n as u64;
                }
            }
            // 0 in a file refuses every client, as in nats-server 2.10+.
            "max_connections" | "max_conn" => {
                config.server.max_connections = r
                    .limit(&key.name, value, 0, i64::from(u32::MAX))
                    .unwrap_or(0)
            }
            "max_subscriptions" | "max_subs" => {
                config.server.max_subscriptions = r
                    .limit(&key.name, value, 0, i64::from(u32::MAX))
                    .unwrap_or(0)
            }
            "ping_interval" => {
                if let Some(d) = r.duration_or_seconds(&key.name, value) {
                    config.server.ping_interval = d;
                }
            }
            "ping_max" => {
                config.server.ping_max = r
                    .limit(&key.name, value, 0, i64::from(u32::MAX))
                    .unwrap_or(2)
            }
            "disable_sublist_cache" | "no_sublist_cache" => {
                config.server.disable_sublist_cache = r.boolean(&key.name, value).unwrap_or(false)
            }
            "authorization" => {
                config.authorization = r.authorization(value).map(|a| Authorization {
                    pos: Some(key.pos.clone()),
                    ..a
                })
            }
            "accounts" => config.accounts = r.accounts(value),
            "system_account" | "system" => config.system_account = r.string(&key.name, value),
            "no_system_account" | "no_system" | "no_sys_acc" => {
                config.no_system_account = r.boolean(&key.name, value).unwrap_or(false)
            }
            "no_auth_user" => {
                config.no_auth_user = r.string(&key.name, value);
                config.no_auth_user_pos = Some(key.pos.clone());
            }
            // Per-client limits and lame duck mode.
            "max_sub_tokens" | "max_subscription_tokens" => {
                if let Some(n) = r.int(&key.name, value) {
                    match n {
                        1..=255 => config.server.max_sub_tokens = n as u8,
                        _ if n > 255 => {
                            r.error(&value.pos, format!("{} value is too big", key.name))
                        }
                        _ => r.error(
                            &value.pos,
                            format!("{} value can not be negative", key.name),
                        ),
                    }
                }
            }
            "no_header_support" => {
                config.server.no_header_support = r.boolean(&key.name, value).unwrap_or(false)
            }
            "write_deadline" => {
                if let Some(d) = r.duration_or_seconds(&key.name, value) {
                    config.server.write_deadline = d;
                }
            }
            "lame_duck_duration" => {
                if let Some(d) = r.duration_string(value, "lame_duck_duration") {
                    if d < Duration::from_secs(30) {
                        let shown = format_duration(d);
                        r.error(
                            &value.pos,
                            format!("invalid lame_duck_duration of {shown}, minimum is 30 seconds"),
                        );
                    } else {
                        config.server.lame_duck_duration = d;
                    }
                }
            }
            "lame_duck_grace_period" => {
                if let Some(d) = r.duration_string(value, "lame_duck_grace_period") {
                    config.server.lame_duck_grace_period = d;
                }
            }
            // Process-level keys: the error-report intervals of leaf nodes
            // and routes, the monitoring base path, the syslog targets.
            "connect_error_reports" => {
                if let Some(n) = r.int(&key.name, value) {
                    config.server.connect_error_reports =
                        error_reports(n, DEFAULT_CONNECT_ERROR_REPORTS);
                }
            }
            "reconnect_error_reports" => {
                if let Some(n) = r.int(&key.name, value) {
                    config.server.reconnect_error_reports =
                        error_reports(n, DEFAULT_RECONNECT_ERROR_REPORTS);
                }
            }
            "http_base_path" => {
                if let Some(path) = r.string(&key.name, value) {
                    config.server.http_base_path = path;
                }
            }
            "syslog" => config.syslog = r.boolean(&key.name, value).unwrap_or(false),
            "remote_syslog" => {
                config.remote_syslog = r.string(&key.name, value).filter(|text| !text.is_empty());
                if let Some(Err(message)) =
                    config.remote_syslog.as_deref().map(SyslogAddress::parse)
                {
                    r.error(&value.pos, message);
                }
            }
            name => r.other_key(key, name),
        }
    }
    if let Some(host) = host {
        config.server.host = host;
    }
    if let Some((p, pos)) = port {
        config.server.port = match p {
            -1 => None,
            0 => Some(DEFAULT_PORT),
            1..=65535 => Some(p as u16),
            _ => {
                r.error(
                    &pos,
                    format!("invalid port {p} (use 1-65535, or -1 for a random port)"),
                );
                config.server.port
            }
        };
    }
    if let Some((p, pos)) = http_port {
        config.server.http_port = match http_port_option(p) {
            Ok(port) => port,
            Err(message) => {
                r.error(&pos, message);
                None
            }
        };
    }
    // Both ports, or HTTPS without TLS, stop the start (not `-t`), as in
    // nats-server: see `Options::monitor`.
    if let Some((p, pos)) = https_port {
        config.server.https_port = match http_port_option(p) {
            Ok(port) => port,
            Err(message) => {
                r.error(&pos, message);
                None
            }
        };
    }
    if config.server.max_payload as u64 > config.server.max_pending {
        r.errors.push(ConfigError {
            pos: None,
            message: format!(
                "max_payload ({}) can not be larger than max_pending ({})",
                config.server.max_payload, config.server.max_pending
            ),
        });
    }
    let (duration, grace) = (
        config.server.lame_duck_duration,
        config.server.lame_duck_grace_period,
    );
    if grace >= duration {
        // Checked against the defaults too, as nats-server validates after
        // filling them in.
        r.errors.push(ConfigError {
            pos: None,
            message: format!(
                "lame duck grace period ({}) should be strictly lower than lame duck duration ({})",
                format_duration(grace),
                format_duration(duration)
            ),
        });
    }
    r.gate_unimplemented(&parsed.map);
    // In file order, errors without a position last.
    r.errors.sort_by(|a, b| match (&a.pos, &b.pos) {
        (Some(a), Some(b)) => a.cmp(b),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    if let Some((dir, pos)) = top_store_dir {
        match config.server.jetstream.as_mut() {
            Some(js) if js.store_dir.is_some() => {
                r.error(&pos, "Duplicate 'store_dir' configuration".to_string())
            }
            Some(js) => js.store_dir = Some(dir),
            // As nats-server: a store directory alone does not enable JetStream.
            None => {}
        }
    }
    (config, r.errors)
}

/// An error-report interval as nats-server reads it: `0` is the default; a
/// negative count works as its absolute value (nats-server tests `attempts %
/// n == 0`, which Go computes the same for `n` and `-n`).
fn error_reports(n: i64, default: u64) -> u64 {
    match n {
        0 => default,
        n => n.unsigned_abs(),
    }
}

/// A monitoring port as nats-server reads it: `0` serves no monitoring, `-1`
/// any free port (`Some(0)`).
pub fn http_port_option(port: i64) -> Result<Option<u16>, String> {
    match port {
        0 => Ok(None),
        -1 => Ok(Some(0)),
        1..=65535 => Ok(Some(port as u16)),
        _ => Err(format!(
            "invalid monitoring port {port} (use 1-65535, -1 for a random port, 0 for none)"
        )),
    }
}

struct Reader<'a> {
    used_variables: &'a HashSet<Pos>,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, pos: &Pos, message: String) {
        self.errors.push(ConfigError {
            pos: Some(pos.clone()),
            message,
        });
    }

    fn wrong_type(&mut self, key_hint: &str, value: &Value, wanted: &str) {
        let message = format!("{key_hint}: expected {wanted}, got {}", value.type_name());
        self.error(&value.pos, message);
    }

    /// A key that is not an implemented option: a variable definition, a known
    /// nats-server key tenet refuses later, or an unknown field.
    fn other_key(&mut self, key: &Key, lower: &str) {
        if self.used_variables.contains(&key.pos) || NOT_YET.iter().any(|(k, _)| *k == lower) {
            return;
        }
        let message = format!("unknown field {:?}", key.name);
        self.error(&key.pos, message);
    }

    /// Refuses keys nats-server knows but tenet does not implement yet.
    fn gate_unimplemented(&mut self, map: &[(Key, Value)]) {
        for (key, _) in map {
            let lower = key.name.to_ascii_lowercase();
            if self.used_variables.contains(&key.pos) {
                continue;
            }
            let feature = NOT_YET.iter().find(|(k, _)| *k == lower).map(|(_, f)| *f);
            if let Some(feature) = feature {
                let message = format!(
                    "{:?} is not supported by tenet yet (it arrives with {feature})",
                    key.name
                );
                self.error(&key.pos, message);
            }
        }
    }

    /// The top-level `jetstream`: `true`/`false`, `enabled`/`disabled`, or a
    /// block (enabled unless it says `enabled: false`).
    fn jetstream(&mut self, value: &Value, out: &mut Option<JetStreamOptions>) {
        match &value.kind {
            ValueKind::Bool(on) => *out = on.then(JetStreamOptions::default),
            ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" => *out = Some(JetStreamOptions::default()),
                "disabled" | "disable" => *out = None,
                _ => self.error(&value.pos, format!("jetstream: unknown value {s:?}")),
            },
            ValueKind::Map(map) => {
                let mut js = JetStreamOptions::default();
                let mut enabled = true;
                for (key, v) in map {
                    match key.name.to_ascii_lowercase().as_str() {
                        "store_dir" | "store" | "storedir" => {
                            js.store_dir = self.string(&key.name, v)
                        }
                        "max_memory_store" | "max_mem_store" | "max_mem" => {
                            js.max_memory = self.int(&key.name, v)
                        }
                        "max_file_store" | "max_file" => js.max_store = self.int(&key.name, v),
                        "sync_interval" | "sync" => {
                            if let Some(sync) = self.store_sync(&key.name, v) {
                                js.sync = sync;
                            }
                        }
                        "enabled" | "enable" => {
                            enabled = self.boolean(&key.name, v).unwrap_or(true)
                        }
                        name @ ("domain"
                        | "key"
                        | "ek"
                        | "encryption_key"
                        | "cipher"
                        | "limits"
                        | "unique_tag"
                        | "max_outstanding_catchup"
                        | "max_buffered_msgs"
                        | "max_buffered_size"
                        | "extension_hint") => {
                            let message =
                                format!("jetstream {name:?} is not supported by tenet yet");
                            self.error(&key.pos, message);
                        }
                        _ => self.unknown_in(key, "jetstream"),
                    }
                }
                *out = enabled.then_some(js);
            }
            _ => self.wrong_type("jetstream", value, "a boolean, a string or a map"),
        }
    }

    /// `sync_interval`: `always`, or how often to sync in the background
    /// (a duration string or seconds; more than zero).
    fn store_sync(&mut self, key: &str, value: &Value) -> Option<StoreSync> {
        if let ValueKind::String(s) = &value.kind {
            if s.eq_ignore_ascii_case("always") {
                return Some(StoreSync::Always);
            }
        }
        let every = self.duration_or_seconds(key, value)?;
        if every.is_zero() {
            self.error(
                &value.pos,
                format!("{key} must be more than zero, or \"always\""),
            );
            return None;
        }
        Some(StoreSync::Every(every))
    }

    /// An account's `jetstream`: `enabled`/`disabled` (or a boolean), or a
    /// block of limits (which enables it); unset limits are unlimited.
    fn account_jetstream(&mut self, value: &Value) -> Option<JsAccountLimits> {
        match &value.kind {
            ValueKind::Bool(on) => on.then(JsAccountLimits::default),
            ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" => Some(JsAccountLimits::default()),
                "disabled" | "disable" => None,
                _ => {
                    self.error(&value.pos, format!("jetstream: unknown value {s:?}"));
                    None
                }
            },
            ValueKind::Map(map) => {
                let mut limits = JsAccountLimits::default();
                for (key, v) in map {
                    match key.name.to_ascii_lowercase().as_str() {
                        "max_memory" | "max_mem" | "mem" | "memory" => {
                            limits.max_memory = self.int(&key.name, v).unwrap_or(-1)
                        }
                        "max_store" | "max_file" | "max_disk" | "store" | "disk" => {
                            limits.max_storage = self.int(&key.name, v).unwrap_or(-1)
                        }
                        "max_streams" | "streams" => {
                            limits.max_streams = self.int(&key.name, v).unwrap_or(-1)
                        }
                        "max_consumers" | "consumers" => {
                            limits.max_consumers = self.int(&key.name, v).unwrap_or(-1)
                        }
                        name => {
                            let message =
                                format!("account jetstream {name:?} is not supported by tenet yet");
                            self.error(&key.pos, message);
                        }
                    }
                }
                Some(limits)
            }
            _ => {
                self.wrong_type("jetstream", value, "a boolean, a string or a map");
                None
            }
        }
    }

    fn string(&mut self, key: &str, value: &Value) -> Option<String> {
        match &value.kind {
            ValueKind::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(key, value, "a string");
                None
            }
        }
    }

    fn int(&mut self, key: &str, value: &Value) -> Option<i64> {
        match value.kind {
            ValueKind::Integer(n) => Some(n),
            _ => {
                self.wrong_type(key, value, "an integer");
                None
            }
        }
    }

    fn limit(&mut self, key: &str, value: &Value, min: i64, max: i64) -> Option<u32> {
        let n = self.int(key, value)?;
        if n < min || n > max {
            self.error(&value.pos, format!("{n} is out of range ({min} to {max})"));
            return None;
        }
        Some(n.min(i64::from(u32::MAX)) as u32)
    }

    fn boolean(&mut self, key: &str, value: &Value) -> Option<bool> {
        match value.kind {
            ValueKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, value, "a boolean");
                None
            }
        }
    }

    /// A duration string only (nats-server's `time.ParseDuration` keys); a
    /// negative one is refused as nats-server refuses it.
    fn duration_string(&mut self, value: &Value, key: &str) -> Option<Duration> {
        match &value.kind {
            ValueKind::String(s) if s.trim().starts_with('-') => {
                let message = format!("invalid {key}, needs to be positive");
                self.error(&value.pos, message);
                None
            }
            ValueKind::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(&value.pos, format!("error parsing {key}: {e}"));
                    None
                }
            },
            _ => {
                self.wrong_type(key, value, "a duration string like \"30s\"");
                None
            }
        }
    }

    /// The `tls {}` block for client connections (file names only: the
    /// host reads the files).
    fn tls(&mut self, value: &Value) -> Option<TlsOptions> {
        let ValueKind::Map(map) = &value.kind else {
            self.wrong_type("tls", value, "a map");
            return None;
        };
        let mut tls = TlsOptions {
            pos: Some(value.pos.clone()),
            ..TlsOptions::default()
        };
        let (mut cert, mut key) = (None, None);
        let mut ok = true;
        for (k, v) in map {
            match k.name.to_ascii_lowercase().as_str() {
                "cert_file" => cert = self.string(&k.name, v),
                "key_file" => key = self.string(&k.name, v),
                "ca_file" => tls.ca_file = self.string(&k.name, v),
                "verify" => tls.verify |= self.boolean(&k.name, v).unwrap_or(false),
                "verify_and_map" => {
                    tls.verify_and_map = self.boolean(&k.name, v).unwrap_or(false);
                    tls.verify |= tls.verify_and_map;
                }
                "timeout" => tls.timeout = self.duration_or_seconds(&k.name, v),
                // nats-server takes it and it means nothing for the client
                // port (it only skips checking a server's certificate).
                "insecure" => {
                    let _ = self.boolean(&k.name, v);
                }
                "cipher_suites" => {
                    tls.cipher_suites = self.tls_names(v, "cipher_suites", |name| {
                        crate::tls::cipher_suite(name).map(drop)
                    })
                }
                "curve_preferences" => {
                    tls.curve_preferences = self.tls_names(v, "curve_preferences", |name| {
                        crate::tls::curve(name).map(drop)
                    })
                }
                "pinned_certs" => tls.pinned_certs = self.pinned_certs(v),
                name @ ("verify_cert_and_check_known_urls"
                | "connection_rate_limit"
                | "handshake_first"
                | "cert_store"
                | "cert_match"
                | "cert_match_by"
                | "ocsp_peer") => {
                    ok = false;
                    let message = format!("tls {name:?} is not supported by tenet yet");
                    self.error(&k.pos, message);
                }
                _ => {
                    ok = false;
                    let message = format!("error parsing tls config, unknown field [{:?}]", k.name);
                    self.error(&k.pos, message);
                }
            }
        }
        match (cert, key) {
            (Some(c), Some(k)) => (tls.cert_file, tls.key_file) = (c, k),
            (Some(_), None) => {
                self.error(&value.pos, "missing 'key_file' in TLS configuration".into());
                return None;
            }
            (None, Some(_)) => {
                self.error(
                    &value.pos,
                    "missing 'cert_file' in TLS configuration".into(),
                );
                return None;
            }
            (None, None) => {
                let message = "tls without a cert_file and a key_file is not supported by tenet (nats-server starts and then fails every handshake)";
                self.error(&value.pos, message.into());
                return None;
            }
        }
        ok.then_some(tls)
    }

    /// A non-empty list of names for `key` of a `tls` block, each checked by
    /// `check` (its error is reported at the name).
    fn tls_names(
        &mut self,
        value: &Value,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<String>> {
        let ValueKind::Array(items) = &value.kind else {
            self.wrong_type(key, value, "a list of names");
            return None;
        };
        if items.is_empty() {
            let message = format!("error parsing tls config, '{key}' cannot be empty");
            self.error(&value.pos, message);
            return None;
        }
        let mut names = Vec::new();
        for item in items {
            let name = self.string(key, item)?;
            if let Err(message) = check(&name) {
                self.error(&item.pos, message);
                return None;
            }
            names.push(name);
        }
        Some(names)
    }

    /// `pinned_certs`: hex SHA-256 digests of SubjectPublicKeyInfo.
    fn pinned_certs(&mut self, value: &Value) -> Option<Vec<String>> {
        let ValueKind::Array(items) = &value.kind else {
            let message = "error parsing tls config, expected 'pinned_certs' to be a list of hex-encoded sha256 of DER encoded SubjectPublicKeyInfo";
            self.error(&value.pos, message.to_string());
            return None;
        };
        let mut pins = Vec::new();
        for item in items {
            let entry = self.string("pinned_certs", item)?.to_ascii_lowercase();
            if entry.len() != 64 || !entry.bytes().all(|b| b.is_ascii_hexdigit()) {
                let message = format!("error parsing tls config, 'pinned_certs' key {entry} does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo");
                self.error(&item.pos, message);
                return None;
            }
            pins.push(entry);
        }
        (!pins.is_empty()).then_some(pins)
    }

    /// A duration string, or a number of seconds (nats-server accepts both).
    fn duration_or_seconds(&mut self, key: &str, value: &Value) -> Option<Duration> {
        match &value.kind {
            ValueKind::Integer(n) if *n >= 0 => Some(Duration::from_secs(*n as u64)),
            ValueKind::Float(f) if *f >= 0.0 => match Duration::try_from_secs_f64(*f) {
                Ok(d) => Some(d),
                Err(_) => {
                    self.error(&value.pos, format!("{key}: {f} seconds is too long"));
                    None
                }
            },
            ValueKind::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(&value.pos, e);
                    None
                }
            },
            _ => {
                self.wrong_type(
                    key,
                    value,
                    "a duration string like \"2s\" or a number of seconds",
                );
                None
            }
        }
    }

    /// `listen`: `"host:port"`, `":port"`, `port` or `"host"`.
    fn host_port(&mut self, value: &Value) -> Option<(Option<String>, Option<i64>)> {
        match &value.kind {
            ValueKind::Integer(p) => Some((None, Some(*p))),
            ValueKind::String(s) => match s.rsplit_once(':') {
                Some((h, p)) => match p.parse::<i64>() {
                    Ok(p) => {
                        let h = h.trim_start_matches('[').trim_end_matches(']');
                        Some(((!h.is_empty()).then(|| h.to_string()), Some(p)))
                    }
                    Err(_) => {
                        self.error(
                            &value.pos,
                            format!("could not parse port {p:?} in listen address {s:?}"),
                        );
                        None
                    }
                },
                None => Some((Some(s.clone()), None)),
            },
            _ => {
                self.wrong_type("listen", value, "\"host:port\" or a port number");
                None
            }
        }
    }

    fn map<'v>(&mut self, what: &str, value: &'v Value) -> Option<&'v [(Key, Value)]> {
        let map = value.as_map();
        if map.is_none() {
            self.wrong_type(what, value, "a map");
        }
        map
    }

    fn unknown_in(&mut self, key: &Key, block: &str) {
        if !self.used_variables.contains(&key.pos) {
            let message = format!("unknown field {:?} parsing {block}", key.name);
            self.error(&key.pos, message);
        }
    }

    fn authorization(&mut self, value: &Value) -> Option<Authorization> {
        let map = self.map("authorization", value)?;
        let mut auth = Authorization::default();
        for (key, v) in map {
            match key.name.to_ascii_lowercase().as_str() {
                "user" | "username" => auth.user = self.string(&key.name, v),
                "pass" | "password" => auth.password = self.string(&key.name, v),
                "token" => auth.token = self.string(&key.name, v),
                "timeout" => auth.timeout = self.duration_or_seconds(&key.name, v),
                "users" => auth.users = self.users(v),
                "default_permissions" | "default_permission" | "permissions" | "permission" => {
                    auth.default_permissions = self.permissions(v)
                }
                _ => self.unknown_in(key, "authorization"),
            }
        }
        let conflicts = [
            (
                auth.token.is_some() && auth.user.is_some(),
                "can not have a token and a user/password",
            ),
            (
                auth.token.is_some() && !auth.users.is_empty(),
                "can not have a token and a users array",
            ),
            (
                auth.user.is_some() && !auth.users.is_empty(),
                "can not have a single user/pass and a users array",
            ),
        ];
        for (conflict, message) in conflicts {
            if conflict {
                self.error(&value.pos, format!("authorization: {message}"));
            }
        }
        Some(auth)
    }

    fn users(&mut self, value: &Value) -> Vec<User> {
        let Some(list) = value.as_array() else {
            self.wrong_type("users", value, "an array of users");
            return Vec::new();
        };
        let mut users = Vec::new();
        for entry in list {
            let Some(map) = self.map("user", entry) else {
                continue;
            };
            let mut user = User {
                pos: Some(entry.pos.clone()),
                ..User::default()
            };
            for (key, v) in map {
                match key.name.to_ascii_lowercase().as_str() {
                    "user" | "username" => user.name = self.string(&key.name, v),
                    "pass" | "password" => user.password = self.string(&key.name, v),
                    "nkey" => user.nkey = self.string(&key.name, v),
                    "permissions" | "permission" | "authorization" => {
                        user.permissions = self.permissions(v)
                    }
                    "allowed_connection_types"
                    | "connection_types"
                    | "clients_connection_types" => {
                        let message = format!("{:?} is not supported by tenet yet", key.name);
                        self.error(&key.pos, message);
                    }
                    _ => self.unknown_in(key, "user"),
                }
            }
            match (&user.name, &user.nkey) {
                (None, None) => self.error(
                    &entry.pos,
                    "a user needs a \"user\" or an \"nkey\"".to_string(),
                ),
                (Some(_), Some(_)) => self.error(
                    &entry.pos,
                    "a user has either a \"user\" or an \"nkey\", not both".to_string(),
                ),
                _ => {}
            }
            if let Some(nkey) = &user.nkey {
                if !nkey.starts_with('U') || nkey.len() != 56 {
                    self.error(&entry.pos, format!("not a valid user nkey: {nkey:?}"));
                }
            }
            users.push(user);
        }
        users
    }

    fn permissions(&mut self, value: &Value) -> Option<Permissions> {
        let map = self.map("permissions", value)?;
        let mut perms = Permissions {
            written_at: Some(value.pos.clone()),
            ..Permissions::default()
        };
        for (key, v) in map {
            match key.name.to_ascii_lowercase().as_str() {
                "publish" | "pub" | "import" => perms.publish = self.subject_permission(v, false),
                "subscribe" | "sub" | "export" => {
                    perms.subscribe = self.subject_permission(v, true)
                }
                "allow_responses" | "publish_allow_responses" => {
                    perms.allow_responses = self.allow_responses(v);
                    perms.allow_responses_at = Some(key.pos.clone());
                }
                _ => self.unknown_in(key, "permissions"),
            }
        }
        Some(perms)
    }

    /// A subject, a list of subjects, or `{allow, deny}`.
    fn subject_permission(
        &mut self,
        value: &Value,
        queues_allowed: bool,
    ) -> Option<SubjectPermission> {
        let mut perm = SubjectPermission::default();
        match &value.kind {
            ValueKind::Map(map) => {
                for (key, v) in map {
                    match key.name.to_ascii_lowercase().as_str() {
                        "allow" => (perm.allow, perm.allow_at) = self.subjects(v, queues_allowed),
                        "deny" => (perm.deny, perm.deny_at) = self.subjects(v, queues_allowed),
                        _ => {
                            let message = format!(
                                "Unknown field name {:?} parsing subject permissions, only 'allow' or 'deny' are permitted",
                                key.name
                            );
                            self.error(&key.pos, message);
                        }
                    }
                }
            }
            _ => (perm.allow, perm.allow_at) = self.subjects(value, queues_allowed),
        }
        Some(perm)
    }

    /// The valid entries of a subject list, and where each was written.
    fn subjects(&mut self, value: &Value, queues_allowed: bool) -> (Vec<String>, Vec<Pos>) {
        let items: Vec<&Value> = match &value.kind {
            ValueKind::Array(list) => list.iter().collect(),
            _ => vec![value],
        };
        let (mut out, mut at) = (Vec::new(), Vec::new());
        for item in items {
            let Some(text) = self.string("subject", item) else {
                continue;
            };
            let mut parts = text.split(' ').filter(|p| !p.is_empty());
            let subject = parts.next().unwrap_or_default();
            let queue = parts.next();
            let valid = is_valid_subject(subject.as_bytes())
                && parts.next().is_none()
                && (queue.is_none() || queues_allowed);
            if !valid {
                let message = if queue.is_some() && !queues_allowed {
                    format!(
                        "subject {text:?}: a queue group is only allowed in subscribe permissions"
                    )
                } else {
                    format!("subject {text:?} is not a valid subject")
                };
                self.error(&item.pos, message);
                continue;
            }
            out.push(text);
            at.push(item.pos.clone());
        }
        (out, at)
    }

    fn allow_responses(&mut self, value: &Value) -> Option<ResponsePermission> {
        match &value.kind {
            ValueKind::Bool(true) => Some(ResponsePermission::default()),
            ValueKind::Bool(false) => None,
            ValueKind::Map(map) => {
                let mut rp = ResponsePermission::default();
                for (key, v) in map {
                    match key.name.to_ascii_lowercase().as_str() {
                        "max" | "max_msgs" | "max_messages" | "max_responses" => {
                            // 0 means the default (1); negative means unlimited.
                            rp.max = match self.int(&key.name, v) {
                                Some(n) if n < 0 => None,
                                Some(0) | None => Some(1),
                                Some(n) => Some(n as u64),
                            }
                        }
                        "expires" | "expiration" | "ttl" => {
                            rp.expires = match &v.kind {
                                ValueKind::String(s) if s.trim().starts_with('-') => None,
                                ValueKind::String(s) => match parse_duration(s) {
                                    Ok(d) if d.is_zero() => Some(Duration::from_secs(120)),
                                    Ok(d) => Some(d),
                                    Err(e) => {
                                        self.error(&v.pos, e);
                                        rp.expires
                                    }
                                },
                                ValueKind::Integer(0) => Some(Duration::from_secs(120)),
                                _ => {
                                    self.wrong_type("expires", v, "a duration string like \"1m\"");
                                    rp.expires
                                }
                            }
                        }
                        _ => self.unknown_in(key, "allow_responses"),
                    }
                }
                Some(rp)
            }
            _ => {
                self.wrong_type("allow_responses", value, "true, false or {max, expires}");
                None
            }
        }
    }

    fn accounts(&mut self, value: &Value) -> Vec<AccountConfig> {
        let mut accounts = Vec::new();
        match &value.kind {
            // A plain list of names.
            ValueKind::Array(list) => {
                for item in list {
                    if let Some(name) = self.string("accounts", item) {
                        accounts.push(AccountConfig {
                            name,
                            pos: Some(item.pos.clone()),
                            ..Default::default()
                        });
                    }
                }
            }
            ValueKind::Map(map) => {
                for (key, v) in map {
                    if self.used_variables.contains(&key.pos) {
                        continue;
                    }
                    if key.name == "$G" {
                        self.error(&key.pos, "\"$G\" is a reserved account name".to_string());
                        continue;
                    }
                    accounts.push(self.account(key, v));
                }
            }
            _ => self.wrong_type("accounts", value, "a map of accounts or a list of names"),
        }
        accounts
    }

    fn account(&mut self, name: &Key, value: &Value) -> AccountConfig {
        let mut account = AccountConfig {
            name: name.name.clone(),
            pos: Some(name.pos.clone()),
            ..Default::default()
        };
        let Some(map) = self.map("account", value) else {
            return account;
        };
        for (key, v) in map {
            match key.name.to_ascii_lowercase().as_str() {
                "users" => account.users = self.users(v),
                "default_permissions" | "default_permission" => {
                    account.default_permissions = self.permissions(v)
                }
                "exports" => account.exports = self.list(v, |r, e| r.export(e)),
                "imports" => account.imports = self.list(v, |r, e| r.import(e)),
                "limits" => account.limits = self.account_limits(v),
                "jetstream" => account.jetstream = self.account_jetstream(v),
                name @ ("nkey" | "mappings" | "maps" | "msg_trace" | "trace_dest") => {
                    let feature = match name {
                        "nkey" => "operator mode",
                        "mappings" | "maps" => "subject mappings",
                        _ => "message tracing",
                    };
                    let message = format!(
                        "{:?} in an account is not supported by tenet yet (it arrives with {feature})",
                        key.name
                    );
                    self.error(&key.pos, message);
                }
                _ => self.unknown_in(key, "account"),
            }
        }
        account
    }

    fn list<T>(
        &mut self,
        value: &Value,
        mut item: impl FnMut(&mut Self, &Value) -> Option<T>,
    ) -> Vec<T> {
        match value.as_array() {
            Some(list) => list.iter().filter_map(|e| item(self, e)).collect(),
            None => {
                self.wrong_type("list", value, "an array");
                Vec::new()
            }
        }
    }

    fn export(&mut self, value: &Value) -> Option<Export> {
        let map = self.map("export", value)?;
        let mut export: Option<Export> = None;
        let mut accounts = None;
        let mut response_type = None;
        let mut response_threshold = None;
        for (key, v) in map {
            match key.name.to_ascii_lowercase().as_str() {
                kind @ ("stream" | "service") => {
                    let subject = self.string(&key.name, v)?;
                    if !is_valid_subject(subject.as_bytes()) {
                        self.error(
                            &v.pos,
                            format!("subject {subject:?} is not a valid subject"),
                        );
                    }
                    export = Some(Export {
                        service: kind == "service",
                        subject,
                        accounts: None,
                        response_type: None,
                        response_threshold: None,
                        pos: Some(value.pos.clone()),
                    });
                }
                "accounts" => accounts = Some(self.list(v, |r, e| r.string("accounts", e))),
                "response" | "response_type" => response_type = self.string(&key.name, v),
                "threshold" | "response_threshold" | "response_max_time" => {
                    response_threshold = self.duration_or_seconds(&key.name, v)
                }
                _ => self.unknown_in(key, "export"),
            }
        }
        let Some(mut export) = export else {
            self.error(
                &value.pos,
                "an export needs a \"stream\" or a \"service\" subject".to_string(),
            );
            return None;
        };
        export.accounts = accounts;
        export.response_type = response_type;
        export.response_threshold = response_threshold;
        Some(export)
    }

    fn import(&mut self, value: &Value) -> Option<Import> {
        let map = self.map("import", value)?;
        let mut import: Option<Import> = None;
        let (mut to, mut prefix) = (None, None);
        for (key, v) in map {
            match key.name.to_ascii_lowercase().as_str() {
                kind @ ("stream" | "service") => {
                    let source = self.map(kind, v)?;
                    let (mut account, mut subject) = (None, None);
                    for (k, sv) in source {
                        match k.name.to_ascii_lowercase().as_str() {
                            "account" => account = self.string(&k.name, sv),
                            "subject" => subject = self.string(&k.name, sv),
                            _ => self.unknown_in(k, "import source"),
                        }
                    }
                    match (account, subject) {
                        (Some(account), Some(subject)) => {
                            import = Some(Import {
                                service: kind == "service",
                                account,
                                subject,
                                to: None,
                                prefix: None,
                                pos: Some(value.pos.clone()),
                            })
                        }
                        _ => self.error(
                            &v.pos,
                            format!("an import {kind} needs an \"account\" and a \"subject\""),
                        ),
                    }
                }
                "to" => to = self.string(&key.name, v),
                "prefix" => prefix = self.string(&key.name, v),
                _ => self.unknown_in(key, "import"),
            }
        }
        let Some(mut import) = import else {
            self.error(
                &value.pos,
                "an import needs a \"stream\" or a \"service\"".to_string(),
            );
            return None;
        };
        if to.is_some() && prefix.is_some() {
            self.error(
                &value.pos,
                "an import can not have both \"prefix\" and \"to\"".to_string(),
            );
        }
        import.to = to;
        import.prefix = prefix;
        Some(import)
    }

    fn account_limits(&mut self, value: &Value) -> AccountLimits {
        let mut limits = AccountLimits::default();
        let Some(map) = self.map("limits", value) else {
            return limits;
        };
        for (key, v) in map {
            // Negative means unlimited.
            let n = || match v.kind {
                ValueKind::Integer(n) if n >= 0 => Some(n.min(i64::from(u32::MAX)) as u32),
                _ => None,
            };
            match key.name.to_ascii_lowercase().as_str() {
                "max_connections" | "max_conn" => limits.max_connections = n(),
                "max_subscriptions" | "max_subs" => limits.max_subscriptions = n(),
                "max_payload" | "max_pay" => limits.max_payload = n(),
                "max_leafnodes" | "max_leafs" => {}
                _ => self.unknown_in(key, "limits"),
            }
        }
        limits
    }
}
