//! The accounts suite (tests/suites/accounts.rs) against tenet-mio.

#[path = "../suites/accounts.rs"]
mod suite;
