//! The client suite (tests/suites/client.rs) against tenet-async-std.

#[path = "../suites/client.rs"]
mod suite;
