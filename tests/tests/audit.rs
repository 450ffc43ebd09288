//! The audit suite (tests/suites/audit.rs) against tenet-mio.

#[path = "../suites/audit.rs"]
mod suite;
