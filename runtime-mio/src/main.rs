//! The `tenet-mio` binary: nats-server's command line and configuration file, the mio event loop, signals.

use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tenet_core::cli::{self, Command};
use tenet_core::Level;
use tenet_mio::host::{self, FsResolver, PidFile};
use tenet_mio::EventLoop;

const BINARY: &str = "tenet-mio";

fn main() -> ExitCode {
    let flags = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(flags)) => flags,
        Ok(Command::Signal { signal, target }) => {
            return match host::send_signal(signal, target.as_deref(), BINARY) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{BINARY}: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Ok(Command::Help) => {
            print!("{}", cli::usage(BINARY));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("{BINARY}: v{}", tenet_core::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{BINARY}: {e}\n\n{}", cli::usage(BINARY));
            return ExitCode::from(1);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let config = match flags.load_config(&FsResolver, &env) {
        Ok(config) => config,
        Err(errors) => {
            for error in errors {
                eprintln!("{BINARY}: {error}");
            }
            return ExitCode::from(1);
        }
    };
    if flags.check_config {
        return match &flags.config_file {
            Some(file) => {
                println!("{BINARY}: configuration file {file} is valid");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{BINARY}: -t needs a configuration file (-c FILE)");
                ExitCode::from(1)
            }
        };
    }

    let log_time = config.log_time.unwrap_or(true);
    let new_logger = || host::logger(config.log_file.as_deref(), log_time);
    let (mut log, loop_log) = match (new_logger(), new_logger()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{BINARY}: cannot open log file: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = config.server.clone();
    let event_loop = match EventLoop::bind(opts.clone(), loop_log) {
        Ok(l) => l,
        Err(e) => {
            let addr = format!("{}:{}", opts.host, opts.port.unwrap_or(0));
            log(
                Level::Error,
                &format!("Error listening on port: {addr}, {e}"),
            );
            return ExitCode::from(1);
        }
    };
    for line in tenet_core::log::startup_banner(event_loop.server()) {
        log(Level::Info, &line);
    }
    if let Some(file) = &flags.config_file {
        log(Level::Info, &format!("Using configuration file: {file}"));
    }
    let _pid_file = match config.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            log(Level::Error, &format!("Could not write pid file: {e}"));
            return ExitCode::from(1);
        }
    };
    let addr = event_loop.local_addr();
    log(
        Level::Info,
        &format!("Listening for client connections on {addr}"),
    );

    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            log(
                Level::Error,
                &format!("cannot install signal handlers: {e}"),
            );
            return ExitCode::from(1);
        }
    };
    let stop = event_loop.stop_handle();
    let mut signal_log = match new_logger() {
        Ok(l) => l,
        Err(e) => {
            log(Level::Error, &format!("cannot open log file: {e}"));
            return ExitCode::from(1);
        }
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            match signal {
                SIGHUP => signal_log(
                    Level::Warn,
                    "Configuration reload is not supported yet; ignoring SIGHUP",
                ),
                _ => {
                    signal_log(
                        Level::Info,
                        &format!("Trapped \"{}\" signal", signal_name(signal)),
                    );
                    stop.stop();
                }
            }
        }
    });

    log(Level::Info, "Server is ready");
    match event_loop.run() {
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

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "interrupt",
        SIGTERM => "terminated",
        _ => "signal",
    }
}
