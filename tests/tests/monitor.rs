//! The monitor suite (tests/suites/monitor.rs) against tenet-mio.

#[path = "../suites/monitor.rs"]
mod suite;
