//! The errors suite (tests/suites/errors.rs) against tenet-mio.

#[path = "../suites/errors.rs"]
mod suite;
