//! The life of a server binary: flags, configuration, `-t`, `--signal`, the pid
//! and log files, signals, and the runtime's loop.
//!
//! A runtime implements [`Runtime`]; its binary's `main` is one call to [`main`].

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use signal_hook::iterator::Signals;
use tenet_core::audit::Audit;
use tenet_core::config::options::Config;
use tenet_core::Auth;
use tenet_core::{Level, Options, Server};

use crate::audit;
use crate::cli::{self, Command, Flags};
use crate::config_files::FsResolver;
use crate::log::{LogOutput, LogTarget, Logger};
use crate::pid_file::PidFile;
use crate::signal::send_signal;

/// What an event loop offers the shared binary driver.
pub trait Runtime: Sized {
    /// Binds the listening socket; clients authenticate against `auth`; log
    /// lines of the running server go to `log`.
    fn bind(opts: Options, auth: Auth, log: Logger) -> io::Result<Self>;
    /// The address clients connect to.
    fn local_addr(&self) -> SocketAddr;
    /// The monitoring address, when monitoring is on.
    fn http_addr(&self) -> Option<SocketAddr>;
    /// The engine, for the startup banner.
    fn server(&self) -> &Server;
    /// A function that hands the running engine a request ([`Control`]);
    /// callable from any thread.
    fn controller(&self) -> Box<dyn Fn(Control) + Send>;
    /// Serves until stopped.
    fn run(self) -> io::Result<()>;
}

/// What the process asks of a running event loop (from a signal handler thread).
pub enum Control {
    /// Close every client and return from [`Runtime::run`].
    Stop,
    /// Apply a new configuration ([`Server::reload`]; the engine logs the
    /// outcome) and, if the engine takes it, call the [`Applied`] right
    /// after, on the loop's thread, before the engine's log lines about the
    /// reload are written (so they go where the new configuration logs).
    Reload(Box<(Options, Auth, Applied)>),
    /// Enter lame duck mode ([`Server::enter_lame_duck`]): [`Runtime::run`]
    /// returns once every client is closed.
    LameDuck,
}

/// What the host does once the engine has taken a reloaded configuration
/// (switching the log output); dropped unused when the engine refuses it.
pub type Applied = Box<dyn FnOnce() + Send>;

/// The sockets and the engine a runtime starts from.
pub struct Bound {
    /// The client listener.
    pub listener: std::net::TcpListener,
    /// Its address.
    pub local_addr: SocketAddr,
    /// The monitoring listener, when `http_port` asks for one.
    pub http: Option<std::net::TcpListener>,
    /// The engine.
    pub server: Server,
}

/// Why binding the monitoring port failed (logged as nats-server does).
#[derive(Debug)]
pub struct MonitorBindError(pub String);

impl std::fmt::Display for MonitorBindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MonitorBindError {}

/// Binds the client listener described by `opts` (and the monitoring one,
/// with `http_port` or `https_port`) and builds the engine for them, seeded from the clock
/// and the process id: the part every runtime shares.
pub fn bind_engine(opts: Options, auth: Auth) -> io::Result<Bound> {
    // Backlogs as large as the kernel allows (std's is 128), as nats-server's.
    let listener = crate::accept::listen(opts.host.as_str(), opts.port.unwrap_or(0))?;
    let local_addr = listener.local_addr()?;
    let monitor = opts.monitor().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            MonitorBindError(format!("Can't start monitoring: {e}")),
        )
    })?;
    let http = match monitor.map(|(port, _)| port) {
        Some(port) => {
            let http = crate::accept::listen(opts.http_host(), port).map_err(|e| {
                let addr = crate::http::host_port(opts.http_host(), port);
                io::Error::new(
                    e.kind(),
                    MonitorBindError(format!(
                        "Can't start monitoring: can't listen to the monitor port: {addr}: {e}"
                    )),
                )
            })?;
            http.set_nonblocking(true)?;
            Some(http)
        }
        None => None,
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut server = Server::with_auth(opts, auth, seed);
    server.set_listen_port(local_addr.port());
    if let Some(http) = &http {
        server.set_http_port(http.local_addr()?.port());
    }
    Ok(Bound {
        listener,
        local_addr,
        http,
        server,
    })
}

