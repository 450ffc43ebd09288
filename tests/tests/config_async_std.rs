//! The config suite (tests/suites/config.rs) against tenet-async-std.

#[path = "../suites/config.rs"]
mod suite;
