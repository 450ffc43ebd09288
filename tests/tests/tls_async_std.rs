//! The tls suite (tests/suites/tls.rs) against tenet-async-std.

#[path = "../suites/tls.rs"]
mod suite;
