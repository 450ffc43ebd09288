//! The accounts suite (tests/suites/accounts.rs) against tenet-async-std.

#[path = "../suites/accounts.rs"]
mod suite;
