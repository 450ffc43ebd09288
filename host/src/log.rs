//! Log output: nats-server's log lines, to stderr or a file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tenet_core::Level;

/// Where log lines go.
pub type Logger = Box<dyn FnMut(Level, &str) + Send>;

/// Log lines to stderr, with timestamps.
pub fn stderr_logger() -> Logger {
    logger(None, true).expect("stderr needs no opening")
}

/// Where log lines go: stderr or a file, with or without timestamps.
pub fn logger(file: Option<&str>, with_time: bool) -> io::Result<Logger> {
    let pid = std::process::id();
    let sink: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(match file {
        Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
        None => Box::new(io::stderr()),
    }));
    Ok(Box::new(move |level: Level, text: &str| {
        let micros = with_time.then(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64)
        });
        let line = tenet_core::log::format_line(pid, micros, level, text);
        if let Ok(mut out) = sink.lock() {
            let _ = writeln!(out, "{line}");
        }
    }))
}
