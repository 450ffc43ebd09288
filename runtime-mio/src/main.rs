//! The `tenet-mio` binary: nats-server's command line, the mio event loop, signals.

use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tenet_core::cli::{self, Command};
use tenet_core::Level;
use tenet_mio::{stderr_logger, EventLoop};

const BINARY: &str = "tenet-mio";

fn main() -> ExitCode {
    let opts = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => opts,
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
    let mut log = stderr_logger();
    let event_loop = match EventLoop::bind(opts.clone(), stderr_logger()) {
        Ok(l) => l,
        Err(e) => {
            let addr = format!("{}:{}", opts.host, opts.port.unwrap_or(0));
            log(
                Level::Error,
                &format!("Error listening on port: {addr}, {e:?}"),
            );
            return ExitCode::from(1);
        }
    };
    for line in tenet_core::log::startup_banner(event_loop.server()) {
        log(Level::Info, &line);
    }
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
    std::thread::spawn(move || {
        let mut log = stderr_logger();
        for signal in signals.forever() {
            match signal {
                SIGHUP => log(
                    Level::Warn,
                    "Configuration reload is not supported yet; ignoring SIGHUP",
                ),
                _ => {
                    log(
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
