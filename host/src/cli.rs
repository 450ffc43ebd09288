//! The command line shared by every tenet binary, with nats-server's flag names.
//!
//! Parsing records only the flags that were given, so that they can override a
//! configuration file afterwards, as nats-server's do.

use tenet_core::audit::Operation;
use tenet_core::auth::Auth;
use tenet_core::config::options::{http_port_option, read_config, Config, SyslogAddress};
use tenet_core::config::parse::{parse_file, ConfigError, Resolver};
use tenet_core::options::JetStreamOptions;
use tenet_core::options::DEFAULT_PORT;
use tenet_core::tls::TlsOptions;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run a server (or, with `-t`, only check its configuration).
    Run(Box<Flags>),
    /// Send a signal to a running server (`--signal`).
    Signal {
        /// What to ask of it.
        signal: SignalCommand,
        /// A pid or a pid file; `None` means "the one running server of this name".
        target: Option<String>,
    },
    /// Print the usage text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// The requests `--signal` can send, with nats-server's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalCommand {
    /// `reload`: SIGHUP.
    Reload,
    /// `stop`: SIGKILL.
    Stop,
    /// `quit`: SIGINT.
    Quit,
    /// `term`: SIGTERM.
    Term,
    /// `ldm`: SIGUSR2, lame duck mode.
    LameDuck,
}

impl SignalCommand {
    /// The POSIX signal number.
    pub fn number(self) -> i32 {
        match self {
            SignalCommand::Reload => 1,
            SignalCommand::Quit => 2,
            SignalCommand::Stop => 9,
            SignalCommand::Term => 15,
            SignalCommand::LameDuck => 12,
        }
    }
}

/// The flags given on the command line (`None`: not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `-c`: configuration file.
    pub config_file: Option<String>,
    /// `-t`: check the configuration and exit.
    pub check_config: bool,
    /// `-a`: listen host.
    pub host: Option<String>,
    /// `-p`: port; `Some(None)` is a random port.
    pub port: Option<Option<u16>>,
    /// `-n`: server name.
    pub server_name: Option<String>,
    /// `-P`: pid file.
    pub pid_file: Option<String>,
    /// `-l`: log file.
    pub log_file: Option<String>,
    /// `-T`: timestamps in logs.
    pub log_time: Option<bool>,
    /// `-D`: debug logging.
    pub debug: Option<bool>,
    /// `-V`: protocol tracing.
    pub trace: Option<bool>,
    /// `--max_traced_msg_len`: payload bytes shown in a trace.
    pub max_traced_msg_len: Option<usize>,
    /// `--user`.
    pub user: Option<String>,
    /// `--pass`.
    pub pass: Option<String>,
    /// `--auth`.
    pub auth: Option<String>,
    /// `-m`: monitoring port.
    pub http_port: Option<i64>,
    /// `-s`: log to the local syslog.
    pub syslog: Option<bool>,
    /// `-r`: log to this syslog server.
    pub remote_syslog: Option<String>,
    /// `-js`: enable JetStream.
    pub jetstream: Option<bool>,
    /// `-sd`: JetStream's store directory.
    pub store_dir: Option<String>,
    /// `--tls`: TLS from the flags (`--tls=false`: no TLS at all).
    pub tls: Option<bool>,
    /// `--tlscert`, `--tlskey`, `--tlscacert`: the TLS files.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_ca_cert: Option<String>,
    /// `--tlsverify`: clients must present a certificate.
    pub tls_verify: Option<bool>,
    /// `--explain` or `--who`: answer a permission question and exit.
    pub question: Option<Question>,
    /// `--account`: the account `--who` asks about.
    pub account: Option<String>,
    /// `--format json`: audit answers and `-t` warnings as JSON.
    pub json: bool,
    /// `--strict`: `-t` fails when the configuration has warnings.
    pub strict: bool,
}

/// A permission question (see `tenet_core::audit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// `--explain USER pub|sub SUBJECT [QUEUE]`.
    Explain {
        user: String,
        operation: Operation,
        subject: String,
        queue: Option<String>,
    },
    /// `--who pub|sub SUBJECT`.
    Who {
        operation: Operation,
        subject: String,
    },
}

