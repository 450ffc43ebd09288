//! The tls suite (tests/suites/tls.rs) against tenet-mio.

#[path = "../suites/tls.rs"]
mod suite;
