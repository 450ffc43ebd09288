//! The jetstream suite (tests/suites/jetstream.rs) against tenet-async-std.

#[path = "../suites/jetstream.rs"]
mod suite;
