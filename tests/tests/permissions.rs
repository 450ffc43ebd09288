//! The permissions suite (tests/suites/permissions.rs) against tenet-mio.

#[path = "../suites/permissions.rs"]
mod suite;
