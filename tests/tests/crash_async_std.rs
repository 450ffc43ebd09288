//! The crash suite (tests/suites/crash.rs) against tenet-async-std.

#[path = "../suites/crash.rs"]
mod suite;
