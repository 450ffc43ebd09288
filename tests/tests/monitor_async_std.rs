//! The monitor suite (tests/suites/monitor.rs) against tenet-async-std.

#[path = "../suites/monitor.rs"]
mod suite;