/// The whole life of a server binary: flags, configuration, `-t`, `--signal`,
/// pid and log files, signals, and the runtime's loop. Returns the exit status.
pub fn main<R: Runtime>(binary: &str) -> ExitCode {
    let flags = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(flags)) => flags,
        Ok(Command::Signal { signal, target }) => {
            return match send_signal(signal, target.as_deref(), binary) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{binary}: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Ok(Command::Help) => {
            print!("{}", cli::usage(binary));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("{binary}: v{}", tenet_core::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{binary}: {e}\n\n{}", cli::usage(binary));
            return ExitCode::from(1);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    // The same checks for -t and for start-up: a file -t calls valid starts.
    let (config, auth) = match flags.load(&FsResolver, &env) {
        Ok(loaded) => loaded,
        Err(errors) if flags.check_config || flags.question.is_some() => {
            return audit::report_errors(binary, &errors, flags.json);
        }
        Err(errors) => {
            for error in errors {
                eprintln!("{binary}: {error}");
            }
            return ExitCode::from(1);
        }
    };
    let jetstream = config.server.jetstream.is_some();
    if let Some(question) = &flags.question {
        let account = flags.account.as_deref();
        return audit::answer(binary, question, account, &auth, jetstream, flags.json);
    }
    let warnings = Audit::new(&auth, jetstream).warnings();
    if flags.check_config {
        return match &flags.config_file {
            Some(file) => audit::check(binary, file, &warnings, flags.json, flags.strict),
            None => {
                eprintln!("{binary}: -t needs a configuration file (-c FILE)");
                ExitCode::from(1)
            }
        };
    }

    // The log file, a syslog, or stderr; an unreachable syslog stops the
    // start, as in nats-server.
    let output = match LogTarget::of(&config).map_err(io::Error::other) {
        Ok(target) => LogOutput::open(target),
        Err(e) => Err(e),
    };
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            eprintln!("{binary}: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut log, loop_log, mut signal_log) = (output.logger(), output.logger(), output.logger());
    // The permission audit's warnings (nats-server's plaintext password line among them).
    for warning in &warnings {
        log(Level::Warn, &warning.log_line());
    }
    let opts = config.server.clone();
    let runtime = match R::bind(opts.clone(), auth, loop_log) {
        Ok(r) => r,
        Err(e) => {
            let monitor = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<MonitorBindError>());
            let line = match monitor {
                Some(why) => why.to_string(),
                None => {
                    let addr = format!("{}:{}", opts.host, opts.port.unwrap_or(0));
                    format!("Error listening on port: {addr}, {e}")
                }
            };
            log(Level::Fatal, &line);
            return ExitCode::from(1);
        }
    };
    for line in tenet_core::log::startup_banner(runtime.server()) {
        log(Level::Info, &line);
    }
    if let Some(file) = &flags.config_file {
        log(Level::Info, &format!("Using configuration file: {file}"));
    }
    let _pid_file = match config.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            log(Level::Fatal, &format!("Could not write pidfile: {e}"));
            return ExitCode::from(1);
        }
    };
    if let Some(addr) = runtime.http_addr() {
        let shown = crate::http::host_port(opts.http_host(), addr.port());
        log(Level::Info, &format!("Starting http monitor on {shown}"));
    }
    log(
        Level::Info,
        &format!(
            "Listening for client connections on {}",
            runtime.local_addr()
        ),
    );

    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR2]) {
        Ok(s) => s,
        Err(e) => {
            log(
                Level::Fatal,
                &format!("cannot install signal handlers: {e}"),
            );
            return ExitCode::from(1);
        }
    };
    let control = runtime.controller();
    let started_with = config.clone();
    // The syslog settings in force, for the reload's `Reloaded: syslog` lines.
    let syslog_now = Arc::new(Mutex::new(SyslogSettings::of(&config)));
    std::thread::spawn(move || {
        let mut lame_duck = false;
        for signal in signals.forever() {
            match signal {
                SIGHUP => {
                    signal_log(Level::Info, "Trapped \"hangup\" signal");
                    let switch = reread_config(&flags, &started_with).and_then(|reread| {
                        // A new log target is opened first: one that cannot
                        // be reached fails the whole reload.
                        let switch = output
                            .prepare(reread.log_target.clone())
                            .map_err(|e| vec![e.to_string()])?;
                        Ok((reread, switch))
                    });
                    match switch {
                        Ok((
                            Reread {
                                opts, auth, syslog, ..
                            },
                            switch,
                        )) => {
                            let (mut log, syslog_now) = (output.logger(), syslog_now.clone());
                            let jetstream = opts.jetstream.is_some();
                            let warnings = Audit::new(&auth, jetstream).warnings();
                            let applied: Applied = Box::new(move || {
                                for warning in &warnings {
                                    log(Level::Warn, &warning.log_line());
                                }
                                // As nats-server: these lines still go to the old target.
                                let mut now = syslog_now.lock().unwrap_or_else(|e| e.into_inner());
                                for line in now.reloaded(&syslog) {
                                    log(Level::Info, &line);
                                }
                                *now = syslog;
                                if let Some(switch) = switch {
                                    switch.apply();
                                }
                            });
                            control(Control::Reload(Box::new((opts, auth, applied))));
                        }
                        Err(errors) => {
                            for error in errors {
                                let line =
                                    format!("Failed to reload server configuration: {error}");
                                signal_log(Level::Error, &line);
                            }
                        }
                    }
                }
                SIGUSR2 => {
                    signal_log(Level::Info, "Trapped \"user defined signal 2\" signal");
                    lame_duck = true;
                    control(Control::LameDuck);
                }
                // As nats-server: a TERM does not cut lame duck mode short (INT does).
                SIGTERM if lame_duck => {
                    signal_log(Level::Info, "Trapped \"terminated\" signal");
                }
                _ => {
                    let name = if signal == SIGINT {
                        "interrupt"
                    } else {
                        "terminated"
                    };
                    signal_log(Level::Info, &format!("Trapped \"{name}\" signal"));
                    control(Control::Stop);
                }
            }
        }
    });

    log(Level::Info, "Server is ready");
    match runtime.run() {
        Ok(()) => {
            log(Level::Info, "Server Exiting..");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log(Level::Error, &format!("event loop failed: {e}"));
            ExitCode::from(1)
        }
    }
}