/// A command-line mistake; the binary prints it and exits with status 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The usage text.
pub fn usage(binary: &str) -> String {
    format!(
        "Usage: {binary} [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222, -1 for random)
    -n, --name, --server_name <name> Server name (default: auto)
    -P, --pid <file>                 File to store the process id
    -c, --config <file>              Configuration file
    -t                               Test the configuration and exit
    --signal <signal>[=<pid>]        Send a signal to a running server
                                     (ldm, reload, stop, quit, term); <pid> may be a pid file

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true; -T=false)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace
    --max_traced_msg_len <len>       Payload bytes shown in a trace (default: 0, all)
    -s, --syslog                     Log to the local syslog (/dev/log)
    -r, --remote_syslog <addr>       Log to a syslog server (udp://127.0.0.1:514,
                                     tcp://host:port or unix:///path)

Authorization Options:
    --user <user>                    User required for connections
    --pass <password>                Password required for connections
    --auth <token>                   Authorization token required for connections

Monitoring Options:
    -m, --http_port <port>           Use port for http monitoring (-1 for random)

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

TLS Options:
    --tls                            Enable TLS, do not verify clients (default: false)
    --tlscert <file>                 Server certificate file
    --tlskey <file>                  Private key for server certificate
    --tlsverify                      Enable TLS, verify client certificates
    --tlscacert <file>               Client certificate CA for verification

Permission Audit Options:
    --explain <user> pub|sub <subject> [<queue>]
                                     Explain whether the user may publish or subscribe, and why
    --who pub|sub <subject>          List the users who may publish to or receive the subject
    --account <account>              With --who: only this account
    --format text|json               Answers and -t warnings as text (default) or JSON
    --strict                         With -t: exit 1 when the configuration has warnings

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
"
    )
}

