//! `--signal`: finding a running server process and signalling it.

use std::fs;
use std::io;

use crate::cli::SignalCommand;

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
