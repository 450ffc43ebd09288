//! The jetstream suite (tests/suites/jetstream.rs) against tenet-mio.

#[path = "../suites/jetstream.rs"]
mod suite;
