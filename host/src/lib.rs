//! tenet-host: the process-level services every tenet binary shares, and the
//! I/O that happens outside the engine.
//!
//! The engine (`tenet-core`) never touches a file, a socket or a clock; the
//! runtimes (`tenet-mio`, `tenet-async-std`) own the sockets and the event loop.
//! What is left, and the same for every runtime, lives here: the command line,
//! configuration files and their includes, log output, the pid file, signals
//! and `--signal`, serving monitoring over HTTP, and JetStream's file store. A runtime implements
//! [`Runtime`] and its binary's `main` is one call to [`main`].

pub mod accept;
pub mod audit;
pub mod cli;
pub mod config_files;
pub mod driver;
pub mod file_store;
pub mod http;
pub mod load;
pub mod log;
pub mod pid_file;
pub mod signal;
pub mod store_sync;
pub mod workers;

pub use accept::{AcceptBackoff, AcceptFailure};
pub use driver::{
    bind_engine, main, unix_nanos, Applied, Bound, Control, MonitorBindError, Runtime,
};
pub use file_store::{open_store, FileStore};
pub use load::{load_file, server_from_file};
pub use log::{logger, stderr_logger, LogOutput, LogTarget, Logger};
pub use workers::Workers;
