//! The limits suite (tests/suites/limits.rs) against tenet-mio.

#[path = "../suites/limits.rs"]
mod suite;
