//! The audit suite (tests/suites/audit.rs) against tenet-async-std.

#[path = "../suites/audit.rs"]
mod suite;
