//! The differential suite (tests/suites/differential.rs) against tenet-async-std.

#[path = "../suites/differential.rs"]
mod suite;