/// Parses the arguments after the program name. Flags take `-flag value`,
/// `-flag=value` and the `--` forms, like nats-server's (Go's flag package).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut flags = Flags::default();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((f, v)) if arg.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let name = flag.trim_start_matches('-');
        if !flag.starts_with('-') || name.is_empty() || flag.starts_with("---") {
            return Err(CliError(format!("unexpected argument: {arg}")));
        }
        let mut value = |what: &str| -> Result<String, CliError> {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError(format!("flag needs an argument: {flag} ({what})")))
        };
        // Boolean flags take `-D`, or `-D=false` as in Go.
        let switch = |v: &Option<String>| -> Result<Option<bool>, CliError> {
            match v.as_deref() {
                None | Some("true") | Some("1") => Ok(Some(true)),
                Some("false") | Some("0") => Ok(Some(false)),
                Some(other) => Err(CliError(format!(
                    "invalid boolean value {other:?} for {flag}"
                ))),
            }
        };
        match name {
            "a" | "addr" | "net" => flags.host = Some(value("host")?),
            "p" | "port" => flags.port = Some(parse_port(&value("port")?)?),
            "n" | "name" | "server_name" => flags.server_name = Some(value("name")?),
            "P" | "pid" => flags.pid_file = Some(value("pid file")?),
            "c" | "config" => flags.config_file = Some(value("configuration file")?),
            "t" => flags.check_config = switch(&inline_value)?.unwrap_or(true),
            "l" | "log" => flags.log_file = Some(value("log file")?),
            "T" | "logtime" => flags.log_time = switch(&inline_value)?,
            "D" | "debug" => flags.debug = switch(&inline_value)?,
            "V" | "trace" => flags.trace = switch(&inline_value)?,
            "s" | "syslog" => flags.syslog = switch(&inline_value)?,
            "r" | "remote_syslog" => flags.remote_syslog = Some(value("syslog address")?),
            "js" | "jetstream" => flags.jetstream = switch(&inline_value)?,
            "sd" | "store_dir" => flags.store_dir = Some(value("store directory")?),
            "tls" => flags.tls = switch(&inline_value)?,
            "tlsverify" => flags.tls_verify = switch(&inline_value)?,
            "tlscert" => flags.tls_cert = Some(value("certificate file")?),
            "tlskey" => flags.tls_key = Some(value("private key file")?),
            "tlscacert" => flags.tls_ca_cert = Some(value("CA certificate file")?),
            "DV" => {
                flags.debug = Some(true);
                flags.trace = Some(true);
            }
            "max_traced_msg_len" => {
                let n = value("length")?;
                flags.max_traced_msg_len = Some(n.parse().map_err(|_| {
                    CliError(format!("invalid value {n:?} for {flag}: a byte count"))
                })?);
            }
            "user" => flags.user = Some(value("user")?),
            "pass" => flags.pass = Some(value("password")?),
            "auth" => flags.auth = Some(value("token")?),
            "m" | "http_port" => {
                let port = value("port")?;
                flags.http_port = Some(
                    port.parse()
                        .map_err(|_| CliError(format!("invalid monitoring port: {port:?}")))?,
                );
            }
            "explain" => {
                let user = value("user")?;
                let operation = operation(args.next())?;
                let subject = args
                    .next_if(|s| !s.starts_with('-'))
                    .ok_or_else(|| CliError("--explain needs a subject".into()))?;
                let queue = args.next_if(|q| !q.starts_with('-'));
                if queue.is_some() && operation == Operation::Publish {
                    return Err(CliError(
                        "--explain USER pub SUBJECT takes no queue group".into(),
                    ));
                }
                flags.question = Some(Question::Explain {
                    user,
                    operation,
                    subject,
                    queue,
                });
            }
            "who" => {
                let operation = operation(inline_value.clone().or_else(|| args.next()))?;
                let subject = args
                    .next_if(|s| !s.starts_with('-'))
                    .ok_or_else(|| CliError("--who needs a subject".into()))?;
                flags.question = Some(Question::Who { operation, subject });
            }
            "account" => flags.account = Some(value("account")?),
            "format" => {
                flags.json = match value("text or json")?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => {
                        return Err(CliError(format!(
                            "invalid value {other:?} for {flag}: text or json"
                        )))
                    }
                }
            }
            "strict" => flags.strict = switch(&inline_value)?.unwrap_or(true),
            "sl" | "signal" => {
                let spec = value("signal")?;
                return parse_signal(&spec);
            }
            "h" | "help" => return Ok(Command::Help),
            "v" | "version" => return Ok(Command::Version),
            _ => return Err(CliError(format!("flag provided but not defined: {flag}"))),
        }
    }
    Ok(Command::Run(Box::new(flags)))
}

/// `pub` or `sub` after `--explain USER` or `--who`.
fn operation(word: Option<String>) -> Result<Operation, CliError> {
    word.as_deref().and_then(Operation::parse).ok_or_else(|| {
        CliError(format!(
            "expected pub or sub, got {}",
            word.map_or("nothing".to_string(), |w| format!("{w:?}"))
        ))
    })
}

/// `reload`, `stop`, `quit` or `term`, optionally `=<pid or pid file>`.
fn parse_signal(spec: &str) -> Result<Command, CliError> {
    let (name, target) = match spec.split_once('=') {
        Some((n, t)) => (n, Some(t.to_string())),
        None => (spec, None),
    };
    let signal = match name {
        "reload" => SignalCommand::Reload,
        "stop" => SignalCommand::Stop,
        "quit" => SignalCommand::Quit,
        "term" => SignalCommand::Term,
        "ldm" => SignalCommand::LameDuck,
        _ => {
            return Err(CliError(format!(
                "unknown signal {name:?} (use ldm, reload, stop, quit or term)"
            )))
        }
    };
    if target.as_deref() == Some("") {
        return Err(CliError(format!(
            "--signal {spec}: a pid or pid file is missing after '='"
        )));
    }
    Ok(Command::Signal { signal, target })
}

/// `-1` asks for a random port and `0` for the default, as in nats-server.
fn parse_port(text: &str) -> Result<Option<u16>, CliError> {
    match text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(0) => Ok(Some(DEFAULT_PORT)),
        Ok(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        _ => Err(CliError(format!(
            "invalid port: {text:?} (use 1-65535, or -1 for a random port)"
        ))),
    }
}

