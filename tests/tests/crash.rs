//! The crash suite (tests/suites/crash.rs) against tenet-mio.

#[path = "../suites/crash.rs"]
mod suite;
