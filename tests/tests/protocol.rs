//! The protocol suite (tests/suites/protocol.rs) against tenet-mio.

#[path = "../suites/protocol.rs"]
mod suite;
