//! The readme suite (tests/suites/readme.rs) against tenet-mio.

#[path = "../suites/readme.rs"]
mod suite;
