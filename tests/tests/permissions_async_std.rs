//! The permissions suite (tests/suites/permissions.rs) against tenet-async-std.

#[path = "../suites/permissions.rs"]
mod suite;