impl Flags {
    /// Reads the configuration file (if any) through `resolver`, then lets the
    /// flags override it. `env` looks up environment variables for `$VAR`s.
    pub fn load_config(
        &self,
        resolver: &dyn Resolver,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let (mut config, mut errors) = match &self.config_file {
            Some(path) => {
                let parsed = parse_file(path, resolver, env)?;
                read_config(&parsed)
            }
            None => (Config::default(), Vec::new()),
        };
        self.apply(&mut config);
        if let Err(message) = self.apply_tls(&mut config) {
            errors.push(ConfigError { pos: None, message });
        }
        if let Some(tls) = config.server.tls.as_mut() {
            if let Err(message) = tls.load_files(resolver) {
                errors.push(ConfigError {
                    pos: tls.pos.clone(),
                    message,
                });
            }
        }
        // -r is checked as the file's remote_syslog is (which read_config did).
        if self.remote_syslog.is_some() {
            if let Some(Err(message)) = config.remote_syslog.as_deref().map(SyslogAddress::parse) {
                errors.push(ConfigError { pos: None, message });
            }
        }
        if let Some(port) = self.http_port {
            match http_port_option(port) {
                Ok(port) => config.server.http_port = port,
                Err(message) => errors.push(ConfigError { pos: None, message }),
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Everything start-up checks, and only that, so that `-t` and start-up
    /// (and a reload) agree: [`Flags::load_config`], then the users and
    /// accounts it describes ([`Auth::from_config`], with `--user`, `--pass`
    /// and `--auth` over the file's, as in nats-server). Each error carries
    /// its position.
    pub fn load(
        &self,
        resolver: &dyn Resolver,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Auth), Vec<ConfigError>> {
        let config = self.load_config(resolver, env)?;
        let auth = Auth::from_config(
            &config,
            self.user.as_deref(),
            self.pass.as_deref(),
            self.auth.as_deref(),
        )
        .map_err(|e| vec![e])?;
        Ok((config, auth))
    }

    /// The `--tls*` flags, as nats-server takes them: any of them (but
    /// `--tls=false`) replaces the file's `tls` block; `--tls=false` turns
    /// TLS off.
    fn apply_tls(&self, config: &mut Config) -> Result<(), String> {
        if self.tls == Some(false) {
            config.server.tls = None;
            return Ok(());
        }
        let set = self.tls.is_some()
            || self.tls_verify.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca_cert.is_some();
        if !set {
            return Ok(());
        }
        let cert_file = self
            .tls_cert
            .clone()
            .ok_or("TLS Server certificate must be present and valid")?;
        let key_file = self
            .tls_key
            .clone()
            .ok_or("TLS Server private key must be present and valid")?;
        config.server.tls = Some(TlsOptions {
            cert_file,
            key_file,
            ca_file: self.tls_ca_cert.clone(),
            verify: self.tls_verify.unwrap_or(false),
            ..TlsOptions::default()
        });
        Ok(())
    }

    /// Overrides what the file said with what the command line says.
    pub fn apply(&self, config: &mut Config) {
        let server = &mut config.server;
        if let Some(host) = &self.host {
            server.host = host.clone();
        }
        if let Some(port) = self.port {
            server.port = port;
        }
        if let Some(name) = &self.server_name {
            server.server_name = Some(name.clone());
        }
        if let Some(debug) = self.debug {
            server.debug = debug;
        }
        if let Some(trace) = self.trace {
            server.trace = trace;
        }
        if let Some(n) = self.max_traced_msg_len {
            server.max_traced_msg_len = n;
        }
        if let Some(file) = &self.log_file {
            config.log_file = Some(file.clone());
        }
        if let Some(time) = self.log_time {
            config.log_time = Some(time);
        }
        if let Some(file) = &self.pid_file {
            config.pid_file = Some(file.clone());
        }
        if let Some(syslog) = self.syslog {
            config.syslog = syslog;
        }
        match self.jetstream {
            Some(true) if config.server.jetstream.is_none() => {
                config.server.jetstream = Some(JetStreamOptions::default())
            }
            Some(false) => config.server.jetstream = None,
            _ => {}
        }
        if let (Some(dir), Some(js)) = (&self.store_dir, config.server.jetstream.as_mut()) {
            js.store_dir = Some(dir.clone());
        }
        if let Some(address) = &self.remote_syslog {
            // An empty address is none, as in the file.
            config.remote_syslog = (!address.is_empty()).then(|| address.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_core::config::parse::MapResolver;
    use tenet_core::options::Options;

    fn flags(args: &[&str]) -> Result<Flags, CliError> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(f) => Ok(*f),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn options(args: &[&str]) -> Options {
        let resolver = MapResolver(Default::default());
        flags(args)
            .unwrap()
            .load_config(&resolver, &|_| None)
            .unwrap()
            .server
    }

    #[test]
    fn flags_in_every_form() {
        let o = options(&["-a", "127.0.0.1", "--port=4333", "-DV", "--name", "n1"]);
        assert_eq!(
            (o.host.as_str(), o.port, o.debug, o.trace),
            ("127.0.0.1", Some(4333), true, true)
        );
        assert_eq!(o.server_name.as_deref(), Some("n1"));
        assert_eq!(options(&["-p", "-1"]).port, None);
        assert_eq!(options(&["-p", "0"]).port, Some(4222));
        assert_eq!(options(&[]), Options::default());
        assert!(!options(&["-D=false"]).debug);
        let f = flags(&[
            "-c", "a.conf", "-t", "-P", "x.pid", "-l", "x.log", "-T=false",
        ])
        .unwrap();
        assert_eq!(f.config_file.as_deref(), Some("a.conf"));
        assert!(f.check_config);
        assert_eq!(
            (f.pid_file.as_deref(), f.log_file.as_deref(), f.log_time),
            (Some("x.pid"), Some("x.log"), Some(false))
        );
        assert_eq!(parse_args(["-h".to_string()]), Ok(Command::Help));
        assert_eq!(
            options(&["--max_traced_msg_len", "8"]).max_traced_msg_len,
            8
        );
        assert!(parse_args(["--max_traced_msg_len=x".to_string()]).is_err());
        assert_eq!(parse_args(["--version".to_string()]), Ok(Command::Version));
    }

    #[test]
    fn syslog_flags_override_the_file() {
        let mut files = std::collections::HashMap::new();
        files.insert(
            "s.conf".to_string(),
            "syslog: false\nremote_syslog: \"udp://10.0.0.1:514\"\n".to_string(),
        );
        let resolver = MapResolver(files);
        let load = |args: &[&str]| flags(args).unwrap().load_config(&resolver, &|_| None);
        let c = load(&["-c", "s.conf", "-s", "-r", "tcp://127.0.0.1:601"]).unwrap();
        assert!(c.syslog);
        assert_eq!(c.remote_syslog.as_deref(), Some("tcp://127.0.0.1:601"));
        let c = load(&["-c", "s.conf", "--syslog=true", "--remote_syslog="]).unwrap();
        assert_eq!((c.syslog, c.remote_syslog), (true, None));
        let c = load(&["-c", "s.conf"]).unwrap();
        assert_eq!(c.remote_syslog.as_deref(), Some("udp://10.0.0.1:514"));
        let errors = load(&["-r", "localhost:514"]).unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("invalid network type \"localhost\""),
            "{errors:?}"
        );
        assert!(flags(&["-r"]).unwrap_err().0.contains("needs an argument"));
    }

    #[test]
    fn signals() {
        let sig = |s: &str| parse_args(["--signal".to_string(), s.to_string()]);
        assert_eq!(
            sig("reload"),
            Ok(Command::Signal {
                signal: SignalCommand::Reload,
                target: None
            })
        );
        assert_eq!(
            sig("quit=/run/t.pid"),
            Ok(Command::Signal {
                signal: SignalCommand::Quit,
                target: Some("/run/t.pid".into())
            })
        );
        assert_eq!(
            parse_args(["-sl=stop=42".to_string()]),
            Ok(Command::Signal {
                signal: SignalCommand::Stop,
                target: Some("42".into())
            })
        );
        assert_eq!(
            sig("ldm"),
            Ok(Command::Signal {
                signal: SignalCommand::LameDuck,
                target: None
            })
        );
        assert_eq!(SignalCommand::LameDuck.number(), libc::SIGUSR2);
        assert!(sig("bogus").unwrap_err().0.contains("unknown signal"));
        assert!(sig("reload=").unwrap_err().0.contains("missing"));
    }

    #[test]
    fn mistakes_are_reported() {
        assert_eq!(
            flags(&["--bogus"]).unwrap_err().0,
            "flag provided but not defined: --bogus"
        );
        assert!(flags(&["-p"]).unwrap_err().0.contains("needs an argument"));
        assert!(flags(&["-p", "70000"])
            .unwrap_err()
            .0
            .contains("invalid port"));
        assert!(flags(&["stray"])
            .unwrap_err()
            .0
            .contains("unexpected argument"));
        assert!(flags(&["-D=maybe"])
            .unwrap_err()
            .0
            .contains("invalid boolean"));
    }

    #[test]
    fn audit_questions_are_read_with_their_words() {
        let f = flags(&["--explain", "pam", "sub", "_INBOX.>", "q", "-c", "x.conf"]).unwrap();
        assert_eq!(
            f.question,
            Some(Question::Explain {
                user: "pam".into(),
                operation: Operation::Subscribe,
                subject: "_INBOX.>".into(),
                queue: Some("q".into()),
            })
        );
        assert_eq!(f.config_file.as_deref(), Some("x.conf"));
        let f = flags(&["--who", "pub", "a.b", "--account", "A", "--format", "json"]).unwrap();
        assert_eq!(
            f.question,
            Some(Question::Who {
                operation: Operation::Publish,
                subject: "a.b".into(),
            })
        );
        assert_eq!((f.account.as_deref(), f.json), (Some("A"), true));
        assert!(flags(&["-t", "--strict"]).unwrap().strict);
        let error = |args: &[&str]| flags(args).unwrap_err().0;
        assert_eq!(
            error(&["--explain", "joe", "pub", "-c", "x.conf"]),
            "--explain needs a subject"
        );
        assert_eq!(
            error(&["--explain", "joe", "pub", "foo", "q"]),
            "--explain USER pub SUBJECT takes no queue group"
        );
        assert_eq!(
            error(&["--who", "send", "foo"]),
            "expected pub or sub, got \"send\""
        );
        assert!(error(&["--format", "yaml"]).contains("text or json"));
    }

    #[test]
    fn flags_override_the_file_and_the_monitoring_port_is_read() {
        let mut files = std::collections::HashMap::new();
        files.insert(
            "s.conf".to_string(),
            "port: 5000\nserver_name: from_file\ndebug: true\n".to_string(),
        );
        let resolver = MapResolver(files);
        let config = flags(&["-c", "s.conf", "-p", "6000", "-D=false"])
            .unwrap()
            .load_config(&resolver, &|_| None)
            .unwrap();
        assert_eq!(config.server.port, Some(6000));
        assert_eq!(config.server.server_name.as_deref(), Some("from_file"));
        assert!(!config.server.debug);
        let monitoring = |args: &[&str]| {
            flags(args)
                .unwrap()
                .load_config(&resolver, &|_| None)
                .map(|c| c.server.http_port)
        };
        assert_eq!(monitoring(&["-m", "8222"]), Ok(Some(8222)));
        assert_eq!(monitoring(&["--http_port=-1"]), Ok(Some(0)));
        assert_eq!(monitoring(&["-m", "0"]), Ok(None));
        assert_eq!(monitoring(&[]), Ok(None));
        let errors = monitoring(&["-m", "70000"]).unwrap_err();
        assert!(errors[0].message.contains("invalid monitoring port 70000"));
    }
}
