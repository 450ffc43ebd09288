//! The auth suite (tests/suites/auth.rs) against tenet-mio.

#[path = "../suites/auth.rs"]
mod suite;
