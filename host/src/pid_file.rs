//! The pid file (`-P`, `pid_file`): written at start, removed at exit.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

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
