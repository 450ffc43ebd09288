//! Configuration files on disk: the resolver that reads a file and its includes.

use std::fs;
use std::path::{Path, PathBuf};

use tenet_core::config::Resolver;

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
        // The caller names `path` in its message: the file looked for is
        // named again only when it is another (an include beside its file).
        fs::read_to_string(&full)
            .map(|text| (name.clone(), text))
            .map_err(|e| {
                if name == path {
                    e.to_string()
                } else {
                    format!("{name}: {e}")
                }
            })
    }
}
