//! The reload suite (tests/suites/reload.rs) against tenet-async-std.

#[path = "../suites/reload.rs"]
mod suite;
