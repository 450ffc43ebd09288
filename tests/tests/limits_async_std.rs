//! The limits suite (tests/suites/limits.rs) against tenet-async-std.

#[path = "../suites/limits.rs"]
mod suite;
