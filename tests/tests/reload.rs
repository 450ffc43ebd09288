//! The reload suite (tests/suites/reload.rs) against tenet-mio.

#[path = "../suites/reload.rs"]
mod suite;
