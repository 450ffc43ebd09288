//! The config suite (tests/suites/config.rs) against tenet-mio.

#[path = "../suites/config.rs"]
mod suite;
