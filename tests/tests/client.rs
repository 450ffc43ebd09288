//! The client suite (tests/suites/client.rs) against tenet-mio.

#[path = "../suites/client.rs"]
mod suite;
