//! Process-level services around the engine: configuration files, the pid file,
//! log output, and `--signal` to another server process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tenet_core::cli::SignalCommand;
use tenet_core::config::Resolver;
use tenet_core::Level;

use crate::Logger;

/// Reads configuration files from disk; an include is relative to the file that
/// includes it, as in nats-server.
pub struct FsResolver;

impl Resolver for FsResolver {
    fn read(&self, path: &str, from: &str) -> Result<(String, String), String> {
        let base = Path::new(from)
            .parent()
            .filter(|_| !from.is_empty())
            .unwrap_or(Path::new(""));
        let full: PathBuf = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        let name = full.to_string_lossy().into_owned();
        fs::read_to_string(&full)
            .map(|text| (name.clone(), text))
            .map_err(|e| format!("error opening {name}: {e}"))
    }
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

/// A pid file, removed when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's id to `path`.
    pub fn create(path: &str) -> io::Result<PidFile> {
        let mut file = File::create(path)?;
        write!(file, "{}", std::process::id())?;
        Ok(PidFile(PathBuf::from(path)))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Sends `signal` to the server named by `target` (a pid or a pid file), or, with
/// no target, to the one running process called `binary`.
pub fn send_signal(
    signal: SignalCommand,
    target: Option<&str>,
    binary: &str,
) -> Result<i32, String> {
    let pid = match target {
        Some(t) => match t.parse::<i32>() {
            Ok(pid) => pid,
            Err(_) => {
                let text = fs::read_to_string(t)
                    .map_err(|e| format!("could not read pid file {t}: {e}"))?;
                text.trim()
                    .parse()
                    .map_err(|_| format!("pid file {t} does not hold a pid: {:?}", text.trim()))?
            }
        },
        None => {
            let mut pids = processes_named(binary);
            pids.retain(|&p| p != std::process::id() as i32);
            match pids[..] {
                [pid] => pid,
                [] => return Err(format!("no {binary} process is running")),
                _ => {
                    return Err(format!(
                        "several {binary} processes are running; name one: --signal <signal>=<pid>"
                    ))
                }
            }
        }
    };
    if pid <= 0 {
        return Err(format!("invalid pid {pid}"));
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, signal.number()) };
    if rc != 0 {
        return Err(format!(
            "could not signal process {pid}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(pid)
}

fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}
