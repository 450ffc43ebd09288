//! The protocol suite (tests/suites/protocol.rs) against tenet-async-std.

#[path = "../suites/protocol.rs"]
mod suite;