/// A configuration read again for a reload.
struct Reread {
    opts: Options,
    auth: Auth,
    /// Where the log goes from now on (`syslog`, `remote_syslog` change live).
    log_target: LogTarget,
    /// The syslog settings as written.
    syslog: SyslogSettings,
}

/// `syslog` and `remote_syslog` as the configuration (with the flags) says.
#[derive(Clone, PartialEq)]
struct SyslogSettings {
    syslog: bool,
    remote_syslog: Option<String>,
}

impl SyslogSettings {
    fn of(config: &Config) -> SyslogSettings {
        SyslogSettings {
            syslog: config.syslog,
            remote_syslog: config.remote_syslog.clone(),
        }
    }

    /// nats-server's reload lines for what changed from `self` to `new`.
    fn reloaded(&self, new: &SyslogSettings) -> Vec<String> {
        let mut lines = Vec::new();
        if self.syslog != new.syslog {
            lines.push(format!("Reloaded: syslog = {}", new.syslog));
        }
        if self.remote_syslog != new.remote_syslog {
            let address = new.remote_syslog.as_deref().unwrap_or_default();
            lines.push(format!("Reloaded: remote_syslog = {address}"));
        }
        lines
    }
}

/// Reads the configuration file again for a reload, with the same command-line
/// flags over it. The log file, its timestamps and the pid file cannot change
/// live (the syslog settings can); the engine checks its own options.
fn reread_config(flags: &Flags, started_with: &Config) -> Result<Reread, Vec<String>> {
    if flags.config_file.is_none() {
        return Err(vec!["no configuration file (-c) to reload".to_string()]);
    }
    let env = |name: &str| std::env::var(name).ok();
    let (config, auth) = flags
        .load(&FsResolver, &env)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    // Printed as nats-server prints them: the value itself, nothing for none.
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let log_time = |value: Option<bool>| value.unwrap_or(true).to_string();
    let fixed = [
        (
            "log_file",
            text(&started_with.log_file),
            text(&config.log_file),
        ),
        (
            "logtime",
            log_time(started_with.log_time),
            log_time(config.log_time),
        ),
        (
            "pid_file",
            text(&started_with.pid_file),
            text(&config.pid_file),
        ),
    ];
    for (field, old, new) in fixed {
        if old != new {
            return Err(vec![format!(
                "config reload not supported for {field}: old={old}, new={new}"
            )]);
        }
    }
    let log_target = LogTarget::of(&config).map_err(|e| vec![e])?;
    Ok(Reread {
        syslog: SyslogSettings::of(&config),
        opts: config.server,
        auth,
        log_target,
    })
}

/// The wall-clock time now, in nanoseconds since the Unix epoch (what a
/// runtime tells the engine once, with [`Server::set_wall_clock`]).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
