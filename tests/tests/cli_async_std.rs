//! The cli suite (tests/suites/cli.rs) against tenet-async-std.

#[path = "../suites/cli.rs"]
mod suite;
