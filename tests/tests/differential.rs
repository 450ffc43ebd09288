//! The differential suite (tests/suites/differential.rs) against tenet-mio.

#[path = "../suites/differential.rs"]
mod suite;
